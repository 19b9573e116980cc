//! A Kubernetes API server for tests: enough of the kube-apiserver for kube-rs and kubectl to
//! talk to it as to a real one (discovery, CRUD, list with selectors, merge patch, an
//! approximation of server-side apply, CRDs, namespace deletion), over TLS with client
//! certificate or bearer-token authentication. See the crate README for what is implemented
//! and how it deviates from a real kube-apiserver.
//!
//! ```no_run
//! # async fn f() -> anyhow::Result<()> {
//! use sandbox::kube::{KubeSandbox, KubeSandboxOptions};
//! let k = KubeSandbox::start(KubeSandboxOptions::default()).await?;
//! let kubeconfig = k.kubeconfig_yaml(); // for kube::Config / kubectl
//! k.shutdown().await;
//! # Ok(()) }
//! ```

mod api;
mod faults;
mod fields;
mod resources;
mod selector;
mod server;
mod status;
mod store;
mod tls;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use base64::Engine as _;
use rand::Rng as _;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use faults::{KubeCounters, KubeFaults, KubeRouteFilter};

/// Options for [`KubeSandbox::start`].
#[derive(Debug, Clone)]
pub struct KubeSandboxOptions {
    /// Where to listen; default `127.0.0.1:0` (a free port).
    pub listen: SocketAddr,
    /// The accepted bearer token; default a random one.
    pub token: Option<String>,
}

impl Default for KubeSandboxOptions {
    fn default() -> Self {
        KubeSandboxOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: None,
        }
    }
}

/// How [`KubeSandboxHandle::register_runtime`] stores credentials in the
/// KubernetesRuntimeInstance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeAuth {
    /// `Certificate` + `CertificateKey` (the client certificate and its key).
    ClientCert,
    /// `ConnectionToken` (the bearer token).
    Token,
}

/// Entry point of the Kubernetes sandbox.
pub struct KubeSandbox;

impl KubeSandbox {
    /// Generate the certificates, bind and start serving.
    pub async fn start(opts: KubeSandboxOptions) -> anyhow::Result<KubeSandboxHandle> {
        let g = tls::generate()?;
        let token = match opts.token {
            Some(t) if !t.is_empty() => t,
            _ => {
                let b: [u8; 24] = rand::thread_rng().gen();
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
            }
        };
        let listener = tokio::net::TcpListener::bind(opts.listen).await?;
        let addr = listener.local_addr()?;
        let app = Arc::new(api::App {
            token: token.clone(),
            faults: KubeFaults::default(),
            counters: faults::CounterStore::default(),
            store: Mutex::new(store::Store::new()),
            server_address: addr.to_string(),
        });
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let task = tokio::spawn(server::serve(
            listener,
            app.clone(),
            g.server_config,
            cancel.clone(),
            tracker.clone(),
        ));
        Ok(KubeSandboxHandle {
            addr,
            app,
            ca_pem: g.ca_pem,
            client_cert_pem: g.client_cert_pem,
            client_key_pem: g.client_key_pem,
            token,
            cancel,
            tracker,
            task: Some(task),
        })
    }
}

/// A running Kubernetes sandbox. Dropping it stops accepting connections.
pub struct KubeSandboxHandle {
    addr: SocketAddr,
    app: Arc<api::App>,
    ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
    token: String,
    cancel: CancellationToken,
    tracker: TaskTracker,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for KubeSandboxHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Threeport's ThreeportWorkload CRD (manifests/crds/threeportworkloads.yaml).
const THREEPORT_WORKLOAD_CRD: &str =
    include_str!("../../../manifests/crds/threeportworkloads.yaml");

fn split_api_version(av: &str) -> (&str, &str) {
    match av.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", av),
    }
}

impl KubeSandboxHandle {
    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The listening address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// PEM of the CA that signed the server certificate (SANs `localhost`, `127.0.0.1`) and
    /// the client certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// PEM of a client certificate the server accepts (CN `kubernetes-admin`, O
    /// `system:masters`).
    pub fn client_cert_pem(&self) -> &str {
        &self.client_cert_pem
    }

    /// PEM (PKCS#8, ECDSA P-256) of the client certificate's key.
    pub fn client_key_pem(&self) -> &str {
        &self.client_key_pem
    }

    /// The accepted bearer token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// A kubeconfig (cluster `sandbox`, user `sandbox-admin` with the client certificate,
    /// context `sandbox`, current) with the PEMs inlined as `*-data`.
    pub fn kubeconfig_yaml(&self) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: sandbox\n  cluster:\n    server: {}\n    certificate-authority-data: {}\nusers:\n- name: sandbox-admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: sandbox\n  context:\n    cluster: sandbox\n    user: sandbox-admin\ncurrent-context: sandbox\npreferences: {{}}\n",
            self.url(),
            b64(&self.ca_pem),
            b64(&self.client_cert_pem),
            b64(&self.client_key_pem)
        )
    }

    /// Fault injection, changeable while the server runs.
    pub fn faults(&self) -> &KubeFaults {
        &self.app.faults
    }

    /// A snapshot of the request counters.
    pub fn counters(&self) -> KubeCounters {
        self.app.counters.snapshot()
    }

    /// Live objects of `apiVersion`/`kind` (as a GET returns them); `namespace` `None` = all
    /// namespaces (or a cluster-scoped type). Unknown types give an empty list.
    pub fn objects(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        let (g, v) = split_api_version(api_version);
        let store = self.app.store();
        match store.def_by_kind(g, v, kind).cloned() {
            Some(def) => store.objects_of(&def, v, namespace),
            None => Vec::new(),
        }
    }

    /// One live object, if it exists.
    pub fn get_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let (g, v) = split_api_version(api_version);
        let store = self.app.store();
        let def = store.def_by_kind(g, v, kind).cloned()?;
        store.get(&def, v, namespace, name).ok()
    }

    /// Create an object directly in the store, as a POST by the sandbox itself would (field
    /// manager `sandbox`); CRDs are registered and served at once. Errors carry the API's
    /// message (e.g. AlreadyExists).
    pub fn create_object(&self, obj: Value) -> anyhow::Result<Value> {
        let av = obj["apiVersion"].as_str().unwrap_or_default().to_string();
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        let ns = obj["metadata"]["namespace"].as_str().map(str::to_string);
        let (g, v) = split_api_version(&av);
        let mut store = self.app.store();
        let def = store
            .def_by_kind(g, v, &kind)
            .cloned()
            .with_context(|| format!("unknown type {av} {kind}"))?;
        let w = store::Writer {
            manager: "sandbox".into(),
            dry_run: false,
        };
        store
            .create(&def, v, ns.as_deref(), obj, &w, None)
            .map_err(|e| anyhow::anyhow!("creating {kind}: {}", e.message))
    }

    /// Install the ThreeportWorkload CRD (`threeportworkloads.control-plane.threeport.io`,
    /// cluster-scoped, `v1alpha1`), as Threeport's installer does on every runtime cluster.
    pub fn install_threeport_workload_crd(&self) -> anyhow::Result<()> {
        // The same definition scripts/upstream.sh installs on the real kube-apiserver
        // (Threeport's, with its schema and status subresource).
        let crd: Value = serde_yaml_ng::from_str(THREEPORT_WORKLOAD_CRD)
            .context("parse manifests/crds/threeportworkloads.yaml")?;
        self.create_object(crd).map(|_| ())
    }

    /// Set (or with `Value::Null` remove) an object's `status`, as a controller would through
    /// the status subresource: resourceVersion is bumped, nothing else changes. Returns the
    /// updated object, or `None` if the type or object does not exist.
    pub fn set_status(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        status: Value,
    ) -> Option<Value> {
        let (g, v) = split_api_version(api_version);
        let mut store = self.app.store();
        let def = store.def_by_kind(g, v, kind).cloned()?;
        let w = store::Writer {
            manager: "sandbox".into(),
            dry_run: false,
        };
        let status = (!status.is_null()).then_some(status);
        store
            .write_status(&def, v, namespace, name, status, None, &w)
            .ok()
    }

    /// Register this cluster in a sandbox Threeport API: POST a KubernetesRuntimeDefinition
    /// `<name>-def` (InfraProvider `kind`, Reconciled) and a KubernetesRuntimeInstance `name`
    /// (Location `Local`, APIEndpoint, CACertificate, the credentials chosen by `auth`,
    /// Reconciled, DefaultRuntime). The Threeport sandbox encrypts `CertificateKey` /
    /// `ConnectionToken` when it has an encryption key, as Threeport does. Returns the
    /// instance's ID.
    pub async fn register_runtime(
        &self,
        api: &crate::threeport::SandboxHandle,
        name: &str,
        auth: RuntimeAuth,
    ) -> anyhow::Result<u64> {
        let def = server::post_json(
            api,
            "/v0/kubernetes-runtime-definitions",
            &json!({"Name": format!("{name}-def"), "InfraProvider": "kind", "Reconciled": true}),
        )
        .await
        .context("creating the KubernetesRuntimeDefinition")?;
        let def_id = def["Data"][0]["ID"]
            .as_u64()
            .context("KubernetesRuntimeDefinition response without Data[0].ID")?;
        let mut kri = json!({
            "Name": name,
            "Location": "Local",
            "KubernetesRuntimeDefinitionID": def_id,
            "APIEndpoint": self.url(),
            "CACertificate": self.ca_pem,
            "Reconciled": true,
            "DefaultRuntime": true,
        });
        match auth {
            RuntimeAuth::ClientCert => {
                kri["Certificate"] = json!(self.client_cert_pem);
                kri["CertificateKey"] = json!(self.client_key_pem);
            }
            RuntimeAuth::Token => kri["ConnectionToken"] = json!(self.token),
        }
        let inst = server::post_json(api, "/v0/kubernetes-runtime-instances", &kri)
            .await
            .context("creating the KubernetesRuntimeInstance")?;
        inst["Data"][0]["ID"]
            .as_u64()
            .context("KubernetesRuntimeInstance response without Data[0].ID")
    }

    /// Stop accepting, finish open connections, wait for the server task.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}
