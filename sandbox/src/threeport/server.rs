//! The accept loop (plain HTTP or mTLS) and the start-up stream creation.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::api::{self, App};
use super::types::{stream_subjects, STREAMS};

/// Create the nine streams exactly as `util.InitJetStream` does (spec 1.4): in order, only
/// name and subjects set (and `replicas` when more than 1); an existing stream is left as it
/// is. A cluster that has not elected its meta leader yet answers with an error: retried for
/// 30 s.
pub(crate) async fn create_streams(
    js: &async_nats::jetstream::Context,
    replicas: usize,
) -> anyhow::Result<()> {
    let start = std::time::Instant::now();
    for (name, types) in STREAMS {
        loop {
            if js.get_stream(*name).await.is_ok() {
                break;
            }
            let created = js
                .create_stream(async_nats::jetstream::stream::Config {
                    name: (*name).to_string(),
                    subjects: stream_subjects(types),
                    num_replicas: replicas,
                    ..Default::default()
                })
                .await;
            match created {
                Ok(_) => break,
                Err(e) if replicas > 1 && start.elapsed() < std::time::Duration::from_secs(30) => {
                    tracing::debug!(stream = name, error = %e, "cannot create stream yet");
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
                Err(e) => anyhow::bail!("creating stream {name}: {e}"),
            }
        }
    }
    Ok(())
}

/// Upper bound on a request body: large YAML documents and Helm values fit comfortably.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

pub(crate) async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    tls: Option<Arc<rustls::ServerConfig>>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let router: Router = Router::new()
        .fallback(api::handle)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(app);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
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
        let svc = TowerToHyperService::new(router.clone());
        let cancel = cancel.clone();
        let acceptor = acceptor.clone();
        tracker.spawn(async move {
            match acceptor {
                Some(acc) => {
                    let tls = tokio::select! {
                        _ = cancel.cancelled() => return,
                        r = acc.accept(stream) => r,
                    };
                    match tls {
                        Ok(s) => serve_conn(TokioIo::new(s), svc, cancel).await,
                        Err(e) => tracing::debug!(error = %e, "TLS handshake failed"),
                    }
                }
                None => serve_conn(TokioIo::new(stream), svc, cancel).await,
            }
        });
    }
}

async fn serve_conn<I>(io: I, svc: TowerToHyperService<Router>, cancel: CancellationToken)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, svc);
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
}
