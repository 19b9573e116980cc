//! Per-message retry delays.
//!
//! Threeport derives the delay from the notification's age (1 s .. 60 s, then 30 s forever,
//! spec 1.8 and 4.1 #3). We use the JetStream delivery count instead, so the schedule is per
//! attempt and survives restarts:
//!
//! ```text
//! nominal(n) = min(cap, base * 2^(n-1))      n = delivery count, 1-based
//! delay(n)   = nominal(n) * (1 - jitter/2)   jitter uniform in [0, 1)  ->  [nominal/2, nominal]
//! ```
//!
//! With the defaults (base 1 s, cap 5 min) the nominal schedule is 1, 2, 4, 8, 16, 32, 64, 128,
//! 256, 300, 300, ... seconds. "Equal jitter" keeps at least half the delay, so a burst of
//! failures spreads out without ever retrying sooner than half the nominal delay.

use std::time::Duration;

/// Per-delivery retry delays: `base` doubled per delivery up to `cap`, with equal jitter (see
/// the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Nominal delay before the second delivery (config `engine.backoff_base`).
    pub base: Duration,
    /// Upper bound of the nominal delay (config `engine.backoff_cap`); never below `base`.
    pub cap: Duration,
}

impl Backoff {
    /// A schedule from `base` to `cap`; a `cap` below `base` is raised to `base`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap: cap.max(base),
        }
    }

    /// The delay before delivery `attempt + 1`, without jitter.
    pub fn nominal(&self, attempt: u64) -> Duration {
        let exp = attempt.saturating_sub(1).min(63) as u32;
        let factor = 1u64.checked_shl(exp).unwrap_or(u64::MAX);
        let nanos = (self.base.as_nanos()).saturating_mul(factor as u128);
        let cap = self.cap.as_nanos();
        Duration::from_nanos(nanos.min(cap).min(u64::MAX as u128) as u64)
    }

    /// The delay with equal jitter; `unit` is a uniform sample in `[0, 1)`.
    pub fn delay(&self, attempt: u64, unit: f64) -> Duration {
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.nominal(attempt).mul_f64(1.0 - unit / 2.0)
    }

    /// [`Backoff::delay`] with a random sample.
    pub fn delay_random(&self, attempt: u64) -> Duration {
        self.delay(attempt, rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn default_schedule_doubles_then_caps() {
        let b = Backoff::new(s(1), s(300));
        let got: Vec<u64> = (1..=12).map(|n| b.nominal(n).as_secs()).collect();
        assert_eq!(got, vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
    }

    #[test]
    fn attempt_zero_is_treated_as_first() {
        let b = Backoff::new(s(1), s(300));
        assert_eq!(b.nominal(0), s(1));
    }

    #[test]
    fn huge_attempt_counts_do_not_overflow() {
        let b = Backoff::new(Duration::from_millis(250), s(60));
        assert_eq!(b.nominal(u64::MAX), s(60));
        assert_eq!(b.nominal(64), s(60));
        assert_eq!(b.nominal(200), s(60));
    }

    #[test]
    fn jitter_stays_within_half_and_full_nominal() {
        let b = Backoff::new(s(1), s(300));
        assert_eq!(b.delay(4, 0.0), s(8));
        assert_eq!(b.delay(4, 1.0), s(4));
        assert_eq!(b.delay(4, 0.5), s(6));
        for _ in 0..1000 {
            let d = b.delay_random(3);
            assert!(d >= s(2) && d <= s(4), "{d:?}");
        }
        // Garbage samples cannot produce garbage delays.
        assert_eq!(b.delay(4, f64::NAN), s(8));
        assert_eq!(b.delay(4, -3.0), s(8));
    }

    #[test]
    fn cap_below_base_is_raised_to_base() {
        let b = Backoff::new(s(10), s(1));
        assert_eq!(b.nominal(5), s(10));
    }
}
