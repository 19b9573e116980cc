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
