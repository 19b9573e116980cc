//! The helm-workload controller's scenarios (issue 14) on the real stack: Threeport's API on
//! PostgreSQL holds the definitions and instances, the real helm CLI installs a chart from a
//! repository on loopback ([`ChartRepo`]) into a real kube-apiserver (helm needs its OpenAPI
//! document, which the sandbox does not serve). Used by `tests/upstream_helm_workload.rs`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use threeport_manager::reconcilers::helm_workload::release::release_namespace;
use threeport_manager::threeport::models::{
    EVENT, HELM_WORKLOAD_DEFINITION, HELM_WORKLOAD_INSTANCE,
};
use threeport_manager::threeport::ThreeportApi;

use crate::harness::backend::Stack;
use crate::harness::charts::ChartRepo;
use crate::harness::workload_suite::{wait_until, Env, LIMIT, TW_API};

/// What `--enable helm-workload` runs.
pub const RECONCILERS: &[&str] = &[
    "HelmWorkloadDefinitionReconciler",
    "HelmWorkloadInstanceReconciler",
];

/// The label the post-renderer puts on every object of a release.
pub const INSTANCE_LABEL: &str = "control-plane.threeport.io/helm-workload-instance";

/// The manager with the helm-workload reconcilers (4 workers each) on `stack`, running the
/// helm binary `helm` with this build's threeport-manager as post-renderer.
pub async fn start(stack: Stack, helm: &Path) -> Env {
    let mut config = stack.config();
    config.helm.binary = helm.to_path_buf();
    config.helm.post_renderer = Some(PathBuf::from(env!("CARGO_BIN_EXE_threeport-manager")));
    config.helm.timeout = std::time::Duration::from_secs(120);
    Env::start_with_config(stack, config, RECONCILERS).await
}

/// A ConfigMap as an additional resource.
pub fn config_map(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
           "data": {"from": name}})
}

/// POST a definition of the `web` chart of `repo`.
pub async fn create_definition(
    stack: &Stack,
    name: &str,
    repo: &ChartRepo,
    chart: &str,
    values: &str,
    extra: Value,
) -> u64 {
    let o = stack
        .api
        .create(
            HELM_WORKLOAD_DEFINITION,
            json!({"Name": name, "Repo": repo.url, "Chart": chart, "ChartVersion": "0.1.0",
                   "ValuesDocument": values, "AdditionalResources": extra}),
        )
        .await
        .unwrap_or_else(|e| panic!("POST helm workload definition {name}: {e}"));
    o["ID"].as_u64().expect("ID")
}

/// POST an instance of definition `hwd` on the stack's runtime.
pub async fn create_instance(
    stack: &Stack,
    name: &str,
    hwd: u64,
    values: &str,
    extra: Value,
) -> u64 {
    let o = stack
        .api
        .create(
            HELM_WORKLOAD_INSTANCE,
            json!({"Name": name, "HelmWorkloadDefinitionID": hwd,
                   "KubernetesRuntimeInstanceID": stack.runtime_id,
                   "ValuesDocument": values, "AdditionalResources": extra}),
        )
        .await
        .unwrap_or_else(|e| panic!("POST helm workload instance {name}: {e}"));
    o["ID"].as_u64().expect("ID")
}

/// The chart's ConfigMap of release `<instance>-release` in `namespace`.
pub async fn chart_config_map(stack: &Stack, namespace: &str, instance: &str) -> Option<Value> {
    stack
        .object(
            "v1",
            "ConfigMap",
            Some(namespace),
            &format!("{instance}-release-config"),
        )
        .await
}

/// The instance's ThreeportWorkload.
pub async fn threeport_workload(stack: &Stack, hwi: u64) -> Option<Value> {
    stack
        .object(
            TW_API,
            "ThreeportWorkload",
            None,
            &format!("helm-workload-instance-{hwi}"),
        )
        .await
}

/// DELETE the instance and wait until the API, the cluster and the release namespace no
/// longer have it.
pub async fn delete_and_wait(env: &Env, hwi: u64, namespace: &str) {
    let stack = &env.stack;
    stack
        .api
        .delete(HELM_WORKLOAD_INSTANCE, hwi)
        .await
        .unwrap_or_else(|e| panic!("DELETE helm workload instance {hwi}: {e}"));
    wait_until(
        LIMIT,
        &format!("helm workload instance {hwi} deleted"),
        || async { stack.get(HELM_WORKLOAD_INSTANCE, hwi).await.is_none() },
    )
    .await;
    assert!(threeport_workload(stack, hwi).await.is_none());
    wait_until(
        LIMIT,
        &format!("release namespace {namespace} gone"),
        || async {
            stack
                .object("v1", "Namespace", None, namespace)
                .await
                .is_none()
        },
    )
    .await;
}

/// Install with values from both objects and additional resources from both, upgrade on
/// update, uninstall and namespace removal on delete.
pub async fn release_lifecycle_scenario(env: &Env, repo: &ChartRepo) {
    let stack = &env.stack;
    let hwd = create_definition(
        stack,
        "web",
        repo,
        "web",
        "greeting: from-def\nreplicas: 2\n",
        json!([config_map("extra-from-definition")]),
    )
    .await;
    let hwi = create_instance(
        stack,
        "web-one",
        hwd,
        "greeting: from-inst\n",
        json!([config_map("extra-from-instance")]),
    )
    .await;
    env.wait_reconciled(HELM_WORKLOAD_INSTANCE, hwi).await;

    let written = stack.get(HELM_WORKLOAD_INSTANCE, hwi).await.expect("HWI");
    let namespace = release_namespace("web-one", hwi, None);
    assert_eq!(written["ReleaseNamespace"], namespace.as_str());
    let cm = chart_config_map(stack, &namespace, "web-one")
        .await
        .expect("the chart's ConfigMap in the release namespace");
    assert_eq!(cm["data"]["greeting"], "from-inst", "instance values win");
    let deployment = stack
        .object("apps/v1", "Deployment", Some(&namespace), "web-one-release")
        .await
        .expect("the chart's Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2, "definition values apply");
    // Every object carries the labels, the chart's and the additional resources alike (with
    // additional resources, Threeport deploys none of the chart).
    let hwi_label = hwi.to_string();
    for (kind, api_version, name) in [
        ("ConfigMap", "v1", "web-one-release-config"),
        ("Deployment", "apps/v1", "web-one-release"),
        ("ConfigMap", "v1", "extra-from-definition"),
        ("ConfigMap", "v1", "extra-from-instance"),
    ] {
        let o = stack
            .object(api_version, kind, Some(&namespace), name)
            .await
            .unwrap_or_else(|| panic!("{kind} {namespace}/{name}"));
        assert_eq!(
            o["metadata"]["labels"][INSTANCE_LABEL],
            hwi_label.as_str(),
            "{kind} {name}"
        );
        assert_eq!(
            o["metadata"]["labels"]["control-plane.threeport.io/managed-by"],
            "threeport"
        );
    }
    let tw = threeport_workload(stack, hwi)
        .await
        .expect("the ThreeportWorkload");
    assert_eq!(tw["spec"]["workloadType"], "HelmWorkloadInstance");
    let mut listed: Vec<String> = tw["spec"]["workloadResourceInstances"]
        .as_array()
        .expect("workloadResourceInstances")
        .iter()
        .map(|r| {
            format!(
                "{} {}/{}",
                r["kind"].as_str().unwrap_or_default(),
                r["namespace"].as_str().unwrap_or_default(),
                r["name"].as_str().unwrap_or_default()
            )
        })
        .collect();
    listed.sort();
    let mut expected: Vec<String> = [
        "ConfigMap extra-from-definition",
        "ConfigMap extra-from-instance",
        "ConfigMap web-one-release-config",
        "Deployment web-one-release",
    ]
    .iter()
    .map(|s| {
        let (kind, name) = s.split_once(' ').unwrap_or_default();
        format!("{kind} {namespace}/{name}")
    })
    .collect();
    expected.sort();
    assert_eq!(listed, expected);

    // Updated: the release is upgraded with the new values.
    stack
        .api
        .patch(
            HELM_WORKLOAD_INSTANCE,
            hwi,
            json!({"ValuesDocument": "greeting: changed\n", "Reconciled": false}),
        )
        .await
        .expect("PATCH the instance's values");
    wait_until(
        LIMIT,
        "the release upgraded with the new values",
        || async {
            chart_config_map(stack, &namespace, "web-one")
                .await
                .is_some_and(|cm| cm["data"]["greeting"] == "changed")
        },
    )
    .await;
    env.wait_reconciled(HELM_WORKLOAD_INSTANCE, hwi).await;

    delete_and_wait(env, hwi, &namespace).await;
    stack
        .api
        .delete(HELM_WORKLOAD_DEFINITION, hwd)
        .await
        .expect("DELETE the definition");
    wait_until(LIMIT, "the definition deleted", || async {
        stack.get(HELM_WORKLOAD_DEFINITION, hwd).await.is_none()
    })
    .await;
}

/// A chart that is not in the repository: a permanent error whose event says so, and the
/// instance stays unreconciled.
pub async fn missing_chart_scenario(env: &Env, repo: &ChartRepo) {
    let stack = &env.stack;
    let hwd = create_definition(stack, "nothing", repo, "no-such-chart", "", Value::Null).await;
    let hwi = create_instance(stack, "nothing-one", hwd, "", Value::Null).await;
    let failure = || async {
        stack.list_all(EVENT).await.into_iter().find(|e| {
            e["Note"]
                .as_str()
                .is_some_and(|n| n.contains("no-such-chart"))
        })
    };
    wait_until(
        LIMIT,
        "a failure event naming the missing chart",
        || async { failure().await.is_some() },
    )
    .await;
    let event = failure().await.expect("event");
    assert!(
        event["Note"]
            .as_str()
            .unwrap_or_default()
            .contains("not found"),
        "{event}"
    );
    wait_until(LIMIT, "the failure counted as permanent", || async {
        crate::harness::workload_env::metric_sum(
            &env.metrics(),
            "threeport_reconcile_permanent_errors_total",
            &[("reconciler", "HelmWorkloadInstanceReconciler")],
        ) >= 1.0
    })
    .await;
    assert_eq!(
        stack.get(HELM_WORKLOAD_INSTANCE, hwi).await.expect("HWI")["Reconciled"],
        false
    );
}

/// `n` instances of one definition at once (the workers run helm side by side, each in its
/// own workspace): each release gets its own values; then all are deleted.
pub async fn many_instances_scenario(env: &Env, repo: &ChartRepo, n: usize) {
    let stack = &env.stack;
    let hwd = create_definition(stack, "many", repo, "web", "replicas: 1\n", Value::Null).await;
    let mut instances = Vec::new();
    for i in 0..n {
        let name = format!("many-{i}");
        let hwi = create_instance(
            stack,
            &name,
            hwd,
            &format!("greeting: value-{i}\n"),
            Value::Null,
        )
        .await;
        instances.push((name, hwi));
    }
    for (name, hwi) in &instances {
        env.wait_reconciled(HELM_WORKLOAD_INSTANCE, *hwi).await;
        let namespace = release_namespace(name, *hwi, None);
        let cm = chart_config_map(stack, &namespace, name)
            .await
            .unwrap_or_else(|| panic!("{name}'s ConfigMap"));
        let i = name.trim_start_matches("many-");
        assert_eq!(cm["data"]["greeting"], format!("value-{i}"), "{name}");
    }
    for (name, hwi) in &instances {
        let namespace = release_namespace(name, *hwi, None);
        delete_and_wait(env, *hwi, &namespace).await;
    }
}
