//! The object-type table: one row per Threeport object type the sandbox serves (spec 2.5, 2.6)
//! and the stream table the API creates at start-up (spec 1.1, 1.4).
//!
//! Field order in each row is Go struct order (Common, Definition/Instance, Reconciliation,
//! own fields), because the real API serialises objects with
//! `encoding/json` in struct order; the sandbox renders objects in this order too.

use std::sync::OnceLock;

/// JSON shape of a field, used for echo-style binding checks and query parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Go `*uint` (u64 on the wire, never through f64).
    U64,
    /// Go `*int`/`*uint` used for small numbers (ports, counts).
    Int,
    /// Go `*bool`.
    Bool,
    /// Go `*string`.
    Str,
    /// Go `*time.Time`: RFC 3339 string.
    Time,
    /// `datatypes.JSON` holding an object (any JSON value accepted).
    Json,
    /// `datatypes.JSON` holding an array (any JSON value accepted).
    JsonArray,
    /// A slice of related objects. Never stored on the row: echoed back in the POST response
    /// and notification only, as gorm's in-memory struct would.
    Array,
    /// Child objects created together with the parent on POST (gorm creates has-many
    /// children): (child type path, foreign-key field).
    Children(&'static str, &'static str),
}

/// The `validate` tag of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// `validate:"required"`.
    Req,
    /// `validate:"optional"`.
    Opt,
    /// `validate:"optional,association"`: rejected in PATCH and PUT bodies.
    Assoc,
    /// No validate tag (Common fields): not accepted in bodies.
    Untagged,
}

/// One JSON field of an object type, with the tags the real API derives its behaviour from.
#[derive(Debug, Clone)]
pub struct Field {
    /// JSON key (the `json` tag).
    pub json: &'static str,
    /// Go field name; differs from `json` for a few *sic* fields.
    pub go: &'static str,
    /// JSON shape: what binding accepts and how query values parse.
    pub kind: Kind,
    /// The `validate` tag: required on POST, optional, association, or not accepted.
    pub rule: Rule,
    /// echo `query` tag, if the field can be filtered on.
    pub query: Option<&'static str>,
    /// DB default written on create when the field is absent (gorm `default:`).
    pub default: Option<Default>,
    /// `encrypt:"true"`: AES-GCM encrypted at rest (spec 2.9).
    pub encrypted: bool,
}

/// A gorm `default:` value.
#[derive(Debug, Clone, Copy)]
pub enum Default {
    /// A boolean default, e.g. `false` for `Reconciled`.
    Bool(bool),
    /// A string default.
    Str(&'static str),
    /// An integer default.
    Int(i64),
}

impl Default {
    /// The default as the JSON value stored on create.
    pub fn value(self) -> serde_json::Value {
        match self {
            Default::Bool(b) => serde_json::Value::Bool(b),
            Default::Str(s) => serde_json::Value::String(s.to_string()),
            Default::Int(i) => serde_json::Value::from(i),
        }
    }
}

/// Which of Threeport's `Definition` and `Instance` structs a type embeds, if either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Neither: only `Common` (and perhaps `Reconciliation`).
    Plain,
    /// Embeds `Definition` (Name unique per type, ProfileID/TierID associations).
    Definition,
    /// Embeds `Instance` (Name unique per type, Status).
    Instance,
}

/// A definition's dependent instances, checked on every DELETE of the definition.
#[derive(Debug, Clone, Copy)]
pub struct Dependents {
    /// Path segment of the instance type, e.g. `workload-instances`.
    pub path: &'static str,
    /// The instances' field that points at the definition, e.g. `WorkloadDefinitionID`.
    pub fk: &'static str,
    /// Message of the 409 while such instances exist (Threeport's text).
    pub message: &'static str,
}

/// One object type the sandbox serves: route, subject, fields and delete rules.
#[derive(Debug, Clone)]
pub struct TypeDef {
    /// Kebab plural path segment after `/v0/`.
    pub path: &'static str,
    /// `ObjectType` string used in the envelope's `Type`.
    pub name: &'static str,
    /// lowerCamel notification subject prefix when the type is reconcilable.
    pub subject: Option<&'static str>,
    /// The embedded `Definition` or `Instance` struct, if any.
    pub class: Class,
    /// Carries the embedded `Reconciliation` struct.
    pub reconciliation: bool,
    /// All fields in Go JSON order (Common, Definition/Instance, Reconciliation, own).
    pub fields: Vec<Field>,
    /// Instances that block deleting a definition of this type, if any.
    pub dependents: Option<Dependents>,
}

impl TypeDef {
    /// The field with JSON name `key`: exact match first, then case-insensitive, as
    /// `encoding/json` binds keys.
    pub fn field_by_json_ci(&self, key: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.json == key).or_else(|| {
            self.fields
                .iter()
                .find(|f| f.json.eq_ignore_ascii_case(key))
        })
    }

    /// Whether the API publishes notifications for the type (it has a subject).
    pub fn reconcilable(&self) -> bool {
        self.subject.is_some()
    }
}

const fn f(json: &'static str, kind: Kind, rule: Rule) -> Field {
    Field {
        json,
        go: json,
        kind,
        rule,
        query: None,
        default: None,
        encrypted: false,
    }
}

impl Field {
    const fn q(mut self, tag: &'static str) -> Self {
        self.query = Some(tag);
        self
    }
    /// No `query` tag: the field cannot be filtered on.
    const fn noq(mut self) -> Self {
        self.query = Some("");
        self
    }
    const fn def(mut self, d: Default) -> Self {
        self.default = Some(d);
        self
    }
    const fn go(mut self, go: &'static str) -> Self {
        self.go = go;
        self
    }
    const fn enc(mut self) -> Self {
        self.encrypted = true;
        self
    }
}

use Kind::*;
use Rule::*;

fn common() -> Vec<Field> {
    vec![
        f("ID", U64, Untagged),
        f("CreatedAt", Time, Untagged),
        f("UpdatedAt", Time, Untagged),
        f("DeletedAt", Time, Untagged),
    ]
}

fn reconciliation() -> Vec<Field> {
    vec![
        f("Reconciled", Bool, Opt)
            .q("reconciled")
            .def(Default::Bool(false)),
        f("CreationAcknowledged", Time, Opt).q("creationacknowledged"),
        f("CreationConfirmed", Time, Opt).q("creationconfirmed"),
        f("CreationFailed", Bool, Opt)
            .q("creationfailed")
            .def(Default::Bool(false)),
        f("DeletionScheduled", Time, Opt).q("deletionscheduled"),
        f("DeletionAcknowledged", Time, Opt).q("deletionacknowledged"),
        f("DeletionConfirmed", Time, Opt).q("deletionconfirmed"),
        f("InterruptReconciliation", Bool, Opt)
            .q("interruptreconciliation")
            .def(Default::Bool(false)),
    ]
}

fn definition() -> Vec<Field> {
    vec![
        f("Name", Str, Req).q("name"),
        f("ProfileID", U64, Assoc).q("profileid"),
        f("TierID", U64, Assoc).q("tierid"),
    ]
}

fn instance() -> Vec<Field> {
    vec![
        f("Name", Str, Req).q("name"),
        f("Status", Str, Opt).q("status"),
    ]
}

struct Row {
    path: &'static str,
    name: &'static str,
    subject: Option<&'static str>,
    class: Class,
    reconciliation: bool,
    own: Vec<Field>,
    dependents: Option<Dependents>,
}

fn build(r: Row) -> TypeDef {
    // Go embedding order in pkg/api/v0: Common, Definition|Instance, Reconciliation.
    let mut fields = common();
    match r.class {
        Class::Definition => fields.extend(definition()),
        Class::Instance => fields.extend(instance()),
        Class::Plain => {}
    }
    if r.reconciliation {
        fields.extend(reconciliation());
    }
    for mut fld in r.own {
        // Threeport tags (almost) every scalar field `query:"<lowercase name>"`; `.noq()`
        // marks the ones without a tag (JSON blobs have none either).
        fld.query = match fld.query {
            Some("") => None,
            Some(q) => Some(q),
            None if matches!(fld.kind, U64 | Int | Bool | Str | Time) => {
                Some(&*Box::leak(fld.json.to_ascii_lowercase().into_boxed_str()))
            }
            None => None,
        };
        // WorkloadInstance.Status shadows Instance.Status: one `Status` key.
        if !fields.iter().any(|x| x.json == fld.json) {
            fields.push(fld);
        }
    }
    TypeDef {
        path: r.path,
        name: r.name,
        subject: r.subject,
        class: r.class,
        reconciliation: r.reconciliation,
        fields,
        dependents: r.dependents,
    }
}

fn rows() -> Vec<Row> {
    vec![
        Row {
            path: "workload-definitions",
            name: "WorkloadDefinition",
            subject: Some("workloadDefinition"),
            class: Class::Definition,
            reconciliation: true,
            own: vec![
                f("YAMLDocument", Str, Req).noq(),
                f("WorkloadResourceDefinitions", Array, Assoc),
                f("WorkloadInstances", Array, Assoc),
            ],
            dependents: Some(Dependents {
                path: "workload-instances",
                fk: "WorkloadDefinitionID",
                message: "workload definition has related workload instances - cannot be deleted",
            }),
        },
        Row {
            path: "workload-resource-definitions",
            name: "WorkloadResourceDefinition",
            subject: None,
            class: Class::Plain,
            reconciliation: false,
            own: vec![
                f("JSONDefinition", Json, Req),
                f("WorkloadDefinitionID", U64, Req).q("workloaddefinitionid"),
            ],
            dependents: None,
        },
        Row {
            path: "workload-instances",
            name: "WorkloadInstance",
            subject: Some("workloadInstance"),
            class: Class::Instance,
            reconciliation: true,
            own: vec![
                f("KubernetesRuntimeInstanceID", U64, Req).q("kubernetesruntimeinstanceid"),
                f("WorkloadDefinitionID", U64, Req).q("workloaddefinitionid"),
                f("WorkloadResourceInstances", Array, Assoc),
                f("Status", Str, Opt).q("status"),
                f("Events", Array, Opt),
            ],
            dependents: None,
        },
        Row {
            path: "workload-resource-instances",
            name: "WorkloadResourceInstance",
            subject: None,
            class: Class::Plain,
            reconciliation: false,
            own: vec![
                f("JSONDefinition", Json, Req),
                f("WorkloadInstanceID", U64, Req).q("workloadinstanceid"),
                f("LastOperation", Str, Opt),
                f("Reconciled", Bool, Opt).def(Default::Bool(false)),
                f("RuntimeDefinition", Json, Opt),
                f("Events", Array, Opt),
                f("ScheduledForDeletion", Time, Opt),
            ],
            dependents: None,
        },
        Row {
            path: "workload-events",
            name: "WorkloadEvent",
            subject: None,
            class: Class::Plain,
            reconciliation: false,
            own: vec![
                f("RuntimeEventUID", Str, Req),
                f("Type", Str, Req),
                f("Reason", Str, Req),
                f("Message", Str, Req),
                f("Timestamp", Time, Req),
                f("WorkloadInstanceID", U64, Opt).q("workloadinstanceid"),
                f("WorkloadResourceInstanceID", U64, Opt),
                f("HelmWorkloadInstanceID", U64, Opt).q("helmworkloadinstanceid"),
            ],
            dependents: None,
        },
        Row {
            path: "attached-object-references",
            name: "AttachedObjectReference",
            subject: None,
            class: Class::Plain,
            reconciliation: false,
            own: vec![
                f("ObjectType", Str, Req).q("objecttype"),
                f("ObjectID", U64, Req).q("objectid"),
                f("AttachedObjectType", Str, Req).q("attachedobjecttype"),
                f("AttachedObjectID", U64, Req).q("attachedobjectid"),
            ],
            dependents: None,
        },
        Row {
            path: "events",
            name: "Event",
            subject: None,
            class: Class::Plain,
            reconciliation: false,
            own: vec![
                f("AttachedObjectReferenceID", U64, Opt),
                f("Reason", Str, Req).q("reason"),
                f("Note", Str, Opt).q("note"),
                f("Count", Int, Req),
                f("EventTime", Time, Req),
                f("LastObservedTime", Time, Req),
                f("Type", Str, Req).q("type"),
                f("ReportingController", Str, Req),
            ],
            dependents: None,
        },
        Row {
            path: "kubernetes-runtime-definitions",
            name: "KubernetesRuntimeDefinition",
            subject: Some("kubernetesRuntimeDefinition"),
            class: Class::Definition,
            reconciliation: true,
            own: vec![
                f("InfraProvider", Str, Req).q("infraprovider"),
                f("InfraProviderAccountName", Str, Opt),
                f("HighAvailability", Bool, Opt).def(Default::Bool(false)),
                f("NodeSize", Str, Opt).def(Default::Str("Medium")),
                f("NodeProfile", Str, Opt).def(Default::Str("Balanced")),
                f("NodeMaximum", Int, Opt).def(Default::Int(250)),
                f("KubernetesRuntimeInstances", Array, Assoc),
            ],
            dependents: Some(Dependents {
                path: "kubernetes-runtime-instances",
                fk: "KubernetesRuntimeDefinitionID",
                message: "kubernetes runtime definition has related kubernetes runtime instances - cannot be deleted",
            }),
        },
        Row {
            path: "kubernetes-runtime-instances",
            name: "KubernetesRuntimeInstance",
            subject: Some("kubernetesRuntimeInstance"),
            class: Class::Instance,
            reconciliation: true,
            own: vec![
                f("Location", Str, Req),
                f("ThreeportControlPlaneHost", Bool, Opt)
                    .q("threeportcontrolplanehost")
                    .def(Default::Bool(false)),
                f("APIEndpoint", Str, Opt).noq(),
                f("CACertificate", Str, Opt).noq(),
                f("Certificate", Str, Opt).noq(),
                f("CertificateKey", Str, Opt).enc().noq(),
                f("ConnectionToken", Str, Opt).enc().noq(),
                f("ConnectionTokenExpiration", Time, Opt).noq(),
                f("DefaultRuntime", Bool, Opt)
                    .q("defaultruntime")
                    .def(Default::Bool(false)),
                f("KubernetesRuntimeDefinitionID", U64, Req),
                f("WorkloadInstance", Array, Assoc).go("WorkloadInstances"),
                f("ControlPlaneInstance", Array, Assoc).go("ControlPlaneInstances"),
                f("ForceDelete", Bool, Opt),
                f("GatewayWorkloadInstanceID", U64, Opt).go("GatewayControllerInstanceID").noq(),
                f("DnsControllerInstanceId", U64, Opt).go("DnsControllerInstanceID").noq(),
                f("SecretsControllerInstanceId", U64, Opt).go("SecretsControllerInstanceID").noq(),
                f("ThreeportAgentImage", Str, Opt).noq(),
            ],
            dependents: None,
        },
        Row {
            path: "gateway-definitions",
            name: "GatewayDefinition",
            subject: Some("gatewayDefinition"),
            class: Class::Definition,
            reconciliation: true,
            own: vec![
                f(
                    "HttpPorts",
                    Children("gateway-http-ports", "GatewayDefinitionID"),
                    Opt,
                ),
                f(
                    "TcpPorts",
                    Children("gateway-tcp-ports", "GatewayDefinitionID"),
                    Opt,
                ),
                f("DomainNameDefinitionID", U64, Opt),
                f("SubDomain", Str, Opt),
                f("ServiceName", Str, Opt),
                f("WorkloadDefinitionID", U64, Opt),
                f("GatewayInstances", Array, Assoc),
            ],
            dependents: Some(Dependents {
                path: "gateway-instances",
                fk: "GatewayDefinitionID",
                message: "gateway definition has related gateway instances - cannot be deleted",
            }),
        },
        Row {
            path: "gateway-http-ports",
            name: "GatewayHttpPort",
            subject: None,
            class: Class::Plain,
            reconciliation: false,
            own: vec![
                f("GatewayDefinitionID", U64, Req).q("gatewaydefinitionid"),
                f("Port", Int, Req),
                f("Path", Str, Opt).def(Default::Str("/")),
                f("TLSEnabled", Bool, Opt).def(Default::Bool(false)),
                f("HTTPSRedirect", Bool, Opt).def(Default::Bool(false)),
            ],
            dependents: None,
        },
        Row {
            path: "gateway-tcp-ports",
            name: "GatewayTcpPort",
            subject: None,
            class: Class::Plain,
            reconciliation: false,
            own: vec![
                f("GatewayDefinitionID", U64, Req).q("gatewaydefinitionid"),
                f("Port", Int, Req),
                f("TLSEnabled", Bool, Opt).def(Default::Bool(false)),
            ],
            dependents: None,
        },
        Row {
            path: "gateway-instances",
            name: "GatewayInstance",
            subject: Some("gatewayInstance"),
            class: Class::Instance,
            reconciliation: true,
            own: vec![
                f("KubernetesRuntimeInstanceID", U64, Req),
                f("GatewayDefinitionID", U64, Req).q("gatewaydefinitionid"),
                // sic: the query tag is `workloadresourceinstanceid` in the real API.
                f("WorkloadInstanceID", U64, Req).q("workloadresourceinstanceid"),
            ],
            dependents: None,
        },
        Row {
            path: "domain-name-definitions",
            name: "DomainNameDefinition",
            subject: None,
            class: Class::Definition,
            reconciliation: true,
            own: vec![
                f("Domain", Str, Req),
                f("Zone", Str, Req),
                f("AdminEmail", Str, Req),
                f("DomainNameInstances", Array, Assoc),
            ],
            dependents: Some(Dependents {
                path: "domain-name-instances",
                fk: "DomainNameDefinitionID",
                message: "domain name definition has related domain name instances - cannot be deleted",
            }),
        },
        Row {
            path: "domain-name-instances",
            name: "DomainNameInstance",
            subject: Some("domainNameInstance"),
            class: Class::Instance,
            reconciliation: true,
            own: vec![
                f("DomainNameDefinitionID", U64, Req),
                f("WorkloadInstanceID", U64, Req).q("workloadresourceinstanceid"),
                f("KubernetesRuntimeInstanceID", U64, Req),
            ],
            dependents: None,
        },
        Row {
            path: "helm-workload-definitions",
            name: "HelmWorkloadDefinition",
            subject: Some("helmWorkloadDefinition"),
            class: Class::Definition,
            reconciliation: true,
            own: vec![
                f("Repo", Str, Req),
                f("Chart", Str, Req),
                f("ChartVersion", Str, Opt),
                f("ValuesDocument", Str, Opt).noq(),
                f("HelmWorkloadInstances", Array, Assoc),
                f("AdditionalResources", JsonArray, Opt),
            ],
            dependents: Some(Dependents {
                path: "helm-workload-instances",
                fk: "HelmWorkloadDefinitionID",
                message: "helm workload definition has related helm workload instances - cannot be deleted",
            }),
        },
        Row {
            path: "helm-workload-instances",
            name: "HelmWorkloadInstance",
            subject: Some("helmWorkloadInstance"),
            class: Class::Instance,
            reconciliation: true,
            own: vec![
                f("ValuesDocument", Str, Opt).noq(),
                f("KubernetesRuntimeInstanceID", U64, Req).q("kubernetesruntimeinstanceid"),
                f("ReleaseNamespace", Str, Opt),
                f("HelmWorkloadDefinitionID", U64, Req),
                f("AdditionalResources", JsonArray, Opt),
            ],
            dependents: None,
        },
        Row {
            path: "aws-accounts",
            name: "AwsAccount",
            subject: None,
            class: Class::Plain,
            reconciliation: false,
            own: vec![
                f("Name", Str, Req),
                f("AccountID", Str, Req),
                f("DefaultAccount", Bool, Opt).def(Default::Bool(false)),
                f("DefaultRegion", Str, Req),
                f("AccessKeyID", Str, Opt).enc().noq(),
                f("SecretAccessKey", Str, Opt).enc().noq(),
                f("RoleArn", Str, Opt),
                f("ExternalId", Str, Opt),
                f("AwsEksKubernetesRuntimeDefinitions", Array, Assoc),
            ],
            dependents: None,
        },
        Row {
            path: "aws-eks-kubernetes-runtime-definitions",
            name: "AwsEksKubernetesRuntimeDefinition",
            subject: None,
            class: Class::Definition,
            reconciliation: false,
            own: vec![
                f("AWSAccountID", U64, Req).go("AwsAccountID"),
                f("ZoneCount", Int, Req),
                f("DefaultNodeGroupInstanceType", Str, Req),
                f("DefaultNodeGroupInitialSize", Int, Req),
                f("DefaultNodeGroupMinimumSize", Int, Req),
                f("DefaultNodeGroupMaximumSize", Int, Req),
                f("AwsEksKubernetesRuntimeInstances", Array, Assoc),
                f("KubernetesRuntimeDefinitionID", U64, Req),
            ],
            dependents: None,
        },
        Row {
            path: "aws-eks-kubernetes-runtime-instances",
            name: "AwsEksKubernetesRuntimeInstance",
            subject: Some("awsEksKubernetesRuntimeInstance"),
            class: Class::Instance,
            reconciliation: true,
            own: vec![
                f("Region", Str, Opt),
                f("AwsEksKubernetesRuntimeDefinitionID", U64, Req),
                f("ResourceInventory", Json, Opt),
                f("KubernetesRuntimeInstanceID", U64, Req),
            ],
            dependents: None,
        },
        Row {
            path: "aws-relational-database-definitions",
            name: "AwsRelationalDatabaseDefinition",
            subject: None,
            class: Class::Definition,
            reconciliation: false,
            own: vec![
                f("Engine", Str, Req),
                f("EngineVersion", Str, Req),
                f("DatabaseName", Str, Req),
                f("DatabasePort", Int, Req),
                f("BackupDays", Int, Opt).q("BackupDays"),
                f("MachineSize", Str, Req),
                f("StorageGb", Int, Req),
                f("WorkloadSecretName", Str, Req).q("WorkloadSecretName"),
                f("AwsAccountID", U64, Req),
                f("AwsRelationalDatabaseInstances", Array, Assoc),
            ],
            dependents: None,
        },
        Row {
            path: "aws-relational-database-instances",
            name: "AwsRelationalDatabaseInstance",
            subject: Some("awsRelationalDatabaseInstance"),
            class: Class::Instance,
            reconciliation: true,
            own: vec![
                f("AwsRelationalDatabaseDefinitionID", U64, Req),
                f("ResourceInventory", Json, Opt),
                f("WorkloadInstanceID", U64, Req),
            ],
            dependents: None,
        },
        Row {
            path: "aws-object-storage-bucket-definitions",
            name: "AwsObjectStorageBucketDefinition",
            subject: None,
            class: Class::Definition,
            reconciliation: false,
            own: vec![
                f("PublicReadAccess", Bool, Opt).def(Default::Bool(false)),
                f("WorkloadServiceAccountName", Str, Req),
                f("WorkloadBucketEnvVar", Str, Req),
                f("AwsAccountID", U64, Req),
                f("AwsObjectStorageBucketInstances", Array, Assoc),
            ],
            dependents: None,
        },
        Row {
            path: "aws-object-storage-bucket-instances",
            name: "AwsObjectStorageBucketInstance",
            subject: Some("awsObjectStorageBucketInstance"),
            class: Class::Instance,
            reconciliation: true,
            own: vec![
                f("ResourceInventory", Json, Opt),
                f("AwsObjectStorageBucketDefinitionID", U64, Req),
                f("WorkloadInstanceID", U64, Req),
            ],
            dependents: None,
        },
        Row {
            path: "secret-definitions",
            name: "SecretDefinition",
            subject: Some("secretDefinition"),
            class: Class::Definition,
            reconciliation: true,
            own: vec![
                f("AwsAccountID", U64, Opt),
                // Not stored by the real API (it travels only in the notification).
                f("Data", Json, Req).noq(),
                f("SecretInstances", Array, Assoc),
            ],
            dependents: None,
        },
        Row {
            path: "secret-instances",
            name: "SecretInstance",
            subject: Some("secretInstance"),
            class: Class::Instance,
            reconciliation: true,
            own: vec![
                f("KubernetesRuntimeInstanceID", U64, Req),
                f("SecretDefinitionID", U64, Req),
                f("WorkloadInstanceID", U64, Opt),
                f("HelmWorkloadInstanceID", U64, Opt),
            ],
            dependents: None,
        },
        Row {
            path: "observability-stack-definitions",
            name: "ObservabilityStackDefinition",
            subject: Some("observabilityStackDefinition"),
            class: Class::Definition,
            reconciliation: true,
            own: vec![
                f("ObservabilityDashboardDefinitionID", U64, Opt),
                f("GrafanaHelmChartVersion", Str, Opt),
                f("GrafanaHelmValuesDocument", Str, Opt),
                f("MetricsDefinitionID", U64, Opt),
                f("KubePrometheusStackHelmChartVersion", Str, Opt),
                f("KubePrometheusStackHelmValuesDocument", Str, Opt),
                f("LoggingDefinitionID", U64, Opt),
                f("LokiHelmChartVersion", Str, Opt),
                f("LokiHelmValuesDocument", Str, Opt),
                f("PromtailHelmChartVersion", Str, Opt),
                f("PromtailHelmValuesDocument", Str, Opt),
                f("ObservabilityStackInstances", Array, Assoc),
            ],
            dependents: Some(Dependents {
                path: "observability-stack-instances",
                fk: "ObservabilityStackDefinitionID",
                message: "observability stack definition has related observability stack instances - cannot be deleted",
            }),
        },
        Row {
            path: "observability-stack-instances",
            name: "ObservabilityStackInstance",
            subject: Some("observabilityStackInstance"),
            class: Class::Instance,
            reconciliation: true,
            own: vec![
                f("ObservabilityStackDefinitionID", U64, Req),
                f("KubernetesRuntimeInstanceID", U64, Req),
                f("MetricsEnabled", Bool, Opt).def(Default::Bool(true)),
                f("LoggingEnabled", Bool, Opt).def(Default::Bool(true)),
                f("ObservabilityDashboardInstanceID", U64, Opt),
                f("GrafanaHelmValuesDocument", Str, Opt),
                f("MetricsInstanceID", U64, Opt),
                f("KubePrometheusStackHelmValuesDocument", Str, Opt),
                f("LoggingInstanceID", U64, Opt),
                f("LokiHelmValuesDocument", Str, Opt),
                f("PromtailHelmValuesDocument", Str, Opt),
            ],
            dependents: None,
        },
        Row {
            path: "observability-dashboard-definitions",
            name: "ObservabilityDashboardDefinition",
            subject: Some("observabilityDashboardDefinition"),
            class: Class::Definition,
            reconciliation: true,
            own: vec![
                f("GrafanaHelmWorkloadDefinitionID", U64, Opt),
                f("GrafanaHelmChartVersion", Str, Opt).def(Default::Str("7.2.1")),
                f("GrafanaHelmValuesDocument", Str, Opt),
                f("ObservabilityDashboardInstances", Array, Assoc),
            ],
            dependents: Some(Dependents {
                path: "observability-dashboard-instances",
                fk: "ObservabilityDashboardDefinitionID",
                message: "observability dashboard definition has related observability dashboard instances - cannot be deleted",
            }),
        },
        Row {
            path: "observability-dashboard-instances",
            name: "ObservabilityDashboardInstance",
            subject: Some("observabilityDashboardInstance"),
            class: Class::Instance,
            reconciliation: true,
            own: vec![
                f("ObservabilityDashboardDefinitionID", U64, Req),
                f("KubernetesRuntimeInstanceID", U64, Req),
                f("GrafanaHelmWorkloadInstanceID", U64, Opt),
                // sic: Threeport's query tag.
                f("GrafanaHelmValuesDocument", Str, Opt).q("grafanahelmvaluedsdocument"),
            ],
            dependents: None,
        },
        Row {
            path: "metrics-definitions",
            name: "MetricsDefinition",
            subject: Some("metricsDefinition"),
            class: Class::Definition,
            reconciliation: true,
            own: vec![
                f("KubePrometheusStackHelmWorkloadDefinitionID", U64, Opt),
                f("KubePrometheusStackHelmChartVersion", Str, Opt).def(Default::Str("55.8.1")),
                f("KubePrometheusStackHelmValuesDocument", Str, Opt),
                f("MetricsInstances", Array, Assoc),
            ],
            dependents: Some(Dependents {
                path: "metrics-instances",
                fk: "MetricsDefinitionID",
                message: "metrics definition has related metrics instances - cannot be deleted",
            }),
        },
        Row {
            path: "metrics-instances",
            name: "MetricsInstance",
            subject: Some("metricsInstance"),
            class: Class::Instance,
            reconciliation: true,
            own: vec![
                f("MetricsDefinitionID", U64, Req),
                f("KubernetesRuntimeInstanceID", U64, Req),
                f("KubePrometheusStackHelmWorkloadInstanceID", U64, Opt),
                f("KubePrometheusStackHelmValuesDocument", Str, Opt),
            ],
            dependents: None,
        },
        Row {
            path: "logging-definitions",
            name: "LoggingDefinition",
            subject: Some("loggingDefinition"),
            class: Class::Definition,
            reconciliation: true,
            own: vec![
                f("LokiHelmWorkloadDefinitionID", U64, Opt),
                f("PromtailHelmWorkloadDefinitionID", U64, Opt),
                f("LokiHelmChartVersion", Str, Opt).def(Default::Str("5.41.6")),
                f("PromtailHelmChartVersion", Str, Opt).def(Default::Str("6.15.3")),
                f("LokiHelmValuesDocument", Str, Opt),
                f("PromtailHelmValuesDocument", Str, Opt),
                f("LoggingInstances", Array, Assoc),
            ],
            dependents: Some(Dependents {
                path: "logging-instances",
                fk: "LoggingDefinitionID",
                message: "logging definition has related logging instances - cannot be deleted",
            }),
        },
        Row {
            path: "logging-instances",
            name: "LoggingInstance",
            subject: Some("loggingInstance"),
            class: Class::Instance,
            reconciliation: true,
            own: vec![
                f("LoggingDefinitionID", U64, Req),
                f("KubernetesRuntimeInstanceID", U64, Req),
                f("LokiHelmWorkloadInstanceID", U64, Opt),
                f("PromtailHelmWorkloadInstanceID", U64, Opt),
                f("LokiHelmValuesDocument", Str, Opt),
                f("PromtailHelmValuesDocument", Str, Opt),
            ],
            dependents: None,
        },
    ]
}

/// All object types the sandbox serves.
pub fn registry() -> &'static [TypeDef] {
    static REG: OnceLock<Vec<TypeDef>> = OnceLock::new();
    REG.get_or_init(|| rows().into_iter().map(build).collect())
}

/// The type served at `/v0/<path>`.
pub fn by_path(path: &str) -> Option<&'static TypeDef> {
    registry().iter().find(|t| t.path == path)
}

/// The streams the API creates at start-up, in creation order, with the lowerCamel names of
/// their reconcilable types (spec 1.1: `GetXSubjects()` of each `internal/*/notif`).
pub const STREAMS: &[(&str, &[&str])] = &[
    ("secretStream", &["secretDefinition", "secretInstance"]),
    (
        "awsStream",
        &[
            "awsEksKubernetesRuntimeInstance",
            "awsRelationalDatabaseInstance",
            "awsObjectStorageBucketInstance",
        ],
    ),
    (
        "control-planeStream",
        &["controlPlaneDefinition", "controlPlaneInstance"],
    ),
    (
        "gatewayStream",
        &["gatewayDefinition", "gatewayInstance", "domainNameInstance"],
    ),
    (
        "helm-workloadStream",
        &["helmWorkloadDefinition", "helmWorkloadInstance"],
    ),
    (
        "kubernetes-runtimeStream",
        &["kubernetesRuntimeDefinition", "kubernetesRuntimeInstance"],
    ),
    (
        "observabilityStream",
        &[
            "observabilityStackDefinition",
            "observabilityStackInstance",
            "observabilityDashboardDefinition",
            "observabilityDashboardInstance",
            "metricsDefinition",
            "metricsInstance",
            "loggingDefinition",
            "loggingInstance",
        ],
    ),
    (
        "terraformStream",
        &["terraformDefinition", "terraformInstance"],
    ),
    (
        "workloadStream",
        &["workloadDefinition", "workloadInstance"],
    ),
];

/// Subjects of one stream: `<x>.create`, `<x>.update`, `<x>.delete` per type, in order.
pub fn stream_subjects(types: &[&str]) -> Vec<String> {
    types
        .iter()
        .flat_map(|t| {
            ["create", "update", "delete"]
                .iter()
                .map(move |op| format!("{t}.{op}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subject_has_a_stream() {
        for t in registry() {
            if let Some(s) = t.subject {
                assert!(STREAMS.iter().any(|(_, ts)| ts.contains(&s)), "{s}");
            }
        }
    }

    #[test]
    fn query_tags() {
        let q = |p: &str, f: &str| {
            by_path(p)
                .and_then(|t| t.fields.iter().find(|x| x.json == f))
                .and_then(|x| x.query)
        };
        assert_eq!(
            q("events", "ReportingController"),
            Some("reportingcontroller")
        );
        assert_eq!(
            q("gateway-instances", "WorkloadInstanceID"),
            Some("workloadresourceinstanceid")
        );
        assert_eq!(q("workload-definitions", "YAMLDocument"), None);
        assert_eq!(q("workload-resource-instances", "JSONDefinition"), None);
        assert_eq!(q("kubernetes-runtime-instances", "CertificateKey"), None);
        assert_eq!(q("workload-definitions", "Name"), Some("name"));
    }

    #[test]
    fn workload_subjects() {
        assert_eq!(
            stream_subjects(&["workloadDefinition", "workloadInstance"]),
            vec![
                "workloadDefinition.create",
                "workloadDefinition.update",
                "workloadDefinition.delete",
                "workloadInstance.create",
                "workloadInstance.update",
                "workloadInstance.delete"
            ]
        );
    }
}
