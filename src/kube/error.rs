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
    Credentials { runtime: String, reason: String },
    /// The credentials are present but unusable to build a client (bad PEM, bad URL).
    #[error("kubernetes runtime instance {runtime}: cannot build a Kubernetes client: {reason}")]
    ClientConfig { runtime: String, reason: String },
    /// The runtime does not serve this apiVersion/kind (yet).
    #[error("runtime {runtime} does not serve kind {kind} in {api_version}")]
    UnknownKind {
        runtime: String,
        api_version: String,
        kind: String,
    },
    /// The Kubernetes API answered with an error status.
    #[error("{op} {target} on runtime {runtime}: {code} {reason}: {message}")]
    Api {
        runtime: String,
        op: &'static str,
        target: String,
        code: u16,
        reason: String,
        message: String,
    },
    /// Connection refused, TLS failure, timeout, undecodable response.
    #[error("{op} {target} on runtime {runtime}: {reason}")]
    Transport {
        runtime: String,
        op: &'static str,
        target: String,
        reason: String,
    },
    /// A waiting operation (e.g. for a CRD's kind to be served) gave up.
    #[error("runtime {runtime}: timed out after {after:?} waiting for {what}")]
    Timeout {
        runtime: String,
        what: String,
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

    pub fn is_not_found(&self) -> bool {
        self.status_code() == Some(404)
    }

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
