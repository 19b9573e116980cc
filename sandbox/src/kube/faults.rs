//! Fault injection and request counters for the Kubernetes sandbox, changeable while it runs.

use std::collections::BTreeMap;

use crate::faults::{FaultInjector, RequestCounts, RequestFilter};

/// Which requests a [`KubeFaults::fail_next`] rule applies to. `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeRouteFilter {
    /// Kubernetes verb: `"create"`, `"get"`, `"list"`, `"update"`, `"patch"`, `"delete"`,
    /// `"deletecollection"`, `"watch"` or `"discovery"`.
    pub verb: Option<&'static str>,
    /// Resource plural, e.g. `Some("deployments".into())` (for discovery: the path).
    pub resource: Option<String>,
}

impl RequestFilter for KubeRouteFilter {
    fn matches(&self, verb: &str, resource: &str) -> bool {
        self.verb.is_none_or(|v| v == verb)
            && self.resource.as_deref().is_none_or(|r| r == resource)
    }
}

/// Fault injection. An injected error is answered with a Kubernetes `Status` (message
/// `sandbox: injected fault`, reason derived from the status code) before the request is
/// handled, so it has no side effect. Authentication is checked first: unauthenticated
/// requests are never faulted.
pub type KubeFaults = FaultInjector<KubeRouteFilter>;

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

/// Where the server records requests; [`CounterStore::snapshot`] gives [`KubeCounters`].
#[derive(Debug, Default)]
pub(crate) struct CounterStore(RequestCounts);

impl CounterStore {
    pub(crate) fn record(&self, verb: &str, resource: &str, status: u16) {
        self.0.record(verb, resource, status);
    }

    pub(crate) fn snapshot(&self) -> KubeCounters {
        let (by_request, total) = self.0.snapshot();
        KubeCounters { by_request, total }
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
