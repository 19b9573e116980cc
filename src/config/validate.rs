//! Validation after merging, section by section: first the checks each field gets from its
//! type ([`FieldCheck`], so a new setting of a known type needs no code here), then the
//! section's rules that a type cannot express.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::error::ConfigError;
use super::find_reconciler;
use super::redact::Secret;
use super::schema::{
    ApiConfig, AwsConfig, Config, EngineConfig, GatewayConfig, HelmConfig, LogConfig, LogFormat,
    NatsConfig, ObservabilityConfig, ReconcilersConfig, ResyncConfig, TelemetryConfig,
};
use super::serde_helpers::fmt_duration;
use crate::registry;

/// Max age of Threeport's lock buckets (spec 1.3/1.7): a lock not renewed within this expires.
pub const LOCK_BUCKET_MAX_AGE: Duration = Duration::from_secs(20 * 60);
/// AckWait of Threeport's durable consumers (JetStream default, spec 1.6).
pub const CONSUMER_ACK_WAIT: Duration = Duration::from_secs(30);
/// Upper bound for any per-reconciler worker count.
pub const MAX_CONCURRENCY: usize = 1024;

/// What a setting's type alone requires, wherever the setting is. `section!` implements it
/// for every section by checking each field in turn.
pub(super) trait FieldCheck {
    /// `path` is the field's key path (`engine.backoff_base`), which the error names.
    fn check(&self, _path: &str) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// No timeout, interval or delay here can be zero; `"0"` parses only so that this can say why.
impl FieldCheck for Duration {
    fn check(&self, path: &str) -> Result<(), ConfigError> {
        positive(path, *self)
    }
}

impl<T: FieldCheck> FieldCheck for Option<T> {
    fn check(&self, path: &str) -> Result<(), ConfigError> {
        match self {
            Some(value) => value.check(path),
            None => Ok(()),
        }
    }
}

// Any value of these types is acceptable as far as the type goes; the rules below say more
// for particular fields.
impl FieldCheck for String {}
impl FieldCheck for bool {}
impl FieldCheck for u32 {}
impl FieldCheck for usize {}
impl FieldCheck for f64 {}
impl FieldCheck for PathBuf {}
impl FieldCheck for SocketAddr {}
impl FieldCheck for Vec<String> {}
impl FieldCheck for Vec<super::nats_url::NatsUrl> {}
impl FieldCheck for BTreeMap<String, usize> {}
impl FieldCheck for Secret {}
impl FieldCheck for LogFormat {}

/// `engine` + `backoff_base` -> `engine.backoff_base`; top-level fields have no section.
pub(super) fn field_path(section: &str, field: &str) -> String {
    if section.is_empty() {
        field.to_string()
    } else {
        format!("{section}.{field}")
    }
}

/// All of [`Config::validate`]: section by section in the order of the file, each section's
/// checks by type before its rules, so that the rules may rely on every duration being
/// greater than 0 and the first error reported is the one nearest the top.
pub(super) fn validate(config: &mut Config) -> Result<(), ConfigError> {
    config.api.check("api")?;
    api(&config.api)?;
    config.nats.check("nats")?;
    nats(&config.nats)?;
    config.admin.check("admin")?;
    registry::resolve_enable(&config.controllers)
        .map_err(|e| ConfigError::invalid("controllers", e.to_string()))?;
    config.reconcilers.check("reconcilers")?;
    reconcilers(&mut config.reconcilers)?;
    config.engine.check("engine")?;
    engine(&config.engine)?;
    config.shutdown_timeout.check("shutdown_timeout")?;
    config.log.check("log")?;
    log(&config.log)?;
    config.telemetry.check("telemetry")?;
    telemetry(&config.telemetry)?;
    config.gateway.check("gateway")?;
    gateway(&config.gateway)?;
    config.helm.check("helm")?;
    helm(&config.helm)?;
    config.aws.check("aws")?;
    aws(&config.aws)?;
    config.observability.check("observability")?;
    observability(&config.observability)?;
    config.resync.check("resync")?;
    resync(&config.resync)?;
    // Never echo the key.
    if let Some(key) = &config.encryption_key {
        decode_encryption_key(key.expose())?;
    }
    // The whole tree again by type: it passes for everything listed above, and it checks a
    // field or section added to the schema but not to this list.
    config.check("")
}

fn api(api: &ApiConfig) -> Result<(), ConfigError> {
    let server = api.server.trim();
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
    // The client builds `http(s)://<server>`: whatever that URL parser refuses (a port above
    // 65535, a malformed IPv6 address) is refused here, naming the field, not at start-up.
    if let Err(e) = url::Url::parse(&format!("http://{server}")) {
        return Err(ConfigError::invalid(
            "api.server",
            format!("{server:?} is not host[:port]: {e}"),
        ));
    }
    if api.auth_enabled {
        for (field, path) in [
            ("api.cert_file", &api.cert_file),
            ("api.key_file", &api.key_file),
            ("api.ca_file", &api.ca_file),
        ] {
            if path.as_os_str().is_empty() {
                return Err(ConfigError::invalid(
                    field,
                    "must be set when api.auth_enabled is true",
                ));
            }
        }
    }
    Ok(())
}

fn nats(nats: &NatsConfig) -> Result<(), ConfigError> {
    if nats.urls.is_empty() {
        return Err(ConfigError::invalid(
            "nats.urls",
            "must list at least one server",
        ));
    }
    for (i, u) in nats.urls.iter().enumerate() {
        validate_nats_url(u.expose())
            .map_err(|m| ConfigError::invalid(format!("nats.urls[{i}]"), m))?;
    }
    let other_auth = nats.user.is_some() || nats.token.is_some() || nats.creds_file.is_some();
    super::nats_url::url_credentials(&nats.urls, other_auth)
        .map_err(|(i, m)| ConfigError::invalid(format!("nats.urls[{i}]"), m))?;
    if nats.password.is_some() && nats.user.is_none() {
        return Err(ConfigError::invalid(
            "nats.password",
            "is set but nats.user is not",
        ));
    }
    if nats.token.is_some() && (nats.user.is_some() || nats.creds_file.is_some()) {
        return Err(ConfigError::invalid(
            "nats.token",
            "cannot be combined with nats.user/nats.password or nats.creds_file",
        ));
    }
    if nats.user.is_some() && nats.creds_file.is_some() {
        return Err(ConfigError::invalid(
            "nats.creds_file",
            "cannot be combined with nats.user/nats.password",
        ));
    }
    if nats.tls.cert_file.is_some() != nats.tls.key_file.is_some() {
        return Err(ConfigError::invalid(
            "nats.tls",
            "cert_file and key_file must be set together",
        ));
    }
    if nats.client_name.trim().is_empty() {
        return Err(ConfigError::invalid(
            "nats.client_name",
            "must not be empty",
        ));
    }
    Ok(())
}

/// Also stores every name in Threeport's spelling.
fn reconcilers(reconcilers: &mut ReconcilersConfig) -> Result<(), ConfigError> {
    check_concurrency(
        "reconcilers.default_concurrency",
        reconcilers.default_concurrency,
    )?;
    let mut canonical = BTreeMap::new();
    for (name, n) in &reconcilers.concurrency {
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
    reconcilers.concurrency = canonical;
    Ok(())
}

fn engine(e: &EngineConfig) -> Result<(), ConfigError> {
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
    if e.lock_takeover_after > LOCK_BUCKET_MAX_AGE {
        return Err(ConfigError::invalid(
            "engine.lock_takeover_after",
            format!(
                "must not exceed the lock bucket max age ({}); at that value takeovers are off",
                fmt_duration(LOCK_BUCKET_MAX_AGE)
            ),
        ));
    }
    if e.lock_reclaim_after > LOCK_BUCKET_MAX_AGE {
        return Err(ConfigError::invalid(
            "engine.lock_reclaim_after",
            format!(
                "must not exceed the lock bucket max age ({})",
                fmt_duration(LOCK_BUCKET_MAX_AGE)
            ),
        ));
    }
    // A holder gives its lock up once renewals (or its heartbeat) have failed for the age at
    // which others may take it, minus one interval; at least one renewal and one heartbeat
    // must be allowed to fail before that.
    let renew_limit = e.lock_takeover_after.min(e.lock_reclaim_after);
    if e.lock_renew_interval > renew_limit / 3 {
        let limit_field = if e.lock_reclaim_after <= e.lock_takeover_after {
            "engine.lock_reclaim_after"
        } else {
            "engine.lock_takeover_after"
        };
        return Err(ConfigError::invalid(
            "engine.lock_renew_interval",
            format!(
                "must be at most a third of {limit_field} ({}), i.e. at most {}",
                fmt_duration(renew_limit),
                fmt_duration(renew_limit / 3)
            ),
        ));
    }
    if e.heartbeat_interval > e.lock_reclaim_after / 3 {
        return Err(ConfigError::invalid(
            "engine.heartbeat_interval",
            format!(
                "must be at most a third of engine.lock_reclaim_after ({}), i.e. at most {}",
                fmt_duration(e.lock_reclaim_after),
                fmt_duration(e.lock_reclaim_after / 3)
            ),
        ));
    }
    if e.progress_interval >= CONSUMER_ACK_WAIT {
        return Err(ConfigError::invalid(
            "engine.progress_interval",
            format!(
                "must be less than the consumers' AckWait ({})",
                fmt_duration(CONSUMER_ACK_WAIT)
            ),
        ));
    }
    Ok(())
}

fn log(log: &LogConfig) -> Result<(), ConfigError> {
    if let Err(err) = tracing_subscriber::EnvFilter::builder().parse(&log.level) {
        return Err(ConfigError::invalid(
            "log.level",
            format!("{:?} is not a valid filter directive: {err}", log.level),
        ));
    }
    Ok(())
}

fn telemetry(telemetry: &TelemetryConfig) -> Result<(), ConfigError> {
    if let Some(endpoint) = &telemetry.otlp_endpoint {
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
    if telemetry.service_name.trim().is_empty() {
        return Err(ConfigError::invalid(
            "telemetry.service_name",
            "must not be empty",
        ));
    }
    let ratio = telemetry.sampling_ratio;
    if !(0.0..=1.0).contains(&ratio) {
        return Err(ConfigError::invalid(
            "telemetry.sampling_ratio",
            format!("{ratio} is not between 0.0 and 1.0"),
        ));
    }
    Ok(())
}

fn gateway(gateway: &GatewayConfig) -> Result<(), ConfigError> {
    match url::Url::parse(&gateway.acme_server) {
        Ok(u) if u.scheme() == "https" && u.has_host() => {}
        _ => {
            return Err(ConfigError::invalid(
                "gateway.acme_server",
                "must be an https:// URL (an ACME directory)",
            ))
        }
    }
    for (field, value) in [
        ("gateway.route53_region", &gateway.route53_region),
        (
            "gateway.cert_manager_version",
            &gateway.cert_manager_version,
        ),
        (
            "gateway.cert_manager_contact",
            &gateway.cert_manager_contact,
        ),
        ("gateway.external_dns_image", &gateway.external_dns_image),
        (
            "gateway.external_dns_version",
            &gateway.external_dns_version,
        ),
    ] {
        if value.trim().is_empty() {
            return Err(ConfigError::invalid(field, "must not be empty"));
        }
    }
    Ok(())
}

fn helm(helm: &HelmConfig) -> Result<(), ConfigError> {
    if helm.binary.as_os_str().is_empty() {
        return Err(ConfigError::invalid("helm.binary", "must not be empty"));
    }
    if helm
        .post_renderer
        .as_ref()
        .is_some_and(|p| !p.is_absolute())
    {
        return Err(ConfigError::invalid(
            "helm.post_renderer",
            "must be an absolute path (helm runs it from a temporary folder)",
        ));
    }
    positive("helm.timeout", helm.timeout)?;
    positive("helm.stop_grace", helm.stop_grace)?;
    positive("helm.namespace_wait", helm.namespace_wait)
}

fn aws(aws: &AwsConfig) -> Result<(), ConfigError> {
    if let Some(endpoint) = &aws.endpoint_url {
        let parsed = url::Url::parse(endpoint)
            .map_err(|e| ConfigError::invalid("aws.endpoint_url", format!("is not a URL ({e})")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConfigError::invalid(
                "aws.endpoint_url",
                "must be an http:// or https:// URL",
            ));
        }
    }
    if aws.role_session_name.trim().is_empty() {
        return Err(ConfigError::invalid(
            "aws.role_session_name",
            "must not be empty",
        ));
    }
    Ok(())
}

fn observability(o: &ObservabilityConfig) -> Result<(), ConfigError> {
    for (field, repo) in [
        ("observability.grafana_repo", &o.grafana_repo),
        (
            "observability.prometheus_community_repo",
            &o.prometheus_community_repo,
        ),
    ] {
        // The same rule the helm-workload controller applies to a definition's Repo.
        crate::reconcilers::helm_workload::release::chart_source(repo, "chart").map_err(|_| {
            ConfigError::invalid(
                field,
                "must be an http(s):// chart repository or an oci:// registry",
            )
        })?;
    }
    Ok(())
}

fn resync(resync: &ResyncConfig) -> Result<(), ConfigError> {
    // Under 2 s the lease TTL (1 s at least) could not hand over within one interval.
    if !(Duration::from_secs(2)..=Duration::from_secs(24 * 3600)).contains(&resync.interval) {
        return Err(ConfigError::invalid(
            "resync.interval",
            "must be between 2s and 24h",
        ));
    }
    if !(0.0..=0.5).contains(&resync.jitter) {
        return Err(ConfigError::invalid(
            "resync.jitter",
            "must be a fraction between 0 and 0.5",
        ));
    }
    if !(1..=10_000).contains(&resync.page_size) {
        return Err(ConfigError::invalid(
            "resync.page_size",
            "must be between 1 and 10000",
        ));
    }
    Ok(())
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

pub(super) fn decode_encryption_key(key: &str) -> Result<Vec<u8>, ConfigError> {
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
