//! HelmWorkloadDefinitionReconciler (spec 3.5): a definition is a chart reference with values
//! and extra resources; nothing of it exists outside the API until an instance is released,
//! so all three operations only let the engine mark it reconciled, as Threeport's do. A
//! definition whose `Repo` or `Chart` is unusable is reported by each of its instances (a
//! permanent error naming the field), where the release fails.

use async_trait::async_trait;

use crate::engine::{Outcome, ReconcileContext, ReconcileError, Reconciler};
use crate::threeport::models::HelmWorkloadDefinition;

/// Reconciles helm workload definitions.
pub struct HelmWorkloadDefinitionReconciler;

#[async_trait]
impl Reconciler for HelmWorkloadDefinitionReconciler {
    type Object = HelmWorkloadDefinition;

    async fn created(
        &self,
        _ctx: &ReconcileContext,
        _hwd: HelmWorkloadDefinition,
    ) -> Result<Outcome, ReconcileError> {
        Ok(Outcome::Done)
    }

    async fn updated(
        &self,
        _ctx: &ReconcileContext,
        _hwd: HelmWorkloadDefinition,
    ) -> Result<Outcome, ReconcileError> {
        Ok(Outcome::Done)
    }

    /// The API refuses to delete a definition that still has instances, so there is no
    /// release left to remove.
    async fn deleted(
        &self,
        _ctx: &ReconcileContext,
        _hwd: HelmWorkloadDefinition,
    ) -> Result<Outcome, ReconcileError> {
        Ok(Outcome::Done)
    }
}
