//! The helm-workload controller on the real stack (issue 14): Threeport's API on PostgreSQL,
//! a real kube-apiserver as the runtime, the real helm CLI (built by `scripts/upstream.sh
//! build`) installing the fixture chart `web` from a chart repository on loopback, with this
//! build's threeport-manager as helm's post-renderer.

mod harness;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use harness::backend::{helm_binary, Stack};
use harness::charts::ChartRepo;
use harness::helm_suite::{self, RECONCILERS};
use harness::workload_env::{metric_sum, ManagerProcess};
use serde_json::Value;
use threeport_manager::reconcilers::helm_workload::release::release_namespace;
use threeport_manager::threeport::models::HELM_WORKLOAD_INSTANCE;

/// Install with both objects' values and additional resources, upgrade, uninstall; a chart
/// that does not exist is a permanent error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_is_installed_upgraded_and_uninstalled() {
    let Some(helm) = helm_binary() else { return };
    let Some(stack) = Stack::upstream(false).await else {
        return;
    };
    let repo = ChartRepo::serve(&helm, &["web"]);
    let env = helm_suite::start(stack, &helm).await;
    helm_suite::release_lifecycle_scenario(&env, &repo).await;
    helm_suite::missing_chart_scenario(&env, &repo).await;
    env.stop().await;
}

/// Eight instances at once on four workers: every reconcile has its own workspace, so no
/// release gets another's values or files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_instances_on_four_workers_do_not_share_files() {
    let Some(helm) = helm_binary() else { return };
    let Some(stack) = Stack::upstream(false).await else {
        return;
    };
    let repo = ChartRepo::serve(&helm, &["web"]);
    let env = helm_suite::start(stack, &helm).await;
    helm_suite::many_instances_scenario(&env, &repo, 8).await;
    env.stop().await;
}

/// A helm that fails once at each step of a release (adding the repository, the upgrade, the
/// read of the manifest) with an error helm prints for an unreachable cluster: the release
/// converges after exactly one failed attempt per fault, each step repeated only as often as
/// the retries require.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_at_each_helm_step_converges() {
    let Some(helm) = helm_binary() else { return };
    let Some(stack) = Stack::upstream(false).await else {
        return;
    };
    let repo = ChartRepo::serve(&helm, &["web"]);
    let faults = tempfile::tempdir().expect("tempdir");
    let calls = faults.path().join("calls.log");
    let wrapper = faults.path().join("flaky-helm");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n\
             echo \"$1 $2\" >> '{calls}'\n\
             case \"$1\" in repo|upgrade|get)\n\
               if [ ! -e '{dir}/failed-'\"$1\" ]; then\n\
                 : > '{dir}/failed-'\"$1\"\n\
                 echo 'Error: Kubernetes cluster unreachable: Get \"https://127.0.0.1:1/version\": dial tcp 127.0.0.1:1: connect: connection refused' >&2\n\
                 exit 1\n\
               fi;;\n\
             esac\n\
             exec '{helm}' \"$@\"\n",
            calls = calls.display(),
            dir = faults.path().display(),
            helm = helm.display(),
        ),
    )
    .expect("write the wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");

    let env = helm_suite::start(stack, &wrapper).await;
    let stack = &env.stack;
    let hwd = helm_suite::create_definition(stack, "flaky", &repo, "web", "", Value::Null).await;
    let hwi =
        helm_suite::create_instance(stack, "flaky-one", hwd, "greeting: through\n", Value::Null)
            .await;
    env.wait_reconciled(HELM_WORKLOAD_INSTANCE, hwi).await;
    let namespace = release_namespace("flaky-one", hwi, None);
    let cm = helm_suite::chart_config_map(stack, &namespace, "flaky-one")
        .await
        .expect("the chart's ConfigMap");
    assert_eq!(cm["data"]["greeting"], "through");

    let log = std::fs::read_to_string(&calls).expect("calls");
    let count = |prefix: &str| log.lines().filter(|l| l.starts_with(prefix)).count();
    // Attempt 1 fails at `repo add`, 2 at `upgrade`, 3 at `get manifest`, 4 succeeds.
    assert_eq!(
        (count("repo add"), count("upgrade"), count("get manifest")),
        (4, 3, 2),
        "helm calls:\n{log}"
    );
    let errors = metric_sum(
        &env.metrics(),
        "threeport_reconcile_errors_total",
        &[("reconciler", "HelmWorkloadInstanceReconciler")],
    );
    assert_eq!(errors, 3.0, "one failed attempt per fault");
    let permanent = metric_sum(
        &env.metrics(),
        "threeport_reconcile_permanent_errors_total",
        &[("reconciler", "HelmWorkloadInstanceReconciler")],
    );
    assert_eq!(permanent, 0.0, "an unreachable cluster is transient");
    helm_suite::delete_and_wait(&env, hwi, &namespace).await;
    env.stop().await;
}

/// `threeport-manager --enable workload,helm-workload`, configured by the environment, is
/// ready with both controllers' reconcilers and releases a chart, with itself as
/// post-renderer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_enable_workload_helm_workload_process_releases_a_chart() {
    let Some(helm) = helm_binary() else { return };
    let Some(stack) = Stack::upstream(false).await else {
        return;
    };
    let repo = ChartRepo::serve(&helm, &["web"]);
    let mut vars = stack.process_env();
    vars.push((
        "THREEPORT_MANAGER__HELM__BINARY".into(),
        helm.display().to_string(),
    ));
    let logs = tempfile::tempdir().expect("tempdir");
    let mut reconcilers = vec!["WorkloadDefinitionReconciler", "WorkloadInstanceReconciler"];
    reconcilers.extend(RECONCILERS);
    let manager = ManagerProcess::spawn_ready(
        &vars,
        "workload,helm-workload",
        2,
        logs.path().join("manager.log"),
        &reconcilers,
    )
    .await;
    let hwd = helm_suite::create_definition(&stack, "proc", &repo, "web", "", Value::Null).await;
    let hwi =
        helm_suite::create_instance(&stack, "proc-one", hwd, "greeting: process\n", Value::Null)
            .await;
    let namespace = release_namespace("proc-one", hwi, None);
    harness::workload_suite::wait_until(
        Duration::from_secs(90),
        "the process released the chart",
        || async {
            helm_suite::chart_config_map(&stack, &namespace, "proc-one")
                .await
                .is_some_and(|cm| {
                    cm["data"]["greeting"] == "process"
                        && cm["metadata"]["labels"][helm_suite::INSTANCE_LABEL].as_str()
                            == Some(hwi.to_string().as_str())
                })
        },
    )
    .await;
    let metrics = manager.metrics().await;
    assert!(
        metrics.contains(
            r#"threeport_reconcile_total{controller="helm-workload",reconciler="HelmWorkloadInstanceReconciler",result="success"}"#
        ),
        "{metrics}"
    );
}
