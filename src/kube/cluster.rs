//! The Kubernetes operations reconcilers use, as traits: [`Cluster`] for one runtime cluster
//! and [`Clusters`] for finding a runtime instance's cluster. [`RuntimeHandle`] and
//! [`KubeRuntimes`] are the real ones; unit tests use in-memory ones, so a reconciler's
//! decisions can be tested in milliseconds without an API server.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kube::api::DynamicObject;
use serde_json::Value;

use super::{KubeError, RuntimeCredentials};
#[cfg(doc)]
use super::{KubeRuntimes, RuntimeHandle};
use crate::threeport::models::KubernetesRuntimeInstance;

/// One runtime cluster.
#[async_trait]
pub trait Cluster: Send + Sync {
    /// `"<name> (ID <id>)"` of the runtime instance, for messages.
    fn runtime(&self) -> &str;

    /// Scope (namespaced or not) of every (apiVersion, kind) in `objects`; kinds defined by a
    /// CRD in the same list take their scope from that CRD.
    async fn scopes(&self, objects: &[Value])
        -> Result<HashMap<(String, String), bool>, KubeError>;

    /// Wait until a kind is served (a CRD applied just before), up to `timeout`.
    async fn wait_for_kind(
        &self,
        api_version: &str,
        kind: &str,
        timeout: Duration,
    ) -> Result<(), KubeError>;

    /// Create or update by server-side apply.
    async fn apply(&self, object: &DynamicObject) -> Result<DynamicObject, KubeError>;

    /// Delete; `Ok(false)` when it did not exist.
    async fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<bool, KubeError>;

    /// List by label selector (`k=v,k2=v2`); `namespace: None` lists every namespace.
    async fn list_by_label(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        selector: &str,
    ) -> Result<Vec<DynamicObject>, KubeError>;
}

/// Finds the cluster of a runtime instance.
pub trait Clusters: Send + Sync {
    /// The cluster of `kri` (`in_cluster`: on the control plane's own runtime, use the
    /// in-cluster address). Makes no request.
    fn cluster(
        &self,
        kri: &KubernetesRuntimeInstance,
        in_cluster: bool,
    ) -> Result<Arc<dyn Cluster>, KubeError>;

    /// The credentials [`cluster`](Self::cluster) would use, for a program that reaches the
    /// runtime by itself (helm, through a kubeconfig).
    fn credentials(
        &self,
        kri: &KubernetesRuntimeInstance,
        in_cluster: bool,
    ) -> Result<RuntimeCredentials, KubeError>;

    /// Drop what is cached for runtime `runtime_id` (its clients, its discovery), e.g. once it
    /// is deleted. Nothing is cached by default.
    fn forget(&self, _runtime_id: u64) {}
}
