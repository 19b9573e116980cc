//! ObservabilityStackDefinitionReconciler and ObservabilityStackInstanceReconciler: a stack is
//! a dashboard, a metrics and a logging definition (`<name>-observability-dashboard`,
//! `<name>-metrics`, `<name>-logging`, each with the stack's chart version and values for its
//! charts), and on a runtime an instance of each (metrics and logging unless disabled), whose
//! reconcilers make the helm workloads.

use async_trait::async_trait;

use super::children::{ensure, remove};
use super::values::GRAFANA_SERVICE_MONITOR;
use super::{child_name, merged, required_id, required_name, wait_for_definition};
use crate::engine::{Outcome, ReconcileContext, ReconcileError, Reconciler};
use crate::threeport::api::ThreeportApi;
use crate::threeport::models::{
    Definition, Instance, LoggingDefinition, LoggingInstance, MetricsDefinition, MetricsInstance,
    ObservabilityDashboardDefinition, ObservabilityDashboardInstance, ObservabilityStackDefinition,
    ObservabilityStackInstance, Patch, Reconciliation, TypedApi,
};

const DASHBOARD: &str = "observability-dashboard";
const METRICS: &str = "metrics";
const LOGGING: &str = "logging";

fn definition(name: String) -> Definition {
    Definition {
        name: Some(name),
        ..Default::default()
    }
}

fn instance(name: String) -> Instance {
    Instance {
        name: Some(name),
        ..Default::default()
    }
}

/// Reconciles observability stack definitions.
pub struct ObservabilityStackDefinitionReconciler;

impl ObservabilityStackDefinitionReconciler {
    async fn converge(
        &self,
        ctx: &ReconcileContext,
        def: ObservabilityStackDefinition,
    ) -> Result<Outcome, ReconcileError> {
        const WHAT: &str = "observability stack definition";
        let api = ctx.api.as_ref();
        let id = def.common.id.unwrap_or(ctx.object_id);
        let name = required_name(&def.definition.name, WHAT, id)?;

        // Changes reach the children's own reconcilers (Reconciled:false), which bring their
        // helm workload definitions in line.
        let dashboard_name = child_name(&name, DASHBOARD);
        let dashboard = ObservabilityDashboardDefinition {
            definition: definition(dashboard_name.clone()),
            grafana_helm_chart_version: def.grafana_helm_chart_version.clone(),
            grafana_helm_values_document: def.grafana_helm_values_document.clone(),
            ..Default::default()
        };
        let dashboard = ensure(
            api,
            def.observability_dashboard_definition_id,
            &dashboard_name,
            &dashboard,
            true,
        )
        .await?;

        let logging_name = child_name(&name, LOGGING);
        let logging = LoggingDefinition {
            definition: definition(logging_name.clone()),
            loki_helm_chart_version: def.loki_helm_chart_version.clone(),
            loki_helm_values_document: def.loki_helm_values_document.clone(),
            promtail_helm_chart_version: def.promtail_helm_chart_version.clone(),
            promtail_helm_values_document: def.promtail_helm_values_document.clone(),
            ..Default::default()
        };
        let logging = ensure(
            api,
            def.logging_definition_id,
            &logging_name,
            &logging,
            true,
        )
        .await?;

        let metrics_name = child_name(&name, METRICS);
        let metrics = MetricsDefinition {
            definition: definition(metrics_name.clone()),
            kube_prometheus_stack_helm_chart_version: def
                .kube_prometheus_stack_helm_chart_version
                .clone(),
            kube_prometheus_stack_helm_values_document: def
                .kube_prometheus_stack_helm_values_document
                .clone(),
            ..Default::default()
        };
        let metrics = ensure(
            api,
            def.metrics_definition_id,
            &metrics_name,
            &metrics,
            true,
        )
        .await?;

        if def.observability_dashboard_definition_id != Some(dashboard)
            || def.logging_definition_id != Some(logging)
            || def.metrics_definition_id != Some(metrics)
        {
            let change = ObservabilityStackDefinition {
                observability_dashboard_definition_id: Some(dashboard),
                logging_definition_id: Some(logging),
                metrics_definition_id: Some(metrics),
                reconciliation: Reconciliation::marked_reconciled(),
                ..Default::default()
            };
            ctx.api.patch_object(id, Patch::Changes(&change)).await?;
        }
        Ok(Outcome::Done)
    }
}

#[async_trait]
impl Reconciler for ObservabilityStackDefinitionReconciler {
    type Object = ObservabilityStackDefinition;

    async fn created(
        &self,
        ctx: &ReconcileContext,
        def: ObservabilityStackDefinition,
    ) -> Result<Outcome, ReconcileError> {
        self.converge(ctx, def).await
    }

    async fn updated(
        &self,
        ctx: &ReconcileContext,
        def: ObservabilityStackDefinition,
    ) -> Result<Outcome, ReconcileError> {
        self.converge(ctx, def).await
    }

    /// Metrics, logging, then the dashboard (the reverse of their making). The API refuses a
    /// child definition's deletion while its instances are still being deleted; that is
    /// retried until they are gone.
    async fn deleted(
        &self,
        ctx: &ReconcileContext,
        def: ObservabilityStackDefinition,
    ) -> Result<Outcome, ReconcileError> {
        let api = ctx.api.as_ref();
        let name = def.definition.name.as_deref().unwrap_or_default();
        remove::<MetricsDefinition>(api, def.metrics_definition_id, &child_name(name, METRICS))
            .await?;
        remove::<LoggingDefinition>(api, def.logging_definition_id, &child_name(name, LOGGING))
            .await?;
        remove::<ObservabilityDashboardDefinition>(
            api,
            def.observability_dashboard_definition_id,
            &child_name(name, DASHBOARD),
        )
        .await?;
        Ok(Outcome::Done)
    }
}

/// Reconciles observability stack instances.
pub struct ObservabilityStackInstanceReconciler;

impl ObservabilityStackInstanceReconciler {
    async fn converge(
        &self,
        ctx: &ReconcileContext,
        inst: ObservabilityStackInstance,
    ) -> Result<Outcome, ReconcileError> {
        const WHAT: &str = "observability stack instance";
        let api = ctx.api.as_ref();
        let id = inst.common.id.unwrap_or(ctx.object_id);
        if inst.reconciliation.deletion_scheduled.is_some() {
            return Ok(Outcome::Done);
        }
        let name = required_name(&inst.instance.name, WHAT, id)?;
        let field = |v, f| required_id(v, f, WHAT, id);
        let def_id = field(
            inst.observability_stack_definition_id,
            "ObservabilityStackDefinitionID",
        )?;
        let kri = field(
            inst.kubernetes_runtime_instance_id,
            "KubernetesRuntimeInstanceID",
        )?;
        let def: ObservabilityStackDefinition = api.get_object(def_id).await?;
        if let Some(wait) = wait_for_definition(
            ctx,
            def.reconciliation.reconciled,
            "observability stack definition",
            def_id,
        ) {
            return Ok(wait);
        }
        let def_field = |v, f| required_id(v, f, "observability stack definition", def_id);
        // The API's default for both is true.
        let metrics_enabled = inst.metrics_enabled != Some(false);
        let logging_enabled = inst.logging_enabled != Some(false);
        // The instance's values over the definition's (Threeport merges a stack instance's the
        // other way round, unlike every other instance).
        let values = |d: &Option<String>, i: &Option<String>, f: &str| {
            merged(d.as_deref(), i.as_deref(), f, WHAT, id)
        };

        let mut grafana = values(
            &def.grafana_helm_values_document,
            &inst.grafana_helm_values_document,
            "GrafanaHelmValuesDocument",
        )?;
        if metrics_enabled {
            grafana = merged(
                Some(&grafana),
                Some(GRAFANA_SERVICE_MONITOR),
                "GrafanaHelmValuesDocument",
                WHAT,
                id,
            )?;
        }
        let dashboard_name = child_name(&name, DASHBOARD);
        let dashboard = ObservabilityDashboardInstance {
            instance: instance(dashboard_name.clone()),
            kubernetes_runtime_instance_id: Some(kri),
            observability_dashboard_definition_id: Some(def_field(
                def.observability_dashboard_definition_id,
                "ObservabilityDashboardDefinitionID",
            )?),
            grafana_helm_values_document: Some(grafana),
            ..Default::default()
        };
        let recorded_dashboard = inst.observability_dashboard_instance_id;
        let dashboard = ensure(api, recorded_dashboard, &dashboard_name, &dashboard, true).await?;

        let logging_name = child_name(&name, LOGGING);
        let logging = if logging_enabled {
            let logging = LoggingInstance {
                instance: instance(logging_name.clone()),
                kubernetes_runtime_instance_id: Some(kri),
                logging_definition_id: Some(def_field(
                    def.logging_definition_id,
                    "LoggingDefinitionID",
                )?),
                loki_helm_values_document: Some(values(
                    &def.loki_helm_values_document,
                    &inst.loki_helm_values_document,
                    "LokiHelmValuesDocument",
                )?),
                promtail_helm_values_document: Some(values(
                    &def.promtail_helm_values_document,
                    &inst.promtail_helm_values_document,
                    "PromtailHelmValuesDocument",
                )?),
                ..Default::default()
            };
            Some(ensure(api, inst.logging_instance_id, &logging_name, &logging, true).await?)
        } else {
            remove::<LoggingInstance>(api, inst.logging_instance_id, &logging_name).await?;
            inst.logging_instance_id
        };

        let metrics_name = child_name(&name, METRICS);
        let metrics = if metrics_enabled {
            let metrics = MetricsInstance {
                instance: instance(metrics_name.clone()),
                kubernetes_runtime_instance_id: Some(kri),
                metrics_definition_id: Some(def_field(
                    def.metrics_definition_id,
                    "MetricsDefinitionID",
                )?),
                kube_prometheus_stack_helm_values_document: Some(values(
                    &def.kube_prometheus_stack_helm_values_document,
                    &inst.kube_prometheus_stack_helm_values_document,
                    "KubePrometheusStackHelmValuesDocument",
                )?),
                ..Default::default()
            };
            Some(ensure(api, inst.metrics_instance_id, &metrics_name, &metrics, true).await?)
        } else {
            remove::<MetricsInstance>(api, inst.metrics_instance_id, &metrics_name).await?;
            inst.metrics_instance_id
        };

        if recorded_dashboard != Some(dashboard)
            || inst.logging_instance_id != logging
            || inst.metrics_instance_id != metrics
        {
            let change = ObservabilityStackInstance {
                observability_dashboard_instance_id: Some(dashboard),
                logging_instance_id: logging,
                metrics_instance_id: metrics,
                reconciliation: Reconciliation::marked_reconciled(),
                ..Default::default()
            };
            ctx.api.patch_object(id, Patch::Changes(&change)).await?;
        }
        Ok(Outcome::Done)
    }
}

#[async_trait]
impl Reconciler for ObservabilityStackInstanceReconciler {
    type Object = ObservabilityStackInstance;

    async fn created(
        &self,
        ctx: &ReconcileContext,
        inst: ObservabilityStackInstance,
    ) -> Result<Outcome, ReconcileError> {
        self.converge(ctx, inst).await
    }

    async fn updated(
        &self,
        ctx: &ReconcileContext,
        inst: ObservabilityStackInstance,
    ) -> Result<Outcome, ReconcileError> {
        self.converge(ctx, inst).await
    }

    /// Metrics, logging, then the dashboard (the reverse of their making), whether or not
    /// they are enabled now.
    async fn deleted(
        &self,
        ctx: &ReconcileContext,
        inst: ObservabilityStackInstance,
    ) -> Result<Outcome, ReconcileError> {
        remove_children(ctx.api.as_ref(), &inst).await?;
        Ok(Outcome::Done)
    }
}

async fn remove_children(
    api: &dyn ThreeportApi,
    inst: &ObservabilityStackInstance,
) -> Result<(), ReconcileError> {
    let name = inst.instance.name.as_deref().unwrap_or_default();
    remove::<MetricsInstance>(api, inst.metrics_instance_id, &child_name(name, METRICS)).await?;
    remove::<LoggingInstance>(api, inst.logging_instance_id, &child_name(name, LOGGING)).await?;
    remove::<ObservabilityDashboardInstance>(
        api,
        inst.observability_dashboard_instance_id,
        &child_name(name, DASHBOARD),
    )
    .await
}
