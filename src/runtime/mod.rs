//! Process wiring: NATS connection, admin HTTP server, signals, telemetry.
//! (Being written; `run` is the entry point `main` calls for the default command.)

/// Errors that stop the manager at start-up or while running.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{0}")]
    Startup(String),
}

/// Run the manager until a shutdown signal. Returns once everything is drained.
pub async fn run(_config: crate::config::Config) -> Result<(), RuntimeError> {
    Err(RuntimeError::Startup("runtime not wired yet".into()))
}
