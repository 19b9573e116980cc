use super::*;
use crate::engine::Operation;
use crate::reconcilers::gateway::test_fixture::{reconciled, Gateway};
use crate::reconcilers::gateway::GatewayInstanceReconciler;
use crate::reconcilers::testing::FakeApi;
use crate::retry::RetryClass;
use crate::threeport::api::Method;
use crate::threeport::models::{
    AttachedObjectReference, GatewayInstance, Instance, WorkloadDefinition, WorkloadInstance,
};

const NAME: &str = "DomainNameInstanceReconciler";

fn domain_name_instance(g: &Gateway) -> u64 {
    g.api.insert(&DomainNameInstance {
        instance: Instance {
            name: Some("zone-local".into()),
            ..Default::default()
        },
        reconciliation: reconciled(false),
        domain_name_definition_id: Some(g.dnd),
        workload_instance_id: Some(g.user_wi),
        kubernetes_runtime_instance_id: Some(g.runtime),
        ..Default::default()
    })
}

async fn run(g: &Gateway, id: u64, op: Operation, attempt: u64) -> Result<Outcome, ReconcileError> {
    let dni: DomainNameInstance = FakeApi::get(&g.api, id).expect("domain name instance");
    let ctx = g.context(NAME, id, op, attempt);
    let r = DomainNameInstanceReconciler::default();
    match op {
        Operation::Created => r.created(&ctx, dni).await,
        Operation::Updated => r.updated(&ctx, dni).await,
        Operation::Deleted => r.deleted(&ctx, dni).await,
    }
}

async fn gateway_deployed(g: &Gateway) {
    g.until_done(|attempt| async move {
        let gi: GatewayInstance = FakeApi::get(&g.api, g.gi).unwrap();
        let ctx = g.context(
            "GatewayInstanceReconciler",
            g.gi,
            Operation::Created,
            attempt,
        );
        GatewayInstanceReconciler::default().created(&ctx, gi).await
    })
    .await;
}

fn named_instances(g: &Gateway, name: &str) -> Vec<WorkloadInstance> {
    g.api
        .all::<WorkloadInstance>()
        .into_iter()
        .filter(|wi| wi.instance.name.as_deref() == Some(name))
        .collect()
}

#[tokio::test]
async fn without_gloo_edge_it_is_a_retried_error_then_external_dns_is_deployed_once() {
    let g = Gateway::new();
    let dni = domain_name_instance(&g);
    let err = run(&g, dni, Operation::Created, 1)
        .await
        .expect_err("no gloo");
    assert_eq!(err.class, RetryClass::Transient);
    assert!(err.to_string().contains("GatewayInstance"), "{err}");

    gateway_deployed(&g).await;
    // The runtime PATCH fails once after external-dns was created: the retry adopts it.
    g.api
        .fail(Method::Patch, "/v0/kubernetes-runtime-instances/", 0, 1);
    g.until_done(|a| run(&g, dni, Operation::Created, a)).await;
    let dns = named_instances(&g, "external-dns-local");
    assert_eq!(dns.len(), 1);
    assert_eq!(g.runtime().dns_controller_instance_id, dns[0].common.id);
    let wds: Vec<WorkloadDefinition> = g
        .api
        .all::<WorkloadDefinition>()
        .into_iter()
        .filter(|wd| wd.definition.name.as_deref() == Some("external-dns-local"))
        .collect();
    assert_eq!(wds.len(), 1);
    let external_dns = &g.live(dns[0].common.id.unwrap(), "ExternalDNS")[0];
    assert_eq!(external_dns["spec"]["domainName"], "example.com");
    assert_eq!(external_dns["spec"]["provider"], "none");
    assert_eq!(external_dns["spec"]["version"], "v0.13.5");
    assert_eq!(
        external_dns["spec"]["extraArgs"][1],
        "--gloo-namespace=nukleros-gateway-system"
    );
    let refs = g
        .api
        .all::<AttachedObjectReference>()
        .into_iter()
        .filter(|r| r.attached_object_type.as_deref() == Some("v0.DomainNameInstance"))
        .count();
    assert_eq!(refs, 1);

    // Deleted detaches and leaves external-dns running.
    run(&g, dni, Operation::Deleted, 1).await.expect("deleted");
    assert_eq!(named_instances(&g, "external-dns-local").len(), 1);
    assert!(g
        .api
        .all::<AttachedObjectReference>()
        .iter()
        .all(|r| r.attached_object_type.as_deref() != Some("v0.DomainNameInstance")));
}

#[tokio::test]
async fn a_second_domain_name_instance_reuses_the_runtimes_external_dns() {
    let g = Gateway::new();
    gateway_deployed(&g).await;
    let first = domain_name_instance(&g);
    g.until_done(|a| run(&g, first, Operation::Created, a))
        .await;
    let second = domain_name_instance(&g);
    let posts = g.api.count(Method::Post, "/v0/workload-");
    g.until_done(|a| run(&g, second, Operation::Created, a))
        .await;
    assert_eq!(g.api.count(Method::Post, "/v0/workload-"), posts);
    assert_eq!(named_instances(&g, "external-dns-local").len(), 1);
}

#[tokio::test]
async fn a_deleted_external_dns_is_deployed_again_by_the_next_reconcile() {
    let g = Gateway::new();
    gateway_deployed(&g).await;
    let dni = domain_name_instance(&g);
    g.until_done(|a| run(&g, dni, Operation::Created, a)).await;
    let old = g.runtime().dns_controller_instance_id.expect("recorded");
    // An operator deletes the external-dns workload instance.
    g.api.remove::<WorkloadInstance>(old);
    g.until_done(|a| run(&g, dni, Operation::Updated, a)).await;
    let new = g
        .runtime()
        .dns_controller_instance_id
        .expect("recorded again");
    assert_ne!(new, old);
    assert_eq!(named_instances(&g, "external-dns-local").len(), 1);
}
