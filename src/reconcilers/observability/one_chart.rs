//! The definition and instance reconcilers of a component that is one chart: Grafana
//! (ObservabilityDashboard...) and kube-prometheus-stack (Metrics...). A definition makes the
//! helm workload definition `<name>-<suffix>` (the chart, Threeport's values under the
//! definition's own); an instance makes the helm workload instance of the same name on its
//! runtime, with the definition's values under its own. [`OneChart`] says where each piece
//! lives in the component's objects.

use std::marker::PhantomData;

use async_trait::async_trait;

use super::{
    ensure_chart_definition, ensure_chart_release, remove_chart, required_id, required_name,
    wait_for_definition, ChartDefinition, ChartRelease, Repositories,
};
use crate::engine::{Outcome, ReconcileContext, ReconcileError, Reconciler};
use crate::threeport::models::{
    ApiObject, HelmWorkloadDefinition, HelmWorkloadInstance, Patch, TypedApi,
};

/// What a definition contributes to its chart.
pub struct DefinitionParts<'a> {
    /// `Name`.
    pub name: &'a Option<String>,
    /// The definition's values document.
    pub values: Option<&'a str>,
    /// The chart version.
    pub version: Option<&'a str>,
    /// The recorded helm workload definition.
    pub hwd: Option<u64>,
    /// `Reconciled`.
    pub reconciled: Option<bool>,
}

/// What an instance contributes to its release.
pub struct InstanceParts<'a> {
    /// `Name`.
    pub name: &'a Option<String>,
    /// Its definition.
    pub definition: Option<u64>,
    /// Its runtime.
    pub runtime: Option<u64>,
    /// The instance's values document.
    pub values: Option<&'a str>,
    /// The recorded helm workload instance.
    pub hwi: Option<u64>,
    /// Whether it is being deleted.
    pub deleting: bool,
}

/// One chart's component: its objects and where the pieces are.
pub trait OneChart: Send + Sync + 'static {
    /// The definition type.
    type Definition: ApiObject;
    /// The instance type.
    type Instance: ApiObject;
    /// The definition type in messages, e.g. `metrics definition`.
    const DEFINITION: &'static str;
    /// The instance type in messages.
    const INSTANCE: &'static str;
    /// The instance's field naming its definition, e.g. `MetricsDefinitionID`.
    const DEFINITION_ID_FIELD: &'static str;
    /// The definition's field recording its helm workload definition.
    const HWD_FIELD: &'static str;
    /// The values documents' field, on both types.
    const VALUES_FIELD: &'static str;
    /// Name suffix of the helm workloads.
    const SUFFIX: &'static str;
    /// Chart name.
    const CHART: &'static str;
    /// Threeport's values.
    const DEFAULTS: &'static str;

    /// The chart repository.
    fn repo(repos: &Repositories) -> &str;
    /// The definition's pieces.
    fn definition(d: &Self::Definition) -> DefinitionParts<'_>;
    /// A change recording `hwd` on a definition (and `Reconciled:true`).
    fn record_definition(hwd: u64) -> Self::Definition;
    /// The instance's pieces.
    fn instance(i: &Self::Instance) -> InstanceParts<'_>;
    /// A change recording `hwi` on an instance (and `Reconciled:true`).
    fn record_instance(hwi: u64) -> Self::Instance;
}

/// Reconciles the definitions of `C`.
pub struct ChartDefinitionReconciler<C> {
    repos: Repositories,
    chart: PhantomData<C>,
}

impl<C: OneChart> ChartDefinitionReconciler<C> {
    /// Charts from `repos`.
    pub fn new(repos: Repositories) -> Self {
        Self {
            repos,
            chart: PhantomData,
        }
    }

    async fn converge(
        &self,
        ctx: &ReconcileContext,
        def: C::Definition,
    ) -> Result<Outcome, ReconcileError> {
        let id = def.id().unwrap_or(ctx.object_id);
        let parts = C::definition(&def);
        let name = required_name(parts.name, C::DEFINITION, id)?;
        let chart = ChartDefinition {
            suffix: C::SUFFIX,
            repo: C::repo(&self.repos),
            chart: C::CHART,
            defaults: C::DEFAULTS,
            values_field: C::VALUES_FIELD,
            values: parts.values,
            version: parts.version.map(str::to_string),
            recorded: parts.hwd,
        };
        let hwd = ensure_chart_definition(ctx, C::DEFINITION, id, &name, chart).await?;
        if parts.hwd != Some(hwd) {
            let change = C::record_definition(hwd);
            ctx.api.patch_object(id, Patch::Changes(&change)).await?;
        }
        Ok(Outcome::Done)
    }
}

#[async_trait]
impl<C: OneChart> Reconciler for ChartDefinitionReconciler<C> {
    type Object = C::Definition;

    async fn created(
        &self,
        ctx: &ReconcileContext,
        def: C::Definition,
    ) -> Result<Outcome, ReconcileError> {
        self.converge(ctx, def).await
    }

    async fn updated(
        &self,
        ctx: &ReconcileContext,
        def: C::Definition,
    ) -> Result<Outcome, ReconcileError> {
        self.converge(ctx, def).await
    }

    async fn deleted(
        &self,
        ctx: &ReconcileContext,
        def: C::Definition,
    ) -> Result<Outcome, ReconcileError> {
        let parts = C::definition(&def);
        remove_chart::<HelmWorkloadDefinition>(ctx, parts.name.as_deref(), C::SUFFIX, parts.hwd)
            .await?;
        Ok(Outcome::Done)
    }
}

/// Reconciles the instances of `C`.
pub struct ChartInstanceReconciler<C>(PhantomData<C>);

impl<C> Default for ChartInstanceReconciler<C> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<C: OneChart> ChartInstanceReconciler<C> {
    async fn converge(
        &self,
        ctx: &ReconcileContext,
        inst: C::Instance,
    ) -> Result<Outcome, ReconcileError> {
        let id = inst.id().unwrap_or(ctx.object_id);
        let parts = C::instance(&inst);
        if parts.deleting {
            return Ok(Outcome::Done);
        }
        let name = required_name(parts.name, C::INSTANCE, id)?;
        let def_id = required_id(parts.definition, C::DEFINITION_ID_FIELD, C::INSTANCE, id)?;
        let kri = required_id(
            parts.runtime,
            "KubernetesRuntimeInstanceID",
            C::INSTANCE,
            id,
        )?;
        let def: C::Definition = ctx.api.get_object(def_id).await?;
        let def_parts = C::definition(&def);
        if let Some(wait) = wait_for_definition(ctx, def_parts.reconciled, C::DEFINITION, def_id) {
            return Ok(wait);
        }
        let hwd = required_id(def_parts.hwd, C::HWD_FIELD, C::DEFINITION, def_id)?;
        let chart = ChartRelease {
            suffix: C::SUFFIX,
            values_field: C::VALUES_FIELD,
            definition_values: def_parts.values,
            values: parts.values,
            hwd,
            kri,
            namespace: None,
            recorded: parts.hwi,
        };
        let hwi = ensure_chart_release(ctx, C::INSTANCE, id, &name, chart).await?;
        if parts.hwi != Some(hwi) {
            let change = C::record_instance(hwi);
            ctx.api.patch_object(id, Patch::Changes(&change)).await?;
        }
        Ok(Outcome::Done)
    }
}

#[async_trait]
impl<C: OneChart> Reconciler for ChartInstanceReconciler<C> {
    type Object = C::Instance;

    async fn created(
        &self,
        ctx: &ReconcileContext,
        inst: C::Instance,
    ) -> Result<Outcome, ReconcileError> {
        self.converge(ctx, inst).await
    }

    async fn updated(
        &self,
        ctx: &ReconcileContext,
        inst: C::Instance,
    ) -> Result<Outcome, ReconcileError> {
        self.converge(ctx, inst).await
    }

    async fn deleted(
        &self,
        ctx: &ReconcileContext,
        inst: C::Instance,
    ) -> Result<Outcome, ReconcileError> {
        let parts = C::instance(&inst);
        remove_chart::<HelmWorkloadInstance>(ctx, parts.name.as_deref(), C::SUFFIX, parts.hwi)
            .await?;
        Ok(Outcome::Done)
    }
}
