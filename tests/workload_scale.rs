//! Two `threeport-manager --enable workload` processes (the real binary) on one NATS, one
//! sandbox Threeport API and one sandbox Kubernetes cluster; 200 instances of one definition.
//! Every instance is reconciled exactly once to completion (counts, not existence: one
//! namespace, one ThreeportWorkload, one WRI and one Kubernetes object per resource), the two
//! managers' success counters sum to exactly the number of instances, no lock was lost, and
//! deleting all 200 leaves nothing behind.
//!
//! Skips (returns early with a message) while the workload controller is not implemented.

mod workload_env;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use threeport_manager::threeport::models::WORKLOAD_INSTANCE;
use threeport_manager::threeport::ThreeportApi;
use workload_env::{
    metric_sum, workload_implemented, Env, ManagerProcess, ManagerSpec, INSTANCE_LABEL,
    WEB_APP_RESOURCES, WEB_APP_YAML,
};

const INSTANCES: usize = 200;

fn instance_label(o: &serde_json::Value) -> u64 {
    o["metadata"]["labels"][INSTANCE_LABEL]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

async fn wait_for(
    limit: Duration,
    what: &str,
    managers: &[&ManagerProcess],
    mut cond: impl FnMut() -> bool,
) {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > limit {
            let logs: Vec<String> = managers.iter().map(|m| m.log_tail(15)).collect();
            panic!(
                "timed out after {limit:?} waiting for: {what}\nmanager logs:\n{}",
                logs.join("\n---\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_managers_reconcile_200_instances_exactly_once() {
    if !workload_implemented() {
        eprintln!(
            "SKIPPED: the workload controller is not implemented in this build \
             (registry::controller(\"workload\").implemented == false)"
        );
        return;
    }
    let env = Env::start().await.expect("nats-server + sandboxes");
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = Path::new(env!("CARGO_BIN_EXE_threeport-manager"));
    let mut managers = Vec::new();
    for i in 0..2 {
        let mut m = ManagerProcess::spawn(
            &env,
            &ManagerSpec {
                bin,
                concurrency: 4,
                log: dir.path().join(format!("manager-{i}.log")),
            },
        )
        .expect("spawn threeport-manager");
        m.wait_ready(Duration::from_secs(30)).await.expect("ready");
        managers.push(m);
    }
    let (m0, m1) = (&managers[0], &managers[1]);

    // One definition, reconciled before the instances arrive (order independence has its
    // own test in tests/workload.rs).
    let def = env
        .create_definition("web-app", WEB_APP_YAML)
        .await
        .expect("POST definition");
    wait_for(
        Duration::from_secs(30),
        "definition reconciled",
        &[m0, m1],
        || {
            env.api
                .get_object("workload-definitions", def)
                .is_some_and(|o| o["Reconciled"] == true)
        },
    )
    .await;
    let wrds: Vec<_> = env
        .api
        .list_objects("workload-resource-definitions")
        .into_iter()
        .filter(|o| o["WorkloadDefinitionID"].as_u64() == Some(def))
        .collect();
    assert_eq!(wrds.len(), WEB_APP_RESOURCES, "one WRD per YAML document");

    let created = env
        .create_instances(def, "web", INSTANCES, 32)
        .await
        .expect("POST instances");
    let ids: BTreeSet<u64> = created.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), INSTANCES);
    wait_for(
        Duration::from_secs(240),
        "every instance Reconciled:true",
        &[m0, m1],
        || {
            let r = env.reconciled_instances();
            ids.iter().all(|id| r.get(id) == Some(&true))
        },
    )
    .await;

    // Threeport side: per instance exactly one WRI per resource, plus the managed namespace
    // (the definition's YAML has no Namespace, so the instance gets one WRI for it).
    let per_instance_wris = WEB_APP_RESOURCES + 1;
    let wris = env.api.list_objects("workload-resource-instances");
    assert_eq!(
        wris.len(),
        INSTANCES * per_instance_wris,
        "WRI count = (resources + namespace) x instances"
    );
    let mut per_instance: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    for w in &wris {
        let wi = w["WorkloadInstanceID"]
            .as_u64()
            .expect("WRI WorkloadInstanceID");
        let kind = w["JSONDefinition"]["kind"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            per_instance.entry(wi).or_default().insert(kind.clone()),
            "duplicate {kind} WRI for instance {wi}"
        );
        assert_eq!(w["Reconciled"], true, "{w}");
    }
    assert_eq!(per_instance.keys().copied().collect::<BTreeSet<_>>(), ids);
    let kinds: BTreeSet<String> = ["ConfigMap", "Deployment", "Namespace", "Service"]
        .map(String::from)
        .into();
    assert!(
        per_instance.values().all(|s| *s == kinds),
        "{per_instance:?}"
    );

    // Cluster side: one ThreeportWorkload per instance, listing its WRIs.
    let tws = env.kube.objects(
        "control-plane.threeport.io/v1alpha1",
        "ThreeportWorkload",
        None,
    );
    assert_eq!(tws.len(), INSTANCES, "one ThreeportWorkload per instance");
    let tw_names: BTreeSet<String> = tws
        .iter()
        .map(|t| {
            t["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let expected: BTreeSet<String> = ids
        .iter()
        .map(|id| format!("workload-instance-{id}"))
        .collect();
    assert_eq!(tw_names, expected);
    for t in &tws {
        assert_eq!(
            t["spec"]["workloadResourceInstances"]
                .as_array()
                .map(Vec::len),
            Some(per_instance_wris),
            "{t}"
        );
    }

    // One managed namespace per instance; each instance's 3 objects live in its namespace.
    assert_eq!(
        env.extra_namespaces().len(),
        INSTANCES,
        "exactly one namespace per instance"
    );
    let labelled_ns = env.labelled("v1", "Namespace");
    assert_eq!(
        labelled_ns.len(),
        INSTANCES,
        "namespaces with the instance label"
    );
    let ns_by_instance: BTreeMap<u64, String> = labelled_ns
        .iter()
        .map(|o| {
            (
                instance_label(o),
                o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        ns_by_instance.keys().copied().collect::<BTreeSet<_>>(),
        ids,
        "one labelled namespace per instance"
    );
    let mut ns_of: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    for (av, kind) in [
        ("v1", "ConfigMap"),
        ("apps/v1", "Deployment"),
        ("v1", "Service"),
    ] {
        let objs = env.labelled(av, kind);
        assert_eq!(objs.len(), INSTANCES, "one {kind} per instance");
        let owners: BTreeSet<u64> = objs.iter().map(instance_label).collect();
        assert_eq!(owners, ids, "{kind}: every instance has exactly one");
        for o in &objs {
            let ns = o["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            ns_of.entry(instance_label(o)).or_default().insert(ns);
        }
    }
    for (wi, nss) in &ns_of {
        assert_eq!(
            nss.iter().collect::<Vec<_>>(),
            vec![&ns_by_instance[wi]],
            "instance {wi}: its objects are in its labelled namespace"
        );
    }
    assert!(
        ns_of.values().all(|s| s.len() == 1),
        "each instance in one namespace"
    );
    let distinct: BTreeSet<&String> = ns_of.values().flat_map(|s| s.iter()).collect();
    assert_eq!(
        distinct.len(),
        INSTANCES,
        "no two instances share a namespace"
    );

    // Exactly-once: the two managers' successful instance reconciles sum to the instance count,
    // and no reconcile lost its lock to the other manager.
    let rec = [
        ("controller", "workload"),
        ("reconciler", "WorkloadInstanceReconciler"),
        ("result", "success"),
    ];
    let (t0, t1) = (m0.metrics().await, m1.metrics().await);
    let (s0, s1) = (
        metric_sum(&t0, "threeport_reconcile_total", &rec),
        metric_sum(&t1, "threeport_reconcile_total", &rec),
    );
    eprintln!("create: manager 0 reconciled {s0} instances, manager 1 {s1}");
    assert_eq!(
        s0 + s1,
        INSTANCES as f64,
        "each instance reconciled successfully once"
    );
    for t in [&t0, &t1] {
        assert_eq!(metric_sum(t, "threeport_lock_lost_total", &[]), 0.0);
    }

    // Delete all 200: every instance disappears from the API and nothing is left in the cluster.
    let client = env.client.clone();
    let results: Vec<_> = futures::future::join_all(ids.iter().map(|id| {
        let client = client.clone();
        async move { client.delete(WORKLOAD_INSTANCE, *id).await }
    }))
    .await;
    for r in results {
        r.expect("DELETE instance");
    }
    wait_for(
        Duration::from_secs(240),
        "every instance gone from the API",
        &[m0, m1],
        || {
            let r = env.reconciled_instances();
            ids.iter().all(|id| !r.contains_key(id))
        },
    )
    .await;
    wait_for(
        Duration::from_secs(60),
        "cluster objects gone",
        &[m0, m1],
        || {
            env.labelled("v1", "ConfigMap").is_empty()
                && env.labelled("apps/v1", "Deployment").is_empty()
                && env.labelled("v1", "Service").is_empty()
                && env
                    .kube
                    .objects(
                        "control-plane.threeport.io/v1alpha1",
                        "ThreeportWorkload",
                        None,
                    )
                    .is_empty()
                && env.extra_namespaces().is_empty()
        },
    )
    .await;
    assert!(env
        .api
        .list_objects("workload-resource-instances")
        .is_empty());
    let (t0, t1) = (m0.metrics().await, m1.metrics().await);
    let total = metric_sum(&t0, "threeport_reconcile_total", &rec)
        + metric_sum(&t1, "threeport_reconcile_total", &rec);
    assert_eq!(
        total,
        2.0 * INSTANCES as f64,
        "one create and one delete per instance"
    );

    for m in &mut managers {
        assert_eq!(
            m.stop(Duration::from_secs(30)),
            Some(0),
            "clean exit on SIGTERM"
        );
    }
}
