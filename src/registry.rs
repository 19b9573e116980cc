//! The static table of Threeport's controllers and reconcilers (spec table 1.1), and the
//! `--enable` grammar (kube-controller-manager's `--controllers`).
//!
//! This table is the single source for `--enable`, `threeport-manager list`, metric labels,
//! readiness checks and docs. Every name is wire-visible: the stream, the lock bucket, the
//! durable consumer (`<Reconciler>Consumer`), the lock key prefix and the filter subject must be
//! exactly what Threeport's Go controllers use, so both can run side by side.

use crate::threeport::api::ObjectType;
use crate::threeport::models::*;

/// One Threeport reconciler: one object type, one durable consumer, one lock-key prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcilerSpec {
    /// Threeport's name, e.g. `WorkloadInstanceReconciler`; also the lock-key prefix.
    pub name: &'static str,
    /// The object type it reconciles.
    pub object: ObjectType,
    /// Lower-case words for event notes, e.g. `workload instance` (spec 1.9 step 11/14).
    pub words: &'static str,
    /// Env var holding the worker count in Threeport's deployments, e.g.
    /// `WORKLOAD_INSTANCE_CONCURRENT_RECONCILES` (spec 1.2).
    pub concurrency_env: &'static str,
    /// Whether its notifications carry data the API does not keep (a SecretDefinition's
    /// `Data`, spec 1.9.3): then a lost Created or Updated cannot be rebuilt from the API, and
    /// the resync re-notifies only deletions.
    pub data_only_in_notification: bool,
}

impl ReconcilerSpec {
    /// `<Name>Consumer`: the durable consumer shared with Threeport's Go controllers.
    pub fn durable_name(&self) -> String {
        format!("{}Consumer", self.name)
    }

    /// lowerCamel type name: the subject prefix (`workloadInstance.*`), from the object
    /// table (every reconciled type has one; a test checks it).
    pub fn subject_prefix(&self) -> &'static str {
        self.object.subject.unwrap_or(self.object.name)
    }

    /// `<x>.*`: the consumer's filter subject.
    pub fn filter_subject(&self) -> String {
        format!("{}.*", self.subject_prefix())
    }

    /// `<Name>.<id>`: the lock key in the controller's bucket.
    pub fn lock_key(&self, id: u64) -> String {
        format!("{}.{}", self.name, id)
    }
}

/// One Threeport controller (one Go binary): a stream, a lock bucket, some reconcilers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControllerSpec {
    /// `--enable` name, e.g. `kubernetes-runtime`.
    pub name: &'static str,
    /// JetStream stream, e.g. `kubernetes-runtimeStream` (hyphenated, spec 1.1 note).
    pub stream: &'static str,
    /// KV bucket of locks, e.g. `kubernetesRuntimeLock`.
    pub lock_bucket: &'static str,
    /// Lock bucket description, as Go creates it (spec 1.3 step 6).
    pub lock_bucket_description: &'static str,
    /// `ReportingController` of the events it records.
    pub reporting_controller: &'static str,
    /// Its reconcilers, one per reconciled object type, in Threeport's order.
    pub reconcilers: &'static [ReconcilerSpec],
}

impl ControllerSpec {
    /// Whether this manager implements it yet (it has a registration in
    /// [`crate::reconcilers::IMPLEMENTATIONS`]). Enabling an unimplemented one is a start-up
    /// error.
    pub fn implemented(&self) -> bool {
        crate::reconcilers::is_implemented(self.name)
    }

    /// The subjects of the stream as the API creates it (spec 1.1 note 2): create, update and
    /// delete for each reconcilable type.
    pub fn stream_subjects(&self) -> Vec<String> {
        self.reconcilers
            .iter()
            .flat_map(|r| {
                ["create", "update", "delete"]
                    .iter()
                    .map(move |op| format!("{}.{}", r.subject_prefix(), op))
            })
            .collect()
    }
}

macro_rules! rec {
    ($name:literal, $object:expr, $words:literal, $env:literal) => {
        rec!($name, $object, $words, $env, data_only_in_notification: false)
    };
    ($name:literal, $object:expr, $words:literal, $env:literal, data_only_in_notification: $data:literal) => {
        ReconcilerSpec {
            name: $name,
            object: $object,
            words: $words,
            concurrency_env: $env,
            data_only_in_notification: $data,
        }
    };
}

/// Every Threeport controller, in the order of spec table 1.1.
pub static CONTROLLERS: &[ControllerSpec] = &[
    ControllerSpec {
        name: "workload",
        stream: "workloadStream",
        lock_bucket: "workloadLock",
        lock_bucket_description: "contains locks on workload objects",
        reporting_controller: "WorkloadController",
        reconcilers: &[
            rec!(
                "WorkloadDefinitionReconciler",
                WORKLOAD_DEFINITION,
                "workload definition",
                "WORKLOAD_DEFINITION_CONCURRENT_RECONCILES"
            ),
            rec!(
                "WorkloadInstanceReconciler",
                WORKLOAD_INSTANCE,
                "workload instance",
                "WORKLOAD_INSTANCE_CONCURRENT_RECONCILES"
            ),
        ],
    },
    ControllerSpec {
        name: "gateway",
        stream: "gatewayStream",
        lock_bucket: "gatewayLock",
        lock_bucket_description: "contains locks on gateway objects",
        reporting_controller: "GatewayController",
        reconcilers: &[
            rec!(
                "GatewayDefinitionReconciler",
                GATEWAY_DEFINITION,
                "gateway definition",
                "GATEWAY_DEFINITION_CONCURRENT_RECONCILES"
            ),
            rec!(
                "GatewayInstanceReconciler",
                GATEWAY_INSTANCE,
                "gateway instance",
                "GATEWAY_INSTANCE_CONCURRENT_RECONCILES"
            ),
            rec!(
                "DomainNameInstanceReconciler",
                DOMAIN_NAME_INSTANCE,
                "domain name instance",
                "DOMAIN_NAME_INSTANCE_CONCURRENT_RECONCILES"
            ),
        ],
    },
    ControllerSpec {
        name: "kubernetes-runtime",
        stream: "kubernetes-runtimeStream",
        lock_bucket: "kubernetesRuntimeLock",
        lock_bucket_description: "contains locks on kubernetes runtime objects",
        reporting_controller: "KubernetesRuntimeController",
        reconcilers: &[
            rec!(
                "KubernetesRuntimeDefinitionReconciler",
                KUBERNETES_RUNTIME_DEFINITION,
                "kubernetes runtime definition",
                "KUBERNETES_RUNTIME_DEFINITION_CONCURRENT_RECONCILES"
            ),
            rec!(
                "KubernetesRuntimeInstanceReconciler",
                KUBERNETES_RUNTIME_INSTANCE,
                "kubernetes runtime instance",
                "KUBERNETES_RUNTIME_INSTANCE_CONCURRENT_RECONCILES"
            ),
        ],
    },
    ControllerSpec {
        name: "helm-workload",
        stream: "helm-workloadStream",
        lock_bucket: "helmWorkloadLock",
        lock_bucket_description: "contains locks on helm workload objects",
        reporting_controller: "HelmWorkloadController",
        reconcilers: &[
            rec!(
                "HelmWorkloadDefinitionReconciler",
                HELM_WORKLOAD_DEFINITION,
                "helm workload definition",
                "HELM_WORKLOAD_DEFINITION_CONCURRENT_RECONCILES"
            ),
            rec!(
                "HelmWorkloadInstanceReconciler",
                HELM_WORKLOAD_INSTANCE,
                "helm workload instance",
                "HELM_WORKLOAD_INSTANCE_CONCURRENT_RECONCILES"
            ),
        ],
    },
    ControllerSpec {
        name: "aws",
        stream: "awsStream",
        lock_bucket: "awsLock",
        lock_bucket_description: "contains locks on aws objects",
        reporting_controller: "AwsController",
        reconcilers: &[
            rec!(
                "AwsEksKubernetesRuntimeInstanceReconciler",
                AWS_EKS_KUBERNETES_RUNTIME_INSTANCE,
                "aws eks kubernetes runtime instance",
                "AWS_EKS_KUBERNETES_RUNTIME_INSTANCE_CONCURRENT_RECONCILES"
            ),
            rec!(
                "AwsRelationalDatabaseInstanceReconciler",
                AWS_RELATIONAL_DATABASE_INSTANCE,
                "aws relational database instance",
                "AWS_RELATIONAL_DATABASE_INSTANCE_CONCURRENT_RECONCILES"
            ),
            rec!(
                "AwsObjectStorageBucketInstanceReconciler",
                AWS_OBJECT_STORAGE_BUCKET_INSTANCE,
                "aws object storage bucket instance",
                "AWS_OBJECT_STORAGE_BUCKET_INSTANCE_CONCURRENT_RECONCILES"
            ),
        ],
    },
    ControllerSpec {
        name: "control-plane",
        stream: "control-planeStream",
        lock_bucket: "controlPlaneLock",
        lock_bucket_description: "contains locks on control plane objects",
        reporting_controller: "ControlPlaneController",
        reconcilers: &[
            rec!(
                "ControlPlaneDefinitionReconciler",
                CONTROL_PLANE_DEFINITION,
                "control plane definition",
                "CONTROL_PLANE_DEFINITION_CONCURRENT_RECONCILES"
            ),
            rec!(
                "ControlPlaneInstanceReconciler",
                CONTROL_PLANE_INSTANCE,
                "control plane instance",
                "CONTROL_PLANE_INSTANCE_CONCURRENT_RECONCILES"
            ),
        ],
    },
    ControllerSpec {
        name: "secret",
        stream: "secretStream",
        lock_bucket: "secretLock",
        lock_bucket_description: "contains locks on secret objects",
        reporting_controller: "SecretController",
        reconcilers: &[
            rec!(
                "SecretDefinitionReconciler",
                SECRET_DEFINITION,
                "secret definition",
                "SECRET_DEFINITION_CONCURRENT_RECONCILES",
                data_only_in_notification: true
            ),
            rec!(
                "SecretInstanceReconciler",
                SECRET_INSTANCE,
                "secret instance",
                "SECRET_INSTANCE_CONCURRENT_RECONCILES"
            ),
        ],
    },
    ControllerSpec {
        name: "terraform",
        stream: "terraformStream",
        lock_bucket: "terraformLock",
        lock_bucket_description: "contains locks on terraform objects",
        reporting_controller: "TerraformController",
        reconcilers: &[
            rec!(
                "TerraformDefinitionReconciler",
                TERRAFORM_DEFINITION,
                "terraform definition",
                "TERRAFORM_DEFINITION_CONCURRENT_RECONCILES"
            ),
            rec!(
                "TerraformInstanceReconciler",
                TERRAFORM_INSTANCE,
                "terraform instance",
                "TERRAFORM_INSTANCE_CONCURRENT_RECONCILES"
            ),
        ],
    },
    ControllerSpec {
        name: "observability",
        stream: "observabilityStream",
        lock_bucket: "observabilityLock",
        lock_bucket_description: "contains locks on observability objects",
        reporting_controller: "ObservabilityController",
        reconcilers: &[
            rec!(
                "ObservabilityStackDefinitionReconciler",
                OBSERVABILITY_STACK_DEFINITION,
                "observability stack definition",
                "OBSERVABILITY_STACK_DEFINITION_CONCURRENT_RECONCILES"
            ),
            rec!(
                "ObservabilityStackInstanceReconciler",
                OBSERVABILITY_STACK_INSTANCE,
                "observability stack instance",
                "OBSERVABILITY_STACK_INSTANCE_CONCURRENT_RECONCILES"
            ),
            rec!(
                "ObservabilityDashboardDefinitionReconciler",
                OBSERVABILITY_DASHBOARD_DEFINITION,
                "observability dashboard definition",
                "OBSERVABILITY_DASHBOARD_DEFINITION_CONCURRENT_RECONCILES"
            ),
            rec!(
                "ObservabilityDashboardInstanceReconciler",
                OBSERVABILITY_DASHBOARD_INSTANCE,
                "observability dashboard instance",
                "OBSERVABILITY_DASHBOARD_INSTANCE_CONCURRENT_RECONCILES"
            ),
            rec!(
                "MetricsDefinitionReconciler",
                METRICS_DEFINITION,
                "metrics definition",
                "METRICS_DEFINITION_CONCURRENT_RECONCILES"
            ),
            rec!(
                "MetricsInstanceReconciler",
                METRICS_INSTANCE,
                "metrics instance",
                "METRICS_INSTANCE_CONCURRENT_RECONCILES"
            ),
            rec!(
                "LoggingDefinitionReconciler",
                LOGGING_DEFINITION,
                "logging definition",
                "LOGGING_DEFINITION_CONCURRENT_RECONCILES"
            ),
            rec!(
                "LoggingInstanceReconciler",
                LOGGING_INSTANCE,
                "logging instance",
                "LOGGING_INSTANCE_CONCURRENT_RECONCILES"
            ),
        ],
    },
];

/// Look a controller up by its `--enable` name.
pub fn controller(name: &str) -> Option<&'static ControllerSpec> {
    CONTROLLERS.iter().find(|c| c.name == name)
}

/// Look a reconciler up by its Threeport name, with its controller.
pub fn reconciler(name: &str) -> Option<(&'static ControllerSpec, &'static ReconcilerSpec)> {
    CONTROLLERS.iter().find_map(|c| {
        c.reconcilers
            .iter()
            .find(|r| r.name == name)
            .map(|r| (c, r))
    })
}

/// Why an `--enable` list (or the `controllers` setting) cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnableError {
    /// An entry names no controller of the table.
    #[error("unknown controller {name:?} in --enable; known controllers: {known}")]
    Unknown {
        /// The entry, without a leading `-`.
        name: String,
        /// Every controller name of the table, comma-separated.
        known: String,
    },
    /// An entry is empty (e.g. `workload,,`).
    #[error("empty entry in --enable list {list:?}")]
    Empty {
        /// The whole list, comma-joined.
        list: String,
    },
    /// An entry turns on a controller this manager does not implement yet.
    #[error("controller {name:?} is not implemented yet by threeport-manager (implemented: {implemented})")]
    NotImplemented {
        /// The controller's name.
        name: String,
        /// The implemented controllers, comma-separated, or `none`.
        implemented: String,
    },
}

fn known_names(table: &[ControllerSpec]) -> String {
    table.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
}

fn implemented_names(
    table: &[ControllerSpec],
    implemented: &dyn Fn(&ControllerSpec) -> bool,
) -> String {
    let names: Vec<_> = table
        .iter()
        .filter(|c| implemented(c))
        .map(|c| c.name)
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Resolve a `--controllers`-style list against a table.
///
/// Grammar (kube-controller-manager): `*` turns on every implemented controller, `name` turns
/// one on, `-name` turns it off; for each controller the first entry that names it explicitly
/// wins, and `*` applies only to controllers no entry names. An empty list means `*`. Naming an
/// unimplemented controller explicitly is an error rather than a silent no-op.
pub fn resolve_enable_in(
    table: &'static [ControllerSpec],
    implemented: &dyn Fn(&ControllerSpec) -> bool,
    entries: &[String],
) -> Result<Vec<&'static ControllerSpec>, EnableError> {
    let star_only = vec!["*".to_string()];
    let entries: &[String] = if entries.is_empty() {
        &star_only
    } else {
        entries
    };
    let mut star = false;
    // First explicit mention wins: Some(true) = on, Some(false) = off.
    let mut explicit: Vec<Option<bool>> = vec![None; table.len()];
    for raw in entries {
        let entry = raw.trim();
        if entry.is_empty() {
            return Err(EnableError::Empty {
                list: entries.join(","),
            });
        }
        if entry == "*" {
            star = true;
            continue;
        }
        let (on, name) = match entry.strip_prefix('-') {
            Some(rest) => (false, rest),
            None => (true, entry),
        };
        let idx =
            table
                .iter()
                .position(|c| c.name == name)
                .ok_or_else(|| EnableError::Unknown {
                    name: name.to_string(),
                    known: known_names(table),
                })?;
        if explicit[idx].is_none() {
            explicit[idx] = Some(on);
        }
    }
    let mut out = Vec::new();
    for (i, c) in table.iter().enumerate() {
        match explicit[i] {
            Some(true) if !implemented(c) => {
                return Err(EnableError::NotImplemented {
                    name: c.name.to_string(),
                    implemented: implemented_names(table, implemented),
                })
            }
            Some(true) => out.push(c),
            Some(false) => {}
            None if star && implemented(c) => out.push(c),
            None => {}
        }
    }
    Ok(out)
}

/// [`resolve_enable_in`] against [`CONTROLLERS`].
pub fn resolve_enable(entries: &[String]) -> Result<Vec<&'static ControllerSpec>, EnableError> {
    resolve_enable_in(CONTROLLERS, &ControllerSpec::implemented, entries)
}

/// Split a comma-separated `--enable` value into entries.
pub fn split_enable_list(s: &str) -> Vec<String> {
    s.split(',').map(|p| p.trim().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(list: &str) -> Vec<String> {
        split_enable_list(list)
    }

    fn names(v: &[&'static ControllerSpec]) -> Vec<&'static str> {
        v.iter().map(|c| c.name).collect()
    }

    const fn spec(name: &'static str) -> ControllerSpec {
        ControllerSpec {
            name,
            stream: "testStream",
            lock_bucket: "testLock",
            lock_bucket_description: "test",
            reporting_controller: "TestController",
            reconcilers: &[],
        }
    }

    /// a, b and c implemented; d and x not.
    static TABLE: &[ControllerSpec] = &[spec("a"), spec("b"), spec("c"), spec("d")];

    fn implemented(c: &ControllerSpec) -> bool {
        ["a", "b", "c"].contains(&c.name)
    }

    fn resolve(list: &str) -> Result<Vec<&'static str>, EnableError> {
        resolve_enable_in(TABLE, &implemented, &entries(list)).map(|v| names(&v))
    }

    #[test]
    fn star_enables_every_implemented_controller() {
        assert_eq!(resolve("*"), Ok(vec!["a", "b", "c"]));
        assert_eq!(
            resolve_enable_in(TABLE, &implemented, &[]).map(|v| names(&v)),
            Ok(vec!["a", "b", "c"]),
            "nothing given = *"
        );
    }

    #[test]
    fn names_and_negations() {
        assert_eq!(resolve("b"), Ok(vec!["b"]));
        assert_eq!(resolve("c,a"), Ok(vec!["a", "c"]), "table order");
        assert_eq!(resolve("*,-b"), Ok(vec!["a", "c"]));
        assert_eq!(resolve("-b,*"), Ok(vec!["a", "c"]));
        assert_eq!(
            resolve("-a"),
            Ok(vec![]),
            "without * only named controllers run"
        );
        assert_eq!(
            resolve(" a , b "),
            Ok(vec!["a", "b"]),
            "whitespace is trimmed"
        );
        assert_eq!(
            resolve("*,-d"),
            Ok(vec!["a", "b", "c"]),
            "turning off an unimplemented one is fine"
        );
    }

    #[test]
    fn first_explicit_match_wins() {
        assert_eq!(resolve("a,-a"), Ok(vec!["a"]));
        assert_eq!(resolve("-a,a"), Ok(vec![]));
        assert_eq!(resolve("-a,*,a"), Ok(vec!["b", "c"]));
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let e = resolve("a,zzz").expect_err("unknown");
        assert_eq!(
            e,
            EnableError::Unknown {
                name: "zzz".into(),
                known: "a, b, c, d".into()
            }
        );
        assert!(
            e.to_string().contains("known controllers: a, b, c, d"),
            "{e}"
        );
        assert!(matches!(resolve("-zzz"), Err(EnableError::Unknown { .. })));
        let e = resolve_enable(&entries("nosuch")).expect_err("unknown");
        assert!(e.to_string().contains("kubernetes-runtime"), "{e}");
    }

    #[test]
    fn empty_entries_are_errors() {
        assert!(matches!(resolve(""), Err(EnableError::Empty { .. })));
        assert!(matches!(resolve("a,,b"), Err(EnableError::Empty { .. })));
        assert!(matches!(resolve("a,"), Err(EnableError::Empty { .. })));
    }

    #[test]
    fn unimplemented_controllers_are_errors() {
        let e = resolve("d").expect_err("unimplemented");
        assert_eq!(
            e,
            EnableError::NotImplemented {
                name: "d".into(),
                implemented: "a, b, c".into()
            }
        );
        assert!(e.to_string().contains("implemented: a, b, c"), "{e}");
        assert!(resolve("*,d").is_err());
        static NONE: &[ControllerSpec] = &[spec("x")];
        let e = resolve_enable_in(NONE, &implemented, &entries("x")).expect_err("unimplemented");
        assert!(e.to_string().contains("implemented: none"), "{e}");
    }

    #[test]
    fn split_enable_list_keeps_empty_entries() {
        assert_eq!(split_enable_list("a, -b ,*"), vec!["a", "-b", "*"]);
        assert_eq!(split_enable_list("a,,b"), vec!["a", "", "b"]);
    }

    /// Spec table 1.1, verbatim: (controller, stream, bucket, ReportingController, reconcilers).
    #[allow(clippy::type_complexity)]
    const SPEC_1_1: &[(&str, &str, &str, &str, &[&str])] = &[
        (
            "workload",
            "workloadStream",
            "workloadLock",
            "WorkloadController",
            &["WorkloadDefinition", "WorkloadInstance"],
        ),
        (
            "gateway",
            "gatewayStream",
            "gatewayLock",
            "GatewayController",
            &["GatewayDefinition", "GatewayInstance", "DomainNameInstance"],
        ),
        (
            "kubernetes-runtime",
            "kubernetes-runtimeStream",
            "kubernetesRuntimeLock",
            "KubernetesRuntimeController",
            &["KubernetesRuntimeDefinition", "KubernetesRuntimeInstance"],
        ),
        (
            "helm-workload",
            "helm-workloadStream",
            "helmWorkloadLock",
            "HelmWorkloadController",
            &["HelmWorkloadDefinition", "HelmWorkloadInstance"],
        ),
        (
            "aws",
            "awsStream",
            "awsLock",
            "AwsController",
            &[
                "AwsEksKubernetesRuntimeInstance",
                "AwsRelationalDatabaseInstance",
                "AwsObjectStorageBucketInstance",
            ],
        ),
        (
            "control-plane",
            "control-planeStream",
            "controlPlaneLock",
            "ControlPlaneController",
            &["ControlPlaneDefinition", "ControlPlaneInstance"],
        ),
        (
            "secret",
            "secretStream",
            "secretLock",
            "SecretController",
            &["SecretDefinition", "SecretInstance"],
        ),
        (
            "terraform",
            "terraformStream",
            "terraformLock",
            "TerraformController",
            &["TerraformDefinition", "TerraformInstance"],
        ),
        (
            "observability",
            "observabilityStream",
            "observabilityLock",
            "ObservabilityController",
            &[
                "ObservabilityStackDefinition",
                "ObservabilityStackInstance",
                "ObservabilityDashboardDefinition",
                "ObservabilityDashboardInstance",
                "MetricsDefinition",
                "MetricsInstance",
                "LoggingDefinition",
                "LoggingInstance",
            ],
        ),
    ];

    fn lower_camel(s: &str) -> String {
        let mut c = s.chars();
        c.next()
            .map(|f| f.to_ascii_lowercase().to_string() + c.as_str())
            .unwrap_or_default()
    }

    fn upper_snake(s: &str) -> String {
        let mut out = String::new();
        for (i, ch) in s.chars().enumerate() {
            if ch.is_ascii_uppercase() && i > 0 {
                out.push('_');
            }
            out.push(ch.to_ascii_uppercase());
        }
        out
    }

    fn kebab_plural(s: &str) -> String {
        upper_snake(s).to_ascii_lowercase().replace('_', "-") + "s"
    }

    #[test]
    fn table_matches_spec_1_1() {
        assert_eq!(CONTROLLERS.len(), SPEC_1_1.len());
        for (c, (name, stream, bucket, reporting, objects)) in CONTROLLERS.iter().zip(SPEC_1_1) {
            assert_eq!(c.name, *name);
            assert_eq!(c.stream, *stream, "{name}");
            assert_eq!(c.lock_bucket, *bucket, "{name}");
            assert_eq!(c.reporting_controller, *reporting, "{name}");
            assert_eq!(c.reconcilers.len(), objects.len(), "{name}");
            for (r, object) in c.reconcilers.iter().zip(*objects) {
                assert_eq!(r.name, format!("{object}Reconciler"));
                assert_eq!(r.object.name, *object);
                assert_eq!(r.object.path, kebab_plural(object), "{object}");
                assert_eq!(
                    r.object.subject.map(String::from),
                    Some(lower_camel(object))
                );
                assert_eq!(r.filter_subject(), format!("{}.*", lower_camel(object)));
                assert_eq!(r.durable_name(), format!("{object}ReconcilerConsumer"));
                assert_eq!(
                    r.lock_key(9_007_199_254_740_993),
                    format!("{object}Reconciler.9007199254740993")
                );
                assert_eq!(
                    r.concurrency_env,
                    format!("{}_CONCURRENT_RECONCILES", upper_snake(object))
                );
                assert_eq!(
                    r.words,
                    upper_snake(object).to_ascii_lowercase().replace('_', " ")
                );
            }
            let subjects: Vec<String> = objects
                .iter()
                .flat_map(|o| {
                    ["create", "update", "delete"].map(|op| format!("{}.{op}", lower_camel(o)))
                })
                .collect();
            assert_eq!(c.stream_subjects(), subjects, "{name}");
        }
        assert_eq!(
            controller("helm-workload").map(|c| c.stream),
            Some("helm-workloadStream")
        );
        assert_eq!(
            reconciler("MetricsInstanceReconciler").map(|(c, _)| c.name),
            Some("observability")
        );
        assert!(controller("nope").is_none());
    }

    #[test]
    fn names_are_unique() {
        let mut all: Vec<&str> = CONTROLLERS
            .iter()
            .flat_map(|c| c.reconcilers.iter().map(|r| r.name))
            .collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
        let mut streams: Vec<&str> = CONTROLLERS.iter().map(|c| c.stream).collect();
        streams.sort();
        streams.dedup();
        assert_eq!(streams.len(), CONTROLLERS.len());
    }
}
