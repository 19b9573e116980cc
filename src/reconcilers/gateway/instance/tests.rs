use super::*;
use crate::engine::Operation;
use crate::reconcilers::gateway::test_fixture::{Gateway, USER_NAMESPACE};
use crate::reconcilers::gateway::test_ports::http;
use crate::reconcilers::testing::FakeApi;
use crate::threeport::api::Method;
use crate::threeport::models::{
    AttachedObjectReference, WorkloadDefinition, WorkloadInstance, WorkloadResourceInstance,
};
use serde_json::json;

const NAME: &str = "GatewayInstanceReconciler";

async fn run(g: &Gateway, op: Operation, attempt: u64) -> Result<Outcome, ReconcileError> {
    let gi: GatewayInstance = FakeApi::get(&g.api, g.gi).expect("gateway instance");
    let ctx = g.context(NAME, g.gi, op, attempt);
    let r = GatewayInstanceReconciler::default();
    match op {
        Operation::Created => r.created(&ctx, gi).await,
        Operation::Updated => r.updated(&ctx, gi).await,
        Operation::Deleted => r.deleted(&ctx, gi).await,
    }
}

fn names(docs: &[Value]) -> Vec<String> {
    let mut n: Vec<String> = docs
        .iter()
        .map(|d| {
            d["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    n.sort();
    n
}

fn gloo_wi(g: &Gateway) -> u64 {
    g.runtime()
        .gateway_workload_instance_id
        .expect("gloo edge recorded")
}

/// Exactly one of everything the gateway makes, with Threeport's names and routes.
fn assert_deployed_once(g: &Gateway) {
    let gloo_wds: Vec<WorkloadDefinition> = g
        .api
        .all::<WorkloadDefinition>()
        .into_iter()
        .filter(|wd| wd.definition.name.as_deref() == Some("gloo-edge-local"))
        .collect();
    assert_eq!(gloo_wds.len(), 1, "one gloo-edge workload definition");
    let gloo_wis: Vec<WorkloadInstance> = g
        .api
        .all::<WorkloadInstance>()
        .into_iter()
        .filter(|wi| wi.instance.name.as_deref() == Some("gloo-edge-local"))
        .collect();
    assert_eq!(gloo_wis.len(), 1, "one gloo-edge workload instance");
    assert_eq!(gloo_wis[0].common.id, Some(gloo_wi(g)));
    let ports = &g.live(gloo_wi(g), "GlooEdge")[0]["spec"]["ports"];
    assert_eq!(
        ports,
        &json!([
            {"name": "443", "protocol": "http", "port": 443, "ssl": true},
            {"name": "8080", "protocol": "http", "port": 8080, "ssl": false},
            {"name": "5432", "protocol": "tcp", "port": 5432, "ssl": false},
        ])
    );
    let vs = g.live(g.user_wi, "VirtualService");
    assert_eq!(names(&vs), ["app-example-com-443", "app-example-com-8080"]);
    for v in &vs {
        let upstream = &v["spec"]["virtualHost"]["routes"][0]["routeAction"]["single"]["upstream"];
        let port = if v["metadata"]["name"] == "app-example-com-443" {
            80
        } else {
            8080
        };
        assert_eq!(
            upstream,
            &json!({"name": format!("{USER_NAMESPACE}-web-{port}"), "namespace": "nukleros-gateway-system"})
        );
    }
    let gw = g.live(g.user_wi, "Gateway");
    assert_eq!(names(&gw), ["web-5432"]);
    assert_eq!(
        gw[0]["spec"]["tcpGateway"]["tcpHosts"][0]["destination"]["single"]["upstream"]["name"],
        format!("{USER_NAMESPACE}-web-5432")
    );
    let issuer = g.live(g.user_wi, "Issuer");
    assert_eq!(names(&issuer), ["zone"]);
    assert_eq!(
        issuer[0]["spec"]["acme"]["solvers"][0]["dns01"]["route53"]["region"],
        "us-east-1"
    );
    assert_eq!(names(&g.live(g.user_wi, "Certificate")), ["zone"]);
    let refs: Vec<AttachedObjectReference> = g.api.all();
    let ours = refs
        .iter()
        .filter(|r| r.attached_object_type.as_deref() == Some("v0.GatewayInstance"))
        .count();
    assert_eq!(ours, 1, "one attached reference");
}

#[tokio::test]
async fn the_happy_path_deploys_gloo_then_routes_every_port_once() {
    let g = Gateway::new();
    // Pass 1 deploys gloo edge and waits for it.
    let first = run(&g, Operation::Created, 1).await.expect("pass 1");
    assert!(matches!(first, Outcome::RequeueAfter(_)), "{first:?}");
    let gloo = gloo_wi(&g);
    let wd = g
        .api
        .all::<WorkloadDefinition>()
        .into_iter()
        .find(|wd| wd.definition.name.as_deref() == Some("gloo-edge-local"))
        .expect("gloo-edge definition");
    let yaml = wd.yaml_document.unwrap();
    assert!(
        yaml.contains("kind: CertManager") && yaml.contains("kind: GlooEdge"),
        "{yaml}"
    );
    assert!(g.live(g.user_wi, "VirtualService").is_empty());

    g.workload_controller_applies(gloo);
    // Pass 2 routes everything and, having written GlooEdge's ports, checks them once more.
    let second = run(&g, Operation::Created, 2).await.expect("pass 2");
    assert!(matches!(second, Outcome::RequeueAfter(_)), "{second:?}");
    assert_deployed_once(&g);
    let user: WorkloadInstance = FakeApi::get(&g.api, g.user_wi).unwrap();
    assert_eq!(
        user.reconciliation.reconciled,
        Some(false),
        "handed to the workload controller"
    );

    // Once applied, another pass writes nothing at all (Go re-patches gloo every time).
    g.workload_controller_applies(g.user_wi);
    g.workload_controller_applies(gloo);
    assert_all_applied(&g);
    let (posts, patches) = (
        g.api.count(Method::Post, "/v0/"),
        g.api.count(Method::Patch, "/v0/"),
    );
    run(&g, Operation::Updated, 1).await.expect("again");
    assert_eq!(g.api.count(Method::Post, "/v0/"), posts);
    assert_eq!(g.api.count(Method::Patch, "/v0/"), patches);
}

#[tokio::test]
async fn a_failure_at_any_write_converges_on_exactly_one_of_everything() {
    // (method, path, calls let through first): each write of the first pass and of the
    // second in turn.
    let faults: &[(Method, &str, usize)] = &[
        (Method::Post, "/v0/attached-object-references", 0),
        (Method::Post, "/v0/workload-definitions", 0),
        (Method::Post, "/v0/workload-instances", 0),
        (Method::Patch, "/v0/kubernetes-runtime-instances/", 0),
        (Method::Patch, "/v0/workload-resource-instances/", 0),
        (Method::Post, "/v0/workload-resource-instances", 0),
        (Method::Post, "/v0/workload-resource-instances", 2),
        (Method::Post, "/v0/workload-resource-instances", 4),
        (Method::Patch, "/v0/workload-instances/", 0),
        (Method::Patch, "/v0/workload-instances/", 1),
        (Method::Get, "/v0/workload-resource-instances", 1),
    ];
    for &(method, path, skip) in faults {
        let g = Gateway::new();
        g.api.fail(method, path, skip, 1);
        let passes = g
            .until_done(|attempt| run(&g, Operation::Created, attempt))
            .await;
        assert!(passes >= 2, "{method:?} {path} +{skip}");
        g.workload_controller_applies(g.user_wi);
        g.workload_controller_applies(gloo_wi(&g));
        assert_deployed_once(&g);
        // Whatever failed, the workloads were handed to the workload controller afterwards.
        assert_all_applied(&g);
    }
}

/// Every WRI of the user's workload and of gloo edge has been applied (the workload
/// controller was asked to, after the last write).
fn assert_all_applied(g: &Gateway) {
    for wi in [g.user_wi, gloo_wi(g)] {
        for w in g.wris_of(wi) {
            assert_eq!(
                w.reconciled,
                Some(true),
                "WRI {:?} of workload {wi} was never applied",
                w.json_definition.as_ref().map(|d| d["kind"].clone())
            );
        }
    }
}

#[tokio::test]
async fn an_update_adds_changes_and_removes_ports() {
    let g = Gateway::new();
    g.until_done(|a| run(&g, Operation::Created, a)).await;
    g.workload_controller_applies(g.user_wi);
    // Port 8080 goes, 9090 comes, 443's path changes.
    let ports: Vec<GatewayHttpPort> = g.api.all();
    for p in &ports {
        let id = p.common.id.unwrap();
        match p.port {
            Some(8080) => g.api.remove::<GatewayHttpPort>(id),
            Some(443) => g
                .api
                .update::<GatewayHttpPort>(id, |p| p.path = Some("/api".into())),
            _ => {}
        }
    }
    g.add_http(http(9090, "/", false, false));
    g.until_done(|a| run(&g, Operation::Updated, a)).await;
    let vs = g.live(g.user_wi, "VirtualService");
    assert_eq!(names(&vs), ["app-example-com-443", "app-example-com-9090"]);
    let api_route = vs
        .iter()
        .find(|v| v["metadata"]["name"] == "app-example-com-443")
        .unwrap();
    assert_eq!(
        api_route["spec"]["virtualHost"]["routes"][0]["matchers"][0]["prefix"],
        "/api"
    );
    // 8080's VirtualService was scheduled for deletion and the workload controller deleted it.
    let gone = g.wris_of(g.user_wi).into_iter().all(|w| {
        w.json_definition
            .is_some_and(|d| d["metadata"]["name"] != "app-example-com-8080")
    });
    assert!(gone, "8080's VirtualService WRI is gone");
    assert_all_applied(&g);
    let exposed = &g.live(gloo_wi(&g), "GlooEdge")[0]["spec"]["ports"];
    assert!(
        exposed
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["port"] == 9090),
        "{exposed}"
    );
}

#[tokio::test]
async fn deleted_schedules_every_gateway_object_and_detaches() {
    let g = Gateway::new();
    g.until_done(|a| run(&g, Operation::Created, a)).await;
    g.workload_controller_applies(g.user_wi);
    run(&g, Operation::Deleted, 1).await.expect("deleted");
    let scheduled: Vec<String> = g
        .wris_of(g.user_wi)
        .into_iter()
        .filter(|w| w.scheduled_for_deletion.is_some())
        .map(|w| {
            w.json_definition.unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(scheduled.len(), 5, "{scheduled:?}");
    assert_eq!(
        g.live(g.user_wi, "Service").len(),
        1,
        "the user's Service stays"
    );
    let user: WorkloadInstance = FakeApi::get(&g.api, g.user_wi).unwrap();
    assert_eq!(user.reconciliation.reconciled, Some(false));
    assert!(g
        .api
        .all::<AttachedObjectReference>()
        .iter()
        .all(|r| r.attached_object_type.as_deref() != Some("v0.GatewayInstance")));
    // Repeated before the workload controller deleted them: it asks for that again.
    run(&g, Operation::Deleted, 2).await.expect("again");
    let user: WorkloadInstance = FakeApi::get(&g.api, g.user_wi).unwrap();
    assert_eq!(user.reconciliation.reconciled, Some(false));
    // Once they are deleted, repeating it writes nothing.
    g.workload_controller_applies(g.user_wi);
    assert_eq!(
        g.wris_of(g.user_wi).len(),
        2,
        "the app's Deployment and Service are left"
    );
    let patches = g.api.count(Method::Patch, "/v0/");
    run(&g, Operation::Deleted, 3).await.expect("again");
    assert_eq!(g.api.count(Method::Patch, "/v0/"), patches);
}

#[tokio::test]
async fn it_waits_for_the_definition_and_the_workload_without_deploying_anything() {
    let g = Gateway::new();
    g.api
        .update::<GatewayDefinition>(g.gd, |gd| gd.reconciliation.reconciled = Some(false));
    let out = run(&g, Operation::Created, 1).await.expect("waits");
    assert!(matches!(out, Outcome::RequeueAfter(_)));
    g.api
        .update::<GatewayDefinition>(g.gd, |gd| gd.reconciliation.reconciled = Some(true));
    g.api
        .update::<WorkloadInstance>(g.user_wi, |wi| wi.reconciliation.reconciled = Some(false));
    let out = run(&g, Operation::Created, 1).await.expect("waits");
    assert!(matches!(out, Outcome::RequeueAfter(_)));
    assert!(g.runtime().gateway_workload_instance_id.is_none());
    assert_eq!(g.api.count(Method::Post, "/v0/workload-definitions"), 0);
}

#[tokio::test]
async fn an_unknown_location_with_tls_and_an_ambiguous_service_are_permanent_errors() {
    let g = Gateway::with_location("Mars:Olympus");
    let err = g
        .until_done_or_error(|a| run(&g, Operation::Created, a))
        .await;
    assert_eq!(err.class, RetryClass::Permanent);
    assert!(err.to_string().contains("Mars:Olympus"), "{err}");

    let g = Gateway::new();
    g.api.insert(&WorkloadResourceInstance {
        json_definition: Some(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "metrics", "namespace": USER_NAMESPACE}})),
        workload_instance_id: Some(g.user_wi),
        reconciled: Some(true),
        ..Default::default()
    });
    let err = g
        .until_done_or_error(|a| run(&g, Operation::Created, a))
        .await;
    assert_eq!(err.class, RetryClass::Permanent);
    assert!(
        err.to_string().contains("2 resources of kind Service"),
        "{err}"
    );
    // Naming the Service in the definition resolves it.
    g.api
        .update::<GatewayDefinition>(g.gd, |gd| gd.service_name = Some("web".into()));
    g.until_done(|a| run(&g, Operation::Created, a)).await;
    assert_deployed_once(&g);
}
