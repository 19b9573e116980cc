//! Typed objects of the Threeport API (spec 2.5, 2.6) that the workload and gateway
//! controllers read and write.
//!
//! Every field is an `Option` with the exact JSON name of the Go struct tag and
//! `skip_serializing_if = "Option::is_none"`, mirroring Go's pointer + `omitempty` fields: a
//! struct built with `..Default::default()` serialises to exactly the fields that were set,
//! which is what a minimal PATCH body needs (spec 2.4: only non-nil fields are written, and
//! unknown or forbidden keys give 400). Unknown fields are ignored on decode so a newer API
//! does not break the manager. IDs are `u64` end to end (they are CockroachDB `unique_rowid`s
//! above 2^53), timestamps are RFC 3339 with optional fractional seconds, and `datatypes.JSON`
//! columns are raw `serde_json::Value`s (objects, not strings).
//!
//! Several JSON names are *sic* and must stay that way: `GatewayWorkloadInstanceID`,
//! `DnsControllerInstanceId`, `SecretsControllerInstanceId`, `WorkloadInstance` and
//! `ControlPlaneInstance` on [`KubernetesRuntimeInstance`].

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use super::api::{ObjectType, ThreeportApi};
use super::error::ApiError;

// ---------------------------------------------------------------------------------------------
// Object types and routes.

pub const WORKLOAD_DEFINITION: ObjectType =
    ObjectType::new("WorkloadDefinition", "workload-definitions");
pub const WORKLOAD_RESOURCE_DEFINITION: ObjectType = ObjectType::new(
    "WorkloadResourceDefinition",
    "workload-resource-definitions",
);
pub const WORKLOAD_INSTANCE: ObjectType = ObjectType::new("WorkloadInstance", "workload-instances");
pub const WORKLOAD_RESOURCE_INSTANCE: ObjectType =
    ObjectType::new("WorkloadResourceInstance", "workload-resource-instances");
pub const WORKLOAD_EVENT: ObjectType = ObjectType::new("WorkloadEvent", "workload-events");
pub const ATTACHED_OBJECT_REFERENCE: ObjectType =
    ObjectType::new("AttachedObjectReference", "attached-object-references");
pub const EVENT: ObjectType = ObjectType::new("Event", "events");
pub const KUBERNETES_RUNTIME_DEFINITION: ObjectType = ObjectType::new(
    "KubernetesRuntimeDefinition",
    "kubernetes-runtime-definitions",
);
pub const KUBERNETES_RUNTIME_INSTANCE: ObjectType =
    ObjectType::new("KubernetesRuntimeInstance", "kubernetes-runtime-instances");
pub const GATEWAY_DEFINITION: ObjectType =
    ObjectType::new("GatewayDefinition", "gateway-definitions");
pub const GATEWAY_HTTP_PORT: ObjectType = ObjectType::new("GatewayHttpPort", "gateway-http-ports");
pub const GATEWAY_TCP_PORT: ObjectType = ObjectType::new("GatewayTcpPort", "gateway-tcp-ports");
pub const GATEWAY_INSTANCE: ObjectType = ObjectType::new("GatewayInstance", "gateway-instances");
pub const DOMAIN_NAME_DEFINITION: ObjectType =
    ObjectType::new("DomainNameDefinition", "domain-name-definitions");
pub const DOMAIN_NAME_INSTANCE: ObjectType =
    ObjectType::new("DomainNameInstance", "domain-name-instances");
pub const HELM_WORKLOAD_DEFINITION: ObjectType =
    ObjectType::new("HelmWorkloadDefinition", "helm-workload-definitions");
pub const HELM_WORKLOAD_INSTANCE: ObjectType =
    ObjectType::new("HelmWorkloadInstance", "helm-workload-instances");

/// Every object type this module knows, for looking up the `"v0.<X>"` strings stored in
/// AttachedObjectReferences (Go's `DeleteObjectByTypeAndID`).
pub const KNOWN_OBJECT_TYPES: &[ObjectType] = &[
    WORKLOAD_DEFINITION,
    WORKLOAD_RESOURCE_DEFINITION,
    WORKLOAD_INSTANCE,
    WORKLOAD_RESOURCE_INSTANCE,
    WORKLOAD_EVENT,
    ATTACHED_OBJECT_REFERENCE,
    EVENT,
    KUBERNETES_RUNTIME_DEFINITION,
    KUBERNETES_RUNTIME_INSTANCE,
    GATEWAY_DEFINITION,
    GATEWAY_HTTP_PORT,
    GATEWAY_TCP_PORT,
    GATEWAY_INSTANCE,
    DOMAIN_NAME_DEFINITION,
    DOMAIN_NAME_INSTANCE,
    HELM_WORKLOAD_DEFINITION,
    HELM_WORKLOAD_INSTANCE,
];

/// The object type for a `"v0.<X>"` string (as stored in `ObjectType` / `AttachedObjectType`).
pub fn object_type_from_versioned_name(versioned: &str) -> Option<ObjectType> {
    let name = versioned.strip_prefix("v0.")?;
    KNOWN_OBJECT_TYPES.iter().copied().find(|t| t.name == name)
}

// ---------------------------------------------------------------------------------------------
// Timestamps.

/// Format a timestamp as the controllers send it: RFC 3339 in UTC with `Z` and as many
/// fractional digits as needed (Go's `time.Now().UTC()` marshalled with `RFC3339Nano`).
pub fn format_timestamp(t: OffsetDateTime) -> String {
    // Rfc3339 formatting only fails for years outside 0..=9999, which `now` never is; fall
    // back to the Unix epoch seconds rendering rather than panicking.
    t.to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// RFC 3339 (de)serialisation of `Option<OffsetDateTime>` that always writes UTC with `Z`.
mod ts {
    use super::format_timestamp;
    use serde::{Deserialize, Deserializer, Serializer};
    use time::format_description::well_known::Rfc3339;
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(v: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(t) => s.serialize_str(&format_timestamp(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<OffsetDateTime>, D::Error> {
        let raw: Option<String> = Option::deserialize(d)?;
        match raw {
            None => Ok(None),
            Some(s) => OffsetDateTime::parse(&s, &Rfc3339).map(Some).map_err(|e| {
                serde::de::Error::custom(format!("invalid RFC 3339 timestamp {s:?}: {e}"))
            }),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A string that must not end up in logs.

/// A string field that holds secret material (encrypted at rest by the API, or a decrypted
/// value). Serialises as a plain JSON string; `Debug` shows only its length so a `?object` in
/// a log line cannot leak a key or token.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretString(pub String);

impl SecretString {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<redacted {} bytes>", self.0.len())
    }
}

// ---------------------------------------------------------------------------------------------
// Embedded structs (spec 2.5).

/// gorm's model fields. Never sent in a request body: the API answers 400 if any of these keys
/// appears in a POST, PUT or PATCH.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Common {
    #[serde(rename = "ID", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    #[serde(
        rename = "CreatedAt",
        default,
        skip_serializing_if = "Option::is_none",
        with = "ts"
    )]
    pub created_at: Option<OffsetDateTime>,
    #[serde(
        rename = "UpdatedAt",
        default,
        skip_serializing_if = "Option::is_none",
        with = "ts"
    )]
    pub updated_at: Option<OffsetDateTime>,
    #[serde(
        rename = "DeletedAt",
        default,
        skip_serializing_if = "Option::is_none",
        with = "ts"
    )]
    pub deleted_at: Option<OffsetDateTime>,
}

/// Reconciliation state of reconciled types ([R] in the spec).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reconciliation {
    #[serde(
        rename = "Reconciled",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub reconciled: Option<bool>,
    #[serde(
        rename = "CreationAcknowledged",
        default,
        skip_serializing_if = "Option::is_none",
        with = "ts"
    )]
    pub creation_acknowledged: Option<OffsetDateTime>,
    #[serde(
        rename = "CreationConfirmed",
        default,
        skip_serializing_if = "Option::is_none",
        with = "ts"
    )]
    pub creation_confirmed: Option<OffsetDateTime>,
    #[serde(
        rename = "CreationFailed",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub creation_failed: Option<bool>,
    #[serde(
        rename = "DeletionScheduled",
        default,
        skip_serializing_if = "Option::is_none",
        with = "ts"
    )]
    pub deletion_scheduled: Option<OffsetDateTime>,
    #[serde(
        rename = "DeletionAcknowledged",
        default,
        skip_serializing_if = "Option::is_none",
        with = "ts"
    )]
    pub deletion_acknowledged: Option<OffsetDateTime>,
    #[serde(
        rename = "DeletionConfirmed",
        default,
        skip_serializing_if = "Option::is_none",
        with = "ts"
    )]
    pub deletion_confirmed: Option<OffsetDateTime>,
    #[serde(
        rename = "InterruptReconciliation",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub interrupt_reconciliation: Option<bool>,
}

/// Fields of definition types ([D]). `ProfileID` and `TierID` are associations: they must not
/// appear in PATCH bodies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    #[serde(rename = "Name", default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "ProfileID", default, skip_serializing_if = "Option::is_none")]
    pub profile_id: Option<u64>,
    #[serde(rename = "TierID", default, skip_serializing_if = "Option::is_none")]
    pub tier_id: Option<u64>,
}

/// Fields of instance types ([I]). `Status` is a single key even where the concrete type
/// declares its own `Status` (WorkloadInstance shadows it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    #[serde(rename = "Name", default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "Status", default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Object schemas (spec 2.6).

/// `/v0/workload-definitions` [R][D].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkloadDefinition {
    #[serde(flatten)]
    pub common: Common,
    #[serde(flatten)]
    pub reconciliation: Reconciliation,
    #[serde(flatten)]
    pub definition: Definition,
    #[serde(
        rename = "YAMLDocument",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub yaml_document: Option<String>,
    /// Association.
    #[serde(
        rename = "WorkloadResourceDefinitions",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub workload_resource_definitions: Option<Vec<WorkloadResourceDefinition>>,
    /// Association.
    #[serde(
        rename = "WorkloadInstances",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub workload_instances: Option<Vec<WorkloadInstance>>,
}

/// `/v0/workload-resource-definitions` (not reconciled); batch create through
/// `/v0/workload-resource-definition-sets`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkloadResourceDefinition {
    #[serde(flatten)]
    pub common: Common,
    /// One Kubernetes manifest as a JSON object.
    #[serde(
        rename = "JSONDefinition",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub json_definition: Option<Value>,
    #[serde(
        rename = "WorkloadDefinitionID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub workload_definition_id: Option<u64>,
}

/// `/v0/workload-instances` [R][I].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkloadInstance {
    #[serde(flatten)]
    pub common: Common,
    #[serde(flatten)]
    pub reconciliation: Reconciliation,
    #[serde(flatten)]
    pub instance: Instance,
    #[serde(
        rename = "KubernetesRuntimeInstanceID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kubernetes_runtime_instance_id: Option<u64>,
    #[serde(
        rename = "WorkloadDefinitionID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub workload_definition_id: Option<u64>,
    /// Association.
    #[serde(
        rename = "WorkloadResourceInstances",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub workload_resource_instances: Option<Vec<WorkloadResourceInstance>>,
    #[serde(rename = "Events", default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<WorkloadEvent>>,
}

/// `/v0/workload-resource-instances` (not reconciled by a stream, but carries its own
/// `Reconciled` flag).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkloadResourceInstance {
    #[serde(flatten)]
    pub common: Common,
    #[serde(
        rename = "JSONDefinition",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub json_definition: Option<Value>,
    #[serde(
        rename = "WorkloadInstanceID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub workload_instance_id: Option<u64>,
    #[serde(
        rename = "LastOperation",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub last_operation: Option<String>,
    #[serde(
        rename = "Reconciled",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub reconciled: Option<bool>,
    /// The live object, written by the agent.
    #[serde(
        rename = "RuntimeDefinition",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub runtime_definition: Option<Value>,
    #[serde(rename = "Events", default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<WorkloadEvent>>,
    /// Set by other controllers to ask the workload controller to delete this resource.
    #[serde(
        rename = "ScheduledForDeletion",
        default,
        skip_serializing_if = "Option::is_none",
        with = "ts"
    )]
    pub scheduled_for_deletion: Option<OffsetDateTime>,
}

/// `/v0/workload-events` (not reconciled).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkloadEvent {
    #[serde(flatten)]
    pub common: Common,
    #[serde(
        rename = "RuntimeEventUID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub runtime_event_uid: Option<String>,
    #[serde(rename = "Type", default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    #[serde(rename = "Reason", default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(rename = "Message", default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(
        rename = "Timestamp",
        default,
        skip_serializing_if = "Option::is_none",
        with = "ts"
    )]
    pub timestamp: Option<OffsetDateTime>,
    #[serde(
        rename = "WorkloadInstanceID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub workload_instance_id: Option<u64>,
    #[serde(
        rename = "WorkloadResourceInstanceID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub workload_resource_instance_id: Option<u64>,
    #[serde(
        rename = "HelmWorkloadInstanceID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub helm_workload_instance_id: Option<u64>,
}

/// `/v0/attached-object-references`. The four fields form a unique index, so a duplicate POST
/// answers 500.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AttachedObjectReference {
    #[serde(flatten)]
    pub common: Common,
    /// `"v0.<X>"`, e.g. `"v0.WorkloadInstance"`.
    #[serde(
        rename = "ObjectType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub object_type: Option<String>,
    #[serde(rename = "ObjectID", default, skip_serializing_if = "Option::is_none")]
    pub object_id: Option<u64>,
    #[serde(
        rename = "AttachedObjectType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub attached_object_type: Option<String>,
    #[serde(
        rename = "AttachedObjectID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub attached_object_id: Option<u64>,
}

/// `/v0/events`: Threeport's own event objects (spec 1.10).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    #[serde(flatten)]
    pub common: Common,
    #[serde(
        rename = "AttachedObjectReferenceID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub attached_object_reference_id: Option<u64>,
    #[serde(rename = "Reason", default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(rename = "Note", default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(rename = "Count", default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(
        rename = "EventTime",
        default,
        skip_serializing_if = "Option::is_none",
        with = "ts"
    )]
    pub event_time: Option<OffsetDateTime>,
    #[serde(
        rename = "LastObservedTime",
        default,
        skip_serializing_if = "Option::is_none",
        with = "ts"
    )]
    pub last_observed_time: Option<OffsetDateTime>,
    /// `Normal` or `Warning`.
    #[serde(rename = "Type", default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    #[serde(
        rename = "ReportingController",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub reporting_controller: Option<String>,
}

/// `/v0/kubernetes-runtime-definitions` [R][D].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KubernetesRuntimeDefinition {
    #[serde(flatten)]
    pub common: Common,
    #[serde(flatten)]
    pub reconciliation: Reconciliation,
    #[serde(flatten)]
    pub definition: Definition,
    /// `"kind"` or `"eks"`.
    #[serde(
        rename = "InfraProvider",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub infra_provider: Option<String>,
    #[serde(
        rename = "InfraProviderAccountName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub infra_provider_account_name: Option<String>,
    #[serde(
        rename = "HighAvailability",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub high_availability: Option<bool>,
    #[serde(rename = "NodeSize", default, skip_serializing_if = "Option::is_none")]
    pub node_size: Option<String>,
    #[serde(
        rename = "NodeProfile",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub node_profile: Option<String>,
    #[serde(
        rename = "NodeMaximum",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub node_maximum: Option<i64>,
    /// Association.
    #[serde(
        rename = "KubernetesRuntimeInstances",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kubernetes_runtime_instances: Option<Vec<KubernetesRuntimeInstance>>,
}

/// `/v0/kubernetes-runtime-instances` [R][I]. Mind the *sic* JSON names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KubernetesRuntimeInstance {
    #[serde(flatten)]
    pub common: Common,
    #[serde(flatten)]
    pub reconciliation: Reconciliation,
    #[serde(flatten)]
    pub instance: Instance,
    /// Immutable after creation.
    #[serde(rename = "Location", default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(
        rename = "ThreeportControlPlaneHost",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub threeport_control_plane_host: Option<bool>,
    #[serde(
        rename = "APIEndpoint",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub api_endpoint: Option<String>,
    /// PEM, plaintext.
    #[serde(
        rename = "CACertificate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ca_certificate: Option<String>,
    /// PEM, plaintext.
    #[serde(
        rename = "Certificate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub certificate: Option<String>,
    /// Encrypted at rest (spec 2.9); never echo it in a PATCH.
    #[serde(
        rename = "CertificateKey",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub certificate_key: Option<SecretString>,
    /// Encrypted at rest (spec 2.9); never echo it in a PATCH.
    #[serde(
        rename = "ConnectionToken",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub connection_token: Option<SecretString>,
    #[serde(
        rename = "ConnectionTokenExpiration",
        default,
        skip_serializing_if = "Option::is_none",
        with = "ts"
    )]
    pub connection_token_expiration: Option<OffsetDateTime>,
    #[serde(
        rename = "DefaultRuntime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub default_runtime: Option<bool>,
    #[serde(
        rename = "KubernetesRuntimeDefinitionID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kubernetes_runtime_definition_id: Option<u64>,
    /// Association; JSON name is singular (*sic*, Go field `WorkloadInstances`).
    #[serde(
        rename = "WorkloadInstance",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub workload_instances: Option<Vec<WorkloadInstance>>,
    /// Association; JSON name is singular (*sic*).
    #[serde(
        rename = "ControlPlaneInstance",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub control_plane_instances: Option<Vec<Value>>,
    #[serde(
        rename = "ForceDelete",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub force_delete: Option<bool>,
    /// The gloo-edge support WorkloadInstance (*sic*, Go field `GatewayControllerInstanceID`).
    #[serde(
        rename = "GatewayWorkloadInstanceID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub gateway_workload_instance_id: Option<u64>,
    /// The external-dns WorkloadInstance (*sic*, lower-case `d`).
    #[serde(
        rename = "DnsControllerInstanceId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dns_controller_instance_id: Option<u64>,
    /// The external-secrets WorkloadInstance (*sic*).
    #[serde(
        rename = "SecretsControllerInstanceId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub secrets_controller_instance_id: Option<u64>,
    #[serde(
        rename = "ThreeportAgentImage",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub threeport_agent_image: Option<String>,
}

/// `/v0/gateway-definitions` [R][D].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GatewayDefinition {
    #[serde(flatten)]
    pub common: Common,
    #[serde(flatten)]
    pub reconciliation: Reconciliation,
    #[serde(flatten)]
    pub definition: Definition,
    /// Not an association, but not returned by GET by id either: list
    /// `/v0/gateway-http-ports?gatewaydefinitionid=` instead.
    #[serde(rename = "HttpPorts", default, skip_serializing_if = "Option::is_none")]
    pub http_ports: Option<Vec<GatewayHttpPort>>,
    #[serde(rename = "TcpPorts", default, skip_serializing_if = "Option::is_none")]
    pub tcp_ports: Option<Vec<GatewayTcpPort>>,
    #[serde(
        rename = "DomainNameDefinitionID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub domain_name_definition_id: Option<u64>,
    #[serde(rename = "SubDomain", default, skip_serializing_if = "Option::is_none")]
    pub sub_domain: Option<String>,
    #[serde(
        rename = "ServiceName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub service_name: Option<String>,
    #[serde(
        rename = "WorkloadDefinitionID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub workload_definition_id: Option<u64>,
    /// Association.
    #[serde(
        rename = "GatewayInstances",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub gateway_instances: Option<Vec<GatewayInstance>>,
}

/// `/v0/gateway-http-ports`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GatewayHttpPort {
    #[serde(flatten)]
    pub common: Common,
    #[serde(
        rename = "GatewayDefinitionID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub gateway_definition_id: Option<u64>,
    #[serde(rename = "Port", default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    #[serde(rename = "Path", default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(
        rename = "TLSEnabled",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub tls_enabled: Option<bool>,
    #[serde(
        rename = "HTTPSRedirect",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub https_redirect: Option<bool>,
}

/// `/v0/gateway-tcp-ports`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GatewayTcpPort {
    #[serde(flatten)]
    pub common: Common,
    #[serde(
        rename = "GatewayDefinitionID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub gateway_definition_id: Option<u64>,
    #[serde(rename = "Port", default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    #[serde(
        rename = "TLSEnabled",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub tls_enabled: Option<bool>,
}

/// `/v0/gateway-instances` [R][I]. The query tag of `WorkloadInstanceID` is
/// `workloadresourceinstanceid` (*sic*).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GatewayInstance {
    #[serde(flatten)]
    pub common: Common,
    #[serde(flatten)]
    pub reconciliation: Reconciliation,
    #[serde(flatten)]
    pub instance: Instance,
    #[serde(
        rename = "KubernetesRuntimeInstanceID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kubernetes_runtime_instance_id: Option<u64>,
    #[serde(
        rename = "GatewayDefinitionID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub gateway_definition_id: Option<u64>,
    #[serde(
        rename = "WorkloadInstanceID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub workload_instance_id: Option<u64>,
}

/// `/v0/domain-name-definitions` [R][D] (not reconciled: no stream).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DomainNameDefinition {
    #[serde(flatten)]
    pub common: Common,
    #[serde(flatten)]
    pub reconciliation: Reconciliation,
    #[serde(flatten)]
    pub definition: Definition,
    #[serde(rename = "Domain", default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(rename = "Zone", default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    #[serde(
        rename = "AdminEmail",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub admin_email: Option<String>,
    /// Association.
    #[serde(
        rename = "DomainNameInstances",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub domain_name_instances: Option<Vec<DomainNameInstance>>,
}

/// `/v0/domain-name-instances` [R][I].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DomainNameInstance {
    #[serde(flatten)]
    pub common: Common,
    #[serde(flatten)]
    pub reconciliation: Reconciliation,
    #[serde(flatten)]
    pub instance: Instance,
    #[serde(
        rename = "DomainNameDefinitionID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub domain_name_definition_id: Option<u64>,
    #[serde(
        rename = "WorkloadInstanceID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub workload_instance_id: Option<u64>,
    #[serde(
        rename = "KubernetesRuntimeInstanceID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kubernetes_runtime_instance_id: Option<u64>,
}

// ---------------------------------------------------------------------------------------------
// Typed access.

/// A typed API object: its route and its embedded structs.
pub trait ApiObject: Serialize + DeserializeOwned + Send + Sync + 'static {
    const OBJECT_TYPE: ObjectType;

    fn common(&self) -> &Common;

    /// The reconciliation fields, for reconciled types.
    fn reconciliation(&self) -> Option<&Reconciliation> {
        None
    }

    fn id(&self) -> Option<u64> {
        self.common().id
    }
}

macro_rules! api_object {
    ($t:ty, $ot:expr) => {
        impl ApiObject for $t {
            const OBJECT_TYPE: ObjectType = $ot;
            fn common(&self) -> &Common {
                &self.common
            }
        }
    };
    ($t:ty, $ot:expr, reconciled) => {
        impl ApiObject for $t {
            const OBJECT_TYPE: ObjectType = $ot;
            fn common(&self) -> &Common {
                &self.common
            }
            fn reconciliation(&self) -> Option<&Reconciliation> {
                Some(&self.reconciliation)
            }
        }
    };
}

api_object!(WorkloadDefinition, WORKLOAD_DEFINITION, reconciled);
api_object!(WorkloadResourceDefinition, WORKLOAD_RESOURCE_DEFINITION);
api_object!(WorkloadInstance, WORKLOAD_INSTANCE, reconciled);
api_object!(WorkloadResourceInstance, WORKLOAD_RESOURCE_INSTANCE);
api_object!(WorkloadEvent, WORKLOAD_EVENT);
api_object!(AttachedObjectReference, ATTACHED_OBJECT_REFERENCE);
api_object!(Event, EVENT);
api_object!(
    KubernetesRuntimeDefinition,
    KUBERNETES_RUNTIME_DEFINITION,
    reconciled
);
api_object!(
    KubernetesRuntimeInstance,
    KUBERNETES_RUNTIME_INSTANCE,
    reconciled
);
api_object!(GatewayDefinition, GATEWAY_DEFINITION, reconciled);
api_object!(GatewayHttpPort, GATEWAY_HTTP_PORT);
api_object!(GatewayTcpPort, GATEWAY_TCP_PORT);
api_object!(GatewayInstance, GATEWAY_INSTANCE, reconciled);
api_object!(DomainNameDefinition, DOMAIN_NAME_DEFINITION, reconciled);
api_object!(DomainNameInstance, DOMAIN_NAME_INSTANCE, reconciled);

/// Decode one object of the API into its typed model; failures become [`ApiError::Decode`]
/// naming the collection route.
pub fn decode<T: ApiObject>(value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| ApiError::Decode {
        route: T::OBJECT_TYPE.collection_path(),
        reason: format!("{}: {e}", T::OBJECT_TYPE.name),
    })
}

/// `GET /v0/<xs>/<id>`, decoded.
pub async fn get_typed<T: ApiObject, A: ThreeportApi + ?Sized>(
    api: &A,
    id: u64,
) -> Result<T, ApiError> {
    decode(api.get(T::OBJECT_TYPE, id).await?)
}

/// `GET /v0/<xs>?<filters>` over every page, decoded.
pub async fn list_typed<T: ApiObject, A: ThreeportApi + ?Sized>(
    api: &A,
    filters: &[(&str, String)],
) -> Result<Vec<T>, ApiError> {
    api.list(T::OBJECT_TYPE, filters)
        .await?
        .into_iter()
        .map(decode)
        .collect()
}

/// `POST /v0/<xs>` with `object` (gorm model keys removed, see [`create_body`]), decoded.
pub async fn create_typed<T: ApiObject, A: ThreeportApi + ?Sized>(
    api: &A,
    object: &T,
) -> Result<T, ApiError> {
    let body = create_body(T::OBJECT_TYPE, object)?;
    decode(api.create(T::OBJECT_TYPE, body).await?)
}

/// `PATCH /v0/<xs>/<id>` with the fields set in `update` (see [`patch_body`]), decoded.
pub async fn patch_typed<T: ApiObject, A: ThreeportApi + ?Sized>(
    api: &A,
    id: u64,
    update: &T,
) -> Result<T, ApiError> {
    let body = patch_body(T::OBJECT_TYPE, update)?;
    decode(api.patch(T::OBJECT_TYPE, id, body).await?)
}

// ---------------------------------------------------------------------------------------------
// PATCH bodies.

/// gorm model keys: any of them in a body is a 400 (spec 2.4).
pub const GORM_MODEL_FIELDS: [&str; 4] = ["ID", "CreatedAt", "UpdatedAt", "DeletedAt"];

/// Keys tagged `validate:"optional,association"` per type: present in a PATCH (even as null)
/// they are a 400 (spec 2.4).
pub fn association_fields(ty: ObjectType) -> &'static [&'static str] {
    match ty.name {
        "WorkloadDefinition" => &[
            "ProfileID",
            "TierID",
            "WorkloadResourceDefinitions",
            "WorkloadInstances",
        ],
        "WorkloadInstance" => &["WorkloadResourceInstances"],
        "KubernetesRuntimeDefinition" => &["ProfileID", "TierID", "KubernetesRuntimeInstances"],
        "KubernetesRuntimeInstance" => &["WorkloadInstance", "ControlPlaneInstance"],
        "GatewayDefinition" => &["ProfileID", "TierID", "GatewayInstances"],
        "DomainNameDefinition" => &["ProfileID", "TierID", "DomainNameInstances"],
        "HelmWorkloadDefinition" => &["ProfileID", "TierID", "HelmWorkloadInstances"],
        _ => &[],
    }
}

/// Keys the API encrypts at rest (spec 2.9). Echoing a value read from GET makes the API
/// encrypt the ciphertext again, so [`patch_body`] drops them.
pub fn encrypted_fields(ty: ObjectType) -> &'static [&'static str] {
    match ty.name {
        "KubernetesRuntimeInstance" => &["CertificateKey", "ConnectionToken"],
        _ => &[],
    }
}

/// Serialise `update` (a model built with only the fields to change) into a PATCH body for
/// `ty`, dropping every key the API rejects or mishandles in a PATCH: gorm model fields,
/// association fields and encrypted fields. To deliberately write a *new* secret value (the
/// EKS token refresh), insert that key into the returned object afterwards.
pub fn patch_body<T: Serialize>(ty: ObjectType, update: &T) -> Result<Value, ApiError> {
    let value = serde_json::to_value(update).map_err(|e| ApiError::Decode {
        route: ty.collection_path(),
        reason: format!("cannot encode {} PATCH body: {e}", ty.name),
    })?;
    Ok(strip_patch_keys(ty, value))
}

/// Serialise `object` into a POST body for `ty`: the gorm model keys (`ID`, `CreatedAt`, ...)
/// are removed because the API rejects them on POST too (spec 2.4), which matters when an
/// object read from the API is reused as a template.
pub fn create_body<T: Serialize>(ty: ObjectType, object: &T) -> Result<Value, ApiError> {
    let mut value = serde_json::to_value(object).map_err(|e| ApiError::Decode {
        route: ty.collection_path(),
        reason: format!("cannot encode {} POST body: {e}", ty.name),
    })?;
    if let Value::Object(map) = &mut value {
        for key in GORM_MODEL_FIELDS {
            map.remove(key);
        }
    }
    Ok(value)
}

/// Remove the keys [`patch_body`] never sends from an already built JSON object.
pub fn strip_patch_keys(ty: ObjectType, mut value: Value) -> Value {
    if let Value::Object(map) = &mut value {
        for key in GORM_MODEL_FIELDS
            .iter()
            .chain(association_fields(ty))
            .chain(encrypted_fields(ty))
        {
            map.remove(*key);
        }
    }
    value
}

/// `{"Reconciled":true}`: the completion PATCH of Created and Updated reconciles.
pub fn reconciled_patch() -> Value {
    json!({ "Reconciled": true })
}

/// `{"Reconciled":false}`: makes the owning controller reconcile the object again (spec 2.8).
pub fn unreconciled_patch() -> Value {
    json!({ "Reconciled": false })
}

/// `{"DeletionAcknowledged":t,"DeletionConfirmed":t,"Reconciled":true}` with one identical
/// UTC timestamp: the PATCH that precedes the final DELETE of a Deleted reconcile (spec 1.9).
pub fn deletion_confirmed_patch(now: OffsetDateTime) -> Value {
    let t = Value::String(format_timestamp(now));
    // Insert in sorted order so the serialised body is the same whether or not serde_json's
    // `preserve_order` feature is enabled somewhere in the dependency graph.
    let mut map = Map::new();
    map.insert("DeletionAcknowledged".into(), t.clone());
    map.insert("DeletionConfirmed".into(), t);
    map.insert("Reconciled".into(), Value::Bool(true));
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    /// `Data[0]` of a GET /v0/workload-instances/{id} response as the real API renders it,
    /// with IDs above 2^53 and an unknown field.
    const WI_GET: &str = r#"{
        "ID": 917190976565575681,
        "CreatedAt": "2023-11-09T12:18:36.020403Z",
        "UpdatedAt": "2023-11-09T12:18:37.5Z",
        "DeletedAt": null,
        "Reconciled": false,
        "CreationAcknowledged": null,
        "CreationConfirmed": null,
        "CreationFailed": false,
        "DeletionScheduled": "2023-11-09T13:00:00Z",
        "DeletionAcknowledged": null,
        "DeletionConfirmed": null,
        "InterruptReconciliation": false,
        "Name": "web",
        "Status": "Healthy",
        "KubernetesRuntimeInstanceID": 18446744073709551615,
        "WorkloadDefinitionID": 9007199254740993,
        "SomeFutureField": {"x": 1}
    }"#;

    #[test]
    fn decodes_workload_instance_with_exact_ids() {
        let wi: WorkloadInstance = decode(serde_json::from_str(WI_GET).unwrap()).unwrap();
        assert_eq!(wi.id(), Some(917_190_976_565_575_681));
        assert_eq!(wi.kubernetes_runtime_instance_id, Some(u64::MAX));
        // 2^53 + 1 is not representable as f64: proves no float round trip.
        assert_eq!(wi.workload_definition_id, Some(9_007_199_254_740_993));
        assert_eq!(
            wi.common.created_at,
            Some(datetime!(2023-11-09 12:18:36.020403 UTC))
        );
        assert_eq!(
            wi.common.updated_at,
            Some(datetime!(2023-11-09 12:18:37.5 UTC))
        );
        assert_eq!(wi.common.deleted_at, None);
        assert_eq!(wi.reconciliation.reconciled, Some(false));
        assert_eq!(
            wi.reconciliation.deletion_scheduled,
            Some(datetime!(2023-11-09 13:00:00 UTC))
        );
        assert_eq!(wi.instance.name.as_deref(), Some("web"));
        assert_eq!(wi.instance.status.as_deref(), Some("Healthy"));
        assert!(wi.reconciliation().is_some());
    }

    #[test]
    fn round_trip_keeps_ids_and_timestamps() {
        let wi: WorkloadInstance = serde_json::from_str(WI_GET).unwrap();
        let text = serde_json::to_string(&wi).unwrap();
        assert!(text.contains(r#""ID":917190976565575681"#), "{text}");
        assert!(text.contains(r#""KubernetesRuntimeInstanceID":18446744073709551615"#));
        assert!(
            text.contains(r#""CreatedAt":"2023-11-09T12:18:36.020403Z""#),
            "{text}"
        );
        assert!(
            text.contains(r#""UpdatedAt":"2023-11-09T12:18:37.5Z""#),
            "{text}"
        );
        assert!(
            !text.contains("DeletedAt"),
            "null fields are omitted: {text}"
        );
        assert!(!text.contains("SomeFutureField"));
        let again: WorkloadInstance = serde_json::from_str(&text).unwrap();
        assert_eq!(again, wi);
    }

    #[test]
    fn timestamps_accept_offsets_and_write_utc_z() {
        let wrd: WorkloadResourceInstance = serde_json::from_str(
            r#"{"ID":1,"ScheduledForDeletion":"2024-02-03T04:05:06.123456789+02:00"}"#,
        )
        .unwrap();
        assert_eq!(
            wrd.scheduled_for_deletion,
            Some(datetime!(2024-02-03 02:05:06.123456789 UTC))
        );
        let out = serde_json::to_value(&wrd).unwrap();
        assert_eq!(
            out["ScheduledForDeletion"],
            "2024-02-03T02:05:06.123456789Z"
        );
        assert!(serde_json::from_str::<Event>(r#"{"EventTime":"yesterday"}"#).is_err());
    }

    #[test]
    fn kubernetes_runtime_instance_sic_names() {
        let raw = r#"{
            "ID": 917190976565575682,
            "Name": "local",
            "Location": "Local",
            "ThreeportControlPlaneHost": true,
            "APIEndpoint": "https://127.0.0.1:6443",
            "CACertificate": "-----BEGIN CERTIFICATE-----",
            "Certificate": "-----BEGIN CERTIFICATE-----",
            "CertificateKey": "yMnKy8zNzs/Q0dLT",
            "ConnectionToken": null,
            "DefaultRuntime": true,
            "KubernetesRuntimeDefinitionID": 917190976565575000,
            "WorkloadInstance": [],
            "ControlPlaneInstance": null,
            "GatewayWorkloadInstanceID": 917190976565575683,
            "DnsControllerInstanceId": 917190976565575684,
            "SecretsControllerInstanceId": 917190976565575685,
            "ThreeportAgentImage": "ghcr.io/threeport/threeport-agent:v0.5.0"
        }"#;
        let kri: KubernetesRuntimeInstance = decode(serde_json::from_str(raw).unwrap()).unwrap();
        assert_eq!(
            kri.gateway_workload_instance_id,
            Some(917_190_976_565_575_683)
        );
        assert_eq!(
            kri.dns_controller_instance_id,
            Some(917_190_976_565_575_684)
        );
        assert_eq!(
            kri.secrets_controller_instance_id,
            Some(917_190_976_565_575_685)
        );
        assert_eq!(kri.workload_instances, Some(vec![]));
        assert_eq!(kri.control_plane_instances, None);
        assert_eq!(
            kri.certificate_key.as_ref().map(|s| s.expose()),
            Some("yMnKy8zNzs/Q0dLT")
        );
        let dbg = format!("{kri:?}");
        assert!(!dbg.contains("yMnKy8zNzs"), "secret leaked in Debug: {dbg}");

        // A minimal PATCH of the support-service IDs uses the sic names and nothing else.
        let update = KubernetesRuntimeInstance {
            gateway_workload_instance_id: Some(917_190_976_565_575_683),
            dns_controller_instance_id: Some(1),
            ..Default::default()
        };
        let body = patch_body(KUBERNETES_RUNTIME_INSTANCE, &update).unwrap();
        assert_eq!(
            body,
            json!({"DnsControllerInstanceId": 1, "GatewayWorkloadInstanceID": 917_190_976_565_575_683u64})
        );

        // A full object read from GET loses gorm, association and encrypted keys.
        let full = patch_body(KUBERNETES_RUNTIME_INSTANCE, &kri).unwrap();
        let map = full.as_object().unwrap();
        for k in [
            "ID",
            "WorkloadInstance",
            "CertificateKey",
            "ConnectionToken",
        ] {
            assert!(!map.contains_key(k), "{k} must not be in a PATCH body");
        }
        assert_eq!(
            map["GatewayWorkloadInstanceID"],
            json!(917_190_976_565_575_683u64)
        );
        assert_eq!(map["Name"], "local");
    }

    #[test]
    fn patch_bodies_are_exact() {
        assert_eq!(
            serde_json::to_string(&reconciled_patch()).unwrap(),
            r#"{"Reconciled":true}"#
        );
        assert_eq!(
            serde_json::to_string(&unreconciled_patch()).unwrap(),
            r#"{"Reconciled":false}"#
        );
        let now = datetime!(2026-01-02 03:04:05.123456789 +01:00);
        assert_eq!(
            serde_json::to_string(&deletion_confirmed_patch(now)).unwrap(),
            r#"{"DeletionAcknowledged":"2026-01-02T02:04:05.123456789Z","DeletionConfirmed":"2026-01-02T02:04:05.123456789Z","Reconciled":true}"#
        );
        let whole = datetime!(2026-01-02 03:04:05 UTC);
        assert_eq!(
            deletion_confirmed_patch(whole),
            json!({"Reconciled": true, "DeletionAcknowledged": "2026-01-02T03:04:05Z", "DeletionConfirmed": "2026-01-02T03:04:05Z"})
        );
    }

    #[test]
    fn patch_body_strips_definition_associations() {
        let wd = WorkloadDefinition {
            common: Common {
                id: Some(5),
                ..Default::default()
            },
            definition: Definition {
                name: Some("web".into()),
                profile_id: Some(1),
                tier_id: Some(2),
            },
            workload_resource_definitions: Some(vec![]),
            reconciliation: Reconciliation {
                reconciled: Some(true),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(
            patch_body(WORKLOAD_DEFINITION, &wd).unwrap(),
            json!({"Name": "web", "Reconciled": true})
        );
    }

    #[test]
    fn event_and_reference_shapes() {
        let ev: Event = serde_json::from_str(
            r#"{"ID":917190976565575690,"AttachedObjectReferenceID":917190976565575691,
                "Reason":"SuccessfulCreate","Note":"n","Count":3,
                "EventTime":"2023-11-09T12:18:36.020403Z","LastObservedTime":"2023-11-09T12:18:36Z",
                "Type":"Normal","ReportingController":"WorkloadController"}"#,
        )
        .unwrap();
        assert_eq!(ev.count, Some(3));
        assert_eq!(
            ev.attached_object_reference_id,
            Some(917_190_976_565_575_691)
        );
        assert_eq!(ev.event_type.as_deref(), Some("Normal"));
        let r = AttachedObjectReference {
            object_type: Some(WORKLOAD_INSTANCE.versioned_name()),
            object_id: Some(u64::MAX),
            attached_object_type: Some(EVENT.versioned_name()),
            attached_object_id: Some(1),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"ObjectType":"v0.WorkloadInstance","ObjectID":18446744073709551615,"AttachedObjectType":"v0.Event","AttachedObjectID":1}"#
        );
    }

    #[test]
    fn gateway_and_domain_models() {
        let gd: GatewayDefinition = serde_json::from_str(
            r#"{"ID":10,"Name":"gw","HttpPorts":[{"Port":443,"Path":"/","TLSEnabled":true,"HTTPSRedirect":false,"GatewayDefinitionID":10}],
                "TcpPorts":null,"DomainNameDefinitionID":11,"SubDomain":"app","ServiceName":"web","WorkloadDefinitionID":12}"#,
        )
        .unwrap();
        let ports = gd.http_ports.as_ref().unwrap();
        assert_eq!(ports[0].port, Some(443));
        assert_eq!(ports[0].tls_enabled, Some(true));
        assert_eq!(gd.tcp_ports, None);
        let gi: GatewayInstance = serde_json::from_str(
            r#"{"ID":13,"Name":"gw-i","GatewayDefinitionID":10,"KubernetesRuntimeInstanceID":14,"WorkloadInstanceID":15}"#,
        )
        .unwrap();
        assert_eq!(gi.workload_instance_id, Some(15));
        let dni: DomainNameInstance = serde_json::from_str(
            r#"{"ID":16,"Name":"d","DomainNameDefinitionID":17,"WorkloadInstanceID":15,"KubernetesRuntimeInstanceID":14}"#,
        )
        .unwrap();
        assert_eq!(dni.domain_name_definition_id, Some(17));
        let wrd: WorkloadResourceDefinition = serde_json::from_str(
            r#"{"ID":18,"JSONDefinition":{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"}},"WorkloadDefinitionID":917190976565575681}"#,
        )
        .unwrap();
        assert_eq!(wrd.json_definition.as_ref().unwrap()["kind"], "Service");
        assert_eq!(wrd.workload_definition_id, Some(917_190_976_565_575_681));
    }

    /// Echoes bodies back with an ID, like the API does for POST and PATCH.
    struct EchoApi(std::sync::Mutex<Vec<crate::threeport::api::ApiRequest>>);

    #[async_trait::async_trait]
    impl ThreeportApi for EchoApi {
        async fn call(
            &self,
            request: crate::threeport::api::ApiRequest,
        ) -> Result<crate::threeport::api::ApiResponse, ApiError> {
            let mut obj = request.body.clone().unwrap_or_else(|| json!({}));
            obj["ID"] = json!(917_190_976_565_575_681u64);
            self.0.lock().unwrap().push(request);
            Ok(crate::threeport::api::ApiResponse {
                data: vec![obj],
                meta: Default::default(),
            })
        }
    }

    #[tokio::test]
    async fn typed_create_and_patch() {
        let api = EchoApi(Default::default());
        let template = WorkloadInstance {
            common: Common {
                id: Some(1),
                created_at: Some(datetime!(2024-01-01 00:00 UTC)),
                ..Default::default()
            },
            instance: Instance {
                name: Some("gw-support".into()),
                status: None,
            },
            kubernetes_runtime_instance_id: Some(2),
            workload_definition_id: Some(3),
            ..Default::default()
        };
        let created = create_typed(&api, &template).await.unwrap();
        assert_eq!(created.id(), Some(917_190_976_565_575_681));
        let patched = patch_typed(
            &api,
            917_190_976_565_575_681,
            &WorkloadInstance {
                reconciliation: Reconciliation {
                    reconciled: Some(false),
                    ..Default::default()
                },
                workload_resource_instances: Some(vec![]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(patched.reconciliation.reconciled, Some(false));
        let reqs = api.0.lock().unwrap().clone();
        assert_eq!(reqs[0].path, "/v0/workload-instances");
        assert_eq!(
            reqs[0].body,
            Some(
                json!({"Name": "gw-support", "KubernetesRuntimeInstanceID": 2, "WorkloadDefinitionID": 3})
            )
        );
        assert_eq!(reqs[1].path, "/v0/workload-instances/917190976565575681");
        assert_eq!(reqs[1].body, Some(json!({"Reconciled": false})));
    }

    #[test]
    fn versioned_name_lookup() {
        assert_eq!(
            object_type_from_versioned_name("v0.GatewayInstance"),
            Some(GATEWAY_INSTANCE)
        );
        assert_eq!(object_type_from_versioned_name("v0.Event"), Some(EVENT));
        assert_eq!(object_type_from_versioned_name("GatewayInstance"), None);
        assert_eq!(object_type_from_versioned_name("v0.Nope"), None);
    }

    #[test]
    fn decode_errors_name_the_type() {
        let err = decode::<WorkloadInstance>(json!({"ID": "not a number"})).unwrap_err();
        assert!(err.to_string().contains("WorkloadInstance"), "{err}");
        let err = decode::<WorkloadInstance>(json!({"ID": -1})).unwrap_err();
        assert!(matches!(err, ApiError::Decode { .. }));
    }
}
