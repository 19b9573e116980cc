//! In-memory fakes of the Threeport API and of runtime clusters for reconciler unit tests:
//! they record every call and fail chosen calls on demand, so a reconciler's decisions
//! (requeues, retries after a partial failure, cleanup that carries on past a failed step)
//! are tested in milliseconds, and with `tokio::time::pause` its waits take no real time.
//!
//! They implement what the reconcilers rely on, no more: the API's envelope, IDs, query
//! filters (through the object table's query tags), pagination, the batch route of WRDs and
//! the 404s of GET and DELETE; a cluster's kinds and scopes, CRDs that become served after a
//! delay, server-side apply as "store the object", label selectors. The sandbox crate and the
//! real stack cover the wire details these leave out.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use kube::api::DynamicObject;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::engine::{Operation, ReconcileContext};
use crate::kube::{Cluster, Clusters, KubeError, RuntimeCredentials};
use crate::registry;
use crate::threeport::api::{ApiRequest, ApiResponse, Method, PageMeta, API_PAGE_SIZE};
use crate::threeport::models::{
    decode, format_timestamp, ApiObject, KubernetesRuntimeInstance, ALL_OBJECT_TYPES,
};
use crate::threeport::{ApiError, ObjectType, ThreeportApi};

/// The batch route of WRDs and the collection it writes to.
const SETS: &[(&str, &str)] = &[(
    "workload-resource-definition-sets",
    "workload-resource-definitions",
)];

/// One request the fake API received.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
}

struct ApiFault {
    method: Method,
    path_prefix: String,
    /// Calls to let through before failing.
    skip: usize,
    times: usize,
}

#[derive(Default)]
struct ApiState {
    next_id: u64,
    objects: HashMap<String, BTreeMap<u64, Value>>,
    calls: Vec<Call>,
    faults: Vec<ApiFault>,
}

/// An in-memory Threeport API.
#[derive(Default)]
pub struct FakeApi {
    state: Mutex<ApiState>,
}

impl FakeApi {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ApiState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Store an object (its ID assigned here) and return the ID.
    pub fn insert<T: ApiObject>(&self, object: &T) -> u64 {
        let mut value = serde_json::to_value(object).expect("encode");
        let mut st = self.state();
        st.next_id += 1;
        let id = 1_000 + st.next_id;
        value["ID"] = json!(id);
        st.objects
            .entry(T::OBJECT_TYPE.path.to_string())
            .or_default()
            .insert(id, value);
        id
    }

    pub fn get<T: ApiObject>(&self, id: u64) -> Option<T> {
        let v = self
            .state()
            .objects
            .get(T::OBJECT_TYPE.path)?
            .get(&id)?
            .clone();
        Some(decode(v).expect("decode"))
    }

    /// Every stored object of a type, in ID order.
    pub fn all<T: ApiObject>(&self) -> Vec<T> {
        let st = self.state();
        st.objects
            .get(T::OBJECT_TYPE.path)
            .map(|m| {
                m.values()
                    .map(|v| decode(v.clone()).expect("decode"))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Change a stored object in place.
    pub fn update<T: ApiObject>(&self, id: u64, change: impl FnOnce(&mut T)) {
        let mut object: T = self.get(id).expect("stored object");
        change(&mut object);
        let mut value = serde_json::to_value(&object).expect("encode");
        value["ID"] = json!(id);
        self.state()
            .objects
            .get_mut(T::OBJECT_TYPE.path)
            .expect("collection")
            .insert(id, value);
    }

    /// Remove a stored object (as another controller's DELETE would).
    pub fn remove<T: ApiObject>(&self, id: u64) {
        if let Some(m) = self.state().objects.get_mut(T::OBJECT_TYPE.path) {
            m.remove(&id);
        }
    }

    /// Answer 500 to `times` calls of `method` on paths starting with `path_prefix`, after
    /// letting `skip` such calls through.
    pub fn fail(&self, method: Method, path_prefix: &str, skip: usize, times: usize) {
        self.state().faults.push(ApiFault {
            method,
            path_prefix: path_prefix.to_string(),
            skip,
            times,
        });
    }

    /// How many calls of `method` went to paths starting with `path_prefix`.
    pub fn count(&self, method: Method, path_prefix: &str) -> usize {
        self.state()
            .calls
            .iter()
            .filter(|c| c.method == method && c.path.starts_with(path_prefix))
            .count()
    }

    fn injected_fault(st: &mut ApiState, request: &ApiRequest) -> Option<ApiError> {
        let fault = st.faults.iter_mut().find(|f| {
            f.times > 0 && f.method == request.method && request.path.starts_with(&f.path_prefix)
        })?;
        if fault.skip > 0 {
            fault.skip -= 1;
            return None;
        }
        fault.times -= 1;
        Some(ApiError::Status {
            method: request.method.as_str(),
            route: request.route.clone(),
            status: 500,
            message: "injected fault".into(),
        })
    }
}

fn not_found(request: &ApiRequest) -> ApiError {
    ApiError::NotFound {
        method: request.method.as_str(),
        route: request.route.clone(),
    }
}

fn object_type(path: &str) -> Option<&'static ObjectType> {
    ALL_OBJECT_TYPES.iter().find(|t| t.path == path)
}

/// Whether `object` passes the request's query filters (the table's query tags; `page` and
/// `size` are pagination; a key that is no query tag of the type is ignored, as the API does).
fn matches(ty: Option<&ObjectType>, object: &Value, query: &[(String, String)]) -> bool {
    query.iter().all(|(key, wanted)| {
        let Some(field) =
            ty.and_then(|t| t.fields().find(|f| f.query_key().as_deref() == Some(key)))
        else {
            return true;
        };
        match &object[field.json] {
            Value::String(s) => s == wanted,
            Value::Null => false,
            other => serde_json::from_str::<Value>(wanted).is_ok_and(|w| w == *other),
        }
    })
}

fn respond(data: Vec<Value>, total: usize, page: u64, size: u64) -> ApiResponse {
    ApiResponse {
        data,
        meta: PageMeta {
            page,
            size: size as i64,
            total_count: total as u64,
        },
    }
}

#[async_trait]
impl ThreeportApi for FakeApi {
    async fn call(&self, request: ApiRequest) -> Result<ApiResponse, ApiError> {
        let mut st = self.state();
        st.calls.push(Call {
            method: request.method,
            path: request.path.clone(),
            body: request.body.clone(),
        });
        if let Some(e) = Self::injected_fault(&mut st, &request) {
            return Err(e);
        }
        let rest = request.path.strip_prefix("/v0/").unwrap_or(&request.path);
        let (collection, id) = match rest.split_once('/') {
            Some((c, id)) => (c.to_string(), id.parse::<u64>().ok()),
            None => (rest.to_string(), None),
        };
        let now = format_timestamp(time::OffsetDateTime::now_utc());
        match (request.method, id) {
            (Method::Get, Some(id)) => {
                let object = st
                    .objects
                    .get(&collection)
                    .and_then(|m| m.get(&id))
                    .cloned();
                object
                    .map(|o| respond(vec![o], 1, 1, 1))
                    .ok_or_else(|| not_found(&request))
            }
            (Method::Get, None) => {
                let ty = object_type(&collection);
                let param = |k: &str| {
                    request
                        .query
                        .iter()
                        .find(|(q, _)| q == k)
                        .map(|(_, v)| v.clone())
                };
                let page: u64 = param("page")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(1)
                    .max(1);
                let size: u64 = param("size")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(API_PAGE_SIZE);
                let all: Vec<Value> = st
                    .objects
                    .get(&collection)
                    .map(|m| {
                        m.values()
                            .filter(|o| matches(ty, o, &request.query))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                let total = all.len();
                let data = all
                    .into_iter()
                    .skip(((page - 1) * size) as usize)
                    .take(size as usize)
                    .collect();
                Ok(respond(data, total, page, size))
            }
            (Method::Post, None) => {
                let (target, bodies) = match SETS.iter().find(|(set, _)| *set == collection) {
                    Some((_, target)) => (
                        target.to_string(),
                        request
                            .body
                            .clone()
                            .and_then(|b| b.as_array().cloned())
                            .unwrap_or_default(),
                    ),
                    None => (
                        collection.clone(),
                        request.body.clone().into_iter().collect(),
                    ),
                };
                let mut created = Vec::new();
                for mut body in bodies {
                    st.next_id += 1;
                    let id = 1_000 + st.next_id;
                    body["ID"] = json!(id);
                    body["CreatedAt"] = json!(now);
                    st.objects
                        .entry(target.clone())
                        .or_default()
                        .insert(id, body.clone());
                    created.push(body);
                }
                let n = created.len();
                Ok(respond(created, n, 1, n as u64))
            }
            (Method::Patch, Some(id)) => {
                let object = st
                    .objects
                    .get_mut(&collection)
                    .and_then(|m| m.get_mut(&id))
                    .ok_or_else(|| not_found(&request))?;
                if let (Some(Value::Object(changes)), Value::Object(target)) =
                    (&request.body, &mut *object)
                {
                    for (k, v) in changes {
                        target.insert(k.clone(), v.clone());
                    }
                }
                let object = object.clone();
                Ok(respond(vec![object], 1, 1, 1))
            }
            (Method::Delete, Some(id)) => st
                .objects
                .get_mut(&collection)
                .and_then(|m| m.remove(&id))
                .map(|o| respond(vec![o], 1, 1, 1))
                .ok_or_else(|| not_found(&request)),
            (Method::Delete, None) => {
                let ty = object_type(&collection);
                let store = st.objects.entry(collection.clone()).or_default();
                let doomed: Vec<u64> = store
                    .iter()
                    .filter(|(_, o)| matches(ty, o, &request.query))
                    .map(|(id, _)| *id)
                    .collect();
                if doomed.is_empty() {
                    return Err(not_found(&request));
                }
                let removed: Vec<Value> = doomed.iter().filter_map(|id| store.remove(id)).collect();
                let n = removed.len();
                Ok(respond(removed, n, 1, n as u64))
            }
            _ => Err(ApiError::Status {
                method: request.method.as_str(),
                route: request.route.clone(),
                status: 405,
                message: "not served by the fake API".into(),
            }),
        }
    }
}

/// (apiVersion, kind, namespace or "", name).
type ObjectKey = (String, String, String, String);

struct ClusterFault {
    op: &'static str,
    kind: String,
    times: usize,
}

struct ClusterState {
    /// (apiVersion, kind) -> namespaced, for kinds that are served.
    served: HashMap<(String, String), bool>,
    /// Kinds of applied CRDs, served from the instant given.
    pending: Vec<(Instant, (String, String), bool)>,
    objects: BTreeMap<ObjectKey, Value>,
    faults: Vec<ClusterFault>,
    ops: Vec<String>,
}

/// An in-memory runtime cluster.
pub struct FakeCluster {
    /// How long an applied CRD takes to be served (tokio time).
    crd_delay: Duration,
    state: Mutex<ClusterState>,
}

impl FakeCluster {
    /// Serves Namespaces, ConfigMaps, Services, ServiceAccounts, Deployments, RBAC, CRDs and
    /// ThreeportWorkloads.
    pub fn new(crd_delay: Duration) -> Arc<Self> {
        let served = [
            ("v1", "Namespace", false),
            ("v1", "ConfigMap", true),
            ("v1", "Service", true),
            ("v1", "ServiceAccount", true),
            ("apps/v1", "Deployment", true),
            ("rbac.authorization.k8s.io/v1", "Role", true),
            ("rbac.authorization.k8s.io/v1", "RoleBinding", true),
            ("rbac.authorization.k8s.io/v1", "ClusterRole", false),
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", false),
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition", false),
            (
                crate::kube::manifest::THREEPORT_WORKLOAD_API_VERSION,
                crate::kube::manifest::THREEPORT_WORKLOAD_KIND,
                false,
            ),
        ]
        .into_iter()
        .map(|(av, kind, ns)| ((av.to_string(), kind.to_string()), ns))
        .collect();
        Arc::new(Self {
            crd_delay,
            state: Mutex::new(ClusterState {
                served,
                pending: Vec::new(),
                objects: BTreeMap::new(),
                faults: Vec::new(),
                ops: Vec::new(),
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ClusterState> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let (ready, waiting): (Vec<_>, Vec<_>) =
            st.pending.drain(..).partition(|(at, _, _)| *at <= now);
        st.pending = waiting;
        for (_, key, namespaced) in ready {
            st.served.insert(key, namespaced);
        }
        st
    }

    /// Fail the next `times` `op`s ("apply", "delete") of objects of `kind` with a 500.
    pub fn fail(&self, op: &'static str, kind: &str, times: usize) {
        self.state().faults.push(ClusterFault {
            op,
            kind: kind.to_string(),
            times,
        });
    }

    /// Every stored object of a kind.
    pub fn objects(&self, kind: &str) -> Vec<Value> {
        self.state()
            .objects
            .iter()
            .filter(|((_, k, _, _), _)| k == kind)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Every stored object, in a stable order.
    pub fn all_objects(&self) -> Vec<Value> {
        self.state().objects.values().cloned().collect()
    }

    /// How many objects the cluster holds.
    pub fn len(&self) -> usize {
        self.state().objects.len()
    }

    /// Every operation, as `"<op> <kind> <name>"`.
    pub fn ops(&self) -> Vec<String> {
        self.state().ops.clone()
    }

    fn fault(
        st: &mut ClusterState,
        op: &'static str,
        kind: &str,
        target: &str,
    ) -> Result<(), KubeError> {
        if let Some(f) = st
            .faults
            .iter_mut()
            .find(|f| f.times > 0 && f.op == op && f.kind == kind)
        {
            f.times -= 1;
            return Err(KubeError::Api {
                runtime: "fake".into(),
                op,
                target: target.to_string(),
                code: 500,
                reason: "InternalError".into(),
                message: "injected fault".into(),
            });
        }
        Ok(())
    }
}

fn unknown(api_version: &str, kind: &str) -> KubeError {
    KubeError::UnknownKind {
        runtime: "fake".into(),
        api_version: api_version.to_string(),
        kind: kind.to_string(),
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

#[async_trait]
impl Cluster for FakeCluster {
    fn runtime(&self) -> &str {
        "fake"
    }

    async fn scopes(
        &self,
        objects: &[Value],
    ) -> Result<HashMap<(String, String), bool>, KubeError> {
        let mut scopes = crate::kube::manifest::crd_scopes(objects);
        let st = self.state();
        for o in objects {
            let key = (
                str_at(o, "/apiVersion").to_string(),
                str_at(o, "/kind").to_string(),
            );
            if scopes.contains_key(&key) {
                continue;
            }
            let namespaced = *st.served.get(&key).ok_or_else(|| unknown(&key.0, &key.1))?;
            scopes.insert(key, namespaced);
        }
        Ok(scopes)
    }

    async fn wait_for_kind(
        &self,
        api_version: &str,
        kind: &str,
        timeout: Duration,
    ) -> Result<(), KubeError> {
        let started = Instant::now();
        let key = (api_version.to_string(), kind.to_string());
        loop {
            if self.state().served.contains_key(&key) {
                return Ok(());
            }
            if started.elapsed() >= timeout {
                return Err(KubeError::Timeout {
                    runtime: "fake".into(),
                    what: format!("{api_version} {kind} to be served"),
                    after: timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn apply(&self, object: &DynamicObject) -> Result<DynamicObject, KubeError> {
        let value =
            serde_json::to_value(object).map_err(|e| KubeError::InvalidObject(e.to_string()))?;
        let (av, kind) = (str_at(&value, "/apiVersion"), str_at(&value, "/kind"));
        let (ns, name) = (
            str_at(&value, "/metadata/namespace"),
            str_at(&value, "/metadata/name"),
        );
        let mut st = self.state();
        st.ops.push(format!("apply {kind} {name}"));
        Self::fault(&mut st, "apply", kind, name)?;
        if !st.served.contains_key(&(av.to_string(), kind.to_string())) {
            return Err(unknown(av, kind));
        }
        if kind == "CustomResourceDefinition" {
            let crds = crate::kube::manifest::crd_scopes(std::slice::from_ref(&value));
            let at = Instant::now() + self.crd_delay;
            for (key, namespaced) in crds {
                st.pending.push((at, key, namespaced));
            }
        }
        let key = (
            av.to_string(),
            kind.to_string(),
            ns.to_string(),
            name.to_string(),
        );
        st.objects.insert(key, value);
        Ok(object.clone())
    }

    async fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<bool, KubeError> {
        let mut st = self.state();
        st.ops.push(format!("delete {kind} {name}"));
        Self::fault(&mut st, "delete", kind, name)?;
        let key = (
            api_version.to_string(),
            kind.to_string(),
            namespace.unwrap_or_default().to_string(),
            name.to_string(),
        );
        let existed = st.objects.remove(&key).is_some();
        if kind == "Namespace" && existed {
            st.objects.retain(|(_, _, ns, _), _| ns != name);
        }
        Ok(existed)
    }

    async fn list_by_label(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        selector: &str,
    ) -> Result<Vec<DynamicObject>, KubeError> {
        let wanted: Vec<(&str, &str)> = selector
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let st = self.state();
        Ok(st
            .objects
            .iter()
            .filter(|((av, k, ns, _), _)| {
                av == api_version && k == kind && namespace.is_none_or(|n| n == ns)
            })
            .filter(|(_, v)| {
                wanted
                    .iter()
                    .all(|(l, val)| v["metadata"]["labels"][*l] == *val)
            })
            .filter_map(|(_, v)| serde_json::from_value(v.clone()).ok())
            .collect())
    }
}

/// Every runtime instance is the one fake cluster.
pub struct FakeClusters(pub Arc<FakeCluster>);

impl Clusters for FakeClusters {
    fn cluster(
        &self,
        _kri: &KubernetesRuntimeInstance,
        _in_cluster: bool,
    ) -> Result<Arc<dyn Cluster>, KubeError> {
        Ok(self.0.clone())
    }

    /// The instance's own, without decryption.
    fn credentials(
        &self,
        kri: &KubernetesRuntimeInstance,
        in_cluster: bool,
    ) -> Result<RuntimeCredentials, KubeError> {
        RuntimeCredentials::from_instance(kri, in_cluster, None)
    }

    /// Recorded as the operation `forget runtime <id>`.
    fn forget(&self, runtime_id: u64) {
        self.0
            .state()
            .ops
            .push(format!("forget runtime {runtime_id}"));
    }
}

/// The context the engine would pass for the `attempt`-th delivery of `operation` on object
/// `id` of the named reconciler.
pub fn context(
    api: Arc<FakeApi>,
    reconciler: &str,
    id: u64,
    operation: Operation,
    attempt: u64,
) -> ReconcileContext {
    let (controller, reconciler) = registry::reconciler(reconciler).expect("registry reconciler");
    ReconcileContext {
        api,
        controller,
        reconciler,
        object_id: id,
        operation,
        attempt,
        instance_id: uuid::Uuid::nil(),
        cancel: tokio_util::sync::CancellationToken::new(),
        notified: Arc::new(serde_json::Value::Null),
    }
}

/// Token refreshes with default AWS settings and no encryption key (the unit tests' runtimes
/// use certificates or tokens that do not expire).
pub fn runtime_tokens() -> Arc<super::runtime_token::RuntimeTokens> {
    Arc::new(super::runtime_token::RuntimeTokens::new(Arc::new(
        crate::aws::AwsSessions::new(Default::default(), None),
    )))
}

/// Access to the runtimes of `clusters`, with [`runtime_tokens`].
pub fn runtime_access(clusters: Arc<dyn Clusters>) -> super::runtime_access::RuntimeAccess {
    super::runtime_access::RuntimeAccess::new(clusters, runtime_tokens())
}
