//! Two `threeport-manager --enable workload` processes (the real binary) on one NATS, one
//! Threeport API and one cluster; N instances of one definition. Every instance is reconciled
//! exactly once to completion (counts, not existence: one namespace, one ThreeportWorkload,
//! one WRI and one Kubernetes object per resource), the two managers' success counters sum to
//! exactly N, no lock was lost, and deleting all N leaves nothing behind (namespaces really
//! gone). Run on the sandbox (`tests/workload_scale.rs`) and the real stack
//! (`tests/upstream_workload.rs`); everything is read through the two APIs.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use threeport_manager::threeport::models::{
    WORKLOAD_DEFINITION, WORKLOAD_INSTANCE, WORKLOAD_RESOURCE_DEFINITION,
    WORKLOAD_RESOURCE_INSTANCE,
};
use threeport_manager::threeport::ThreeportApi;

use crate::backend::{Stack, SYSTEM_NAMESPACES, TW_API};
use crate::workload_env::{
    metric_sum, ManagerProcess, ManagerSpec, INSTANCE_LABEL, WEB_APP_RESOURCES, WEB_APP_YAML,
};

fn instance_label(o: &Value) -> u64 {
    o["metadata"]["labels"][INSTANCE_LABEL]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn name_of(o: &Value) -> String {
    o["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Poll `cond` every 200 ms; on timeout panic with the managers' log tails.
async fn wait_for<F, Fut>(limit: Duration, what: &str, managers: &[&ManagerProcess], mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        if start.elapsed() > limit {
            let logs: Vec<String> = managers.iter().map(|m| m.log_tail(15)).collect();
            panic!(
                "timed out after {limit:?} waiting for: {what}\nmanager logs:\n{}",
                logs.join("\n---\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn labelled(stack: &Stack, api_version: &str, kind: &str) -> Vec<Value> {
    stack
        .objects(api_version, kind, None)
        .await
        .into_iter()
        .filter(|o| !o["metadata"]["labels"][INSTANCE_LABEL].is_null())
        .collect()
}

async fn extra_namespaces(stack: &Stack) -> Vec<Value> {
    stack
        .objects("v1", "Namespace", None)
        .await
        .into_iter()
        .filter(|o| !SYSTEM_NAMESPACES.contains(&name_of(o).as_str()))
        .collect()
}

/// `Reconciled` of every workload instance, by ID (every page).
async fn reconciled_instances(stack: &Stack) -> BTreeMap<u64, bool> {
    stack
        .list_all(WORKLOAD_INSTANCE)
        .await
        .into_iter()
        .filter_map(|o| Some((o["ID"].as_u64()?, o["Reconciled"] == true)))
        .collect()
}

pub async fn two_managers_reconcile_instances_exactly_once(stack: &Stack, instances: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = Path::new(env!("CARGO_BIN_EXE_threeport-manager"));
    let vars = stack.process_env();
    let mut managers = Vec::new();
    for i in 0..2 {
        let mut m = ManagerProcess::spawn(
            &vars,
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
    let api = stack.api.clone();

    // One definition, reconciled before the instances arrive (order independence has its
    // own scenario in the workload suite).
    let def = api
        .create(
            WORKLOAD_DEFINITION,
            json!({"Name": "web-app", "YAMLDocument": WEB_APP_YAML}),
        )
        .await
        .expect("POST definition")["ID"]
        .as_u64()
        .expect("ID");
    wait_for(
        Duration::from_secs(30),
        "definition reconciled",
        &[m0, m1],
        || async {
            stack
                .get(WORKLOAD_DEFINITION, def)
                .await
                .is_some_and(|o| o["Reconciled"] == true)
        },
    )
    .await;
    let wrds = stack
        .list_where(WORKLOAD_RESOURCE_DEFINITION, "workloaddefinitionid", def)
        .await;
    assert_eq!(wrds.len(), WEB_APP_RESOURCES, "one WRD per YAML document");

    let created: Vec<anyhow::Result<u64>> = {
        use futures::StreamExt as _;
        futures::stream::iter(0..instances)
            .map(|i| {
                let api = api.clone();
                let runtime = stack.runtime_id;
                async move {
                    let o = api
                        .create(
                            WORKLOAD_INSTANCE,
                            json!({"Name": format!("web-{i}"), "WorkloadDefinitionID": def,
                                   "KubernetesRuntimeInstanceID": runtime}),
                        )
                        .await?;
                    o["ID"]
                        .as_u64()
                        .ok_or_else(|| anyhow::anyhow!("instance without ID: {o}"))
                }
            })
            .buffered(32)
            .collect()
            .await
    };
    let ids: BTreeSet<u64> = created
        .into_iter()
        .map(|r| r.expect("POST instance"))
        .collect();
    assert_eq!(ids.len(), instances);
    wait_for(
        Duration::from_secs(300),
        "every instance Reconciled:true",
        &[m0, m1],
        || async {
            let r = reconciled_instances(stack).await;
            ids.iter().all(|id| r.get(id) == Some(&true))
        },
    )
    .await;

    // Threeport side: per instance exactly one WRI per resource, plus the managed namespace
    // (the definition's YAML has no Namespace, so the instance gets one WRI for it).
    let per_instance_wris = WEB_APP_RESOURCES + 1;
    let wris = stack.list_all(WORKLOAD_RESOURCE_INSTANCE).await;
    assert_eq!(
        wris.len(),
        instances * per_instance_wris,
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
    let tws = stack.objects(TW_API, "ThreeportWorkload", None).await;
    assert_eq!(tws.len(), instances, "one ThreeportWorkload per instance");
    let tw_names: BTreeSet<String> = tws.iter().map(name_of).collect();
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
        extra_namespaces(stack).await.len(),
        instances,
        "exactly one namespace per instance"
    );
    let labelled_ns = labelled(stack, "v1", "Namespace").await;
    let ns_by_instance: BTreeMap<u64, String> = labelled_ns
        .iter()
        .map(|o| (instance_label(o), name_of(o)))
        .collect();
    assert_eq!(
        labelled_ns.len(),
        instances,
        "namespaces with the instance label"
    );
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
        let objs = labelled(stack, av, kind).await;
        assert_eq!(objs.len(), instances, "one {kind} per instance");
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
    let distinct: BTreeSet<&String> = ns_of.values().flat_map(|s| s.iter()).collect();
    assert_eq!(
        distinct.len(),
        instances,
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
        instances as f64,
        "each instance reconciled successfully once"
    );
    for t in [&t0, &t1] {
        assert_eq!(metric_sum(t, "threeport_lock_lost_total", &[]), 0.0);
    }

    // Delete all: every instance disappears from the API and nothing is left in the cluster.
    let results: Vec<_> = futures::future::join_all(ids.iter().map(|id| {
        let api = api.clone();
        async move { api.delete(WORKLOAD_INSTANCE, *id).await }
    }))
    .await;
    for r in results {
        r.expect("DELETE instance");
    }
    wait_for(
        Duration::from_secs(300),
        "every instance gone from the API",
        &[m0, m1],
        || async {
            let r = reconciled_instances(stack).await;
            ids.iter().all(|id| !r.contains_key(id))
        },
    )
    .await;
    wait_for(
        Duration::from_secs(180),
        "cluster objects and namespaces gone",
        &[m0, m1],
        || async {
            labelled(stack, "v1", "ConfigMap").await.is_empty()
                && labelled(stack, "apps/v1", "Deployment").await.is_empty()
                && labelled(stack, "v1", "Service").await.is_empty()
                && stack
                    .objects(TW_API, "ThreeportWorkload", None)
                    .await
                    .is_empty()
                && extra_namespaces(stack).await.is_empty()
        },
    )
    .await;
    assert!(stack.list_all(WORKLOAD_RESOURCE_INSTANCE).await.is_empty());
    let (t0, t1) = (m0.metrics().await, m1.metrics().await);
    let total = metric_sum(&t0, "threeport_reconcile_total", &rec)
        + metric_sum(&t1, "threeport_reconcile_total", &rec);
    assert_eq!(
        total,
        2.0 * instances as f64,
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
