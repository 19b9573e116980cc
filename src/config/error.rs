//! Errors that name the field (a key path or an environment variable) and never hold a secret.

use std::path::Path;

/// Why the configuration cannot be used. Messages name the field and never contain a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A field (path such as `engine.backoff_base`, `nats.urls[0]`, or an env var name) is
    /// invalid.
    #[error("{field}: {message}")]
    Invalid {
        /// Key path (`engine.backoff_base`, `nats.urls[0]`) or environment variable name.
        field: String,
        /// What is wrong with the value (never the value of a secret).
        message: String,
    },
    /// The config file cannot be read or parsed.
    #[error("config file {path}: {message}")]
    File {
        /// The file's path as given (`--config` or `THREEPORT_MANAGER_CONFIG`).
        path: String,
        /// The IO or parse error.
        message: String,
    },
}

impl ConfigError {
    pub(super) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
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

/// Turn a `config` crate error into one naming the field, without secrets.
pub(super) fn map_config_error(e: config::ConfigError, file: Option<&Path>) -> ConfigError {
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
