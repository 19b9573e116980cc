//! The real binary, as an operator runs it: exit codes, stdout/stderr, redaction.
//! Every child gets an empty environment (plus PATH) so the machine's variables do not leak in.

use std::path::Path;
use std::process::{Command, Output};

const KEY32: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn manager(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_threeport-manager"));
    cmd.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd.args(args).envs(env.iter().copied());
    cmd.output().expect("run threeport-manager")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path.to_str().expect("utf-8 temp path").to_string()
}

#[track_caller]
fn assert_invalid(o: &Output, field: &str) {
    assert_eq!(
        o.status.code(),
        Some(2),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
    let err = stderr(o);
    assert!(
        err.starts_with(&format!(
            "threeport-manager: invalid configuration: {field}"
        )),
        "stderr does not name {field}: {err}"
    );
}

#[test]
fn help_and_version() {
    let o = manager(&["--help"], &[]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    for word in [
        "list",
        "check-config",
        "run",
        "--config",
        "--enable",
        "--nats-url",
        "--log-format",
    ] {
        assert!(out.contains(word), "--help does not mention {word}: {out}");
    }
    let o = manager(&["--version"], &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).starts_with("threeport-manager "),
        "{}",
        stdout(&o)
    );
}

#[test]
fn usage_errors_exit_2() {
    let o = manager(&["--no-such-flag"], &[]);
    assert_eq!(o.status.code(), Some(2));
    let o = manager(&["frobnicate"], &[]);
    assert_eq!(o.status.code(), Some(2));
    let o = manager(&["--log-format", "xml", "check-config"], &[]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn list_shows_every_controller() {
    let o = manager(&["list"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    for name in [
        "workload",
        "gateway",
        "kubernetes-runtime",
        "helm-workload",
        "aws",
        "control-plane",
        "secret",
        "terraform",
        "observability",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(&format!("{name} "))),
            "{name} missing:\n{out}"
        );
    }
    for needle in [
        "WorkloadInstanceReconcilerConsumer",
        "kubernetes-runtimeStream",
        "kubernetesRuntimeLock",
        "KubernetesRuntimeController",
        "workloadInstance.*",
        "/v0/workload-instances",
        "WORKLOAD_INSTANCE_CONCURRENT_RECONCILES",
        "LoggingInstanceReconciler",
    ] {
        assert!(out.contains(needle), "{needle} missing:\n{out}");
    }

    let o = manager(&["list", "--output", "json"], &[]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let controllers = v.as_array().expect("array");
    assert_eq!(controllers.len(), 9);
    assert_eq!(controllers[0]["name"], "workload");
    assert_eq!(
        controllers[0]["reconcilers"][1]["durable_consumer"],
        "WorkloadInstanceReconcilerConsumer"
    );
    assert_eq!(controllers[2]["stream"], "kubernetes-runtimeStream");
}

#[test]
fn check_config_redacts_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "manager.toml",
        "[nats]\nurls = [\"nats://nats-js:4222\"]\nuser = \"ctl\"\npassword = \"file-nats-password-xyz\"\n\n[engine]\nbackoff_cap = \"2m\"\n",
    );
    let o = manager(
        &["--config", &file, "check-config"],
        &[
            ("ENCRYPTION_KEY", KEY32),
            ("API_SERVER", "api.example:1323"),
            ("AUTH_ENABLED", "false"),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    assert!(
        !out.contains("file-nats-password-xyz"),
        "password leaked:\n{out}"
    );
    assert!(!out.contains(KEY32), "encryption key leaked:\n{out}");
    assert!(out.contains("<redacted>"), "{out}");
    assert!(out.contains("server = \"api.example:1323\""), "{out}");
    assert!(out.contains("auth_enabled = false"), "{out}");
    assert!(out.contains("backoff_cap = \"2m\""), "{out}");
    assert!(out.contains("# enabled controllers"), "{out}");

    let o = manager(
        &["check-config", "--output", "json", "--config", &file],
        &[("MSG_BROKER_PASSWORD", "env-pw-123")],
    );
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    assert!(
        !out.contains("env-pw-123") && !out.contains("file-nats-password-xyz"),
        "{out}"
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["config"]["nats"]["password"], "<redacted>");
    assert_eq!(v["config"]["engine"]["backoff_cap"], "2m");
    assert!(v["enabled"].is_array());
}

#[test]
fn flags_override_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "m.yaml",
        "api:\n  server: file-api:1\nreconcilers:\n  default_concurrency: 2\n",
    );
    let o = manager(
        &[
            "check-config",
            "--config",
            &file,
            "--api-server",
            "flag-api:2",
            "--concurrency",
            "7",
            "--nats-url",
            "nats://a:1",
            "--nats-url",
            "nats://b:2",
        ],
        &[("API_SERVER", "env-api:3")],
    );
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("server = \"flag-api:2\""), "{out}");
    assert!(out.contains("default_concurrency = 7"), "{out}");
    assert!(
        out.contains("urls = [\"nats://a:1\", \"nats://b:2\"]"),
        "{out}"
    );
}

#[test]
fn invalid_configuration_exits_2_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad_duration = write(dir.path(), "d.toml", "[engine]\nbackoff_base = \"abc\"\n");
    let o = manager(&["--config", &bad_duration, "check-config"], &[]);
    assert_invalid(&o, "engine.backoff_base");
    assert!(
        stderr(&o).contains("\"abc\" is not a duration"),
        "{}",
        stderr(&o)
    );

    let unknown_key = write(dir.path(), "k.toml", "[engine]\nbackoff_bse = \"1s\"\n");
    assert_invalid(
        &manager(&["--config", &unknown_key, "check-config"], &[]),
        "engine.backoff_bse",
    );

    let o = manager(&["--enable", "workload,nosuch", "check-config"], &[]);
    assert_invalid(&o, "controllers");
    assert!(
        stderr(&o).contains("known controllers: workload, gateway"),
        "{}",
        stderr(&o)
    );

    // The default command (run) validates before starting anything.
    assert_invalid(
        &manager(&["--config", &bad_duration], &[]),
        "engine.backoff_base",
    );
    assert_invalid(
        &manager(&["run", "--admin-listen", "nowhere"], &[]),
        "admin.listen",
    );
    assert_invalid(
        &manager(
            &["check-config"],
            &[("THREEPORT_MANAGER__ENGINE__PROGRESS_INTERVAL", "45s")],
        ),
        "engine.progress_interval",
    );
    assert_invalid(
        &manager(&["check-config"], &[("AUTH_ENABLED", "maybe")]),
        "AUTH_ENABLED",
    );

    // A bad key is reported without echoing it.
    let o = manager(
        &["check-config"],
        &[("ENCRYPTION_KEY", "not-a-key-but-secret")],
    );
    assert_invalid(&o, "encryption_key");
    assert!(
        !stderr(&o).contains("not-a-key-but-secret"),
        "{}",
        stderr(&o)
    );

    // Credentials in a NATS URL and in the environment at once: exit 2 before running,
    // naming the URL's position, never its password.
    let o = manager(
        &["--nats-url", "nats://u:url-secret-5e@127.0.0.1:4222"],
        &[("MSG_BROKER_USER", "u"), ("MSG_BROKER_PASSWORD", "p")],
    );
    assert_invalid(&o, "nats.urls[0]");
    assert!(!stderr(&o).contains("url-secret-5e"), "{}", stderr(&o));

    let o = manager(&["--config", "does-not-exist.toml", "check-config"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("does-not-exist.toml"), "{}", stderr(&o));
}

#[test]
fn shipped_config_files_pass_check_config() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    for name in ["threeport-manager.example.toml", "minimal.toml"] {
        let path = dir.join(name);
        let o = manager(
            &[
                "check-config",
                "--config",
                path.to_str().expect("utf-8 path"),
            ],
            &[],
        );
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
    }
}

#[test]
fn version_names_the_commit() {
    let o = manager(&["--version"], &[]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    let expected = format!("threeport-manager {} (", env!("CARGO_PKG_VERSION"));
    assert!(
        out.starts_with(&expected) && out.trim_end().ends_with(')'),
        "{out}"
    );
}

#[test]
fn an_unusable_api_server_address_is_exit_2_naming_the_field_once() {
    let o = manager(
        &["check-config", "--api-server", "host:99999"],
        &[("AUTH_ENABLED", "false")],
    );
    assert_invalid(&o, "api.server");
    let err = stderr(&o);
    assert_eq!(err.matches("invalid port number").count(), 1, "{err}");
}

#[test]
fn enable_takes_a_leading_minus_as_a_separate_argument() {
    let o = manager(
        &["check-config", "--output", "json", "--enable", "-workload"],
        &[("AUTH_ENABLED", "false")],
    );
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(
        json["config"]["controllers"],
        serde_json::json!(["-workload"]),
        "{json}"
    );
}

#[test]
fn an_admin_address_in_use_is_exit_2_naming_it_once() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = busy.local_addr().expect("addr").to_string();
    let o = manager(
        &[
            "run",
            "--enable",
            "-workload",
            "--admin-listen",
            &addr,
            "--nats-url",
            "nats://127.0.0.1:1",
        ],
        &[("AUTH_ENABLED", "false")],
    );
    assert_eq!(o.status.code(), Some(2), "stderr: {}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.matches(&addr).count(), 1, "{err}");
    assert!(
        err.contains("admin.listen") && err.contains("in use"),
        "{err}"
    );
}
