//! What reconcilers (gateway, aws, secret) read and write on a WorkloadInstance that is not theirs (the
//! user's, or a support workload): the attached-object reference that ties an instance to the
//! workload (spec 1.10), its WRIs, and the PATCHes that hand WRIs to the workload controller.

use time::OffsetDateTime;

use crate::engine::ReconcileError;
use crate::threeport::api::ThreeportApi;
use crate::threeport::models::{
    AttachedObjectReference, Filter, Patch, Reconciliation, TypedApi, WorkloadInstance,
    WorkloadResourceInstance, WORKLOAD_INSTANCE,
};
use crate::threeport::{ApiError, ObjectType};

/// The references attaching `attached_type` `attached_id` to the object `owner` `owner_id`
/// (a WorkloadInstance, a HelmWorkloadInstance). The types are checked client-side too (the
/// API's filters are not all applied on every route, see the workload controller's
/// attached-object cleanup).
async fn attachments(
    api: &dyn ThreeportApi,
    owner: ObjectType,
    owner_id: u64,
    attached_type: &str,
    attached_id: u64,
) -> Result<Vec<AttachedObjectReference>, ReconcileError> {
    let object_type = owner.versioned_name();
    let references: Vec<AttachedObjectReference> = api
        .list_objects(&[
            Filter::eq("ObjectID", owner_id),
            Filter::eq("ObjectType", &object_type),
        ])
        .await?;
    Ok(references
        .into_iter()
        .filter(|r| {
            r.object_id == Some(owner_id)
                && r.object_type.as_deref() == Some(object_type.as_str())
                && r.attached_object_type.as_deref() == Some(attached_type)
                && r.attached_object_id == Some(attached_id)
        })
        .collect())
}

/// Attach `attached_type` `attached_id` (e.g. `v0.GatewayInstance` 42) to the WorkloadInstance
/// `wi_id`, unless a reference exists (the API's unique index answers a second POST with a
/// 500).
pub async fn ensure_attached(
    api: &dyn ThreeportApi,
    wi_id: u64,
    attached_type: &str,
    attached_id: u64,
) -> Result<(), ReconcileError> {
    ensure_attached_to(api, WORKLOAD_INSTANCE, wi_id, attached_type, attached_id).await
}

/// [`ensure_attached`] to an object of any type `owner`.
pub async fn ensure_attached_to(
    api: &dyn ThreeportApi,
    owner: ObjectType,
    owner_id: u64,
    attached_type: &str,
    attached_id: u64,
) -> Result<(), ReconcileError> {
    if attachments(api, owner, owner_id, attached_type, attached_id)
        .await?
        .is_empty()
    {
        api.create_object(&AttachedObjectReference {
            object_type: Some(owner.versioned_name()),
            object_id: Some(owner_id),
            attached_object_type: Some(attached_type.to_string()),
            attached_object_id: Some(attached_id),
            ..Default::default()
        })
        .await?;
    }
    Ok(())
}

/// Remove the reference [`ensure_attached`] made (a 404 is fine: the workload's deletion may
/// have removed it first).
pub async fn remove_attached(
    api: &dyn ThreeportApi,
    wi_id: u64,
    attached_type: &str,
    attached_id: u64,
) -> Result<(), ReconcileError> {
    remove_attached_from(api, WORKLOAD_INSTANCE, wi_id, attached_type, attached_id).await
}

/// [`remove_attached`] from an object of any type `owner`.
pub async fn remove_attached_from(
    api: &dyn ThreeportApi,
    owner: ObjectType,
    owner_id: u64,
    attached_type: &str,
    attached_id: u64,
) -> Result<(), ReconcileError> {
    for r in attachments(api, owner, owner_id, attached_type, attached_id).await? {
        let Some(rid) = r.common.id else { continue };
        match api.delete_object::<AttachedObjectReference>(rid).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The WRIs of a workload instance.
pub async fn wris_of(
    api: &dyn ThreeportApi,
    wi_id: u64,
) -> Result<Vec<WorkloadResourceInstance>, ReconcileError> {
    Ok(api
        .list_objects(&[Filter::eq("WorkloadInstanceID", wi_id)])
        .await?)
}

/// PATCH `ScheduledForDeletion` and `Reconciled:false` on each WRI (gone already is fine).
pub async fn schedule_deletion(api: &dyn ThreeportApi, wris: &[u64]) -> Result<(), ReconcileError> {
    let change = WorkloadResourceInstance {
        scheduled_for_deletion: Some(OffsetDateTime::now_utc()),
        reconciled: Some(false),
        ..Default::default()
    };
    for wri_id in wris {
        match api.patch_object(*wri_id, Patch::Changes(&change)).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// PATCH `Reconciled:false` on a workload instance so the workload controller applies its
/// WRIs.
pub async fn unreconcile_workload(api: &dyn ThreeportApi, wi_id: u64) -> Result<(), ApiError> {
    let change = WorkloadInstance {
        reconciliation: Reconciliation {
            reconciled: Some(false),
            ..Default::default()
        },
        ..Default::default()
    };
    api.patch_object(wi_id, Patch::Changes(&change)).await?;
    Ok(())
}

/// The one namespace of a workload's resources (the distinct `metadata.namespace` of its
/// WRIs), where objects added to it go. None or several is an error, as in Threeport.
pub fn workload_namespace(wris: &[WorkloadResourceInstance]) -> Result<String, ReconcileError> {
    let mut namespaces: Vec<&str> = wris
        .iter()
        .filter(|w| w.scheduled_for_deletion.is_none())
        .filter_map(|w| w.json_definition.as_ref()?["metadata"]["namespace"].as_str())
        .filter(|n| !n.is_empty())
        .collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    match namespaces.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(ReconcileError::permanent(
            "could not find any namespaces in workload resource instances",
        )),
        many => Err(ReconcileError::permanent(format!(
            "multiple namespaces found in workload resource instances: {}",
            many.join(", ")
        ))),
    }
}
