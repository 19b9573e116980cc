//! `Status` errors shaped like the kube-apiserver's (`k8s.io/apimachinery/pkg/api/errors`).

use serde_json::{json, Value};

use super::resources::ResourceDef;

#[derive(Debug, Clone)]
pub(crate) struct KErr {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl KErr {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            v["details"] = d.clone();
        }
        v
    }

    fn simple(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        KErr {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::simple(400, "BadRequest", message)
    }

    pub fn unauthorized() -> Self {
        Self::simple(401, "Unauthorized", "Unauthorized")
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::simple(405, "MethodNotAllowed", message)
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::simple(415, "UnsupportedMediaType", message)
    }

    /// The server's answer for a path it does not serve.
    pub fn path_not_found() -> Self {
        KErr {
            details: Some(json!({})),
            ..Self::simple(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )
        }
    }

    fn res_details(def: &ResourceDef, name: &str) -> Value {
        let mut d = json!({"name": name, "kind": def.plural});
        if !def.group.is_empty() {
            d["group"] = json!(def.group);
        }
        d
    }

    pub fn not_found(def: &ResourceDef, name: &str) -> Self {
        KErr {
            code: 404,
            reason: "NotFound",
            message: format!("{} \"{name}\" not found", def.qualified_resource()),
            details: Some(Self::res_details(def, name)),
        }
    }

    pub fn namespace_not_found(ns: &str) -> Self {
        KErr {
            code: 404,
            reason: "NotFound",
            message: format!("namespaces \"{ns}\" not found"),
            details: Some(json!({"name": ns, "kind": "namespaces"})),
        }
    }

    pub fn already_exists(def: &ResourceDef, name: &str) -> Self {
        KErr {
            code: 409,
            reason: "AlreadyExists",
            message: format!("{} \"{name}\" already exists", def.qualified_resource()),
            details: Some(Self::res_details(def, name)),
        }
    }

    pub fn conflict(def: &ResourceDef, name: &str, why: &str) -> Self {
        KErr {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                def.qualified_resource()
            ),
            details: Some(Self::res_details(def, name)),
        }
    }

    pub fn modified(def: &ResourceDef, name: &str) -> Self {
        Self::conflict(
            def,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 Invalid with one cause.
    pub fn invalid(
        def: &ResourceDef,
        name: &str,
        field: &str,
        cause_reason: &str,
        detail: &str,
    ) -> Self {
        let mut d = json!({
            "name": name,
            "kind": def.kind,
            "causes": [{"reason": cause_reason, "message": detail, "field": field}],
        });
        if !def.group.is_empty() {
            d["group"] = json!(def.group);
        }
        KErr {
            code: 422,
            reason: "Invalid",
            message: format!(
                "{} \"{name}\" is invalid: {field}: {detail}",
                def.qualified_kind()
            ),
            details: Some(d),
        }
    }

    /// An injected fault.
    pub fn injected(code: u16) -> Self {
        let reason = match code {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            409 => "Conflict",
            410 => "Expired",
            422 => "Invalid",
            429 => "TooManyRequests",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            _ => "InternalError",
        };
        Self::simple(code, reason, "sandbox: injected fault")
    }
}
