//! The TLS accept loop, and a small HTTP client for registering the cluster in the sandbox
//! Threeport API.

use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::DefaultBodyLimit;
use axum::{Extension, Router};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::api::{self, App, ConnAuth};

const BODY_LIMIT: usize = 64 * 1024 * 1024;

pub(crate) async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    tls: Arc<rustls::ServerConfig>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let router: Router = Router::new()
        .fallback(api::handle)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(app);
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            r = listener.accept() => r,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let cancel = cancel.clone();
        let acceptor = acceptor.clone();
        tracker.spawn(async move {
            let tls = tokio::select! {
                _ = cancel.cancelled() => return,
                r = acceptor.accept(stream) => r,
            };
            let s = match tls {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    return;
                }
            };
            let auth = ConnAuth {
                client_cert: s
                    .get_ref()
                    .1
                    .peer_certificates()
                    .is_some_and(|c| !c.is_empty()),
            };
            let svc = TowerToHyperService::new(router.layer(Extension(auth)));
            let conn =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(s), svc);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "connection error");
                    }
                }
                _ = cancel.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}

/// POST JSON to the sandbox Threeport API (plain HTTP, or mTLS with its generated files) and
/// return the response envelope; non-2xx is an error carrying the body.
pub(crate) async fn post_json(
    api: &crate::threeport::SandboxHandle,
    path: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let addr = api.local_addr();
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let req = hyper::Request::post(path)
        .header(hyper::header::HOST, addr.to_string())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(serde_json::to_vec(body)?))?;
    let resp = match api.tls_files() {
        None => {
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
            tokio::spawn(conn);
            sender.send_request(req).await?
        }
        Some(files) => {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut roots = rustls::RootCertStore::empty();
            for c in rustls_pemfile::certs(&mut files.ca_cert_pem.as_bytes()) {
                roots.add(c?)?;
            }
            let certs = rustls_pemfile::certs(&mut files.client_cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()?;
            let key = rustls_pemfile::private_key(&mut files.client_key_pem.as_bytes())?
                .context("no private key in the Threeport sandbox client key")?;
            let cfg = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_client_auth_cert(certs, key)?;
            let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
            let name = rustls::pki_types::ServerName::try_from("localhost")?;
            let tls = connector.connect(name, tcp).await?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
            tokio::spawn(conn);
            sender.send_request(req).await?
        }
    };
    let status = resp.status();
    let bytes = axum::body::to_bytes(axum::body::Body::new(resp.into_body()), BODY_LIMIT).await?;
    let v: Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("POST {path}: {status}: {}", String::from_utf8_lossy(&bytes)))?;
    if !status.is_success() {
        anyhow::bail!("POST {path}: {status}: {v}");
    }
    Ok(v)
}
