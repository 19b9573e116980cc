//! The kubernetes-runtime controller (spec 3.4): runtime definitions and instances, the
//! clusters workloads run on.
//!
//! - [`definition`]: an `eks` definition gets its AwsEksKubernetesRuntimeDefinition (the AWS
//!   account chosen by name or default; node machine types from [`mapping`]).
//! - [`instance`]: an `eks` runtime gets its AwsEksKubernetesRuntimeInstance ([`eks`]); a
//!   runtime with an API endpoint gets the agent, Threeport's CRDs and the support-services
//!   operator ([`install`], data files recorded from Threeport's installer); deletion waits for
//!   the runtime's workloads, then deletes the EKS instance.

pub mod definition;
pub mod eks;
pub mod install;
pub mod instance;
pub mod mapping;

pub use definition::KubernetesRuntimeDefinitionReconciler;
pub use instance::KubernetesRuntimeInstanceReconciler;

use super::{ReconcilerDeps, Registered};

/// The controller's reconcilers, in the registry's order.
pub fn reconcilers(deps: &ReconcilerDeps) -> Vec<Registered> {
    vec![
        Registered::new(
            "KubernetesRuntimeDefinitionReconciler",
            KubernetesRuntimeDefinitionReconciler,
        ),
        Registered::new(
            "KubernetesRuntimeInstanceReconciler",
            KubernetesRuntimeInstanceReconciler::new(deps.runtimes.clone()),
        ),
    ]
}
