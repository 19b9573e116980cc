//! What a HelmWorkloadInstance's release is (spec 3.5), as pure decisions: its name, its
//! namespace, where its chart comes from, and the helm command that installs or upgrades it.
//!
//! Unlike Threeport: the generated release namespace is derived from the instance's ID (Go
//! draws 10 random letters, so a retry after a failure that happened before the namespace was
//! written back makes a second one); install and upgrade are both `helm upgrade --install`, so
//! a retry after a partial failure completes the release instead of failing on the name.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::Path;

use serde_json::Value;

use crate::kube::manifest::{generated_namespace_name, WorkloadResourceRef};

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

/// `helm repo add <id>-repo <url>`: the chart repository, in the release's workspace.
pub fn repo_add_args(instance_id: u64, url: &str) -> Vec<OsString> {
    args(&["repo", "add", &repository_name(instance_id), url])
}

/// `helm get manifest`: what the release deployed (post-rendered), as a YAML stream.
pub fn get_manifest_args(name: &str, namespace: &str) -> Vec<OsString> {
    args(&["get", "manifest", name, "--namespace", namespace])
}

/// `helm uninstall`, which is done when there is no such release.
pub fn uninstall_args(name: &str, namespace: &str) -> Vec<OsString> {
    args(&[
        "uninstall",
        name,
        "--namespace",
        namespace,
        "--ignore-not-found",
    ])
}

/// `helm history` as JSON, for [`unstick`].
pub fn history_args(name: &str, namespace: &str) -> Vec<OsString> {
    args(&[
        "history",
        name,
        "--namespace",
        namespace,
        "--output",
        "json",
    ])
}

/// `helm rollback` to `revision`.
pub fn rollback_args(name: &str, namespace: &str, revision: u64) -> Vec<OsString> {
    args(&[
        "rollback",
        name,
        &revision.to_string(),
        "--namespace",
        namespace,
    ])
}

fn args(a: &[&str]) -> Vec<OsString> {
    a.iter().map(OsString::from).collect()
}

/// Whether helm refused because the release is in a pending state (a previous install,
/// upgrade or rollback that never finished).
pub fn is_pending_release(stderr: &str) -> bool {
    stderr.contains("another operation (install/upgrade/rollback) is in progress")
}

/// How to free a release stuck in a pending state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unstick {
    /// Back to the last revision that was deployed.
    Rollback(u64),
    /// Nothing was ever deployed: remove the release (its record and what it created).
    Uninstall,
}

/// What frees a release whose `helm history --output json` is `history`.
///
/// A release stays pending when the helm that installed or upgraded it died before it could
/// write the outcome (SIGKILL, a crash, a node lost); helm then refuses every further
/// operation on it. The reconcile holds the instance's lock, so no other reconcile, the
/// manager's or Threeport's, is running helm on this release: the pending revision is an
/// orphan. If an earlier revision is deployed, roll back to it (the next upgrade then runs as
/// usual); if none is (a first install that never finished), uninstall.
pub fn unstick(history: &str) -> Result<Unstick, String> {
    #[derive(serde::Deserialize)]
    struct Revision {
        revision: u64,
        status: String,
    }
    let revisions: Vec<Revision> = serde_json::from_str(history)
        .map_err(|e| format!("helm history is not the expected JSON: {e}"))?;
    Ok(revisions
        .iter()
        .filter(|r| r.status == "deployed")
        .map(|r| r.revision)
        .max()
        .map_or(Unstick::Uninstall, Unstick::Rollback))
}

/// A definition's or instance's `AdditionalResources`: a JSON array of Kubernetes objects, or
/// nothing.
pub fn additional_resources(value: Option<&Value>, owner: &str) -> Result<Vec<Value>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(other) => Err(format!(
            "AdditionalResources of {owner} is not a JSON array of Kubernetes objects (it is {})",
            crate::threeport::client::json_kind(other)
        )),
    }
}

/// The entries of the release's ThreeportWorkload: every object it deployed (`objects`, from
/// `helm get manifest`), a namespaced one without a namespace in the release namespace (where
/// helm put it; Threeport lists them without one, so the agent cannot find them).
/// `namespaced` tells the scope of an (apiVersion, kind); an unknown kind counts as namespaced,
/// as helm treats it.
pub fn workload_resources(
    objects: &[Value],
    namespaced: &HashMap<(String, String), bool>,
    release_namespace: &str,
) -> Vec<WorkloadResourceRef> {
    objects
        .iter()
        .map(|object| {
            let mut r = WorkloadResourceRef::from_object(object, 0);
            let api_version = object["apiVersion"].as_str().unwrap_or_default();
            let scoped = namespaced
                .get(&(api_version.to_string(), r.kind.clone()))
                .copied()
                .unwrap_or(true);
            if !scoped {
                r.namespace.clear();
            } else if r.namespace.is_empty() {
                r.namespace = release_namespace.to_string();
            }
            r
        })
        .collect()
}

#[cfg(test)]
mod tests;
