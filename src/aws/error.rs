//! AWS failures, classified for the engine's retries.
//!
//! Throttling, AWS's own 5xx, timeouts and network failures are transient (retried with
//! backoff); so are the states AWS reports while another step is still under way
//! (`DependencyViolation` while a VPC still has a NAT gateway, `ResourceInUseException`
//! while a cluster still has a node group). Everything else AWS rejects (validation, access
//! denied, limits) is permanent: someone has to change the object, the account or its
//! permissions. Messages carry the operation, AWS's error code and AWS's message, which never
//! contain credentials; the SDK's request and response are not kept.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::retry::{Classify, RetryClass};

/// Error codes that say "try again later", whatever the HTTP status.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "SlowDown",
    "PriorRequestNotComplete",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServerException",
    "RequestTimeout",
    "RequestTimeoutException",
    "IDPCommunicationError",
    "ConcurrentModification",
    "ConcurrentModificationException",
    "OperationAborted",
    "DependencyViolation",
    "ResourceInUseException",
    "IncorrectState",
    "InvalidDBInstanceState",
    "InvalidDBInstanceStateFault",
];

/// A failed AWS call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    operation: &'static str,
    code: Option<String>,
    message: String,
    class: RetryClass,
}

impl AwsError {
    /// Classify the SDK's error of `operation` (e.g. `ec2:CreateVpc`).
    pub fn from_sdk<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        match &err {
            SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
                let code = err.code().map(str::to_string);
                let message = err
                    .message()
                    .map(str::to_string)
                    .unwrap_or_else(|| DisplayErrorContext(&err).to_string());
                let class = if eventual_consistency(code.as_deref(), &message) {
                    RetryClass::Transient
                } else {
                    classify(code.as_deref(), status)
                };
                Self {
                    operation,
                    code,
                    message,
                    class,
                }
            }
            // The request was never answered: network, TLS, timeouts. Worth another try.
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => Self {
                operation,
                code: None,
                message: DisplayErrorContext(&err).to_string(),
                class: RetryClass::Transient,
            },
            // The request could not be built from what we gave it (a bad value, or credentials
            // that do not resolve): the same input fails the same way.
            _ => Self {
                operation,
                code: None,
                message: DisplayErrorContext(&err).to_string(),
                class: RetryClass::Permanent,
            },
        }
    }

    /// AWS answered, but not with what the operation promises (a missing ID, say).
    pub fn unexpected(operation: &'static str, message: impl Into<String>) -> Self {
        Self {
            operation,
            code: None,
            message: message.into(),
            class: RetryClass::Transient,
        }
    }

    /// A failure this manager detects itself that no retry can fix (e.g. two VPCs carry the
    /// cluster's tags, so which one is ours cannot be told).
    pub fn conflict(operation: &'static str, message: impl Into<String>) -> Self {
        Self {
            operation,
            code: None,
            message: message.into(),
            class: RetryClass::Permanent,
        }
    }

    /// The same failure, retried with backoff: for answers that are permanent in general
    /// but known to pass at a given point (S3 refusing a bucket policy while the removal of
    /// its public access block propagates).
    pub fn transient(mut self) -> Self {
        self.class = RetryClass::Transient;
        self
    }

    /// AWS's error code, e.g. `NoSuchEntity`.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// Whether AWS's error code is one of `codes`.
    pub fn is(&self, codes: &[&str]) -> bool {
        self.code.as_deref().is_some_and(|c| codes.contains(&c))
    }
}

/// IAM is eventually consistent: a role made a moment ago "could not be assumed" by EKS yet.
/// That passes by itself (aws-builder's callers see the same and retry).
fn eventual_consistency(code: Option<&str>, message: &str) -> bool {
    code == Some("InvalidParameterException") && message.contains("could not be assumed")
}

/// Transient by code first, then by status (5xx and 429); other answers are permanent.
fn classify(code: Option<&str>, status: Option<u16>) -> RetryClass {
    if code.is_some_and(|c| TRANSIENT_CODES.contains(&c)) {
        return RetryClass::Transient;
    }
    match status {
        Some(s) if s >= 500 || s == 429 => RetryClass::Transient,
        // No status and no code: the response did not parse; a retry may get a good one.
        None if code.is_none() => RetryClass::Transient,
        _ => RetryClass::Permanent,
    }
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{}: {code}: {}", self.operation, self.message),
            None => write!(f, "{}: {}", self.operation, self.message),
        }
    }
}

impl std::error::Error for AwsError {}

impl Classify for AwsError {
    fn retry_class(&self) -> RetryClass {
        self.class
    }
}

/// `Ok` when `result` succeeded or failed only with one of AWS's error `codes` (a delete of
/// what is already gone, a create of what an earlier run made).
pub fn tolerate<T>(result: Result<T, AwsError>, codes: &[&str]) -> Result<(), AwsError> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.is(codes) => Ok(()),
        Err(e) => Err(e),
    }
}

/// `result.map_err(aws_err("ec2:CreateVpc"))`: classify an SDK error of that operation.
pub fn aws_err<E>(operation: &'static str) -> impl FnOnce(SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |err| AwsError::from_sdk(operation, err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_server_errors_are_transient_whatever_the_status() {
        assert_eq!(
            classify(Some("Throttling"), Some(400)),
            RetryClass::Transient
        );
        assert_eq!(
            classify(Some("RequestLimitExceeded"), Some(503)),
            RetryClass::Transient
        );
        assert_eq!(
            classify(Some("DependencyViolation"), Some(400)),
            RetryClass::Transient
        );
        assert_eq!(classify(Some("Whatever"), Some(500)), RetryClass::Transient);
        assert_eq!(classify(None, Some(429)), RetryClass::Transient);
        assert_eq!(classify(None, None), RetryClass::Transient);
    }

    #[test]
    fn a_role_eks_cannot_assume_yet_is_transient() {
        assert!(eventual_consistency(
            Some("InvalidParameterException"),
            "Role with arn: arn:aws:iam::1:role/cluster-role-c, could not be assumed because it does not exist or the trusted entity is not correct"
        ));
        assert!(!eventual_consistency(
            Some("InvalidParameterException"),
            "bad subnet"
        ));
    }

    #[test]
    fn rejected_requests_are_permanent() {
        for code in [
            "AccessDenied",
            "UnauthorizedOperation",
            "ValidationError",
            "InvalidParameterValue",
            "LimitExceeded",
        ] {
            assert_eq!(
                classify(Some(code), Some(400)),
                RetryClass::Permanent,
                "{code}"
            );
        }
        assert_eq!(classify(None, Some(403)), RetryClass::Permanent);
    }

    #[test]
    fn the_message_names_operation_code_and_aws_message() {
        let e = AwsError {
            operation: "iam:CreateRole",
            code: Some("AccessDenied".into()),
            message: "not allowed".into(),
            class: RetryClass::Permanent,
        };
        assert_eq!(e.to_string(), "iam:CreateRole: AccessDenied: not allowed");
        assert!(e.is(&["NoSuchEntity", "AccessDenied"]));
        assert!(!e.is(&["NoSuchEntity"]));
    }
}
