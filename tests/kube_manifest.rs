//! Golden tests of the manifest helpers (spec 3.1.2-3.1.4, 3.1.6): YAML splitting, namespace
//! assignment, labels and the ThreeportWorkload object, without a cluster.

use std::collections::HashMap;

use serde_json::{json, Value};
use threeport_manager::kube::manifest::{
    add_labels, assign_namespaces, assign_namespaces_with, crd_scopes, managed_namespace_name,
    order_for_apply, split_yaml, threeport_workload, threeport_workload_name, ManifestError,
    WorkloadResourceRef, WorkloadType, GATEWAY_NAMESPACE, WORKLOAD_INSTANCE_LABEL,
};

/// Scopes of the kinds used below, as a runtime's discovery would report them.
fn scope(api_version: &str, kind: &str) -> Option<bool> {
    let known: HashMap<(&str, &str), bool> = [
        (("v1", "Namespace"), false),
        (("v1", "ConfigMap"), true),
        (("v1", "Service"), true),
        (("v1", "ServiceAccount"), true),
        (("apps/v1", "Deployment"), true),
        (("batch/v1", "Job"), true),
        (("rbac.authorization.k8s.io/v1", "ClusterRole"), false),
        (("gateway.solo.io/v1", "Gateway"), true),
        (
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
            false,
        ),
    ]
    .into_iter()
    .collect();
    known.get(&(api_version, kind)).copied()
}

const WORDPRESS: &str = r#"# leading comment, not a document
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: config
  namespace: default
data:
  b: "2"
  a: "1"
---
---
# a comment-only document
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: reader
rules: []
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
  labels:
    app.kubernetes.io/name: custom
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
        control-plane.threeport.io/workload-instance: "999"
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - containerPort: 80
"#;

#[test]
fn splits_multi_document_yaml_in_order_skipping_empty_documents() {
    let docs = split_yaml(WORDPRESS).unwrap();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ConfigMap", "ClusterRole", "Deployment"]);
    assert_eq!(
        docs[0],
        json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"config","namespace":"default"},"data":{"a":"1","b":"2"}})
    );
    // Numbers stay numbers, quoted strings stay strings.
    assert_eq!(docs[2]["spec"]["replicas"], json!(2));
    assert_eq!(
        docs[2]["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        json!(80)
    );
    assert_eq!(split_yaml("").unwrap(), Vec::<Value>::new());
    assert_eq!(
        split_yaml("---\n---\n# only comments\n").unwrap(),
        Vec::<Value>::new()
    );
    // A single document without a separator.
    assert_eq!(split_yaml("kind: A\n").unwrap(), vec![json!({"kind": "A"})]);
    // Non-string keys become strings, as sigs.k8s.io/yaml does.
    assert_eq!(
        split_yaml("data:\n  1: one\n").unwrap(),
        vec![json!({"data": {"1": "one"}})]
    );
}

#[test]
fn non_object_and_broken_documents_are_errors_naming_the_document() {
    let e = split_yaml("kind: A\n---\n- a\n- b\n").unwrap_err();
    assert_eq!(
        e,
        ManifestError::NotAnObject {
            document: 2,
            found: "a list"
        }
    );
    assert!(e.to_string().contains("document 2"), "{e}");
    let e = split_yaml("kind: A\n---\njust a string\n").unwrap_err();
    assert!(
        matches!(e, ManifestError::NotAnObject { document: 2, .. }),
        "{e:?}"
    );
    let e = split_yaml("kind: A\n---\nkey: [unclosed\n").unwrap_err();
    assert!(
        matches!(e, ManifestError::Yaml { document: 2, .. }),
        "{e:?}"
    );
}

#[test]
fn managed_namespace_is_deterministic_and_a_dns_label() {
    let a = managed_namespace_name("wordpress", 42);
    assert_eq!(a, managed_namespace_name("wordpress", 42));
    assert_ne!(a, managed_namespace_name("wordpress", 43));
    let (prefix, suffix) = a.split_at("wordpress-".len());
    assert_eq!(prefix, "wordpress-");
    assert_eq!(suffix.len(), 10);
    assert!(suffix
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    // Golden: this value must never change, or retries after an upgrade would use another
    // namespace than the first attempt.
    assert_eq!(a, format!("wordpress-{}", &managed_namespace_name("", 42)));

    let long = managed_namespace_name(&"x".repeat(100), 1);
    assert_eq!(long.len(), 63);
    let odd = managed_namespace_name("My_App.v2-", 1);
    assert!(odd.starts_with("my-app-v2-"), "{odd}");
    assert!(is_dns_label(&odd), "{odd}");
    assert!(is_dns_label(&managed_namespace_name("--", 1)));
    assert!(is_dns_label(&managed_namespace_name(&"a-".repeat(40), 7)));
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[test]
fn an_adopted_managed_namespace_is_used_unless_the_manifest_names_one() {
    // A Go controller's earlier attempt named the namespace randomly.
    let out = assign_namespaces_with(
        split_yaml(WORDPRESS).unwrap(),
        "wordpress-8d2k1x0q7z",
        scope,
    )
    .unwrap();
    assert_eq!(out.namespace, "wordpress-8d2k1x0q7z");
    assert!(out.namespace_added && !out.client_managed);
    assert_eq!(out.objects[0]["metadata"]["name"], "wordpress-8d2k1x0q7z");
    assert!(out
        .objects
        .iter()
        .filter(|o| o["kind"] == "Deployment" || o["kind"] == "ConfigMap")
        .all(|o| o["metadata"]["namespace"] == "wordpress-8d2k1x0q7z"));
    // A Namespace in the manifest still wins.
    let yaml = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n";
    let out = assign_namespaces_with(split_yaml(yaml).unwrap(), "other", scope).unwrap();
    assert_eq!(out.namespace, "shop");
    assert!(out.client_managed);
}

#[test]
fn namespaces_are_assigned_overriding_default_and_a_namespace_is_prepended() {
    let docs = split_yaml(WORDPRESS).unwrap();
    let out = assign_namespaces(docs, "wordpress", 42, scope).unwrap();
    let ns = managed_namespace_name("wordpress", 42);
    assert_eq!(out.namespace, ns);
    assert!(!out.client_managed);
    assert!(out.namespace_added);
    // Namespace first, the rest in manifest order (Go would move the ConfigMap to the end).
    let got: Vec<(String, Value)> = out
        .objects
        .iter()
        .map(|o| {
            (
                o["kind"].as_str().unwrap().to_string(),
                o["metadata"]["namespace"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("Namespace".to_string(), Value::Null),
            ("ConfigMap".to_string(), json!(ns)),
            ("ClusterRole".to_string(), Value::Null),
            ("Deployment".to_string(), json!(ns)),
        ]
    );
    assert_eq!(
        out.objects[0],
        json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name": ns}})
    );

    // A repeated call (a retry of the reconcile) gives the same namespace and objects.
    let again = assign_namespaces(split_yaml(WORDPRESS).unwrap(), "wordpress", 42, scope).unwrap();
    assert_eq!(again, out);
    // And applying it to its own output changes nothing but does not add a second Namespace
    // (the added Namespace now reads as client-managed with the same name).
    let twice = assign_namespaces(out.objects.clone(), "wordpress", 42, scope).unwrap();
    assert_eq!(twice.namespace, ns);
    assert_eq!(twice.objects, out.objects);
}

#[test]
fn a_manifest_that_names_its_own_namespace_keeps_it() {
    let yaml = r"
apiVersion: v1
kind: ConfigMap
metadata: {name: a, namespace: somewhere-else}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Service
metadata: {name: b}
spec: {ports: [{port: 80}]}
";
    let out = assign_namespaces(split_yaml(yaml).unwrap(), "shop-instance", 5, scope).unwrap();
    assert_eq!(out.namespace, "shop");
    assert!(out.client_managed);
    assert!(!out.namespace_added);
    assert_eq!(out.objects.len(), 3);
    assert_eq!(out.objects[0]["metadata"]["namespace"], "shop");
    assert_eq!(
        out.objects[1],
        json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop"}})
    );
    assert_eq!(out.objects[2]["metadata"]["namespace"], "shop");
    // Creation order: the Namespace first.
    let ordered = order_for_apply(out.objects);
    let kinds: Vec<&str> = ordered
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Namespace", "ConfigMap", "Service"]);
}

#[test]
fn a_multi_namespace_document_uses_the_first_namespace_for_everything() {
    let yaml = r"
apiVersion: v1
kind: Namespace
metadata: {name: first}
---
apiVersion: v1
kind: Namespace
metadata: {name: second}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: in-second, namespace: second}
---
apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {name: tcp, namespace: first}
";
    let out = assign_namespaces(split_yaml(yaml).unwrap(), "multi", 9, scope).unwrap();
    assert_eq!(out.namespace, "first");
    assert!(out.client_managed && !out.namespace_added);
    // Both namespaces are still created; namespaced objects all go to the first (Go's
    // behaviour), except Gateways, which always go to the gloo namespace.
    assert_eq!(out.objects[1]["metadata"], json!({"name": "second"}));
    assert_eq!(out.objects[2]["metadata"]["namespace"], "first");
    assert_eq!(out.objects[3]["metadata"]["namespace"], GATEWAY_NAMESPACE);
}

#[test]
fn only_cluster_scoped_objects_need_no_namespace_and_unknown_kinds_fail() {
    let yaml = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r}\n";
    let out = assign_namespaces(split_yaml(yaml).unwrap(), "x", 1, scope).unwrap();
    assert!(!out.namespace_added);
    assert_eq!(out.objects.len(), 1);

    let yaml = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n";
    let e = assign_namespaces(split_yaml(yaml).unwrap(), "x", 1, scope).unwrap_err();
    assert_eq!(
        e,
        ManifestError::UnknownKind {
            document: 1,
            api_version: "example.com/v1".into(),
            kind: "Widget".into()
        }
    );
    let e = assign_namespaces(vec![json!({"metadata": {"name": "n"}})], "x", 1, scope).unwrap_err();
    assert!(
        matches!(e, ManifestError::InvalidObject { document: 1, .. }),
        "{e:?}"
    );
}

const CRD_AND_CR: &str = r"
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1}
spec: {size: 3}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
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
";

#[test]
fn crd_and_custom_resource_in_one_manifest() {
    let docs = split_yaml(CRD_AND_CR).unwrap();
    let crds = crd_scopes(&docs);
    assert_eq!(
        crds.get(&("example.com/v1".to_string(), "Widget".to_string())),
        Some(&true)
    );
    let out = assign_namespaces(docs, "widgets", 3, |av, k| {
        crds.get(&(av.to_string(), k.to_string()))
            .copied()
            .or_else(|| scope(av, k))
    })
    .unwrap();
    let ordered = order_for_apply(out.objects);
    let kinds: Vec<&str> = ordered
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Namespace", "CustomResourceDefinition", "Widget"]);
    assert_eq!(ordered[2]["metadata"]["namespace"], json!(out.namespace));
}

#[test]
fn labels_mirror_spec_3_1_4() {
    let docs = split_yaml(WORDPRESS).unwrap();
    let out = assign_namespaces(docs, "wordpress", 42, scope).unwrap();
    let mut objects = out.objects;
    for o in &mut objects {
        add_labels(o, "wordpress-def", "wordpress", 42, WORKLOAD_INSTANCE_LABEL).unwrap();
    }
    let standard = json!({
        "app.kubernetes.io/managed-by": "threeport",
        "app.kubernetes.io/name": "wordpress-def",
        "app.kubernetes.io/instance": "wordpress",
        "control-plane.threeport.io/workload-instance": "42",
        "control-plane.threeport.io/managed-by": "threeport",
    });
    // The generated Namespace carries the labels the e2e tests look it up by.
    assert_eq!(objects[0]["metadata"]["labels"], standard);
    assert_eq!(objects[1]["metadata"]["labels"], standard);
    // Existing metadata labels win ...
    let deploy = &objects[3];
    assert_eq!(
        deploy["metadata"]["labels"]["app.kubernetes.io/name"],
        "custom"
    );
    assert_eq!(
        deploy["metadata"]["labels"]["control-plane.threeport.io/workload-instance"],
        "42"
    );
    // ... but pod-template labels are overwritten.
    assert_eq!(
        deploy["spec"]["template"]["metadata"]["labels"],
        json!({
            "app": "web",
            "control-plane.threeport.io/workload-instance": "42",
            "control-plane.threeport.io/managed-by": "threeport",
        })
    );
    // Kinds without pod templates get none; labels are idempotent.
    assert!(objects[2]["spec"].is_null());
    let before = objects.clone();
    for o in &mut objects {
        add_labels(o, "wordpress-def", "wordpress", 42, WORKLOAD_INSTANCE_LABEL).unwrap();
    }
    assert_eq!(objects, before);

    // A Job without template metadata gets one; the helm key is used when asked for.
    let mut job = json!({"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j","labels":null},"spec":{"template":{"spec":{}}}});
    add_labels(
        &mut job,
        "d",
        "i",
        7,
        WorkloadType::HelmWorkloadInstance.instance_label_key(),
    )
    .unwrap();
    assert_eq!(
        job["spec"]["template"]["metadata"]["labels"],
        json!({"control-plane.threeport.io/helm-workload-instance": "7", "control-plane.threeport.io/managed-by": "threeport"})
    );
    assert_eq!(
        job["metadata"]["labels"]["control-plane.threeport.io/helm-workload-instance"],
        "7"
    );
    let mut bad = json!({"kind": "ConfigMap", "metadata": {"labels": "nope"}});
    assert!(add_labels(&mut bad, "d", "i", 1, WORKLOAD_INSTANCE_LABEL).is_err());
}

#[test]
fn threeport_workload_object_mirrors_spec_3_1_6() {
    assert_eq!(
        threeport_workload_name(WorkloadType::WorkloadInstance, 12),
        "workload-instance-12"
    );
    assert_eq!(
        threeport_workload_name(WorkloadType::HelmWorkloadInstance, 12),
        "helm-workload-instance-12"
    );
    let deploy = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"ns1"}});
    let ns = json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"ns1"}});
    let refs = [
        WorkloadResourceRef::from_object(&ns, 100),
        WorkloadResourceRef::from_object(&deploy, 101),
        WorkloadResourceRef::from_object(&deploy, 0),
    ];
    assert_eq!(
        threeport_workload(WorkloadType::WorkloadInstance, 12, &refs),
        json!({
            "apiVersion": "control-plane.threeport.io/v1alpha1",
            "kind": "ThreeportWorkload",
            "metadata": {"name": "workload-instance-12", "creationTimestamp": null},
            "spec": {
                "workloadType": "WorkloadInstance",
                "workloadInstanceId": 12,
                "workloadResourceInstances": [
                    {"name": "ns1", "version": "v1", "kind": "Namespace", "threeportID": 100},
                    {"name": "web", "namespace": "ns1", "group": "apps", "version": "v1", "kind": "Deployment", "threeportID": 101},
                    {"name": "web", "namespace": "ns1", "group": "apps", "version": "v1", "kind": "Deployment"},
                ]
            },
            "status": {}
        })
    );
    assert_eq!(
        threeport_workload(WorkloadType::HelmWorkloadInstance, 3, &[])["spec"],
        json!({"workloadType": "HelmWorkloadInstance", "workloadInstanceId": 3})
    );
}

#[test]
fn managed_namespace_golden_values() {
    // Pinned: a change here would make a retry after an upgrade deploy into a new namespace.
    // Checked independently with Python:
    //   n = int.from_bytes(sha256(b"threeport-manager/managed-namespace/42").digest()[:8], "big")
    //   10 x (alphabet "a-z0-9"[n % 36]; n //= 36)
    assert_eq!(
        managed_namespace_name("wordpress", 42),
        "wordpress-szvd89kqk3"
    );
    assert_eq!(
        managed_namespace_name("wordpress", 1),
        "wordpress-7bbfed8pf7"
    );
}
