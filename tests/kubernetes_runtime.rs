//! The kubernetes-runtime controller end to end on the sandbox backend (real nats-server,
//! sandbox Threeport API and Kubernetes API). The scenarios live in `runtime_suite` and run
//! unchanged on the real stack in `tests/upstream_runtime_install.rs`; the fault injection and
//! the process test need the sandbox and run here only.

mod harness;
use backend::Stack;
use harness::workload_env::ManagerProcess;
use harness::{backend, runtime_suite};
use runtime_suite::{expected_objects, request_install, runtime_name, wait_reconciled};
use sandbox::kube::KubeRouteFilter;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_then_reinstall_changes_nothing() {
    let env = runtime_suite::start(Stack::sandbox().await, runtime_suite::RECONCILERS).await;
    runtime_suite::install_scenario(&env).await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_waits_for_the_runtimes_workloads() {
    let env = runtime_suite::start(Stack::sandbox().await, runtime_suite::WITH_WORKLOAD).await;
    runtime_suite::deletion_waits_for_workloads_scenario(&env).await;
    env.stop().await;
}

/// A failed apply in each step of the install fails that attempt; the retry installs
/// everything, and the fault was hit exactly as often as set. Each attempt applies the objects
/// in the same order, so "let `skip` matching applies through" picks the object: the first of
/// its kind in that step (a rule that skips fails once: its next match would be an earlier
/// object in the retry).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_in_each_install_step_converges() {
    // (step, resource, applies of that resource earlier in an attempt, faults)
    let faults: [(&str, &str, usize, usize); 6] = [
        ("namespace", "namespaces", 0, 1),
        ("agent", "clusterroles", 0, 2),
        ("Threeport CRDs", "customresourcedefinitions", 1, 1),
        ("support-services operator", "deployments", 1, 1),
        ("SupportServices", "supportservices", 0, 1),
        ("EKS cluster-autoscaler", "serviceaccounts", 2, 1),
    ];
    for (step, resource, skip, n) in faults {
        let env = runtime_suite::start(Stack::sandbox().await, runtime_suite::RECONCILERS).await;
        let stack = &env.stack;
        let kube = stack.sandbox_kube().expect("sandbox");
        kube.faults().fail_after(
            skip,
            n,
            500,
            KubeRouteFilter {
                verb: Some("patch"),
                resource: Some(resource.into()),
            },
        );
        request_install(stack, json!({})).await;
        wait_reconciled(
            stack,
            &format!("the install despite a fault in the {step} step"),
        )
        .await;
        let expected = expected_objects(&runtime_name(stack).await, None);
        runtime_suite::assert_installed(stack, &expected).await;
        assert_eq!(
            kube.counters().get_status("patch", resource, 500),
            n as u64,
            "{step}"
        );
        let errors = harness::workload_env::metric_sum(
            &env.metrics(),
            "threeport_reconcile_errors_total",
            &[("reconciler", "KubernetesRuntimeInstanceReconciler")],
        );
        assert_eq!(errors, n as f64, "{step}: one failed attempt per fault");
        env.stop().await;
    }
}

/// `threeport-manager --enable kubernetes-runtime`, configured by Threeport's environment
/// variables alone, is ready with the controller's two reconcilers and installs the runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_enable_kubernetes_runtime_process_is_ready_and_installs() {
    let stack = Stack::sandbox().await;
    runtime_suite::make_eks(&stack).await;
    let logs = tempfile::tempdir().expect("tempdir");
    let manager = ManagerProcess::spawn_ready(
        &stack.process_env(),
        "kubernetes-runtime",
        2,
        logs.path().join("manager.log"),
        runtime_suite::RECONCILERS,
    )
    .await;
    request_install(&stack, json!({})).await;
    wait_reconciled(&stack, "the install").await;
    let expected = expected_objects(&runtime_name(&stack).await, None);
    runtime_suite::assert_installed(&stack, &expected).await;
    let metrics = manager.metrics().await;
    assert!(
        metrics.contains(
            r#"threeport_reconcile_total{controller="kubernetes-runtime",reconciler="KubernetesRuntimeInstanceReconciler",result="success"}"#
        ),
        "{metrics}"
    );
}
