//! The gateway controller's end-to-end scenarios (issue 12), written once against a [`Stack`]
//! and run on both backends: `tests/gateway.rs` (sandbox, plus fault injection) and
//! `tests/upstream_gateway.rs` (real kube-apiserver, real Threeport API on PostgreSQL).
//!
//! One manager runs the workload and the gateway reconcilers, as `--enable workload,gateway`
//! does. No gloo, cert-manager or nukleros operator runs here: minimal CRDs make the cluster
//! accept and store their objects, and the assertions read them back (names, namespaces,
//! upstreams, ports), counting each kind so a duplicate or a leftover fails.
#![allow(dead_code)]

use std::collections::BTreeSet;

use serde_json::{json, Value};
use threeport_manager::threeport::models::{
    DOMAIN_NAME_DEFINITION, DOMAIN_NAME_INSTANCE, GATEWAY_DEFINITION, GATEWAY_HTTP_PORT,
    GATEWAY_INSTANCE, KUBERNETES_RUNTIME_INSTANCE, WORKLOAD_INSTANCE,
};
use threeport_manager::threeport::ThreeportApi;

use crate::harness::backend::Stack;
use crate::harness::workload_suite::{name, wait_until, Env, LIMIT, WEB_APP};

/// What `--enable workload,gateway` runs.
pub const RECONCILERS: &[&str] = &[
    "WorkloadDefinitionReconciler",
    "WorkloadInstanceReconciler",
    "GatewayDefinitionReconciler",
    "GatewayInstanceReconciler",
    "DomainNameInstanceReconciler",
];

/// CRDs for gloo, cert-manager and the nukleros support-services kinds.
pub const GATEWAY_CRDS: &str = include_str!("../../fixtures/manifests/gateway-crds.yaml");

/// Where gloo's discovery creates its upstreams (the GlooEdge resource's namespace).
pub const GLOO_NAMESPACE: &str = "nukleros-gateway-system";
/// The gateway's host: sub-domain `app` of `example.com`.
pub const HOST: &str = "app.example.com";

/// Install the CRDs and the gloo namespace (what the support-services operator would do) and
/// start workload + gateway reconcilers on the stack.
pub async fn start(stack: Stack) -> Env {
    prepare_cluster(&stack).await;
    Env::start_with(stack, RECONCILERS).await
}

/// What the gateway's objects need on the cluster when no operator runs: the CRDs and gloo's
/// namespace.
pub async fn prepare_cluster(stack: &Stack) {
    stack.install_crds(GATEWAY_CRDS).await;
    // Threeport's workload controller puts every gloo `Gateway` in the GlooEdge namespace
    // (spec 3.1.3), which gloo's operator creates when it installs gloo.
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(stack.kube.clone());
    namespaces
        .patch(
            GLOO_NAMESPACE,
            &kube::api::PatchParams::apply("threeport-manager-tests").force(),
            &kube::api::Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": GLOO_NAMESPACE}})),
        )
        .await
        .expect("create the gloo namespace");
}

/// Runs each named scenario as a `#[tokio::test]` on a fresh stack from `$stack` (an
/// `Option<Stack>`; `None` skips).
#[macro_export]
macro_rules! gateway_scenario_tests {
    ($stack:expr) => {
        gateway_scenario_tests!(@each $stack;
            happy_path_update_and_delete,
            gateway_notifications_before_the_workload_is_reconciled,
        );
    };
    (@each $stack:expr; $($scenario:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $scenario() {
            let Some(stack) = $stack else { return };
            let env = gateway_suite::start(stack).await;
            gateway_suite::$scenario(&env).await;
            env.stop().await;
        }
    )*};
}

/// The objects of one gateway.
pub struct Gateway {
    pub dnd: u64,
    pub gd: u64,
    pub wd: u64,
    pub wi: u64,
    pub dni: u64,
    pub gi: u64,
    /// `kebab(DomainNameDefinition.Name)`: the Issuer's and Certificate's name.
    pub issuer: String,
    /// The gateway definition's name.
    pub gd_name: String,
}

async fn post(env: &Env, ty: threeport_manager::threeport::ObjectType, body: Value) -> u64 {
    let o = env
        .api
        .create(ty, body.clone())
        .await
        .unwrap_or_else(|e| panic!("POST {}: {e}\n{body}", ty.path));
    o["ID"].as_u64().expect("ID")
}

/// Create, without waiting in between, Threeport's happy-path objects (spec 3.3.4): the web
/// app's definition and instance, a domain name definition, a gateway definition with HTTP
/// 443 (TLS), HTTP 80 (HTTPS redirect) and TCP 5432, a domain name instance and a gateway
/// instance. With `workload_first`, the workload is reconciled before the gateway objects
/// are created.
pub async fn create_gateway(env: &Env, prefix: &str, workload_first: bool) -> Gateway {
    let (wd, wi) = create_workload(env, prefix, workload_first).await;
    create_gateway_for(env, prefix, wd, wi).await
}

/// The web app's definition and instance (`<prefix>-app`, `<prefix>-app-0`), waiting until
/// both are reconciled when `wait`.
pub async fn create_workload(env: &Env, prefix: &str, wait: bool) -> (u64, u64) {
    let wd = env.create_wd(&format!("{prefix}-app"), WEB_APP).await;
    if wait {
        env.wait_reconciled(
            threeport_manager::threeport::models::WORKLOAD_DEFINITION,
            wd,
        )
        .await;
    }
    let wi = env.create_wi(&format!("{prefix}-app-0"), wd).await;
    if wait {
        env.wait_reconciled(WORKLOAD_INSTANCE, wi).await;
    }
    (wd, wi)
}

/// The gateway objects of [`create_gateway`] for an existing workload.
pub async fn create_gateway_for(env: &Env, prefix: &str, wd: u64, wi: u64) -> Gateway {
    let dnd_name = format!("{prefix} Zone");
    let dnd = post(
        env,
        DOMAIN_NAME_DEFINITION,
        json!({"Name": dnd_name, "Domain": "example.com", "Zone": "Public",
               "AdminEmail": "ops@example.com"}),
    )
    .await;
    let gd_name = format!("{prefix}-gw");
    let gd = post(
        env,
        GATEWAY_DEFINITION,
        json!({
            "Name": gd_name,
            "DomainNameDefinitionID": dnd,
            "SubDomain": "app",
            "HttpPorts": [
                {"Port": 443, "Path": "/", "TLSEnabled": true, "HTTPSRedirect": false},
                {"Port": 80, "Path": "/", "TLSEnabled": false, "HTTPSRedirect": true},
            ],
            "TcpPorts": [{"Port": 5432, "TLSEnabled": false}],
        }),
    )
    .await;
    let runtime = env.stack.runtime_id;
    let dni = post(
        env,
        DOMAIN_NAME_INSTANCE,
        json!({"Name": format!("{prefix}-dns"), "DomainNameDefinitionID": dnd,
               "WorkloadInstanceID": wi, "KubernetesRuntimeInstanceID": runtime}),
    )
    .await;
    let gi = post(
        env,
        GATEWAY_INSTANCE,
        json!({"Name": format!("{prefix}-gw-0"), "GatewayDefinitionID": gd,
               "WorkloadInstanceID": wi, "KubernetesRuntimeInstanceID": runtime}),
    )
    .await;
    Gateway {
        dnd,
        gd,
        wd,
        wi,
        dni,
        gi,
        issuer: format!("{prefix}-zone"),
        gd_name,
    }
}

/// The HTTP ports a gateway should route, as (port, path, TLS, HTTPS redirect).
pub type HttpPort = (i64, &'static str, bool, bool);

/// The ports [`create_gateway`] makes.
pub const FIRST_PORTS: &[HttpPort] = &[(443, "/", true, false), (80, "/", false, true)];

async fn user_namespace(env: &Env, wi: u64) -> String {
    let namespaces = env.namespaces_of(wi).await;
    assert_eq!(namespaces.len(), 1, "one namespace for the workload");
    name(&namespaces[0]).to_string()
}

fn kebab_host_port(port: i64) -> String {
    format!("{}-{port}", HOST.replace('.', "-"))
}

/// Wait until the gateway converged: its instance, the user's workload and the gloo and
/// external-dns workloads reconciled, and every VirtualService of `http` in the cluster.
pub async fn wait_converged(env: &Env, g: &Gateway, http: &[HttpPort]) {
    let deadline = tokio::time::Instant::now() + LIMIT * 2;
    while !converged(env, g, http).await {
        if tokio::time::Instant::now() > deadline {
            panic!(
                "gateway instance {} not converged after {:?}:\n{}",
                g.gi,
                LIMIT * 2,
                describe(env, g).await
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The state of a gateway's objects and every event, for a failure message.
pub async fn describe(env: &Env, g: &Gateway) -> String {
    use threeport_manager::threeport::models::EVENT;
    let mut out = String::new();
    let brief = |o: Option<Value>| {
        o.map(|o| {
            let mut o = o;
            if let Some(m) = o.as_object_mut() {
                m.retain(|k, _| {
                    [
                        "ID",
                        "Name",
                        "Reconciled",
                        "DeletionScheduled",
                        "GatewayWorkloadInstanceID",
                        "DnsControllerInstanceId",
                        "WorkloadDefinitionID",
                    ]
                    .contains(&k.as_str())
                });
            }
            o.to_string()
        })
        .unwrap_or_else(|| "gone".into())
    };
    for (what, ty, id) in [
        ("gateway definition", GATEWAY_DEFINITION, g.gd),
        ("gateway instance", GATEWAY_INSTANCE, g.gi),
        ("domain name instance", DOMAIN_NAME_INSTANCE, g.dni),
        ("workload instance", WORKLOAD_INSTANCE, g.wi),
        ("runtime", KUBERNETES_RUNTIME_INSTANCE, env.stack.runtime_id),
    ] {
        out += &format!("{what}: {}\n", brief(env.stack.get(ty, id).await));
    }
    for wi in env.stack.list_all(WORKLOAD_INSTANCE).await {
        out += &format!("workload instance: {}\n", brief(Some(wi)));
    }
    for w in env.wris(g.wi).await {
        out += &format!(
            "  WRI {} {} reconciled={} scheduled={}\n",
            w["JSONDefinition"]["kind"],
            w["JSONDefinition"]["metadata"]["name"],
            w["Reconciled"],
            w["ScheduledForDeletion"]
        );
    }
    for e in env.stack.list_all(EVENT).await {
        out += &format!("event: {} {} {}\n", e["Type"], e["Reason"], e["Note"]);
    }
    out
}

async fn converged(env: &Env, g: &Gateway, http: &[HttpPort]) -> bool {
    {
        let reconciled = |o: Option<Value>| o.is_some_and(|o| o["Reconciled"] == true);
        if !reconciled(env.stack.get(GATEWAY_INSTANCE, g.gi).await)
            || !reconciled(env.stack.get(DOMAIN_NAME_INSTANCE, g.dni).await)
            || !reconciled(env.stack.get(WORKLOAD_INSTANCE, g.wi).await)
        {
            return false;
        }
        let Some(kri) = env
            .stack
            .get(KUBERNETES_RUNTIME_INSTANCE, env.stack.runtime_id)
            .await
        else {
            return false;
        };
        for support in ["GatewayWorkloadInstanceID", "DnsControllerInstanceId"] {
            let Some(wi) = kri[support].as_u64() else {
                return false;
            };
            if !reconciled(env.stack.get(WORKLOAD_INSTANCE, wi).await) {
                return false;
            }
        }
        let wris = env.wris(g.wi).await;
        if wris.iter().any(|w| w["Reconciled"] != true) {
            return false;
        }
        let vs = env
            .stack
            .objects("gateway.solo.io/v1", "VirtualService", None)
            .await;
        let names: BTreeSet<String> = vs.iter().map(|v| name(v).to_string()).collect();
        let wanted: BTreeSet<String> = http.iter().map(|p| kebab_host_port(p.0)).collect();
        names == wanted
    }
}

/// Everything the gateway made, exactly once, with Threeport's names and upstreams.
pub async fn assert_gateway_deployed(env: &Env, g: &Gateway, http: &[HttpPort], tcp: &[i64]) {
    let ns = user_namespace(env, g.wi).await;
    let stack = &env.stack;

    // The user's app is untouched.
    for (av, kind) in [("apps/v1", "Deployment"), ("v1", "Service")] {
        assert!(
            stack.object(av, kind, Some(&ns), "web").await.is_some(),
            "{kind} web in {ns}"
        );
    }

    let vs = stack
        .objects("gateway.solo.io/v1", "VirtualService", None)
        .await;
    assert_eq!(
        vs.len(),
        http.len(),
        "one VirtualService per HTTP port: {vs:#?}"
    );
    for &(port, path, tls, redirect) in http {
        let v = stack
            .object(
                "gateway.solo.io/v1",
                "VirtualService",
                Some(&ns),
                &kebab_host_port(port),
            )
            .await
            .unwrap_or_else(|| panic!("VirtualService for {port} in {ns}"));
        let host = &v["spec"]["virtualHost"];
        assert_eq!(host["domains"], json!([HOST]));
        let route = &host["routes"][0];
        assert_eq!(route["matchers"][0]["prefix"], path, "{port}");
        if redirect {
            assert_eq!(
                route["redirectAction"],
                json!({"hostRedirect": HOST, "httpsRedirect": true})
            );
        } else {
            // gloo's discovery upstream of the Service port; behind TLS, port 80 (Threeport's).
            let target = if tls { 80 } else { port };
            assert_eq!(
                route["routeAction"]["single"]["upstream"],
                json!({"name": format!("{ns}-web-{target}"), "namespace": GLOO_NAMESPACE}),
                "{port}"
            );
        }
        if tls {
            assert_eq!(
                v["spec"]["sslConfig"]["secretRef"],
                json!({"name": format!("{}-tls", HOST.replace('.', "-")), "namespace": ns})
            );
        }
    }

    let gateways = stack.objects("gateway.solo.io/v1", "Gateway", None).await;
    assert_eq!(gateways.len(), tcp.len(), "one TCP Gateway per TCP port");
    for &port in tcp {
        // Threeport's workload controller puts gloo Gateways in gloo's namespace.
        let gw = stack
            .object(
                "gateway.solo.io/v1",
                "Gateway",
                Some(GLOO_NAMESPACE),
                &format!("{}-{port}", g.gd_name),
            )
            .await
            .unwrap_or_else(|| panic!("Gateway for {port} in {GLOO_NAMESPACE}"));
        assert_eq!(gw["spec"]["bindPort"], 8000 + port);
        assert_eq!(
            gw["spec"]["tcpGateway"]["tcpHosts"][0]["destination"]["single"]["upstream"],
            json!({"name": format!("{ns}-web-{port}"), "namespace": GLOO_NAMESPACE})
        );
    }

    let issuers = stack.objects("cert-manager.io/v1", "Issuer", None).await;
    assert_eq!(issuers.len(), 1, "{issuers:#?}");
    let issuer = stack
        .object("cert-manager.io/v1", "Issuer", Some(&ns), &g.issuer)
        .await
        .expect("Issuer");
    assert_eq!(issuer["spec"]["acme"]["email"], "ops@example.com");
    assert_eq!(
        issuer["spec"]["acme"]["solvers"][0]["selector"]["dnsZones"],
        json!(["example.com", HOST])
    );
    assert_eq!(
        issuer["spec"]["acme"]["solvers"][0]["dns01"]["route53"]["region"],
        "us-east-1"
    );
    let certs = stack
        .objects("cert-manager.io/v1", "Certificate", None)
        .await;
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0]["metadata"]["namespace"], ns.as_str());
    assert_eq!(certs[0]["spec"]["dnsNames"], json!([HOST]));
    assert_eq!(certs[0]["spec"]["issuerRef"]["name"], g.issuer.as_str());

    // The support services: one of each, with the ports exposed.
    assert_support_services(env, http, tcp).await;
}

/// gloo edge (with cert-manager) and external-dns: one workload each on the runtime, recorded
/// on it, their resources in the cluster, every port exposed on GlooEdge.
pub async fn assert_support_services(env: &Env, http: &[HttpPort], tcp: &[i64]) {
    let stack = &env.stack;
    let kri = stack
        .get(KUBERNETES_RUNTIME_INSTANCE, stack.runtime_id)
        .await
        .expect("runtime");
    let runtime = kri["Name"].as_str().expect("runtime name");
    let instances = stack.list_all(WORKLOAD_INSTANCE).await;
    for (field, prefix) in [
        ("GatewayWorkloadInstanceID", "gloo-edge"),
        ("DnsControllerInstanceId", "external-dns"),
    ] {
        let wanted = format!("{prefix}-{runtime}");
        let named: Vec<&Value> = instances
            .iter()
            .filter(|wi| wi["Name"] == wanted.as_str())
            .collect();
        assert_eq!(named.len(), 1, "one {wanted} workload instance");
        assert_eq!(kri[field], named[0]["ID"], "{field}");
    }
    let glooedge = stack
        .object(
            "gateway.support-services.nukleros.io/v1alpha1",
            "GlooEdge",
            None,
            "glooedge",
        )
        .await
        .expect("GlooEdge");
    assert_eq!(glooedge["spec"]["namespace"], GLOO_NAMESPACE);
    let exposed: BTreeSet<(String, i64, bool)> = glooedge["spec"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| {
            (
                p["protocol"].as_str().unwrap_or_default().to_string(),
                p["port"].as_i64().unwrap_or_default(),
                p["ssl"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    for &(port, _, tls, _) in http {
        assert!(
            exposed.contains(&("http".into(), port, tls)),
            "{port} in {exposed:?}"
        );
    }
    for &port in tcp {
        assert!(
            exposed.contains(&("tcp".into(), port, false)),
            "{port} in {exposed:?}"
        );
    }
    assert!(stack
        .object(
            "certificates.support-services.nukleros.io/v1alpha1",
            "CertManager",
            None,
            "certmanager"
        )
        .await
        .is_some());
    let dns = stack
        .object(
            "gateway.support-services.nukleros.io/v1alpha1",
            "ExternalDNS",
            None,
            "externaldns",
        )
        .await
        .expect("ExternalDNS");
    assert_eq!(dns["spec"]["domainName"], "example.com");
    assert_eq!(dns["spec"]["provider"], "none");
}

/// Spec 3.3.4 end to end, then an update (a port added, a path changed) and the gateway
/// instance's deletion (its objects leave the cluster, the user's workload stays).
pub async fn happy_path_update_and_delete(env: &Env) {
    let g = create_gateway(env, "shop", true).await;
    wait_converged(env, &g, FIRST_PORTS).await;
    assert_gateway_deployed(env, &g, FIRST_PORTS, &[5432]).await;

    // Update: HTTP 8080 added, 443's path changed; the definition and the instance are
    // un-reconciled, as a user (or tptctl) asks for a re-reconcile.
    post(
        env,
        GATEWAY_HTTP_PORT,
        json!({"GatewayDefinitionID": g.gd, "Port": 8080, "Path": "/", "TLSEnabled": false,
               "HTTPSRedirect": false}),
    )
    .await;
    let ports = env
        .stack
        .list_where(GATEWAY_HTTP_PORT, "gatewaydefinitionid", g.gd)
        .await;
    let tls_port = ports.iter().find(|p| p["Port"] == 443).expect("port 443");
    env.api
        .patch(
            GATEWAY_HTTP_PORT,
            tls_port["ID"].as_u64().unwrap(),
            json!({"Path": "/api"}),
        )
        .await
        .expect("PATCH port path");
    env.api
        .patch(GATEWAY_DEFINITION, g.gd, json!({"Reconciled": false}))
        .await
        .expect("un-reconcile the gateway definition");
    env.wait_reconciled(GATEWAY_DEFINITION, g.gd).await;
    env.api
        .patch(GATEWAY_INSTANCE, g.gi, json!({"Reconciled": false}))
        .await
        .expect("un-reconcile the gateway instance");
    let updated: &[HttpPort] = &[
        (443, "/api", true, false),
        (80, "/", false, true),
        (8080, "/", false, false),
    ];
    wait_converged(env, &g, updated).await;
    wait_until(LIMIT, "443 routes /api", || async {
        let ns = user_namespace(env, g.wi).await;
        env.stack
            .object(
                "gateway.solo.io/v1",
                "VirtualService",
                Some(&ns),
                &kebab_host_port(443),
            )
            .await
            .is_some_and(|v| {
                v["spec"]["virtualHost"]["routes"][0]["matchers"][0]["prefix"] == "/api"
            })
    })
    .await;
    assert_gateway_deployed(env, &g, updated, &[5432]).await;

    // Delete the gateway instance: its objects go, the app stays.
    env.api
        .delete(GATEWAY_INSTANCE, g.gi)
        .await
        .expect("DELETE gateway instance");
    env.wait_gone(GATEWAY_INSTANCE, g.gi).await;
    let ns = user_namespace(env, g.wi).await;
    wait_until(
        LIMIT,
        "gateway objects removed from the cluster",
        || async {
            let mut left = 0;
            for (av, kind) in [
                ("gateway.solo.io/v1", "VirtualService"),
                ("gateway.solo.io/v1", "Gateway"),
                ("cert-manager.io/v1", "Issuer"),
                ("cert-manager.io/v1", "Certificate"),
            ] {
                left += env.stack.objects(av, kind, None).await.len();
            }
            left == 0
        },
    )
    .await;
    env.wait_reconciled(WORKLOAD_INSTANCE, g.wi).await;
    let kinds: Vec<String> = env
        .wris(g.wi)
        .await
        .iter()
        .map(|w| {
            w["JSONDefinition"]["kind"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let mut kinds_sorted = kinds.clone();
    kinds_sorted.sort();
    assert_eq!(
        kinds_sorted,
        ["ConfigMap", "Deployment", "Namespace", "Service"],
        "only the app's WRIs are left"
    );
    for (av, kind, n) in [("apps/v1", "Deployment", "web"), ("v1", "Service", "web")] {
        assert!(
            env.stack.object(av, kind, Some(&ns), n).await.is_some(),
            "{kind} stays"
        );
    }
}

/// The gateway and domain name instances are created right after the workload, before it is
/// reconciled: they wait for it and converge without manual steps.
pub async fn gateway_notifications_before_the_workload_is_reconciled(env: &Env) {
    let g = create_gateway(env, "early", false).await;
    wait_converged(env, &g, FIRST_PORTS).await;
    assert_gateway_deployed(env, &g, FIRST_PORTS, &[5432]).await;
}
