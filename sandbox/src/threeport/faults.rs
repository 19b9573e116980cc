//! Fault injection and request counters, shared between the handle and the server and
//! changeable while the server runs.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::faults::{FaultInjector, RequestCounts, RequestFilter};

/// Which requests a [`Faults::fail_next`] rule applies to. `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteFilter {
    /// HTTP method, e.g. `Some("PATCH")` (case-insensitive).
    pub method: Option<&'static str>,
    /// Prefix of the request path, e.g. `Some("/v0/workload-instances".into())`.
    pub route_prefix: Option<String>,
}

impl RequestFilter for RouteFilter {
    fn matches(&self, method: &str, path: &str) -> bool {
        self.method.is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .route_prefix
                .as_deref()
                .is_none_or(|p| path.starts_with(p))
    }
}

/// Fault injection. Injected errors are answered with a Threeport error envelope
/// (`Status.error` = "sandbox: injected fault") and the chosen status; the request is not
/// handled (no store change, no notification).
pub type Faults = FaultInjector<RouteFilter>;

/// Notifications the API loses on purpose, as a NATS outage at publish time would lose them
/// (the real API ignores its publish error and answers the client anyway, spec 1.5): the
/// object is written, the response is the usual one, and nothing reaches the stream.
#[derive(Debug, Default)]
pub struct NotificationDrops {
    /// `(subject, how many more to drop)`.
    rules: Mutex<Vec<(String, usize)>>,
    /// The subjects of the notifications dropped so far, in order.
    dropped: Mutex<Vec<String>>,
}

impl NotificationDrops {
    /// Drop the next `n` notifications published on `subject` (e.g. `workloadInstance.create`).
    pub fn drop_next(&self, subject: &str, n: usize) {
        lock(&self.rules).push((subject.to_string(), n));
    }

    /// Whether to drop a notification on `subject` (and count it if so).
    pub(crate) fn take(&self, subject: &str) -> bool {
        let mut rules = lock(&self.rules);
        let Some(rule) = rules.iter_mut().find(|(s, n)| s == subject && *n > 0) else {
            return false;
        };
        rule.1 -= 1;
        lock(&self.dropped).push(subject.to_string());
        true
    }

    /// The subjects of the notifications dropped so far, in order.
    pub fn dropped(&self) -> Vec<String> {
        lock(&self.dropped).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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

/// Where the server records requests; [`CounterStore::snapshot`] gives [`Counters`].
#[derive(Debug, Default)]
pub(crate) struct CounterStore(RequestCounts);

impl CounterStore {
    pub(crate) fn record(&self, method: &str, route: &str, status: u16) {
        self.0.record(method, route, status);
    }

    pub(crate) fn snapshot(&self) -> Counters {
        let (by_route, total) = self.0.snapshot();
        Counters { by_route, total }
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
