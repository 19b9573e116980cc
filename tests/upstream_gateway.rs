//! The gateway suite against the real thing: kube-apiserver v1.37 with the gateway CRDs,
//! Threeport's REST API v0.6.1 on PostgreSQL, a JetStream nats-server (`scripts/upstream.sh
//! up`); the manager's workload and gateway reconcilers run in process.
//!
//! Each test gets a fresh stack (one at a time: Threeport's API binds fixed ports). Without
//! the binaries each test says SKIPPED, unless THREEPORT_UPSTREAM_REQUIRED is set.

#[macro_use]
mod harness;
use backend::Stack;
use harness::{backend, gateway_suite};

// Every shared scenario, each on a fresh real stack.
gateway_scenario_tests!(Stack::upstream(false).await);
