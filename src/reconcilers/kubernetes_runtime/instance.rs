//! KubernetesRuntimeInstanceReconciler (spec 3.4): an `eks` runtime gets its
//! AwsEksKubernetesRuntimeInstance when created; a runtime with an API endpoint gets what
//! Threeport's installer puts into a cluster ([`super::install`]); a deleted `eks` runtime
//! gets its EKS instance deleted.
//!
//! Unlike Threeport's Go reconciler (spec 4.5 item 36):
//! - The install is server-side apply of data files, so a second install changes nothing that
//!   is right and repairs what is not (Go POSTs and leaves anything that exists untouched, so a
//!   changed `ThreeportAgentImage` never reaches the agent).
//! - Instead of a fixed 10 s sleep, the support-services step waits (bounded) until the
//!   cluster serves the kinds of every CRD installed before it; discovery lists a CRD's kinds
//!   only once the CRD is Established.
//! - The cluster client is the shared, cached one, rebuilt only when the runtime's endpoint or
//!   credentials change (Go builds two per reconcile), and dropped when the runtime is deleted.
//! - On the runtime that hosts the control plane the agent is left as Threeport's installer
//!   made it (with the API's auth, which this controller cannot reproduce); Go's POST leaves it
//!   too, as it leaves everything that exists.
//! - Deleted first checks what the API's delete hook checks: while workload instances still
//!   run on the runtime, the deletion waits, retried with backoff, with a FailedDelete event
//!   naming them, and the EKS cluster is not torn down under them (Go deletes the EKS instance
//!   at once and then has its final DELETE refused every ~30 s, with no word why).

use std::time::Duration;

use async_trait::async_trait;
use tracing::{debug, info};

use super::definition::{account_of, provider, Provider};
use super::eks::{delete_eks_instance, ensure_eks_instance};
use super::install::{crd_kinds, install_plan, InstallInputs, InstallStep};
use crate::engine::reconciler::EventOverride;
use crate::engine::{Outcome, ReconcileContext, ReconcileError, Reconciler};
use crate::kube::ops::dynamic_object;
use crate::kube::Cluster;
use crate::reconcilers::runtime_access::RuntimeAccess;
use crate::threeport::api::ThreeportApi;
use crate::threeport::events::EventOperation;
use crate::threeport::models::{
    AwsAccount, AwsEksKubernetesRuntimeDefinition, Filter, KubernetesRuntimeDefinition,
    KubernetesRuntimeInstance, TypedApi, WorkloadInstance,
};

/// How long the support-services step waits for the CRDs before it is retried.
pub const CRD_WAIT: Duration = Duration::from_secs(60);

/// Reconciles kubernetes runtime instances.
pub struct KubernetesRuntimeInstanceReconciler {
    runtimes: RuntimeAccess,
    crd_wait: Duration,
}

impl KubernetesRuntimeInstanceReconciler {
    /// Installs into the clusters of `runtimes`.
    pub fn new(runtimes: RuntimeAccess) -> Self {
        Self::with_crd_wait(runtimes, CRD_WAIT)
    }

    /// With another bound on the wait for CRDs (tests).
    pub fn with_crd_wait(runtimes: RuntimeAccess, crd_wait: Duration) -> Self {
        Self { runtimes, crd_wait }
    }

    /// Apply every step of the install, in order.
    async fn install(
        &self,
        cluster: &dyn Cluster,
        plan: Vec<(InstallStep, Vec<serde_json::Value>)>,
    ) -> Result<usize, ReconcileError> {
        let mut crds: Vec<(String, String)> = Vec::new();
        let mut applied = 0;
        for (step, objects) in plan {
            if step.needs_crds_served() {
                // One bound for all of them, not one each.
                let deadline = tokio::time::Instant::now() + self.crd_wait;
                for (api_version, kind) in &crds {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    cluster.wait_for_kind(api_version, kind, left).await?;
                }
            }
            crds.extend(crd_kinds(&objects));
            for object in objects {
                cluster.apply(&dynamic_object(object)?).await?;
                applied += 1;
            }
            debug!(step = ?step, "install step applied");
        }
        Ok(applied)
    }
}

#[async_trait]
impl Reconciler for KubernetesRuntimeInstanceReconciler {
    type Object = KubernetesRuntimeInstance;

    /// Threeport registers its own runtime already reconciled: that one is left alone.
    async fn created(
        &self,
        ctx: &ReconcileContext,
        kri: KubernetesRuntimeInstance,
    ) -> Result<Outcome, ReconcileError> {
        if kri.reconciliation.reconciled == Some(true) {
            return Ok(Outcome::Done);
        }
        let id = kri.common.id.unwrap_or(ctx.object_id);
        let krd_id = definition_id(id, &kri)?;
        let krd: KubernetesRuntimeDefinition = ctx.api.get_object(krd_id).await?;
        match provider(krd_id, &krd)? {
            Provider::Kind => {}
            Provider::Eks => ensure_eks_instance(ctx.api.as_ref(), id, &kri, krd_id).await?,
        }
        Ok(Outcome::Done)
    }

    /// The install, once the runtime has an API endpoint (an EKS runtime gets one from the aws
    /// controller when its cluster is ready).
    async fn updated(
        &self,
        ctx: &ReconcileContext,
        kri: KubernetesRuntimeInstance,
    ) -> Result<Outcome, ReconcileError> {
        let id = kri.common.id.unwrap_or(ctx.object_id);
        if kri.api_endpoint.as_deref().unwrap_or_default().is_empty() {
            debug!("no API endpoint yet: nothing to install");
            return Ok(Outcome::Done);
        }
        if kri.reconciliation.deletion_scheduled.is_some() {
            return Ok(Outcome::Done);
        }
        let krd_id = definition_id(id, &kri)?;
        let krd: KubernetesRuntimeDefinition = ctx.api.get_object(krd_id).await?;
        let aws_account_id = match provider(krd_id, &krd)? {
            Provider::Kind => None,
            Provider::Eks => Some(aws_account_id(ctx.api.as_ref(), id, krd_id, &krd).await?),
        };
        let runtime_name = kri.instance.name.clone().unwrap_or_default();
        let plan = install_plan(&InstallInputs {
            runtime_name,
            agent_image: kri.threeport_agent_image.clone(),
            aws_account_id,
            control_plane_host: kri.threeport_control_plane_host == Some(true),
        })
        .map_err(|e| ReconcileError::permanent(format!("kubernetes runtime instance {id}: {e}")))?;
        // The runtime's external endpoint, as Threeport does (`GetClient(kri, false)`): the
        // same cluster as the in-cluster address on the control plane's own runtime, and the
        // only way in for every other.
        let cluster = self.runtimes.cluster(ctx.api.as_ref(), kri, false).await?;
        let applied = self.install(cluster.as_ref(), plan).await?;
        info!(
            runtime = cluster.runtime(),
            objects = applied,
            "runtime prepared: agent, CRDs and support services applied"
        );
        Ok(Outcome::Done)
    }

    /// Waits while workload instances run on the runtime (the API refuses the final DELETE
    /// until they are gone); then the runtime's EKS instance, if it has one, is deleted, which
    /// starts the aws controller's teardown.
    async fn deleted(
        &self,
        ctx: &ReconcileContext,
        kri: KubernetesRuntimeInstance,
    ) -> Result<Outcome, ReconcileError> {
        let id = kri.common.id.unwrap_or(ctx.object_id);
        let workloads: Vec<WorkloadInstance> = ctx
            .api
            .list_objects(&[Filter::eq("KubernetesRuntimeInstanceID", id)])
            .await?;
        if !workloads.is_empty() {
            return Err(deletion_blocked(id, &kri, &workloads));
        }
        // Found by the runtime's ID, so this needs no definition (it may be gone already) and
        // is a no-op for a kind runtime.
        delete_eks_instance(ctx.api.as_ref(), id).await?;
        // Its cached client and discovery are of no more use.
        self.runtimes.forget(id);
        Ok(Outcome::Done)
    }
}

fn definition_id(id: u64, kri: &KubernetesRuntimeInstance) -> Result<u64, ReconcileError> {
    kri.kubernetes_runtime_definition_id.ok_or_else(|| {
        ReconcileError::permanent(format!(
            "kubernetes runtime instance {id} has no KubernetesRuntimeDefinitionID"
        ))
    })
}

/// The AWS account ID the EKS cluster of runtime `kri_id` was built in: the account its
/// AwsEksKubernetesRuntimeDefinition names (so a later change of `InfraProviderAccountName` or
/// of the default account does not point cluster-autoscaler at another account), else, for an
/// EKS runtime registered without one, the definition's account chosen as the definition
/// reconciler chooses it. (Threeport looks it up by `InfraProviderAccountName` only.)
async fn aws_account_id(
    api: &dyn ThreeportApi,
    kri_id: u64,
    krd_id: u64,
    krd: &KubernetesRuntimeDefinition,
) -> Result<String, ReconcileError> {
    let eks: Vec<AwsEksKubernetesRuntimeDefinition> = api
        .list_objects(&[Filter::eq("KubernetesRuntimeDefinitionID", krd_id)])
        .await?;
    let account = match eks.first().and_then(|d| d.aws_account_id) {
        Some(account_id) => api.get_object::<AwsAccount>(account_id).await?,
        None => account_of(api, krd_id, krd).await?,
    };
    account
        .account_id
        .clone()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            ReconcileError::permanent(format!(
                "kubernetes runtime instance {kri_id}: AWS account {:?} (ID {}) has no AccountID, which cluster-autoscaler's IAM role needs",
                account.name.as_deref().unwrap_or_default(),
                account.common.id.unwrap_or_default()
            ))
        })
}

/// The error of a deletion that waits for workloads, with the event that says so.
fn deletion_blocked(
    id: u64,
    kri: &KubernetesRuntimeInstance,
    workloads: &[WorkloadInstance],
) -> ReconcileError {
    const NAMED: usize = 10;
    let mut names: Vec<String> = workloads
        .iter()
        .take(NAMED)
        .map(|w| {
            format!(
                "{} (ID {})",
                w.instance.name.as_deref().unwrap_or_default(),
                w.common.id.unwrap_or_default()
            )
        })
        .collect();
    if workloads.len() > NAMED {
        names.push(format!("and {} more", workloads.len() - NAMED));
    }
    let note = format!(
        "kubernetes runtime instance {} (ID {id}) is not deleted while {} workload instance(s) run on it: {}; delete them and the deletion goes on (retried with backoff)",
        kri.instance.name.as_deref().unwrap_or_default(),
        workloads.len(),
        names.join(", ")
    );
    ReconcileError::transient(note.clone()).with_event(EventOverride {
        reason: EventOperation::Deleted.failure_reason().to_string(),
        note,
        warning: true,
    })
}

#[cfg(test)]
mod tests;
