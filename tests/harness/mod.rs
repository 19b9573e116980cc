//! The one integration-test harness, shared by every suite in tests/ and the benchmarks
//! (which include it with `#[path]`). Each suite declares `mod harness;` and uses what it
//! needs; the fixtures (manifests, certificates) are files in tests/fixtures.
//!
//! - [`common`]: nats-server + the sandbox API + an in-process manager with a scripted test
//!   reconciler (engine suites).
//! - [`backend`]: a Threeport stack to test the workload controller against: the sandbox, or
//!   the real one of scripts/upstream.sh (kube-apiserver, Threeport's API, PostgreSQL).
//! - [`workload_env`]: the manager (in process or as a process) on such a stack, process
//!   stats, the web-app fixture.
//! - [`go_controller`]: Threeport's Go controllers as processes.
//! - [`workload_suite`], [`scale_suite`], [`gateway_suite`], [`runtime_suite`]: scenarios that run unchanged
//!   against either stack; [`helm_suite`], [`charts`] and [`observability_suite`] for the helm
//!   and observability controllers.
#![allow(dead_code)]

pub mod aws;
pub mod backend;
pub mod charts;
pub mod common;
pub mod eks_authenticator;
#[macro_use]
pub mod gateway_suite;
pub mod go_controller;
pub mod helm_suite;
pub mod observability_suite;
pub mod runtime_suite;
pub mod scale_suite;
pub mod workload_env;
#[macro_use]
pub mod workload_suite;
