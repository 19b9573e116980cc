//! The re-notification: Threeport's own notification payload (spec 1.5) for the object as the
//! API lists it, published on the reconciler's subject in the same stream, so any replica or
//! Go controller bound to the durable consumer can take it.
//!
//! Two headers, which Threeport's controllers ignore:
//! - [`RESYNC_HEADER`] marks it as a resync (value: the instance UUID of the replica that sent
//!   it); the engine acknowledges a marked Created/Updated without work if the object was
//!   reconciled meanwhile;
//! - `Nats-Msg-Id` = `resync.<Reconciler>.<ID>.<Operation>.<UpdatedAt>`: should two replicas
//!   ever both believe they lead, JetStream keeps only one copy of a re-notification of the
//!   same object state within the stream's duplicate window.

use async_nats::jetstream;
use async_nats::HeaderMap;
use serde::Serialize;
use serde_json::Value;

use super::ResyncError;
use crate::engine::Operation;
use crate::registry::ReconcilerSpec;

/// The header that marks a re-notification.
pub const RESYNC_HEADER: &str = "Threeport-Manager-Resync";

/// Threeport's `notifications.Notification`, keys in Go's field order.
#[derive(Serialize)]
struct Payload<'a> {
    #[serde(rename = "Operation")]
    operation: &'static str,
    #[serde(rename = "CreationTime")]
    creation_time: i64,
    #[serde(rename = "Object")]
    object: &'a Value,
    #[serde(rename = "ObjectVersion")]
    object_version: &'static str,
}

/// The notification payload of `object` for `operation`, published at `now` (Unix seconds).
pub fn payload(operation: Operation, object: &Value, now: i64) -> Vec<u8> {
    serde_json::to_vec(&Payload {
        operation: operation.as_str(),
        creation_time: now,
        object,
        object_version: "v0",
    })
    .expect("a JSON value serialises")
}

/// The subject the API publishes `operation` on for the reconciler's type.
pub fn subject(reconciler: &ReconcilerSpec, operation: Operation) -> String {
    let verb = match operation {
        Operation::Created => "create",
        Operation::Updated => "update",
        Operation::Deleted => "delete",
    };
    format!("{}.{verb}", reconciler.subject_prefix())
}

/// The de-duplication ID of a re-notification of `object`'s current state.
pub fn message_id(
    reconciler: &ReconcilerSpec,
    id: u64,
    operation: Operation,
    object: &Value,
) -> String {
    let updated = object
        .get("UpdatedAt")
        .and_then(Value::as_str)
        .unwrap_or("-");
    format!(
        "resync.{}.{id}.{}.{updated}",
        reconciler.name,
        operation.as_str()
    )
}

/// What JetStream did with a re-notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Stored: a new message in the stream.
    New,
    /// Not stored again: the same message ID is in the stream's duplicate window.
    Duplicate,
}

/// Publish the re-notification of object `id` and wait for JetStream to store it.
pub async fn renotify(
    js: &jetstream::Context,
    reconciler: &ReconcilerSpec,
    id: u64,
    operation: Operation,
    object: &Value,
    sender: &str,
) -> Result<Published, ResyncError> {
    let subject = subject(reconciler, operation);
    let mut headers = HeaderMap::new();
    headers.insert(RESYNC_HEADER, sender);
    headers.insert(
        async_nats::header::NATS_MESSAGE_ID,
        message_id(reconciler, id, operation, object).as_str(),
    );
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let body = payload(operation, object, now);
    let failed = |e: &dyn std::fmt::Display| {
        ResyncError::Nats(format!("publishing {subject} for object {id}: {e}"))
    };
    let ack = js
        .publish_with_headers(subject.clone(), headers, body.into())
        .await
        .map_err(|e| failed(&e))?
        .await
        .map_err(|e| failed(&e))?;
    Ok(if ack.duplicate {
        Published::Duplicate
    } else {
        Published::New
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::notification;
    use serde_json::json;

    #[test]
    fn payload_is_threeports_and_decodes_with_an_id_above_2_pow_53() {
        let object = json!({"ID": 917190976565575681u64, "Name": "web", "Reconciled": false});
        let bytes = payload(Operation::Created, &object, 1699974872);
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"Operation":"Created","CreationTime":1699974872,"Object":{"ID":917190976565575681,"Name":"web","Reconciled":false},"ObjectVersion":"v0"}"#
        );
        let n = notification::decode(&bytes).unwrap();
        assert_eq!(n.object_id, 917190976565575681);
        assert_eq!(n.operation, Operation::Created);
    }

    #[test]
    fn subjects_and_message_ids() {
        let (_, wi) = crate::registry::reconciler("WorkloadInstanceReconciler").unwrap();
        assert_eq!(subject(wi, Operation::Created), "workloadInstance.create");
        assert_eq!(subject(wi, Operation::Updated), "workloadInstance.update");
        assert_eq!(subject(wi, Operation::Deleted), "workloadInstance.delete");
        let object = json!({"UpdatedAt": "2026-12-01T10:00:00Z"});
        assert_eq!(
            message_id(wi, 7, Operation::Deleted, &object),
            "resync.WorkloadInstanceReconciler.7.Deleted.2026-12-01T10:00:00Z"
        );
    }
}
