//! MetricsDefinitionReconciler and MetricsInstanceReconciler: kube-prometheus-stack. A
//! definition makes the helm workload definition `<name>-kube-prometheus-stack` (the
//! prometheus-community chart, Threeport's values under the definition's own); an instance makes
//! the helm workload instance of the same name on its runtime, with the definition's values under
//! its own.

use async_trait::async_trait;

use super::values::KUBE_PROMETHEUS_STACK;
use super::{
    ensure_chart_definition, ensure_chart_release, reconciled, remove_chart_definition,
    remove_chart_release, required_id, required_name, wait_for_definition, ChartDefinition,
    ChartRelease, Repositories, KUBE_PROMETHEUS_STACK_CHART,
};
use crate::engine::{Outcome, ReconcileContext, ReconcileError, Reconciler};
use crate::threeport::models::{MetricsDefinition, MetricsInstance, Patch, TypedApi};

const SUFFIX: &str = "kube-prometheus-stack";
const VALUES: &str = "KubePrometheusStackHelmValuesDocument";

/// Reconciles metrics definitions.
pub struct MetricsDefinitionReconciler {
    repos: Repositories,
}

impl MetricsDefinitionReconciler {
    /// Charts from `repos`.
    pub fn new(repos: Repositories) -> Self {
        Self { repos }
    }

    async fn converge(
        &self,
        ctx: &ReconcileContext,
        def: MetricsDefinition,
    ) -> Result<Outcome, ReconcileError> {
        const WHAT: &str = "metrics definition";
        let id = def.common.id.unwrap_or(ctx.object_id);
        let name = required_name(&def.definition.name, WHAT, id)?;
        let recorded = def.kube_prometheus_stack_helm_workload_definition_id;
        let chart = ChartDefinition {
            suffix: SUFFIX,
            repo: &self.repos.prometheus_community_repo,
            chart: KUBE_PROMETHEUS_STACK_CHART,
            defaults: KUBE_PROMETHEUS_STACK,
            values_field: VALUES,
            values: def.kube_prometheus_stack_helm_values_document.as_deref(),
            version: def.kube_prometheus_stack_helm_chart_version.clone(),
            recorded,
        };
        let hwd = ensure_chart_definition(ctx, WHAT, id, &name, chart).await?;
        if recorded != Some(hwd) {
            let change = MetricsDefinition {
                kube_prometheus_stack_helm_workload_definition_id: Some(hwd),
                reconciliation: reconciled(),
                ..Default::default()
            };
            ctx.api.patch_object(id, Patch::Changes(&change)).await?;
        }
        Ok(Outcome::Done)
    }
}

#[async_trait]
impl Reconciler for MetricsDefinitionReconciler {
    type Object = MetricsDefinition;

    async fn created(
        &self,
        ctx: &ReconcileContext,
        def: MetricsDefinition,
    ) -> Result<Outcome, ReconcileError> {
        self.converge(ctx, def).await
    }

    async fn updated(
        &self,
        ctx: &ReconcileContext,
        def: MetricsDefinition,
    ) -> Result<Outcome, ReconcileError> {
        self.converge(ctx, def).await
    }

    async fn deleted(
        &self,
        ctx: &ReconcileContext,
        def: MetricsDefinition,
    ) -> Result<Outcome, ReconcileError> {
        let name = def.definition.name.as_deref();
        remove_chart_definition(
            ctx,
            name,
            SUFFIX,
            def.kube_prometheus_stack_helm_workload_definition_id,
        )
        .await?;
        Ok(Outcome::Done)
    }
}

/// Reconciles metrics instances.
pub struct MetricsInstanceReconciler;

impl MetricsInstanceReconciler {
    async fn converge(
        &self,
        ctx: &ReconcileContext,
        inst: MetricsInstance,
    ) -> Result<Outcome, ReconcileError> {
        const WHAT: &str = "metrics instance";
        let id = inst.common.id.unwrap_or(ctx.object_id);
        if inst.reconciliation.deletion_scheduled.is_some() {
            return Ok(Outcome::Done);
        }
        let name = required_name(&inst.instance.name, WHAT, id)?;
        let field = |v, f| required_id(v, f, WHAT, id);
        let def_id = field(inst.metrics_definition_id, "MetricsDefinitionID")?;
        let kri = field(
            inst.kubernetes_runtime_instance_id,
            "KubernetesRuntimeInstanceID",
        )?;
        let def: MetricsDefinition = ctx.api.get_object(def_id).await?;
        if let Some(wait) = wait_for_definition(ctx, def.reconciliation.reconciled) {
            return Ok(wait);
        }
        let hwd = required_id(
            def.kube_prometheus_stack_helm_workload_definition_id,
            "KubePrometheusStackHelmWorkloadDefinitionID",
            "metrics definition",
            def_id,
        )?;
        let recorded = inst.kube_prometheus_stack_helm_workload_instance_id;
        let chart = ChartRelease {
            suffix: SUFFIX,
            values_field: VALUES,
            definition_values: def.kube_prometheus_stack_helm_values_document.as_deref(),
            values: inst.kube_prometheus_stack_helm_values_document.as_deref(),
            hwd,
            kri,
            namespace: None,
            recorded,
        };
        let hwi = ensure_chart_release(ctx, WHAT, id, &name, chart).await?;
        if recorded != Some(hwi) {
            let change = MetricsInstance {
                kube_prometheus_stack_helm_workload_instance_id: Some(hwi),
                reconciliation: reconciled(),
                ..Default::default()
            };
            ctx.api.patch_object(id, Patch::Changes(&change)).await?;
        }
        Ok(Outcome::Done)
    }
}

#[async_trait]
impl Reconciler for MetricsInstanceReconciler {
    type Object = MetricsInstance;

    async fn created(
        &self,
        ctx: &ReconcileContext,
        inst: MetricsInstance,
    ) -> Result<Outcome, ReconcileError> {
        self.converge(ctx, inst).await
    }

    async fn updated(
        &self,
        ctx: &ReconcileContext,
        inst: MetricsInstance,
    ) -> Result<Outcome, ReconcileError> {
        self.converge(ctx, inst).await
    }

    async fn deleted(
        &self,
        ctx: &ReconcileContext,
        inst: MetricsInstance,
    ) -> Result<Outcome, ReconcileError> {
        let name = inst.instance.name.as_deref();
        remove_chart_release(
            ctx,
            name,
            SUFFIX,
            inst.kube_prometheus_stack_helm_workload_instance_id,
        )
        .await?;
        Ok(Outcome::Done)
    }
}
