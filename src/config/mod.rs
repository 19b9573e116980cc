//! One `Config` for the whole process, layered with the `config` crate:
//!
//! 1. built-in defaults (written next to each field in `schema`, via `#[serde(default)]`);
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
//!
//! The parts: `schema` (the sections, every field with its default), `sources` (file,
//! environment, flags, merged in that order), `validate` (checks by type, then the rules a type
//! cannot express), `error` (errors that name the field), `redact` ([`Secret`],
//! [`redact_url`]), `render` (the effective TOML) and `serde_helpers` (durations, socket
//! addresses, comma lists).
//!
//! # Adding a setting
//!
//! One edit: add `pub name: Type = default,` with its doc comment to the section's `section!`
//! block in `schema`. No other code needs to know about it: the field then loads from the file
//! and from `THREEPORT_MANAGER__<SECTION>__<NAME>`, shows in `/configz` and `check-config`, and
//! gets the checks of its type: a `Duration` (with `#[serde(with = "duration_str")]`) must be
//! greater than 0, and a [`Secret`] is redacted everywhere. A type the schema does not use yet
//! needs a one-line `impl FieldCheck` in `validate` (the compiler asks for it).
//!
//! A second edit only for what is particular to the setting: a rule its type cannot express (a
//! range, a relation to another field) in the section's function in `validate`; a Threeport
//! environment name in `sources::split_env`; a flag in [`CliOverrides`], `sources::merge` and
//! `cli`. A new section also gets its two lines in `validate::validate`. The example file
//! `config/threeport-manager.example.toml` documents every option; add the setting there too.

mod error;
mod nats_url;
mod redact;
mod render;
mod schema;
mod serde_helpers;
mod sources;
mod validate;

#[cfg(test)]
mod tests;

pub use error::ConfigError;
pub use nats_url::{url_credentials, NatsUrl, UrlCredentials};
pub use redact::{redact_url, Secret};
pub use schema::{
    AdminConfig, ApiConfig, AwsConfig, Config, EngineConfig, GatewayConfig, HelmConfig, LogConfig,
    LogFormat, NatsConfig, NatsTlsConfig, ObservabilityConfig, ReconcilersConfig, ResyncConfig,
    TelemetryConfig,
};
pub use sources::{CliOverrides, LoadSources, ENV_PREFIX, ENV_SEPARATOR};
pub use validate::{CONSUMER_ACK_WAIT, LOCK_BUCKET_MAX_AGE, MAX_CONCURRENCY};

use crate::registry::{self, ControllerSpec};

impl Config {
    /// Load, merge and validate: defaults -> file -> env -> flags.
    pub fn load(sources: &LoadSources) -> Result<Config, ConfigError> {
        let mut config = sources::merge(sources)?;
        config.validate()?;
        Ok(config)
    }

    /// Check every setting (by its type, then the rules a type cannot express), and
    /// canonicalize reconciler names.
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        validate::validate(self)
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
            .map(|k| validate::decode_encryption_key(k.expose()))
            .transpose()
    }

    /// The effective configuration as JSON, secrets replaced by `<redacted>` (for `/configz`).
    pub fn redacted_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// The effective configuration as TOML, secrets replaced by `<redacted>`; unset optional
    /// keys appear as comments. The output loads back as a config file.
    pub fn to_effective_toml(&self) -> String {
        render::effective_toml(&self.redacted_json())
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
