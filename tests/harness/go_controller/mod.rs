//! Threeport's Go controllers (v0.6.1, built by `scripts/upstream.sh build` into
//! `.tools/upstream/bin`) as child processes, started the way Threeport's Deployments start
//! them: flags for the API and NATS, `ENCRYPTION_KEY` in the environment.
//!
//! They ignore SIGTERM (spec 1.11) and spin on a closed NATS connection, so they are stopped
//! with SIGKILL, by PID, before their NATS goes away.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::harness::backend::repo_root;
use crate::harness::workload_env::{free_port, tail, ProcStats};

/// The nine controllers of Threeport v0.6.1, as scripts/upstream.sh builds them.
pub const ALL: [&str; 9] = [
    "workload-controller",
    "gateway-controller",
    "kubernetes-runtime-controller",
    "helm-workload-controller",
    "observability-controller",
    "aws-controller",
    "secret-controller",
    "terraform-controller",
    "control-plane-controller",
];

/// The User-Agent prefix of the Go workload-controller's Kubernetes requests (client-go names
/// the binary).
pub const WORKLOAD_CONTROLLER_AGENT: &str = "workload-controller/";

/// One Go controller process, killed on drop.
pub struct GoController {
    child: Child,
    pub name: String,
    pub log: PathBuf,
    /// Its `/shutdown` server (spec 1.11), on loopback.
    pub shutdown_port: u16,
}

impl GoController {
    /// Start `binary` (one of [`ALL`]) with Threeport's variables `vars` (API_SERVER,
    /// AUTH_ENABLED, MSG_BROKER_HOST, MSG_BROKER_PORT, ENCRYPTION_KEY); output to `log`.
    pub fn start(binary: &str, vars: &[(String, String)], log: PathBuf) -> Self {
        let bin = repo_root().join(".tools/upstream/bin").join(binary);
        let env: BTreeMap<&str, &str> =
            vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let out = std::fs::File::create(&log).expect("log file");
        let shutdown_port = free_port();
        let child = Command::new(&bin)
            .args([
                &format!(
                    "-auth-enabled={}",
                    env.get("AUTH_ENABLED").unwrap_or(&"false")
                ),
                &format!("-api-server={}", env["API_SERVER"]),
                &format!("-msg-broker-host={}", env["MSG_BROKER_HOST"]),
                &format!("-msg-broker-port={}", env["MSG_BROKER_PORT"]),
                // Its own /shutdown server; the default 8181 would collide between controllers.
                &format!("-shutdown-port={shutdown_port}"),
            ])
            .env("ENCRYPTION_KEY", env["ENCRYPTION_KEY"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone().expect("log")))
            .stderr(Stdio::from(out))
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        GoController {
            child,
            name: binary.to_string(),
            log,
            shutdown_port,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Send a signal by name (`TERM`, `STOP`, `CONT`, `KILL`) to this process only.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {} failed", self.child.id());
    }

    /// Threeport's graceful stop: `GET /shutdown` on its shutdown port; every reconciler
    /// finishes the message in hand and the process exits (up to 20 s: an idle reconciler
    /// waits out its fetch). Returns whether it exited within `limit`.
    pub async fn shutdown(&mut self, limit: std::time::Duration) -> bool {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.shutdown_port));
        let (status, _) = crate::harness::workload_env::http_get(addr, "/shutdown").await;
        assert_eq!(status, 200, "{} /shutdown", self.name);
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if !self.running() {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        false
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Memory and CPU of the process.
    pub fn stats(&self) -> ProcStats {
        ProcStats(self.child.id())
    }

    pub fn log_tail(&self, lines: usize) -> String {
        format!("{} log:\n{}", self.name, tail(&self.log, lines))
    }
}

impl Drop for GoController {
    fn drop(&mut self) {
        self.kill();
    }
}
