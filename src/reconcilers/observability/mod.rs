//! The observability controller (spec 3.6): Grafana, kube-prometheus-stack, Loki and Promtail
//! on runtimes, composed through the API only. Each definition makes the helm workload
//! definitions of its charts (or, for a stack, a dashboard, metrics and logging definition);
//! each instance makes the helm workload instances (or child instances) of its definition's,
//! which the helm-workload controller releases. Names, charts, repositories and values
//! documents are Threeport's (`data/observability/threeport-v0.6.1/`).
//!
//! - [`stack`], [`dashboard`], [`metrics`], [`logging`]: the eight reconcilers, a definition
//!   and an instance each; dashboard and metrics are one chart each ([`one_chart`]).
//! - [`children`]: finding, making, updating and removing the composed objects idempotently.
//! - [`values`]: Threeport's values documents and the values merge.
//!
//! Unlike Threeport's controller: every step is idempotent (a retry adopts what an earlier
//! attempt made instead of failing on the name forever); Updated brings the children in line
//! with the parent (Threeport's does nothing); an instance waits for its definition by
//! requeueing, not by failing; deleting works for an object whose children were never made or
//! are already gone (Threeport dereferences the missing IDs); a stack instance's own values
//! win over its definition's, as for the other instances (Threeport's stack instance merges the
//! other way round); the logging namespace is derived from the instance ID (Threeport draws
//! random letters, so a retry would make a second one).

pub mod children;
pub mod dashboard;
pub mod logging;
pub mod metrics;
pub mod one_chart;
pub mod stack;
pub mod values;

use crate::config::ObservabilityConfig;
use crate::engine::{Outcome, ReconcileContext, ReconcileError};
use crate::threeport::models::{
    ApiObject, Definition, HelmWorkloadDefinition, HelmWorkloadInstance, Instance,
};

use super::{ReconcilerDeps, Registered};

/// The Grafana charts' chart names.
pub const GRAFANA_CHART: &str = "grafana";
/// kube-prometheus-stack's chart name.
pub const KUBE_PROMETHEUS_STACK_CHART: &str = "kube-prometheus-stack";
/// Loki's chart name.
pub const LOKI_CHART: &str = "loki";
/// Promtail's chart name.
pub const PROMTAIL_CHART: &str = "promtail";

/// The controller's reconcilers, in the registry's order.
pub fn reconcilers(deps: &ReconcilerDeps) -> Vec<Registered> {
    let repos = deps.observability.clone();
    vec![
        Registered::new(
            "ObservabilityStackDefinitionReconciler",
            stack::ObservabilityStackDefinitionReconciler,
        ),
        Registered::new(
            "ObservabilityStackInstanceReconciler",
            stack::ObservabilityStackInstanceReconciler,
        ),
        Registered::new(
            "ObservabilityDashboardDefinitionReconciler",
            dashboard::ObservabilityDashboardDefinitionReconciler::new(repos.clone()),
        ),
        Registered::new(
            "ObservabilityDashboardInstanceReconciler",
            dashboard::ObservabilityDashboardInstanceReconciler::default(),
        ),
        Registered::new(
            "MetricsDefinitionReconciler",
            metrics::MetricsDefinitionReconciler::new(repos.clone()),
        ),
        Registered::new(
            "MetricsInstanceReconciler",
            metrics::MetricsInstanceReconciler::default(),
        ),
        Registered::new(
            "LoggingDefinitionReconciler",
            logging::LoggingDefinitionReconciler::new(repos),
        ),
        Registered::new(
            "LoggingInstanceReconciler",
            logging::LoggingInstanceReconciler,
        ),
    ]
}

/// `<name>-<suffix>`, Threeport's names of composed objects.
pub fn child_name(name: &str, suffix: &str) -> String {
    format!("{name}-{suffix}")
}

/// The object's `Name`, required to name its children.
pub fn required_name(name: &Option<String>, what: &str, id: u64) -> Result<String, ReconcileError> {
    name.clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ReconcileError::permanent(format!("{what} {id} has no Name")))
}

/// A required ID field, or a permanent error naming it.
pub fn required_id(
    value: Option<u64>,
    field: &str,
    what: &str,
    id: u64,
) -> Result<u64, ReconcileError> {
    value.ok_or_else(|| ReconcileError::permanent(format!("{what} {id} has no {field}")))
}

/// Attempts after which a wait for a definition is logged as a warning.
const LONG_WAIT_ATTEMPTS: u64 = 10;

/// Requeue while a definition is not reconciled yet (its children are not made yet): 1 s,
/// 2 s ... 30 s, a wait and not a failure. A wait that goes on (the definition failing, or
/// being deleted) is logged as a warning on every check after the tenth (about 4 minutes).
pub fn wait_for_definition(
    ctx: &ReconcileContext,
    reconciled: Option<bool>,
    definition: &str,
    definition_id: u64,
) -> Option<Outcome> {
    if reconciled == Some(true) {
        return None;
    }
    if ctx.attempt >= LONG_WAIT_ATTEMPTS {
        tracing::warn!(
            definition,
            definition_id,
            attempt = ctx.attempt,
            "still waiting for the definition to be reconciled (see its events)"
        );
    }
    Some(Outcome::RequeueAfter(
        super::workload::definition_wait_delay(ctx.attempt),
    ))
}

/// A helm workload definition of `chart` from `repo`.
pub fn helm_definition(
    name: String,
    repo: &str,
    chart: &str,
    version: Option<String>,
    values: String,
) -> HelmWorkloadDefinition {
    HelmWorkloadDefinition {
        definition: Definition {
            name: Some(name),
            ..Default::default()
        },
        repo: Some(repo.to_string()),
        chart: Some(chart.to_string()),
        chart_version: version,
        values_document: Some(values),
        ..Default::default()
    }
}

/// A helm workload instance of definition `hwd` on runtime `kri`.
pub fn helm_instance(
    name: String,
    kri: u64,
    hwd: u64,
    values: String,
    release_namespace: Option<String>,
) -> HelmWorkloadInstance {
    HelmWorkloadInstance {
        instance: Instance {
            name: Some(name),
            ..Default::default()
        },
        kubernetes_runtime_instance_id: Some(kri),
        helm_workload_definition_id: Some(hwd),
        values_document: Some(values),
        release_namespace,
        ..Default::default()
    }
}

/// A values merge that fails on a user's document: permanent, naming the field.
pub fn merged(
    base: Option<&str>,
    over: Option<&str>,
    field: &str,
    what: &str,
    id: u64,
) -> Result<String, ReconcileError> {
    values::merge_opt(base, over)
        .map_err(|e| ReconcileError::permanent(format!("{what} {id}: {field}: {e}")))
}

/// For an object's repositories: the configured ones.
pub type Repositories = ObservabilityConfig;

/// One chart of a definition: what its helm workload definition `<name>-<suffix>` is made of.
pub struct ChartDefinition<'a> {
    /// Name suffix, e.g. `grafana`.
    pub suffix: &'static str,
    /// Chart repository.
    pub repo: &'a str,
    /// Chart name.
    pub chart: &'static str,
    /// Threeport's values, under the definition's.
    pub defaults: &'static str,
    /// The definition's field holding its values (for messages).
    pub values_field: &'static str,
    /// The definition's values.
    pub values: Option<&'a str>,
    /// The definition's chart version (the API's default when unset).
    pub version: Option<String>,
    /// The helm workload definition's ID the definition recorded.
    pub recorded: Option<u64>,
}

/// Make or update the helm workload definition of one chart of definition `id` (named
/// `name`); its ID.
pub async fn ensure_chart_definition(
    ctx: &ReconcileContext,
    what: &str,
    id: u64,
    name: &str,
    chart: ChartDefinition<'_>,
) -> Result<u64, ReconcileError> {
    let child = child_name(name, chart.suffix);
    let values = merged(
        Some(chart.defaults),
        chart.values,
        chart.values_field,
        what,
        id,
    )?;
    let hwd = helm_definition(
        child.clone(),
        chart.repo,
        chart.chart,
        chart.version,
        values,
    );
    children::ensure(ctx.api.as_ref(), chart.recorded, &child, &hwd, false).await
}

/// One chart of an instance: its helm workload instance `<name>-<suffix>`.
pub struct ChartRelease<'a> {
    /// Name suffix, e.g. `grafana`.
    pub suffix: &'static str,
    /// The instance's field holding its values (for messages).
    pub values_field: &'static str,
    /// The definition's own values (under the instance's).
    pub definition_values: Option<&'a str>,
    /// The instance's values.
    pub values: Option<&'a str>,
    /// The definition's helm workload definition of the chart.
    pub hwd: u64,
    /// The runtime.
    pub kri: u64,
    /// The release namespace, when the instance chooses it.
    pub namespace: Option<String>,
    /// The helm workload instance's ID the instance recorded.
    pub recorded: Option<u64>,
}

/// Make or update the helm workload instance of one chart of instance `id` (named `name`);
/// its ID. A changed one is un-reconciled, so the helm-workload controller upgrades it.
pub async fn ensure_chart_release(
    ctx: &ReconcileContext,
    what: &str,
    id: u64,
    name: &str,
    chart: ChartRelease<'_>,
) -> Result<u64, ReconcileError> {
    let child = child_name(name, chart.suffix);
    let values = merged(
        chart.definition_values,
        chart.values,
        chart.values_field,
        what,
        id,
    )?;
    let hwi = helm_instance(child.clone(), chart.kri, chart.hwd, values, chart.namespace);
    children::ensure(ctx.api.as_ref(), chart.recorded, &child, &hwi, true).await
}

/// Remove the helm workload definition or instance (`T`) `<name>-<suffix>`, recorded as
/// `recorded`.
pub async fn remove_chart<T: ApiObject>(
    ctx: &ReconcileContext,
    name: Option<&str>,
    suffix: &str,
    recorded: Option<u64>,
) -> Result<(), ReconcileError> {
    let child = child_name(name.unwrap_or_default(), suffix);
    children::remove::<T>(ctx.api.as_ref(), recorded, &child).await
}

#[cfg(test)]
mod tests;
