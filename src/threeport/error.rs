//! Errors of the Threeport API client, each mapped to a retry class.

use crate::retry::Classify;
pub use crate::retry::RetryClass;

/// Why an API request failed. Messages name the method and the route template, never an
/// object ID.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 404 (spec 2.2 `ErrObjectNotFound`).
    #[error("{method} {route}: object not found (404)")]
    NotFound {
        /// The HTTP method, e.g. `GET`.
        method: &'static str,
        /// The route template, e.g. `/v0/workload-instances/{id}`.
        route: String,
    },
    /// 409: duplicate name, deletion already underway, definition has instances.
    #[error("{method} {route}: conflict (409): {message}")]
    Conflict {
        /// The HTTP method, e.g. `GET`.
        method: &'static str,
        /// The route template, e.g. `/v0/workload-instances/{id}`.
        route: String,
        /// The API's error message from the response body (or the start of a non-JSON body).
        message: String,
    },
    /// 401.
    #[error("{method} {route}: unauthorized (401): {message}")]
    Unauthorized {
        /// The HTTP method, e.g. `GET`.
        method: &'static str,
        /// The route template, e.g. `/v0/workload-instances/{id}`.
        route: String,
        /// The API's error message from the response body (or the start of a non-JSON body).
        message: String,
    },
    /// 403.
    #[error("{method} {route}: forbidden (403): {message}")]
    Forbidden {
        /// The HTTP method, e.g. `GET`.
        method: &'static str,
        /// The route template, e.g. `/v0/workload-instances/{id}`.
        route: String,
        /// The API's error message from the response body (or the start of a non-JSON body).
        message: String,
    },
    /// 400: payload rejected by the API's write validation.
    #[error("{method} {route}: bad request (400): {message}")]
    BadRequest {
        /// The HTTP method, e.g. `GET`.
        method: &'static str,
        /// The route template, e.g. `/v0/workload-instances/{id}`.
        route: String,
        /// The API's error message from the response body (or the start of a non-JSON body).
        message: String,
    },
    /// Any other unexpected status.
    #[error("{method} {route}: unexpected status {status}: {message}")]
    Status {
        /// The HTTP method, e.g. `GET`.
        method: &'static str,
        /// The route template, e.g. `/v0/workload-instances/{id}`.
        route: String,
        /// The HTTP status code.
        status: u16,
        /// The API's error message from the response body (or the start of a non-JSON body).
        message: String,
    },
    /// Connection refused, reset, TLS failure, ...
    #[error("{method} {route}: transport error: {reason}")]
    Transport {
        /// The HTTP method, e.g. `GET`.
        method: &'static str,
        /// The route template, e.g. `/v0/workload-instances/{id}`.
        route: String,
        /// The transport error with its causes, e.g. `connection refused`.
        reason: String,
    },
    /// The request did not finish within the configured timeout.
    #[error("{method} {route}: timed out after {after:?}")]
    Timeout {
        /// The HTTP method, e.g. `GET`.
        method: &'static str,
        /// The route template, e.g. `/v0/workload-instances/{id}`.
        route: String,
        /// The configured request timeout.
        after: std::time::Duration,
    },
    /// The body was not the envelope we expect, or an object did not decode.
    #[error("{route}: cannot decode response: {reason}")]
    Decode {
        /// The route template, or the collection route of a model that did not decode.
        route: String,
        /// What did not decode (or encode), and why.
        reason: String,
    },
    /// Client-side configuration problem (bad URL, unreadable certificate, ...).
    #[error("API client configuration: {0}")]
    Config(String),
}

impl ApiError {
    /// Whether the API answered 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiError::NotFound { .. })
    }

    /// Whether the API answered 409.
    pub fn is_conflict(&self) -> bool {
        matches!(self, ApiError::Conflict { .. })
    }

    /// The HTTP status this error stands for, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::NotFound { .. } => Some(404),
            ApiError::Conflict { .. } => Some(409),
            ApiError::Unauthorized { .. } => Some(401),
            ApiError::Forbidden { .. } => Some(403),
            ApiError::BadRequest { .. } => Some(400),
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Transport trouble, timeouts, 5xx, 429 and 409 (a race with another writer that
    /// resolves itself) are transient; the other 4xx and undecodable bodies are permanent.
    pub fn retry_class(&self) -> RetryClass {
        match self {
            ApiError::Transport { .. } | ApiError::Timeout { .. } => RetryClass::Transient,
            ApiError::Status { status, .. } if *status >= 500 || *status == 429 => {
                RetryClass::Transient
            }
            // A 409 is usually a race with another writer that resolves itself.
            ApiError::Conflict { .. } => RetryClass::Transient,
            _ => RetryClass::Permanent,
        }
    }
}

impl Classify for ApiError {
    fn retry_class(&self) -> RetryClass {
        ApiError::retry_class(self)
    }
}
