//! The deployment artefacts agree with the code and with each other: every manifest parses
//! into Kubernetes types with no unknown field, the cross references hold (ports, probes,
//! secrets, ConfigMaps, labels, selectors, user), the Dockerfile declares what the code and
//! manifests expect, `check-config` accepts the shipped configs, and the dashboard and alert
//! rules use only metric names the manager exports.

mod harness;
use harness::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// Deserialize, failing on any field the type does not know (k8s-openapi types ignore unknown
/// fields silently, so misspelt keys would otherwise pass).
fn strict<T: DeserializeOwned>(what: &str, doc: Value) -> T {
    let mut unknown = Vec::new();
    let value: T = serde_ignored::deserialize(doc, |path| unknown.push(path.to_string()))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(unknown.is_empty(), "{what}: unknown fields {unknown:?}");
    value
}

fn yaml_docs(rel: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(&read(rel))
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{rel}: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

fn manifest_files() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "yaml") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root().join("manifests"), &mut files);
    files.sort();
    files
        .iter()
        .map(|p| {
            p.strip_prefix(root())
                .expect("under root")
                .display()
                .to_string()
        })
        .collect()
}

// Types outside k8s-openapi, with the fields we use, unknown fields rejected.

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Kustomization {
    api_version: String,
    kind: String,
    namespace: Option<String>,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    config_map_generator: Vec<ConfigMapGenerator>,
    #[serde(default)]
    images: Vec<Value>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ConfigMapGenerator {
    name: String,
    behavior: Option<String>,
    files: Vec<String>,
    options: Option<Value>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ServiceMonitor {
    api_version: String,
    kind: String,
    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    spec: ServiceMonitorSpec,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ServiceMonitorSpec {
    selector: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    endpoints: Vec<ServiceMonitorEndpoint>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ServiceMonitorEndpoint {
    port: String,
    path: String,
    interval: String,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PrometheusRule {
    api_version: String,
    kind: String,
    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    spec: RuleSpec,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    groups: Vec<RuleGroup>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RuleGroup {
    name: String,
    rules: Vec<Rule>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Rule {
    alert: String,
    expr: String,
    #[serde(rename = "for")]
    for_: Option<String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

/// Every object in the manifests, parsed strictly by kind.
#[derive(Default)]
struct Manifests {
    deployments: BTreeMap<String, Deployment>,
    services: Vec<Service>,
    pdbs: Vec<PodDisruptionBudget>,
    service_monitors: Vec<ServiceMonitor>,
    rules: Vec<PrometheusRule>,
    kustomizations: BTreeMap<String, Kustomization>,
    crds: Vec<CustomResourceDefinition>,
    network_policies: Vec<NetworkPolicy>,
}

fn load() -> Manifests {
    let mut m = Manifests::default();
    for file in manifest_files() {
        for doc in yaml_docs(&file) {
            let kind = doc["kind"].as_str().unwrap_or_default().to_string();
            let what = format!("{file} ({kind})");
            match kind.as_str() {
                "Deployment" => {
                    let d: Deployment = strict(&what, doc);
                    let key = format!("{file}:{}", d.metadata.name.clone().unwrap_or_default());
                    m.deployments.insert(key, d);
                }
                "Service" => m.services.push(strict(&what, doc)),
                "ConfigMap" => drop(strict::<ConfigMap>(&what, doc)),
                "PodDisruptionBudget" => m.pdbs.push(strict(&what, doc)),
                "ServiceMonitor" => m.service_monitors.push(strict(&what, doc)),
                "PrometheusRule" => m.rules.push(strict(&what, doc)),
                "CustomResourceDefinition" => m.crds.push(strict(&what, doc)),
                "NetworkPolicy" => m.network_policies.push(strict(&what, doc)),
                "Kustomization" => {
                    let k: Kustomization = strict(&what, doc);
                    assert_eq!(k.api_version, "kustomize.config.k8s.io/v1beta1");
                    assert_eq!(k.kind, "Kustomization");
                    m.kustomizations.insert(file.clone(), k);
                }
                other => panic!("{file}: a manifest of kind {other:?} this test does not check"),
            }
        }
    }
    m
}

fn manager_deployment(m: &Manifests) -> &Deployment {
    m.deployments
        .get("manifests/base/deployment.yaml:threeport-manager")
        .expect("base Deployment threeport-manager")
}

#[test]
fn every_manifest_parses_strictly_and_every_kustomization_resource_exists() {
    let m = load();
    assert!(m.deployments.len() >= 2, "base + the scale-downs");
    for (file, k) in &m.kustomizations {
        let dir = root().join(file).parent().expect("dir").to_path_buf();
        assert_eq!(
            k.namespace.as_deref(),
            Some("threeport-control-plane"),
            "{file}"
        );
        for r in &k.resources {
            assert!(dir.join(r).exists(), "{file}: resource {r} does not exist");
        }
        for g in &k.config_map_generator {
            for f in &g.files {
                let src = f.split_once('=').map(|(_, s)| s).unwrap_or(f);
                assert!(
                    dir.join(src).exists(),
                    "{file}: configMapGenerator file {src} does not exist"
                );
            }
            assert!(g
                .behavior
                .as_deref()
                .is_none_or(|b| ["create", "replace", "merge"].contains(&b)));
            let _ = &g.options;
        }
        let _ = &k.images;
    }
}

#[test]
fn manifests_cross_reference_each_other_and_the_code() {
    let m = load();
    let d = manager_deployment(&m);
    let spec = d.spec.as_ref().expect("spec");
    let template = &spec.template;
    let pod_labels = template
        .metadata
        .as_ref()
        .and_then(|md| md.labels.clone())
        .expect("pod labels");
    let selector = spec.selector.match_labels.clone().expect("matchLabels");
    for (k, v) in &selector {
        assert_eq!(
            pod_labels.get(k),
            Some(v),
            "selector {k}={v} matches the pod template"
        );
    }
    let pod = template.spec.as_ref().expect("pod spec");
    let c = &pod.containers[0];
    let defaults = threeport_manager::config::Config::default();

    // Port: the config default, the container port, the Service and the ServiceMonitor agree.
    let port = c
        .ports
        .as_ref()
        .expect("ports")
        .iter()
        .find(|p| p.name.as_deref() == Some("admin"))
        .expect("admin port");
    assert_eq!(port.container_port, i32::from(defaults.admin.listen.port()));
    let svc = m
        .services
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some("threeport-manager"))
        .expect("Service");
    let svc_spec = svc.spec.as_ref().expect("service spec");
    for (k, v) in svc_spec.selector.as_ref().expect("service selector") {
        assert_eq!(pod_labels.get(k), Some(v), "Service selects the pods");
    }
    let svc_port = &svc_spec.ports.as_ref().expect("service ports")[0];
    assert_eq!(
        svc_port.target_port,
        Some(IntOrString::String("admin".into()))
    );
    let sm = &m.service_monitors[0];
    assert_eq!(sm.api_version, "monitoring.coreos.com/v1");
    assert_eq!(sm.kind, "ServiceMonitor");
    assert_eq!(
        sm.endpoints_port(),
        svc_port.name.as_deref().expect("service port name")
    );
    assert_eq!(sm.spec.endpoints[0].path, "/metrics");
    assert!(!sm.spec.endpoints[0].interval.is_empty());
    let svc_labels = svc.metadata.labels.clone().expect("service labels");
    for (k, v) in sm.spec.selector.match_labels.as_ref().expect("sm selector") {
        assert_eq!(
            svc_labels.get(k),
            Some(v),
            "ServiceMonitor selects the Service"
        );
    }
    let _ = &sm.metadata;
    for pdb in &m.pdbs {
        let sel = pdb
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .and_then(|s| s.match_labels.clone())
            .expect("pdb selector");
        for (k, v) in &sel {
            assert_eq!(pod_labels.get(k), Some(v), "PDB selects the pods");
        }
    }

    // Probes hit the admin port at paths the admin server serves (checked live below).
    let ready = c
        .readiness_probe
        .as_ref()
        .and_then(|p| p.http_get.as_ref())
        .expect("readiness httpGet");
    let live = c
        .liveness_probe
        .as_ref()
        .and_then(|p| p.http_get.as_ref())
        .expect("liveness httpGet");
    assert_eq!(ready.path.as_deref(), Some("/readyz"));
    assert_eq!(live.path.as_deref(), Some("/livez"));
    assert_eq!(ready.port, IntOrString::String("admin".into()));
    assert_eq!(live.port, IntOrString::String("admin".into()));

    // Threeport's secrets (spec 1.2) and the certificate mounts where the config expects them.
    let env_secrets: BTreeSet<String> = c
        .env_from
        .as_ref()
        .expect("envFrom")
        .iter()
        .filter_map(|e| e.secret_ref.as_ref().map(|s| s.name.clone()))
        .collect();
    assert_eq!(
        env_secrets,
        BTreeSet::from([
            "controller-config".to_string(),
            "encryption-key".to_string()
        ])
    );
    let volumes: BTreeMap<String, &k8s_openapi::api::core::v1::Volume> = pod
        .volumes
        .as_ref()
        .expect("volumes")
        .iter()
        .map(|v| (v.name.clone(), v))
        .collect();
    let mounts: BTreeMap<String, String> = c
        .volume_mounts
        .as_ref()
        .expect("mounts")
        .iter()
        .map(|m| (m.name.clone(), m.mount_path.clone()))
        .collect();
    for (name, mount) in &mounts {
        assert!(volumes.contains_key(name), "mount {name} has a volume");
        let _ = mount;
    }
    let parent = |p: &Path| p.parent().expect("parent").display().to_string();
    assert_eq!(mounts["threeport-cert"], parent(&defaults.api.cert_file));
    assert_eq!(
        parent(&defaults.api.cert_file),
        parent(&defaults.api.key_file)
    );
    assert_eq!(mounts["threeport-ca"], parent(&defaults.api.ca_file));
    let secret_of = |v: &str| {
        volumes[v]
            .secret
            .as_ref()
            .and_then(|s| s.secret_name.clone())
            .expect("secret volume")
    };
    assert_eq!(secret_of("threeport-cert"), "workload-controller-cert");
    assert_eq!(secret_of("threeport-ca"), "workload-controller-ca");

    // The config file: the ConfigMap generator's name and file, mounted where --config points.
    let base = &m.kustomizations["manifests/base/kustomization.yaml"];
    let gen = &base.config_map_generator[0];
    let cm = volumes["config"]
        .config_map
        .as_ref()
        .expect("configMap volume");
    assert_eq!(cm.name, gen.name);
    let args = c.args.clone().expect("args");
    assert_eq!(args[0], "--config");
    assert_eq!(args[1], format!("{}/{}", mounts["config"], gen.files[0]));
    let overlay = &m.kustomizations["manifests/overlays/replace-go-controllers/kustomization.yaml"];
    assert_eq!(
        overlay.config_map_generator[0].name, gen.name,
        "the overlay replaces the same ConfigMap"
    );
    assert_eq!(
        overlay.config_map_generator[0].behavior.as_deref(),
        Some("replace")
    );

    // Shutdown: the grace period exceeds shutdown_timeout + abort grace + NATS drain (10 s).
    let cfg = load_config("manifests/base/threeport-manager.toml");
    let grace = pod
        .termination_grace_period_seconds
        .expect("terminationGracePeriodSeconds");
    assert!(
        grace as u64 > cfg.shutdown_timeout.as_secs() + 10,
        "grace {grace}s too short for shutdown_timeout"
    );

    // Security: non-root 65532, read-only root, no privilege escalation, no capabilities.
    let psc = pod.security_context.as_ref().expect("pod securityContext");
    assert_eq!(psc.run_as_user, Some(65532));
    assert_eq!(psc.run_as_non_root, Some(true));
    let sc = c
        .security_context
        .as_ref()
        .expect("container securityContext");
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(
        sc.capabilities.as_ref().and_then(|c| c.drop.clone()),
        Some(vec!["ALL".to_string()])
    );
    let resources = c.resources.as_ref().expect("resources");
    assert!(resources
        .requests
        .as_ref()
        .is_some_and(|r| r.contains_key("memory") && r.contains_key("cpu")));
    assert!(resources
        .limits
        .as_ref()
        .is_some_and(|r| r.contains_key("memory")));

    // The overlay scales to zero exactly the Go controllers the manager implements.
    let scaled: BTreeSet<String> = m
        .deployments
        .iter()
        .filter(|(k, _)| k.starts_with("manifests/overlays/replace-go-controllers/"))
        .map(|(_, d)| {
            assert_eq!(d.spec.as_ref().and_then(|s| s.replicas), Some(0));
            d.metadata.name.clone().expect("name")
        })
        .collect();
    let implemented: BTreeSet<String> = threeport_manager::registry::CONTROLLERS
        .iter()
        .filter(|c| c.implemented())
        .map(|c| format!("threeport-{}-controller", c.name))
        .collect();
    assert!(!implemented.is_empty());
    assert_eq!(
        scaled, implemented,
        "scale down exactly the Go controllers the manager replaces"
    );
}

impl ServiceMonitor {
    fn endpoints_port(&self) -> &str {
        &self.spec.endpoints[0].port
    }
}

fn load_config(rel: &str) -> threeport_manager::config::Config {
    threeport_manager::config::Config::load(&threeport_manager::config::LoadSources {
        file: Some(root().join(rel)),
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn check_config(rel: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_threeport-manager"))
        .env_clear()
        .args(["check-config", "--config"])
        .arg(root().join(rel))
        .output()
        .expect("run check-config")
}

#[test]
fn check_config_accepts_the_configmap_configs() {
    let out = check_config("manifests/base/threeport-manager.toml");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The overlay enables exactly the controllers the manager implements (the ones whose Go
    // Deployments it scales down), so following the migration never stops reconciliation.
    let out = check_config("manifests/overlays/replace-go-controllers/threeport-manager.toml");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let overlay = load_config("manifests/overlays/replace-go-controllers/threeport-manager.toml");
    let enabled: Vec<&str> = overlay
        .enabled_controllers()
        .expect("enabled")
        .iter()
        .map(|c| c.name)
        .collect();
    let implemented: Vec<&str> = threeport_manager::registry::CONTROLLERS
        .iter()
        .filter(|c| c.implemented())
        .map(|c| c.name)
        .collect();
    assert_eq!(enabled, implemented);
}

#[test]
fn dockerfile_agrees_with_the_code_and_the_manifests() {
    let dockerfile = read("Dockerfile");
    let lines: Vec<&str> = dockerfile.lines().map(str::trim).collect();
    let last_from = lines
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .expect("FROM");
    let final_stage = &lines[last_from..];
    assert_eq!(
        final_stage[0], "FROM scratch",
        "no shell or package manager at runtime"
    );
    assert!(
        dockerfile.contains("--bin threeport-manager"),
        "builds the manager binary"
    );
    assert!(
        dockerfile.contains("--locked"),
        "reproducible: the locked dependency set"
    );
    // The binary the build stage produces is the one the entrypoint runs.
    assert!(final_stage.contains(&"COPY --from=build /threeport-manager /threeport-manager"));
    assert!(final_stage.contains(&r#"ENTRYPOINT ["/threeport-manager"]"#));
    let user = final_stage
        .iter()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("USER");
    let expose = final_stage
        .iter()
        .find_map(|l| l.strip_prefix("EXPOSE "))
        .expect("EXPOSE");
    let m = load();
    let d = manager_deployment(&m);
    let pod = d
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("pod spec");
    let uid = pod
        .security_context
        .as_ref()
        .and_then(|s| s.run_as_user)
        .expect("runAsUser");
    assert_eq!(user, format!("{uid}:{uid}"));
    let port = pod.containers[0].ports.as_ref().expect("ports")[0].container_port;
    assert_eq!(expose, port.to_string());
    assert_eq!(
        expose,
        threeport_manager::config::Config::default()
            .admin
            .listen
            .port()
            .to_string()
    );
    // Everything the build copies exists, and target/ and local tools stay out of the context.
    for l in lines
        .iter()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let parts: Vec<&str> = l.split_whitespace().collect();
        for src in &parts[1..parts.len() - 1] {
            assert!(root().join(src).exists(), "Dockerfile copies missing {src}");
        }
    }
    // Every file the binary compiles in from outside src/ is in a folder the build copies.
    let copied: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
        .flat_map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            parts[1..parts.len() - 1].to_vec()
        })
        .map(|source| source.trim_start_matches("./").trim_end_matches('/'))
        .collect();
    for included in compiled_in_data_files() {
        let top = included.split('/').next().unwrap_or_default().to_string();
        assert!(
            copied.contains(&top.as_str()),
            "the binary includes {included} but the Dockerfile does not copy {top}/"
        );
    }
    let ignore = read(".dockerignore");
    for entry in ["target", ".tools", ".git"] {
        assert!(
            ignore.lines().any(|l| l.trim() == entry),
            ".dockerignore lacks {entry}"
        );
    }
}

/// Metric names referenced by a PromQL expression.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(pos) = expr[i..].find("threeport_") {
        let start = i + pos;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        out.insert(expr[start..end].to_string());
        i = end;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_and_alerts_use_only_metrics_the_manager_exports() {
    let mut referenced = BTreeSet::new();
    let dashboard: Value =
        serde_json::from_str(&read("manifests/monitoring/grafana-dashboard.json"))
            .expect("dashboard JSON");
    for panel in dashboard["panels"].as_array().expect("panels") {
        for t in panel["targets"].as_array().expect("targets") {
            referenced.extend(metric_names(t["expr"].as_str().expect("expr")));
        }
    }
    for var in dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
    {
        if let Some(q) = var["query"].as_str() {
            referenced.extend(metric_names(q));
        }
    }
    let m = load();
    let mut alerts = 0;
    for rule in &m.rules {
        assert_eq!(rule.api_version, "monitoring.coreos.com/v1");
        assert_eq!(rule.kind, "PrometheusRule");
        let _ = &rule.metadata;
        for g in &rule.spec.groups {
            assert!(!g.name.is_empty());
            for r in &g.rules {
                alerts += 1;
                referenced.extend(metric_names(&r.expr));
                assert!(
                    r.labels.contains_key("severity"),
                    "{}: severity label",
                    r.alert
                );
                assert!(
                    r.annotations.contains_key("summary"),
                    "{}: summary",
                    r.alert
                );
                let _ = &r.for_;
            }
        }
    }
    assert!(
        alerts >= 4,
        "stuck reconciler, error ratio, consumer backlog, NATS down"
    );
    assert!(referenced.len() >= 10, "{referenced:?}");

    // The real /metrics of a running manager with a reconciler bound.
    let cp = common::ControlPlane::start().await;
    let r = common::TestReconciler::succeeding();
    let manager = cp
        .start_manager("WorkloadInstanceReconciler", &r, 2, cp.config())
        .await;
    // One API request so the request counter has a series.
    let _ = cp.api.get(common::WD, 1).await;
    let (code, metrics) = common::http_get(manager.admin_addr(), "/metrics").await;
    assert_eq!(code, 200);
    let exported: BTreeSet<String> = metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next().map(str::to_string))
        .collect();
    let missing: Vec<&String> = referenced
        .iter()
        .filter(|n| !exported.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "referenced but not exported: {missing:?}"
    );
    // And the probe paths of the Deployment answer.
    assert_eq!(
        common::http_get(manager.admin_addr(), "/readyz").await.0,
        200
    );
    assert_eq!(
        common::http_get(manager.admin_addr(), "/livez").await.0,
        200
    );
    manager.shutdown().await;
}

/// The ThreeportWorkload CRD both backends install (manifests/crds) is the resource the
/// workload controller writes, and declares every field the manager puts in its spec: the real
/// kube-apiserver prunes undeclared fields of a structural schema without an error.
#[test]
fn the_threeport_workload_crd_declares_what_the_manager_writes() {
    use threeport_manager::kube::manifest::{
        threeport_workload, WorkloadResourceRef, WorkloadType, THREEPORT_WORKLOAD_API_VERSION,
        THREEPORT_WORKLOAD_KIND,
    };
    let m = load();
    let crd = m
        .crds
        .iter()
        .find(|c| c.spec.names.kind == THREEPORT_WORKLOAD_KIND)
        .expect("ThreeportWorkload CRD in manifests/crds");
    let (group, version) = THREEPORT_WORKLOAD_API_VERSION
        .split_once('/')
        .expect("group/version");
    assert_eq!(crd.spec.group, group);
    assert_eq!(
        crd.spec.scope, "Cluster",
        "ThreeportWorkloads are cluster-scoped"
    );
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some(format!("{}.{group}", crd.spec.names.plural).as_str())
    );
    let v = crd
        .spec
        .versions
        .iter()
        .find(|v| v.name == version)
        .expect("served version");
    assert!(v.served && v.storage);
    assert!(v.subresources.as_ref().is_some_and(|s| s.status.is_some()));
    let schema = serde_json::to_value(
        v.schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("openAPIV3Schema"),
    )
    .expect("schema as JSON");
    let spec_props = &schema["properties"]["spec"]["properties"];
    let item_props = &spec_props["workloadResourceInstances"]["items"]["properties"];
    let obj = threeport_workload(
        WorkloadType::WorkloadInstance,
        u64::MAX,
        &[WorkloadResourceRef {
            name: "web".into(),
            namespace: "ns".into(),
            group: "apps".into(),
            version: "v1".into(),
            kind: "Deployment".into(),
            threeport_id: u64::MAX,
        }],
    );
    let spec = obj["spec"].as_object().expect("spec");
    assert_eq!(spec.len(), 3, "{obj}");
    for key in spec.keys() {
        assert!(
            spec_props.get(key).is_some(),
            "spec.{key} is not in the CRD schema"
        );
    }
    for entry in obj["spec"]["workloadResourceInstances"]
        .as_array()
        .expect("entries")
    {
        let entry = entry.as_object().expect("entry");
        assert_eq!(entry.len(), 6, "{entry:?}");
        for key in entry.keys() {
            assert!(
                item_props.get(key).is_some(),
                "workloadResourceInstances[].{key} is not in the CRD schema"
            );
        }
    }
    assert_eq!(spec_props["workloadType"]["enum"][0], "WorkloadInstance");
}

#[test]
fn the_network_policy_opens_only_the_admin_port_of_the_manager_pods() {
    let m = load();
    let [policy] = m.network_policies.as_slice() else {
        panic!("one NetworkPolicy in the base");
    };
    let spec = policy.spec.as_ref().expect("spec");
    let pod_labels = manager_deployment(&m)
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|md| md.labels.clone())
        .expect("pod labels");
    let selected = spec
        .pod_selector
        .as_ref()
        .and_then(|s| s.match_labels.clone())
        .unwrap_or_default();
    assert!(!selected.is_empty());
    assert!(
        selected.iter().all(|(k, v)| pod_labels.get(k) == Some(v)),
        "the policy selects the manager's pods: {selected:?} vs {pod_labels:?}"
    );
    assert_eq!(
        spec.policy_types.as_deref(),
        Some(&["Ingress".to_string()][..])
    );
    let rules = spec.ingress.as_deref().unwrap_or_default();
    assert_eq!(rules.len(), 1);
    let ports: Vec<String> = rules[0]
        .ports
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.port.as_ref())
        .map(|p| match p {
            IntOrString::String(s) => s.clone(),
            IntOrString::Int(i) => i.to_string(),
        })
        .collect();
    assert_eq!(ports, vec!["admin".to_string()], "only the admin port");
    assert!(
        rules[0].from.as_deref().is_some_and(|f| !f.is_empty()),
        "ingress is limited to chosen peers"
    );
}

/// Repository paths of the files `include_str!` compiles into the binary from outside src/.
fn compiled_in_data_files() -> Vec<String> {
    /// `dir`: the folder being read, as repository path components.
    fn walk(dir: Vec<String>, out: &mut Vec<String>) {
        let folder: std::path::PathBuf = dir.iter().collect();
        for entry in std::fs::read_dir(root().join(&folder)).expect("read src") {
            let entry = entry.expect("entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().is_dir() {
                walk([dir.clone(), vec![name]].concat(), out);
                continue;
            }
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            for call in text.split("include_str!(").skip(1) {
                let Some(relative) = call.split('"').nth(1) else {
                    continue;
                };
                let mut target = dir.clone();
                for part in relative.split('/') {
                    match part {
                        ".." => drop(target.pop()),
                        "." | "" => {}
                        name => target.push(name.to_string()),
                    }
                }
                if target.first().map(String::as_str) != Some("src") {
                    out.push(target.join("/"));
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(vec!["src".to_string()], &mut out);
    assert!(
        !out.is_empty(),
        "the runtime install data files are compiled in"
    );
    out
}
