//! Differential test against Threeport's own Go workload-controller (v0.6.1).
//!
//! The same definitions and instances are reconciled by the Go controller on one fresh real
//! stack and by the manager on another. After create, and again after deleting the instances,
//! both stacks are snapshotted through their APIs: the Kubernetes objects the controllers made
//! (labelled objects, managed namespaces, ThreeportWorkloads) and the Threeport objects (WRDs,
//! WRIs, workload events, events), with what legitimately differs between two runs removed
//! (uid, resourceVersion, managedFields, timestamps, IDs, the random managed-namespace suffix).
//!
//! Every difference must be either fixed or one of [`DELIBERATE`], each of which README.md
//! lists as an improvement with its reason. A difference not on that list fails the test, and
//! so does a listed one that no longer shows (the list must stay true).

mod harness;
use harness::{backend, go_controller, workload_suite};

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use backend::{Stack, SYSTEM_NAMESPACES};
use go_controller::GoController;
use serde_json::{json, Map, Value};
use threeport_manager::threeport::models::{
    EVENT, WORKLOAD_DEFINITION, WORKLOAD_EVENT, WORKLOAD_INSTANCE, WORKLOAD_RESOURCE_DEFINITION,
    WORKLOAD_RESOURCE_INSTANCE,
};
use threeport_manager::threeport::ThreeportApi;
use workload_suite::{wait_until, Env, CLIENT_NS_APP, INSTANCE_LABEL, TW_API, WEB_APP};

/// Differences between Go's results and the manager's that are improvements on purpose, by the
/// path the diff reports (after normalisation; after create or after delete alike). Each is explained in README.md ("Differential
/// test against the Go controller").
const DELIBERATE: &[&str] = &[
    // Go's SetNamespaces prepends the generated Namespace by swapping it with the first
    // resource, which moves that resource to the end (spec 3.1.3 step 4); the manager lists the
    // namespace first and then the resources in manifest order, the order it applies them in.
    // The agent treats the list as a set.
    "kube/ThreeportWorkload//workload-instance-<web-app-0>.spec.workloadResourceInstances (order)",
    // Go fails its first Deleted reconcile of an instance without workload events (DELETE
    // /v0/workload-events answers 404) and records FailedDelete (spec 4.3 #24); the manager
    // treats "no events" as done.
    "api/Event/FailedDelete/Normal/0",
    "api/Event/FailedDelete/Normal/1",
    // ... and Go's retry then returns early (no WRIs left) and never deletes the
    // ThreeportWorkload, which stays in the cluster; the manager deletes it.
    "kube/ThreeportWorkload//workload-instance-<web-app-0>",
    "kube/ThreeportWorkload//workload-instance-<client-ns-app-0>",
    // An explicit empty YAML document: Go turns it into a `null` WRD, the real API refuses the
    // whole batch (400 "Missing required field(s) : JSONDefinition"), and the definition fails
    // forever (FailedCreate, retried with backoff). The manager skips empty documents: two
    // WRDs, reconciled, SuccessfulCreate.
    "api/Event/FailedCreate/Normal/0",
    "api/Event/SuccessfulCreate/Normal/4",
    "api/WRD/empty-doc/ConfigMap/a",
    "api/WRD/empty-doc/ConfigMap/b",
    "api/WorkloadDefinition/empty-doc.Reconciled",
];

/// The apps both controllers deploy: (definition name, YAML, instance name).
const APPS: [(&str, &str, &str); 2] = [
    ("web-app", WEB_APP, "web-app-0"),
    ("client-ns-app", CLIENT_NS_APP, "client-ns-app-0"),
];

/// Two ConfigMaps with an explicit empty document between them.
const EMPTY_DOCUMENT_YAML: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Controller {
    Go,
    Manager,
}

/// A stack with one of the two controllers running on it.
enum Driver {
    Go(Box<Stack>, GoController),
    Manager(Box<Env>),
}

impl Driver {
    fn stack(&self) -> &Stack {
        match self {
            Driver::Go(s, _) => s,
            Driver::Manager(e) => &e.stack,
        }
    }

    fn diagnostics(&self) -> String {
        match self {
            Driver::Go(_, g) => g.log_tail(30),
            Driver::Manager(_) => String::new(),
        }
    }

    async fn stop(self) {
        match self {
            Driver::Go(_, g) => drop(g),
            Driver::Manager(e) => e.stop().await,
        }
    }
}

/// What one run leaves behind, normalised: key -> JSON.
type Snapshot = BTreeMap<String, Value>;

struct Run {
    after_create: Snapshot,
    after_delete: Snapshot,
}

const LIMIT: Duration = Duration::from_secs(90);

async fn wait_or_report<F, Fut>(driver: &Driver, what: &str, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < LIMIT {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("not within {LIMIT:?}: {what}\n{}", driver.diagnostics());
    false
}

async fn run(controller: Controller) -> Option<Run> {
    let stack = Stack::upstream(false).await?;
    let logs = tempfile::tempdir().expect("tempdir");
    let driver = match controller {
        Controller::Go => {
            let go = GoController::start(
                "workload-controller",
                &stack.process_env(),
                logs.path().join("workload-controller.log"),
            );
            Driver::Go(Box::new(stack), go)
        }
        Controller::Manager => Driver::Manager(Box::new(Env::start(stack).await)),
    };
    let stack = driver.stack();
    let api = stack.api.clone();
    let mut instances = Vec::new();
    for (def_name, yaml, inst_name) in APPS {
        let wd = api
            .create(
                WORKLOAD_DEFINITION,
                json!({"Name": def_name, "YAMLDocument": yaml}),
            )
            .await
            .expect("POST definition")["ID"]
            .as_u64()
            .expect("ID");
        // The Go controller fails an instance whose definition is not reconciled yet and retries
        // with backoff; wait for the definition so both runs do the same work.
        let ok = wait_or_report(&driver, &format!("{def_name} reconciled"), || async {
            stack
                .get(WORKLOAD_DEFINITION, wd)
                .await
                .is_some_and(|o| o["Reconciled"] == true)
        })
        .await;
        assert!(ok, "{controller:?}: definition {def_name} not reconciled");
        let wi = api
            .create(
                WORKLOAD_INSTANCE,
                json!({"Name": inst_name, "WorkloadDefinitionID": wd,
                       "KubernetesRuntimeInstanceID": stack.runtime_id}),
            )
            .await
            .expect("POST instance")["ID"]
            .as_u64()
            .expect("ID");
        let ok = wait_or_report(&driver, &format!("{inst_name} reconciled"), || async {
            stack
                .get(WORKLOAD_INSTANCE, wi)
                .await
                .is_some_and(|o| o["Reconciled"] == true)
        })
        .await;
        assert!(ok, "{controller:?}: instance {inst_name} not reconciled");
        instances.push((wd, wi));
    }
    // A definition with an explicit empty document (`---` twice): spec 3.1.2 asked what Go
    // does with it. Wait until it is reconciled or its reconcile has failed once.
    let empty_doc = api
        .create(
            WORKLOAD_DEFINITION,
            json!({"Name": "empty-doc", "YAMLDocument": EMPTY_DOCUMENT_YAML}),
        )
        .await
        .expect("POST definition")["ID"]
        .as_u64()
        .expect("ID");
    let settled = wait_or_report(&driver, "empty-doc reconciled or failed", || async {
        stack
            .get(WORKLOAD_DEFINITION, empty_doc)
            .await
            .is_some_and(|o| o["Reconciled"] == true)
            || stack
                .list_all(EVENT)
                .await
                .iter()
                .any(|e| e["Reason"] == "FailedCreate")
    })
    .await;
    assert!(
        settled,
        "{controller:?}: empty-doc neither reconciled nor failed"
    );
    let names: Vec<(u64, &str)> = instances
        .iter()
        .zip(APPS)
        .map(|((_, wi), (_, _, name))| (*wi, name))
        .collect();
    let after_create = snapshot(stack, &names).await;

    for (_, wi) in &instances {
        api.delete(WORKLOAD_INSTANCE, *wi)
            .await
            .expect("DELETE instance");
    }
    for (_, wi) in &instances {
        let gone = wait_or_report(&driver, &format!("instance {wi} deleted"), || async {
            stack.get(WORKLOAD_INSTANCE, *wi).await.is_none()
        })
        .await;
        assert!(gone, "{controller:?}: instance {wi} not deleted");
    }
    // Both controllers delete the namespaces; the namespace controller removes them.
    wait_until(LIMIT, "deleted namespaces gone", || async {
        stack
            .objects("v1", "Namespace", None)
            .await
            .iter()
            .all(|n| n["status"]["phase"] != "Terminating")
    })
    .await;
    let after_delete = snapshot(stack, &names).await;
    driver.stop().await;
    Some(Run {
        after_create,
        after_delete,
    })
}

/// The managed namespace's suffix differs per run (Go: random; manager: from the instance ID):
/// `<instance>-<suffix>` becomes `<instance>-*` everywhere.
fn namespace_aliases(namespaces: &[Value]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for n in namespaces {
        let name = n["metadata"]["name"].as_str().unwrap_or_default();
        for (_, _, inst) in APPS {
            if let Some(rest) = name.strip_prefix(&format!("{inst}-")) {
                if !rest.is_empty() {
                    out.push((name.to_string(), format!("{inst}-*")));
                }
            }
        }
    }
    out
}

/// `instances`: (ID, name) of the instances created, so objects named after an instance ID
/// (`workload-instance-<id>`) are compared by instance name, also once the instance is gone.
async fn snapshot(stack: &Stack, instances: &[(u64, &str)]) -> Snapshot {
    let mut snap = Snapshot::new();
    let namespaces: Vec<Value> = stack
        .objects("v1", "Namespace", None)
        .await
        .into_iter()
        .filter(|n| !SYSTEM_NAMESPACES.contains(&n["metadata"]["name"].as_str().unwrap_or("")))
        .collect();
    let aliases = namespace_aliases(&namespaces);
    for n in &namespaces {
        let key = format!(
            "kube/Namespace/{}",
            n["metadata"]["name"].as_str().unwrap_or("")
        );
        snap.insert(key, n.clone());
    }
    for (av, kind) in [
        ("v1", "ConfigMap"),
        ("apps/v1", "Deployment"),
        ("v1", "Service"),
        (TW_API, "ThreeportWorkload"),
    ] {
        for o in stack.objects(av, kind, None).await {
            let ns = o["metadata"]["namespace"].as_str().unwrap_or("");
            let is_app =
                !o["metadata"]["labels"][INSTANCE_LABEL].is_null() || kind == "ThreeportWorkload";
            if is_app {
                let key = format!(
                    "kube/{kind}/{ns}/{}",
                    o["metadata"]["name"].as_str().unwrap_or("")
                );
                snap.insert(key, o);
            }
        }
    }
    for wd in stack.list_all(WORKLOAD_DEFINITION).await {
        let id = wd["ID"].as_u64().unwrap_or(0);
        let name = wd["Name"].as_str().unwrap_or("").to_string();
        for wrd in stack
            .list_where(WORKLOAD_RESOURCE_DEFINITION, "workloaddefinitionid", id)
            .await
        {
            let key = format!("api/WRD/{name}/{}", resource_key(&wrd["JSONDefinition"]));
            snap.insert(key, wrd);
        }
        snap.insert(format!("api/WorkloadDefinition/{name}"), wd);
    }
    for wi in stack.list_all(WORKLOAD_INSTANCE).await {
        let id = wi["ID"].as_u64().unwrap_or(0);
        let name = wi["Name"].as_str().unwrap_or("").to_string();
        for wri in stack
            .list_where(WORKLOAD_RESOURCE_INSTANCE, "workloadinstanceid", id)
            .await
        {
            let key = format!("api/WRI/{name}/{}", resource_key(&wri["JSONDefinition"]));
            snap.insert(key, wri);
        }
        for (i, ev) in stack
            .list_where(WORKLOAD_EVENT, "workloadinstanceid", id)
            .await
            .into_iter()
            .enumerate()
        {
            snap.insert(format!("api/WorkloadEvent/{name}/{i}"), ev);
        }
        snap.insert(format!("api/WorkloadInstance/{name}"), wi);
    }
    // Events are keyed by what they say about which object, in order per object.
    let mut per_object: BTreeMap<String, usize> = BTreeMap::new();
    let mut events = stack.list_all(EVENT).await;
    events.sort_by_key(|e| e["ID"].as_u64());
    for ev in events {
        let about = format!(
            "{}/{}",
            ev["Reason"].as_str().unwrap_or(""),
            ev["Type"].as_str().unwrap_or("")
        );
        let n = per_object.entry(about.clone()).or_default();
        snap.insert(format!("api/Event/{about}/{n}"), ev);
        *n += 1;
    }
    // Normalise: drop what differs between any two runs, then rename namespaces and IDs.
    let mut out = Snapshot::new();
    for (k, v) in snap {
        let mut v = normalise(v);
        let mut text = serde_json::to_string(&v).expect("JSON");
        let mut key = k;
        for (from, to) in &aliases {
            text = text.replace(from.as_str(), to.as_str());
            key = key.replace(from.as_str(), to.as_str());
        }
        for (id, name) in instances {
            key = key.replace(
                &format!("workload-instance-{id}"),
                &format!("workload-instance-<{name}>"),
            );
            text = text.replace(
                &format!("workload-instance-{id}"),
                &format!("workload-instance-<{name}>"),
            );
        }
        v = serde_json::from_str(&text).expect("JSON");
        out.insert(key, v);
    }
    out
}

fn resource_key(def: &Value) -> String {
    format!(
        "{}/{}",
        def["kind"].as_str().unwrap_or(""),
        def["metadata"]["name"].as_str().unwrap_or("")
    )
}

/// Fields that differ between any two runs of the same controller. The IDs of definitions and
/// instances are compared: both stacks are fresh and get the same POSTs in the same order, so
/// PostgreSQL gives them the same IDs; the IDs of objects the controllers create (WRIs,
/// events) depend on the controllers' order of requests and are not.
const VOLATILE: &[&str] = &[
    "uid",
    "resourceVersion",
    "managedFields",
    "creationTimestamp",
    "deletionTimestamp",
    "generation",
    "ID",
    "CreatedAt",
    "UpdatedAt",
    "DeletedAt",
    "CreationAcknowledged",
    "CreationConfirmed",
    "DeletionAcknowledged",
    "DeletionConfirmed",
    "DeletionScheduled",
    "Timestamp",
    "EventTime",
    "LastObservedTime",
    "threeportID",
    "WorkloadResourceDefinitionID",
    "ObjectID",
    "AttachedObjectReferenceID",
    "RuntimeEventUID",
    "clusterIP",
    "clusterIPs",
];

fn normalise(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| !VOLATILE.contains(&k.as_str()))
                .map(|(k, v)| (k, normalise(v)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(normalise).collect()),
        // IDs embedded in notes ("... workload instance 12 ...") differ by creation order.
        Value::String(s) => Value::String(
            s.split(' ')
                .map(|w| {
                    if w.chars().all(|c| c.is_ascii_digit()) && !w.is_empty() {
                        "<n>"
                    } else {
                        w
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
        ),
        other => other,
    }
}

/// Every difference between two snapshots, as `path: go=... manager=...` lines.
fn diff(go: &Snapshot, manager: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    let keys: BTreeSet<&String> = go.keys().chain(manager.keys()).collect();
    for k in keys {
        diff_value(k, go.get(k), manager.get(k), &mut out);
    }
    out
}

fn diff_value(path: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<String>) {
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                diff_value(&format!("{path}.{k}"), x.get(k), y.get(k), out);
            }
        }
        // The same elements in another order: one difference, not one per shifted element.
        (Some(Value::Array(x)), Some(Value::Array(y))) if x != y && sorted(x) == sorted(y) => {
            out.push(format!(
                "{path} (order): go={} manager={}",
                Value::Array(x.clone()),
                Value::Array(y.clone())
            ));
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                diff_value(&format!("{path}[{i}]"), Some(p), Some(q), out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(format!(
            "{path}: go={} manager={}",
            a.map_or("<absent>".into(), |v| v.to_string()),
            b.map_or("<absent>".into(), |v| v.to_string())
        )),
    }
}

fn sorted(items: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(Value::to_string).collect();
    v.sort();
    v
}

/// The path part of a difference line, without its phase (what [`DELIBERATE`] lists).
fn path_of(line: &str) -> &str {
    let path = line.split(": go=").next().unwrap_or(line);
    path.split_once(": ").map_or(path, |(_, p)| p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manager_and_the_go_controller_leave_the_same_objects() {
    let Some(go) = run(Controller::Go).await else {
        return;
    };
    let manager = run(Controller::Manager).await.expect("second stack");
    // The comparison means something only if both runs deployed everything.
    for (who, snap) in [("go", &go.after_create), ("manager", &manager.after_create)] {
        let count = |prefix: &str| snap.keys().filter(|k| k.starts_with(prefix)).count();
        assert_eq!(count("kube/Namespace/"), 2, "{who}: {:?}", snap.keys());
        for kind in ["ConfigMap", "Deployment", "Service", "ThreeportWorkload"] {
            assert_eq!(
                count(&format!("kube/{kind}/")),
                2,
                "{who} {kind}: {:?}",
                snap.keys()
            );
        }
        assert!(count("api/WRD/") >= 7, "{who}: 3 + 4 WRDs");
        assert_eq!(count("api/WRI/"), 8, "{who}: 4 WRIs per instance");
    }
    let mut differences = Vec::new();
    for (phase, a, b) in [
        ("create", &go.after_create, &manager.after_create),
        ("delete", &go.after_delete, &manager.after_delete),
    ] {
        for line in diff(a, b) {
            differences.push(format!("after {phase}: {line}"));
        }
    }
    eprintln!("{} differences:", differences.len());
    for d in &differences {
        eprintln!("  {d}");
    }
    let seen: BTreeSet<&str> = differences.iter().map(|d| path_of(d)).collect();
    let allowed: BTreeSet<&str> = DELIBERATE.iter().copied().collect();
    let unexplained: Vec<&&str> = seen.difference(&allowed).collect();
    let stale: Vec<&&str> = allowed.difference(&seen).collect();
    assert!(
        unexplained.is_empty(),
        "differences neither fixed nor listed as deliberate: {unexplained:#?}"
    );
    assert!(
        stale.is_empty(),
        "listed as deliberate but no longer different: {stale:#?}"
    );
}
