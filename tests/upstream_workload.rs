//! The workload suite against the real thing: etcd + kube-apiserver + kube-controller-manager
//! v1.37, Threeport's REST API v0.6.1 on PostgreSQL, a JetStream nats-server, all started by
//! `scripts/upstream.sh up` on loopback; the manager's workload reconcilers run in process.
//!
//! Each test gets a fresh stack (Threeport's API binds fixed ports, so they run one at a
//! time). Without the binaries (`scripts/upstream.sh build`) each test says SKIPPED and
//! returns, unless THREEPORT_UPSTREAM_REQUIRED is set (scripts/test.sh sets it), then it fails.

#[macro_use]
mod harness;
use backend::Stack;
use harness::{backend, scale_suite, workload_env, workload_suite};
use threeport_manager::threeport::models::WORKLOAD_DEFINITION;
use threeport_manager::threeport::ThreeportApi;
use workload_suite::Env;

// Every shared scenario, each on a fresh real stack.
workload_scenario_tests!(Stack::upstream(false).await);

/// With `--auth` the API serves TLS and requires a client certificate: the manager talks mTLS
/// with certificates laid out as in Threeport's controller Deployment (RSA-4096 PKCS#1 keys,
/// Threeport's leaf extensions), and the whole managed-namespace scenario passes over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_to_the_real_api_with_threeports_certificate_layout() {
    let Some(stack) = Stack::upstream(true).await else {
        return;
    };
    let tls = stack
        .api_tls()
        .expect("auth stack has client certificates")
        .clone();
    for (file, expect) in [
        (&tls.cert_file, "cert/tls.crt"),
        (&tls.key_file, "cert/tls.key"),
        (&tls.ca_file, "ca/tls.crt"),
    ] {
        assert!(
            file.ends_with(expect),
            "{} is not laid out as */{expect}",
            file.display()
        );
    }
    let key = std::fs::read_to_string(&tls.key_file).expect("client key");
    assert!(
        key.starts_with("-----BEGIN RSA PRIVATE KEY-----"),
        "PKCS#1 key as Threeport's"
    );
    // Plain HTTP, and TLS without a client certificate, are refused by the real API.
    let plain = backend::threeport_client(&stack.api_server, None);
    assert!(plain.list(WORKLOAD_DEFINITION, &[]).await.is_err());
    let env = Env::start(stack).await;
    workload_suite::managed_namespace_workload_end_to_end(&env).await;
    let stack = env.into_stack().await;

    // The release binary configured only by Threeport's environment variables
    // (AUTH_ENABLED=true, API_SERVER, ...) plus the certificate paths reconciles over mTLS too.
    let logs = tempfile::tempdir().expect("tempdir");
    let mut manager = workload_env::ManagerProcess::spawn_ready(
        &stack.process_env(),
        "workload",
        1,
        logs.path().join("manager.log"),
        &["WorkloadDefinitionReconciler", "WorkloadInstanceReconciler"],
    )
    .await;
    let wd = stack
        .api
        .create(
            WORKLOAD_DEFINITION,
            serde_json::json!({"Name": "over-mtls", "YAMLDocument": workload_suite::WEB_APP}),
        )
        .await
        .expect("POST definition")["ID"]
        .as_u64()
        .expect("ID");
    workload_suite::wait_until(
        workload_suite::LIMIT,
        "definition reconciled over mTLS",
        || async {
            stack
                .get(WORKLOAD_DEFINITION, wd)
                .await
                .is_some_and(|o| o["Reconciled"] == true)
        },
    )
    .await;
    assert_eq!(
        manager.stop(std::time::Duration::from_secs(30)),
        Some(0),
        "clean exit; log:\n{}",
        manager.log_tail(20)
    );
}

/// Two manager processes on one real stack: 200 instances, each reconciled successfully
/// exactly once, counted; all deleted, every namespace really gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_managers_reconcile_200_instances_exactly_once() {
    let Some(stack) = Stack::upstream(false).await else {
        return;
    };
    scale_suite::two_managers_reconcile_instances_exactly_once(&stack, 200).await;
}

/// `scripts/upstream.sh up` refuses to start when Threeport's fixed API port is taken, naming
/// the port, and leaves nothing running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_names_the_taken_port_and_starts_nothing() {
    if !backend::upstream_available() {
        return;
    }
    let _serial = backend::upstream_serial().await;
    let _taken = std::net::TcpListener::bind("127.0.0.1:1323").expect("bind 127.0.0.1:1323");
    let dir = tempfile::tempdir().expect("tempdir");
    let stack_dir = dir.path().join("stack");
    let out = std::process::Command::new(backend::repo_root().join("scripts/upstream.sh"))
        .arg("up")
        .arg(&stack_dir)
        .output()
        .expect("run scripts/upstream.sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("port 1323 is in use"), "{stderr}");
    assert!(!stack_dir.join("pids").exists(), "nothing was started");
}

/// A component that fails to start is named, with the tail of its log, and everything `up`
/// had already started (etcd, kube-apiserver, kube-controller-manager, PostgreSQL) is stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_names_the_component_that_failed_and_stops_the_rest() {
    if !backend::upstream_available() {
        return;
    }
    let _serial = backend::upstream_serial().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let fake_nats = dir.path().join("nats-server");
    std::fs::write(
        &fake_nats,
        "#!/bin/sh\n[ \"$1\" = --version ] && { echo nats-server: v0.0.0; exit 0; }\n\
         echo 'fake nats-server: cannot listen' >&2\nexit 1\n",
    )
    .expect("write fake nats-server");
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&fake_nats)
        .status()
        .expect("chmod");
    // Under /tmp, not the 0700 temporary folder: PostgreSQL runs as the postgres user.
    let stack_dir = std::env::temp_dir().join(format!("upstream-fail-{}", std::process::id()));
    let out = std::process::Command::new(backend::repo_root().join("scripts/upstream.sh"))
        .arg("up")
        .arg(&stack_dir)
        .env("NATS_SERVER_BIN", &fake_nats)
        .output()
        .expect("run scripts/upstream.sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("nats-server exited during start-up"),
        "{stderr}"
    );
    assert!(
        stderr.contains("fake nats-server: cannot listen"),
        "log tail: {stderr}"
    );
    // No process started for this stack is left: their command lines name its folder.
    let needle = stack_dir.to_string_lossy().into_owned();
    let survivors: Vec<String> = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&needle))
        .collect();
    let _ = std::process::Command::new(backend::repo_root().join("scripts/upstream.sh"))
        .arg("down")
        .arg(&stack_dir)
        .output();
    assert!(survivors.is_empty(), "still running: {survivors:#?}");
}
