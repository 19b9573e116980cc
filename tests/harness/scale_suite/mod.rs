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

use crate::harness::backend::{Stack, SYSTEM_NAMESPACES, TW_API};
use crate::harness::workload_env::{
    metric_sum, ManagerProcess, ManagerSpec, INSTANCE_LABEL, WEB_APP_RESOURCES, WEB_APP_YAML,
};

pub fn instance_label(o: &Value) -> u64 {
    o["metadata"]["labels"][INSTANCE_LABEL]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

pub fn name_of(o: &Value) -> String {
    o["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Poll `cond` every 200 ms; on timeout panic with `diagnostics()` (controller log tails).
pub async fn wait_for<F, Fut>(
    limit: Duration,
    what: &str,
    diagnostics: &dyn Fn() -> String,
    mut cond: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        if start.elapsed() > limit {
            panic!(
                "timed out after {limit:?} waiting for: {what}\n{}",
                diagnostics()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The log tails of manager processes.
pub fn manager_logs(managers: &[&ManagerProcess]) -> String {
    let logs: Vec<String> = managers.iter().map(|m| m.log_tail(15)).collect();
    format!("manager logs:\n{}", logs.join("\n---\n"))
}

pub async fn labelled(stack: &Stack, api_version: &str, kind: &str) -> Vec<Value> {
    stack
        .objects(api_version, kind, None)
        .await
        .into_iter()
        .filter(|o| !o["metadata"]["labels"][INSTANCE_LABEL].is_null())
        .collect()
}

pub async fn extra_namespaces(stack: &Stack) -> Vec<Value> {
    stack
        .objects("v1", "Namespace", None)
        .await
        .into_iter()
        .filter(|o| !SYSTEM_NAMESPACES.contains(&name_of(o).as_str()))
        .collect()
}

/// `Reconciled` of every workload instance, by ID (every page).
pub async fn reconciled_instances(stack: &Stack) -> BTreeMap<u64, bool> {
    stack
        .list_all(WORKLOAD_INSTANCE)
        .await
        .into_iter()
        .filter_map(|o| Some((o["ID"].as_u64()?, o["Reconciled"] == true)))
        .collect()
}

/// POST the web app's definition (ConfigMap, Deployment, Service) and wait until a controller
/// has reconciled it; returns its ID.
pub async fn create_web_definition(
    stack: &Stack,
    name: &str,
    diagnostics: &dyn Fn() -> String,
) -> u64 {
    let def = stack
        .api
        .create(
            WORKLOAD_DEFINITION,
            json!({"Name": name, "YAMLDocument": WEB_APP_YAML}),
        )
        .await
        .expect("POST definition")["ID"]
        .as_u64()
        .expect("ID");
    wait_for(
        Duration::from_secs(30),
        "definition reconciled",
        diagnostics,
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
    def
}

/// POST `n` instances `<prefix>-<i>` of `def` at once, `in_flight` requests at a time; their
/// IDs.
pub async fn post_instances(
    stack: &Stack,
    def: u64,
    prefix: &str,
    n: usize,
    in_flight: usize,
) -> BTreeSet<u64> {
    use futures::StreamExt as _;
    let created: Vec<anyhow::Result<u64>> = futures::stream::iter(0..n)
        .map(|i| {
            let api = stack.api.clone();
            let runtime = stack.runtime_id;
            let name = format!("{prefix}-{i}");
            async move {
                let o = api
                    .create(
                        WORKLOAD_INSTANCE,
                        json!({"Name": name, "WorkloadDefinitionID": def,
                               "KubernetesRuntimeInstanceID": runtime}),
                    )
                    .await?;
                o["ID"]
                    .as_u64()
                    .ok_or_else(|| anyhow::anyhow!("instance without ID: {o}"))
            }
        })
        .buffered(in_flight)
        .collect()
        .await;
    let ids: BTreeSet<u64> = created
        .into_iter()
        .map(|r| r.expect("POST instance"))
        .collect();
    assert_eq!(ids.len(), n);
    ids
}

/// Wait until every instance in `ids` is `Reconciled:true`.
pub async fn wait_all_reconciled(
    stack: &Stack,
    ids: &BTreeSet<u64>,
    limit: Duration,
    diagnostics: &dyn Fn() -> String,
) {
    wait_for(
        limit,
        "every instance Reconciled:true",
        diagnostics,
        || async {
            let r = reconciled_instances(stack).await;
            ids.iter().all(|id| r.get(id) == Some(&true))
        },
    )
    .await;
}

/// What each instance of the web app has once deployed: its WRI kinds (the managed namespace
/// and the three resources, plus any added by an update) and its cluster objects.
pub struct Deployed<'a> {
    pub wri_kinds: &'a [&'a str],
    pub objects: &'a [(&'a str, &'a str)],
}

/// The web app as created: Namespace, ConfigMap, Deployment, Service.
pub const WEB_APP_DEPLOYED: Deployed<'static> = Deployed {
    wri_kinds: &["ConfigMap", "Deployment", "Namespace", "Service"],
    objects: &[
        ("v1", "ConfigMap"),
        ("apps/v1", "Deployment"),
        ("v1", "Service"),
    ],
};

/// Every instance in `ids` deployed exactly once (counts, not existence): one WRI per resource,
/// one ThreeportWorkload listing them, one labelled namespace, one object per resource in it,
/// no namespace shared. Returns each instance's namespace.
pub async fn assert_deployed_exactly_once(
    stack: &Stack,
    ids: &BTreeSet<u64>,
    expect: &Deployed<'_>,
) -> BTreeMap<u64, String> {
    assert_deployed_exactly_once_except(stack, ids, expect, &BTreeSet::new()).await
}

/// [`assert_deployed_exactly_once`] for the instances in `ids` but not in `except`, whose
/// WRIs, namespaces, objects and ThreeportWorkloads are left out of every count.
pub async fn assert_deployed_exactly_once_except(
    stack: &Stack,
    ids: &BTreeSet<u64>,
    expect: &Deployed<'_>,
    except: &BTreeSet<u64>,
) -> BTreeMap<u64, String> {
    let ids: &BTreeSet<u64> = &ids.difference(except).copied().collect();
    let counted = |o: &Value| !except.contains(&instance_label(o));
    let instances = ids.len();
    // Threeport side: per instance exactly one WRI per resource, plus the managed namespace
    // (the definition's YAML has no Namespace, so the instance gets one WRI for it).
    let per_instance_wris = expect.wri_kinds.len();
    let wris: Vec<Value> = stack
        .list_all(WORKLOAD_RESOURCE_INSTANCE)
        .await
        .into_iter()
        .filter(|w| {
            w["WorkloadInstanceID"]
                .as_u64()
                .is_none_or(|wi| !except.contains(&wi))
        })
        .collect();
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
    assert_eq!(&per_instance.keys().copied().collect::<BTreeSet<_>>(), ids);
    let kinds: BTreeSet<String> = expect.wri_kinds.iter().map(|k| k.to_string()).collect();
    assert!(
        per_instance.values().all(|s| *s == kinds),
        "{per_instance:?}"
    );

    // Cluster side: one ThreeportWorkload per instance, listing its WRIs.
    let tws: Vec<Value> = stack
        .objects(TW_API, "ThreeportWorkload", None)
        .await
        .into_iter()
        .filter(|t| {
            name_of(t)
                .strip_prefix("workload-instance-")
                .and_then(|id| id.parse::<u64>().ok())
                .is_none_or(|id| !except.contains(&id))
        })
        .collect();
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
        extra_namespaces(stack)
            .await
            .iter()
            .filter(|o| counted(o))
            .count(),
        instances,
        "exactly one namespace per instance"
    );
    let labelled_ns: Vec<Value> = labelled(stack, "v1", "Namespace")
        .await
        .into_iter()
        .filter(counted)
        .collect();
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
        &ns_by_instance.keys().copied().collect::<BTreeSet<_>>(),
        ids,
        "one labelled namespace per instance"
    );
    let mut ns_of: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    for &(av, kind) in expect.objects {
        let objs: Vec<Value> = labelled(stack, av, kind)
            .await
            .into_iter()
            .filter(counted)
            .collect();
        assert_eq!(objs.len(), instances, "one {kind} per instance");
        let owners: BTreeSet<u64> = objs.iter().map(instance_label).collect();
        assert_eq!(&owners, ids, "{kind}: every instance has exactly one");
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
    ns_by_instance
}

/// DELETE every instance in `ids` at once; wait until they are gone from the API and their
/// cluster objects, ThreeportWorkloads and namespaces are deleted.
pub async fn delete_all_and_wait_clean(
    stack: &Stack,
    ids: &BTreeSet<u64>,
    diagnostics: &dyn Fn() -> String,
) {
    delete_all(stack, ids, diagnostics).await;
    wait_for(
        Duration::from_secs(180),
        "cluster objects and namespaces gone",
        diagnostics,
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
}

/// DELETE every instance in `ids` at once and wait (5 min at most) until the API lists none
/// of them: a controller has confirmed each deletion and made the final DELETE.
pub async fn delete_all(stack: &Stack, ids: &BTreeSet<u64>, diagnostics: &dyn Fn() -> String) {
    let results: Vec<_> = futures::future::join_all(ids.iter().map(|id| {
        let api = stack.api.clone();
        async move { api.delete(WORKLOAD_INSTANCE, *id).await }
    }))
    .await;
    for r in results {
        r.expect("DELETE instance");
    }
    wait_for(
        Duration::from_secs(300),
        "every instance gone from the API",
        diagnostics,
        || async {
            let r = reconciled_instances(stack).await;
            ids.iter().all(|id| !r.contains_key(id))
        },
    )
    .await;
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
                enable: "workload",
                test_timings: true,
                nats_urls: &[],
            },
        )
        .expect("spawn threeport-manager");
        m.wait_ready(Duration::from_secs(30)).await.expect("ready");
        managers.push(m);
    }
    let (m0, m1) = (&managers[0], &managers[1]);

    let diagnostics = || manager_logs(&[m0, m1]);
    let def = create_web_definition(stack, "web-app", &diagnostics).await;
    let ids = post_instances(stack, def, "web", instances, 32).await;
    wait_all_reconciled(stack, &ids, Duration::from_secs(300), &diagnostics).await;

    assert_deployed_exactly_once(stack, &ids, &WEB_APP_DEPLOYED).await;

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

    delete_all_and_wait_clean(stack, &ids, &diagnostics).await;
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
