//! The Kubernetes sandbox against kube-rs itself: discovery, typed and dynamic APIs, TLS with
//! a client certificate or a bearer token, Status errors, selectors, CRDs, server-side apply,
//! merge patch, faults, counters, and registration in the Threeport sandbox.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::{Discovery, Scope};
use kube::{Client, Config};
use sandbox::kube::{
    KubeRouteFilter, KubeSandbox, KubeSandboxHandle, KubeSandboxOptions, RuntimeAuth,
};
use serde_json::{json, Value};

async fn start() -> KubeSandboxHandle {
    KubeSandbox::start(KubeSandboxOptions::default())
        .await
        .expect("start kube sandbox")
}

async fn config_from_yaml(yaml: &str) -> Config {
    let kc = Kubeconfig::from_yaml(yaml).expect("kubeconfig");
    Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config")
}

async fn cert_client(k: &KubeSandboxHandle) -> Client {
    Client::try_from(config_from_yaml(&k.kubeconfig_yaml()).await).expect("client")
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

async fn token_client(k: &KubeSandboxHandle, token: &str) -> Client {
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: s\n  cluster:\n    server: {}\n    certificate-authority-data: {}\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: s\n  context:\n    cluster: s\n    user: u\ncurrent-context: s\n",
        k.url(),
        b64(k.ca_pem())
    );
    Client::try_from(config_from_yaml(&yaml).await).expect("client")
}

async fn anonymous_client(k: &KubeSandboxHandle) -> Client {
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: s\n  cluster:\n    server: {}\n    certificate-authority-data: {}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: s\n  context:\n    cluster: s\n    user: u\ncurrent-context: s\n",
        k.url(),
        b64(k.ca_pem())
    );
    Client::try_from(config_from_yaml(&yaml).await).expect("client")
}

fn api_err(e: kube::Error) -> Box<kube::core::Status> {
    match e {
        kube::Error::Api(s) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn deployment(name: &str, labels: &[(&str, &str)], replicas: i32) -> Deployment {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}
            }
        }
    }))
    .expect("deployment")
}

async fn create_ns(client: &Client, name: &str) {
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).expect("ns");
    nss.create(&PostParams::default(), &ns)
        .await
        .expect("create ns");
}

#[tokio::test]
async fn kube_discovery_run_finds_builtins_and_counts_requests() {
    let k = start().await;
    let client = cert_client(&k).await;
    let v = client.apiserver_version().await.expect("version");
    assert_eq!(v.major, "1");

    let d = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    for (g, v, kind, scope) in [
        ("apps", "v1", "Deployment", Scope::Namespaced),
        ("apps", "v1", "StatefulSet", Scope::Namespaced),
        ("", "v1", "Namespace", Scope::Cluster),
        ("", "v1", "ConfigMap", Scope::Namespaced),
        ("batch", "v1", "CronJob", Scope::Namespaced),
        ("networking.k8s.io", "v1", "Ingress", Scope::Namespaced),
        (
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            Scope::Cluster,
        ),
        (
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            Scope::Cluster,
        ),
    ] {
        let (ar, caps) = d
            .resolve_gvk(&GroupVersionKind::gvk(g, v, kind))
            .unwrap_or_else(|| panic!("{g}/{v} {kind} not discovered"));
        assert_eq!(caps.scope, scope, "{kind}");
        assert!(caps.supports_operation("create"), "{kind}");
        assert!(!ar.plural.is_empty());
    }
    let c = k.counters();
    // /apis, one per group, /api, /api/v1 (+ /version above).
    assert!(c.discovery_total() >= 8, "{c:?}");
    assert_eq!(c.get("discovery", "/apis"), 1);
    assert_eq!(c.get("discovery", "/apis/apps/v1"), 1);
    assert_eq!(c.get("discovery", "/version"), 1);

    // Aggregated discovery: two requests.
    let before = k.counters().discovery_total();
    let d = Discovery::new(client.clone())
        .run_aggregated()
        .await
        .expect("aggregated discovery");
    let (ar, _) = d
        .resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"))
        .expect("deployments in aggregated discovery");
    assert_eq!(ar.plural, "deployments");
    assert!(d
        .resolve_gvk(&GroupVersionKind::gvk("", "v1", "Secret"))
        .is_some());
    assert_eq!(k.counters().discovery_total() - before, 2);
    k.shutdown().await;
}

#[tokio::test]
async fn kube_typed_deployment_crud_with_client_cert() {
    let k = start().await;
    let client = cert_client(&k).await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");

    let created = api
        .create(
            &PostParams::default(),
            &deployment("web", &[("app", "web")], 1),
        )
        .await
        .expect("create");
    let md = &created.metadata;
    assert!(md.uid.as_deref().is_some_and(|u| u.len() == 36));
    assert!(md.creation_timestamp.is_some());
    assert_eq!(md.generation, Some(1));
    assert_eq!(md.namespace.as_deref(), Some("default"));
    let rv1: u64 = md
        .resource_version
        .as_deref()
        .expect("rv")
        .parse()
        .expect("numeric rv");

    let got = api.get("web").await.expect("get");
    assert_eq!(got.metadata.uid, md.uid);

    // Twice: 409 AlreadyExists.
    let e = api_err(
        api.create(&PostParams::default(), &deployment("web", &[], 1))
            .await
            .expect_err("second create"),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(e.message, "deployments.apps \"web\" already exists");

    // Replace bumps resourceVersion and generation (spec changed).
    let mut d = got.clone();
    d.spec.as_mut().expect("spec").replicas = Some(3);
    let replaced = api
        .replace("web", &PostParams::default(), &d)
        .await
        .expect("replace");
    let rv2: u64 = replaced
        .metadata
        .resource_version
        .as_deref()
        .expect("rv")
        .parse()
        .expect("numeric");
    assert!(rv2 > rv1);
    assert_eq!(replaced.metadata.generation, Some(2));

    // Optimistic concurrency: the stale object is refused.
    let e = api_err(
        api.replace("web", &PostParams::default(), &d)
            .await
            .expect_err("stale replace"),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert!(
        e.message.contains("the object has been modified"),
        "{}",
        e.message
    );

    // A label-only change does not bump generation.
    let mut d = replaced.clone();
    d.metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert("tier".into(), "front".into());
    let relabelled = api
        .replace("web", &PostParams::default(), &d)
        .await
        .expect("replace labels");
    assert_eq!(relabelled.metadata.generation, Some(2));

    let list = api.list(&ListParams::default()).await.expect("list");
    assert_eq!(list.items.len(), 1);
    assert!(list.metadata.resource_version.is_some());

    let deleted = api
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(deleted.is_right(), "deployments answer a Status on delete");
    let e = api_err(api.get("web").await.expect_err("gone"));
    assert_eq!((e.code, e.reason.as_str()), (404, "NotFound"));
    assert_eq!(e.message, "deployments.apps \"web\" not found");
    let e = api_err(
        api.delete("web", &DeleteParams::default())
            .await
            .expect_err("delete twice"),
    );
    assert_eq!(e.code, 404);
    assert!(k
        .get_object("apps/v1", "Deployment", Some("default"), "web")
        .is_none());
    k.shutdown().await;
}

#[tokio::test]
async fn kube_bearer_token_and_no_credentials() {
    let k = start().await;
    let token = token_client(&k, k.token()).await;
    let api: Api<ConfigMap> = Api::namespaced(token, "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"a": "1"}})).expect("cm");
    api.create(&PostParams::default(), &cm)
        .await
        .expect("create with token");
    assert_eq!(
        api.get("c").await.expect("get").data.expect("data")["a"],
        "1"
    );

    for client in [token_client(&k, "wrong").await, anonymous_client(&k).await] {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
        let e = api_err(api.get("c").await.expect_err("unauthenticated"));
        assert_eq!((e.code, e.reason.as_str()), (401, "Unauthorized"));
        let e = api_err(
            client
                .apiserver_version()
                .await
                .expect_err("version needs auth"),
        );
        assert_eq!(e.code, 401);
    }
    assert!(k.counters().verb_total("unauthenticated") >= 4);
    k.shutdown().await;
}

#[tokio::test]
async fn kube_errors_validation_and_paths() {
    let k = start().await;
    let client = cert_client(&k).await;

    // Namespace must exist.
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "nope");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "c"}})).expect("cm");
    let e = api_err(
        api.create(&PostParams::default(), &cm)
            .await
            .expect_err("no ns"),
    );
    assert_eq!((e.code, e.reason.as_str()), (404, "NotFound"));
    assert_eq!(e.message, "namespaces \"nope\" not found");

    // Invalid names: 422.
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let bad: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "Bad_Name"}})).expect("cm");
    let e = api_err(
        api.create(&PostParams::default(), &bad)
            .await
            .expect_err("invalid"),
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert!(
        e.message
            .starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value"),
        "{}",
        e.message
    );
    let nss: Api<Namespace> = Api::all(client.clone());
    let long = "a".repeat(64);
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": long}})).expect("ns");
    let e = api_err(
        nss.create(&PostParams::default(), &ns)
            .await
            .expect_err("long ns"),
    );
    assert_eq!(e.code, 422);
    let noname: ConfigMap = serde_json::from_value(json!({"metadata": {}})).expect("cm");
    let e = api_err(
        api.create(&PostParams::default(), &noname)
            .await
            .expect_err("no name"),
    );
    assert_eq!(e.code, 422);
    let gen: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "x-"}})).expect("cm");
    let made = api
        .create(&PostParams::default(), &gen)
        .await
        .expect("generateName");
    assert!(made
        .metadata
        .name
        .as_deref()
        .is_some_and(|n| n.starts_with("x-") && n.len() == 7));

    // Body apiVersion/kind must match the path.
    let raw: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::erase::<ConfigMap>(&()),
    );
    let mut wrong = DynamicObject::new("w", &ApiResource::erase::<Deployment>(&()));
    wrong.data = json!({});
    let e = api_err(
        raw.create(&PostParams::default(), &wrong)
            .await
            .expect_err("kind mismatch"),
    );
    assert_eq!((e.code, e.reason.as_str()), (400, "BadRequest"));

    // Cluster-scoped vs namespaced paths.
    let all: Api<ConfigMap> = Api::all(client.clone());
    let cms = all
        .list(&ListParams::default())
        .await
        .expect("all-namespaces list");
    assert_eq!(cms.items.len(), 1);
    let e = api_err(
        all.get("anything")
            .await
            .expect_err("namespaced get without ns"),
    );
    assert_eq!(e.code, 404);
    let ns_list = nss.list(&ListParams::default()).await.expect("namespaces");
    let names: Vec<String> = ns_list
        .items
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    assert_eq!(
        names,
        ["default", "kube-node-lease", "kube-public", "kube-system"]
    );

    // Dry run stores nothing.
    let dry: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "dry"}})).expect("cm");
    api.create(
        &PostParams {
            dry_run: true,
            ..Default::default()
        },
        &dry,
    )
    .await
    .expect("dry run");
    assert!(k
        .get_object("v1", "ConfigMap", Some("default"), "dry")
        .is_none());

    // Watch is not implemented: a clear 405.
    let e = api_err(
        api.watch(&kube::api::WatchParams::default(), "0")
            .await
            .err()
            .expect("watch refused"),
    );
    assert_eq!(e.code, 405);
    assert!(e.message.contains("watch is not implemented"));
    k.shutdown().await;
}

#[tokio::test]
async fn kube_label_selectors() {
    let k = start().await;
    let client = cert_client(&k).await;
    create_ns(&client, "other").await;
    for (ns, name, labels) in [
        ("default", "a", vec![("app", "web"), ("tier", "front")]),
        ("default", "b", vec![("app", "db")]),
        ("other", "c", vec![("app", "web")]),
        ("other", "d", vec![]),
    ] {
        let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
        api.create(&PostParams::default(), &deployment(name, &labels, 1))
            .await
            .expect("create");
    }
    let all: Api<Deployment> = Api::all(client.clone());
    let names = |l: kube::core::ObjectList<Deployment>| -> Vec<String> {
        l.items
            .into_iter()
            .filter_map(|d| d.metadata.name)
            .collect()
    };
    for (sel, want) in [
        ("app=web", vec!["a", "c"]),
        ("app==web", vec!["a", "c"]),
        ("app!=web", vec!["b", "d"]),
        ("app in (web,db)", vec!["a", "b", "c"]),
        ("app notin (web)", vec!["b", "d"]),
        ("tier", vec!["a"]),
        ("!app", vec!["d"]),
        ("app=web,tier=front", vec!["a"]),
    ] {
        let got = names(
            all.list(&ListParams::default().labels(sel))
                .await
                .expect("list"),
        );
        assert_eq!(got, want, "{sel}");
    }
    let ns_api: Api<Deployment> = Api::namespaced(client.clone(), "other");
    let got = names(
        ns_api
            .list(&ListParams::default().labels("app=web"))
            .await
            .expect("list"),
    );
    assert_eq!(got, ["c"]);
    let got = names(
        all.list(&ListParams::default().fields("metadata.name=b"))
            .await
            .expect("list"),
    );
    assert_eq!(got, ["b"]);
    let e = api_err(
        all.list(&ListParams::default().labels("app in (web"))
            .await
            .expect_err("bad selector"),
    );
    assert_eq!(e.code, 400);
    assert_eq!(k.counters().get("list", "deployments"), 11);
    k.shutdown().await;
}

#[tokio::test]
async fn kube_namespace_deletion_cascades() {
    let k = start().await;
    let client = cert_client(&k).await;
    create_ns(&client, "team").await;
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns = nss.get("team").await.expect("ns");
    assert_eq!(ns.status.and_then(|s| s.phase).as_deref(), Some("Active"));
    assert_eq!(
        ns.metadata.labels.expect("labels")["kubernetes.io/metadata.name"],
        "team"
    );
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "team");
    deps.create(&PostParams::default(), &deployment("x", &[], 1))
        .await
        .expect("create");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "c"}})).expect("cm");
    cms.create(&PostParams::default(), &cm).await.expect("cm");
    let kept: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    kept.create(&PostParams::default(), &cm)
        .await
        .expect("cm in default");

    let gone = nss
        .delete("team", &DeleteParams::default())
        .await
        .expect("delete ns");
    let ns = gone.left().expect("namespace delete answers the object");
    assert_eq!(
        ns.status.and_then(|s| s.phase).as_deref(),
        Some("Terminating")
    );
    assert!(k.objects("apps/v1", "Deployment", Some("team")).is_empty());
    assert!(k.objects("v1", "ConfigMap", Some("team")).is_empty());
    assert_eq!(k.objects("v1", "ConfigMap", None).len(), 1);
    let e = api_err(deps.get("x").await.expect_err("gone"));
    assert_eq!(e.code, 404);
    k.shutdown().await;
}

fn widget_crd(scope: &str) -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "scope": scope,
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                "subresources": {"status": {}}
            }]
        }
    }))
    .expect("crd")
}

#[tokio::test]
async fn kube_crd_then_custom_resource() {
    let k = start().await;
    let client = cert_client(&k).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crds
        .create(&PostParams::default(), &widget_crd("Namespaced"))
        .await
        .expect("create crd");
    let established = crd
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Established" && c.status == "True");
    assert!(established);

    let d = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    let (ar, caps) = d.resolve_gvk(&gvk).expect("widget discovered");
    assert_eq!(ar.plural, "widgets");
    assert_eq!(caps.scope, Scope::Namespaced);

    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let mut w = DynamicObject::new("w1", &ar);
    w.data = json!({"spec": {"size": 3}, "status": {"ignored": true}});
    let made = api
        .create(&PostParams::default(), &w)
        .await
        .expect("create widget");
    assert_eq!(made.metadata.generation, Some(1));
    assert_eq!(made.data["spec"]["size"], 3);
    assert!(made.data.get("status").is_none(), "status is a subresource");
    let list = api
        .list(&ListParams::default())
        .await
        .expect("list widgets");
    assert_eq!(list.items.len(), 1);
    assert_eq!(k.objects("example.com/v1", "Widget", None).len(), 1);

    // Deleting the CRD removes the resource from discovery and its objects.
    let del = crds
        .delete("widgets.example.com", &DeleteParams::default())
        .await
        .expect("delete crd");
    assert!(del.is_left());
    let d = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    assert!(d.resolve_gvk(&gvk).is_none());
    assert!(!d.has_group("example.com"));
    let e = api_err(api.get("w1").await.expect_err("resource gone"));
    assert_eq!(e.code, 404);

    // Recreated: empty, and cluster-scoped now.
    crds.create(&PostParams::default(), &widget_crd("Cluster"))
        .await
        .expect("recreate");
    let d = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    let (ar, caps) = d.resolve_gvk(&gvk).expect("widget again");
    assert_eq!(caps.scope, Scope::Cluster);
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    assert!(api
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .is_empty());

    // A CRD whose name is not <plural>.<group> is invalid.
    let mut bad = widget_crd("Cluster");
    bad.metadata.name = Some("gadgets.example.com".into());
    let e = api_err(
        crds.create(&PostParams::default(), &bad)
            .await
            .expect_err("bad crd name"),
    );
    assert_eq!(e.code, 422);
    k.shutdown().await;
}

#[tokio::test]
async fn kube_server_side_apply() {
    let k = start().await;
    let client = cert_client(&k).await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let pp = PatchParams::apply("threeport-manager").force();

    // Create through apply.
    let cfg = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "app", "labels": {"managed": "yes", "drop-me": "x"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "app"}},
                 "template": {"metadata": {"labels": {"app": "app"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}
    });
    let d = api
        .patch("app", &pp, &Patch::Apply(&cfg))
        .await
        .expect("apply create");
    assert_eq!(d.metadata.generation, Some(1));
    let mf = d.metadata.managed_fields.clone().expect("managedFields");
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0].manager.as_deref(), Some("threeport-manager"));
    assert_eq!(mf[0].operation.as_deref(), Some("Apply"));
    assert_eq!(mf[0].fields_type.as_deref(), Some("FieldsV1"));

    // Another manager adds a label and an annotation with a merge patch.
    let other = PatchParams {
        field_manager: Some("someone-else".into()),
        ..Default::default()
    };
    api.patch(
        "app",
        &other,
        &Patch::Merge(
            json!({"metadata": {"labels": {"theirs": "1"}, "annotations": {"note": "n"}}}),
        ),
    )
    .await
    .expect("merge patch");

    // Re-apply: change replicas and image, stop applying the `drop-me` label.
    let mut cfg2 = cfg.clone();
    cfg2["metadata"]["labels"] = json!({"managed": "yes"});
    cfg2["spec"]["replicas"] = json!(3);
    cfg2["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    let d = api
        .patch("app", &pp, &Patch::Apply(&cfg2))
        .await
        .expect("re-apply");
    let labels = d.metadata.labels.clone().expect("labels");
    assert_eq!(labels.get("managed").map(String::as_str), Some("yes"));
    assert!(
        !labels.contains_key("drop-me"),
        "field no longer applied is removed"
    );
    assert_eq!(
        labels.get("theirs").map(String::as_str),
        Some("1"),
        "other manager's label kept"
    );
    assert_eq!(
        d.metadata.annotations.clone().expect("annotations")["note"],
        "n"
    );
    let spec = d.spec.clone().expect("spec");
    assert_eq!(spec.replicas, Some(3));
    assert_eq!(
        spec.template.spec.expect("pod spec").containers[0]
            .image
            .as_deref(),
        Some("nginx:2")
    );
    assert_eq!(d.metadata.generation, Some(2));
    let managers: Vec<String> = d
        .metadata
        .managed_fields
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers.contains(&"someone-else".to_string()),
        "{managers:?}"
    );

    // Same config again: no write, same resourceVersion.
    let again = api
        .patch("app", &pp, &Patch::Apply(&cfg2))
        .await
        .expect("idempotent apply");
    assert_eq!(again.metadata.resource_version, d.metadata.resource_version);

    // A conflicting apply without force is refused; with force it wins.
    let theirs = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "app"}, "spec": {"replicas": 5}});
    let e = api_err(
        api.patch(
            "app",
            &PatchParams::apply("someone-else"),
            &Patch::Apply(&theirs),
        )
        .await
        .expect_err("conflict"),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert!(e.message.contains("threeport-manager"), "{}", e.message);
    let d = api
        .patch(
            "app",
            &PatchParams::apply("someone-else").force(),
            &Patch::Apply(&theirs),
        )
        .await
        .expect("forced");
    assert_eq!(d.spec.expect("spec").replicas, Some(5));

    // Merge patch with a stale resourceVersion conflicts.
    let e = api_err(
        api.patch(
            "app",
            &other,
            &Patch::Merge(json!({"metadata": {"resourceVersion": "1"}})),
        )
        .await
        .expect_err("stale merge"),
    );
    assert_eq!(e.code, 409);

    // Strategic merge patch is not implemented: 415.
    let e = api_err(
        api.patch(
            "app",
            &other,
            &Patch::Strategic(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .expect_err("strategic"),
    );
    assert_eq!(e.code, 415);
    // Apply needs a field manager.
    let e = api_err(
        api.patch("app", &PatchParams::default(), &Patch::Apply(&cfg2))
            .await
            .expect_err("no manager"),
    );
    assert_eq!(e.code, 400);
    assert_eq!(k.counters().get("patch", "deployments"), 9);
    k.shutdown().await;
}

#[tokio::test]
async fn kube_faults_and_latency() {
    let k = start().await;
    let client = cert_client(&k).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "c"}})).expect("cm");
    // kube-rs retries 429/503/504 by default (`Config::default_retry`): a single 503 is
    // invisible to the caller, but counted.
    k.faults().fail_next(
        1,
        503,
        KubeRouteFilter {
            verb: Some("create"),
            resource: Some("configmaps".into()),
        },
    );
    api.create(&PostParams::default(), &cm)
        .await
        .expect("retried past the 503");
    let c = k.counters();
    assert_eq!(c.get("create", "configmaps"), 2);
    assert_eq!(c.get_status("create", "configmaps", 503), 1);
    assert_eq!(c.get_status("create", "configmaps", 201), 1);

    // A 500 is not retried, and has no side effect.
    k.faults().fail_next(
        1,
        500,
        KubeRouteFilter {
            verb: Some("delete"),
            resource: None,
        },
    );
    let e = api_err(
        api.delete("c", &DeleteParams::default())
            .await
            .expect_err("fault"),
    );
    assert_eq!((e.code, e.reason.as_str()), (500, "InternalError"));
    assert_eq!(e.message, "sandbox: injected fault");
    assert!(
        k.get_object("v1", "ConfigMap", Some("default"), "c")
            .is_some(),
        "no side effect"
    );
    assert_eq!(k.counters().get_status("delete", "configmaps", 500), 1);

    k.faults()
        .set_latency(std::time::Duration::from_millis(150));
    let t = std::time::Instant::now();
    api.get("c").await.expect("slow get");
    assert!(t.elapsed() >= std::time::Duration::from_millis(150));
    k.faults().set_error_rate(1.0, 500);
    let e = api_err(api.get("c").await.expect_err("error rate"));
    assert_eq!(e.code, 500);
    k.faults().clear();
    api.get("c").await.expect("cleared");
    k.shutdown().await;
}

#[tokio::test]
async fn kube_register_runtime_encrypts_credentials() {
    use base64::Engine as _;
    let key_b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let tp = sandbox::threeport::SandboxApi::start(sandbox::threeport::SandboxOptions {
        encryption_key: Some(key_b64.clone()),
        ..Default::default()
    })
    .await
    .expect("threeport sandbox");
    let k = start().await;
    let key = sandbox::threeport::crypto::Key::from_base64(&key_b64).expect("key");

    let id = k
        .register_runtime(&tp, "local", RuntimeAuth::ClientCert)
        .await
        .expect("register");
    let kri = tp
        .get_object("kubernetes-runtime-instances", id)
        .expect("kri");
    assert_eq!(kri["Name"], "local");
    assert_eq!(kri["APIEndpoint"], json!(k.url()));
    assert_eq!(kri["CACertificate"], json!(k.ca_pem()));
    assert_eq!(kri["Certificate"], json!(k.client_cert_pem()));
    assert_eq!(kri["DefaultRuntime"], true);
    let stored = kri["CertificateKey"].as_str().expect("CertificateKey");
    assert_ne!(stored, k.client_key_pem());
    assert_eq!(key.decrypt(stored).expect("decrypt"), k.client_key_pem());
    let def_id = kri["KubernetesRuntimeDefinitionID"]
        .as_u64()
        .expect("def id");
    let def = tp
        .get_object("kubernetes-runtime-definitions", def_id)
        .expect("krd");
    assert_eq!(def["Name"], "local-def");
    assert_eq!(def["InfraProvider"], "kind");

    let id = k
        .register_runtime(&tp, "tok", RuntimeAuth::Token)
        .await
        .expect("register token");
    let kri: Value = tp
        .get_object("kubernetes-runtime-instances", id)
        .expect("kri");
    let stored = kri["ConnectionToken"].as_str().expect("token");
    assert_ne!(stored, k.token());
    assert_eq!(key.decrypt(stored).expect("decrypt"), k.token());
    assert!(kri.get("CertificateKey").is_none_or(Value::is_null));

    // The stored (decrypted) credentials work against the sandbox.
    let client = token_client(&k, &key.decrypt(stored).expect("decrypt")).await;
    client.apiserver_version().await.expect("token works");
    k.shutdown().await;
    tp.shutdown().await;
}

#[tokio::test]
async fn kube_status_subresource_pagination_and_list_items() {
    let k = start().await;
    let client = cert_client(&k).await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    for n in ["a", "b", "c", "d", "e"] {
        api.create(&PostParams::default(), &deployment(n, &[("app", "x")], 1))
            .await
            .expect("create");
    }

    // Status is a subresource: ignored by create/replace, written through /status.
    let d = api.get("a").await.expect("get");
    assert!(d.status.is_none());
    let patched = api
        .patch_status(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"readyReplicas": 1, "replicas": 1}})),
        )
        .await
        .expect("patch status");
    assert_eq!(
        patched.status.as_ref().and_then(|s| s.ready_replicas),
        Some(1)
    );
    assert_eq!(patched.metadata.generation, Some(1));
    let mut d = patched.clone();
    d.status.as_mut().expect("status").ready_replicas = Some(7);
    d.spec.as_mut().expect("spec").replicas = Some(2);
    let replaced = api
        .replace("a", &PostParams::default(), &d)
        .await
        .expect("replace");
    assert_eq!(
        replaced.status.and_then(|s| s.ready_replicas),
        Some(1),
        "status kept"
    );
    assert_eq!(replaced.spec.and_then(|s| s.replicas), Some(2));
    let st = k
        .set_status(
            "apps/v1",
            "Deployment",
            Some("default"),
            "b",
            json!({"availableReplicas": 1}),
        )
        .expect("set_status");
    assert_eq!(st["status"]["availableReplicas"], 1);
    assert_eq!(
        api.get_status("b")
            .await
            .expect("get status")
            .status
            .and_then(|s| s.available_replicas),
        Some(1)
    );
    assert_eq!(k.counters().get("patch", "deployments/status"), 1);

    // Subresources appear in discovery.
    let d = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    let (_, caps) = d
        .resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"))
        .expect("deployments");
    assert!(
        caps.subresources
            .iter()
            .any(|(ar, _)| ar.plural == "status"),
        "{caps:?}"
    );

    // limit/continue.
    let mut names = Vec::new();
    let mut lp = ListParams::default().limit(2);
    let mut pages = 0;
    loop {
        let page = api.list(&lp).await.expect("page");
        pages += 1;
        names.extend(page.items.iter().filter_map(|d| d.metadata.name.clone()));
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
            _ => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, ["a", "b", "c", "d", "e"]);

    // Like the real server, items of built-in lists have no apiVersion/kind; custom ones do.
    let raw: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::erase::<Deployment>(&()),
    );
    let list = raw
        .list(&ListParams::default())
        .await
        .expect("dynamic list");
    assert!(list.items.iter().all(|o| o.types.is_none()));
    k.shutdown().await;
}

#[tokio::test]
async fn kube_json_patch_and_foreign_client_cert() {
    let k = start().await;
    let client = cert_client(&k).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "c", "labels": {"a": "1", "b": "2"}}, "data": {"k": "v"}}),
    )
    .expect("cm");
    api.create(&PostParams::default(), &cm)
        .await
        .expect("create");
    // kube's `Patch::Json` needs its `jsonpatch` feature; send the request directly.
    let ops = json!([
        {"op": "remove", "path": "/metadata/labels/b"},
        {"op": "replace", "path": "/data/k", "value": "w"}
    ]);
    let req = hyper::Request::patch("/api/v1/namespaces/default/configmaps/c")
        .header("content-type", "application/json-patch+json")
        .body(serde_json::to_vec(&ops).expect("ops"))
        .expect("request");
    let c: ConfigMap = client.request(req).await.expect("json patch");
    assert_eq!(c.metadata.labels.expect("labels").len(), 1);
    assert_eq!(c.data.expect("data")["k"], "w");

    // A client certificate from another CA fails the TLS handshake (not a 401), as with a
    // real server configured with --client-ca-file.
    let other = start().await;
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: s\n  cluster:\n    server: {}\n    certificate-authority-data: {}\nusers:\n- name: u\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: s\n  context:\n    cluster: s\n    user: u\ncurrent-context: s\n",
        k.url(),
        b64(k.ca_pem()),
        b64(other.client_cert_pem()),
        b64(other.client_key_pem())
    );
    let foreign = Client::try_from(config_from_yaml(&yaml).await).expect("client");
    let e = foreign
        .apiserver_version()
        .await
        .expect_err("foreign cert refused");
    assert!(!matches!(e, kube::Error::Api(_)), "{e:?}");
    other.shutdown().await;
    k.shutdown().await;
}
