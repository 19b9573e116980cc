//! kubectl against the Kubernetes sandbox (skipped, with a note, when kubectl is not on PATH).

use std::process::Command;

use sandbox::kube::{KubeSandbox, KubeSandboxOptions};

fn kubectl_available() -> bool {
    Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn kubectl(
    kubeconfig: &std::path::Path,
    args: &[&str],
    stdin: Option<&str>,
) -> (bool, String, String) {
    use std::io::Write as _;
    let mut cmd = Command::new("kubectl");
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn kubectl");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().expect("kubectl output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_talks_to_the_sandbox() {
    if !kubectl_available() {
        eprintln!("kubectl not found on PATH; skipping");
        return;
    }
    let k = KubeSandbox::start(KubeSandboxOptions::default())
        .await
        .expect("start");
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, k.kubeconfig_yaml()).expect("write kubeconfig");
    let kc2 = kc.clone();
    let run = move |args: &'static [&'static str], stdin: Option<&'static str>| {
        let kc = kc2.clone();
        tokio::task::spawn_blocking(move || kubectl(&kc, args, stdin))
    };

    let (ok, out, err) = run(&["version", "-o", "json"], None).await.expect("join");
    assert!(ok, "{out}{err}");
    assert!(out.contains("\"gitVersion\": \"v1.33.0\""), "{out}");

    let (ok, out, err) = run(&["api-resources", "--no-headers"], None)
        .await
        .expect("join");
    assert!(ok, "{err}");
    for want in [
        "deployments",
        "configmaps",
        "customresourcedefinitions",
        "clusterroles",
    ] {
        assert!(out.contains(want), "{want} missing from:\n{out}");
    }

    let manifest = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n  namespace: demo\n  labels:\n    app: demo\ndata:\n  a: \"1\"\n";
    let (ok, out, err) = run(&["create", "--validate=false", "-f", "-"], Some(manifest))
        .await
        .expect("join");
    assert!(ok, "{out}{err}");
    let (ok, out, err) = run(
        &[
            "get",
            "configmaps",
            "-n",
            "demo",
            "-l",
            "app=demo",
            "-o",
            "name",
        ],
        None,
    )
    .await
    .expect("join");
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "configmap/cfg");
    let (ok, _, err) = run(&["create", "--validate=false", "-f", "-"], Some(manifest))
        .await
        .expect("join");
    assert!(!ok);
    assert!(
        err.contains("AlreadyExists") || err.contains("already exists"),
        "{err}"
    );

    let apply = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: demo\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: c\n        image: nginx:1\n";
    let (ok, out, err) = run(
        &["apply", "--server-side", "--validate=false", "-f", "-"],
        Some(apply),
    )
    .await
    .expect("join");
    assert!(ok, "{out}{err}");
    let (ok, out, err) = run(
        &[
            "get",
            "deployment",
            "web",
            "-n",
            "demo",
            "-o",
            "jsonpath={.spec.replicas}",
        ],
        None,
    )
    .await
    .expect("join");
    assert!(ok, "{err}");
    assert_eq!(out, "2");
    assert!(k
        .get_object("apps/v1", "Deployment", Some("demo"), "web")
        .is_some());

    let (ok, out, err) = run(&["delete", "namespace", "demo", "--wait=false"], None)
        .await
        .expect("join");
    assert!(ok, "{out}{err}");
    assert!(k.objects("v1", "ConfigMap", Some("demo")).is_empty());
    k.shutdown().await;
}
