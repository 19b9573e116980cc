//! The workload reconcilers' decisions against the in-memory API and cluster of
//! [`crate::reconcilers::testing`]: requeues while the definition is unreconciled, a retry
//! after a failure at any step converging on one copy of everything, CRD waits in virtual
//! time, and a Deleted reconcile that runs every cleanup step whatever fails.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::instance::CRD_WAIT;
use super::{WorkloadDefinitionReconciler, WorkloadInstanceReconciler};
use crate::engine::{Operation, Outcome, ReconcileError, Reconciler};
use crate::kube::KubeError;
use crate::reconcilers::testing::{context, FakeApi, FakeCluster, FakeClusters};
use crate::retry::RetryClass;
use crate::threeport::api::Method;
use crate::threeport::models::{
    AttachedObjectReference, Definition, GatewayInstance, Instance, KubernetesRuntimeInstance,
    Reconciliation, TypedApi, WorkloadDefinition, WorkloadEvent, WorkloadInstance,
    WorkloadResourceDefinition, WorkloadResourceInstance, GATEWAY_INSTANCE, WORKLOAD_INSTANCE,
};
use crate::threeport::ApiError;

/// The web app of every suite (ConfigMap `web-config`, Deployment `web`, Service `web`).
const WEB_APP: &str = include_str!("../../../tests/fixtures/manifests/web-app.yaml");

/// A custom resource (Widget `w1`) listed before the CRD that defines it.
const WITH_CRD: &str =
    include_str!("../../../tests/fixtures/manifests/widget-cr-before-its-crd.yaml");

/// A definition (reconciled or not, its WRDs made by the real definition reconciler), a
/// runtime instance and an instance of it.
struct Fixture {
    api: Arc<FakeApi>,
    cluster: Arc<FakeCluster>,
    instances: WorkloadInstanceReconciler,
    definition_id: u64,
    instance_id: u64,
}

impl Fixture {
    async fn new(yaml: &str, definition_reconciled: bool, crd_delay: Duration) -> Self {
        let api = FakeApi::new();
        let cluster = FakeCluster::new(crd_delay);
        let definition_id = api.insert(&WorkloadDefinition {
            definition: Definition {
                name: Some("web".into()),
                ..Default::default()
            },
            yaml_document: Some(yaml.into()),
            reconciliation: Reconciliation {
                reconciled: Some(definition_reconciled),
                ..Default::default()
            },
            ..Default::default()
        });
        let wd = api.get(definition_id).expect("definition");
        let ctx = context(
            api.clone(),
            "WorkloadDefinitionReconciler",
            definition_id,
            Operation::Created,
            1,
        );
        let done = WorkloadDefinitionReconciler::new().created(&ctx, wd).await;
        assert_eq!(done.expect("definition reconciled"), Outcome::Done);
        let runtime_id = api.insert(&KubernetesRuntimeInstance {
            instance: Instance {
                name: Some("local".into()),
                ..Default::default()
            },
            ..Default::default()
        });
        let instance_id = api.insert(&WorkloadInstance {
            instance: Instance {
                name: Some("web-0".into()),
                ..Default::default()
            },
            workload_definition_id: Some(definition_id),
            kubernetes_runtime_instance_id: Some(runtime_id),
            ..Default::default()
        });
        let instances = WorkloadInstanceReconciler::new(
            crate::reconcilers::testing::runtime_access(Arc::new(FakeClusters(cluster.clone()))),
        );
        Self {
            api,
            cluster,
            instances,
            definition_id,
            instance_id,
        }
    }

    async fn run(&self, operation: Operation, attempt: u64) -> Result<Outcome, ReconcileError> {
        let ctx = context(
            self.api.clone(),
            "WorkloadInstanceReconciler",
            self.instance_id,
            operation,
            attempt,
        );
        let wi: WorkloadInstance = self.api.get(self.instance_id).expect("instance");
        match operation {
            Operation::Created => self.instances.created(&ctx, wi).await,
            Operation::Updated => self.instances.updated(&ctx, wi).await,
            Operation::Deleted => self.instances.deleted(&ctx, wi).await,
        }
    }

    fn wris(&self) -> Vec<WorkloadResourceInstance> {
        self.api.all()
    }

    /// (kind, name) of every WRI.
    fn wri_objects(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .wris()
            .iter()
            .filter_map(|w| w.json_definition.as_ref())
            .map(|d| {
                (
                    d["kind"].as_str().unwrap_or_default().to_string(),
                    d["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
        v.sort();
        v
    }

    fn namespaces(&self) -> Vec<String> {
        names(&self.cluster.objects("Namespace"))
    }
}

fn names(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .filter_map(|o| o["metadata"]["name"].as_str().map(String::from))
        .collect()
}

fn web_app_wris() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = [
        ("ConfigMap", "web-config"),
        ("Deployment", "web"),
        ("Service", "web"),
    ]
    .iter()
    .map(|(k, n)| (k.to_string(), n.to_string()))
    .collect();
    v.sort();
    v
}

/// Created on a fresh fixture: the namespace plus the three objects, each once.
fn assert_deployed_once(f: &Fixture) {
    let mut expected = web_app_wris();
    let namespaces = f.namespaces();
    assert_eq!(namespaces.len(), 1, "one managed namespace: {namespaces:?}");
    expected.push(("Namespace".into(), namespaces[0].clone()));
    expected.sort();
    assert_eq!(f.wri_objects(), expected, "one WRI per object");
    for kind in ["ConfigMap", "Deployment", "Service", "ThreeportWorkload"] {
        assert_eq!(f.cluster.objects(kind).len(), 1, "{kind}");
    }
    for o in f.cluster.objects("Deployment") {
        assert_eq!(o["metadata"]["namespace"], namespaces[0].as_str());
        assert_eq!(
            o["metadata"]["labels"]["control-plane.threeport.io/workload-instance"],
            f.instance_id.to_string()
        );
    }
}

#[tokio::test]
async fn created_requeues_with_a_growing_delay_until_the_definition_is_reconciled() {
    let f = Fixture::new(WEB_APP, false, Duration::ZERO).await;
    for (attempt, secs) in [(1, 1), (2, 2), (4, 8), (6, 30), (40, 30)] {
        assert_eq!(
            f.run(Operation::Created, attempt).await.expect("requeue"),
            Outcome::RequeueAfter(Duration::from_secs(secs)),
            "attempt {attempt}"
        );
    }
    assert_eq!(f.cluster.len(), 0, "nothing deployed while waiting");
    assert_eq!(
        f.api.count(Method::Post, "/v0/workload-resource-instances"),
        0
    );

    f.api.update::<WorkloadDefinition>(f.definition_id, |wd| {
        wd.reconciliation.reconciled = Some(true);
    });
    assert_eq!(
        f.run(Operation::Created, 41).await.expect("deployed"),
        Outcome::Done
    );
    assert_deployed_once(&f);
}

#[tokio::test]
async fn created_converges_on_one_copy_after_a_failure_at_any_step() {
    type Inject = fn(&Fixture);
    // (step, whether Kubernetes refusing it is told to the user as a WorkloadEvent)
    let steps: [(&str, bool, Inject); 5] = [
        ("apply of the Deployment", true, |f| {
            f.cluster.fail("apply", "Deployment", 1);
        }),
        ("apply of the namespace", true, |f| {
            f.cluster.fail("apply", "Namespace", 1);
        }),
        ("POST of the second WRI", false, |f| {
            f.api
                .fail(Method::Post, "/v0/workload-resource-instances", 1, 1);
        }),
        ("apply of the ThreeportWorkload", false, |f| {
            f.cluster.fail("apply", "ThreeportWorkload", 1);
        }),
        ("list of the instance's WRIs", false, |f| {
            f.api
                .fail(Method::Get, "/v0/workload-resource-instances", 0, 1);
        }),
    ];
    for (step, refused_resource, inject) in steps {
        let f = Fixture::new(WEB_APP, true, Duration::ZERO).await;
        inject(&f);
        let err = f.run(Operation::Created, 1).await.expect_err(step);
        assert_eq!(err.class, RetryClass::Transient, "{step}: {err}");
        let from_kube = err.cause::<KubeError>().is_some();
        let from_api = err.cause::<ApiError>().is_some();
        assert!(from_kube != from_api, "{step}: typed cause kept: {err:?}");
        let events: Vec<WorkloadEvent> = f.api.all();
        assert_eq!(events.len(), usize::from(refused_resource), "{step}");

        assert_eq!(
            f.run(Operation::Created, 2).await.expect(step),
            Outcome::Done,
            "{step}"
        );
        assert_deployed_once(&f);
        // And once more: a redelivery after success changes nothing.
        let posts = f.api.count(Method::Post, "/v0/workload-resource-instances");
        assert_eq!(
            f.run(Operation::Created, 3).await.expect(step),
            Outcome::Done
        );
        assert_eq!(
            f.api.count(Method::Post, "/v0/workload-resource-instances"),
            posts,
            "{step}: no WRI posted again"
        );
        assert_deployed_once(&f);
    }
}

#[tokio::test(start_paused = true)]
async fn a_crd_is_waited_for_in_virtual_time() {
    let f = Fixture::new(WITH_CRD, true, Duration::from_secs(5)).await;
    let started = tokio::time::Instant::now();
    assert_eq!(
        f.run(Operation::Created, 1).await.expect("deployed"),
        Outcome::Done
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(6),
        "waited {waited:?} for the Widget kind"
    );
    assert_eq!(names(&f.cluster.objects("Widget")), vec!["w1".to_string()]);
    let ops = f.cluster.ops();
    let crd = ops
        .iter()
        .position(|o| o.starts_with("apply CustomResourceDefinition"));
    let cr = ops.iter().position(|o| o == "apply Widget w1");
    assert!(
        crd < cr,
        "the CRD is applied before its resource, which the manifest lists first: {ops:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_crd_that_is_never_served_times_out_as_a_transient_error() {
    let f = Fixture::new(WITH_CRD, true, Duration::from_secs(3600)).await;
    let started = tokio::time::Instant::now();
    let err = f.run(Operation::Created, 1).await.expect_err("timeout");
    let waited = started.elapsed();
    assert!(
        waited >= CRD_WAIT && waited < CRD_WAIT + Duration::from_secs(1),
        "gave up after {waited:?}"
    );
    assert_eq!(err.class, RetryClass::Transient);
    assert!(
        matches!(err.cause::<KubeError>(), Some(KubeError::Timeout { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unreadable_definition_is_a_transient_error_with_its_api_cause() {
    let f = Fixture::new(WEB_APP, true, Duration::ZERO).await;
    f.api.fail(Method::Get, "/v0/workload-definitions/", 0, 1);
    let err = f.run(Operation::Created, 1).await.expect_err("500");
    assert_eq!(err.class, RetryClass::Transient);
    assert!(
        matches!(
            err.cause::<ApiError>(),
            Some(ApiError::Status { status: 500, .. })
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_definition_without_documents_is_permanent() {
    let f = Fixture::new(WEB_APP, true, Duration::ZERO).await;
    for wrd in f.api.all::<WorkloadResourceDefinition>() {
        let id = wrd.common.id.expect("id");
        assert!(f
            .api
            .delete_object::<WorkloadResourceDefinition>(id)
            .await
            .expect("delete"));
    }
    let err = f
        .run(Operation::Created, 1)
        .await
        .expect_err("nothing to deploy");
    assert_eq!(err.class, RetryClass::Permanent, "{err}");
    assert!(
        err.to_string()
            .contains("zero workload resource definitions"),
        "{err}"
    );
}

#[tokio::test]
async fn deleted_runs_every_step_whatever_fails_and_the_retry_finishes() {
    let f = Fixture::new(WEB_APP, true, Duration::ZERO).await;
    assert_eq!(
        f.run(Operation::Created, 1).await.expect("deployed"),
        Outcome::Done
    );
    // An object another controller attached to the instance (a gateway instance).
    let gateway = f.api.insert(&GatewayInstance::default());
    f.api.insert(&AttachedObjectReference {
        object_type: Some(WORKLOAD_INSTANCE.versioned_name()),
        object_id: Some(f.instance_id),
        attached_object_type: Some(GATEWAY_INSTANCE.versioned_name()),
        attached_object_id: Some(gateway),
        ..Default::default()
    });
    f.api.insert(&WorkloadEvent {
        workload_instance_id: Some(f.instance_id),
        reason: Some("Scheduled".into()),
        ..Default::default()
    });
    f.cluster.fail("delete", "Deployment", 1);
    f.api.fail(Method::Delete, "/v0/workload-events", 0, 1);

    let err = f
        .run(Operation::Deleted, 1)
        .await
        .expect_err("two steps failed");
    assert_eq!(err.class, RetryClass::Transient);
    // Every other step ran: the attached object and its reference, the other objects and
    // their WRIs, the ThreeportWorkload, the managed namespace.
    assert!(f.api.get::<GatewayInstance>(gateway).is_none());
    assert!(f.api.all::<AttachedObjectReference>().is_empty());
    assert_eq!(
        f.wri_objects(),
        vec![("Deployment".to_string(), "web".to_string())],
        "only the WRI of the object that could not be deleted is kept"
    );
    assert!(f.cluster.objects("ThreeportWorkload").is_empty());
    assert!(f.namespaces().is_empty());
    assert_eq!(
        f.api.all::<WorkloadEvent>().len(),
        1,
        "events kept after the failed DELETE"
    );

    assert_eq!(
        f.run(Operation::Deleted, 2).await.expect("cleaned up"),
        Outcome::Done
    );
    assert!(f.wris().is_empty());
    assert!(f.api.all::<WorkloadEvent>().is_empty());
    assert_eq!(f.cluster.len(), 0, "nothing left: {:?}", f.cluster.ops());
    // A redelivery of Deleted after success is a no-op that succeeds.
    assert_eq!(
        f.run(Operation::Deleted, 3).await.expect("no-op"),
        Outcome::Done
    );
}

#[tokio::test]
async fn updated_applies_unreconciled_wris_and_deletes_scheduled_ones() {
    let f = Fixture::new(WEB_APP, true, Duration::ZERO).await;
    assert_eq!(
        f.run(Operation::Created, 1).await.expect("deployed"),
        Outcome::Done
    );
    let namespace = f.namespaces()[0].clone();
    // Another controller adds a resource and schedules one for deletion.
    f.api.insert(&WorkloadResourceInstance {
        json_definition: Some(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "added"}}),
        ),
        workload_instance_id: Some(f.instance_id),
        reconciled: Some(false),
        ..Default::default()
    });
    let service = f
        .wris()
        .into_iter()
        .find(|w| {
            w.json_definition
                .as_ref()
                .is_some_and(|d| d["kind"] == "Service")
        })
        .and_then(|w| w.common.id)
        .expect("service WRI");
    f.api.update::<WorkloadResourceInstance>(service, |w| {
        w.scheduled_for_deletion = Some(time::OffsetDateTime::now_utc());
    });

    assert_eq!(
        f.run(Operation::Updated, 1).await.expect("updated"),
        Outcome::Done
    );
    let added: Vec<Value> = f
        .cluster
        .objects("ConfigMap")
        .into_iter()
        .filter(|o| o["metadata"]["name"] == "added")
        .collect();
    assert_eq!(added.len(), 1);
    assert_eq!(
        added[0]["metadata"]["namespace"],
        namespace.as_str(),
        "lands in the workload's namespace"
    );
    assert!(f.cluster.objects("Service").is_empty());
    assert!(f.api.get::<WorkloadResourceInstance>(service).is_none());
    assert!(f.wris().iter().all(|w| w.reconciled == Some(true)));
}

#[tokio::test]
async fn a_missing_definition_is_permanent_and_names_both_ids() {
    let f = Fixture::new(WEB_APP, true, Duration::ZERO).await;
    assert!(f
        .api
        .delete_object::<WorkloadDefinition>(f.definition_id)
        .await
        .expect("delete"));
    let err = f
        .run(Operation::Created, 1)
        .await
        .expect_err("no definition");
    assert_eq!(err.class, RetryClass::Permanent, "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "workload definition {} of workload instance {} does not exist",
            f.definition_id, f.instance_id
        )
    );
    assert_eq!(f.cluster.len(), 0);
}
