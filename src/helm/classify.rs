//! How a failed helm command is retried, from what it printed.
//!
//! Network and API-server trouble is transient (it goes away by itself); a chart, version or
//! repository that does not exist and values or templates that do not parse are permanent
//! (retrying cannot help until someone changes the definition or instance). The messages are
//! helm v3's (checked against v3.22 in `tests/helm_cli.rs`). Network words are looked for
//! first: helm wraps a refused connection in "is not a valid chart repository or cannot be
//! reached", which without them would read as a bad repository. Anything not recognised is
//! transient, so an unknown failure is retried with backoff rather than given up on.

use crate::retry::RetryClass;

/// Transient: the network, the API server, timeouts.
const TRANSIENT: &[&str] = &[
    "connection refused",
    "connection reset",
    "i/o timeout",
    "timeout",
    "deadline exceeded",
    "tls handshake",
    "no such host",
    "eof",
    "kubernetes cluster unreachable",
    "the server is currently unable",
    "too many requests",
    "internal error",
    "service unavailable",
    "bad gateway",
    "another operation (install/upgrade/rollback) is in progress",
];

/// Permanent: what only a change of the definition or instance can fix.
const PERMANENT: &[&str] = &[
    "not found in",
    "no chart version found",
    "no chart name found",
    "is not a valid chart repository",
    "error converting yaml to json",
    "yaml: ",
    "parse error",
    "execution error at",
    // The release name (`<instance>-release`) is longer than helm allows (53 characters).
    "exceeds max length",
    "invalid release name",
    // The API server rejected an object of the chart (`<kind> "<name>" is invalid: ...`).
    " is invalid: ",
    // The runtime's credentials may not do what the chart needs (RBAC).
    "forbidden",
    // An object of the chart belongs to another release or to no release.
    "cannot be imported into the current release",
    "values don't meet the specifications",
    "chart requires kubeversion",
    "invalid reference format",
];

/// Permanent when both appear: `repo <name> not found`, `path "<dir>" not found`.
const PERMANENT_PAIRS: &[(&str, &str)] = &[("repo ", " not found"), ("path \"", "\" not found")];

/// The retry class of a helm failure that printed `stderr`.
pub fn classify(stderr: &str) -> RetryClass {
    let text = stderr.to_lowercase();
    if TRANSIENT.iter().any(|p| contains_phrase(&text, p)) {
        RetryClass::Transient
    } else if PERMANENT.iter().any(|p| text.contains(p))
        || PERMANENT_PAIRS
            .iter()
            .any(|(a, b)| text.contains(a) && text.contains(b))
    {
        RetryClass::Permanent
    } else {
        RetryClass::Transient
    }
}

/// Whether `phrase` occurs in `text` as words: not inside a longer word, so `timeout` is not
/// found in a template error about `timeoutSeconds` and `eof` not in `whereof`.
fn contains_phrase(text: &str, phrase: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(phrase).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + phrase.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helms_own_messages_are_classified() {
        for (stderr, class) in [
            ("Error: repo nosuchrepo not found", RetryClass::Permanent),
            ("Error: path \"/tmp/nonexistent-chart\" not found", RetryClass::Permanent),
            (
                "Error: INSTALLATION FAILED: chart \"nginx\" version \"9.9.9\" not found in 12-repo repository",
                RetryClass::Permanent,
            ),
            (
                "Error: failed to parse /tmp/values.yaml: error converting YAML to JSON: yaml: line 1: did not find expected node content",
                RetryClass::Permanent,
            ),
            (
                "Error: INSTALLATION FAILED: execution error at (web/templates/x.yaml:3:4): required value",
                RetryClass::Permanent,
            ),
            (
                "Error: Kubernetes cluster unreachable: Get \"https://127.0.0.1:1/version\": dial tcp 127.0.0.1:1: connect: connection refused",
                RetryClass::Transient,
            ),
            (
                "Error: looks like \"http://127.0.0.1:1/charts\" is not a valid chart repository or cannot be reached: Get \"http://127.0.0.1:1/charts/index.yaml\": dial tcp 127.0.0.1:1: connect: connection refused",
                RetryClass::Transient,
            ),
            (
                "Error: looks like \"http://127.0.0.1:8000/charts\" is not a valid chart repository or cannot be reached: failed to fetch http://127.0.0.1:8000/charts/index.yaml : 404 Not Found",
                RetryClass::Permanent,
            ),
            (
                "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress",
                RetryClass::Transient,
            ),
            ("Error: something helm has never said", RetryClass::Transient),
            (
                "Error: INSTALLATION FAILED: release name \"a-very-long-observability-stack-observability-dashboard-grafana-release\": invalid release name, must match regex ^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$ and the length must not be longer than 53",
                RetryClass::Permanent,
            ),
            (
                "Error: INSTALLATION FAILED: Deployment.apps \"web\" is invalid: spec.template.spec.containers[0].readinessProbe.timeoutSeconds: Invalid value: -1",
                RetryClass::Permanent,
            ),
            (
                "Error: INSTALLATION FAILED: configmaps is forbidden: User \"runtime\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"web\"",
                RetryClass::Permanent,
            ),
            (
                "Error: INSTALLATION FAILED: rendered manifests contain a resource that already exists. Unable to continue with install: ConfigMap \"c\" in namespace \"web\" exists and cannot be imported into the current release",
                RetryClass::Permanent,
            ),
            ("Error: unexpected EOF", RetryClass::Transient),
        ] {
            assert_eq!(classify(stderr), class, "{stderr}");
        }
    }
}
