//! The kubernetes-runtime controller (spec 3.4): runtime definitions and instances, the
//! clusters workloads run on.
//!
//! In progress (issue 13): the node machine-type table ([`mapping`]), the
//! KubernetesRuntimeDefinitionReconciler ([`definition`]) and the EKS steps of the instance
//! reconciler ([`eks`]) are built and tested against the in-memory API. The
//! KubernetesRuntimeInstanceReconciler itself, with the install of the agent, Threeport's CRDs
//! and the support-services operator into a runtime, is not written yet, so the controller is
//! not registered and `--enable kubernetes-runtime` still exits 2.

pub mod definition;
pub mod eks;
pub mod mapping;

pub use definition::KubernetesRuntimeDefinitionReconciler;
