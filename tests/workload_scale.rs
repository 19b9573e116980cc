//! Two `threeport-manager --enable workload` processes (the real binary) on one NATS, the
//! sandbox Threeport API and the sandbox Kubernetes cluster; 200 instances of one definition,
//! reconciled exactly once each and all cleaned up (`scale_suite`). The same scenario runs on
//! the real stack in `tests/upstream_workload.rs`.

mod harness;
use harness::{backend, scale_suite};

use backend::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_managers_reconcile_200_instances_exactly_once() {
    let stack = Stack::sandbox().await;
    scale_suite::two_managers_reconcile_instances_exactly_once(&stack, 200).await;
}
