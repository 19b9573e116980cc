//! The resync (src/engine/resync) against a real nats-server and the sandbox API, whose
//! `NotificationDrops` loses chosen notifications as a NATS outage at publish time would:
//! - an object whose Created notification was lost is reconciled within one interval (after
//!   its grace period), and the re-notification is Threeport's payload, marked as a resync;
//! - one whose Deleted notification was lost is deleted to the end;
//! - nothing is re-notified while an object's own notification is in flight, waiting for a
//!   worker, or NAK'd with a delay (counted: no re-notification, no extra reconcile);
//! - three manager processes: exactly one resyncs each reconciler, once per interval; after a
//!   SIGKILL of that one another takes over within an interval and recovers a lost
//!   notification.

mod harness;
use harness::common::{resync_config, wait_until, Act, ControlPlane, TestReconciler, WD};
use harness::workload_env::{metric_sum, Env, ManagerProcess, ManagerSpec, WEB_APP_YAML};

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use threeport_manager::engine::lock::LockError;
use threeport_manager::engine::resync::lease::{self, Attempt, Contender};
use threeport_manager::engine::resync::notify::RESYNC_HEADER;
use threeport_manager::engine::Operation;
use threeport_manager::runtime::Manager;
use threeport_manager::threeport::ThreeportApi;

const INTERVAL: Duration = Duration::from_secs(2);
const GRACE: Duration = Duration::from_secs(1);
/// What a run, a reconcile and the test's own polling may add to `interval + grace`.
const SLACK: Duration = Duration::from_secs(3);
const WDR: &str = "WorkloadDefinitionReconciler";

fn counter(m: &Manager, name: &str, labels: &[(&str, &str)]) -> f64 {
    metric_sum(&m.metrics().render(), name, labels)
}

async fn manager(cp: &ControlPlane, r: &TestReconciler, workers: usize) -> Manager {
    let config = resync_config(&cp.nats.url(), &cp.sandbox.api_server(), INTERVAL, GRACE);
    cp.start_manager(WDR, r, workers, config).await
}

/// The last message the stream holds on `subject`: (headers, payload).
async fn last_message(cp: &ControlPlane, subject: &str) -> (async_nats::HeaderMap, Value) {
    let js = cp.jetstream().await;
    let stream = js.get_stream("workloadStream").await.expect("stream");
    let m = stream
        .get_last_raw_message_by_subject(subject)
        .await
        .expect("a message on the subject");
    let payload = serde_json::from_slice(&m.payload).expect("JSON payload");
    (m.headers, payload)
}

#[tokio::test]
async fn a_lost_created_notification_is_reconciled_within_one_interval() {
    let cp = ControlPlane::start().await;
    let r = TestReconciler::succeeding();
    let m = manager(&cp, &r, 2).await;

    cp.sandbox
        .notification_drops()
        .drop_next("workloadDefinition.create", 1);
    let created = Instant::now();
    let id = cp.create_wd("lost-create").await;
    assert_eq!(
        cp.sandbox.notification_drops().dropped(),
        ["workloadDefinition.create"]
    );
    cp.wait_reconciled(id, GRACE + INTERVAL + SLACK).await;
    let took = created.elapsed();

    // One reconcile, Created, from the re-notification, which is Threeport's payload with the
    // object as the API lists it, marked as a resync.
    let calls = r.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!((calls[0].op, calls[0].id), (Operation::Created, id));
    let (headers, payload) = last_message(&cp, "workloadDefinition.create").await;
    assert_eq!(
        headers.get(RESYNC_HEADER).map(|v| v.as_str().to_string()),
        Some(m.instance_id.to_string())
    );
    assert_eq!(payload["Operation"], "Created");
    assert_eq!(payload["ObjectVersion"], "v0");
    assert_eq!(payload["Object"]["ID"].as_u64(), Some(id));
    assert_eq!(payload["Object"]["Name"], "lost-create");
    assert!(payload["CreationTime"].as_i64().is_some_and(|t| t > 0));
    let renotified = counter(
        &m,
        "threeport_resync_renotified_total",
        &[("reconciler", WDR)],
    );
    assert_eq!(renotified, 1.0);
    assert!(
        counter(
            &m,
            "threeport_resync_runs_total",
            &[("reconciler", WDR), ("result", "ok")]
        ) >= 1.0
    );
    assert!(
        counter(
            &m,
            "threeport_resync_last_run_timestamp_seconds",
            &[("reconciler", WDR)]
        ) > 0.0
    );
    eprintln!("lost Created notification reconciled after {took:?} (interval {INTERVAL:?}, grace {GRACE:?})");
    m.shutdown().await;
}

#[tokio::test]
async fn a_lost_deleted_notification_is_deleted_to_the_end() {
    let cp = ControlPlane::start().await;
    let r = TestReconciler::succeeding();
    let m = manager(&cp, &r, 2).await;
    let id = cp.create_wd("lost-delete").await;
    cp.wait_reconciled(id, Duration::from_secs(10)).await;

    cp.sandbox
        .notification_drops()
        .drop_next("workloadDefinition.delete", 1);
    cp.api.delete(WD, id).await.expect("first DELETE");
    assert_eq!(
        cp.sandbox.notification_drops().dropped(),
        ["workloadDefinition.delete"]
    );
    wait_until(
        GRACE + INTERVAL + SLACK,
        "the definition deleted to the end",
        || async { cp.sandbox.get_object("workload-definitions", id).is_none() },
    )
    .await;
    let deleted = cp.sandbox.deleted_objects("workload-definitions");
    let row = deleted
        .iter()
        .find(|o| o["ID"].as_u64() == Some(id))
        .expect("soft-deleted row");
    assert!(!row["DeletionConfirmed"].is_null(), "{row}");
    let ops: Vec<_> = r.calls().iter().map(|c| (c.op, c.id)).collect();
    assert_eq!(ops, [(Operation::Created, id), (Operation::Deleted, id)]);
    assert_eq!(
        counter(
            &m,
            "threeport_resync_renotified_total",
            &[("reconciler", WDR)]
        ),
        1.0
    );
    m.shutdown().await;
}

#[tokio::test]
async fn nothing_is_renotified_while_a_notification_is_pending_or_in_flight() {
    let cp = ControlPlane::start().await;
    // One worker. The first object's reconcile takes three intervals (in flight, its lock
    // renewed); meanwhile the second's notification waits for the worker (pending, never
    // delivered); then the second is NAK'd with a delay of two intervals (delivered, not
    // acknowledged). Both need work for far longer than the grace period throughout.
    let r = TestReconciler::new(|n, _| match n {
        0 => Act::Sleep(INTERVAL * 3),
        1 => Act::Requeue(INTERVAL * 2),
        _ => Act::Succeed,
    });
    let m = manager(&cp, &r, 1).await;
    let first = cp.create_wd("in-flight").await;
    let second = cp.create_wd("pending").await;
    cp.wait_reconciled(first, INTERVAL * 3 + SLACK).await;
    cp.wait_reconciled(second, INTERVAL * 3 + SLACK).await;

    // The runs saw both objects as needing work with a notification pending, and re-notified
    // neither; each was reconciled by its own notification alone.
    let runs = counter(
        &m,
        "threeport_resync_runs_total",
        &[("reconciler", WDR), ("result", "ok")],
    );
    let pending = counter(
        &m,
        "threeport_resync_skipped_total",
        &[("reconciler", WDR), ("reason", "pending")],
    );
    assert!(runs >= 2.0, "{runs} runs in about {:?}", INTERVAL * 5);
    assert!(pending >= 2.0, "{pending} objects skipped as pending");
    assert_eq!(
        counter(
            &m,
            "threeport_resync_renotified_total",
            &[("reconciler", WDR)]
        ),
        0.0
    );
    let ops: Vec<_> = r.calls().iter().map(|c| (c.op, c.id, c.attempt)).collect();
    assert_eq!(
        ops,
        [
            (Operation::Created, first, 1),
            (Operation::Created, second, 1),
            (Operation::Created, second, 2)
        ]
    );
    assert_eq!(
        counter(
            &m,
            "threeport_resync_superseded_total",
            &[("reconciler", WDR)]
        ),
        0.0
    );
    eprintln!("{runs} runs, {pending} objects skipped as pending, none re-notified");
    m.shutdown().await;
}

#[tokio::test]
async fn the_lease_is_handed_over_on_release_with_the_schedule_and_taken_from_a_silent_holder() {
    let cp = ControlPlane::start().await;
    let js = cp.jetstream().await;
    let locks = lease::open_bucket(&js, "unused").await.expect("bucket");
    let ttl = Duration::from_secs(1);
    let mut a = Contender::new(locks.clone(), WDR, "replica-a");
    let mut b = Contender::new(locks.clone(), WDR, "replica-b");
    let Attempt::Leading(mut la) = a.try_lead(ttl).await.expect("KV") else {
        panic!("a free lease is taken");
    };
    match b.try_lead(ttl).await.expect("KV") {
        Attempt::Following { holder } => assert_eq!(holder.as_deref(), Some("replica-a")),
        Attempt::Leading(_) => panic!("a live holder's lease was taken"),
    }
    let ran = time::OffsetDateTime::from_unix_timestamp(1_764_583_200).unwrap();
    la.record_run(ran).await.expect("record the run");

    // Released (SIGTERM): the next contender takes it at once, with the last run.
    la.release().await.expect("release");
    let Attempt::Leading(mut lb) = b.try_lead(ttl).await.expect("KV") else {
        panic!("a released lease is taken at once");
    };
    assert_eq!(
        lb.last_run(),
        Some(ran),
        "the schedule survives the handover"
    );
    lb.renew().await.expect("the holder renews");

    // A holder that stops renewing (SIGKILL) loses it after the TTL, not before.
    let first_seen = Instant::now();
    let mut la = loop {
        match a.try_lead(ttl).await.expect("KV") {
            Attempt::Leading(l) => break l,
            Attempt::Following { .. } => {
                assert!(
                    first_seen.elapsed() < ttl * 3,
                    "not taken over within 3 TTLs"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert!(first_seen.elapsed() >= ttl, "taken over before its TTL");
    assert_eq!(la.last_run(), Some(ran));
    assert!(
        matches!(lb.renew().await, Err(LockError::Lost { .. })),
        "the old holder finds it lost"
    );
    la.renew().await.expect("the new holder renews");
}

/// Three `threeport-manager --enable workload` processes with a 3 s resync interval.
async fn replicas(env: &Env, dir: &Path) -> Vec<ManagerProcess> {
    let mut vars = env.process_env();
    vars.extend([
        (
            "THREEPORT_MANAGER__RESYNC__INTERVAL".to_string(),
            "3s".to_string(),
        ),
        (
            "THREEPORT_MANAGER__RESYNC__GRACE".to_string(),
            "1s".to_string(),
        ),
        (
            "THREEPORT_MANAGER__RESYNC__JITTER".to_string(),
            "0".to_string(),
        ),
    ]);
    let mut out = Vec::new();
    for i in 0..3 {
        let mut p = ManagerProcess::spawn(
            &vars,
            &ManagerSpec {
                bin: Path::new(env!("CARGO_BIN_EXE_threeport-manager")),
                concurrency: 2,
                log: dir.join(format!("manager-{i}.log")),
                enable: "workload",
                test_timings: true,
                nats_urls: &[],
            },
        )
        .expect("spawn threeport-manager");
        p.wait_ready(Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        out.push(p);
    }
    out
}

/// Per replica: (leader gauge, successful runs) of `reconciler`; a dead replica reads 0.
async fn resync_state(replicas: &[ManagerProcess], reconciler: &str) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    for p in replicas {
        let text = p.metrics().await;
        out.push((
            metric_sum(
                &text,
                "threeport_resync_leader",
                &[("reconciler", reconciler)],
            ),
            metric_sum(
                &text,
                "threeport_resync_runs_total",
                &[("reconciler", reconciler), ("result", "ok")],
            ),
        ));
    }
    out
}

#[tokio::test]
async fn three_replicas_one_resyncs_and_another_takes_over_after_sigkill() {
    let env = Env::start().await.expect("sandbox environment");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut managers = replicas(&env, dir.path()).await;
    let interval = Duration::from_secs(3);
    const WIR: &str = "WorkloadInstanceReconciler";

    // Each reconciler has exactly one leader, and only it runs.
    for reconciler in [WDR, WIR] {
        wait_until(
            Duration::from_secs(15),
            "a resync leader with a run",
            || async {
                let s = resync_state(&managers, reconciler).await;
                s.iter().filter(|(l, _)| *l == 1.0).count() == 1
                    && s.iter().any(|(l, runs)| *l == 1.0 && *runs >= 1.0)
            },
        )
        .await;
    }
    let before = resync_state(&managers, WIR).await;
    let watched = Instant::now();
    // Long enough for four intervals: about four runs, all by the leader.
    wait_until(interval * 6, "four more runs", || async {
        let now = resync_state(&managers, WIR).await;
        now.iter().map(|s| s.1).sum::<f64>() >= before.iter().map(|s| s.1).sum::<f64>() + 4.0
    })
    .await;
    let elapsed = watched.elapsed();
    let after = resync_state(&managers, WIR).await;
    let leader = after.iter().position(|s| s.0 == 1.0).expect("a leader");
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        if i != leader {
            assert_eq!(
                a.1, b.1,
                "replica {i} ran the resync while {leader} leads: {after:?}"
            );
            assert_eq!(a.0, 0.0, "{after:?}");
        }
    }
    let runs = after[leader].1 - before[leader].1;
    let most = (elapsed.as_secs_f64() / interval.as_secs_f64()).ceil() + 1.0;
    assert!(
        runs <= most,
        "{runs} runs in {elapsed:?} at one per {interval:?}"
    );

    // SIGKILL the leader; a survivor takes the lease over within one interval and keeps the
    // schedule, and recovers a notification lost after the kill.
    managers[leader].child.kill().expect("SIGKILL");
    let _ = managers[leader].child.wait();
    let killed = Instant::now();
    let survivors: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    wait_until(
        interval + Duration::from_secs(2),
        "a new resync leader",
        || async {
            let s = resync_state(&managers, WIR).await;
            survivors.iter().filter(|i| s[**i].0 == 1.0).count() == 1
        },
    )
    .await;
    let takeover = killed.elapsed();
    env.api
        .notification_drops()
        .drop_next("workloadInstance.create", 1);
    let definition = env
        .create_definition("resync-web", WEB_APP_YAML)
        .await
        .expect("definition");
    let (instance, _) = env
        .create_instances(definition, "resync-web", 1, 1)
        .await
        .expect("instance")[0];
    assert_eq!(
        env.api.notification_drops().dropped(),
        ["workloadInstance.create"]
    );
    wait_until(
        interval + Duration::from_secs(1) + Duration::from_secs(10),
        "the instance whose Created was lost reconciled",
        || async { env.reconciled_instances().get(&instance) == Some(&true) },
    )
    .await;
    let s = resync_state(&managers, WIR).await;
    let new_leader = survivors
        .iter()
        .copied()
        .find(|i| s[*i].0 == 1.0)
        .expect("new leader");
    let text = managers[new_leader].metrics().await;
    assert_eq!(
        metric_sum(
            &text,
            "threeport_resync_renotified_total",
            &[("reconciler", WIR)]
        ),
        1.0,
        "the new leader re-notified the instance"
    );
    let other = survivors
        .iter()
        .copied()
        .find(|i| *i != new_leader)
        .unwrap();
    assert_eq!(s[other].0, 0.0);
    eprintln!(
        "{runs} runs in {elapsed:?} by one of three replicas; takeover {takeover:?} after SIGKILL"
    );
    for p in &mut managers {
        p.stop(Duration::from_secs(10));
    }
}
