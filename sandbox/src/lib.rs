//! The sandbox: a local Threeport control plane for threeport-manager's tests, benchmarks and
//! demo. Never linked into the manager binary.
//!
//! - [`nats`]: start a real nats-server with JetStream on loopback.
//! - [`kube`]: a Kubernetes API server (TLS, client-certificate or token auth) for kube-rs
//!   and kubectl.
//! - [`threeport`]: a Threeport REST API that stores objects in memory and publishes
//!   notifications to JetStream exactly as the real API does.
#![forbid(unsafe_code)]

pub mod faults;
pub mod kube;
pub mod nats;
pub mod threeport;
mod tls;
