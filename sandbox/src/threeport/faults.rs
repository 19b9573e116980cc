//! Fault injection and request counters, shared between the handle and the server and
//! changeable while the server runs.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;

/// Which requests a [`Faults::fail_next`] rule applies to. `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteFilter {
    /// HTTP method, e.g. `Some("PATCH")` (case-insensitive).
    pub method: Option<&'static str>,
    /// Prefix of the request path, e.g. `Some("/v0/workload-instances".into())`.
    pub route_prefix: Option<String>,
}

impl RouteFilter {
    fn matches(&self, method: &str, path: &str) -> bool {
        self.method.is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .route_prefix
                .as_deref()
                .is_none_or(|p| path.starts_with(p))
    }
}

#[derive(Debug, Default)]
struct FaultState {
    error_rate: Option<(f64, u16)>,
    latency: Duration,
    fail_next: Vec<(usize, u16, RouteFilter)>,
}

/// Fault injection. Injected errors are answered with a Threeport error envelope
/// (`Status.error` = "sandbox: injected fault") and the chosen status; the request is not
/// handled (no store change, no notification).
#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<FaultState>,
}

impl Faults {
    fn with<R>(&self, f: impl FnOnce(&mut FaultState) -> R) -> R {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    /// Fail each request with probability `p` (0.0..=1.0) with `status`. `p <= 0` disables.
    pub fn set_error_rate(&self, p: f64, status: u16) {
        self.with(|s| s.error_rate = (p > 0.0).then_some((p.min(1.0), status)));
    }

    /// Delay every request by `d` before it is handled (counted requests included).
    pub fn set_latency(&self, d: Duration) {
        self.with(|s| s.latency = d);
    }

    /// Fail the next `n` requests that match `filter` with `status`. Rules are consumed in the
    /// order they were added.
    pub fn fail_next(&self, n: usize, status: u16, filter: RouteFilter) {
        if n > 0 {
            self.with(|s| s.fail_next.push((n, status, filter)));
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
    pub(crate) fn decide(&self, method: &str, path: &str) -> Option<u16> {
        self.with(|s| {
            if let Some(i) = s
                .fail_next
                .iter()
                .position(|(_, _, f)| f.matches(method, path))
            {
                let status = s.fail_next[i].1;
                s.fail_next[i].0 -= 1;
                if s.fail_next[i].0 == 0 {
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

/// A snapshot of request counts per (method, route template, status).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// `("PATCH", "/v0/workload-instances/{id}", 200) -> n`. Unknown routes use the template
    /// `"unknown"`.
    pub by_route: BTreeMap<(String, String, u16), u64>,
    /// All requests answered.
    pub total: u64,
}

impl Counters {
    /// Requests with this method, route template and status.
    pub fn get(&self, method: &str, route: &str, status: u16) -> u64 {
        self.by_route
            .get(&(method.to_string(), route.to_string(), status))
            .copied()
            .unwrap_or(0)
    }

    /// Requests with this method and route template, any status.
    pub fn route_total(&self, method: &str, route: &str) -> u64 {
        self.by_route
            .iter()
            .filter(|((m, r, _), _)| m == method && r == route)
            .map(|(_, n)| n)
            .sum()
    }
}

#[derive(Debug, Default)]
pub(crate) struct CounterStore {
    inner: Mutex<Counters>,
}

impl CounterStore {
    pub(crate) fn record(&self, method: &str, route: &str, status: u16) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *g.by_route
            .entry((method.to_string(), route.to_string(), status))
            .or_insert(0) += 1;
        g.total += 1;
    }

    pub(crate) fn snapshot(&self) -> Counters {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_next_is_consumed_per_filter() {
        let f = Faults::default();
        f.fail_next(
            2,
            503,
            RouteFilter {
                method: Some("PATCH"),
                route_prefix: Some("/v0/workload-instances".into()),
            },
        );
        assert_eq!(f.decide("GET", "/v0/workload-instances/1"), None);
        assert_eq!(f.decide("PATCH", "/v0/workload-definitions/1"), None);
        assert_eq!(f.decide("patch", "/v0/workload-instances/1"), Some(503));
        assert_eq!(f.decide("PATCH", "/v0/workload-instances/2"), Some(503));
        assert_eq!(f.decide("PATCH", "/v0/workload-instances/3"), None);
        f.set_error_rate(1.0, 500);
        assert_eq!(f.decide("GET", "/x"), Some(500));
        f.clear();
        assert_eq!(f.decide("GET", "/x"), None);
    }
}
