//! The resource registry (built-in resources plus those added by CustomResourceDefinitions)
//! and the discovery documents rendered from it.

use serde_json::{json, Value};

/// Verbs every served resource lists, as the kube-apiserver does for the built-ins below.
pub(crate) const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResourceDef {
    /// API group, `""` for core.
    pub group: String,
    /// Served versions, preferred first.
    pub versions: Vec<String>,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// `metadata.generation` is maintained (set to 1 on create, +1 on a non-metadata change).
    pub generation: bool,
    /// Has a `status` subresource: `status` is dropped on create and kept on update/patch of
    /// the main resource.
    pub status: bool,
    /// Defined by a CustomResourceDefinition (list items keep `apiVersion`/`kind`).
    pub custom: bool,
}

impl ResourceDef {
    /// `deployments.apps`, `configmaps`: the qualified resource used in Status messages.
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Deployment.apps`, `ConfigMap`: the qualified kind used in Invalid messages.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{}", self.group, version)
        }
    }
}

/// (group, version, plural, kind, namespaced, shortNames, categories, generation, status)
type Builtin = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
    &'static [&'static str],
    bool,
    bool,
);

const BUILTINS: &[Builtin] = &[
    (
        "",
        "v1",
        "configmaps",
        "ConfigMap",
        true,
        &["cm"],
        &[],
        false,
        false,
    ),
    (
        "",
        "v1",
        "events",
        "Event",
        true,
        &["ev"],
        &[],
        false,
        false,
    ),
    (
        "",
        "v1",
        "namespaces",
        "Namespace",
        false,
        &["ns"],
        &[],
        false,
        true,
    ),
    (
        "",
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        true,
        &["pvc"],
        &[],
        false,
        true,
    ),
    (
        "",
        "v1",
        "pods",
        "Pod",
        true,
        &["po"],
        &["all"],
        false,
        true,
    ),
    ("", "v1", "secrets", "Secret", true, &[], &[], false, false),
    (
        "",
        "v1",
        "serviceaccounts",
        "ServiceAccount",
        true,
        &["sa"],
        &[],
        false,
        false,
    ),
    (
        "",
        "v1",
        "services",
        "Service",
        true,
        &["svc"],
        &["all"],
        false,
        true,
    ),
    (
        "apps",
        "v1",
        "daemonsets",
        "DaemonSet",
        true,
        &["ds"],
        &["all"],
        true,
        true,
    ),
    (
        "apps",
        "v1",
        "deployments",
        "Deployment",
        true,
        &["deploy"],
        &["all"],
        true,
        true,
    ),
    (
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        true,
        &["rs"],
        &["all"],
        true,
        true,
    ),
    (
        "apps",
        "v1",
        "statefulsets",
        "StatefulSet",
        true,
        &["sts"],
        &["all"],
        true,
        true,
    ),
    (
        "batch",
        "v1",
        "cronjobs",
        "CronJob",
        true,
        &["cj"],
        &["all"],
        true,
        true,
    ),
    (
        "batch",
        "v1",
        "jobs",
        "Job",
        true,
        &[],
        &["all"],
        true,
        true,
    ),
    (
        "networking.k8s.io",
        "v1",
        "ingresses",
        "Ingress",
        true,
        &["ing"],
        &[],
        true,
        true,
    ),
    (
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "NetworkPolicy",
        true,
        &["netpol"],
        &[],
        true,
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
        &[],
        &[],
        false,
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        false,
        &[],
        &[],
        false,
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        true,
        &[],
        &[],
        false,
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "Role",
        true,
        &[],
        &[],
        false,
        false,
    ),
    (
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
        &["api-extensions"],
        true,
        true,
    ),
];

pub(crate) fn builtins() -> Vec<ResourceDef> {
    BUILTINS
        .iter()
        .map(|(g, v, p, k, ns, sn, cat, gen, st)| ResourceDef {
            group: g.to_string(),
            versions: vec![v.to_string()],
            plural: p.to_string(),
            singular: k.to_lowercase(),
            kind: k.to_string(),
            list_kind: format!("{k}List"),
            namespaced: *ns,
            short_names: sn.iter().map(|s| s.to_string()).collect(),
            categories: cat.iter().map(|s| s.to_string()).collect(),
            generation: *gen,
            status: *st,
            custom: false,
        })
        .collect()
}

/// Kubernetes version priority (`k8s.io/apimachinery/pkg/version.CompareKubeAwareVersionStrings`):
/// GA > beta > alpha, higher major first, then higher minor; non-Kubernetes versions last,
/// alphabetically. Returns a key that sorts the preferred version first.
pub(crate) fn version_sort_key(v: &str) -> (u8, i64, i64, String) {
    let parse = |s: &str| -> Option<(u8, i64, i64)> {
        let rest = s.strip_prefix('v')?;
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        let major: i64 = digits.parse().ok()?;
        let tail = &rest[digits.len()..];
        if tail.is_empty() {
            return Some((0, -major, 0));
        }
        for (i, pre) in ["beta", "alpha"].iter().enumerate() {
            if let Some(n) = tail.strip_prefix(pre) {
                let minor: i64 = n.parse().ok()?;
                return Some((i as u8 + 1, -major, -minor));
            }
        }
        None
    };
    match parse(v) {
        Some((a, b, c)) => (a, b, c, String::new()),
        None => (9, 0, 0, v.to_string()),
    }
}

pub(crate) fn sort_versions(vs: &mut [String]) {
    vs.sort_by_key(|v| version_sort_key(v));
}

/// The groups (excluding core) in the order the server lists them: built-in groups in the
/// order above, then CRD groups alphabetically (the real server orders by group priority).
pub(crate) fn groups(defs: &[ResourceDef]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for d in defs.iter().filter(|d| !d.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == d.group) {
            Some((_, vs)) => {
                for v in &d.versions {
                    if !vs.contains(v) {
                        vs.push(v.clone());
                    }
                }
            }
            None => out.push((d.group.clone(), d.versions.clone())),
        }
    }
    for (_, vs) in &mut out {
        sort_versions(vs);
    }
    out
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({
        "name": name,
        "versions": vs,
        "preferredVersion": vs.first().cloned().unwrap_or(Value::Null),
    })
}

pub(crate) fn version_doc() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": "v1.33.0",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

pub(crate) fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

pub(crate) fn api_group_list(defs: &[ResourceDef]) -> Value {
    let groups: Vec<Value> = groups(defs)
        .iter()
        .map(|(g, vs)| group_json(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub(crate) fn api_group(defs: &[ResourceDef], group: &str) -> Option<Value> {
    let (g, vs) = groups(defs).into_iter().find(|(g, _)| g == group)?;
    let mut v = group_json(&g, &vs);
    if let Some(o) = v.as_object_mut() {
        o.insert("kind".into(), json!("APIGroup"));
        o.insert("apiVersion".into(), json!("v1"));
    }
    Some(v)
}

fn served_in<'a>(
    defs: &'a [ResourceDef],
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'a ResourceDef> {
    defs.iter()
        .filter(move |d| d.group == group && d.versions.iter().any(|v| v == version))
}

/// `/api/v1` or `/apis/<g>/<v>`; `None` when the group/version is not served.
pub(crate) fn api_resource_list(defs: &[ResourceDef], group: &str, version: &str) -> Option<Value> {
    let mut rs: Vec<&ResourceDef> = served_in(defs, group, version).collect();
    if rs.is_empty() && !(group.is_empty() && version == "v1") {
        return None;
    }
    rs.sort_by(|a, b| a.plural.cmp(&b.plural));
    let mut resources: Vec<Value> = Vec::new();
    for d in rs {
        resources.push({
            let mut r = json!({
                "name": d.plural,
                "singularName": d.singular,
                "namespaced": d.namespaced,
                "kind": d.kind,
                "verbs": VERBS,
            });
            if let Some(o) = r.as_object_mut() {
                if !d.short_names.is_empty() {
                    o.insert("shortNames".into(), json!(d.short_names));
                }
                if !d.categories.is_empty() {
                    o.insert("categories".into(), json!(d.categories));
                }
            }
            r
        });
        if d.status {
            resources.push(json!({
                "name": format!("{}/status", d.plural),
                "singularName": "",
                "namespaced": d.namespaced,
                "kind": d.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": if group.is_empty() { version.to_string() } else { format!("{group}/{version}") },
        "resources": resources,
    }))
}

/// The `Accept` value that selects aggregated discovery (`apidiscovery.k8s.io/v2`).
pub(crate) fn wants_aggregated(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let mut it = part.split(';').map(str::trim);
        let media = it.next().unwrap_or("");
        let params: Vec<&str> = it.collect();
        media == "application/json"
            && params.contains(&"g=apidiscovery.k8s.io")
            && params.contains(&"v=v2")
            && params.contains(&"as=APIGroupDiscoveryList")
    })
}

pub(crate) const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

fn aggregated_group(defs: &[ResourceDef], group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| {
            let mut rs: Vec<&ResourceDef> = served_in(defs, group, v).collect();
            rs.sort_by(|a, b| a.plural.cmp(&b.plural));
            let resources: Vec<Value> = rs
                .iter()
                .map(|d| {
                    let mut r = json!({
                        "resource": d.plural,
                        "responseKind": {"group": group, "version": v, "kind": d.kind},
                        "scope": if d.namespaced { "Namespaced" } else { "Cluster" },
                        "singularResource": d.singular,
                        "verbs": VERBS,
                    });
                    if let Some(o) = r.as_object_mut() {
                        if !d.short_names.is_empty() {
                            o.insert("shortNames".into(), json!(d.short_names));
                        }
                        if !d.categories.is_empty() {
                            o.insert("categories".into(), json!(d.categories));
                        }
                        if d.status {
                            o.insert(
                                "subresources".into(),
                                json!([{
                                    "subresource": "status",
                                    "responseKind": {"group": group, "version": v, "kind": d.kind},
                                    "verbs": ["get", "patch", "update"],
                                }]),
                            );
                        }
                    }
                    r
                })
                .collect();
            json!({"version": v, "resources": resources, "freshness": "Current"})
        })
        .collect();
    let mut meta = json!({"creationTimestamp": null});
    if !group.is_empty() {
        meta["name"] = json!(group);
    }
    json!({"metadata": meta, "versions": vs})
}

/// Aggregated discovery for `/api` (core) or `/apis` (every other group).
pub(crate) fn aggregated(defs: &[ResourceDef], core: bool) -> Value {
    let items: Vec<Value> = if core {
        vec![aggregated_group(defs, "", &["v1".to_string()])]
    } else {
        groups(defs)
            .iter()
            .map(|(g, vs)| aggregated_group(defs, g, vs))
            .collect()
    };
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_priority() {
        let mut vs: Vec<String> = ["v1alpha1", "v2beta1", "foo", "v1", "v1beta2", "v2"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        sort_versions(&mut vs);
        assert_eq!(vs, ["v2", "v1", "v2beta1", "v1beta2", "v1alpha1", "foo"]);
    }

    #[test]
    fn aggregated_accept() {
        assert!(wants_aggregated(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
        ));
        assert!(wants_aggregated(
            "application/json; g=apidiscovery.k8s.io; v=v2; as=APIGroupDiscoveryList"
        ));
        assert!(!wants_aggregated(
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
        ));
        assert!(!wants_aggregated("application/json"));
    }
}
