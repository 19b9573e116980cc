use std::path::PathBuf;

use super::*;

#[test]
fn names_follow_threeport_and_the_generated_namespace_is_stable() {
    assert_eq!(release_name("wordpress-1"), "wordpress-1-release");
    assert_eq!(repository_name(12), "12-repo");
    assert_eq!(release_namespace("wp", 7, Some("blog")), "blog");
    let generated = release_namespace("wp", 7, None);
    assert_eq!(generated, release_namespace("wp", 7, Some("")));
    assert!(generated.starts_with("wp-") && generated.len() == "wp-".len() + 10);
    assert_ne!(generated, release_namespace("wp", 8, None));
    // Not the workload controller's namespace for a WorkloadInstance with the same ID.
    assert_ne!(
        generated,
        crate::kube::manifest::managed_namespace_name("wp", 7)
    );
}

#[test]
fn chart_sources_are_oci_or_http_repositories() {
    assert_eq!(
        chart_source("oci://registry-1.docker.io/bitnamicharts/", "wordpress"),
        Ok(ChartSource::Oci {
            reference: "oci://registry-1.docker.io/bitnamicharts/wordpress".into()
        })
    );
    assert_eq!(
        chart_source("https://grafana.github.io/helm-charts", "grafana"),
        Ok(ChartSource::Repository {
            url: "https://grafana.github.io/helm-charts".into(),
            chart: "grafana".into()
        })
    );
    for (repo, chart, why) in [
        ("ftp://example.com", "x", "Repo"),
        ("oci://", "x", "Repo"),
        ("https://example.com", "", "Chart"),
        ("https://example.com", "../x", "Chart"),
    ] {
        let err = chart_source(repo, chart).expect_err(repo);
        assert!(err.starts_with(why), "{repo} {chart}: {err}");
    }
}

#[test]
fn the_command_installs_or_upgrades_with_values_in_order_and_the_post_renderer() {
    let source = ChartSource::Repository {
        url: "http://127.0.0.1:8000".into(),
        chart: "web".into(),
    };
    let (def, inst) = (
        PathBuf::from("/w/definition.yaml"),
        PathBuf::from("/w/instance.yaml"),
    );
    let files = [def.as_path(), inst.as_path()];
    let args = upgrade_install_args(&ReleaseCommand {
        name: "web-1-release",
        namespace: "web-1-ns",
        instance_id: 4,
        source: &source,
        version: Some("0.1.0"),
        values_files: &files,
        post_renderer: Path::new("/bin/threeport-manager"),
        post_render_spec: Path::new("/w/post-render.json"),
    });
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        args.join(" "),
        "upgrade --install web-1-release 4-repo/web --namespace web-1-ns --create-namespace \
         --dependency-update --version 0.1.0 --values /w/definition.yaml --values /w/instance.yaml \
         --post-renderer /bin/threeport-manager --post-renderer-args helm-post-render \
         --post-renderer-args --spec --post-renderer-args /w/post-render.json"
    );
    let oci = ChartSource::Oci {
        reference: "oci://r.example/charts/web".into(),
    };
    let args = upgrade_install_args(&ReleaseCommand {
        source: &oci,
        version: None,
        values_files: &[],
        name: "a",
        namespace: "b",
        instance_id: 1,
        post_renderer: Path::new("/m"),
        post_render_spec: Path::new("/s"),
    });
    assert_eq!(args[3], "oci://r.example/charts/web");
    assert!(!args.contains(&OsString::from("--version")));
}

#[test]
fn a_pending_release_is_rolled_back_to_its_last_deployed_revision_or_uninstalled() {
    assert!(is_pending_release(
        "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress"
    ));
    assert!(!is_pending_release("Error: INSTALLATION FAILED: timed out"));
    let history = r#"[
        {"revision":1,"updated":"2026-12-01T10:00:00Z","status":"superseded","chart":"web-0.1.0"},
        {"revision":2,"updated":"2026-12-01T10:01:00Z","status":"deployed","chart":"web-0.1.0"},
        {"revision":3,"updated":"2026-12-01T10:02:00Z","status":"pending-upgrade","chart":"web-0.2.0"}
    ]"#;
    assert_eq!(unstick(history), Ok(Unstick::Rollback(2)));
    let never_deployed = r#"[{"revision":1,"status":"pending-install"}]"#;
    assert_eq!(unstick(never_deployed), Ok(Unstick::Uninstall));
    let err = unstick("Error: release: not found").unwrap_err();
    assert!(err.contains("helm history"), "{err}");
}

#[test]
fn additional_resources_are_a_json_array_or_nothing() {
    let cm =
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
    assert_eq!(additional_resources(None, "d"), Ok(vec![]));
    assert_eq!(additional_resources(Some(&Value::Null), "d"), Ok(vec![]));
    assert_eq!(
        additional_resources(Some(&serde_json::json!([cm.clone()])), "d"),
        Ok(vec![cm.clone()])
    );
    let err = additional_resources(Some(&cm), "helm workload definition 3").unwrap_err();
    assert_eq!(
        err,
        "AdditionalResources of helm workload definition 3 is not a JSON array of Kubernetes \
         objects (it is an object)"
    );
}

#[test]
fn the_threeport_workload_names_the_namespace_of_every_namespaced_object() {
    let objects = vec![
        serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}),
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "elsewhere"}}),
        serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r", "namespace": "ignored"}}),
        serde_json::json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}),
    ];
    let scopes: HashMap<(String, String), bool> = [
        (("apps/v1", "Deployment"), true),
        (("v1", "ConfigMap"), true),
        (("rbac.authorization.k8s.io/v1", "ClusterRole"), false),
    ]
    .into_iter()
    .map(|((a, k), n)| ((a.to_string(), k.to_string()), n))
    .collect();
    let refs = workload_resources(&objects, &scopes, "rel-ns");
    let got: Vec<(&str, &str, &str, &str, &str)> = refs
        .iter()
        .map(|r| {
            (
                r.group.as_str(),
                r.version.as_str(),
                r.kind.as_str(),
                r.namespace.as_str(),
                r.name.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("apps", "v1", "Deployment", "rel-ns", "web"),
            ("", "v1", "ConfigMap", "elsewhere", "c"),
            ("rbac.authorization.k8s.io", "v1", "ClusterRole", "", "r"),
            ("example.com", "v1", "Widget", "rel-ns", "w"),
        ]
    );
    assert!(refs.iter().all(|r| r.threeport_id == 0));
}

#[test]
fn helm_commands_name_the_release_and_its_namespace() {
    let s = |a: Vec<OsString>| {
        a.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        s(repo_add_args(4, "http://127.0.0.1:1")),
        "repo add 4-repo http://127.0.0.1:1"
    );
    assert_eq!(
        s(get_manifest_args("r", "n")),
        "get manifest r --namespace n"
    );
    assert_eq!(
        s(uninstall_args("r", "n")),
        "uninstall r --namespace n --ignore-not-found"
    );
    assert_eq!(
        s(history_args("r", "n")),
        "history r --namespace n --output json"
    );
    assert_eq!(s(rollback_args("r", "n", 2)), "rollback r 2 --namespace n");
}
