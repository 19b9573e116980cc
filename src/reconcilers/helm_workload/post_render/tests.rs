use serde_json::json;

use super::*;

const RENDERED: &str = "---
# Source: web/templates/configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  greeting: hello
---
# Source: web/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app.kubernetes.io/name: chart-chosen
spec:
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: nginx:1.27
";

fn spec(additional: Vec<Value>) -> PostRenderSpec {
    PostRenderSpec {
        definition_name: "web-chart".into(),
        instance_name: "web-1".into(),
        instance_id: 42,
        release_namespace: "web-1-ns".into(),
        additional_resources: additional,
    }
}

fn objects(out: &str) -> Vec<Value> {
    split_yaml(out).expect("the output is a YAML stream")
}

#[test]
fn every_chart_object_gets_threeports_labels_and_pod_templates_the_instance_label() {
    let out = objects(&post_render(RENDERED, &spec(vec![])).unwrap());
    assert_eq!(out.len(), 2);
    for o in &out {
        let labels = &o["metadata"]["labels"];
        assert_eq!(labels[HELM_WORKLOAD_INSTANCE_LABEL], "42", "{o}");
        assert_eq!(labels["control-plane.threeport.io/managed-by"], "threeport");
        assert_eq!(labels["app.kubernetes.io/instance"], "web-1");
    }
    // A label the chart sets is the chart's.
    assert_eq!(
        out[1]["metadata"]["labels"]["app.kubernetes.io/name"],
        "chart-chosen"
    );
    assert_eq!(
        out[0]["metadata"]["labels"]["app.kubernetes.io/name"],
        "web-chart"
    );
    let template = &out[1]["spec"]["template"]["metadata"]["labels"];
    assert_eq!(template[HELM_WORKLOAD_INSTANCE_LABEL], "42");
    assert_eq!(template["app"], "web");
    assert_eq!(out[0]["data"]["greeting"], "hello");
}

#[test]
fn additional_resources_come_after_the_chart_in_the_release_namespace() {
    // Threeport returns only these two and drops the chart (spec 4.5 item 37).
    let extra = vec![
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "elsewhere"}, "stringData": {"k": "v"}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "web-sa"}}),
    ];
    let out = objects(&post_render(RENDERED, &spec(extra)).unwrap());
    let names: Vec<(&str, &str)> = out
        .iter()
        .map(|o| {
            (
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("ConfigMap", "web-config"),
            ("Deployment", "web"),
            ("Secret", "db"),
            ("ServiceAccount", "web-sa")
        ]
    );
    for o in &out[2..] {
        assert_eq!(o["metadata"]["namespace"], "web-1-ns");
        assert_eq!(o["metadata"]["labels"][HELM_WORKLOAD_INSTANCE_LABEL], "42");
    }
    assert_eq!(out[2]["stringData"]["k"], "v");
}

#[test]
fn an_empty_chart_with_additional_resources_is_just_those() {
    let extra =
        vec![json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "only"}})];
    let out = objects(&post_render("", &spec(extra)).unwrap());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["metadata"]["name"], "only");
}

#[test]
fn bad_input_is_an_error_naming_it() {
    let err = post_render("kind: [unclosed", &spec(vec![])).expect_err("bad YAML");
    assert!(err.to_string().starts_with("the rendered chart"), "{err}");
    for (bad, why) in [
        (json!({"kind": "ConfigMap"}), "apiVersion and kind"),
        (json!("a string"), "apiVersion and kind"),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": "x"}),
            "metadata",
        ),
    ] {
        let err = post_render(RENDERED, &spec(vec![bad.clone()])).expect_err("bad resource");
        let text = err.to_string();
        assert!(
            text.contains("additional resource 0") && text.contains(why),
            "{bad}: {text}"
        );
    }
}
