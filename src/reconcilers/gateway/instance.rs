//! GatewayInstanceReconciler (spec 3.3.2): routes a gateway definition's ports to the user's
//! Service by adding gloo and cert-manager objects as WorkloadResourceInstances on the user's
//! WorkloadInstance, which the workload controller then applies.
//!
//! Created and Updated are one convergence, safe to repeat after a failure anywhere (spec 4.4):
//! 1. attach the instance to the user's WorkloadInstance (looked up before it is POSTed);
//! 2. wait (a growing requeue, not an error) until the gateway definition and the user's
//!    workload are reconciled;
//! 3. deploy gloo edge with cert-manager on the runtime once (`gloo-edge-<runtime>`, adopted
//!    by name), and wait until it is reconciled;
//! 4. expose the ports on the GlooEdge resource, writing only when the list changes (Go
//!    rewrites it, and un-reconciles gloo, on every pass);
//! 5. plan the user's WRIs against the wanted documents for every HTTP and TCP port
//!    ([`plan_wris`]): create, update and schedule deletion as needed, and un-reconcile the
//!    user's workload only when something changed.
//!
//! Deleted schedules every WRI of the gateway for deletion (any number of ports, TCP gateways
//! included) and removes the instance's attached-object reference.

use async_trait::async_trait;
use serde_json::Value;
use tracing::info;

use super::definition::{domain_name_of, ports_of};
use super::instance_plan::{instance_documents, plan_wris, InstanceInputs, ServiceRef, WriPlan};
use super::manifests::{any_tls, gateway_domain, template_documents, GatewayDomain};
use super::runtime_support::{
    deploy_support_workload, gloo_namespace, infra_provider, reconciled_instance,
    recorded_support_instance, referenced, unique_wri, wait_for,
};
use super::support::{exposed_ports, gloo_edge_documents, gloo_edge_workload_name};
use super::GatewaySettings;
use crate::engine::{Outcome, ReconcileContext, ReconcileError, Reconciler};
use crate::reconcilers::user_workload::{
    ensure_attached, remove_attached, schedule_deletion, unreconcile_workload, wris_of,
};
use crate::retry::RetryClass;
use crate::threeport::api::ThreeportApi;
use crate::threeport::location::aws_region_for_location;
use crate::threeport::models::{
    GatewayDefinition, GatewayHttpPort, GatewayInstance, GatewayTcpPort, KubernetesRuntimeInstance,
    Patch, TypedApi, WorkloadResourceInstance, GATEWAY_INSTANCE,
};

/// How soon a pass that wrote GlooEdge's port list runs again to check it.
const PORTS_RECHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// Reconciles gateway instances.
#[derive(Debug, Clone, Default)]
pub struct GatewayInstanceReconciler {
    settings: GatewaySettings,
}

impl GatewayInstanceReconciler {
    /// The reconciler, with the values it writes (Threeport's by default).
    pub fn new(settings: GatewaySettings) -> Self {
        Self { settings }
    }
}

/// The IDs a gateway instance names.
struct Refs {
    id: u64,
    workload_instance: u64,
    runtime: u64,
    definition: u64,
}

impl Refs {
    fn of(gi: &GatewayInstance, id: u64) -> Result<Self, ReconcileError> {
        let required = |v: Option<u64>, field: &str| {
            v.ok_or_else(|| {
                ReconcileError::permanent(format!("gateway instance {id} has no {field}"))
            })
        };
        Ok(Self {
            id,
            workload_instance: required(gi.workload_instance_id, "WorkloadInstanceID")?,
            runtime: required(
                gi.kubernetes_runtime_instance_id,
                "KubernetesRuntimeInstanceID",
            )?,
            definition: required(gi.gateway_definition_id, "GatewayDefinitionID")?,
        })
    }

    fn by(&self) -> String {
        format!("gateway instance {}", self.id)
    }
}

/// What gloo edge's step found.
struct GlooEdge {
    /// Where gloo runs (its upstreams' namespace).
    namespace: String,
    /// Whether this pass wrote the port list (then the reconcile checks it once more: another
    /// instance on the runtime may have written its own list at the same time).
    ports_written: bool,
}

/// Write a plan's WRIs.
async fn apply_plan(
    api: &dyn ThreeportApi,
    wi_id: u64,
    plan: &WriPlan,
) -> Result<(), ReconcileError> {
    for doc in &plan.create {
        api.create_object(&WorkloadResourceInstance {
            json_definition: Some(doc.clone()),
            workload_instance_id: Some(wi_id),
            reconciled: Some(false),
            ..Default::default()
        })
        .await?;
    }
    for (wri_id, doc) in &plan.update {
        let change = WorkloadResourceInstance {
            json_definition: Some(doc.clone()),
            reconciled: Some(false),
            ..Default::default()
        };
        api.patch_object(*wri_id, Patch::Changes(&change)).await?;
    }
    schedule_deletion(api, &plan.schedule_deletion).await?;
    Ok(())
}

impl GatewayInstanceReconciler {
    /// Steps 3 and 4 of the module doc: gloo edge deployed, reconciled and exposing the ports.
    /// `None` while gloo edge is not reconciled yet.
    async fn gloo_edge(
        &self,
        api: &dyn ThreeportApi,
        refs: &Refs,
        kri: &KubernetesRuntimeInstance,
        ports: (&[GatewayHttpPort], &[GatewayTcpPort]),
    ) -> Result<Option<GlooEdge>, ReconcileError> {
        let by = refs.by();
        let gloo_wi = match recorded_support_instance(api, kri.gateway_workload_instance_id).await?
        {
            Some(wi) => wi,
            None => {
                let provider = infra_provider(api, refs.runtime, kri).await?;
                let name =
                    gloo_edge_workload_name(kri.instance.name.as_deref().unwrap_or_default());
                let docs = gloo_edge_documents(&provider, &self.settings.support);
                deploy_support_workload(api, refs.runtime, &name, &docs, |k, wi| {
                    k.gateway_workload_instance_id = Some(wi);
                })
                .await?
            }
        };
        if reconciled_instance(api, gloo_wi, &by).await?.is_none() {
            return Ok(None);
        }
        let wris = wris_of(api, gloo_wi).await?;
        let (glooedge_wri, glooedge) = unique_wri(&wris, "GlooEdge", None, gloo_wi)?;
        let namespace = gloo_namespace(glooedge, gloo_wi)?;
        let existing = glooedge["spec"]["ports"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let exposed = exposed_ports(refs.definition, &existing, ports.0, ports.1)
            .map_err(|e| ReconcileError::permanent(e.to_string()))?;
        let ports_written = exposed.is_some();
        if let Some(list) = exposed {
            let mut definition = glooedge.clone();
            definition["spec"]["ports"] = Value::Array(list);
            let change = WorkloadResourceInstance {
                json_definition: Some(definition),
                reconciled: Some(false),
                ..Default::default()
            };
            api.patch_object(glooedge_wri, Patch::Changes(&change))
                .await?;
            info!(workload_instance = gloo_wi, "gloo edge ports exposed");
        }
        // Also when an earlier attempt wrote the ports and failed before this PATCH.
        let unapplied = wris
            .iter()
            .any(|w| w.common.id == Some(glooedge_wri) && w.reconciled != Some(true));
        if ports_written || unapplied {
            unreconcile_workload(api, gloo_wi).await?;
        }
        Ok(Some(GlooEdge {
            namespace,
            ports_written,
        }))
    }

    async fn converge(
        &self,
        ctx: &ReconcileContext,
        gi: GatewayInstance,
    ) -> Result<Outcome, ReconcileError> {
        let api = ctx.api.as_ref();
        let refs = Refs::of(&gi, gi.common.id.unwrap_or(ctx.object_id))?;
        let by = refs.by();
        ensure_attached(
            api,
            refs.workload_instance,
            &GATEWAY_INSTANCE.versioned_name(),
            refs.id,
        )
        .await?;
        let gd: GatewayDefinition = referenced(
            api.get_object(refs.definition).await,
            "gateway definition",
            refs.definition,
            &by,
        )?;
        if gd.reconciliation.reconciled != Some(true) || gd.workload_definition_id.is_none() {
            return wait_for(ctx, &format!("gateway definition {}", refs.definition));
        }
        if reconciled_instance(api, refs.workload_instance, &by)
            .await?
            .is_none()
        {
            return wait_for(
                ctx,
                &format!("workload instance {}", refs.workload_instance),
            );
        }
        let kri: KubernetesRuntimeInstance = referenced(
            api.get_object(refs.runtime).await,
            "kubernetes runtime instance",
            refs.runtime,
            &by,
        )?;
        let (http, tcp) = ports_of(api, refs.definition).await?;
        let Some(gloo) = self.gloo_edge(api, &refs, &kri, (&http, &tcp)).await? else {
            return wait_for(ctx, &format!("gloo edge on runtime {}", refs.runtime));
        };

        let user_wris = wris_of(api, refs.workload_instance).await?;
        let service_name = gd.service_name.as_deref().filter(|n| !n.is_empty());
        let (_, service) = unique_wri(&user_wris, "Service", service_name, refs.workload_instance)?;
        let service = ServiceRef {
            namespace: service["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string(),
            name: service["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        };
        let dnd = domain_name_of(api, &gd, &by).await?;
        let domain = gateway_domain(gd.sub_domain.as_deref(), dnd.as_ref());
        let gd_name = gd.definition.name.as_deref().unwrap_or_default();
        let tls = any_tls(&http, &tcp);
        let location = kri.location.as_deref().unwrap_or_default();
        let region = match aws_region_for_location(location) {
            Some(region) => region,
            None if tls => {
                return Err(ReconcileError::permanent(format!(
                    "{by}: runtime {} has location {location:?}, which maps to no Route 53 region",
                    refs.runtime
                )))
            }
            None => "",
        };
        let template = template_documents(gd_name, &domain, &http, &tcp, &self.settings.template)
            .map_err(|e| ReconcileError::permanent(e.to_string()))?;
        let inputs = InstanceInputs {
            gateway_definition: gd_name,
            domain: &domain,
            sub_domain: gd.sub_domain.as_deref(),
            domain_name_definition: dnd.as_ref(),
            service: &service,
            gloo_namespace: &gloo.namespace,
            route53_region: region,
        };
        let wanted = instance_documents(&template, &inputs, &http, &tcp)
            .map_err(|e| ReconcileError::permanent(format!("{by}: {e}")))?;
        let plan = plan_wris(&user_wris, &wanted, &inputs);
        apply_plan(api, refs.workload_instance, &plan).await?;
        if plan.needs_apply() {
            unreconcile_workload(api, refs.workload_instance).await?;
        }
        info!(
            created = plan.create.len(),
            updated = plan.update.len(),
            scheduled_for_deletion = plan.schedule_deletion.len(),
            workload_instance = refs.workload_instance,
            "gateway instance routes configured"
        );
        if gloo.ports_written {
            // Read the port list back on the next pass (a pass with nothing to write is Done).
            return Ok(Outcome::RequeueAfter(PORTS_RECHECK));
        }
        Ok(Outcome::Done)
    }
}

#[async_trait]
impl Reconciler for GatewayInstanceReconciler {
    type Object = GatewayInstance;

    async fn created(
        &self,
        ctx: &ReconcileContext,
        gi: GatewayInstance,
    ) -> Result<Outcome, ReconcileError> {
        self.converge(ctx, gi).await
    }

    async fn updated(
        &self,
        ctx: &ReconcileContext,
        gi: GatewayInstance,
    ) -> Result<Outcome, ReconcileError> {
        self.converge(ctx, gi).await
    }

    /// Schedule every WRI of the gateway on the user's workload for deletion and un-reconcile
    /// the workload (its Updated deletes the objects), then remove the attached reference.
    async fn deleted(
        &self,
        ctx: &ReconcileContext,
        gi: GatewayInstance,
    ) -> Result<Outcome, ReconcileError> {
        let api = ctx.api.as_ref();
        let refs = Refs::of(&gi, gi.common.id.unwrap_or(ctx.object_id))?;
        let by = refs.by();
        let gd: GatewayDefinition = match api.get_object(refs.definition).await {
            Ok(gd) => gd,
            // The API refuses to delete a definition with instances; gone anyway means there
            // is nothing left to recognise the gateway's WRIs by.
            Err(e) if e.is_not_found() => {
                info!(
                    gateway_definition = refs.definition,
                    "gateway definition gone; nothing to recognise its objects by"
                );
                remove_attached(
                    api,
                    refs.workload_instance,
                    &GATEWAY_INSTANCE.versioned_name(),
                    refs.id,
                )
                .await?;
                return Ok(Outcome::Done);
            }
            Err(e) => return Err(e.into()),
        };
        let dnd = match domain_name_of(api, &gd, &by).await {
            Ok(dnd) => dnd,
            Err(e) if e.class == RetryClass::Permanent => None,
            Err(e) => return Err(e),
        };
        let domain: GatewayDomain = gateway_domain(gd.sub_domain.as_deref(), dnd.as_ref());
        let service = ServiceRef {
            namespace: String::new(),
            name: String::new(),
        };
        let inputs = InstanceInputs {
            gateway_definition: gd.definition.name.as_deref().unwrap_or_default(),
            domain: &domain,
            sub_domain: gd.sub_domain.as_deref(),
            domain_name_definition: dnd.as_ref(),
            service: &service,
            gloo_namespace: "",
            route53_region: "",
        };
        let user_wris = wris_of(api, refs.workload_instance).await?;
        let plan = plan_wris(&user_wris, &[], &inputs);
        schedule_deletion(api, &plan.schedule_deletion).await?;
        if plan.needs_apply() {
            match unreconcile_workload(api, refs.workload_instance).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        remove_attached(
            api,
            refs.workload_instance,
            &GATEWAY_INSTANCE.versioned_name(),
            refs.id,
        )
        .await?;
        info!(
            scheduled_for_deletion = plan.schedule_deletion.len(),
            workload_instance = refs.workload_instance,
            "gateway instance routes removed"
        );
        Ok(Outcome::Done)
    }
}

#[cfg(test)]
mod tests;
