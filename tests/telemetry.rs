//! OTLP trace export end to end: a local OTLP/HTTP receiver, the real engine against nats-server
//! and the sandbox API, and a notification carrying W3C trace context. The spans must arrive as
//! one tree: remote parent -> `reconcile` -> `threeport_api` (GET, PATCH, ...).
//!
//! The tracing subscriber is global, so this binary installs it once, with the log level at
//! `info`: the debug-level `threeport_api` spans must be exported anyway.

mod harness;
use harness::common;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::json;
use threeport_manager::config::{LogConfig, LogFormat, TelemetryConfig};
use threeport_manager::runtime::telemetry::{self, TelemetryGuard};

const RECONCILER: &str = "WorkloadDefinitionReconciler";
const LIMIT: Duration = Duration::from_secs(30);
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

/// One exported span with the resource it came from.
#[derive(Debug, Clone)]
struct Received {
    service_name: Option<String>,
    span: Span,
}

#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Received>>>,
    requests: Arc<Mutex<usize>>,
}

impl Receiver {
    fn spans(&self) -> Vec<Received> {
        self.spans.lock().expect("lock").clone()
    }
}

async fn accept_traces(State(rx): State<Receiver>, body: Bytes) -> (StatusCode, Vec<u8>) {
    let Ok(req) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, Vec::new());
    };
    *rx.requests.lock().expect("lock") += 1;
    let mut spans = rx.spans.lock().expect("lock");
    for rs in req.resource_spans {
        let service_name = rs
            .resource
            .as_ref()
            .and_then(|r| string_attr(&r.attributes, "service.name"));
        for ss in rs.scope_spans {
            for span in ss.spans {
                spans.push(Received {
                    service_name: service_name.clone(),
                    span,
                });
            }
        }
    }
    // An empty ExportTraceServiceResponse encodes to zero bytes.
    (StatusCode::OK, Vec::new())
}

/// An OTLP/HTTP receiver on a random loopback port: `POST /v1/traces` (protobuf).
async fn start_receiver() -> (String, Receiver) {
    let rx = Receiver::default();
    let app = axum::Router::new()
        .route("/v1/traces", post(accept_traces))
        .with_state(rx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind receiver");
    let addr = listener.local_addr().expect("receiver addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), rx)
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn string_attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    match attr(attrs, key) {
        Some(AnyValue::StringValue(s)) => Some(s.clone()),
        _ => None,
    }
}

/// An integer attribute as text: tracing-opentelemetry exports `u64` fields as strings (an
/// OTLP int is signed), smaller ints as ints; either is accepted.
fn int_attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    match attr(attrs, key) {
        Some(AnyValue::IntValue(i)) => Some(i.to_string()),
        Some(AnyValue::StringValue(s)) => Some(s.clone()),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

static GUARD: OnceLock<TelemetryGuard> = OnceLock::new();

/// Export what has finished, without blocking the test's runtime.
async fn flush() {
    tokio::task::spawn_blocking(|| {
        if let Some(g) = GUARD.get() {
            // A failed export is retried by the next flush in the wait loop.
            let _ = g.force_flush();
        }
    })
    .await
    .expect("flush task");
}

/// Flush and poll until a span satisfies `pred`; return it.
async fn wait_for_span(rx: &Receiver, what: &str, pred: impl Fn(&Received) -> bool) -> Received {
    let mut found = None;
    wait_until(LIMIT, what, || {
        let hit = rx.spans().into_iter().find(|s| pred(s));
        let done = hit.is_some();
        found = hit;
        async move {
            if !done {
                flush().await;
            }
            done
        }
    })
    .await;
    found.expect("span found")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_spans_are_exported_as_a_tree_under_the_remote_parent() {
    let (endpoint, rx) = start_receiver().await;
    let log = LogConfig {
        format: LogFormat::Json,
        level: "info".into(),
    };
    let tel = TelemetryConfig {
        otlp_endpoint: Some(endpoint),
        service_name: "threeport-manager-test".into(),
        sampling_ratio: 1.0,
        ca_file: None,
    };
    let guard = telemetry::init(&log, &tel).expect("install the subscriber");
    assert!(guard.is_exporting());
    assert!(GUARD.set(guard).is_ok(), "subscriber installed once");

    let cp = ControlPlane::start().await;
    let r = TestReconciler::succeeding();
    let m = cp.start_manager(RECONCILER, &r, 1, cp.config()).await;

    // Created already reconciled, so the API publishes nothing; the notification below is the
    // only one, and it carries the publisher's trace context.
    let obj = cp
        .api
        .create(
            WD,
            json!({"Name": "traced", "YAMLDocument": "kind: ConfigMap\n", "Reconciled": true}),
        )
        .await
        .expect("POST workload definition");
    let id = obj["ID"].as_u64().expect("ID");
    let js = cp.jetstream().await;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(
        "traceparent",
        format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01").as_str(),
    );
    headers.insert("tracestate", "vendor=opaque");
    js.publish_with_headers(
        "workloadDefinition.create",
        headers,
        notification("Created", id).into(),
    )
    .await
    .expect("publish")
    .await
    .expect("puback");

    let reconcile = wait_for_span(&rx, "the traced reconcile span", |s| {
        s.span.name == "reconcile" && hex(&s.span.trace_id) == TRACE_ID
    })
    .await;
    let span = &reconcile.span;
    assert_eq!(hex(&span.parent_span_id), PARENT_SPAN_ID, "remote parent");
    assert_eq!(span.trace_state, "vendor=opaque");
    assert_eq!(
        reconcile.service_name.as_deref(),
        Some("threeport-manager-test")
    );
    assert_eq!(
        int_attr(&span.attributes, "object_id"),
        Some(id.to_string()),
        "{:?}",
        span.attributes
    );
    assert_eq!(
        string_attr(&span.attributes, "reconciler").as_deref(),
        Some(RECONCILER)
    );
    assert_eq!(
        string_attr(&span.attributes, "controller").as_deref(),
        Some("workload")
    );
    assert_eq!(
        string_attr(&span.attributes, "operation").as_deref(),
        Some("Created")
    );
    assert_eq!(
        int_attr(&span.attributes, "delivered").as_deref(),
        Some("1")
    );
    assert_eq!(r.call_count(), 1, "the reconciler ran once");

    // Its children: one span per Threeport API call, in the same trace.
    let children: Vec<Span> = rx
        .spans()
        .into_iter()
        .map(|s| s.span)
        .filter(|s| s.parent_span_id == span.span_id)
        .collect();
    for child in &children {
        assert_eq!(child.trace_id, span.trace_id);
        assert_eq!(child.name, "threeport_api", "child {child:?}");
    }
    let calls: Vec<(String, String)> = children
        .iter()
        .map(|c| {
            (
                string_attr(&c.attributes, "method").unwrap_or_default(),
                string_attr(&c.attributes, "path").unwrap_or_default(),
            )
        })
        .collect();
    let object_path = format!("/v0/workload-definitions/{id}");
    assert!(
        calls.contains(&("GET".to_string(), object_path.clone())),
        "GET the object: {calls:?}"
    );
    assert!(
        calls.contains(&("PATCH".to_string(), object_path)),
        "PATCH Reconciled: {calls:?}"
    );
    for child in &children {
        assert!(child.start_time_unix_nano >= span.start_time_unix_nano);
        assert!(child.end_time_unix_nano <= span.end_time_unix_nano);
    }

    // Without trace context the reconcile starts its own trace.
    cp.api
        .patch(WD, id, json!({"Reconciled": false}))
        .await
        .expect("PATCH");
    let own = wait_for_span(&rx, "an untraced reconcile span", |s| {
        s.span.name == "reconcile"
            && int_attr(&s.span.attributes, "object_id") == Some(id.to_string())
            && string_attr(&s.span.attributes, "operation").as_deref() == Some("Updated")
    })
    .await;
    assert!(own.span.parent_span_id.is_empty(), "a root span");
    assert_ne!(hex(&own.span.trace_id), TRACE_ID);

    m.shutdown().await;
    flush().await;
    assert!(*rx.requests.lock().expect("lock") > 0);
}

/// The binary with `env` added to a minimal environment (API on `api_server`, no auth), on
/// `nats_url`, its admin server on a free port, stdout and stderr as `output`; returned once
/// `/readyz` answers 200.
async fn spawn_ready_manager(
    api_server: &str,
    nats_url: &str,
    env: &[(&str, &std::ffi::OsStr)],
    output: fn() -> std::process::Stdio,
) -> std::process::Child {
    let admin_port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_threeport-manager"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("API_SERVER", api_server)
        .env("AUTH_ENABLED", "false")
        .envs(env.iter().copied())
        .args([
            "--nats-url",
            nats_url,
            "--admin-listen",
            &format!("127.0.0.1:{admin_port}"),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(output())
        .stderr(output())
        .spawn()
        .expect("spawn threeport-manager");
    let admin: std::net::SocketAddr = format!("127.0.0.1:{admin_port}").parse().expect("addr");
    wait_until(LIMIT, "readyz 200", || async {
        tokio::net::TcpStream::connect(admin).await.is_ok()
            && http_get(admin, "/readyz").await.0 == 200
    })
    .await;
    child
}

/// The binary with an unreachable collector (credentials in its URL): it runs, says where
/// traces go without the password, and still exits 0 promptly on SIGTERM after its bounded
/// final flush.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_and_stops_cleanly_with_an_unreachable_collector() {
    use std::io::Read as _;
    use std::process::{Command, Stdio};

    const OTLP_PASSWORD: &str = "otlp-pw-7c1d";
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port()
    };
    let nats = sandbox::nats::NatsServer::start().expect("nats-server");
    // The workload controller (on by default) is ready once its stream exists; the sandbox
    // API creates Threeport's streams at start, as the real API does.
    let _api = sandbox::threeport::SandboxApi::start(sandbox::threeport::SandboxOptions {
        nats_url: Some(nats.url()),
        ..Default::default()
    })
    .await
    .expect("sandbox API creates the streams");
    // Nothing listens there once the probe listener above is dropped.
    let collector = format!("http://otel:{OTLP_PASSWORD}@127.0.0.1:{}", free_port());
    let mut child = spawn_ready_manager(
        "127.0.0.1:9",
        &nats.url(),
        &[(
            "THREEPORT_MANAGER__TELEMETRY__OTLP_ENDPOINT",
            std::ffi::OsStr::new(&collector),
        )],
        Stdio::piped,
    )
    .await;

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("threeport-manager did not exit within 20 s of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.code(), Some(0), "clean shutdown exits 0");
    let mut out = String::new();
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut out);
    }
    assert!(out.contains("exporting traces over OTLP/HTTP"), "{out}");
    assert!(out.contains("shutdown complete"), "{out}");
    assert!(
        !out.contains(OTLP_PASSWORD),
        "a secret reached the logs:\n{out}"
    );
}

/// An OTLP/HTTP receiver over HTTPS (a certificate for 127.0.0.1 from a fresh CA, whose PEM is
/// written to `ca_path`), on a random loopback port; its `https://` URL.
async fn start_tls_receiver(ca_path: &std::path::Path) -> (String, Receiver) {
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    std::fs::write(ca_path, ca.pem()).expect("write the CA");
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("leaf params")
        .signed_by(&leaf_key, &ca, &ca_key)
        .expect("leaf");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

    let rx = Receiver::default();
    let app = axum::Router::new()
        .route("/v1/traces", post(accept_traces))
        .with_state(rx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind receiver");
    let addr = listener.local_addr().expect("receiver addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, svc) = (acceptor.clone(), TowerToHyperService::new(app.clone()));
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                }
            });
        }
    });
    (format!("https://{addr}"), rx)
}

/// The binary exports its spans to an `https` collector whose certificate chains to
/// `telemetry.ca_file` (what the scratch image, which has no CA bundle, needs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exports_spans_over_https_trusting_telemetry_ca_file() {
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().expect("tempdir");
    let ca_path = dir.path().join("otel-ca.crt");
    let (endpoint, rx) = start_tls_receiver(&ca_path).await;
    let cp = ControlPlane::start().await;
    let mut child = spawn_ready_manager(
        &cp.sandbox.api_server(),
        &cp.nats.url(),
        &[
            (
                "THREEPORT_MANAGER__TELEMETRY__OTLP_ENDPOINT",
                std::ffi::OsStr::new(&endpoint),
            ),
            ("THREEPORT_MANAGER__TELEMETRY__CA_FILE", ca_path.as_os_str()),
            (
                "THREEPORT_MANAGER__TELEMETRY__SERVICE_NAME",
                std::ffi::OsStr::new("threeport-manager-https"),
            ),
        ],
        Stdio::null,
    )
    .await;
    // A WorkloadDefinition to reconcile: its spans go out on the next batch (and at the
    // latest with the final flush on SIGTERM).
    let wd = cp.create_wd("traced-over-https").await;
    cp.wait_reconciled(wd, LIMIT).await;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let exited = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join");
    assert_eq!(exited.expect("wait").code(), Some(0));
    let span = wait_for_span(&rx, "a reconcile span over https", |r| {
        r.span.name == "reconcile"
    })
    .await;
    assert_eq!(
        span.service_name.as_deref(),
        Some("threeport-manager-https")
    );
}
