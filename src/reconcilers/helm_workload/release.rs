//! What a HelmWorkloadInstance's release is (spec 3.5), as pure decisions: its name, its
//! namespace, where its chart comes from, and the helm command that installs or upgrades it.
//!
//! Unlike Threeport: the generated release namespace is derived from the instance's ID (Go
//! draws 10 random letters, so a retry after a failure that happened before the namespace was
//! written back makes a second one); install and upgrade are both `helm upgrade --install`, so
//! a retry after a partial failure completes the release instead of failing on the name.

use std::ffi::OsString;
use std::path::Path;

use crate::kube::manifest::generated_namespace_name;

/// `<instance name>-release`, Threeport's release name.
pub fn release_name(instance_name: &str) -> String {
    format!("{instance_name}-release")
}

/// The instance's `ReleaseNamespace`, or when it has none the generated one
/// (`<instance name>-<10 chars from a hash of its ID>`).
pub fn release_namespace(instance_name: &str, instance_id: u64, set: Option<&str>) -> String {
    match set.filter(|ns| !ns.is_empty()) {
        Some(ns) => ns.to_string(),
        None => generated_namespace_name(
            instance_name,
            &format!("threeport-manager/helm-release-namespace/{instance_id}"),
        ),
    }
}

/// Where a definition's chart comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChartSource {
    /// An OCI registry: the chart is `<Repo>/<Chart>`, nothing to add first.
    Oci {
        /// `oci://<registry>/<path>/<chart>`.
        reference: String,
    },
    /// An HTTP(S) chart repository, added under a name private to the release's workspace.
    Repository {
        /// The repository URL.
        url: String,
        /// The chart's name in it.
        chart: String,
    },
}

/// The repository name a release's workspace adds its chart repository under (Threeport's
/// `<instance ID>-repo`).
pub fn repository_name(instance_id: u64) -> String {
    format!("{instance_id}-repo")
}

/// The chart source of a definition's `Repo` and `Chart`; an error names what is wrong.
pub fn chart_source(repo: &str, chart: &str) -> Result<ChartSource, String> {
    let repo = repo.trim_end_matches('/');
    if chart.is_empty() || chart.contains(char::is_whitespace) || chart.contains("..") {
        return Err(format!("Chart {chart:?} is not a chart name"));
    }
    if repo.starts_with("oci://") && repo.len() > "oci://".len() {
        return Ok(ChartSource::Oci {
            reference: format!("{repo}/{chart}"),
        });
    }
    if (repo.starts_with("https://") || repo.starts_with("http://"))
        && !repo.contains(char::is_whitespace)
    {
        return Ok(ChartSource::Repository {
            url: repo.to_string(),
            chart: chart.to_string(),
        });
    }
    Err(format!(
        "Repo {repo:?} is not an http(s):// chart repository or an oci:// registry"
    ))
}

/// The parts of a release's `helm upgrade --install` that come from the objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseCommand<'a> {
    /// The release name.
    pub name: &'a str,
    /// The release namespace.
    pub namespace: &'a str,
    /// The instance's ID (its repository name).
    pub instance_id: u64,
    /// Where the chart comes from.
    pub source: &'a ChartSource,
    /// `ChartVersion`, when set.
    pub version: Option<&'a str>,
    /// The definition's then the instance's values files (helm merges them in order).
    pub values_files: &'a [&'a Path],
    /// This binary, helm's post-renderer.
    pub post_renderer: &'a Path,
    /// The post-render spec file.
    pub post_render_spec: &'a Path,
}

/// `helm upgrade --install` of the release: creates it (and its namespace) or upgrades it,
/// resolving chart dependencies, with the values files in order and the manager as
/// post-renderer.
pub fn upgrade_install_args(c: &ReleaseCommand<'_>) -> Vec<OsString> {
    let chart = match c.source {
        ChartSource::Oci { reference } => reference.clone(),
        ChartSource::Repository { chart, .. } => {
            format!("{}/{chart}", repository_name(c.instance_id))
        }
    };
    let mut args: Vec<OsString> = [
        "upgrade",
        "--install",
        c.name,
        &chart,
        "--namespace",
        c.namespace,
        "--create-namespace",
        "--dependency-update",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    if let Some(version) = c.version.filter(|v| !v.is_empty()) {
        args.extend(["--version", version].map(OsString::from));
    }
    for file in c.values_files {
        args.push("--values".into());
        args.push(file.as_os_str().to_owned());
    }
    args.push("--post-renderer".into());
    args.push(c.post_renderer.as_os_str().to_owned());
    for arg in ["helm-post-render", "--spec"] {
        args.extend(["--post-renderer-args".into(), OsString::from(arg)]);
    }
    args.push("--post-renderer-args".into());
    args.push(c.post_render_spec.as_os_str().to_owned());
    args
}

#[cfg(test)]
mod tests;
