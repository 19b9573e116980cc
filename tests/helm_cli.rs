//! The helm runner (`src/helm/`) with the real helm CLI (v3.22, built by `scripts/upstream.sh
//! build`): a private workspace whose kubeconfig reaches the runtime (the sandbox cluster, and
//! a real kube-apiserver for an install),
//! helm's failures classified from what helm v3.22 really prints, and every run bounded by
//! the timeout and ended by cancellation.

mod harness;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use harness::backend::Stack;
use harness::charts::ChartRepo;
use threeport_manager::helm::{Helm, HelmError, HelmSettings, HelmWorkspace};
use threeport_manager::kube::{RuntimeAuth, RuntimeCredentials};
use threeport_manager::retry::{Classify, RetryClass};
use threeport_manager::threeport::crypto::EncryptionKey;
use threeport_manager::threeport::models::{
    KubernetesRuntimeInstance, SecretString, KUBERNETES_RUNTIME_INSTANCE,
};
use tokio_util::sync::CancellationToken;

fn helm(binary: PathBuf, timeout: Duration) -> Helm {
    Helm::new(HelmSettings {
        binary,
        timeout,
        stop_grace: Duration::from_secs(2),
    })
}

fn args(a: &[&str]) -> Vec<OsString> {
    a.iter().map(OsString::from).collect()
}

/// Credentials for a cluster at `endpoint` that nothing needs to accept.
fn nowhere(endpoint: &str) -> RuntimeCredentials {
    RuntimeCredentials {
        runtime_id: 1,
        runtime: "nowhere (ID 1)".into(),
        endpoint: endpoint.into(),
        ca_pem: None,
        auth: RuntimeAuth::Token(SecretString("token-that-must-not-leak".into())),
    }
}

#[tokio::test]
async fn helm_reaches_the_runtime_through_the_workspace_kubeconfig() {
    let Some(bin) = harness::backend::helm_binary() else {
        return;
    };
    let stack = Stack::sandbox().await;
    let kri: KubernetesRuntimeInstance = serde_json::from_value(
        stack
            .get(KUBERNETES_RUNTIME_INSTANCE, stack.runtime_id)
            .await
            .expect("runtime"),
    )
    .expect("runtime model");
    let key = EncryptionKey::from_base64(&stack.encryption_key).expect("key");
    let creds = RuntimeCredentials::from_instance(&kri, false, Some(&key)).expect("credentials");
    let ws = HelmWorkspace::new(&creds).expect("workspace");
    let dir = ws.path().to_path_buf();
    let out = helm(bin, Duration::from_secs(60))
        .run(
            &ws,
            &args(&["list", "--all-namespaces", "--output", "json"]),
            &CancellationToken::new(),
        )
        .await
        .expect("helm list against the runtime");
    assert_eq!(out.trim(), "[]", "no releases yet");
    drop(ws);
    assert!(!dir.exists(), "the workspace is removed with the reconcile");
}

#[tokio::test]
async fn failures_are_classified_from_what_helm_prints() {
    let Some(bin) = harness::backend::helm_binary() else {
        return;
    };
    let helm = helm(bin, Duration::from_secs(60));
    let ws = HelmWorkspace::new(&nowhere("https://127.0.0.1:1")).expect("workspace");
    let cancel = CancellationToken::new();
    let run = |a: &'static [&'static str]| {
        let (helm, ws, cancel) = (&helm, &ws, &cancel);
        async move { helm.run(ws, &args(a), cancel).await.expect_err("fails") }
    };
    // A chart from a repository nobody added: permanent.
    let err = run(&["template", "r", "nosuchrepo/nochart"]).await;
    assert_eq!(err.retry_class(), RetryClass::Permanent, "{err}");
    assert!(
        err.to_string().contains("repo nosuchrepo not found"),
        "{err}"
    );
    // The runtime's API server does not answer: transient, and the token is not in the error.
    let err = run(&["list"]).await;
    assert_eq!(err.retry_class(), RetryClass::Transient, "{err}");
    assert!(err.to_string().contains("connection refused"), "{err}");
    assert!(!err.to_string().contains("token-that-must-not-leak"));
    // A repository that cannot be reached: transient, though helm calls it invalid.
    let err = run(&["repo", "add", "r", "http://127.0.0.1:1/charts"]).await;
    assert_eq!(err.retry_class(), RetryClass::Transient, "{err}");
}

#[tokio::test]
async fn a_helm_that_hangs_is_stopped_at_the_timeout_or_on_cancellation() {
    let Some(bin) = harness::backend::helm_binary() else {
        return;
    };
    // An API server that accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    let ws = HelmWorkspace::new(&nowhere(&format!("https://127.0.0.1:{port}"))).unwrap();

    let err = helm(bin.clone(), Duration::from_secs(2))
        .run(&ws, &args(&["list"]), &CancellationToken::new())
        .await
        .expect_err("hangs");
    assert!(matches!(err, HelmError::Timeout { .. }), "{err}");
    assert_eq!(err.retry_class(), RetryClass::Transient);

    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });
    let err = helm(bin, Duration::from_secs(600))
        .run(&ws, &args(&["list"]), &cancel)
        .await
        .expect_err("cancelled");
    assert!(matches!(err, HelmError::Cancelled { .. }), "{err}");
    hold.abort();
}

#[tokio::test]
async fn a_missing_helm_binary_is_permanent() {
    let ws = HelmWorkspace::new(&nowhere("https://127.0.0.1:1")).unwrap();
    let err = helm(PathBuf::from("/nonexistent/helm"), Duration::from_secs(5))
        .run(&ws, &args(&["version"]), &CancellationToken::new())
        .await
        .expect_err("no binary");
    assert_eq!(err.retry_class(), RetryClass::Permanent, "{err}");
}

/// The release command of `src/reconcilers/helm_workload/release.rs` run by helm against a
/// real kube-apiserver (helm validates against its OpenAPI document, which the sandbox does not
/// serve), from a chart repository on loopback: the release's objects land in the
/// release namespace, labelled by the post-renderer, with the instance's values over the
/// definition's; run again, it upgrades the same release.
#[tokio::test]
async fn the_release_command_installs_and_upgrades_from_a_repository() {
    use threeport_manager::reconcilers::helm_workload::post_render::PostRenderSpec;
    use threeport_manager::reconcilers::helm_workload::release::{
        chart_source, repository_name, upgrade_install_args, ReleaseCommand,
    };
    let Some(bin) = harness::backend::helm_binary() else {
        return;
    };
    let helm = helm(bin.clone(), Duration::from_secs(120));
    let Some(stack) = Stack::upstream(false).await else {
        return;
    };
    let kri: KubernetesRuntimeInstance = serde_json::from_value(
        stack
            .get(KUBERNETES_RUNTIME_INSTANCE, stack.runtime_id)
            .await
            .unwrap(),
    )
    .unwrap();
    let key = EncryptionKey::from_base64(&stack.encryption_key).unwrap();
    let creds = RuntimeCredentials::from_instance(&kri, false, Some(&key)).unwrap();
    let ws = HelmWorkspace::new(&creds).unwrap();
    let cancel = CancellationToken::new();
    let server = ChartRepo::serve(&bin, &["web"]);
    helm.run(
        &ws,
        &args(&["repo", "add", &repository_name(4), &server.url]),
        &cancel,
    )
    .await
    .expect("helm repo add");

    let source = chart_source(&server.url, "web").unwrap();
    let def_values = ws
        .write_file(
            "definition-values.yaml",
            "greeting: from-def\nreplicas: 2\n",
        )
        .unwrap();
    let inst_values = ws
        .write_file("instance-values.yaml", "greeting: from-inst\n")
        .unwrap();
    let spec = PostRenderSpec {
        definition_name: "web".into(),
        instance_name: "web-one".into(),
        instance_id: 4,
        release_namespace: "web-one-ns".into(),
        additional_resources: vec![],
    };
    let spec_file = ws
        .write_file("post-render.json", &serde_json::to_string(&spec).unwrap())
        .unwrap();
    let files = [def_values.as_path(), inst_values.as_path()];
    let command = ReleaseCommand {
        name: "web-one-release",
        namespace: "web-one-ns",
        instance_id: 4,
        source: &source,
        version: Some("0.1.0"),
        values_files: &files,
        post_renderer: std::path::Path::new(env!("CARGO_BIN_EXE_threeport-manager")),
        post_render_spec: &spec_file,
    };
    helm.run(&ws, &upgrade_install_args(&command), &cancel)
        .await
        .expect("helm upgrade --install (install)");
    let config_map = || async {
        stack
            .object(
                "v1",
                "ConfigMap",
                Some("web-one-ns"),
                "web-one-release-config",
            )
            .await
            .expect("the chart's ConfigMap in the release namespace")
    };
    let cm = config_map().await;
    assert_eq!(cm["data"]["greeting"], "from-inst");
    assert_eq!(
        cm["metadata"]["labels"]["control-plane.threeport.io/helm-workload-instance"],
        "4"
    );
    let deployment = stack
        .object(
            "apps/v1",
            "Deployment",
            Some("web-one-ns"),
            "web-one-release",
        )
        .await
        .expect("the chart's Deployment in the release namespace");
    assert_eq!(deployment["spec"]["replicas"], 2);

    ws.write_file("instance-values.yaml", "greeting: changed\n")
        .unwrap();
    helm.run(&ws, &upgrade_install_args(&command), &cancel)
        .await
        .expect("helm upgrade --install (upgrade)");
    let cm = config_map().await;
    assert_eq!(cm["data"]["greeting"], "changed");
    let history = helm
        .run(
            &ws,
            &args(&[
                "history",
                "web-one-release",
                "--namespace",
                "web-one-ns",
                "--output",
                "json",
            ]),
            &cancel,
        )
        .await
        .expect("helm history");
    let revisions: Vec<serde_json::Value> = serde_json::from_str(&history).unwrap();
    assert_eq!(revisions.len(), 2, "one release, upgraded: {history}");
}
