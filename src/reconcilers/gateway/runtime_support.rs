//! The support services a gateway needs on a runtime (gloo edge with cert-manager, and
//! external-dns): reading what the runtime is, and deploying them as ordinary workloads
//! (spec 3.3.2 step 3c, 3.3.3 step 3) without Threeport's 409 dead ends (spec 4.4 item 31).

use serde_json::Value;
use tracing::{debug, info};

use super::manifests::yaml_stream;
use super::support::InfraProvider;
use crate::engine::{Outcome, ReconcileContext, ReconcileError};
use crate::reconcilers::workload::definition_wait_delay;
use crate::threeport::api::ThreeportApi;
use crate::threeport::models::{
    AwsEksKubernetesRuntimeInstance, Definition, Filter, Instance, KubernetesRuntimeDefinition,
    KubernetesRuntimeInstance, Patch, TypedApi, WorkloadDefinition, WorkloadInstance,
    WorkloadResourceInstance,
};
use crate::threeport::ApiError;

/// A 404 of an object another one names: permanent (nothing will make it appear), with both
/// IDs in the message; other errors keep their class.
pub fn referenced<T>(
    result: Result<T, ApiError>,
    what: &str,
    id: u64,
    by: &str,
) -> Result<T, ReconcileError> {
    result.map_err(|e| {
        if e.is_not_found() {
            ReconcileError::permanent(format!("{by}: its {what} {id} does not exist"))
        } else {
            e.into()
        }
    })
}

/// The runtime's infrastructure provider, from its KubernetesRuntimeDefinition; on `eks`
/// with the IAM role ARNs the AWS controller recorded in the EKS instance's inventory.
pub async fn infra_provider(
    api: &dyn ThreeportApi,
    kri_id: u64,
    kri: &KubernetesRuntimeInstance,
) -> Result<InfraProvider, ReconcileError> {
    let by = format!("kubernetes runtime instance {kri_id}");
    let krd_id = kri.kubernetes_runtime_definition_id.ok_or_else(|| {
        ReconcileError::permanent(format!("{by} has no KubernetesRuntimeDefinitionID"))
    })?;
    let krd: KubernetesRuntimeDefinition = referenced(
        api.get_object(krd_id).await,
        "kubernetes runtime definition",
        krd_id,
        &by,
    )?;
    match krd.infra_provider.as_deref().unwrap_or_default() {
        "kind" => Ok(InfraProvider::Kind),
        "eks" => {
            let eks: Vec<AwsEksKubernetesRuntimeInstance> = api
                .list_objects(&[Filter::eq("KubernetesRuntimeInstanceID", kri_id)])
                .await?;
            let inventory = eks.first().and_then(|e| e.resource_inventory.as_ref());
            let role = |key: &str| {
                inventory
                    .and_then(|i| i[key]["roleArn"].as_str())
                    .filter(|arn| !arn.is_empty())
                    .map(str::to_string)
            };
            match (role("dns01ChallengeRole"), role("dnsManagementRole")) {
                (Some(dns01_challenge_role_arn), Some(dns_management_role_arn)) => {
                    Ok(InfraProvider::Eks {
                        dns01_challenge_role_arn,
                        dns_management_role_arn,
                    })
                }
                // The AWS controller writes the inventory while it provisions the cluster.
                _ => Err(ReconcileError::transient(format!(
                    "{by}: its EKS resource inventory has no DNS IAM roles yet"
                ))),
            }
        }
        other => Ok(InfraProvider::Other(other.to_string())),
    }
}

/// Deploy the support workload `name` on runtime `kri_id` from `docs` and record its instance
/// on the runtime with `record` (the field it fills: `GatewayWorkloadInstanceID`,
/// `DnsControllerInstanceId`); returns the instance's ID. What an earlier attempt (or
/// Threeport's Go controller) created is adopted: the definition and instance are looked up
/// by name (and runtime) before they are POSTed.
pub async fn deploy_support_workload(
    api: &dyn ThreeportApi,
    kri_id: u64,
    name: &str,
    docs: &[Value],
    record: impl FnOnce(&mut KubernetesRuntimeInstance, u64),
) -> Result<u64, ReconcileError> {
    let yaml = yaml_stream(docs).map_err(|e| {
        ReconcileError::permanent(format!(
            "support workload {name}: cannot write its YAML: {e}"
        ))
    })?;
    let wi = ensure_support_workload(api, name, yaml, kri_id).await?;
    record_on_runtime(api, kri_id, |k| record(k, wi)).await?;
    info!(
        workload_instance = wi,
        runtime = kri_id,
        name,
        "support workload deployed"
    );
    Ok(wi)
}

/// Make sure the support workload `name` (a WorkloadDefinition and a WorkloadInstance of that
/// name on the runtime) exists, adopting what a failed earlier attempt (or Threeport's Go
/// controller) created, and return the instance's ID. An existing definition is left as it is.
async fn ensure_support_workload(
    api: &dyn ThreeportApi,
    name: &str,
    yaml: String,
    kri_id: u64,
) -> Result<u64, ReconcileError> {
    let by_name = [Filter::eq("Name", name)];
    let existing: Vec<WorkloadDefinition> = api.list_objects(&by_name).await?;
    let wd_id = match existing.first().and_then(|wd| wd.common.id) {
        Some(id) => id,
        None => {
            let wd = api
                .create_object(&WorkloadDefinition {
                    definition: Definition {
                        name: Some(name.to_string()),
                        ..Default::default()
                    },
                    yaml_document: Some(yaml),
                    ..Default::default()
                })
                .await?;
            info!(workload_definition = ?wd.common.id, name, "support workload definition created");
            required_id(wd.common.id, name)?
        }
    };
    let on_runtime = [
        Filter::eq("Name", name),
        Filter::eq("KubernetesRuntimeInstanceID", kri_id),
    ];
    let existing: Vec<WorkloadInstance> = api.list_objects(&on_runtime).await?;
    match existing.first().and_then(|wi| wi.common.id) {
        Some(id) => Ok(id),
        None => {
            let wi = api
                .create_object(&WorkloadInstance {
                    instance: Instance {
                        name: Some(name.to_string()),
                        ..Default::default()
                    },
                    kubernetes_runtime_instance_id: Some(kri_id),
                    workload_definition_id: Some(wd_id),
                    ..Default::default()
                })
                .await?;
            info!(workload_instance = ?wi.common.id, name, "support workload instance created");
            required_id(wi.common.id, name)
        }
    }
}

/// The ID of an object the API returned (`name` for the message); an object without one is
/// an API fault, retried.
pub fn required_id(id: Option<u64>, name: &str) -> Result<u64, ReconcileError> {
    id.ok_or_else(|| ReconcileError::transient(format!("the API returned {name} without an ID")))
}

/// Record a support workload instance on the runtime: PATCH only the field `set` fills
/// (Threeport writes back the whole runtime instance, spec 3.3.2 step 3c).
async fn record_on_runtime(
    api: &dyn ThreeportApi,
    kri_id: u64,
    set: impl FnOnce(&mut KubernetesRuntimeInstance),
) -> Result<(), ReconcileError> {
    let mut change = KubernetesRuntimeInstance::default();
    set(&mut change);
    api.patch_object(kri_id, Patch::Changes(&change)).await?;
    Ok(())
}

/// The support workload instance a runtime records (`GatewayWorkloadInstanceID`,
/// `DnsControllerInstanceId`), unless it is not recorded or no longer exists (an operator
/// deleted it): then it is deployed again.
pub async fn recorded_support_instance(
    api: &dyn ThreeportApi,
    recorded: Option<u64>,
) -> Result<Option<u64>, ReconcileError> {
    let Some(wi_id) = recorded else {
        return Ok(None);
    };
    match api.get_object::<WorkloadInstance>(wi_id).await {
        Ok(_) => Ok(Some(wi_id)),
        Err(e) if e.is_not_found() => {
            info!(
                workload_instance = wi_id,
                "the recorded support workload is gone; deploying it again"
            );
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The WorkloadInstance `wi_id`, which must be reconciled before the caller goes on: `Ok(None)`
/// while it is not (yet).
pub async fn reconciled_instance(
    api: &dyn ThreeportApi,
    wi_id: u64,
    by: &str,
) -> Result<Option<WorkloadInstance>, ReconcileError> {
    let wi: WorkloadInstance =
        referenced(api.get_object(wi_id).await, "workload instance", wi_id, by)?;
    Ok((wi.reconciliation.reconciled == Some(true)).then_some(wi))
}

/// The one live WRI of `kind` among `wris`, with its ID; an error naming the instance when
/// there is none or more than one.
pub fn unique_wri<'w>(
    wris: &'w [WorkloadResourceInstance],
    kind: &str,
    name: Option<&str>,
    wi_id: u64,
) -> Result<(u64, &'w Value), ReconcileError> {
    let found: Vec<(u64, &Value)> = wris
        .iter()
        .filter(|w| w.scheduled_for_deletion.is_none())
        .filter_map(|w| Some((w.common.id?, w.json_definition.as_ref()?)))
        .filter(|(_, d)| d["kind"] == kind)
        .filter(|(_, d)| name.is_none_or(|n| d["metadata"]["name"] == n))
        .collect();
    let what = match name {
        Some(n) => format!("{kind} named {n}"),
        None => kind.to_string(),
    };
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(ReconcileError::permanent(format!(
            "workload instance {wi_id} has no {what}"
        ))),
        more => Err(ReconcileError::permanent(format!(
            "workload instance {wi_id} has {} resources of kind {what}; name the one to use",
            more.len()
        ))),
    }
}

/// The namespace gloo runs in: `spec.namespace` of the GlooEdge resource of the gloo-edge
/// workload instance (where gloo's discovery creates the upstreams).
pub fn gloo_namespace(glooedge: &Value, wi_id: u64) -> Result<String, ReconcileError> {
    glooedge["spec"]["namespace"]
        .as_str()
        .filter(|ns| !ns.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            ReconcileError::permanent(format!(
                "the GlooEdge resource of workload instance {wi_id} has no spec.namespace"
            ))
        })
}

/// Deliveries a reconcile waits for another object in silence (requeues of 1 s, 2 s, 4 s ...
/// 30 s: about four minutes) before each further wait becomes a transient error, so that an
/// object that never gets ready (a gateway definition with a permanent error, a workload that
/// cannot be applied) shows up in events and metrics instead of requeueing unseen forever.
pub const SILENT_WAITS: u64 = 12;

/// Wait for `what`, which another reconcile produces: a requeue with the workload controller's
/// growing delay and no event, for the first [`SILENT_WAITS`] deliveries; then an error naming
/// it (retried with backoff).
pub fn wait_for(ctx: &ReconcileContext, what: &str) -> Result<Outcome, ReconcileError> {
    if ctx.attempt > SILENT_WAITS {
        return Err(ReconcileError::transient(format!(
            "still waiting for {what} to be reconciled"
        )));
    }
    let delay = definition_wait_delay(ctx.attempt);
    debug!(
        waiting_for = what,
        delay_ms = delay.as_millis() as u64,
        "waiting"
    );
    Ok(Outcome::RequeueAfter(delay))
}
