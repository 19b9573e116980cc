//! The observability controller on the sandbox (issue 14): the eight reconcilers in one
//! manager (real nats-server, the sandbox API), with the API failing once or twice at each step
//! a stack takes (making child definitions, helm workload definitions and instances, child
//! instances, recording IDs). The stack converges on exactly one of everything, and every
//! injected fault was hit.

mod harness;

use harness::backend::Stack;
use harness::observability_suite::{self, RECONCILERS};
use harness::workload_suite::{wait_until, Env, LIMIT};
use sandbox::threeport::RouteFilter;
use serde_json::{json, Value};
use threeport_manager::threeport::models::{
    HELM_WORKLOAD_DEFINITION, HELM_WORKLOAD_INSTANCE, LOGGING_DEFINITION, LOGGING_INSTANCE,
    METRICS_DEFINITION, METRICS_INSTANCE, OBSERVABILITY_DASHBOARD_DEFINITION,
    OBSERVABILITY_DASHBOARD_INSTANCE, OBSERVABILITY_STACK_DEFINITION, OBSERVABILITY_STACK_INSTANCE,
};
use threeport_manager::threeport::{ObjectType, ThreeportApi};

async fn wait_reconciled(env: &Env, ty: ObjectType, name: &str) {
    observability_suite::wait_reconciled(&env.stack, LIMIT, ty, name).await;
}

async fn named(env: &Env, ty: ObjectType, name: &str) -> Vec<Value> {
    observability_suite::all_named(&env.stack, ty, name).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_at_each_step_of_a_stack_converge_on_exactly_one_of_everything() {
    let env = Env::start_with(Stack::sandbox().await, RECONCILERS).await;
    let api = env.stack.sandbox_api().expect("sandbox");
    let faults: &[(&'static str, &str, usize)] = &[
        ("POST", "/v0/observability-dashboard-definitions", 1),
        ("POST", "/v0/metrics-definitions", 1),
        ("PATCH", "/v0/observability-stack-definitions", 1),
        ("POST", "/v0/helm-workload-definitions", 2),
        ("PATCH", "/v0/logging-definitions", 1),
        ("POST", "/v0/logging-instances", 1),
        ("POST", "/v0/helm-workload-instances", 2),
        ("PATCH", "/v0/observability-dashboard-instances", 1),
    ];
    for &(method, prefix, n) in faults {
        api.faults().fail_next(
            n,
            500,
            RouteFilter {
                method: Some(method),
                route_prefix: Some(prefix.into()),
            },
        );
    }
    let def = env
        .stack
        .api
        .create(OBSERVABILITY_STACK_DEFINITION, json!({"Name": "obs"}))
        .await
        .expect("POST the stack definition");
    env.stack
        .api
        .create(
            OBSERVABILITY_STACK_INSTANCE,
            json!({"Name": "obs-1", "ObservabilityStackDefinitionID": def["ID"],
                   "KubernetesRuntimeInstanceID": env.stack.runtime_id}),
        )
        .await
        .expect("POST the stack instance");

    for (ty, name) in [
        (OBSERVABILITY_STACK_DEFINITION, "obs"),
        (
            OBSERVABILITY_DASHBOARD_DEFINITION,
            "obs-observability-dashboard",
        ),
        (METRICS_DEFINITION, "obs-metrics"),
        (LOGGING_DEFINITION, "obs-logging"),
        (OBSERVABILITY_STACK_INSTANCE, "obs-1"),
        (
            OBSERVABILITY_DASHBOARD_INSTANCE,
            "obs-1-observability-dashboard",
        ),
        (METRICS_INSTANCE, "obs-1-metrics"),
        (LOGGING_INSTANCE, "obs-1-logging"),
    ] {
        wait_reconciled(&env, ty, name).await;
    }
    let hwds = [
        "obs-observability-dashboard-grafana",
        "obs-metrics-kube-prometheus-stack",
        "obs-logging-loki",
        "obs-logging-promtail",
    ];
    let hwis = [
        "obs-1-observability-dashboard-grafana",
        "obs-1-metrics-kube-prometheus-stack",
        "obs-1-logging-loki",
        "obs-1-logging-promtail",
    ];
    wait_until(LIMIT, "the four helm workload instances", || async {
        env.stack.list_all(HELM_WORKLOAD_INSTANCE).await.len() == 4
    })
    .await;

    // Exactly one of everything.
    for (ty, name) in [
        (
            OBSERVABILITY_DASHBOARD_DEFINITION,
            "obs-observability-dashboard",
        ),
        (METRICS_DEFINITION, "obs-metrics"),
        (LOGGING_DEFINITION, "obs-logging"),
        (
            OBSERVABILITY_DASHBOARD_INSTANCE,
            "obs-1-observability-dashboard",
        ),
        (METRICS_INSTANCE, "obs-1-metrics"),
        (LOGGING_INSTANCE, "obs-1-logging"),
    ] {
        assert_eq!(named(&env, ty, name).await.len(), 1, "{name}");
    }
    assert_eq!(env.stack.list_all(HELM_WORKLOAD_DEFINITION).await.len(), 4);
    for name in hwds {
        assert_eq!(
            named(&env, HELM_WORKLOAD_DEFINITION, name).await.len(),
            1,
            "{name}"
        );
    }
    for name in hwis {
        assert_eq!(
            named(&env, HELM_WORKLOAD_INSTANCE, name).await.len(),
            1,
            "{name}"
        );
    }
    // The IDs recorded are those of the objects that exist.
    let stack_def = &named(&env, OBSERVABILITY_STACK_DEFINITION, "obs").await[0];
    assert_eq!(
        stack_def["MetricsDefinitionID"],
        named(&env, METRICS_DEFINITION, "obs-metrics").await[0]["ID"]
    );
    let dashboard = &named(
        &env,
        OBSERVABILITY_DASHBOARD_INSTANCE,
        "obs-1-observability-dashboard",
    )
    .await[0];
    assert_eq!(
        dashboard["GrafanaHelmWorkloadInstanceID"],
        named(&env, HELM_WORKLOAD_INSTANCE, hwis[0]).await[0]["ID"]
    );

    // Every fault was hit.
    let c = api.counters();
    for &(method, prefix, n) in faults {
        let route = if method == "PATCH" {
            format!("{prefix}/{{id}}")
        } else {
            prefix.to_string()
        };
        assert_eq!(c.get(method, &route, 500), n as u64, "{method} {route}");
    }
    env.stop().await;
}
