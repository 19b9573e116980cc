//! Per-runtime discovery cache: (apiVersion, kind) -> resource, plural and scope.
//!
//! Threeport runs a full discovery twice per reconcile plus one group-version call per
//! resource (spec 3.1.1, 4.3 item 29). Here only the group-version an object names is fetched
//! (`/api/v1` or `/apis/<group>/<version>`), lazily, once, and kept. A lookup that misses
//! refetches that group-version, at most once per `min_refresh` per group-version so a manifest
//! with a typo cannot hammer the API server, and so a CRD created a moment ago is found.
//! [`DiscoveryCache::invalidate_group`] lets the manager drop a group after it creates a CRD,
//! so the next lookup refetches without waiting for the rate limit.
//!
//! The version is the one the object's `apiVersion` names, not the group's preferred version
//! Go's REST mapper picks: the object body is written in that version, so sending it to another
//! version's endpoint would only work by accident.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList;
use kube::discovery::ApiResource;

use super::error::KubeError;

/// What discovery knows about one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedKind {
    /// Group, version, kind and plural, for building request URLs.
    pub resource: ApiResource,
    /// Namespace-scoped (`true`) or cluster-scoped (`false`).
    pub namespaced: bool,
}

#[derive(Default)]
struct GvState {
    /// When the group-version was last fetched; `None` = never.
    fetched_at: Option<Instant>,
    /// Kinds served by the group-version (empty if it is not served at all).
    kinds: HashMap<String, ResolvedKind>,
}

/// Discovery results of one runtime cluster, shared by all workers.
pub struct DiscoveryCache {
    runtime: String,
    min_refresh: Duration,
    /// One async mutex per group-version, so concurrent misses on the same group-version
    /// cause a single fetch while other group-versions proceed.
    gvs: Mutex<HashMap<String, Arc<tokio::sync::Mutex<GvState>>>>,
}

/// Split `apps/v1` into ("apps", "v1") and `v1` into ("", "v1").
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

impl DiscoveryCache {
    /// `runtime` names the cluster in errors; `min_refresh` is the least time between two
    /// fetches of one group-version caused by misses.
    pub fn new(runtime: impl Into<String>, min_refresh: Duration) -> Self {
        Self {
            runtime: runtime.into(),
            min_refresh,
            gvs: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, api_version: &str) -> Arc<tokio::sync::Mutex<GvState>> {
        self.gvs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(api_version.to_string())
            .or_default()
            .clone()
    }

    /// Resolve a kind, fetching its group-version when it was never fetched, or when the kind
    /// is missing and the last fetch is older than `min_refresh`.
    pub async fn resolve(
        &self,
        client: &kube::Client,
        api_version: &str,
        kind: &str,
    ) -> Result<ResolvedKind, KubeError> {
        let slot = self.slot(api_version);
        let mut state = slot.lock().await;
        if let Some(found) = state.kinds.get(kind) {
            return Ok(found.clone());
        }
        let stale = state
            .fetched_at
            .is_none_or(|t| t.elapsed() >= self.min_refresh);
        if stale {
            state.kinds = self.fetch(client, api_version).await?;
            state.fetched_at = Some(Instant::now());
            if let Some(found) = state.kinds.get(kind) {
                return Ok(found.clone());
            }
        }
        Err(KubeError::UnknownKind {
            runtime: self.runtime.clone(),
            api_version: api_version.to_string(),
            kind: kind.to_string(),
        })
    }

    /// Poll [`resolve`](Self::resolve) until the kind is served or `timeout` passes (for a
    /// custom resource whose CRD was created in the same sequence and is not established yet).
    pub async fn wait_for_kind(
        &self,
        client: &kube::Client,
        api_version: &str,
        kind: &str,
        timeout: Duration,
    ) -> Result<ResolvedKind, KubeError> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Poll no faster than the refresh limit allows fetches, and at least every 2 s.
        let interval = self
            .min_refresh
            .clamp(Duration::from_millis(50), Duration::from_secs(2));
        loop {
            match self.resolve(client, api_version, kind).await {
                Err(KubeError::UnknownKind { .. }) => {}
                other => return other,
            }
            if tokio::time::Instant::now() + interval > deadline {
                return Err(KubeError::Timeout {
                    runtime: self.runtime.clone(),
                    what: format!("kind {kind} in {api_version} to be served"),
                    after: timeout,
                });
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// Forget every group-version of `group` (e.g. after creating or changing a CRD of that
    /// group), so the next lookup fetches again regardless of the rate limit.
    pub fn invalidate_group(&self, group: &str) {
        self.gvs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|gv, _| split_api_version(gv).0 != group);
    }

    /// Forget everything.
    pub fn clear(&self) {
        self.gvs.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    async fn fetch(
        &self,
        client: &kube::Client,
        api_version: &str,
    ) -> Result<HashMap<String, ResolvedKind>, KubeError> {
        let (group, _) = split_api_version(api_version);
        let listed = if group.is_empty() {
            client.list_core_api_resources(api_version).await
        } else {
            client.list_api_group_resources(api_version).await
        };
        let target = if group.is_empty() {
            format!("/api/{api_version}")
        } else {
            format!("/apis/{api_version}")
        };
        match listed {
            Ok(list) => Ok(kinds_of(&list, api_version)),
            // A group-version that is not served (yet) is an empty list, not an error.
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(HashMap::new()),
            Err(e) => Err(KubeError::from_kube(&self.runtime, "discover", &target, e)),
        }
    }
}

/// The kinds of a resource list, without subresources (`deployments/status`).
fn kinds_of(list: &APIResourceList, api_version: &str) -> HashMap<String, ResolvedKind> {
    let (group, version) = split_api_version(api_version);
    list.resources
        .iter()
        .filter(|r| !r.name.contains('/'))
        .map(|r| {
            let resource = ApiResource {
                group: r.group.clone().unwrap_or_else(|| group.to_string()),
                version: r.version.clone().unwrap_or_else(|| version.to_string()),
                api_version: api_version.to_string(),
                kind: r.kind.clone(),
                plural: r.name.clone(),
            };
            (
                r.kind.clone(),
                ResolvedKind {
                    resource,
                    namespaced: r.namespaced,
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResource;

    #[test]
    fn splits() {
        assert_eq!(split_api_version("v1"), ("", "v1"));
        assert_eq!(split_api_version("apps/v1"), ("apps", "v1"));
        assert_eq!(
            split_api_version("control-plane.threeport.io/v1alpha1"),
            ("control-plane.threeport.io", "v1alpha1")
        );
    }

    #[test]
    fn parses_list_without_subresources() {
        let res = |name: &str, kind: &str, namespaced: bool| APIResource {
            name: name.into(),
            kind: kind.into(),
            namespaced,
            singular_name: String::new(),
            verbs: vec!["get".into()],
            ..Default::default()
        };
        let list = APIResourceList {
            group_version: "apps/v1".into(),
            resources: vec![
                res("deployments", "Deployment", true),
                res("deployments/status", "Deployment", true),
                res("controllerrevisions", "ControllerRevision", true),
            ],
        };
        let kinds = kinds_of(&list, "apps/v1");
        assert_eq!(kinds.len(), 2);
        let d = &kinds["Deployment"];
        assert_eq!(d.resource.plural, "deployments");
        assert_eq!(d.resource.group, "apps");
        assert_eq!(d.resource.version, "v1");
        assert!(d.namespaced);
    }

    #[test]
    fn invalidate_group_keeps_others() {
        let d = DiscoveryCache::new("r", Duration::from_secs(1));
        d.slot("v1");
        d.slot("apps/v1");
        d.slot("example.com/v1");
        d.slot("example.com/v2");
        d.invalidate_group("example.com");
        let keys: Vec<String> = d
            .gvs
            .lock()
            .unwrap()
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(keys, vec!["apps/v1".to_string(), "v1".to_string()]);
        d.invalidate_group("");
        assert_eq!(d.gvs.lock().unwrap().len(), 1);
    }
}
