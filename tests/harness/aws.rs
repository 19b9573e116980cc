//! A local AWS for the aws controller's suites: moto (`moto_server`, installed pinned by
//! `scripts/install-moto.sh`) on a loopback port, behind a fault-injecting proxy that knows
//! which AWS operation each request is (the query protocol's `Action`, or the REST route of
//! EKS and S3). The proxy counts operations, fails chosen ones a number of times with an AWS
//! error, and can hold one after moto has done it (the answer never reaches the caller), so a
//! test can kill the manager at exactly that point of a build. Where moto's answers differ
//! from AWS's (a cluster CA that is not a certificate, a wrong XML root element), the proxy
//! answers as AWS does.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Notify;

use super::backend::{repo_root, REQUIRE_UPSTREAM_ENV};
use super::workload_env::free_port;

/// The account moto answers for.
pub const ACCOUNT_ID: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// `moto_server` from MOTO_SERVER_BIN or the project's install; `None` (with a message)
/// when neither exists and the suite is not required to run.
pub fn moto_binary() -> Option<PathBuf> {
    let bin = std::env::var_os("MOTO_SERVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".tools/moto/bin/moto_server"));
    if bin.exists() {
        return Some(bin);
    }
    if std::env::var_os(REQUIRE_UPSTREAM_ENV).is_some() {
        panic!("{} is missing; run scripts/install-moto.sh", bin.display());
    }
    eprintln!("skipping: moto is not installed (scripts/install-moto.sh)");
    None
}

/// A moto server on loopback; killed on drop.
pub struct Moto {
    child: Child,
    pub url: String,
}

impl Moto {
    pub async fn start(bin: &PathBuf) -> Self {
        let port = free_port();
        let log = std::fs::File::create(std::env::temp_dir().join(format!("moto-{port}.log")))
            .expect("moto log");
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start moto_server");
        let url = format!("http://127.0.0.1:{port}");
        let mut moto = Moto { child, url };
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto_server exited with {status}");
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "moto did not start in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        moto
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the proxy does with an operation.
#[derive(Default)]
struct Rules {
    /// Operation → (AWS error code, HTTP status, how many more times).
    fail: HashMap<String, (String, u16, usize)>,
    /// Operation held after moto answered, until released.
    hold: Option<String>,
}

#[derive(Default)]
struct State {
    rules: Rules,
    /// Operations forwarded to moto, by name.
    forwarded: HashMap<String, usize>,
    /// Faults answered, by operation.
    injected: HashMap<String, usize>,
    /// Requests held so far.
    held: usize,
    /// The API endpoint and CA (PEM) every DescribeCluster answer carries, when the test has
    /// a real API server play the cluster.
    cluster_at: Option<(String, String)>,
}

/// The fault-injecting proxy in front of moto.
#[derive(Clone)]
pub struct AwsProxy {
    pub url: String,
    state: Arc<Mutex<State>>,
    release: Arc<Notify>,
    /// The CA every EKS DescribeCluster answer carries (moto's is random bytes; EKS's is a
    /// PEM certificate): the proxy plays EKS here.
    pub cluster_ca_pem: String,
}

impl AwsProxy {
    pub async fn start(upstream: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let proxy = AwsProxy {
            url: format!("http://{addr}"),
            state: Arc::default(),
            release: Arc::new(Notify::new()),
            cluster_ca_pem: rcgen::generate_simple_self_signed(vec!["eks.test".into()])
                .expect("CA")
                .cert
                .pem(),
        };
        let upstream: hyper::Uri = upstream.parse().expect("moto URL");
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let me = proxy.clone();
        let app = axum::Router::new().fallback(move |req: Request<axum::body::Body>| {
            let (me, client, upstream) = (me.clone(), client.clone(), upstream.clone());
            async move { me.handle(req, &client, &upstream).await }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        proxy
    }

    /// Answer the next `times` calls of `operation` with AWS error `code` and `status`.
    pub fn fail(&self, operation: &str, code: &str, status: u16, times: usize) {
        self.state
            .lock()
            .unwrap()
            .rules
            .fail
            .insert(operation.into(), (code.into(), status, times));
    }

    /// Hold the next call of `operation` once moto has done it: the caller never gets the
    /// answer (until [`release`](Self::release), bounded by 120 s).
    pub fn hold(&self, operation: &str) {
        self.state.lock().unwrap().rules.hold = Some(operation.into());
    }

    /// Answer every DescribeCluster with `endpoint` and `ca_pem` (a real API server playing
    /// the EKS cluster) instead of moto's endpoint and [`AwsProxy::cluster_ca_pem`].
    pub fn play_cluster(&self, endpoint: &str, ca_pem: &str) {
        self.state.lock().unwrap().cluster_at = Some((endpoint.into(), ca_pem.into()));
    }

    pub fn release(&self) {
        self.state.lock().unwrap().rules.hold = None;
        self.release.notify_waiters();
    }

    pub fn held(&self) -> usize {
        self.state.lock().unwrap().held
    }

    pub fn forwarded(&self, operation: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .forwarded
            .get(operation)
            .copied()
            .unwrap_or(0)
    }

    pub fn injected(&self, operation: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .injected
            .get(operation)
            .copied()
            .unwrap_or(0)
    }

    /// Every forwarded operation and its count.
    pub fn forwarded_all(&self) -> HashMap<String, usize> {
        self.state.lock().unwrap().forwarded.clone()
    }

    async fn handle(
        &self,
        req: Request<axum::body::Body>,
        client: &Client<HttpConnector, Full<Bytes>>,
        upstream: &hyper::Uri,
    ) -> Response<Full<Bytes>> {
        let (mut parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let operation = operation(&parts.method, parts.uri.path(), parts.uri.query(), &body);
        let fault = {
            let mut state = self.state.lock().unwrap();
            let fault = match state.rules.fail.get_mut(&operation) {
                Some((code, status, times)) if *times > 0 => {
                    *times -= 1;
                    Some((code.clone(), *status))
                }
                _ => None,
            };
            if fault.is_some() {
                *state.injected.entry(operation.clone()).or_default() += 1;
            }
            fault
        };
        if let Some((code, status)) = fault {
            return aws_error(&parts, &code, status);
        }
        let path_and_query = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        parts.uri = format!(
            "http://{}{}",
            upstream.authority().expect("authority"),
            path_and_query
        )
        .parse()
        .expect("URI");
        let forwarded = client
            .request(Request::from_parts(parts, Full::new(body)))
            .await;
        let hold = {
            let mut state = self.state.lock().unwrap();
            *state.forwarded.entry(operation.clone()).or_default() += 1;
            let hold = state.rules.hold.as_deref() == Some(operation.as_str());
            if hold {
                state.held += 1;
                state.rules.hold = None;
            }
            hold
        };
        if hold {
            let _ = tokio::time::timeout(Duration::from_secs(120), self.release.notified()).await;
        }
        match forwarded {
            Ok(resp) => {
                let (mut parts, body) = resp.into_parts();
                let mut body = body
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                if operation == "GET /clusters" {
                    body = self.with_cluster_ca(&body);
                    parts.headers.remove("content-length");
                }
                // moto 5.2.1 answers CreateAccessPoint with the root element
                // `CreateAccessPointResponse`; AWS (and so the SDK) has `CreateAccessPointResult`.
                if body.starts_with(b"<CreateAccessPointResponse")
                    || body.windows(26).any(|w| w == b"<CreateAccessPointResponse")
                {
                    let text = String::from_utf8_lossy(&body)
                        .replace("CreateAccessPointResponse", "CreateAccessPointResult");
                    body = Bytes::from(text);
                    parts.headers.remove("content-length");
                }
                Response::from_parts(parts, Full::new(body))
            }
            Err(e) => Response::builder()
                .status(502)
                .body(Full::new(Bytes::from(e.to_string())))
                .expect("response"),
        }
    }
}

impl AwsProxy {
    /// A DescribeCluster answer with [`AwsProxy::cluster_ca_pem`] as the cluster's CA, or
    /// with the endpoint and CA of [`AwsProxy::play_cluster`].
    fn with_cluster_ca(&self, body: &Bytes) -> Bytes {
        let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(body) else {
            return body.clone();
        };
        let cluster_at = self.state.lock().unwrap().cluster_at.clone();
        if v["cluster"].is_object() {
            let ca = match &cluster_at {
                Some((endpoint, ca)) => {
                    v["cluster"]["endpoint"] = serde_json::json!(endpoint);
                    ca.as_str()
                }
                None => &self.cluster_ca_pem,
            };
            v["cluster"]["certificateAuthority"] = serde_json::json!({
                "data": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, ca)
            });
        }
        Bytes::from(serde_json::to_vec(&v).expect("JSON"))
    }
}

/// The AWS operation of a request: `Action` of the query protocol (EC2, IAM, RDS, STS), else
/// the REST route (`POST /clusters` → `CreateCluster`, ...), else `METHOD /first-segment`.
pub fn operation(method: &hyper::Method, path: &str, query: Option<&str>, body: &[u8]) -> String {
    let action = |text: &str| {
        url::form_urlencoded::parse(text.as_bytes())
            .find(|(k, _)| k == "Action")
            .map(|(_, v)| v.into_owned())
    };
    if let Some(a) =
        action(std::str::from_utf8(body).unwrap_or("")).or_else(|| query.and_then(action))
    {
        return a;
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["clusters"]) => "CreateCluster".into(),
        ("POST", ["clusters", _, "node-groups"]) => "CreateNodegroup".into(),
        ("POST", ["clusters", _, "addons"]) => "CreateAddon".into(),
        ("DELETE", ["clusters", _]) => "DeleteCluster".into(),
        ("DELETE", ["clusters", _, "node-groups", _]) => "DeleteNodegroup".into(),
        ("PUT", [_bucket]) if query.is_none() => "CreateBucket".into(),
        ("DELETE", [_bucket]) if query.is_none() => "DeleteBucket".into(),
        (m, [first, ..]) => format!("{m} /{first}"),
        (m, []) => format!("{m} /"),
    }
}

/// An AWS error in the protocol of the request (JSON for the REST APIs, XML otherwise).
fn aws_error(
    parts: &hyper::http::request::Parts,
    code: &str,
    status: u16,
) -> Response<Full<Bytes>> {
    // The signing service of the request: `Credential=<key>/<date>/<region>/<service>/...`.
    let service = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("")
        .to_string();
    let json = service == "eks";
    let (content_type, body) = if json {
        (
            "application/json",
            r#"{"message":"injected by the test proxy"}"#.to_string(),
        )
    } else if service == "ec2" {
        (
            "text/xml",
            format!(
                "<Response><Errors><Error><Code>{code}</Code>\
                 <Message>injected by the test proxy</Message></Error></Errors>\
                 <RequestID>test</RequestID></Response>"
            ),
        )
    } else {
        (
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>\
                 <Message>injected by the test proxy</Message></Error>\
                 <RequestId>test</RequestId></ErrorResponse>"
            ),
        )
    };
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", content_type);
    if json {
        builder = builder.header("x-amzn-errortype", code);
    }
    builder
        .body(Full::new(Bytes::from(body)))
        .expect("response")
}
