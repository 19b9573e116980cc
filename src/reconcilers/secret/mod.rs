//! The secret controller (spec 3.6): secrets kept in AWS Secrets Manager ([`definition`])
//! and brought into workloads by the external-secrets operator ([`instance`]).

pub mod definition;
pub mod instance;

pub use definition::SecretDefinitionReconciler;
pub use instance::SecretInstanceReconciler;

use super::{ReconcilerDeps, Registered};

/// The controller's reconcilers, in the registry's order.
pub fn reconcilers(deps: &ReconcilerDeps) -> Vec<Registered> {
    vec![
        Registered::new(
            "SecretDefinitionReconciler",
            SecretDefinitionReconciler::new(deps.aws.clone(), deps.encryption_key.clone()),
        ),
        Registered::new("SecretInstanceReconciler", SecretInstanceReconciler),
    ]
}
