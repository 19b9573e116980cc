//! HelmWorkloadInstanceReconciler (spec 3.5): an instance is a Helm release of its
//! definition's chart on its runtime, made and removed by the helm CLI ([`crate::helm`]).
//!
//! Created and Updated are the same: in a private workspace, add the chart repository, write
//! the definition's then the instance's values and the post-render spec, run `helm upgrade
//! --install` (with this binary as post-renderer, [`super::post_render`]), then record what
//! the release deployed in the ThreeportWorkload `helm-workload-instance-<id>` the agent
//! watches, and write the release namespace back if the instance had none.
//!
//! Unlike Threeport's Go reconciler (spec 4.5 items 37 to 40):
//! - Install and upgrade are one idempotent `helm upgrade --install`: a retry after any partial
//!   failure completes the release (Go's install fails on the name once a release exists, and
//!   its Updated crashes when `ReleaseNamespace` is unset). The generated release namespace is
//!   derived from the instance ID, so a retry uses the same one.
//! - A release left pending by a helm that was killed is freed (rolled back, or uninstalled if
//!   it never deployed) instead of refusing every later operation ([`unstick`]).
//! - The ThreeportWorkload follows upgrades and names the namespace of every namespaced object
//!   (Go writes it once, without namespaces).
//! - The release namespace is written back with a PATCH of that field only, at the end, with
//!   `Reconciled:true` as Go does, so the write does not trigger another `Updated`; Go writes
//!   back the whole instance read at the start and ignores the error.
//! - Deleted treats a release, ThreeportWorkload or workload events that are already gone as
//!   done (Go fails on the events' 404 forever), never deletes a system namespace (`default`,
//!   `kube-*`), and waits for the release namespace by requeueing (bounded by
//!   `helm.namespace_wait` from the deletion's request), never by blocking a worker for 120 s.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::post_render::PostRenderSpec;
use super::release::{
    additional_resources, chart_source, get_manifest_args, history_args, is_pending_release,
    release_name, release_namespace, repo_add_args, rollback_args, uninstall_args, unstick,
    upgrade_install_args, workload_resources, ChartSource, ReleaseCommand, Unstick,
};
use crate::config::HelmConfig;
use crate::engine::{Outcome, ReconcileContext, ReconcileError, Reconciler};
use crate::helm::{Helm, HelmError, HelmSettings, HelmWorkspace};
use crate::kube::manifest::{
    split_yaml, threeport_workload, threeport_workload_name, WorkloadType,
    THREEPORT_WORKLOAD_API_VERSION, THREEPORT_WORKLOAD_KIND,
};
use crate::kube::ops::dynamic_object;
use crate::reconcilers::runtime_access::RuntimeAccess;
use crate::threeport::models::{
    Filter, HelmWorkloadDefinition, HelmWorkloadInstance, KubernetesRuntimeInstance, Patch,
    Reconciliation, TypedApi, WorkloadEvent,
};

/// Namespaces a release may be in that are never deleted with it.
const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// How often a deletion looks again for its release namespace to be gone.
const NAMESPACE_POLL: Duration = Duration::from_secs(5);

/// Reconciles helm workload instances.
pub struct HelmWorkloadInstanceReconciler {
    runtimes: RuntimeAccess,
    helm: Helm,
    post_renderer: PathBuf,
    namespace_wait: Duration,
}

impl HelmWorkloadInstanceReconciler {
    /// Releases into the clusters of `runtimes`, running helm as `config` says.
    pub fn new(runtimes: RuntimeAccess, config: &HelmConfig) -> Self {
        let removed = crate::helm::remove_stale_workspaces();
        if removed > 0 {
            info!(
                removed,
                "removed helm workspaces left by processes that no longer run"
            );
        }
        let post_renderer = config.post_renderer.clone().unwrap_or_else(|| {
            // Only unavailable when /proc is not mounted; helm then reports the post-renderer
            // it cannot run, which is the error an operator would want to see.
            std::env::current_exe().unwrap_or_else(|_| PathBuf::from("threeport-manager"))
        });
        Self {
            runtimes,
            helm: Helm::new(HelmSettings {
                binary: config.binary.clone(),
                timeout: config.timeout,
                stop_grace: config.stop_grace,
            }),
            post_renderer,
            namespace_wait: config.namespace_wait,
        }
    }

    /// Install or upgrade the release, and record what it deployed.
    async fn release(
        &self,
        ctx: &ReconcileContext,
        hwi: HelmWorkloadInstance,
    ) -> Result<Outcome, ReconcileError> {
        let id = hwi.common.id.unwrap_or(ctx.object_id);
        if hwi.reconciliation.deletion_scheduled.is_some() {
            debug!("scheduled for deletion: nothing to release");
            return Ok(Outcome::Done);
        }
        let target = Target::of(id, &hwi)?;
        let hwd: HelmWorkloadDefinition = ctx.api.get_object(target.definition_id).await?;
        let kri: KubernetesRuntimeInstance = ctx.api.get_object(target.runtime_id).await?;
        let permanent =
            |e: String| ReconcileError::permanent(format!("helm workload instance {id}: {e}"));
        let source = chart_source(
            hwd.repo.as_deref().unwrap_or_default(),
            hwd.chart.as_deref().unwrap_or_default(),
        )
        .map_err(|e| permanent(format!("its definition {}: {e}", target.definition_id)))?;
        let mut extra = additional_resources(
            hwd.additional_resources.as_ref(),
            &format!("helm workload definition {}", target.definition_id),
        )
        .map_err(permanent)?;
        extra.extend(
            additional_resources(hwi.additional_resources.as_ref(), "the instance")
                .map_err(permanent)?,
        );

        let ws = self.workspace(ctx, kri.clone()).await?;
        let io = |what: &str, e: std::io::Error| {
            ReconcileError::transient(format!("helm workspace: cannot write {what}: {e}"))
        };
        if let ChartSource::Repository { url, .. } = &source {
            self.run(&ws, &repo_add_args(id, url), &ctx.cancel).await?;
        }
        let mut values: Vec<PathBuf> = Vec::new();
        for (file, document) in [
            ("definition-values.yaml", &hwd.values_document),
            ("instance-values.yaml", &hwi.values_document),
        ] {
            if let Some(document) = document.as_deref().filter(|d| !d.trim().is_empty()) {
                values.push(ws.write_file(file, document).map_err(|e| io(file, e))?);
            }
        }
        let spec = PostRenderSpec {
            definition_name: hwd.definition.name.clone().unwrap_or_default(),
            instance_name: target.name.clone(),
            instance_id: id,
            release_namespace: target.namespace.clone(),
            additional_resources: extra,
        };
        let spec_json = serde_json::to_string(&spec).map_err(|e| permanent(e.to_string()))?;
        let spec_file = ws
            .write_file("post-render.json", &spec_json)
            .map_err(|e| io("post-render.json", e))?;
        let values: Vec<&Path> = values.iter().map(PathBuf::as_path).collect();
        let install = upgrade_install_args(&ReleaseCommand {
            name: &target.release,
            namespace: &target.namespace,
            instance_id: id,
            source: &source,
            version: hwd.chart_version.as_deref(),
            values_files: &values,
            post_renderer: &self.post_renderer,
            post_render_spec: &spec_file,
        });
        self.upgrade_install(&ws, &target, &install, &ctx.cancel)
            .await?;

        // What the release deployed, for the agent.
        let manifest = self
            .run(
                &ws,
                &get_manifest_args(&target.release, &target.namespace),
                &ctx.cancel,
            )
            .await?;
        let objects = split_yaml(&manifest).map_err(|e| {
            ReconcileError::transient(format!("helm get manifest {}: {e}", target.release))
        })?;
        // The token is checked again: helm may have run long enough for it to near its expiry.
        let cluster = self.runtimes.cluster(ctx.api.as_ref(), kri, true).await?;
        let scopes = cluster.scopes(&objects).await?;
        let resources = workload_resources(&objects, &scopes, &target.namespace);
        let tw = threeport_workload(WorkloadType::HelmWorkloadInstance, id, &resources);
        cluster.apply(&dynamic_object(tw)?).await?;

        if hwi
            .release_namespace
            .as_deref()
            .unwrap_or_default()
            .is_empty()
        {
            // With Reconciled:true, as Go writes it: PATCHing an unreconciled object without
            // it would make the API publish another Updated (spec 2.8).
            let change = HelmWorkloadInstance {
                release_namespace: Some(target.namespace.clone()),
                reconciliation: Reconciliation::marked_reconciled(),
                ..Default::default()
            };
            ctx.api.patch_object(id, Patch::Changes(&change)).await?;
        }
        info!(
            release = %target.release,
            namespace = %target.namespace,
            objects = resources.len(),
            "helm release deployed"
        );
        Ok(Outcome::Done)
    }

    /// `helm upgrade --install`; a release left pending by a helm that died is freed first.
    async fn upgrade_install(
        &self,
        ws: &HelmWorkspace,
        target: &Target,
        install: &[OsString],
        cancel: &CancellationToken,
    ) -> Result<(), ReconcileError> {
        match self.helm.run(ws, install, cancel).await {
            Ok(_) => return Ok(()),
            Err(HelmError::Failed { stderr, .. }) if is_pending_release(&stderr) => {}
            Err(e) => return Err(e.into()),
        }
        let history = self
            .run(
                ws,
                &history_args(&target.release, &target.namespace),
                cancel,
            )
            .await?;
        let action = unstick(&history).map_err(ReconcileError::transient)?;
        warn!(release = %target.release, action = ?action, "freeing a release left pending by an earlier helm that did not finish");
        let args = match action {
            Unstick::Rollback(revision) => {
                rollback_args(&target.release, &target.namespace, revision)
            }
            Unstick::Uninstall => uninstall_args(&target.release, &target.namespace),
        };
        self.run(ws, &args, cancel).await?;
        self.run(ws, install, cancel).await?;
        Ok(())
    }

    /// A workspace whose kubeconfig reaches the runtime as the workload controller does
    /// (in-cluster address on the control plane's own runtime).
    async fn workspace(
        &self,
        ctx: &ReconcileContext,
        kri: KubernetesRuntimeInstance,
    ) -> Result<HelmWorkspace, ReconcileError> {
        let credentials = self
            .runtimes
            .credentials(ctx.api.as_ref(), kri, true)
            .await?;
        HelmWorkspace::new(&credentials)
            .map_err(|e| ReconcileError::transient(format!("helm workspace: {e}")))
    }

    async fn run(
        &self,
        ws: &HelmWorkspace,
        args: &[OsString],
        cancel: &CancellationToken,
    ) -> Result<String, ReconcileError> {
        Ok(self.helm.run(ws, args, cancel).await?)
    }

    /// Whether the release namespace is gone; deletes it (once) when it is not.
    async fn namespace_gone(
        &self,
        cluster: &dyn crate::kube::Cluster,
        namespace: &str,
    ) -> Result<bool, ReconcileError> {
        match cluster.delete("v1", "Namespace", None, namespace).await {
            Ok(existed) => Ok(!existed),
            // The API server answers 409 while a namespace is terminating.
            Err(e) if e.status_code() == Some(409) => Ok(false),
            // The runtime's credentials may not delete namespaces: the release is gone, the
            // namespace is the cluster admin's to remove (Threeport ignores this error too).
            Err(e) if e.status_code() == Some(403) => {
                warn!(namespace, error = %e, "release namespace not deleted: forbidden");
                Ok(true)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// How many other instances on the runtime, not themselves being deleted, release into
/// `target`'s namespace. One being deleted too does not count: whichever deletion finishes
/// last would otherwise leave the namespace behind (Loki and Promtail of a logging instance
/// are deleted together). Filtered here as well as by the API: Threeport's own list of this
/// kind ignores its filter (spec 3.5).
async fn others_releasing_into(
    ctx: &ReconcileContext,
    id: u64,
    target: &Target,
) -> Result<usize, ReconcileError> {
    Ok(ctx
        .api
        .list_objects::<HelmWorkloadInstance>(&[Filter::eq(
            "KubernetesRuntimeInstanceID",
            target.runtime_id,
        )])
        .await?
        .into_iter()
        .filter(|other| other.common.id != Some(id))
        .filter(|other| other.reconciliation.deletion_scheduled.is_none())
        .filter(|other| {
            other.kubernetes_runtime_instance_id == Some(target.runtime_id)
                && other.instance.name.as_deref().is_some_and(|name| {
                    release_namespace(
                        name,
                        other.common.id.unwrap_or_default(),
                        other.release_namespace.as_deref(),
                    ) == target.namespace
                })
        })
        .count())
}

/// What identifies an instance's release.
struct Target {
    name: String,
    release: String,
    namespace: String,
    definition_id: u64,
    runtime_id: u64,
}

impl Target {
    fn of(id: u64, hwi: &HelmWorkloadInstance) -> Result<Self, ReconcileError> {
        let missing = |field: &str| {
            ReconcileError::permanent(format!("helm workload instance {id} has no {field}"))
        };
        let name = hwi
            .instance
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| missing("Name"))?;
        Ok(Self {
            release: release_name(&name),
            namespace: release_namespace(&name, id, hwi.release_namespace.as_deref()),
            definition_id: hwi
                .helm_workload_definition_id
                .ok_or_else(|| missing("HelmWorkloadDefinitionID"))?,
            runtime_id: hwi
                .kubernetes_runtime_instance_id
                .ok_or_else(|| missing("KubernetesRuntimeInstanceID"))?,
            name,
        })
    }
}

#[async_trait]
impl Reconciler for HelmWorkloadInstanceReconciler {
    type Object = HelmWorkloadInstance;

    async fn created(
        &self,
        ctx: &ReconcileContext,
        hwi: HelmWorkloadInstance,
    ) -> Result<Outcome, ReconcileError> {
        self.release(ctx, hwi).await
    }

    async fn updated(
        &self,
        ctx: &ReconcileContext,
        hwi: HelmWorkloadInstance,
    ) -> Result<Outcome, ReconcileError> {
        self.release(ctx, hwi).await
    }

    /// Uninstall the release, delete the ThreeportWorkload and the instance's workload events,
    /// and the release namespace unless another instance releases into it.
    async fn deleted(
        &self,
        ctx: &ReconcileContext,
        hwi: HelmWorkloadInstance,
    ) -> Result<Outcome, ReconcileError> {
        let id = hwi.common.id.unwrap_or(ctx.object_id);
        let target = Target::of(id, &hwi)?;
        // None left is the goal; an instance whose release never had events is fine.
        let events = [Filter::eq("HelmWorkloadInstanceID", id)];
        let delete_events = || ctx.api.delete_objects_where::<WorkloadEvent>(&events);
        let kri = match ctx
            .api
            .get_object::<KubernetesRuntimeInstance>(target.runtime_id)
            .await
        {
            Ok(kri) => kri,
            Err(e) if e.is_not_found() => {
                warn!("the runtime instance no longer exists; skipping the release's removal");
                delete_events().await?;
                return Ok(Outcome::Done);
            }
            Err(e) => return Err(e.into()),
        };
        let ws = self.workspace(ctx, kri.clone()).await?;
        self.run(
            &ws,
            &uninstall_args(&target.release, &target.namespace),
            &ctx.cancel,
        )
        .await?;
        // The token is checked again: helm may have run long enough for it to near its expiry.
        let cluster = self.runtimes.cluster(ctx.api.as_ref(), kri, true).await?;
        cluster
            .delete(
                THREEPORT_WORKLOAD_API_VERSION,
                THREEPORT_WORKLOAD_KIND,
                None,
                &threeport_workload_name(WorkloadType::HelmWorkloadInstance, id),
            )
            .await?;
        delete_events().await?;

        let sharing = others_releasing_into(ctx, id, &target).await?;
        if sharing > 0 {
            info!(namespace = %target.namespace, others = sharing, "release namespace kept: other instances release into it");
            return Ok(Outcome::Done);
        }
        if SYSTEM_NAMESPACES.contains(&target.namespace.as_str()) {
            info!(namespace = %target.namespace, "helm release removed; its namespace is a system namespace and stays");
            return Ok(Outcome::Done);
        }
        if self
            .namespace_gone(cluster.as_ref(), &target.namespace)
            .await?
        {
            info!(namespace = %target.namespace, "helm release removed");
            return Ok(Outcome::Done);
        }
        // Counted from when the deletion was asked for; without that time (not an object the
        // API scheduled for deletion) there is nothing to wait for.
        let waited = hwi
            .reconciliation
            .deletion_scheduled
            .map_or(time::Duration::MAX, |at| OffsetDateTime::now_utc() - at);
        if waited >= self.namespace_wait {
            warn!(
                namespace = %target.namespace,
                waited_secs = waited.whole_seconds(),
                "release namespace still terminating; the deletion finishes without it"
            );
            return Ok(Outcome::Done);
        }
        debug!(namespace = %target.namespace, "waiting for the release namespace to go");
        Ok(Outcome::RequeueAfter(NAMESPACE_POLL))
    }
}

#[cfg(test)]
mod tests;
