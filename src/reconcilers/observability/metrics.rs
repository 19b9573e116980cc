//! MetricsDefinitionReconciler and MetricsInstanceReconciler: kube-prometheus-stack, one chart
//! ([`super::one_chart`]): helm workloads `<name>-kube-prometheus-stack` of the
//! prometheus-community chart.

use super::one_chart::{
    ChartDefinitionReconciler, ChartInstanceReconciler, DefinitionParts, InstanceParts, OneChart,
};
use super::{values, Repositories, KUBE_PROMETHEUS_STACK_CHART};
use crate::threeport::models::{MetricsDefinition, MetricsInstance, Reconciliation};

/// kube-prometheus-stack's objects.
pub struct Metrics;

/// Reconciles metrics definitions.
pub type MetricsDefinitionReconciler = ChartDefinitionReconciler<Metrics>;
/// Reconciles metrics instances.
pub type MetricsInstanceReconciler = ChartInstanceReconciler<Metrics>;

impl OneChart for Metrics {
    type Definition = MetricsDefinition;
    type Instance = MetricsInstance;
    const DEFINITION: &'static str = "metrics definition";
    const INSTANCE: &'static str = "metrics instance";
    const DEFINITION_ID_FIELD: &'static str = "MetricsDefinitionID";
    const HWD_FIELD: &'static str = "KubePrometheusStackHelmWorkloadDefinitionID";
    const VALUES_FIELD: &'static str = "KubePrometheusStackHelmValuesDocument";
    const SUFFIX: &'static str = "kube-prometheus-stack";
    const CHART: &'static str = KUBE_PROMETHEUS_STACK_CHART;
    const DEFAULTS: &'static str = values::KUBE_PROMETHEUS_STACK;

    fn repo(repos: &Repositories) -> &str {
        &repos.prometheus_community_repo
    }

    fn definition(d: &Self::Definition) -> DefinitionParts<'_> {
        DefinitionParts {
            name: &d.definition.name,
            values: d.kube_prometheus_stack_helm_values_document.as_deref(),
            version: d.kube_prometheus_stack_helm_chart_version.as_deref(),
            hwd: d.kube_prometheus_stack_helm_workload_definition_id,
            reconciled: d.reconciliation.reconciled,
        }
    }

    fn record_definition(hwd: u64) -> Self::Definition {
        MetricsDefinition {
            kube_prometheus_stack_helm_workload_definition_id: Some(hwd),
            reconciliation: Reconciliation::marked_reconciled(),
            ..Default::default()
        }
    }

    fn instance(i: &Self::Instance) -> InstanceParts<'_> {
        InstanceParts {
            name: &i.instance.name,
            definition: i.metrics_definition_id,
            runtime: i.kubernetes_runtime_instance_id,
            values: i.kube_prometheus_stack_helm_values_document.as_deref(),
            hwi: i.kube_prometheus_stack_helm_workload_instance_id,
            deleting: i.reconciliation.deletion_scheduled.is_some(),
        }
    }

    fn record_instance(hwi: u64) -> Self::Instance {
        MetricsInstance {
            kube_prometheus_stack_helm_workload_instance_id: Some(hwi),
            reconciliation: Reconciliation::marked_reconciled(),
            ..Default::default()
        }
    }
}
