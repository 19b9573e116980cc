//! The requests kube-apiserver logged, so tests and benchmarks count what each controller asked
//! of it instead of estimating it: its audit log (`DIR/logs/kube-audit.log`, one JSON event per
//! request at the `Metadata` level, written by `scripts/upstream.sh up`), told apart by
//! User-Agent (client-go names the Go binary; the manager says `threeport-manager/<version>`).
//!
//! Threeport's REST API logs requests too, but through zap's production sampling (the first 100
//! lines a second with one message, then every 100th), so its log cannot count them; the
//! benchmark counts API requests with a proxy instead.

use std::path::Path;

use serde_json::Value;

/// One request in kube-apiserver's audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct KubeRequest {
    pub user_agent: String,
    pub verb: String,
    /// `objectRef.resource` (`namespaces`, `configmaps`, ...), empty for non-resource URLs.
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub code: u16,
    /// `requestReceivedTimestamp`, RFC 3339.
    pub received: String,
    /// The object sent (`requestObject`), on creates of a stack started with
    /// `--audit-request-bodies`.
    pub body: Option<Value>,
}

impl KubeRequest {
    /// A request that changes an object.
    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }

    /// `namespace/resource/name` of the object. A Namespace is `/namespaces/<name>` whatever
    /// the verb (the audit log gives a namespace's own name as its namespace on some verbs).
    pub fn object(&self) -> String {
        if self.resource == "namespaces" {
            let name = if self.name.is_empty() {
                &self.namespace
            } else {
                &self.name
            };
            return format!("/namespaces/{name}");
        }
        format!("{}/{}/{}", self.namespace, self.resource, self.name)
    }
}

/// Every request kube-apiserver has logged so far in the stack at `dir`.
pub fn kube_requests(dir: &Path) -> Vec<KubeRequest> {
    let text = std::fs::read_to_string(dir.join("logs/kube-audit.log")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|e| {
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            let obj = &e["objectRef"];
            KubeRequest {
                user_agent: s(&e["userAgent"]),
                verb: s(&e["verb"]),
                resource: s(&obj["resource"]),
                namespace: s(&obj["namespace"]),
                name: s(&obj["name"]),
                code: e["responseStatus"]["code"].as_u64().unwrap_or(0) as u16,
                received: s(&e["requestReceivedTimestamp"]),
                body: e.get("requestObject").cloned(),
            }
        })
        .collect()
}
