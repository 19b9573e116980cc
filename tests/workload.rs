//! The workload controller end to end on the sandbox backend: a real nats-server, the sandbox
//! Threeport API (with an encryption key, as Threeport runs), the sandbox Kubernetes API
//! registered as a runtime, and the manager running the real WorkloadDefinition and
//! WorkloadInstance reconcilers.
//!
//! The scenarios live in `workload_suite` and run unchanged against the real stack in
//! `tests/upstream_workload.rs`; the fault-injection scenarios below need the sandbox's
//! faults and counters and run here only.

#[macro_use]
mod harness;
use backend::Stack;
use harness::{backend, workload_suite};
use sandbox::kube::KubeRouteFilter;
use sandbox::threeport::RouteFilter;
use threeport_manager::threeport::models::{WORKLOAD_DEFINITION, WORKLOAD_INSTANCE};
use threeport_manager::threeport::ThreeportApi;
use workload_suite::*;

async fn start() -> Env {
    Env::start(Stack::sandbox().await).await
}

// Every shared scenario, each on a fresh sandbox stack.
workload_scenario_tests!(Some(Stack::sandbox().await));

fn sandbox_parts(
    env: &Env,
) -> (
    &sandbox::threeport::SandboxHandle,
    &sandbox::kube::KubeSandboxHandle,
) {
    (
        env.stack.sandbox_api().expect("sandbox backend"),
        env.stack.sandbox_kube().expect("sandbox backend"),
    )
}

fn kube_fault(env: &Env, verb: &'static str, resource: &str, n: usize) {
    sandbox_parts(env).1.faults().fail_next(
        n,
        500,
        KubeRouteFilter {
            verb: Some(verb),
            resource: Some(resource.into()),
        },
    );
}

fn api_fault(env: &Env, method: &'static str, prefix: &str, n: usize) {
    sandbox_parts(env).0.faults().fail_next(
        n,
        500,
        RouteFilter {
            method: Some(method),
            route_prefix: Some(prefix.into()),
        },
    );
}

#[tokio::test]
async fn faults_during_create_and_delete_converge_to_exactly_one_copy() {
    let env = start().await;
    let wd = env.create_wd("faulty", WEB_APP).await;
    env.wait_reconciled(WORKLOAD_DEFINITION, wd).await;

    // Create: Kubernetes refuses a write at several points, the API refuses a WRI POST, and
    // the engine's final `Reconciled` PATCH fails, so the whole Created reconcile reruns after
    // it had fully succeeded.
    kube_fault(&env, "patch", "deployments", 1);
    kube_fault(&env, "patch", "services", 2);
    kube_fault(&env, "patch", "threeportworkloads", 1);
    api_fault(&env, "POST", "/v0/workload-resource-instances", 2);
    api_fault(&env, "PATCH", "/v0/workload-instances", 1);
    let wi = env.create_wi("faulty-0", wd).await;
    env.wait_reconciled(WORKLOAD_INSTANCE, wi).await;
    let ns = assert_deployed(&env, "faulty", "faulty-0", wi, None).await;
    assert_eq!(env.threeport_workloads().await, 1);
    // Every injected fault was hit (so the retries above really happened).
    let k = sandbox_parts(&env).1.counters();
    assert_eq!(k.get_status("patch", "deployments", 500), 1);
    assert_eq!(k.get_status("patch", "services", 500), 2);
    assert_eq!(k.get_status("patch", "threeportworkloads", 500), 1);
    let c = sandbox_parts(&env).0.counters();
    assert_eq!(c.get("POST", "/v0/workload-resource-instances", 500), 2);
    assert_eq!(c.get("PATCH", "/v0/workload-instances/{id}", 500), 1);
    // Spec 3.2.2 step 9b: each Kubernetes failure posted a WorkloadEvent.
    let events = env.workload_events(wi).await;
    assert!(
        events
            .iter()
            .any(|e| e["Reason"] == "CreateResourceError" && e["Type"] == "Failed"),
        "{events:?}"
    );

    // Delete: a Kubernetes delete, a WRI DELETE and the workload-events DELETE fail once.
    kube_fault(&env, "delete", "configmaps", 1);
    kube_fault(&env, "delete", "threeportworkloads", 1);
    api_fault(&env, "DELETE", "/v0/workload-resource-instances", 1);
    api_fault(&env, "DELETE", "/v0/workload-events", 1);
    delete_and_assert_clean(&env, wi, &ns).await;
    assert_eq!(env.threeport_workloads().await, 0);
    assert!(env
        .stack
        .objects("v1", "Namespace", None)
        .await
        .iter()
        .all(|n| name(n) != ns));
    let k = sandbox_parts(&env).1.counters();
    assert_eq!(k.get_status("delete", "configmaps", 500), 1);
    assert_eq!(k.get_status("delete", "threeportworkloads", 500), 1);
    let c = sandbox_parts(&env).0.counters();
    assert_eq!(
        c.get("DELETE", "/v0/workload-resource-instances/{id}", 500),
        1
    );
    assert_eq!(c.get("DELETE", "/v0/workload-events", 500), 1);
    env.stop().await;
}

#[tokio::test]
async fn deleting_an_instance_whose_create_keeps_failing_leaves_nothing_behind() {
    // The namespace is applied, then every WRI POST fails: no WRI records it. Deleting the
    // instance must still remove it (found by its labels), and everything else.
    let env = start().await;
    let wd = env.create_wd("stuck", WEB_APP).await;
    env.wait_reconciled(WORKLOAD_DEFINITION, wd).await;
    api_fault(&env, "POST", "/v0/workload-resource-instances", 1_000);
    let wi = env.create_wi("stuck-0", wd).await;
    wait_until(LIMIT, "managed namespace applied", || async {
        env.namespaces_of(wi).await.len() == 1
    })
    .await;
    assert!(env.wris(wi).await.is_empty());
    env.api
        .delete(WORKLOAD_INSTANCE, wi)
        .await
        .expect("DELETE instance");
    env.wait_gone(WORKLOAD_INSTANCE, wi).await;
    sandbox_parts(&env).0.faults().clear();
    assert!(env.namespaces_of(wi).await.is_empty());
    assert!(env.app_objects_of(wi).await.is_empty());
    assert!(env.threeport_workload(wi).await.is_none());
    assert!(env.wris(wi).await.is_empty());
    env.stop().await;
}
