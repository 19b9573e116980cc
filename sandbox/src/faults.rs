//! Fault injection and request counting, shared by both halves of the sandbox. Each half
//! describes its requests with two strings (Threeport: method and path; Kubernetes: verb and
//! resource) and brings its own filter type; the rules and their bookkeeping are the same.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;

/// Which requests a `fail_next` rule applies to.
pub trait RequestFilter: std::fmt::Debug + Send + 'static {
    /// Whether a request, described by its two strings (Threeport: method and path; Kubernetes:
    /// verb and resource), is one the rule applies to.
    fn matches(&self, first: &str, second: &str) -> bool;
}

#[derive(Debug)]
struct FaultState<F> {
    error_rate: Option<(f64, u16)>,
    latency: Duration,
    fail_next: Vec<FailRule<F>>,
}

/// Let `skip` matching requests through, then fail `n` with `status`.
#[derive(Debug)]
struct FailRule<F> {
    skip: usize,
    n: usize,
    status: u16,
    filter: F,
}

impl<F> Default for FaultState<F> {
    fn default() -> Self {
        Self {
            error_rate: None,
            latency: Duration::ZERO,
            fail_next: Vec::new(),
        }
    }
}

/// Fault rules, changeable while the server runs. An injected fault is answered before the
/// request is handled, so it has no side effect.
#[derive(Debug)]
pub struct FaultInjector<F> {
    state: Mutex<FaultState<F>>,
}

impl<F> Default for FaultInjector<F> {
    fn default() -> Self {
        Self {
            state: Mutex::new(FaultState::default()),
        }
    }
}

impl<F: RequestFilter> FaultInjector<F> {
    fn with<R>(&self, f: impl FnOnce(&mut FaultState<F>) -> R) -> R {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    /// Fail each request with probability `p` (0.0..=1.0) with `status`. `p <= 0` disables.
    pub fn set_error_rate(&self, p: f64, status: u16) {
        self.with(|s| s.error_rate = (p > 0.0).then_some((p.min(1.0), status)));
    }

    /// Delay every request by `d` before it is handled.
    pub fn set_latency(&self, d: Duration) {
        self.with(|s| s.latency = d);
    }

    /// Fail the next `n` requests that match `filter` with `status`. Rules are consumed in the
    /// order they were added.
    pub fn fail_next(&self, n: usize, status: u16, filter: F) {
        self.fail_after(0, n, status, filter);
    }

    /// Let the next `skip` requests that match `filter` through, then fail `n` with `status`:
    /// for a request later in a known sequence (e.g. the second Deployment an install writes).
    pub fn fail_after(&self, skip: usize, n: usize, status: u16, filter: F) {
        if n > 0 {
            self.with(|s| {
                s.fail_next.push(FailRule {
                    skip,
                    n,
                    status,
                    filter,
                });
            });
        }
    }

    /// Remove every fault (error rate, latency, pending `fail_next` rules).
    pub fn clear(&self) {
        self.with(|s| *s = FaultState::default());
    }

    pub(crate) fn latency(&self) -> Duration {
        self.with(|s| s.latency)
    }

    /// Decide whether this request fails; consumes a `fail_next` slot when one matches.
    pub(crate) fn decide(&self, first: &str, second: &str) -> Option<u16> {
        self.with(|s| {
            for i in 0..s.fail_next.len() {
                let rule = &mut s.fail_next[i];
                if !rule.filter.matches(first, second) {
                    continue;
                }
                if rule.skip > 0 {
                    rule.skip -= 1;
                    continue;
                }
                let status = rule.status;
                rule.n -= 1;
                if rule.n == 0 {
                    s.fail_next.remove(i);
                }
                return Some(status);
            }
            match s.error_rate {
                Some((p, status)) if rand::thread_rng().gen_bool(p) => Some(status),
                _ => None,
            }
        })
    }
}

/// Counts per (first, second, status).
pub type CountMap = BTreeMap<(String, String, u16), u64>;

/// Request counts per (first, second, status), plus the total.
#[derive(Debug, Default)]
pub(crate) struct RequestCounts {
    inner: Mutex<(CountMap, u64)>,
}

impl RequestCounts {
    pub(crate) fn record(&self, first: &str, second: &str, status: u16) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *g.0.entry((first.to_string(), second.to_string(), status))
            .or_insert(0) += 1;
        g.1 += 1;
    }

    /// A copy of the counts and the total.
    pub(crate) fn snapshot(&self) -> (CountMap, u64) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Prefix(&'static str);

    impl RequestFilter for Prefix {
        fn matches(&self, first: &str, _: &str) -> bool {
            first.starts_with(self.0)
        }
    }

    #[test]
    fn rules_are_consumed_in_order_then_the_error_rate_applies() {
        let f = FaultInjector::<Prefix>::default();
        f.fail_next(1, 503, Prefix("a"));
        f.fail_next(1, 500, Prefix("a"));
        assert_eq!(f.decide("b", ""), None);
        assert_eq!(f.decide("ab", ""), Some(503));
        assert_eq!(f.decide("ab", ""), Some(500));
        assert_eq!(f.decide("ab", ""), None);
        f.set_error_rate(1.0, 502);
        f.set_latency(Duration::from_millis(3));
        assert_eq!(f.decide("x", ""), Some(502));
        assert_eq!(f.latency(), Duration::from_millis(3));
        f.clear();
        assert_eq!(f.decide("x", ""), None);
        assert_eq!(f.latency(), Duration::ZERO);
    }

    #[test]
    fn a_rule_with_skip_lets_that_many_matches_through_first() {
        let f = FaultInjector::<Prefix>::default();
        f.fail_after(2, 1, 500, Prefix("a"));
        assert_eq!(f.decide("b", ""), None, "not a match: not counted");
        assert_eq!(f.decide("a1", ""), None);
        assert_eq!(f.decide("a2", ""), None);
        assert_eq!(f.decide("a3", ""), Some(500));
        assert_eq!(f.decide("a4", ""), None);
    }

    #[test]
    fn counts_per_key_and_total() {
        let c = RequestCounts::default();
        c.record("GET", "/a", 200);
        c.record("GET", "/a", 200);
        c.record("GET", "/a", 404);
        let (map, total) = c.snapshot();
        assert_eq!(map[&("GET".to_string(), "/a".to_string(), 200)], 2);
        assert_eq!(total, 3);
    }
}
