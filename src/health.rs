//! Readiness checks shared by the engine and the admin server.
//!
//! `/readyz` is 200 only when every registered check is ready and the process is not shutting
//! down (README, "Admin endpoints and metrics"). Checks are cheap atomics flipped by the components that own them: the
//! NATS connection callback, and each reconciler once its consumer is bound.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The process's readiness: named checks plus the shutting-down flag. Clones share state.
#[derive(Clone, Default)]
pub struct Readiness {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    checks: Mutex<Vec<(String, Arc<AtomicBool>)>>,
    shutting_down: AtomicBool,
}

/// One named check, set by its owner.
#[derive(Clone)]
pub struct ReadyHandle {
    flag: Arc<AtomicBool>,
}

impl ReadyHandle {
    /// Mark the check ready (`true`) or not ready (`false`); it may flip any number of times.
    pub fn set(&self, ready: bool) {
        self.flag.store(ready, Ordering::SeqCst);
    }

    /// Whether the check is ready now.
    pub fn get(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

impl Readiness {
    /// No checks and not shutting down: ready until a check is registered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Register a check, initially not ready.
    pub fn register(&self, name: impl Into<String>) -> ReadyHandle {
        let flag = Arc::new(AtomicBool::new(false));
        if let Ok(mut checks) = self.inner.checks.lock() {
            checks.push((name.into(), flag.clone()));
        }
        ReadyHandle { flag }
    }

    /// Make `/readyz` fail from now on, whatever the checks say; never reset.
    pub fn set_shutting_down(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Whether shutdown has started.
    pub fn shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::SeqCst)
    }

    /// Each check with its state, in registration order.
    pub fn checks(&self) -> Vec<(String, bool)> {
        self.inner
            .checks
            .lock()
            .map(|c| {
                c.iter()
                    .map(|(n, f)| (n.clone(), f.load(Ordering::SeqCst)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What `/readyz` answers: not shutting down and every check ready.
    pub fn is_ready(&self) -> bool {
        !self.shutting_down() && self.checks().iter().all(|(_, ok)| *ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_check_is_and_not_shutting_down() {
        let r = Readiness::new();
        assert!(r.is_ready(), "no checks yet");
        let a = r.register("nats");
        let b = r.register("reconciler/X");
        assert!(!r.is_ready());
        a.set(true);
        assert!(!r.is_ready());
        b.set(true);
        assert!(r.is_ready());
        a.set(false);
        assert!(!r.is_ready());
        a.set(true);
        r.set_shutting_down();
        assert!(!r.is_ready());
        assert_eq!(
            r.checks(),
            vec![
                ("nats".to_string(), true),
                ("reconciler/X".to_string(), true)
            ]
        );
    }
}
