//! What `/configz` and `check-config` print: secrets redacted, and TOML that loads back.

use super::{toml, KEY32};
use crate::config::*;

#[test]
fn secrets_are_redacted_everywhere() {
    let file =
        format!("encryption_key = \"{KEY32}\"\n[nats]\nurls = [\"nats://u:url-pass@h:4222\"]\n");
    let mut c = toml(&file).expect("load");
    // Settings validation would refuse next to URL credentials; set in code, they must still
    // never be printed.
    c.nats.user = Some("u".into());
    c.nats.password = Some(Secret::new("nats-pass-123"));
    c.nats.token = Some(Secret::new("tok-456"));
    let secrets = [KEY32, "nats-pass-123", "tok-456", "url-pass"];
    let debug = format!("{c:?}");
    let json = c.redacted_json().to_string();
    let toml_out = c.to_effective_toml();
    for text in [&debug, &json, &toml_out] {
        for s in secrets {
            assert!(!text.contains(s), "{s} leaked in {text}");
        }
        assert!(text.contains("<redacted>"), "{text}");
    }
    assert!(debug.contains("nats://u:<redacted>@h:4222"), "{debug}");
    assert!(json.contains("nats://u:<redacted>@h:4222"), "{json}");
    assert_eq!(
        c.nats.password.as_ref().map(Secret::expose),
        Some("nats-pass-123")
    );
    assert_eq!(format!("{}", Secret::new("x")), "<redacted>");
    assert_eq!(redact_url("nats://token@h:1/p"), "nats://<redacted>@h:1/p");
    assert_eq!(redact_url("nats://h:1"), "nats://h:1");
    // A `/` in the user-info does not end the redaction.
    assert_eq!(redact_url("nats://tok/en@h:1"), "nats://<redacted>@h:1");
    assert_eq!(
        redact_url("nats://u:p/w@h:1/x"),
        "nats://u:<redacted>@h:1/x"
    );
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
