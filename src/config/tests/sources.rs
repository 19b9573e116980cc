//! Layering: defaults, file (TOML, YAML), Threeport's env names, `THREEPORT_MANAGER__*`, flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{assert_invalid, env, fixture, load, toml, KEY32};
use crate::config::*;
use crate::registry;

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
fn file_parse_errors_do_not_quote_the_source() {
    let e = toml("[nats]\nuser = \"u\"\npassword = \"unterminated-secret\n").expect_err("syntax");
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
