use std::sync::Arc;

use serde_json::Value;

use super::*;
use crate::engine::Operation;
use crate::reconcilers::testing::{context, FakeApi, FakeCluster, FakeClusters};
use crate::retry::RetryClass;
use crate::threeport::api::Method;
use crate::threeport::models::{
    AwsAccount, AwsEksKubernetesRuntimeDefinition, AwsEksKubernetesRuntimeInstance, Definition,
    Instance, Reconciliation,
};

const OBJECTS_KIND: usize = 29;
const OBJECTS_EKS: usize = 35;

struct Fixture {
    api: Arc<FakeApi>,
    cluster: Arc<FakeCluster>,
    krd: u64,
    kri: u64,
}

impl Fixture {
    fn new(provider: &str) -> Self {
        let api = FakeApi::new();
        api.insert(&AwsAccount {
            name: Some("prod".into()),
            account_id: Some("111122223333".into()),
            default_account: Some(true),
            ..Default::default()
        });
        let krd = api.insert(&KubernetesRuntimeDefinition {
            definition: Definition {
                name: Some("cloud".into()),
                ..Default::default()
            },
            infra_provider: Some(provider.into()),
            infra_provider_account_name: Some("prod".into()),
            ..Default::default()
        });
        api.insert(&AwsEksKubernetesRuntimeDefinition {
            definition: Definition {
                name: Some("cloud".into()),
                ..Default::default()
            },
            kubernetes_runtime_definition_id: Some(krd),
            ..Default::default()
        });
        let kri = api.insert(&KubernetesRuntimeInstance {
            instance: Instance {
                name: Some("edge-1".into()),
                ..Default::default()
            },
            reconciliation: Reconciliation {
                reconciled: Some(false),
                ..Default::default()
            },
            location: Some("NorthAmerica:NewYork".into()),
            api_endpoint: Some("https://127.0.0.1:6443".into()),
            kubernetes_runtime_definition_id: Some(krd),
            ..Default::default()
        });
        Fixture {
            api,
            cluster: FakeCluster::new(Duration::from_millis(300)),
            krd,
            kri,
        }
    }

    fn reconciler(&self) -> KubernetesRuntimeInstanceReconciler {
        KubernetesRuntimeInstanceReconciler::with_crd_wait(
            crate::reconcilers::testing::runtime_access(Arc::new(FakeClusters(
                self.cluster.clone(),
            ))),
            Duration::from_secs(5),
        )
    }

    async fn run(&self, op: Operation) -> Result<Outcome, ReconcileError> {
        let ctx = context(
            self.api.clone(),
            "KubernetesRuntimeInstanceReconciler",
            self.kri,
            op,
            1,
        );
        let kri: KubernetesRuntimeInstance = FakeApi::get(&self.api, self.kri).unwrap();
        let r = self.reconciler();
        match op {
            Operation::Created => r.created(&ctx, kri).await,
            Operation::Updated => r.updated(&ctx, kri).await,
            Operation::Deleted => r.deleted(&ctx, kri).await,
        }
    }

    /// The stored object of `kind` named `name`.
    fn object(&self, kind: &str, name: &str) -> Value {
        self.cluster
            .objects(kind)
            .into_iter()
            .find(|o| o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    }

    fn applied(&self) -> Vec<String> {
        self.cluster
            .ops()
            .into_iter()
            .filter(|op| op.starts_with("apply "))
            .collect()
    }
}

#[tokio::test]
async fn created_eks_gets_its_eks_instance_once_and_kind_nothing() {
    let f = Fixture::new("eks");
    f.run(Operation::Created).await.expect("created");
    f.run(Operation::Created)
        .await
        .expect("a redelivery adopts it");
    let eks: Vec<AwsEksKubernetesRuntimeInstance> = f.api.all();
    assert_eq!(eks.len(), 1);
    assert_eq!(eks[0].region.as_deref(), Some("us-east-1"));
    assert_eq!(eks[0].kubernetes_runtime_instance_id, Some(f.kri));

    let f = Fixture::new("kind");
    f.run(Operation::Created).await.expect("kind");
    let f2 = Fixture::new("eks");
    f2.api.update::<KubernetesRuntimeInstance>(f2.kri, |k| {
        k.reconciliation.reconciled = Some(true);
    });
    f2.run(Operation::Created)
        .await
        .expect("already reconciled");
    for f in [&f, &f2] {
        assert_eq!(f.api.count(Method::Post, "/v0/"), 0);
        assert!(f.cluster.ops().is_empty());
    }
}

#[tokio::test(start_paused = true)]
async fn updated_installs_every_step_in_order_and_again_the_same() {
    let f = Fixture::new("eks");
    f.run(Operation::Updated).await.expect("install");
    let applied = f.applied();
    assert_eq!(applied.len(), OBJECTS_EKS, "{applied:#?}");
    assert_eq!(applied[0], "apply Namespace threeport-control-plane");
    let position = |what: &str| applied.iter().position(|a| a == what).expect(what);
    assert!(
        position("apply CustomResourceDefinition supportservices.orchestration.support-services.nukleros.io")
            < position("apply SupportServices threeport-support-services")
    );
    assert_eq!(
        applied.last().map(String::as_str),
        Some("apply Deployment cluster-autoscaler")
    );
    let sa = f.object("ServiceAccount", "cluster-autoscaler");
    assert_eq!(
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::111122223333:role/ca-role-edge-1"
    );
    let stored = f.cluster.all_objects();
    f.run(Operation::Updated).await.expect("again");
    assert_eq!(f.applied().len(), 2 * OBJECTS_EKS);
    assert_eq!(
        f.cluster.all_objects(),
        stored,
        "the same objects the second time"
    );
}

#[tokio::test(start_paused = true)]
async fn kind_runtimes_get_no_eks_services_and_no_endpoint_means_no_install() {
    let f = Fixture::new("kind");
    f.run(Operation::Updated).await.expect("install");
    assert_eq!(f.applied().len(), OBJECTS_KIND);
    assert!(f
        .applied()
        .iter()
        .all(|a| !a.contains("cluster-autoscaler")));

    let f = Fixture::new("kind");
    f.api
        .update::<KubernetesRuntimeInstance>(f.kri, |k| k.api_endpoint = None);
    f.run(Operation::Updated).await.expect("nothing to do");
    assert!(f.cluster.ops().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_fault_at_any_install_step_fails_the_attempt_and_the_retry_completes_it() {
    for kind in [
        "Namespace",
        "CustomResourceDefinition",
        "ClusterRole",
        "Deployment",
        "SupportServices",
    ] {
        let f = Fixture::new("eks");
        f.cluster.fail("apply", kind, 1);
        let err = f.run(Operation::Updated).await.expect_err(kind);
        assert_eq!(err.class, RetryClass::Transient, "{kind}: {err}");
        f.run(Operation::Updated).await.expect("the retry");
        let installed: std::collections::BTreeSet<String> = f.applied().into_iter().collect();
        assert_eq!(installed.len(), OBJECTS_EKS, "{kind}");
    }
}

#[tokio::test(start_paused = true)]
async fn crds_that_are_never_served_end_the_attempt_after_the_bound() {
    let f = Fixture::new("kind");
    let slow = FakeCluster::new(Duration::from_secs(3600));
    let r = KubernetesRuntimeInstanceReconciler::with_crd_wait(
        crate::reconcilers::testing::runtime_access(Arc::new(FakeClusters(slow.clone()))),
        Duration::from_secs(5),
    );
    let ctx = context(
        f.api.clone(),
        "KubernetesRuntimeInstanceReconciler",
        f.kri,
        Operation::Updated,
        1,
    );
    let kri: KubernetesRuntimeInstance = FakeApi::get(&f.api, f.kri).unwrap();
    let err = r.updated(&ctx, kri).await.expect_err("not served");
    assert_eq!(err.class, RetryClass::Transient);
    assert!(
        !slow.ops().iter().any(|o| o.contains("SupportServices")),
        "nothing of the next step was applied"
    );
}

#[tokio::test(start_paused = true)]
async fn a_bad_agent_image_or_account_is_permanent_and_names_the_field() {
    let f = Fixture::new("kind");
    f.api.update::<KubernetesRuntimeInstance>(f.kri, |k| {
        k.threeport_agent_image = Some("ghcr.io/threeport/threeport-agent".into());
    });
    let err = f.run(Operation::Updated).await.expect_err("no tag");
    assert_eq!(err.class, RetryClass::Permanent);
    assert!(err.to_string().contains("ThreeportAgentImage"), "{err}");
    assert!(f.cluster.ops().is_empty(), "nothing applied");

    let f = Fixture::new("eks");
    f.api.update::<KubernetesRuntimeDefinition>(f.krd, |k| {
        k.infra_provider_account_name = Some("staging".into());
    });
    let err = f.run(Operation::Updated).await.expect_err("no account");
    assert_eq!(err.class, RetryClass::Permanent);
    assert!(err.to_string().contains("\"staging\""), "{err}");
}

#[tokio::test(start_paused = true)]
async fn the_agent_image_is_applied_to_the_agent() {
    let f = Fixture::new("kind");
    f.api.update::<KubernetesRuntimeInstance>(f.kri, |k| {
        k.threeport_agent_image = Some("registry.example.com/agent:v2".into());
    });
    f.run(Operation::Updated).await.expect("install");
    let agent = f.object("Deployment", "threeport-agent");
    let manager = agent["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "manager")
        .unwrap();
    assert_eq!(manager["image"], "registry.example.com/agent:v2");
}

#[tokio::test]
async fn deletion_waits_for_workloads_then_deletes_the_eks_instance() {
    let f = Fixture::new("eks");
    f.run(Operation::Created).await.expect("created");
    let wi = f.api.insert(&WorkloadInstance {
        instance: Instance {
            name: Some("web".into()),
            ..Default::default()
        },
        kubernetes_runtime_instance_id: Some(f.kri),
        ..Default::default()
    });
    let err = f
        .run(Operation::Deleted)
        .await
        .expect_err("workloads remain");
    assert_eq!(err.class, RetryClass::Transient);
    let event = err.event.clone().expect("an event");
    assert_eq!(event.reason, "FailedDelete");
    assert!(event.warning);
    assert!(
        event.note.contains(&format!("web (ID {wi})")),
        "{}",
        event.note
    );
    assert_eq!(f.api.count(Method::Delete, "/v0/"), 0, "the cluster stays");

    f.api.remove::<WorkloadInstance>(wi);
    f.run(Operation::Deleted).await.expect("deleted");
    assert_eq!(
        f.api
            .count(Method::Delete, "/v0/aws-eks-kubernetes-runtime-instances"),
        1
    );
    assert!(f.api.all::<AwsEksKubernetesRuntimeInstance>().is_empty());
    assert_eq!(f.cluster.ops(), vec![format!("forget runtime {}", f.kri)]);
}

#[tokio::test(start_paused = true)]
async fn the_control_planes_own_runtime_keeps_its_agent() {
    let f = Fixture::new("kind");
    f.api.update::<KubernetesRuntimeInstance>(f.kri, |k| {
        k.threeport_control_plane_host = Some(true);
    });
    f.run(Operation::Updated).await.expect("install");
    assert!(f.applied().iter().all(|a| !a.contains("threeport-agent")));
    assert!(f
        .applied()
        .contains(&"apply SupportServices threeport-support-services".to_string()));
}

#[tokio::test(start_paused = true)]
async fn eks_services_use_the_account_the_cluster_was_built_in() {
    let f = Fixture::new("eks");
    // The EKS definition was made with account "prod"; then the definition names "dev".
    let prod = f.api.all::<AwsAccount>()[0].common.id;
    let eks_def = f.api.all::<AwsEksKubernetesRuntimeDefinition>()[0]
        .common
        .id
        .unwrap();
    f.api
        .update::<AwsEksKubernetesRuntimeDefinition>(eks_def, |d| d.aws_account_id = prod);
    f.api.insert(&AwsAccount {
        name: Some("dev".into()),
        account_id: Some("444455556666".into()),
        ..Default::default()
    });
    f.api.update::<KubernetesRuntimeDefinition>(f.krd, |k| {
        k.infra_provider_account_name = Some("dev".into());
    });
    f.run(Operation::Updated).await.expect("install");
    let sa = f.object("ServiceAccount", "cluster-autoscaler");
    assert_eq!(
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::111122223333:role/ca-role-edge-1"
    );
}
