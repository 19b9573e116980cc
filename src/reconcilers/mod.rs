//! Threeport controllers implemented by this manager: one module per controller, one file per
//! reconciler. None is implemented yet; the registry marks every controller unimplemented, so
//! enabling one is a start-up error rather than a silent no-op.

use std::sync::Arc;

use crate::engine::DynReconciler;

/// The implementation of a registry reconciler, by its Threeport name.
pub fn handler_for(_reconciler_name: &str) -> Option<Arc<dyn DynReconciler>> {
    None
}
