//! Threeport's own event objects and the references that attach objects to objects
//! (spec 1.10).

use time::OffsetDateTime;

use super::Common;

api_object! {
    /// `/v0/attached-object-references`. The four fields form a unique index, so a duplicate
    /// POST answers 500.
    pub struct AttachedObjectReference as ATTACHED_OBJECT_REFERENCE at "attached-object-references";
    embeds { common: Common }
    fields {
        /// `"v0.<X>"`, e.g. `"v0.WorkloadInstance"`.
        "ObjectType" => object_type: String,
        "ObjectID" => object_id: u64,
        "AttachedObjectType" => attached_object_type: String,
        "AttachedObjectID" => attached_object_id: u64,
    }
}

api_object! {
    /// `/v0/events`: an event about an object, attached to it through a reference.
    pub struct Event as EVENT at "events";
    embeds { common: Common }
    fields {
        "AttachedObjectReferenceID" => attached_object_reference_id: u64,
        "Reason" => reason: String,
        "Note" => note: String,
        "Count" => count: i64,
        "EventTime" => event_time: OffsetDateTime,
        "LastObservedTime" => last_observed_time: OffsetDateTime,
        /// `Normal` or `Warning`.
        "Type" => event_type: String,
        "ReportingController" => reporting_controller: String,
    }
}
