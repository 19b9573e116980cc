//! What the observability tests share (`tests/observability.rs` on the sandbox,
//! `tests/upstream_observability.rs` on the real stack): the controller's reconcilers and
//! finding the objects it composes by their names.

use std::time::Duration;

use serde_json::Value;
use threeport_manager::threeport::ObjectType;

use crate::harness::backend::Stack;
use crate::harness::workload_suite::wait_until;

/// What `--enable observability` runs.
pub const RECONCILERS: &[&str] = &[
    "ObservabilityStackDefinitionReconciler",
    "ObservabilityStackInstanceReconciler",
    "ObservabilityDashboardDefinitionReconciler",
    "ObservabilityDashboardInstanceReconciler",
    "MetricsDefinitionReconciler",
    "MetricsInstanceReconciler",
    "LoggingDefinitionReconciler",
    "LoggingInstanceReconciler",
];

/// Every object of type `ty` named `name` (the API keeps names unique, so one at most unless
/// something made a duplicate).
pub async fn all_named(stack: &Stack, ty: ObjectType, name: &str) -> Vec<Value> {
    stack
        .list_all(ty)
        .await
        .into_iter()
        .filter(|o| o["Name"] == name)
        .collect()
}

/// The object of type `ty` named `name`, if there is one.
pub async fn named(stack: &Stack, ty: ObjectType, name: &str) -> Option<Value> {
    all_named(stack, ty, name).await.into_iter().next()
}

/// Wait (up to `limit`) until the object named `name` exists; it.
pub async fn wait_named(stack: &Stack, limit: Duration, ty: ObjectType, name: &str) -> Value {
    wait_until(limit, &format!("{} {name}", ty.name), || async {
        named(stack, ty, name).await.is_some()
    })
    .await;
    named(stack, ty, name).await.expect("found")
}

/// Wait (up to `limit`) until the object named `name` exists and is reconciled; it.
pub async fn wait_reconciled(stack: &Stack, limit: Duration, ty: ObjectType, name: &str) -> Value {
    wait_until(limit, &format!("{} {name} reconciled", ty.name), || async {
        named(stack, ty, name)
            .await
            .is_some_and(|o| o["Reconciled"] == true)
    })
    .await;
    named(stack, ty, name).await.expect("found")
}

/// Wait (up to `limit`) until no object named `name` is left.
pub async fn wait_gone(stack: &Stack, limit: Duration, ty: ObjectType, name: &str) {
    wait_until(limit, &format!("{} {name} deleted", ty.name), || async {
        named(stack, ty, name).await.is_none()
    })
    .await;
}
