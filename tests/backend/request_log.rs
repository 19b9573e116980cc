//! The requests the real servers logged, so tests and benchmarks count what each controller
//! asked of them instead of estimating it.
//!
//! - kube-apiserver: its audit log (`DIR/logs/kube-audit.log`, one JSON event per request at
//!   the `Metadata` level, written by `scripts/upstream.sh up`), told apart by User-Agent
//!   (client-go names the Go binary; the manager says `threeport-manager/<version>`).
//! - Threeport's REST API: its request log (`DIR/logs/rest-api.log`, one JSON line per request
//!   with method, URI, status and the Host header). The tests' own client addresses the API as
//!   `localhost` ([`super::HARNESS_API_HOST`]), the controllers as `127.0.0.1`, so the two are
//!   told apart by Host.

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
            }
        })
        .collect()
}

/// One request in Threeport's REST API log.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiRequest {
    /// Unix time in seconds.
    pub at: f64,
    pub method: String,
    pub uri: String,
    pub status: u16,
    pub host: String,
}

impl ApiRequest {
    /// Made by the test harness (Host `localhost`), not by a controller.
    pub fn from_harness(&self) -> bool {
        self.host.starts_with(super::HARNESS_API_HOST)
    }
}

/// Every request Threeport's API has logged so far in the stack at `dir`.
pub fn api_requests(dir: &Path) -> Vec<ApiRequest> {
    let text = std::fs::read_to_string(dir.join("logs/rest-api.log")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["msg"] == "request")
        .map(|e| ApiRequest {
            at: e["ts"].as_f64().unwrap_or(0.0),
            method: e["method"].as_str().unwrap_or_default().to_string(),
            uri: e["uri"].as_str().unwrap_or_default().to_string(),
            status: e["status"].as_u64().unwrap_or(0) as u16,
            host: e["host"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}
