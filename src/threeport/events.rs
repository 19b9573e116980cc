//! Threeport event recording (spec 1.10, `pkg/event/v0/event.go`).
//!
//! After each reconcile the Go loop records an `Event` attached to the reconciled object through
//! an `AttachedObjectReference`, de-duplicated by (reason, note, type, object id): a repeat only
//! bumps `Count` and `LastObservedTime`. The UI and `tptctl` read these, so reasons and notes
//! must match the Go strings exactly; [`success_note`] and [`failure_note`] build them.
//!
//! Differences from Go, none of them observable by readers of the events:
//! - PATCH bodies are minimal (only the changed fields) instead of the whole event, so a
//!   concurrent recorder's update is not overwritten with stale values.
//! - The de-dup query also sends `objecttype=v0.<X>`. Spec 4.2 #18: the real join handler binds
//!   query keys into an `Event` and has no object-type field, so it silently ignores the key
//!   (unknown query keys are ignored, spec 2.3) and filters on object id only, exactly as for
//!   the Go controllers. Sending it costs nothing there, states the intent on the wire, and lets
//!   the sandbox (or a fixed API) also filter by type, which removes the cross-table ID
//!   collision the Go query has.

use serde_json::Value;
use time::OffsetDateTime;

use super::api::{ApiRequest, Method, ObjectType, ThreeportApi};
use super::error::ApiError;
use super::models::{
    ApiObject, AttachedObjectReference, Event, Patch, TypedApi, ATTACHED_OBJECT_REFERENCE, EVENT,
};

/// Route of the de-dup query; also its metric label.
pub const EVENTS_JOIN_ROUTE: &str = "/v0/events-join-attached-object-references";

/// Threeport event type (`Type` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A successful reconcile.
    Normal,
    /// A failed reconcile, or a condition a user should look at.
    Warning,
}

impl EventType {
    /// The `Type` value: `Normal` or `Warning`.
    pub fn as_str(&self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// The reconcile operation an event reports on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventOperation {
    /// A Created notification.
    Created,
    /// An Updated notification.
    Updated,
    /// A Deleted notification.
    Deleted,
}

impl EventOperation {
    /// `created`, `updated` or `deleted`, as in the Go notes.
    pub fn word(&self) -> &'static str {
        match self {
            EventOperation::Created => "created",
            EventOperation::Updated => "updated",
            EventOperation::Deleted => "deleted",
        }
    }

    /// `SuccessfulCreate`, `SuccessfulUpdate` or `SuccessfulDelete`.
    pub fn success_reason(&self) -> &'static str {
        match self {
            EventOperation::Created => "SuccessfulCreate",
            EventOperation::Updated => "SuccessfulUpdate",
            EventOperation::Deleted => "SuccessfulDelete",
        }
    }

    /// `FailedCreate`, `FailedUpdate` or `FailedDelete`.
    pub fn failure_reason(&self) -> &'static str {
        match self {
            EventOperation::Created => "FailedCreate",
            EventOperation::Updated => "FailedUpdate",
            EventOperation::Deleted => "FailedDelete",
        }
    }
}

/// `"<words> successfully reconciled for <op> operation"`, e.g. `"workload instance
/// successfully reconciled for created operation"`.
pub fn success_note(words: &str, op: EventOperation) -> String {
    format!(
        "{words} successfully reconciled for {} operation",
        op.word()
    )
}

/// `"failed to reconcile <op> <words> object"`, e.g. `"failed to reconcile created workload
/// instance object"`. The error text is deliberately not part of the note (Go behaviour, and
/// it keeps the de-dup key stable across differing errors).
pub fn failure_note(words: &str, op: EventOperation) -> String {
    format!("failed to reconcile {} {words} object", op.word())
}

/// The note of a permanent failure (not Threeport's: it has no such class), e.g. `"failed to
/// reconcile created workload instance object: permanent error, retried every 5m: workload
/// definition 7 has zero workload resource definitions to deploy"`.
pub fn permanent_failure_note(
    words: &str,
    op: EventOperation,
    error: &str,
    retry_every: std::time::Duration,
) -> String {
    format!(
        "{}: permanent error, retried every {}: {error}",
        failure_note(words, op),
        humantime::format_duration(retry_every)
    )
}

/// The lower-case words of a type name as the Go notes use them: `WorkloadInstance` ->
/// `workload instance`, `KubernetesRuntimeInstance` -> `kubernetes runtime instance`.
pub fn object_words(ty: ObjectType) -> String {
    let chars: Vec<char> = ty.name.chars().collect();
    let mut out = String::with_capacity(chars.len() + 4);
    for (i, c) in chars.iter().enumerate() {
        if c.is_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || prev.is_ascii_digit() || (prev.is_uppercase() && next_lower) {
                out.push(' ');
            }
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// Records Threeport events for one controller (`ReportingController`, e.g.
/// `WorkloadController`).
pub struct EventRecorder<A: ThreeportApi> {
    api: A,
    reporting_controller: String,
}

impl<A: ThreeportApi> EventRecorder<A> {
    /// A recorder that writes through `api` and signs events with `reporting_controller`.
    pub fn new(api: A, reporting_controller: impl Into<String>) -> Self {
        Self {
            api,
            reporting_controller: reporting_controller.into(),
        }
    }

    /// The `ReportingController` of the events it records, e.g. `WorkloadController`.
    pub fn reporting_controller(&self) -> &str {
        &self.reporting_controller
    }

    /// Record an event on `object`/`object_id` now.
    pub async fn record(
        &self,
        object: ObjectType,
        object_id: u64,
        reason: &str,
        note: &str,
        kind: EventType,
    ) -> Result<(), ApiError> {
        self.record_at(
            object,
            object_id,
            reason,
            note,
            kind,
            OffsetDateTime::now_utc(),
        )
        .await
    }

    /// Record an event with an explicit clock (tests).
    pub async fn record_at(
        &self,
        object: ObjectType,
        object_id: u64,
        reason: &str,
        note: &str,
        kind: EventType,
        now: OffsetDateTime,
    ) -> Result<(), ApiError> {
        let query = ApiRequest::new(Method::Get, EVENTS_JOIN_ROUTE, EVENTS_JOIN_ROUTE)
            .query("reason", reason)
            .query("note", note)
            .query("type", kind.as_str())
            .query("objectid", object_id.to_string())
            .query("objecttype", object.versioned_name());
        let found = self.api.call(query).await?.data;
        match found.as_slice() {
            [] => {
                self.create_event(object, object_id, reason, note, kind, now)
                    .await
            }
            [existing] => {
                let id = object_id_of(existing, EVENTS_JOIN_ROUTE)?;
                // Go dereferences Count unconditionally; a missing Count restarts at 1 here.
                let count = existing.get("Count").and_then(Value::as_i64).unwrap_or(0);
                let changes = Event {
                    count: Some(count.saturating_add(1)),
                    last_observed_time: Some(now),
                    ..Default::default()
                };
                self.api.patch_object(id, Patch::Changes(&changes)).await?;
                Ok(())
            }
            many => Err(ApiError::Decode {
                route: EVENTS_JOIN_ROUTE.to_string(),
                reason: format!(
                    "unexpected number of events found: {} (expected 0 or 1)",
                    many.len()
                ),
            }),
        }
    }

    /// Create the event, its reference to the object, and link the two; undo on failure, as
    /// Go's `util.Operations` does, so a failed attempt does not leave an orphan event that
    /// would break de-duplication later.
    async fn create_event(
        &self,
        object: ObjectType,
        object_id: u64,
        reason: &str,
        note: &str,
        kind: EventType,
        now: OffsetDateTime,
    ) -> Result<(), ApiError> {
        let event = self
            .api
            .create_object(&Event {
                reason: Some(reason.to_string()),
                note: Some(note.to_string()),
                count: Some(1),
                event_time: Some(now),
                last_observed_time: Some(now),
                event_type: Some(kind.as_str().to_string()),
                reporting_controller: Some(self.reporting_controller.clone()),
                ..Default::default()
            })
            .await?;
        // Without an ID the event cannot be deleted again, so there is nothing to roll back.
        let event_id = id_of(event.id(), EVENT)?;

        let reference = self
            .api
            .create_object(&AttachedObjectReference {
                object_type: Some(object.versioned_name()),
                object_id: Some(object_id),
                attached_object_type: Some(EVENT.versioned_name()),
                attached_object_id: Some(event_id),
                ..Default::default()
            })
            .await
            .and_then(|r| id_of(r.id(), ATTACHED_OBJECT_REFERENCE));
        let reference_id = match reference {
            Ok(id) => id,
            Err(e) => {
                self.rollback(&[(EVENT, event_id)]).await;
                return Err(e);
            }
        };

        let link = Event {
            attached_object_reference_id: Some(reference_id),
            ..Default::default()
        };
        if let Err(e) = self.api.patch_object(event_id, Patch::Changes(&link)).await {
            self.rollback(&[(ATTACHED_OBJECT_REFERENCE, reference_id), (EVENT, event_id)])
                .await;
            return Err(e);
        }
        Ok(())
    }

    /// Delete what was created, newest first. Failures are logged, not returned: the caller
    /// reports the error that caused the rollback.
    async fn rollback(&self, created: &[(ObjectType, u64)]) {
        for (ty, id) in created {
            if let Err(e) = self.api.delete(*ty, *id).await {
                tracing::warn!(
                    object_type = ty.name,
                    id,
                    error = %e,
                    "event recording rollback failed; object left behind"
                );
            }
        }
    }
}

/// The ID the API gave an object it created (an answer without one is undecodable).
fn id_of(id: Option<u64>, ty: ObjectType) -> Result<u64, ApiError> {
    id.ok_or_else(|| ApiError::Decode {
        route: ty.collection_path(),
        reason: "created object without ID".into(),
    })
}

fn object_id_of(v: &Value, route: &str) -> Result<u64, ApiError> {
    v.get("ID")
        .and_then(Value::as_u64)
        .ok_or_else(|| ApiError::Decode {
            route: route.to_string(),
            reason: "object has no numeric ID".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threeport::api::{ApiResponse, PageMeta};
    use crate::threeport::models::WORKLOAD_INSTANCE;
    use serde_json::json;
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};
    use time::macros::datetime;

    /// Answers requests from a script and records them.
    #[derive(Default)]
    struct FakeApi {
        requests: Mutex<Vec<ApiRequest>>,
        answers: Mutex<VecDeque<Result<Vec<Value>, ApiError>>>,
    }

    impl FakeApi {
        fn with(answers: Vec<Result<Vec<Value>, ApiError>>) -> Arc<Self> {
            Arc::new(Self {
                requests: Mutex::new(Vec::new()),
                answers: Mutex::new(answers.into()),
            })
        }

        fn requests(&self) -> Vec<ApiRequest> {
            self.requests.lock().unwrap().clone()
        }
    }

    #[async_trait::async_trait]
    impl ThreeportApi for FakeApi {
        async fn call(&self, request: ApiRequest) -> Result<ApiResponse, ApiError> {
            self.requests.lock().unwrap().push(request);
            let next = self
                .answers
                .lock()
                .unwrap()
                .pop_front()
                .expect("unexpected extra request");
            next.map(|data| ApiResponse {
                meta: PageMeta {
                    page: 1,
                    size: data.len() as i64,
                    total_count: data.len() as u64,
                },
                data,
            })
        }
    }

    const OBJ: u64 = 917_190_976_565_575_681;
    const EV: u64 = 917_190_976_565_575_700;
    const REF: u64 = 917_190_976_565_575_701;
    const NOW: OffsetDateTime = datetime!(2026-11-22 02:37:45.123456789 UTC);
    const NOW_S: &str = "2026-11-22T02:37:45.123456789Z";

    fn server_error() -> ApiError {
        ApiError::Status {
            method: "POST",
            route: "/v0/x".into(),
            status: 500,
            message: "boom".into(),
        }
    }

    fn join_request() -> ApiRequest {
        ApiRequest::new(Method::Get, EVENTS_JOIN_ROUTE, EVENTS_JOIN_ROUTE)
            .query("reason", "SuccessfulCreate")
            .query(
                "note",
                "workload instance successfully reconciled for created operation",
            )
            .query("type", "Normal")
            .query("objectid", OBJ.to_string())
            .query("objecttype", "v0.WorkloadInstance")
    }

    fn post_event() -> ApiRequest {
        ApiRequest::new(Method::Post, "/v0/events", "/v0/events").body(json!({
            "Reason": "SuccessfulCreate",
            "Note": "workload instance successfully reconciled for created operation",
            "Count": 1,
            "EventTime": NOW_S,
            "LastObservedTime": NOW_S,
            "Type": "Normal",
            "ReportingController": "WorkloadController",
        }))
    }

    fn post_reference() -> ApiRequest {
        ApiRequest::new(
            Method::Post,
            "/v0/attached-object-references",
            "/v0/attached-object-references",
        )
        .body(json!({
            "ObjectType": "v0.WorkloadInstance",
            "ObjectID": OBJ,
            "AttachedObjectType": "v0.Event",
            "AttachedObjectID": EV,
        }))
    }

    fn patch_link() -> ApiRequest {
        ApiRequest::new(Method::Patch, format!("/v0/events/{EV}"), "/v0/events/{id}")
            .body(json!({ "AttachedObjectReferenceID": REF }))
    }

    async fn record(api: &Arc<FakeApi>) -> Result<(), ApiError> {
        let rec = EventRecorder::new(api.clone(), "WorkloadController");
        let op = EventOperation::Created;
        rec.record_at(
            WORKLOAD_INSTANCE,
            OBJ,
            op.success_reason(),
            &success_note(&object_words(WORKLOAD_INSTANCE), op),
            EventType::Normal,
            NOW,
        )
        .await
    }

    #[tokio::test]
    async fn first_event_creates_links_and_patches() {
        let api = FakeApi::with(vec![
            Ok(vec![]),
            Ok(vec![json!({"ID": EV})]),
            Ok(vec![json!({"ID": REF})]),
            Ok(vec![json!({"ID": EV, "AttachedObjectReferenceID": REF})]),
        ]);
        record(&api).await.unwrap();
        assert_eq!(
            api.requests(),
            vec![join_request(), post_event(), post_reference(), patch_link()]
        );
    }

    #[tokio::test]
    async fn repeat_event_bumps_count() {
        let api = FakeApi::with(vec![
            Ok(vec![
                json!({"ID": EV, "Count": 41, "Reason": "SuccessfulCreate"}),
            ]),
            Ok(vec![json!({"ID": EV, "Count": 42})]),
        ]);
        record(&api).await.unwrap();
        assert_eq!(
            api.requests(),
            vec![
                join_request(),
                ApiRequest::new(Method::Patch, format!("/v0/events/{EV}"), "/v0/events/{id}")
                    .body(json!({"Count": 42, "LastObservedTime": NOW_S})),
            ]
        );
    }

    #[tokio::test]
    async fn more_than_one_match_is_an_error() {
        let api = FakeApi::with(vec![Ok(vec![json!({"ID": 1}), json!({"ID": 2})])]);
        let err = record(&api).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("unexpected number of events found"),
            "{err}"
        );
        assert_eq!(api.requests(), vec![join_request()]);
    }

    #[tokio::test]
    async fn failed_reference_rolls_back_event() {
        let api = FakeApi::with(vec![
            Ok(vec![]),
            Ok(vec![json!({"ID": EV})]),
            Err(server_error()),
            Ok(vec![json!({"ID": EV})]),
        ]);
        let err = record(&api).await.unwrap_err();
        assert_eq!(err.status(), Some(500));
        assert_eq!(
            api.requests(),
            vec![
                join_request(),
                post_event(),
                post_reference(),
                ApiRequest::new(
                    Method::Delete,
                    format!("/v0/events/{EV}"),
                    "/v0/events/{id}"
                ),
            ]
        );
    }

    #[tokio::test]
    async fn failed_link_rolls_back_reference_then_event() {
        let api = FakeApi::with(vec![
            Ok(vec![]),
            Ok(vec![json!({"ID": EV})]),
            Ok(vec![json!({"ID": REF})]),
            Err(server_error()),
            // The reference delete fails: logged, the event delete still happens.
            Err(server_error()),
            Ok(vec![json!({"ID": EV})]),
        ]);
        let err = record(&api).await.unwrap_err();
        assert_eq!(err.status(), Some(500));
        assert_eq!(
            api.requests(),
            vec![
                join_request(),
                post_event(),
                post_reference(),
                patch_link(),
                ApiRequest::new(
                    Method::Delete,
                    format!("/v0/attached-object-references/{REF}"),
                    "/v0/attached-object-references/{id}"
                ),
                ApiRequest::new(
                    Method::Delete,
                    format!("/v0/events/{EV}"),
                    "/v0/events/{id}"
                ),
            ]
        );
    }

    #[tokio::test]
    async fn failed_event_post_needs_no_rollback() {
        let api = FakeApi::with(vec![Ok(vec![]), Err(server_error())]);
        assert!(record(&api).await.is_err());
        assert_eq!(api.requests(), vec![join_request(), post_event()]);
    }

    #[tokio::test]
    async fn join_query_failure_is_returned() {
        let api = FakeApi::with(vec![Err(ApiError::Transport {
            method: "GET",
            route: EVENTS_JOIN_ROUTE.into(),
            reason: "connection refused".into(),
        })]);
        assert!(record(&api).await.is_err());
        assert_eq!(api.requests().len(), 1);
    }

    #[tokio::test]
    async fn works_through_a_trait_object() {
        let api = FakeApi::with(vec![
            Ok(vec![json!({"ID": EV, "Count": 1})]),
            Ok(vec![json!({"ID": EV})]),
        ]);
        let dyn_api: Arc<dyn ThreeportApi> = api.clone();
        let rec = EventRecorder::new(dyn_api, "GatewayController");
        assert_eq!(rec.reporting_controller(), "GatewayController");
        rec.record(
            WORKLOAD_INSTANCE,
            OBJ,
            "FailedUpdate",
            "n",
            EventType::Warning,
        )
        .await
        .unwrap();
        let reqs = api.requests();
        assert_eq!(
            reqs[0].query[2],
            ("type".to_string(), "Warning".to_string())
        );
        assert_eq!(reqs[1].body.as_ref().unwrap()["Count"], 2);
    }

    #[test]
    fn notes_and_reasons() {
        let words = object_words(WORKLOAD_INSTANCE);
        assert_eq!(words, "workload instance");
        assert_eq!(
            success_note(&words, EventOperation::Deleted),
            "workload instance successfully reconciled for deleted operation"
        );
        assert_eq!(
            failure_note(&words, EventOperation::Updated),
            "failed to reconcile updated workload instance object"
        );
        assert_eq!(EventOperation::Created.failure_reason(), "FailedCreate");
        assert_eq!(EventOperation::Updated.success_reason(), "SuccessfulUpdate");
        assert_eq!(EventOperation::Deleted.failure_reason(), "FailedDelete");
        assert_eq!(
            object_words(crate::threeport::models::KUBERNETES_RUNTIME_INSTANCE),
            "kubernetes runtime instance"
        );
        assert_eq!(
            object_words(ObjectType::new("AwsEksKubernetesRuntimeInstance", "x")),
            "aws eks kubernetes runtime instance"
        );
        assert_eq!(
            object_words(ObjectType::new("HTTPRoute", "x")),
            "http route"
        );
    }
}
