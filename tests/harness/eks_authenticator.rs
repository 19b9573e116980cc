//! EKS's token authenticator (aws-iam-authenticator), played on loopback for kube-apiserver's
//! token webhook (`scripts/upstream.sh up DIR --token-webhook=PORT`), so a real API server
//! can stand in for an EKS cluster.
//!
//! It accepts what EKS accepts: a `k8s-aws-v1.` token that is a presigned STS
//! `GetCallerIdentity` URL for the region's STS host, with the cluster's name among its signed
//! headers (`x-k8s-aws-id`), signed less than 15 minutes ago, which STS (moto, through the
//! test's proxy) answers with an identity. That identity is then a cluster admin
//! (`system:masters`), as the cluster's creator is on EKS. Anything else is refused. Both
//! are counted, so a test can say which tokens reached the cluster. What it cannot check:
//! moto does not verify signatures, so a token signed for another cluster name (or with
//! other keys) would pass where STS would refuse it.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

/// How long EKS accepts a token after it was signed.
const TOKEN_ACCEPTED_FOR: time::Duration = time::Duration::minutes(15);

/// What the authenticator has answered so far.
#[derive(Debug, Clone, Default)]
pub struct Reviews {
    /// Tokens accepted, with the identity STS gave for each.
    pub accepted: Vec<String>,
    /// Why each refused token was refused.
    pub refused: Vec<String>,
}

/// The webhook server; it runs until the test's runtime ends.
pub struct EksAuthenticator {
    /// Its loopback port, for `--token-webhook`.
    pub port: u16,
    reviews: Arc<Mutex<Reviews>>,
}

struct Checker {
    cluster: String,
    region: String,
    sts: hyper::Uri,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl EksAuthenticator {
    /// Accepts tokens for `cluster` in `region`, asking STS at `sts_url` (http) who signed them.
    pub async fn start(cluster: &str, region: &str, sts_url: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let reviews = Arc::new(Mutex::new(Reviews::default()));
        let checker = Arc::new(Checker {
            cluster: cluster.to_string(),
            region: region.to_string(),
            sts: sts_url.parse().expect("STS URL"),
            client: Client::builder(TokioExecutor::new()).build_http(),
        });
        let seen = reviews.clone();
        let app = axum::Router::new().fallback(move |req: Request<axum::body::Body>| {
            let (checker, seen) = (checker.clone(), seen.clone());
            async move {
                let body = req
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let review: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let token = review["spec"]["token"].as_str().unwrap_or_default();
                let status = match checker.check(token).await {
                    Ok(identity) => {
                        seen.lock().unwrap().accepted.push(identity.clone());
                        json!({"authenticated": true, "user": {
                            "username": identity, "groups": ["system:masters"]}})
                    }
                    Err(reason) => {
                        seen.lock().unwrap().refused.push(reason.clone());
                        json!({"authenticated": false, "error": reason})
                    }
                };
                axum::Json(json!({
                    "apiVersion": "authentication.k8s.io/v1",
                    "kind": "TokenReview",
                    "status": status,
                }))
            }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { port, reviews }
    }

    /// Every answer so far.
    pub fn reviews(&self) -> Reviews {
        self.reviews.lock().unwrap().clone()
    }
}

impl Checker {
    /// The identity behind `token`, or why it is refused.
    async fn check(&self, token: &str) -> Result<String, String> {
        let encoded = token
            .strip_prefix("k8s-aws-v1.")
            .ok_or("not an EKS token (no k8s-aws-v1. prefix)")?;
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|u| url::Url::parse(&u).ok())
            .ok_or("the token is not a base64url-encoded URL")?;
        let sts_host = format!("sts.{}.amazonaws.com", self.region);
        if url.scheme() != "https" || url.host_str() != Some(sts_host.as_str()) || url.path() != "/"
        {
            return Err(format!(
                "the token's URL is not https://{sts_host}/ but {}://{}{}",
                url.scheme(),
                url.host_str().unwrap_or_default(),
                url.path()
            ));
        }
        let query = |key: &str| {
            url.query_pairs()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.into_owned())
        };
        if query("Action").as_deref() != Some("GetCallerIdentity") {
            return Err("the token's URL is not GetCallerIdentity".into());
        }
        let signed = query("X-Amz-SignedHeaders").unwrap_or_default();
        if !signed.split(';').any(|h| h == "x-k8s-aws-id") {
            return Err(format!(
                "x-k8s-aws-id is not among the signed headers ({signed})"
            ));
        }
        let format =
            time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
        let signed_at = query("X-Amz-Date")
            .and_then(|d| time::PrimitiveDateTime::parse(&d, format).ok())
            .map(|d| d.assume_utc())
            .ok_or("the token has no X-Amz-Date")?;
        let age = time::OffsetDateTime::now_utc() - signed_at;
        if age > TOKEN_ACCEPTED_FOR || age < -time::Duration::minutes(1) {
            return Err(format!("the token was signed {age} ago"));
        }
        let credential = query("X-Amz-Credential").unwrap_or_default();
        if credential.split('/').nth(3) != Some("sts") {
            return Err(format!("the token is not signed for STS ({credential})"));
        }
        // STS says who signed it (moto does not check signatures; AWS would). The cluster name
        // goes along as the signed header it is. moto picks the service from an Authorization
        // header, so the query's signature is also given as one (the same SigV4 values).
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders={signed}, Signature={}",
            query("X-Amz-Signature").unwrap_or_default()
        );
        let sts_request = Request::get(format!(
            "http://{}/?{}",
            self.sts.authority().expect("STS authority"),
            url.query().unwrap_or_default()
        ))
        .header("host", &sts_host)
        .header("authorization", authorization)
        .header("x-k8s-aws-id", &self.cluster)
        .body(Full::new(Bytes::new()))
        .expect("request");
        let answer = self
            .client
            .request(sts_request)
            .await
            .map_err(|e| format!("STS: {e}"))?;
        let ok = answer.status().is_success();
        let body = answer
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        let arn = text
            .split("<Arn>")
            .nth(1)
            .and_then(|rest| rest.split("</Arn>").next())
            .filter(|_| ok)
            .ok_or_else(|| format!("STS did not answer with an identity: {text}"))?;
        Ok(arn.to_string())
    }
}
