//! The aws controller (spec 3.6): EKS runtimes, and RDS databases and S3 buckets for
//! workloads on them, built through the official AWS SDK ([`crate::aws`]) with credentials
//! from Threeport AwsAccounts.
//!
//! - [`eks`]: AwsEksKubernetesRuntimeInstance, a restartable state machine in the instance.
//! - [`rds`]: AwsRelationalDatabaseInstance, and the Secret with its connection details.
//! - [`s3`]: AwsObjectStorageBucketInstance, and the workload's access to it.
//!
//! Long builds never hold a worker: a step that waits for AWS ends the reconcile with a
//! requeue after `aws.poll_interval`, and the inventory recorded after every step is where
//! the next reconcile (on any replica, after any restart) resumes.

pub mod eks;
pub mod rds;
pub mod s3;

use tracing::warn;

pub use eks::AwsEksKubernetesRuntimeInstanceReconciler;
pub use rds::AwsRelationalDatabaseInstanceReconciler;
pub use s3::AwsObjectStorageBucketInstanceReconciler;

use super::{ReconcilerDeps, Registered};
use crate::aws::eks::inventory::EksInventory;
use crate::aws::{AwsSession, AwsSessions, Inventory};
use crate::engine::{Operation, ReconcileContext, ReconcileError};
use crate::threeport::events::{EventRecorder, EventType};
use crate::threeport::models::{
    AwsAccount, AwsEksKubernetesRuntimeInstance, Filter, TypedApi, WorkloadInstance,
};
use crate::threeport::{ApiError, ThreeportApi};

/// The controller's reconcilers, in the registry's order.
pub fn reconcilers(deps: &ReconcilerDeps) -> Vec<Registered> {
    vec![
        Registered::new(
            "AwsEksKubernetesRuntimeInstanceReconciler",
            AwsEksKubernetesRuntimeInstanceReconciler::new(deps.aws.clone()),
        ),
        Registered::new(
            "AwsRelationalDatabaseInstanceReconciler",
            AwsRelationalDatabaseInstanceReconciler::new(deps.aws.clone()),
        ),
        Registered::new(
            "AwsObjectStorageBucketInstanceReconciler",
            AwsObjectStorageBucketInstanceReconciler::new(deps.aws.clone()),
        ),
    ]
}

/// A session for the AwsAccount `account_id` in `region` (the account's `DefaultRegion` when
/// the object names none).
pub(crate) async fn aws_session(
    api: &dyn ThreeportApi,
    sessions: &AwsSessions,
    account_id: u64,
    region: Option<&str>,
) -> Result<AwsSession, ReconcileError> {
    let account: AwsAccount = api.get_object(account_id).await?;
    let region = region
        .filter(|r| !r.is_empty())
        .or(account.default_region.as_deref())
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            ReconcileError::permanent(format!(
                "no region: the object names none and AwsAccount {account_id} has no DefaultRegion"
            ))
        })?
        .to_string();
    Ok(sessions.for_account(&account, &region).await?)
}

/// The AwsEksKubernetesRuntimeInstance of the KubernetesRuntimeInstance `runtime_id`, if it
/// is an EKS runtime.
pub(crate) async fn eks_instance_of_runtime(
    api: &dyn ThreeportApi,
    runtime_id: u64,
) -> Result<Option<AwsEksKubernetesRuntimeInstance>, ApiError> {
    Ok(api
        .list_objects(&[Filter::eq("KubernetesRuntimeInstanceID", runtime_id)])
        .await?
        .into_iter()
        .next())
}

/// A Normal event saying what a build waits for, so that progress shows in Threeport's
/// events (recorded once per distinct note; a failure to record is only logged).
pub(crate) async fn progress_event(ctx: &ReconcileContext, note: &str) {
    let reason = match ctx.operation {
        Operation::Deleted => "DeletionInProgress",
        Operation::Created | Operation::Updated => "CreationInProgress",
    };
    let recorder = EventRecorder::new(ctx.api.clone(), ctx.controller.reporting_controller);
    if let Err(e) = recorder
        .record(
            ctx.reconciler.object,
            ctx.object_id,
            reason,
            note,
            EventType::Normal,
        )
        .await
    {
        warn!(error = %e, "could not record the progress event");
    }
}

/// The EKS runtime a workload runs on, with its inventory: where its database or bucket goes.
pub(crate) struct WorkloadRuntime {
    /// The workload.
    pub workload: WorkloadInstance,
    /// The runtime's EKS instance.
    pub eks: AwsEksKubernetesRuntimeInstance,
    /// What was built for it.
    pub inventory: EksInventory,
}

/// The workload `wi_id` and the EKS instance of its runtime. A runtime that is not EKS is a
/// permanent error; one still being built is transient (retried until it is done).
pub(crate) async fn workload_runtime(
    ctx: &ReconcileContext,
    wi_id: u64,
) -> Result<WorkloadRuntime, ReconcileError> {
    let workload: WorkloadInstance = ctx.api.get_object(wi_id).await?;
    let runtime_id = workload.kubernetes_runtime_instance_id.ok_or_else(|| {
        ReconcileError::permanent(format!(
            "WorkloadInstance {wi_id} has no KubernetesRuntimeInstanceID"
        ))
    })?;
    let eks = eks_instance_of_runtime(ctx.api.as_ref(), runtime_id)
        .await?
        .ok_or_else(|| {
            ReconcileError::permanent(format!(
                "the runtime {runtime_id} of WorkloadInstance {wi_id} is not an EKS runtime \
                 (no AwsEksKubernetesRuntimeInstance)"
            ))
        })?;
    let inventory = EksInventory::from_value(eks.resource_inventory.as_ref()).map_err(|e| {
        ReconcileError::permanent(format!(
            "the EKS runtime's ResourceInventory does not decode: {e}"
        ))
    })?;
    if eks.reconciliation.creation_confirmed.is_none() || inventory.vpc_id.is_empty() {
        return Err(ReconcileError::transient(format!(
            "the EKS runtime {} is not provisioned yet",
            eks.instance.name.as_deref().unwrap_or("?")
        )));
    }
    Ok(WorkloadRuntime {
        workload,
        eks,
        inventory,
    })
}

/// The object's `ResourceInventory`; one that does not decode is a permanent error.
pub(crate) fn inventory_of<I: Inventory>(
    value: Option<&serde_json::Value>,
) -> Result<I, ReconcileError> {
    I::from_value(value).map_err(|e| {
        ReconcileError::permanent(format!("the ResourceInventory does not decode: {e}"))
    })
}

/// A random string of `len` characters from `alphabet` (OS randomness).
pub(crate) fn random_string(alphabet: &[u8], len: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rngs::OsRng;
    (0..len)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}
