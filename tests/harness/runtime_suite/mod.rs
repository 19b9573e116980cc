//! The kubernetes-runtime controller's scenarios (issue 13), on either backend: the stack's own
//! runtime instance is turned into an EKS runtime (an AWS account, the definition's provider
//! `eks`), so every install step runs, and its kube-apiserver is the cluster the install goes
//! to. Used by `tests/kubernetes_runtime.rs` (sandbox, fault injection) and
//! `tests/upstream_runtime_install.rs` (real kube-apiserver, Threeport's API and its Go
//! controller).
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::{json, Value};
use threeport_manager::reconcilers::kubernetes_runtime::install::{install_plan, InstallInputs};
use threeport_manager::threeport::models::{
    AWS_ACCOUNT, AWS_EKS_KUBERNETES_RUNTIME_DEFINITION, AWS_EKS_KUBERNETES_RUNTIME_INSTANCE, EVENT,
    KUBERNETES_RUNTIME_DEFINITION, KUBERNETES_RUNTIME_INSTANCE, WORKLOAD_INSTANCE,
};
use threeport_manager::threeport::ThreeportApi;

use crate::harness::backend::Stack;
use crate::harness::workload_env::metric_sum;
use crate::harness::workload_suite::{wait_until, Env, LIMIT, WEB_APP};

/// What `--enable kubernetes-runtime` runs.
pub const RECONCILERS: &[&str] = &[
    "KubernetesRuntimeDefinitionReconciler",
    "KubernetesRuntimeInstanceReconciler",
];

/// The workload controller as well: the deletion scenario needs workloads that come and go.
pub const WITH_WORKLOAD: &[&str] = &[
    "WorkloadDefinitionReconciler",
    "WorkloadInstanceReconciler",
    "KubernetesRuntimeDefinitionReconciler",
    "KubernetesRuntimeInstanceReconciler",
];

/// The AWS account the runtime's definition names.
pub const ACCOUNT_NAME: &str = "runtime-tests";
/// Its AWS account ID (an example value: nothing talks to AWS here).
pub const AWS_ACCOUNT_ID: &str = "111122223333";

/// The runtime instance of the stack.
pub async fn runtime(stack: &Stack) -> Value {
    stack
        .get(KUBERNETES_RUNTIME_INSTANCE, stack.runtime_id)
        .await
        .expect("the stack's runtime instance")
}

/// Its name.
pub async fn runtime_name(stack: &Stack) -> String {
    runtime(stack).await["Name"]
        .as_str()
        .expect("runtime name")
        .to_string()
}

/// Make the stack's runtime an EKS runtime: an AWS account (its ID is returned), and the
/// definition's provider `eks` naming it (with the node settings an EKS definition needs).
pub async fn make_eks(stack: &Stack) -> u64 {
    let account = stack
        .api
        .create(
            AWS_ACCOUNT,
            json!({"Name": ACCOUNT_NAME, "AccountID": AWS_ACCOUNT_ID, "DefaultAccount": true,
                   "DefaultRegion": "us-east-1", "AccessKeyID": "AKIAEXAMPLEKEY000000",
                   "SecretAccessKey": "example-secret-access-key"}),
        )
        .await
        .unwrap_or_else(|e| panic!("POST the AWS account: {e}"))["ID"]
        .as_u64()
        .expect("account ID");
    let krd = runtime(stack).await["KubernetesRuntimeDefinitionID"]
        .as_u64()
        .expect("KubernetesRuntimeDefinitionID");
    stack
        .api
        .patch(
            KUBERNETES_RUNTIME_DEFINITION,
            krd,
            json!({"InfraProvider": "eks", "InfraProviderAccountName": ACCOUNT_NAME,
                   "NodeProfile": "Balanced", "NodeSize": "Medium", "NodeMaximum": 4}),
        )
        .await
        .unwrap_or_else(|e| panic!("PATCH the runtime definition: {e}"));
    account
}

/// PATCH the runtime instance with `body` and `Reconciled:false`: its Updated notification
/// asks for the install.
pub async fn request_install(stack: &Stack, mut body: Value) {
    body["Reconciled"] = json!(false);
    stack
        .api
        .patch(KUBERNETES_RUNTIME_INSTANCE, stack.runtime_id, body)
        .await
        .unwrap_or_else(|e| panic!("PATCH the runtime instance: {e}"));
}

/// Wait until the runtime instance is reconciled (again).
pub async fn wait_reconciled(stack: &Stack, what: &str) {
    wait_until(LIMIT, what, || async {
        runtime(stack).await["Reconciled"] == true
    })
    .await;
}

/// Wait until the runtime instance has its EKS instance (the Created reconcile of an EKS
/// runtime).
pub async fn wait_eks_instance(stack: &Stack) {
    wait_until(LIMIT, "the runtime's EKS instance", || async {
        !stack
            .list_where(
                AWS_EKS_KUBERNETES_RUNTIME_INSTANCE,
                "kubernetesruntimeinstanceid",
                stack.runtime_id,
            )
            .await
            .is_empty()
    })
    .await;
}

/// The objects the install puts into the stack's cluster for an EKS runtime named `runtime`.
pub fn expected_objects(runtime: &str, agent_image: Option<&str>) -> Vec<Value> {
    install_plan(&InstallInputs {
        runtime_name: runtime.to_string(),
        agent_image: agent_image.map(str::to_string),
        aws_account_id: Some(AWS_ACCOUNT_ID.to_string()),
        control_plane_host: false,
    })
    .expect("install plan")
    .into_iter()
    .flat_map(|(_, objects)| objects)
    .collect()
}

/// `apiVersion kind namespace/name` of an object.
pub fn identity(o: &Value) -> String {
    let s = |p: &str| o.pointer(p).and_then(Value::as_str).unwrap_or_default();
    format!(
        "{} {} {}/{}",
        s("/apiVersion"),
        s("/kind"),
        s("/metadata/namespace"),
        s("/metadata/name")
    )
}

/// The live object for `expected`, if it exists.
pub async fn live(stack: &Stack, expected: &Value) -> Option<Value> {
    let s = |p: &str| expected.pointer(p).and_then(Value::as_str);
    stack
        .object(
            s("/apiVersion").unwrap_or_default(),
            s("/kind").unwrap_or_default(),
            s("/metadata/namespace"),
            s("/metadata/name").unwrap_or_default(),
        )
        .await
}

/// Where `live` does not hold what `wanted` says (`None`: it holds all of it). Fields the API
/// server adds (defaults, status, metadata) are allowed; lists must match element by element.
pub fn missing(wanted: &Value, live: &Value, path: &str) -> Option<String> {
    match (wanted, live) {
        (Value::Object(w), Value::Object(l)) => w.iter().find_map(|(k, wv)| match l.get(k) {
            Some(lv) => missing(wv, lv, &format!("{path}/{k}")),
            // The API server drops empty values and nulls (creationTimestamp: null, {}).
            None if wv.is_null() || wv == &json!({}) || wv == &json!([]) => None,
            None => Some(format!("{path}/{k} is missing")),
        }),
        (Value::Array(w), Value::Array(l)) if w.len() == l.len() => w
            .iter()
            .zip(l)
            .enumerate()
            .find_map(|(i, (wv, lv))| missing(wv, lv, &format!("{path}/{i}"))),
        _ if wanted == live => None,
        _ => Some(format!("{path}: wanted {wanted}, found {live}")),
    }
}

/// Every expected object is in the cluster with every field it names.
pub async fn assert_installed(stack: &Stack, expected: &[Value]) {
    for wanted in expected {
        let found = live(stack, wanted)
            .await
            .unwrap_or_else(|| panic!("{} is not in the cluster", identity(wanted)));
        if let Some(diff) = missing(wanted, &found, "") {
            panic!("{}: {diff}", identity(wanted));
        }
    }
}

/// `identity -> metadata.resourceVersion` of the expected objects.
pub async fn resource_versions(stack: &Stack, expected: &[Value]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for wanted in expected {
        let found = live(stack, wanted).await.unwrap_or_default();
        out.insert(
            identity(wanted),
            found["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    out
}

/// The manager (`reconcilers`) on `stack`, whose runtime was made an EKS runtime first, once
/// the runtime has its EKS instance. The real stack registers its runtime unreconciled, so the
/// manager's Created reconciles make the EKS definition and instance; the sandbox registers it
/// already reconciled, as Threeport registers its genesis runtime, so there Created has
/// nothing to do and the EKS objects are made here as those reconciles would have.
pub async fn start(stack: Stack, reconcilers: &[&str]) -> Env {
    let registered_reconciled = runtime(&stack).await["Reconciled"] == true;
    let account = make_eks(&stack).await;
    if registered_reconciled {
        // What the definition's and the runtime's Created reconciles would have made.
        make_eks_objects(&stack, account).await;
    }
    let env = Env::start_with(stack, reconcilers).await;
    wait_eks_instance(&env.stack).await;
    wait_reconciled(&env.stack, "the runtime's Created reconcile").await;
    env
}

/// The runtime's AwsEksKubernetesRuntimeDefinition and Instance, as the kubernetes-runtime
/// controller makes them, for account `account`.
async fn make_eks_objects(stack: &Stack, account: u64) {
    let krd = runtime(stack).await["KubernetesRuntimeDefinitionID"]
        .as_u64()
        .expect("KubernetesRuntimeDefinitionID");
    let def = stack
        .api
        .create(
            AWS_EKS_KUBERNETES_RUNTIME_DEFINITION,
            json!({"Name": "runtime-tests", "AWSAccountID": account, "ZoneCount": 2,
                   "DefaultNodeGroupInstanceType": "m6i.large", "DefaultNodeGroupInitialSize": 2,
                   "DefaultNodeGroupMinimumSize": 0, "DefaultNodeGroupMaximumSize": 4,
                   "KubernetesRuntimeDefinitionID": krd}),
        )
        .await
        .unwrap_or_else(|e| panic!("POST the EKS definition: {e}"))["ID"]
        .as_u64()
        .expect("ID");
    stack
        .api
        .create(
            AWS_EKS_KUBERNETES_RUNTIME_INSTANCE,
            json!({"Name": runtime_name(stack).await, "Region": "us-east-1",
                   "AwsEksKubernetesRuntimeDefinitionID": def,
                   "KubernetesRuntimeInstanceID": stack.runtime_id}),
        )
        .await
        .unwrap_or_else(|e| panic!("POST the EKS instance: {e}"));
}

/// The runtime's EKS instances.
pub async fn eks_instances(stack: &Stack) -> Vec<Value> {
    stack
        .list_where(
            AWS_EKS_KUBERNETES_RUNTIME_INSTANCE,
            "kubernetesruntimeinstanceid",
            stack.runtime_id,
        )
        .await
}

/// The install puts every object in place, a second install changes none of them (same
/// resourceVersions), and `ThreeportAgentImage` changes the agent Deployment and nothing else.
pub async fn install_scenario(env: &Env) {
    let stack = &env.stack;
    let runtime = runtime_name(stack).await;
    let expected = expected_objects(&runtime, None);

    request_install(stack, json!({})).await;
    wait_reconciled(stack, "the install").await;
    assert_installed(stack, &expected).await;
    let first = resource_versions(stack, &expected).await;

    request_install(stack, json!({})).await;
    wait_reconciled(stack, "the second install").await;
    let second = resource_versions(stack, &expected).await;
    assert_eq!(first, second, "a second install changed objects");

    let image = "registry.example.com/platform/threeport-agent:v0.6.1-patched";
    request_install(stack, json!({"ThreeportAgentImage": image})).await;
    wait_reconciled(stack, "the install with another agent image").await;
    let expected = expected_objects(&runtime, Some(image));
    assert_installed(stack, &expected).await;
    let third = resource_versions(stack, &expected).await;
    let changed: Vec<&String> = first.keys().filter(|k| first[*k] != third[*k]).collect();
    assert_eq!(
        changed,
        vec!["apps/v1 Deployment threeport-control-plane/threeport-agent"],
        "only the agent changes"
    );
}

/// Deleting the runtime while a workload runs on it: the deletion waits, visibly (a
/// FailedDelete event naming the workload, a failed-reconcile count), and the EKS cluster is
/// not torn down; once the workload is deleted, the EKS instance is deleted and the runtime
/// is gone.
pub async fn deletion_waits_for_workloads_scenario(env: &Env) {
    let stack = &env.stack;
    let wd = env.create_wd("runtime-tenant", WEB_APP).await;
    let wi = env.create_wi("runtime-tenant-0", wd).await;
    env.wait_reconciled(WORKLOAD_INSTANCE, wi).await;

    stack
        .api
        .delete(KUBERNETES_RUNTIME_INSTANCE, stack.runtime_id)
        .await
        .unwrap_or_else(|e| panic!("DELETE the runtime instance: {e}"));
    let blocked = || async {
        stack.list_all(EVENT).await.into_iter().find(|e| {
            e["Reason"] == "FailedDelete"
                && e["Note"]
                    .as_str()
                    .is_some_and(|n| n.contains(&format!("runtime-tenant-0 (ID {wi})")))
        })
    };
    wait_until(
        LIMIT,
        "the FailedDelete event naming the workload",
        || async { blocked().await.is_some() },
    )
    .await;
    let event = blocked().await.expect("event");
    assert_eq!(event["Type"], "Warning", "{event}");
    // Counted once the attempt has ended (the event is recorded before that).
    wait_until(
        LIMIT,
        "the blocked deletion counted as a failed reconcile",
        || async {
            metric_sum(
                &env.metrics(),
                "threeport_reconcile_errors_total",
                &[("reconciler", "KubernetesRuntimeInstanceReconciler")],
            ) >= 1.0
        },
    )
    .await;
    let eks = eks_instances(stack).await;
    assert!(
        eks.len() == 1 && eks[0]["DeletionScheduled"].is_null(),
        "the EKS cluster stays while the workload runs: {eks:?}"
    );
    assert!(stack
        .get(KUBERNETES_RUNTIME_INSTANCE, stack.runtime_id)
        .await
        .is_some());

    stack
        .api
        .delete(WORKLOAD_INSTANCE, wi)
        .await
        .unwrap_or_else(|e| panic!("DELETE the workload instance: {e}"));
    env.wait_gone(WORKLOAD_INSTANCE, wi).await;
    env.wait_gone(KUBERNETES_RUNTIME_INSTANCE, stack.runtime_id)
        .await;
    // The EKS instance is the aws controller's (not running here): deleting it schedules its
    // deletion.
    let after = eks_instances(stack).await;
    assert!(
        after.len() == 1 && !after[0]["DeletionScheduled"].is_null(),
        "the EKS instance's deletion is scheduled: {after:?}"
    );
}
