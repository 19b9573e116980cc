//! One control plane for integration suites, on either backend:
//!
//! - [`Stack::sandbox`]: a real nats-server, the sandbox Threeport API and the sandbox
//!   Kubernetes API, in process (fast, with fault injection and counters);
//! - [`Stack::upstream`]: the real components started by `scripts/upstream.sh up` (etcd,
//!   kube-apiserver, kube-controller-manager, PostgreSQL, nats-server, Threeport's REST API),
//!   optionally with mTLS to the API as Threeport's installer lays out the certificates.
//!
//! Everything a suite asks of a stack goes through the wire (the Threeport REST API and the
//! Kubernetes API), so one assertion means the same on both backends. Threeport's API binds
//! fixed ports, so upstream stacks are serialised by [`Stack::upstream`] (one per process at a
//! time; cargo runs test binaries one after another).
#![allow(dead_code)]

pub mod request_log;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DynamicObject, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use sandbox::kube::{KubeSandbox, KubeSandboxHandle, KubeSandboxOptions, RuntimeAuth};
use sandbox::nats::{NatsCluster, NatsServer};
use sandbox::threeport::{SandboxApi, SandboxHandle, SandboxOptions};
use serde_json::Value;
use threeport_manager::config::{Config, Secret};
use threeport_manager::threeport::client::{ApiClientConfig, ThreeportClient};
use threeport_manager::threeport::crypto::EncryptionKey;
use threeport_manager::threeport::{ObjectType, ThreeportApi};

/// `apiVersion` of Threeport's ThreeportWorkload resource (written literally, not taken from
/// the manager, so a change there fails the tests).
pub const TW_API: &str = "control-plane.threeport.io/v1alpha1";

/// Namespaces a new cluster has (the sandbox and kube-apiserver alike).
pub const SYSTEM_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

/// Set by `scripts/test.sh` (and so CI) after `scripts/upstream.sh build`: a real-stack suite
/// whose binaries are missing fails instead of skipping.
pub const REQUIRE_UPSTREAM_ENV: &str = "THREEPORT_UPSTREAM_REQUIRED";

/// The sandbox servers of a stack (boxed: they are much larger than the upstream handle).
/// The NATS under a sandbox stack: one server, or a JetStream cluster.
pub enum SandboxNats {
    /// One nats-server (what Threeport deploys).
    Single(Box<NatsServer>),
    /// A JetStream cluster; the streams are created with 3 replicas.
    Cluster(NatsCluster),
}

impl SandboxNats {
    fn urls(&self) -> Vec<String> {
        match self {
            SandboxNats::Single(s) => vec![s.url()],
            SandboxNats::Cluster(c) => c.urls(),
        }
    }
}

struct SandboxParts {
    nats: SandboxNats,
    api: SandboxHandle,
    kube: KubeSandboxHandle,
}

/// What keeps a stack running: the sandbox servers, or the real processes plus the lock that
/// keeps other real stacks of this process from starting meanwhile.
enum Parts {
    Sandbox(Box<SandboxParts>),
    Upstream {
        stack: UpstreamProcesses,
        _serial: tokio::sync::MutexGuard<'static, ()>,
    },
}

/// A running control plane and clients for it.
pub struct Stack {
    parts: Parts,
    pub nats_url: String,
    /// Every NATS server's URL (one, unless the stack runs on a cluster).
    pub nats_urls: Vec<String>,
    /// `host:port` as Threeport's `API_SERVER`.
    pub api_server: String,
    pub encryption_key: String,
    pub runtime_id: u64,
    /// The API as a client sees it (mTLS when the stack has auth).
    pub api: Arc<dyn ThreeportApi>,
    /// Admin access to the runtime cluster.
    pub kube: kube::Client,
    api_tls: Option<ApiTls>,
}

/// Client certificate files for the API, laid out as Threeport mounts them in a controller pod
/// (`cert/tls.crt`, `cert/tls.key`, `ca/tls.crt`).
#[derive(Debug, Clone)]
pub struct ApiTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub ca_file: PathBuf,
}

static UPSTREAM_SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Held while a real stack runs in this process (they share Threeport's fixed ports).
pub async fn upstream_serial() -> tokio::sync::MutexGuard<'static, ()> {
    UPSTREAM_SERIAL.lock().await
}

impl Stack {
    /// nats-server + sandbox Threeport API (with an encryption key, as Threeport runs) +
    /// Kubernetes sandbox with the ThreeportWorkload CRD, registered as the default runtime.
    pub async fn sandbox() -> Self {
        let nats =
            NatsServer::start().expect("start nats-server (run scripts/install-nats-server.sh)");
        Self::sandbox_on(SandboxNats::Single(Box::new(nats))).await
    }

    /// [`Stack::sandbox`] on a JetStream cluster of `size` nats-servers (R3 streams).
    pub async fn sandbox_cluster(size: usize) -> Self {
        let cluster = NatsCluster::start(size)
            .expect("start a nats-server cluster (run scripts/install-nats-server.sh)");
        Self::sandbox_on(SandboxNats::Cluster(cluster)).await
    }

    async fn sandbox_on(nats: SandboxNats) -> Self {
        let urls = nats.urls();
        let stream_replicas = match &nats {
            SandboxNats::Single(_) => 1,
            SandboxNats::Cluster(c) => c.servers.len().min(3),
        };
        let (_, key_b64) = EncryptionKey::generate();
        let api = SandboxApi::start(SandboxOptions {
            nats_url: Some(urls.join(",")),
            encryption_key: Some(key_b64.clone()),
            stream_replicas,
            ..Default::default()
        })
        .await
        .expect("start sandbox API");
        let kube = KubeSandbox::start(KubeSandboxOptions::default())
            .await
            .expect("start kube sandbox");
        kube.install_threeport_workload_crd()
            .expect("install the ThreeportWorkload CRD");
        let runtime_id = kube
            .register_runtime(&api, "sandbox-runtime", RuntimeAuth::ClientCert)
            .await
            .expect("register runtime");
        let kube_client = client_from_kubeconfig(
            Kubeconfig::from_yaml(&kube.kubeconfig_yaml()).expect("sandbox kubeconfig"),
        )
        .await;
        let api_server = api.api_server();
        Stack {
            nats_url: urls[0].clone(),
            nats_urls: urls,
            api: Arc::new(threeport_client(&api_server, None)),
            api_server,
            encryption_key: key_b64,
            runtime_id,
            kube: kube_client,
            api_tls: None,
            parts: Parts::Sandbox(Box::new(SandboxParts { nats, api, kube })),
        }
    }

    /// The real stack (`scripts/upstream.sh up`, with `--auth` when `auth`), or `None` with a
    /// message when its binaries were never built and [`REQUIRE_UPSTREAM_ENV`] is not set.
    pub async fn upstream(auth: bool) -> Option<Self> {
        Self::upstream_with(UpstreamOptions {
            auth,
            ..Default::default()
        })
        .await
    }

    /// The real stack with these options (see [`UpstreamOptions`]).
    pub async fn upstream_with(options: UpstreamOptions) -> Option<Self> {
        let auth = options.auth;
        if !upstream_available() {
            return None;
        }
        let serial = upstream_serial().await;
        let stack = tokio::task::spawn_blocking(move || UpstreamProcesses::up(options))
            .await
            .expect("upstream.sh up task")
            .unwrap_or_else(|e| panic!("{e}"));
        let env = &stack.env;
        let var = |k: &str| {
            env.get(k)
                .cloned()
                .unwrap_or_else(|| panic!("{k} missing from {}/env", stack.dir.display()))
        };
        let api_tls = auth.then(|| {
            let cert = PathBuf::from(var("THREEPORT_CERT_DIR"));
            let ca = PathBuf::from(var("THREEPORT_CA_DIR"));
            ApiTls {
                cert_file: cert.join("tls.crt"),
                key_file: cert.join("tls.key"),
                ca_file: ca.join("tls.crt"),
            }
        });
        let api_server = var("API_SERVER");
        let kube_client = client_from_kubeconfig(
            Kubeconfig::read_from(var("KUBECONFIG")).expect("read the stack's kubeconfig"),
        )
        .await;
        Some(Stack {
            nats_url: var("NATS_URL"),
            nats_urls: vec![var("NATS_URL")],
            api: Arc::new(threeport_client(&api_server, api_tls.as_ref())),
            api_server,
            encryption_key: var("ENCRYPTION_KEY"),
            runtime_id: var("KUBERNETES_RUNTIME_INSTANCE_ID")
                .parse()
                .expect("runtime ID"),
            kube: kube_client,
            api_tls,
            parts: Parts::Upstream {
                stack,
                _serial: serial,
            },
        })
    }

    /// The sandbox API, for fault injection and counters (sandbox backend only).
    pub fn sandbox_api(&self) -> Option<&SandboxHandle> {
        match &self.parts {
            Parts::Sandbox(p) => Some(&p.api),
            Parts::Upstream { .. } => None,
        }
    }

    /// The folder of a real stack (`scripts/upstream.sh up DIR`): its `logs/` hold every
    /// component's output and the kube-apiserver audit log.
    pub fn upstream_dir(&self) -> Option<&Path> {
        match &self.parts {
            Parts::Sandbox(_) => None,
            Parts::Upstream { stack, .. } => Some(&stack.dir),
        }
    }

    /// Kill the sandbox's nats-server and start it again on the same port and store (the
    /// real stack's is not restarted here).
    pub fn restart_nats(&mut self) -> Result<(), String> {
        match &mut self.parts {
            Parts::Sandbox(p) => match &mut p.nats {
                SandboxNats::Single(s) => s.restart().map_err(|e| e.to_string()),
                SandboxNats::Cluster(c) => c
                    .servers
                    .iter_mut()
                    .try_for_each(|s| s.restart())
                    .map_err(|e| e.to_string()),
            },
            Parts::Upstream { .. } => Err("the real stack's NATS is not restarted here".into()),
        }
    }

    /// Kill (SIGKILL) member `i` of the sandbox's NATS cluster, for good.
    pub fn kill_nats_member(&mut self, i: usize) -> Result<(), String> {
        match &mut self.parts {
            Parts::Sandbox(p) => match &mut p.nats {
                SandboxNats::Cluster(c) if i < c.servers.len() => {
                    c.servers[i].stop();
                    Ok(())
                }
                _ => Err(format!("no NATS cluster member {i}")),
            },
            Parts::Upstream { .. } => Err("the real stack has no NATS cluster".into()),
        }
    }

    /// The sandbox's Kubernetes API (`None` on the real stack).
    pub fn sandbox_kube(&self) -> Option<&KubeSandboxHandle> {
        match &self.parts {
            Parts::Sandbox(p) => Some(&p.kube),
            Parts::Upstream { .. } => None,
        }
    }

    /// A manager config for this stack: Threeport's settings, short retry timings.
    pub fn config(&self) -> Config {
        let mut c = Config::default();
        c.nats.urls = vec![self.nats_url.as_str().into()];
        c.admin.listen = "127.0.0.1:0".parse().expect("addr");
        c.api.server = self.api_server.clone();
        c.api.auth_enabled = self.api_tls.is_some();
        if let Some(tls) = &self.api_tls {
            c.api.cert_file = tls.cert_file.clone();
            c.api.key_file = tls.key_file.clone();
            c.api.ca_file = tls.ca_file.clone();
        }
        c.encryption_key = Some(Secret::new(self.encryption_key.clone()));
        c.engine.backoff_base = Duration::from_millis(100);
        c.engine.backoff_cap = Duration::from_secs(1);
        c.engine.lock_conflict_delay = Duration::from_millis(200);
        c.engine.fetch_expires = Duration::from_secs(1);
        c.shutdown_timeout = Duration::from_secs(5);
        c
    }

    /// Environment variables (Threeport's names) for a manager or Go controller process.
    pub fn process_env(&self) -> Vec<(String, String)> {
        let (host, port) = self
            .nats_url
            .trim_start_matches("nats://")
            .rsplit_once(':')
            .expect("nats URL with a port");
        let mut vars: Vec<(String, String)> = vec![
            ("API_SERVER".into(), self.api_server.clone()),
            ("AUTH_ENABLED".into(), self.api_tls.is_some().to_string()),
            ("MSG_BROKER_HOST".into(), host.to_string()),
            ("MSG_BROKER_PORT".into(), port.to_string()),
            ("ENCRYPTION_KEY".into(), self.encryption_key.clone()),
        ];
        // Threeport's controllers read their certificates from /etc/threeport; the manager
        // is told where this stack keeps them.
        if let Some(tls) = &self.api_tls {
            for (key, path) in [
                ("CERT_FILE", &tls.cert_file),
                ("KEY_FILE", &tls.key_file),
                ("CA_FILE", &tls.ca_file),
            ] {
                vars.push((
                    format!("THREEPORT_MANAGER__API__{key}"),
                    path.display().to_string(),
                ));
            }
        }
        vars
    }

    pub fn api_tls(&self) -> Option<&ApiTls> {
        self.api_tls.as_ref()
    }

    // --- the Threeport API, over HTTP ---------------------------------------------------

    /// The object, or `None` on 404.
    pub async fn get(&self, ty: ObjectType, id: u64) -> Option<Value> {
        match self.api.get(ty, id).await {
            Ok(o) => Some(o),
            Err(e) if e.status() == Some(404) => None,
            Err(e) => panic!("GET {} {id}: {e}", ty.path),
        }
    }

    /// Every object of a type whose `field` (a query filter) equals `value`, every page.
    pub async fn list_where(&self, ty: ObjectType, filter: &str, value: u64) -> Vec<Value> {
        self.api
            .list(ty, &[(filter, value.to_string())])
            .await
            .unwrap_or_else(|e| panic!("GET {}?{filter}={value}: {e}", ty.path))
    }

    /// Every object of a type, every page.
    pub async fn list_all(&self, ty: ObjectType) -> Vec<Value> {
        self.api
            .list(ty, &[])
            .await
            .unwrap_or_else(|e| panic!("GET {}: {e}", ty.path))
    }

    // --- the runtime cluster ------------------------------------------------------------

    async fn dynamic_api(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Option<Api<DynamicObject>> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        // A kind the cluster does not serve (a CRD that is gone) has no objects.
        let (ar, caps) = kube::discovery::pinned_kind(&self.kube, &gvk).await.ok()?;
        Some(match (caps.scope, namespace) {
            (kube::discovery::Scope::Namespaced, Some(ns)) => {
                Api::namespaced_with(self.kube.clone(), ns, &ar)
            }
            _ => Api::all_with(self.kube.clone(), &ar),
        })
    }

    /// Live objects of a kind (in `namespace`, or everywhere), as JSON.
    pub async fn objects(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Vec<Value> {
        let Some(api) = self.dynamic_api(api_version, kind, namespace).await else {
            return Vec::new();
        };
        api.list(&ListParams::default())
            .await
            .unwrap_or_else(|e| panic!("list {api_version} {kind}: {e}"))
            .items
            .into_iter()
            .map(|o| serde_json::to_value(o).expect("object as JSON"))
            .collect()
    }

    /// Create (server-side apply) the CustomResourceDefinitions of a YAML stream and wait
    /// until the API server serves each of their kinds.
    pub async fn install_crds(&self, yaml: &str) {
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        use kube::api::{Patch, PatchParams};
        let crds: Api<CustomResourceDefinition> = Api::all(self.kube.clone());
        let mut kinds = Vec::new();
        for doc in serde_yaml_ng::Deserializer::from_str(yaml) {
            let crd: Value = serde::Deserialize::deserialize(doc).expect("CRD YAML");
            if crd.is_null() {
                continue;
            }
            let name = crd["metadata"]["name"]
                .as_str()
                .expect("CRD name")
                .to_string();
            crds.patch(
                &name,
                &PatchParams::apply("threeport-manager-tests").force(),
                &Patch::Apply(&crd),
            )
            .await
            .unwrap_or_else(|e| panic!("apply CRD {name}: {e}"));
            let group = crd["spec"]["group"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let kind = crd["spec"]["names"]["kind"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            for v in crd["spec"]["versions"].as_array().into_iter().flatten() {
                let version = v["name"].as_str().unwrap_or_default();
                kinds.push((format!("{group}/{version}"), kind.clone()));
            }
        }
        for (api_version, kind) in kinds {
            crate::harness::common::wait_until(
                std::time::Duration::from_secs(60),
                &format!("{api_version} {kind} served"),
                || async { self.dynamic_api(&api_version, &kind, None).await.is_some() },
            )
            .await;
        }
    }

    /// One live object, or `None` when it (or its kind) does not exist.
    pub async fn object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let api = self.dynamic_api(api_version, kind, namespace).await?;
        api.get_opt(name)
            .await
            .unwrap_or_else(|e| panic!("get {api_version} {kind} {name}: {e}"))
            .map(|o| serde_json::to_value(o).expect("object as JSON"))
    }
}

/// The manager's own API client for `server` (mTLS with `tls`).
pub fn threeport_client(server: &str, tls: Option<&ApiTls>) -> ThreeportClient {
    let unused = PathBuf::from("unused");
    ThreeportClient::new(
        &ApiClientConfig {
            server: server.to_string(),
            auth_enabled: tls.is_some(),
            cert_file: tls.map_or(unused.clone(), |t| t.cert_file.clone()),
            key_file: tls.map_or(unused.clone(), |t| t.key_file.clone()),
            ca_file: tls.map_or(unused, |t| t.ca_file.clone()),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(30),
        },
        None,
    )
    .expect("API client")
}

async fn client_from_kubeconfig(kc: Kubeconfig) -> kube::Client {
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kube config from kubeconfig");
    kube::Client::try_from(config).expect("kube client")
}

/// Whether `scripts/upstream.sh build` has produced the binaries the stack needs.
/// Whether a real-stack test can run: the upstream binaries are built. If not, it says
/// `SKIPPED` and the test returns, unless [`REQUIRE_UPSTREAM_ENV`] is set, which makes it fail.
pub fn upstream_available() -> bool {
    if upstream_built() {
        return true;
    }
    if std::env::var_os(REQUIRE_UPSTREAM_ENV).is_some() {
        panic!("{REQUIRE_UPSTREAM_ENV} is set but the upstream binaries are missing: run scripts/upstream.sh build");
    }
    eprintln!("SKIPPED: the upstream binaries are not built (scripts/upstream.sh build)");
    false
}

/// The helm CLI `scripts/upstream.sh build` makes, or `None` (with a message) when it was
/// never built and [`REQUIRE_UPSTREAM_ENV`] is not set.
pub fn helm_binary() -> Option<PathBuf> {
    let bin = repo_root().join(".tools/upstream/bin/helm");
    if bin.is_file() {
        return Some(bin);
    }
    if std::env::var_os(REQUIRE_UPSTREAM_ENV).is_some() {
        panic!("{REQUIRE_UPSTREAM_ENV} is set but helm is missing: run scripts/upstream.sh build");
    }
    eprintln!("SKIPPED: helm is not built (scripts/upstream.sh build)");
    None
}

pub fn upstream_built() -> bool {
    let bin = repo_root().join(".tools/upstream/bin");
    [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "rest-api",
        "database-migrator",
    ]
    .iter()
    .all(|b| bin.join(b).is_file())
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// How `scripts/upstream.sh up` starts a real stack.
#[derive(Debug, Clone, Copy, Default)]
pub struct UpstreamOptions {
    /// `--auth`: the API with client-certificate authentication.
    pub auth: bool,
    /// `--audit-request-bodies`: kube-apiserver's audit log keeps the body of every create
    /// ([`request_log::KubeRequest::body`]).
    pub audit_request_bodies: bool,
    /// `--token-webhook=PORT`: kube-apiserver has the bearer tokens it does not know reviewed
    /// by a webhook on 127.0.0.1:PORT (EKS's aws-iam-authenticator, played by a test).
    pub token_webhook_port: Option<u16>,
}

/// The processes of `scripts/upstream.sh up DIR`; `down DIR` on drop.
pub struct UpstreamProcesses {
    pub dir: PathBuf,
    pub env: HashMap<String, String>,
}

impl UpstreamProcesses {
    pub fn up(options: UpstreamOptions) -> Result<Self, String> {
        // Not a 0700 temporary folder: PostgreSQL runs as the `postgres` user and must reach
        // its data folder inside. `up` creates it; `down` removes it.
        static STACKS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "upstream-stack-{}-{}",
            std::process::id(),
            STACKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let mut cmd = Command::new(repo_root().join("scripts/upstream.sh"));
        cmd.arg("up").arg(&dir);
        if options.auth {
            cmd.arg("--auth");
        }
        if options.audit_request_bodies {
            cmd.arg("--audit-request-bodies");
        }
        if let Some(port) = options.token_webhook_port {
            cmd.arg(format!("--token-webhook={port}"));
        }
        let out = cmd
            .output()
            .map_err(|e| format!("run scripts/upstream.sh: {e}"))?;
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() {
            let _ = Command::new(repo_root().join("scripts/upstream.sh"))
                .arg("down")
                .arg(&dir)
                .output();
            return Err(format!(
                "scripts/upstream.sh up failed ({}):\n{log}",
                out.status
            ));
        }
        eprint!("{log}");
        let text = std::fs::read_to_string(dir.join("env"))
            .map_err(|e| format!("read {}/env: {e}", dir.display()))?;
        Ok(UpstreamProcesses {
            env: parse_env(&text),
            dir,
        })
    }
}

impl Drop for UpstreamProcesses {
    fn drop(&mut self) {
        if std::env::var_os("THREEPORT_UPSTREAM_KEEP").is_some() {
            eprintln!(
                "keeping the stack in {} (THREEPORT_UPSTREAM_KEEP)",
                self.dir.display()
            );
            return;
        }
        let _ = Command::new(repo_root().join("scripts/upstream.sh"))
            .arg("down")
            .arg(&self.dir)
            .output();
    }
}

/// `export KEY=value` lines of `DIR/env`.
fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
