//! The migration path, on the real stack: Threeport's own Go workload-controller (v0.6.1) and
//! `threeport-manager --enable workload` side by side on one NATS, one Threeport API and one
//! cluster. They bind the same durable consumers and take the same KV locks, so JetStream
//! shares the notifications between them and the locks keep them off each other's objects.
//!
//! - side by side: 200 instances created at once, then updated (another controller's WRI added
//!   and the instance un-reconciled, as gateway/aws/secret do), then deleted. Every instance is
//!   deployed exactly once, both controllers did part of the work, no Kubernetes object was
//!   written by both in one phase (counted in kube-apiserver's audit log by User-Agent), and
//!   after the delete nothing is left but what Threeport's delete bug leaks.
//! - migration: the Go controller is stopped mid-run while it holds a lock (SIGTERM then SIGKILL
//!   after a grace period, as the kubelet does; or SIGKILL alone). The manager finishes every
//!   instance, taking over the dead controller's lock once nobody has written it for
//!   `engine.lock_takeover_after`, set to 1 min here as docs/operating.md recommends for a
//!   migration (the default is Threeport's own 20 min: a Go controller has no heartbeat, so
//!   nothing tells a dead one from one in a long reconcile).
//! - rollback: the manager is stopped (SIGTERM) mid-run; it hands its work back and releases its
//!   locks, and the Go controller finishes.
//!
//! Timings are printed, not asserted (the benchmark `cargo bench --bench peer` measures).

mod harness;
use harness::{backend, go_controller, scale_suite, workload_env};

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use backend::request_log::{kube_requests, KubeRequest};
use backend::{Stack, TW_API};
use futures::{StreamExt, TryStreamExt};
use go_controller::{GoController, WORKLOAD_CONTROLLER_AGENT};
use scale_suite::{
    assert_deployed_exactly_once, create_web_definition, post_instances, wait_all_reconciled,
    wait_for, WEB_APP_DEPLOYED,
};
use serde_json::json;
use threeport_manager::threeport::models::{WORKLOAD_INSTANCE, WORKLOAD_RESOURCE_INSTANCE};
use threeport_manager::threeport::ThreeportApi;
use workload_env::{metric_sum, ManagerProcess};

const INSTANCES: usize = 200;
const MANAGER_AGENT: &str = "threeport-manager/";
/// Enough for the Go controller alone to get through 200 instances, or for the manager to wait
/// out a dead holder's lock (1 min) and finish.
const LIMIT: Duration = Duration::from_secs(300);

/// A real stack with both controllers on it.
struct Fleet {
    stack: Stack,
    go: Option<GoController>,
    manager: Option<ManagerProcess>,
    _logs: tempfile::TempDir,
}

impl Fleet {
    async fn start() -> Option<Fleet> {
        let stack = Stack::upstream(false).await?;
        let logs = tempfile::tempdir().expect("tempdir");
        let go = GoController::start(
            "workload-controller",
            &stack.process_env(),
            logs.path().join("workload-controller.log"),
        );
        let mut vars = stack.process_env();
        vars.push((
            "THREEPORT_MANAGER__ENGINE__LOCK_TAKEOVER_AFTER".into(),
            "1m".into(),
        ));
        let manager = ManagerProcess::spawn_ready(
            &vars,
            "workload",
            4,
            logs.path().join("manager.log"),
            &["WorkloadDefinitionReconciler", "WorkloadInstanceReconciler"],
        )
        .await;
        Some(Fleet {
            stack,
            go: Some(go),
            manager: Some(manager),
            _logs: logs,
        })
    }

    /// A fleet with the web app's definition reconciled and [`INSTANCES`] instances just
    /// POSTed (the controllers are at work on them).
    async fn start_with_instances() -> Option<(Fleet, BTreeSet<u64>)> {
        let fleet = Fleet::start().await?;
        let def = {
            let diagnostics = || fleet.diagnostics();
            create_web_definition(&fleet.stack, "web-app", &diagnostics).await
        };
        let ids = post_instances(&fleet.stack, def, "web", INSTANCES, 32).await;
        Some((fleet, ids))
    }

    fn diagnostics(&self) -> String {
        let mut out = String::new();
        if let Some(go) = &self.go {
            out.push_str(&go.log_tail(15));
        }
        if let Some(m) = &self.manager {
            out.push_str("\nmanager log:\n");
            out.push_str(&m.log_tail(15));
        }
        out
    }

    fn dir(&self) -> &Path {
        self.stack.upstream_dir().expect("a real stack")
    }

    async fn lock_bucket(&self) -> jetstream::kv::Store {
        let client = async_nats::connect(&self.stack.nats_url)
            .await
            .expect("connect to NATS");
        jetstream::new(client)
            .get_key_value("workloadLock")
            .await
            .expect("the workload lock bucket")
    }

    async fn manager_metric(&self, name: &str) -> f64 {
        let text = self.manager.as_ref().expect("manager").metrics().await;
        metric_sum(&text, name, &[("reconciler", "WorkloadInstanceReconciler")])
    }
}

/// The locks held right now, key -> owner.
async fn held_locks(kv: &jetstream::kv::Store) -> BTreeMap<String, String> {
    let keys: Vec<String> = match kv.keys().await {
        Ok(k) => k.try_collect().await.unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let mut out = BTreeMap::new();
    for key in keys {
        if let Ok(Some(v)) = kv.get(&key).await {
            out.insert(key, String::from_utf8_lossy(&v).into_owned());
        }
    }
    out
}

/// Which controller wrote each object in `requests` (by User-Agent): object -> agents.
fn writers(requests: &[KubeRequest]) -> BTreeMap<String, BTreeSet<&'static str>> {
    let mut out: BTreeMap<String, BTreeSet<&'static str>> = BTreeMap::new();
    for r in requests.iter().filter(|r| r.is_write()) {
        let who = if r.user_agent.starts_with(WORKLOAD_CONTROLLER_AGENT) {
            "go"
        } else if r.user_agent.starts_with(MANAGER_AGENT) {
            "manager"
        } else {
            continue;
        };
        out.entry(r.object()).or_default().insert(who);
    }
    out
}

/// Objects written by both controllers; and how many namespaces each controller created.
fn written_by_both(requests: &[KubeRequest]) -> (Vec<String>, BTreeMap<&'static str, usize>) {
    let w = writers(requests);
    let both: Vec<String> = w
        .iter()
        .filter(|(_, who)| who.len() > 1)
        .map(|(o, _)| o.clone())
        .collect();
    let mut namespaces = BTreeMap::new();
    for (object, who) in &w {
        if object.starts_with("/namespaces/") {
            for &c in who {
                *namespaces.entry(c).or_default() += 1;
            }
        }
    }
    (both, namespaces)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_controller_and_manager_side_by_side_create_update_delete_200() {
    let Some(fleet) = Fleet::start().await else {
        return;
    };
    let stack = &fleet.stack;
    let diagnostics = || fleet.diagnostics();
    let def = create_web_definition(stack, "web-app", &diagnostics).await;

    // Both bind Threeport's durable consumers (no others) and share one lock bucket.
    let client = async_nats::connect(&stack.nats_url).await.expect("NATS");
    let js = jetstream::new(client);
    let consumers: BTreeSet<String> = js
        .get_stream("workloadStream")
        .await
        .expect("stream")
        .consumer_names()
        .try_collect()
        .await
        .expect("consumer names");
    assert_eq!(
        consumers,
        BTreeSet::from([
            "WorkloadDefinitionReconcilerConsumer".to_string(),
            "WorkloadInstanceReconcilerConsumer".to_string()
        ])
    );

    // Create.
    let audit_start = kube_requests(fleet.dir()).len();
    let started = Instant::now();
    let ids = post_instances(stack, def, "web", INSTANCES, 32).await;
    wait_all_reconciled(stack, &ids, LIMIT, &diagnostics).await;
    eprintln!("create: {INSTANCES} reconciled in {:?}", started.elapsed());
    let ns_by_instance = assert_deployed_exactly_once(stack, &ids, &WEB_APP_DEPLOYED).await;
    let audit = kube_requests(fleet.dir());
    let (both, namespaces) = written_by_both(&audit[audit_start..]);
    eprintln!("create: namespaces created by {namespaces:?}");
    assert!(both.is_empty(), "written by both controllers: {both:?}");
    assert!(
        namespaces.get("go").copied().unwrap_or(0) > 0
            && namespaces.get("manager").copied().unwrap_or(0) > 0,
        "both controllers took part: {namespaces:?}"
    );
    assert_eq!(namespaces.values().sum::<usize>(), INSTANCES);

    // Update: another controller adds a Secret WRI to every instance and un-reconciles it.
    let audit_start = audit.len();
    let started = Instant::now();
    futures::stream::iter(ids.iter().copied())
        .map(|wi| {
            let api = stack.api.clone();
            async move {
                api.create(
                    WORKLOAD_RESOURCE_INSTANCE,
                    json!({"JSONDefinition": {"apiVersion": "v1", "kind": "Secret",
                                              "metadata": {"name": "db"}},
                           "WorkloadInstanceID": wi, "Reconciled": false}),
                )
                .await
                .expect("POST WRI");
                api.patch(WORKLOAD_INSTANCE, wi, json!({"Reconciled": false}))
                    .await
                    .expect("un-reconcile");
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
    wait_all_reconciled(stack, &ids, LIMIT, &diagnostics).await;
    // Go's Updated path applies the new WRI without Threeport's labels and leaves the
    // ThreeportWorkload as it was (spec 3.2.3); the manager labels it and lists it. So look for
    // the Secret by name in each instance's namespace, and count WRIs on the API side.
    let namespaces: BTreeSet<&String> = ns_by_instance.values().collect();
    wait_for(
        LIMIT,
        "every instance's Secret applied in its namespace",
        &diagnostics,
        || async {
            let secrets = stack.objects("v1", "Secret", None).await;
            let with_db: BTreeSet<&String> = namespaces
                .iter()
                .copied()
                .filter(|ns| {
                    secrets.iter().any(|o| {
                        o["metadata"]["name"] == "db" && o["metadata"]["namespace"] == ns.as_str()
                    })
                })
                .collect();
            with_db == namespaces
        },
    )
    .await;
    eprintln!("update: {INSTANCES} reconciled in {:?}", started.elapsed());
    let mut wri_kinds: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for w in stack.list_all(WORKLOAD_RESOURCE_INSTANCE).await {
        assert_eq!(w["Reconciled"], true, "{w}");
        let wi = w["WorkloadInstanceID"]
            .as_u64()
            .expect("WorkloadInstanceID");
        let kind = w["JSONDefinition"]["kind"].as_str().unwrap_or_default();
        wri_kinds.entry(wi).or_default().push(kind.to_string());
    }
    for kinds in wri_kinds.values_mut() {
        kinds.sort();
    }
    let expected: Vec<String> = ["ConfigMap", "Deployment", "Namespace", "Secret", "Service"]
        .map(String::from)
        .to_vec();
    assert_eq!(wri_kinds.len(), INSTANCES);
    assert!(
        wri_kinds.values().all(|k| *k == expected),
        "one WRI per resource, the Secret included: {wri_kinds:?}"
    );
    let audit = kube_requests(fleet.dir());
    let (both, _) = written_by_both(&audit[audit_start..]);
    assert!(both.is_empty(), "written by both controllers: {both:?}");

    // Delete. Threeport's Go controller fails its first Deleted attempt of an instance without
    // workload events and, when it also makes the retry, never deletes the ThreeportWorkload
    // (spec 4.3 #24): only instances whose deletion Go handled may leave one behind.
    let audit_start = audit.len();
    let started = Instant::now();
    scale_suite::delete_all(stack, &ids, &diagnostics).await;
    wait_for(
        LIMIT,
        "namespaces and objects gone",
        &diagnostics,
        || async {
            scale_suite::extra_namespaces(stack).await.is_empty()
                && scale_suite::labelled(stack, "v1", "ConfigMap")
                    .await
                    .is_empty()
        },
    )
    .await;
    eprintln!("delete: {INSTANCES} gone in {:?}", started.elapsed());
    assert!(stack.list_all(WORKLOAD_RESOURCE_INSTANCE).await.is_empty());
    let audit = kube_requests(fleet.dir());
    // The namespaces whose contents each controller deleted.
    let deleted_in = |agent: &str| -> BTreeSet<String> {
        audit[audit_start..]
            .iter()
            .filter(|r| r.user_agent.starts_with(agent) && r.verb == "delete")
            .map(|r| {
                if r.resource == "namespaces" {
                    r.name.clone()
                } else {
                    r.namespace.clone()
                }
            })
            .filter(|ns| !ns.is_empty())
            .collect()
    };
    let (by_go, by_manager) = (
        deleted_in(WORKLOAD_CONTROLLER_AGENT),
        deleted_in(MANAGER_AGENT),
    );
    let left: Vec<String> = stack
        .objects(TW_API, "ThreeportWorkload", None)
        .await
        .iter()
        .map(scale_suite::name_of)
        .collect();
    eprintln!(
        "delete: Go deleted {} instances' objects, the manager {}; {} ThreeportWorkloads left by Go's bug",
        by_go.len(),
        by_manager.len(),
        left.len()
    );
    for tw in &left {
        let id: u64 = tw
            .strip_prefix("workload-instance-")
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("unexpected ThreeportWorkload {tw}"));
        assert!(
            by_go.contains(&ns_by_instance[&id]),
            "{tw} left behind though the Go controller did not delete instance {id}"
        );
    }
}

/// How the Go controller is stopped in a migration.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stop {
    /// Threeport's graceful stop, `/shutdown` (what a preStop hook can call).
    Shutdown,
    /// SIGTERM, then SIGKILL after a grace period: what the kubelet does when the Deployment
    /// is scaled down (Go ignores SIGTERM, spec 1.11).
    TermThenKill,
    /// SIGKILL at once (a crash, an OOM kill, a node loss).
    Kill,
}

/// Freeze the Go controller while it holds a lock (SIGSTOP, look, SIGCONT, retry), then stop
/// it. Returns the keys it held at that moment.
async fn stop_go_holding_a_lock(fleet: &mut Fleet, how: Stop) -> BTreeSet<String> {
    let kv = fleet.lock_bucket().await;
    let manager_id = fleet
        .manager
        .as_ref()
        .and_then(ManagerProcess::instance_id)
        .expect("the manager logged its instance ID");
    let go = fleet.go.as_mut().expect("Go controller");
    let deadline = Instant::now() + Duration::from_secs(60);
    let held = loop {
        go.signal("STOP");
        let held: BTreeSet<String> = held_locks(&kv)
            .await
            .into_iter()
            .filter(|(k, owner)| *owner != manager_id && k.starts_with("WorkloadInstance"))
            .map(|(k, _)| k)
            .collect();
        if !held.is_empty() || Instant::now() > deadline {
            break held;
        }
        go.signal("CONT");
        tokio::time::sleep(Duration::from_millis(15)).await;
    };
    assert!(
        !held.is_empty(),
        "never caught the Go controller holding a lock"
    );
    match how {
        Stop::Shutdown => {
            go.signal("CONT");
            assert!(
                go.shutdown(Duration::from_secs(40)).await,
                "the Go controller did not exit after /shutdown"
            );
        }
        Stop::TermThenKill => {
            go.signal("CONT");
            go.signal("TERM");
            tokio::time::sleep(Duration::from_secs(2)).await;
            assert!(
                go.running(),
                "Threeport's controllers ignore SIGTERM (spec 1.11)"
            );
            go.kill();
        }
        Stop::Kill => go.kill(),
    }
    held
}

/// The instance ID of a lock key `<Reconciler>.<id>`.
fn lock_key_id(key: &str) -> u64 {
    key.rsplit('.')
        .next()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("lock key {key}"))
}

async fn migration(how: Stop) {
    let Some((mut fleet, ids)) = Fleet::start_with_instances().await else {
        return;
    };
    let held = stop_go_holding_a_lock(&mut fleet, how).await;
    let stopped = Instant::now();
    let reconciled_then = scale_suite::reconciled_instances(&fleet.stack)
        .await
        .values()
        .filter(|r| **r)
        .count();
    eprintln!("{how:?}: Go stopped holding {held:?} with {reconciled_then}/{INSTANCES} reconciled");
    let diagnostics = || fleet.diagnostics();
    wait_all_reconciled(&fleet.stack, &ids, LIMIT, &diagnostics).await;
    let took = stopped.elapsed();
    eprintln!("{how:?}: the manager finished everything {took:?} after the stop");
    // A controller killed between its last PATCH and its lock release leaves a lock on an
    // object that is already reconciled. JetStream redelivers that message after AckWait
    // (30 s) and the manager takes the lock over once nobody has written it for
    // `engine.lock_takeover_after` (1 min here), so the lock goes later than the work is done.
    let kv = fleet.lock_bucket().await;
    wait_for(LIMIT, "no lock left behind", &diagnostics, || async {
        held_locks(&kv).await.is_empty()
    })
    .await;
    let takeovers = fleet.manager_metric("threeport_lock_takeovers_total").await;
    eprintln!(
        "{how:?}: no lock left {:?} after the stop, {takeovers} lock takeovers",
        stopped.elapsed()
    );
    // Go's SIGTERM handler releases the lock of the object it is reconciling and NAKs its
    // message while the reconcile goes on (spec 4.1 #7), so that object can be deployed by
    // both; the manager adopts what Go made when it sees it in time. Everything else, and
    // every object after /shutdown or SIGKILL, is deployed exactly once.
    let in_flight: BTreeSet<u64> = if how == Stop::TermThenKill {
        held.iter().map(|k| lock_key_id(k)).collect()
    } else {
        BTreeSet::new()
    };
    scale_suite::assert_deployed_exactly_once_except(
        &fleet.stack,
        &ids,
        &WEB_APP_DEPLOYED,
        &in_flight,
    )
    .await;
    for id in &in_flight {
        let namespaces = scale_suite::labelled(&fleet.stack, "v1", "Namespace")
            .await
            .iter()
            .filter(|o| scale_suite::instance_label(o) == *id)
            .count();
        eprintln!("{how:?}: instance {id}, in flight at SIGTERM, has {namespaces} namespace(s)");
        assert!(namespaces >= 1, "instance {id} deployed");
    }
    match how {
        // A killed controller's lock stays until someone takes it over.
        Stop::Kill => assert!(
            takeovers >= held.len() as f64,
            "the dead controller's locks were taken over ({takeovers})"
        ),
        // A graceful stop finishes the message in hand and releases its lock.
        Stop::Shutdown => assert_eq!(takeovers, 0.0),
        Stop::TermThenKill => {}
    }
    let mut manager = fleet.manager.take().expect("manager");
    assert_eq!(manager.stop(Duration::from_secs(30)), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_go_controller_graceful_shutdown_mid_run_the_manager_finishes() {
    migration(Stop::Shutdown).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_go_controller_sigterm_then_sigkill_mid_run_the_manager_finishes() {
    migration(Stop::TermThenKill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_go_controller_sigkill_mid_run_the_manager_takes_its_locks_over() {
    migration(Stop::Kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_manager_sigterm_mid_run_the_go_controller_finishes() {
    let Some((mut fleet, ids)) = Fleet::start_with_instances().await else {
        return;
    };
    // Stop the manager while it is busy.
    {
        let manager = fleet.manager.as_ref().expect("manager");
        let diagnostics = || fleet.diagnostics();
        wait_for(
            LIMIT,
            "the manager is reconciling",
            &diagnostics,
            || async {
                let text = manager.metrics().await;
                metric_sum(
                    &text,
                    "threeport_reconcile_total",
                    &[
                        ("reconciler", "WorkloadInstanceReconciler"),
                        ("result", "success"),
                    ],
                ) >= 5.0
            },
        )
        .await;
    }
    let mut manager = fleet.manager.take().expect("manager");
    let manager_id = manager.instance_id().expect("instance ID");
    let stopped = Instant::now();
    assert_eq!(
        manager.stop(Duration::from_secs(30)),
        Some(0),
        "clean exit on SIGTERM"
    );
    eprintln!(
        "rollback: the manager exited {:?} after SIGTERM",
        stopped.elapsed()
    );
    let kv = fleet.lock_bucket().await;
    let left: Vec<String> = held_locks(&kv)
        .await
        .into_iter()
        .filter(|(_, owner)| *owner == manager_id)
        .map(|(k, _)| k)
        .collect();
    assert!(left.is_empty(), "the manager released its locks: {left:?}");
    let diagnostics = || fleet.diagnostics();
    wait_all_reconciled(&fleet.stack, &ids, LIMIT, &diagnostics).await;
    eprintln!(
        "rollback: the Go controller finished everything {:?} after the manager's SIGTERM",
        stopped.elapsed()
    );
    assert_deployed_exactly_once(&fleet.stack, &ids, &WEB_APP_DEPLOYED).await;
}
