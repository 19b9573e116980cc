use std::sync::Arc;

use super::*;
use crate::engine::Operation;
use crate::reconcilers::testing::{context, FakeApi};
use crate::retry::RetryClass;
use crate::threeport::api::Method;

struct Fixture {
    api: Arc<FakeApi>,
    gd: u64,
}

impl Fixture {
    fn new(tls: bool, with_domain: bool) -> Self {
        let api = FakeApi::new();
        let dnd = with_domain.then(|| {
            api.insert(&DomainNameDefinition {
                definition: Definition {
                    name: Some("zone".into()),
                    ..Default::default()
                },
                domain: Some("example.com".into()),
                admin_email: Some("ops@example.com".into()),
                ..Default::default()
            })
        });
        let gd = api.insert(&GatewayDefinition {
            definition: Definition {
                name: Some("web".into()),
                ..Default::default()
            },
            domain_name_definition_id: dnd,
            sub_domain: Some("app".into()),
            ..Default::default()
        });
        for (port, tls) in [(443, tls), (8080, false)] {
            api.insert(&GatewayHttpPort {
                gateway_definition_id: Some(gd),
                port: Some(port),
                path: Some("/".into()),
                tls_enabled: Some(tls),
                https_redirect: Some(false),
                ..Default::default()
            });
        }
        api.insert(&GatewayTcpPort {
            gateway_definition_id: Some(gd),
            port: Some(5432),
            tls_enabled: Some(false),
            ..Default::default()
        });
        Fixture { api, gd }
    }

    async fn run(&self, op: Operation) -> Result<Outcome, ReconcileError> {
        let r = GatewayDefinitionReconciler::default();
        let ctx = context(
            self.api.clone(),
            "GatewayDefinitionReconciler",
            self.gd,
            op,
            1,
        );
        let gd = self.gateway_definition();
        match op {
            Operation::Created => r.created(&ctx, gd).await,
            Operation::Updated => r.updated(&ctx, gd).await,
            Operation::Deleted => r.deleted(&ctx, gd).await,
        }
    }

    fn gateway_definition(&self) -> GatewayDefinition {
        FakeApi::get(&self.api, self.gd).expect("gateway definition")
    }

    fn templates(&self) -> Vec<WorkloadDefinition> {
        self.api.all::<WorkloadDefinition>()
    }
}

#[tokio::test]
async fn created_makes_the_template_with_every_port_and_records_it() {
    let f = Fixture::new(true, true);
    f.run(Operation::Created).await.expect("created");
    let templates = f.templates();
    assert_eq!(templates.len(), 1);
    let wd = &templates[0];
    assert_eq!(wd.definition.name.as_deref(), Some("web-gateway"));
    let yaml = wd.yaml_document.as_deref().unwrap();
    for name in ["app-example-com-443", "app-example-com-8080", "web-5432"] {
        assert!(yaml.contains(&format!("name: {name}")), "{name} in\n{yaml}");
    }
    assert!(
        yaml.contains("kind: Issuer") && yaml.contains("kind: Certificate"),
        "{yaml}"
    );
    let gd = f.gateway_definition();
    assert_eq!(gd.workload_definition_id, wd.common.id);
}

#[tokio::test]
async fn a_retry_after_any_failure_adopts_the_template_instead_of_a_second_post() {
    let f = Fixture::new(false, true);
    // The GD PATCH fails after the template was created.
    f.api.fail(Method::Patch, "/v0/gateway-definitions/", 0, 1);
    f.run(Operation::Created).await.expect_err("patch failed");
    f.run(Operation::Created).await.expect("retry");
    assert_eq!(f.templates().len(), 1);
    assert_eq!(f.api.count(Method::Post, "/v0/workload-definitions"), 1);
    let gd = f.gateway_definition();
    assert_eq!(gd.workload_definition_id, f.templates()[0].common.id);
    // Once more: nothing is written at all.
    let patches = f.api.count(Method::Patch, "/v0/");
    f.run(Operation::Created).await.expect("again");
    assert_eq!(f.api.count(Method::Patch, "/v0/"), patches);
}

#[tokio::test]
async fn updated_follows_a_new_port() {
    let f = Fixture::new(false, true);
    f.run(Operation::Created).await.expect("created");
    f.api.insert(&GatewayTcpPort {
        gateway_definition_id: Some(f.gd),
        port: Some(6379),
        tls_enabled: Some(false),
        ..Default::default()
    });
    f.run(Operation::Updated).await.expect("updated");
    let yaml = f.templates()[0].yaml_document.clone().unwrap();
    assert!(yaml.contains("name: web-6379"), "{yaml}");
    assert_eq!(f.templates().len(), 1);
}

#[tokio::test]
async fn tls_without_a_domain_is_permanent_and_writes_nothing() {
    let f = Fixture::new(true, false);
    let err = f.run(Operation::Created).await.expect_err("no domain");
    assert_eq!(err.class, RetryClass::Permanent);
    assert!(f.templates().is_empty());
}

#[tokio::test]
async fn deleted_removes_the_template_and_the_ports_and_reports_failures() {
    let f = Fixture::new(false, true);
    f.run(Operation::Created).await.expect("created");
    f.api
        .fail(Method::Delete, "/v0/workload-definitions/", 0, 1);
    let err = f
        .run(Operation::Deleted)
        .await
        .expect_err("a failure is not swallowed");
    assert_eq!(err.class, RetryClass::Transient);
    f.run(Operation::Deleted).await.expect("deleted");
    assert!(f.templates().is_empty());
    assert!(f.api.all::<GatewayHttpPort>().is_empty());
    assert!(f.api.all::<GatewayTcpPort>().is_empty());
    // Again (a redelivery): everything is already gone, which is fine.
    f.run(Operation::Deleted).await.expect("idempotent");
}
