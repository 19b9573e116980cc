//! Every rejected value names its field and keeps secrets out of the message.

use super::{assert_invalid, env, load, toml};
use crate::config::*;
use crate::registry;

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
        toml("[engine]\nlock_renew_interval = \"11s\""),
        "engine.lock_renew_interval",
        "third of engine.lock_reclaim_after (30s), i.e. at most 10s",
    );
    assert_invalid(
        toml("[engine]\nlock_renew_interval = \"10s\"\nlock_takeover_after = \"29s\""),
        "engine.lock_renew_interval",
        "third of engine.lock_takeover_after (29s)",
    );
    assert!(toml("[engine]\nlock_renew_interval = \"20s\"\nlock_reclaim_after = \"1m\"").is_ok());
    assert!(toml(
        "[engine]\nlock_renew_interval = \"6m 40s\"\nlock_reclaim_after = \"20m\"\nheartbeat_interval = \"1m\""
    )
    .is_ok());
    assert_invalid(
        toml("[engine]\nlock_reclaim_after = \"21m\""),
        "engine.lock_reclaim_after",
        "must not exceed the lock bucket max age (20m)",
    );
    assert_invalid(
        toml("[engine]\nheartbeat_interval = \"11s\""),
        "engine.heartbeat_interval",
        "at most a third of engine.lock_reclaim_after (30s), i.e. at most 10s",
    );
    assert_invalid(
        toml("[engine]\nheartbeat_interval = \"0s\""),
        "engine.heartbeat_interval",
        "greater than 0",
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
    assert_invalid(
        toml("[nats]\nurls = [\"nats://u:url-pass@a:4222\"]\nuser = \"u\"\npassword = \"p\""),
        "nats.urls[0]",
        "carries credentials while nats.user, nats.token or nats.creds_file is also set; use one",
    );
    assert_invalid(
        toml("[nats]\nurls = [\"nats://u:one@a:4222\", \"nats://u:two@b:4222\"]"),
        "nats.urls[1]",
        "carries credentials different from an earlier URL's",
    );
    assert!(toml("[nats]\nurls = [\"nats://u:same@a:4222\", \"nats://u:same@b:4222\"]").is_ok());
    // The message names the field, never the URL's password.
    let err = toml("[nats]\nurls = [\"nats://u:secret-9@a:4222\"]\ntoken = \"t\"")
        .expect_err("URL and token");
    assert!(!err.to_string().contains("secret-9"), "{err}");
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
fn sections_in_file_order_type_checks_before_rules() {
    assert_invalid(
        toml("[api]\nserver = \"https://api:443\"\nconnect_timeout = \"0s\""),
        "api.connect_timeout",
        "greater than 0",
    );
    assert_invalid(
        toml("[api]\nserver = \"https://api:443\"\n[engine]\nfetch_expires = \"0s\""),
        "api.server",
        "without a scheme",
    );
    assert_invalid(
        toml("[engine]\nmax_poison_attempts = 0\nfetch_expires = \"0s\""),
        "engine.fetch_expires",
        "greater than 0",
    );
}

#[test]
fn values_of_the_wrong_kind_are_refused_not_coerced() {
    // The `config` crate would round 4.5 to 5 and 0.5 to 1 (past the ">= 1" rule) and read
    // 2 as true.
    for (text, field, needle) in [
        (
            "[reconcilers]\ndefault_concurrency = 4.5",
            "reconcilers.default_concurrency",
            "whole number, got 4.5",
        ),
        (
            "[reconcilers]\ndefault_concurrency = 0.5",
            "reconcilers.default_concurrency",
            "whole number, got 0.5",
        ),
        (
            "[reconcilers.concurrency]\nWorkloadInstanceReconciler = 2.5",
            "reconcilers.concurrency.WorkloadInstanceReconciler",
            "whole number",
        ),
        (
            "[api]\nauth_enabled = 2",
            "api.auth_enabled",
            "true or false, got 2",
        ),
        (
            "[engine]\nmax_reconcile_attempts = true",
            "engine.max_reconcile_attempts",
            "expected a number, got true",
        ),
    ] {
        assert_invalid(toml(text), field, needle);
    }
    // The right kinds still load, and the environment's strings still parse.
    let c =
        toml("[reconcilers]\ndefault_concurrency = 4\n[api]\nauth_enabled = false").expect("load");
    assert_eq!(c.reconcilers.default_concurrency, 4);
    assert!(!c.api.auth_enabled);
    let c = env(&[("THREEPORT_MANAGER__RECONCILERS__DEFAULT_CONCURRENCY", "3")]).expect("env");
    assert_eq!(c.reconcilers.default_concurrency, 3);
}

#[test]
fn msg_broker_host_with_a_port_names_the_variable_and_its_form() {
    assert_invalid(
        env(&[("MSG_BROKER_HOST", "nats.example:4222")]),
        "MSG_BROKER_HOST",
        "the port goes in MSG_BROKER_PORT",
    );
    let c = env(&[("MSG_BROKER_HOST", "::1"), ("MSG_BROKER_PORT", "4223")]).expect("IPv6");
    assert_eq!(c.nats.urls, vec!["nats://[::1]:4223".to_string()]);
}

#[test]
fn gateway_values_are_checked_and_reach_the_reconcilers() {
    assert_invalid(
        toml("[gateway]\nacme_server = \"http://acme.example.com/directory\""),
        "gateway.acme_server",
        "https:// URL",
    );
    assert_invalid(
        toml("[gateway]\nexternal_dns_version = \" \""),
        "gateway.external_dns_version",
        "must not be empty",
    );
    let c = toml("[gateway]\nacme_server = \"https://acme-v02.api.letsencrypt.org/directory\"\ncert_manager_version = \"v1.16.2\"")
        .expect("load");
    let settings = crate::reconcilers::gateway::GatewaySettings::from(&c.gateway);
    assert_eq!(
        settings.template.acme_server,
        "https://acme-v02.api.letsencrypt.org/directory"
    );
    assert_eq!(settings.support.cert_manager_version, "v1.16.2");
    assert_eq!(
        settings.support.external_dns_version, "v0.13.5",
        "default kept"
    );
}

#[test]
fn resync_settings_are_bounded() {
    for (text, field, needle) in [
        (
            "[resync]\ninterval = \"1s\"",
            "resync.interval",
            "between 2s and 24h",
        ),
        (
            "[resync]\ninterval = \"25h\"",
            "resync.interval",
            "between 2s and 24h",
        ),
        ("[resync]\ngrace = \"0\"", "resync.grace", "greater than 0"),
        (
            "[resync]\njitter = 0.9",
            "resync.jitter",
            "between 0 and 0.5",
        ),
        (
            "[resync]\npage_size = 0",
            "resync.page_size",
            "between 1 and 10000",
        ),
        (
            "[resync]\npage_size = 20000",
            "resync.page_size",
            "between 1 and 10000",
        ),
    ] {
        assert_invalid(toml(text), field, needle);
    }
    let ok = toml("[resync]\nenabled = false\ninterval = \"2s\"\njitter = 0\npage_size = 1")
        .expect("valid");
    assert!(!ok.resync.enabled);
}
