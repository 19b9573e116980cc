//! A whole local Threeport for workload tests and the workload benchmark: a real nats-server,
//! the sandbox Threeport API (publishing to it), the Kubernetes API sandbox registered as the
//! default KubernetesRuntimeInstance (client certificate, key encrypted with ENCRYPTION_KEY),
//! and `threeport-manager --enable workload` run as the real binary (so its RSS is its own).
//! Shared by `tests/workload_scale.rs` and `benches/workload.rs` (`#[path]`).
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use sandbox::kube::{KubeSandbox, KubeSandboxHandle, KubeSandboxOptions, RuntimeAuth};
use sandbox::nats::NatsServer;
use sandbox::threeport::{SandboxApi, SandboxHandle, SandboxOptions};
use serde_json::{json, Value};
use threeport_manager::threeport::client::{ApiClientConfig, ThreeportClient};
use threeport_manager::threeport::models::{WORKLOAD_DEFINITION, WORKLOAD_INSTANCE};
use threeport_manager::threeport::ThreeportApi;

/// A fixed test key (32 bytes, standard base64), as Threeport's `ENCRYPTION_KEY`.
pub const ENCRYPTION_KEY: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";

/// Three resources, like Threeport's getting-started web app: ConfigMap, Deployment, Service.
pub const WEB_APP_YAML: &str = include_str!("../../fixtures/manifests/web-app.yaml");

/// Number of resources in [`WEB_APP_YAML`].
pub const WEB_APP_RESOURCES: usize = 3;

/// Whether this build implements the workload controller (else `--enable workload` exits 2).
pub fn workload_implemented() -> bool {
    threeport_manager::registry::controller("workload").is_some_and(|c| c.implemented())
}

/// nats-server + Threeport sandbox + Kubernetes sandbox with a registered runtime.
pub struct Env {
    pub nats: NatsServer,
    pub api: SandboxHandle,
    pub kube: KubeSandboxHandle,
    pub runtime_id: u64,
    pub client: Arc<ThreeportClient>,
}

impl Env {
    pub async fn start() -> anyhow::Result<Self> {
        let nats = NatsServer::start().map_err(|e| {
            anyhow::anyhow!("start nats-server (scripts/install-nats-server.sh): {e}")
        })?;
        let api = SandboxApi::start(SandboxOptions {
            nats_url: Some(nats.url()),
            encryption_key: Some(ENCRYPTION_KEY.to_string()),
            ..Default::default()
        })
        .await?;
        let kube = KubeSandbox::start(KubeSandboxOptions::default()).await?;
        kube.install_threeport_workload_crd()?;
        let runtime_id = kube
            .register_runtime(&api, "sandbox-runtime", RuntimeAuth::ClientCert)
            .await?;
        let client = Arc::new(ThreeportClient::new(
            &ApiClientConfig {
                server: api.api_server(),
                auth_enabled: false,
                cert_file: "unused".into(),
                key_file: "unused".into(),
                ca_file: "unused".into(),
                connect_timeout: Duration::from_secs(2),
                request_timeout: Duration::from_secs(30),
            },
            None,
        )?);
        Ok(Env {
            nats,
            api,
            kube,
            runtime_id,
            client,
        })
    }

    /// POST a WorkloadDefinition; returns its ID.
    pub async fn create_definition(&self, name: &str, yaml: &str) -> anyhow::Result<u64> {
        let o = self
            .client
            .create(
                WORKLOAD_DEFINITION,
                json!({"Name": name, "YAMLDocument": yaml}),
            )
            .await?;
        o["ID"]
            .as_u64()
            .ok_or_else(|| anyhow::anyhow!("definition without ID: {o}"))
    }

    /// POST `n` WorkloadInstances `<prefix>-<i>` of `definition` on the registered runtime,
    /// `parallel` requests at a time. Returns `(ID, time the POST returned)` in creation order.
    pub async fn create_instances(
        &self,
        definition: u64,
        prefix: &str,
        n: usize,
        parallel: usize,
    ) -> anyhow::Result<Vec<(u64, Instant)>> {
        let runtime = self.runtime_id;
        let results: Vec<anyhow::Result<(u64, Instant)>> = futures::stream::iter(0..n)
            .map(|i| {
                let client = self.client.clone();
                let name = format!("{prefix}-{i}");
                async move {
                    let o = client
                        .create(
                            WORKLOAD_INSTANCE,
                            json!({"Name": name, "WorkloadDefinitionID": definition,
                                       "KubernetesRuntimeInstanceID": runtime}),
                        )
                        .await?;
                    let id = o["ID"]
                        .as_u64()
                        .ok_or_else(|| anyhow::anyhow!("instance without ID: {o}"))?;
                    Ok((id, Instant::now()))
                }
            })
            .buffered(parallel.max(1))
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// IDs among `ids` that the sandbox store shows as `Reconciled:true` (no HTTP).
    pub fn reconciled_instances(&self) -> HashMap<u64, bool> {
        self.api
            .list_objects("workload-instances")
            .into_iter()
            .filter_map(|o| Some((o["ID"].as_u64()?, o["Reconciled"] == true)))
            .collect()
    }

    /// Live objects of a kind in the cluster carrying the workload-instance label.
    pub fn labelled(&self, api_version: &str, kind: &str) -> Vec<Value> {
        self.kube
            .objects(api_version, kind, None)
            .into_iter()
            .filter(|o| !o["metadata"]["labels"][INSTANCE_LABEL].is_null())
            .collect()
    }

    /// Namespaces other than the four a new cluster has.
    pub fn extra_namespaces(&self) -> Vec<Value> {
        self.kube
            .objects("v1", "Namespace", None)
            .into_iter()
            .filter(|o| {
                let n = o["metadata"]["name"].as_str().unwrap_or_default();
                !matches!(
                    n,
                    "default" | "kube-system" | "kube-public" | "kube-node-lease"
                )
            })
            .collect()
    }
}

/// The instance label key (spec 3.1.4).
pub const INSTANCE_LABEL: &str = "control-plane.threeport.io/workload-instance";

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// How to run one manager process.
pub struct ManagerSpec<'a> {
    pub bin: &'a Path,
    /// Workers per reconciler (`--concurrency`).
    pub concurrency: usize,
    /// stdout + stderr go here.
    pub log: PathBuf,
    /// `--enable` (`workload`; `*` for every implemented controller).
    pub enable: &'a str,
    /// Short retry timings as the tests use in-process (else the shipped defaults).
    pub test_timings: bool,
    /// `--nats-url` for each (e.g. every member of a cluster); empty: the environment's
    /// MSG_BROKER_HOST and MSG_BROKER_PORT.
    pub nats_urls: &'a [String],
}

/// `threeport-manager --enable workload` as a child process, killed on drop if still running.
pub struct ManagerProcess {
    pub child: Child,
    pub admin: SocketAddr,
    pub log: PathBuf,
}

impl Env {
    /// Threeport's environment variables for a controller process on this control plane.
    pub fn process_env(&self) -> Vec<(String, String)> {
        vec![
            ("API_SERVER".into(), self.api.api_server()),
            ("AUTH_ENABLED".into(), "false".into()),
            ("MSG_BROKER_HOST".into(), "127.0.0.1".into()),
            ("MSG_BROKER_PORT".into(), self.nats.port().to_string()),
            ("ENCRYPTION_KEY".into(), ENCRYPTION_KEY.into()),
        ]
    }
}

impl ManagerProcess {
    /// Start the manager with Threeport's environment variables `vars` (API_SERVER,
    /// MSG_BROKER_*, ENCRYPTION_KEY, ...).
    pub fn spawn(vars: &[(String, String)], spec: &ManagerSpec<'_>) -> anyhow::Result<Self> {
        let port = free_port();
        let admin: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let out = std::fs::File::create(&spec.log)?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(spec.bin);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(vars.iter().map(|(k, v)| (k, v)));
        if spec.test_timings {
            cmd.env("THREEPORT_MANAGER__ENGINE__BACKOFF_BASE", "100ms")
                .env("THREEPORT_MANAGER__ENGINE__BACKOFF_CAP", "2s")
                .env("THREEPORT_MANAGER__ENGINE__LOCK_CONFLICT_DELAY", "200ms")
                .env("THREEPORT_MANAGER__ENGINE__FETCH_EXPIRES", "1s");
        }
        for url in spec.nats_urls {
            cmd.args(["--nats-url", url]);
        }
        let child = cmd
            .args([
                "--enable",
                spec.enable,
                "--concurrency",
                &spec.concurrency.to_string(),
                "--admin-listen",
                &admin.to_string(),
                "--log-format",
                "json",
                "--log-level",
                "info",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()?;
        Ok(ManagerProcess {
            child,
            admin,
            log: spec.log.clone(),
        })
    }

    /// Wait (bounded) until `/readyz` answers 200; fails early if the process exits.
    pub async fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!(
                    "threeport-manager exited with {status} before ready; log:\n{}",
                    self.log_tail(20)
                );
            }
            if tokio::net::TcpStream::connect(self.admin).await.is_ok()
                && http_get(self.admin, "/readyz").await.0 == 200
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!(
            "threeport-manager not ready within {limit:?}; log:\n{}",
            self.log_tail(20)
        )
    }

    /// This crate's `threeport-manager --enable <enable>`, configured by Threeport's environment
    /// variables `vars` alone, with the tests' short timings, once it is ready (30 s; panics
    /// with its log otherwise) and `/readyz?verbose` lists every one of `reconcilers` as ready.
    pub async fn spawn_ready(
        vars: &[(String, String)],
        enable: &str,
        concurrency: usize,
        log: PathBuf,
        reconcilers: &[&str],
    ) -> Self {
        let mut manager = Self::spawn(
            vars,
            &ManagerSpec {
                bin: Path::new(env!("CARGO_BIN_EXE_threeport-manager")),
                concurrency,
                log,
                enable,
                test_timings: true,
                nats_urls: &[],
            },
        )
        .expect("spawn threeport-manager");
        manager
            .wait_ready(Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let (_, readyz) = http_get(manager.admin, "/readyz?verbose").await;
        for reconciler in reconcilers {
            assert!(
                readyz.contains(&format!("[+]reconciler/{reconciler}")),
                "{reconciler} in\n{readyz}"
            );
        }
        manager
    }

    /// The instance UUID the manager logged at start (its lock value), once it has.
    pub fn instance_id(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.log).ok()?;
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find_map(|l| l["fields"]["instance_id"].as_str().map(String::from))
    }

    pub async fn metrics(&self) -> String {
        http_get(self.admin, "/metrics").await.1
    }

    /// Memory and CPU of the process.
    pub fn stats(&self) -> ProcStats {
        ProcStats(self.child.id())
    }

    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    /// SIGTERM and wait (bounded); returns the exit code. Killed (SIGKILL) after `limit`.
    pub fn stop(&mut self, limit: Duration) -> Option<i32> {
        if let Ok(Some(s)) = self.child.try_wait() {
            return s.code();
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for ManagerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The last `lines` lines of a log file.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Memory and CPU use of a process (by PID), from /proc.
#[derive(Debug, Clone, Copy)]
pub struct ProcStats(pub u32);

impl ProcStats {
    /// `VmHWM` (peak resident set) in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.0, "VmHWM:")
    }

    /// `VmRSS` (resident set now) in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.0, "VmRSS:")
    }

    /// utime + stime in seconds.
    pub fn cpu_seconds(&self) -> Option<f64> {
        cpu_seconds(self.0)
    }
}

/// The manager binary `cargo bench` builds next to the bench's own folder
/// (`target/<profile>/`), unless `THREEPORT_MANAGER_BIN` names one.
pub fn bench_manager_binary() -> PathBuf {
    std::env::var_os("THREEPORT_MANAGER_BIN")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.parent()?.parent().map(|d| d.join("threeport-manager")))
        })
        .unwrap_or_else(|| PathBuf::from("target/release/threeport-manager"))
}

/// A `/proc/<pid>/status` value in KiB (`VmHWM:`, `VmRSS:`).
pub fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU time of a process (user + system) in seconds, from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces): state is field 3, utime 14,
    // stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clock_ticks_per_second())
}

/// `getconf CLK_TCK` (100 on Linux unless the kernel says otherwise).
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Sum of a Prometheus counter's samples whose labels include every `(key, value)`.
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = match series.split_once('{') {
                Some((n, rest)) => (n, rest),
                None => (series, ""),
            };
            if n != name {
                return None;
            }
            labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// A minimal HTTP/1.1 GET: (status, body); (0, "") if the connection fails.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return (0, String::new());
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return (0, String::new());
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The `q`-quantile (0..=1) of sorted values (nearest rank).
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
