//! The Kubernetes access layer against the sandbox Kubernetes API over TLS: credentials from
//! a KubernetesRuntimeInstance, the client and discovery caches, operations on unstructured
//! objects, and the full path from a runtime registered in the sandbox Threeport API.

mod harness;
use harness::common;

use std::time::Duration;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use sandbox::kube::{KubeRouteFilter, KubeSandbox, KubeSandboxHandle, KubeSandboxOptions};
use sandbox::threeport::{SandboxApi, SandboxOptions};
use serde_json::{json, Value};
use threeport_manager::kube::manifest::{
    add_labels, assign_namespaces, order_for_apply, split_yaml, threeport_workload,
    WorkloadResourceRef, WorkloadType, WORKLOAD_INSTANCE_LABEL,
};
use threeport_manager::kube::ops::dynamic_object;
use threeport_manager::kube::{Cluster, KubeError, KubeRuntimes, KubeSettings, RuntimeHandle};
use threeport_manager::threeport::crypto::EncryptionKey;
use threeport_manager::threeport::models::{
    Common, Instance, KubernetesRuntimeInstance, SecretString, KUBERNETES_RUNTIME_INSTANCE,
};
use threeport_manager::threeport::{RetryClass, ThreeportApi};

async fn start_kube() -> KubeSandboxHandle {
    KubeSandbox::start(KubeSandboxOptions::default())
        .await
        .expect("start the Kubernetes sandbox")
}

/// A runtime instance with the sandbox's client certificate and plaintext key (no
/// encryption key configured).
fn cert_kri(k: &KubeSandboxHandle, id: u64) -> KubernetesRuntimeInstance {
    KubernetesRuntimeInstance {
        common: Common {
            id: Some(id),
            ..Default::default()
        },
        instance: Instance {
            name: Some(format!("sandbox-{id}")),
            ..Default::default()
        },
        api_endpoint: Some(k.url()),
        ca_certificate: Some(k.ca_pem().to_string()),
        certificate: Some(k.client_cert_pem().to_string()),
        certificate_key: Some(SecretString(k.client_key_pem().to_string())),
        ..Default::default()
    }
}

fn token_kri(k: &KubeSandboxHandle, id: u64, token: &str) -> KubernetesRuntimeInstance {
    KubernetesRuntimeInstance {
        certificate: None,
        certificate_key: None,
        connection_token: Some(SecretString(token.to_string())),
        ..cert_kri(k, id)
    }
}

fn settings() -> KubeSettings {
    KubeSettings {
        discovery_min_refresh: Duration::from_millis(200),
        ..Default::default()
    }
}

fn obj(v: Value) -> DynamicObject {
    dynamic_object(v).expect("valid object")
}

fn labels(o: &DynamicObject) -> std::collections::BTreeMap<String, String> {
    o.metadata.labels.clone().unwrap_or_default()
}

#[tokio::test]
async fn create_twice_returns_the_live_object() {
    let k = start_kube().await;
    let rt = KubeRuntimes::new(None, settings());
    let h = rt.handle_for(&cert_kri(&k, 1), true).unwrap();
    let cm = obj(
        json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c1","namespace":"default"},"data":{"a":"1"}}),
    );
    let first = h.create(&cm).await.unwrap();
    assert!(first.metadata.uid.is_some());
    // The second create does not update: it returns what is live.
    let changed = obj(
        json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c1","namespace":"default"},"data":{"a":"2"}}),
    );
    let second = h.create(&changed).await.unwrap();
    assert_eq!(second.metadata.uid, first.metadata.uid);
    assert_eq!(second.data["data"]["a"], "1");
    let c = k.counters();
    assert_eq!(c.get("create", "configmaps"), 2);
    assert_eq!(c.get("get", "configmaps"), 1);
}

#[tokio::test]
async fn apply_keeps_labels_and_fields_of_others_and_applies_changes() {
    let k = start_kube().await;
    let rt = KubeRuntimes::new(None, settings());
    let h = rt.handle_for(&cert_kri(&k, 1), true).unwrap();
    let mut v = json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"app","namespace":"default"},"data":{"a":"1"}});
    add_labels(&mut v, "def", "inst", 5, WORKLOAD_INSTANCE_LABEL).unwrap();
    // apply creates when absent
    let created = h.apply(&obj(v.clone())).await.unwrap();
    assert_eq!(labels(&created)[WORKLOAD_INSTANCE_LABEL], "5");

    // Someone else (e.g. the agent or a user) adds a label and a finalizer-like field.
    let api: Api<DynamicObject> = Api::namespaced_with(
        h.client().clone(),
        "default",
        &h.resolve("v1", "ConfigMap").await.unwrap().resource,
    );
    api.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata":{"labels":{"other":"x"}}})),
    )
    .await
    .unwrap();

    v["data"]["a"] = json!("2");
    v["data"]["b"] = json!("3");
    let updated = h.apply(&obj(v.clone())).await.unwrap();
    assert_eq!(updated.data["data"], json!({"a":"2","b":"3"}));
    let l = labels(&updated);
    assert_eq!(l[WORKLOAD_INSTANCE_LABEL], "5");
    assert_eq!(l["control-plane.threeport.io/managed-by"], "threeport");
    assert_eq!(
        l["other"], "x",
        "apply must not drop fields other managers set"
    );
    assert_eq!(updated.metadata.uid, created.metadata.uid);

    // Passing a live object back in works (server-populated fields are stripped).
    let again = h.apply(&updated).await.unwrap();
    assert_eq!(again.data["data"], json!({"a":"2","b":"3"}));
    let live = k
        .get_object("v1", "ConfigMap", Some("default"), "app")
        .unwrap();
    assert_eq!(live["data"], json!({"a":"2","b":"3"}));
}

#[tokio::test]
async fn delete_twice_and_get_after_delete() {
    let k = start_kube().await;
    let rt = KubeRuntimes::new(None, settings());
    let h = rt.handle_for(&cert_kri(&k, 1), true).unwrap();
    let cm = obj(
        json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"gone","namespace":"default"}}),
    );
    h.create(&cm).await.unwrap();
    assert!(h
        .get("v1", "ConfigMap", Some("default"), "gone")
        .await
        .unwrap()
        .is_some());
    assert!(h
        .delete("v1", "ConfigMap", Some("default"), "gone")
        .await
        .unwrap());
    assert!(!h
        .delete("v1", "ConfigMap", Some("default"), "gone")
        .await
        .unwrap());
    assert!(h
        .get("v1", "ConfigMap", Some("default"), "gone")
        .await
        .unwrap()
        .is_none());
    // An unknown kind has nothing to delete or get.
    assert!(!h
        .delete("example.com/v1", "Nothing", Some("default"), "x")
        .await
        .unwrap());
    assert!(h
        .get("example.com/v1", "Nothing", None, "x")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn cluster_scoped_and_namespaced_objects_and_label_lists() {
    let k = start_kube().await;
    let rt = KubeRuntimes::new(None, settings());
    let h = rt.handle_for(&cert_kri(&k, 1), true).unwrap();
    for ns in ["team-a", "team-b"] {
        // A namespace in a cluster-scoped object's body is ignored.
        h.apply(&obj(json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":ns,"namespace":"bogus"}})))
            .await
            .unwrap();
        h.apply(&obj(json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","namespace":ns,"labels":{"sel":"yes"}}})))
            .await
            .unwrap();
    }
    h.apply(&obj(json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"reader","labels":{"sel":"yes"}},"rules":[]})))
        .await
        .unwrap();
    // A namespaced object without a namespace goes to "default", as with kubectl.
    h.create(&obj(json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"nons","labels":{"sel":"no"}}})))
        .await
        .unwrap();

    assert!(k.get_object("v1", "Namespace", None, "team-a").is_some());
    assert!(k
        .get_object("v1", "ConfigMap", Some("team-b"), "cm")
        .is_some());
    assert!(k
        .get_object("v1", "ConfigMap", Some("default"), "nons")
        .is_some());
    assert!(k
        .get_object(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            None,
            "reader"
        )
        .is_some());
    let cr = h
        .get(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            Some("ignored"),
            "reader",
        )
        .await
        .unwrap()
        .unwrap();
    assert!(cr.metadata.namespace.is_none());

    let all = h
        .list_by_label("v1", "ConfigMap", None, "sel=yes")
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    let one = h
        .list_by_label("v1", "ConfigMap", Some("team-a"), "sel=yes")
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].metadata.namespace.as_deref(), Some("team-a"));
    let roles = h
        .list_by_label(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            None,
            "sel=yes",
        )
        .await
        .unwrap();
    assert_eq!(roles.len(), 1);
}

#[tokio::test]
async fn one_discovery_per_group_version_across_many_reconciles() {
    let k = start_kube().await;
    let rt = KubeRuntimes::new(None, settings());
    let kri = cert_kri(&k, 1);
    for i in 0..20 {
        // A new handle per "reconcile", as reconcilers will get them.
        let h = rt.handle_for(&kri, true).unwrap();
        for (av, kind) in [
            ("v1", "ConfigMap"),
            ("v1", "Namespace"),
            ("apps/v1", "Deployment"),
        ] {
            let r = h.resolve(av, kind).await.unwrap();
            assert_eq!(r.resource.kind, kind);
        }
        h.apply(&obj(json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":format!("c{i}"),"namespace":"default"}})))
            .await
            .unwrap();
    }
    let c = k.counters();
    assert_eq!(c.discovery_total(), 2, "{:?}", c.by_request);
    assert_eq!(c.get("discovery", "/api/v1"), 1);
    assert_eq!(c.get("discovery", "/apis/apps/v1"), 1);
    let r = rt
        .handle_for(&kri, true)
        .unwrap()
        .resolve("apps/v1", "Deployment")
        .await
        .unwrap();
    assert_eq!(r.resource.plural, "deployments");
    assert!(r.namespaced);
    let r = rt
        .handle_for(&kri, true)
        .unwrap()
        .resolve("v1", "Namespace")
        .await
        .unwrap();
    assert!(!r.namespaced);
    assert_eq!(k.counters().discovery_total(), 2);
}

fn widget_crd(scope: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": scope,
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
        }
    })
}

#[tokio::test]
async fn discovery_refreshes_after_a_crd_is_created() {
    let k = start_kube().await;
    let rt = KubeRuntimes::new(None, settings());
    let h = rt.handle_for(&cert_kri(&k, 1), true).unwrap();
    let e = h.resolve("example.com/v1", "Widget").await.unwrap_err();
    assert!(matches!(e, KubeError::UnknownKind { .. }), "{e:?}");
    assert_eq!(e.retry_class(), RetryClass::Transient);
    let before = k.counters().discovery_total();
    // Misses within the refresh limit do not hit the server again.
    for _ in 0..5 {
        assert!(h.resolve("example.com/v1", "Widget").await.is_err());
    }
    assert_eq!(k.counters().discovery_total(), before);

    // Someone else creates the CRD (another manager, kubectl): found after the refresh limit.
    let other = KubeRuntimes::new(None, settings());
    other
        .handle_for(&cert_kri(&k, 1), true)
        .unwrap()
        .apply(&obj(widget_crd("Namespaced")))
        .await
        .unwrap();
    let r = h
        .wait_for_kind("example.com/v1", "Widget", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(r.resource.plural, "widgets");
    assert!(r.namespaced);

    // A kind that never appears times out, with a clear error.
    let e = h
        .wait_for_kind("example.com/v1", "Gadget", Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(matches!(e, KubeError::Timeout { .. }), "{e:?}");
    assert!(e.to_string().contains("Gadget"), "{e}");
}

const CRD_AND_CR: &str = r#"
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w1
  namespace: default
spec:
  size: 3
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:1.27"}]
"#;

/// What the workload reconciler will do: split, assign namespaces (scopes from the manifest's
/// CRDs and discovery), label, order, apply; returns the applied objects.
async fn deploy(
    h: &RuntimeHandle,
    yaml: &str,
    name: &str,
    id: u64,
) -> (String, Vec<DynamicObject>) {
    let docs = split_yaml(yaml).unwrap();
    let scopes = h.scopes(&docs).await.unwrap();
    let out = assign_namespaces(docs, name, id, |av, k| {
        scopes.get(&(av.to_string(), k.to_string())).copied()
    })
    .unwrap();
    let mut applied = Vec::new();
    for mut o in order_for_apply(out.objects) {
        add_labels(&mut o, "def", name, id, WORKLOAD_INSTANCE_LABEL).unwrap();
        applied.push(h.apply(&obj(o)).await.unwrap());
    }
    (out.namespace, applied)
}

#[tokio::test]
async fn a_crd_then_a_custom_resource_in_one_sequence() {
    let k = start_kube().await;
    let rt = KubeRuntimes::new(None, settings());
    let h = rt.handle_for(&cert_kri(&k, 1), true).unwrap();
    let (ns, applied) = deploy(&h, CRD_AND_CR, "widgets", 17).await;
    let kinds: Vec<String> = applied
        .iter()
        .map(|o| o.types.as_ref().unwrap().kind.clone())
        .collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "CustomResourceDefinition",
            "Widget",
            "Deployment"
        ]
    );
    // "namespace: default" in the manifest is overridden, as Threeport does.
    let w = k
        .get_object("example.com/v1", "Widget", Some(&ns), "w1")
        .expect("widget");
    assert_eq!(w["spec"]["size"], 3);
    assert_eq!(w["metadata"]["labels"][WORKLOAD_INSTANCE_LABEL], "17");
    assert!(k
        .get_object("example.com/v1", "Widget", Some("default"), "w1")
        .is_none());
    let d = k
        .get_object("apps/v1", "Deployment", Some(&ns), "web")
        .unwrap();
    assert_eq!(
        d["spec"]["template"]["metadata"]["labels"][WORKLOAD_INSTANCE_LABEL],
        "17"
    );
    let nsobj = k.get_object("v1", "Namespace", None, &ns).unwrap();
    assert_eq!(nsobj["metadata"]["labels"][WORKLOAD_INSTANCE_LABEL], "17");

    // A retry converges on the same namespace and objects (no second namespace).
    let (ns2, _) = deploy(&h, CRD_AND_CR, "widgets", 17).await;
    assert_eq!(ns2, ns);
    let managed = h
        .list_by_label(
            "v1",
            "Namespace",
            None,
            &format!("{WORKLOAD_INSTANCE_LABEL}=17"),
        )
        .await
        .unwrap();
    assert_eq!(managed.len(), 1);
    assert_eq!(k.objects("example.com/v1", "Widget", None).len(), 1);
}

#[tokio::test]
async fn threeport_workload_is_cluster_scoped_and_applied_idempotently() {
    let k = start_kube().await;
    let rt = KubeRuntimes::new(None, settings());
    let h = rt.handle_for(&cert_kri(&k, 1), true).unwrap();
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "threeportworkloads.control-plane.threeport.io"},
        "spec": {
            "group": "control-plane.threeport.io",
            "scope": "Cluster",
            "names": {"plural": "threeportworkloads", "singular": "threeportworkload", "kind": "ThreeportWorkload", "listKind": "ThreeportWorkloadList"},
            "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
        }
    });
    h.apply(&obj(crd)).await.unwrap();
    let cm =
        json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"ns1"}});
    let tw = threeport_workload(
        WorkloadType::WorkloadInstance,
        4,
        &[WorkloadResourceRef::from_object(&cm, 40)],
    );
    let first = h.apply(&obj(tw.clone())).await.unwrap();
    assert!(first.metadata.namespace.is_none());
    // Another party (the agent) adds a finalizer; applying again keeps it.
    let api: Api<DynamicObject> = Api::all_with(
        h.client().clone(),
        &h.resolve("control-plane.threeport.io/v1alpha1", "ThreeportWorkload")
            .await
            .unwrap()
            .resource,
    );
    api.patch(
        "workload-instance-4",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata":{"finalizers":["control-plane.threeport.io/agent"]}})),
    )
    .await
    .unwrap();
    let again = h.apply(&obj(tw)).await.unwrap();
    assert_eq!(
        again.metadata.finalizers,
        Some(vec!["control-plane.threeport.io/agent".to_string()])
    );
    let live = k
        .get_object(
            "control-plane.threeport.io/v1alpha1",
            "ThreeportWorkload",
            None,
            "workload-instance-4",
        )
        .unwrap();
    assert_eq!(
        live["spec"]["workloadResourceInstances"][0]["threeportID"],
        40
    );
}

#[tokio::test]
async fn client_is_rebuilt_after_credential_rotation() {
    let k = start_kube().await;
    let rt = KubeRuntimes::new(None, settings());
    let get = |h: RuntimeHandle| async move {
        h.get("v1", "Namespace", None, "default").await.map(|_| ())
    };
    // Certificate auth works.
    get(rt.handle_for(&cert_kri(&k, 1), true).unwrap())
        .await
        .unwrap();
    assert_eq!(rt.clients().len(), 1);
    // Rotated to a token that the cluster does not accept: a new client is used (401).
    let e = get(rt
        .handle_for(&token_kri(&k, 1, "wrong-token"), true)
        .unwrap())
    .await
    .unwrap_err();
    assert_eq!(e.status_code(), Some(401), "{e:?}");
    assert_eq!(e.retry_class(), RetryClass::Permanent);
    assert!(!e.to_string().contains("wrong-token"));
    // Rotated to the right token: works again; still one cached client for the runtime.
    get(rt.handle_for(&token_kri(&k, 1, k.token()), true).unwrap())
        .await
        .unwrap();
    assert_eq!(rt.clients().len(), 1);
    // Unchanged credentials reuse the client.
    let (_, built) = rt
        .clients()
        .get(&rt.credentials(&token_kri(&k, 1, k.token()), true).unwrap())
        .unwrap();
    assert!(!built);
    rt.forget(1);
    assert!(rt.clients().is_empty());
}

#[tokio::test]
async fn server_errors_and_timeouts_are_transient() {
    let k = start_kube().await;
    let mut s = settings();
    s.client.read_timeout = Duration::from_millis(500);
    let rt = KubeRuntimes::new(None, s);
    let h = rt.handle_for(&cert_kri(&k, 1), true).unwrap();
    h.resolve("v1", "ConfigMap").await.unwrap();
    k.faults().fail_next(
        1,
        503,
        KubeRouteFilter {
            verb: Some("create"),
            resource: Some("configmaps".into()),
        },
    );
    let cm = obj(
        json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"f","namespace":"default"}}),
    );
    let e = h.create(&cm).await.unwrap_err();
    assert_eq!(e.status_code(), Some(503), "{e:?}");
    assert_eq!(e.retry_class(), RetryClass::Transient);
    h.create(&cm).await.unwrap();

    k.faults().set_latency(Duration::from_secs(2));
    let e = h
        .get("v1", "ConfigMap", Some("default"), "f")
        .await
        .unwrap_err();
    assert!(matches!(e, KubeError::Transport { .. }), "{e:?}");
    assert_eq!(e.retry_class(), RetryClass::Transient);
    k.faults().clear();
}

#[tokio::test]
async fn registered_runtime_with_encrypted_key_to_objects_in_the_cluster() {
    let (key, key_b64) = EncryptionKey::generate();
    let api = SandboxApi::start(SandboxOptions {
        encryption_key: Some(key_b64.clone()),
        ..Default::default()
    })
    .await
    .expect("start the Threeport sandbox");
    let k = start_kube().await;
    let client = common::api_client(&api);

    for (auth, name) in [
        (sandbox::kube::RuntimeAuth::ClientCert, "cert-runtime"),
        (sandbox::kube::RuntimeAuth::Token, "token-runtime"),
    ] {
        let id = k.register_runtime(&api, name, auth).await.unwrap();
        let raw = client.get(KUBERNETES_RUNTIME_INSTANCE, id).await.unwrap();
        let kri: KubernetesRuntimeInstance = serde_json::from_value(raw).unwrap();
        // Stored encrypted, as Threeport stores it.
        if let Some(stored) = &kri.certificate_key {
            assert_ne!(stored.expose(), k.client_key_pem());
            assert_eq!(key.decrypt(stored.expose()).unwrap(), k.client_key_pem());
        }

        let mut config = threeport_manager::config::Config::default();
        config.encryption_key = Some(threeport_manager::config::Secret::new(key_b64.clone()));
        let rt = KubeRuntimes::from_config(&config, settings()).unwrap();
        let h = rt.handle_for(&kri, true).unwrap();
        assert_eq!(h.runtime(), format!("{name} (ID {id})"));
        let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hello\n  namespace: default\ndata:\n  k: v\n";
        let (ns, _) = deploy(&h, yaml, name, id).await;
        let cm = k
            .get_object("v1", "ConfigMap", Some(&ns), "hello")
            .expect("created");
        assert_eq!(cm["data"]["k"], "v");

        // Without the key (or with another one) the stored ciphertext is unusable.
        let wrong = KubeRuntimes::new(Some(EncryptionKey::generate().0), settings());
        let e = wrong
            .handle_for(&kri, true)
            .err()
            .expect("wrong key must fail");
        assert!(matches!(e, KubeError::Credentials { .. }), "{e:?}");
        assert!(e.to_string().contains("cannot decrypt"), "{e}");
        assert_eq!(e.retry_class(), RetryClass::Permanent);
    }
}

#[tokio::test]
async fn concurrent_workers_share_one_discovery_fetch() {
    let k = start_kube().await;
    let rt = std::sync::Arc::new(KubeRuntimes::new(None, settings()));
    let kri = cert_kri(&k, 1);
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let rt = rt.clone();
        let kri = kri.clone();
        tasks.push(tokio::spawn(async move {
            let h = rt.handle_for(&kri, true).unwrap();
            h.resolve("apps/v1", "Deployment").await.unwrap();
            h.resolve("batch/v1", "Job").await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let c = k.counters();
    assert_eq!(c.get("discovery", "/apis/apps/v1"), 1, "{:?}", c.by_request);
    assert_eq!(c.get("discovery", "/apis/batch/v1"), 1);
    assert_eq!(rt.clients().len(), 1);
}
