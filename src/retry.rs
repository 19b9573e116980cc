//! How a failure should be retried: the vocabulary every layer (Threeport API client,
//! Kubernetes access, manifests, reconcilers) uses to classify its errors, so that the engine
//! can pick a retry strategy without knowing the layers, and the layers need not know the
//! engine.

/// How the engine should treat an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryClass {
    /// Network trouble, timeouts, 5xx, conflicts with another writer: retry with backoff, the
    /// cause is expected to go away by itself.
    Transient,
    /// Retrying the same request cannot succeed until someone changes something (the object,
    /// the runtime's credentials, the manager's config). The engine retries at the backoff cap
    /// at once (so a fix is still picked up) and reports the failure as permanent.
    Permanent,
}

impl RetryClass {
    /// The `class` label of `threeport_reconcile_errors_total`.
    pub fn as_str(&self) -> &'static str {
        match self {
            RetryClass::Transient => "transient",
            RetryClass::Permanent => "permanent",
        }
    }
}

/// An error that knows how it should be retried. Implemented by the error types of each
/// layer; a reconciler's `?` turns any of them into a
/// [`ReconcileError`](crate::engine::ReconcileError) that keeps the typed error as its cause.
pub trait Classify: std::error::Error + Send + Sync + 'static {
    /// How the engine should retry after this error.
    fn retry_class(&self) -> RetryClass;
}

/// Displays an error with its whole `source()` chain, `outer: inner: innermost`, for log
/// lines and event notes (an error's own `Display` shows one layer only).
pub struct ErrorChain<'a>(pub &'a dyn std::error::Error);

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}
