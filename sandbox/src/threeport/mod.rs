//! A Threeport REST API fake with high fidelity (spec sections 1.4, 1.5 and 2): table-driven
//! object types, Threeport's envelope and status codes, write validation, query filters and
//! pagination, two-phase delete, encryption at rest, and NATS JetStream notifications with
//! the exact payload of the real API. Also fault injection and request counters.
//!
//! See `sandbox/README.md` for what is and is not implemented and every known deviation.

mod api;
pub mod crypto;
mod faults;
mod server;
mod store;
mod tls;
pub mod types;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use faults::{Counters, Faults, NotificationDrops, RouteFilter};
pub use store::FIRST_ID;
pub use tls::TlsFiles;

/// How to start the sandbox API.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Where to listen; default `127.0.0.1:0` (a free port).
    pub listen: SocketAddr,
    /// If set: connect, create the streams at start (as the API does) and publish
    /// notifications. If unset, no notifications are published. Several URLs (a cluster's
    /// members) are separated by commas.
    pub nats_url: Option<String>,
    /// NATS user and password (Threeport's `NATS_USER`/`NATS_PASSWORD`).
    pub nats_user_password: Option<(String, String)>,
    /// Serve HTTPS and require a client certificate signed by the sandbox CA (mTLS).
    pub tls: bool,
    /// Where to write the TLS files; default: a temporary directory removed with the handle.
    pub tls_dir: Option<PathBuf>,
    /// Threeport's `ENCRYPTION_KEY` (standard base64 of 16/24/32 bytes). When set,
    /// `CertificateKey` and `ConnectionToken` of KubernetesRuntimeInstance are encrypted on
    /// create, and on update when the value changed.
    pub encryption_key: Option<String>,
    /// Replicas of the streams it creates (Threeport sets none: 1). More than one is a
    /// JetStream cluster deployment; the streams are then created as soon as the cluster has
    /// elected its meta leader (waited for, 30 s at most).
    pub stream_replicas: usize,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            nats_url: None,
            nats_user_password: None,
            tls: false,
            tls_dir: None,
            encryption_key: None,
            stream_replicas: 1,
        }
    }
}

/// Entry point of the sandbox Threeport API.
pub struct SandboxApi;

impl SandboxApi {
    /// Connect to NATS and create the streams (if `nats_url` is set), generate TLS material
    /// (if `tls`), bind and start serving.
    pub async fn start(opts: SandboxOptions) -> anyhow::Result<SandboxHandle> {
        let key = match &opts.encryption_key {
            Some(k) if !k.is_empty() => Some(crypto::Key::from_base64(k)?),
            _ => None,
        };
        let (js, nats) = match &opts.nats_url {
            Some(url) => {
                let mut co = async_nats::ConnectOptions::new();
                if let Some((u, p)) = &opts.nats_user_password {
                    co = co.user_and_password(u.clone(), p.clone());
                }
                // A comma-separated list names every member of a cluster.
                let servers = url
                    .split(',')
                    .map(|u| u.trim().parse::<async_nats::ServerAddr>())
                    .collect::<Result<Vec<_>, _>>()?;
                let client = co.connect(servers).await?;
                let js = async_nats::jetstream::new(client.clone());
                server::create_streams(&js, opts.stream_replicas.max(1)).await?;
                (Some(js), Some(client))
            }
            None => (None, None),
        };

        let (tls_files, tls_tmp, tls_config) = if opts.tls {
            let (dir, tmp) = match &opts.tls_dir {
                Some(d) => (d.clone(), None),
                None => {
                    let t = tempfile::Builder::new()
                        .prefix("threeport-sandbox-tls-")
                        .tempdir()?;
                    (t.path().to_path_buf(), Some(t))
                }
            };
            let g = tls::generate(&dir)?;
            (Some(g.files), tmp, Some(g.server_config))
        } else {
            (None, None, None)
        };

        let faults = Arc::new(Faults::default());
        let counters = Arc::new(faults::CounterStore::default());
        let app = Arc::new(api::App {
            store: Mutex::new(store::Store::default()),
            faults: faults.clone(),
            counters: counters.clone(),
            js,
            key,
            drops: Arc::default(),
        });

        let listener = tokio::net::TcpListener::bind(opts.listen).await?;
        let addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let server_task = tokio::spawn(server::serve(
            listener,
            app.clone(),
            tls_config,
            cancel.clone(),
            tracker.clone(),
        ));
        let scheme = if opts.tls { "https" } else { "http" };
        Ok(SandboxHandle {
            addr,
            base_url: format!("{scheme}://{addr}"),
            tls_files,
            _tls_tmp: tls_tmp,
            faults,
            counters,
            app,
            cancel,
            tracker,
            server_task,
            nats,
        })
    }
}

/// A running sandbox API. Dropping it without [`SandboxHandle::shutdown`] stops accepting
/// connections as well (the accept loop is cancelled).
pub struct SandboxHandle {
    addr: SocketAddr,
    base_url: String,
    tls_files: Option<TlsFiles>,
    _tls_tmp: Option<tempfile::TempDir>,
    faults: Arc<Faults>,
    counters: Arc<faults::CounterStore>,
    app: Arc<api::App>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    server_task: tokio::task::JoinHandle<()>,
    nats: Option<async_nats::Client>,
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl SandboxHandle {
    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// `127.0.0.1:PORT`: Threeport's `API_SERVER` form (no scheme).
    pub fn api_server(&self) -> String {
        self.addr.to_string()
    }

    /// The address the API listens on (127.0.0.1 and the port it picked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The CA, client certificate and key, when started with `tls: true`.
    pub fn tls_files(&self) -> Option<&TlsFiles> {
        self.tls_files.as_ref()
    }

    /// Fault injection, effective immediately for new requests.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Notifications to lose on purpose (see [`NotificationDrops`]), effective immediately.
    pub fn notification_drops(&self) -> &NotificationDrops {
        &self.app.drops
    }

    /// A snapshot of the request counters.
    pub fn counters(&self) -> Counters {
        self.counters.snapshot()
    }

    fn objects(&self, type_path: &str, deleted: bool) -> Vec<Value> {
        let Some(td) = types::by_path(type_path) else {
            return Vec::new();
        };
        let st = self.app.lock();
        st.tables
            .get(td.path)
            .into_iter()
            .flat_map(|t| t.values())
            .filter(|r| r.deleted == deleted)
            .filter_map(|r| serde_json::from_str(&store::render(td, r, &HashMap::new())).ok())
            .collect()
    }

    /// Live (not soft-deleted) objects of a type, e.g. `"workload-instances"`, by ID.
    /// Direct store access: no HTTP, no counters, no notifications.
    pub fn list_objects(&self, type_path: &str) -> Vec<Value> {
        self.objects(type_path, false)
    }

    /// One live object, as `GET /v0/<type_path>/<id>` would return it in `Data[0]`.
    pub fn get_object(&self, type_path: &str, id: u64) -> Option<Value> {
        let td = types::by_path(type_path)?;
        let st = self.app.lock();
        let r = st.get_live(td.path, id)?;
        serde_json::from_str(&store::render(td, r, &HashMap::new())).ok()
    }

    /// Soft-deleted objects of a type (with `DeletedAt`).
    pub fn deleted_objects(&self, type_path: &str) -> Vec<Value> {
        self.objects(type_path, true)
    }

    /// Stop accepting, close connections gracefully and flush the NATS connection.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        let task = std::mem::replace(&mut self.server_task, tokio::spawn(async {}));
        let _ = task.await;
        self.tracker.close();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.tracker.wait()).await;
        if let Some(n) = self.nats.take() {
            let _ = n.flush().await;
        }
    }
}
