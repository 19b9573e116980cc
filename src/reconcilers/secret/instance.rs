//! SecretInstanceReconciler (spec 3.6): a secret definition brought into a workload by the
//! external-secrets operator. Once per runtime, the external-secrets support service is
//! deployed as a Threeport workload `external-secrets-<runtime>` (a support-services-operator
//! `ExternalSecrets` resource, with the EKS runtime's secrets-manager role); then a
//! `SecretStore` and an `ExternalSecret` named as the instance are added to the workload:
//! as WorkloadResourceInstances of a WorkloadInstance, or appended to a
//! HelmWorkloadInstance's `AdditionalResources` in its release namespace. The workload is
//! then un-reconciled so that its controller applies them.
//!
//! Unlike Threeport's reconciler: the support workload is found by name before it is made
//! (Go fails with "already exists" forever once its runtime PATCH failed), and the objects are
//! added once (Go adds duplicates on every retry). Deletion removes what was added.

use async_trait::async_trait;
use serde_json::{json, Value};
use tracing::info;

use crate::engine::{Outcome, ReconcileContext, ReconcileError, Reconciler};
use crate::reconcilers::user_workload::{
    ensure_attached_to, remove_attached_from, schedule_deletion, unreconcile_workload, wris_of,
};
use crate::threeport::location::aws_region_for_location;
use crate::threeport::models::{
    AwsEksKubernetesRuntimeInstance, Filter, HelmWorkloadInstance, KubernetesRuntimeDefinition,
    KubernetesRuntimeInstance, Patch, Reconciliation, SecretDefinition, SecretInstance, TypedApi,
    WorkloadDefinition, WorkloadInstance, WorkloadResourceInstance, HELM_WORKLOAD_INSTANCE,
    WORKLOAD_INSTANCE,
};
use crate::threeport::ObjectType;

const ATTACHED_TYPE: &str = "v0.SecretInstance";
const EXTERNAL_SECRETS_API: &str = "external-secrets.io/v1beta1";

/// The workload a secret instance serves.
enum Target {
    Workload(WorkloadInstance),
    Helm(HelmWorkloadInstance),
}

impl Target {
    fn object_type(&self) -> ObjectType {
        match self {
            Target::Workload(_) => WORKLOAD_INSTANCE,
            Target::Helm(_) => HELM_WORKLOAD_INSTANCE,
        }
    }

    fn id(&self) -> u64 {
        match self {
            Target::Workload(w) => w.common.id.unwrap_or_default(),
            Target::Helm(h) => h.common.id.unwrap_or_default(),
        }
    }

    fn reconciled(&self) -> bool {
        match self {
            Target::Workload(w) => w.reconciliation.reconciled == Some(true),
            Target::Helm(h) => h.reconciliation.reconciled == Some(true),
        }
    }
}

/// Reconciles secret instances.
pub struct SecretInstanceReconciler;

async fn target(ctx: &ReconcileContext, si: &SecretInstance) -> Result<Target, ReconcileError> {
    if let Some(id) = si.workload_instance_id.filter(|id| *id != 0) {
        return Ok(Target::Workload(ctx.api.get_object(id).await?));
    }
    if let Some(id) = si.helm_workload_instance_id.filter(|id| *id != 0) {
        return Ok(Target::Helm(ctx.api.get_object(id).await?));
    }
    Err(ReconcileError::permanent(
        "secret instance must be attached to a workload instance or a helm workload instance",
    ))
}

/// The SecretStore and ExternalSecret of instance `name` for secret `secret` in `region`.
pub fn manifests(name: &str, secret: &str, region: &str, namespace: Option<&str>) -> [Value; 2] {
    let mut store = json!({
        "apiVersion": EXTERNAL_SECRETS_API,
        "kind": "SecretStore",
        "metadata": {"name": name},
        "spec": {"provider": {"aws": {"service": "SecretsManager", "region": region}}}
    });
    let mut external = json!({
        "apiVersion": EXTERNAL_SECRETS_API,
        "kind": "ExternalSecret",
        "metadata": {"name": name},
        "spec": {
            "refreshInterval": "1h",
            "secretStoreRef": {"name": name, "kind": "SecretStore"},
            "target": {"name": name, "creationPolicy": "Owner"},
            "dataFrom": [{"extract": {"key": secret}}]
        }
    });
    if let Some(ns) = namespace {
        store["metadata"]["namespace"] = json!(ns);
        external["metadata"]["namespace"] = json!(ns);
    }
    [store, external]
}

/// Whether `a` is the same object (kind and name) as `b`.
fn same_object(a: &Value, b: &Value) -> bool {
    a["kind"] == b["kind"] && a["metadata"]["name"] == b["metadata"]["name"]
}

/// The support-services-operator resource that deploys external-secrets.
fn external_secrets_yaml(role_arn: &str) -> String {
    let doc = json!({
        "apiVersion": "secrets.support-services.nukleros.io/v1alpha1",
        "kind": "ExternalSecrets",
        "metadata": {"name": "externalsecrets"},
        "spec": {
            "certController": {"replicas": 1},
            "controller": {"replicas": 1},
            "iamRoleArn": role_arn,
            "image": "ghcr.io/external-secrets/external-secrets",
            "namespace": "nukleros-secrets-system",
            "version": "v0.9.11",
            "webhook": {"replicas": 1}
        }
    });
    serde_yaml_ng::to_string(&doc).expect("YAML")
}

/// The external-secrets support workload of the runtime: the recorded one (which must be
/// deployed: "secret controller not reconciled" is retried, as in Go), else found by name,
/// else made; recorded on the runtime. A workload just recorded is not waited for (as in Go:
/// the workload controller applies the secret objects once their CRDs exist).
async fn ensure_external_secrets(
    ctx: &ReconcileContext,
    kri: &KubernetesRuntimeInstance,
    krd: &KubernetesRuntimeDefinition,
) -> Result<(), ReconcileError> {
    if let Some(id) = kri.secrets_controller_instance_id.filter(|id| *id != 0) {
        match ctx.api.get_object::<WorkloadInstance>(id).await {
            Ok(wi) if wi.reconciliation.reconciled == Some(true) => return Ok(()),
            Ok(_) => {
                return Err(ReconcileError::transient(
                    "secret controller not reconciled",
                ))
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    let kri_id = kri.common.id.unwrap_or_default();
    let runtime = kri.instance.name.clone().unwrap_or_default();
    let name = format!("external-secrets-{runtime}");
    let role_arn = if krd.infra_provider.as_deref() == Some("eks") {
        let eks: Vec<AwsEksKubernetesRuntimeInstance> = ctx
            .api
            .list_objects(&[Filter::eq("KubernetesRuntimeInstanceID", kri_id)])
            .await?;
        eks.first()
            .and_then(|e| e.resource_inventory.as_ref())
            .and_then(|inv| inv["secretsManagerRole"]["roleArn"].as_str())
            .filter(|arn| !arn.is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                ReconcileError::transient(format!(
                    "the EKS runtime {runtime} has no secrets-manager role yet"
                ))
            })?
    } else {
        // Threeport's value for runtimes without IAM (kind).
        "testIamRoleArn".to_string()
    };
    let definitions: Vec<WorkloadDefinition> =
        ctx.api.list_objects(&[Filter::eq("Name", &name)]).await?;
    let definition_id = match definitions.first().and_then(|d| d.common.id) {
        Some(id) => id,
        None => ctx
            .api
            .create_object(&WorkloadDefinition {
                definition: crate::threeport::models::Definition {
                    name: Some(name.clone()),
                    ..Default::default()
                },
                yaml_document: Some(external_secrets_yaml(&role_arn)),
                ..Default::default()
            })
            .await?
            .common
            .id
            .ok_or_else(|| ReconcileError::transient("the new WorkloadDefinition has no ID"))?,
    };
    let instances: Vec<WorkloadInstance> = ctx
        .api
        .list_objects(&[
            Filter::eq("Name", &name),
            Filter::eq("KubernetesRuntimeInstanceID", kri_id),
        ])
        .await?;
    let wi = match instances.into_iter().next() {
        Some(wi) => wi,
        None => {
            ctx.api
                .create_object(&WorkloadInstance {
                    instance: crate::threeport::models::Instance {
                        name: Some(name.clone()),
                        ..Default::default()
                    },
                    workload_definition_id: Some(definition_id),
                    kubernetes_runtime_instance_id: Some(kri_id),
                    ..Default::default()
                })
                .await?
        }
    };
    let change = KubernetesRuntimeInstance {
        secrets_controller_instance_id: wi.common.id,
        ..Default::default()
    };
    ctx.api
        .patch_object::<KubernetesRuntimeInstance>(kri_id, Patch::Changes(&change))
        .await?;
    info!(workload = %name, "external-secrets support workload recorded on the runtime");
    Ok(())
}

/// Add the objects to the workload (once), and un-reconcile it (every time: a retry after a
/// failed un-reconcile must not leave objects the workload controller never applies).
/// Whether anything was added.
async fn add_objects(
    ctx: &ReconcileContext,
    target: &Target,
    objects: [Value; 2],
) -> Result<bool, ReconcileError> {
    match target {
        Target::Workload(wi) => {
            let wi_id = wi.common.id.unwrap_or_default();
            let wris = wris_of(&*ctx.api, wi_id).await?;
            let mut added = false;
            for object in objects {
                let present = wris.iter().any(|w| {
                    w.scheduled_for_deletion.is_none()
                        && w.json_definition
                            .as_ref()
                            .is_some_and(|d| same_object(d, &object))
                });
                if !present {
                    ctx.api
                        .create_object(&WorkloadResourceInstance {
                            json_definition: Some(object),
                            workload_instance_id: Some(wi_id),
                            ..Default::default()
                        })
                        .await?;
                    added = true;
                }
            }
            unreconcile_workload(&*ctx.api, wi_id).await?;
            Ok(added)
        }
        Target::Helm(hwi) => {
            let mut resources = additional_resources(hwi);
            let before = resources.len();
            for object in objects {
                if !resources.iter().any(|r| same_object(r, &object)) {
                    resources.push(object);
                }
            }
            let added = resources.len() != before;
            patch_helm(ctx, hwi, resources).await?;
            Ok(added)
        }
    }
}

fn additional_resources(hwi: &HelmWorkloadInstance) -> Vec<Value> {
    match &hwi.additional_resources {
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    }
}

async fn patch_helm(
    ctx: &ReconcileContext,
    hwi: &HelmWorkloadInstance,
    resources: Vec<Value>,
) -> Result<(), ReconcileError> {
    let change = HelmWorkloadInstance {
        additional_resources: Some(Value::Array(resources)),
        reconciliation: Reconciliation {
            reconciled: Some(false),
            ..Default::default()
        },
        ..Default::default()
    };
    ctx.api
        .patch_object::<HelmWorkloadInstance>(
            hwi.common.id.unwrap_or_default(),
            Patch::Changes(&change),
        )
        .await?;
    Ok(())
}

#[async_trait]
impl Reconciler for SecretInstanceReconciler {
    type Object = SecretInstance;

    async fn created(
        &self,
        ctx: &ReconcileContext,
        si: Self::Object,
    ) -> Result<Outcome, ReconcileError> {
        let name = si
            .instance
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ReconcileError::permanent("the instance has no Name"))?;
        let kri: KubernetesRuntimeInstance = ctx
            .api
            .get_object(si.kubernetes_runtime_instance_id.ok_or_else(|| {
                ReconcileError::permanent("the instance has no KubernetesRuntimeInstanceID")
            })?)
            .await?;
        let krd: KubernetesRuntimeDefinition = ctx
            .api
            .get_object(kri.kubernetes_runtime_definition_id.unwrap_or_default())
            .await?;
        let definition: SecretDefinition = ctx
            .api
            .get_object(si.secret_definition_id.ok_or_else(|| {
                ReconcileError::permanent("the instance has no SecretDefinitionID")
            })?)
            .await?;
        let target = target(ctx, &si).await?;
        if definition.reconciliation.reconciled != Some(true) {
            return Err(ReconcileError::transient(
                "secret definition not reconciled",
            ));
        }
        if !target.reconciled() {
            return Err(ReconcileError::transient(match target {
                Target::Workload(_) => "workload instance not reconciled",
                Target::Helm(_) => "helm workload instance not reconciled",
            }));
        }
        ensure_external_secrets(ctx, &kri, &krd).await?;
        ensure_attached_to(
            &*ctx.api,
            target.object_type(),
            target.id(),
            ATTACHED_TYPE,
            ctx.object_id,
        )
        .await?;
        let location = kri.location.as_deref().unwrap_or_default();
        let region = aws_region_for_location(location).ok_or_else(|| {
            ReconcileError::permanent(format!(
                "the runtime's Location {location:?} maps to no AWS region"
            ))
        })?;
        let secret = definition.definition.name.clone().unwrap_or_default();
        let namespace = match &target {
            Target::Workload(_) => None,
            Target::Helm(hwi) => Some(
                hwi.release_namespace
                    .clone()
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| {
                        ReconcileError::transient(
                            "the helm workload instance has no ReleaseNamespace yet",
                        )
                    })?,
            ),
        };
        if add_objects(
            ctx,
            &target,
            manifests(&name, &secret, region, namespace.as_deref()),
        )
        .await?
        {
            info!(secret = %secret, instance = %name, "external secret objects added to the workload");
        }
        Ok(Outcome::Done)
    }

    /// Nothing changes on update (as Go).
    async fn updated(
        &self,
        _ctx: &ReconcileContext,
        _si: Self::Object,
    ) -> Result<Outcome, ReconcileError> {
        Ok(Outcome::Done)
    }

    async fn deleted(
        &self,
        ctx: &ReconcileContext,
        si: Self::Object,
    ) -> Result<Outcome, ReconcileError> {
        let name = si.instance.name.clone().unwrap_or_default();
        let target = match target(ctx, &si).await {
            Ok(t) => t,
            Err(e)
                if e.cause::<crate::threeport::ApiError>()
                    .is_some_and(|a| a.is_not_found()) =>
            {
                return Ok(Outcome::Done)
            }
            Err(e) => return Err(e),
        };
        let ours = manifests(&name, "", "", None);
        match &target {
            Target::Workload(wi) => {
                let wi_id = wi.common.id.unwrap_or_default();
                let doomed: Vec<u64> = wris_of(&*ctx.api, wi_id)
                    .await?
                    .into_iter()
                    .filter(|w| w.scheduled_for_deletion.is_none())
                    .filter(|w| {
                        w.json_definition
                            .as_ref()
                            .is_some_and(|d| ours.iter().any(|o| same_object(d, o)))
                    })
                    .filter_map(|w| w.common.id)
                    .collect();
                if !doomed.is_empty() {
                    schedule_deletion(&*ctx.api, &doomed).await?;
                    unreconcile_workload(&*ctx.api, wi_id).await?;
                }
            }
            Target::Helm(hwi) => {
                let resources = additional_resources(hwi);
                let kept: Vec<Value> = resources
                    .iter()
                    .filter(|r| !ours.iter().any(|o| same_object(r, o)))
                    .cloned()
                    .collect();
                if kept.len() != resources.len() {
                    patch_helm(ctx, hwi, kept).await?;
                }
            }
        }
        remove_attached_from(
            &*ctx.api,
            target.object_type(),
            target.id(),
            ATTACHED_TYPE,
            ctx.object_id,
        )
        .await?;
        Ok(Outcome::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_threeports() {
        let [store, external] = manifests("db-creds", "db", "us-east-1", None);
        assert_eq!(
            store,
            json!({"apiVersion": "external-secrets.io/v1beta1", "kind": "SecretStore",
                   "metadata": {"name": "db-creds"},
                   "spec": {"provider": {"aws": {"service": "SecretsManager", "region": "us-east-1"}}}})
        );
        assert_eq!(
            external["spec"]["dataFrom"],
            json!([{"extract": {"key": "db"}}])
        );
        assert_eq!(
            external["spec"]["target"],
            json!({"name": "db-creds", "creationPolicy": "Owner"})
        );
        let [store, _] = manifests("db-creds", "db", "us-east-1", Some("rel"));
        assert_eq!(store["metadata"]["namespace"], "rel");
        assert!(external_secrets_yaml("arn:r").contains("iamRoleArn: arn:r"));
    }
}
