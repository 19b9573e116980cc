//! The workload controller's end-to-end scenarios, written once against a [`Stack`] and run on
//! both backends: `tests/workload.rs` (sandbox, plus the fault-injection scenarios that only
//! the sandbox can stage) and `tests/upstream_workload.rs` (real kube-apiserver, real Threeport
//! API on PostgreSQL).
//!
//! Assertions count objects (exactly one namespace, N resources, N WRIs, one
//! ThreeportWorkload), not just their existence, because the Go controller's bugs were
//! duplicates and leaks (spec 4.3). Everything is read back through the Threeport REST API and
//! the Kubernetes API.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use threeport_manager::engine::binding_for;
use threeport_manager::reconcilers::{handler_for, ReconcilerDeps};
use threeport_manager::runtime::{Manager, ManagerOptions};
use threeport_manager::threeport::models::{
    EVENT, WORKLOAD_DEFINITION, WORKLOAD_EVENT, WORKLOAD_INSTANCE, WORKLOAD_RESOURCE_DEFINITION,
    WORKLOAD_RESOURCE_INSTANCE,
};
use threeport_manager::threeport::ThreeportApi;

use crate::harness::backend::Stack;
pub use crate::harness::common::wait_until;

/// How long any one condition may take. The real kube-apiserver deletes a namespace through
/// the namespace controller, which takes seconds; everything else settles well within this.
pub const LIMIT: Duration = Duration::from_secs(90);
pub use crate::harness::backend::TW_API;
pub use crate::harness::workload_env::INSTANCE_LABEL;

pub const WEB_APP: &str = crate::harness::workload_env::WEB_APP_YAML;

/// The same app in a namespace the manifest names itself; the ConfigMap says
/// `namespace: default`, which must be overridden.
/// A custom resource listed before the CRD that defines it (Widget `w1`, `example.io/v1`).
pub const WIDGET_CR_BEFORE_ITS_CRD: &str =
    include_str!("../../fixtures/manifests/widget-cr-before-its-crd.yaml");

pub const CLIENT_NS_APP: &str = include_str!("../../fixtures/manifests/web-app-own-namespace.yaml");

/// A stack with the manager's workload reconcilers running in process (4 workers each).
pub struct Env {
    pub stack: Stack,
    pub api: Arc<dyn ThreeportApi>,
    pub manager: Option<Manager>,
}

impl Env {
    pub async fn start(stack: Stack) -> Self {
        Self::start_with(
            stack,
            &["WorkloadDefinitionReconciler", "WorkloadInstanceReconciler"],
        )
        .await
    }

    /// The stack with these reconcilers (Threeport names) running in process, 4 workers each.
    pub async fn start_with(stack: Stack, reconcilers: &[&str]) -> Self {
        let config = stack.config();
        Self::start_with_config(stack, config, reconcilers).await
    }

    /// [`start_with`](Self::start_with), with `config` (the stack's, changed) instead of the
    /// stack's.
    pub async fn start_with_config(
        stack: Stack,
        config: threeport_manager::config::Config,
        reconcilers: &[&str],
    ) -> Self {
        let deps = ReconcilerDeps::from_config(&config).expect("deps");
        let bindings = reconcilers
            .iter()
            .map(|n| {
                binding_for(n, handler_for(n, &deps).expect("implemented"), 4).expect("registry")
            })
            .collect();
        let api = stack.api.clone();
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
        Env {
            stack,
            api,
            manager: Some(manager),
        }
    }

    pub async fn stop(mut self) {
        if let Some(m) = self.manager.take() {
            m.shutdown().await;
        }
    }

    /// Stop the in-process manager and hand back the stack.
    pub async fn into_stack(mut self) -> Stack {
        if let Some(m) = self.manager.take() {
            m.shutdown().await;
        }
        self.stack
    }

    pub async fn create_wd(&self, name: &str, yaml: &str) -> u64 {
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

    pub async fn create_wi(&self, name: &str, wd: u64) -> u64 {
        let o = self
            .api
            .create(
                WORKLOAD_INSTANCE,
                json!({"Name": name, "WorkloadDefinitionID": wd, "KubernetesRuntimeInstanceID": self.stack.runtime_id}),
            )
            .await
            .expect("POST workload instance");
        o["ID"].as_u64().expect("ID")
    }

    pub async fn wait_reconciled(&self, ty: threeport_manager::threeport::ObjectType, id: u64) {
        wait_until(LIMIT, &format!("{} {id} reconciled", ty.path), || async {
            self.stack
                .get(ty, id)
                .await
                .is_some_and(|o| o["Reconciled"] == true)
        })
        .await;
    }

    pub async fn wait_gone(&self, ty: threeport_manager::threeport::ObjectType, id: u64) {
        wait_until(LIMIT, &format!("{} {id} deleted", ty.path), || async {
            self.stack.get(ty, id).await.is_none()
        })
        .await;
    }

    pub async fn wrds(&self, wd: u64) -> Vec<Value> {
        self.stack
            .list_where(WORKLOAD_RESOURCE_DEFINITION, "workloaddefinitionid", wd)
            .await
    }

    pub async fn wris(&self, wi: u64) -> Vec<Value> {
        self.stack
            .list_where(WORKLOAD_RESOURCE_INSTANCE, "workloadinstanceid", wi)
            .await
    }

    pub async fn workload_events(&self, wi: u64) -> Vec<Value> {
        self.stack
            .list_where(WORKLOAD_EVENT, "workloadinstanceid", wi)
            .await
    }

    /// Namespaces carrying the instance label (Terminating ones included).
    pub async fn namespaces_of(&self, wi: u64) -> Vec<Value> {
        labelled(self.stack.objects("v1", "Namespace", None).await, wi)
    }

    /// Every object of the three app kinds carrying the instance label, anywhere.
    pub async fn app_objects_of(&self, wi: u64) -> Vec<Value> {
        let mut out = Vec::new();
        for (av, kind) in [
            ("v1", "ConfigMap"),
            ("apps/v1", "Deployment"),
            ("v1", "Service"),
        ] {
            out.extend(labelled(self.stack.objects(av, kind, None).await, wi));
        }
        out
    }

    pub async fn threeport_workload(&self, wi: u64) -> Option<Value> {
        self.stack
            .object(
                TW_API,
                "ThreeportWorkload",
                None,
                &format!("workload-instance-{wi}"),
            )
            .await
    }

    pub async fn threeport_workloads(&self) -> usize {
        self.stack
            .objects(TW_API, "ThreeportWorkload", None)
            .await
            .len()
    }

    /// Wait until no namespace carries the instance label and `ns` is gone: on a real cluster
    /// a deleted namespace is Terminating until the namespace controller has emptied it.
    pub async fn wait_namespace_gone(&self, wi: u64, ns: &str) {
        wait_until(LIMIT, &format!("namespace {ns} gone"), || async {
            self.namespaces_of(wi).await.is_empty()
                && self
                    .stack
                    .object("v1", "Namespace", None, ns)
                    .await
                    .is_none()
        })
        .await;
    }

    /// The manager's in-process metrics, as Prometheus text.
    pub fn metrics(&self) -> String {
        self.manager
            .as_ref()
            .map(|m| m.metrics().render())
            .unwrap_or_default()
    }
}

pub fn labelled(objects: Vec<Value>, wi: u64) -> Vec<Value> {
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

pub fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or_default()
}

/// Threeport's five labels (spec 3.1.4) on an object.
pub fn assert_threeport_labels(o: &Value, wd_name: &str, wi_name: &str, wi: u64) {
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
pub async fn assert_deployed(
    env: &Env,
    wd_name: &str,
    wi_name: &str,
    wi: u64,
    expect_ns: Option<&str>,
) -> String {
    let namespaces = env.namespaces_of(wi).await;
    assert_eq!(namespaces.len(), 1, "exactly one namespace: {namespaces:?}");
    let ns = name(&namespaces[0]).to_string();
    match expect_ns {
        Some(n) => assert_eq!(ns, n),
        None => assert!(ns.starts_with(&format!("{wi_name}-")), "{ns}"),
    }
    assert_threeport_labels(&namespaces[0], wd_name, wi_name, wi);
    let objects = env.app_objects_of(wi).await;
    assert_eq!(objects.len(), 3, "{objects:?}");
    for o in &objects {
        assert_eq!(o["metadata"]["namespace"], ns.as_str(), "{o}");
        assert_threeport_labels(o, wd_name, wi_name, wi);
    }
    let dep = env
        .stack
        .object("apps/v1", "Deployment", Some(&ns), "web")
        .await
        .expect("deployment");
    let tl = &dep["spec"]["template"]["metadata"]["labels"];
    assert_eq!(tl[INSTANCE_LABEL], wi.to_string());
    assert_eq!(tl["control-plane.threeport.io/managed-by"], "threeport");
    assert_eq!(tl["app"], "web");
    assert!(env
        .stack
        .object("v1", "ConfigMap", Some("default"), "web-config")
        .await
        .is_none());

    let wris = env.wris(wi).await;
    assert_eq!(wris.len(), 4, "{wris:?}");
    assert!(wris.iter().all(|w| w["Reconciled"] == true), "{wris:?}");
    let tw = env.threeport_workload(wi).await.expect("ThreeportWorkload");
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

/// Delete the instance; afterwards nothing of it is left: the namespace really gone (not
/// Terminating), no labelled object, no ThreeportWorkload, no WRI, no workload event.
pub async fn delete_and_assert_clean(env: &Env, wi: u64, ns: &str) {
    env.api
        .delete(WORKLOAD_INSTANCE, wi)
        .await
        .expect("DELETE instance");
    env.wait_gone(WORKLOAD_INSTANCE, wi).await;
    env.wait_namespace_gone(wi, ns).await;
    assert!(env.app_objects_of(wi).await.is_empty());
    assert!(env.threeport_workload(wi).await.is_none());
    assert!(env.wris(wi).await.is_empty());
    assert!(env.workload_events(wi).await.is_empty());
}

// --- scenarios ----------------------------------------------------------------------------

/// One `#[tokio::test]` per scenario below, each on a fresh stack from `$stack` (an
/// expression giving `Option<Stack>`; `None` skips, as the real stack does when unbuilt).
/// Needs `#[macro_use] mod harness;` and `use harness::workload_suite;`.
#[allow(unused_macros)] // used by the suites that run every scenario, not by every includer
macro_rules! workload_scenario_tests {
    ($stack:expr) => {
        workload_scenario_tests!(@each $stack;
            managed_namespace_workload_end_to_end,
            client_namespace_workload_end_to_end,
            two_instances_get_two_namespaces_and_default_is_overridden,
            instance_created_before_its_definition_is_reconciled,
            sixty_resources_in_one_definition_all_deploy,
            invalid_yaml_is_an_event_and_the_definition_stays_unreconciled,
            delete_without_events_still_removes_the_threeport_workload,
            update_applies_new_resources_and_deletes_scheduled_ones,
            a_crd_and_its_custom_resource_in_one_definition,
        );
    };
    (@each $stack:expr; $($scenario:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $scenario() {
            let Some(stack) = $stack else { return };
            let env = workload_suite::Env::start(stack).await;
            workload_suite::$scenario(&env).await;
            env.stop().await;
        }
    )*};
}

/// Spec 5.1, managed namespace: WRDs per document, duplicate names refused, the deployed app,
/// the definition refused while in use, delete removes everything.
pub async fn managed_namespace_workload_end_to_end(env: &Env) {
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
    env.wait_reconciled(WORKLOAD_DEFINITION, wd).await;
    let mut wrds = env.wrds(wd).await;
    wrds.sort_by_key(|w| w["ID"].as_u64());
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
            json!({"Name": "managed-namespace-workload", "WorkloadDefinitionID": wd, "KubernetesRuntimeInstanceID": env.stack.runtime_id}),
        )
        .await
        .expect_err("duplicate instance name");
    assert_eq!(dup.status(), Some(409));
    env.wait_reconciled(WORKLOAD_INSTANCE, wi).await;
    let ns = assert_deployed(
        env,
        "managed-namespace-workload",
        "managed-namespace-workload",
        wi,
        None,
    )
    .await;
    let managed: Vec<Value> = env
        .stack
        .objects("v1", "Namespace", None)
        .await
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

    delete_and_assert_clean(env, wi, &ns).await;
    assert_eq!(env.threeport_workloads().await, 0);

    env.api
        .delete(WORKLOAD_DEFINITION, wd)
        .await
        .expect("DELETE definition");
    env.wait_gone(WORKLOAD_DEFINITION, wd).await;
    assert!(env.wrds(wd).await.is_empty());
}

/// Spec 5.1, a namespace named by the manifest.
pub async fn client_namespace_workload_end_to_end(env: &Env) {
    let wd = env
        .create_wd("unmanaged-namespace-workload", CLIENT_NS_APP)
        .await;
    env.wait_reconciled(WORKLOAD_DEFINITION, wd).await;
    assert_eq!(env.wrds(wd).await.len(), 4);
    let wi = env.create_wi("unmanaged-namespace-workload", wd).await;
    env.wait_reconciled(WORKLOAD_INSTANCE, wi).await;
    let ns = assert_deployed(
        env,
        "unmanaged-namespace-workload",
        "unmanaged-namespace-workload",
        wi,
        Some("my-app"),
    )
    .await;
    // No managed namespace was generated besides the manifest's.
    assert_eq!(
        env.stack
            .objects("v1", "Namespace", None)
            .await
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
    delete_and_assert_clean(env, wi, &ns).await;
}

pub async fn two_instances_get_two_namespaces_and_default_is_overridden(env: &Env) {
    let yaml = WEB_APP.replacen(
        "  name: web-config\n",
        "  name: web-config\n  namespace: default\n",
        1,
    );
    let wd = env.create_wd("wordpress-def", &yaml).await;
    env.wait_reconciled(WORKLOAD_DEFINITION, wd).await;
    let a = env.create_wi("wordpress-inst-01", wd).await;
    let b = env.create_wi("wordpress-inst-02", wd).await;
    env.wait_reconciled(WORKLOAD_INSTANCE, a).await;
    env.wait_reconciled(WORKLOAD_INSTANCE, b).await;
    let ns_a = assert_deployed(env, "wordpress-def", "wordpress-inst-01", a, None).await;
    let ns_b = assert_deployed(env, "wordpress-def", "wordpress-inst-02", b, None).await;
    assert_ne!(ns_a, ns_b);
    assert!(env
        .stack
        .objects("v1", "ConfigMap", Some("default"))
        .await
        .iter()
        .all(|c| name(c) != "web-config"));
    delete_and_assert_clean(env, a, &ns_a).await;
    // The other instance is untouched.
    assert_deployed(env, "wordpress-def", "wordpress-inst-02", b, None).await;
    delete_and_assert_clean(env, b, &ns_b).await;
}

/// An instance posted right after its definition (before the definition is reconciled) waits
/// for it and deploys. The sandbox backend forces the order by failing the definition's WRD
/// batch three times; on the real API the two POSTs race as they do for a user.
pub async fn instance_created_before_its_definition_is_reconciled(env: &Env) {
    if let Some(api) = env.stack.sandbox_api() {
        api.faults().fail_next(
            3,
            500,
            sandbox::threeport::RouteFilter {
                method: Some("POST"),
                route_prefix: Some("/v0/workload-resource-definition-sets".into()),
            },
        );
    }
    let wd = env.create_wd("early", WEB_APP).await;
    let wi = env.create_wi("early-0", wd).await;
    env.wait_reconciled(WORKLOAD_INSTANCE, wi).await;
    assert!(env
        .stack
        .get(WORKLOAD_DEFINITION, wd)
        .await
        .is_some_and(|o| o["Reconciled"] == true));
    assert_eq!(env.wrds(wd).await.len(), 3);
    let ns = assert_deployed(env, "early", "early-0", wi, None).await;
    if let Some(api) = env.stack.sandbox_api() {
        assert_eq!(
            api.counters()
                .get("POST", "/v0/workload-resource-definition-sets", 500),
            3
        );
        // The instance really arrived first: it was requeued while the definition was failing.
        let requeues = crate::harness::workload_env::metric_sum(
            &env.metrics(),
            "threeport_reconcile_total",
            &[
                ("reconciler", "WorkloadInstanceReconciler"),
                ("result", "requeue"),
            ],
        );
        assert!(requeues >= 1.0, "instance requeues: {requeues}");
    }
    // Waiting is a requeue, not a failure: no failure event on the instance.
    let failures: Vec<Value> = env
        .stack
        .list_all(EVENT)
        .await
        .into_iter()
        .filter(|e| {
            e["Reason"] == "FailedCreate"
                && e["Note"]
                    .as_str()
                    .is_some_and(|n| n.contains("workload instance"))
        })
        .collect();
    assert!(failures.is_empty(), "{failures:?}");
    delete_and_assert_clean(env, wi, &ns).await;
}

pub async fn sixty_resources_in_one_definition_all_deploy(env: &Env) {
    let yaml: String = (0..60)
        .map(|i| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i:02}\ndata:\n  i: \"{i}\"\n"))
        .collect::<Vec<_>>()
        .join("---\n");
    let wd = env.create_wd("many", &yaml).await;
    env.wait_reconciled(WORKLOAD_DEFINITION, wd).await;
    assert_eq!(env.wrds(wd).await.len(), 60);
    let wi = env.create_wi("many-0", wd).await;
    env.wait_reconciled(WORKLOAD_INSTANCE, wi).await;
    let namespaces = env.namespaces_of(wi).await;
    assert_eq!(namespaces.len(), 1);
    let ns = name(&namespaces[0]).to_string();
    assert_eq!(
        labelled(env.stack.objects("v1", "ConfigMap", Some(&ns)).await, wi).len(),
        60
    );
    assert_eq!(env.wris(wi).await.len(), 61);
    let tw = env.threeport_workload(wi).await.expect("TW");
    assert_eq!(
        tw["spec"]["workloadResourceInstances"]
            .as_array()
            .map(Vec::len),
        Some(61)
    );
    env.api.delete(WORKLOAD_INSTANCE, wi).await.expect("DELETE");
    env.wait_gone(WORKLOAD_INSTANCE, wi).await;
    assert!(env.wris(wi).await.is_empty());
    env.wait_namespace_gone(wi, &ns).await;
    assert!(env
        .stack
        .objects("v1", "ConfigMap", Some(&ns))
        .await
        .is_empty());
    env.api
        .delete(WORKLOAD_DEFINITION, wd)
        .await
        .expect("DELETE WD");
    env.wait_gone(WORKLOAD_DEFINITION, wd).await;
    assert!(env.wrds(wd).await.is_empty(), "every page of WRDs deleted");
}

pub async fn invalid_yaml_is_an_event_and_the_definition_stays_unreconciled(env: &Env) {
    let wd = env
        .create_wd("broken", "apiVersion: v1\nkind: [ConfigMap\n")
        .await;
    wait_until(LIMIT, "FailedCreate event for the definition", || async {
        env.stack.list_all(EVENT).await.iter().any(|e| {
            e["Reason"] == "FailedCreate"
                && e["Note"]
                    .as_str()
                    .is_some_and(|n| n.contains("invalid YAMLDocument"))
        })
    })
    .await;
    assert!(env
        .stack
        .get(WORKLOAD_DEFINITION, wd)
        .await
        .is_some_and(|o| o["Reconciled"] == false));
    assert!(env.wrds(wd).await.is_empty());
}

pub async fn delete_without_events_still_removes_the_threeport_workload(env: &Env) {
    // Go leaks the ThreeportWorkload when an instance had no workload events (spec 4.3 #24).
    let wd = env.create_wd("quiet", WEB_APP).await;
    env.wait_reconciled(WORKLOAD_DEFINITION, wd).await;
    let wi = env.create_wi("quiet-0", wd).await;
    env.wait_reconciled(WORKLOAD_INSTANCE, wi).await;
    assert!(env.workload_events(wi).await.is_empty());
    let ns = assert_deployed(env, "quiet", "quiet-0", wi, None).await;
    delete_and_assert_clean(env, wi, &ns).await;
    assert_eq!(env.threeport_workloads().await, 0);
}

pub async fn update_applies_new_resources_and_deletes_scheduled_ones(env: &Env) {
    let wd = env.create_wd("upd", WEB_APP).await;
    env.wait_reconciled(WORKLOAD_DEFINITION, wd).await;
    let wi = env.create_wi("upd-0", wd).await;
    env.wait_reconciled(WORKLOAD_INSTANCE, wi).await;
    let ns = assert_deployed(env, "upd", "upd-0", wi, None).await;

    // Another controller adds a resource (in `default`, which must be overridden) and
    // schedules the Service for deletion, then un-reconciles the instance.
    let added = env
        .api
        .create(
            WORKLOAD_RESOURCE_INSTANCE,
            json!({"JSONDefinition": {"apiVersion":"v1","kind":"Secret","metadata":{"name":"db","namespace":"default"}},
                   "WorkloadInstanceID": wi, "Reconciled": false}),
        )
        .await
        .expect("POST WRI");
    let added_id = added["ID"].as_u64().expect("ID");
    let svc = env
        .wris(wi)
        .await
        .into_iter()
        .find(|w| w["JSONDefinition"]["kind"] == "Service")
        .expect("service WRI");
    let svc_id = svc["ID"].as_u64().expect("ID");
    env.api
        .patch(
            WORKLOAD_RESOURCE_INSTANCE,
            svc_id,
            json!({"ScheduledForDeletion": "2026-01-01T00:00:00Z", "Reconciled": false}),
        )
        .await
        .expect("schedule deletion");
    env.api
        .patch(WORKLOAD_INSTANCE, wi, json!({"Reconciled": false}))
        .await
        .expect("un-reconcile");
    env.wait_reconciled(WORKLOAD_INSTANCE, wi).await;
    wait_until(LIMIT, "secret applied and service removed", || async {
        env.stack
            .object("v1", "Secret", Some(&ns), "db")
            .await
            .is_some()
            && env
                .stack
                .object("v1", "Service", Some(&ns), "web")
                .await
                .is_none()
    })
    .await;
    let secret = env
        .stack
        .object("v1", "Secret", Some(&ns), "db")
        .await
        .expect("secret");
    assert_threeport_labels(&secret, "upd", "upd-0", wi);
    let wris = env.wris(wi).await;
    assert_eq!(wris.len(), 4, "{wris:?}");
    assert!(wris.iter().all(|w| w["Reconciled"] == true));
    assert!(env
        .stack
        .get(WORKLOAD_RESOURCE_INSTANCE, svc_id)
        .await
        .is_none());
    let added = env
        .stack
        .get(WORKLOAD_RESOURCE_INSTANCE, added_id)
        .await
        .expect("added WRI");
    assert_eq!(
        added["JSONDefinition"]["metadata"]["namespace"],
        ns.as_str()
    );
    let tw = env.threeport_workload(wi).await.expect("TW");
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
    env.wait_gone(WORKLOAD_INSTANCE, wi).await;
    env.wait_namespace_gone(wi, &ns).await;
    assert!(env
        .stack
        .object("v1", "Secret", Some(&ns), "db")
        .await
        .is_none());
    assert!(env.wris(wi).await.is_empty());
    assert_eq!(env.threeport_workloads().await, 0);
}

pub async fn a_crd_and_its_custom_resource_in_one_definition(env: &Env) {
    // Go always fails here (spec 4.3 #27); the CR is listed before its CRD on purpose.
    let wd = env.create_wd("widgets", WIDGET_CR_BEFORE_ITS_CRD).await;
    env.wait_reconciled(WORKLOAD_DEFINITION, wd).await;
    let wi = env.create_wi("widgets-0", wd).await;
    env.wait_reconciled(WORKLOAD_INSTANCE, wi).await;
    let namespaces = env.namespaces_of(wi).await;
    assert_eq!(namespaces.len(), 1);
    let ns = name(&namespaces[0]).to_string();
    let w = env
        .stack
        .object("example.io/v1", "Widget", Some(&ns), "w1")
        .await
        .expect("custom resource in the managed namespace");
    assert_eq!(w["spec"]["size"], 3);
    assert_eq!(env.wris(wi).await.len(), 3, "namespace, CRD, widget");
    env.api
        .delete(WORKLOAD_INSTANCE, wi)
        .await
        .expect("DELETE instance");
    env.wait_gone(WORKLOAD_INSTANCE, wi).await;
    env.wait_namespace_gone(wi, &ns).await;
    wait_until(LIMIT, "the Widget CRD gone", || async {
        env.stack
            .objects("apiextensions.k8s.io/v1", "CustomResourceDefinition", None)
            .await
            .iter()
            .all(|c| name(c) != "widgets.example.io")
    })
    .await;
    assert!(env.wris(wi).await.is_empty());
}
