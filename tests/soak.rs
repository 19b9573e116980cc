//! Chaos soak: three `threeport-manager --enable workload` replicas (the real binary) on one
//! nats-server and the sandbox Threeport and Kubernetes APIs. WorkloadInstances are created,
//! updated (a Secret WRI added and the instance un-reconciled, as the gateway, aws and secret
//! controllers do) and deleted while
//!
//! - one replica is killed with SIGKILL every `SOAK_KILL_EVERY` seconds (5) and replaced by a
//!   new process (a new identity, as a restarted pod has);
//! - nats-server is killed and restarted once, halfway through the creates; or, on a
//!   JetStream cluster of three nats-servers (R3 streams and buckets), the member leading the
//!   workload stream is killed there for good;
//! - `SOAK_FAULT_RATE` (10 %) of the requests of both APIs fail with a 500 (answered before
//!   the request is handled, so a failed request has no effect).
//!
//! At the end: every instance reconciled (after the create and after the update), exactly one
//! namespace and one WRI per resource each (and one cluster object per resource), nothing left
//! in the cluster or the API after the delete, no notification terminated, and no lock left in
//! the bucket but those of killed replicas whose objects needed nothing more (they expire with
//! the bucket's 20 min max age). Prints one summary line (`soak: created=... lost=...`) and the
//! times from a kill to the reclaim of the killed replica's locks.
//!
//! The same runs on the real stack (`scripts/upstream.sh`) where it is built, with the kills
//! only (the real components take no injected faults, and its nats-server is left alone).
//!
//! `cargo test --test soak` runs all three with `SOAK_INSTANCES` (60) instances, the size CI
//! runs; `scripts/soak.sh` runs 500 with a release build.

mod harness;
use harness::{backend, scale_suite, workload_env};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_nats::jetstream;
use backend::{Stack, SYSTEM_NAMESPACES, TW_API};
use futures::StreamExt;
use scale_suite::{
    assert_deployed_exactly_once, create_web_definition, instance_label, labelled, name_of,
    Deployed,
};
use serde_json::{json, Value};
use threeport_manager::engine::liveness::{HEARTBEAT_BUCKET, HEARTBEAT_MAX_AGE};
use threeport_manager::threeport::models::{WORKLOAD_INSTANCE, WORKLOAD_RESOURCE_INSTANCE};
use threeport_manager::threeport::ThreeportApi;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use workload_env::{quantile, ManagerProcess, ManagerSpec};

/// The size of a run, from the environment.
struct Profile {
    instances: usize,
    kill_every: Duration,
    fault_rate: f64,
    replicas: usize,
}

impl Profile {
    fn from_env() -> Self {
        let var = |name: &str, default: f64| -> f64 {
            match std::env::var(name) {
                Ok(v) => v
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
                Err(_) => default,
            }
        };
        Profile {
            instances: var("SOAK_INSTANCES", 60.0) as usize,
            kill_every: Duration::from_secs_f64(var("SOAK_KILL_EVERY", 5.0)),
            fault_rate: var("SOAK_FAULT_RATE", 0.1),
            replicas: 3,
        }
    }

    /// How long any one phase may take before the soak fails (bounded whatever the size).
    fn phase_limit(&self) -> Duration {
        Duration::from_secs(180) + Duration::from_millis(600) * self.instances as u32
    }
}

/// The control plane, and what happens to its NATS halfway through the creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nats {
    /// The sandbox on one nats-server, killed and restarted on the same port and store.
    Single,
    /// The sandbox on three clustered nats-servers (R3 streams and buckets); the workload
    /// stream's leader is killed and stays down.
    Cluster,
    /// The real stack (`scripts/upstream.sh`: kube-apiserver, Threeport's API on PostgreSQL,
    /// its nats-server). Only the replicas are killed: the real components take no injected
    /// faults and its nats-server is left alone.
    RealStack,
}

/// One SIGKILL: when, whom, and how many locks the victim held at that moment (a kill inside
/// a reconcile).
struct Kill {
    at: SystemTime,
    instance_id: Option<String>,
    locks_held: usize,
}

/// The replicas, replaced one at a time as they are killed.
struct Fleet {
    vars: Vec<(String, String)>,
    nats_urls: Vec<String>,
    /// The workload lock bucket.
    locks: jetstream::kv::Store,
    dir: PathBuf,
    replicas: Vec<ManagerProcess>,
    spawned: usize,
    next_victim: usize,
    kills: Vec<Kill>,
}

impl Fleet {
    async fn start(stack: &Stack, js: &jetstream::Context, dir: &Path, replicas: usize) -> Fleet {
        // The buckets as an operator creates them for a cluster (R3; the manager opens
        // existing buckets as they are), else with Threeport's config.
        let kv_replicas = stack.nats_urls.len().min(3);
        let heartbeats = jetstream::kv::Config {
            bucket: HEARTBEAT_BUCKET.into(),
            history: 1,
            max_age: HEARTBEAT_MAX_AGE,
            num_replicas: kv_replicas,
            ..Default::default()
        };
        js.create_key_value(heartbeats)
            .await
            .expect("heartbeat bucket");
        let locks = js
            .create_key_value(jetstream::kv::Config {
                bucket: "workloadLock".into(),
                description: "contains locks on workload objects".into(),
                history: 1,
                max_age: Duration::from_secs(20 * 60),
                num_replicas: kv_replicas,
                ..Default::default()
            })
            .await
            .expect("lock bucket");
        let mut fleet = Fleet {
            vars: stack.process_env(),
            nats_urls: if kv_replicas > 1 {
                stack.nats_urls.clone()
            } else {
                Vec::new()
            },
            locks,
            dir: dir.to_path_buf(),
            replicas: Vec::new(),
            spawned: 0,
            next_victim: 0,
            kills: Vec::new(),
        };
        for _ in 0..replicas {
            let mut m = fleet.spawn();
            m.wait_ready(Duration::from_secs(30)).await.expect("ready");
            fleet.replicas.push(m);
        }
        fleet
    }

    fn spawn(&mut self) -> ManagerProcess {
        let log = self.dir.join(format!("manager-{}.log", self.spawned));
        self.spawned += 1;
        ManagerProcess::spawn(
            &self.vars,
            &ManagerSpec {
                bin: Path::new(env!("CARGO_BIN_EXE_threeport-manager")),
                concurrency: 4,
                log,
                enable: "workload",
                test_timings: true,
                nats_urls: &self.nats_urls,
            },
        )
        .expect("spawn threeport-manager")
    }

    /// SIGKILL the next replica (round robin) and start a new process in its place.
    async fn kill_one(&mut self) {
        let i = self.next_victim % self.replicas.len();
        self.next_victim += 1;
        let victim = &mut self.replicas[i];
        let instance_id = victim.instance_id();
        let _ = victim.child.kill();
        let _ = victim.child.wait();
        let at = SystemTime::now();
        // Read after the kill: what it held then stays until it is reclaimed.
        let locks_held = match &instance_id {
            Some(id) => locks_of(&self.locks, id).await,
            None => 0,
        };
        self.kills.push(Kill {
            at,
            instance_id,
            locks_held,
        });
        self.replicas[i] = self.spawn();
    }

    fn logs(&self) -> Vec<PathBuf> {
        (0..self.spawned)
            .map(|i| self.dir.join(format!("manager-{i}.log")))
            .collect()
    }

    fn diagnostics(&self) -> String {
        let tails: Vec<String> = self.replicas.iter().map(|m| m.log_tail(10)).collect();
        format!("live replicas' logs:\n{}", tails.join("\n---\n"))
    }
}

/// How many locks in `bucket` have `owner` as their value (bounded: 0 if NATS does not answer).
async fn locks_of(bucket: &jetstream::kv::Store, owner: &str) -> usize {
    let count = async {
        let mut n = 0;
        let mut keys = bucket.keys().await.ok()?;
        while let Some(Ok(key)) = keys.next().await {
            if let Ok(Some(v)) = bucket.get(&key).await {
                n += usize::from(v.as_ref() == owner.as_bytes());
            }
        }
        Some(n)
    };
    tokio::time::timeout(Duration::from_secs(5), count)
        .await
        .ok()
        .flatten()
        .unwrap_or(0)
}

/// Kill one replica every `every` until `stop`.
async fn chaos(fleet: Arc<Mutex<Fleet>>, every: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        fleet.lock().await.kill_one().await;
    }
}

/// Chaos that can be paused (for reading a stable state) and resumed.
struct Chaos {
    fleet: Arc<Mutex<Fleet>>,
    every: Duration,
    running: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
}

impl Chaos {
    fn resume(&mut self) {
        if self.running.is_none() {
            let stop = CancellationToken::new();
            let task = tokio::spawn(chaos(self.fleet.clone(), self.every, stop.clone()));
            self.running = Some((stop, task));
        }
    }

    async fn pause(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            stop.cancel();
            let _ = task.await;
        }
    }
}

/// Retry an API call that may meet an injected fault (which has no side effect).
async fn retry<T, E, F, Fut>(what: &str, mut call: F) -> T
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut last = String::new();
    for _ in 0..50 {
        match call().await {
            Ok(v) => return v,
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: failed 50 times, last: {last}")
}

/// `Reconciled` by instance ID, or `None` if a fault hit the listing.
async fn reconciled(stack: &Stack) -> Option<BTreeMap<u64, bool>> {
    let list = stack.api.list(WORKLOAD_INSTANCE, &[]).await.ok()?;
    Some(
        list.into_iter()
            .filter_map(|o| Some((o["ID"].as_u64()?, o["Reconciled"] == true)))
            .collect(),
    )
}

/// Poll until every instance in `ids` satisfies `done`, or `limit`; the first time each was
/// seen done (since `since`), and the instances never seen done.
async fn wait_each(
    stack: &Stack,
    ids: &BTreeSet<u64>,
    since: &BTreeMap<u64, Instant>,
    limit: Duration,
    done: impl Fn(Option<&bool>) -> bool,
) -> (Vec<Duration>, BTreeSet<u64>) {
    let start = Instant::now();
    let mut seen: BTreeMap<u64, Duration> = BTreeMap::new();
    while seen.len() < ids.len() && start.elapsed() < limit {
        if let Some(state) = reconciled(stack).await {
            for id in ids {
                if !seen.contains_key(id) && done(state.get(id)) {
                    seen.insert(*id, since[id].elapsed());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let missing = ids
        .iter()
        .filter(|id| !seen.contains_key(id))
        .copied()
        .collect();
    let mut times: Vec<Duration> = seen.into_values().collect();
    times.sort();
    (times, missing)
}

/// Fail `rate` of the sandbox APIs' requests (nothing on the real stack).
fn set_faults(stack: &Stack, rate: f64) {
    if let (Some(api), Some(kube)) = (stack.sandbox_api(), stack.sandbox_kube()) {
        api.faults().set_error_rate(rate, 500);
        kube.faults().set_error_rate(rate, 500);
    }
}

/// Instances with more than one WRI of a kind, or more than one labelled namespace.
async fn duplicated(stack: &Stack) -> BTreeSet<u64> {
    let mut kinds: BTreeMap<(u64, String), usize> = BTreeMap::new();
    for w in stack.list_all(WORKLOAD_RESOURCE_INSTANCE).await {
        let wi = w["WorkloadInstanceID"].as_u64().unwrap_or(0);
        let kind = w["JSONDefinition"]["kind"].as_str().unwrap_or_default();
        *kinds.entry((wi, kind.to_string())).or_default() += 1;
    }
    let mut namespaces: BTreeMap<u64, usize> = BTreeMap::new();
    for ns in labelled(stack, "v1", "Namespace").await {
        *namespaces.entry(instance_label(&ns)).or_default() += 1;
    }
    kinds
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|((wi, _), _)| wi)
        .chain(
            namespaces
                .into_iter()
                .filter(|(_, n)| *n > 1)
                .map(|(wi, _)| wi),
        )
        .collect()
}

/// What is left after the delete: labelled cluster objects, ThreeportWorkloads, namespaces
/// other than the system ones, WRIs.
async fn leftovers(stack: &Stack) -> usize {
    let mut n = 0;
    for (av, kind) in [
        ("v1", "ConfigMap"),
        ("apps/v1", "Deployment"),
        ("v1", "Service"),
        ("v1", "Secret"),
    ] {
        n += labelled(stack, av, kind).await.len();
    }
    n += stack.objects(TW_API, "ThreeportWorkload", None).await.len();
    n += stack
        .objects("v1", "Namespace", None)
        .await
        .iter()
        .filter(|o| !SYSTEM_NAMESPACES.contains(&name_of(o).as_str()))
        .count();
    n + stack.list_all(WORKLOAD_RESOURCE_INSTANCE).await.len()
}

/// Whether every workload consumer has nothing pending and nothing unacknowledged.
async fn consumers_idle(js: &jetstream::Context) -> bool {
    let Ok(stream) = js.get_stream("workloadStream").await else {
        return false;
    };
    let mut names = stream.consumer_names();
    let mut idle = true;
    while let Some(Ok(name)) = names.next().await {
        let Ok(mut c) = stream
            .get_consumer::<jetstream::consumer::pull::Config>(&name)
            .await
        else {
            return false;
        };
        match c.info().await {
            Ok(i) => idle &= i.num_pending == 0 && i.num_ack_pending == 0,
            Err(_) => return false,
        }
    }
    idle
}

/// From the replicas' logs: every lock taken from a dead replica, as the time from that
/// replica's kill to the takeover.
fn reclaim_delays(fleet: &Fleet) -> Vec<Duration> {
    let killed: BTreeMap<&str, SystemTime> = fleet
        .kills
        .iter()
        .filter_map(|k| Some((k.instance_id.as_deref()?, k.at)))
        .collect();
    let mut delays = Vec::new();
    for log in fleet.logs() {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if v["fields"]["holder"] != "dead_replica" {
                continue;
            }
            let (Some(owner), Some(ts)) = (
                v["fields"]["previous_owner"].as_str(),
                v["timestamp"].as_str(),
            ) else {
                continue;
            };
            let Ok(at) =
                time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
            else {
                continue;
            };
            if let Some(killed_at) = killed.get(owner) {
                let at = SystemTime::from(at);
                if let Ok(d) = at.duration_since(*killed_at) {
                    delays.push(d);
                }
            }
        }
    }
    delays.sort();
    delays
}

const WITH_SECRET: Deployed<'static> = Deployed {
    wri_kinds: &["ConfigMap", "Deployment", "Namespace", "Secret", "Service"],
    objects: &[
        ("v1", "ConfigMap"),
        ("apps/v1", "Deployment"),
        ("v1", "Service"),
        ("v1", "Secret"),
    ],
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_soak_on_one_nats_server_restarted_midway() {
    soak(Nats::Single).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_soak_on_a_jetstream_cluster_losing_its_stream_leader() {
    soak(Nats::Cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_soak_on_the_real_stack() {
    soak(Nats::RealStack).await;
}

/// Kill the member of the cluster that leads the workload stream; its name.
async fn kill_stream_leader(stack: &mut Stack, js: &jetstream::Context) -> String {
    let mut stream = js.get_stream("workloadStream").await.expect("stream");
    let info = stream.info().await.expect("stream info");
    let leader = info
        .cluster
        .as_ref()
        .and_then(|c| c.leader.clone())
        .expect("the stream has a cluster leader");
    let i: usize = leader
        .trim_start_matches('n')
        .parse()
        .expect("member names are n<i>");
    stack.kill_nats_member(i).expect("kill the leader");
    // Threeport's API ignores a failed publish (spec 1.5), so a notification published while
    // the stream has no leader is lost whoever consumes it (what a resync is for, not this
    // soak): wait for the new leader before the next write.
    let start = Instant::now();
    loop {
        let elected = match js.get_stream("workloadStream").await {
            Ok(mut s) => s
                .info()
                .await
                .ok()
                .and_then(|i| i.cluster.as_ref()?.leader.clone())
                .is_some_and(|l| l != leader),
            Err(_) => false,
        };
        if elected {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no new stream leader within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    leader
}

/// One soak at a time: each starts three managers and is sized for the whole machine (cargo
/// runs the tests of a binary in parallel).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn soak(mode: Nats) {
    let _one = ONE_AT_A_TIME.lock().await;
    let profile = Profile::from_env();
    let limit = profile.phase_limit();
    let started = Instant::now();
    let mut stack = match mode {
        Nats::Single => Stack::sandbox().await,
        Nats::Cluster => Stack::sandbox_cluster(3).await,
        Nats::RealStack => match Stack::upstream(false).await {
            Some(stack) => stack,
            None => return,
        },
    };
    let fault_rate = if mode == Nats::RealStack {
        0.0
    } else {
        profile.fault_rate
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let servers: Vec<async_nats::ServerAddr> = stack
        .nats_urls
        .iter()
        .map(|u| u.parse().expect("NATS URL"))
        .collect();
    let nats = async_nats::connect(servers).await.expect("connect to NATS");
    let js = jetstream::new(nats.clone());
    let fleet = Arc::new(Mutex::new(
        Fleet::start(&stack, &js, dir.path(), profile.replicas).await,
    ));
    let diagnostics = || String::new();
    let def = create_web_definition(&stack, "soak-app", &diagnostics).await;

    // Every notification the server terminates, from its advisories (whoever terminated it,
    // including replicas killed since).
    let mut advisories = nats
        .subscribe("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.>")
        .await
        .expect("subscribe");
    let mut max_deliveries = nats
        .subscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>")
        .await
        .expect("subscribe");

    set_faults(&stack, fault_rate);
    let mut chaos = Chaos {
        fleet: fleet.clone(),
        every: profile.kill_every,
        running: None,
    };
    chaos.resume();

    // Create, in batches; nats-server is killed and restarted halfway, between two batches (the
    // API ignores a failed publish, as Threeport's does, so none is attempted while it is down).
    let n = profile.instances;
    let mut ids = BTreeSet::new();
    let mut created_at = BTreeMap::new();
    let mut nats_event = None;
    for batch in (0..n).collect::<Vec<_>>().chunks(20) {
        if nats_event.is_none() && batch[0] >= n / 2 {
            nats_event = Some(match mode {
                Nats::Single => {
                    stack.restart_nats().expect("restart nats-server");
                    "nats_restarted".to_string()
                }
                Nats::Cluster => format!(
                    "stream_leader_killed={}",
                    kill_stream_leader(&mut stack, &js).await
                ),
                Nats::RealStack => "nats_untouched".to_string(),
            });
        }
        let posted: Vec<u64> = futures::stream::iter(batch.iter().copied())
            .map(|i| {
                let (api, runtime) = (stack.api.clone(), stack.runtime_id);
                async move {
                    let body = json!({"Name": format!("soak-{i}"), "WorkloadDefinitionID": def,
                                      "KubernetesRuntimeInstanceID": runtime});
                    let o = retry("POST instance", || {
                        api.create(WORKLOAD_INSTANCE, body.clone())
                    })
                    .await;
                    o["ID"].as_u64().expect("ID")
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        for id in posted {
            ids.insert(id);
            created_at.insert(id, Instant::now());
        }
    }
    let (create_times, lost_create) =
        wait_each(&stack, &ids, &created_at, limit, |r| r == Some(&true)).await;

    // Update: a Secret WRI added to every instance, which is un-reconciled.
    let mut updated_at = BTreeMap::new();
    for &wi in &ids {
        let api = stack.api.clone();
        let wri = json!({"JSONDefinition": {"apiVersion": "v1", "kind": "Secret",
                                            "metadata": {"name": "db"}},
                         "WorkloadInstanceID": wi, "Reconciled": false});
        retry("POST WRI", || {
            api.create(WORKLOAD_RESOURCE_INSTANCE, wri.clone())
        })
        .await;
        retry("un-reconcile", || {
            api.patch(WORKLOAD_INSTANCE, wi, json!({"Reconciled": false}))
        })
        .await;
        updated_at.insert(wi, Instant::now());
    }
    let (_, lost_update) = wait_each(&stack, &ids, &updated_at, limit, |r| r == Some(&true)).await;
    // Every replica is killed at least once before the chaos pauses: a fast stack converges in
    // less time than one kill per replica takes (bounded by the phase limit).
    let kill_started = Instant::now();
    while fleet.lock().await.kills.len() < profile.replicas && kill_started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Read the converged state without chaos or faults.
    chaos.pause().await;
    set_faults(&stack, 0.0);
    let dups = duplicated(&stack).await;
    if lost_create.is_empty() && lost_update.is_empty() && dups.is_empty() {
        // The strict count of every WRI, namespace and cluster object, per instance.
        assert_deployed_exactly_once(&stack, &ids, &WITH_SECRET).await;
    }

    // Delete, with chaos and faults again.
    set_faults(&stack, fault_rate);
    chaos.resume();
    let mut deleted_at = BTreeMap::new();
    for &wi in &ids {
        let api = stack.api.clone();
        retry("DELETE instance", || api.delete(WORKLOAD_INSTANCE, wi)).await;
        deleted_at.insert(wi, Instant::now());
    }
    let (_, lost_delete) = wait_each(&stack, &ids, &deleted_at, limit, |r| r.is_none()).await;
    chaos.pause().await;
    set_faults(&stack, 0.0);

    // Settle: the cluster emptied, every message acknowledged.
    let settle = Instant::now();
    let mut orphans = leftovers(&stack).await;
    while orphans > 0 && settle.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        orphans = leftovers(&stack).await;
    }
    while !consumers_idle(&js).await && settle.elapsed() < Duration::from_secs(180) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let idle = consumers_idle(&js).await;

    // Locks left: those of live replicas are leaks; those of killed ones expire (20 min).
    let fleet = fleet.lock().await;
    let killed: BTreeSet<String> = fleet
        .kills
        .iter()
        .filter_map(|k| k.instance_id.clone())
        .collect();
    let bucket = js.get_key_value("workloadLock").await.expect("lock bucket");
    let mut keys = bucket.keys().await.expect("keys");
    let (mut leaked, mut left_by_killed) = (Vec::new(), 0);
    while let Some(Ok(key)) = keys.next().await {
        if let Ok(Some(owner)) = bucket.get(&key).await {
            if killed.contains(String::from_utf8_lossy(&owner).as_ref()) {
                left_by_killed += 1;
            } else {
                leaked.push(key);
            }
        }
    }
    let mut terminated = 0;
    while let Ok(Some(_)) =
        tokio::time::timeout(Duration::from_millis(100), advisories.next()).await
    {
        terminated += 1;
    }
    while let Ok(Some(_)) =
        tokio::time::timeout(Duration::from_millis(100), max_deliveries.next()).await
    {
        terminated += 1;
    }

    let reclaims = reclaim_delays(&fleet);
    let kills = fleet.kills.len();
    let kills_in_reconcile = fleet.kills.iter().filter(|k| k.locks_held > 0).count();
    let locks_at_kills: usize = fleet.kills.iter().map(|k| k.locks_held).sum();
    let lost: BTreeSet<u64> = lost_create
        .iter()
        .chain(&lost_update)
        .chain(&lost_delete)
        .copied()
        .collect();
    println!(
        "soak({mode:?}): lost after the create {}, the update {}, the delete {}",
        lost_create.len(),
        lost_update.len(),
        lost_delete.len()
    );
    println!(
        "soak({mode:?}): created={n} reconciled={} lost={} duplicated={} leaked_locks={} orphans={orphans} \
         terminated={terminated} p99={:.2?} duration={:.0?} | kills={kills} \
         (inside a reconcile: {kills_in_reconcile}, holding {locks_at_kills} locks) {} fault_rate={} \
         dead_replica_reclaims={} (after the kill: median {:.1?}, max {:.1?}) \
         locks_left_by_killed_replicas={left_by_killed}",
        create_times.len(),
        lost.len(),
        dups.len(),
        leaked.len(),
        quantile(&create_times, 0.99),
        started.elapsed(),
        nats_event.unwrap_or_default(),
        fault_rate,
        reclaims.len(),
        quantile(&reclaims, 0.5),
        reclaims.last().copied().unwrap_or_default(),
    );
    let diag = fleet.diagnostics();
    assert!(lost.is_empty(), "lost (never converged): {lost:?}\n{diag}");
    assert!(dups.is_empty(), "deployed more than once: {dups:?}");
    assert!(leaked.is_empty(), "locks of live replicas left: {leaked:?}");
    assert_eq!(orphans, 0, "objects left after the delete\n{diag}");
    assert_eq!(terminated, 0, "notifications terminated");
    assert!(idle, "messages still pending or unacknowledged\n{diag}");
    assert!(
        kills >= profile.replicas,
        "only {kills} kills: not every replica was killed once"
    );
}
