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
    /// Age after which another owner's lock is taken over (see [`plan_lock_conflict`]).
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
            | AttemptResult::Aborted => None,
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
        AttemptResult::Success | AttemptResult::NotFound | AttemptResult::SkippedForDeletion => {
            Settle::Ack
        }
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

/// What to do about a lock another owner holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockConflictPlan {
    /// The holder has not written the lock for `lock_takeover_after`: it is gone. Take the lock
    /// over (on its revision, so a holder that renews or releases meanwhile keeps it).
    TakeOver,
    /// Hand the message back and try again after the delay.
    Wait(Duration),
}

/// Decide about a held lock from its age (time since its holder last wrote it), on the
/// message's `delivered`-th delivery.
///
/// A live manager renews its locks every `lock_renew_interval`, so its locks never reach the
/// takeover age; a Go controller never renews, and a crashed one would otherwise block the
/// object for the bucket's 20 min max age (spec 4.1 #6). Until the takeover age, the delay
/// grows like the retry backoff, from `lock_conflict_delay`, capped at a quarter of the takeover
/// age and at the time left until the lock turns stale, so a dead holder's objects are taken
/// over within a few deliveries of that moment:
///
/// ```text
/// left     = lock_takeover_after - age
/// delay(n) = min(left, lock_takeover_after / 4, lock_conflict_delay * 2^(n-1)) * (1 - jitter/2)
/// ```
///
/// With the defaults (1 s, 60 s) and a lock held from the first delivery on, the nominal
/// schedule is 1, 2, 4, 8, 15, 15, 15, then whatever is left: takeover about 60 s after the
/// holder's last write, in 7 or 8 deliveries.
pub fn plan_lock_conflict(
    policy: &RetryPolicy,
    age: Duration,
    delivered: u64,
    jitter: f64,
) -> LockConflictPlan {
    let left = policy.lock_takeover_after.saturating_sub(age);
    if left.is_zero() {
        return LockConflictPlan::TakeOver;
    }
    let cap = (policy.lock_takeover_after / 4).min(left);
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
}

/// Whether to call the reconciler: a Created or Updated notification on an object whose
/// `DeletionScheduled` is set is skipped (see [`Dispatch::SkipScheduledForDeletion`]).
pub fn plan_dispatch(operation: Operation, latest: &Value) -> Dispatch {
    let scheduled = latest
        .get("DeletionScheduled")
        .is_some_and(|v| !v.is_null());
    match operation {
        Operation::Created | Operation::Updated if scheduled => Dispatch::SkipScheduledForDeletion,
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
            lock_takeover_after: Duration::from_secs(60),
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

    #[test]
    fn a_lock_not_written_for_the_takeover_age_is_taken_over() {
        let p = policy();
        assert_eq!(
            plan_lock_conflict(&p, secs(60), 1, 0.0),
            LockConflictPlan::TakeOver
        );
        assert_eq!(
            plan_lock_conflict(&p, secs(19 * 60), 1, 0.5),
            LockConflictPlan::TakeOver
        );
        assert!(matches!(
            plan_lock_conflict(&p, secs(59), 1, 0.0),
            LockConflictPlan::Wait(_)
        ));
    }

    #[test]
    fn a_fresh_lock_waits_with_backoff_capped_at_a_quarter_of_the_takeover_age() {
        let p = policy();
        let wait = |age, n| match plan_lock_conflict(&p, age, n, 0.0) {
            LockConflictPlan::Wait(d) => d,
            other => panic!("{other:?}"),
        };
        assert_eq!(wait(secs(0), 1), Duration::from_millis(1500));
        assert_eq!(wait(secs(0), 2), secs(3));
        assert_eq!(wait(secs(0), 4), secs(12));
        assert_eq!(wait(secs(0), 5), secs(15));
        assert_eq!(wait(secs(0), 50), secs(15));
    }

    #[test]
    fn the_wait_ends_when_the_lock_turns_stale_and_is_never_zero() {
        let p = policy();
        let wait = |age| match plan_lock_conflict(&p, age, 9, 0.0) {
            LockConflictPlan::Wait(d) => d,
            other => panic!("{other:?}"),
        };
        assert_eq!(wait(secs(50)), secs(10));
        assert_eq!(
            wait(Duration::from_millis(59_999)),
            Duration::from_millis(1)
        );
        assert_eq!(
            wait(Duration::from_nanos(59_999_999_999)),
            Duration::from_millis(1)
        );
    }

    #[test]
    fn a_holder_kept_alive_by_renewals_is_never_taken_over() {
        // A live manager's lock is at most one renew interval old whatever the delivery count.
        let p = policy();
        for n in 1..100 {
            for jitter in [0.0, 0.5, 0.999] {
                assert_ne!(
                    plan_lock_conflict(&p, secs(20), n, jitter),
                    LockConflictPlan::TakeOver
                );
            }
        }
    }

    /// A dead holder's lock (age 0 at the first delivery): the deliveries until takeover, with
    /// the slowest (no jitter) schedule, stay few and the takeover comes within a second of
    /// the lock turning stale.
    #[test]
    fn a_dead_holder_is_taken_over_in_a_few_deliveries() {
        let p = policy();
        let mut age = Duration::ZERO;
        let mut n = 1;
        loop {
            match plan_lock_conflict(&p, age, n, 0.0) {
                LockConflictPlan::TakeOver => break,
                LockConflictPlan::Wait(d) => age += d,
            }
            n += 1;
        }
        assert!(n <= 9, "{n} deliveries");
        assert!(age < secs(61), "{age:?}");
    }

    #[test]
    fn scheduled_for_deletion_skips_create_and_update_only() {
        let scheduled = json!({"ID": 1, "DeletionScheduled": "2024-01-01T00:00:00Z"});
        let live = json!({"ID": 1, "DeletionScheduled": null});
        let absent = json!({"ID": 1});
        assert_eq!(
            plan_dispatch(Operation::Created, &scheduled),
            Dispatch::SkipScheduledForDeletion
        );
        assert_eq!(
            plan_dispatch(Operation::Updated, &scheduled),
            Dispatch::SkipScheduledForDeletion
        );
        assert_eq!(plan_dispatch(Operation::Deleted, &scheduled), Dispatch::Run);
        assert_eq!(plan_dispatch(Operation::Created, &live), Dispatch::Run);
        assert_eq!(plan_dispatch(Operation::Created, &absent), Dispatch::Run);
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
