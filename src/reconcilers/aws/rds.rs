//! AwsRelationalDatabaseInstanceReconciler (spec 3.6): an RDS database in the VPC of the
//! workload's EKS runtime ([`crate::aws::rds`]), and a Secret with its connection details
//! (`db-endpoint`, `db-port`, `db-name`, `db-user`, `db-password`) added to the workload as a
//! WorkloadResourceInstance, which the workload controller then applies.
//!
//! Unlike Threeport's reconciler: the build is recorded step by step and resumed, never
//! blocked on for 15 minutes; the master password is drawn from the OS's randomness and set
//! on the database at the moment it is written to the Secret (a resumed build sets a new one,
//! so the Secret always matches; Go writes fresh credentials that the database never got);
//! the Secret is added once (Go adds a duplicate on every retry); the database listens on the
//! definition's port (Go leaves the engine's default while the Secret and the security group
//! say otherwise).

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use serde_json::{json, Value};
use time::OffsetDateTime;
use tracing::info;

use super::{aws_session, inventory_of, progress_event, random_string, workload_runtime};
use crate::aws::eks::{Progress, Tags};
use crate::aws::rds::{self, class_for, next_step, RdsInventory, RdsSpec, RdsStep};
use crate::aws::{AwsSession, AwsSessions, Inventory};
use crate::engine::{Outcome, ReconcileContext, ReconcileError, Reconciler};
use crate::reconcilers::user_workload::{
    ensure_attached, remove_attached, unreconcile_workload, workload_namespace, wris_of,
};
use crate::threeport::models::{
    AwsRelationalDatabaseDefinition, AwsRelationalDatabaseInstance, Patch, Reconciliation,
    TypedApi, WorkloadResourceInstance,
};

/// The attached-object type of these instances.
const ATTACHED_TYPE: &str = "v0.AwsRelationalDatabaseInstance";
const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
const LOWER_DIGITS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Reconciles RDS instances.
pub struct AwsRelationalDatabaseInstanceReconciler {
    sessions: Arc<AwsSessions>,
}

impl AwsRelationalDatabaseInstanceReconciler {
    /// Builds databases with sessions from `sessions`.
    pub fn new(sessions: Arc<AwsSessions>) -> Self {
        Self { sessions }
    }

    async fn build(
        &self,
        ctx: &ReconcileContext,
        instance: AwsRelationalDatabaseInstance,
    ) -> Result<Outcome, ReconcileError> {
        if instance.reconciliation.creation_confirmed.is_some() {
            return Ok(Outcome::Done);
        }
        let name = instance_name(&instance)?;
        let wi_id = instance
            .workload_instance_id
            .ok_or_else(|| ReconcileError::permanent("the instance has no WorkloadInstanceID"))?;
        ensure_attached(&*ctx.api, wi_id, ATTACHED_TYPE, ctx.object_id).await?;
        let definition: AwsRelationalDatabaseDefinition = ctx
            .api
            .get_object(
                instance
                    .aws_relational_database_definition_id
                    .ok_or_else(|| {
                        ReconcileError::permanent(
                            "the instance has no AwsRelationalDatabaseDefinitionID",
                        )
                    })?,
            )
            .await?;
        let runtime = workload_runtime(ctx, wi_id).await?;
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
        let spec = spec(&definition, &runtime.inventory)?;
        let tags = Tags { name };
        let mut inventory: RdsInventory = inventory_of(instance.resource_inventory.as_ref())?;
        if inventory.region.is_empty() {
            inventory.region = session.region.clone();
            record(ctx, Reconciliation::marked_reconciled(), Some(&inventory)).await?;
        }
        let master = (random_string(LOWER, 12), random_string(LOWER_DIGITS, 32));
        loop {
            let next = next_step(&inventory);
            if next == RdsStep::Complete {
                break;
            }
            let before = inventory.clone();
            let result = rds::step(&session, &tags, &spec, next, &master, &mut inventory).await;
            if inventory != before {
                record(ctx, Reconciliation::marked_reconciled(), Some(&inventory)).await?;
            }
            match result? {
                Progress::Advanced => info!(step = ?next, database = %tags.name, "RDS step done"),
                Progress::Waiting(what) => {
                    progress_event(ctx, &format!("waiting for {what}")).await;
                    return Ok(Outcome::RequeueAfter(
                        self.sessions.settings().poll_interval,
                    ));
                }
            }
        }
        self.add_secret(ctx, &session, &definition, &inventory, wi_id)
            .await?;
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

    /// The connection Secret as a WRI of the workload, with a master password set on the
    /// database just before: written once per build, at its end. A Secret of that name already
    /// in the workload (an earlier attempt of this build, or a database of the same name
    /// deleted and made again) is rewritten, so it always holds the current credentials; the
    /// workload is un-reconciled every time, so a failed un-reconcile is retried too.
    async fn add_secret(
        &self,
        ctx: &ReconcileContext,
        session: &AwsSession,
        definition: &AwsRelationalDatabaseDefinition,
        inventory: &RdsInventory,
        wi_id: u64,
    ) -> Result<(), ReconcileError> {
        let secret_name = definition
            .workload_secret_name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ReconcileError::permanent("the definition has no WorkloadSecretName"))?;
        let wris = wris_of(&*ctx.api, wi_id).await?;
        let existing = wris.iter().find(|w| {
            w.scheduled_for_deletion.is_none()
                && w.json_definition.as_ref().is_some_and(|d| {
                    d["kind"] == "Secret" && d["metadata"]["name"] == secret_name.as_str()
                })
        });
        let namespace = workload_namespace(&wris)?;
        let user = rds::master_username(session, &inventory.rds_instance_id).await?;
        let password = random_string(LOWER_DIGITS, 32);
        rds::set_master_password(session, &inventory.rds_instance_id, &password).await?;
        let secret = connection_secret(
            &secret_name,
            &namespace,
            &inventory.rds_instance_endpoint,
            definition.database_port.unwrap_or_default(),
            definition.database_name.as_deref().unwrap_or_default(),
            &user,
            &password,
        );
        match existing.and_then(|w| w.common.id) {
            Some(id) => {
                let change = WorkloadResourceInstance {
                    json_definition: Some(secret),
                    reconciled: Some(false),
                    ..Default::default()
                };
                ctx.api
                    .patch_object::<WorkloadResourceInstance>(id, Patch::Changes(&change))
                    .await?;
            }
            None => {
                ctx.api
                    .create_object(&WorkloadResourceInstance {
                        json_definition: Some(secret),
                        workload_instance_id: Some(wi_id),
                        ..Default::default()
                    })
                    .await?;
            }
        }
        unreconcile_workload(&*ctx.api, wi_id).await?;
        info!(secret = %secret_name, %namespace, "database connection Secret written to the workload");
        Ok(())
    }

    async fn tear_down(
        &self,
        ctx: &ReconcileContext,
        instance: AwsRelationalDatabaseInstance,
    ) -> Result<Outcome, ReconcileError> {
        if instance.reconciliation.deletion_confirmed.is_some() {
            return Ok(Outcome::Done);
        }
        let mut inventory: RdsInventory = inventory_of(instance.resource_inventory.as_ref())?;
        let acknowledged = instance.reconciliation.deletion_acknowledged.is_some();
        // A build records its region before its first step: then something may exist.
        let started = !inventory.region.is_empty();
        if !rds::deleted(&inventory) || (started && !acknowledged) {
            let definition: AwsRelationalDatabaseDefinition = ctx
                .api
                .get_object(
                    instance
                        .aws_relational_database_definition_id
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
            if !acknowledged {
                let tags = Tags {
                    name: instance_name(&instance)?,
                };
                rds::discover(&session, &tags, &mut inventory).await?;
                record(
                    ctx,
                    Reconciliation {
                        deletion_acknowledged: Some(OffsetDateTime::now_utc()),
                        ..Reconciliation::marked_reconciled()
                    },
                    Some(&inventory),
                )
                .await?;
            }
            while !rds::deleted(&inventory) {
                let before = inventory.clone();
                let result = rds::delete_step(&session, &mut inventory).await;
                if inventory != before {
                    record(ctx, Reconciliation::marked_reconciled(), Some(&inventory)).await?;
                }
                if let Progress::Waiting(what) = result? {
                    progress_event(ctx, &format!("waiting for {what}")).await;
                    return Ok(Outcome::RequeueAfter(
                        self.sessions.settings().poll_interval,
                    ));
                }
            }
        }
        if let Some(wi_id) = instance.workload_instance_id {
            remove_attached(&*ctx.api, wi_id, ATTACHED_TYPE, ctx.object_id).await?;
        }
        Ok(Outcome::Done)
    }
}

fn instance_name(instance: &AwsRelationalDatabaseInstance) -> Result<String, ReconcileError> {
    instance
        .instance
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ReconcileError::permanent("the instance has no Name"))
}

/// PATCH only the given reconciliation fields and, if given, the inventory.
async fn record(
    ctx: &ReconcileContext,
    reconciliation: Reconciliation,
    inventory: Option<&RdsInventory>,
) -> Result<(), ReconcileError> {
    let change = AwsRelationalDatabaseInstance {
        resource_inventory: inventory.map(RdsInventory::to_value),
        reconciliation,
        ..Default::default()
    };
    ctx.api
        .patch_object::<AwsRelationalDatabaseInstance>(ctx.object_id, Patch::Changes(&change))
        .await?;
    Ok(())
}

fn spec(
    definition: &AwsRelationalDatabaseDefinition,
    eks: &crate::aws::eks::inventory::EksInventory,
) -> Result<RdsSpec, ReconcileError> {
    let size = definition.machine_size.as_deref().unwrap_or_default();
    let class = class_for(size)
        .ok_or_else(|| ReconcileError::permanent(format!("machine size {size:?} not supported")))?;
    let required = |v: &Option<String>, field: &str| {
        v.clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ReconcileError::permanent(format!("the definition has no {field}")))
    };
    let int = |v: Option<i64>| v.unwrap_or_default().clamp(0, i32::MAX as i64) as i32;
    Ok(RdsSpec {
        vpc_id: eks.vpc_id.clone(),
        subnet_ids: eks.private_subnet_ids(),
        client_security_group_id: eks.security_group_id.clone(),
        database_name: required(&definition.database_name, "DatabaseName")?,
        class: class.to_string(),
        engine: required(&definition.engine, "Engine")?,
        engine_version: required(&definition.engine_version, "EngineVersion")?,
        port: int(definition.database_port),
        storage_gb: int(definition.storage_gb),
        backup_days: int(definition.backup_days),
    })
}

/// The Secret as Threeport writes it (a typed core/v1 Secret: base64 `data`, `Opaque`).
fn connection_secret(
    name: &str,
    namespace: &str,
    endpoint: &str,
    port: i64,
    database: &str,
    user: &str,
    password: &str,
) -> Value {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    json!({
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": null},
        "data": {
            "db-endpoint": b64(endpoint),
            "db-name": b64(database),
            "db-password": b64(password),
            "db-port": b64(&port.to_string()),
            "db-user": b64(user),
        },
        "type": "Opaque"
    })
}

#[async_trait]
impl Reconciler for AwsRelationalDatabaseInstanceReconciler {
    type Object = AwsRelationalDatabaseInstance;

    async fn created(
        &self,
        ctx: &ReconcileContext,
        object: Self::Object,
    ) -> Result<Outcome, ReconcileError> {
        self.build(ctx, object).await
    }

    /// Resumes an unfinished build; a confirmed database has nothing to change (as Go).
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
    fn the_secret_has_threeports_shape() {
        let s = connection_secret("db-conn", "app", "db.example", 5432, "app", "user", "pw");
        assert_eq!(s["kind"], "Secret");
        assert_eq!(s["type"], "Opaque");
        assert_eq!(s["metadata"]["namespace"], "app");
        assert_eq!(s["data"]["db-port"], "NTQzMg==");
        assert_eq!(s["data"]["db-endpoint"], "ZGIuZXhhbXBsZQ==");
        let keys: Vec<&String> = s["data"].as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "db-endpoint",
                "db-name",
                "db-password",
                "db-port",
                "db-user"
            ]
        );
    }
}
