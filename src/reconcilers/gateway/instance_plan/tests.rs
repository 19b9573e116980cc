use serde_json::json;

use super::super::manifests::{gateway_domain, template_documents, TemplateSettings};
use super::*;
use crate::reconcilers::gateway::test_ports::{http, tcp};
use crate::threeport::models::{Common, Definition};

fn dnd() -> DomainNameDefinition {
    DomainNameDefinition {
        definition: Definition {
            name: Some("Example Zone".into()),
            ..Default::default()
        },
        domain: Some("example.com".into()),
        admin_email: Some("ops@example.com".into()),
        ..Default::default()
    }
}

struct Fixture {
    dnd: DomainNameDefinition,
    domain: GatewayDomain,
    service: ServiceRef,
}

impl Fixture {
    fn new() -> Self {
        let dnd = dnd();
        let domain = gateway_domain(Some("app"), Some(&dnd));
        Fixture {
            dnd,
            domain,
            service: ServiceRef {
                namespace: "web-ns".into(),
                name: "web".into(),
            },
        }
    }

    fn inputs(&self) -> InstanceInputs<'_> {
        InstanceInputs {
            gateway_definition: "web",
            domain: &self.domain,
            sub_domain: Some("app"),
            domain_name_definition: Some(&self.dnd),
            service: &self.service,
            gloo_namespace: "nukleros-gateway-system",
            route53_region: "eu-west-1",
        }
    }

    fn documents(&self, http: &[GatewayHttpPort], tcp: &[GatewayTcpPort]) -> Vec<Value> {
        let template =
            template_documents("web", &self.domain, http, tcp, &TemplateSettings::default())
                .expect("template");
        instance_documents(&template, &self.inputs(), http, tcp).expect("documents")
    }
}

fn wri(id: u64, doc: &Value) -> WorkloadResourceInstance {
    WorkloadResourceInstance {
        common: Common {
            id: Some(id),
            ..Default::default()
        },
        json_definition: Some(doc.clone()),
        reconciled: Some(true),
        ..Default::default()
    }
}

#[test]
fn routes_point_at_the_users_service_through_glooss_upstreams() {
    let f = Fixture::new();
    let docs = f.documents(
        &[
            http(443, "/", true, false),
            http(8080, "/", false, false),
            http(80, "/", false, true),
        ],
        &[tcp(5432)],
    );
    let upstream = |d: &Value| {
        d["spec"]["virtualHost"]["routes"][0]["routeAction"]["single"]["upstream"].clone()
    };
    // TLS: Threeport's upstream is the Service's port 80; the secret lives with the Service.
    assert_eq!(
        upstream(&docs[0]),
        json!({"name": "web-ns-web-80", "namespace": "nukleros-gateway-system"})
    );
    assert_eq!(
        docs[0]["spec"]["sslConfig"]["secretRef"]["namespace"],
        "web-ns"
    );
    assert_eq!(upstream(&docs[1])["name"], "web-ns-web-8080");
    // The redirect keeps its redirect and gets no upstream.
    assert!(upstream(&docs[2]).is_null());
    assert_eq!(
        docs[3]["spec"]["tcpGateway"]["tcpHosts"][0]["destination"]["single"]["upstream"]["name"],
        "web-ns-web-5432"
    );
    // Issuer and Certificate named after the domain name definition, zones and names of it.
    assert_eq!(docs[4]["kind"], "Issuer");
    assert_eq!(docs[4]["metadata"]["name"], "example-zone");
    assert_eq!(
        docs[4]["spec"]["acme"]["solvers"],
        json!([{"selector": {"dnsZones": ["example.com", "app.example.com"]},
                "dns01": {"route53": {"region": "eu-west-1"}}}])
    );
    assert_eq!(docs[5]["metadata"]["name"], "example-zone");
    assert_eq!(docs[5]["spec"]["dnsNames"], json!(["app.example.com"]));
    assert_eq!(docs[5]["spec"]["issuerRef"]["name"], "example-zone");
    assert_eq!(docs[5]["spec"]["secretName"], "app-example-com-tls");
}

#[test]
fn a_port_missing_from_the_template_is_a_clear_error() {
    let f = Fixture::new();
    let template = template_documents(
        "web",
        &f.domain,
        &[http(80, "/", false, false)],
        &[],
        &TemplateSettings::default(),
    )
    .expect("template");
    let err = instance_documents(&template, &f.inputs(), &[http(81, "/", false, false)], &[])
        .expect_err("port 81 not in the template");
    assert!(
        err.to_string()
            .contains("VirtualService named app-example-com-81"),
        "{err}"
    );
}

#[test]
fn the_plan_creates_updates_and_deletes_so_any_number_of_ports_converges() {
    let f = Fixture::new();
    let before = f.documents(
        &[http(80, "/", false, false), http(8080, "/", false, false)],
        &[tcp(5432), tcp(6379)],
    );
    // A user resource and another controller's object on the same instance.
    let user_service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}});
    let other_gateway = json!({"apiVersion": "gateway.solo.io/v1", "kind": "Gateway",
                               "metadata": {"name": "other-5432"}});
    let mut existing: Vec<WorkloadResourceInstance> = before
        .iter()
        .enumerate()
        .map(|(i, d)| wri(i as u64 + 1, d))
        .collect();
    existing.push(wri(100, &user_service));
    existing.push(wri(101, &other_gateway));

    // Nothing changed: nothing to do.
    assert!(plan_wris(&existing, &before, &f.inputs()).is_empty());

    // Port 8080 gone, a path changed on 80, TCP 6379 gone, TCP 7000 added.
    let mut changed_80 = http(80, "/", false, false);
    changed_80.path = Some("/api".into());
    let after = f.documents(&[changed_80], &[tcp(5432), tcp(7000)]);
    let plan = plan_wris(&existing, &after, &f.inputs());
    assert_eq!(plan.create.len(), 1);
    assert_eq!(plan.create[0]["metadata"]["name"], "web-7000");
    assert_eq!(plan.update.len(), 1);
    assert_eq!(plan.update[0].0, 1, "the VirtualService of port 80");
    let mut deleted = plan.schedule_deletion.clone();
    deleted.sort();
    assert_eq!(
        deleted,
        vec![2, 4],
        "8080's VirtualService and 6379's Gateway; not 100 or 101"
    );

    // Already scheduled WRIs are not counted as present.
    let mut scheduled = existing.clone();
    scheduled[0].scheduled_for_deletion = Some(time::OffsetDateTime::UNIX_EPOCH);
    let plan = plan_wris(&scheduled, &before, &f.inputs());
    assert_eq!(plan.create.len(), 1);
    assert!(plan.schedule_deletion.is_empty());
}

#[test]
fn deleting_the_gateway_is_the_plan_to_nothing() {
    let f = Fixture::new();
    let docs = f.documents(&[http(443, "/", true, false)], &[tcp(5432)]);
    let existing: Vec<WorkloadResourceInstance> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| wri(i as u64 + 1, d))
        .collect();
    let plan = plan_wris(&existing, &[], &f.inputs());
    let mut deleted = plan.schedule_deletion;
    deleted.sort();
    assert_eq!(
        deleted,
        vec![1, 2, 3, 4],
        "VirtualService, Gateway, Issuer, Certificate"
    );
}

#[test]
fn the_namespace_the_workload_controller_records_is_not_a_change() {
    let f = Fixture::new();
    let docs = f.documents(&[http(80, "/", false, false)], &[tcp(5432)]);
    // As recorded after the workload controller applied them in the workload's namespace.
    let existing: Vec<WorkloadResourceInstance> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut applied = d.clone();
            applied["metadata"]["namespace"] = json!("web-app-917");
            wri(i as u64 + 1, &applied)
        })
        .collect();
    assert!(plan_wris(&existing, &docs, &f.inputs()).is_empty());
    // Anything else that differs still is.
    let mut moved = docs.clone();
    moved[1]["spec"]["bindPort"] = json!(9999);
    assert_eq!(plan_wris(&existing, &moved, &f.inputs()).update.len(), 1);
}

#[test]
fn objects_of_another_api_group_with_the_same_names_are_not_the_gateways() {
    let f = Fixture::new();
    let docs = f.documents(&[http(80, "/", false, false)], &[tcp(5432)]);
    // An Istio VirtualService and a Gateway API Gateway named like the gateway's.
    let istio = json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                       "metadata": {"name": docs[0]["metadata"]["name"]}});
    let gateway_api = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                             "metadata": {"name": "web-5432"}});
    let existing = vec![wri(1, &istio), wri(2, &gateway_api)];
    let plan = plan_wris(&existing, &docs, &f.inputs());
    assert_eq!(plan.create.len(), 2, "both gloo objects are created");
    assert!(
        plan.update.is_empty(),
        "the other groups' objects are not rewritten"
    );
    assert!(plan_wris(&existing, &[], &f.inputs())
        .schedule_deletion
        .is_empty());
}

#[test]
fn written_but_unapplied_wris_still_need_the_workload_controller() {
    let f = Fixture::new();
    let docs = f.documents(&[http(80, "/", false, false)], &[]);
    let mut existing = vec![wri(1, &docs[0])];
    assert!(!plan_wris(&existing, &docs, &f.inputs()).needs_apply());
    // An earlier attempt wrote it and failed before un-reconciling the workload.
    existing[0].reconciled = Some(false);
    let plan = plan_wris(&existing, &docs, &f.inputs());
    assert!(plan.is_empty() && plan.needs_apply());
    // Scheduled for deletion but not deleted yet: the same.
    existing[0].reconciled = Some(true);
    existing[0].scheduled_for_deletion = Some(time::OffsetDateTime::UNIX_EPOCH);
    let plan = plan_wris(&existing, &[], &f.inputs());
    assert!(plan.is_empty() && plan.needs_apply());
}
