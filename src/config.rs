//! One `Config` for the whole process, layered with the `config` crate:
//!
//! 1. built-in defaults (the `Default` impls below, via `#[serde(default)]`);
//! 2. the config file (`--config path`, TOML or YAML by extension);
//! 3. the environment: first Threeport's own names (`API_SERVER`, `MSG_BROKER_HOST`,
//!    `MSG_BROKER_PORT`, `MSG_BROKER_USER`, `MSG_BROKER_PASSWORD`, `AUTH_ENABLED`,
//!    `ENCRYPTION_KEY`, `VERBOSE`, `<X>_CONCURRENT_RECONCILES`), then
//!    `THREEPORT_MANAGER__<SECTION>__<KEY>` for every key, which wins over Threeport's names;
//! 4. command-line flags ([`CliOverrides`]).
//!
//! The environment is passed in as a map ([`LoadSources::env`]) so that tests never touch the
//! process environment. After merging, the result is validated; every [`ConfigError`] names the
//! field path. Secrets ([`Secret`]) never appear in `Debug`, `Display`, serialized output or
//! error messages; [`Config::redacted_json`] and [`Config::to_effective_toml`] are what
//! `/configz` and `check-config` print.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::registry::{self, ControllerSpec};

/// Prefix of the manager's own environment variables: `THREEPORT_MANAGER__ENGINE__BACKOFF_BASE`.
pub const ENV_PREFIX: &str = "THREEPORT_MANAGER";
/// Separator between the prefix, sections and keys of the manager's environment variables.
pub const ENV_SEPARATOR: &str = "__";

/// Max age of Threeport's lock buckets (spec 1.3/1.7): a lock not renewed within this expires.
pub const LOCK_BUCKET_MAX_AGE: Duration = Duration::from_secs(20 * 60);
/// AckWait of Threeport's durable consumers (JetStream default, spec 1.6).
pub const CONSUMER_ACK_WAIT: Duration = Duration::from_secs(30);
/// Upper bound for any per-reconciler worker count.
pub const MAX_CONCURRENCY: usize = 1024;

const REDACTED: &str = "<redacted>";

// ---------------------------------------------------------------------------------------------
// Secret
// ---------------------------------------------------------------------------------------------

/// A secret string. `Debug`, `Display` and `Serialize` print `<redacted>`; use
/// [`Secret::expose`] where the value is really needed (connecting, decrypting).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Never log or format it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

// ---------------------------------------------------------------------------------------------
// The configuration
// ---------------------------------------------------------------------------------------------

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
    /// `--enable` entries: `*`, `name`, `-name` (README, "Command line"). Default `["*"]`.
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

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why the configuration cannot be used. Messages name the field and never contain a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A field (path such as `engine.backoff_base`, `nats.urls[0]`, or an env var name) is
    /// invalid.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The config file cannot be read or parsed.
    #[error("config file {path}: {message}")]
    File { path: String, message: String },
}

impl ConfigError {
    fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The field path (or env var name) the error is about, if it is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { field, .. } => Some(field),
            ConfigError::File { .. } => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

/// Values given on the command line; `None` / empty = not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CliOverrides {
    /// `--enable` (comma list).
    pub enable: Option<String>,
    /// `--api-server`.
    pub api_server: Option<String>,
    /// `--nats-url` (repeatable; replaces the list).
    pub nats_urls: Vec<String>,
    /// `--admin-listen`.
    pub admin_listen: Option<String>,
    /// `--log-format`.
    pub log_format: Option<LogFormat>,
    /// `--log-level`.
    pub log_level: Option<String>,
    /// `--shutdown-timeout` (humantime).
    pub shutdown_timeout: Option<String>,
    /// `--concurrency` (`reconcilers.default_concurrency`).
    pub concurrency: Option<usize>,
}

/// Everything [`Config::load`] reads.
#[derive(Debug, Clone, Default)]
pub struct LoadSources {
    /// Config file; TOML (`.toml`) or YAML (`.yaml`, `.yml`).
    pub file: Option<PathBuf>,
    /// The environment (the process environment in `main`, a literal map in tests).
    pub env: HashMap<String, String>,
    /// Command-line flags.
    pub overrides: CliOverrides,
}

/// A `config::Source` with precomputed key paths (Threeport's env names, mapped).
#[derive(Debug, Clone)]
struct PresetSource(config::Map<String, config::Value>);

impl config::Source for PresetSource {
    fn clone_into_box(&self) -> Box<dyn config::Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<config::Map<String, config::Value>, config::ConfigError> {
        Ok(self.0.clone())
    }
}

impl Config {
    /// Load, merge and validate: defaults -> file -> env -> flags.
    pub fn load(sources: &LoadSources) -> Result<Config, ConfigError> {
        let mut builder = config::Config::builder();

        if let Some(path) = &sources.file {
            builder = builder.add_source(file_source(path)?);
        }

        let (threeport_env, manager_env) = split_env(&sources.env)?;
        builder = builder.add_source(PresetSource(threeport_env));
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .separator(ENV_SEPARATOR)
                .ignore_empty(true)
                .source(Some(manager_env)),
        );

        let o = &sources.overrides;
        let ov = |b: config::ConfigBuilder<config::builder::DefaultState>,
                  key: &str,
                  value: config::Value| {
            b.set_override(key, value)
                .map_err(|e| ConfigError::invalid(key, e.to_string()))
        };
        let origin = "the command line".to_string();
        let s = |v: &str| config::Value::new(Some(&origin), v.to_string());
        if let Some(enable) = &o.enable {
            let list: Vec<String> = registry::split_enable_list(enable);
            builder = ov(
                builder,
                "controllers",
                config::Value::new(Some(&origin), list),
            )?;
        }
        if let Some(v) = &o.api_server {
            builder = ov(builder, "api.server", s(v))?;
        }
        if !o.nats_urls.is_empty() {
            builder = ov(
                builder,
                "nats.urls",
                config::Value::new(Some(&origin), o.nats_urls.clone()),
            )?;
        }
        if let Some(v) = &o.admin_listen {
            builder = ov(builder, "admin.listen", s(v))?;
        }
        if let Some(v) = &o.log_format {
            builder = ov(builder, "log.format", s(v.as_str()))?;
        }
        if let Some(v) = &o.log_level {
            builder = ov(builder, "log.level", s(v))?;
        }
        if let Some(v) = &o.shutdown_timeout {
            builder = ov(builder, "shutdown_timeout", s(v))?;
        }
        if let Some(n) = o.concurrency {
            builder = ov(
                builder,
                "reconcilers.default_concurrency",
                s(&n.to_string()),
            )?;
        }

        let merged = builder
            .build()
            .map_err(|e| map_config_error(e, sources.file.as_deref()))?;
        let mut config: Config = merged
            .try_deserialize()
            .map_err(|e| map_config_error(e, sources.file.as_deref()))?;
        config.validate()?;
        Ok(config)
    }

    /// Check every rule that a type cannot express, and canonicalize reconciler names.
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        // api
        let server = self.api.server.trim();
        if server.is_empty() {
            return Err(ConfigError::invalid("api.server", "must not be empty"));
        }
        if server.contains("://") {
            return Err(ConfigError::invalid(
                "api.server",
                "must be host[:port] without a scheme (the scheme follows api.auth_enabled)",
            ));
        }
        if server.contains(|c: char| c.is_whitespace() || c == '/' || c == '@') {
            return Err(ConfigError::invalid(
                "api.server",
                format!("{server:?} is not host[:port]"),
            ));
        }
        positive("api.connect_timeout", self.api.connect_timeout)?;
        positive("api.request_timeout", self.api.request_timeout)?;
        if self.api.auth_enabled {
            for (field, path) in [
                ("api.cert_file", &self.api.cert_file),
                ("api.key_file", &self.api.key_file),
                ("api.ca_file", &self.api.ca_file),
            ] {
                if path.as_os_str().is_empty() {
                    return Err(ConfigError::invalid(
                        field,
                        "must be set when api.auth_enabled is true",
                    ));
                }
            }
        }

        // nats
        if self.nats.urls.is_empty() {
            return Err(ConfigError::invalid(
                "nats.urls",
                "must list at least one server",
            ));
        }
        for (i, u) in self.nats.urls.iter().enumerate() {
            validate_nats_url(u).map_err(|m| ConfigError::invalid(format!("nats.urls[{i}]"), m))?;
        }
        if self.nats.password.is_some() && self.nats.user.is_none() {
            return Err(ConfigError::invalid(
                "nats.password",
                "is set but nats.user is not",
            ));
        }
        if self.nats.token.is_some() && (self.nats.user.is_some() || self.nats.creds_file.is_some())
        {
            return Err(ConfigError::invalid(
                "nats.token",
                "cannot be combined with nats.user/nats.password or nats.creds_file",
            ));
        }
        if self.nats.user.is_some() && self.nats.creds_file.is_some() {
            return Err(ConfigError::invalid(
                "nats.creds_file",
                "cannot be combined with nats.user/nats.password",
            ));
        }
        if self.nats.tls.cert_file.is_some() != self.nats.tls.key_file.is_some() {
            return Err(ConfigError::invalid(
                "nats.tls",
                "cert_file and key_file must be set together",
            ));
        }
        positive("nats.connect_timeout", self.nats.connect_timeout)?;
        if self.nats.client_name.trim().is_empty() {
            return Err(ConfigError::invalid(
                "nats.client_name",
                "must not be empty",
            ));
        }

        // controllers
        registry::resolve_enable(&self.controllers)
            .map_err(|e| ConfigError::invalid("controllers", e.to_string()))?;

        // reconcilers
        check_concurrency(
            "reconcilers.default_concurrency",
            self.reconcilers.default_concurrency,
        )?;
        let mut canonical = BTreeMap::new();
        for (name, n) in &self.reconcilers.concurrency {
            let field = format!("reconcilers.concurrency.{name}");
            let spec = find_reconciler(name).ok_or_else(|| {
                ConfigError::invalid(
                    &field,
                    "unknown reconciler (see `threeport-manager list` for the names)",
                )
            })?;
            check_concurrency(&field, *n)?;
            if canonical.insert(spec.name.to_string(), *n).is_some() {
                return Err(ConfigError::invalid(
                    format!("reconcilers.concurrency.{}", spec.name),
                    "given more than once (names are case-insensitive)",
                ));
            }
        }
        self.reconcilers.concurrency = canonical;

        // engine
        let e = &self.engine;
        positive("engine.backoff_base", e.backoff_base)?;
        positive("engine.backoff_cap", e.backoff_cap)?;
        if e.backoff_base > e.backoff_cap {
            return Err(ConfigError::invalid(
                "engine.backoff_base",
                format!(
                    "must not exceed engine.backoff_cap ({})",
                    fmt_duration(e.backoff_cap)
                ),
            ));
        }
        if e.max_poison_attempts < 1 {
            return Err(ConfigError::invalid(
                "engine.max_poison_attempts",
                "must be at least 1",
            ));
        }
        positive("engine.lock_renew_interval", e.lock_renew_interval)?;
        positive("engine.lock_takeover_after", e.lock_takeover_after)?;
        if e.lock_takeover_after > LOCK_BUCKET_MAX_AGE {
            return Err(ConfigError::invalid(
                "engine.lock_takeover_after",
                format!(
                    "must not exceed the lock bucket max age ({}); at that value takeovers are off",
                    fmt_duration(LOCK_BUCKET_MAX_AGE)
                ),
            ));
        }
        // A holder gives its lock up after failing to renew for `lock_takeover_after` minus
        // one interval, so at least one renewal must be allowed to fail before that.
        if e.lock_renew_interval * 3 > e.lock_takeover_after {
            return Err(ConfigError::invalid(
                "engine.lock_renew_interval",
                format!(
                    "must be at most a third of engine.lock_takeover_after ({}), i.e. at most {}",
                    fmt_duration(e.lock_takeover_after),
                    fmt_duration(e.lock_takeover_after / 3)
                ),
            ));
        }
        positive("engine.lock_conflict_delay", e.lock_conflict_delay)?;
        positive("engine.progress_interval", e.progress_interval)?;
        if e.progress_interval >= CONSUMER_ACK_WAIT {
            return Err(ConfigError::invalid(
                "engine.progress_interval",
                format!(
                    "must be less than the consumers' AckWait ({})",
                    fmt_duration(CONSUMER_ACK_WAIT)
                ),
            ));
        }
        positive("engine.fetch_expires", e.fetch_expires)?;

        positive("shutdown_timeout", self.shutdown_timeout)?;

        // log
        if let Err(err) = tracing_subscriber::EnvFilter::builder().parse(&self.log.level) {
            return Err(ConfigError::invalid(
                "log.level",
                format!(
                    "{:?} is not a valid filter directive: {err}",
                    self.log.level
                ),
            ));
        }

        // telemetry
        if let Some(endpoint) = &self.telemetry.otlp_endpoint {
            match url::Url::parse(endpoint) {
                Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.has_host() => {}
                _ => {
                    return Err(ConfigError::invalid(
                        "telemetry.otlp_endpoint",
                        "must be an http:// or https:// URL",
                    ))
                }
            }
        }
        if self.telemetry.service_name.trim().is_empty() {
            return Err(ConfigError::invalid(
                "telemetry.service_name",
                "must not be empty",
            ));
        }
        let ratio = self.telemetry.sampling_ratio;
        if !(0.0..=1.0).contains(&ratio) {
            return Err(ConfigError::invalid(
                "telemetry.sampling_ratio",
                format!("{ratio} is not between 0.0 and 1.0"),
            ));
        }

        // encryption key (never echo it)
        if let Some(key) = &self.encryption_key {
            decode_encryption_key(key.expose())?;
        }
        Ok(())
    }

    /// Workers for one reconciler (Threeport name, e.g. `WorkloadInstanceReconciler`).
    pub fn concurrency_for(&self, reconciler_name: &str) -> usize {
        self.reconcilers
            .concurrency
            .get(reconciler_name)
            .copied()
            .unwrap_or(self.reconcilers.default_concurrency)
    }

    /// The controllers `controllers` turns on, in table order.
    pub fn enabled_controllers(&self) -> Result<Vec<&'static ControllerSpec>, ConfigError> {
        registry::resolve_enable(&self.controllers)
            .map_err(|e| ConfigError::invalid("controllers", e.to_string()))
    }

    /// The decoded AES key, if `encryption_key` is set.
    pub fn encryption_key_bytes(&self) -> Result<Option<Vec<u8>>, ConfigError> {
        self.encryption_key
            .as_ref()
            .map(|k| decode_encryption_key(k.expose()))
            .transpose()
    }

    /// The effective configuration as JSON, secrets replaced by `<redacted>` (for `/configz`).
    pub fn redacted_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// The effective configuration as TOML, secrets replaced by `<redacted>`; unset optional
    /// keys appear as comments. The output loads back as a config file.
    pub fn to_effective_toml(&self) -> String {
        let mut out = String::new();
        if let serde_json::Value::Object(map) = self.redacted_json() {
            emit_toml_table(&mut out, "", &map);
        }
        out
    }
}

fn positive(field: &str, d: Duration) -> Result<(), ConfigError> {
    if d.is_zero() {
        Err(ConfigError::invalid(field, "must be greater than 0"))
    } else {
        Ok(())
    }
}

fn check_concurrency(field: &str, n: usize) -> Result<(), ConfigError> {
    if (1..=MAX_CONCURRENCY).contains(&n) {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            field,
            format!("{n} is not between 1 and {MAX_CONCURRENCY}"),
        ))
    }
}

/// Match a reconciler name case-insensitively, ignoring `_` and `-`.
fn find_reconciler(name: &str) -> Option<&'static registry::ReconcilerSpec> {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| *c != '_' && *c != '-')
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let wanted = norm(name);
    registry::CONTROLLERS
        .iter()
        .flat_map(|c| c.reconcilers.iter())
        .find(|r| norm(r.name) == wanted)
}

fn validate_nats_url(u: &str) -> Result<(), String> {
    const SCHEMES: [&str; 4] = ["nats", "tls", "ws", "wss"];
    let scheme_ok = SCHEMES.iter().any(|s| u.starts_with(&format!("{s}://")));
    if !scheme_ok {
        return Err("must start with nats://, tls://, ws:// or wss://".into());
    }
    // Do not echo the URL: it may carry a password.
    match url::Url::parse(u) {
        Ok(parsed) if parsed.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        Ok(_) => Err("has no host".into()),
        Err(e) => Err(format!("is not a valid URL ({e})")),
    }
}

fn decode_encryption_key(key: &str) -> Result<Vec<u8>, ConfigError> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key.trim())
        .map_err(|_| ConfigError::invalid("encryption_key", "is not valid standard base64"))?;
    match bytes.len() {
        16 | 24 | 32 => Ok(bytes),
        n => Err(ConfigError::invalid(
            "encryption_key",
            format!("decodes to {n} bytes; an AES key must be 16, 24 or 32 bytes"),
        )),
    }
}

fn file_source(
    path: &Path,
) -> Result<config::File<config::FileSourceString, config::FileFormat>, ConfigError> {
    let shown = path.display().to_string();
    let format = match path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("toml") => config::FileFormat::Toml,
        Some("yaml" | "yml") => config::FileFormat::Yaml,
        _ => {
            return Err(ConfigError::File {
                path: shown,
                message: "unknown format: the name must end in .toml, .yaml or .yml".into(),
            })
        }
    };
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: shown.clone(),
        message: format!("cannot read: {e}"),
    })?;
    Ok(config::File::from_str(&text, format))
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Split the environment into (Threeport's names mapped to key paths, plus the manager's
/// per-reconciler concurrency variables) and (the rest of the manager's `THREEPORT_MANAGER__*`
/// variables, for `config::Environment`).
#[allow(clippy::type_complexity)]
fn split_env(
    env: &HashMap<String, String>,
) -> Result<
    (
        config::Map<String, config::Value>,
        config::Map<String, String>,
    ),
    ConfigError,
> {
    let get = |k: &str| env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let mut out: config::Map<String, config::Value> = config::Map::new();
    let mut put = |key: &str, var: &str, kind: config::ValueKind| {
        let origin = format!("environment variable {var}");
        out.insert(key.to_string(), config::Value::new(Some(&origin), kind));
    };

    if let Some(v) = get("API_SERVER") {
        put("api.server", "API_SERVER", v.into());
    }
    if let Some(v) = get("AUTH_ENABLED") {
        let b = parse_go_bool(v).ok_or_else(|| {
            ConfigError::invalid(
                "AUTH_ENABLED",
                format!("{v:?} is not a boolean (api.auth_enabled)"),
            )
        })?;
        put("api.auth_enabled", "AUTH_ENABLED", b.into());
    }
    let host = get("MSG_BROKER_HOST");
    let port = get("MSG_BROKER_PORT");
    if host.is_some() || port.is_some() {
        let host = host.unwrap_or("127.0.0.1");
        let port = match port {
            Some(p) => p.parse::<u16>().map_err(|_| {
                ConfigError::invalid(
                    "MSG_BROKER_PORT",
                    format!("{p:?} is not a port number (nats.urls)"),
                )
            })?,
            None => 4222,
        };
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        let url = format!("nats://{host}:{port}");
        put("nats.urls", "MSG_BROKER_HOST", vec![url].into());
    }
    if let Some(v) = get("MSG_BROKER_USER") {
        put("nats.user", "MSG_BROKER_USER", v.into());
    }
    if let Some(v) = env.get("MSG_BROKER_PASSWORD").filter(|v| !v.is_empty()) {
        put("nats.password", "MSG_BROKER_PASSWORD", v.as_str().into());
    }
    if let Some(v) = env.get("ENCRYPTION_KEY").filter(|v| !v.is_empty()) {
        put("encryption_key", "ENCRYPTION_KEY", v.as_str().into());
    }
    if let Some(v) = get("VERBOSE") {
        let b = parse_go_bool(v)
            .ok_or_else(|| ConfigError::invalid("VERBOSE", format!("{v:?} is not a boolean")))?;
        if b {
            put("log.level", "VERBOSE", "debug".into());
        }
    }
    for r in registry::CONTROLLERS
        .iter()
        .flat_map(|c| c.reconcilers.iter())
    {
        if let Some(v) = get(r.concurrency_env) {
            let n = v.parse::<i64>().map_err(|_| {
                ConfigError::invalid(
                    r.concurrency_env,
                    format!("{v:?} is not a number (reconcilers.concurrency.{})", r.name),
                )
            })?;
            put(
                &format!("reconcilers.concurrency.{}", r.name),
                r.concurrency_env,
                n.into(),
            );
        }
    }

    // The manager's own variables. `config::Environment` lowercases keys, which would lose the
    // spelling of reconciler names, so per-reconciler concurrency is mapped here (after
    // Threeport's names, so it wins over them).
    let prefix = format!("{ENV_PREFIX}{ENV_SEPARATOR}");
    let conc_prefix = format!("{prefix}RECONCILERS{ENV_SEPARATOR}CONCURRENCY{ENV_SEPARATOR}");
    let mut rest = config::Map::new();
    let mut keys: Vec<&String> = env.keys().collect();
    keys.sort();
    for var in keys {
        let value = &env[var];
        let upper = var.to_ascii_uppercase();
        if let Some(name) = upper.strip_prefix(&conc_prefix) {
            if value.trim().is_empty() {
                continue;
            }
            let spec = find_reconciler(name).ok_or_else(|| {
                ConfigError::invalid(
                    var.as_str(),
                    "unknown reconciler (see `threeport-manager list` for the names)",
                )
            })?;
            put(
                &format!("reconcilers.concurrency.{}", spec.name),
                var,
                config::ValueKind::String(value.trim().to_string()),
            );
        } else if upper.starts_with(&prefix) {
            rest.insert(var.clone(), value.clone());
        }
    }
    Ok((out, rest))
}

/// Turn a `config` crate error into one naming the field, without secrets.
fn map_config_error(e: config::ConfigError, file: Option<&Path>) -> ConfigError {
    fn inner_message(e: &config::ConfigError) -> String {
        match e {
            config::ConfigError::At { error, .. } => inner_message(error),
            config::ConfigError::Type {
                unexpected,
                expected,
                ..
            } => {
                format!("invalid type: {unexpected}, expected {expected}")
            }
            other => other.to_string(),
        }
    }
    fn with_unknown_field(field: Option<&str>, message: String) -> ConfigError {
        // serde: "unknown field `foo`, expected one of `a`, `b`"
        if let Some(rest) = message.strip_prefix("unknown field `") {
            if let Some((name, tail)) = rest.split_once('`') {
                let path = match field {
                    Some(f) if !f.is_empty() => format!("{f}.{name}"),
                    _ => name.to_string(),
                };
                let expected = tail.trim_start_matches(',').trim();
                return ConfigError::invalid(path, format!("unknown key ({expected})"));
            }
        }
        match field {
            Some(f) if !f.is_empty() => ConfigError::invalid(f, message),
            _ => ConfigError::invalid("config", message),
        }
    }
    match &e {
        config::ConfigError::At { key, .. } | config::ConfigError::Type { key, .. } => {
            with_unknown_field(key.as_deref(), inner_message(&e))
        }
        config::ConfigError::Message(m) => with_unknown_field(None, m.clone()),
        config::ConfigError::NotFound(k) => ConfigError::invalid(k.as_str(), "missing"),
        other => {
            // File parse errors: keep the location and the reason, never the quoted source
            // line (it may hold a secret).
            let text = other.to_string();
            let lines: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            let message = match (lines.first(), lines.last()) {
                (Some(first), Some(last)) if lines.len() > 1 && !last.contains('|') => {
                    format!("{first}: {last}")
                }
                (Some(first), _) => first.to_string(),
                _ => "cannot be parsed".to_string(),
            };
            ConfigError::File {
                path: file
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "(none)".into()),
                message,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// serde helpers
// ---------------------------------------------------------------------------------------------

/// Durations as humantime strings (`"5s"`, `"2m"`, `"1h 30m"`); `0` means zero.
mod duration_str {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::fmt_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        let t = s.trim();
        if t == "0" {
            return Ok(Duration::ZERO);
        }
        humantime::parse_duration(t).map_err(|_| {
            serde::de::Error::custom(format!(
                "{s:?} is not a duration (use e.g. \"500ms\", \"5s\", \"2m\", \"1h 30m\")"
            ))
        })
    }
}

fn fmt_duration(d: Duration) -> String {
    if d.is_zero() {
        "0s".into()
    } else {
        humantime::format_duration(d).to_string()
    }
}

fn de_socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let s = String::deserialize(d)?;
    s.trim().parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "{s:?} is not a socket address (ip:port, e.g. \"0.0.0.0:8081\")"
        ))
    })
}

/// A list of strings, or one comma-separated string (as environment variables give it).
fn de_string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of strings or a comma-separated string")
        }

        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok(s.split(',').map(|p| p.trim().to_string()).collect())
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element::<String>()? {
                out.push(item);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

/// NATS URLs with any password in the user-info replaced by `<redacted>`.
fn ser_redacted_urls<S: Serializer>(urls: &[String], s: S) -> Result<S::Ok, S::Error> {
    let redacted: Vec<String> = urls.iter().map(|u| redact_url(u)).collect();
    redacted.serialize(s)
}

/// `nats://user:pass@host` -> `nats://user:<redacted>@host`; a lone user-info (a token) is
/// redacted whole.
pub fn redact_url(u: &str) -> String {
    let Some((scheme, rest)) = u.split_once("://") else {
        return u.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return u.to_string();
    };
    let userinfo = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:{REDACTED}"),
        None => REDACTED.to_string(),
    };
    format!("{scheme}://{userinfo}@{host}{path}")
}

// ---------------------------------------------------------------------------------------------
// TOML output (the effective config has only tables, scalars and arrays of scalars)
// ---------------------------------------------------------------------------------------------

fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        serde_json::Value::String(k.to_string()).to_string()
    }
}

fn toml_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Array(items) => {
            format!(
                "[{}]",
                items.iter().map(toml_value).collect::<Vec<_>>().join(", ")
            )
        }
        serde_json::Value::Number(n) if n.is_f64() => {
            let s = n.to_string();
            if s.contains(['.', 'e', 'E']) {
                s
            } else {
                format!("{s}.0")
            }
        }
        // Strings: JSON escapes are valid TOML basic-string escapes.
        other => other.to_string(),
    }
}

fn emit_toml_table(out: &mut String, path: &str, map: &serde_json::Map<String, serde_json::Value>) {
    for (k, v) in map {
        match v {
            serde_json::Value::Object(_) => {}
            serde_json::Value::Null => out.push_str(&format!("# {} is unset\n", toml_key(k))),
            other => out.push_str(&format!("{} = {}\n", toml_key(k), toml_value(other))),
        }
    }
    for (k, v) in map {
        if let serde_json::Value::Object(sub) = v {
            let sub_path = if path.is_empty() {
                toml_key(k)
            } else {
                format!("{path}.{}", toml_key(k))
            };
            out.push_str(&format!("\n[{sub_path}]\n"));
            emit_toml_table(out, &sub_path, sub);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY32: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes

    struct Fixture {
        _dir: tempfile::TempDir,
        sources: LoadSources,
    }

    fn fixture(
        file: Option<(&str, &str)>,
        env: &[(&str, &str)],
        overrides: CliOverrides,
    ) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = file.map(|(name, text)| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write config file");
            path
        });
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Fixture {
            _dir: dir,
            sources: LoadSources {
                file,
                env,
                overrides,
            },
        }
    }

    fn load(
        file: Option<&str>,
        env: &[(&str, &str)],
        overrides: CliOverrides,
    ) -> Result<Config, ConfigError> {
        let f = fixture(file.map(|t| ("config.toml", t)), env, overrides);
        Config::load(&f.sources)
    }

    fn toml(text: &str) -> Result<Config, ConfigError> {
        load(Some(text), &[], CliOverrides::default())
    }

    fn env(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        load(None, vars, CliOverrides::default())
    }

    #[track_caller]
    fn assert_invalid(result: Result<Config, ConfigError>, field: &str, needle: &str) {
        match result {
            Ok(_) => panic!("expected an error naming {field}, got Ok"),
            Err(e) => {
                assert_eq!(e.field(), Some(field), "wrong field in: {e}");
                let text = e.to_string();
                assert!(
                    text.starts_with(&format!("{field}: ")),
                    "message does not start with the field: {text}"
                );
                assert!(
                    text.contains(needle),
                    "message {text:?} does not contain {needle:?}"
                );
            }
        }
    }

    #[test]
    fn defaults_load_and_validate() {
        let c = load(None, &[], CliOverrides::default()).expect("defaults");
        assert_eq!(c, Config::default());
        assert_eq!(
            c.api.server,
            "threeport-api-server.threeport-control-plane.svc.cluster.local"
        );
        assert!(c.api.auth_enabled);
        assert_eq!(
            c.api.cert_file,
            PathBuf::from("/etc/threeport/cert/tls.crt")
        );
        assert_eq!(c.api.key_file, PathBuf::from("/etc/threeport/cert/tls.key"));
        assert_eq!(c.api.ca_file, PathBuf::from("/etc/threeport/ca/tls.crt"));
        assert_eq!(c.api.connect_timeout, Duration::from_secs(5));
        assert_eq!(c.api.request_timeout, Duration::from_secs(30));
        assert_eq!(c.nats.urls, vec!["nats://127.0.0.1:4222".to_string()]);
        assert_eq!(c.nats.client_name, "threeport-manager");
        assert_eq!(
            c.admin.listen,
            "0.0.0.0:8081".parse::<SocketAddr>().expect("addr")
        );
        assert_eq!(c.controllers, vec!["*".to_string()]);
        assert_eq!(c.reconcilers.default_concurrency, 4);
        assert_eq!(c.engine.backoff_base, Duration::from_secs(1));
        assert_eq!(c.engine.backoff_cap, Duration::from_secs(300));
        assert_eq!(c.engine.max_poison_attempts, 5);
        assert_eq!(c.engine.max_reconcile_attempts, 0);
        assert_eq!(c.engine.lock_renew_interval, Duration::from_secs(10));
        assert_eq!(c.engine.lock_takeover_after, Duration::from_secs(60));
        assert_eq!(c.engine.progress_interval, Duration::from_secs(10));
        assert_eq!(c.shutdown_timeout, Duration::from_secs(25));
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.log.level, "info");
        assert_eq!(c.telemetry.sampling_ratio, 1.0);
        assert!(c.encryption_key.is_none());
    }

    #[test]
    fn precedence_defaults_file_env_flags() {
        let file = r#"
            shutdown_timeout = "10s"
            [api]
            server = "file-api:1"
            [nats]
            urls = ["nats://file:4222"]
            [log]
            level = "warn"
            [reconcilers]
            default_concurrency = 2
            [engine]
            backoff_cap = "1m"
        "#;
        // File over defaults.
        let c = load(Some(file), &[], CliOverrides::default()).expect("file");
        assert_eq!(c.api.server, "file-api:1");
        assert_eq!(c.nats.urls, vec!["nats://file:4222"]);
        assert_eq!(c.shutdown_timeout, Duration::from_secs(10));
        assert_eq!(c.log.level, "warn");
        assert_eq!(c.reconcilers.default_concurrency, 2);
        assert_eq!(c.engine.backoff_cap, Duration::from_secs(60));
        assert_eq!(
            c.engine.backoff_base,
            Duration::from_secs(1),
            "untouched keys keep defaults"
        );

        // Env over file.
        let vars = [
            ("API_SERVER", "env-api:2"),
            ("MSG_BROKER_HOST", "nats-js.example"),
            ("MSG_BROKER_PORT", "4223"),
            ("VERBOSE", "true"),
            ("THREEPORT_MANAGER__SHUTDOWN_TIMEOUT", "12s"),
            ("THREEPORT_MANAGER__RECONCILERS__DEFAULT_CONCURRENCY", "3"),
        ];
        let c = load(Some(file), &vars, CliOverrides::default()).expect("env");
        assert_eq!(c.api.server, "env-api:2");
        assert_eq!(c.nats.urls, vec!["nats://nats-js.example:4223"]);
        assert_eq!(c.log.level, "debug");
        assert_eq!(c.shutdown_timeout, Duration::from_secs(12));
        assert_eq!(c.reconcilers.default_concurrency, 3);
        assert_eq!(c.engine.backoff_cap, Duration::from_secs(60));

        // Flags over env.
        let flags = CliOverrides {
            api_server: Some("flag-api:3".into()),
            nats_urls: vec!["nats://flag-a:4222".into(), "tls://flag-b:4222".into()],
            log_level: Some("error".into()),
            log_format: Some(LogFormat::Pretty),
            shutdown_timeout: Some("14s".into()),
            concurrency: Some(5),
            admin_listen: Some("127.0.0.1:9000".into()),
            enable: Some("*".into()),
        };
        let c = load(Some(file), &vars, flags).expect("flags");
        assert_eq!(c.api.server, "flag-api:3");
        assert_eq!(c.nats.urls, vec!["nats://flag-a:4222", "tls://flag-b:4222"]);
        assert_eq!(c.log.level, "error");
        assert_eq!(c.log.format, LogFormat::Pretty);
        assert_eq!(c.shutdown_timeout, Duration::from_secs(14));
        assert_eq!(c.reconcilers.default_concurrency, 5);
        assert_eq!(
            c.admin.listen,
            "127.0.0.1:9000".parse::<SocketAddr>().expect("addr")
        );
        assert_eq!(
            c.engine.backoff_cap,
            Duration::from_secs(60),
            "file value survives"
        );
    }

    #[test]
    fn manager_env_wins_over_threeport_env() {
        let c = env(&[
            ("API_SERVER", "threeport-name"),
            ("THREEPORT_MANAGER__API__SERVER", "manager-name"),
            ("VERBOSE", "true"),
            ("THREEPORT_MANAGER__LOG__LEVEL", "trace"),
            ("WORKLOAD_INSTANCE_CONCURRENT_RECONCILES", "2"),
            (
                "THREEPORT_MANAGER__RECONCILERS__CONCURRENCY__WORKLOADINSTANCERECONCILER",
                "7",
            ),
        ])
        .expect("load");
        assert_eq!(c.api.server, "manager-name");
        assert_eq!(c.log.level, "trace");
        assert_eq!(c.concurrency_for("WorkloadInstanceReconciler"), 7);
    }

    #[test]
    fn threeport_api_server_and_auth_enabled() {
        assert_eq!(
            env(&[("API_SERVER", "api.local:1323")])
                .expect("load")
                .api
                .server,
            "api.local:1323"
        );
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            let c = load(
                Some("[api]\nauth_enabled = false\n"),
                &[("AUTH_ENABLED", t)],
                CliOverrides::default(),
            );
            assert!(c.expect("load").api.auth_enabled, "{t}");
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert!(
                !env(&[("AUTH_ENABLED", f)]).expect("load").api.auth_enabled,
                "{f}"
            );
        }
        assert_invalid(
            env(&[("AUTH_ENABLED", "yes")]),
            "AUTH_ENABLED",
            "not a boolean",
        );
        assert_invalid(
            env(&[("AUTH_ENABLED", "tRuE")]),
            "AUTH_ENABLED",
            "not a boolean",
        );
    }

    #[test]
    fn threeport_msg_broker() {
        let c = env(&[
            (
                "MSG_BROKER_HOST",
                "nats-js.threeport-control-plane.svc.cluster.local",
            ),
            ("MSG_BROKER_PORT", "4222"),
            ("MSG_BROKER_USER", "ctl"),
            ("MSG_BROKER_PASSWORD", "s3cret-pw"),
        ])
        .expect("load");
        assert_eq!(
            c.nats.urls,
            vec!["nats://nats-js.threeport-control-plane.svc.cluster.local:4222"]
        );
        assert_eq!(c.nats.user.as_deref(), Some("ctl"));
        assert_eq!(
            c.nats.password.as_ref().map(Secret::expose),
            Some("s3cret-pw")
        );

        // Host alone: NATS' default port. IPv6 is bracketed.
        assert_eq!(
            env(&[("MSG_BROKER_HOST", "nats")]).expect("load").nats.urls,
            vec!["nats://nats:4222"]
        );
        assert_eq!(
            env(&[("MSG_BROKER_HOST", "::1"), ("MSG_BROKER_PORT", "1")])
                .expect("load")
                .nats
                .urls,
            vec!["nats://[::1]:1"]
        );
        // Threeport's defaults are empty strings: empty means unset.
        let c = env(&[
            ("MSG_BROKER_HOST", ""),
            ("MSG_BROKER_PORT", ""),
            ("MSG_BROKER_USER", ""),
            ("MSG_BROKER_PASSWORD", ""),
        ])
        .expect("load");
        assert_eq!(c, Config::default());
        assert_invalid(
            env(&[("MSG_BROKER_HOST", "h"), ("MSG_BROKER_PORT", "http")]),
            "MSG_BROKER_PORT",
            "not a port",
        );
        assert_invalid(
            env(&[("MSG_BROKER_PORT", "70000")]),
            "MSG_BROKER_PORT",
            "not a port",
        );
    }

    #[test]
    fn threeport_encryption_key_and_verbose() {
        let c = env(&[("ENCRYPTION_KEY", KEY32)]).expect("load");
        assert_eq!(c.encryption_key.as_ref().map(Secret::expose), Some(KEY32));
        assert_eq!(
            c.encryption_key_bytes().expect("decode").map(|k| k.len()),
            Some(32)
        );

        assert_eq!(
            env(&[("VERBOSE", "true")]).expect("load").log.level,
            "debug"
        );
        assert_eq!(env(&[("VERBOSE", "1")]).expect("load").log.level, "debug");
        assert_eq!(
            env(&[("VERBOSE", "false")]).expect("load").log.level,
            "info"
        );
        assert_invalid(env(&[("VERBOSE", "on")]), "VERBOSE", "not a boolean");
    }

    #[test]
    fn threeport_concurrency_env_for_every_reconciler() {
        for (i, r) in registry::CONTROLLERS
            .iter()
            .flat_map(|c| c.reconcilers.iter())
            .enumerate()
        {
            let n = (i % 50 + 1).to_string();
            let c = env(&[(r.concurrency_env, n.as_str())]).expect("load");
            assert_eq!(
                c.concurrency_for(r.name),
                i % 50 + 1,
                "{}",
                r.concurrency_env
            );
            assert_eq!(c.reconcilers.concurrency.len(), 1);
        }
        assert_invalid(
            env(&[("WORKLOAD_INSTANCE_CONCURRENT_RECONCILES", "many")]),
            "WORKLOAD_INSTANCE_CONCURRENT_RECONCILES",
            "not a number",
        );
        assert_invalid(
            env(&[("WORKLOAD_INSTANCE_CONCURRENT_RECONCILES", "0")]),
            "reconcilers.concurrency.WorkloadInstanceReconciler",
            "not between 1 and 1024",
        );
    }

    #[test]
    fn manager_env_for_sections_lists_and_bools() {
        let c = env(&[
            ("THREEPORT_MANAGER__ENGINE__BACKOFF_BASE", "250ms"),
            ("THREEPORT_MANAGER__ENGINE__MAX_POISON_ATTEMPTS", "9"),
            (
                "THREEPORT_MANAGER__NATS__URLS",
                "nats://a:4222, nats://b:4222",
            ),
            ("THREEPORT_MANAGER__NATS__TLS__REQUIRED", "true"),
            ("THREEPORT_MANAGER__NATS__USER", "u"),
            ("THREEPORT_MANAGER__NATS__PASSWORD", "0077"),
            ("THREEPORT_MANAGER__CONTROLLERS", "*,-workload"),
            ("THREEPORT_MANAGER__ADMIN__LISTEN", "127.0.0.1:18081"),
            ("THREEPORT_MANAGER__LOG__FORMAT", "pretty"),
            ("THREEPORT_MANAGER__TELEMETRY__SAMPLING_RATIO", "0.25"),
            (
                "THREEPORT_MANAGER__TELEMETRY__OTLP_ENDPOINT",
                "http://otel:4317",
            ),
            ("THREEPORT_MANAGER__ENCRYPTION_KEY", KEY32),
            (
                "THREEPORT_MANAGER__RECONCILERS__CONCURRENCY__GATEWAY_INSTANCE_RECONCILER",
                "3",
            ),
            ("THREEPORT_MANAGER__API__AUTH_ENABLED", "false"),
            ("THREEPORT_MANAGER__API__REQUEST_TIMEOUT", "1m 30s"),
            ("NOT_OURS__ENGINE__BACKOFF_BASE", "nonsense"),
        ])
        .expect("load");
        assert_eq!(c.engine.backoff_base, Duration::from_millis(250));
        assert_eq!(c.engine.max_poison_attempts, 9);
        assert_eq!(c.nats.urls, vec!["nats://a:4222", "nats://b:4222"]);
        assert!(c.nats.tls.required);
        assert_eq!(
            c.nats.password.as_ref().map(Secret::expose),
            Some("0077"),
            "secrets are not parsed as numbers"
        );
        assert_eq!(c.controllers, vec!["*", "-workload"]);
        assert_eq!(c.admin.listen.port(), 18081);
        assert_eq!(c.log.format, LogFormat::Pretty);
        assert_eq!(c.telemetry.sampling_ratio, 0.25);
        assert_eq!(
            c.telemetry.otlp_endpoint.as_deref(),
            Some("http://otel:4317")
        );
        assert!(c.encryption_key.is_some());
        assert_eq!(c.concurrency_for("GatewayInstanceReconciler"), 3);
        assert!(!c.api.auth_enabled);
        assert_eq!(c.api.request_timeout, Duration::from_secs(90));

        assert_invalid(
            env(&[("THREEPORT_MANAGER__ENGINE__NOPE", "1")]),
            "engine.nope",
            "unknown key",
        );
        assert_invalid(
            env(&[("THREEPORT_MANAGER__RECONCILERS__CONCURRENCY__NOPE", "1")]),
            "THREEPORT_MANAGER__RECONCILERS__CONCURRENCY__NOPE",
            "unknown reconciler",
        );
    }

    #[test]
    fn reconciler_names_are_canonicalized() {
        let c = toml("[reconcilers.concurrency]\nworkloadinstancereconciler = 6\nWorkloadDefinitionReconciler = 2\n")
            .expect("load");
        assert_eq!(c.concurrency_for("WorkloadInstanceReconciler"), 6);
        assert_eq!(c.concurrency_for("WorkloadDefinitionReconciler"), 2);
        assert_eq!(c.concurrency_for("GatewayInstanceReconciler"), 4);
        assert!(c
            .reconcilers
            .concurrency
            .contains_key("WorkloadInstanceReconciler"));
        assert_invalid(
            toml("[reconcilers.concurrency]\nworkloadinstancereconciler = 6\nWorkloadInstanceReconciler = 2\n"),
            "reconcilers.concurrency.WorkloadInstanceReconciler",
            "more than once",
        );
    }

    #[test]
    fn validation_errors_name_the_field() {
        assert_invalid(
            toml("[engine]\nbackoff_base = \"abc\""),
            "engine.backoff_base",
            "\"abc\" is not a duration",
        );
        assert_invalid(
            toml("[engine]\nbackoff_base = \"10m\""),
            "engine.backoff_base",
            "must not exceed",
        );
        assert_invalid(
            toml("[engine]\nbackoff_cap = \"0\""),
            "engine.backoff_cap",
            "greater than 0",
        );
        assert_invalid(
            toml("[engine]\nmax_poison_attempts = 0"),
            "engine.max_poison_attempts",
            "at least 1",
        );
        assert_invalid(
            toml("[engine]\nmax_poison_attempts = -1"),
            "engine.max_poison_attempts",
            "",
        );
        assert_invalid(
            toml("[engine]\nlock_renew_interval = \"21s\""),
            "engine.lock_renew_interval",
            "third of engine.lock_takeover_after (1m)",
        );
        assert!(toml("[engine]\nlock_renew_interval = \"20s\"").is_ok());
        assert!(
            toml("[engine]\nlock_renew_interval = \"6m 40s\"\nlock_takeover_after = \"20m\"")
                .is_ok()
        );
        assert_invalid(
            toml("[engine]\nlock_takeover_after = \"20m 1s\""),
            "engine.lock_takeover_after",
            "bucket max age",
        );
        assert_invalid(
            toml("[engine]\nlock_takeover_after = \"0s\""),
            "engine.lock_takeover_after",
            "greater than 0",
        );
        assert_invalid(
            toml("[engine]\nlock_renew_interval = \"0s\""),
            "engine.lock_renew_interval",
            "greater than 0",
        );
        assert_invalid(
            toml("[engine]\nprogress_interval = \"30s\""),
            "engine.progress_interval",
            "AckWait",
        );
        assert_invalid(
            toml("[engine]\nprogress_interval = \"0s\""),
            "engine.progress_interval",
            "greater than 0",
        );
        assert_invalid(
            toml("[engine]\nfetch_expires = \"0s\""),
            "engine.fetch_expires",
            "greater than 0",
        );
        assert_invalid(
            toml("[engine]\nlock_conflict_delay = \"0s\""),
            "engine.lock_conflict_delay",
            "greater than 0",
        );
        assert!(toml("[engine]\nmax_reconcile_attempts = 0").is_ok());
        assert_invalid(
            toml("shutdown_timeout = \"0s\""),
            "shutdown_timeout",
            "greater than 0",
        );
        assert_invalid(
            toml("shutdown_timeout = 5"),
            "shutdown_timeout",
            "is not a duration",
        );
        assert_invalid(
            toml("[admin]\nlisten = \"localhost\""),
            "admin.listen",
            "not a socket address",
        );
        assert_invalid(
            toml("[api]\nserver = \"https://api:443\""),
            "api.server",
            "without a scheme",
        );
        assert_invalid(
            toml("[api]\nserver = \"\""),
            "api.server",
            "must not be empty",
        );
        assert_invalid(
            toml("[api]\nserver = \"api/v0\""),
            "api.server",
            "not host[:port]",
        );
        assert_invalid(
            toml("[api]\nconnect_timeout = \"0s\""),
            "api.connect_timeout",
            "greater than 0",
        );
        assert_invalid(
            toml("[api]\nrequest_timeout = \"0s\""),
            "api.request_timeout",
            "greater than 0",
        );
        assert_invalid(
            toml("[api]\ncert_file = \"\""),
            "api.cert_file",
            "auth_enabled",
        );
        assert!(toml("[api]\nauth_enabled = false\ncert_file = \"\"").is_ok());
        assert_invalid(
            toml("[api]\nauth_enabled = \"maybe\""),
            "api.auth_enabled",
            "",
        );
        assert_invalid(
            toml("[nats]\nurls = [\"nats://a:4222\", \"http://b:80\"]"),
            "nats.urls[1]",
            "must start with nats://, tls://, ws:// or wss://",
        );
        assert_invalid(toml("[nats]\nurls = []"), "nats.urls", "at least one");
        assert_invalid(toml("[nats]\nurls = [\"nats://\"]"), "nats.urls[0]", "");
        assert_invalid(
            toml("[nats]\npassword = \"pw\""),
            "nats.password",
            "nats.user",
        );
        assert_invalid(
            toml("[nats]\nuser = \"u\"\ntoken = \"tok\""),
            "nats.token",
            "cannot be combined",
        );
        assert_invalid(
            toml("[nats]\nuser = \"u\"\ncreds_file = \"/x.creds\""),
            "nats.creds_file",
            "cannot be combined",
        );
        assert_invalid(
            toml("[nats.tls]\ncert_file = \"/c.pem\""),
            "nats.tls",
            "together",
        );
        assert_invalid(
            toml("[nats]\nconnect_timeout = \"0s\""),
            "nats.connect_timeout",
            "greater than 0",
        );
        assert_invalid(
            toml("[nats]\nclient_name = \" \""),
            "nats.client_name",
            "must not be empty",
        );
        assert_invalid(
            toml("controllers = [\"nosuch\"]"),
            "controllers",
            "unknown controller \"nosuch\"",
        );
        assert_invalid(
            toml("controllers = [\"workload\", \"\"]"),
            "controllers",
            "empty entry",
        );
        if let Some(c) = registry::CONTROLLERS.iter().find(|c| !c.implemented()) {
            assert_invalid(
                toml(&format!("controllers = [\"{}\"]", c.name)),
                "controllers",
                "not implemented",
            );
        }
        assert_invalid(
            toml("[reconcilers]\ndefault_concurrency = 0"),
            "reconcilers.default_concurrency",
            "1 and 1024",
        );
        assert_invalid(
            toml("[reconcilers]\ndefault_concurrency = 1025"),
            "reconcilers.default_concurrency",
            "1 and 1024",
        );
        assert_invalid(
            toml("[reconcilers]\ndefault_concurrency = \"lots\""),
            "reconcilers.default_concurrency",
            "",
        );
        assert_invalid(
            toml("[reconcilers.concurrency]\nNopeReconciler = 2"),
            "reconcilers.concurrency.NopeReconciler",
            "unknown reconciler",
        );
        assert_invalid(
            toml("[reconcilers.concurrency]\nWorkloadInstanceReconciler = 0"),
            "reconcilers.concurrency.WorkloadInstanceReconciler",
            "1 and 1024",
        );
        assert_invalid(
            toml("[log]\nlevel = \"foo=notalevel\""),
            "log.level",
            "not a valid filter directive",
        );
        assert_invalid(
            toml("[log]\nformat = \"xml\""),
            "log.format",
            "not a log format",
        );
        assert_invalid(
            toml("[telemetry]\notlp_endpoint = \"ftp://otel\""),
            "telemetry.otlp_endpoint",
            "http",
        );
        assert_invalid(
            toml("[telemetry]\nsampling_ratio = 1.5"),
            "telemetry.sampling_ratio",
            "between 0.0 and 1.0",
        );
        assert_invalid(
            toml("[telemetry]\nservice_name = \"\""),
            "telemetry.service_name",
            "must not be empty",
        );
        let flags = CliOverrides {
            admin_listen: Some("nope".into()),
            ..Default::default()
        };
        assert_invalid(
            load(None, &[], flags),
            "admin.listen",
            "not a socket address",
        );
        let flags = CliOverrides {
            enable: Some("workload,,gateway".into()),
            ..Default::default()
        };
        assert_invalid(load(None, &[], flags), "controllers", "empty entry");
        let flags = CliOverrides {
            concurrency: Some(0),
            ..Default::default()
        };
        assert_invalid(
            load(None, &[], flags),
            "reconcilers.default_concurrency",
            "1 and 1024",
        );
    }

    #[test]
    fn encryption_key_errors_do_not_echo_the_key() {
        let bad = "not-base64-but-secret!!";
        let e = env(&[("ENCRYPTION_KEY", bad)]).expect_err("invalid");
        assert_eq!(e.field(), Some("encryption_key"));
        assert!(!e.to_string().contains(bad), "{e}");
        let short = "c2hvcnQtc2VjcmV0"; // "short-secret", 12 bytes
        let e = env(&[("ENCRYPTION_KEY", short)]).expect_err("wrong length");
        assert_eq!(e.field(), Some("encryption_key"));
        assert!(e.to_string().contains("12 bytes"), "{e}");
        assert!(!e.to_string().contains(short), "{e}");
        for n in [16usize, 24, 32] {
            use base64::Engine as _;
            let key = base64::engine::general_purpose::STANDARD.encode(vec![7u8; n]);
            assert!(env(&[("ENCRYPTION_KEY", &key)]).is_ok(), "{n}");
        }
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert_invalid(toml("nope = 1"), "nope", "unknown key");
        assert_invalid(
            toml("[engine]\nbackof_base = \"1s\""),
            "engine.backof_base",
            "unknown key",
        );
        assert_invalid(
            toml("[nats.tls]\nverify = true"),
            "nats.tls.verify",
            "unknown key",
        );
        assert_invalid(toml("[bogus]\nx = 1"), "bogus", "unknown key");
    }

    #[test]
    fn secrets_are_redacted_everywhere() {
        let file = format!(
            "encryption_key = \"{KEY32}\"\n[nats]\nurls = [\"nats://u:url-pass@h:4222\"]\nuser = \"u\"\npassword = \"nats-pass-123\"\n"
        );
        let mut c = toml(&file).expect("load");
        c.nats.token = Some(Secret::new("tok-456"));
        let secrets = [KEY32, "nats-pass-123", "tok-456", "url-pass"];
        let debug = format!("{c:?}");
        let json = c.redacted_json().to_string();
        let toml_out = c.to_effective_toml();
        for text in [&debug, &json, &toml_out] {
            for s in secrets {
                // Debug shows the URL as given, the serialized forms redact it.
                if s == "url-pass" && text == &debug {
                    continue;
                }
                assert!(!text.contains(s), "{s} leaked in {text}");
            }
            assert!(text.contains("<redacted>"), "{text}");
        }
        assert!(json.contains("nats://u:<redacted>@h:4222"), "{json}");
        assert_eq!(
            c.nats.password.as_ref().map(Secret::expose),
            Some("nats-pass-123")
        );
        assert_eq!(format!("{}", Secret::new("x")), "<redacted>");
        assert_eq!(redact_url("nats://token@h:1/p"), "nats://<redacted>@h:1/p");
        assert_eq!(redact_url("nats://h:1"), "nats://h:1");
    }

    #[test]
    fn file_parse_errors_do_not_quote_the_source() {
        let e =
            toml("[nats]\nuser = \"u\"\npassword = \"unterminated-secret\n").expect_err("syntax");
        assert!(matches!(e, ConfigError::File { .. }), "{e:?}");
        assert!(!e.to_string().contains("unterminated-secret"), "{e}");
        let f = fixture(
            Some(("c.yaml", "nats:\n  password: \"yaml-secret\n")),
            &[],
            CliOverrides::default(),
        );
        let e = Config::load(&f.sources).expect_err("syntax");
        assert!(!e.to_string().contains("yaml-secret"), "{e}");
    }

    #[test]
    fn yaml_and_toml_files() {
        let yaml = "api:\n  server: yaml-api:80\n  auth_enabled: false\nengine:\n  backoff_cap: 2m\ncontrollers:\n  - \"*\"\nreconcilers:\n  concurrency:\n    WorkloadInstanceReconciler: 8\n";
        for name in ["c.yaml", "c.yml", "C.YAML"] {
            let f = fixture(Some((name, yaml)), &[], CliOverrides::default());
            let c = Config::load(&f.sources).expect("yaml");
            assert_eq!(c.api.server, "yaml-api:80");
            assert!(!c.api.auth_enabled);
            assert_eq!(c.engine.backoff_cap, Duration::from_secs(120));
            assert_eq!(c.concurrency_for("WorkloadInstanceReconciler"), 8);
        }
        let f = fixture(
            Some(("c.yaml", "engine:\n  nope: 1\n")),
            &[],
            CliOverrides::default(),
        );
        assert_invalid(Config::load(&f.sources), "engine.nope", "unknown key");

        let f = fixture(Some(("c.json", "{}")), &[], CliOverrides::default());
        assert!(matches!(
            Config::load(&f.sources),
            Err(ConfigError::File { .. })
        ));
        let missing = LoadSources {
            file: Some(PathBuf::from("does/not/exist.toml")),
            ..Default::default()
        };
        let e = Config::load(&missing).expect_err("missing file");
        assert!(e.to_string().contains("cannot read"), "{e}");
    }

    #[test]
    fn effective_toml_loads_back() {
        let file = r#"
            controllers = ["*", "-gateway"]
            shutdown_timeout = "1m 5s"
            [api]
            server = "api:1323"
            [nats]
            urls = ["nats://a:1", "wss://b:2"]
            user = "me"
            creds_file = "/etc/nats.creds"
            [nats.tls]
            required = true
            [reconcilers]
            default_concurrency = 3
            [reconcilers.concurrency]
            WorkloadInstanceReconciler = 9
            [telemetry]
            otlp_endpoint = "https://otel:4318"
            sampling_ratio = 0.5
            [engine]
            backoff_base = "150ms"
        "#;
        let mut original = toml(file);
        // creds_file and user cannot be combined: drop the user.
        assert!(original.is_err());
        original = toml(&file.replace("user = \"me\"", ""));
        let original = original.expect("load");
        let text = original.to_effective_toml();
        let reloaded = toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(reloaded, original);
        let defaults = toml(&Config::default().to_effective_toml()).expect("defaults");
        assert_eq!(defaults, Config::default());
    }

    #[test]
    fn shipped_config_files_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let example = LoadSources {
            file: Some(dir.join("threeport-manager.example.toml")),
            ..Default::default()
        };
        let c = Config::load(&example).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c,
            Config::default(),
            "the example documents exactly the defaults"
        );
        let minimal = LoadSources {
            file: Some(dir.join("minimal.toml")),
            ..Default::default()
        };
        Config::load(&minimal).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn go_parse_bool() {
        for (s, b) in [
            ("1", true),
            ("t", true),
            ("True", true),
            ("0", false),
            ("F", false),
            ("False", false),
        ] {
            assert_eq!(parse_go_bool(s), Some(b));
        }
        for s in ["yes", "no", "", "tRUE", "2"] {
            assert_eq!(parse_go_bool(s), None);
        }
    }
}
