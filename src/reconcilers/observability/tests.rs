//! The eight reconcilers against an in-memory API: the objects a stack composes (names,
//! charts, repositories, values), idempotence on a second run and on a retry after a failed
//! POST, waiting for a definition, updates reaching the helm workloads, and deletion.

use std::sync::Arc;

use serde_json::Value;
use serde_yaml_ng::Value as Yaml;

use super::dashboard::{
    ObservabilityDashboardDefinitionReconciler, ObservabilityDashboardInstanceReconciler,
};
use super::logging::{LoggingDefinitionReconciler, LoggingInstanceReconciler};
use super::metrics::{MetricsDefinitionReconciler, MetricsInstanceReconciler};
use super::stack::{ObservabilityStackDefinitionReconciler, ObservabilityStackInstanceReconciler};
use super::*;
use crate::engine::{Operation, Reconciler};
use crate::reconcilers::testing::{context, FakeApi};
use crate::threeport::api::Method;
use crate::threeport::models::{
    ApiObject, LoggingDefinition, LoggingInstance, MetricsDefinition, MetricsInstance,
    ObservabilityDashboardDefinition, ObservabilityDashboardInstance, ObservabilityStackDefinition,
    ObservabilityStackInstance,
};

const RUNTIME: u64 = 77;

async fn run<R: Reconciler>(
    api: &Arc<FakeApi>,
    reconciler: &R,
    name: &str,
    id: u64,
    operation: Operation,
) -> Result<Outcome, ReconcileError>
where
    R::Object: ApiObject,
{
    let ctx = context(api.clone(), name, id, operation, 1);
    let object: R::Object = api.get(id).expect("object");
    match operation {
        Operation::Created => reconciler.created(&ctx, object).await,
        Operation::Updated => reconciler.updated(&ctx, object).await,
        Operation::Deleted => reconciler.deleted(&ctx, object).await,
    }
}

fn id_of<T: ApiObject>(api: &FakeApi, name: &str) -> u64 {
    let all: Vec<Value> = api
        .all::<T>()
        .iter()
        .map(|o| serde_json::to_value(o).unwrap())
        .filter(|o| o["Name"] == name)
        .collect();
    assert_eq!(all.len(), 1, "exactly one {} {name}", T::OBJECT_TYPE.name);
    all[0]["ID"].as_u64().expect("ID")
}

/// Asserts the reconcile finished (not a requeue: a run that waits would make nothing).
fn done(outcome: Outcome) {
    assert!(matches!(outcome, Outcome::Done), "{outcome:?}");
}

fn yaml(doc: &str) -> Yaml {
    serde_yaml_ng::from_str(doc).expect("YAML")
}

/// Every reconciler of the controller, run as the engine would after each object's creation.
struct Stack {
    api: Arc<FakeApi>,
    repos: Repositories,
}

impl Stack {
    fn new() -> Self {
        Self {
            api: FakeApi::new(),
            repos: Repositories::default(),
        }
    }

    async fn definitions(&self, def: u64, op: Operation) {
        let api = &self.api;
        run(
            api,
            &ObservabilityStackDefinitionReconciler,
            "ObservabilityStackDefinitionReconciler",
            def,
            op,
        )
        .await
        .expect("stack definition");
        let dashboard =
            id_of::<ObservabilityDashboardDefinition>(api, "obs-observability-dashboard");
        let metrics = id_of::<MetricsDefinition>(api, "obs-metrics");
        let logging = id_of::<LoggingDefinition>(api, "obs-logging");
        run(
            api,
            &ObservabilityDashboardDefinitionReconciler::new(self.repos.clone()),
            "ObservabilityDashboardDefinitionReconciler",
            dashboard,
            op,
        )
        .await
        .expect("dashboard definition");
        run(
            api,
            &MetricsDefinitionReconciler::new(self.repos.clone()),
            "MetricsDefinitionReconciler",
            metrics,
            op,
        )
        .await
        .expect("metrics definition");
        run(
            api,
            &LoggingDefinitionReconciler::new(self.repos.clone()),
            "LoggingDefinitionReconciler",
            logging,
            op,
        )
        .await
        .expect("logging definition");
    }

    async fn instances(&self, inst: u64, op: Operation) {
        let api = &self.api;
        let outcome = run(
            api,
            &ObservabilityStackInstanceReconciler,
            "ObservabilityStackInstanceReconciler",
            inst,
            op,
        )
        .await
        .expect("stack instance");
        assert!(matches!(outcome, Outcome::Done));
        let dashboard =
            id_of::<ObservabilityDashboardInstance>(api, "obs-1-observability-dashboard");
        run(
            api,
            &ObservabilityDashboardInstanceReconciler::default(),
            "ObservabilityDashboardInstanceReconciler",
            dashboard,
            op,
        )
        .await
        .map(done)
        .expect("dashboard instance");

        for metrics in api.all::<MetricsInstance>() {
            run(
                api,
                &MetricsInstanceReconciler::default(),
                "MetricsInstanceReconciler",
                metrics.common.id.unwrap(),
                op,
            )
            .await
            .map(done)
            .expect("metrics instance");
        }
        for logging in api.all::<LoggingInstance>() {
            run(
                api,
                &LoggingInstanceReconciler,
                "LoggingInstanceReconciler",
                logging.common.id.unwrap(),
                op,
            )
            .await
            .map(done)
            .expect("logging instance");
        }
    }

    fn stack_definition(&self) -> u64 {
        self.api.insert(&ObservabilityStackDefinition {
            definition: Definition {
                name: Some("obs".into()),
                ..Default::default()
            },
            grafana_helm_values_document: Some("adminPassword: from-def\nreplicas: 1\n".into()),
            loki_helm_chart_version: Some("5.0.0".into()),
            ..Default::default()
        })
    }

    fn stack_instance(&self, def: u64) -> u64 {
        self.api.insert(&ObservabilityStackInstance {
            instance: Instance {
                name: Some("obs-1".into()),
                ..Default::default()
            },
            observability_stack_definition_id: Some(def),
            kubernetes_runtime_instance_id: Some(RUNTIME),
            grafana_helm_values_document: Some("replicas: 2\n".into()),
            ..Default::default()
        })
    }

    fn hwd(&self, name: &str) -> HelmWorkloadDefinition {
        self.api
            .get(id_of::<HelmWorkloadDefinition>(&self.api, name))
            .unwrap()
    }

    fn hwi(&self, name: &str) -> HelmWorkloadInstance {
        self.api
            .get(id_of::<HelmWorkloadInstance>(&self.api, name))
            .unwrap()
    }
}

#[tokio::test]
async fn a_stack_composes_threeports_definitions_and_helm_workloads_once() {
    let s = Stack::new();
    let def = s.stack_definition();
    s.definitions(def, Operation::Created).await;

    let grafana = s.hwd("obs-observability-dashboard-grafana");
    assert_eq!(
        grafana.repo.as_deref(),
        Some("https://grafana.github.io/helm-charts")
    );
    assert_eq!(grafana.chart.as_deref(), Some("grafana"));
    let values = yaml(grafana.values_document.as_deref().unwrap());
    assert_eq!(
        values["adminPassword"],
        yaml("from-def"),
        "the definition's over Threeport's"
    );
    assert_eq!(
        values["sidecar"]["datasources"]["label"],
        yaml("grafana_datasource")
    );
    let kps = s.hwd("obs-metrics-kube-prometheus-stack");
    assert_eq!(
        kps.repo.as_deref(),
        Some("https://prometheus-community.github.io/helm-charts")
    );
    assert_eq!(kps.chart.as_deref(), Some("kube-prometheus-stack"));
    assert_eq!(
        kps.values_document.as_deref(),
        Some(values::KUBE_PROMETHEUS_STACK)
    );
    let loki = s.hwd("obs-logging-loki");
    assert_eq!(
        (loki.chart.as_deref(), loki.chart_version.as_deref()),
        (Some("loki"), Some("5.0.0"))
    );
    assert_eq!(loki.values_document.as_deref(), Some(values::LOKI));
    let promtail = s.hwd("obs-logging-promtail");
    assert_eq!(promtail.chart.as_deref(), Some("promtail"));
    assert_eq!(promtail.values_document.as_deref(), Some(""));
    let recorded: ObservabilityStackDefinition = s.api.get(def).unwrap();
    assert_eq!(recorded.reconciliation.reconciled, Some(true));
    assert_eq!(
        recorded.metrics_definition_id,
        Some(id_of::<MetricsDefinition>(&s.api, "obs-metrics"))
    );

    let inst = s.stack_instance(def);
    s.instances(inst, Operation::Created).await;
    let grafana = s.hwi("obs-1-observability-dashboard-grafana");
    assert_eq!(grafana.kubernetes_runtime_instance_id, Some(RUNTIME));
    assert_eq!(
        grafana.helm_workload_definition_id,
        Some(id_of::<HelmWorkloadDefinition>(
            &s.api,
            "obs-observability-dashboard-grafana"
        ))
    );
    let values = yaml(grafana.values_document.as_deref().unwrap());
    assert_eq!(
        values["replicas"],
        yaml("2"),
        "the instance's over the definition's"
    );
    assert_eq!(values["adminPassword"], yaml("from-def"));
    assert_eq!(
        values["serviceMonitor"]["enabled"],
        yaml("true"),
        "metrics are enabled"
    );
    s.hwi("obs-1-metrics-kube-prometheus-stack");
    let (loki, promtail) = (s.hwi("obs-1-logging-loki"), s.hwi("obs-1-logging-promtail"));
    let namespace = loki.release_namespace.clone().expect("logging namespace");
    assert!(
        namespace.starts_with("obs-1-logging-logging-"),
        "{namespace}"
    );
    assert_eq!(promtail.release_namespace, Some(namespace));

    // A second run of everything (a redelivery, an Updated) makes and changes nothing.
    let (posts, patches) = (
        s.api.count(Method::Post, "/v0/"),
        s.api.count(Method::Patch, "/v0/"),
    );
    s.definitions(def, Operation::Updated).await;
    s.instances(inst, Operation::Updated).await;
    assert_eq!(s.api.count(Method::Post, "/v0/"), posts);
    assert_eq!(s.api.count(Method::Patch, "/v0/"), patches);
}

#[tokio::test]
async fn a_retry_after_a_failed_post_adopts_what_the_first_attempt_made() {
    let s = Stack::new();
    let def = s.stack_definition();
    s.api.fail(Method::Post, "/v0/metrics-definitions", 0, 1);
    let err = run(
        &s.api,
        &ObservabilityStackDefinitionReconciler,
        "ObservabilityStackDefinitionReconciler",
        def,
        Operation::Created,
    )
    .await
    .expect_err("the metrics definition's POST fails");
    assert_eq!(err.class, crate::retry::RetryClass::Transient);
    s.definitions(def, Operation::Created).await;
    assert_eq!(s.api.all::<ObservabilityDashboardDefinition>().len(), 1);
    assert_eq!(s.api.all::<LoggingDefinition>().len(), 1);
    assert_eq!(s.api.all::<MetricsDefinition>().len(), 1);
    assert_eq!(
        s.api
            .count(Method::Post, "/v0/observability-dashboard-definitions"),
        1
    );
}

#[tokio::test]
async fn an_instance_waits_for_its_definition_by_requeueing() {
    let api = FakeApi::new();
    let def = api.insert(&MetricsDefinition {
        definition: Definition {
            name: Some("m".into()),
            ..Default::default()
        },
        ..Default::default()
    });
    let inst = api.insert(&MetricsInstance {
        instance: Instance {
            name: Some("m-1".into()),
            ..Default::default()
        },
        metrics_definition_id: Some(def),
        kubernetes_runtime_instance_id: Some(RUNTIME),
        ..Default::default()
    });
    let outcome = run(
        &api,
        &MetricsInstanceReconciler::default(),
        "MetricsInstanceReconciler",
        inst,
        Operation::Created,
    )
    .await
    .expect("a wait, not a failure");
    assert!(matches!(outcome, Outcome::RequeueAfter(d) if d == std::time::Duration::from_secs(1)));
    assert_eq!(api.count(Method::Post, "/v0/"), 0);
}

#[tokio::test]
async fn changed_values_reach_the_helm_workload_instance_unreconciled() {
    let s = Stack::new();
    let def = s.stack_definition();
    s.definitions(def, Operation::Created).await;
    let inst = s.stack_instance(def);
    s.instances(inst, Operation::Created).await;
    s.api.update::<HelmWorkloadInstance>(
        id_of::<HelmWorkloadInstance>(&s.api, "obs-1-metrics-kube-prometheus-stack"),
        |h| h.reconciliation.reconciled = Some(true),
    );
    s.api.update::<ObservabilityStackInstance>(inst, |i| {
        i.kube_prometheus_stack_helm_values_document =
            Some("prometheus:\n  enabled: true\n".into());
    });
    s.instances(inst, Operation::Updated).await;
    let hwi = s.hwi("obs-1-metrics-kube-prometheus-stack");
    assert_eq!(
        hwi.reconciliation.reconciled,
        Some(false),
        "the helm-workload controller upgrades it"
    );
    assert_eq!(
        yaml(hwi.values_document.as_deref().unwrap())["prometheus"]["enabled"],
        yaml("true")
    );
}

#[tokio::test]
async fn disabling_metrics_removes_them_and_deletion_removes_the_rest() {
    let s = Stack::new();
    let def = s.stack_definition();
    s.definitions(def, Operation::Created).await;
    let inst = s.stack_instance(def);
    s.instances(inst, Operation::Created).await;
    s.api
        .update::<ObservabilityStackInstance>(inst, |i| i.metrics_enabled = Some(false));
    run(
        &s.api,
        &ObservabilityStackInstanceReconciler,
        "ObservabilityStackInstanceReconciler",
        inst,
        Operation::Updated,
    )
    .await
    .expect("update");
    assert!(s.api.all::<MetricsInstance>().is_empty());
    let grafana: ObservabilityDashboardInstance = s
        .api
        .get(id_of::<ObservabilityDashboardInstance>(
            &s.api,
            "obs-1-observability-dashboard",
        ))
        .unwrap();
    assert!(!grafana
        .grafana_helm_values_document
        .unwrap()
        .contains("serviceMonitor"));

    // Deleted: the children go, whether recorded or found by name, and an absent one is fine.
    s.api.update::<ObservabilityStackInstance>(inst, |i| {
        i.logging_instance_id = None;
        i.metrics_instance_id = None;
    });
    run(
        &s.api,
        &ObservabilityStackInstanceReconciler,
        "ObservabilityStackInstanceReconciler",
        inst,
        Operation::Deleted,
    )
    .await
    .expect("delete");
    assert!(s.api.all::<ObservabilityDashboardInstance>().is_empty());
    assert!(s.api.all::<LoggingInstance>().is_empty());
    let dashboard_def =
        id_of::<ObservabilityDashboardDefinition>(&s.api, "obs-observability-dashboard");
    run(
        &s.api,
        &ObservabilityDashboardDefinitionReconciler::new(s.repos.clone()),
        "ObservabilityDashboardDefinitionReconciler",
        dashboard_def,
        Operation::Deleted,
    )
    .await
    .expect("delete dashboard definition");
    assert!(s
        .api
        .all::<HelmWorkloadDefinition>()
        .iter()
        .all(|h| h.definition.name.as_deref() != Some("obs-observability-dashboard-grafana")));
    run(
        &s.api,
        &ObservabilityStackDefinitionReconciler,
        "ObservabilityStackDefinitionReconciler",
        def,
        Operation::Deleted,
    )
    .await
    .expect("delete stack definition");
    assert!(s.api.all::<MetricsDefinition>().is_empty());
    assert!(s.api.all::<LoggingDefinition>().is_empty());
}

#[tokio::test]
async fn a_user_values_document_that_is_not_yaml_is_a_permanent_error_naming_the_field() {
    let api = FakeApi::new();
    let def = api.insert(&MetricsDefinition {
        definition: Definition {
            name: Some("m".into()),
            ..Default::default()
        },
        kube_prometheus_stack_helm_values_document: Some("a: [\n".into()),
        ..Default::default()
    });
    let err = run(
        &api,
        &MetricsDefinitionReconciler::new(Repositories::default()),
        "MetricsDefinitionReconciler",
        def,
        Operation::Created,
    )
    .await
    .unwrap_err();
    assert_eq!(err.class, crate::retry::RetryClass::Permanent);
    assert!(
        err.to_string().contains(&format!(
            "metrics definition {def}: KubePrometheusStackHelmValuesDocument"
        )),
        "{err}"
    );
}

#[tokio::test]
async fn a_child_on_another_runtime_is_a_permanent_error_not_a_move() {
    let s = Stack::new();
    let def = s.stack_definition();
    s.definitions(def, Operation::Created).await;
    let inst = s.stack_instance(def);
    s.instances(inst, Operation::Created).await;
    s.api.update::<ObservabilityStackInstance>(inst, |i| {
        i.kubernetes_runtime_instance_id = Some(RUNTIME + 1);
    });
    let err = run(
        &s.api,
        &ObservabilityStackInstanceReconciler,
        "ObservabilityStackInstanceReconciler",
        inst,
        Operation::Updated,
    )
    .await
    .unwrap_err();
    assert_eq!(err.class, crate::retry::RetryClass::Permanent);
    assert!(
        err.to_string()
            .contains("moving it to another runtime is not supported"),
        "{err}"
    );
}
