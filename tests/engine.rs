//! The engine against a real nats-server and the sandbox Threeport API, with a test reconciler
//! bound to Threeport's `WorkloadDefinitionReconciler` names (stream `workloadStream`, consumer
//! `WorkloadDefinitionReconcilerConsumer`, bucket `workloadLock`).

mod harness;
use harness::common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use common::*;
use futures::StreamExt;
use serde_json::json;
use threeport_manager::engine::liveness::Heartbeats;
use threeport_manager::engine::lock::LockClient;
use threeport_manager::engine::{binding_for, Operation, ShutdownOutcome};
use threeport_manager::runtime::{Manager, ManagerOptions};
use threeport_manager::threeport::ThreeportApi;
use tokio_util::sync::CancellationToken;

const RECONCILER: &str = "WorkloadDefinitionReconciler";
const CONSUMER: &str = "WorkloadDefinitionReconcilerConsumer";
const LIMIT: Duration = Duration::from_secs(20);

async fn start_manager(
    cp: &ControlPlane,
    r: &TestReconciler,
    workers: usize,
    tweak: impl FnOnce(&mut threeport_manager::config::Config),
) -> Manager {
    let mut config = cp.config();
    tweak(&mut config);
    cp.start_manager(RECONCILER, r, workers, config).await
}

fn metric(m: &Manager, name_and_labels: &str) -> f64 {
    m.metrics()
        .render()
        .lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1.0)
}

async fn lock_bucket(cp: &ControlPlane) -> kv::Store {
    cp.jetstream()
        .await
        .get_key_value("workloadLock")
        .await
        .expect("lock bucket exists")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_update_delete_reach_the_reconciler_and_the_completion_protocol_lands() {
    let cp = ControlPlane::start().await;
    let r = TestReconciler::succeeding();
    let m = start_manager(&cp, &r, 2, |_| {}).await;

    let id = cp.create_wd("web").await;
    cp.wait_reconciled(id, LIMIT).await;
    assert_eq!(
        r.calls()[0],
        Call {
            op: Operation::Created,
            id,
            attempt: 1
        }
    );

    // Another controller or a user marks it unreconciled: an Updated notification.
    cp.api
        .patch(common::WD, id, json!({"Reconciled": false}))
        .await
        .expect("PATCH");
    wait_until(LIMIT, "updated reconcile", || async {
        r.calls().iter().any(|c| c.op == Operation::Updated)
            && cp
                .sandbox
                .get_object("workload-definitions", id)
                .is_some_and(|o| o["Reconciled"] == true)
    })
    .await;

    // First DELETE schedules deletion and notifies; the engine confirms and deletes for real.
    cp.api.delete(common::WD, id).await.expect("first DELETE");
    wait_until(LIMIT, "object deleted", || async {
        cp.sandbox.get_object("workload-definitions", id).is_none()
    })
    .await;
    let deleted = cp.sandbox.deleted_objects("workload-definitions");
    let gone = deleted
        .iter()
        .find(|o| o["ID"].as_u64() == Some(id))
        .expect("soft-deleted row");
    assert_eq!(gone["Reconciled"], true);
    assert!(
        gone["DeletionConfirmed"].is_string()
            && gone["DeletionAcknowledged"] == gone["DeletionConfirmed"]
    );
    assert_eq!(
        r.calls().iter().map(|c| c.op).collect::<Vec<_>>(),
        vec![Operation::Created, Operation::Updated, Operation::Deleted]
    );

    // Threeport events were recorded against the object (spec 1.10).
    wait_until(LIMIT, "three success events", || async {
        let events = cp.sandbox.list_objects("events");
        ["SuccessfulCreate", "SuccessfulUpdate", "SuccessfulDelete"]
            .iter()
            .all(|reason| {
                events.iter().any(|e| {
                    e["Reason"] == *reason && e["ReportingController"] == "WorkloadController"
                })
            })
    })
    .await;
    // The recorder POSTs the event before its reference: wait for the references too.
    wait_until(LIMIT, "three event references", || async {
        let refs = cp.sandbox.list_objects("attached-object-references");
        refs.iter()
            .filter(|r| {
                r["ObjectID"].as_u64() == Some(id) && r["ObjectType"] == "v0.WorkloadDefinition"
            })
            .count()
            >= 3
    })
    .await;

    // Every lock was released.
    let kv = lock_bucket(&cp).await;
    assert_eq!(
        kv.get(format!("{RECONCILER}.{id}")).await.expect("kv get"),
        None
    );
    assert_eq!(metric(&m, "threeport_reconcile_total{controller=\"workload\",reconciler=\"WorkloadDefinitionReconciler\",result=\"success\"}"), 3.0);
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uses_threeports_stream_consumer_and_bucket_names() {
    let cp = ControlPlane::start().await;
    let r = TestReconciler::succeeding();
    let m = start_manager(&cp, &r, 1, |_| {}).await;
    let js = cp.jetstream().await;
    let mut stream = js.get_stream("workloadStream").await.expect("stream");
    let mut consumer = stream
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>(CONSUMER)
        .await
        .expect("durable consumer bound by the manager");
    let info = consumer.info().await.expect("consumer info");
    assert_eq!(info.config.durable_name.as_deref(), Some(CONSUMER));
    assert_eq!(info.config.filter_subject, "workloadDefinition.*");
    assert_eq!(
        info.config.ack_policy,
        async_nats::jetstream::consumer::AckPolicy::Explicit
    );
    assert_eq!(
        info.config.ack_wait,
        Duration::from_secs(30),
        "server default, as Threeport leaves it"
    );
    let kv = lock_bucket(&cp).await;
    let status = kv.status().await.expect("bucket status");
    assert_eq!(status.history(), 1);
    assert_eq!(status.max_age(), Duration::from_secs(20 * 60));
    let _ = stream.info().await;
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_the_go_way_defers_the_message_until_it_is_released_and_vice_versa() {
    let cp = ControlPlane::start().await;
    // The notification waits in the stream while a Go controller holds the lock: it did
    // kv.Create(key, its controllerID) in the same bucket, created with Go's config.
    let wd = cp.create_wd("locked-by-go").await;
    let key = format!("{RECONCILER}.{wd}");
    let owner = "4f1c1f3e-9a53-4a53-8f49-3d1c5e7c9b10";
    let js = cp.jetstream().await;
    let kv = threeport_manager::engine::lock::LockClient::open_or_create(
        &js,
        "workloadLock",
        "contains locks on workload objects",
        owner,
    )
    .await
    .expect("bucket");
    let go_lease = kv.acquire(&key).await.expect("Go-style create");
    // The second call (for the second object) is slow, so the test can observe its lock.
    let r = TestReconciler::new(|n, _| {
        if n == 1 {
            Act::Sleep(Duration::from_millis(1500))
        } else {
            Act::Succeed
        }
    });
    let m = start_manager(&cp, &r, 2, |_| {}).await;
    let kv = lock_bucket(&cp).await;
    wait_until(LIMIT, "lock conflicts counted", || async {
        metric(&m, "threeport_lock_conflicts_total{controller=\"workload\",reconciler=\"WorkloadDefinitionReconciler\"}") >= 2.0
    })
    .await;
    assert_eq!(
        r.call_count(),
        0,
        "the manager must not reconcile while Go holds the lock"
    );
    assert_eq!(
        kv.get(&key).await.expect("get").as_deref(),
        Some(owner.as_bytes())
    );
    // Go releases with an unconditional Delete (a tombstone); create over it must work.
    let _ = go_lease;
    kv.delete(&key).await.expect("Go releases with Delete");
    cp.wait_reconciled(wd, LIMIT).await;

    // Vice versa: while the manager holds a lock, a Go-style create fails.
    let wd2 = cp.create_wd("held-by-manager").await;
    let key2 = format!("{RECONCILER}.{wd2}");
    wait_until(LIMIT, "manager holds the lock", || async {
        matches!(kv.get(&key2).await, Ok(Some(v)) if v == m.instance_id.to_string().as_bytes())
    })
    .await;
    assert!(
        kv.create(&key2, "go-controller-uuid".into()).await.is_err(),
        "Go's Create must fail while the manager holds the lock"
    );
    cp.wait_reconciled(wd2, LIMIT).await;
    // Released right after the completion PATCH that the line above observed.
    wait_until(LIMIT, "lock released", || async {
        matches!(kv.get(&key2).await, Ok(None))
    })
    .await;
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_never_hold_one_object_at_once() {
    let cp = ControlPlane::start().await;
    let r = TestReconciler::new(|_, _| Act::Sleep(Duration::from_millis(15)));
    let m = start_manager(&cp, &r, 8, |c| {
        c.engine.lock_conflict_delay = Duration::from_millis(20);
    })
    .await;
    let ids: Vec<u64> = futures::future::join_all((0..4).map(|i| {
        let cp = &cp;
        async move { cp.create_wd(&format!("busy-{i}")).await }
    }))
    .await;
    let js = cp.jetstream().await;
    // 10 extra Updated notifications per object, all at once.
    for _ in 0..10 {
        for id in &ids {
            publish(
                &js,
                "workloadDefinition.update",
                notification("Updated", *id),
            )
            .await;
        }
    }
    let expected = ids.len() * 11;
    wait_until(
        Duration::from_secs(60),
        "every notification reconciled",
        || async { r.call_count() >= expected },
    )
    .await;
    assert_eq!(
        r.max_in_flight_per_object.load(Ordering::SeqCst),
        1,
        "one object was reconciled twice at once"
    );
    assert!(
        r.max_in_flight_total.load(Ordering::SeqCst) >= 2,
        "workers really ran concurrently"
    );
    assert_eq!(r.call_count(), expected);
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lock_cancels_the_reconcile_and_the_message_comes_back() {
    let cp = ControlPlane::start().await;
    let r = TestReconciler::new(|n, _| {
        if n == 0 {
            Act::BlockUntilCancelled
        } else {
            Act::Succeed
        }
    });
    let m = start_manager(&cp, &r, 1, |c| {
        c.engine.lock_renew_interval = Duration::from_millis(100);
    })
    .await;
    let kv = lock_bucket(&cp).await;
    let wd = cp.create_wd("stolen").await;
    let key = format!("{RECONCILER}.{wd}");
    wait_until(LIMIT, "reconcile started", || async { r.call_count() == 1 }).await;
    // Someone else overwrites the lock (e.g. after a TTL expiry): the next renewal finds a
    // different revision.
    kv.put(&key, "someone-else".into()).await.expect("put");
    wait_until(LIMIT, "reconcile cancelled", || async {
        r.cancelled.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(metric(&m, "threeport_lock_lost_total{controller=\"workload\",reconciler=\"WorkloadDefinitionReconciler\"}"), 1.0);
    // The foreign lock was not deleted by us.
    assert_eq!(
        kv.get(&key).await.expect("get").as_deref(),
        Some(&b"someone-else"[..])
    );
    // Once the other owner lets go, the redelivered message completes.
    kv.delete(&key).await.expect("delete");
    cp.wait_reconciled(wd, LIMIT).await;
    assert!(r.calls()[1].attempt >= 2);
    m.shutdown().await;
}

/// `threeport_lock_takeovers_total` of the test reconciler, for one kind of holder.
fn takeovers(holder: &str) -> String {
    format!("threeport_lock_takeovers_total{{controller=\"workload\",holder=\"{holder}\",reconciler=\"{RECONCILER}\"}}")
}

const CONFLICTS: &str = "threeport_lock_conflicts_total{controller=\"workload\",reconciler=\"WorkloadDefinitionReconciler\"}";

/// The lock bucket as another process that uses it sees it, writing `owner` as lock value.
async fn locks_as(cp: &ControlPlane, owner: &str) -> LockClient {
    LockClient::open_or_create(
        &cp.jetstream().await,
        "workloadLock",
        "contains locks on workload objects",
        owner,
    )
    .await
    .expect("lock bucket")
}

/// Another manager replica as NATS sees it: its heartbeat, written every 300 ms until it is
/// killed (the task aborted: no more writes, no "stopped" mark, which is all a SIGKILL looks
/// like from NATS) or stopped cleanly.
struct OtherReplica {
    id: uuid::Uuid,
    beating: tokio::task::JoinHandle<()>,
    stop: CancellationToken,
}

impl OtherReplica {
    async fn start(cp: &ControlPlane) -> Self {
        let id = uuid::Uuid::new_v4();
        let hb = Heartbeats::open_or_create(&cp.jetstream().await, id)
            .await
            .expect("heartbeat bucket");
        hb.beat().await.expect("first heartbeat");
        let stop = CancellationToken::new();
        let failures = prometheus::IntCounter::new("failures", "failures").expect("counter");
        let beating = tokio::spawn(hb.run(Duration::from_millis(300), failures, stop.clone()));
        OtherReplica { id, beating, stop }
    }

    async fn lock(&self, cp: &ControlPlane, wd: u64) {
        locks_as(cp, &self.id.to_string())
            .await
            .acquire(&format!("{RECONCILER}.{wd}"))
            .await
            .expect("lock taken by the other replica");
    }

    fn kill(&self) {
        self.beating.abort();
    }

    async fn stop_cleanly(self) {
        self.stop.cancel();
        self.beating.await.expect("heartbeat task");
    }
}

/// Short reclaim timings: a replica is dead after 2 s of heartbeat silence.
fn short_reclaim(c: &mut threeport_manager::config::Config) {
    c.engine.lock_reclaim_after = Duration::from_secs(2);
    c.engine.heartbeat_interval = Duration::from_millis(500);
    c.engine.lock_renew_interval = Duration::from_millis(500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replicas_lock_is_reclaimed_once_its_heartbeat_is_silent_and_a_go_lock_is_not() {
    let cp = ControlPlane::start().await;
    let replica = OtherReplica::start(&cp).await;
    let by_replica = cp.create_wd("held-by-a-replica").await;
    replica.lock(&cp, by_replica).await;
    // A Go controller's lock has no heartbeat behind it: Threeport's 20 min rule applies.
    let by_go = cp.create_wd("held-by-go").await;
    locks_as(&cp, "5d0c9a4e-7b1f-4a8e-9d5c-3e2f1a0b9c8d")
        .await
        .acquire(&format!("{RECONCILER}.{by_go}"))
        .await
        .expect("Go-style lock");
    let r = TestReconciler::succeeding();
    let m = start_manager(&cp, &r, 2, short_reclaim).await;
    // While the replica lives its lock is never taken, though nobody renews the lock itself:
    // at least 12 conflicts (capped at 1 s apart, so more than 3 reclaim ages).
    wait_until(LIMIT, "a dozen lock conflicts", || async {
        metric(&m, CONFLICTS) >= 12.0
    })
    .await;
    assert_eq!(
        r.call_count(),
        0,
        "nothing reconciled under a live replica's lock"
    );
    assert_eq!(metric(&m, &takeovers("dead_replica")), 0.0);

    let killed = Instant::now();
    replica.kill();
    cp.wait_reconciled(by_replica, LIMIT).await;
    let took = killed.elapsed();
    println!("reclaimed and reconciled {took:?} after the replica was killed (reclaim age 2 s)");
    // Its last heartbeat was at most 300 ms before the kill.
    assert!(
        took >= Duration::from_millis(1700),
        "reclaimed before the heartbeat was 2 s old: {took:?}"
    );
    assert_eq!(metric(&m, &takeovers("dead_replica")), 1.0);
    assert_eq!(r.call_count(), 1, "reconciled exactly once");
    // The Go-held object is still waiting, and nothing was taken from an owner without
    // heartbeat.
    assert_eq!(metric(&m, &takeovers("no_heartbeat")), 0.0);
    let go_key = format!("{RECONCILER}.{by_go}");
    assert!(lock_bucket(&cp)
        .await
        .get(&go_key)
        .await
        .expect("get")
        .is_some());
    assert!(r.calls().iter().all(|c| c.id != by_go));
    // Once Go releases it, it is reconciled.
    lock_bucket(&cp)
        .await
        .delete(&go_key)
        .await
        .expect("release");
    cp.wait_reconciled(by_go, LIMIT).await;
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_left_by_a_cleanly_stopped_replica_or_by_this_process_is_reclaimed_at_once() {
    let cp = ControlPlane::start().await;
    let replica = OtherReplica::start(&cp).await;
    let left_by_replica = cp.create_wd("left-by-a-stopped-replica").await;
    replica.lock(&cp, left_by_replica).await;
    replica.stop_cleanly().await;
    let r = TestReconciler::succeeding();
    let m = start_manager(&cp, &r, 2, |_| {}).await;
    cp.wait_reconciled(left_by_replica, LIMIT).await;
    assert_eq!(metric(&m, &takeovers("dead_replica")), 1.0);

    // This process's own value on a lock none of its tasks holds: a release that failed.
    let own = cp.create_wd("left-by-this-process").await;
    cp.wait_reconciled(own, LIMIT).await;
    locks_as(&cp, &m.instance_id.to_string())
        .await
        .acquire(&format!("{RECONCILER}.{own}"))
        .await
        .expect("leftover");
    publish(
        &cp.jetstream().await,
        "workloadDefinition.update",
        notification("Updated", own),
    )
    .await;
    wait_until(LIMIT, "the update reconciled", || async {
        r.calls().iter().filter(|c| c.id == own).count() == 2
    })
    .await;
    assert_eq!(metric(&m, &takeovers("own_leftover")), 1.0);
    // Both on the first delivery: no conflict, no waiting for a reclaim age.
    assert_eq!(metric(&m, CONFLICTS), 0.0);
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_cannot_heartbeat_gives_its_locks_up_before_they_could_be_reclaimed() {
    let cp = ControlPlane::start().await;
    let r = TestReconciler::new(|_, _| Act::BlockUntilCancelled);
    let m = start_manager(&cp, &r, 1, |c| {
        short_reclaim(c);
        c.engine.lock_reclaim_after = Duration::from_secs(3);
    })
    .await;
    let _wd = cp.create_wd("heartbeat-cut-off").await;
    wait_until(LIMIT, "reconcile started", || async { r.call_count() == 1 }).await;
    // The heartbeat bucket disappears: every heartbeat fails, lock renewals still succeed.
    // The others could reclaim 3 s after the last heartbeat.
    gives_up_in_time_without(
        &cp,
        &r,
        threeport_manager::engine::liveness::HEARTBEAT_BUCKET,
    )
    .await;
    assert!(metric(&m, "threeport_heartbeat_failures_total") >= 1.0);
    // While its heartbeat stays unwritten it takes no lock, not even its own leftover back:
    // the handed-back notification comes again every few hundred ms (NAK delays of 0.1-0.2 s
    // here) and is not reconciled.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(r.call_count(), 1, "reconciled with a stale heartbeat");
    // Once the bucket can be created again, the heartbeat recreates it and work resumes.
    let hb_stream = format!(
        "KV_{}",
        threeport_manager::engine::liveness::HEARTBEAT_BUCKET
    );
    cp.jetstream()
        .await
        .delete_stream(&hb_stream)
        .await
        .expect("free the name");
    wait_until(LIMIT, "reconciling again", || async { r.call_count() == 2 }).await;
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_its_holder_stopped_writing_is_taken_over_at_the_takeover_age() {
    let cp = ControlPlane::start().await;
    // A Go controller took the lock and died: the lock is never renewed nor released. With the
    // takeover age shortened (as for a migration), it is taken over at that age.
    let wd = cp.create_wd("orphaned").await;
    let key = format!("{RECONCILER}.{wd}");
    let js = cp.jetstream().await;
    let dead = threeport_manager::engine::lock::LockClient::open_or_create(
        &js,
        "workloadLock",
        "contains locks on workload objects",
        "0b7d6c3e-dead-4c0e-9f35-2a7e64f1c0de",
    )
    .await
    .expect("bucket");
    dead.acquire(&key).await.expect("Go-style create");
    let locked_at = Instant::now();
    let r = TestReconciler::succeeding();
    let m = start_manager(&cp, &r, 2, |c| {
        c.engine.lock_takeover_after = Duration::from_secs(2);
        c.engine.lock_renew_interval = Duration::from_millis(500);
    })
    .await;
    cp.wait_reconciled(wd, LIMIT).await;
    assert!(
        locked_at.elapsed() >= Duration::from_secs(2),
        "taken over before the lock was 2 s old: {:?}",
        locked_at.elapsed()
    );
    assert_eq!(metric(&m, &takeovers("no_heartbeat")), 1.0);
    assert_eq!(r.call_count(), 1, "reconciled exactly once");
    assert_eq!(
        lock_bucket(&cp).await.get(&key).await.expect("get"),
        None,
        "released after the reconcile"
    );
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_renews_is_never_taken_over_however_long_it_works() {
    let cp = ControlPlane::start().await;
    // The first reconcile runs for three takeover ages; meanwhile two more notifications for
    // the same object keep meeting its lock.
    let r = TestReconciler::new(|n, _| {
        if n == 0 {
            Act::Sleep(Duration::from_millis(4500))
        } else {
            Act::Succeed
        }
    });
    let m = start_manager(&cp, &r, 4, |c| {
        c.engine.lock_takeover_after = Duration::from_millis(1500);
        c.engine.lock_renew_interval = Duration::from_millis(300);
        c.engine.lock_conflict_delay = Duration::from_millis(100);
    })
    .await;
    let wd = cp.create_wd("slow").await;
    wait_until(LIMIT, "first reconcile started", || async {
        r.call_count() == 1
    })
    .await;
    let js = cp.jetstream().await;
    for _ in 0..2 {
        publish(
            &js,
            "workloadDefinition.update",
            notification("Updated", wd),
        )
        .await;
    }
    wait_until(LIMIT, "all three reconciled", || async {
        r.call_count() == 3
    })
    .await;
    for holder in ["dead_replica", "own_leftover", "no_heartbeat"] {
        assert_eq!(metric(&m, &takeovers(holder)), 0.0, "{holder}");
    }
    assert_eq!(r.max_in_flight_per_object.load(Ordering::SeqCst), 1);
    assert_eq!(
        r.cancelled.load(Ordering::SeqCst),
        0,
        "the slow reconcile finished"
    );
    assert!(metric(&m, "threeport_lock_conflicts_total{controller=\"workload\",reconciler=\"WorkloadDefinitionReconciler\"}") >= 2.0);
    m.shutdown().await;
}

/// Make `bucket` unwritable under a blocked reconcile (deleted, and its stream name taken by a
/// stream of other subjects, so that it cannot be created again either) and wait until the
/// reconcile is cancelled,
/// asserting the safety window: given up before another process could take the lock (3 s
/// after the last write there, which was at most 0.5 s before the cut: the tests using this
/// renew and heartbeat every 0.5 s with a 3 s limit), by design at that limit minus one renew
/// interval, and not at the first failure.
async fn gives_up_in_time_without(cp: &ControlPlane, r: &TestReconciler, bucket: &str) {
    let cut = Instant::now();
    let js = cp.jetstream().await;
    js.delete_key_value(bucket)
        .await
        .expect("delete the bucket");
    js.create_stream(async_nats::jetstream::stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("unrelated.{bucket}")],
        ..Default::default()
    })
    .await
    .expect("take the bucket's stream name");
    wait_until(LIMIT, "reconcile cancelled", || async {
        r.cancelled.load(Ordering::SeqCst) == 1
    })
    .await;
    let gave_up = cut.elapsed();
    assert!(
        gave_up < Duration::from_secs(3),
        "gave up only after {gave_up:?}"
    );
    assert!(
        gave_up >= Duration::from_millis(1500),
        "gave up too early: {gave_up:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_cannot_renew_gives_the_lock_up_before_it_could_be_taken_over() {
    let cp = ControlPlane::start().await;
    let r = TestReconciler::new(|_, _| Act::BlockUntilCancelled);
    let m = start_manager(&cp, &r, 1, |c| {
        c.engine.lock_takeover_after = Duration::from_secs(3);
        c.engine.lock_renew_interval = Duration::from_millis(500);
    })
    .await;
    let wd = cp.create_wd("cut-off").await;
    wait_until(LIMIT, "reconcile started", || async { r.call_count() == 1 }).await;
    // The lock bucket disappears: every renewal fails (not with another revision). The lock
    // could be taken over 3 s after its last write.
    gives_up_in_time_without(&cp, &r, "workloadLock").await;
    assert_eq!(metric(&m, "threeport_lock_lost_total{controller=\"workload\",reconciler=\"WorkloadDefinitionReconciler\"}"), 1.0);
    let _ = wd;
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_are_terminated_after_the_configured_attempts_with_delays() {
    let cp = ControlPlane::start().await;
    let r = TestReconciler::succeeding();
    let client = cp.nats_client().await;
    let mut naks = client
        .subscribe("$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.workloadStream.>")
        .await
        .expect("sub");
    let mut terms = client
        .subscribe("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.workloadStream.>")
        .await
        .expect("sub");
    // A request/reply on the same connection: the server has both SUBs once it answers.
    async_nats::jetstream::new(client.clone())
        .query_account()
        .await
        .expect("round trip");
    let m = start_manager(&cp, &r, 2, |c| {
        c.engine.max_poison_attempts = 4;
        c.engine.backoff_base = Duration::from_millis(200);
        c.engine.backoff_cap = Duration::from_secs(2);
    })
    .await;
    let js = cp.jetstream().await;
    let started = Instant::now();
    publish(&js, "workloadDefinition.create", b"{not json".to_vec()).await;

    let term = tokio::time::timeout(LIMIT, terms.next())
        .await
        .expect("terminated in time")
        .expect("advisory");
    let elapsed = started.elapsed();
    let advisory: serde_json::Value = serde_json::from_slice(&term.payload).expect("advisory json");
    assert_eq!(advisory["consumer"], CONSUMER);
    assert_eq!(advisory["deliveries"], 4, "{advisory}");
    // Three NAKs with delays of at least half of 200, 400, 800 ms (equal jitter).
    let mut nak_count = 0;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(50), naks.next()).await {
        nak_count += 1;
    }
    assert_eq!(nak_count, 3);
    assert!(
        elapsed >= Duration::from_millis(700),
        "no hot loop: terminated after only {elapsed:?}"
    );
    assert_eq!(metric(&m, "threeport_notifications_terminated_total{controller=\"workload\",reason=\"undecodable\",reconciler=\"WorkloadDefinitionReconciler\"}"), 1.0);
    // Nothing else arrives afterwards, and the reconciler was never called.
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), naks.next())
            .await
            .is_err()
    );
    assert_eq!(r.call_count(), 0);

    // Each poison reason is classified.
    publish(
        &js,
        "workloadDefinition.create",
        br#"{"Operation":"Created","CreationTime":1,"Object":{},"ObjectVersion":"v0"}"#.to_vec(),
    )
    .await;
    publish(
        &js,
        "workloadDefinition.create",
        br#"{"Operation":"Created","CreationTime":1,"Object":{"ID":5},"ObjectVersion":"v9"}"#
            .to_vec(),
    )
    .await;
    wait_until(LIMIT, "both terminated", || async {
        metric(&m, "threeport_notifications_terminated_total{controller=\"workload\",reason=\"missing_id\",reconciler=\"WorkloadDefinitionReconciler\"}") == 1.0
            && metric(&m, "threeport_notifications_terminated_total{controller=\"workload\",reason=\"unknown_version\",reconciler=\"WorkloadDefinitionReconciler\"}") == 1.0
    })
    .await;
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_on_get_latest_acks_without_reconciling() {
    let cp = ControlPlane::start().await;
    let r = TestReconciler::succeeding();
    let m = start_manager(&cp, &r, 1, |_| {}).await;
    let js = cp.jetstream().await;
    publish(
        &js,
        "workloadDefinition.update",
        notification("Updated", 1u64 << 60),
    )
    .await;
    wait_until(LIMIT, "not_found counted", || async {
        metric(&m, "threeport_reconcile_total{controller=\"workload\",reconciler=\"WorkloadDefinitionReconciler\",result=\"not_found\"}") == 1.0
    })
    .await;
    wait_until(LIMIT, "acked", || {
        let js = js.clone();
        async move {
            let Ok(stream) = js.get_stream("workloadStream").await else {
                return false;
            };
            let Ok(mut consumer) = stream
                .get_consumer::<async_nats::jetstream::consumer::pull::Config>(CONSUMER)
                .await
            else {
                return false;
            };
            consumer.info().await.is_ok_and(|i| {
                i.num_ack_pending == 0 && i.num_pending == 0 && i.ack_floor.stream_sequence >= 1
            })
        }
    })
    .await;
    assert_eq!(r.call_count(), 0);
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_retry_with_backoff_and_panics_are_contained() {
    let cp = ControlPlane::start().await;
    // Fail, panic, fail, then succeed.
    let r = TestReconciler::new(|n, _| match n {
        0 | 2 => Act::Fail,
        1 => Act::Panic,
        _ => Act::Succeed,
    });
    let m = start_manager(&cp, &r, 1, |_| {}).await;
    let wd = cp.create_wd("flaky").await;
    cp.wait_reconciled(wd, LIMIT).await;
    let attempts: Vec<u64> = r.calls().iter().map(|c| c.attempt).collect();
    assert_eq!(
        attempts,
        vec![1, 2, 3, 4],
        "one redelivery per failure, the panic included"
    );
    assert_eq!(metric(&m, "threeport_reconcile_errors_total{controller=\"workload\",reconciler=\"WorkloadDefinitionReconciler\"}"), 3.0);
    wait_until(LIMIT, "failure event recorded with Count 3", || async {
        cp.sandbox.list_objects("events").iter().any(|e| {
            e["Reason"] == "FailedCreate"
                && e["Count"] == 3
                && e["Note"] == "failed to reconcile created workload definition object"
        })
    })
    .await;
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_error_is_retried_at_the_cap_and_reported_as_permanent() {
    let cp = ControlPlane::start().await;
    let r = TestReconciler::new(|n, _| match n {
        0 => Act::FailPermanently,
        _ => Act::Succeed,
    });
    let cap = Duration::from_secs(3);
    let m = start_manager(&cp, &r, 1, |c| c.engine.backoff_cap = cap).await;
    let wd = cp.create_wd("broken").await;
    wait_until(LIMIT, "first attempt", || async { r.call_count() == 1 }).await;
    let failed_at = Instant::now();
    cp.wait_reconciled(wd, LIMIT).await;
    // A transient failure would be retried after the 100 ms base; a permanent one waits for
    // the cap at once (at least half of it, with jitter).
    let waited = failed_at.elapsed();
    assert!(
        waited >= cap / 2,
        "retried after {waited:?}, before the cap"
    );
    let labels = "{controller=\"workload\",reconciler=\"WorkloadDefinitionReconciler\"}";
    assert_eq!(
        metric(&m, &format!("threeport_reconcile_errors_total{labels}")),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            &format!("threeport_reconcile_permanent_errors_total{labels}")
        ),
        1.0
    );
    wait_until(LIMIT, "a warning event that says the error is permanent", || async {
        cp.sandbox.list_objects("events").iter().any(|e| {
            e["Reason"] == "FailedCreate"
                && e["Type"] == "Warning"
                && e["Note"]
                    == "failed to reconcile created workload definition object: permanent error, retried every 3s: scripted permanent failure"
        })
    })
    .await;
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_in_flight_work_naks_releases_the_lock_and_reports_not_ready() {
    let cp = ControlPlane::start().await;
    let r = TestReconciler::new(|n, _| {
        if n == 0 {
            Act::BlockUntilCancelled
        } else {
            Act::Succeed
        }
    });
    let m = start_manager(&cp, &r, 1, |c| {
        c.shutdown_timeout = Duration::from_millis(800);
    })
    .await;
    let admin = m.admin_addr();
    assert_eq!(http_get(admin, "/readyz").await.0, 200);
    let kv = lock_bucket(&cp).await;
    let wd = cp.create_wd("in-flight").await;
    let key = format!("{RECONCILER}.{wd}");
    wait_until(LIMIT, "reconcile in flight", || async {
        r.call_count() == 1
    })
    .await;
    assert!(kv.get(&key).await.expect("get").is_some());

    let started = Instant::now();
    let shutdown = tokio::spawn(m.shutdown());
    wait_until(LIMIT, "readyz 503 while draining", || async {
        http_get(admin, "/readyz").await.0 == 503
    })
    .await;
    let outcome = shutdown.await.expect("join");
    assert_eq!(outcome, ShutdownOutcome::Aborted);
    assert!(
        // Bounded by shutdown_timeout + the abort grace, not by the blocked reconcile.
        started.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        started.elapsed()
    );
    assert_eq!(r.cancelled.load(Ordering::SeqCst), 1);
    assert_eq!(
        kv.get(&key).await.expect("get"),
        None,
        "lock released on abort"
    );

    // The NAK handed the message back: a new manager gets it at once and finishes it.
    let m2 = start_manager(&cp, &r, 1, |_| {}).await;
    cp.wait_reconciled(wd, LIMIT).await;
    assert_eq!(r.calls()[1].attempt, 2);
    m2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_until_nats_is_up() {
    // Reserve a port, then start the manager against it with nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut config = local_config(&format!("nats://127.0.0.1:{port}"));
    config.api.server = "127.0.0.1:9".into();
    let m = Manager::start(
        config,
        ManagerOptions {
            bindings: Some(vec![]),
            api: None,
        },
    )
    .await
    .expect("starts without NATS");
    let admin = m.admin_addr();
    let (code, body) = http_get(admin, "/readyz?verbose").await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("[-]nats"), "{body}");
    assert_eq!(http_get(admin, "/livez").await.0, 200);

    let _nats = sandbox::nats::NatsServer::start_with(sandbox::nats::NatsServerOptions {
        port: Some(port),
        ..Default::default()
    })
    .expect("nats on the reserved port");
    wait_until(Duration::from_secs(30), "ready once NATS is up", || async {
        http_get(admin, "/readyz").await.0 == 200
    })
    .await;
    let (_, metrics) = http_get(admin, "/metrics").await;
    assert!(metrics.contains("threeport_nats_connected 1"), "{metrics}");
    m.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_for_the_stream_instead_of_exiting() {
    // NATS without the API: no streams yet.
    let nats = sandbox::nats::NatsServer::start().expect("nats");
    let r = TestReconciler::succeeding();
    let config = local_config(&nats.url());
    let binding = binding_for(RECONCILER, Arc::new(r.clone()), 1).expect("binding");
    let sandbox_api =
        sandbox::threeport::SandboxApi::start(sandbox::threeport::SandboxOptions::default())
            .await
            .expect("sandbox without nats");
    let api = Arc::new(api_client(&sandbox_api));
    let m = Manager::start(
        config,
        ManagerOptions {
            bindings: Some(vec![binding]),
            api: Some(api),
        },
    )
    .await
    .expect("start");
    wait_until(LIMIT, "NATS connected", || async {
        m.readiness()
            .checks()
            .iter()
            .any(|(n, ok)| n == "nats" && *ok)
    })
    .await;
    assert!(
        !m.readiness().is_ready(),
        "not ready while the stream is missing"
    );
    // The API comes up later and creates the streams.
    let late = sandbox::threeport::SandboxApi::start(sandbox::threeport::SandboxOptions {
        nats_url: Some(nats.url()),
        ..Default::default()
    })
    .await
    .expect("sandbox with nats");
    wait_until(LIMIT, "ready after the stream appears", || async {
        m.readiness().is_ready()
    })
    .await;
    m.shutdown().await;
    late.shutdown().await;
}
