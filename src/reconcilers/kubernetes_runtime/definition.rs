//! KubernetesRuntimeDefinitionReconciler (spec 3.4): an `eks` definition becomes the
//! AwsEksKubernetesRuntimeDefinition the aws controller provisions from; `kind` needs nothing.
//!
//! Unlike Threeport's Go reconciler (spec 4.5 item 36): the EKS definition is looked up before
//! it is POSTed (a retry adopts it), Updated does the same (so a definition that failed for a
//! missing account succeeds once the account exists and the definition is touched), and an
//! account that cannot be chosen is a permanent error naming why, never a panic.

use async_trait::async_trait;
use tracing::info;

use super::mapping::{aws_machine_type, sizes_of};
use crate::engine::{Outcome, ReconcileContext, ReconcileError, Reconciler};
use crate::threeport::api::ThreeportApi;
use crate::threeport::models::{
    AwsAccount, AwsEksKubernetesRuntimeDefinition, Definition, Filter, KubernetesRuntimeDefinition,
    TypedApi,
};

/// Threeport's default node group: two nodes to start, scaling down to none.
const INITIAL_NODES: i64 = 2;
const MINIMUM_NODES: i64 = 0;

/// Why no AWS account can be chosen for an `eks` definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// `InfraProviderAccountName` names no account.
    #[error("no AWS account is named {0:?} (InfraProviderAccountName)")]
    NoneNamed(String),
    /// `InfraProviderAccountName` names several accounts.
    #[error("{1} AWS accounts are named {0:?} (InfraProviderAccountName); names must be unique")]
    SeveralNamed(String, usize),
    /// No account exists at all.
    #[error("no AWS account exists: create one, or name one in InfraProviderAccountName")]
    NoAccounts,
    /// Several accounts and none (or more than one) is the default.
    #[error("{accounts} AWS accounts exist and {defaults} of them are marked DefaultAccount: set InfraProviderAccountName, or mark exactly one account as the default")]
    Ambiguous {
        /// How many accounts exist.
        accounts: usize,
        /// How many of them are marked the default.
        defaults: usize,
    },
}

/// The account of an `eks` definition: the one named `name` (exactly one must be), or without
/// a name the default account. Threeport asks the API for `?default=true`, a filter the API
/// does not know, and so takes the first account whatever it is (and panics when there is
/// none); here the account marked `DefaultAccount` is taken, or the only account when just one
/// exists, and anything else is an error saying what to set.
pub fn choose_account<'a>(
    accounts: &'a [AwsAccount],
    name: Option<&str>,
) -> Result<&'a AwsAccount, AccountError> {
    if let Some(name) = name.filter(|n| !n.is_empty()) {
        let named: Vec<&AwsAccount> = accounts
            .iter()
            .filter(|a| a.name.as_deref() == Some(name))
            .collect();
        return match named.as_slice() {
            [one] => Ok(one),
            [] => Err(AccountError::NoneNamed(name.to_string())),
            more => Err(AccountError::SeveralNamed(name.to_string(), more.len())),
        };
    }
    let defaults: Vec<&AwsAccount> = accounts
        .iter()
        .filter(|a| a.default_account == Some(true))
        .collect();
    match (accounts, defaults.as_slice()) {
        ([], _) => Err(AccountError::NoAccounts),
        (_, [default]) => Ok(default),
        ([only], []) => Ok(only),
        (all, defaults) => Err(AccountError::Ambiguous {
            accounts: all.len(),
            defaults: defaults.len(),
        }),
    }
}

/// The infrastructure providers Threeport knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// A local kind cluster: nothing to provision.
    Kind,
    /// AWS EKS, provisioned by the aws controller.
    Eks,
}

/// The provider of definition `krd` (ID `id`); anything else is a permanent error naming it.
pub fn provider(id: u64, krd: &KubernetesRuntimeDefinition) -> Result<Provider, ReconcileError> {
    match krd.infra_provider.as_deref().unwrap_or_default() {
        "kind" => Ok(Provider::Kind),
        "eks" => Ok(Provider::Eks),
        other => Err(ReconcileError::permanent(format!(
            "kubernetes runtime definition {id}: InfraProvider {other:?} is not kind or eks"
        ))),
    }
}

/// The AWS account of the `eks` definition `krd` (ID `id`), as [`choose_account`] picks it; a
/// permanent error naming why when none can be chosen.
pub async fn account_of(
    api: &dyn ThreeportApi,
    id: u64,
    krd: &KubernetesRuntimeDefinition,
) -> Result<AwsAccount, ReconcileError> {
    let name = krd
        .infra_provider_account_name
        .as_deref()
        .filter(|n| !n.is_empty());
    let filters = match name {
        Some(n) => vec![Filter::eq("Name", n)],
        None => Vec::new(),
    };
    let accounts: Vec<AwsAccount> = api.list_objects(&filters).await?;
    choose_account(&accounts, name)
        .cloned()
        .map_err(|e| ReconcileError::permanent(format!("kubernetes runtime definition {id}: {e}")))
}

/// The AwsEksKubernetesRuntimeDefinition Threeport creates for `krd` with `account`.
pub fn eks_definition(
    id: u64,
    krd: &KubernetesRuntimeDefinition,
    account_id: u64,
) -> Result<AwsEksKubernetesRuntimeDefinition, ReconcileError> {
    let profile = krd.node_profile.as_deref().unwrap_or_default();
    let size = krd.node_size.as_deref().unwrap_or_default();
    let machine = aws_machine_type(profile, size).ok_or_else(|| {
        let offered = sizes_of(profile);
        ReconcileError::permanent(if offered.is_empty() {
            format!("kubernetes runtime definition {id}: NodeProfile {profile:?} is not one of Balanced, ComputeOptimized, MemoryOptimized")
        } else {
            format!(
                "kubernetes runtime definition {id}: NodeSize {size:?} is not offered for NodeProfile {profile:?} (one of {})",
                offered.join(", ")
            )
        })
    })?;
    let maximum = krd.node_maximum.ok_or_else(|| {
        ReconcileError::permanent(format!(
            "kubernetes runtime definition {id} has no NodeMaximum"
        ))
    })?;
    Ok(AwsEksKubernetesRuntimeDefinition {
        definition: Definition {
            name: krd.definition.name.clone(),
            ..Default::default()
        },
        aws_account_id: Some(account_id),
        zone_count: Some(if krd.high_availability == Some(true) {
            3
        } else {
            2
        }),
        default_node_group_instance_type: Some(machine.to_string()),
        default_node_group_initial_size: Some(INITIAL_NODES),
        default_node_group_minimum_size: Some(MINIMUM_NODES),
        default_node_group_maximum_size: Some(maximum),
        kubernetes_runtime_definition_id: Some(id),
        ..Default::default()
    })
}

/// Reconciles kubernetes runtime definitions.
#[derive(Debug, Default, Clone)]
pub struct KubernetesRuntimeDefinitionReconciler;

impl KubernetesRuntimeDefinitionReconciler {
    /// Make sure an `eks` definition has its EKS definition; nothing for `kind`.
    async fn converge(
        &self,
        api: &dyn ThreeportApi,
        id: u64,
        krd: KubernetesRuntimeDefinition,
    ) -> Result<Outcome, ReconcileError> {
        match provider(id, &krd)? {
            Provider::Kind => Ok(Outcome::Done),
            Provider::Eks => {
                let existing: Vec<AwsEksKubernetesRuntimeDefinition> = api
                    .list_objects(&[Filter::eq("KubernetesRuntimeDefinitionID", id)])
                    .await?;
                if !existing.is_empty() {
                    return Ok(Outcome::Done);
                }
                let account = account_of(api, id, &krd).await?;
                let account_id = account.common.id.ok_or_else(|| {
                    ReconcileError::transient("the API returned an AWS account without an ID")
                })?;
                let eks = eks_definition(id, &krd, account_id)?;
                let created = api.create_object(&eks).await?;
                info!(
                    aws_eks_kubernetes_runtime_definition = ?created.common.id,
                    aws_account = account_id,
                    instance_type = ?eks.default_node_group_instance_type,
                    "EKS runtime definition created"
                );
                Ok(Outcome::Done)
            }
        }
    }
}

#[async_trait]
impl Reconciler for KubernetesRuntimeDefinitionReconciler {
    type Object = KubernetesRuntimeDefinition;

    /// Threeport registers some definitions already reconciled (the genesis runtime's): those
    /// are left alone.
    async fn created(
        &self,
        ctx: &ReconcileContext,
        krd: KubernetesRuntimeDefinition,
    ) -> Result<Outcome, ReconcileError> {
        if krd.reconciliation.reconciled == Some(true) {
            return Ok(Outcome::Done);
        }
        let id = krd.common.id.unwrap_or(ctx.object_id);
        self.converge(ctx.api.as_ref(), id, krd).await
    }

    /// Threeport does nothing here; the manager completes what Created could not (the same
    /// idempotent step), so a fixed definition does not need to be recreated.
    async fn updated(
        &self,
        ctx: &ReconcileContext,
        krd: KubernetesRuntimeDefinition,
    ) -> Result<Outcome, ReconcileError> {
        let id = krd.common.id.unwrap_or(ctx.object_id);
        self.converge(ctx.api.as_ref(), id, krd).await
    }

    /// As Threeport: nothing beyond the engine's deletion protocol (the EKS definition stays
    /// with the aws controller's objects).
    async fn deleted(
        &self,
        _ctx: &ReconcileContext,
        _krd: KubernetesRuntimeDefinition,
    ) -> Result<Outcome, ReconcileError> {
        Ok(Outcome::Done)
    }
}

#[cfg(test)]
mod tests;
