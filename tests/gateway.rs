//! The gateway controller end to end on the sandbox backend (real nats-server, sandbox
//! Threeport API and Kubernetes API), with the workload controller in the same manager.
//!
//! The scenarios live in `gateway_suite` and run unchanged against the real stack in
//! `tests/upstream_gateway.rs`; the fault-injection scenario below needs the sandbox's faults
//! and counters and runs here only.

#[macro_use]
mod harness;
use backend::Stack;
use harness::workload_env::ManagerProcess;
use harness::workload_suite::Env;
use harness::{backend, gateway_suite};
use sandbox::kube::KubeRouteFilter;
use sandbox::threeport::RouteFilter;
use threeport_manager::threeport::models::{WORKLOAD_DEFINITION, WORKLOAD_INSTANCE};

// Every shared scenario, each on a fresh sandbox stack.
gateway_scenario_tests!(Some(Stack::sandbox().await));

/// Failures at the gateway's steps (attaching, recording the support workloads on the runtime,
/// the WRIs, un-reconciling workloads, applying gloo objects) converge on exactly one of
/// everything, and every injected fault was really hit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_at_each_gateway_step_converge_to_exactly_one_copy() {
    let env = gateway_suite::start(Stack::sandbox().await).await;
    // The app first: the faults below are for the gateway's work (and the workload
    // controller's work for it), not for the test's own requests.
    let (wd, wi) = gateway_suite::create_workload(&env, "faulty", true).await;
    let api = env.stack.sandbox_api().expect("sandbox");
    let kube = env.stack.sandbox_kube().expect("sandbox");
    let api_faults: &[(&'static str, &str, usize)] = &[
        ("POST", "/v0/attached-object-references", 1),
        ("PATCH", "/v0/kubernetes-runtime-instances", 2),
        ("POST", "/v0/workload-resource-instances", 3),
        ("PATCH", "/v0/workload-resource-instances", 2),
        ("PATCH", "/v0/workload-instances", 2),
        ("POST", "/v0/workload-instances", 1),
    ];
    for &(method, prefix, n) in api_faults {
        api.faults().fail_next(
            n,
            500,
            RouteFilter {
                method: Some(method),
                route_prefix: Some(prefix.into()),
            },
        );
    }
    for (resource, n) in [("virtualservices", 1), ("glooedges", 1), ("issuers", 1)] {
        kube.faults().fail_next(
            n,
            500,
            KubeRouteFilter {
                verb: Some("patch"),
                resource: Some(resource.into()),
            },
        );
    }
    let g = gateway_suite::create_gateway_for(&env, "faulty", wd, wi).await;
    gateway_suite::wait_converged(&env, &g, gateway_suite::FIRST_PORTS).await;
    gateway_suite::assert_gateway_deployed(&env, &g, gateway_suite::FIRST_PORTS, &[5432]).await;

    let c = api.counters();
    let hits = |method: &str, route: &str| c.get(method, route, 500);
    assert_eq!(hits("POST", "/v0/attached-object-references"), 1);
    assert_eq!(hits("PATCH", "/v0/kubernetes-runtime-instances/{id}"), 2);
    assert_eq!(hits("POST", "/v0/workload-resource-instances"), 3);
    assert_eq!(hits("PATCH", "/v0/workload-resource-instances/{id}"), 2);
    assert_eq!(hits("PATCH", "/v0/workload-instances/{id}"), 2);
    assert_eq!(hits("POST", "/v0/workload-instances"), 1);
    let k = kube.counters();
    for resource in ["virtualservices", "glooedges", "issuers"] {
        assert_eq!(k.get_status("patch", resource, 500), 1, "{resource}");
    }

    // Exactly one of each on the API side too: the gateway's WRIs on the user's workload, and
    // the support workload definitions.
    let wris = env.wris(g.wi).await;
    let count = |kind: &str| {
        wris.iter()
            .filter(|w| w["JSONDefinition"]["kind"] == kind)
            .count()
    };
    assert_eq!(count("VirtualService"), 2);
    assert_eq!(count("Gateway"), 1);
    assert_eq!(count("Issuer"), 1);
    assert_eq!(count("Certificate"), 1);
    let definitions = env.stack.list_all(WORKLOAD_DEFINITION).await;
    for prefix in ["gloo-edge-", "external-dns-"] {
        let n = definitions
            .iter()
            .filter(|d| d["Name"].as_str().is_some_and(|n| n.starts_with(prefix)))
            .count();
        assert_eq!(n, 1, "{prefix} definitions");
    }
    let instances = env.stack.list_all(WORKLOAD_INSTANCE).await;
    assert_eq!(instances.len(), 3, "the app, gloo-edge and external-dns");
    env.stop().await;
}

/// `threeport-manager --enable workload,gateway`, the command operators run, as a process
/// configured by Threeport's environment variables: ready with the five reconcilers, and the
/// happy path converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_enable_workload_gateway_process_is_ready_and_reconciles() {
    let stack = Stack::sandbox().await;
    gateway_suite::prepare_cluster(&stack).await;
    let logs = tempfile::tempdir().expect("tempdir");
    let manager = ManagerProcess::spawn_ready(
        &stack.process_env(),
        "workload,gateway",
        2,
        logs.path().join("manager.log"),
        gateway_suite::RECONCILERS,
    )
    .await;
    let env = Env {
        api: stack.api.clone(),
        stack,
        manager: None,
    };
    let g = gateway_suite::create_gateway(&env, "proc", false).await;
    gateway_suite::wait_converged(&env, &g, gateway_suite::FIRST_PORTS).await;
    gateway_suite::assert_gateway_deployed(&env, &g, gateway_suite::FIRST_PORTS, &[5432]).await;
    let metrics = manager.metrics().await;
    assert!(
        metrics.contains(
            r#"threeport_reconcile_total{controller="gateway",reconciler="GatewayInstanceReconciler",result="success"}"#
        ),
        "{metrics}"
    );
}
