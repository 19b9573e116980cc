//! The workload controller end to end: a real nats-server, the sandbox Threeport API (with an
//! encryption key, as Threeport runs), the sandbox Kubernetes API registered as a runtime, and
//! the manager running the real WorkloadDefinition and WorkloadInstance reconcilers.
//!
//! Assertions count objects (exactly one namespace, N resources, N WRIs, one
//! ThreeportWorkload), not just their existence, because the Go controller's bugs were
//! duplicates and leaks (spec 4.3).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{api_client, fast_config, wait_until};
use sandbox::kube::{
    KubeRouteFilter, KubeSandbox, KubeSandboxHandle, KubeSandboxOptions, RuntimeAuth,
};
use sandbox::nats::NatsServer;
use sandbox::threeport::{RouteFilter, SandboxApi, SandboxHandle, SandboxOptions};
use serde_json::{json, Value};
use threeport_manager::engine::binding_for;
use threeport_manager::reconcilers::{handler_for, ReconcilerDeps};
use threeport_manager::runtime::{Manager, ManagerOptions};
use threeport_manager::threeport::crypto::EncryptionKey;
use threeport_manager::threeport::models::{WORKLOAD_DEFINITION, WORKLOAD_INSTANCE};
use threeport_manager::threeport::ThreeportApi;

const LIMIT: Duration = Duration::from_secs(60);
const INSTANCE_LABEL: &str = "control-plane.threeport.io/workload-instance";
const TW_API: &str = "control-plane.threeport.io/v1alpha1";

const WEB_APP: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  GREETING: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
";

/// The same app in a namespace the manifest names itself; the ConfigMap says
/// `namespace: default`, which must be overridden.
const CLIENT_NS_APP: &str = "\
apiVersion: v1
kind: Namespace
metadata:
  name: my-app
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: default
data:
  GREETING: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports:
  - port: 80
";

struct Env {
    _nats: NatsServer,
    sandbox: SandboxHandle,
    kube: KubeSandboxHandle,
    api: Arc<dyn ThreeportApi>,
    kri_id: u64,
    manager: Option<Manager>,
}

impl Env {
    async fn start() -> Self {
        let nats =
            NatsServer::start().expect("start nats-server (run scripts/install-nats-server.sh)");
        let (_, key_b64) = EncryptionKey::generate();
        let sandbox = SandboxApi::start(SandboxOptions {
            nats_url: Some(nats.url()),
            encryption_key: Some(key_b64.clone()),
            ..Default::default()
        })
        .await
        .expect("start sandbox API");
        let kube = KubeSandbox::start(KubeSandboxOptions::default())
            .await
            .expect("start kube sandbox");
        // Threeport's installer puts the ThreeportWorkload CRD on every runtime cluster.
        kube.install_threeport_workload_crd()
            .expect("install the ThreeportWorkload CRD");
        let kri_id = kube
            .register_runtime(&sandbox, "sandbox-runtime", RuntimeAuth::ClientCert)
            .await
            .expect("register runtime");
        let api = Arc::new(api_client(&sandbox)) as Arc<dyn ThreeportApi>;

        let mut config = fast_config(&nats.url(), &sandbox.api_server());
        config.encryption_key = Some(threeport_manager::config::Secret::new(key_b64));
        let deps = ReconcilerDeps::from_config(&config).expect("deps");

        let bindings = ["WorkloadDefinitionReconciler", "WorkloadInstanceReconciler"]
            .iter()
            .map(|n| {
                binding_for(n, handler_for(n, &deps).expect("implemented"), 4).expect("registry")
            })
            .collect();
        let manager = Manager::start(
            config,
            ManagerOptions {
                bindings: Some(bindings),
                api: Some(api.clone()),
            },
        )
        .await
        .expect("manager starts");
        wait_until(LIMIT, "manager ready", || async {
            manager.readiness().is_ready()
        })
        .await;
        Self {
            _nats: nats,
            sandbox,
            kube,
            api,
            kri_id,
            manager: Some(manager),
        }
    }

    async fn stop(mut self) {
        if let Some(m) = self.manager.take() {
            m.shutdown().await;
        }
    }

    async fn create_wd(&self, name: &str, yaml: &str) -> u64 {
        let o = self
            .api
            .create(
                WORKLOAD_DEFINITION,
                json!({"Name": name, "YAMLDocument": yaml}),
            )
            .await
            .expect("POST workload definition");
        assert_eq!(o["Reconciled"], false);
        o["ID"].as_u64().expect("ID")
    }

    async fn create_wi(&self, name: &str, wd: u64) -> u64 {
        let o = self
            .api
            .create(
                WORKLOAD_INSTANCE,
                json!({"Name": name, "WorkloadDefinitionID": wd, "KubernetesRuntimeInstanceID": self.kri_id}),
            )
            .await
            .expect("POST workload instance");
        o["ID"].as_u64().expect("ID")
    }

    async fn wait_reconciled(&self, path: &str, id: u64) {
        wait_until(LIMIT, &format!("{path} {id} reconciled"), || async {
            self.sandbox
                .get_object(path, id)
                .is_some_and(|o| o["Reconciled"] == true)
        })
        .await;
    }

    async fn wait_gone(&self, path: &str, id: u64) {
        wait_until(LIMIT, &format!("{path} {id} deleted"), || async {
            self.sandbox.get_object(path, id).is_none()
        })
        .await;
    }

    fn children(&self, path: &str, field: &str, id: u64) -> Vec<Value> {
        self.sandbox
            .list_objects(path)
            .into_iter()
            .filter(|o| o[field].as_u64() == Some(id))
            .collect()
    }

    fn wrds(&self, wd: u64) -> Vec<Value> {
        self.children("workload-resource-definitions", "WorkloadDefinitionID", wd)
    }

    fn wris(&self, wi: u64) -> Vec<Value> {
        self.children("workload-resource-instances", "WorkloadInstanceID", wi)
    }

    fn workload_events(&self, wi: u64) -> Vec<Value> {
        self.children("workload-events", "WorkloadInstanceID", wi)
    }

    /// Namespaces carrying the instance label.
    fn namespaces_of(&self, wi: u64) -> Vec<Value> {
        labelled(self.kube.objects("v1", "Namespace", None), wi)
    }

    /// Every object of the three app kinds carrying the instance label, anywhere.
    fn app_objects_of(&self, wi: u64) -> Vec<Value> {
        let mut out = Vec::new();
        for (av, kind) in [
            ("v1", "ConfigMap"),
            ("apps/v1", "Deployment"),
            ("v1", "Service"),
        ] {
            out.extend(labelled(self.kube.objects(av, kind, None), wi));
        }
        out
    }

    fn threeport_workload(&self, wi: u64) -> Option<Value> {
        self.kube.get_object(
            TW_API,
            "ThreeportWorkload",
            None,
            &format!("workload-instance-{wi}"),
        )
    }

    fn threeport_workloads(&self) -> usize {
        self.kube.objects(TW_API, "ThreeportWorkload", None).len()
    }
}

fn labelled(objects: Vec<Value>, wi: u64) -> Vec<Value> {
    objects
        .into_iter()
        .filter(|o| {
            o["metadata"]["labels"][INSTANCE_LABEL]
                .as_str()
                .and_then(|s| s.parse::<u64>().ok())
                == Some(wi)
        })
        .collect()
}

fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or_default()
}

/// Threeport's five labels (spec 3.1.4) on an object.
fn assert_threeport_labels(o: &Value, wd_name: &str, wi_name: &str, wi: u64) {
    let l = &o["metadata"]["labels"];
    assert_eq!(l["app.kubernetes.io/managed-by"], "threeport", "{o}");
    assert_eq!(l["app.kubernetes.io/name"], wd_name, "{o}");
    assert_eq!(l["app.kubernetes.io/instance"], wi_name, "{o}");
    assert_eq!(l[INSTANCE_LABEL], wi.to_string(), "{o}");
    assert_eq!(
        l["control-plane.threeport.io/managed-by"], "threeport",
        "{o}"
    );
}

/// Everything a deployed three-resource app must look like: exactly one namespace with the
/// instance label, the three objects in it with labels (pod template too), one WRI per object
/// (namespace included) all reconciled, one ThreeportWorkload listing each WRI.
fn assert_deployed(
    env: &Env,
    wd_name: &str,
    wi_name: &str,
    wi: u64,
    expect_ns: Option<&str>,
) -> String {
    let namespaces = env.namespaces_of(wi);
    assert_eq!(namespaces.len(), 1, "exactly one namespace: {namespaces:?}");
    let ns = name(&namespaces[0]).to_string();
    match expect_ns {
        Some(n) => assert_eq!(ns, n),
        None => assert!(ns.starts_with(&format!("{wi_name}-")), "{ns}"),
    }
    assert_threeport_labels(&namespaces[0], wd_name, wi_name, wi);
    let objects = env.app_objects_of(wi);
    assert_eq!(objects.len(), 3, "{objects:?}");
    for o in &objects {
        assert_eq!(o["metadata"]["namespace"], ns.as_str(), "{o}");
        assert_threeport_labels(o, wd_name, wi_name, wi);
    }
    let dep = env
        .kube
        .get_object("apps/v1", "Deployment", Some(&ns), "web")
        .expect("deployment");
    let tl = &dep["spec"]["template"]["metadata"]["labels"];
    assert_eq!(tl[INSTANCE_LABEL], wi.to_string());
    assert_eq!(tl["control-plane.threeport.io/managed-by"], "threeport");
    assert_eq!(tl["app"], "web");
    assert!(env
        .kube
        .get_object("v1", "ConfigMap", Some("default"), "web-config")
        .is_none());

    let wris = env.wris(wi);
    assert_eq!(wris.len(), 4, "{wris:?}");
    assert!(wris.iter().all(|w| w["Reconciled"] == true), "{wris:?}");
    let tw = env.threeport_workload(wi).expect("ThreeportWorkload");
    assert_eq!(tw["spec"]["workloadType"], "WorkloadInstance");
    assert_eq!(tw["spec"]["workloadInstanceId"], wi);
    let listed = tw["spec"]["workloadResourceInstances"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(listed.len(), 4, "{tw}");
    let mut wri_ids: Vec<u64> = wris.iter().filter_map(|w| w["ID"].as_u64()).collect();
    let mut tw_ids: Vec<u64> = listed
        .iter()
        .filter_map(|r| r["threeportID"].as_u64())
        .collect();
    wri_ids.sort_unstable();
    tw_ids.sort_unstable();
    assert_eq!(wri_ids, tw_ids);
    ns
}

async fn delete_and_assert_clean(env: &Env, wi: u64, ns: &str) {
    env.api
        .delete(WORKLOAD_INSTANCE, wi)
        .await
        .expect("DELETE instance");
    env.wait_gone("workload-instances", wi).await;
    assert!(env.namespaces_of(wi).is_empty());
    assert!(env.kube.get_object("v1", "Namespace", None, ns).is_none());
    assert!(env.app_objects_of(wi).is_empty());
    assert!(env.threeport_workload(wi).is_none());
    assert!(env.wris(wi).is_empty());
    assert!(env.workload_events(wi).is_empty());
}

#[tokio::test]
async fn managed_namespace_workload_end_to_end() {
    let env = Env::start().await;
    let wd = env.create_wd("managed-namespace-workload", WEB_APP).await;
    let dup = env
        .api
        .create(
            WORKLOAD_DEFINITION,
            json!({"Name": "managed-namespace-workload", "YAMLDocument": WEB_APP}),
        )
        .await
        .expect_err("duplicate definition name");
    assert_eq!(dup.status(), Some(409));
    env.wait_reconciled("workload-definitions", wd).await;
    let wrds = env.wrds(wd);
    assert_eq!(wrds.len(), 3, "one WRD per YAML document");
    for (w, kind) in wrds.iter().zip(["ConfigMap", "Deployment", "Service"]) {
        assert!(w["ID"].is_u64() && w["CreatedAt"].is_string() && w["UpdatedAt"].is_string());
        assert_eq!(w["JSONDefinition"]["kind"], kind);
    }

    let wi = env.create_wi("managed-namespace-workload", wd).await;
    let dup = env
        .api
        .create(
            WORKLOAD_INSTANCE,
            json!({"Name": "managed-namespace-workload", "WorkloadDefinitionID": wd, "KubernetesRuntimeInstanceID": env.kri_id}),
        )
        .await
        .expect_err("duplicate instance name");
    assert_eq!(dup.status(), Some(409));
    env.wait_reconciled("workload-instances", wi).await;
    let ns = assert_deployed(
        &env,
        "managed-namespace-workload",
        "managed-namespace-workload",
        wi,
        None,
    );
    let managed: Vec<Value> = env
        .kube
        .objects("v1", "Namespace", None)
        .into_iter()
        .filter(|n| n["metadata"]["labels"]["control-plane.threeport.io/managed-by"] == "threeport")
        .collect();
    assert_eq!(managed.len(), 1);

    // The definition cannot go while an instance uses it.
    let e = env
        .api
        .delete(WORKLOAD_DEFINITION, wd)
        .await
        .expect_err("definition with instances");
    assert_eq!(e.status(), Some(409));

    delete_and_assert_clean(&env, wi, &ns).await;
    assert_eq!(env.threeport_workloads(), 0);

    env.api
        .delete(WORKLOAD_DEFINITION, wd)
        .await
        .expect("DELETE definition");
    env.wait_gone("workload-definitions", wd).await;
    assert!(env.wrds(wd).is_empty());
    env.stop().await;
}

#[tokio::test]
async fn client_namespace_workload_end_to_end() {
    let env = Env::start().await;
    let wd = env
        .create_wd("unmanaged-namespace-workload", CLIENT_NS_APP)
        .await;
    env.wait_reconciled("workload-definitions", wd).await;
    assert_eq!(env.wrds(wd).len(), 4);
    let wi = env.create_wi("unmanaged-namespace-workload", wd).await;
    env.wait_reconciled("workload-instances", wi).await;
    let ns = assert_deployed(
        &env,
        "unmanaged-namespace-workload",
        "unmanaged-namespace-workload",
        wi,
        Some("my-app"),
    );
    // No managed namespace was generated besides the manifest's.
    assert_eq!(
        env.kube
            .objects("v1", "Namespace", None)
            .iter()
            .filter(|n| name(n).starts_with("unmanaged"))
            .count(),
        0
    );
    let e = env
        .api
        .delete(WORKLOAD_DEFINITION, wd)
        .await
        .expect_err("in use");
    assert_eq!(e.status(), Some(409));
    delete_and_assert_clean(&env, wi, &ns).await;
    env.stop().await;
}

#[tokio::test]
async fn two_instances_get_two_namespaces_and_default_is_overridden() {
    let env = Env::start().await;
    let yaml = WEB_APP.replacen(
        "  name: web-config\n",
        "  name: web-config\n  namespace: default\n",
        1,
    );
    let wd = env.create_wd("wordpress-def", &yaml).await;
    env.wait_reconciled("workload-definitions", wd).await;
    let a = env.create_wi("wordpress-inst-01", wd).await;
    let b = env.create_wi("wordpress-inst-02", wd).await;
    env.wait_reconciled("workload-instances", a).await;
    env.wait_reconciled("workload-instances", b).await;
    let ns_a = assert_deployed(&env, "wordpress-def", "wordpress-inst-01", a, None);
    let ns_b = assert_deployed(&env, "wordpress-def", "wordpress-inst-02", b, None);
    assert_ne!(ns_a, ns_b);
    assert!(env
        .kube
        .objects("v1", "ConfigMap", Some("default"))
        .is_empty());
    delete_and_assert_clean(&env, a, &ns_a).await;
    // The other instance is untouched.
    assert_deployed(&env, "wordpress-def", "wordpress-inst-02", b, None);
    delete_and_assert_clean(&env, b, &ns_b).await;
    env.stop().await;
}

#[tokio::test]
async fn instance_created_before_its_definition_is_reconciled() {
    let env = Env::start().await;
    // Keep the definition unreconciled for a few attempts.
    env.sandbox.faults().fail_next(
        3,
        500,
        RouteFilter {
            method: Some("POST"),
            route_prefix: Some("/v0/workload-resource-definition-sets".into()),
        },
    );
    let wd = env.create_wd("early", WEB_APP).await;
    let wi = env.create_wi("early-0", wd).await;
    env.wait_reconciled("workload-instances", wi).await;
    assert_eq!(
        env.sandbox
            .counters()
            .get("POST", "/v0/workload-resource-definition-sets", 500),
        3
    );
    assert!(env
        .sandbox
        .get_object("workload-definitions", wd)
        .is_some_and(|o| o["Reconciled"] == true));
    assert_eq!(env.wrds(wd).len(), 3);
    let ns = assert_deployed(&env, "early", "early-0", wi, None);
    // The instance really arrived first: it was requeued while the definition was failing.
    let requeues = env
        .manager
        .as_ref()
        .map(|m| m.metrics().render())
        .unwrap_or_default()
        .lines()
        .find(|l| {
            l.starts_with("threeport_reconcile_total{")
                && l.contains("reconciler=\"WorkloadInstanceReconciler\"")
                && l.contains("result=\"requeue\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(requeues >= 1.0, "instance requeues: {requeues}");
    // Waiting is a requeue, not a failure: no failure event on the instance.
    let failures: Vec<Value> = env
        .sandbox
        .list_objects("events")
        .into_iter()
        .filter(|e| {
            e["Reason"] == "FailedCreate"
                && e["Note"]
                    .as_str()
                    .is_some_and(|n| n.contains("workload instance"))
        })
        .collect();
    assert!(failures.is_empty(), "{failures:?}");
    delete_and_assert_clean(&env, wi, &ns).await;
    env.stop().await;
}

#[tokio::test]
async fn sixty_resources_in_one_definition_all_deploy() {
    let env = Env::start().await;
    let yaml: String = (0..60)
        .map(|i| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i:02}\ndata:\n  i: \"{i}\"\n"))
        .collect::<Vec<_>>()
        .join("---\n");
    let wd = env.create_wd("many", &yaml).await;
    env.wait_reconciled("workload-definitions", wd).await;
    assert_eq!(env.wrds(wd).len(), 60);
    let wi = env.create_wi("many-0", wd).await;
    env.wait_reconciled("workload-instances", wi).await;
    let namespaces = env.namespaces_of(wi);
    assert_eq!(namespaces.len(), 1);
    let ns = name(&namespaces[0]).to_string();
    assert_eq!(
        labelled(env.kube.objects("v1", "ConfigMap", Some(&ns)), wi).len(),
        60
    );
    assert_eq!(env.wris(wi).len(), 61);
    let tw = env.threeport_workload(wi).expect("TW");
    assert_eq!(
        tw["spec"]["workloadResourceInstances"]
            .as_array()
            .map(Vec::len),
        Some(61)
    );
    env.api.delete(WORKLOAD_INSTANCE, wi).await.expect("DELETE");
    env.wait_gone("workload-instances", wi).await;
    assert!(env.wris(wi).is_empty());
    assert!(env.kube.objects("v1", "ConfigMap", Some(&ns)).is_empty());
    assert!(env.namespaces_of(wi).is_empty());
    env.api
        .delete(WORKLOAD_DEFINITION, wd)
        .await
        .expect("DELETE WD");
    env.wait_gone("workload-definitions", wd).await;
    assert!(env.wrds(wd).is_empty(), "every page of WRDs deleted");
    env.stop().await;
}

#[tokio::test]
async fn invalid_yaml_is_an_event_and_the_definition_stays_unreconciled() {
    let env = Env::start().await;
    let wd = env
        .create_wd("broken", "apiVersion: v1\nkind: [ConfigMap\n")
        .await;
    wait_until(LIMIT, "FailedCreate event for the definition", || async {
        env.sandbox.list_objects("events").iter().any(|e| {
            e["Reason"] == "FailedCreate"
                && e["Note"]
                    .as_str()
                    .is_some_and(|n| n.contains("invalid YAMLDocument"))
        })
    })
    .await;
    assert!(env
        .sandbox
        .get_object("workload-definitions", wd)
        .is_some_and(|o| o["Reconciled"] == false));
    assert!(env.wrds(wd).is_empty());
    env.stop().await;
}

fn kube_fault(env: &Env, verb: &'static str, resource: &str, n: usize) {
    env.kube.faults().fail_next(
        n,
        500,
        KubeRouteFilter {
            verb: Some(verb),
            resource: Some(resource.into()),
        },
    );
}

fn api_fault(env: &Env, method: &'static str, prefix: &str, n: usize) {
    env.sandbox.faults().fail_next(
        n,
        500,
        RouteFilter {
            method: Some(method),
            route_prefix: Some(prefix.into()),
        },
    );
}

#[tokio::test]
async fn faults_during_create_and_delete_converge_to_exactly_one_copy() {
    let env = Env::start().await;
    let wd = env.create_wd("faulty", WEB_APP).await;
    env.wait_reconciled("workload-definitions", wd).await;

    // Create: Kubernetes refuses a write at several points, the API refuses a WRI POST, and
    // the engine's final `Reconciled` PATCH fails, so the whole Created reconcile reruns after
    // it had fully succeeded.
    kube_fault(&env, "patch", "deployments", 1);
    kube_fault(&env, "patch", "services", 2);
    kube_fault(&env, "patch", "threeportworkloads", 1);
    api_fault(&env, "POST", "/v0/workload-resource-instances", 2);
    api_fault(&env, "PATCH", "/v0/workload-instances", 1);
    let wi = env.create_wi("faulty-0", wd).await;
    env.wait_reconciled("workload-instances", wi).await;
    let ns = assert_deployed(&env, "faulty", "faulty-0", wi, None);
    assert_eq!(env.threeport_workloads(), 1);
    // Every injected fault was hit (so the retries above really happened).
    let k = env.kube.counters();
    assert_eq!(k.get_status("patch", "deployments", 500), 1);
    assert_eq!(k.get_status("patch", "services", 500), 2);
    assert_eq!(k.get_status("patch", "threeportworkloads", 500), 1);
    let c = env.sandbox.counters();
    assert_eq!(c.get("POST", "/v0/workload-resource-instances", 500), 2);
    assert_eq!(c.get("PATCH", "/v0/workload-instances/{id}", 500), 1);
    // Spec 3.2.2 step 9b: each Kubernetes failure posted a WorkloadEvent.
    let events = env.workload_events(wi);
    assert!(
        events
            .iter()
            .any(|e| e["Reason"] == "CreateResourceError" && e["Type"] == "Failed"),
        "{events:?}"
    );

    // Delete: a Kubernetes delete, a WRI DELETE and the workload-events DELETE fail once.
    kube_fault(&env, "delete", "configmaps", 1);
    kube_fault(&env, "delete", "threeportworkloads", 1);
    api_fault(&env, "DELETE", "/v0/workload-resource-instances", 1);
    api_fault(&env, "DELETE", "/v0/workload-events", 1);
    delete_and_assert_clean(&env, wi, &ns).await;
    assert_eq!(env.threeport_workloads(), 0);
    assert!(env
        .kube
        .objects("v1", "Namespace", None)
        .iter()
        .all(|n| name(n) != ns));
    let k = env.kube.counters();
    assert_eq!(k.get_status("delete", "configmaps", 500), 1);
    assert_eq!(k.get_status("delete", "threeportworkloads", 500), 1);
    let c = env.sandbox.counters();
    assert_eq!(
        c.get("DELETE", "/v0/workload-resource-instances/{id}", 500),
        1
    );
    assert_eq!(c.get("DELETE", "/v0/workload-events", 500), 1);
    env.stop().await;
}

#[tokio::test]
async fn delete_without_events_still_removes_the_threeport_workload() {
    // Go leaks the ThreeportWorkload when an instance had no workload events (spec 4.3 #24).
    let env = Env::start().await;
    let wd = env.create_wd("quiet", WEB_APP).await;
    env.wait_reconciled("workload-definitions", wd).await;
    let wi = env.create_wi("quiet-0", wd).await;
    env.wait_reconciled("workload-instances", wi).await;
    assert!(env.workload_events(wi).is_empty());
    let ns = assert_deployed(&env, "quiet", "quiet-0", wi, None);
    delete_and_assert_clean(&env, wi, &ns).await;
    assert_eq!(env.threeport_workloads(), 0);
    env.stop().await;
}

#[tokio::test]
async fn update_applies_new_resources_and_deletes_scheduled_ones() {
    let env = Env::start().await;
    let wd = env.create_wd("upd", WEB_APP).await;
    env.wait_reconciled("workload-definitions", wd).await;
    let wi = env.create_wi("upd-0", wd).await;
    env.wait_reconciled("workload-instances", wi).await;
    let ns = assert_deployed(&env, "upd", "upd-0", wi, None);

    // Another controller adds a resource (in `default`, which must be overridden) and
    // schedules the Service for deletion, then un-reconciles the instance.
    let added = env
        .api
        .create(
            threeport_manager::threeport::models::WORKLOAD_RESOURCE_INSTANCE,
            json!({"JSONDefinition": {"apiVersion":"v1","kind":"Secret","metadata":{"name":"db","namespace":"default"}},
                   "WorkloadInstanceID": wi, "Reconciled": false}),
        )
        .await
        .expect("POST WRI");
    let added_id = added["ID"].as_u64().expect("ID");
    let svc = env
        .wris(wi)
        .into_iter()
        .find(|w| w["JSONDefinition"]["kind"] == "Service")
        .expect("service WRI");
    let svc_id = svc["ID"].as_u64().expect("ID");
    env.api
        .patch(
            threeport_manager::threeport::models::WORKLOAD_RESOURCE_INSTANCE,
            svc_id,
            json!({"ScheduledForDeletion": "2026-01-01T00:00:00Z", "Reconciled": false}),
        )
        .await
        .expect("schedule deletion");
    env.api
        .patch(WORKLOAD_INSTANCE, wi, json!({"Reconciled": false}))
        .await
        .expect("un-reconcile");
    env.wait_reconciled("workload-instances", wi).await;
    wait_until(LIMIT, "secret applied and service removed", || async {
        env.kube
            .get_object("v1", "Secret", Some(&ns), "db")
            .is_some()
            && env
                .kube
                .get_object("v1", "Service", Some(&ns), "web")
                .is_none()
    })
    .await;
    let secret = env
        .kube
        .get_object("v1", "Secret", Some(&ns), "db")
        .expect("secret");
    assert_threeport_labels(&secret, "upd", "upd-0", wi);
    let wris = env.wris(wi);
    assert_eq!(wris.len(), 4, "{wris:?}");
    assert!(wris.iter().all(|w| w["Reconciled"] == true));
    assert!(env
        .sandbox
        .get_object("workload-resource-instances", svc_id)
        .is_none());
    let added = env
        .sandbox
        .get_object("workload-resource-instances", added_id)
        .expect("added WRI");
    assert_eq!(
        added["JSONDefinition"]["metadata"]["namespace"],
        ns.as_str()
    );
    let tw = env.threeport_workload(wi).expect("TW");
    let listed = tw["spec"]["workloadResourceInstances"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(listed.len(), 4);
    assert!(listed
        .iter()
        .any(|r| r["threeportID"] == added_id && r["kind"] == "Secret"));
    assert!(!listed.iter().any(|r| r["threeportID"] == svc_id));

    env.api.delete(WORKLOAD_INSTANCE, wi).await.expect("DELETE");
    env.wait_gone("workload-instances", wi).await;
    assert!(env.namespaces_of(wi).is_empty());
    assert!(env
        .kube
        .get_object("v1", "Secret", Some(&ns), "db")
        .is_none());
    assert!(env.wris(wi).is_empty());
    assert_eq!(env.threeport_workloads(), 0);
    env.stop().await;
}

#[tokio::test]
async fn deleting_an_instance_whose_create_keeps_failing_leaves_nothing_behind() {
    // The namespace is applied, then every WRI POST fails: no WRI records it. Deleting the
    // instance must still remove it (found by its labels), and everything else.
    let env = Env::start().await;
    let wd = env.create_wd("stuck", WEB_APP).await;
    env.wait_reconciled("workload-definitions", wd).await;
    api_fault(&env, "POST", "/v0/workload-resource-instances", 1_000);
    let wi = env.create_wi("stuck-0", wd).await;
    wait_until(LIMIT, "managed namespace applied", || async {
        env.namespaces_of(wi).len() == 1
    })
    .await;
    assert!(env.wris(wi).is_empty());
    env.api
        .delete(WORKLOAD_INSTANCE, wi)
        .await
        .expect("DELETE instance");
    env.wait_gone("workload-instances", wi).await;
    env.sandbox.faults().clear();
    assert!(env.namespaces_of(wi).is_empty());
    assert!(env.app_objects_of(wi).is_empty());
    assert!(env.threeport_workload(wi).is_none());
    assert!(env.wris(wi).is_empty());
    env.stop().await;
}

#[tokio::test]
async fn a_crd_and_its_custom_resource_in_one_definition() {
    // Go always fails here (spec 4.3 #27); the CR is listed before its CRD on purpose.
    let env = Env::start().await;
    let yaml = "\
apiVersion: example.io/v1
kind: Widget
metadata:
  name: w1
spec:
  size: 3
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.io
spec:
  group: example.io
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    listKind: WidgetList
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
";
    let wd = env.create_wd("widgets", yaml).await;
    env.wait_reconciled("workload-definitions", wd).await;
    let wi = env.create_wi("widgets-0", wd).await;
    env.wait_reconciled("workload-instances", wi).await;
    let namespaces = env.namespaces_of(wi);
    assert_eq!(namespaces.len(), 1);
    let ns = name(&namespaces[0]).to_string();
    let w = env
        .kube
        .get_object("example.io/v1", "Widget", Some(&ns), "w1")
        .expect("custom resource in the managed namespace");
    assert_eq!(w["spec"]["size"], 3);
    assert_eq!(env.wris(wi).len(), 3, "namespace, CRD, widget");
    env.api
        .delete(WORKLOAD_INSTANCE, wi)
        .await
        .expect("DELETE instance");
    env.wait_gone("workload-instances", wi).await;
    assert!(env.namespaces_of(wi).is_empty());
    assert!(env
        .kube
        .objects("apiextensions.k8s.io/v1", "CustomResourceDefinition", None)
        .iter()
        .all(|c| name(c) != "widgets.example.io"));
    assert!(env.wris(wi).is_empty());
    env.stop().await;
}
