//! The kubernetes-runtime install on the real stack (issue 13): a real kube-apiserver is the
//! runtime cluster, Threeport's API on PostgreSQL holds the runtime instance.
//!
//! - `go_installer_creates_what_the_data_files_hold`: Threeport's own Go
//!   kubernetes-runtime-controller (v0.6.1) installs into the cluster of an EKS runtime, and
//!   every object it sends (kube-apiserver's audit log with request bodies) is, in order and
//!   field for field, an object of `data/runtime-install/threeport-v0.6.1/` with the runtime's
//!   name and account ID in place of the placeholders. With
//!   `THREEPORT_RECORD_RUNTIME_MANIFESTS=1` the test writes the data files from what Go sent
//!   (how they were made; see that folder's README).
//! - the manager (`--enable kubernetes-runtime`, in process) installs the same objects, a
//!   second install changes no object (resourceVersions equal), and `ThreeportAgentImage`
//!   changes the agent's image and nothing else.

mod harness;
use harness::{backend, go_controller, runtime_suite};

use backend::request_log::kube_requests;
use backend::{Stack, UpstreamOptions};
use go_controller::GoController;
use runtime_suite::{
    identity, make_eks, request_install, runtime_name, wait_eks_instance, wait_reconciled,
    AWS_ACCOUNT_ID, RECONCILERS,
};
use serde_json::{json, Value};
use threeport_manager::reconcilers::kubernetes_runtime::install::{
    InstallStep, AWS_ACCOUNT_ID as ACCOUNT_PLACEHOLDER, RUNTIME_NAME, THREEPORT_VERSION,
};

const RECORD_ENV: &str = "THREEPORT_RECORD_RUNTIME_MANIFESTS";
/// client-go's User-Agent names the binary.
const GO_AGENT: &str = "kubernetes-runtime-controller/";

/// What Go sent, as the data files write it: placeholders for the runtime name and account,
/// no `status` (the API server sets it) and no `creationTimestamp: null` (an artefact of Go's
/// unstructured literals). The audit log records built-in kinds as kube-apiserver decoded them,
/// with its defaults filled in; custom resources and CRDs as sent.
fn as_template(mut body: Value, runtime: &str) -> Value {
    fn walk(v: &mut Value, runtime: &str) {
        match v {
            Value::String(s) => {
                *s = s
                    .replace(runtime, RUNTIME_NAME)
                    .replace(AWS_ACCOUNT_ID, ACCOUNT_PLACEHOLDER);
            }
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, runtime)),
            Value::Object(map) => map.values_mut().for_each(|i| walk(i, runtime)),
            _ => {}
        }
    }
    walk(&mut body, runtime);
    if let Some(object) = body.as_object_mut() {
        object.remove("status");
    }
    if let Some(meta) = body["metadata"].as_object_mut() {
        if meta.get("creationTimestamp") == Some(&Value::Null) {
            meta.remove("creationTimestamp");
        }
    }
    body
}

/// The install step an object Go created belongs to (for writing the data files).
fn step_of(o: &Value) -> InstallStep {
    let name = o["metadata"]["name"].as_str().unwrap_or_default();
    let namespace = o["metadata"]["namespace"].as_str().unwrap_or_default();
    let kind = o["kind"].as_str().unwrap_or_default();
    if kind == "Namespace" && name == "threeport-control-plane" {
        InstallStep::ControlPlaneNamespace
    } else if kind == "CustomResourceDefinition" {
        if name.ends_with(".support-services.nukleros.io") {
            InstallStep::ThreeportCrds
        } else {
            InstallStep::Agent
        }
    } else if namespace == "threeport-control-plane" || name.starts_with("threeport-agent") {
        InstallStep::Agent
    } else if namespace == "kube-system" || name.contains("cluster-autoscaler") {
        InstallStep::EksSystemServices
    } else {
        InstallStep::SupportServicesOperator
    }
}

fn write_data_files(objects: &[Value]) {
    let dir = backend::repo_root().join(format!(
        "data/runtime-install/threeport-{THREEPORT_VERSION}"
    ));
    for step in InstallStep::ALL {
        let docs: Vec<String> = objects
            .iter()
            .filter(|o| step_of(o) == step)
            .map(|o| serde_yaml_ng::to_string(o).expect("YAML"))
            .collect();
        let text = format!(
            "# Threeport {THREEPORT_VERSION}'s installer, step {:?}: what its kubernetes-runtime-controller\n\
             # creates in a runtime cluster, recorded by tests/upstream_runtime_install.rs (see README.md).\n\
             # Do not edit by hand: record again.\n---\n{}",
            step,
            docs.join("---\n")
        );
        std::fs::write(dir.join(step.file_name()), text).expect("write data file");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_installer_creates_what_the_data_files_hold() {
    let Some(stack) = Stack::upstream_with(UpstreamOptions {
        audit_request_bodies: true,
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let dir = stack.upstream_dir().expect("real stack").to_path_buf();
    make_eks(&stack).await;
    let logs = tempfile::tempdir().expect("tempdir");
    let go = GoController::start(
        "kubernetes-runtime-controller",
        &stack.process_env(),
        logs.path().join("kubernetes-runtime-controller.log"),
    );
    // Created first (the EKS instance), then the install on Updated.
    wait_eks_instance(&stack).await;
    wait_reconciled(&stack, "the runtime's Created reconcile").await;
    request_install(&stack, json!({})).await;
    wait_reconciled(&stack, "Go's install").await;
    let runtime = runtime_name(&stack).await;
    let sent: Vec<Value> = kube_requests(&dir)
        .into_iter()
        .filter(|r| r.user_agent.starts_with(GO_AGENT) && r.verb == "create")
        .filter_map(|r| r.body)
        .map(|b| as_template(b, &runtime))
        .collect();
    eprintln!(
        "Go created {} objects:\n{}",
        sent.len(),
        sent.iter().map(identity).collect::<Vec<_>>().join("\n")
    );
    assert!(!sent.is_empty(), "Go sent nothing:\n{}", go.log_tail(30));
    if std::env::var_os(RECORD_ENV).is_some() {
        write_data_files(&sent);
        panic!(
            "{RECORD_ENV} is set: the data files were written; rebuild and run again without it"
        );
    }
    let files: Vec<Value> = InstallStep::ALL
        .iter()
        .flat_map(|s| s.template().expect("data file"))
        .collect();
    let sent_ids: Vec<String> = sent.iter().map(identity).collect();
    let file_ids: Vec<String> = files.iter().map(identity).collect();
    assert_eq!(
        sent_ids, file_ids,
        "Go's objects and the data files' differ (set {RECORD_ENV}=1 to record them again)"
    );
    for (go_object, file_object) in sent.iter().zip(&files) {
        assert_eq!(
            go_object,
            file_object,
            "{} differs from its data file (set {RECORD_ENV}=1 to record again)",
            identity(go_object)
        );
    }
    drop(go);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manager_installs_everything_and_a_second_install_changes_nothing() {
    let Some(stack) = Stack::upstream(false).await else {
        return;
    };
    let env = runtime_suite::start(stack, RECONCILERS).await;
    runtime_suite::install_scenario(&env).await;
    env.stop().await;
}

/// The real API's delete hook refuses the runtime's final DELETE while a workload instance
/// references it; the manager waits before that, visibly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_deletion_waits_for_its_workloads_then_deletes_the_eks_instance() {
    let Some(stack) = Stack::upstream(false).await else {
        return;
    };
    let env = runtime_suite::start(stack, runtime_suite::WITH_WORKLOAD).await;
    runtime_suite::deletion_waits_for_workloads_scenario(&env).await;
    env.stop().await;
}
