//! The resync's decisions, as pure functions of the listed object, the clock and a random
//! draw (passed in, so every branch is testable).
//!
//! An object needs work (spec Appendix B) when
//! - `DeletionScheduled` is set and `DeletionConfirmed` is not: a deletion to finish, re-notified
//!   as `Deleted`, needed since `DeletionScheduled`;
//! - or it is not being deleted and `Reconciled` is false: re-notified as `Created` if it was
//!   never written after its POST (`UpdatedAt == CreatedAt`: every controller write, the final
//!   `Reconciled:true` included, moves `UpdatedAt`), else `Updated`; needed since `UpdatedAt`,
//!   the time of the write that made it unreconciled (which is when the API published). A
//!   guess: an object written after its POST by someone else and never reconciled reads as
//!   `Updated` (the API keeps nothing that says "never reconciled").
//!
//! It is re-notified only if it has needed work for longer than the grace period (a
//! notification published a moment ago may still be on its way), no notification for it is
//! pending or in flight, and its notification can be rebuilt from the API (a SecretDefinition's
//! `Data` lives only in its notification, spec 1.9.3).

use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;

use crate::engine::Operation;

/// An object that needs work, from its listed JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// The operation its re-notification carries.
    pub operation: Operation,
    /// Since when it has needed work; `None` when the API gave no readable time (then it is
    /// treated as needing work for longer than any grace period).
    pub since: Option<OffsetDateTime>,
}

/// What the resync does with one listed object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to do: reconciled, or deleted to the end but for the final DELETE.
    UpToDate,
    /// A notification for it is pending or in flight: that one will do the work.
    Pending,
    /// It has needed work for less than the grace period: its notification may be in transit.
    InGrace,
    /// Its notification carried data the API does not keep: it cannot be rebuilt.
    DataOnlyInNotification,
    /// Publish a notification with this operation.
    Renotify(Operation),
}

impl Verdict {
    /// The `reason` label of `threeport_resync_skipped_total` for the verdicts that skip an
    /// object needing work.
    pub fn skip_reason(&self) -> Option<&'static str> {
        match self {
            Verdict::Pending => Some("pending"),
            Verdict::InGrace => Some("grace"),
            Verdict::DataOnlyInNotification => Some("data_only_in_notification"),
            Verdict::UpToDate | Verdict::Renotify(_) => None,
        }
    }
}

/// Every `reason` label of `threeport_resync_skipped_total`, for pre-initialising it.
pub const SKIP_REASONS: [&str; 3] = ["pending", "grace", "data_only_in_notification"];

fn time_field(object: &Value, field: &str) -> Option<OffsetDateTime> {
    let text = object.get(field)?.as_str()?;
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

fn is_set(object: &Value, field: &str) -> bool {
    object.get(field).is_some_and(|v| !v.is_null())
}

/// Whether `object` needs work, and which. See the module documentation for the rules.
pub fn need(object: &Value) -> Option<Need> {
    if is_set(object, "DeletionScheduled") {
        if is_set(object, "DeletionConfirmed") {
            return None;
        }
        return Some(Need {
            operation: Operation::Deleted,
            since: time_field(object, "DeletionScheduled"),
        });
    }
    // A missing `Reconciled` reads as false, as the API's column default does.
    if object.get("Reconciled").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    let updated = time_field(object, "UpdatedAt");
    let never_written = updated.is_some() && updated == time_field(object, "CreatedAt");
    Some(Need {
        operation: if never_written {
            Operation::Created
        } else {
            Operation::Updated
        },
        since: updated,
    })
}

/// What to do with one listed object.
///
/// - `pending`: whether a notification for it is pending or in flight on the consumer;
/// - `data_only_in_notification`: whether the reconciler's notifications carry data the API
///   does not keep (then only deletions can be rebuilt).
pub fn verdict(
    object: &Value,
    now: OffsetDateTime,
    grace: Duration,
    pending: bool,
    data_only_in_notification: bool,
) -> Verdict {
    let Some(need) = need(object) else {
        return Verdict::UpToDate;
    };
    if pending {
        return Verdict::Pending;
    }
    if let Some(since) = need.since {
        if now - since < grace {
            return Verdict::InGrace;
        }
    }
    if data_only_in_notification && need.operation != Operation::Deleted {
        return Verdict::DataOnlyInNotification;
    }
    Verdict::Renotify(need.operation)
}

/// How long until the next run, `interval` after the last one with a jitter of ± `jitter`
/// (a fraction of the interval), `u` being a uniform draw from [0, 1):
///
/// `next = last_run + interval × (1 + jitter × (2u − 1))`, at once if that is past, and never
/// later than that jittered interval from now.
///
/// Without a recorded last run (a new deployment), the first run is at a random point of the
/// first interval, `interval × u`, which spreads the reconcilers' first lists apart.
/// With the default `5m` and `0.1`, a run follows the previous one after 4.5 to 5.5 minutes.
pub fn next_run_in(
    last_run: Option<OffsetDateTime>,
    now: OffsetDateTime,
    interval: Duration,
    jitter: f64,
    u: f64,
) -> Duration {
    let u = u.clamp(0.0, 1.0);
    let Some(last_run) = last_run else {
        return interval.mul_f64(u);
    };
    let factor = (1.0 + jitter.clamp(0.0, 1.0) * (2.0 * u - 1.0)).max(0.0);
    let wait = interval.mul_f64(factor);
    // A last run in the future (clock skew between replicas, a value written by something
    // else) never delays a run by more than one jittered interval; nothing here overflows.
    let Some(due) =
        last_run.checked_add(time::Duration::try_from(wait).unwrap_or(time::Duration::MAX))
    else {
        return wait;
    };
    Duration::try_from(due - now)
        .unwrap_or(Duration::ZERO)
        .min(wait)
}

/// How long a resync lease may go unwritten before another replica takes it over: half the
/// interval, between 1 s and 30 s. A leader renews it three times as often, so a live leader
/// is never overtaken, and a dead one is replaced in well under one interval.
pub fn lease_ttl(interval: Duration) -> Duration {
    (interval / 2).clamp(Duration::from_secs(1), Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T0: &str = "2026-12-01T10:00:00.123456Z";
    const T1: &str = "2026-12-01T10:05:00Z";

    fn now() -> OffsetDateTime {
        OffsetDateTime::parse(
            "2026-12-01T10:10:00Z",
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    }

    #[test]
    fn reconciled_and_confirmed_deletions_need_nothing() {
        assert_eq!(need(&json!({"ID": 1, "Reconciled": true})), None);
        assert_eq!(
            need(
                &json!({"ID": 1, "Reconciled": true, "DeletionScheduled": T0,
                "DeletionConfirmed": T1})
            ),
            None
        );
    }

    #[test]
    fn never_written_unreconciled_is_created_else_updated() {
        let created = need(&json!({"Reconciled": false, "CreatedAt": T0, "UpdatedAt": T0}));
        assert_eq!(created.unwrap().operation, Operation::Created);
        let updated = need(&json!({"Reconciled": false, "CreatedAt": T0, "UpdatedAt": T1}));
        assert_eq!(updated.unwrap().operation, Operation::Updated);
        assert_eq!(updated.unwrap().since, time_field(&json!({"t": T1}), "t"));
        // No Reconciled field at all reads as the API's default, false.
        let missing = need(&json!({"CreatedAt": T0, "UpdatedAt": T1})).unwrap();
        assert_eq!(missing.operation, Operation::Updated);
        // Without readable times there is no telling: Updated, needed since ever.
        let unreadable = need(&json!({"Reconciled": false, "UpdatedAt": "yesterday"})).unwrap();
        assert_eq!(
            (unreadable.operation, unreadable.since),
            (Operation::Updated, None)
        );
    }

    #[test]
    fn scheduled_unconfirmed_deletion_is_deleted_whatever_reconciled_says() {
        for reconciled in [false, true] {
            let n = need(
                &json!({"Reconciled": reconciled, "CreatedAt": T0, "UpdatedAt": T1,
                "DeletionScheduled": T0}),
            )
            .unwrap();
            assert_eq!(n.operation, Operation::Deleted);
            assert_eq!(n.since, time_field(&json!({"t": T0}), "t"));
        }
    }

    #[test]
    fn verdicts() {
        let grace = Duration::from_secs(60);
        let old = json!({"Reconciled": false, "CreatedAt": T0, "UpdatedAt": T0});
        assert_eq!(
            verdict(&old, now(), grace, false, false),
            Verdict::Renotify(Operation::Created)
        );
        assert_eq!(verdict(&old, now(), grace, true, false), Verdict::Pending);
        // Updated 30 s ago: inside the grace period.
        let fresh = json!({"Reconciled": false, "CreatedAt": T0,
            "UpdatedAt": "2026-12-01T10:09:30Z"});
        assert_eq!(
            verdict(&fresh, now(), grace, false, false),
            Verdict::InGrace
        );
        assert_eq!(
            verdict(&fresh, now(), Duration::from_secs(20), false, false),
            Verdict::Renotify(Operation::Updated)
        );
        let done = json!({"Reconciled": true});
        assert_eq!(verdict(&done, now(), grace, true, false), Verdict::UpToDate);
    }

    #[test]
    fn data_only_in_notification_rebuilds_deletions_only() {
        let grace = Duration::ZERO;
        let created = json!({"Reconciled": false, "CreatedAt": T0, "UpdatedAt": T0});
        assert_eq!(
            verdict(&created, now(), grace, false, true),
            Verdict::DataOnlyInNotification
        );
        let deleting = json!({"Reconciled": false, "DeletionScheduled": T0});
        assert_eq!(
            verdict(&deleting, now(), grace, false, true),
            Verdict::Renotify(Operation::Deleted)
        );
    }

    #[test]
    fn schedule_with_jitter() {
        let interval = Duration::from_secs(300);
        let last = now() - Duration::from_secs(100);
        // u = 0.5: no jitter, 300 s after the last run = 200 s from now.
        assert_eq!(
            next_run_in(Some(last), now(), interval, 0.1, 0.5),
            Duration::from_secs(200)
        );
        // The extremes: ± 10 %.
        assert_eq!(
            next_run_in(Some(last), now(), interval, 0.1, 0.0),
            Duration::from_secs(170)
        );
        assert_eq!(
            next_run_in(Some(last), now(), interval, 0.1, 1.0),
            Duration::from_secs(230)
        );
        // Overdue (a leader died long ago): at once.
        let long_ago = now() - Duration::from_secs(3600);
        assert_eq!(
            next_run_in(Some(long_ago), now(), interval, 0.1, 0.5),
            Duration::ZERO
        );
        // A last run in the future (skew, garbage): at most one interval away.
        let future = now() + Duration::from_secs(86_400 * 365);
        assert_eq!(
            next_run_in(Some(future), now(), interval, 0.1, 0.5),
            interval
        );
        let far = OffsetDateTime::from_unix_timestamp(253_402_300_799).unwrap(); // 9999-12-31
        assert_eq!(next_run_in(Some(far), now(), interval, 0.0, 0.5), interval);
        // First run ever: somewhere in the first interval.
        assert_eq!(
            next_run_in(None, now(), interval, 0.1, 0.25),
            Duration::from_secs(75)
        );
    }

    #[test]
    fn lease_ttl_is_half_the_interval_within_bounds() {
        assert_eq!(lease_ttl(Duration::from_secs(4)), Duration::from_secs(2));
        assert_eq!(lease_ttl(Duration::from_secs(300)), Duration::from_secs(30));
        assert_eq!(
            lease_ttl(Duration::from_millis(500)),
            Duration::from_secs(1)
        );
    }
}
