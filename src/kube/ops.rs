//! Operations on unstructured objects in a runtime cluster, and the per-runtime handle.
//!
//! Create-or-update is **server-side apply** with the fixed field manager
//! [`FIELD_MANAGER`] and `force`, not Threeport's POST, GET, full-replace `PUT` (spec 3.1.5):
//! a full replace drops every field the manifest does not contain, including the finalizer
//! the Threeport agent adds to the ThreeportWorkload and anything other controllers set
//! (spec 4.3 item 26). With apply, fields owned by other managers stay, fields the manager
//! stops sending are removed, and the manager's labels stay because they are part of what it
//! applies. `force` takes over fields another manager (e.g. a `kubectl edit`) changed, because
//! Threeport is the source of truth for what it deploys. It also makes Go's special case
//! for `Service` (a 422 on create-or-update because a full `PUT` tries to clear the
//! server-assigned `clusterIP`) unnecessary: fields the manifest does not set are not touched.
//!
//! Every call has the client's connect/read/write timeouts ([`ClientSettings`]); nothing is
//! retried here, the engine retries with backoff according to
//! [`KubeError::retry_class`].

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, PropagationPolicy,
};
use serde_json::Value;

use super::clients::{ClientCache, ClientSettings};
use super::cluster::{Cluster, Clusters};
use super::credentials::{RuntimeCredentials, IN_CLUSTER_ENDPOINT};
use super::discovery::{split_api_version, DiscoveryCache, ResolvedKind};
use super::error::KubeError;
use crate::threeport::crypto::{CryptoError, EncryptionKey};
use crate::threeport::models::KubernetesRuntimeInstance;

/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "threeport-manager";

/// Namespace for a namespaced object that names none (what kubectl does).
pub const DEFAULT_NAMESPACE: &str = "default";

/// Settings of the Kubernetes access layer.
#[derive(Debug, Clone)]
pub struct KubeSettings {
    /// Timeouts of the clients built for runtime clusters.
    pub client: ClientSettings,
    /// Least time between two discovery fetches of one group-version caused by misses.
    pub discovery_min_refresh: Duration,
    /// Propagation policy of [`RuntimeHandle::delete`]. Background (the API server's default
    /// for most kinds) returns at once and lets the garbage collector remove dependents.
    pub propagation: PropagationPolicy,
}

impl Default for KubeSettings {
    fn default() -> Self {
        Self {
            client: ClientSettings::default(),
            discovery_min_refresh: Duration::from_secs(1),
            propagation: PropagationPolicy::Background,
        }
    }
}

/// Turn a JSON object (e.g. a manifest document) into a `DynamicObject`.
pub fn dynamic_object(value: Value) -> Result<DynamicObject, KubeError> {
    serde_json::from_value(value).map_err(|e| KubeError::InvalidObject(e.to_string()))
}

/// A client plus the discovery cache of one runtime cluster. Cheap to clone.
#[derive(Clone)]
pub struct RuntimeHandle {
    runtime: String,
    client: kube::Client,
    discovery: Arc<DiscoveryCache>,
    propagation: PropagationPolicy,
}

/// Where an object lives: its resolved kind, namespace (for namespaced kinds) and name.
struct Target {
    kind: ResolvedKind,
    namespace: Option<String>,
    name: String,
}

impl Target {
    fn describe(&self) -> String {
        let r = &self.kind.resource;
        match &self.namespace {
            Some(ns) => format!("{} {} {}/{}", r.api_version, r.kind, ns, self.name),
            None => format!("{} {} {}", r.api_version, r.kind, self.name),
        }
    }
}

impl RuntimeHandle {
    /// A handle on one runtime: `runtime` is its `"<name> (ID <id>)"` label for errors.
    pub fn new(
        runtime: impl Into<String>,
        client: kube::Client,
        discovery: Arc<DiscoveryCache>,
        propagation: PropagationPolicy,
    ) -> Self {
        Self {
            runtime: runtime.into(),
            client,
            discovery,
            propagation,
        }
    }

    /// `"<name> (ID <id>)"` of the runtime instance.
    pub fn runtime(&self) -> &str {
        &self.runtime
    }

    /// The kube-rs client, for requests the handle has no method for.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// The runtime's discovery cache, shared by every handle on it.
    pub fn discovery(&self) -> &Arc<DiscoveryCache> {
        &self.discovery
    }

    /// Resource and scope of a kind (cached; see [`DiscoveryCache::resolve`]).
    pub async fn resolve(&self, api_version: &str, kind: &str) -> Result<ResolvedKind, KubeError> {
        self.discovery
            .resolve(&self.client, api_version, kind)
            .await
    }

    /// Wait until a kind is served (a CRD created in the same sequence), up to `timeout`.
    pub async fn wait_for_kind(
        &self,
        api_version: &str,
        kind: &str,
        timeout: Duration,
    ) -> Result<ResolvedKind, KubeError> {
        self.discovery
            .wait_for_kind(&self.client, api_version, kind, timeout)
            .await
    }

    async fn target(&self, obj: &DynamicObject) -> Result<Target, KubeError> {
        let types = obj.types.as_ref().ok_or_else(|| {
            KubeError::InvalidObject("object without apiVersion and kind".to_string())
        })?;
        let name = obj
            .metadata
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                KubeError::InvalidObject(format!(
                    "{} {} without metadata.name",
                    types.api_version, types.kind
                ))
            })?;
        let kind = self.resolve(&types.api_version, &types.kind).await?;
        self.target_of(kind, obj.metadata.namespace.as_deref(), &name)
    }

    fn target_of(
        &self,
        kind: ResolvedKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Target, KubeError> {
        let namespace = if kind.namespaced {
            Some(
                namespace
                    .filter(|n| !n.is_empty())
                    .unwrap_or(DEFAULT_NAMESPACE)
                    .to_string(),
            )
        } else {
            None
        };
        Ok(Target {
            kind,
            namespace,
            name: name.to_string(),
        })
    }

    fn api(&self, t: &Target) -> Api<DynamicObject> {
        match &t.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &t.kind.resource),
            None => Api::all_with(self.client.clone(), &t.kind.resource),
        }
    }

    fn err(&self, op: &'static str, t: &Target, e: kube::Error) -> KubeError {
        KubeError::from_kube(&self.runtime, op, &t.describe(), e)
    }

    /// The body to send: namespace set for namespaced kinds and cleared for cluster-scoped
    /// ones (the API server would clear it too), server-populated fields removed so a live
    /// object can be passed back in.
    fn body(obj: &DynamicObject, t: &Target) -> DynamicObject {
        let mut body = obj.clone();
        body.metadata.namespace = t.namespace.clone();
        body.metadata.resource_version = None;
        body.metadata.uid = None;
        body.metadata.creation_timestamp = None;
        body.metadata.managed_fields = None;
        body.metadata.generation = None;
        body.metadata.deletion_timestamp = None;
        body
    }

    /// After the manager writes a CRD, its group's discovery is stale.
    fn after_write(&self, obj: &DynamicObject) {
        if obj.types.as_ref().is_some_and(|t| {
            t.kind == "CustomResourceDefinition"
                && split_api_version(&t.api_version).0 == "apiextensions.k8s.io"
        }) {
            if let Some(group) = obj.data.pointer("/spec/group").and_then(Value::as_str) {
                self.discovery.invalidate_group(group);
            }
        }
    }

    /// POST the object. AlreadyExists is success: the live object is returned unchanged
    /// (Threeport's `CreateResource`, which returns its input instead).
    pub async fn create(&self, obj: &DynamicObject) -> Result<DynamicObject, KubeError> {
        let t = self.target(obj).await?;
        let api = self.api(&t);
        let result = api
            .create(&PostParams::default(), &Self::body(obj, &t))
            .await;
        self.after_write(obj);
        match result {
            Ok(created) => Ok(created),
            Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "AlreadyExists" => {
                api.get(&t.name).await.map_err(|e| self.err("get", &t, e))
            }
            Err(e) => Err(self.err("create", &t, e)),
        }
    }

    /// [`delete`](Self::delete) with an explicit propagation policy.
    pub async fn delete_with(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        propagation: PropagationPolicy,
    ) -> Result<bool, KubeError> {
        let rk = match self.resolve(api_version, kind).await {
            Ok(rk) => rk,
            // A kind that is not served has no objects left to delete (e.g. its CRD is gone).
            Err(KubeError::UnknownKind { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        let t = self.target_of(rk, namespace, name)?;
        let params = DeleteParams {
            propagation_policy: Some(propagation),
            ..Default::default()
        };
        match self.api(&t).delete(&t.name, &params).await {
            Ok(_) => {
                if kind == "CustomResourceDefinition" {
                    if let Some((_, group)) = name.split_once('.') {
                        self.discovery.invalidate_group(group);
                    }
                }
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(e) => Err(self.err("delete", &t, e)),
        }
    }

    /// GET; `None` when the object (or its kind) does not exist.
    pub async fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<DynamicObject>, KubeError> {
        let rk = match self.resolve(api_version, kind).await {
            Ok(rk) => rk,
            Err(KubeError::UnknownKind { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let t = self.target_of(rk, namespace, name)?;
        self.api(&t)
            .get_opt(&t.name)
            .await
            .map_err(|e| self.err("get", &t, e))
    }
}

/// Owns the client cache and one discovery cache per runtime, and hands out
/// [`RuntimeHandle`]s. One per process, shared by all reconcilers.
pub struct KubeRuntimes {
    key: Option<EncryptionKey>,
    settings: KubeSettings,
    clients: ClientCache,
    /// Keyed like the client cache; the endpoint is kept so a moved cluster starts afresh.
    discovery: Mutex<HashMap<(u64, bool), DiscoveryEntry>>,
}

/// The endpoint a discovery cache was built for, and the cache.
type DiscoveryEntry = (String, Arc<DiscoveryCache>);

impl KubeRuntimes {
    /// `key`: the manager's `ENCRYPTION_KEY` (None: secret fields are used as stored).
    pub fn new(key: Option<EncryptionKey>, settings: KubeSettings) -> Self {
        Self {
            key,
            clients: ClientCache::new(settings.client.clone()),
            settings,
            discovery: Mutex::new(HashMap::new()),
        }
    }

    /// With the key from the manager's configuration.
    pub fn from_config(
        config: &crate::config::Config,
        settings: KubeSettings,
    ) -> Result<Self, CryptoError> {
        let key = config
            .encryption_key
            .as_ref()
            .map(|k| EncryptionKey::from_base64(k.expose()))
            .transpose()?;
        Ok(Self::new(key, settings))
    }

    /// The client cache, one client per runtime instance and endpoint.
    pub fn clients(&self) -> &ClientCache {
        &self.clients
    }

    /// Credentials of a runtime instance (spec 3.1.1), decrypted with the configured key.
    pub fn credentials(
        &self,
        kri: &KubernetesRuntimeInstance,
        in_cluster: bool,
    ) -> Result<RuntimeCredentials, KubeError> {
        RuntimeCredentials::from_instance(kri, in_cluster, self.key.as_ref())
    }

    /// A handle on the runtime: the cached client (rebuilt if the credentials changed) and
    /// the runtime's discovery cache. Makes no request.
    pub fn handle_for(
        &self,
        kri: &KubernetesRuntimeInstance,
        in_cluster: bool,
    ) -> Result<RuntimeHandle, KubeError> {
        let creds = self.credentials(kri, in_cluster)?;
        let client = self.clients.get(&creds)?.0;
        let key = (creds.runtime_id, creds.endpoint == IN_CLUSTER_ENDPOINT);
        let discovery = {
            let mut map = self.discovery.lock().unwrap_or_else(|p| p.into_inner());
            match map.get(&key) {
                Some((endpoint, d)) if *endpoint == creds.endpoint => d.clone(),
                _ => {
                    let d = Arc::new(DiscoveryCache::new(
                        creds.runtime.clone(),
                        self.settings.discovery_min_refresh,
                    ));
                    map.insert(key, (creds.endpoint.clone(), d.clone()));
                    d
                }
            }
        };
        Ok(RuntimeHandle::new(
            creds.runtime,
            client,
            discovery,
            self.settings.propagation.clone(),
        ))
    }

    /// Drop the client and discovery of a runtime instance (e.g. once it is deleted).
    pub fn forget(&self, runtime_id: u64) {
        self.clients.remove(runtime_id);
        self.discovery
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(id, _), _| *id != runtime_id);
    }
}

/// The operations reconcilers use (see [`Cluster`]), on a real runtime cluster.
#[async_trait::async_trait]
impl Cluster for RuntimeHandle {
    fn runtime(&self) -> &str {
        RuntimeHandle::runtime(self)
    }

    async fn wait_for_kind(
        &self,
        api_version: &str,
        kind: &str,
        timeout: Duration,
    ) -> Result<(), KubeError> {
        RuntimeHandle::wait_for_kind(self, api_version, kind, timeout)
            .await
            .map(|_| ())
    }

    /// Kinds defined by a CRD in the same list take their scope from that CRD, so a CRD and
    /// its custom resources can be deployed together (spec 4.3 item 27); everything else
    /// comes from discovery.
    async fn scopes(
        &self,
        objects: &[Value],
    ) -> Result<HashMap<(String, String), bool>, KubeError> {
        let mut scopes = super::manifest::crd_scopes(objects);
        for obj in objects {
            let (Some(av), Some(kind)) = (
                obj.get("apiVersion").and_then(Value::as_str),
                obj.get("kind").and_then(Value::as_str),
            ) else {
                return Err(KubeError::InvalidObject(
                    "object without apiVersion or kind".to_string(),
                ));
            };
            if let Entry::Vacant(slot) = scopes.entry((av.to_string(), kind.to_string())) {
                slot.insert(self.resolve(av, kind).await?.namespaced);
            }
        }
        Ok(scopes)
    }

    /// Server-side apply, forced (see the module docs for why).
    async fn apply(&self, obj: &DynamicObject) -> Result<DynamicObject, KubeError> {
        let t = self.target(obj).await?;
        let api = self.api(&t);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let body = Self::body(obj, &t);
        let result = api.patch(&t.name, &params, &Patch::Apply(&body)).await;
        self.after_write(obj);
        result.map_err(|e| self.err("apply", &t, e))
    }

    /// With the configured propagation policy.
    async fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<bool, KubeError> {
        self.delete_with(api_version, kind, namespace, name, self.propagation.clone())
            .await
    }

    async fn list_by_label(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        selector: &str,
    ) -> Result<Vec<DynamicObject>, KubeError> {
        let rk = self.resolve(api_version, kind).await?;
        let what = format!(
            "{api_version} {kind} in {} with labels {selector:?}",
            namespace.unwrap_or("all namespaces")
        );
        let api: Api<DynamicObject> = match namespace.filter(|_| rk.namespaced) {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &rk.resource),
            None => Api::all_with(self.client.clone(), &rk.resource),
        };
        api.list(&ListParams::default().labels(selector))
            .await
            .map(|l| l.items)
            .map_err(|e| KubeError::from_kube(&self.runtime, "list", &what, e))
    }
}

impl Clusters for KubeRuntimes {
    fn cluster(
        &self,
        kri: &KubernetesRuntimeInstance,
        in_cluster: bool,
    ) -> Result<Arc<dyn Cluster>, KubeError> {
        Ok(Arc::new(self.handle_for(kri, in_cluster)?))
    }

    fn credentials(
        &self,
        kri: &KubernetesRuntimeInstance,
        in_cluster: bool,
    ) -> Result<RuntimeCredentials, KubeError> {
        KubeRuntimes::credentials(self, kri, in_cluster)
    }

    fn forget(&self, runtime_id: u64) {
        KubeRuntimes::forget(self, runtime_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threeport::models::{Common, Instance, SecretString};

    fn kri(control_plane_host: bool) -> KubernetesRuntimeInstance {
        KubernetesRuntimeInstance {
            common: Common {
                id: Some(3),
                ..Default::default()
            },
            instance: Instance {
                name: Some("host".into()),
                ..Default::default()
            },
            threeport_control_plane_host: Some(control_plane_host),
            api_endpoint: Some("https://127.0.0.1:1".into()),
            connection_token: Some(SecretString("t".into())),
            ..Default::default()
        }
    }

    #[test]
    fn dynamic_object_needs_an_object() {
        let o = dynamic_object(serde_json::json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"k":"v"}}))
            .unwrap();
        assert_eq!(o.types.unwrap().kind, "ConfigMap");
        assert_eq!(o.data["data"]["k"], "v");
        assert!(matches!(
            dynamic_object(serde_json::json!([1])),
            Err(KubeError::InvalidObject(_))
        ));
    }

    #[tokio::test]
    async fn in_cluster_and_external_handles_are_cached_separately() {
        let rt = KubeRuntimes::new(None, KubeSettings::default());
        let inside = rt.handle_for(&kri(true), true).unwrap();
        let outside = rt.handle_for(&kri(true), false).unwrap();
        assert_eq!(rt.clients().len(), 2);
        assert!(!Arc::ptr_eq(inside.discovery(), outside.discovery()));
        // Same key again: same discovery cache, no new client.
        let again = rt.handle_for(&kri(true), true).unwrap();
        assert!(Arc::ptr_eq(inside.discovery(), again.discovery()));
        assert_eq!(rt.clients().len(), 2);
        // Without ThreeportControlPlaneHost the in-cluster flag changes nothing.
        rt.forget(3);
        assert!(rt.clients().is_empty());
        rt.handle_for(&kri(false), true).unwrap();
        rt.handle_for(&kri(false), false).unwrap();
        assert_eq!(rt.clients().len(), 1);
        assert_eq!(inside.runtime(), "host (ID 3)");
    }

    #[test]
    fn from_config_rejects_a_bad_key() {
        let mut c = crate::config::Config::default();
        assert!(KubeRuntimes::from_config(&c, KubeSettings::default()).is_ok());
        c.encryption_key = Some(crate::config::Secret::new("not base64!"));
        assert!(KubeRuntimes::from_config(&c, KubeSettings::default()).is_err());
    }
}
