//! WorkloadInstanceReconciler (spec 3.2.2-3.2.4, with the fixes of spec 4.3).
//!
//! - **Created**: wait (requeue, growing delay) until the definition is reconciled; build the
//!   objects from the WRDs; put namespaced objects in the instance's namespace (a Namespace in
//!   the manifest wins, otherwise the managed namespace whose name is derived from the
//!   instance ID, so every retry reuses it); add Threeport's labels; apply Namespaces, then
//!   CRDs (waiting until their kinds are served), then the rest in manifest order; record one
//!   WRI per object, reusing a WRI that already stands for it; apply the ThreeportWorkload.
//!   Every write is a create-or-update, so a retry after a failure anywhere converges.
//! - **Updated**: apply WRIs that are not reconciled (with labels, unlike Go), delete those
//!   scheduled for deletion, and re-apply the ThreeportWorkload so the agent also watches
//!   resources added later.
//! - **Deleted**: every cleanup step runs on every attempt, whatever happened before (Go
//!   returns early when no WRIs are left and treats "no workload events" as an error, which
//!   leaks the ThreeportWorkload and attached objects; spec 4.3 item 24). The first error is
//!   returned after all steps ran, so the retry only has the failed parts left to do.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tracing::{debug, info, warn};

use super::{definition_wait_delay, match_wris, plan_update, wri_patch, ResourceKey};
use crate::engine::{Outcome, ReconcileContext, ReconcileError, Reconciler};
use crate::kube::manifest::{
    add_labels, assign_namespaces, assign_namespaces_with, crd_scopes, managed_namespace_name,
    order_for_apply, threeport_workload, threeport_workload_name, WorkloadResourceRef,
    WorkloadType, THREEPORT_WORKLOAD_API_VERSION, THREEPORT_WORKLOAD_KIND, WORKLOAD_INSTANCE_LABEL,
};
use crate::kube::ops::dynamic_object;
use crate::kube::{Cluster, KubeError};
use crate::reconcilers::runtime_access::RuntimeAccess;
use crate::threeport::api::ThreeportApi;
use crate::threeport::models::{
    object_type_from_versioned_name, AttachedObjectReference, Filter, KubernetesRuntimeInstance,
    Patch, TypedApi, WorkloadDefinition, WorkloadEvent, WorkloadInstance,
    WorkloadResourceDefinition, WorkloadResourceInstance, WORKLOAD_INSTANCE,
};
use crate::threeport::ApiError;

/// How long to wait for the kind of a CRD applied in the same reconcile to be served. A real
/// API server establishes a CRD within seconds; past a minute something is wrong and the
/// engine's backoff takes over.
pub const CRD_WAIT: Duration = Duration::from_secs(60);

/// Label selector of the namespaces the manager created for an instance: the managed-by label
/// plus the instance label, both set by [`add_labels`].
pub fn managed_namespace_selector(instance_id: u64) -> String {
    format!(
        "control-plane.threeport.io/managed-by=threeport,{WORKLOAD_INSTANCE_LABEL}={instance_id}"
    )
}

/// Deploys WorkloadInstances to their runtime cluster.
#[derive(Clone)]
pub struct WorkloadInstanceReconciler {
    runtimes: RuntimeAccess,
}

impl WorkloadInstanceReconciler {
    /// A reconciler that reaches runtime clusters through `runtimes`.
    pub fn new(runtimes: RuntimeAccess) -> Self {
        Self { runtimes }
    }

    /// The runtime cluster of the instance. `in_cluster = true` as Go's workload controller
    /// passes: on the control-plane host runtime the in-cluster API address is used.
    async fn cluster(
        &self,
        api: &dyn ThreeportApi,
        kri_id: u64,
    ) -> Result<Arc<dyn Cluster>, ReconcileError> {
        let kri: KubernetesRuntimeInstance = api.get_object(kri_id).await?;
        self.runtimes.cluster(api, kri, true).await
    }
}

/// The instance's definition. One that does not exist (deleted, or a wrong ID) is a permanent
/// error naming both objects: unlike a definition not reconciled yet, nothing will change it
/// by waiting.
async fn definition_of(
    api: &dyn ThreeportApi,
    def_id: u64,
    id: u64,
) -> Result<WorkloadDefinition, ReconcileError> {
    match api.get_object(def_id).await {
        Err(e) if e.is_not_found() => Err(ReconcileError::permanent(format!(
            "workload definition {def_id} of workload instance {id} does not exist"
        ))),
        other => Ok(other?),
    }
}

fn required(v: Option<u64>, field: &str, id: u64) -> Result<u64, ReconcileError> {
    v.ok_or_else(|| ReconcileError::permanent(format!("workload instance {id} has no {field}")))
}

fn cancelled(ctx: &ReconcileContext) -> Result<(), ReconcileError> {
    if ctx.cancel.is_cancelled() {
        Err(ReconcileError::transient("reconcile cancelled"))
    } else {
        Ok(())
    }
}

/// The managed namespace of a Created reconcile: the one an earlier attempt made, if any,
/// else [`managed_namespace_name`]. An earlier attempt (this manager's, another replica's
/// or a Go controller's that crashed or was stopped mid-reconcile) shows as a Namespace WRI,
/// or, if it died between creating the namespace and recording it, as a namespace labelled
/// for this instance; only a redelivery can have had an earlier attempt, so the first
/// delivery costs no extra request. Go picks a random name, so without this a takeover
/// from Go would deploy the instance a second time.
async fn managed_namespace(
    ctx: &ReconcileContext,
    handle: &dyn Cluster,
    wris: &[WorkloadResourceInstance],
    instance_name: &str,
    id: u64,
) -> Result<String, ReconcileError> {
    if let Some(ns) = recorded_namespace(wris) {
        return Ok(ns);
    }
    if ctx.attempt > 1 {
        let live: Vec<String> = handle
            .list_by_label("v1", "Namespace", None, &managed_namespace_selector(id))
            .await?
            .into_iter()
            .filter(|ns| ns.metadata.deletion_timestamp.is_none())
            .filter_map(|ns| ns.metadata.name)
            .collect();
        if let [only] = live.as_slice() {
            info!(namespace = %only, "adopting the namespace an earlier attempt created");
            return Ok(only.clone());
        }
    }
    Ok(managed_namespace_name(instance_name, id))
}

/// The namespace of the instance's Namespace WRI (not scheduled for deletion), if it has one.
pub fn recorded_namespace(wris: &[WorkloadResourceInstance]) -> Option<String> {
    wris.iter()
        .filter(|w| w.scheduled_for_deletion.is_none())
        .filter_map(|w| w.json_definition.as_ref())
        .find(|d| d["apiVersion"] == "v1" && d["kind"] == "Namespace")
        .and_then(|d| d["metadata"]["name"].as_str())
        .filter(|n| !n.is_empty())
        .map(String::from)
}

/// The instance's WRIs (every page), in ID order (creation order).
async fn list_wris(
    api: &dyn ThreeportApi,
    id: u64,
) -> Result<Vec<WorkloadResourceInstance>, ApiError> {
    api.list_objects(&[Filter::eq("WorkloadInstanceID", id)])
        .await
}

/// Spec 3.2.2 step 9b: tell the user through a WorkloadEvent that Kubernetes refused a
/// resource. Best effort: the reconcile fails with the Kubernetes error either way.
async fn post_failure_event(ctx: &ReconcileContext, id: u64, err: &KubeError) {
    let event = WorkloadEvent {
        runtime_event_uid: Some(ctx.instance_id.to_string()),
        event_type: Some("Failed".into()),
        reason: Some("CreateResourceError".into()),
        message: Some(format!(
            "failed to create Kubernetes resource for workload instance: {err}"
        )),
        timestamp: Some(time::OffsetDateTime::now_utc()),
        workload_instance_id: Some(id),
        ..Default::default()
    };
    if let Err(e) = ctx.api.create_object(&event).await {
        warn!(error = %e, "could not post the workload event");
    }
}

/// Apply one labelled object, first waiting for its kind when a CRD of the same workload
/// defines it. A Kubernetes failure posts the WorkloadEvent and becomes the reconcile error.
async fn apply_object(
    ctx: &ReconcileContext,
    handle: &dyn Cluster,
    id: u64,
    labelled: Value,
    crd_kinds: &HashSet<(String, String)>,
) -> Result<(), ReconcileError> {
    let key = ResourceKey::of(&labelled);
    let result = async {
        let av = labelled
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let kind = labelled
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if crd_kinds.contains(&(av.clone(), kind.clone())) {
            handle.wait_for_kind(&av, &kind, CRD_WAIT).await?;
        }
        handle.apply(&dynamic_object(labelled)?).await
    }
    .await;
    match result {
        Ok(_) => {
            debug!(object = %key, "applied");
            Ok(())
        }
        Err(e) => {
            post_failure_event(ctx, id, &e).await;
            Err(e.into())
        }
    }
}

/// Apply the ThreeportWorkload listing every WRI of the instance that is not scheduled for
/// deletion. `wris` is the list read at the start of this reconcile with this reconcile's own
/// writes applied, so no second list is needed: a controller that adds WRIs (gateway, aws,
/// secret) un-reconciles the instance afterwards (spec 3.7), and the Updated reconcile that
/// follows re-reads them.
async fn apply_threeport_workload(
    handle: &dyn Cluster,
    id: u64,
    wris: &[WorkloadResourceInstance],
) -> Result<(), ReconcileError> {
    let refs: Vec<WorkloadResourceRef> = wris
        .iter()
        .filter(|w| w.scheduled_for_deletion.is_none())
        .filter_map(|w| {
            Some(WorkloadResourceRef::from_object(
                w.json_definition.as_ref()?,
                w.common.id?,
            ))
        })
        .collect();
    let tw = threeport_workload(WorkloadType::WorkloadInstance, id, &refs);
    handle.apply(&dynamic_object(tw)?).await?;
    Ok(())
}

/// POST a WRI for `obj`, or bring the matching one in line (minimal PATCH). Returns the WRI as
/// the API now has it.
async fn record_wri(
    api: &dyn ThreeportApi,
    id: u64,
    obj: &Value,
    existing: Option<&WorkloadResourceInstance>,
) -> Result<WorkloadResourceInstance, ReconcileError> {
    let written = match existing {
        Some(w) => match (wri_patch(w, obj), w.common.id) {
            (Some(changes), Some(wri_id)) => {
                api.patch_object(wri_id, Patch::Changes(&changes)).await?
            }
            _ => return Ok(w.clone()),
        },
        None => {
            api.create_object(&WorkloadResourceInstance {
                json_definition: Some(obj.clone()),
                workload_instance_id: Some(id),
                reconciled: Some(true),
                ..Default::default()
            })
            .await?
        }
    };
    Ok(written)
}

/// Put a WRI returned by [`record_wri`] into the reconcile's view of the instance's WRIs: in
/// place of the one it updated, or appended (IDs grow, so the view stays in ID order).
fn remember_wri(
    wris: &mut Vec<WorkloadResourceInstance>,
    replaced: Option<usize>,
    wri: WorkloadResourceInstance,
) {
    match replaced {
        Some(i) => wris[i] = wri,
        None => wris.push(wri),
    }
}

fn str_of<'a>(obj: &'a Value, pointer: &str) -> Option<&'a str> {
    obj.pointer(pointer).and_then(Value::as_str)
}

/// Delete the cluster object a WRI stands for (absent = fine).
async fn delete_object(handle: &dyn Cluster, obj: &Value) -> Result<(), ReconcileError> {
    let (Some(av), Some(kind), Some(name)) = (
        str_of(obj, "/apiVersion"),
        str_of(obj, "/kind"),
        str_of(obj, "/metadata/name"),
    ) else {
        // Nothing that could have been created from it.
        return Ok(());
    };
    gone(
        handle
            .delete(av, kind, str_of(obj, "/metadata/namespace"), name)
            .await,
    )
}

/// A delete (API or cluster) whose "already gone" (`Ok(false)`) is success too.
fn gone<E: Into<ReconcileError>>(r: Result<bool, E>) -> Result<(), ReconcileError> {
    r.map(|_| ()).map_err(Into::into)
}

/// Keep the first error of a cleanup step and carry on with the next.
fn keep(first: &mut Option<ReconcileError>, step: &str, r: Result<(), ReconcileError>) {
    if let Err(e) = r {
        warn!(step, error = %e, "cleanup step failed; continuing with the others");
        if first.is_none() {
            *first = Some(e);
        }
    }
}

/// Spec 3.2.4 step 4. The object type is checked again client-side: the API filters this
/// route on `objecttype`, but its events join query ignores that key, and acting on a
/// reference of another type would delete someone else's object. A reference whose object
/// cannot be deleted is kept, so the retry finds it again.
async fn delete_attached_objects(api: &dyn ThreeportApi, id: u64) -> Result<(), ReconcileError> {
    let me = WORKLOAD_INSTANCE.versioned_name();
    let refs: Vec<AttachedObjectReference> = api
        .list_objects(&[Filter::eq("ObjectID", id), Filter::eq("ObjectType", &me)])
        .await?;
    let mut first = None;
    for r in refs {
        if r.object_type.as_deref() != Some(me.as_str()) || r.object_id != Some(id) {
            continue;
        }
        let attached = r.attached_object_type.as_deref().unwrap_or_default();
        // Events stay with the reference the event recorder made (as in Go).
        if attached == "v0.Event" || attached.rsplit('.').next() == Some("Event") {
            continue;
        }
        let Some(ty) = object_type_from_versioned_name(attached) else {
            warn!(
                attached_type = attached,
                "attached object of an unknown type; leaving it"
            );
            continue;
        };
        if let Some(aid) = r.attached_object_id {
            match api.delete(ty, aid).await {
                Ok(_) => info!(
                    attached_type = attached,
                    id = aid,
                    "attached object deleted"
                ),
                // Gone already, or its deletion is already under way.
                Err(e) if e.is_not_found() || e.is_conflict() => {}
                Err(e) => {
                    keep(&mut first, "delete attached object", Err(e.into()));
                    continue;
                }
            }
        }
        if let Some(rid) = r.common.id {
            keep(
                &mut first,
                "delete attached object reference",
                gone(api.delete_object::<AttachedObjectReference>(rid).await),
            );
        }
    }
    first.map_or(Ok(()), Err)
}

#[async_trait]
impl Reconciler for WorkloadInstanceReconciler {
    type Object = WorkloadInstance;

    async fn created(
        &self,
        ctx: &ReconcileContext,
        wi: WorkloadInstance,
    ) -> Result<Outcome, ReconcileError> {
        let api = ctx.api.as_ref();
        let id = wi.common.id.unwrap_or(ctx.object_id);
        let def_id = required(wi.workload_definition_id, "WorkloadDefinitionID", id)?;
        let kri_id = required(
            wi.kubernetes_runtime_instance_id,
            "KubernetesRuntimeInstanceID",
            id,
        )?;
        let wd = definition_of(api, def_id, id).await?;
        if wd.reconciliation.reconciled != Some(true) {
            let delay = definition_wait_delay(ctx.attempt);
            info!(
                definition = def_id,
                delay_ms = delay.as_millis() as u64,
                "workload definition not reconciled yet; waiting"
            );
            return Ok(Outcome::RequeueAfter(delay));
        }
        let wrds: Vec<WorkloadResourceDefinition> = api
            .list_objects(&[Filter::eq("WorkloadDefinitionID", def_id)])
            .await?;
        let objects: Vec<Value> = wrds.into_iter().filter_map(|w| w.json_definition).collect();
        if objects.is_empty() {
            return Err(ReconcileError::permanent(format!(
                "workload definition {def_id} has zero workload resource definitions to deploy"
            )));
        }

        let handle = self.cluster(api, kri_id).await?;
        let handle = handle.as_ref();
        let scopes = handle.scopes(&objects).await?;
        let instance_name = wi.instance.name.clone().unwrap_or_default();
        let mut wris = list_wris(api, id).await?;
        let managed = managed_namespace(ctx, handle, &wris, &instance_name, id).await?;
        let assignment = assign_namespaces_with(objects, &managed, |av, kind| {
            scopes.get(&(av.to_string(), kind.to_string())).copied()
        })?;
        let namespace = assignment.namespace.clone();
        let crd_kinds: HashSet<(String, String)> =
            crd_scopes(&assignment.objects).into_keys().collect();
        let ordered = order_for_apply(assignment.objects);
        let matches = match_wris(&ordered, &wris);
        let def_name = wd.definition.name.unwrap_or_default();

        for (obj, m) in ordered.iter().zip(matches) {
            cancelled(ctx)?;
            let mut labelled = obj.clone();
            add_labels(
                &mut labelled,
                &def_name,
                &instance_name,
                id,
                WORKLOAD_INSTANCE_LABEL,
            )?;
            apply_object(ctx, handle, id, labelled, &crd_kinds).await?;
            // The WRI keeps the namespace-rewritten object without the labels, as Go's does.
            let wri = record_wri(api, id, obj, m.map(|i| &wris[i])).await?;
            remember_wri(&mut wris, m, wri);
        }
        cancelled(ctx)?;
        apply_threeport_workload(handle, id, &wris).await?;
        info!(
            namespace,
            resources = ordered.len(),
            "workload instance deployed"
        );
        Ok(Outcome::Done)
    }

    async fn updated(
        &self,
        ctx: &ReconcileContext,
        wi: WorkloadInstance,
    ) -> Result<Outcome, ReconcileError> {
        let api = ctx.api.as_ref();
        let id = wi.common.id.unwrap_or(ctx.object_id);
        let kri_id = required(
            wi.kubernetes_runtime_instance_id,
            "KubernetesRuntimeInstanceID",
            id,
        )?;
        let mut wris = list_wris(api, id).await?;
        if wris.is_empty() {
            // Nothing deployed yet: the Created reconcile (retried until it succeeds) does it.
            return Ok(Outcome::Done);
        }
        let def_name = match wi.workload_definition_id {
            Some(def_id) => {
                let wd = definition_of(api, def_id, id).await?;
                wd.definition.name.unwrap_or_default()
            }
            None => String::new(),
        };
        let instance_name = wi.instance.name.clone().unwrap_or_default();
        let handle = self.cluster(api, kri_id).await?;
        let handle = handle.as_ref();

        // Namespaces as on create, over the WRIs that stay: the Namespace WRI (managed or from
        // the manifest) makes every namespaced WRI, including ones other controllers added,
        // land in the workload's namespace (spec 3.2.3 step 2).
        let live: Vec<usize> = (0..wris.len())
            .filter(|&i| {
                wris[i].scheduled_for_deletion.is_none() && wris[i].json_definition.is_some()
            })
            .collect();
        let objects: Vec<Value> = live
            .iter()
            .filter_map(|&i| wris[i].json_definition.clone())
            .collect();
        let scopes = handle.scopes(&objects).await?;
        let mut assignment = assign_namespaces(objects, &instance_name, id, |av, kind| {
            scopes.get(&(av.to_string(), kind.to_string())).copied()
        })?;
        let crd_kinds: HashSet<(String, String)> =
            crd_scopes(&assignment.objects).into_keys().collect();
        let label = |obj: &Value| -> Result<Value, ReconcileError> {
            let mut labelled = obj.clone();
            add_labels(
                &mut labelled,
                &def_name,
                &instance_name,
                id,
                WORKLOAD_INSTANCE_LABEL,
            )?;
            Ok(labelled)
        };
        if assignment.namespace_added {
            // A namespaced resource was added to a workload that had none: its managed
            // namespace does not exist yet.
            let ns = assignment.objects.remove(0);
            apply_object(ctx, handle, id, label(&ns)?, &crd_kinds).await?;
            let existing = match_wris(std::slice::from_ref(&ns), &wris)[0];
            let wri = record_wri(api, id, &ns, existing.map(|i| &wris[i])).await?;
            remember_wri(&mut wris, existing, wri);
        }

        let plan = plan_update(&wris);
        for &i in &plan.apply {
            cancelled(ctx)?;
            let Some(pos) = live.iter().position(|&l| l == i) else {
                continue;
            };
            let obj = &assignment.objects[pos];
            apply_object(ctx, handle, id, label(obj)?, &crd_kinds).await?;
            let wri = record_wri(api, id, obj, Some(&wris[i])).await?;
            remember_wri(&mut wris, Some(i), wri);
        }
        for &i in &plan.delete {
            cancelled(ctx)?;
            if let Some(obj) = &wris[i].json_definition {
                delete_object(handle, obj).await?;
            }
            if let Some(wri_id) = wris[i].common.id {
                api.delete_object::<WorkloadResourceInstance>(wri_id)
                    .await?;
            }
        }
        // The WRIs just deleted are the ones scheduled for deletion, which the
        // ThreeportWorkload leaves out.
        apply_threeport_workload(handle, id, &wris).await?;
        info!(
            applied = plan.apply.len(),
            deleted = plan.delete.len(),
            "workload instance updated"
        );
        Ok(Outcome::Done)
    }

    async fn deleted(
        &self,
        ctx: &ReconcileContext,
        wi: WorkloadInstance,
    ) -> Result<Outcome, ReconcileError> {
        let api = ctx.api.as_ref();
        let id = wi.common.id.unwrap_or(ctx.object_id);
        let mut first: Option<ReconcileError> = None;

        // 1. Attached objects (gateway, domain name, ... instances) and their references.
        keep(
            &mut first,
            "attached objects",
            delete_attached_objects(api, id).await,
        );

        // 2. The runtime cluster. If its KubernetesRuntimeInstance is gone there is no cluster
        //    to clean up any more; if it cannot be reached now, WRIs are kept so the retry
        //    still knows what to delete.
        let handle = match wi.kubernetes_runtime_instance_id {
            None => None,
            Some(kri_id) => match api.get_object::<KubernetesRuntimeInstance>(kri_id).await {
                Ok(kri) => Some(self.runtimes.cluster(api, kri, true).await),
                Err(e) if e.is_not_found() => {
                    warn!("the runtime instance no longer exists; skipping cluster cleanup");
                    None
                }
                Err(e) => Some(Err(e.into())),
            },
        };
        let (handle, cluster_ok) = match handle {
            Some(Ok(h)) => (Some(h), true),
            Some(Err(e)) => {
                keep(&mut first, "runtime cluster", Err(e));
                (None, false)
            }
            None => (None, true),
        };

        // 3. Every WRI: its object in the cluster, then the WRI. Custom resources before their
        //    CRDs, namespaces last (their deletion removes what is left inside).
        match list_wris(api, id).await {
            Err(e) => keep(
                &mut first,
                "list workload resource instances",
                Err(e.into()),
            ),
            Ok(mut wris) => {
                wris.sort_by_key(|w| {
                    std::cmp::Reverse(w.json_definition.as_ref().map_or(2, super::apply_rank))
                });
                for w in &wris {
                    if !cluster_ok {
                        break;
                    }
                    if let (Some(h), Some(obj)) = (&handle, &w.json_definition) {
                        if let Err(e) = delete_object(h.as_ref(), obj).await {
                            keep(&mut first, "delete Kubernetes object", Err(e));
                            continue;
                        }
                    }
                    if let Some(wri_id) = w.common.id {
                        keep(
                            &mut first,
                            "delete workload resource instance",
                            gone(api.delete_object::<WorkloadResourceInstance>(wri_id).await),
                        );
                    }
                }
            }
        }

        // 4. Workload events; none left is the goal.
        keep(
            &mut first,
            "delete workload events",
            api.delete_objects_where::<WorkloadEvent>(&[Filter::eq("WorkloadInstanceID", id)])
                .await
                .map_err(Into::into),
        );

        if let Some(h) = &handle {
            // 5. The ThreeportWorkload.
            let r = h
                .delete(
                    THREEPORT_WORKLOAD_API_VERSION,
                    THREEPORT_WORKLOAD_KIND,
                    None,
                    &threeport_workload_name(WorkloadType::WorkloadInstance, id),
                )
                .await;
            keep(&mut first, "delete ThreeportWorkload", gone(r));
            // 6. Namespaces the manager created for this instance, even one whose WRI was
            //    never recorded (a failure between applying it and POSTing its WRI).
            match h
                .list_by_label("v1", "Namespace", None, &managed_namespace_selector(id))
                .await
            {
                Err(e) => keep(&mut first, "list managed namespaces", Err(e.into())),
                Ok(namespaces) => {
                    for ns in namespaces {
                        if let Some(name) = ns.metadata.name.as_deref() {
                            let r = h.delete("v1", "Namespace", None, name).await;
                            keep(&mut first, "delete managed namespace", gone(r));
                        }
                    }
                }
            }
        }

        match first {
            Some(e) => Err(e),
            None => {
                info!("workload instance cleaned up");
                Ok(Outcome::Done)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wri(def: Value, scheduled: bool) -> WorkloadResourceInstance {
        let mut v = json!({"ID": 1, "JSONDefinition": def, "Reconciled": true});
        if scheduled {
            v["ScheduledForDeletion"] = json!("2026-01-01T00:00:00Z");
        }
        serde_json::from_value(v).expect("WRI")
    }

    #[test]
    fn the_recorded_namespace_is_the_live_namespace_wri() {
        let ns =
            |n: &str| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}});
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "x"}});
        assert_eq!(recorded_namespace(&[]), None);
        assert_eq!(recorded_namespace(&[wri(cm.clone(), false)]), None);
        assert_eq!(
            recorded_namespace(&[wri(cm, false), wri(ns("web-0-a1b2c3d4e5"), false)]),
            Some("web-0-a1b2c3d4e5".to_string())
        );
        assert_eq!(recorded_namespace(&[wri(ns("gone"), true)]), None);
        assert_eq!(recorded_namespace(&[wri(ns(""), false)]), None);
    }

    #[test]
    fn selector_names_both_labels() {
        assert_eq!(
            managed_namespace_selector(42),
            "control-plane.threeport.io/managed-by=threeport,control-plane.threeport.io/workload-instance=42"
        );
    }
}
