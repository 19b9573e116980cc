//! GatewayDefinitionReconciler (spec 3.3.1): a gateway definition compiles into the template
//! WorkloadDefinition `<gd>-gateway` (see [`super::manifests`]), which never gets an instance.
//!
//! Unlike Threeport's Go reconciler (spec 4.4): Created and Updated are one idempotent step
//! (the template is looked up by name before it is POSTed, so a retry adopts it instead of
//! meeting a 409 forever, and an Updated without `WorkloadDefinitionID` repairs it), only the
//! changed fields are PATCHed, and Deleted reports its failures instead of returning success.

use async_trait::async_trait;
use tracing::info;

use super::manifests::{
    gateway_domain, template_documents, template_workload_definition_name, yaml_stream,
    TemplateSettings,
};
use super::runtime_support::{referenced, required_id};
use crate::engine::{Outcome, ReconcileContext, ReconcileError, Reconciler};
use crate::threeport::api::ThreeportApi;
use crate::threeport::models::{
    Definition, DomainNameDefinition, Filter, GatewayDefinition, GatewayHttpPort, GatewayTcpPort,
    Patch, TypedApi, WorkloadDefinition,
};

/// A gateway definition's ports (`GatewayDefinitionID` filter; GET by ID does not return
/// them).
pub(super) async fn ports_of(
    api: &dyn ThreeportApi,
    gd_id: u64,
) -> Result<(Vec<GatewayHttpPort>, Vec<GatewayTcpPort>), ReconcileError> {
    let by_definition = [Filter::eq("GatewayDefinitionID", gd_id)];
    Ok((
        api.list_objects(&by_definition).await?,
        api.list_objects(&by_definition).await?,
    ))
}

/// A gateway definition's domain name definition, if it names one; a missing one is a
/// permanent error naming `by`.
pub(super) async fn domain_name_of(
    api: &dyn ThreeportApi,
    gd: &GatewayDefinition,
    by: &str,
) -> Result<Option<DomainNameDefinition>, ReconcileError> {
    match gd.domain_name_definition_id {
        Some(dnd_id) => Ok(Some(referenced(
            api.get_object(dnd_id).await,
            "domain name definition",
            dnd_id,
            by,
        )?)),
        None => Ok(None),
    }
}

/// Compiles gateway definitions into their template WorkloadDefinitions.
#[derive(Debug, Default, Clone)]
pub struct GatewayDefinitionReconciler {
    settings: TemplateSettings,
}

impl GatewayDefinitionReconciler {
    /// The reconciler, with the template values it writes (Threeport's by default).
    pub fn new(settings: TemplateSettings) -> Self {
        Self { settings }
    }

    /// The template's YAML document for `gd` (its ports and domain read from the API).
    async fn template_yaml(
        &self,
        api: &dyn ThreeportApi,
        id: u64,
        gd: &GatewayDefinition,
    ) -> Result<String, ReconcileError> {
        let (http, tcp) = ports_of(api, id).await?;
        let dnd = domain_name_of(api, gd, &format!("gateway definition {id}")).await?;
        let domain = gateway_domain(gd.sub_domain.as_deref(), dnd.as_ref());
        let name = gd.definition.name.as_deref().unwrap_or_default();
        let docs = template_documents(name, &domain, &http, &tcp, &self.settings)
            .map_err(|e| ReconcileError::permanent(e.to_string()))?;
        yaml_stream(&docs).map_err(|e| {
            ReconcileError::permanent(format!(
                "gateway definition {id}: cannot write the template as YAML: {e}"
            ))
        })
    }

    /// Create or bring up to date the template WorkloadDefinition, and record its ID on the
    /// gateway definition.
    async fn ensure_template(
        &self,
        ctx: &ReconcileContext,
        gd: GatewayDefinition,
    ) -> Result<Outcome, ReconcileError> {
        let api = ctx.api.as_ref();
        let id = gd.common.id.unwrap_or(ctx.object_id);
        let yaml = self.template_yaml(api, id, &gd).await?;
        let name =
            template_workload_definition_name(gd.definition.name.as_deref().unwrap_or_default());
        let existing: Vec<WorkloadDefinition> =
            api.list_objects(&[Filter::eq("Name", &name)]).await?;
        let wd_id = match existing.first() {
            Some(wd) => {
                let wd_id = required_id(wd.common.id, &name)?;
                if wd.yaml_document.as_deref() != Some(yaml.as_str()) {
                    let change = WorkloadDefinition {
                        yaml_document: Some(yaml),
                        ..Default::default()
                    };
                    api.patch_object(wd_id, Patch::Changes(&change)).await?;
                    info!(workload_definition = wd_id, "gateway template updated");
                }
                wd_id
            }
            None => {
                let created = api
                    .create_object(&WorkloadDefinition {
                        definition: Definition {
                            name: Some(name.clone()),
                            ..Default::default()
                        },
                        yaml_document: Some(yaml),
                        ..Default::default()
                    })
                    .await?;
                let wd_id = required_id(created.common.id, &name)?;
                info!(workload_definition = wd_id, "gateway template created");
                wd_id
            }
        };
        if gd.workload_definition_id != Some(wd_id) {
            let change = GatewayDefinition {
                workload_definition_id: Some(wd_id),
                ..Default::default()
            };
            api.patch_object(id, Patch::Changes(&change)).await?;
        }
        Ok(Outcome::Done)
    }
}

#[async_trait]
impl Reconciler for GatewayDefinitionReconciler {
    type Object = GatewayDefinition;

    async fn created(
        &self,
        ctx: &ReconcileContext,
        gd: GatewayDefinition,
    ) -> Result<Outcome, ReconcileError> {
        self.ensure_template(ctx, gd).await
    }

    /// The template follows the definition's ports and domain (Threeport PATCHes the template's
    /// YAML too; as there, existing instances pick the change up on their own next update).
    async fn updated(
        &self,
        ctx: &ReconcileContext,
        gd: GatewayDefinition,
    ) -> Result<Outcome, ReconcileError> {
        self.ensure_template(ctx, gd).await
    }

    /// Delete the template WorkloadDefinition (the workload controller then removes its WRDs)
    /// and the definition's ports; any failure is an error, retried.
    async fn deleted(
        &self,
        ctx: &ReconcileContext,
        gd: GatewayDefinition,
    ) -> Result<Outcome, ReconcileError> {
        let api = ctx.api.as_ref();
        let id = gd.common.id.unwrap_or(ctx.object_id);
        let template = match gd.workload_definition_id {
            Some(wd_id) => Some(wd_id),
            // Created but never recorded (a crash between the two): find it by name.
            None => {
                let name = template_workload_definition_name(
                    gd.definition.name.as_deref().unwrap_or_default(),
                );
                let found: Vec<WorkloadDefinition> =
                    api.list_objects(&[Filter::eq("Name", &name)]).await?;
                found.first().and_then(|wd| wd.common.id)
            }
        };
        if let Some(wd_id) = template {
            api.delete_object::<WorkloadDefinition>(wd_id).await?;
        }
        let by_definition = [Filter::eq("GatewayDefinitionID", id)];
        api.delete_objects_where::<GatewayHttpPort>(&by_definition)
            .await?;
        api.delete_objects_where::<GatewayTcpPort>(&by_definition)
            .await?;
        info!(template = ?template, "gateway definition cleaned up");
        Ok(Outcome::Done)
    }
}

#[cfg(test)]
mod tests;
