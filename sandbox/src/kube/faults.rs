//! Fault injection and request counters for the Kubernetes sandbox, changeable while it runs.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;

/// Which requests a [`KubeFaults::fail_next`] rule applies to. `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeRouteFilter {
    /// Kubernetes verb: `"create"`, `"get"`, `"list"`, `"update"`, `"patch"`, `"delete"`,
    /// `"deletecollection"`, `"watch"` or `"discovery"`.
    pub verb: Option<&'static str>,
    /// Resource plural, e.g. `Some("deployments".into())` (for discovery: the path).
    pub resource: Option<String>,
}

impl KubeRouteFilter {
    fn matches(&self, verb: &str, resource: &str) -> bool {
        self.verb.is_none_or(|v| v == verb)
            && self.resource.as_deref().is_none_or(|r| r == resource)
    }
}

#[derive(Debug, Default)]
struct FaultState {
    error_rate: Option<(f64, u16)>,
    latency: Duration,
    fail_next: Vec<(usize, u16, KubeRouteFilter)>,
}

/// Fault injection. An injected error is answered with a Kubernetes `Status` (message
/// `sandbox: injected fault`, reason derived from the status code) before the request is
/// handled, so it has no side effect. Authentication is checked first: unauthenticated
/// requests are never faulted.
#[derive(Debug, Default)]
pub struct KubeFaults {
    state: Mutex<FaultState>,
}

impl KubeFaults {
    fn with<R>(&self, f: impl FnOnce(&mut FaultState) -> R) -> R {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    /// Fail each request with probability `p` (0.0..=1.0) with `status`. `p <= 0` disables.
    pub fn set_error_rate(&self, p: f64, status: u16) {
        self.with(|s| s.error_rate = (p > 0.0).then_some((p.min(1.0), status)));
    }

    /// Delay every authenticated request by `d` before it is handled.
    pub fn set_latency(&self, d: Duration) {
        self.with(|s| s.latency = d);
    }

    /// Fail the next `n` requests matching `filter` with `status`, in the order rules were added.
    pub fn fail_next(&self, n: usize, status: u16, filter: KubeRouteFilter) {
        if n > 0 {
            self.with(|s| s.fail_next.push((n, status, filter)));
        }
    }

    /// Remove every fault.
    pub fn clear(&self) {
        self.with(|s| *s = FaultState::default());
    }

    pub(crate) fn latency(&self) -> Duration {
        self.with(|s| s.latency)
    }

    pub(crate) fn decide(&self, verb: &str, resource: &str) -> Option<u16> {
        self.with(|s| {
            if let Some(i) = s
                .fail_next
                .iter()
                .position(|(_, _, f)| f.matches(verb, resource))
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

/// A snapshot of request counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeCounters {
    /// `(verb, resource, status) -> n`. Discovery requests use verb `"discovery"` and the
    /// request path as resource (e.g. `"/apis/apps/v1"`); unauthenticated requests use verb
    /// `"unauthenticated"` and the path; unknown paths verb `"unknown"` and the path.
    pub by_request: BTreeMap<(String, String, u16), u64>,
    /// All requests answered.
    pub total: u64,
}

impl KubeCounters {
    /// Requests with this verb and resource, any status.
    pub fn get(&self, verb: &str, resource: &str) -> u64 {
        self.by_request
            .iter()
            .filter(|((v, r, _), _)| v == verb && r == resource)
            .map(|(_, n)| n)
            .sum()
    }

    /// Requests with this verb, resource and status.
    pub fn get_status(&self, verb: &str, resource: &str, status: u16) -> u64 {
        self.by_request
            .get(&(verb.to_string(), resource.to_string(), status))
            .copied()
            .unwrap_or(0)
    }

    /// Requests with this verb, any resource and status.
    pub fn verb_total(&self, verb: &str) -> u64 {
        self.by_request
            .iter()
            .filter(|((v, _, _), _)| v == verb)
            .map(|(_, n)| n)
            .sum()
    }

    /// All discovery requests (`/version`, `/api`, `/apis`, `/api/v1`, `/apis/<g>[/<v>]`).
    pub fn discovery_total(&self) -> u64 {
        self.verb_total("discovery")
    }
}

#[derive(Debug, Default)]
pub(crate) struct CounterStore {
    inner: Mutex<KubeCounters>,
}

impl CounterStore {
    pub(crate) fn record(&self, verb: &str, resource: &str, status: u16) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *g.by_request
            .entry((verb.to_string(), resource.to_string(), status))
            .or_insert(0) += 1;
        g.total += 1;
    }

    pub(crate) fn snapshot(&self) -> KubeCounters {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_next_matches_verb_and_resource() {
        let f = KubeFaults::default();
        f.fail_next(
            1,
            503,
            KubeRouteFilter {
                verb: Some("create"),
                resource: Some("deployments".into()),
            },
        );
        assert_eq!(f.decide("get", "deployments"), None);
        assert_eq!(f.decide("create", "configmaps"), None);
        assert_eq!(f.decide("create", "deployments"), Some(503));
        assert_eq!(f.decide("create", "deployments"), None);
        f.set_error_rate(1.0, 500);
        assert_eq!(f.decide("get", "x"), Some(500));
        f.clear();
        assert_eq!(f.decide("get", "x"), None);
    }
}
