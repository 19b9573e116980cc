//! The real binary as an operator runs it: Threeport's env names, NATS with a password, the
//! admin endpoints, SIGTERM -> exit 0, and no secret in its output.

mod harness;
use harness::common;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{http_get, wait_until};
use sandbox::nats::{NatsServer, NatsServerOptions};

const PASSWORD: &str = "s3cret-nats-password-5f2a";
const ENCRYPTION_KEY: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn spawn_manager(nats_port: u16, admin_port: u16) -> KillOnDrop {
    let port = nats_port.to_string();
    spawn_with_flags(
        admin_port,
        &[
            ("MSG_BROKER_HOST", "127.0.0.1"),
            ("MSG_BROKER_PORT", &port),
            ("MSG_BROKER_USER", "threeport"),
            ("MSG_BROKER_PASSWORD", PASSWORD),
            ("ENCRYPTION_KEY", ENCRYPTION_KEY),
            ("VERBOSE", "true"),
        ],
        &[],
    )
}

/// The manager against a local API address with `AUTH_ENABLED=false`, an otherwise empty
/// environment plus `env`, the admin server on `admin_port`, output piped. Killed when
/// dropped, so a failing test does not leave it running.
fn spawn_with_flags(admin_port: u16, env: &[(&str, &str)], args: &[&str]) -> KillOnDrop {
    let child = Command::new(env!("CARGO_BIN_EXE_threeport-manager"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("API_SERVER", "127.0.0.1:9")
        .env("AUTH_ENABLED", "false")
        .envs(env.iter().copied())
        .args(args)
        .args(["--admin-listen", &format!("127.0.0.1:{admin_port}")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn threeport-manager");
    KillOnDrop(child)
}

/// A child process killed when dropped (a panicking test must not leave it running).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "threeport-manager did not exit within {limit:?} of SIGTERM; it printed:\n{}",
                output(child)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn output(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut text);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut text);
    }
    text
}

/// Wait (30 s at most) until the manager's `/readyz` on `admin` answers 200.
async fn wait_ready(admin: std::net::SocketAddr, what: &str) {
    wait_until(Duration::from_secs(30), what, || async {
        let probe = tokio::time::timeout(Duration::from_secs(2), http_get(admin, "/readyz"));
        tokio::net::TcpStream::connect(admin).await.is_ok() && matches!(probe.await, Ok((200, _)))
    })
    .await;
}

/// The body of an admin endpoint (bounded).
async fn admin_body(admin: std::net::SocketAddr, path: &str) -> String {
    tokio::time::timeout(Duration::from_secs(5), http_get(admin, path))
        .await
        .unwrap_or_else(|_| panic!("{path} answers"))
        .1
}

/// A nats-server requiring user `threeport` with `password`, and the sandbox API on it (which
/// creates Threeport's streams, so the default controller can get ready).
async fn nats_with_password(password: &str) -> (NatsServer, sandbox::threeport::SandboxHandle) {
    let nats = NatsServer::start_with(NatsServerOptions {
        user_password: Some(("threeport".into(), password.into())),
        ..Default::default()
    })
    .expect("nats with a password");
    let api = sandbox::threeport::SandboxApi::start(sandbox::threeport::SandboxOptions {
        nats_url: Some(nats.url()),
        nats_user_password: Some(("threeport".into(), password.into())),
        ..Default::default()
    })
    .await
    .expect("sandbox API creates the streams");
    (nats, api)
}

/// Wait until the manager is ready (so the secrets were used), read `/configz` and `/metrics`,
/// SIGTERM it (exit 0), and assert that none of `secrets` is in its output (logged at trace),
/// `/configz` or `/metrics`.
async fn assert_secrets_used_and_never_shown(
    mut child: KillOnDrop,
    admin: std::net::SocketAddr,
    secrets: &[&str],
) {
    wait_ready(
        admin,
        "readyz 200 (NATS connected with the canary password)",
    )
    .await;
    let configz = admin_body(admin, "/configz").await;
    let metrics = admin_body(admin, "/metrics").await;
    sigterm(&child.0);
    let status = wait_exit(&mut child.0, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0));
    let out = output(&mut child.0);
    assert!(out.contains("NATS connected"), "trace logs are on: {out}");
    for secret in secrets {
        for (place, text) in [
            ("output", &out),
            ("/configz", &configz),
            ("/metrics", &metrics),
        ] {
            assert!(
                !text.contains(secret),
                "a secret reached the {place}:\n{text}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_with_threeport_env_names_serves_admin_endpoints_and_exits_0_on_sigterm() {
    // The workload controller is enabled by default (`*`) and is ready only once its stream
    // exists; the sandbox API creates Threeport's streams at start, as the real API does.
    let (nats, _api) = nats_with_password(PASSWORD).await;
    let admin_port = free_port();
    let mut child = spawn_manager(nats.port(), admin_port);
    let admin: std::net::SocketAddr = format!("127.0.0.1:{admin_port}").parse().expect("addr");

    wait_until(
        Duration::from_secs(30),
        "readyz 200 (NATS connected with user and password)",
        || async {
            tokio::net::TcpStream::connect(admin).await.is_ok()
                && http_get(admin, "/readyz").await.0 == 200
        },
    )
    .await;
    let (code, verbose) = http_get(admin, "/readyz?verbose").await;
    assert_eq!(code, 200);
    assert!(verbose.contains("[+]nats ok"), "{verbose}");
    let (code, metrics) = http_get(admin, "/metrics").await;
    assert_eq!(code, 200);
    assert!(metrics.contains("threeport_nats_connected 1"), "{metrics}");
    let (code, configz) = http_get(admin, "/configz").await;
    assert_eq!(code, 200);
    let configz: serde_json::Value = serde_json::from_str(&configz).expect("configz is JSON");
    assert_eq!(configz["nats"]["user"], "threeport");
    assert_eq!(configz["nats"]["password"], "<redacted>");
    assert_eq!(configz["encryption_key"], "<redacted>");
    assert_eq!(configz["api"]["auth_enabled"], false);
    assert_eq!(
        configz["log"]["level"], "debug",
        "VERBOSE=true means debug logs"
    );

    let signalled = std::time::Instant::now();
    sigterm(&child.0);
    let status = wait_exit(&mut child.0, Duration::from_secs(15));
    eprintln!("exited {:?} after SIGTERM, connected", signalled.elapsed());
    assert_eq!(status.code(), Some(0), "clean shutdown exits 0");
    let out = output(&mut child.0);
    assert!(out.contains("shutdown complete"), "{out}");
    for secret in [PASSWORD, ENCRYPTION_KEY] {
        assert!(!out.contains(secret), "a secret reached the logs:\n{out}");
    }
    assert!(!metrics.contains(PASSWORD));
}

/// Credentials written into the NATS URL (given by flag) are used (the server requires them)
/// and, at the most verbose log level, appear nowhere in the output: not from the manager, not
/// from async-nats (which logs the URLs it parses and the CONNECT it sends at debug/trace). The
/// same for a secret from the environment (`ENCRYPTION_KEY`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_the_nats_url_are_used_and_never_logged_at_trace() {
    const CANARY: &str = "canary-url-password-7d41";
    // A valid AES-256 key whose base64 text is the canary.
    const ENV_KEY_CANARY: &str = "ZW52LWNhbmFyeS1rZXktMzJieXRlcy1sb25nLWFhYWE=";
    let (nats, _api) = nats_with_password(CANARY).await;
    let admin_port = free_port();
    let url = format!("nats://threeport:{CANARY}@127.0.0.1:{}", nats.port());
    let child = spawn_with_flags(
        admin_port,
        &[("ENCRYPTION_KEY", ENV_KEY_CANARY)],
        &["--nats-url", &url, "--log-level", "trace"],
    );
    let admin: std::net::SocketAddr = format!("127.0.0.1:{admin_port}").parse().expect("addr");
    assert_secrets_used_and_never_shown(child, admin, &[CANARY, ENV_KEY_CANARY]).await;
}

/// SIGTERM while NATS was never reachable: every start-up wait (the lock bucket, the
/// consumer) ends on the signal, so the manager exits at once instead of after a JetStream
/// request timeout, and says NATS was never connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_before_nats_was_ever_reachable_exits_at_once() {
    let nats_port = free_port(); // nothing listens there
    let admin_port = free_port();
    let nats_url = format!("nats://127.0.0.1:{nats_port}");
    let mut child = spawn_with_flags(admin_port, &[], &["--nats-url", &nats_url]);
    let admin: std::net::SocketAddr = format!("127.0.0.1:{admin_port}").parse().expect("addr");
    wait_until(
        Duration::from_secs(30),
        "the admin server is up",
        || async { tokio::net::TcpStream::connect(admin).await.is_ok() },
    )
    .await;
    // Long enough for the start-up JetStream requests to be in flight.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let signalled = std::time::Instant::now();
    sigterm(&child.0);
    // The old behaviour waited for the 20 s JetStream request started at launch (7-17 s).
    let status = wait_exit(&mut child.0, Duration::from_secs(5));
    eprintln!(
        "exited {:?} after SIGTERM, never connected",
        signalled.elapsed()
    );
    assert_eq!(status.code(), Some(0));
    let out = output(&mut child.0);
    let last = out
        .lines()
        .find(|l| l.contains("shutdown complete"))
        .unwrap_or_else(|| panic!("no shutdown line:\n{out}"));
    assert!(last.contains(r#""nats":"never connected""#), "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enabling_an_unimplemented_controller_exits_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_threeport-manager"))
        .env_clear()
        .args(["--enable", "terraform"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("terraform") && err.contains("not implemented"),
        "{err}"
    );
}

/// Secrets given in the config file (the NATS password, the encryption key) reach neither the
/// output at the most verbose level nor `/configz`, while the password is really used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_from_the_config_file_are_used_and_never_logged_at_trace() {
    const CANARY: &str = "canary-file-password-92be";
    // A valid AES-256 key that is a canary too (its base64 text is searched for).
    const KEY_CANARY: &str = "Y2FuYXJ5LWZpbGUta2V5LTBiNzdjYW5hcnktZmlsZS0=";
    let (nats, _api) = nats_with_password(CANARY).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("manager.toml");
    std::fs::write(
        &file,
        format!(
            "encryption_key = \"{KEY_CANARY}\"\n[nats]\nurls = [\"{}\"]\nuser = \"threeport\"\npassword = \"{CANARY}\"\n",
            nats.url()
        ),
    )
    .expect("write config");
    let admin_port = free_port();
    let child = spawn_with_flags(
        admin_port,
        &[],
        &[
            "--config",
            &file.display().to_string(),
            "--log-level",
            "trace",
        ],
    );
    let admin: std::net::SocketAddr = format!("127.0.0.1:{admin_port}").parse().expect("addr");
    assert_secrets_used_and_never_shown(child, admin, &[CANARY, KEY_CANARY]).await;
}

/// SIGTERM while NATS is gone after having been connected (the client reconnecting): the
/// manager exits promptly with exit 0 and says the connection was reconnecting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_reconnecting_to_nats_exits_at_once() {
    let mut nats = NatsServer::start().expect("nats");
    let _api = sandbox::threeport::SandboxApi::start(sandbox::threeport::SandboxOptions {
        nats_url: Some(nats.url()),
        ..Default::default()
    })
    .await
    .expect("sandbox API creates the streams");
    let admin_port = free_port();
    let mut child = spawn_with_flags(admin_port, &[], &["--nats-url", &nats.url()]);
    let admin: std::net::SocketAddr = format!("127.0.0.1:{admin_port}").parse().expect("addr");
    let probe = || async {
        if tokio::net::TcpStream::connect(admin).await.is_err() {
            return 0;
        }
        tokio::time::timeout(Duration::from_secs(2), http_get(admin, "/readyz"))
            .await
            .map(|(code, _)| code)
            .unwrap_or(0)
    };
    wait_until(Duration::from_secs(30), "ready", || async {
        probe().await == 200
    })
    .await;
    nats.stop();
    wait_until(Duration::from_secs(30), "not ready: NATS lost", || async {
        probe().await == 503
    })
    .await;
    let signalled = std::time::Instant::now();
    sigterm(&child.0);
    // About 25 ms: nothing waits for a NATS known to be gone. 3 s still catches a request
    // left to JetStream's 5 s timeout, as the resync's lease release and the consumer-info
    // poll once were (each failed CI once).
    let status = wait_exit(&mut child.0, Duration::from_secs(3));
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(0));
    let out = output(&mut child.0);
    let last = out
        .lines()
        .find(|l| l.contains("shutdown complete"))
        .unwrap_or_else(|| panic!("no shutdown line:\n{out}"));
    assert!(last.contains(r#""nats":"reconnecting""#), "{last}");
    eprintln!("exited {took:?} after SIGTERM while reconnecting");
}

/// A NATS failure is one log line from the manager that names the server and the cause (not
/// also an anonymous one from async-nats), and the wrong password is not in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_failure_is_one_line_naming_the_server_and_the_cause() {
    const WRONG: &str = "wrong-password-canary-3c1f";
    let nats = NatsServer::start_with(NatsServerOptions {
        user_password: Some(("threeport".into(), PASSWORD.into())),
        ..Default::default()
    })
    .expect("nats with a password");
    let admin_port = free_port();
    let url = format!("nats://threeport:{WRONG}@127.0.0.1:{}", nats.port());
    let mut child = spawn_with_flags(admin_port, &[], &["--nats-url", &url]);
    let admin: std::net::SocketAddr = format!("127.0.0.1:{admin_port}").parse().expect("addr");
    wait_until(
        Duration::from_secs(30),
        "the admin server is up",
        || async { tokio::net::TcpStream::connect(admin).await.is_ok() },
    )
    .await;
    // A few rounds of refused connections (the client retries every 0.1 s to 5 s).
    wait_until(
        Duration::from_secs(30),
        "NATS refused us at least twice",
        || async {
            let (_, m) = tokio::time::timeout(Duration::from_secs(2), http_get(admin, "/metrics"))
                .await
                .unwrap_or_default();
            m.lines().any(|l| {
                l.starts_with("threeport_nats_events_total{event=\"client_error\"} ")
                    && !l.ends_with(" 0")
                    && !l.ends_with(" 1")
            })
        },
    )
    .await;
    sigterm(&child.0);
    let status = wait_exit(&mut child.0, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0));
    let out = output(&mut child.0);
    assert!(
        !out.contains(WRONG),
        "the password reached the logs:\n{out}"
    );
    let failures: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("authorization violation"))
        .collect();
    assert!(failures.len() >= 2, "{out}");
    let server = format!("127.0.0.1:{}", nats.port());
    for line in failures {
        assert!(
            line.contains("cannot connect to NATS") && line.contains(&server),
            "a failure line without the manager's context or the server: {line}"
        );
    }
}
