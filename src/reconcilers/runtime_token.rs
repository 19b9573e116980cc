//! The connection token of an EKS runtime, refreshed before it expires (spec 3.1.1 step 4,
//! Threeport's `refreshEKSConnection`).
//!
//! An EKS cluster is reached with a presigned STS `GetCallerIdentity` token that EKS accepts
//! for 15 minutes; the aws controller stores one (expiring after 14) in the
//! KubernetesRuntimeInstance when the cluster is ready. Whoever connects to the runtime later
//! refreshes it when it expires within 3 minutes: the runtime's definition says `eks`, its
//! AwsEksKubernetesRuntimeInstance (by `KubernetesRuntimeInstanceID`) names the cluster and the
//! region, its definition the AwsAccount; a session for that account describes the cluster and
//! signs a new token, which is written back to the runtime instance. Every reconciler that
//! connects to a runtime (workload, helm-workload, kubernetes-runtime) goes through
//! [`RuntimeTokens::fresh`].
//!
//! Differences from Go, on purpose:
//! - The PATCH carries only `CACertificate`, `ConnectionToken` and
//!   `ConnectionTokenExpiration`. Go PATCHes the whole runtime instance it read: that echoes
//!   `CertificateKey`'s ciphertext (which the API would encrypt again, spec 2.9) and
//!   overwrites whatever others wrote in between.
//! - One refresh per runtime at a time in a process: reconciles of many workloads on one
//!   runtime wait for the first refresh and use its token, instead of each signing one and
//!   PATCHing it. Replicas (and Go controllers) may still refresh the same runtime at the same
//!   moment; each writes a valid token, so whichever lands last is as good.
//! - A runtime whose definition is not `eks` is left as it is, and building its credentials
//!   fails with a clear "expired" error ([`RuntimeCredentials`](crate::kube::RuntimeCredentials)).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use time::OffsetDateTime;
use tracing::info;

use super::aws::aws_session;
use crate::aws::eks::connection::connection;
use crate::aws::AwsSessions;
use crate::engine::ReconcileError;
use crate::kube::token_expiring;
use crate::retry::{Classify, RetryClass};
use crate::threeport::models::{
    AwsEksKubernetesRuntimeDefinition, AwsEksKubernetesRuntimeInstance, Filter,
    KubernetesRuntimeDefinition, KubernetesRuntimeInstance, Patch, SecretString, TypedApi,
};
use crate::threeport::ThreeportApi;

/// The `InfraProvider` of a runtime definition whose tokens are refreshed.
const EKS: &str = "eks";

/// Refreshes the connection tokens of EKS runtimes; one per process, shared by the
/// reconcilers that connect to runtimes.
pub struct RuntimeTokens {
    aws: Arc<AwsSessions>,
    /// One lock per runtime instance ID, held while its token is refreshed.
    refreshing: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
}

/// A runtime's token could not be refreshed; the retry class is the cause's.
#[derive(Debug, thiserror::Error)]
#[error("cannot refresh the EKS connection token of runtime instance {runtime_id}")]
pub struct TokenRefreshError {
    /// The KubernetesRuntimeInstance.
    pub runtime_id: u64,
    #[source]
    cause: ReconcileError,
}

impl Classify for TokenRefreshError {
    fn retry_class(&self) -> RetryClass {
        self.cause.class
    }
}

impl RuntimeTokens {
    /// Refreshes with sessions from `aws` (the `aws` config section, `ENCRYPTION_KEY`).
    pub fn new(aws: Arc<AwsSessions>) -> Self {
        Self {
            aws,
            refreshing: Mutex::default(),
        }
    }

    /// `kri` as it is when its token (if it has one) does not expire within 3 minutes;
    /// otherwise, for an EKS runtime, the instance as stored after its token was refreshed.
    pub async fn fresh(
        &self,
        api: &dyn ThreeportApi,
        kri: KubernetesRuntimeInstance,
    ) -> Result<KubernetesRuntimeInstance, TokenRefreshError> {
        let Some(runtime_id) = kri.common.id else {
            return Ok(kri);
        };
        if !token_expiring(&kri, OffsetDateTime::now_utc()) {
            return Ok(kri);
        }
        let lock = self.lock_for(runtime_id);
        let _refreshing = lock.lock().await;
        self.refresh(api, runtime_id)
            .await
            .map_err(|cause| TokenRefreshError { runtime_id, cause })
    }

    fn lock_for(&self, runtime_id: u64) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.refreshing.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(runtime_id).or_default().clone()
    }

    /// Under the runtime's lock: read the instance again (another reconcile may have refreshed
    /// it meanwhile), refresh it if it still needs it and is EKS, and return it as stored.
    async fn refresh(
        &self,
        api: &dyn ThreeportApi,
        runtime_id: u64,
    ) -> Result<KubernetesRuntimeInstance, ReconcileError> {
        let kri: KubernetesRuntimeInstance = api.get_object(runtime_id).await?;
        if !token_expiring(&kri, OffsetDateTime::now_utc()) {
            return Ok(kri);
        }
        let Some(krd_id) = kri.kubernetes_runtime_definition_id else {
            return Ok(kri);
        };
        let krd: KubernetesRuntimeDefinition = api.get_object(krd_id).await?;
        if krd.infra_provider.as_deref() != Some(EKS) {
            return Ok(kri);
        }
        let eks: AwsEksKubernetesRuntimeInstance = api
            .list_objects(&[Filter::eq("KubernetesRuntimeInstanceID", runtime_id)])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                ReconcileError::permanent(format!(
                    "its definition's InfraProvider is eks but no \
                     AwsEksKubernetesRuntimeInstance has KubernetesRuntimeInstanceID {runtime_id}"
                ))
            })?;
        let cluster = eks
            .instance
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                ReconcileError::permanent("its AwsEksKubernetesRuntimeInstance has no Name")
            })?;
        let eks_definition_id = eks
            .aws_eks_kubernetes_runtime_definition_id
            .ok_or_else(|| {
                ReconcileError::permanent(
                "its AwsEksKubernetesRuntimeInstance has no AwsEksKubernetesRuntimeDefinitionID",
            )
            })?;
        let eks_definition: AwsEksKubernetesRuntimeDefinition =
            api.get_object(eks_definition_id).await?;
        let account_id = eks_definition.aws_account_id.ok_or_else(|| {
            ReconcileError::permanent(format!(
                "AwsEksKubernetesRuntimeDefinition {eks_definition_id} has no AWSAccountID"
            ))
        })?;
        let session = aws_session(api, &self.aws, account_id, eks.region.as_deref()).await?;
        let fresh = connection(&session, &cluster).await?;
        let change = KubernetesRuntimeInstance {
            ca_certificate: Some(fresh.ca_certificate),
            connection_token: Some(SecretString(fresh.token)),
            connection_token_expiration: Some(fresh.token_expiration),
            ..Default::default()
        };
        api.patch_object::<KubernetesRuntimeInstance>(runtime_id, Patch::Changes(&change))
            .await?;
        info!(
            runtime_id,
            cluster = %cluster,
            expires = %fresh.token_expiration,
            "refreshed the EKS connection token"
        );
        // As stored: the API encrypts the token, and the credentials decrypt what they read.
        Ok(api.get_object(runtime_id).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcilers::testing::{runtime_tokens, FakeApi};
    use crate::threeport::api::Method;
    use crate::threeport::models::{Common, Instance};

    /// A runtime on a definition of `provider`, with a token expiring in `minutes`.
    fn runtime(api: &FakeApi, provider: &str, minutes: i64) -> KubernetesRuntimeInstance {
        let krd = api.insert(&KubernetesRuntimeDefinition {
            infra_provider: Some(provider.into()),
            ..Default::default()
        });
        let kri = KubernetesRuntimeInstance {
            instance: Instance {
                name: Some("rt".into()),
                ..Default::default()
            },
            api_endpoint: Some("https://10.0.0.1:6443".into()),
            connection_token: Some(SecretString("k8s-aws-v1.old".into())),
            connection_token_expiration: Some(
                OffsetDateTime::now_utc() + time::Duration::minutes(minutes),
            ),
            kubernetes_runtime_definition_id: Some(krd),
            ..Default::default()
        };
        let id = api.insert(&kri);
        KubernetesRuntimeInstance {
            common: Common {
                id: Some(id),
                ..Default::default()
            },
            ..kri
        }
    }

    #[tokio::test]
    async fn a_token_that_does_not_expire_soon_is_used_without_a_request() {
        let api = FakeApi::new();
        let kri = runtime(&api, EKS, 10);
        let before = api.count(Method::Get, "");
        let fresh = runtime_tokens()
            .fresh(api.as_ref(), kri.clone())
            .await
            .unwrap();
        assert_eq!(fresh, kri);
        assert_eq!(api.count(Method::Get, ""), before);
    }

    #[tokio::test]
    async fn an_expiring_token_of_a_runtime_that_is_not_eks_is_left_as_it_is() {
        let api = FakeApi::new();
        let kri = runtime(&api, "kind", 1);
        let fresh = runtime_tokens()
            .fresh(api.as_ref(), kri.clone())
            .await
            .unwrap();
        assert_eq!(fresh.connection_token, kri.connection_token);
        assert_eq!(api.count(Method::Patch, ""), 0);
        assert_eq!(
            api.count(Method::Get, "/v0/aws-eks-kubernetes-runtime-instances"),
            0
        );
    }

    #[tokio::test]
    async fn an_eks_runtime_without_its_eks_instance_is_a_permanent_error_naming_it() {
        let api = FakeApi::new();
        let kri = runtime(&api, EKS, 1);
        let id = kri.common.id.unwrap();
        let e = runtime_tokens().fresh(api.as_ref(), kri).await.unwrap_err();
        assert_eq!(e.retry_class(), RetryClass::Permanent);
        let text = crate::retry::ErrorChain(&e).to_string();
        assert!(
            text.contains(&format!("runtime instance {id}"))
                && text.contains("no AwsEksKubernetesRuntimeInstance"),
            "{text}"
        );
        assert!(!text.contains("k8s-aws-v1.old"), "{text}");
        assert_eq!(api.count(Method::Patch, ""), 0);
    }
}
