//! The reconciler's decisions with an in-memory API and cluster and a stand-in helm (a shell
//! script that records its arguments and answers as helm would). What the real helm does with
//! those arguments is tested against a real kube-apiserver in tests/upstream_helm_workload.rs.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use super::*;
use crate::engine::Operation;
use crate::kube::Cluster;
use crate::reconcilers::testing::{context, FakeApi, FakeCluster, FakeClusters};
use crate::retry::RetryClass;
use crate::threeport::api::Method;
use crate::threeport::models::{Definition, Instance, SecretString};

const MANIFEST: &str = "---\n# Source: web/templates/configmap.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-one-release-config\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-one-release\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: web-one-reader\n";

/// A helm that logs `$*` to `calls`, keeps a copy of the post-render spec and the values
/// files, prints `manifest.yaml` for `get manifest` and `history.json` for `history`, and
/// fails an upgrade with helm's "pending" error while `pending` exists (removing it).
struct FakeHelm {
    dir: tempfile::TempDir,
}

impl FakeHelm {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display();
        let script = format!(
            "#!/bin/sh\n\
             echo \"$*\" >> {d}/calls\n\
             case \"$1\" in\n\
               get) cat {d}/manifest.yaml ;;\n\
               history) cat {d}/history.json ;;\n\
               upgrade)\n\
                 for a in \"$@\"; do case \"$a\" in\n\
                   *post-render.json) cp \"$a\" {d}/spec.json ;;\n\
                   *values.yaml) cat \"$a\" >> {d}/values ;;\n\
                 esac; done\n\
                 if [ -e {d}/pending ]; then rm {d}/pending; \
                   echo 'Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress' >&2; exit 1; fi ;;\n\
             esac\n"
        );
        std::fs::write(dir.path().join("helm"), script).expect("script");
        std::fs::set_permissions(
            dir.path().join("helm"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
        std::fs::write(dir.path().join("manifest.yaml"), MANIFEST).expect("manifest");
        Self { dir }
    }

    fn binary(&self) -> PathBuf {
        self.dir.path().join("helm")
    }

    fn write(&self, name: &str, contents: &str) {
        std::fs::write(self.dir.path().join(name), contents).expect("write");
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// Each call's first two words.
    fn commands(&self) -> Vec<String> {
        self.read("calls")
            .lines()
            .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
            .collect()
    }
}

struct Fixture {
    api: Arc<FakeApi>,
    cluster: Arc<FakeCluster>,
    helm: FakeHelm,
    reconciler: HelmWorkloadInstanceReconciler,
    kri: u64,
    hwd: u64,
}

impl Fixture {
    fn new() -> Self {
        let api = FakeApi::new();
        let kri = api.insert(&KubernetesRuntimeInstance {
            instance: Instance {
                name: Some("edge".into()),
                ..Default::default()
            },
            api_endpoint: Some("https://127.0.0.1:1".into()),
            connection_token: Some(SecretString("runtime-token".into())),
            ..Default::default()
        });
        let hwd = api.insert(&HelmWorkloadDefinition {
            definition: Definition {
                name: Some("web".into()),
                ..Default::default()
            },
            repo: Some("http://127.0.0.1:1/charts".into()),
            chart: Some("web".into()),
            chart_version: Some("0.1.0".into()),
            values_document: Some("greeting: from-def\n".into()),
            additional_resources: Some(serde_json::json!([
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "extra-def"}}
            ])),
            ..Default::default()
        });
        let cluster = FakeCluster::new(Duration::ZERO);
        let helm = FakeHelm::new();
        let config = HelmConfig {
            binary: helm.binary(),
            post_renderer: Some(PathBuf::from("/usr/local/bin/threeport-manager")),
            ..Default::default()
        };
        let reconciler = HelmWorkloadInstanceReconciler::new(
            crate::reconcilers::testing::runtime_access(Arc::new(FakeClusters(cluster.clone()))),
            &config,
        );
        Self {
            api,
            cluster,
            helm,
            reconciler,
            kri,
            hwd,
        }
    }

    fn instance(&self, name: &str, release_namespace: Option<&str>) -> u64 {
        self.api.insert(&HelmWorkloadInstance {
            instance: Instance {
                name: Some(name.into()),
                ..Default::default()
            },
            reconciliation: Reconciliation {
                reconciled: Some(false),
                ..Default::default()
            },
            values_document: Some("greeting: from-inst\n".into()),
            kubernetes_runtime_instance_id: Some(self.kri),
            helm_workload_definition_id: Some(self.hwd),
            release_namespace: release_namespace.map(str::to_string),
            additional_resources: Some(serde_json::json!([
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "extra-inst"}}
            ])),
            ..Default::default()
        })
    }

    /// A Namespace in the cluster, as helm's `--create-namespace` leaves it.
    async fn namespace(&self, name: &str) {
        let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        self.cluster
            .apply(&dynamic_object(ns).unwrap())
            .await
            .unwrap();
    }

    /// The instance's deletion requested at `at` (the API's first DELETE).
    fn schedule_deletion(&self, id: u64, at: OffsetDateTime) {
        self.api.update::<HelmWorkloadInstance>(id, |i| {
            i.reconciliation.deletion_scheduled = Some(at);
        });
    }

    async fn run(&self, operation: Operation, id: u64) -> Result<Outcome, ReconcileError> {
        let ctx = context(
            self.api.clone(),
            "HelmWorkloadInstanceReconciler",
            id,
            operation,
            1,
        );
        let hwi: HelmWorkloadInstance = self.api.get(id).expect("instance");
        match operation {
            Operation::Created => self.reconciler.created(&ctx, hwi).await,
            Operation::Updated => self.reconciler.updated(&ctx, hwi).await,
            Operation::Deleted => self.reconciler.deleted(&ctx, hwi).await,
        }
    }
}

#[tokio::test]
async fn created_releases_the_chart_and_records_the_workload_and_the_namespace() {
    let f = Fixture::new();
    let id = f.instance("web-one", None);
    let namespace = release_namespace("web-one", id, None);
    assert!(matches!(
        f.run(Operation::Created, id).await,
        Ok(Outcome::Done)
    ));
    assert_eq!(
        f.helm.commands(),
        ["repo add", "upgrade --install", "get manifest"]
    );
    let calls = f.helm.read("calls");
    assert!(
        calls.contains(&format!("repo add {id}-repo http://127.0.0.1:1/charts")),
        "{calls}"
    );
    assert!(
        calls.contains(&format!(
            "upgrade --install web-one-release {id}-repo/web --namespace {namespace} "
        )),
        "{calls}"
    );
    // The definition's values, then the instance's.
    assert_eq!(
        f.helm.read("values"),
        "greeting: from-def\ngreeting: from-inst\n"
    );
    let spec: PostRenderSpec = serde_json::from_str(&f.helm.read("spec.json")).expect("spec");
    assert_eq!(spec.definition_name, "web");
    assert_eq!(spec.instance_id, id);
    assert_eq!(spec.release_namespace, namespace);
    let extra: Vec<&str> = spec
        .additional_resources
        .iter()
        .map(|r| r["metadata"]["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(extra, ["extra-def", "extra-inst"]);

    let tw = f.cluster.objects("ThreeportWorkload");
    assert_eq!(tw.len(), 1);
    assert_eq!(
        tw[0]["metadata"]["name"],
        format!("helm-workload-instance-{id}")
    );
    let entries: Vec<(String, String)> = tw[0]["spec"]["workloadResourceInstances"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or_default().to_string(),
                e["namespace"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("ConfigMap".to_string(), namespace.clone()),
            ("Deployment".to_string(), namespace.clone()),
            ("ClusterRole".to_string(), String::new()),
        ]
    );
    let hwi: HelmWorkloadInstance = f.api.get(id).expect("instance");
    assert_eq!(hwi.release_namespace.as_deref(), Some(namespace.as_str()));
    assert_eq!(hwi.reconciliation.reconciled, Some(true));
    assert_eq!(f.api.count(Method::Patch, "/v0/helm-workload-instances"), 1);

    // Updated: the same release upgraded; the namespace is known, so no PATCH.
    assert!(f.run(Operation::Updated, id).await.is_ok());
    assert_eq!(f.helm.commands().len(), 6);
    assert_eq!(f.api.count(Method::Patch, "/v0/helm-workload-instances"), 1);
}

#[tokio::test]
async fn a_release_namespace_that_is_set_is_used_and_not_written() {
    let f = Fixture::new();
    let id = f.instance("web-one", Some("blog"));
    assert!(f.run(Operation::Created, id).await.is_ok());
    assert!(f.helm.read("calls").contains("--namespace blog "));
    assert_eq!(f.api.count(Method::Patch, "/v0/helm-workload-instances"), 0);
}

#[tokio::test]
async fn a_release_left_pending_is_rolled_back_then_upgraded() {
    let f = Fixture::new();
    let id = f.instance("web-one", Some("blog"));
    f.helm.write("pending", "");
    f.helm.write(
        "history.json",
        r#"[{"revision":1,"status":"deployed"},{"revision":2,"status":"pending-upgrade"}]"#,
    );
    assert!(f.run(Operation::Updated, id).await.is_ok());
    assert_eq!(
        f.helm.commands(),
        [
            "repo add",
            "upgrade --install",
            "history web-one-release",
            "rollback web-one-release",
            "upgrade --install",
            "get manifest"
        ]
    );
    assert!(f
        .helm
        .read("calls")
        .contains("rollback web-one-release 1 --namespace blog"));
}

#[tokio::test]
async fn unusable_objects_are_permanent_errors_that_say_what_is_wrong() {
    let f = Fixture::new();
    let id = f.instance("web-one", None);
    f.api
        .update::<HelmWorkloadDefinition>(f.hwd, |d| d.repo = Some("ftp://x".into()));
    let err = f.run(Operation::Created, id).await.unwrap_err();
    assert_eq!(err.class, RetryClass::Permanent);
    assert!(
        err.to_string()
            .contains(&format!("its definition {}: Repo", f.hwd)),
        "{err}"
    );
    f.api.update::<HelmWorkloadDefinition>(f.hwd, |d| {
        d.repo = Some("oci://r.example/charts".into());
        d.additional_resources = Some(serde_json::json!({"kind": "ConfigMap"}));
    });
    let err = f.run(Operation::Created, id).await.unwrap_err();
    assert_eq!(err.class, RetryClass::Permanent);
    assert!(err.to_string().contains("AdditionalResources"), "{err}");
    f.api
        .update::<HelmWorkloadInstance>(id, |i| i.helm_workload_definition_id = None);
    let err = f.run(Operation::Created, id).await.unwrap_err();
    assert_eq!(err.class, RetryClass::Permanent);
    assert!(
        err.to_string().contains("HelmWorkloadDefinitionID"),
        "{err}"
    );
    assert!(f.helm.read("calls").is_empty(), "helm never ran");
}

#[tokio::test]
async fn deleted_uninstalls_and_waits_for_the_namespace_by_requeueing() {
    let f = Fixture::new();
    let id = f.instance("web-one", None);
    f.run(Operation::Created, id).await.expect("release");
    let namespace = release_namespace("web-one", id, None);
    f.namespace(&namespace).await;
    f.schedule_deletion(id, OffsetDateTime::now_utc());

    // The namespace was there: deleted, and the deletion looks again later.
    assert!(matches!(
        f.run(Operation::Deleted, id).await,
        Ok(Outcome::RequeueAfter(_))
    ));
    assert!(f.helm.read("calls").contains(&format!(
        "uninstall web-one-release --namespace {namespace} --ignore-not-found"
    )));
    assert!(f.cluster.objects("ThreeportWorkload").is_empty());
    assert_eq!(f.api.count(Method::Delete, "/v0/workload-events"), 1);
    // Gone now: done.
    assert!(matches!(
        f.run(Operation::Deleted, id).await,
        Ok(Outcome::Done)
    ));
}

#[tokio::test]
async fn a_namespace_another_instance_releases_into_is_kept() {
    let f = Fixture::new();
    let one = f.instance("one", Some("shared"));
    f.instance("two", Some("shared"));
    f.namespace("shared").await;
    f.schedule_deletion(one, OffsetDateTime::now_utc());
    assert!(matches!(
        f.run(Operation::Deleted, one).await,
        Ok(Outcome::Done)
    ));
    assert_eq!(f.cluster.objects("Namespace").len(), 1);
}

#[tokio::test]
async fn a_namespace_that_stays_past_the_wait_does_not_block_the_deletion() {
    let f = Fixture::new();
    let id = f.instance("web-one", Some("stuck"));
    f.namespace("stuck").await;
    f.schedule_deletion(id, OffsetDateTime::now_utc() - time::Duration::minutes(10));
    assert!(matches!(
        f.run(Operation::Deleted, id).await,
        Ok(Outcome::Done)
    ));
}

#[tokio::test]
async fn deleted_without_its_runtime_only_cleans_up_the_api() {
    let f = Fixture::new();
    let id = f.instance("web-one", None);
    f.api.remove::<KubernetesRuntimeInstance>(f.kri);
    assert!(matches!(
        f.run(Operation::Deleted, id).await,
        Ok(Outcome::Done)
    ));
    assert!(f.helm.read("calls").is_empty());
    assert_eq!(f.api.count(Method::Delete, "/v0/workload-events"), 1);
}

#[tokio::test]
async fn two_instances_deleted_together_remove_their_shared_namespace() {
    let f = Fixture::new();
    let one = f.instance("one", Some("shared"));
    let two = f.instance("two", Some("shared"));
    f.namespace("shared").await;
    for id in [one, two] {
        f.schedule_deletion(id, OffsetDateTime::now_utc());
    }
    // Both deletions run before either instance is gone from the API.
    f.run(Operation::Deleted, one).await.expect("first");
    f.run(Operation::Deleted, two).await.expect("second");
    assert!(
        f.cluster.objects("Namespace").is_empty(),
        "the namespace is not left behind"
    );
}

#[tokio::test]
async fn a_release_in_a_system_namespace_leaves_the_namespace_alone() {
    let f = Fixture::new();
    let id = f.instance("web-one", Some("default"));
    f.namespace("default").await;
    f.schedule_deletion(id, OffsetDateTime::now_utc());
    assert!(matches!(
        f.run(Operation::Deleted, id).await,
        Ok(Outcome::Done)
    ));
    assert_eq!(f.cluster.objects("Namespace").len(), 1);
    assert!(f
        .helm
        .read("calls")
        .contains("uninstall web-one-release --namespace default"));
}
