//! Engine throughput and latency against the raw NATS floor, measured in one run.
//!
//! ```text
//! cargo bench --bench engine               # N=2000 per cell
//! cargo bench --bench engine -- --n 5000
//! ```
//!
//! Method (the same for every row): a closed loop with `c` clients. Each client publishes a
//! Threeport notification (`workloadDefinition.update`) for its next object, waits for that
//! object's completion, and repeats until N notifications are done. Latency is publish ->
//! completion; throughput is N / wall time.
//!
//! - floor: no engine. `c` workers pull from a durable consumer and, per message, do what the
//!   engine cannot avoid doing on NATS: KV `create` of the lock, revision-checked `delete`,
//!   `double_ack`. Completion = the double ack returned.
//! - (a) engine, API in memory: the manager's engine with a no-op reconciler and `c` workers; the
//!   Threeport API behind its trait answers in memory. The engine does lock create, GET latest,
//!   reconcile, PATCH `Reconciled:true`, revision-checked release, double ack, then records the
//!   success event. Completion = the engine's first event call for the object (after the ack).
//! - (b) engine, sandbox API: the same against the sandbox Threeport API over loopback HTTP
//!   (GET, PATCH and the event calls: 2 + 2..4 HTTP requests per reconcile).
//!
//! Each row gets a fresh nats-server (file storage, loopback) so rows do not share state.

#[path = "../tests/harness/mod.rs"]
mod harness;
use harness::common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, kv};
use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use threeport_manager::engine::{
    binding_for, Outcome, ReconcileContext, ReconcileError, Reconciler,
};
use threeport_manager::runtime::{Manager, ManagerOptions};
use threeport_manager::threeport::{ApiError, ApiRequest, ApiResponse, Method, ThreeportApi};

/// Completion signals by object ID.
#[derive(Clone, Default)]
struct Completions(Arc<Mutex<HashMap<u64, oneshot::Sender<Instant>>>>);

impl Completions {
    fn expect(&self, id: u64) -> oneshot::Receiver<Instant> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut m) = self.0.lock() {
            m.insert(id, tx);
        }
        rx
    }

    fn complete(&self, id: u64) {
        let tx = self.0.lock().ok().and_then(|mut m| m.remove(&id));
        if let Some(tx) = tx {
            let _ = tx.send(Instant::now());
        }
    }
}

/// The ID an events-join request is about (the engine's first call after the ack).
fn event_join_object(req: &ApiRequest) -> Option<u64> {
    if req.route != "/v0/events-join-attached-object-references" {
        return None;
    }
    req.query
        .iter()
        .find(|(k, _)| k == "objectid")
        .and_then(|(_, v)| v.parse().ok())
}

/// The Threeport API answered in memory: every object exists and is unreconciled.
struct InMemoryApi {
    done: Completions,
    next_id: AtomicU64,
}

#[async_trait]
impl ThreeportApi for InMemoryApi {
    async fn call(&self, req: ApiRequest) -> Result<ApiResponse, ApiError> {
        if let Some(id) = event_join_object(&req) {
            self.done.complete(id);
            return Ok(ApiResponse::default());
        }
        let id_from_path = req
            .path
            .rsplit('/')
            .next()
            .and_then(|s| s.parse::<u64>().ok());
        let data = match req.method {
            Method::Get => json!({"ID": id_from_path, "Name": "bench", "Reconciled": false}),
            Method::Post => json!({"ID": self.next_id.fetch_add(1, Ordering::Relaxed)}),
            _ => json!({"ID": id_from_path}),
        };
        Ok(ApiResponse {
            data: vec![data],
            ..Default::default()
        })
    }
}

/// The real client against the sandbox, signalling completions.
struct Signalling<A> {
    inner: A,
    done: Completions,
}

#[async_trait]
impl<A: ThreeportApi> ThreeportApi for Signalling<A> {
    async fn call(&self, req: ApiRequest) -> Result<ApiResponse, ApiError> {
        if let Some(id) = event_join_object(&req) {
            self.done.complete(id);
        }
        self.inner.call(req).await
    }
}

/// A reconciler that does nothing.
struct NoOp;

#[async_trait]
impl Reconciler for NoOp {
    type Object = Value;
    async fn created(&self, _: &ReconcileContext, _: Value) -> Result<Outcome, ReconcileError> {
        Ok(Outcome::Done)
    }
    async fn updated(&self, _: &ReconcileContext, _: Value) -> Result<Outcome, ReconcileError> {
        Ok(Outcome::Done)
    }
    async fn deleted(&self, _: &ReconcileContext, _: Value) -> Result<Outcome, ReconcileError> {
        Ok(Outcome::Done)
    }
}

struct Cell {
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Run the closed loop: `c` clients, `ids` objects (round-robin so each client has its own).
async fn closed_loop(
    js: &jetstream::Context,
    done: &Completions,
    ids: &[u64],
    n: usize,
    c: usize,
) -> Cell {
    let issued = Arc::new(AtomicUsize::new(0));
    let lat = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let start = Instant::now();
    let clients = (0..c).map(|k| {
        let js = js.clone();
        let done = done.clone();
        let issued = issued.clone();
        let lat = lat.clone();
        // Each client owns a disjoint slice of the objects, so no two in-flight notifications
        // are for one object (which would measure lock conflicts, not throughput).
        let mine: Vec<u64> = ids.iter().copied().skip(k).step_by(c).collect();
        async move {
            let mut i = 0;
            while issued.fetch_add(1, Ordering::SeqCst) < n {
                let id = mine[i % mine.len()];
                i += 1;
                let rx = done.expect(id);
                let t0 = Instant::now();
                common::publish(
                    &js,
                    "workloadDefinition.update",
                    common::notification("Updated", id),
                )
                .await;
                match tokio::time::timeout(Duration::from_secs(10), rx).await {
                    Ok(Ok(t1)) => lat.lock().expect("lat").push(t1.duration_since(t0)),
                    _ => panic!("object {id} did not complete within 10 s"),
                }
            }
        }
    });
    futures::future::join_all(clients).await;
    let wall = start.elapsed();
    let mut l = lat.lock().expect("lat").clone();
    l.sort();
    let pct = |p: f64| l[((l.len() as f64 * p) as usize).min(l.len() - 1)].as_secs_f64() * 1e3;
    Cell {
        per_sec: l.len() as f64 / wall.as_secs_f64(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    }
}

async fn create_stream(js: &jetstream::Context) {
    // As the Threeport API creates it: name and subjects only.
    js.get_or_create_stream(jetstream::stream::Config {
        name: "workloadStream".into(),
        subjects: ["create", "update", "delete"]
            .iter()
            .flat_map(|op| {
                [
                    format!("workloadDefinition.{op}"),
                    format!("workloadInstance.{op}"),
                ]
            })
            .collect(),
        ..Default::default()
    })
    .await
    .expect("stream");
}

/// The raw NATS floor: lock create + revision-checked delete + double ack per message.
async fn floor(n: usize, c: usize) -> Cell {
    let nats = sandbox::nats::NatsServer::start().expect("nats");
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let js = jetstream::new(client);
    create_stream(&js).await;
    let store = js
        .create_key_value(kv::Config {
            bucket: "workloadLock".into(),
            history: 1,
            max_age: Duration::from_secs(1200),
            ..Default::default()
        })
        .await
        .expect("kv");
    let consumer = js
        .get_stream("workloadStream")
        .await
        .expect("stream")
        .create_consumer(pull::Config {
            durable_name: Some("WorkloadDefinitionReconcilerConsumer".into()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            filter_subject: "workloadDefinition.*".into(),
            ..Default::default()
        })
        .await
        .expect("consumer");
    let done = Completions::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let worker = {
        let done = done.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            // Pull exactly like the engine: one batch request sized to the free workers.
            let sem = Arc::new(tokio::sync::Semaphore::new(c));
            loop {
                let first = tokio::select! {
                    _ = stop.cancelled() => return,
                    p = sem.clone().acquire_owned() => p.expect("permit"),
                };
                let mut permits = vec![first];
                while let Ok(p) = sem.clone().try_acquire_owned() {
                    permits.push(p);
                }
                let mut batch = match consumer
                    .batch()
                    .max_messages(permits.len())
                    .expires(Duration::from_secs(1))
                    .messages()
                    .await
                {
                    Ok(b) => b,
                    Err(e) => {
                        eprintln!("floor: pull: {e}");
                        continue;
                    }
                };
                while let Some(item) = tokio::select! {
                    _ = stop.cancelled() => return,
                    m = batch.next() => m,
                } {
                    let msg = match item {
                        Ok(m) => m,
                        Err(e) => {
                            eprintln!("floor: pull: {e}");
                            break;
                        }
                    };
                    let Some(permit) = permits.pop() else { break };
                    let store = store.clone();
                    let done = done.clone();
                    tokio::spawn(async move {
                        let n = threeport_manager::engine::notification::decode(&msg.payload)
                            .expect("valid");
                        let key = format!("WorkloadDefinitionReconciler.{}", n.object_id);
                        let rev = store.create(&key, "floor".into()).await.expect("create");
                        store
                            .delete_expect_revision(&key, Some(rev))
                            .await
                            .expect("delete");
                        msg.double_ack().await.expect("ack");
                        done.complete(n.object_id);
                        drop(permit);
                    });
                }
            }
        })
    };
    let ids: Vec<u64> = (1..=(c as u64 * 4)).map(|i| (1u64 << 60) + i).collect();
    let cell = closed_loop(&js, &done, &ids, n, c).await;
    stop.cancel();
    let _ = worker.await;
    cell
}

async fn engine_in_memory(n: usize, c: usize) -> Cell {
    let nats = sandbox::nats::NatsServer::start().expect("nats");
    let js = jetstream::new(async_nats::connect(nats.url()).await.expect("connect"));
    create_stream(&js).await;
    let done = Completions::default();
    let api = Arc::new(InMemoryApi {
        done: done.clone(),
        next_id: AtomicU64::new(1 << 61),
    });
    let config = common::local_config(&nats.url());
    let binding = binding_for("WorkloadDefinitionReconciler", Arc::new(NoOp), c).expect("binding");
    let m = Manager::start(
        config,
        ManagerOptions {
            bindings: Some(vec![binding]),
            api: Some(api),
        },
    )
    .await
    .expect("manager");
    wait_ready(&m).await;
    let ids: Vec<u64> = (1..=(c as u64 * 4)).map(|i| (1u64 << 60) + i).collect();
    let cell = closed_loop(&js, &done, &ids, n, c).await;
    m.shutdown().await;
    cell
}

async fn engine_sandbox(n: usize, c: usize) -> Cell {
    let cp = common::ControlPlane::start().await;
    let done = Completions::default();
    let api = Arc::new(Signalling {
        inner: common::api_client(&cp.sandbox),
        done: done.clone(),
    });
    // Objects that exist and are reconciled (POST with Reconciled:true publishes nothing).
    let mut ids = Vec::new();
    for i in 0..(c * 4) {
        let o = cp
            .api
            .create(common::WD, json!({"Name": format!("bench-{i}"), "YAMLDocument": "kind: ConfigMap", "Reconciled": true}))
            .await
            .expect("create");
        ids.push(o["ID"].as_u64().expect("id"));
    }
    // Default engine settings, as in production.
    let mut config = common::local_config(&cp.nats.url());
    config.api.server = cp.sandbox.api_server();
    let binding = binding_for("WorkloadDefinitionReconciler", Arc::new(NoOp), c).expect("binding");
    let m = Manager::start(
        config,
        ManagerOptions {
            bindings: Some(vec![binding]),
            api: Some(api),
        },
    )
    .await
    .expect("manager");
    wait_ready(&m).await;
    let js = cp.jetstream().await;
    let cell = closed_loop(&js, &done, &ids, n, c).await;
    m.shutdown().await;
    cell
}

async fn wait_ready(m: &Manager) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !m.readiness().is_ready() {
        assert!(Instant::now() < deadline, "manager not ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn row(name: &str, c: usize, cell: &Cell, floor: Option<&Cell>) {
    let ratio = floor
        .map(|f| format!("{:.2}", cell.per_sec / f.per_sec))
        .unwrap_or_else(|| "1.00".into());
    println!(
        "{:<28} {:>5} {:>12.0} {:>10.2} {:>10.2} {:>12}",
        name, c, cell.per_sec, cell.p50_ms, cell.p99_ms, ratio
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n = args
        .iter()
        .position(|a| a == "--n")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000usize);
    let levels = [1usize, 16, 64];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        println!("threeport-manager engine benchmark: N={n} notifications per cell, closed loop, loopback, nats-server file storage");
        println!();
        println!("{:<28} {:>5} {:>12} {:>10} {:>10} {:>12}", "row", "conc", "reconciles/s", "p50 ms", "p99 ms", "vs floor");
        for c in levels {
            let f = floor(n, c).await;
            row("floor (kv create+delete+ack)", c, &f, None);
            let a = engine_in_memory(n, c).await;
            row("(a) engine, API in memory", c, &a, Some(&f));
            let b = engine_sandbox(n, c).await;
            row("(b) engine, sandbox API", c, &b, Some(&f));
        }
    });
    // Background tasks (idle pull requests, servers) must not keep the process alive.
    rt.shutdown_timeout(Duration::from_secs(2));
}
