//! ObservabilityDashboardDefinitionReconciler and ObservabilityDashboardInstanceReconciler:
//! Grafana. A definition makes the helm workload definition `<name>-grafana` (the grafana
//! chart, Threeport's values under the definition's own); an instance makes the helm workload
//! instance `<name>-grafana` on its runtime, with the definition's values under its own.

use async_trait::async_trait;

use super::values::GRAFANA;
use super::{
    ensure_chart_definition, ensure_chart_release, reconciled, remove_chart_definition,
    remove_chart_release, required_id, required_name, wait_for_definition, ChartDefinition,
    ChartRelease, Repositories, GRAFANA_CHART,
};
use crate::engine::{Outcome, ReconcileContext, ReconcileError, Reconciler};
use crate::threeport::models::{
    ObservabilityDashboardDefinition, ObservabilityDashboardInstance, Patch, TypedApi,
};

const SUFFIX: &str = "grafana";
const VALUES: &str = "GrafanaHelmValuesDocument";

/// Reconciles observability dashboard definitions.
pub struct ObservabilityDashboardDefinitionReconciler {
    repos: Repositories,
}

impl ObservabilityDashboardDefinitionReconciler {
    /// Charts from `repos`.
    pub fn new(repos: Repositories) -> Self {
        Self { repos }
    }

    async fn converge(
        &self,
        ctx: &ReconcileContext,
        def: ObservabilityDashboardDefinition,
    ) -> Result<Outcome, ReconcileError> {
        const WHAT: &str = "observability dashboard definition";
        let id = def.common.id.unwrap_or(ctx.object_id);
        let name = required_name(&def.definition.name, WHAT, id)?;
        let recorded = def.grafana_helm_workload_definition_id;
        let chart = ChartDefinition {
            suffix: SUFFIX,
            repo: &self.repos.grafana_repo,
            chart: GRAFANA_CHART,
            defaults: GRAFANA,
            values_field: VALUES,
            values: def.grafana_helm_values_document.as_deref(),
            version: def.grafana_helm_chart_version.clone(),
            recorded,
        };
        let hwd = ensure_chart_definition(ctx, WHAT, id, &name, chart).await?;
        if recorded != Some(hwd) {
            let change = ObservabilityDashboardDefinition {
                grafana_helm_workload_definition_id: Some(hwd),
                reconciliation: reconciled(),
                ..Default::default()
            };
            ctx.api.patch_object(id, Patch::Changes(&change)).await?;
        }
        Ok(Outcome::Done)
    }
}

#[async_trait]
impl Reconciler for ObservabilityDashboardDefinitionReconciler {
    type Object = ObservabilityDashboardDefinition;

    async fn created(
        &self,
        ctx: &ReconcileContext,
        def: ObservabilityDashboardDefinition,
    ) -> Result<Outcome, ReconcileError> {
        self.converge(ctx, def).await
    }

    async fn updated(
        &self,
        ctx: &ReconcileContext,
        def: ObservabilityDashboardDefinition,
    ) -> Result<Outcome, ReconcileError> {
        self.converge(ctx, def).await
    }

    async fn deleted(
        &self,
        ctx: &ReconcileContext,
        def: ObservabilityDashboardDefinition,
    ) -> Result<Outcome, ReconcileError> {
        let name = def.definition.name.as_deref();
        remove_chart_definition(ctx, name, SUFFIX, def.grafana_helm_workload_definition_id).await?;
        Ok(Outcome::Done)
    }
}

/// Reconciles observability dashboard instances.
pub struct ObservabilityDashboardInstanceReconciler;

impl ObservabilityDashboardInstanceReconciler {
    async fn converge(
        &self,
        ctx: &ReconcileContext,
        inst: ObservabilityDashboardInstance,
    ) -> Result<Outcome, ReconcileError> {
        const WHAT: &str = "observability dashboard instance";
        let id = inst.common.id.unwrap_or(ctx.object_id);
        if inst.reconciliation.deletion_scheduled.is_some() {
            return Ok(Outcome::Done);
        }
        let name = required_name(&inst.instance.name, WHAT, id)?;
        let field = |v, f| required_id(v, f, WHAT, id);
        let def_id = field(
            inst.observability_dashboard_definition_id,
            "ObservabilityDashboardDefinitionID",
        )?;
        let kri = field(
            inst.kubernetes_runtime_instance_id,
            "KubernetesRuntimeInstanceID",
        )?;
        let def: ObservabilityDashboardDefinition = ctx.api.get_object(def_id).await?;
        if let Some(wait) = wait_for_definition(ctx, def.reconciliation.reconciled) {
            return Ok(wait);
        }
        let hwd = required_id(
            def.grafana_helm_workload_definition_id,
            "GrafanaHelmWorkloadDefinitionID",
            "observability dashboard definition",
            def_id,
        )?;
        let recorded = inst.grafana_helm_workload_instance_id;
        let chart = ChartRelease {
            suffix: SUFFIX,
            values_field: VALUES,
            definition_values: def.grafana_helm_values_document.as_deref(),
            values: inst.grafana_helm_values_document.as_deref(),
            hwd,
            kri,
            namespace: None,
            recorded,
        };
        let hwi = ensure_chart_release(ctx, WHAT, id, &name, chart).await?;
        if recorded != Some(hwi) {
            let change = ObservabilityDashboardInstance {
                grafana_helm_workload_instance_id: Some(hwi),
                reconciliation: reconciled(),
                ..Default::default()
            };
            ctx.api.patch_object(id, Patch::Changes(&change)).await?;
        }
        Ok(Outcome::Done)
    }
}

#[async_trait]
impl Reconciler for ObservabilityDashboardInstanceReconciler {
    type Object = ObservabilityDashboardInstance;

    async fn created(
        &self,
        ctx: &ReconcileContext,
        inst: ObservabilityDashboardInstance,
    ) -> Result<Outcome, ReconcileError> {
        self.converge(ctx, inst).await
    }

    async fn updated(
        &self,
        ctx: &ReconcileContext,
        inst: ObservabilityDashboardInstance,
    ) -> Result<Outcome, ReconcileError> {
        self.converge(ctx, inst).await
    }

    async fn deleted(
        &self,
        ctx: &ReconcileContext,
        inst: ObservabilityDashboardInstance,
    ) -> Result<Outcome, ReconcileError> {
        let name = inst.instance.name.as_deref();
        remove_chart_release(ctx, name, SUFFIX, inst.grafana_helm_workload_instance_id).await?;
        Ok(Outcome::Done)
    }
}
