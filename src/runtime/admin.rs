//! The admin HTTP server (README, "Admin endpoints and metrics"): `/livez`, `/readyz` (`?verbose`), `/metrics`,
//! `/configz`. Port 8081 by default, where Threeport's readiness probe looks.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::engine::metrics::Metrics;
use crate::health::Readiness;

/// What the admin handlers read.
#[derive(Clone)]
pub struct AdminState {
    /// Answers `/readyz`.
    pub readiness: Readiness,
    /// Rendered by `/metrics`.
    pub metrics: Metrics,
    /// The effective configuration with secrets redacted, rendered once at start-up.
    pub configz: Arc<serde_json::Value>,
}

/// The admin routes: `/livez` and `/healthz` (always `ok`), `/readyz`, `/metrics`, `/configz`.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/livez", get(|| async { "ok\n" }))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/configz", get(configz))
        .with_state(state)
}

async fn readyz(
    State(s): State<AdminState>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let ready = s.readiness.is_ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    if !q.contains_key("verbose") {
        return (status, if ready { "ok\n" } else { "not ready\n" }).into_response();
    }
    // Kubernetes-style verbose output: one line per check.
    let mut body = String::new();
    for (name, ok) in s.readiness.checks() {
        body.push_str(&format!(
            "[{}]{} {}\n",
            if ok { "+" } else { "-" },
            name,
            if ok { "ok" } else { "not ready" }
        ));
    }
    if s.readiness.shutting_down() {
        body.push_str("[-]shutdown shutting down\n");
    } else {
        body.push_str("[+]shutdown ok\n");
    }
    body.push_str(if ready {
        "readyz check passed\n"
    } else {
        "readyz check failed\n"
    });
    (status, body).into_response()
}

async fn metrics(State(s): State<AdminState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

async fn configz(State(s): State<AdminState>) -> Response {
    axum::Json((*s.configz).clone()).into_response()
}

/// A bound, running admin server.
pub struct AdminServer {
    /// The bound address (with the real port when the configured one was 0).
    pub addr: SocketAddr,
    handle: tokio::task::JoinHandle<()>,
    stop: CancellationToken,
}

impl AdminServer {
    /// Bind and serve. Binding failures are start-up errors (port in use, bad address).
    pub async fn start(listen: SocketAddr, state: AdminState) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let s = stop.clone();
        let handle = tokio::spawn(async move {
            let serve = axum::serve(listener, router(state))
                .with_graceful_shutdown(async move { s.cancelled().await });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "admin server failed");
            }
        });
        Ok(Self { addr, handle, stop })
    }

    /// Stop accepting connections, let open ones finish, and wait for the server task.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.handle.await;
    }
}
