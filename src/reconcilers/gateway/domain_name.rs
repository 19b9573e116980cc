//! DomainNameInstanceReconciler (spec 3.3.3): deploys external-dns on the runtime (once per
//! runtime, as `external-dns-<runtime>`, adopted by name on a retry instead of Threeport's
//! 409 that leaves it stuck, spec 4.4 item 31) for the domain of the instance.
//!
//! - **Created**: attach the instance to the user's WorkloadInstance, then converge.
//! - **Updated**: converge.
//! - **Deleted**: remove the attached reference; external-dns keeps running, as in Threeport.
//!   It is one deployment per runtime, watching every gloo proxy there, so it serves the
//!   runtime's other domain name instances too; an operator removes it by deleting the
//!   `external-dns-<runtime>` workload instance (see docs/operating.md).
//!
//! Converge waits (a growing requeue) while the user's workload, gloo edge or external-dns is
//! not reconciled yet; a runtime without gloo edge is an error (its event says to create a
//! GatewayInstance), retried with backoff.

use async_trait::async_trait;
use tracing::info;

use super::runtime_support::{
    deploy_support_workload, gloo_namespace, infra_provider, reconciled_instance,
    recorded_support_instance, referenced, unique_wri, wait_for,
};
use super::support::{external_dns_document, external_dns_workload_name, SupportSettings};
use crate::engine::{Outcome, ReconcileContext, ReconcileError, Reconciler};
use crate::reconcilers::user_workload::{ensure_attached, remove_attached, wris_of};
use crate::threeport::models::{
    DomainNameDefinition, DomainNameInstance, KubernetesRuntimeInstance, TypedApi,
    DOMAIN_NAME_INSTANCE,
};

/// Reconciles domain name instances.
#[derive(Debug, Clone, Default)]
pub struct DomainNameInstanceReconciler {
    settings: SupportSettings,
}

impl DomainNameInstanceReconciler {
    /// The reconciler, with the external-dns image and version it deploys.
    pub fn new(settings: SupportSettings) -> Self {
        Self { settings }
    }

    async fn converge(
        &self,
        ctx: &ReconcileContext,
        dni: DomainNameInstance,
    ) -> Result<Outcome, ReconcileError> {
        let api = ctx.api.as_ref();
        let id = dni.common.id.unwrap_or(ctx.object_id);
        let by = format!("domain name instance {id}");
        let required = |v: Option<u64>, field: &str| {
            v.ok_or_else(|| ReconcileError::permanent(format!("{by} has no {field}")))
        };
        let wi_id = required(dni.workload_instance_id, "WorkloadInstanceID")?;
        let kri_id = required(
            dni.kubernetes_runtime_instance_id,
            "KubernetesRuntimeInstanceID",
        )?;
        let dnd_id = required(dni.domain_name_definition_id, "DomainNameDefinitionID")?;

        if reconciled_instance(api, wi_id, &by).await?.is_none() {
            return wait_for(ctx, &format!("workload instance {wi_id}"));
        }
        let kri: KubernetesRuntimeInstance = referenced(
            api.get_object(kri_id).await,
            "kubernetes runtime instance",
            kri_id,
            &by,
        )?;
        let Some(gloo_wi) =
            recorded_support_instance(api, kri.gateway_workload_instance_id).await?
        else {
            return Err(ReconcileError::transient(format!(
                "{by}: gloo edge is not deployed on kubernetes runtime instance {kri_id} \
                 (a GatewayInstance on that runtime deploys it)"
            )));
        };
        if reconciled_instance(api, gloo_wi, &by).await?.is_none() {
            return wait_for(ctx, &format!("gloo edge workload instance {gloo_wi}"));
        }
        let dns_wi = match recorded_support_instance(api, kri.dns_controller_instance_id).await? {
            Some(wi) => wi,
            None => {
                let provider = infra_provider(api, kri_id, &kri).await?;
                let gloo_wris = wris_of(api, gloo_wi).await?;
                let (_, glooedge) = unique_wri(&gloo_wris, "GlooEdge", None, gloo_wi)?;
                let gloo_ns = gloo_namespace(glooedge, gloo_wi)?;
                let dnd: DomainNameDefinition = referenced(
                    api.get_object(dnd_id).await,
                    "domain name definition",
                    dnd_id,
                    &by,
                )?;
                let doc = external_dns_document(
                    &provider,
                    dnd.domain.as_deref().unwrap_or_default(),
                    &gloo_ns,
                    kri_id,
                    &self.settings,
                );
                let name =
                    external_dns_workload_name(kri.instance.name.as_deref().unwrap_or_default());
                deploy_support_workload(api, kri_id, &name, &[doc], |k, wi| {
                    k.dns_controller_instance_id = Some(wi);
                })
                .await?
            }
        };
        if reconciled_instance(api, dns_wi, &by).await?.is_none() {
            return wait_for(ctx, &format!("external-dns workload instance {dns_wi}"));
        }
        Ok(Outcome::Done)
    }
}

#[async_trait]
impl Reconciler for DomainNameInstanceReconciler {
    type Object = DomainNameInstance;

    async fn created(
        &self,
        ctx: &ReconcileContext,
        dni: DomainNameInstance,
    ) -> Result<Outcome, ReconcileError> {
        let id = dni.common.id.unwrap_or(ctx.object_id);
        if let Some(wi_id) = dni.workload_instance_id {
            ensure_attached(
                ctx.api.as_ref(),
                wi_id,
                &DOMAIN_NAME_INSTANCE.versioned_name(),
                id,
            )
            .await?;
        }
        self.converge(ctx, dni).await
    }

    async fn updated(
        &self,
        ctx: &ReconcileContext,
        dni: DomainNameInstance,
    ) -> Result<Outcome, ReconcileError> {
        self.converge(ctx, dni).await
    }

    async fn deleted(
        &self,
        ctx: &ReconcileContext,
        dni: DomainNameInstance,
    ) -> Result<Outcome, ReconcileError> {
        let id = dni.common.id.unwrap_or(ctx.object_id);
        if let Some(wi_id) = dni.workload_instance_id {
            remove_attached(
                ctx.api.as_ref(),
                wi_id,
                &DOMAIN_NAME_INSTANCE.versioned_name(),
                id,
            )
            .await?;
        }
        info!("domain name instance removed; external-dns keeps running for the runtime");
        Ok(Outcome::Done)
    }
}

#[cfg(test)]
mod tests;
