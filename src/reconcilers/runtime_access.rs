//! How a reconciler reaches a runtime cluster: the runtime instance's connection token made
//! fresh first ([`RuntimeTokens`]), then the cached client or the credentials
//! ([`Clusters`]). One call does both, so no reconciler can connect with a token it forgot to
//! refresh.

use std::sync::Arc;

use super::runtime_token::RuntimeTokens;
use crate::engine::ReconcileError;
use crate::kube::{Cluster, Clusters, RuntimeCredentials};
use crate::threeport::models::KubernetesRuntimeInstance;
use crate::threeport::ThreeportApi;

/// Clients and credentials of runtime clusters, with EKS tokens refreshed on the way; one per
/// process, shared by the reconcilers that connect to runtimes. Cheap to clone.
#[derive(Clone)]
pub struct RuntimeAccess {
    clusters: Arc<dyn Clusters>,
    tokens: Arc<RuntimeTokens>,
}

impl RuntimeAccess {
    /// Clusters found by `clusters`, tokens refreshed by `tokens`.
    pub fn new(clusters: Arc<dyn Clusters>, tokens: Arc<RuntimeTokens>) -> Self {
        Self { clusters, tokens }
    }

    /// The cluster of `kri` (`in_cluster`: on the control plane's own runtime, the in-cluster
    /// address), its token refreshed first if it expires within 3 minutes.
    pub async fn cluster(
        &self,
        api: &dyn ThreeportApi,
        kri: KubernetesRuntimeInstance,
        in_cluster: bool,
    ) -> Result<Arc<dyn Cluster>, ReconcileError> {
        let kri = self.tokens.fresh(api, kri).await?;
        Ok(self.clusters.cluster(&kri, in_cluster)?)
    }

    /// The credentials [`cluster`](Self::cluster) would use, for a program that reaches the
    /// runtime by itself (helm, through a kubeconfig).
    pub async fn credentials(
        &self,
        api: &dyn ThreeportApi,
        kri: KubernetesRuntimeInstance,
        in_cluster: bool,
    ) -> Result<RuntimeCredentials, ReconcileError> {
        let kri = self.tokens.fresh(api, kri).await?;
        Ok(self.clusters.credentials(&kri, in_cluster)?)
    }

    /// Drop what is cached for runtime `runtime_id`, e.g. once it is deleted.
    pub fn forget(&self, runtime_id: u64) {
        self.clusters.forget(runtime_id);
    }
}
