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

pub mod aws;
pub mod cli;
pub mod config;
pub mod engine;
pub mod health;
pub mod helm;
pub mod kube;
pub mod reconcilers;
pub mod registry;
pub mod retry;
pub mod runtime;
pub mod threeport;

/// The manager's version and the git commit it was built from, e.g. `0.1.0 (3f2a9c81d0e4)`
/// (`unknown` when the build had no git checkout; see build.rs).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("THREEPORT_MANAGER_GIT_SHA"),
    ")"
);

/// The git commit of the build (`unknown` without a checkout).
pub const GIT_SHA: &str = env!("THREEPORT_MANAGER_GIT_SHA");

/// The compiler that built the manager (`rustc --version`).
pub const RUSTC_VERSION: &str = env!("THREEPORT_MANAGER_RUSTC");

/// The User-Agent of every request the manager makes (Threeport API and runtime clusters), so
/// audit logs and server metrics tell it apart from Threeport's Go controllers.
pub const USER_AGENT: &str = concat!("threeport-manager/", env!("CARGO_PKG_VERSION"));
