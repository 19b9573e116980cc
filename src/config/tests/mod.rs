//! Behaviour through the public API: loading (`sources`), validation (`validate`), and what
//! is printed (`output`). Each input is a literal file text, env map and flags, never the
//! process environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::*;

mod output;
mod sources;
mod validate;

const KEY32: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes

struct Fixture {
    _dir: tempfile::TempDir,
    sources: LoadSources,
}

fn fixture(file: Option<(&str, &str)>, env: &[(&str, &str)], overrides: CliOverrides) -> Fixture {
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
    assert_eq!(c.engine.heartbeat_interval, Duration::from_secs(5));
    assert_eq!(c.engine.lock_reclaim_after, Duration::from_secs(30));
    assert_eq!(c.engine.lock_takeover_after, Duration::from_secs(20 * 60));
    assert_eq!(c.engine.progress_interval, Duration::from_secs(10));
    assert_eq!(c.shutdown_timeout, Duration::from_secs(25));
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.log.level, "info");
    assert_eq!(c.telemetry.sampling_ratio, 1.0);
    assert!(c.encryption_key.is_none());
}
