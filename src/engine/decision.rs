//! Every engine decision, as pure functions of (message, lock state, reconciler outcome).
//!
//! The IO around these (NATS acks, KV, API calls) lives in [`super::worker`]; keeping the
//! decisions here means each rule of README's "How a notification is handled" is unit-tested without a broker.

use std::time::Duration;

use serde_json::Value;

use super::backoff::Backoff;
use super::reconciler::Operation;
use crate::retry::RetryClass;

/// How to settle a JetStream message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// `+ACK` (sent as a double ack: the server confirms it, like Go's `AckSync`).
    Ack,
    /// `-NAK {"delay":...}`: redeliver after the delay.
    Nak(Duration),
    /// `+TERM`: never redeliver.
    Term,
}

/// Retry settings, from the config's `engine` section.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// The delay schedule of failed attempts, poison messages and lock-bucket outages.
    pub backoff: Backoff,
    /// Deliveries of an undecodable message before it is terminated (>= 1).
    pub max_poison_attempts: u64,
    /// Deliveries of a failing reconcile before the message is terminated; 0 = never give up
    /// (objects must converge once the cause is fixed, so this is off by default).
    pub max_reconcile_attempts: u64,
    /// First NAK delay when another owner holds the object's lock; doubles per delivery (see
    /// [`plan_lock_conflict`]).
    pub lock_conflict_delay: Duration,
    /// Heartbeat silence after which a manager replica counts as dead and its locks are
    /// reclaimed (see [`plan_lock_conflict`]).
    pub lock_reclaim_after: Duration,
    /// Age after which a lock of an owner without heartbeat (a Go controller) is taken over;
    /// 20 min, the bucket's max age, keeps Threeport's rule (see [`plan_lock_conflict`]).
    pub lock_takeover_after: Duration,
}

/// The result of one reconcile attempt as the engine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// Reconciled (and, if needed, the completion protocol succeeded).
    Success,
    /// The reconciler asked to be called again after a delay.
    Requeue(Duration),
    /// The reconciler, the GET of the latest object or the completion protocol failed, with
    /// the class of the error.
    Failure(RetryClass),
    /// The object no longer exists (404 on GET latest): nothing to do (spec 1.9 step 10).
    NotFound,
    /// The object is scheduled for deletion and this is a Created/Updated notification: the
    /// Deleted notification will do the work.
    SkippedForDeletion,
    /// Another owner holds the lock: try again after the delay.
    LockConflict(Duration),
    /// The lock or NATS KV could not be reached to take the lock.
    LockUnavailable,
    /// The lock was lost while reconciling (renewal found another revision).
    LockLost,
    /// Shutdown gave up waiting for this reconcile.
    Aborted,
    /// A resync's re-notification of an object that was reconciled by the time it arrived:
    /// nothing to do.
    UpToDate,
}

impl AttemptResult {
    /// The `result` label of `threeport_reconcile_total` (success, error, requeue, not_found),
    /// or `None` for attempts that never reached the reconciler.
    pub fn metric_result(&self) -> Option<&'static str> {
        match self {
            AttemptResult::Success | AttemptResult::SkippedForDeletion => Some("success"),
            AttemptResult::Requeue(_) => Some("requeue"),
            AttemptResult::Failure(_) | AttemptResult::LockLost => Some("error"),
            AttemptResult::NotFound => Some("not_found"),
            AttemptResult::LockConflict(_)
            | AttemptResult::LockUnavailable
            | AttemptResult::Aborted
            | AttemptResult::UpToDate => None,
        }
    }
}

/// Settle a message whose payload is poison, on its `delivered`-th delivery.
pub fn settle_poison(policy: &RetryPolicy, delivered: u64, jitter: f64) -> Settle {
    if delivered >= policy.max_poison_attempts.max(1) {
        Settle::Term
    } else {
        // A real delay between attempts: never an immediate redelivery (spec 4.1 #1).
        Settle::Nak(policy.backoff.delay(delivered, jitter))
    }
}

/// Settle a message after an attempt.
pub fn settle_attempt(
    policy: &RetryPolicy,
    result: AttemptResult,
    delivered: u64,
    jitter: f64,
) -> Settle {
    match result {
        AttemptResult::Success
        | AttemptResult::NotFound
        | AttemptResult::SkippedForDeletion
        | AttemptResult::UpToDate => Settle::Ack,
        AttemptResult::Requeue(d) => Settle::Nak(d),
        AttemptResult::Failure(class) => {
            if policy.max_reconcile_attempts > 0 && delivered >= policy.max_reconcile_attempts {
                Settle::Term
            } else {
                Settle::Nak(failure_delay(policy, class, delivered, jitter))
            }
        }
        AttemptResult::LockConflict(d) => Settle::Nak(d),
        AttemptResult::LockLost => Settle::Nak(policy.lock_conflict_delay),
        AttemptResult::LockUnavailable => Settle::Nak(policy.backoff.delay(delivered, jitter)),
        // Hand it back at once: another replica (or this one after restart) picks it up.
        AttemptResult::Aborted => Settle::Nak(Duration::ZERO),
    }
}

/// The NAK delay after a failed attempt. A transient failure follows the backoff schedule
/// (see [`Backoff`]); a permanent one cannot succeed before someone changes something, so it
/// goes to the cap at once instead of spending the first retries within seconds:
///
/// ```text
/// transient: backoff.delay(delivered, jitter)   1 s, 2 s, 4 s, ... 300 s (defaults)
/// permanent: backoff.delay(MAX, jitter)         300 s every time (150-300 s with jitter)
/// ```
pub fn failure_delay(
    policy: &RetryPolicy,
    class: RetryClass,
    delivered: u64,
    jitter: f64,
) -> Duration {
    match class {
        RetryClass::Transient => policy.backoff.delay(delivered, jitter),
        RetryClass::Permanent => policy.backoff.delay(u64::MAX, jitter),
    }
}

/// Who holds a lock this process could not take, as far as the heartbeats tell (see
/// [`super::liveness`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockHolder {
    /// This process's own ID on a lock none of its tasks holds: an earlier release failed (NATS
    /// unreachable at the time). Reclaimed at once.
    OwnLeftover,
    /// A manager replica whose last heartbeat is `silent_for` old on the server's clock
    /// (`Duration::MAX` once it marked itself stopped). This process's own tasks count as a
    /// live replica.
    Replica {
        /// Time since the replica's last heartbeat.
        silent_for: Duration,
    },
    /// No heartbeat: a Go controller (which never renews its locks) or something else that
    /// speaks Threeport's lock protocol. Only Threeport's own age rule applies.
    Unknown,
}

/// What to do about a lock another owner holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockConflictPlan {
    /// The holder is gone: take the lock over (on its revision, so a holder that renews or
    /// releases meanwhile keeps it).
    TakeOver,
    /// Hand the message back and try again after the delay.
    Wait(Duration),
}

/// Decide about a held lock from who holds it and its age (time since its holder last wrote
/// it), on the message's `delivered`-th delivery.
///
/// The time left before the holder counts as gone depends on who it is:
///
/// ```text
/// own leftover   left = 0
/// replica        left = lock_reclaim_after  - silent_for     (heartbeat silence)
/// unknown        left = lock_takeover_after - age            (20 min by default: Threeport's rule)
/// ```
///
/// A live replica heartbeats every few seconds, so its silence never reaches
/// `lock_reclaim_after`, however long its reconcile runs (and it stops reconciling itself before
/// that if its heartbeat fails). Until the holder is gone, the delay grows like the retry
/// backoff from `lock_conflict_delay`, capped at half of `lock_reclaim_after` and at the time
/// left, so a dead holder's objects are taken over within a few deliveries of that moment:
///
/// ```text
/// delay(n) = min(left, lock_reclaim_after / 2, lock_conflict_delay * 2^(n-1)) * (1 - jitter/2)
/// ```
///
/// With the defaults (1 s, 30 s) and a replica killed while holding the lock, the nominal
/// schedule is 1, 2, 4, 8, 15, then whatever is left: reclaimed about 30 s after its last
/// heartbeat. A Go controller's lock is retried every 15 s until it is released or expires.
pub fn plan_lock_conflict(
    policy: &RetryPolicy,
    holder: LockHolder,
    age: Duration,
    delivered: u64,
    jitter: f64,
) -> LockConflictPlan {
    let left = match holder {
        LockHolder::OwnLeftover => Duration::ZERO,
        LockHolder::Replica { silent_for } => policy.lock_reclaim_after.saturating_sub(silent_for),
        LockHolder::Unknown => policy.lock_takeover_after.saturating_sub(age),
    };
    if left.is_zero() {
        return LockConflictPlan::TakeOver;
    }
    let cap = (policy.lock_reclaim_after / 2).min(left);
    let delay = Backoff::new(policy.lock_conflict_delay.min(cap), cap).delay(delivered, jitter);
    // Never zero (an immediate redelivery): at the end it is the remainder, at least 1 ms.
    LockConflictPlan::Wait(delay.max(Duration::from_millis(1)))
}

/// Whether to call the reconciler for this notification, given the latest object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// Call the reconciler.
    Run,
    /// Created/Updated on an object whose `DeletionScheduled` is set. Threeport skips the
    /// create but still PATCHes `Reconciled:true` and records `SuccessfulCreate` (spec 4.1 #14);
    /// we skip the whole thing and leave the object to the Deleted notification.
    SkipScheduledForDeletion,
    /// A resync's Created/Updated re-notification of an object that is `Reconciled:true` by
    /// now (its own notification, late, got there first): acknowledged without work.
    SkipUpToDate,
}

/// Whether to call the reconciler: a Created or Updated notification on an object whose
/// `DeletionScheduled` is set is skipped (see [`Dispatch::SkipScheduledForDeletion`]), and so
/// is a resync's (`resync`) Created or Updated of an object already reconciled. A Threeport
/// notification always runs, reconciled or not (spec 1.9.1).
pub fn plan_dispatch(operation: Operation, latest: &Value, resync: bool) -> Dispatch {
    let scheduled = latest
        .get("DeletionScheduled")
        .is_some_and(|v| !v.is_null());
    let reconciled = latest.get("Reconciled").and_then(Value::as_bool) == Some(true);
    match operation {
        Operation::Created | Operation::Updated if scheduled => Dispatch::SkipScheduledForDeletion,
        Operation::Created | Operation::Updated if resync && reconciled => Dispatch::SkipUpToDate,
        _ => Dispatch::Run,
    }
}

/// What the engine does with the API after a successful reconcile (spec 1.9 steps 11-12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// `PATCH {"Reconciled":true}`.
    MarkReconciled,
    /// `PATCH {"Reconciled":true,"DeletionAcknowledged":t,"DeletionConfirmed":t}` then the
    /// second `DELETE`.
    ConfirmDeletion,
}

/// The completion protocol after a successful reconcile of `operation`.
pub fn completion_for(operation: Operation) -> Completion {
    match operation {
        Operation::Created | Operation::Updated => Completion::MarkReconciled,
        Operation::Deleted => Completion::ConfirmDeletion,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAILED: AttemptResult = AttemptResult::Failure(RetryClass::Transient);
    use serde_json::json;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
            max_poison_attempts: 5,
            max_reconcile_attempts: 0,
            lock_conflict_delay: Duration::from_millis(1500),
            lock_reclaim_after: Duration::from_secs(30),
            lock_takeover_after: Duration::from_secs(20 * 60),
        }
    }

    #[test]
    fn poison_is_delayed_then_terminated_at_the_limit() {
        let p = policy();
        assert_eq!(
            settle_poison(&p, 1, 0.0),
            Settle::Nak(Duration::from_secs(1))
        );
        assert_eq!(
            settle_poison(&p, 2, 0.0),
            Settle::Nak(Duration::from_secs(2))
        );
        assert_eq!(
            settle_poison(&p, 4, 0.0),
            Settle::Nak(Duration::from_secs(8))
        );
        assert_eq!(settle_poison(&p, 5, 0.0), Settle::Term);
        assert_eq!(settle_poison(&p, 99, 0.0), Settle::Term);
        for n in 1..5 {
            match settle_poison(&p, n, 0.999) {
                Settle::Nak(d) => assert!(d >= Duration::from_millis(500), "no hot loop: {d:?}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn poison_limit_of_zero_means_one_attempt() {
        let p = RetryPolicy {
            max_poison_attempts: 0,
            ..policy()
        };
        assert_eq!(settle_poison(&p, 1, 0.0), Settle::Term);
    }

    #[test]
    fn success_like_results_ack() {
        let p = policy();
        for r in [
            AttemptResult::Success,
            AttemptResult::NotFound,
            AttemptResult::SkippedForDeletion,
            AttemptResult::UpToDate,
        ] {
            assert_eq!(settle_attempt(&p, r, 3, 0.0), Settle::Ack, "{r:?}");
        }
    }

    #[test]
    fn requeue_naks_with_the_reconcilers_delay() {
        let d = Duration::from_secs(42);
        assert_eq!(
            settle_attempt(&policy(), AttemptResult::Requeue(d), 9, 0.7),
            Settle::Nak(d)
        );
    }

    #[test]
    fn failures_back_off_per_delivery_and_never_terminate_by_default() {
        let p = policy();
        assert_eq!(
            settle_attempt(&p, FAILED, 1, 0.0),
            Settle::Nak(Duration::from_secs(1))
        );
        assert_eq!(
            settle_attempt(&p, FAILED, 3, 0.0),
            Settle::Nak(Duration::from_secs(4))
        );
        assert_eq!(
            settle_attempt(&p, FAILED, 1000, 0.0),
            Settle::Nak(Duration::from_secs(300))
        );
    }

    #[test]
    fn permanent_failures_go_to_the_cap_at_once() {
        let p = policy();
        let permanent = AttemptResult::Failure(RetryClass::Permanent);
        for delivered in [1, 2, 9, 1000] {
            assert_eq!(
                settle_attempt(&p, permanent, delivered, 0.0),
                Settle::Nak(Duration::from_secs(300))
            );
        }
        // Jitter keeps at least half of the cap.
        assert_eq!(
            settle_attempt(&p, permanent, 1, 0.999_999),
            Settle::Nak(Duration::from_secs(300).mul_f64(1.0 - 0.999_999 / 2.0))
        );
        // The attempt limit applies to permanent failures too.
        let limited = RetryPolicy {
            max_reconcile_attempts: 2,
            ..p
        };
        assert_eq!(settle_attempt(&limited, permanent, 2, 0.0), Settle::Term);
    }

    #[test]
    fn failures_terminate_at_the_configured_limit() {
        let p = RetryPolicy {
            max_reconcile_attempts: 3,
            ..policy()
        };
        assert!(matches!(settle_attempt(&p, FAILED, 2, 0.0), Settle::Nak(_)));
        assert_eq!(settle_attempt(&p, FAILED, 3, 0.0), Settle::Term);
    }

    #[test]
    fn lock_conflicts_nak_with_the_planned_delay_and_losses_with_the_short_one() {
        let p = policy();
        assert_eq!(
            settle_attempt(
                &p,
                AttemptResult::LockConflict(Duration::from_secs(7)),
                7,
                0.0
            ),
            Settle::Nak(Duration::from_secs(7))
        );
        assert_eq!(
            settle_attempt(&p, AttemptResult::LockLost, 1, 0.0),
            Settle::Nak(Duration::from_millis(1500))
        );
        assert_eq!(
            settle_attempt(&p, AttemptResult::LockUnavailable, 2, 0.0),
            Settle::Nak(Duration::from_secs(2))
        );
    }

    #[test]
    fn aborted_work_is_handed_back_immediately() {
        assert_eq!(
            settle_attempt(&policy(), AttemptResult::Aborted, 1, 0.0),
            Settle::Nak(Duration::ZERO)
        );
    }

    #[test]
    fn metric_results() {
        assert_eq!(AttemptResult::Success.metric_result(), Some("success"));
        assert_eq!(FAILED.metric_result(), Some("error"));
        assert_eq!(
            AttemptResult::Requeue(Duration::ZERO).metric_result(),
            Some("requeue")
        );
        assert_eq!(AttemptResult::NotFound.metric_result(), Some("not_found"));
        assert_eq!(
            AttemptResult::LockConflict(Duration::ZERO).metric_result(),
            None
        );
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    const GO: LockHolder = LockHolder::Unknown;

    fn replica(silent: Duration) -> LockHolder {
        LockHolder::Replica { silent_for: silent }
    }

    #[test]
    fn a_go_controllers_lock_is_taken_over_only_at_the_takeover_age() {
        let mut p = policy();
        p.lock_takeover_after = secs(20 * 60);
        assert_eq!(
            plan_lock_conflict(&p, GO, secs(20 * 60), 1, 0.0),
            LockConflictPlan::TakeOver
        );
        for age in [0, 60, 600, 19 * 60 + 59] {
            assert!(matches!(
                plan_lock_conflict(&p, GO, secs(age), 1, 0.0),
                LockConflictPlan::Wait(_)
            ));
        }
        // Its lock age is all that counts: a (meaningless) replica silence plays no part.
        p.lock_takeover_after = secs(60);
        assert_eq!(
            plan_lock_conflict(&p, GO, secs(60), 1, 0.0),
            LockConflictPlan::TakeOver
        );
    }

    #[test]
    fn a_dead_replicas_lock_is_reclaimed_by_heartbeat_silence_whatever_the_lock_age() {
        let p = policy();
        for age in [0, 5, 600] {
            assert_eq!(
                plan_lock_conflict(&p, replica(secs(30)), secs(age), 1, 0.0),
                LockConflictPlan::TakeOver
            );
            assert_eq!(
                plan_lock_conflict(&p, replica(Duration::MAX), secs(age), 1, 0.0),
                LockConflictPlan::TakeOver,
                "a replica that marked itself stopped"
            );
            assert!(matches!(
                plan_lock_conflict(&p, replica(secs(29)), secs(age), 1, 0.0),
                LockConflictPlan::Wait(_)
            ));
        }
    }

    #[test]
    fn a_leftover_of_this_process_is_reclaimed_at_once() {
        assert_eq!(
            plan_lock_conflict(&policy(), LockHolder::OwnLeftover, secs(0), 1, 0.5),
            LockConflictPlan::TakeOver
        );
    }

    #[test]
    fn a_wait_backs_off_capped_at_half_the_reclaim_age() {
        let p = policy();
        for holder in [GO, replica(secs(0))] {
            let wait = |n| match plan_lock_conflict(&p, holder, secs(0), n, 0.0) {
                LockConflictPlan::Wait(d) => d,
                other => panic!("{other:?}"),
            };
            assert_eq!(wait(1), Duration::from_millis(1500));
            assert_eq!(wait(2), secs(3));
            assert_eq!(wait(4), secs(12));
            assert_eq!(wait(5), secs(15));
            assert_eq!(wait(50), secs(15));
        }
    }

    #[test]
    fn the_wait_ends_when_the_holder_turns_dead_and_is_never_zero() {
        let p = policy();
        let wait = |silent| match plan_lock_conflict(&p, replica(silent), secs(0), 9, 0.0) {
            LockConflictPlan::Wait(d) => d,
            other => panic!("{other:?}"),
        };
        assert_eq!(wait(secs(25)), secs(5));
        assert_eq!(
            wait(Duration::from_millis(29_999)),
            Duration::from_millis(1)
        );
        assert_eq!(
            wait(Duration::from_nanos(29_999_999_999)),
            Duration::from_millis(1)
        );
    }

    #[test]
    fn a_live_replica_is_never_taken_over_however_old_its_lock() {
        // A live replica heartbeats every few seconds: its silence stays under one interval.
        let p = policy();
        for n in 1..100 {
            for jitter in [0.0, 0.5, 0.999] {
                for age in [secs(1), secs(20 * 60)] {
                    assert_ne!(
                        plan_lock_conflict(&p, replica(secs(5)), age, n, jitter),
                        LockConflictPlan::TakeOver
                    );
                }
            }
        }
    }

    /// A replica killed while holding the lock (silent 0 at the first delivery): the
    /// deliveries until the reclaim, with the slowest (no jitter) schedule, stay few and the
    /// reclaim comes within a second of the heartbeat turning stale.
    #[test]
    fn a_dead_replica_is_reclaimed_in_a_few_deliveries() {
        let p = policy();
        let mut silent = Duration::ZERO;
        let mut n = 1;
        loop {
            match plan_lock_conflict(&p, replica(silent), secs(0), n, 0.0) {
                LockConflictPlan::TakeOver => break,
                LockConflictPlan::Wait(d) => silent += d,
            }
            n += 1;
        }
        assert!(n <= 7, "{n} deliveries");
        assert!(silent < secs(31), "{silent:?}");
    }

    #[test]
    fn scheduled_for_deletion_skips_create_and_update_only() {
        let scheduled = json!({"ID": 1, "DeletionScheduled": "2024-01-01T00:00:00Z"});
        let live = json!({"ID": 1, "DeletionScheduled": null});
        let absent = json!({"ID": 1});
        assert_eq!(
            plan_dispatch(Operation::Created, &scheduled, false),
            Dispatch::SkipScheduledForDeletion
        );
        assert_eq!(
            plan_dispatch(Operation::Updated, &scheduled, false),
            Dispatch::SkipScheduledForDeletion
        );
        assert_eq!(
            plan_dispatch(Operation::Deleted, &scheduled, false),
            Dispatch::Run
        );
        assert_eq!(
            plan_dispatch(Operation::Created, &live, false),
            Dispatch::Run
        );
        assert_eq!(
            plan_dispatch(Operation::Created, &absent, false),
            Dispatch::Run
        );
    }

    #[test]
    fn a_resync_of_a_reconciled_object_is_skipped_a_notification_is_not() {
        let reconciled = json!({"ID": 1, "Reconciled": true});
        let unreconciled = json!({"ID": 1, "Reconciled": false});
        for op in [Operation::Created, Operation::Updated] {
            assert_eq!(plan_dispatch(op, &reconciled, true), Dispatch::SkipUpToDate);
            assert_eq!(plan_dispatch(op, &reconciled, false), Dispatch::Run);
            assert_eq!(plan_dispatch(op, &unreconciled, true), Dispatch::Run);
        }
        // A deletion marked reconciled on the way (AWS) still needs its Deleted.
        let deleting =
            json!({"ID": 1, "Reconciled": true, "DeletionScheduled": "2024-01-01T00:00:00Z"});
        assert_eq!(
            plan_dispatch(Operation::Deleted, &deleting, true),
            Dispatch::Run
        );
    }

    #[test]
    fn completion_protocol_per_operation() {
        assert_eq!(
            completion_for(Operation::Created),
            Completion::MarkReconciled
        );
        assert_eq!(
            completion_for(Operation::Updated),
            Completion::MarkReconciled
        );
        assert_eq!(
            completion_for(Operation::Deleted),
            Completion::ConfirmDeletion
        );
    }
}
