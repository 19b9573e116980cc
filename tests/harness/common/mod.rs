//! Shared helpers of the integration tests: a real nats-server, the sandbox Threeport API, a
//! scriptable test reconciler, and waiting on conditions (never sleep-and-hope).
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sandbox::nats::NatsServer;
use sandbox::threeport::{SandboxApi, SandboxHandle, SandboxOptions};
use serde_json::{json, Value};
use threeport_manager::config::Config;
use threeport_manager::engine::{
    binding_for, Operation, Outcome, ReconcileContext, ReconcileError, Reconciler,
};
use threeport_manager::runtime::{Manager, ManagerOptions};
use threeport_manager::threeport::client::{ApiClientConfig, ThreeportClient};
use threeport_manager::threeport::{ObjectType, ThreeportApi};

pub const WD: ObjectType = ObjectType::new("WorkloadDefinition", "workload-definitions");

/// A nats-server plus a sandbox API that publishes to it.
pub struct ControlPlane {
    pub nats: NatsServer,
    pub sandbox: SandboxHandle,
    pub api: Arc<dyn ThreeportApi>,
}

impl ControlPlane {
    pub async fn start() -> Self {
        let nats =
            NatsServer::start().expect("start nats-server (run scripts/install-nats-server.sh)");
        let sandbox = SandboxApi::start(SandboxOptions {
            nats_url: Some(nats.url()),
            ..Default::default()
        })
        .await
        .expect("start sandbox API");
        let api = Arc::new(api_client(&sandbox)) as Arc<dyn ThreeportApi>;
        Self { nats, sandbox, api }
    }

    pub async fn nats_client(&self) -> async_nats::Client {
        async_nats::connect(self.nats.url())
            .await
            .expect("connect to test nats-server")
    }

    pub async fn jetstream(&self) -> async_nats::jetstream::Context {
        async_nats::jetstream::new(self.nats_client().await)
    }

    /// POST a WorkloadDefinition (publishes `workloadDefinition.create`); returns its ID.
    pub async fn create_wd(&self, name: &str) -> u64 {
        let obj = self
            .api
            .create(WD, json!({"Name": name, "YAMLDocument": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"}))
            .await
            .expect("POST workload definition");
        obj["ID"].as_u64().expect("ID")
    }

    /// A manager config pointing at this control plane, with short timings for tests.
    pub fn config(&self) -> Config {
        fast_config(&self.nats.url(), &self.sandbox.api_server())
    }

    /// Start a manager running `reconciler` (a registry name) with the test reconciler `r`
    /// against this control plane, and wait until it is ready.
    pub async fn start_manager(
        &self,
        reconciler: &str,
        r: &TestReconciler,
        workers: usize,
        config: Config,
    ) -> Manager {
        let binding = binding_for(reconciler, Arc::new(r.clone()), workers)
            .expect("registry has the reconciler");
        let m = Manager::start(
            config,
            ManagerOptions {
                bindings: Some(vec![binding]),
                api: Some(self.api.clone()),
            },
        )
        .await
        .expect("manager starts");
        wait_until(Duration::from_secs(20), "manager ready", || async {
            m.readiness().is_ready()
        })
        .await;
        m
    }

    /// Wait until the sandbox shows the WorkloadDefinition `id` as reconciled.
    pub async fn wait_reconciled(&self, id: u64, limit: Duration) {
        wait_until(
            limit,
            &format!("workload definition {id} reconciled"),
            || async {
                self.sandbox
                    .get_object("workload-definitions", id)
                    .is_some_and(|o| o["Reconciled"] == true)
            },
        )
        .await;
    }
}

/// [`local_config`] against this API, with short retry timings so tests converge quickly.
pub fn fast_config(nats_url: &str, api_server: &str) -> Config {
    let mut c = local_config(nats_url);
    c.api.server = api_server.to_string();
    c.engine.backoff_base = Duration::from_millis(100);
    c.engine.backoff_cap = Duration::from_secs(1);
    c.engine.lock_conflict_delay = Duration::from_millis(200);
    c.engine.fetch_expires = Duration::from_secs(1);
    c.shutdown_timeout = Duration::from_secs(5);
    // Off unless a test is about it: a run would add calls to the counts the engine suites
    // assert (tests/resync.rs turns it on with short timings, see `resync_config`).
    c.resync.enabled = false;
    c
}

/// [`fast_config`] with the resync on: every `interval`, grace `grace`, no jitter.
pub fn resync_config(
    nats_url: &str,
    api_server: &str,
    interval: Duration,
    grace: Duration,
) -> Config {
    let mut c = fast_config(nats_url, api_server);
    c.resync.enabled = true;
    c.resync.interval = interval;
    c.resync.grace = grace;
    c.resync.jitter = 0.0;
    c
}

/// Defaults, plus: this NATS, admin on a random loopback port, plain-http API.
pub fn local_config(nats_url: &str) -> Config {
    let mut c = Config::default();
    c.nats.urls = vec![nats_url.into()];
    c.admin.listen = "127.0.0.1:0".parse().expect("addr");
    c.api.auth_enabled = false;
    c
}

/// The manager's own client, pointed at a sandbox without auth.
pub fn api_client(sandbox: &SandboxHandle) -> ThreeportClient {
    ThreeportClient::new(
        &ApiClientConfig {
            server: sandbox.api_server(),
            auth_enabled: false,
            cert_file: "unused".into(),
            key_file: "unused".into(),
            ca_file: "unused".into(),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
        },
        None,
    )
    .expect("API client")
}

/// Wait until `cond` is true, polling every 20 ms, or panic with `what` after `limit`.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if cond().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One call the test reconciler saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub op: Operation,
    pub id: u64,
    pub attempt: u64,
}

/// What the test reconciler does on each call, chosen per call number (0-based, across all
/// objects) by the script.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    Succeed,
    Fail,
    /// Fail with an error that needs someone to change something.
    FailPermanently,
    Requeue(Duration),
    Panic,
    /// Sleep, then succeed (cut short if the context is cancelled, which is recorded).
    Sleep(Duration),
    /// Block until the context is cancelled.
    BlockUntilCancelled,
}

/// Chooses what the n-th call does.
pub type Script = Arc<dyn Fn(usize, &Call) -> Act + Send + Sync>;

/// A reconciler that records calls, tracks concurrency per object, and acts as scripted.
#[derive(Clone)]
pub struct TestReconciler {
    pub calls: Arc<Mutex<Vec<Call>>>,
    in_flight: Arc<Mutex<HashMap<u64, usize>>>,
    pub max_in_flight_per_object: Arc<AtomicUsize>,
    pub max_in_flight_total: Arc<AtomicUsize>,
    total_in_flight: Arc<AtomicUsize>,
    pub cancelled: Arc<AtomicUsize>,
    script: Script,
}

impl TestReconciler {
    pub fn new(script: impl Fn(usize, &Call) -> Act + Send + Sync + 'static) -> Self {
        Self {
            calls: Arc::default(),
            in_flight: Arc::default(),
            max_in_flight_per_object: Arc::default(),
            max_in_flight_total: Arc::default(),
            total_in_flight: Arc::default(),
            cancelled: Arc::default(),
            script: Arc::new(script),
        }
    }

    pub fn succeeding() -> Self {
        Self::new(|_, _| Act::Succeed)
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("lock").clone()
    }

    pub fn call_count(&self) -> usize {
        self.calls.lock().expect("lock").len()
    }

    async fn act(&self, ctx: &ReconcileContext, op: Operation) -> Result<Outcome, ReconcileError> {
        let call = Call {
            op,
            id: ctx.object_id,
            attempt: ctx.attempt,
        };
        let n = {
            let mut calls = self.calls.lock().expect("lock");
            calls.push(call.clone());
            calls.len() - 1
        };
        {
            let mut m = self.in_flight.lock().expect("lock");
            let c = m.entry(ctx.object_id).or_default();
            *c += 1;
            self.max_in_flight_per_object
                .fetch_max(*c, Ordering::SeqCst);
        }
        let total = self.total_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight_total.fetch_max(total, Ordering::SeqCst);
        let mut guard = InFlightGuard {
            owner: self,
            id: ctx.object_id,
            finished: false,
        };
        let result = self.run_act((self.script)(n, &call), ctx).await;
        guard.finished = true;
        result
    }

    async fn run_act(&self, act: Act, ctx: &ReconcileContext) -> Result<Outcome, ReconcileError> {
        match act {
            Act::Succeed => Ok(Outcome::Done),
            Act::Fail => Err(ReconcileError::transient("scripted failure")),
            Act::FailPermanently => Err(ReconcileError::permanent("scripted permanent failure")),
            Act::Requeue(d) => Ok(Outcome::RequeueAfter(d)),
            Act::Panic => panic!("scripted panic"),
            Act::Sleep(d) => {
                tokio::select! {
                    _ = tokio::time::sleep(d) => Ok(Outcome::Done),
                    _ = ctx.cancel.cancelled() => {
                        self.cancelled.fetch_add(1, Ordering::SeqCst);
                        Err(ReconcileError::transient("cancelled"))
                    }
                }
            }
            Act::BlockUntilCancelled => {
                ctx.cancel.cancelled().await;
                self.cancelled.fetch_add(1, Ordering::SeqCst);
                Err(ReconcileError::transient("cancelled"))
            }
        }
    }
}

/// Decrements the in-flight counters even when the reconcile future is dropped (the engine
/// drops it on lock loss and abort).
struct InFlightGuard<'a> {
    owner: &'a TestReconciler,
    id: u64,
    finished: bool,
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut m) = self.owner.in_flight.lock() {
            if let Some(c) = m.get_mut(&self.id) {
                *c = c.saturating_sub(1);
            }
        }
        self.owner.total_in_flight.fetch_sub(1, Ordering::SeqCst);
        // Dropped before it finished: the engine cancelled it (lock lost, shutdown abort).
        if !self.finished {
            self.owner.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[async_trait]
impl Reconciler for TestReconciler {
    type Object = Value;

    async fn created(
        &self,
        ctx: &ReconcileContext,
        _object: Value,
    ) -> Result<Outcome, ReconcileError> {
        self.act(ctx, Operation::Created).await
    }

    async fn updated(
        &self,
        ctx: &ReconcileContext,
        _object: Value,
    ) -> Result<Outcome, ReconcileError> {
        self.act(ctx, Operation::Updated).await
    }

    async fn deleted(
        &self,
        ctx: &ReconcileContext,
        _object: Value,
    ) -> Result<Outcome, ReconcileError> {
        self.act(ctx, Operation::Deleted).await
    }
}

/// A minimal HTTP/1.1 GET against the admin server: (status, body).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect admin");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Publish a raw notification payload on a subject and wait for the PubAck.
pub async fn publish(js: &async_nats::jetstream::Context, subject: &str, payload: Vec<u8>) {
    js.publish(subject.to_string(), payload.into())
        .await
        .expect("publish")
        .await
        .expect("puback");
}

/// A Threeport notification payload for an ID.
pub fn notification(op: &str, id: u64) -> Vec<u8> {
    format!(r#"{{"Operation":"{op}","CreationTime":1700000000,"Object":{{"ID":{id}}},"ObjectVersion":"v0"}}"#).into_bytes()
}
