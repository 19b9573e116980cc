//! Differential test against Threeport's own Go gateway-controller (v0.6.1), in the case where
//! the Go controller works: one HTTP port (with TLS, so the Issuer and Certificate are made
//! too) and a domain name instance.
//!
//! The same objects are created on two fresh real stacks: one reconciled by Threeport's Go
//! workload-controller and gateway-controller, the other by the manager (workload and gateway
//! reconcilers in process). Once both converged, each is snapshotted: the WRIs the gateway
//! added to the user's workload, the gloo-edge and external-dns support workloads (their
//! WRIs), the template WorkloadDefinition's documents, and the objects in the cluster (kind,
//! namespace, name and spec). What legitimately differs between two runs is normalised (IDs,
//! the managed namespace's suffix, the runtime ID in external-dns's arguments).
//!
//! Every difference must be fixed or listed in [`DELIBERATE`] with its reason (README.md
//! explains them too); a listed difference that no longer shows fails as well.

mod harness;
use harness::{backend, gateway_suite, go_controller, workload_suite};

use std::collections::BTreeMap;
use std::time::Duration;

use backend::Stack;
use go_controller::GoController;
use serde_json::{json, Value};
use threeport_manager::threeport::models::{
    DOMAIN_NAME_DEFINITION, DOMAIN_NAME_INSTANCE, GATEWAY_DEFINITION, GATEWAY_INSTANCE,
    KUBERNETES_RUNTIME_INSTANCE, WORKLOAD_DEFINITION, WORKLOAD_INSTANCE,
    WORKLOAD_RESOURCE_INSTANCE,
};
use threeport_manager::threeport::ThreeportApi;
use workload_suite::{Env, WEB_APP};

/// Differences that are improvements on purpose, by snapshot key.
const DELIBERATE: &[&str] = &[];

/// How long the Go controllers may take: the gateway instance's first pass always fails
/// (gloo edge is not reconciled yet) and Go's backoff retries it up to a minute later.
const LIMIT: Duration = Duration::from_secs(240);

type Snapshot = BTreeMap<String, Value>;

/// The stack with the controllers of one side running.
enum Side {
    Go(Box<Stack>, Vec<GoController>),
    Manager(Box<Env>),
}

impl Side {
    fn stack(&self) -> &Stack {
        match self {
            Side::Go(s, _) => s,
            Side::Manager(e) => &e.stack,
        }
    }

    fn logs(&self) -> String {
        match self {
            Side::Go(_, go) => go
                .iter()
                .map(|g| g.log_tail(25))
                .collect::<Vec<_>>()
                .join("\n"),
            Side::Manager(_) => String::new(),
        }
    }

    async fn stop(self) {
        match self {
            Side::Go(_, go) => drop(go),
            Side::Manager(env) => env.stop().await,
        }
    }
}

async fn post(stack: &Stack, ty: threeport_manager::threeport::ObjectType, body: Value) -> u64 {
    stack
        .api
        .create(ty, body)
        .await
        .unwrap_or_else(|e| panic!("POST {}: {e}", ty.path))["ID"]
        .as_u64()
        .expect("ID")
}

async fn reconciled(stack: &Stack, ty: threeport_manager::threeport::ObjectType, id: u64) -> bool {
    stack
        .get(ty, id)
        .await
        .is_some_and(|o| o["Reconciled"] == true)
}

async fn run(go: bool) -> Option<Snapshot> {
    let stack = Stack::upstream(false).await?;
    gateway_suite::prepare_cluster(&stack).await;
    let logs = tempfile::tempdir().expect("tempdir");
    let side = if go {
        let controllers = ["workload-controller", "gateway-controller"]
            .iter()
            .map(|name| {
                GoController::start(
                    name,
                    &stack.process_env(),
                    logs.path().join(format!("{name}.log")),
                )
            })
            .collect();
        Side::Go(Box::new(stack), controllers)
    } else {
        Side::Manager(Box::new(
            Env::start_with(stack, gateway_suite::RECONCILERS).await,
        ))
    };
    let stack = side.stack();

    // The user's workload, reconciled first (both controllers then start from the same state).
    let wd = post(
        stack,
        WORKLOAD_DEFINITION,
        json!({"Name": "web-app", "YAMLDocument": WEB_APP}),
    )
    .await;
    wait(&side, "web-app definition", || {
        reconciled(stack, WORKLOAD_DEFINITION, wd)
    })
    .await;
    let wi = post(
        stack,
        WORKLOAD_INSTANCE,
        json!({"Name": "web-app-0", "WorkloadDefinitionID": wd,
               "KubernetesRuntimeInstanceID": stack.runtime_id}),
    )
    .await;
    wait(&side, "web-app-0", || {
        reconciled(stack, WORKLOAD_INSTANCE, wi)
    })
    .await;
    let dnd = post(
        stack,
        DOMAIN_NAME_DEFINITION,
        json!({"Name": "Example Zone", "Domain": "example.com", "Zone": "Public",
               "AdminEmail": "ops@example.com"}),
    )
    .await;
    let gd = post(
        stack,
        GATEWAY_DEFINITION,
        json!({"Name": "web-gw", "DomainNameDefinitionID": dnd, "SubDomain": "app",
               "HttpPorts": [{"Port": 443, "Path": "/", "TLSEnabled": true, "HTTPSRedirect": false}]}),
    )
    .await;
    wait(&side, "gateway definition", || {
        reconciled(stack, GATEWAY_DEFINITION, gd)
    })
    .await;
    let gi = post(
        stack,
        GATEWAY_INSTANCE,
        json!({"Name": "web-gw-0", "GatewayDefinitionID": gd, "WorkloadInstanceID": wi,
               "KubernetesRuntimeInstanceID": stack.runtime_id}),
    )
    .await;
    wait(&side, "gateway instance", || {
        reconciled(stack, GATEWAY_INSTANCE, gi)
    })
    .await;
    let dni = post(
        stack,
        DOMAIN_NAME_INSTANCE,
        json!({"Name": "web-dns", "DomainNameDefinitionID": dnd, "WorkloadInstanceID": wi,
               "KubernetesRuntimeInstanceID": stack.runtime_id}),
    )
    .await;
    wait(&side, "domain name instance", || {
        reconciled(stack, DOMAIN_NAME_INSTANCE, dni)
    })
    .await;
    // Everything the gateway handed to the workload controller applied.
    wait(&side, "every workload applied", || async {
        let instances = stack.list_all(WORKLOAD_INSTANCE).await;
        instances.len() == 3 && instances.iter().all(|w| w["Reconciled"] == true) && {
            let mut all = true;
            for w in &instances {
                let wris = stack
                    .list_where(
                        WORKLOAD_RESOURCE_INSTANCE,
                        "workloadinstanceid",
                        w["ID"].as_u64().unwrap_or(0),
                    )
                    .await;
                all &= wris.iter().all(|r| r["Reconciled"] == true);
            }
            all
        }
    })
    .await;
    let snap = snapshot(stack).await;
    side.stop().await;
    Some(snap)
}

async fn wait<F, Fut>(side: &Side, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {LIMIT:?}: {what}\n{}",
            side.logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Parse a YAML stream into its documents (empty ones dropped).
fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|d| serde::Deserialize::deserialize(d).expect("YAML"))
        .filter(|d: &Value| !d.is_null())
        .collect()
}

fn key_of(doc: &Value) -> String {
    format!(
        "{}/{}",
        doc["kind"].as_str().unwrap_or_default(),
        doc["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// `v` with the replacements made in every string (keys and numbers untouched).
fn replace_in_strings(v: &Value, replacements: &[(&str, &str)]) -> Value {
    match v {
        Value::String(text) => Value::String(
            replacements
                .iter()
                .fold(text.clone(), |t, (from, to)| t.replace(from, to)),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| replace_in_strings(i, replacements))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, i)| (k.clone(), replace_in_strings(i, replacements)))
                .collect(),
        ),
        other => other.clone(),
    }
}

async fn snapshot(stack: &Stack) -> Snapshot {
    let mut snap = Snapshot::new();
    let instances = stack.list_all(WORKLOAD_INSTANCE).await;
    let user_wi = instances
        .iter()
        .find(|w| w["Name"] == "web-app-0")
        .and_then(|w| w["ID"].as_u64())
        .expect("web-app-0");
    // The user's namespace: the Namespace WRI of web-app-0.
    let wri_ty = WORKLOAD_RESOURCE_INSTANCE;
    let ns = stack
        .list_where(wri_ty, "workloadinstanceid", user_wi)
        .await
        .into_iter()
        .find(|w| w["JSONDefinition"]["kind"] == "Namespace")
        .and_then(|w| {
            w["JSONDefinition"]["metadata"]["name"]
                .as_str()
                .map(str::to_string)
        })
        .expect("namespace WRI");
    let runtime = stack.runtime_id.to_string();
    let runtime_name = stack
        .get(KUBERNETES_RUNTIME_INSTANCE, stack.runtime_id)
        .await
        .expect("runtime")["Name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let replacements = [
        (ns.as_str(), "<user-namespace>"),
        (runtime.as_str(), "<runtime-id>"),
        (runtime_name.as_str(), "<runtime>"),
    ];
    let normalise = |v: &Value| replace_in_strings(v, &replacements);
    for wi in &instances {
        let name = wi["Name"]
            .as_str()
            .unwrap_or_default()
            .replace(&runtime_name, "<runtime>");
        let id = wi["ID"].as_u64().unwrap_or_default();
        for wri in stack.list_where(wri_ty, "workloadinstanceid", id).await {
            let def = &wri["JSONDefinition"];
            // The user's own resources are the workload controller's, compared elsewhere.
            if name == "web-app-0"
                && ["Namespace", "ConfigMap", "Deployment", "Service"]
                    .contains(&def["kind"].as_str().unwrap_or_default())
            {
                continue;
            }
            snap.insert(format!("api/WRI/{name}/{}", key_of(def)), normalise(def));
        }
    }
    for wd in stack.list_all(WORKLOAD_DEFINITION).await {
        let name = wd["Name"]
            .as_str()
            .unwrap_or_default()
            .replace(&runtime_name, "<runtime>");
        if name == "web-app" {
            continue;
        }
        for doc in documents(wd["YAMLDocument"].as_str().unwrap_or_default()) {
            snap.insert(
                format!("api/WorkloadDefinition/{name}/{}", key_of(&doc)),
                normalise(&doc),
            );
        }
    }
    for (av, kind) in [
        ("gateway.solo.io/v1", "VirtualService"),
        ("gateway.solo.io/v1", "Gateway"),
        ("cert-manager.io/v1", "Issuer"),
        ("cert-manager.io/v1", "Certificate"),
        ("gateway.support-services.nukleros.io/v1alpha1", "GlooEdge"),
        (
            "gateway.support-services.nukleros.io/v1alpha1",
            "ExternalDNS",
        ),
        (
            "certificates.support-services.nukleros.io/v1alpha1",
            "CertManager",
        ),
    ] {
        for o in stack.objects(av, kind, None).await {
            let ns = o["metadata"]["namespace"].as_str().unwrap_or_default();
            let name = o["metadata"]["name"].as_str().unwrap_or_default();
            snap.insert(
                normalise(&json!(format!("kube/{kind}/{ns}/{name}")))
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                normalise(&o["spec"]),
            );
        }
    }
    let kri = stack
        .get(KUBERNETES_RUNTIME_INSTANCE, stack.runtime_id)
        .await
        .expect("runtime");
    for field in ["GatewayWorkloadInstanceID", "DnsControllerInstanceId"] {
        let recorded = kri[field].as_u64().and_then(|id| {
            instances
                .iter()
                .find(|w| w["ID"].as_u64() == Some(id))
                .map(|w| w["Name"].clone())
        });
        snap.insert(
            format!("api/KubernetesRuntimeInstance/{field}"),
            normalise(&json!(recorded)),
        );
    }
    snap
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manager_builds_what_the_go_gateway_controller_builds() {
    let Some(go) = run(true).await else { return };
    let Some(manager) = run(false).await else {
        return;
    };
    // Both runs made everything the comparison is about.
    for snap in [&go, &manager] {
        for prefix in [
            "kube/VirtualService/<user-namespace>/app-example-com-443",
            "kube/Issuer/<user-namespace>/example-zone",
            "kube/Certificate/<user-namespace>/example-zone",
            "kube/GlooEdge//glooedge",
            "kube/CertManager//certmanager",
            "kube/ExternalDNS//externaldns",
            "api/WRI/web-app-0/VirtualService/app-example-com-443",
            "api/WRI/gloo-edge-<runtime>/GlooEdge/glooedge",
            "api/WorkloadDefinition/web-gw-gateway/VirtualService/app-example-com-443",
        ] {
            assert!(
                snap.contains_key(prefix),
                "{prefix} missing from {:#?}",
                snap.keys()
            );
        }
    }
    let mut differences = Vec::new();
    for key in go
        .keys()
        .chain(manager.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        if go.get(key) != manager.get(key) {
            differences.push(key.clone());
        }
    }
    let unexplained: Vec<String> = differences
        .iter()
        .filter(|k| !DELIBERATE.contains(&k.as_str()))
        .map(|k| {
            format!(
                "{k}\n  go:      {}\n  manager: {}",
                go.get(k).map_or("-".into(), Value::to_string),
                manager.get(k).map_or("-".into(), Value::to_string)
            )
        })
        .collect();
    assert!(
        unexplained.is_empty(),
        "unexplained differences:\n{}",
        unexplained.join("\n")
    );
    let stale: Vec<&&str> = DELIBERATE
        .iter()
        .filter(|d| !differences.iter().any(|k| k == **d))
        .collect();
    assert!(
        stale.is_empty(),
        "listed differences that no longer show: {stale:?}"
    );
    eprintln!(
        "compared {} keys ({:?}); {} deliberate differences",
        go.len().max(manager.len()),
        go.keys().collect::<Vec<_>>(),
        differences.len()
    );
}
