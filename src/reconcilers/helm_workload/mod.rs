//! The helm-workload controller (spec 3.5): Helm releases of a chart on runtimes, driven by the
//! helm CLI (`[helm]` in the config says which binary, with which timeout).
//!
//! - [`definition`]: a definition is a chart reference; nothing to do outside the API.
//! - [`instance`]: an instance is a release: `helm upgrade --install` in a private workspace,
//!   the ThreeportWorkload the agent watches, `helm uninstall` and the release namespace's
//!   removal on deletion.
//! - [`release`]: the pure decisions (names, namespace, chart source, helm arguments).
//! - [`post_render`]: the post-renderer helm runs on every install and upgrade (`helm ...
//!   --post-renderer threeport-manager --post-renderer-args helm-post-render ...`): Threeport's
//!   labels on every object, the definition's and instance's additional resources appended,
//!   without Threeport's data loss (spec 4.5 item 37).

pub mod definition;
pub mod instance;
pub mod post_render;
pub mod release;

pub use definition::HelmWorkloadDefinitionReconciler;
pub use instance::HelmWorkloadInstanceReconciler;

use super::{ReconcilerDeps, Registered};

/// The controller's reconcilers, in the registry's order.
pub fn reconcilers(deps: &ReconcilerDeps) -> Vec<Registered> {
    vec![
        Registered::new(
            "HelmWorkloadDefinitionReconciler",
            HelmWorkloadDefinitionReconciler,
        ),
        Registered::new(
            "HelmWorkloadInstanceReconciler",
            HelmWorkloadInstanceReconciler::new(deps.runtimes.clone(), &deps.helm),
        ),
    ]
}
