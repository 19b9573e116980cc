//! The shape of the configuration: one struct per section, each with its `Default`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use super::redact::{ser_redacted_urls, Secret};
use super::serde_helpers::{de_socket_addr, de_string_or_list, duration_str};

/// The whole effective configuration of the process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The Threeport REST API.
    pub api: ApiConfig,
    /// The NATS connection (JetStream streams, consumers, lock buckets).
    pub nats: NatsConfig,
    /// The admin HTTP server (`/livez`, `/readyz`, `/metrics`, `/configz`).
    pub admin: AdminConfig,
    /// `--enable` entries: `*`, `name`, `-name` (design.md 3). Default `["*"]`.
    #[serde(deserialize_with = "de_string_or_list")]
    pub controllers: Vec<String>,
    /// Worker counts per reconciler.
    pub reconcilers: ReconcilersConfig,
    /// Reconcile loop timing and limits.
    pub engine: EngineConfig,
    /// How long in-flight reconciles may run after SIGTERM before they are cancelled.
    #[serde(with = "duration_str")]
    pub shutdown_timeout: Duration,
    /// Logging.
    pub log: LogConfig,
    /// Tracing export.
    pub telemetry: TelemetryConfig,
    /// Threeport's `ENCRYPTION_KEY`: standard base64 of a 16, 24 or 32 byte AES key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_key: Option<Secret>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            api: ApiConfig::default(),
            nats: NatsConfig::default(),
            admin: AdminConfig::default(),
            controllers: vec!["*".to_string()],
            reconcilers: ReconcilersConfig::default(),
            engine: EngineConfig::default(),
            shutdown_timeout: Duration::from_secs(25),
            log: LogConfig::default(),
            telemetry: TelemetryConfig::default(),
            encryption_key: None,
        }
    }
}

/// The Threeport REST API client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// `host[:port]` without a scheme, as Threeport's `API_SERVER` (the scheme follows
    /// `auth_enabled`: `https://` with mTLS, `http://` without).
    pub server: String,
    /// mTLS to the API with the certificate files below.
    pub auth_enabled: bool,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub ca_file: PathBuf,
    #[serde(with = "duration_str")]
    pub connect_timeout: Duration,
    #[serde(with = "duration_str")]
    pub request_timeout: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            server: "threeport-api-server.threeport-control-plane.svc.cluster.local".into(),
            auth_enabled: true,
            cert_file: "/etc/threeport/cert/tls.crt".into(),
            key_file: "/etc/threeport/cert/tls.key".into(),
            ca_file: "/etc/threeport/ca/tls.crt".into(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// The NATS connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsConfig {
    /// Server URLs (`nats://`, `tls://`, `ws://`, `wss://`). A password inside a URL is
    /// redacted in serialized output.
    #[serde(
        deserialize_with = "de_string_or_list",
        serialize_with = "ser_redacted_urls"
    )]
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creds_file: Option<PathBuf>,
    pub tls: NatsTlsConfig,
    #[serde(with = "duration_str")]
    pub connect_timeout: Duration,
    pub client_name: String,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            urls: vec!["nats://127.0.0.1:4222".into()],
            user: None,
            password: None,
            token: None,
            creds_file: None,
            tls: NatsTlsConfig::default(),
            connect_timeout: Duration::from_secs(5),
            client_name: "threeport-manager".into(),
        }
    }
}

/// TLS to NATS.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsTlsConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Require TLS even for `nats://` URLs.
    pub required: bool,
}

/// The admin HTTP server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Default `0.0.0.0:8081`: the port of Threeport's readiness probe.
    #[serde(deserialize_with = "de_socket_addr")]
    pub listen: SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8081)),
        }
    }
}

/// Worker counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconcilersConfig {
    /// Workers per reconciler unless `concurrency` names it.
    pub default_concurrency: usize,
    /// Per reconciler, by Threeport name (`WorkloadInstanceReconciler`). Names are matched
    /// case-insensitively and stored in Threeport's spelling after loading.
    pub concurrency: BTreeMap<String, usize>,
}

impl Default for ReconcilersConfig {
    fn default() -> Self {
        Self {
            default_concurrency: 4,
            concurrency: BTreeMap::new(),
        }
    }
}

/// Reconcile loop timing and limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// First retry delay after a reconcile error; doubles per delivery up to `backoff_cap`.
    #[serde(with = "duration_str")]
    pub backoff_base: Duration,
    #[serde(with = "duration_str")]
    pub backoff_cap: Duration,
    /// Deliveries of an undecodable notification before it is terminated (>= 1).
    pub max_poison_attempts: u32,
    /// Deliveries of a failing reconcile before it is terminated; 0 = unlimited (Threeport).
    pub max_reconcile_attempts: u32,
    /// How often a held lock is renewed; at most a third of `lock_takeover_after`.
    #[serde(with = "duration_str")]
    pub lock_renew_interval: Duration,
    /// First NAK delay when another process holds the object's lock (doubles per delivery).
    #[serde(with = "duration_str")]
    pub lock_conflict_delay: Duration,
    /// A lock nobody has written for this long is taken over: its holder is gone (Go
    /// controllers never renew, so without this a crashed one blocks its objects for the lock
    /// bucket's 20 min). Longer than any reconcile a Go controller still running could be in;
    /// `20m` (the bucket max age) turns takeovers off.
    #[serde(with = "duration_str")]
    pub lock_takeover_after: Duration,
    /// How often a `Progress` ack is sent while reconciling; must be under the 30 s AckWait.
    #[serde(with = "duration_str")]
    pub progress_interval: Duration,
    /// Expiry of one pull request.
    #[serde(with = "duration_str")]
    pub fetch_expires: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(5 * 60),
            max_poison_attempts: 5,
            max_reconcile_attempts: 0,
            lock_renew_interval: Duration::from_secs(10),
            lock_conflict_delay: Duration::from_secs(1),
            lock_takeover_after: Duration::from_secs(60),
            progress_interval: Duration::from_secs(10),
            fetch_expires: Duration::from_secs(5),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line (the default, for log collectors).
    #[default]
    Json,
    /// Human-readable, multi-line.
    Pretty,
}

impl<'de> Deserialize<'de> for LogFormat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(LogFormat::Json),
            "pretty" => Ok(LogFormat::Pretty),
            _ => Err(serde::de::Error::custom(format!(
                "{s:?} is not a log format (json or pretty)"
            ))),
        }
    }
}

impl LogFormat {
    pub fn as_str(&self) -> &'static str {
        match self {
            LogFormat::Json => "json",
            LogFormat::Pretty => "pretty",
        }
    }
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing_subscriber::EnvFilter` directive, e.g. `info` or
    /// `info,threeport_manager::engine=debug`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Json,
            level: "info".into(),
        }
    }
}

/// Trace export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OTLP/HTTP (protobuf) endpoint (`http://` or `https://`), spans posted to
    /// `<endpoint>/v1/traces`; unset = no export.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    pub service_name: String,
    /// Fraction of traces sampled, 0.0..=1.0.
    pub sampling_ratio: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "threeport-manager".into(),
            sampling_ratio: 1.0,
        }
    }
}
