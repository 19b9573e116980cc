//! AwsObjectStorageBucketInstanceReconciler (spec 3.6): an S3 bucket for a workload on an EKS
//! runtime ([`crate::aws::s3`]), and the workload's access to it: its service account gets
//! the bucket role (`eks.amazonaws.com/role-arn`), a ConfigMap carries the bucket's name, and
//! every container of the workload reads it from the definition's environment variable.
//!
//! Unlike Threeport's reconciler: names are drawn once and recorded, so a retry makes no
//! second bucket; the workload changes are made once (no duplicate env entries, ConfigMap
//! named from the instance's ID rather than a fresh random suffix each time); the bucket is
//! emptied before it is deleted; no 30 s and 60 s polls inside the reconcile. Running pods
//! are not deleted (Go deletes bare `Pod`s so they come back with the variable); Deployments
//! and the other controllers roll out the change themselves.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tracing::info;

use super::{aws_session, inventory_of, progress_event, workload_runtime};
use crate::aws::eks::{Progress, Tags};
use crate::aws::s3::{self, next_step, S3Inventory, S3Spec, S3Step};
use crate::aws::{AwsSessions, Inventory};
use crate::engine::{Outcome, ReconcileContext, ReconcileError, Reconciler};
use crate::reconcilers::user_workload::{
    ensure_attached, remove_attached, unreconcile_workload, workload_namespace, wris_of,
};
use crate::threeport::models::{
    AwsObjectStorageBucketDefinition, AwsObjectStorageBucketInstance, Patch, Reconciliation,
    TypedApi, WorkloadResourceInstance,
};

const ATTACHED_TYPE: &str = "v0.AwsObjectStorageBucketInstance";
/// The ConfigMap key holding the bucket's name.
const BUCKET_NAME_KEY: &str = "s3BucketName";
/// The service-account annotation of IRSA.
const ROLE_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
/// Kinds whose containers get the bucket's environment variable.
const POD_KINDS: [&str; 6] = [
    "Pod",
    "Job",
    "ReplicaSet",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
];

/// Reconciles S3 bucket instances.
pub struct AwsObjectStorageBucketInstanceReconciler {
    sessions: Arc<AwsSessions>,
}

impl AwsObjectStorageBucketInstanceReconciler {
    /// Builds buckets with sessions from `sessions`.
    pub fn new(sessions: Arc<AwsSessions>) -> Self {
        Self { sessions }
    }

    async fn build(
        &self,
        ctx: &ReconcileContext,
        instance: AwsObjectStorageBucketInstance,
    ) -> Result<Outcome, ReconcileError> {
        if instance.reconciliation.creation_confirmed.is_some()
            || instance.reconciliation.interrupt_reconciliation == Some(true)
        {
            return Ok(Outcome::Done);
        }
        let name = instance
            .instance
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ReconcileError::permanent("the instance has no Name"))?;
        let wi_id = instance
            .workload_instance_id
            .ok_or_else(|| ReconcileError::permanent("the instance has no WorkloadInstanceID"))?;
        ensure_attached(&*ctx.api, wi_id, ATTACHED_TYPE, ctx.object_id).await?;
        let definition: AwsObjectStorageBucketDefinition = ctx
            .api
            .get_object(
                instance
                    .aws_object_storage_bucket_definition_id
                    .ok_or_else(|| {
                        ReconcileError::permanent(
                            "the instance has no AwsObjectStorageBucketDefinitionID",
                        )
                    })?,
            )
            .await?;
        let service_account = definition
            .workload_service_account_name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                ReconcileError::permanent("the definition has no WorkloadServiceAccountName")
            })?;
        let env_var = definition
            .workload_bucket_env_var
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                ReconcileError::permanent("the definition has no WorkloadBucketEnvVar")
            })?;
        let runtime = workload_runtime(ctx, wi_id).await?;
        let wris = wris_of(&*ctx.api, wi_id).await?;
        let namespace = workload_namespace(&wris)?;
        if find_kind(&wris, "ServiceAccount", &service_account).is_none() {
            return Err(ReconcileError::permanent(format!(
                "no service account found with name {service_account}"
            )));
        }
        let account_id = definition
            .aws_account_id
            .ok_or_else(|| ReconcileError::permanent("the definition has no AwsAccountID"))?;
        let session = aws_session(
            ctx.api.as_ref(),
            &self.sessions,
            account_id,
            runtime.eks.region.as_deref(),
        )
        .await?;
        let spec = S3Spec {
            vpc_id: runtime.inventory.vpc_id.clone(),
            public_read: definition.public_read_access.unwrap_or(false),
            service_account: (service_account.clone(), namespace.clone()),
            oidc_issuer: runtime.inventory.cluster.oidc_provider_url.clone(),
        };
        let tags = Tags { name };
        let mut inventory = inventory_of(instance.resource_inventory.as_ref())?;
        loop {
            let next = next_step(&inventory);
            if next == S3Step::Complete {
                break;
            }
            let before = inventory.clone();
            let result = s3::step(&session, &tags, &spec, next, &mut inventory).await;
            if inventory != before {
                record(ctx, Reconciliation::marked_reconciled(), Some(&inventory)).await?;
            }
            match result? {
                Progress::Advanced => {
                    info!(step = ?next, bucket = %inventory.bucket_name, "S3 step done");
                }
                Progress::Waiting(what) => {
                    progress_event(ctx, &format!("waiting for {what}")).await;
                    return Ok(Outcome::RequeueAfter(
                        self.sessions.settings().poll_interval,
                    ));
                }
            }
        }
        let role_arn = format!(
            "arn:aws:iam::{}:role/{}",
            session.account_id, inventory.role.role_name
        );
        let workload_name = runtime.workload.instance.name.clone().unwrap_or_default();
        let config_map = format!("{workload_name}-s3-config-{}", short_id(ctx.object_id));
        let changed = connect_workload(
            ctx,
            wi_id,
            &wris,
            Connection {
                service_account: &service_account,
                role_arn: &role_arn,
                namespace: &namespace,
                config_map: &config_map,
                bucket: &inventory.bucket_name,
                env_var: &env_var,
            },
        )
        .await?;
        if changed {
            info!(bucket = %inventory.bucket_name, "workload given access to the bucket");
        }
        // Every time (not only when something changed): a retry after a failed un-reconcile
        // must not leave changes the workload controller never applies.
        unreconcile_workload(&*ctx.api, wi_id).await?;
        record(
            ctx,
            Reconciliation {
                creation_confirmed: Some(OffsetDateTime::now_utc()),
                ..Reconciliation::marked_reconciled()
            },
            None,
        )
        .await?;
        Ok(Outcome::Done)
    }

    async fn tear_down(
        &self,
        ctx: &ReconcileContext,
        instance: AwsObjectStorageBucketInstance,
    ) -> Result<Outcome, ReconcileError> {
        if instance.reconciliation.deletion_confirmed.is_some() {
            return Ok(Outcome::Done);
        }
        let mut inventory: S3Inventory = inventory_of(instance.resource_inventory.as_ref())?;
        let anything_built = !inventory.access_point_name.is_empty()
            || !inventory.bucket_name.is_empty()
            || !inventory.policy_arn.is_empty()
            || !inventory.role.role_name.is_empty();
        if anything_built {
            let definition: AwsObjectStorageBucketDefinition = ctx
                .api
                .get_object(
                    instance
                        .aws_object_storage_bucket_definition_id
                        .unwrap_or_default(),
                )
                .await?;
            let account_id = definition
                .aws_account_id
                .ok_or_else(|| ReconcileError::permanent("the definition has no AwsAccountID"))?;
            let region = Some(inventory.region.clone()).filter(|r| !r.is_empty());
            let session = aws_session(
                ctx.api.as_ref(),
                &self.sessions,
                account_id,
                region.as_deref(),
            )
            .await?;
            let before = inventory.clone();
            let result = s3::delete_all(&session, &mut inventory).await;
            if inventory != before {
                record(ctx, Reconciliation::marked_reconciled(), Some(&inventory)).await?;
            }
            result?;
        }
        if let Some(wi_id) = instance.workload_instance_id {
            remove_attached(&*ctx.api, wi_id, ATTACHED_TYPE, ctx.object_id).await?;
        }
        Ok(Outcome::Done)
    }
}

/// What the workload is given.
struct Connection<'a> {
    service_account: &'a str,
    role_arn: &'a str,
    namespace: &'a str,
    config_map: &'a str,
    bucket: &'a str,
    env_var: &'a str,
}

/// Annotate the service account, add the ConfigMap, and give every container the variable;
/// whatever is already so is left alone. Whether anything changed.
async fn connect_workload(
    ctx: &ReconcileContext,
    wi_id: u64,
    wris: &[WorkloadResourceInstance],
    c: Connection<'_>,
) -> Result<bool, ReconcileError> {
    let mut changed = false;
    for wri in wris.iter().filter(|w| w.scheduled_for_deletion.is_none()) {
        let (Some(id), Some(definition)) = (wri.common.id, wri.json_definition.as_ref()) else {
            continue;
        };
        let mut updated = definition.clone();
        let kind = definition["kind"].as_str().unwrap_or_default();
        let touched =
            if kind == "ServiceAccount" && definition["metadata"]["name"] == c.service_account {
                annotate_role(&mut updated, c.role_arn)
            } else if POD_KINDS.contains(&kind) {
                add_env(&mut updated, kind, c.env_var, c.config_map)
            } else {
                false
            };
        if touched {
            let change = WorkloadResourceInstance {
                json_definition: Some(updated),
                reconciled: Some(false),
                ..Default::default()
            };
            ctx.api
                .patch_object::<WorkloadResourceInstance>(id, Patch::Changes(&change))
                .await?;
            changed = true;
        }
    }
    if find_kind(wris, "ConfigMap", c.config_map).is_none() {
        ctx.api
            .create_object(&WorkloadResourceInstance {
                json_definition: Some(json!({
                    "kind": "ConfigMap",
                    "apiVersion": "v1",
                    "metadata": {"name": c.config_map, "namespace": c.namespace, "creationTimestamp": null},
                    "data": {BUCKET_NAME_KEY: c.bucket}
                })),
                workload_instance_id: Some(wi_id),
                ..Default::default()
            })
            .await?;
        changed = true;
    }
    Ok(changed)
}

fn find_kind<'a>(
    wris: &'a [WorkloadResourceInstance],
    kind: &str,
    name: &str,
) -> Option<&'a WorkloadResourceInstance> {
    wris.iter().find(|w| {
        w.scheduled_for_deletion.is_none()
            && w.json_definition
                .as_ref()
                .is_some_and(|d| d["kind"] == kind && d["metadata"]["name"] == name)
    })
}

/// Set the IRSA annotation; whether it changed.
fn annotate_role(service_account: &mut Value, role_arn: &str) -> bool {
    let metadata = &mut service_account["metadata"];
    if metadata["annotations"][ROLE_ANNOTATION] == role_arn {
        return false;
    }
    if !metadata["annotations"].is_object() {
        metadata["annotations"] = json!({});
    }
    metadata["annotations"][ROLE_ANNOTATION] = json!(role_arn);
    true
}

/// Give every container of a pod or pod template the variable from the ConfigMap (unless
/// it has one of that name); whether anything changed.
fn add_env(object: &mut Value, kind: &str, env_var: &str, config_map: &str) -> bool {
    let containers = if kind == "Pod" {
        object.pointer_mut("/spec/containers")
    } else {
        object.pointer_mut("/spec/template/spec/containers")
    };
    let Some(Value::Array(containers)) = containers else {
        return false;
    };
    let wanted = json!({
        "name": env_var,
        "valueFrom": {"configMapKeyRef": {"name": config_map, "key": BUCKET_NAME_KEY}}
    });
    let mut changed = false;
    for container in containers.iter_mut().filter(|c| c.is_object()) {
        if !container["env"].is_array() {
            container["env"] = json!([]);
        }
        let Some(env) = container["env"].as_array_mut() else {
            continue;
        };
        match env.iter_mut().find(|e| e["name"] == env_var) {
            // Pointing at another ConfigMap (an earlier bucket instance's): this bucket now.
            Some(entry) if *entry != wanted => {
                *entry = wanted.clone();
                changed = true;
            }
            Some(_) => {}
            None => {
                env.push(wanted.clone());
                changed = true;
            }
        }
    }
    changed
}

/// Six hex characters that tell instances apart (the ConfigMap's suffix).
fn short_id(id: u64) -> String {
    let digest = Sha256::digest(id.to_string().as_bytes());
    digest.iter().take(3).map(|b| format!("{b:02x}")).collect()
}

async fn record(
    ctx: &ReconcileContext,
    reconciliation: Reconciliation,
    inventory: Option<&S3Inventory>,
) -> Result<(), ReconcileError> {
    let change = AwsObjectStorageBucketInstance {
        resource_inventory: inventory.map(S3Inventory::to_value),
        reconciliation,
        ..Default::default()
    };
    ctx.api
        .patch_object::<AwsObjectStorageBucketInstance>(ctx.object_id, Patch::Changes(&change))
        .await?;
    Ok(())
}

#[async_trait]
impl Reconciler for AwsObjectStorageBucketInstanceReconciler {
    type Object = AwsObjectStorageBucketInstance;

    async fn created(
        &self,
        ctx: &ReconcileContext,
        object: Self::Object,
    ) -> Result<Outcome, ReconcileError> {
        self.build(ctx, object).await
    }

    /// Resumes an unfinished build; a confirmed bucket has nothing to change (as Go).
    async fn updated(
        &self,
        ctx: &ReconcileContext,
        object: Self::Object,
    ) -> Result<Outcome, ReconcileError> {
        self.build(ctx, object).await
    }

    async fn deleted(
        &self,
        ctx: &ReconcileContext,
        object: Self::Object,
    ) -> Result<Outcome, ReconcileError> {
        self.tear_down(ctx, object).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_changes_are_made_once() {
        let mut sa = json!({"kind": "ServiceAccount", "metadata": {"name": "app"}});
        assert!(annotate_role(&mut sa, "arn:aws:iam::1:role/app-x"));
        assert!(!annotate_role(&mut sa, "arn:aws:iam::1:role/app-x"));
        assert_eq!(
            sa["metadata"]["annotations"][ROLE_ANNOTATION],
            "arn:aws:iam::1:role/app-x"
        );

        let mut deploy = json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [
            {"name": "a"}, {"name": "b", "env": [{"name": "OTHER", "value": "1"}]}
        ]}}}});
        assert!(add_env(
            &mut deploy,
            "Deployment",
            "BUCKET",
            "web-s3-config-abc123"
        ));
        assert!(!add_env(
            &mut deploy,
            "Deployment",
            "BUCKET",
            "web-s3-config-abc123"
        ));
        let containers = deploy["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        for c in containers {
            let env = c["env"].as_array().unwrap();
            assert_eq!(env.iter().filter(|e| e["name"] == "BUCKET").count(), 1);
        }
        assert_eq!(containers[1]["env"][0]["name"], "OTHER");
        let mut pod = json!({"kind": "Pod", "spec": {"containers": [{"name": "a"}]}});
        assert!(add_env(&mut pod, "Pod", "BUCKET", "cm"));
        assert_eq!(
            pod["spec"]["containers"][0]["env"][0]["valueFrom"]["configMapKeyRef"],
            json!({"name": "cm", "key": "s3BucketName"})
        );
        // A variable left by an earlier bucket instance now names this one's ConfigMap.
        let mut stale = json!({"kind": "Pod", "spec": {"containers": [{"name": "a", "env": [
            {"name": "BUCKET", "valueFrom": {"configMapKeyRef": {"name": "old-cm", "key": "s3BucketName"}}}
        ]}, "not a container"]}});
        assert!(add_env(&mut stale, "Pod", "BUCKET", "new-cm"));
        assert_eq!(
            stale["spec"]["containers"][0]["env"][0]["valueFrom"]["configMapKeyRef"]["name"],
            "new-cm"
        );
        assert_eq!(
            stale["spec"]["containers"][0]["env"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(short_id(42), short_id(42));
        assert_ne!(short_id(42), short_id(43));
        assert_eq!(short_id(42).len(), 6);
    }
}
