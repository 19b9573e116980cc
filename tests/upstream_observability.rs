//! The observability controller on the real stack (issue 14): Threeport's API on PostgreSQL,
//! a real kube-apiserver, and the manager run as `threeport-manager --enable
//! workload,helm-workload,observability` with its chart repositories pointed at a repository on
//! loopback that serves stand-ins for grafana, kube-prometheus-stack, loki and promtail (same
//! names, the versions Threeport's API defaults to; each a ConfigMap holding the values it
//! got). An observability stack goes from its API objects through the helm workloads to
//! releases in the cluster, and is removed again.

mod harness;

use std::time::Duration;

use harness::backend::{helm_binary, Stack};
use harness::charts::ChartRepo;
use harness::helm_suite;
use harness::observability_suite::{self, named};
use harness::workload_env::ManagerProcess;
use harness::workload_suite::wait_until;
use serde_json::{json, Value};
use threeport_manager::threeport::models::{
    HELM_WORKLOAD_DEFINITION, HELM_WORKLOAD_INSTANCE, LOGGING_DEFINITION, LOGGING_INSTANCE,
    METRICS_DEFINITION, METRICS_INSTANCE, OBSERVABILITY_DASHBOARD_DEFINITION,
    OBSERVABILITY_DASHBOARD_INSTANCE, OBSERVABILITY_STACK_DEFINITION, OBSERVABILITY_STACK_INSTANCE,
};
use threeport_manager::threeport::{ObjectType, ThreeportApi};

const LIMIT: Duration = Duration::from_secs(180);

async fn wait_named(stack: &Stack, ty: ObjectType, name: &str) -> Value {
    observability_suite::wait_named(stack, LIMIT, ty, name).await
}

async fn wait_reconciled(stack: &Stack, ty: ObjectType, name: &str) -> Value {
    observability_suite::wait_reconciled(stack, LIMIT, ty, name).await
}

async fn wait_gone(stack: &Stack, ty: ObjectType, name: &str) {
    observability_suite::wait_gone(stack, LIMIT, ty, name).await;
}

/// The values the stand-in chart of a release got.
async fn released_values(stack: &Stack, hwi: &Value) -> Value {
    let namespace = hwi["ReleaseNamespace"].as_str().expect("ReleaseNamespace");
    let release = format!("{}-release", hwi["Name"].as_str().expect("Name"));
    let cm = stack
        .object(
            "v1",
            "ConfigMap",
            Some(namespace),
            &format!("{release}-values"),
        )
        .await
        .unwrap_or_else(|| panic!("{release}'s ConfigMap in {namespace}"));
    serde_json::from_str(cm["data"]["values"].as_str().expect("values")).expect("JSON values")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observability_stack_is_composed_released_and_removed() {
    let Some(helm) = helm_binary() else { return };
    let Some(stack) = Stack::upstream(false).await else {
        return;
    };
    let repo = ChartRepo::serve(
        &helm,
        &["grafana", "kube-prometheus-stack", "loki", "promtail"],
    );
    let mut vars = stack.process_env();
    for (key, value) in [
        (
            "THREEPORT_MANAGER__HELM__BINARY",
            helm.display().to_string(),
        ),
        (
            "THREEPORT_MANAGER__OBSERVABILITY__GRAFANA_REPO",
            repo.url.clone(),
        ),
        (
            "THREEPORT_MANAGER__OBSERVABILITY__PROMETHEUS_COMMUNITY_REPO",
            repo.url.clone(),
        ),
    ] {
        vars.push((key.to_string(), value));
    }
    let logs = tempfile::tempdir().expect("tempdir");
    let mut reconcilers = vec!["WorkloadDefinitionReconciler", "WorkloadInstanceReconciler"];
    reconcilers.extend(helm_suite::RECONCILERS);
    reconcilers.extend(observability_suite::RECONCILERS);
    let _manager = ManagerProcess::spawn_ready(
        &vars,
        "workload,helm-workload,observability",
        2,
        logs.path().join("manager.log"),
        &reconcilers,
    )
    .await;

    // The definition: a dashboard, metrics and logging definition, and their helm workload
    // definitions with Threeport's names, charts and values (the user's over Threeport's).
    let def = stack
        .api
        .create(
            OBSERVABILITY_STACK_DEFINITION,
            json!({"Name": "obs", "GrafanaHelmValuesDocument": "adminPassword: from-definition\n"}),
        )
        .await
        .expect("POST the stack definition");
    let def_id = def["ID"].as_u64().expect("ID");
    let def = wait_reconciled(&stack, OBSERVABILITY_STACK_DEFINITION, "obs").await;
    for (ty, name, field) in [
        (
            OBSERVABILITY_DASHBOARD_DEFINITION,
            "obs-observability-dashboard",
            "ObservabilityDashboardDefinitionID",
        ),
        (METRICS_DEFINITION, "obs-metrics", "MetricsDefinitionID"),
        (LOGGING_DEFINITION, "obs-logging", "LoggingDefinitionID"),
    ] {
        let child = wait_reconciled(&stack, ty, name).await;
        assert_eq!(def[field], child["ID"], "{field}");
    }
    for (name, chart, version) in [
        ("obs-observability-dashboard-grafana", "grafana", "7.2.1"),
        (
            "obs-metrics-kube-prometheus-stack",
            "kube-prometheus-stack",
            "55.8.1",
        ),
        ("obs-logging-loki", "loki", "5.41.6"),
        ("obs-logging-promtail", "promtail", "6.15.3"),
    ] {
        let hwd = wait_named(&stack, HELM_WORKLOAD_DEFINITION, name).await;
        assert_eq!(hwd["Chart"], chart, "{name}");
        assert_eq!(hwd["Repo"], repo.url.as_str(), "{name}");
        assert_eq!(hwd["ChartVersion"], version, "{name}: the API's default");
    }

    // The instance: child instances, helm workload instances, and the releases in the cluster
    // with the values composed along the way.
    stack
        .api
        .create(
            OBSERVABILITY_STACK_INSTANCE,
            json!({"Name": "obs-1", "ObservabilityStackDefinitionID": def_id,
                   "KubernetesRuntimeInstanceID": stack.runtime_id,
                   "GrafanaHelmValuesDocument": "replicas: 2\n"}),
        )
        .await
        .expect("POST the stack instance");
    wait_reconciled(&stack, OBSERVABILITY_STACK_INSTANCE, "obs-1").await;
    for (ty, name) in [
        (
            OBSERVABILITY_DASHBOARD_INSTANCE,
            "obs-1-observability-dashboard",
        ),
        (METRICS_INSTANCE, "obs-1-metrics"),
        (LOGGING_INSTANCE, "obs-1-logging"),
    ] {
        wait_reconciled(&stack, ty, name).await;
    }
    let mut released = Vec::new();
    for name in [
        "obs-1-observability-dashboard-grafana",
        "obs-1-metrics-kube-prometheus-stack",
        "obs-1-logging-loki",
        "obs-1-logging-promtail",
    ] {
        released.push(wait_reconciled(&stack, HELM_WORKLOAD_INSTANCE, name).await);
    }
    let grafana = released_values(&stack, &released[0]).await;
    assert_eq!(grafana["adminPassword"], "from-definition");
    assert_eq!(grafana["replicas"], 2);
    assert_eq!(
        grafana["sidecar"]["dashboards"]["label"], "grafana_dashboard",
        "Threeport's values"
    );
    assert_eq!(
        grafana["serviceMonitor"]["enabled"], true,
        "metrics are enabled"
    );
    let kps = released_values(&stack, &released[1]).await;
    assert_eq!(kps["grafana"]["enabled"], false);
    let loki = released_values(&stack, &released[2]).await;
    assert_eq!(loki["loki"]["auth_enabled"], false);
    assert_eq!(
        released[2]["ReleaseNamespace"], released[3]["ReleaseNamespace"],
        "Loki and Promtail share a namespace"
    );
    assert!(released[2]["ReleaseNamespace"]
        .as_str()
        .unwrap_or_default()
        .starts_with("obs-1-logging-logging-"));

    // Deleting the instance removes everything it composed, down to the releases.
    let inst = named(&stack, OBSERVABILITY_STACK_INSTANCE, "obs-1")
        .await
        .expect("instance");
    stack
        .api
        .delete(
            OBSERVABILITY_STACK_INSTANCE,
            inst["ID"].as_u64().expect("ID"),
        )
        .await
        .expect("DELETE the stack instance");
    wait_gone(&stack, OBSERVABILITY_STACK_INSTANCE, "obs-1").await;
    for hwi in &released {
        let name = hwi["Name"].as_str().expect("Name");
        wait_gone(&stack, HELM_WORKLOAD_INSTANCE, name).await;
        let namespace = hwi["ReleaseNamespace"].as_str().expect("namespace");
        wait_until(LIMIT, &format!("namespace {namespace} gone"), || async {
            stack
                .object("v1", "Namespace", None, namespace)
                .await
                .is_none()
        })
        .await;
    }
    for (ty, name) in [
        (
            OBSERVABILITY_DASHBOARD_INSTANCE,
            "obs-1-observability-dashboard",
        ),
        (METRICS_INSTANCE, "obs-1-metrics"),
        (LOGGING_INSTANCE, "obs-1-logging"),
    ] {
        wait_gone(&stack, ty, name).await;
    }

    // Deleting the definition removes its child definitions and helm workload definitions.
    stack
        .api
        .delete(OBSERVABILITY_STACK_DEFINITION, def_id)
        .await
        .expect("DELETE the stack definition");
    wait_gone(&stack, OBSERVABILITY_STACK_DEFINITION, "obs").await;
    for (ty, name) in [
        (
            OBSERVABILITY_DASHBOARD_DEFINITION,
            "obs-observability-dashboard",
        ),
        (METRICS_DEFINITION, "obs-metrics"),
        (LOGGING_DEFINITION, "obs-logging"),
        (
            HELM_WORKLOAD_DEFINITION,
            "obs-observability-dashboard-grafana",
        ),
        (
            HELM_WORKLOAD_DEFINITION,
            "obs-metrics-kube-prometheus-stack",
        ),
        (HELM_WORKLOAD_DEFINITION, "obs-logging-loki"),
        (HELM_WORKLOAD_DEFINITION, "obs-logging-promtail"),
    ] {
        wait_gone(&stack, ty, name).await;
    }
}
