//! LoggingDefinitionReconciler and LoggingInstanceReconciler: Loki and Promtail. A definition
//! makes the helm workload definitions `<name>-loki` (Threeport's values under the
//! definition's own) and `<name>-promtail`; an instance makes the helm workload instances of
//! the same names on its runtime, both released into one namespace `<name>-logging-<10
//! characters>`.

use async_trait::async_trait;

use super::values::{LOKI, PROMTAIL};
use super::{
    ensure_chart_definition, ensure_chart_release, remove_chart, required_id, required_name,
    wait_for_definition, ChartDefinition, ChartRelease, Repositories, LOKI_CHART, PROMTAIL_CHART,
};
use crate::engine::{Outcome, ReconcileContext, ReconcileError, Reconciler};
use crate::kube::manifest::generated_namespace_name;
use crate::threeport::models::{
    HelmWorkloadDefinition, HelmWorkloadInstance, LoggingDefinition, LoggingInstance, Patch,
    Reconciliation, TypedApi,
};

const LOKI_SUFFIX: &str = "loki";
const PROMTAIL_SUFFIX: &str = "promtail";
const LOKI_VALUES: &str = "LokiHelmValuesDocument";
const PROMTAIL_VALUES: &str = "PromtailHelmValuesDocument";

/// Reconciles logging definitions.
pub struct LoggingDefinitionReconciler {
    repos: Repositories,
}

impl LoggingDefinitionReconciler {
    /// Charts from `repos`.
    pub fn new(repos: Repositories) -> Self {
        Self { repos }
    }

    async fn converge(
        &self,
        ctx: &ReconcileContext,
        def: LoggingDefinition,
    ) -> Result<Outcome, ReconcileError> {
        const WHAT: &str = "logging definition";
        let id = def.common.id.unwrap_or(ctx.object_id);
        let name = required_name(&def.definition.name, WHAT, id)?;
        let loki = ensure_chart_definition(
            ctx,
            WHAT,
            id,
            &name,
            ChartDefinition {
                suffix: LOKI_SUFFIX,
                repo: &self.repos.grafana_repo,
                chart: LOKI_CHART,
                defaults: LOKI,
                values_field: LOKI_VALUES,
                values: def.loki_helm_values_document.as_deref(),
                version: def.loki_helm_chart_version.clone(),
                recorded: def.loki_helm_workload_definition_id,
            },
        )
        .await?;
        let promtail = ensure_chart_definition(
            ctx,
            WHAT,
            id,
            &name,
            ChartDefinition {
                suffix: PROMTAIL_SUFFIX,
                repo: &self.repos.grafana_repo,
                chart: PROMTAIL_CHART,
                defaults: PROMTAIL,
                values_field: PROMTAIL_VALUES,
                values: def.promtail_helm_values_document.as_deref(),
                version: def.promtail_helm_chart_version.clone(),
                recorded: def.promtail_helm_workload_definition_id,
            },
        )
        .await?;
        if def.loki_helm_workload_definition_id != Some(loki)
            || def.promtail_helm_workload_definition_id != Some(promtail)
        {
            let change = LoggingDefinition {
                loki_helm_workload_definition_id: Some(loki),
                promtail_helm_workload_definition_id: Some(promtail),
                reconciliation: Reconciliation::marked_reconciled(),
                ..Default::default()
            };
            ctx.api.patch_object(id, Patch::Changes(&change)).await?;
        }
        Ok(Outcome::Done)
    }
}

#[async_trait]
impl Reconciler for LoggingDefinitionReconciler {
    type Object = LoggingDefinition;

    async fn created(
        &self,
        ctx: &ReconcileContext,
        def: LoggingDefinition,
    ) -> Result<Outcome, ReconcileError> {
        self.converge(ctx, def).await
    }

    async fn updated(
        &self,
        ctx: &ReconcileContext,
        def: LoggingDefinition,
    ) -> Result<Outcome, ReconcileError> {
        self.converge(ctx, def).await
    }

    /// Promtail, then Loki (the reverse of their making).
    async fn deleted(
        &self,
        ctx: &ReconcileContext,
        def: LoggingDefinition,
    ) -> Result<Outcome, ReconcileError> {
        let name = def.definition.name.as_deref();
        remove_chart::<HelmWorkloadDefinition>(
            ctx,
            name,
            PROMTAIL_SUFFIX,
            def.promtail_helm_workload_definition_id,
        )
        .await?;
        remove_chart::<HelmWorkloadDefinition>(
            ctx,
            name,
            LOKI_SUFFIX,
            def.loki_helm_workload_definition_id,
        )
        .await?;
        Ok(Outcome::Done)
    }
}

/// Reconciles logging instances.
pub struct LoggingInstanceReconciler;

impl LoggingInstanceReconciler {
    async fn converge(
        &self,
        ctx: &ReconcileContext,
        inst: LoggingInstance,
    ) -> Result<Outcome, ReconcileError> {
        const WHAT: &str = "logging instance";
        let id = inst.common.id.unwrap_or(ctx.object_id);
        if inst.reconciliation.deletion_scheduled.is_some() {
            return Ok(Outcome::Done);
        }
        let name = required_name(&inst.instance.name, WHAT, id)?;
        let field = |v, f| required_id(v, f, WHAT, id);
        let def_id = field(inst.logging_definition_id, "LoggingDefinitionID")?;
        let kri = field(
            inst.kubernetes_runtime_instance_id,
            "KubernetesRuntimeInstanceID",
        )?;
        let def: LoggingDefinition = ctx.api.get_object(def_id).await?;
        if let Some(wait) = wait_for_definition(
            ctx,
            def.reconciliation.reconciled,
            "logging definition",
            def_id,
        ) {
            return Ok(wait);
        }
        let def_field = |v, f| required_id(v, f, "logging definition", def_id);
        let loki_hwd = def_field(
            def.loki_helm_workload_definition_id,
            "LokiHelmWorkloadDefinitionID",
        )?;
        let promtail_hwd = def_field(
            def.promtail_helm_workload_definition_id,
            "PromtailHelmWorkloadDefinitionID",
        )?;
        let namespace = self.namespace(ctx, &name, id, &inst).await?;
        let loki = ensure_chart_release(
            ctx,
            WHAT,
            id,
            &name,
            ChartRelease {
                suffix: LOKI_SUFFIX,
                values_field: LOKI_VALUES,
                definition_values: def.loki_helm_values_document.as_deref(),
                values: inst.loki_helm_values_document.as_deref(),
                hwd: loki_hwd,
                kri,
                namespace: Some(namespace.clone()),
                recorded: inst.loki_helm_workload_instance_id,
            },
        )
        .await?;
        let promtail = ensure_chart_release(
            ctx,
            WHAT,
            id,
            &name,
            ChartRelease {
                suffix: PROMTAIL_SUFFIX,
                values_field: PROMTAIL_VALUES,
                definition_values: def.promtail_helm_values_document.as_deref(),
                values: inst.promtail_helm_values_document.as_deref(),
                hwd: promtail_hwd,
                kri,
                namespace: Some(namespace),
                recorded: inst.promtail_helm_workload_instance_id,
            },
        )
        .await?;
        if inst.loki_helm_workload_instance_id != Some(loki)
            || inst.promtail_helm_workload_instance_id != Some(promtail)
        {
            let change = LoggingInstance {
                loki_helm_workload_instance_id: Some(loki),
                promtail_helm_workload_instance_id: Some(promtail),
                reconciliation: Reconciliation::marked_reconciled(),
                ..Default::default()
            };
            ctx.api.patch_object(id, Patch::Changes(&change)).await?;
        }
        Ok(Outcome::Done)
    }

    /// The namespace Loki and Promtail are released into: the one the instance's Loki release
    /// already has (made earlier, perhaps by Threeport, whose name ends in random letters),
    /// else `<name>-logging-<10 characters from the instance ID>`.
    async fn namespace(
        &self,
        ctx: &ReconcileContext,
        name: &str,
        id: u64,
        inst: &LoggingInstance,
    ) -> Result<String, ReconcileError> {
        if let Some(loki) = inst.loki_helm_workload_instance_id {
            match ctx.api.get_object::<HelmWorkloadInstance>(loki).await {
                Ok(hwi) => {
                    if let Some(ns) = hwi.release_namespace.filter(|ns| !ns.is_empty()) {
                        return Ok(ns);
                    }
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(generated_namespace_name(
            &format!("{name}-logging"),
            &format!("threeport-manager/logging-namespace/{id}"),
        ))
    }
}

#[async_trait]
impl Reconciler for LoggingInstanceReconciler {
    type Object = LoggingInstance;

    async fn created(
        &self,
        ctx: &ReconcileContext,
        inst: LoggingInstance,
    ) -> Result<Outcome, ReconcileError> {
        self.converge(ctx, inst).await
    }

    async fn updated(
        &self,
        ctx: &ReconcileContext,
        inst: LoggingInstance,
    ) -> Result<Outcome, ReconcileError> {
        self.converge(ctx, inst).await
    }

    /// Promtail, then Loki (the reverse of their making).
    async fn deleted(
        &self,
        ctx: &ReconcileContext,
        inst: LoggingInstance,
    ) -> Result<Outcome, ReconcileError> {
        let name = inst.instance.name.as_deref();
        remove_chart::<HelmWorkloadInstance>(
            ctx,
            name,
            PROMTAIL_SUFFIX,
            inst.promtail_helm_workload_instance_id,
        )
        .await?;
        remove_chart::<HelmWorkloadInstance>(
            ctx,
            name,
            LOKI_SUFFIX,
            inst.loki_helm_workload_instance_id,
        )
        .await?;
        Ok(Outcome::Done)
    }
}
