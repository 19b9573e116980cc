//! The process's one NATS connection.
//!
//! Reconnects forever (Threeport's nats.go gives up after 60 tries and then keeps running with a
//! dead connection while `/readyz` says OK, spec 1.3 step 4). Connection events are logged,
//! counted in `threeport_nats_events_total` and drive `threeport_nats_connected` and the `nats`
//! readiness check. The URL is never logged with credentials.

use std::time::Duration;

use async_nats::{ConnectOptions, Event, ServerAddr};
use tracing::{error, info, warn};

use crate::config::{NatsConfig, UrlCredentials};
use crate::engine::metrics::Metrics;
use crate::health::ReadyHandle;

/// Why the NATS client could not be set up from the `nats` configuration.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// A `nats.urls` entry is not a NATS server URL.
    #[error("nats.urls[{index}]: {reason}")]
    BadUrl {
        /// Position of the URL in `nats.urls`; the URL itself may hold a password.
        index: usize,
        /// The parser's complaint.
        reason: String,
    },
    /// The `nats.creds_file` cannot be read or is not a credentials file.
    #[error("nats.creds_file {path}: {reason}")]
    Creds {
        /// The configured `nats.creds_file`.
        path: String,
        /// The kind of IO error, never the file's content.
        reason: String,
    },
    /// async-nats refused to start connecting; the message is its error.
    #[error("connecting to NATS: {0}")]
    Connect(String),
}

/// Build the connect options from the config, without connecting.
pub async fn connect_options(
    cfg: &NatsConfig,
    metrics: Metrics,
    ready: ReadyHandle,
) -> Result<ConnectOptions, NatsError> {
    let mut opts = ConnectOptions::new()
        .name(&cfg.client_name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(cfg.connect_timeout)
        // Capped reconnect backoff: quick at first, at most 5 s between tries.
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((100u64 << attempts.min(6) as u32).min(5_000))
        });
    if let Some(user) = &cfg.user {
        let pass = cfg
            .password
            .as_ref()
            .map(|p| p.expose().to_string())
            .unwrap_or_default();
        opts = opts.user_and_password(user.clone(), pass);
    }
    if let Some(token) = &cfg.token {
        opts = opts.token(token.expose().to_string());
    }
    if let Some(path) = &cfg.creds_file {
        opts = opts
            .credentials_file(path)
            .await
            .map_err(|e| NatsError::Creds {
                path: path.display().to_string(),
                // The io error names the problem; it never contains the file's content.
                reason: e.kind().to_string(),
            })?;
    }
    if let Some(ca) = &cfg.tls.ca_file {
        opts = opts.add_root_certificates(ca.clone());
    }
    if let (Some(cert), Some(key)) = (&cfg.tls.cert_file, &cfg.tls.key_file) {
        opts = opts.add_client_certificate(cert.clone(), key.clone());
    }
    if cfg.tls.required {
        opts = opts.require_tls(true);
    }
    metrics.nats_connected.set(0);
    for ev in [
        "connected",
        "disconnected",
        "lame_duck",
        "draining",
        "closed",
        "slow_consumer",
        "server_error",
        "client_error",
    ] {
        metrics.nats_events_total.with_label_values(&[ev]);
    }
    // Every line about the connection names the servers (credentials stripped): the events
    // do not say which one failed, and async-nats's own lines about it are filtered out
    // (see `telemetry`), so this is the one line per failure.
    let servers: std::sync::Arc<str> = cfg
        .urls
        .iter()
        .map(|u| crate::config::redact_url(u.expose()))
        .collect::<Vec<_>>()
        .join(",")
        .into();
    Ok(opts.event_callback(move |event| {
        let metrics = metrics.clone();
        let ready = ready.clone();
        let servers = servers.clone();
        async move {
            let label = match &event {
                Event::Connected => "connected",
                Event::Disconnected => "disconnected",
                Event::LameDuckMode => "lame_duck",
                Event::Draining => "draining",
                Event::Closed => "closed",
                Event::SlowConsumer(_) => "slow_consumer",
                Event::ServerError(_) => "server_error",
                Event::ClientError(_) => "client_error",
            };
            metrics.nats_events_total.with_label_values(&[label]).inc();
            match event {
                Event::Connected => {
                    metrics.nats_connected.set(1);
                    ready.set(true);
                    info!(%servers, "NATS connected");
                }
                Event::Disconnected => {
                    metrics.nats_connected.set(0);
                    ready.set(false);
                    warn!(%servers, "NATS connection lost; reconnecting");
                }
                // Only after a drain or close on our side (we reconnect forever otherwise).
                Event::Closed => {
                    metrics.nats_connected.set(0);
                    ready.set(false);
                    info!(%servers, "NATS connection closed");
                }
                Event::ServerError(e) => error!(%servers, error = %e, "NATS server error"),
                // Sent after each round of failed connection attempts, with the cause
                // (authorization violation, timed out, io error, ...).
                Event::ClientError(e) => {
                    error!(%servers, error = %e, "cannot connect to NATS; retrying");
                }
                other => warn!(%servers, event = %other, "NATS event"),
            }
        }
    }))
}

/// Parse the configured URLs into server addresses without credentials, and the credentials
/// the URLs carry (see [`crate::config::url_credentials`]: the same in every URL, or none, and
/// not together with `nats.user`/`nats.token`/`nats.creds_file`; config validation already
/// refuses that, this is the same rule for a config built in code). The credentials are handed
/// to the client as options, so they are actually used and no address the client logs can
/// contain them.
pub fn server_addrs(
    cfg: &NatsConfig,
) -> Result<(Vec<ServerAddr>, Option<UrlCredentials>), NatsError> {
    let other_auth = cfg.user.is_some() || cfg.token.is_some() || cfg.creds_file.is_some();
    let creds = crate::config::url_credentials(&cfg.urls, other_auth)
        .map_err(|(index, reason)| NatsError::BadUrl { index, reason })?;
    let mut addrs = Vec::with_capacity(cfg.urls.len());
    for (index, raw) in cfg.urls.iter().enumerate() {
        let bad = |reason: String| NatsError::BadUrl { index, reason };
        let (url, _) = raw.split_credentials().map_err(bad)?;
        addrs.push(
            url.as_str()
                .parse::<ServerAddr>()
                .map_err(|e| bad(e.to_string()))?,
        );
    }
    Ok((addrs, creds))
}

/// Connect (returns at once; the connection is made and remade in the background).
pub async fn connect(
    cfg: &NatsConfig,
    metrics: Metrics,
    ready: ReadyHandle,
) -> Result<async_nats::Client, NatsError> {
    let (addrs, url_credentials) = server_addrs(cfg)?;
    let mut opts = connect_options(cfg, metrics, ready).await?;
    match url_credentials {
        Some(UrlCredentials::UserPassword(user, pass)) => {
            opts = opts.user_and_password(user, pass);
        }
        Some(UrlCredentials::Token(token)) => opts = opts.token(token),
        None => {}
    }
    opts.connect(addrs)
        .await
        .map_err(|e| NatsError::Connect(e.to_string()))
}
