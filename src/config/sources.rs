//! Where settings come from, lowest precedence first: built-in defaults, the config file, the
//! environment (Threeport's own names, then `THREEPORT_MANAGER__<SECTION>__<KEY>`), flags.
//! Keys reach here as paths (`engine.backoff_base`), so the file and `THREEPORT_MANAGER__*`
//! need nothing per setting; only Threeport's names and the flags are listed one by one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::error::{map_config_error, ConfigError};
use super::find_reconciler;
use super::schema::{Config, LogFormat};
use crate::registry;

/// Prefix of the manager's own environment variables: `THREEPORT_MANAGER__ENGINE__BACKOFF_BASE`.
pub const ENV_PREFIX: &str = "THREEPORT_MANAGER";
/// Separator between the prefix, sections and keys of the manager's environment variables.
pub const ENV_SEPARATOR: &str = "__";

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

/// Defaults -> file -> env -> flags, deserialized into a [`Config`] that is not validated yet.
pub(super) fn merge(sources: &LoadSources) -> Result<Config, ConfigError> {
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
    let raw: serde_json::Value = merged
        .clone()
        .try_deserialize()
        .map_err(|e| map_config_error(e, sources.file.as_deref()))?;
    reject_coerced_values(&raw, &default_shape(), "")?;
    merged
        .try_deserialize()
        .map_err(|e| map_config_error(e, sources.file.as_deref()))
}

/// The JSON shape of the defaults, with one sample entry in each map whose values have a
/// fixed type (an empty map says nothing about its values).
fn default_shape() -> serde_json::Value {
    let mut shape = serde_json::to_value(Config::default()).unwrap_or_default();
    shape["reconcilers"]["concurrency"] = serde_json::json!({ "*": 1 });
    shape
}

/// The `config` crate converts between scalar types on deserialization: `4.5` for a worker
/// count becomes 5 (and `0.5` becomes 1, slipping past the ">= 1" rule), `2` for a boolean
/// becomes `true`. A value whose JSON kind differs from the default's is refused instead,
/// naming the field, as the environment's values already are. Strings are left to the typed
/// parse (environment variables and flags are always strings; durations are strings).
fn reject_coerced_values(
    raw: &serde_json::Value,
    shape: &serde_json::Value,
    path: &str,
) -> Result<(), ConfigError> {
    use serde_json::Value;
    match (raw, shape) {
        (Value::Object(raw), Value::Object(shape)) => {
            for (key, value) in raw {
                let expected = shape.get(key).or_else(|| shape.get("*"));
                if let Some(expected) = expected {
                    let field = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    reject_coerced_values(value, expected, &field)?;
                }
            }
            Ok(())
        }
        (Value::Number(n), Value::Number(d)) if d.is_u64() || d.is_i64() => {
            if n.is_u64() || n.is_i64() {
                Ok(())
            } else {
                Err(ConfigError::invalid(
                    path,
                    format!("expected a whole number, got {n}"),
                ))
            }
        }
        (Value::Number(n), Value::Bool(_)) => Err(ConfigError::invalid(
            path,
            format!("expected true or false, got {n}"),
        )),
        (Value::Bool(b), Value::Number(_)) => Err(ConfigError::invalid(
            path,
            format!("expected a number, got {b}"),
        )),
        _ => Ok(()),
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
        // A colon is an IPv6 address (bracketed in the URL) or a mistaken `host:port`.
        let host = if host.contains(':') && !host.starts_with('[') {
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(ConfigError::invalid(
                    "MSG_BROKER_HOST",
                    format!(
                        "{host:?} is not a host name or IP address; it takes the host only \
                         (e.g. nats.threeport-control-plane.svc), the port goes in \
                         MSG_BROKER_PORT (nats.urls)"
                    ),
                ));
            }
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

#[cfg(test)]
mod tests {
    use super::*;

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
