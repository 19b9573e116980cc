//! AwsEksKubernetesRuntimeInstanceReconciler (spec 3.6): an EKS cluster built as nukleros
//! aws-builder v0.4.7 builds it for Threeport, then the runtime instance told how to reach it.
//!
//! Threeport's Go reconciler runs the whole build in a detached goroutine that a restart
//! loses (spec 4.6 item 41) and refreshes `CreationAcknowledged` with full-object PATCHes of
//! stale state. Here the build is a state machine stored in the instance itself:
//! - every reconcile reads the recorded `ResourceInventory`, runs the next steps
//!   ([`crate::aws::eks::plan`]) and PATCHes the inventory after each one, alone (with
//!   `Reconciled:true`, so the write does not notify another Updated);
//! - a step that waits for AWS (NAT gateways, the cluster, the node group) ends the
//!   reconcile with a requeue after `aws.poll_interval`, never holding a worker;
//! - a restart, a lost lock or a failed call resumes at the first unrecorded step, and a
//!   step finds what an interrupted run made (by name or tags) before making anything.
//!
//! When everything is built, the KubernetesRuntimeInstance gets the cluster's endpoint, CA
//! and a token with `Reconciled:false` (its controller then installs Threeport's services),
//! and the instance `CreationConfirmed`. Deletion removes everything in reverse, the same
//! way, one recorded step at a time.

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;
use tracing::info;

use super::{aws_session, inventory_of, progress_event};
use crate::aws::eks::connection::connection;
use crate::aws::eks::inventory::EksInventory;
use crate::aws::eks::plan::{next_create_step, next_delete_step, CreateStep, DeleteStep};
use crate::aws::eks::{self, EksSpec, Progress, Tags, KUBERNETES_VERSION};
use crate::aws::{AwsSession, AwsSessions, Inventory};
use crate::engine::{Outcome, ReconcileContext, ReconcileError, Reconciler};
use crate::threeport::models::{
    AwsEksKubernetesRuntimeDefinition, AwsEksKubernetesRuntimeInstance, KubernetesRuntimeInstance,
    Patch, Reconciliation, SecretString, TypedApi,
};
use crate::threeport::ThreeportApi;

/// The definition of an EKS runtime instance, a session for its account and region, and its
/// cluster's name (the instance's `Name`): what the build, the teardown and the connection
/// token refresh ([`crate::reconcilers::runtime_token`]) start from.
pub(crate) async fn cluster_session(
    api: &dyn ThreeportApi,
    sessions: &AwsSessions,
    instance: &AwsEksKubernetesRuntimeInstance,
) -> Result<(AwsEksKubernetesRuntimeDefinition, AwsSession, Tags), ReconcileError> {
    let id = instance.common.id.unwrap_or_default();
    let missing = |field: &str| {
        ReconcileError::permanent(format!(
            "AwsEksKubernetesRuntimeInstance {id} has no {field}"
        ))
    };
    let name = instance
        .instance
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| missing("Name"))?;
    let definition_id = instance
        .aws_eks_kubernetes_runtime_definition_id
        .ok_or_else(|| missing("AwsEksKubernetesRuntimeDefinitionID"))?;
    let definition: AwsEksKubernetesRuntimeDefinition = api.get_object(definition_id).await?;
    let account_id = definition.aws_account_id.ok_or_else(|| {
        ReconcileError::permanent(format!(
            "AwsEksKubernetesRuntimeDefinition {definition_id} has no AWSAccountID"
        ))
    })?;
    let session = aws_session(api, sessions, account_id, instance.region.as_deref()).await?;
    Ok((definition, session, Tags { name }))
}

/// Reconciles EKS runtime instances.
pub struct AwsEksKubernetesRuntimeInstanceReconciler {
    sessions: Arc<AwsSessions>,
}

impl AwsEksKubernetesRuntimeInstanceReconciler {
    /// Builds clusters with sessions from `sessions`.
    pub fn new(sessions: Arc<AwsSessions>) -> Self {
        Self { sessions }
    }

    async fn build(
        &self,
        ctx: &ReconcileContext,
        instance: AwsEksKubernetesRuntimeInstance,
    ) -> Result<Outcome, ReconcileError> {
        if instance.reconciliation.creation_confirmed.is_some() {
            return Ok(Outcome::Done);
        }
        let (definition, session, tags) =
            cluster_session(ctx.api.as_ref(), &self.sessions, &instance).await?;
        let spec = spec(&definition);
        let mut inventory = inventory_of(instance.resource_inventory.as_ref())?;
        if instance.reconciliation.creation_acknowledged.is_none() {
            self.record(
                ctx,
                Reconciliation {
                    creation_acknowledged: Some(OffsetDateTime::now_utc()),
                    ..Reconciliation::marked_reconciled()
                },
                None,
            )
            .await?;
        }
        let addon = self.sessions.settings().eks_storage_addon;
        loop {
            let next = next_create_step(&inventory, addon);
            if next == CreateStep::Complete {
                break;
            }
            let before = inventory.clone();
            let result = eks::step(&session, &tags, &spec, next, &mut inventory).await;
            if inventory != before {
                self.record(ctx, Reconciliation::marked_reconciled(), Some(&inventory))
                    .await?;
            }
            match result? {
                Progress::Advanced => info!(step = ?next, cluster = %tags.name, "EKS step done"),
                Progress::Waiting(what) => {
                    progress_event(ctx, &format!("waiting for {what}")).await;
                    return Ok(Outcome::RequeueAfter(
                        self.sessions.settings().poll_interval,
                    ));
                }
            }
        }
        self.connect_runtime(ctx, &instance, &session, &tags)
            .await?;
        self.record(
            ctx,
            Reconciliation {
                creation_confirmed: Some(OffsetDateTime::now_utc()),
                ..Reconciliation::marked_reconciled()
            },
            None,
        )
        .await?;
        info!(cluster = %tags.name, "EKS cluster provisioned");
        Ok(Outcome::Done)
    }

    /// Endpoint, CA and token to the runtime instance, with `Reconciled:false` so that the
    /// kubernetes-runtime controller installs Threeport's services on the new cluster.
    async fn connect_runtime(
        &self,
        ctx: &ReconcileContext,
        instance: &AwsEksKubernetesRuntimeInstance,
        session: &AwsSession,
        tags: &Tags,
    ) -> Result<(), ReconcileError> {
        let runtime_id = instance.kubernetes_runtime_instance_id.ok_or_else(|| {
            ReconcileError::permanent("the instance has no KubernetesRuntimeInstanceID")
        })?;
        let connection = connection(session, &tags.name).await?;
        let change = KubernetesRuntimeInstance {
            api_endpoint: Some(connection.api_endpoint),
            ca_certificate: Some(connection.ca_certificate),
            connection_token: Some(SecretString(connection.token)),
            connection_token_expiration: Some(connection.token_expiration),
            reconciliation: Reconciliation {
                reconciled: Some(false),
                ..Default::default()
            },
            ..Default::default()
        };
        ctx.api
            .patch_object::<KubernetesRuntimeInstance>(runtime_id, Patch::Changes(&change))
            .await?;
        Ok(())
    }

    async fn tear_down(
        &self,
        ctx: &ReconcileContext,
        instance: AwsEksKubernetesRuntimeInstance,
    ) -> Result<Outcome, ReconcileError> {
        if instance.reconciliation.deletion_confirmed.is_some() {
            return Ok(Outcome::Done);
        }
        let mut inventory: EksInventory = inventory_of(instance.resource_inventory.as_ref())?;
        let acknowledged = instance.reconciliation.deletion_acknowledged.is_some();
        let never_built = instance.reconciliation.creation_acknowledged.is_none()
            && next_delete_step(&inventory) == DeleteStep::Complete;
        if never_built || (acknowledged && next_delete_step(&inventory) == DeleteStep::Complete) {
            return Ok(Outcome::Done);
        }
        let (_, session, tags) =
            cluster_session(ctx.api.as_ref(), &self.sessions, &instance).await?;
        if !acknowledged {
            // What a killed or failed build made but never recorded is found first, and
            // recorded with the acknowledgement, so that it is deleted too.
            eks::delete::discover(&session, &tags, &mut inventory).await?;
            self.record(
                ctx,
                Reconciliation {
                    deletion_acknowledged: Some(OffsetDateTime::now_utc()),
                    ..Reconciliation::marked_reconciled()
                },
                Some(&inventory),
            )
            .await?;
        }
        loop {
            let next = next_delete_step(&inventory);
            if next == DeleteStep::Complete {
                info!(cluster = %tags.name, "EKS cluster removed");
                return Ok(Outcome::Done);
            }
            let before = inventory.clone();
            let result = eks::delete_step(&session, &tags, next, &mut inventory).await;
            if inventory != before {
                self.record(ctx, Reconciliation::marked_reconciled(), Some(&inventory))
                    .await?;
            }
            match result? {
                Progress::Advanced => {
                    info!(step = ?next, cluster = %tags.name, "EKS deletion step done");
                }
                Progress::Waiting(what) => {
                    progress_event(ctx, &format!("waiting for {what}")).await;
                    return Ok(Outcome::RequeueAfter(
                        self.sessions.settings().poll_interval,
                    ));
                }
            }
        }
    }

    /// PATCH only the given reconciliation fields and, if given, the inventory.
    async fn record(
        &self,
        ctx: &ReconcileContext,
        reconciliation: Reconciliation,
        inventory: Option<&EksInventory>,
    ) -> Result<(), ReconcileError> {
        let change = AwsEksKubernetesRuntimeInstance {
            resource_inventory: inventory.map(EksInventory::to_value),
            reconciliation,
            ..Default::default()
        };
        ctx.api
            .patch_object::<AwsEksKubernetesRuntimeInstance>(ctx.object_id, Patch::Changes(&change))
            .await?;
        Ok(())
    }
}

/// The cluster's shape from its definition.
fn spec(definition: &AwsEksKubernetesRuntimeDefinition) -> EksSpec {
    let size = |v: Option<i64>, default: i32| {
        v.map(|n| n.clamp(0, i32::MAX as i64) as i32)
            .unwrap_or(default)
    };
    EksSpec {
        zone_count: definition.zone_count.unwrap_or(0),
        instance_type: definition
            .default_node_group_instance_type
            .clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "t3.micro".into()),
        initial_nodes: size(definition.default_node_group_initial_size, 2),
        min_nodes: size(definition.default_node_group_minimum_size, 2),
        max_nodes: size(definition.default_node_group_maximum_size, 4),
        kubernetes_version: KUBERNETES_VERSION.into(),
    }
}

#[async_trait]
impl Reconciler for AwsEksKubernetesRuntimeInstanceReconciler {
    type Object = AwsEksKubernetesRuntimeInstance;

    async fn created(
        &self,
        ctx: &ReconcileContext,
        object: Self::Object,
    ) -> Result<Outcome, ReconcileError> {
        self.build(ctx, object).await
    }

    /// The same as Created: an update while the cluster is being built resumes the build;
    /// once it is confirmed there is nothing to change (Threeport's Updated is a no-op).
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
