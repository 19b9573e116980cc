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
//! [`RuntimeTokens::fresh`], by way of [`RuntimeAccess`](super::runtime_access::RuntimeAccess).
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

use super::aws::eks::cluster_session;
use super::aws::eks_instance_of_runtime;
use crate::aws::eks::connection::connection;
use crate::aws::AwsSessions;
use crate::engine::ReconcileError;
use crate::kube::token_expiring;
use crate::retry::{Classify, RetryClass};
use crate::threeport::models::{
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
#[error("cannot refresh the connection token of KubernetesRuntimeInstance {runtime_id}")]
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
    /// Cheap when nothing expires: no request is made.
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
        let refreshed = {
            let _refreshing = lock.lock().await;
            self.refresh(api, runtime_id).await
        };
        self.release_lock(runtime_id, lock);
        refreshed.map_err(|cause| TokenRefreshError { runtime_id, cause })
    }

    fn lock_for(&self, runtime_id: u64) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.refreshing.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(runtime_id).or_default().clone()
    }

    /// Drop the runtime's lock from the map once no other reconcile holds or waits for it, so
    /// the map does not keep an entry for every runtime that was ever refreshed.
    fn release_lock(&self, runtime_id: u64, lock: Arc<tokio::sync::Mutex<()>>) {
        let mut locks = self.refreshing.lock().unwrap_or_else(|p| p.into_inner());
        // Ours and the map's: nobody else has one (clones are only made under this mutex).
        if Arc::strong_count(&lock) == 2 {
            locks.remove(&runtime_id);
        }
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
        let eks = eks_instance_of_runtime(api, runtime_id)
            .await?
            .ok_or_else(|| {
                ReconcileError::permanent(format!(
                    "its KubernetesRuntimeDefinition {krd_id} has InfraProvider eks, but no \
                     AwsEksKubernetesRuntimeInstance has KubernetesRuntimeInstanceID {runtime_id}"
                ))
            })?;
        let (_, session, cluster) = cluster_session(api, &self.aws, &eks).await?;
        let fresh = connection(&session, &cluster.name).await?;
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
            cluster = %cluster.name,
            expires = %fresh.token_expiration,
            "refreshed the EKS connection token"
        );
        // As stored: the API encrypts the token, and the credentials decrypt what they read.
        let stored: KubernetesRuntimeInstance = api.get_object(runtime_id).await?;
        if token_expiring(&stored, OffsetDateTime::now_utc()) {
            // Not retried as if it might pass: every attempt would PATCH again (and, on an
            // unreconciled runtime, make the API notify again).
            return Err(ReconcileError::permanent(format!(
                "the API did not keep the refreshed ConnectionTokenExpiration ({}): the stored \
                 one still expires within 3 minutes",
                fresh.token_expiration
            )));
        }
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::extract::Path;
    use base64::Engine as _;
    use tokio::sync::Semaphore;

    use super::*;
    use crate::config::AwsConfig;
    use crate::reconcilers::testing::{runtime_tokens, FakeApi};
    use crate::threeport::api::Method;
    use crate::threeport::models::{
        AwsAccount, AwsEksKubernetesRuntimeDefinition, AwsEksKubernetesRuntimeInstance,
    };
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

    const CA_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    /// EKS's DescribeCluster on loopback: counts the calls and answers each only once the
    /// test adds a permit, so a refresh can be held in flight.
    async fn fake_eks() -> (String, Arc<AtomicUsize>, Arc<Semaphore>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let answers = Arc::new(Semaphore::new(0));
        let (c, a) = (calls.clone(), answers.clone());
        let app = axum::Router::new().route(
            "/clusters/{name}",
            axum::routing::get(move |Path(name): Path<String>| {
                let (c, a) = (c.clone(), a.clone());
                async move {
                    c.fetch_add(1, Ordering::SeqCst);
                    a.acquire().await.expect("semaphore").forget();
                    axum::Json(serde_json::json!({"cluster": {
                        "name": name, "status": "ACTIVE", "endpoint": "https://10.0.0.9",
                        "certificateAuthority": {"data": base64::engine::general_purpose::STANDARD.encode(CA_PEM)},
                    }}))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, calls, answers)
    }

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "{what} within 10 s");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Two reconciles on one runtime whose token expires: the second waits for the first's
    /// refresh (held in DescribeCluster until the second is seen waiting) and uses its token.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_reconciles_wait_for_one_refresh_and_use_its_token() {
        let (url, calls, answers) = fake_eks().await;
        let api = FakeApi::new();
        let account = api.insert(&AwsAccount {
            account_id: Some("123456789012".into()),
            access_key_id: Some(SecretString("AKIDEXAMPLE".into())),
            secret_access_key: Some(SecretString("secret".into())),
            ..Default::default()
        });
        let kri = runtime(&api, EKS, 1);
        let id = kri.common.id.unwrap();
        let definition = api.insert(&AwsEksKubernetesRuntimeDefinition {
            aws_account_id: Some(account),
            ..Default::default()
        });
        api.insert(&AwsEksKubernetesRuntimeInstance {
            instance: Instance {
                name: Some("c1".into()),
                ..Default::default()
            },
            region: Some("us-east-1".into()),
            aws_eks_kubernetes_runtime_definition_id: Some(definition),
            kubernetes_runtime_instance_id: Some(id),
            ..Default::default()
        });
        let tokens = Arc::new(RuntimeTokens::new(Arc::new(AwsSessions::new(
            AwsConfig {
                endpoint_url: Some(url),
                ..Default::default()
            },
            None,
        ))));
        let reconcile = || {
            let (tokens, api, kri) = (tokens.clone(), api.clone(), kri.clone());
            tokio::spawn(async move { tokens.fresh(api.as_ref(), kri).await })
        };
        let first = reconcile();
        until("the first refresh reaches DescribeCluster", || {
            calls.load(Ordering::SeqCst) == 1
        })
        .await;
        let second = reconcile();
        until("the second reconcile waits for the refresh", || {
            let locks = tokens.refreshing.lock().unwrap();
            locks.get(&id).is_some_and(|l| Arc::strong_count(l) == 3)
        })
        .await;
        answers.add_permits(10);
        let (a, b) = (
            first.await.unwrap().unwrap(),
            second.await.unwrap().unwrap(),
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one DescribeCluster");
        assert_eq!(
            api.count(Method::Patch, "/v0/kubernetes-runtime-instances"),
            1
        );
        let token = a.connection_token.as_ref().unwrap().expose().to_string();
        assert!(token.starts_with("k8s-aws-v1."), "a new EKS token");
        assert_eq!(b.connection_token, a.connection_token, "the same token");
        assert_eq!(a.ca_certificate.as_deref(), Some(CA_PEM));
        let left = a.connection_token_expiration.unwrap() - OffsetDateTime::now_utc();
        assert!(left > time::Duration::minutes(13), "{left}");
        assert!(
            tokens.refreshing.lock().unwrap().is_empty(),
            "the lock is dropped once nobody needs it"
        );
        // Now fresh: used as it is, without a request.
        let before = api.count(Method::Get, "");
        tokens.fresh(api.as_ref(), a).await.unwrap();
        assert_eq!(api.count(Method::Get, ""), before);
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
            text.contains(&format!("KubernetesRuntimeInstance {id}"))
                && text.contains("no AwsEksKubernetesRuntimeInstance"),
            "{text}"
        );
        assert!(!text.contains("k8s-aws-v1.old"), "{text}");
        assert_eq!(api.count(Method::Patch, ""), 0);
    }
}
