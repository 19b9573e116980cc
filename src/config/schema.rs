//! The shape of the configuration: one struct per section, every field next to its default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use super::error::ConfigError;
use super::nats_url::NatsUrl;
use super::redact::Secret;
use super::serde_helpers::{de_socket_addr, de_string_or_list, duration_str};
use super::validate::{field_path, FieldCheck};

/// A section: the struct, its `Default` (from the `= default` after each field) and its
/// [`FieldCheck`] (each field's type checks, in field order).
///
/// Defaults sit next to the field so that a new setting is one edit; a separate `Default`
/// impl would be a second place that silently falls out of step with the struct. Every
/// section rejects unknown keys and takes missing ones from its default, so a file may set
/// any subset.
macro_rules! section {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                pub $field:ident: $ty:ty = $default:expr
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            $(
                $(#[$field_meta])*
                pub $field: $ty,
            )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self {
                    $($field: $default,)*
                }
            }
        }

        impl FieldCheck for $name {
            fn check(&self, path: &str) -> Result<(), ConfigError> {
                $(FieldCheck::check(&self.$field, &field_path(path, stringify!($field)))?;)*
                Ok(())
            }
        }
    };
}

section! {
    /// The whole effective configuration of the process.
    pub struct Config {
        /// The Threeport REST API.
        pub api: ApiConfig = ApiConfig::default(),
        /// The NATS connection (JetStream streams, consumers, lock buckets).
        pub nats: NatsConfig = NatsConfig::default(),
        /// The admin HTTP server (`/livez`, `/readyz`, `/metrics`, `/configz`).
        pub admin: AdminConfig = AdminConfig::default(),
        /// `--enable` entries: `*`, `name`, `-name` (README, "Command line"). Default `["*"]`.
        #[serde(deserialize_with = "de_string_or_list")]
        pub controllers: Vec<String> = vec!["*".to_string()],
        /// Worker counts per reconciler.
        pub reconcilers: ReconcilersConfig = ReconcilersConfig::default(),
        /// Reconcile loop timing and limits.
        pub engine: EngineConfig = EngineConfig::default(),
        /// How long in-flight reconciles may run after SIGTERM before they are cancelled.
        #[serde(with = "duration_str")]
        pub shutdown_timeout: Duration = Duration::from_secs(25),
        /// Logging.
        pub log: LogConfig = LogConfig::default(),
        /// Tracing export.
        pub telemetry: TelemetryConfig = TelemetryConfig::default(),
        /// Values the gateway controller writes that Threeport hard-codes (spec 4.4 item 35);
        /// the defaults are Threeport's.
        pub gateway: GatewayConfig = GatewayConfig::default(),
        /// How the helm-workload controller runs the helm CLI.
        pub helm: HelmConfig = HelmConfig::default(),
        /// Where the observability controller's charts come from (Threeport's repositories by
        /// default).
        pub observability: ObservabilityConfig = ObservabilityConfig::default(),
        /// How the aws and secret controllers reach AWS.
        pub aws: AwsConfig = AwsConfig::default(),
        /// The periodic resync that re-notifies objects whose notification was lost.
        pub resync: ResyncConfig = ResyncConfig::default(),
        /// Threeport's `ENCRYPTION_KEY`: standard base64 of a 16, 24 or 32 byte AES key.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub encryption_key: Option<Secret> = None,
    }
}

section! {
    /// The Threeport REST API client.
    pub struct ApiConfig {
        /// `host[:port]` without a scheme, as Threeport's `API_SERVER` (the scheme follows
        /// `auth_enabled`: `https://` with mTLS, `http://` without).
        pub server: String =
            "threeport-api-server.threeport-control-plane.svc.cluster.local".into(),
        /// mTLS to the API with the certificate files below.
        pub auth_enabled: bool = true,
        /// Client certificate (PEM) presented to the API when `auth_enabled`.
        pub cert_file: PathBuf = "/etc/threeport/cert/tls.crt".into(),
        /// Private key (PEM: PKCS#1, PKCS#8 or SEC1) of `cert_file`.
        pub key_file: PathBuf = "/etc/threeport/cert/tls.key".into(),
        /// CA certificate (PEM) the API's server certificate must chain to; the only root trusted.
        pub ca_file: PathBuf = "/etc/threeport/ca/tls.crt".into(),
        /// TCP connect timeout of API requests (the TLS handshake counts against
        /// `request_timeout`).
        #[serde(with = "duration_str")]
        pub connect_timeout: Duration = Duration::from_secs(5),
        /// Whole-request timeout of API requests: connect, send, response head and body.
        #[serde(with = "duration_str")]
        pub request_timeout: Duration = Duration::from_secs(30),
    }
}

section! {
    /// The NATS connection.
    pub struct NatsConfig {
        /// Server URLs (`nats://`, `tls://`, `ws://`, `wss://`). A password inside a URL is
        /// redacted in serialized output.
        #[serde(deserialize_with = "de_string_or_list")]
        pub urls: Vec<NatsUrl> = vec!["nats://127.0.0.1:4222".into()],
        /// User name (Threeport's `MSG_BROKER_USER`); sent with `password`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub user: Option<String> = None,
        /// Password of `user` (Threeport's `MSG_BROKER_PASSWORD`); an empty one when unset.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub password: Option<Secret> = None,
        /// Authentication token, instead of user and password.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub token: Option<Secret> = None,
        /// NATS credentials file (user JWT and NKey seed), read at start-up.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub creds_file: Option<PathBuf> = None,
        /// TLS to the servers.
        pub tls: NatsTlsConfig = NatsTlsConfig::default(),
        /// Timeout of one connection attempt; reconnecting goes on forever.
        #[serde(with = "duration_str")]
        pub connect_timeout: Duration = Duration::from_secs(5),
        /// Connection name the servers show in their monitoring (`/connz`).
        pub client_name: String = "threeport-manager".into(),
    }
}

section! {
    /// TLS to NATS.
    pub struct NatsTlsConfig {
        /// CA certificate (PEM) the servers' certificates are verified with.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub ca_file: Option<PathBuf> = None,
        /// Client certificate (PEM) for mutual TLS; used only together with `key_file`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub cert_file: Option<PathBuf> = None,
        /// Private key (PEM) of `cert_file`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub key_file: Option<PathBuf> = None,
        /// Require TLS even for `nats://` URLs.
        pub required: bool = false,
    }
}

section! {
    /// The admin HTTP server.
    pub struct AdminConfig {
        /// Default `0.0.0.0:8081`: the port of Threeport's readiness probe.
        #[serde(deserialize_with = "de_socket_addr")]
        pub listen: SocketAddr = SocketAddr::from(([0, 0, 0, 0], 8081)),
    }
}

section! {
    /// Worker counts.
    pub struct ReconcilersConfig {
        /// Workers per reconciler unless `concurrency` names it.
        pub default_concurrency: usize = 4,
        /// Per reconciler, by Threeport name (`WorkloadInstanceReconciler`). Names are matched
        /// case-insensitively and stored in Threeport's spelling after loading.
        pub concurrency: BTreeMap<String, usize> = BTreeMap::new(),
    }
}

section! {
    /// Reconcile loop timing and limits.
    pub struct EngineConfig {
        /// First retry delay after a reconcile error; doubles per delivery up to `backoff_cap`.
        #[serde(with = "duration_str")]
        pub backoff_base: Duration = Duration::from_secs(1),
        /// Longest retry delay after reconcile errors; permanent errors are retried at this
        /// interval.
        #[serde(with = "duration_str")]
        pub backoff_cap: Duration = Duration::from_secs(5 * 60),
        /// Deliveries of an undecodable notification before it is terminated (>= 1).
        pub max_poison_attempts: u32 = 5,
        /// Deliveries of a failing reconcile before it is terminated; 0 = unlimited (Threeport).
        pub max_reconcile_attempts: u32 = 0,
        /// How often a held lock is renewed; at most a third of `lock_reclaim_after` and of
        /// `lock_takeover_after`.
        #[serde(with = "duration_str")]
        pub lock_renew_interval: Duration = Duration::from_secs(10),
        /// First NAK delay when another process holds the object's lock (doubles per delivery,
        /// up to half of `lock_reclaim_after`).
        #[serde(with = "duration_str")]
        pub lock_conflict_delay: Duration = Duration::from_secs(1),
        /// How often this replica writes its heartbeat (KV bucket `threeportManagerHeartbeats`);
        /// at most a third of `lock_reclaim_after`.
        #[serde(with = "duration_str")]
        pub heartbeat_interval: Duration = Duration::from_secs(5),
        /// A manager replica whose heartbeat has been silent this long is dead: its locks are
        /// reclaimed by the others. A live replica stops reconciling before its own heartbeat
        /// is this old, so it is never overtaken.
        #[serde(with = "duration_str")]
        pub lock_reclaim_after: Duration = Duration::from_secs(30),
        /// A lock of an owner without heartbeat (a Go controller, which never renews) that
        /// nobody has written for this long is taken over. The default, the lock bucket's
        /// 20 min max age, is Threeport's own rule; shorter (e.g. `1m`, well above the
        /// longest Go reconcile) frees a crashed Go controller's objects sooner, at the risk of
        /// overtaking a Go reconcile that runs longer.
        #[serde(with = "duration_str")]
        pub lock_takeover_after: Duration = Duration::from_secs(20 * 60),
        /// How often a `Progress` ack is sent while reconciling; must be under the 30 s AckWait.
        #[serde(with = "duration_str")]
        pub progress_interval: Duration = Duration::from_secs(10),
        /// Expiry of one pull request.
        #[serde(with = "duration_str")]
        pub fetch_expires: Duration = Duration::from_secs(5),
    }
}

section! {
    /// Logging.
    pub struct LogConfig {
        /// `json` (one object per line) or `pretty`.
        pub format: LogFormat = LogFormat::Json,
        /// A `tracing_subscriber::EnvFilter` directive, e.g. `info` or
        /// `info,threeport_manager::engine=debug`.
        pub level: String = "info".into(),
    }
}

section! {
    /// Trace export.
    pub struct TelemetryConfig {
        /// OTLP/HTTP (protobuf) endpoint (`http://` or `https://`), spans posted to
        /// `<endpoint>/v1/traces`; unset = no export.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub otlp_endpoint: Option<String> = None,
        /// `service.name` of the exported spans.
        pub service_name: String = "threeport-manager".into(),
        /// Fraction of traces sampled, 0.0..=1.0.
        pub sampling_ratio: f64 = 1.0,
        /// CA certificates (PEM) an `https` endpoint must chain to, instead of the platform's
        /// (the `scratch` image has none).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub ca_file: Option<PathBuf> = None,
    }
}

section! {
    /// The gateway controller's values (Threeport v0.6.1's by default).
    pub struct GatewayConfig {
        /// ACME directory of the cert-manager Issuers. Threeport's is Let's Encrypt's
        /// **staging** server; production certificates need
        /// `https://acme-v02.api.letsencrypt.org/directory`.
        pub acme_server: String = "https://acme-staging-v02.api.letsencrypt.org/directory".into(),
        /// Route 53 region written into a gateway definition's template Issuer (an instance's
        /// Issuer uses the region of its runtime's location).
        pub route53_region: String = "us-east-1".into(),
        /// cert-manager version of the CertManager support resource.
        pub cert_manager_version: String = "v1.9.1".into(),
        /// Contact e-mail of the CertManager support resource.
        pub cert_manager_contact: String = "admin@nukleros.io".into(),
        /// external-dns image of the ExternalDNS support resource.
        pub external_dns_image: String = "registry.k8s.io/external-dns/external-dns".into(),
        /// external-dns version of the ExternalDNS support resource.
        pub external_dns_version: String = "v0.13.5".into(),
    }
}

section! {
    /// How the helm-workload controller runs the helm v3 CLI.
    pub struct HelmConfig {
        /// The helm v3 binary; a bare name is looked up in `PATH`.
        pub binary: PathBuf = "helm".into(),
        /// The longest one helm command (repo add, upgrade --install, uninstall ...) may run
        /// before it is stopped and the reconcile retried.
        #[serde(with = "duration_str")]
        pub timeout: Duration = Duration::from_secs(300),
        /// After SIGTERM (timeout, cancellation), how long helm has to stop before SIGKILL.
        #[serde(with = "duration_str")]
        pub stop_grace: Duration = Duration::from_secs(5),
        /// The post-renderer helm runs on every install and upgrade: a threeport-manager
        /// binary (run as `<it> helm-post-render --spec FILE`). Unset: this binary.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub post_renderer: Option<PathBuf> = None,
        /// How long a deleted instance waits for its release namespace to be gone (checked
        /// by requeues, never by blocking a worker) before its deletion finishes anyway.
        #[serde(with = "duration_str")]
        pub namespace_wait: Duration = Duration::from_secs(120),
    }
}

section! {
    /// The chart repositories of the observability controller's helm workloads; Threeport
    /// hard-codes the public ones, a mirror (air-gapped clusters) goes here.
    pub struct ObservabilityConfig {
        /// Grafana, Loki and Promtail (http(s):// chart repository or oci:// registry).
        pub grafana_repo: String = "https://grafana.github.io/helm-charts".into(),
        /// kube-prometheus-stack.
        pub prometheus_community_repo: String =
            "https://prometheus-community.github.io/helm-charts".into(),
    }
}

section! {
    /// How the aws and secret controllers reach AWS. Credentials are not here: each object's
    /// AwsAccount carries them (access keys, or a role to assume), as in Threeport.
    pub struct AwsConfig {
        /// Send every AWS call to this endpoint instead of AWS's regional ones: a local AWS
        /// (moto in the tests) or a proxy. Unset: AWS.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub endpoint_url: Option<String> = None,
        /// The longest one AWS call may take, retries of the SDK included, before the
        /// reconcile fails as transient and is retried with backoff.
        #[serde(with = "duration_str")]
        pub call_timeout: Duration = Duration::from_secs(60),
        /// How often a provisioning that waits for AWS (an EKS cluster or node group to be
        /// active, NAT gateways, a deletion) looks again; each look is one requeue.
        #[serde(with = "duration_str")]
        pub poll_interval: Duration = Duration::from_secs(30),
        /// Install the EKS add-on `aws-ebs-csi-driver` as Threeport does. Off only for an
        /// AWS-compatible endpoint without the EKS add-on API (moto).
        pub eks_storage_addon: bool = true,
        /// The session name of roles assumed for an AwsAccount's `RoleArn` (Threeport's
        /// controllers run with `AWS_ROLE_SESSION_NAME=threeport-control-plane`).
        pub role_session_name: String = "threeport-control-plane".into(),
    }
}

section! {
    /// The resync: per enabled reconciler, one replica at a time lists the objects that need
    /// work (unreconciled, or deletion not confirmed) and re-notifies those whose notification
    /// was lost (the API ignores its publish errors). See docs/operating.md, "Resync".
    pub struct ResyncConfig {
        /// Run the resync (every replica takes part in electing who runs it).
        pub enabled: bool = true,
        /// Time between two runs for each reconciler; an object whose notification was lost is
        /// re-notified within `interval × (1 + jitter) + grace` (2 s to 24 h). A run costs two paged lists of the type, the
        /// second over every reconciled object (measured at 10,000 objects: 21 calls, 0.36 s of
        /// API and PostgreSQL CPU, so 0.12 % of a core at 5 min).
        #[serde(with = "duration_str")]
        pub interval: Duration = Duration::from_secs(5 * 60),
        /// Each run is `interval` after the last, ± this fraction of it (0 to 0.5).
        pub jitter: f64 = 0.1,
        /// An object is re-notified only after needing work this long, so that a notification
        /// still on its way from the API is not doubled (and clock skew is absorbed).
        #[serde(with = "duration_str")]
        pub grace: Duration = Duration::from_secs(60),
        /// Objects per list call (1 to 10000).
        pub page_size: u32 = 500,
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
    /// The config and flag spelling: `json` or `pretty`.
    pub fn as_str(&self) -> &'static str {
        match self {
            LogFormat::Json => "json",
            LogFormat::Pretty => "pretty",
        }
    }
}
