//! WorkloadDefinitionReconciler (spec 3.2.1).
//!
//! # Idempotent creation
//!
//! Threeport POSTs the whole WRD set on every attempt, so a retry after partial success (for
//! instance the engine's `Reconciled` PATCH failed) duplicates every WRD (spec 4.3 item 25).
//! Here the WRDs of the definition are listed first and only the documents without a WRD are
//! POSTed, in one batch. A document "has a WRD" when an unused existing WRD has an equal
//! `JSONDefinition` (JSON equality, so key order does not matter); each WRD is used once, so a
//! manifest that repeats a document still gets one WRD per copy. Matching by content rather
//! than by position means a partially stored set (nothing here relies on the API storing the
//! batch atomically, and a lost response looks like a failure) is completed, not duplicated.
//! WRDs are listed in ID order, which is the document order when the set was stored in one
//! batch; instances do not depend on that order beyond "Namespaces and CRDs first", which
//! they enforce themselves.

use async_trait::async_trait;
use serde_json::Value;
use tracing::{debug, info};

use crate::engine::reconciler::EventOverride;
use crate::engine::{Outcome, ReconcileContext, ReconcileError, Reconciler};
use crate::kube::manifest::split_yaml;
use crate::threeport::api::ThreeportApi;
use crate::threeport::models::{Filter, TypedApi, WorkloadDefinition, WorkloadResourceDefinition};
use crate::threeport::ApiError;

/// The batch route of WRDs (spec 2.7).
pub const WRD_SETS_PATH: &str = "/v0/workload-resource-definition-sets";

/// Splits a WorkloadDefinition's YAML into WorkloadResourceDefinitions.
#[derive(Debug, Default, Clone)]
pub struct WorkloadDefinitionReconciler;

impl WorkloadDefinitionReconciler {
    /// The reconciler; it holds no state.
    pub fn new() -> Self {
        Self
    }
}

/// The documents that still need a WRD: every document without an unused existing WRD of
/// equal `JSONDefinition` (module docs).
pub fn missing_documents(
    documents: Vec<Value>,
    existing: &[WorkloadResourceDefinition],
) -> Vec<Value> {
    let mut used = vec![false; existing.len()];
    documents
        .into_iter()
        .filter(|doc| {
            let found = existing
                .iter()
                .enumerate()
                .position(|(i, e)| !used[i] && e.json_definition.as_ref() == Some(doc));
            match found {
                Some(i) => {
                    used[i] = true;
                    false
                }
                None => true,
            }
        })
        .collect()
}

/// A broken manifest: a permanent error with a FailedCreate event naming the problem, so the
/// user sees it in the definition's events while the engine backs off.
fn invalid_manifest(id: u64, problem: String) -> ReconcileError {
    let note = format!("workload definition {id} has an invalid YAMLDocument: {problem}");
    ReconcileError::permanent(note.clone()).with_event(EventOverride {
        reason: "FailedCreate".into(),
        note,
        warning: false,
    })
}

async fn list_wrds(
    api: &dyn ThreeportApi,
    id: u64,
) -> Result<Vec<WorkloadResourceDefinition>, ApiError> {
    api.list_objects(&[Filter::eq("WorkloadDefinitionID", id)])
        .await
}

#[async_trait]
impl Reconciler for WorkloadDefinitionReconciler {
    type Object = WorkloadDefinition;

    async fn created(
        &self,
        ctx: &ReconcileContext,
        wd: WorkloadDefinition,
    ) -> Result<Outcome, ReconcileError> {
        let id = wd.common.id.unwrap_or(ctx.object_id);
        let yaml = wd.yaml_document.unwrap_or_default();
        let documents = split_yaml(&yaml).map_err(|e| invalid_manifest(id, e.to_string()))?;
        if documents.is_empty() {
            return Err(invalid_manifest(
                id,
                "it contains no Kubernetes objects".into(),
            ));
        }
        let existing = list_wrds(ctx.api.as_ref(), id).await?;
        let total = documents.len();
        let missing = missing_documents(documents, &existing);
        if missing.is_empty() {
            debug!(
                documents = total,
                "every document already has a workload resource definition"
            );
            return Ok(Outcome::Done);
        }
        let wrds: Vec<WorkloadResourceDefinition> = missing
            .into_iter()
            .map(|doc| WorkloadResourceDefinition {
                json_definition: Some(doc),
                workload_definition_id: Some(id),
                ..Default::default()
            })
            .collect();
        let count = wrds.len();
        ctx.api.create_object_set(WRD_SETS_PATH, &wrds).await?;
        info!(
            created = count,
            documents = total,
            "workload resource definitions created"
        );
        Ok(Outcome::Done)
    }

    /// Threeport does nothing on update: editing `YAMLDocument` changes neither the WRDs nor
    /// running instances (spec 3.2.1). Doing the same keeps the observable behaviour that
    /// other components and users rely on; no instance contract needs more (an instance reads
    /// the WRDs only when it is created).
    async fn updated(
        &self,
        _ctx: &ReconcileContext,
        _wd: WorkloadDefinition,
    ) -> Result<Outcome, ReconcileError> {
        Ok(Outcome::Done)
    }

    /// Delete every WRD of the definition (every page, not only the first 50 as Go does);
    /// a WRD that is already gone is fine. The engine then confirms and DELETEs the definition.
    async fn deleted(
        &self,
        ctx: &ReconcileContext,
        wd: WorkloadDefinition,
    ) -> Result<Outcome, ReconcileError> {
        let id = wd.common.id.unwrap_or(ctx.object_id);
        let wrds = list_wrds(ctx.api.as_ref(), id).await?;
        for wrd_id in wrds.iter().filter_map(|w| w.common.id) {
            ctx.api
                .delete_object::<WorkloadResourceDefinition>(wrd_id)
                .await?;
        }
        info!(
            deleted = wrds.len(),
            "workload resource definitions deleted"
        );
        Ok(Outcome::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_documents_without_a_wrd_are_missing() {
        let a = json!({"kind":"ConfigMap","metadata":{"name":"a"}});
        let b = json!({"kind":"ConfigMap","metadata":{"name":"b"}});
        let existing: Vec<WorkloadResourceDefinition> = vec![serde_json::from_value(
            json!({"ID": 1, "JSONDefinition": {"metadata":{"name":"a"},"kind":"ConfigMap"}}),
        )
        .expect("WRD")];
        assert_eq!(
            missing_documents(vec![a.clone(), b.clone()], &existing),
            vec![b.clone()]
        );
        // A repeated document needs one WRD per copy.
        assert_eq!(
            missing_documents(vec![a.clone(), a.clone()], &existing),
            vec![a.clone()]
        );
        assert_eq!(missing_documents(vec![a.clone()], &[]), vec![a]);
    }

    #[test]
    fn invalid_manifest_is_permanent_with_an_event() {
        let e = invalid_manifest(7, "YAML document 2: bad".into());
        assert_eq!(e.class, crate::threeport::RetryClass::Permanent);
        let ev = e.event.unwrap();
        assert_eq!(ev.reason, "FailedCreate");
        assert!(ev.note.contains("YAML document 2"), "{}", ev.note);
    }
}
