//! The helm-workload controller's post-renderer run by the real helm CLI (v3.22, built by
//! `scripts/upstream.sh build`): `helm template ... --post-renderer threeport-manager
//! --post-renderer-args helm-post-render ...` over a small chart (tests/fixtures/charts/web).
//! What helm prints is what an install would deploy: the chart's objects labelled, and the
//! additional resources after them (Threeport's post-renderer drops the chart whenever there
//! are additional resources, spec 4.5 item 37).

mod harness;

use std::path::Path;
use std::process::{Command, Output};

use harness::backend::repo_root;
use serde_json::json;
use threeport_manager::kube::manifest::{split_yaml, HELM_WORKLOAD_INSTANCE_LABEL};
use threeport_manager::reconcilers::helm_workload::post_render::PostRenderSpec;

/// `helm template web-1-release <chart> --namespace web-1-ns` with the manager as
/// post-renderer reading `spec`; helm's own folders in `home`.
fn template(helm: &Path, home: &Path, spec: &Path) -> Output {
    Command::new(helm)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .args(["template", "web-1-release"])
        .arg(repo_root().join("tests/fixtures/charts/web"))
        .args(["--namespace", "web-1-ns", "--set", "greeting=hi"])
        .arg("--post-renderer")
        .arg(env!("CARGO_BIN_EXE_threeport-manager"))
        .args(["--post-renderer-args", "helm-post-render"])
        .args(["--post-renderer-args", "--spec"])
        .arg("--post-renderer-args")
        .arg(spec)
        .output()
        .expect("run helm")
}

#[test]
fn helm_deploys_the_labelled_chart_and_the_additional_resources() {
    let Some(helm) = harness::backend::helm_binary() else {
        return;
    };
    let home = tempfile::tempdir().expect("tempdir");
    let spec = home.path().join("post-render.json");
    let post = PostRenderSpec {
        definition_name: "web-chart".into(),
        instance_name: "web-1".into(),
        instance_id: 7,
        release_namespace: "web-1-ns".into(),
        additional_resources: vec![
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "web-sa"}}),
        ],
    };
    std::fs::write(&spec, serde_json::to_vec(&post).unwrap()).unwrap();
    let out = template(&helm, home.path(), &spec);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "helm failed: {stderr}");
    let objects = split_yaml(&String::from_utf8_lossy(&out.stdout)).expect("helm's output");
    let kinds: Vec<(&str, &str)> = objects
        .iter()
        .map(|o| {
            (
                o["kind"].as_str().unwrap_or_default(),
                o["metadata"]["name"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    // All three, in helm's order (it sorts what the post-renderer returns).
    for wanted in [
        ("ConfigMap", "web-1-release-config"),
        ("Deployment", "web-1-release"),
        ("ServiceAccount", "web-sa"),
    ] {
        assert!(kinds.contains(&wanted), "{wanted:?} in {kinds:?}");
    }
    assert_eq!(objects.len(), 3, "{kinds:?}");
    for o in &objects {
        assert_eq!(
            o["metadata"]["labels"][HELM_WORKLOAD_INSTANCE_LABEL], "7",
            "{o}"
        );
    }
    let by_kind = |k: &str| objects.iter().find(|o| o["kind"] == k).unwrap();
    assert_eq!(
        by_kind("ConfigMap")["data"]["greeting"],
        "hi",
        "values reach the chart"
    );
    assert_eq!(
        by_kind("ServiceAccount")["metadata"]["namespace"],
        "web-1-ns"
    );
    assert_eq!(
        by_kind("Deployment")["spec"]["template"]["metadata"]["labels"]
            [HELM_WORKLOAD_INSTANCE_LABEL],
        "7"
    );
}

#[test]
fn a_broken_spec_fails_the_helm_run_with_the_reason() {
    let Some(helm) = harness::backend::helm_binary() else {
        return;
    };
    let home = tempfile::tempdir().expect("tempdir");
    let spec = home.path().join("post-render.json");
    std::fs::write(&spec, b"{\"definition_name\": 1}").unwrap();
    let out = template(&helm, home.path(), &spec);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is not a post-render spec"),
        "helm's error names the cause: {stderr}"
    );
}
