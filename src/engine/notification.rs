//! Decoding Threeport notifications (spec 1.5):
//! `{"Operation":"Created","CreationTime":1699974872,"Object":{...},"ObjectVersion":"v0"}`.
//!
//! Only `Operation`, `Object.ID` and `CreationTime` drive behaviour (spec 6 #3); the object
//! itself is re-read from the API. Anything that does not decode is a poison message with a
//! reason that ends up in a metric label, so reasons are a small fixed set.

use serde::Deserialize;
use serde_json::Value;

use super::reconciler::Operation;

/// A decoded notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// `Operation`: what happened to the object.
    pub operation: Operation,
    /// Unix seconds at publish time.
    pub creation_time: Option<i64>,
    /// `Object.ID`: the object to reconcile, re-read from the API (never 0).
    pub object_id: u64,
    /// The notification's copy of the object (used only by reconcilers that must, e.g. the
    /// SecretDefinition variant, spec 1.9.3).
    pub object: Value,
}

/// Why a message is poison. The label values of `threeport_notifications_terminated_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoisonReason {
    /// Not JSON, or not an object with the expected field types.
    Undecodable,
    /// `ObjectVersion` other than `v0`.
    UnknownVersion,
    /// `Operation` other than Created / Updated / Deleted.
    UnknownOperation,
    /// `Object.ID` missing, null, zero or not an unsigned 64-bit integer.
    MissingId,
}

impl PoisonReason {
    /// Every reason, for pre-initialising the metric's label values.
    pub const ALL: [PoisonReason; 4] = [
        PoisonReason::Undecodable,
        PoisonReason::UnknownVersion,
        PoisonReason::UnknownOperation,
        PoisonReason::MissingId,
    ];

    /// The label value, e.g. `unknown_version`.
    pub fn as_str(&self) -> &'static str {
        match self {
            PoisonReason::Undecodable => "undecodable",
            PoisonReason::UnknownVersion => "unknown_version",
            PoisonReason::UnknownOperation => "unknown_operation",
            PoisonReason::MissingId => "missing_id",
        }
    }
}

/// A poison message: the reason class plus a human-readable detail for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poison {
    /// The class, a metric label value.
    pub reason: PoisonReason,
    /// What failed to decode and why, for the log line.
    pub detail: String,
}

#[derive(Deserialize)]
struct Wire {
    #[serde(rename = "Operation")]
    operation: String,
    #[serde(rename = "CreationTime", default)]
    creation_time: Option<i64>,
    #[serde(rename = "Object")]
    object: Value,
    #[serde(rename = "ObjectVersion")]
    object_version: String,
}

/// Decode a notification payload.
pub fn decode(payload: &[u8]) -> Result<Notification, Poison> {
    let wire: Wire = serde_json::from_slice(payload).map_err(|e| Poison {
        reason: PoisonReason::Undecodable,
        detail: format!("not a Threeport notification: {e}"),
    })?;
    if wire.object_version != "v0" {
        return Err(Poison {
            reason: PoisonReason::UnknownVersion,
            detail: format!(
                "unsupported ObjectVersion {:?} (only \"v0\")",
                wire.object_version
            ),
        });
    }
    let operation = match wire.operation.as_str() {
        "Created" => Operation::Created,
        "Updated" => Operation::Updated,
        "Deleted" => Operation::Deleted,
        other => {
            return Err(Poison {
                reason: PoisonReason::UnknownOperation,
                detail: format!("unknown Operation {other:?}"),
            })
        }
    };
    let id = match wire.object.get("ID") {
        None | Some(Value::Null) => {
            return Err(Poison {
                reason: PoisonReason::MissingId,
                detail: "Object.ID is missing".into(),
            })
        }
        Some(v) => v.as_u64().filter(|id| *id > 0).ok_or_else(|| Poison {
            reason: PoisonReason::MissingId,
            detail: format!("Object.ID {v} is not a positive 64-bit integer"),
        })?,
    };
    Ok(Notification {
        operation,
        creation_time: wire.creation_time,
        object_id: id,
        object: wire.object,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_threeport_payload_with_id_above_2_pow_53() {
        let p = br#"{"Operation":"Created","CreationTime":1699974872,"Object":{"ID":917190976565575681,"Name":"web","Reconciled":false},"ObjectVersion":"v0"}"#;
        let n = decode(p).unwrap();
        assert_eq!(n.operation, Operation::Created);
        assert_eq!(n.object_id, 917190976565575681);
        assert_ne!(
            n.object_id as f64 as u64, 917190976565575681,
            "the ID is not representable in f64"
        );
        assert_eq!(n.creation_time, Some(1699974872));
        assert_eq!(n.object["Name"], "web");
    }

    #[test]
    fn max_u64_id_is_exact() {
        let p = br#"{"Operation":"Deleted","CreationTime":1,"Object":{"ID":18446744073709551615},"ObjectVersion":"v0"}"#;
        assert_eq!(decode(p).unwrap().object_id, u64::MAX);
    }

    #[test]
    fn every_operation() {
        for (op, want) in [
            ("Created", Operation::Created),
            ("Updated", Operation::Updated),
            ("Deleted", Operation::Deleted),
        ] {
            let p = format!(
                r#"{{"Operation":"{op}","CreationTime":1,"Object":{{"ID":5}},"ObjectVersion":"v0"}}"#
            );
            assert_eq!(decode(p.as_bytes()).unwrap().operation, want);
        }
    }

    #[test]
    fn null_or_missing_creation_time_is_tolerated() {
        // The Go controller dereferences CreationTime and would panic; we do not need it.
        let p = br#"{"Operation":"Updated","CreationTime":null,"Object":{"ID":7},"ObjectVersion":"v0"}"#;
        assert_eq!(decode(p).unwrap().creation_time, None);
        let p = br#"{"Operation":"Updated","Object":{"ID":7},"ObjectVersion":"v0"}"#;
        assert_eq!(decode(p).unwrap().creation_time, None);
    }

    fn reason(p: &[u8]) -> PoisonReason {
        decode(p).unwrap_err().reason
    }

    #[test]
    fn poison_reasons() {
        assert_eq!(reason(b"not json"), PoisonReason::Undecodable);
        assert_eq!(reason(b""), PoisonReason::Undecodable);
        assert_eq!(reason(b"[]"), PoisonReason::Undecodable);
        assert_eq!(
            reason(br#"{"CreationTime":1,"Object":{"ID":5},"ObjectVersion":"v0"}"#),
            PoisonReason::Undecodable
        );
        assert_eq!(
            reason(br#"{"Operation":"Created","CreationTime":1,"ObjectVersion":"v0"}"#),
            PoisonReason::Undecodable
        );
        assert_eq!(reason(br#"{"Operation":"Created","CreationTime":"yesterday","Object":{"ID":5},"ObjectVersion":"v0"}"#), PoisonReason::Undecodable);
        assert_eq!(
            reason(br#"{"Operation":7,"CreationTime":1,"Object":{"ID":5},"ObjectVersion":"v0"}"#),
            PoisonReason::Undecodable
        );
        assert_eq!(reason(br#"{"Operation":"Created","CreationTime":1,"Object":{"ID":5},"ObjectVersion":"v1"}"#), PoisonReason::UnknownVersion);
        assert_eq!(reason(br#"{"Operation":"Patched","CreationTime":1,"Object":{"ID":5},"ObjectVersion":"v0"}"#), PoisonReason::UnknownOperation);
        assert_eq!(
            reason(br#"{"Operation":"Created","CreationTime":1,"Object":{},"ObjectVersion":"v0"}"#),
            PoisonReason::MissingId
        );
        assert_eq!(reason(br#"{"Operation":"Created","CreationTime":1,"Object":{"ID":null},"ObjectVersion":"v0"}"#), PoisonReason::MissingId);
        assert_eq!(reason(br#"{"Operation":"Created","CreationTime":1,"Object":{"ID":"5"},"ObjectVersion":"v0"}"#), PoisonReason::MissingId);
        assert_eq!(reason(br#"{"Operation":"Created","CreationTime":1,"Object":{"ID":-5},"ObjectVersion":"v0"}"#), PoisonReason::MissingId);
        assert_eq!(reason(br#"{"Operation":"Created","CreationTime":1,"Object":{"ID":1.5},"ObjectVersion":"v0"}"#), PoisonReason::MissingId);
        assert_eq!(reason(br#"{"Operation":"Created","CreationTime":1,"Object":{"ID":0},"ObjectVersion":"v0"}"#), PoisonReason::MissingId);
        assert_eq!(reason(br#"{"Operation":"Created","CreationTime":1,"Object":{"ID":18446744073709551616},"ObjectVersion":"v0"}"#), PoisonReason::MissingId);
    }
}
