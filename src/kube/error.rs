//! Errors of the Kubernetes access layer, each mapped to a [`RetryClass`].
//!
//! Messages name the runtime, the operation and the object, never credential material: the
//! credential variants carry only field names and [`CryptoError`](crate::threeport::crypto::CryptoError)
//! texts, which are key- and plaintext-free by construction.

use crate::retry::{Classify, RetryClass};

/// Why talking to a runtime cluster failed.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The KubernetesRuntimeInstance lacks what spec 3.1.1 needs (endpoint, cert+key or token),
    /// or a secret field cannot be decrypted, or the token has expired. Someone has to fix the
    /// runtime instance (or the manager's `ENCRYPTION_KEY`), so retrying quickly is pointless.
    #[error("kubernetes runtime instance {runtime}: {reason}")]
    Credentials {
        /// The runtime instance, `"<name> (ID <id>)"`.
        runtime: String,
        /// What is missing or unusable, by field name.
        reason: String,
    },
    /// The credentials are present but unusable to build a client (bad PEM, bad URL).
    #[error("kubernetes runtime instance {runtime}: cannot build a Kubernetes client: {reason}")]
    ClientConfig {
        /// The runtime instance, `"<name> (ID <id>)"`.
        runtime: String,
        /// Why the client cannot be built (a PEM or URL problem).
        reason: String,
    },
    /// The runtime does not serve this apiVersion/kind (yet).
    #[error("runtime {runtime} does not serve kind {kind} in {api_version}")]
    UnknownKind {
        /// The runtime instance, `"<name> (ID <id>)"`.
        runtime: String,
        /// The object's `apiVersion`, e.g. `apps/v1`.
        api_version: String,
        /// The object's `kind`.
        kind: String,
    },
    /// The Kubernetes API answered with an error status.
    #[error("{op} {target} on runtime {runtime}: {code} {reason}: {message}")]
    Api {
        /// The runtime instance, `"<name> (ID <id>)"`.
        runtime: String,
        /// The operation: `get`, `create`, `apply`, `delete` or `list`.
        op: &'static str,
        /// The object (`<apiVersion> <kind> [<namespace>/]<name>`), or what a `list` selected.
        target: String,
        /// The HTTP status code.
        code: u16,
        /// The `Status` reason, e.g. `NotFound`, `AlreadyExists`, `Invalid`.
        reason: String,
        /// The `Status` message.
        message: String,
    },
    /// Connection refused, TLS failure, timeout, undecodable response.
    #[error("{op} {target} on runtime {runtime}: {reason}")]
    Transport {
        /// The runtime instance, `"<name> (ID <id>)"`.
        runtime: String,
        /// The operation: `get`, `create`, `apply`, `delete` or `list`.
        op: &'static str,
        /// The object (`<apiVersion> <kind> [<namespace>/]<name>`), or what a `list` selected.
        target: String,
        /// kube-rs's error.
        reason: String,
    },
    /// A waiting operation (e.g. for a CRD's kind to be served) gave up.
    #[error("runtime {runtime}: timed out after {after:?} waiting for {what}")]
    Timeout {
        /// The runtime instance, `"<name> (ID <id>)"`.
        runtime: String,
        /// What was waited for, e.g. `kind Widget in example.com/v1 to be served`.
        what: String,
        /// How long it waited.
        after: std::time::Duration,
    },
    /// The object handed to an operation is not a usable Kubernetes object.
    #[error("invalid Kubernetes object: {0}")]
    InvalidObject(String),
}

impl KubeError {
    /// How the engine should treat this error. Credentials, configuration and invalid objects
    /// are permanent (the engine still retries with capped backoff in case someone fixes the
    /// runtime instance). Network trouble, 5xx, 429, 409 conflicts and not-yet-served kinds
    /// (a CRD being established) are transient.
    pub fn retry_class(&self) -> RetryClass {
        match self {
            KubeError::Credentials { .. }
            | KubeError::ClientConfig { .. }
            | KubeError::InvalidObject(_) => RetryClass::Permanent,
            KubeError::UnknownKind { .. }
            | KubeError::Transport { .. }
            | KubeError::Timeout { .. } => RetryClass::Transient,
            KubeError::Api { code, .. } => match code {
                409 | 429 => RetryClass::Transient,
                c if *c >= 500 => RetryClass::Transient,
                _ => RetryClass::Permanent,
            },
        }
    }

    /// The HTTP status, for API errors.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            KubeError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether the API answered 404.
    pub fn is_not_found(&self) -> bool {
        self.status_code() == Some(404)
    }

    /// Whether the API answered 409 `AlreadyExists` (not a write `Conflict`).
    pub fn is_already_exists(&self) -> bool {
        matches!(self, KubeError::Api { code: 409, reason, .. } if reason == "AlreadyExists")
    }

    /// Map a kube-rs error of operation `op` on `target`. kube-rs error texts contain server
    /// `Status` messages and transport descriptions, never request headers or bodies.
    pub(crate) fn from_kube(runtime: &str, op: &'static str, target: &str, e: kube::Error) -> Self {
        match e {
            kube::Error::Api(status) => KubeError::Api {
                runtime: runtime.to_string(),
                op,
                target: target.to_string(),
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
            },
            other => KubeError::Transport {
                runtime: runtime.to_string(),
                op,
                target: target.to_string(),
                reason: other.to_string(),
            },
        }
    }
}

impl Classify for KubeError {
    fn retry_class(&self) -> RetryClass {
        KubeError::retry_class(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, reason: &str) -> KubeError {
        KubeError::Api {
            runtime: "r".into(),
            op: "create",
            target: "v1/ConfigMap default/x".into(),
            code,
            reason: reason.into(),
            message: "m".into(),
        }
    }

    #[test]
    fn classes() {
        assert_eq!(
            api(503, "ServiceUnavailable").retry_class(),
            RetryClass::Transient
        );
        assert_eq!(
            api(429, "TooManyRequests").retry_class(),
            RetryClass::Transient
        );
        assert_eq!(api(409, "Conflict").retry_class(), RetryClass::Transient);
        assert_eq!(api(422, "Invalid").retry_class(), RetryClass::Permanent);
        assert_eq!(api(403, "Forbidden").retry_class(), RetryClass::Permanent);
        assert!(api(409, "AlreadyExists").is_already_exists());
        assert!(api(404, "NotFound").is_not_found());
        let cred = KubeError::Credentials {
            runtime: "kind (ID 1)".into(),
            reason: "APIEndpoint is not set".into(),
        };
        assert_eq!(cred.retry_class(), RetryClass::Permanent);
    }
}
