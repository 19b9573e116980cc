//! The Threeport object types, each described in one place: one `api_object!` (or, for a
//! type no controller here reads yet, one `object_type!`) gives its route, its subject if it
//! is reconciled, its JSON fields with their wire names and types, which of them are
//! associations, encrypted, or query filters, and generates the typed model, the
//! [`ObjectType`] constant and the [`ApiObject`] impl from that. Both macros are in
//! `declare.rs` and private to the crate.
//!
//! # The wire rules every model follows (spec 2.4-2.6)
//!
//! Every field is an `Option` with the exact JSON name of the Go struct tag, left out when
//! `None`, mirroring Go's pointer + `omitempty` fields: a model built with
//! `..Default::default()` serialises to exactly the fields that were set, which is what a
//! minimal PATCH body needs (only non-nil fields are written; unknown or forbidden keys are a
//! 400). Unknown fields are ignored on decode so a newer API does not break the manager. IDs
//! are `u64` end to end (CockroachDB `unique_rowid`s above 2^53), timestamps are RFC 3339 with
//! optional fractional seconds written in UTC with `Z`, and `datatypes.JSON` columns are raw
//! `serde_json::Value`s. A field's serialisation follows from its type ([`Wire`]), so a
//! declaration is one line.
//!
//! # How this scales to Threeport's ~60 object types
//!
//! One declaration per type, in a file per controller family ([`workload`], [`runtime`],
//! [`gateway`], [`events`], [`routes`] for types only named so far); adding a type is adding
//! one declaration there and its constant to [`ALL_OBJECT_TYPES`]. The declarations are
//! written by hand from Threeport's `pkg/api/v0` structs rather than generated from them:
//! the Go source is not available at build time, a generator would be one more tool to keep
//! working, and the models only need the fields a controller reads or writes (a field left out
//! is ignored on decode and never sent). What keeps the hand-written table honest is
//! `tests/object_table.rs`: it checks every declared type and field against the sandbox
//! API's own, independently written table (route, subject, JSON name, kind, association,
//! encryption, query tag), and every type of the sandbox against [`ALL_OBJECT_TYPES`].
//!
//! Several JSON names are *sic* and must stay that way: `GatewayWorkloadInstanceID`,
//! `DnsControllerInstanceId`, `SecretsControllerInstanceId`, `WorkloadInstance` and
//! `ControlPlaneInstance` on [`KubernetesRuntimeInstance`], the query tag
//! `workloadresourceinstanceid` of `WorkloadInstanceID` on gateway and domain name instances.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use super::api::ObjectType;
use super::error::ApiError;

#[macro_use]
mod declare;
pub mod aws;
pub mod events;
pub mod gateway;
pub mod helm;
pub mod observability;
pub mod routes;
pub mod runtime;
pub mod secret;
pub mod typed;
pub mod workload;

pub use aws::*;
pub use events::*;
pub use gateway::*;
pub use helm::*;
pub use observability::*;
pub use routes::*;
pub use runtime::*;
pub use secret::*;
pub use typed::{Filter, Patch, TypedApi};
pub use workload::*;

/// Every object type the manager knows, for looking up the `"v0.<X>"` strings stored in
/// AttachedObjectReferences (Go's `DeleteObjectByTypeAndID`) and for the cross-check against
/// the sandbox's table.
pub const ALL_OBJECT_TYPES: &[ObjectType] = &[
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
    AWS_ACCOUNT,
    AWS_EKS_KUBERNETES_RUNTIME_DEFINITION,
    AWS_EKS_KUBERNETES_RUNTIME_INSTANCE,
    AWS_RELATIONAL_DATABASE_DEFINITION,
    AWS_RELATIONAL_DATABASE_INSTANCE,
    AWS_OBJECT_STORAGE_BUCKET_DEFINITION,
    AWS_OBJECT_STORAGE_BUCKET_INSTANCE,
    CONTROL_PLANE_DEFINITION,
    CONTROL_PLANE_INSTANCE,
    SECRET_DEFINITION,
    SECRET_INSTANCE,
    TERRAFORM_DEFINITION,
    TERRAFORM_INSTANCE,
    OBSERVABILITY_STACK_DEFINITION,
    OBSERVABILITY_STACK_INSTANCE,
    OBSERVABILITY_DASHBOARD_DEFINITION,
    OBSERVABILITY_DASHBOARD_INSTANCE,
    METRICS_DEFINITION,
    METRICS_INSTANCE,
    LOGGING_DEFINITION,
    LOGGING_INSTANCE,
];

/// The object type for a `"v0.<X>"` string (as stored in `ObjectType` / `AttachedObjectType`).
pub fn object_type_from_versioned_name(versioned: &str) -> Option<ObjectType> {
    let name = versioned.strip_prefix("v0.")?;
    ALL_OBJECT_TYPES.iter().copied().find(|t| t.name == name)
}

// ---------------------------------------------------------------------------------------------
// The field table.

/// The JSON shape of a field on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireKind {
    /// Go `*uint` IDs: u64, never through f64.
    U64,
    /// Small integers (ports, counts, sizes).
    Int,
    /// JSON booleans.
    Bool,
    /// JSON strings (including secret material, see [`SecretString`]).
    Str,
    /// Go `*time.Time`: an RFC 3339 string.
    Time,
    /// `datatypes.JSON`: any JSON value.
    Json,
    /// A slice of related objects (an association, or children created with the parent).
    Array,
}

impl WireKind {
    /// Scalars are the kinds Threeport tags as query filters by default.
    pub fn is_scalar(self) -> bool {
        matches!(
            self,
            WireKind::U64 | WireKind::Int | WireKind::Bool | WireKind::Str | WireKind::Time
        )
    }
}

/// How a field can be filtered on in `GET /v0/<xs>?<tag>=<value>` (its echo `query` tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueryTag {
    /// Threeport's convention for a type's own scalar fields: the JSON name in lower case.
    Lowercase,
    /// A tag that breaks the convention (*sic*).
    Tag(&'static str),
    /// Not filterable.
    None,
}

/// One JSON field of an object type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldSpec {
    /// The JSON key (Go's `json` tag).
    pub json: &'static str,
    /// Its JSON shape.
    pub kind: WireKind,
    /// `validate:"optional,association"`: a 400 in a PATCH or PUT body, even as null.
    pub association: bool,
    /// `encrypt:"true"`: encrypted at rest (spec 2.9); echoing a value read from GET makes the
    /// API encrypt the ciphertext again.
    pub encrypted: bool,
    /// Whether and by which key it can be filtered on in a list query.
    pub query: QueryTag,
}

impl FieldSpec {
    /// A field of one of the embedded structs: not filterable unless tagged.
    pub const fn embedded(json: &'static str, kind: WireKind) -> Self {
        Self {
            json,
            kind,
            association: false,
            encrypted: false,
            query: QueryTag::None,
        }
    }

    /// A type's own field: scalars are filterable by their lower-case name (Threeport's
    /// convention), the rest are not.
    pub const fn own(json: &'static str, kind: WireKind) -> Self {
        let query = match kind {
            WireKind::Json | WireKind::Array => QueryTag::None,
            _ => QueryTag::Lowercase,
        };
        Self {
            query,
            ..Self::embedded(json, kind)
        }
    }

    /// Marks an association.
    pub const fn association(self) -> Self {
        Self {
            association: true,
            ..self
        }
    }

    /// Marks a field encrypted at rest.
    pub const fn encrypted(self) -> Self {
        Self {
            encrypted: true,
            ..self
        }
    }

    /// A query tag that is not the lower-case JSON name.
    pub const fn query(self, tag: &'static str) -> Self {
        Self {
            query: QueryTag::Tag(tag),
            ..self
        }
    }

    /// Not filterable.
    pub const fn no_query(self) -> Self {
        Self {
            query: QueryTag::None,
            ..self
        }
    }

    /// The query key that filters on this field, if it can be filtered on.
    pub fn query_key(&self) -> Option<Cow<'static, str>> {
        match self.query {
            QueryTag::Lowercase => Some(Cow::Owned(self.json.to_ascii_lowercase())),
            QueryTag::Tag(t) => Some(Cow::Borrowed(t)),
            QueryTag::None => None,
        }
    }
}

/// A typed API object, generated by `api_object!`: its object type (name, route, subject,
/// field table) and its gorm fields.
pub trait ApiObject: Serialize + DeserializeOwned + Default + Send + Sync + 'static {
    /// Name, route, subject and field table of the type.
    const OBJECT_TYPE: ObjectType;

    /// The gorm fields (ID and timestamps).
    fn common(&self) -> &Common;

    /// The object's ID; `None` for an object not read from the API.
    fn id(&self) -> Option<u64> {
        self.common().id
    }
}

/// An embedded struct (Common, Reconciliation, Definition, Instance) and its fields.
pub trait Embedded {
    /// Its fields, in Go struct order.
    const FIELDS: &'static [FieldSpec];
}

// ---------------------------------------------------------------------------------------------
// Field serialisation, chosen by type.

/// How a field type goes on the wire: its [`WireKind`] and its (de)serialisation. Everything
/// but timestamps is plain serde.
pub trait Wire: Sized {
    /// The JSON shape, recorded in the field table.
    const KIND: WireKind;
    /// Serialise a present value.
    fn to_wire<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error>;
    /// Deserialise a present (non-null) value.
    fn from_wire<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
}

macro_rules! wire_via_serde {
    ($($t:ty => $kind:ident),* $(,)?) => {$(
        impl Wire for $t {
            const KIND: WireKind = WireKind::$kind;
            fn to_wire<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.serialize(s)
            }
            fn from_wire<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                <$t>::deserialize(d)
            }
        }
    )*};
}

wire_via_serde!(u64 => U64, i64 => Int, bool => Bool, String => Str, SecretString => Str, Value => Json);

impl<T: Serialize + DeserializeOwned> Wire for Vec<T> {
    const KIND: WireKind = WireKind::Array;
    fn to_wire<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.serialize(s)
    }
    fn from_wire<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<T>::deserialize(d)
    }
}

impl Wire for OffsetDateTime {
    const KIND: WireKind = WireKind::Time;
    fn to_wire<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_timestamp(*self))
    }
    fn from_wire<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        OffsetDateTime::parse(&raw, &Rfc3339).map_err(|e| {
            serde::de::Error::custom(format!("invalid RFC 3339 timestamp {raw:?}: {e}"))
        })
    }
}

/// `#[serde(with = ...)]` of every model field: `Option<T>` through [`Wire`].
pub mod wire {
    use super::Wire;
    use serde::{Deserialize, Deserializer, Serializer};

    /// `Some` through [`Wire::to_wire`], `None` as null (never sent by a model: its fields are
    /// skipped when `None`).
    pub fn serialize<T: Wire, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(t) => t.to_wire(s),
            None => s.serialize_none(),
        }
    }

    /// Null as `None`, anything else through [`Wire::from_wire`] (a missing key is `None` by
    /// the models' `#[serde(default)]`).
    pub fn deserialize<'de, T: Wire, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
        struct Present<T>(T);
        impl<'de, T: Wire> Deserialize<'de> for Present<T> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                T::from_wire(d).map(Present)
            }
        }
        Ok(Option::<Present<T>>::deserialize(d)?.map(|p| p.0))
    }
}

/// Format a timestamp as the controllers send it: RFC 3339 in UTC with `Z` and as many
/// fractional digits as needed (Go's `time.Now().UTC()` marshalled with `RFC3339Nano`).
pub fn format_timestamp(t: OffsetDateTime) -> String {
    // Rfc3339 formatting only fails for years outside 0..=9999, which `now` never is; fall
    // back to the Unix epoch seconds rendering rather than panicking.
    t.to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
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
    /// The secret value. Never log or format it.
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

embedded_struct! {
    /// gorm's model fields. Never sent in a request body: the API answers 400 if any of these
    /// keys appears in a POST, PUT or PATCH.
    pub struct Common {
        "ID" => id: u64,
        "CreatedAt" => created_at: OffsetDateTime,
        "UpdatedAt" => updated_at: OffsetDateTime,
        "DeletedAt" => deleted_at: OffsetDateTime,
    }
}

embedded_struct! {
    /// Reconciliation state of reconciled types (\[R\] in the spec).
    pub struct Reconciliation {
        "Reconciled" => reconciled: bool [query("reconciled")],
        "CreationAcknowledged" => creation_acknowledged: OffsetDateTime [query("creationacknowledged")],
        "CreationConfirmed" => creation_confirmed: OffsetDateTime [query("creationconfirmed")],
        "CreationFailed" => creation_failed: bool [query("creationfailed")],
        "DeletionScheduled" => deletion_scheduled: OffsetDateTime [query("deletionscheduled")],
        "DeletionAcknowledged" => deletion_acknowledged: OffsetDateTime [query("deletionacknowledged")],
        "DeletionConfirmed" => deletion_confirmed: OffsetDateTime [query("deletionconfirmed")],
        "InterruptReconciliation" => interrupt_reconciliation: bool [query("interruptreconciliation")],
    }
}

impl Reconciliation {
    /// Only `Reconciled:true`: sent with the fields a reconcile writes back to its own
    /// unreconciled object, because a PATCH without it would make the API publish another
    /// Updated (spec 2.8), as Threeport's controllers do.
    pub fn marked_reconciled() -> Self {
        Self {
            reconciled: Some(true),
            ..Default::default()
        }
    }
}

embedded_struct! {
    /// Fields of definition types (\[D\]). `ProfileID` and `TierID` are associations: they must
    /// not appear in PATCH bodies.
    pub struct Definition {
        "Name" => name: String [query("name")],
        "ProfileID" => profile_id: u64 [association, query("profileid")],
        "TierID" => tier_id: u64 [association, query("tierid")],
    }
}

embedded_struct! {
    /// Fields of instance types (\[I\]). `Status` is a single key even where the concrete type
    /// declares its own `Status` (WorkloadInstance shadows it).
    pub struct Instance {
        "Name" => name: String [query("name")],
        "Status" => status: String [query("status")],
    }
}

// ---------------------------------------------------------------------------------------------
// Typed decoding and request bodies.

/// Decode one object of the API into its typed model; failures become [`ApiError::Decode`]
/// naming the collection route.
pub fn decode<T: ApiObject>(value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| ApiError::Decode {
        route: T::OBJECT_TYPE.collection_path(),
        reason: format!("{}: {e}", T::OBJECT_TYPE.name),
    })
}

/// gorm model keys: any of them in a body is a 400 (spec 2.4).
pub const GORM_MODEL_FIELDS: [&str; 4] = ["ID", "CreatedAt", "UpdatedAt", "DeletedAt"];

/// `object` as a request body's JSON object, without the gorm model keys: the API rejects
/// them in every body (spec 2.4).
fn encode<T: ApiObject>(object: &T, what: &str) -> Result<Map<String, Value>, ApiError> {
    let ty = T::OBJECT_TYPE;
    match serde_json::to_value(object) {
        Ok(Value::Object(mut map)) => {
            for key in GORM_MODEL_FIELDS {
                map.remove(key);
            }
            Ok(map)
        }
        Ok(_) => Err(ApiError::Decode {
            route: ty.collection_path(),
            reason: format!("{} {what} body is not a JSON object", ty.name),
        }),
        Err(e) => Err(ApiError::Decode {
            route: ty.collection_path(),
            reason: format!("cannot encode {} {what} body: {e}", ty.name),
        }),
    }
}

/// Serialise `object` into a POST body: the gorm model keys (`ID`, `CreatedAt`, ...) are
/// removed because the API rejects them on POST too (spec 2.4), which matters when an object
/// read from the API is reused as a template.
pub fn create_body<T: ApiObject>(object: &T) -> Result<Value, ApiError> {
    encode(object, "POST").map(Value::Object)
}

/// Serialise a PATCH (see [`Patch`] for the two kinds): gorm keys are always dropped; an
/// object read from the API also loses its associations and encrypted fields, while a set of
/// changes that names an association is a programming error, reported rather than sent (the
/// API would answer 400).
pub fn patch_body<T: ApiObject>(patch: &Patch<'_, T>) -> Result<Value, ApiError> {
    let ty = T::OBJECT_TYPE;
    let (object, whole) = match patch {
        Patch::Changes(changes) => (*changes, false),
        Patch::Object(object) => (*object, true),
    };
    let mut map = encode(object, "PATCH")?;
    for field in ty.fields() {
        if field.association && map.contains_key(field.json) {
            if whole {
                map.remove(field.json);
            } else {
                return Err(ApiError::Decode {
                    route: ty.collection_path(),
                    reason: format!(
                        "a {} PATCH cannot change the association {}",
                        ty.name, field.json
                    ),
                });
            }
        }
        if field.encrypted && whole {
            map.remove(field.json);
        }
    }
    Ok(Value::Object(map))
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
mod tests;
