//! Threeport controllers implemented by this manager: one module per controller, one file per
//! reconciler. A controller is enabled only when the registry marks it implemented; enabling
//! one that is not is a start-up error rather than a silent no-op.

pub mod workload;

use std::sync::Arc;

use crate::config::Config;
use crate::engine::DynReconciler;
use crate::kube::{KubeRuntimes, KubeSettings};

/// What reconcilers share in one process, built once from the config: one Kubernetes client
/// and discovery cache for every reconciler and worker.
#[derive(Clone)]
pub struct ReconcilerDeps {
    pub kube: Arc<KubeRuntimes>,
}

impl ReconcilerDeps {
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let kube = KubeRuntimes::from_config(config, KubeSettings::default())
            .map_err(|e| format!("encryption_key: {e}"))?;
        Ok(Self {
            kube: Arc::new(kube),
        })
    }
}

/// The implementation of a registry reconciler, by its Threeport name. The workload
/// reconcilers share `deps.kube`, so all workers of the process share one client and one
/// discovery cache per runtime cluster.
pub fn handler_for(reconciler_name: &str, deps: &ReconcilerDeps) -> Option<Arc<dyn DynReconciler>> {
    match reconciler_name {
        "WorkloadDefinitionReconciler" => {
            Some(Arc::new(workload::WorkloadDefinitionReconciler::new()))
        }
        "WorkloadInstanceReconciler" => Some(Arc::new(workload::WorkloadInstanceReconciler::new(
            deps.kube.clone(),
        ))),
        _ => None,
    }
}
