//! ObservabilityDashboardDefinitionReconciler and ObservabilityDashboardInstanceReconciler:
//! Grafana, one chart ([`super::one_chart`]): helm workloads `<name>-grafana` of the grafana
//! chart.

use super::one_chart::{
    ChartDefinitionReconciler, ChartInstanceReconciler, DefinitionParts, InstanceParts, OneChart,
};
use super::{values, Repositories, GRAFANA_CHART};
use crate::threeport::models::{
    ObservabilityDashboardDefinition, ObservabilityDashboardInstance, Reconciliation,
};

/// Grafana's objects.
pub struct Dashboard;

/// Reconciles observability dashboard definitions.
pub type ObservabilityDashboardDefinitionReconciler = ChartDefinitionReconciler<Dashboard>;
/// Reconciles observability dashboard instances.
pub type ObservabilityDashboardInstanceReconciler = ChartInstanceReconciler<Dashboard>;

impl OneChart for Dashboard {
    type Definition = ObservabilityDashboardDefinition;
    type Instance = ObservabilityDashboardInstance;
    const DEFINITION: &'static str = "observability dashboard definition";
    const INSTANCE: &'static str = "observability dashboard instance";
    const DEFINITION_ID_FIELD: &'static str = "ObservabilityDashboardDefinitionID";
    const HWD_FIELD: &'static str = "GrafanaHelmWorkloadDefinitionID";
    const VALUES_FIELD: &'static str = "GrafanaHelmValuesDocument";
    const SUFFIX: &'static str = "grafana";
    const CHART: &'static str = GRAFANA_CHART;
    const DEFAULTS: &'static str = values::GRAFANA;

    fn repo(repos: &Repositories) -> &str {
        &repos.grafana_repo
    }

    fn definition(d: &Self::Definition) -> DefinitionParts<'_> {
        DefinitionParts {
            name: &d.definition.name,
            values: d.grafana_helm_values_document.as_deref(),
            version: d.grafana_helm_chart_version.as_deref(),
            hwd: d.grafana_helm_workload_definition_id,
            reconciled: d.reconciliation.reconciled,
        }
    }

    fn record_definition(hwd: u64) -> Self::Definition {
        ObservabilityDashboardDefinition {
            grafana_helm_workload_definition_id: Some(hwd),
            reconciliation: Reconciliation::marked_reconciled(),
            ..Default::default()
        }
    }

    fn instance(i: &Self::Instance) -> InstanceParts<'_> {
        InstanceParts {
            name: &i.instance.name,
            definition: i.observability_dashboard_definition_id,
            runtime: i.kubernetes_runtime_instance_id,
            values: i.grafana_helm_values_document.as_deref(),
            hwi: i.grafana_helm_workload_instance_id,
            deleting: i.reconciliation.deletion_scheduled.is_some(),
        }
    }

    fn record_instance(hwi: u64) -> Self::Instance {
        ObservabilityDashboardInstance {
            grafana_helm_workload_instance_id: Some(hwi),
            reconciliation: Reconciliation::marked_reconciled(),
            ..Default::default()
        }
    }
}
