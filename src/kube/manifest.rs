//! Manifest helpers with Threeport's observable behaviour (spec 3.1.2-3.1.4, 3.1.6).
//!
//! # Namespace assignment is deterministic
//!
//! Threeport names the managed namespace `<instance name>-<10 random [a-z0-9]>` and draws a new
//! name on every attempt, so each retry of a failed WorkloadInstance creation deploys into yet
//! another namespace and leaks the previous one (spec 4.3 item 23). Here the 10 characters are
//! derived from a SHA-256 of the instance ID ([`managed_namespace_name`]): every attempt for the
//! same instance gets the same namespace, a retry converges on what the first attempt created,
//! and the name keeps Threeport's shape, so tools that look namespaces up by label keep working.
//! The instance name part is lower-cased, stripped of characters a DNS label cannot hold and
//! truncated so the whole name is at most 63 characters.
//!
//! Also different from Go on purpose: the generated Namespace is put first and the other
//! objects keep their manifest order (Go moves the first object to the end, spec 4.3 item 28),
//! empty YAML documents are skipped, and the scope of a kind whose CRD is in the same manifest
//! comes from that CRD (see [`crd_scopes`]), so a CRD and its custom resources can be deployed
//! together. JSON object keys come out sorted (serde_json's map), which is also what Go's
//! re-marshalling in `SetNamespaces` produces.

use std::collections::HashMap;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// The namespace every `Gateway` object goes to (Threeport's `UpdateNamespace`).
pub const GATEWAY_NAMESPACE: &str = "nukleros-gateway-system";
/// Instance label key of WorkloadInstance resources.
pub const WORKLOAD_INSTANCE_LABEL: &str = "control-plane.threeport.io/workload-instance";
/// Instance label key of HelmWorkloadInstance resources.
pub const HELM_WORKLOAD_INSTANCE_LABEL: &str = "control-plane.threeport.io/helm-workload-instance";
/// `apiVersion` of the agent's ThreeportWorkload resource.
pub const THREEPORT_WORKLOAD_API_VERSION: &str = "control-plane.threeport.io/v1alpha1";
/// `kind` of the agent's ThreeportWorkload resource.
pub const THREEPORT_WORKLOAD_KIND: &str = "ThreeportWorkload";
/// Kinds whose pod template gets the instance labels (spec 3.1.4).
pub const POD_TEMPLATE_KINDS: [&str; 5] = [
    "Job",
    "ReplicaSet",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
];

/// Why a manifest could not be processed. `document` counts from 1, as a reader would count
/// the YAML documents (empty ones included) or the objects of a list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The document is not valid YAML, or has no JSON form.
    #[error("YAML document {document}: {reason}")]
    Yaml {
        /// The document, counted from 1.
        document: usize,
        /// The YAML parser's error.
        reason: String,
    },
    /// A document is a scalar or a list instead of a Kubernetes object.
    #[error("YAML document {document} is {found}, not an object")]
    NotAnObject {
        /// The document or object, counted from 1.
        document: usize,
        /// What it is instead: `a string`, `a list`, `null`, ...
        found: &'static str,
    },
    /// An object lacks what is needed (`apiVersion` and `kind`, a Namespace's name) or
    /// has a non-object `metadata`.
    #[error("object {document}: {reason}")]
    InvalidObject {
        /// The object, counted from 1.
        document: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// An object cannot be labelled: it, or a map on the way to its labels, is not an object.
    #[error("{0}")]
    Malformed(String),
    /// The runtime cluster does not serve the object's kind, so its scope is unknown.
    #[error("object {document}: kind {kind} in {api_version} is not known to the runtime")]
    UnknownKind {
        /// The object, counted from 1.
        document: usize,
        /// The object's `apiVersion`.
        api_version: String,
        /// The object's `kind`.
        kind: String,
    },
}

impl From<ManifestError> for super::KubeError {
    fn from(e: ManifestError) -> Self {
        super::KubeError::InvalidObject(e.to_string())
    }
}

/// A broken manifest needs a user to fix it: permanent.
impl crate::retry::Classify for ManifestError {
    fn retry_class(&self) -> crate::retry::RetryClass {
        crate::retry::RetryClass::Permanent
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Split a multi-document YAML stream into JSON objects, in order (spec 3.1.2). Empty and
/// comment-only documents are skipped; any other non-object document is an error.
pub fn split_yaml(doc: &str) -> Result<Vec<Value>, ManifestError> {
    use serde::Deserialize as _;
    let mut out = Vec::new();
    for (i, de) in serde_yaml_ng::Deserializer::from_str(doc).enumerate() {
        let document = i + 1;
        let yaml = serde_yaml_ng::Value::deserialize(de).map_err(|e| ManifestError::Yaml {
            document,
            reason: e.to_string(),
        })?;
        // Through serde so non-string keys become strings, as sigs.k8s.io/yaml does.
        let value = serde_json::to_value(&yaml).map_err(|e| ManifestError::Yaml {
            document,
            reason: e.to_string(),
        })?;
        match value {
            Value::Null => continue,
            Value::Object(_) => out.push(value),
            other => {
                return Err(ManifestError::NotAnObject {
                    document,
                    found: type_name(&other),
                })
            }
        }
    }
    Ok(out)
}

fn str_at<'a>(obj: &'a Value, pointer: &str) -> Option<&'a str> {
    obj.pointer(pointer).and_then(Value::as_str)
}

fn type_of(obj: &Value, document: usize) -> Result<(&str, &str), ManifestError> {
    match (str_at(obj, "/apiVersion"), str_at(obj, "/kind")) {
        (Some(av), Some(k)) if !av.is_empty() && !k.is_empty() => Ok((av, k)),
        _ => Err(ManifestError::InvalidObject {
            document,
            reason: "apiVersion and kind are required".to_string(),
        }),
    }
}

fn is_namespace(obj: &Value) -> bool {
    str_at(obj, "/kind") == Some("Namespace") && str_at(obj, "/apiVersion") == Some("v1")
}

fn is_crd(obj: &Value) -> bool {
    str_at(obj, "/kind") == Some("CustomResourceDefinition")
        && str_at(obj, "/apiVersion").is_some_and(|av| av.starts_with("apiextensions.k8s.io/"))
}

/// `<instance name>-<10 chars of [a-z0-9] from a hash of the instance ID>`, a valid DNS label
/// of at most 63 characters. The same instance always gets the same name (module docs).
pub fn managed_namespace_name(instance_name: &str, instance_id: u64) -> String {
    generated_namespace_name(
        instance_name,
        &format!("threeport-manager/managed-namespace/{instance_id}"),
    )
}

/// `<instance name>-<10 chars of [a-z0-9] from a hash of seed>`, a valid DNS label of at most
/// 63 characters; the seed names the kind of object and its ID, so two object types with the
/// same ID and name get different namespaces.
pub fn generated_namespace_name(instance_name: &str, seed: &str) -> String {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let digest = Sha256::digest(seed);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let mut n = u64::from_be_bytes(first);
    let mut suffix = String::with_capacity(10);
    for _ in 0..10 {
        suffix.push(char::from(ALPHABET[(n % 36) as usize]));
        n /= 36;
    }
    let prefix: String = instance_name
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    let prefix = prefix.trim_start_matches('-');
    let prefix: String = prefix.chars().take(63 - 11).collect();
    let prefix = prefix.trim_end_matches('-');
    if prefix.is_empty() {
        suffix
    } else {
        format!("{prefix}-{suffix}")
    }
}

/// Scopes of the kinds defined by CRDs in `objects`: (`group/version`, kind) -> namespaced,
/// for every served version (`spec.versions[].name`, or `spec.version` of v1beta1 CRDs).
pub fn crd_scopes(objects: &[Value]) -> HashMap<(String, String), bool> {
    let mut out = HashMap::new();
    for crd in objects.iter().filter(|o| is_crd(o)) {
        let (Some(group), Some(kind)) =
            (str_at(crd, "/spec/group"), str_at(crd, "/spec/names/kind"))
        else {
            continue;
        };
        let namespaced = str_at(crd, "/spec/scope") != Some("Cluster");
        let mut versions: Vec<&str> = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .map(|vs| vs.iter().filter_map(|v| str_at(v, "/name")).collect())
            .unwrap_or_default();
        if let Some(v) = str_at(crd, "/spec/version") {
            versions.push(v);
        }
        for v in versions {
            out.insert((format!("{group}/{v}"), kind.to_string()), namespaced);
        }
    }
    out
}

/// The result of [`assign_namespaces`].
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceAssignment {
    /// The namespace namespaced objects were put in (except `Gateway`s).
    pub namespace: String,
    /// The namespace is the first Namespace object of the manifest.
    pub client_managed: bool,
    /// A Namespace object was prepended to `objects`.
    pub namespace_added: bool,
    /// The objects with namespaces assigned, in manifest order.
    pub objects: Vec<Value>,
}

/// Spec 3.1.3, deterministic: the first `Namespace` in the manifest is the client-managed
/// namespace; otherwise [`managed_namespace_name`]. Every namespaced object gets that namespace
/// (overriding the manifest's, as Threeport does; `Gateway` always gets
/// [`GATEWAY_NAMESPACE`]); cluster-scoped objects are unchanged. If something is namespaced
/// and the namespace is not client-managed, a Namespace object is prepended.
///
/// `is_namespaced(apiVersion, kind)` answers the scope, `None` for an unknown kind (an
/// error, as in Go). `v1 Namespace` is known to be cluster-scoped without asking.
pub fn assign_namespaces<F>(
    objects: Vec<Value>,
    instance_name: &str,
    instance_id: u64,
    is_namespaced: F,
) -> Result<NamespaceAssignment, ManifestError>
where
    F: FnMut(&str, &str) -> Option<bool>,
{
    let managed = managed_namespace_name(instance_name, instance_id);
    assign_namespaces_with(objects, &managed, is_namespaced)
}

/// [`assign_namespaces`] with the managed namespace's name given: an earlier attempt's, which
/// a retry adopts instead of deploying a second copy (Go names it randomly, so a reconcile
/// taking over from a Go controller must reuse the name Go chose).
pub fn assign_namespaces_with<F>(
    objects: Vec<Value>,
    managed_namespace: &str,
    mut is_namespaced: F,
) -> Result<NamespaceAssignment, ManifestError>
where
    F: FnMut(&str, &str) -> Option<bool>,
{
    let mut client_ns = None;
    for (i, obj) in objects.iter().enumerate() {
        if is_namespace(obj) {
            let name = str_at(obj, "/metadata/name").filter(|n| !n.is_empty());
            client_ns = Some(
                name.ok_or_else(|| ManifestError::InvalidObject {
                    document: i + 1,
                    reason: "Namespace without metadata.name".to_string(),
                })?
                .to_string(),
            );
            break;
        }
    }
    let client_managed = client_ns.is_some();
    let namespace = client_ns.unwrap_or_else(|| managed_namespace.to_string());

    let mut any_namespaced = false;
    let mut out = Vec::with_capacity(objects.len() + 1);
    for (i, mut obj) in objects.into_iter().enumerate() {
        let document = i + 1;
        if !obj.is_object() {
            return Err(ManifestError::NotAnObject {
                document,
                found: type_name(&obj),
            });
        }
        let namespaced = if is_namespace(&obj) {
            false
        } else {
            let (av, kind) = type_of(&obj, document)?;
            is_namespaced(av, kind).ok_or_else(|| ManifestError::UnknownKind {
                document,
                api_version: av.to_string(),
                kind: kind.to_string(),
            })?
        };
        if namespaced {
            any_namespaced = true;
            let ns = if str_at(&obj, "/kind") == Some("Gateway") {
                GATEWAY_NAMESPACE
            } else {
                namespace.as_str()
            };
            metadata_mut(&mut obj, document)?.insert("namespace".into(), json!(ns));
        }
        out.push(obj);
    }
    let namespace_added = any_namespaced && !client_managed;
    if namespace_added {
        out.insert(
            0,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
        );
    }
    Ok(NamespaceAssignment {
        namespace,
        client_managed,
        namespace_added,
        objects: out,
    })
}

/// Order for creation: Namespaces, then CRDs, then everything else, each group in manifest
/// order (a stable sort), so namespaced objects find their namespace and custom resources
/// their CRD.
pub fn order_for_apply(mut objects: Vec<Value>) -> Vec<Value> {
    objects.sort_by_key(|o| {
        if is_namespace(o) {
            0
        } else if is_crd(o) {
            1
        } else {
            2
        }
    });
    objects
}

fn metadata_mut(
    obj: &mut Value,
    document: usize,
) -> Result<&mut Map<String, Value>, ManifestError> {
    let found = type_name(obj);
    let map = obj
        .as_object_mut()
        .ok_or(ManifestError::NotAnObject { document, found })?;
    map_child(map, "metadata").map_err(|reason| ManifestError::InvalidObject { document, reason })
}

/// `map[key]` as an object, created when absent or null; the error names the key.
fn map_child<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> Result<&'a mut Map<String, Value>, String> {
    let child = map.entry(key).or_insert(Value::Null);
    if child.is_null() {
        *child = json!({});
    }
    child
        .as_object_mut()
        .ok_or_else(|| format!("{key} is not an object"))
}

/// Spec 3.1.4: add Threeport's metadata labels where the key is absent, and for pod-owning
/// kinds ([`POD_TEMPLATE_KINDS`]) set, overwriting, the instance and managed-by labels of
/// `spec.template.metadata`. `instance_label_key` is [`WORKLOAD_INSTANCE_LABEL`] or
/// [`HELM_WORKLOAD_INSTANCE_LABEL`].
pub fn add_labels(
    obj: &mut Value,
    definition_name: &str,
    instance_name: &str,
    instance_id: u64,
    instance_label_key: &str,
) -> Result<(), ManifestError> {
    let id = instance_id.to_string();
    let kind = str_at(obj, "/kind").unwrap_or_default().to_string();
    let map = obj.as_object_mut().ok_or(ManifestError::Malformed(
        "a Kubernetes object must be a JSON object".to_string(),
    ))?;
    let labels = map_child(map, "metadata")
        .and_then(|m| map_child(m, "labels"))
        .map_err(|r| ManifestError::Malformed(format!("{kind}: {r}")))?;
    for (k, v) in [
        ("app.kubernetes.io/managed-by", "threeport"),
        ("app.kubernetes.io/name", definition_name),
        ("app.kubernetes.io/instance", instance_name),
        (instance_label_key, id.as_str()),
        ("control-plane.threeport.io/managed-by", "threeport"),
    ] {
        labels.entry(k).or_insert_with(|| json!(v));
    }
    if POD_TEMPLATE_KINDS.contains(&kind.as_str()) {
        let tlabels = map_child(map, "spec")
            .and_then(|m| map_child(m, "template"))
            .and_then(|m| map_child(m, "metadata"))
            .and_then(|m| map_child(m, "labels"))
            .map_err(|r| ManifestError::Malformed(format!("{kind} pod template: {r}")))?;
        tlabels.insert(instance_label_key.to_string(), json!(id));
        tlabels.insert(
            "control-plane.threeport.io/managed-by".to_string(),
            json!("threeport"),
        );
    }
    Ok(())
}

/// Which Threeport object a ThreeportWorkload stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadType {
    /// A WorkloadInstance of the workload controller.
    WorkloadInstance,
    /// A HelmWorkloadInstance of the helm-workload controller.
    HelmWorkloadInstance,
}

impl WorkloadType {
    /// `spec.workloadType`.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadType::WorkloadInstance => "WorkloadInstance",
            WorkloadType::HelmWorkloadInstance => "HelmWorkloadInstance",
        }
    }

    /// The instance label key of this workload type (spec 3.1.4).
    pub fn instance_label_key(self) -> &'static str {
        match self {
            WorkloadType::WorkloadInstance => WORKLOAD_INSTANCE_LABEL,
            WorkloadType::HelmWorkloadInstance => HELM_WORKLOAD_INSTANCE_LABEL,
        }
    }
}

/// `workload-instance-<id>` or `helm-workload-instance-<id>` (`agent.ThreeportWorkloadName`).
pub fn threeport_workload_name(workload_type: WorkloadType, instance_id: u64) -> String {
    match workload_type {
        WorkloadType::WorkloadInstance => format!("workload-instance-{instance_id}"),
        WorkloadType::HelmWorkloadInstance => format!("helm-workload-instance-{instance_id}"),
    }
}

/// One entry of `spec.workloadResourceInstances`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkloadResourceRef {
    /// `metadata.name` of the resource.
    pub name: String,
    /// `metadata.namespace`; empty for cluster-scoped resources.
    pub namespace: String,
    /// API group, empty for the core group (`v1`).
    pub group: String,
    /// API version within the group, e.g. `v1`.
    pub version: String,
    /// `kind`, e.g. `Deployment`.
    pub kind: String,
    /// ID of the WorkloadResourceInstance in the Threeport API.
    pub threeport_id: u64,
}

impl WorkloadResourceRef {
    /// From a Kubernetes object and the ID of its WorkloadResourceInstance.
    pub fn from_object(obj: &Value, threeport_id: u64) -> Self {
        let (group, version) =
            super::discovery::split_api_version(str_at(obj, "/apiVersion").unwrap_or_default());
        Self {
            name: str_at(obj, "/metadata/name")
                .unwrap_or_default()
                .to_string(),
            namespace: str_at(obj, "/metadata/namespace")
                .unwrap_or_default()
                .to_string(),
            group: group.to_string(),
            version: version.to_string(),
            kind: str_at(obj, "/kind").unwrap_or_default().to_string(),
            threeport_id,
        }
    }

    /// JSON with Go's `omitempty`: empty strings and a zero ID are left out.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in [
            ("name", &self.name),
            ("namespace", &self.namespace),
            ("group", &self.group),
            ("version", &self.version),
            ("kind", &self.kind),
        ] {
            if !v.is_empty() {
                m.insert(k.to_string(), json!(v));
            }
        }
        if self.threeport_id != 0 {
            m.insert("threeportID".to_string(), json!(self.threeport_id));
        }
        Value::Object(m)
    }
}

/// The cluster-scoped ThreeportWorkload object the agent watches (spec 3.1.6), shaped as Go's
/// `DefaultUnstructuredConverter` produces it (all spec fields `omitempty`).
pub fn threeport_workload(
    workload_type: WorkloadType,
    instance_id: u64,
    resources: &[WorkloadResourceRef],
) -> Value {
    let mut spec = Map::new();
    spec.insert("workloadType".to_string(), json!(workload_type.as_str()));
    if instance_id != 0 {
        spec.insert("workloadInstanceId".to_string(), json!(instance_id));
    }
    if !resources.is_empty() {
        spec.insert(
            "workloadResourceInstances".to_string(),
            Value::Array(resources.iter().map(WorkloadResourceRef::to_json).collect()),
        );
    }
    json!({
        "apiVersion": THREEPORT_WORKLOAD_API_VERSION,
        "kind": THREEPORT_WORKLOAD_KIND,
        "metadata": {
            "name": threeport_workload_name(workload_type, instance_id),
            "creationTimestamp": null,
        },
        "spec": Value::Object(spec),
        "status": {},
    })
}
