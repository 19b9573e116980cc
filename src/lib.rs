//! threeport-manager: one process that runs Threeport's controllers.
//!
//! - [`config`]: one `Config`, layered defaults -> file -> env -> flags, validated and redacted.
//! - [`registry`]: the static table of Threeport controllers and reconcilers.
//! - [`engine`]: the generic reconcile loop (knows nothing about workloads).
//! - [`threeport`]: the Threeport REST API client, models, events and encryption.
//! - [`runtime`]: process wiring: NATS connection, admin HTTP server, signals, telemetry.
//! - [`reconcilers`]: one module per Threeport controller.
//! - [`retry`]: how errors of every layer are classified for retrying.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod engine;
pub mod health;
pub mod kube;
pub mod reconcilers;
pub mod registry;
pub mod retry;
pub mod runtime;
pub mod threeport;

/// The User-Agent of every request the manager makes (Threeport API and runtime clusters), so
/// audit logs and server metrics tell it apart from Threeport's Go controllers.
pub const USER_AGENT: &str = concat!("threeport-manager/", env!("CARGO_PKG_VERSION"));
