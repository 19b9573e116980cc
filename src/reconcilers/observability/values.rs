//! Helm values documents of the observability controller: Threeport's defaults (data files in
//! `data/observability/threeport-v0.6.1/`) and the merge that layers a user's document over
//! them, as Threeport's `MergeHelmValuesString` does.
//!
//! The merge (helm's own rule for several values files): maps merge key by key, recursively;
//! any other value of the override (a list, a scalar, `null`) replaces the base's. When either
//! side is empty the other is returned as it is, comments and all (Threeport does the same).
//! Otherwise the result is a new YAML document with keys in sorted order (Threeport's output
//! is sorted too); unlike Threeport's, numbers keep their type (Go's goes through JSON, so
//! `12345678901234567890` becomes `1.2345678901234567e+19`).

use serde_yaml_ng::{Mapping, Value};

/// Grafana's values under every dashboard definition's own.
pub const GRAFANA: &str =
    include_str!("../../../data/observability/threeport-v0.6.1/grafana-values.yaml");
/// Added to a stack instance's Grafana values when its metrics are enabled.
pub const GRAFANA_SERVICE_MONITOR: &str = include_str!(
    "../../../data/observability/threeport-v0.6.1/grafana-service-monitor-values.yaml"
);
/// kube-prometheus-stack's values under every metrics definition's own.
pub const KUBE_PROMETHEUS_STACK: &str =
    include_str!("../../../data/observability/threeport-v0.6.1/kube-prometheus-stack-values.yaml");
/// Loki's values under every logging definition's own.
pub const LOKI: &str =
    include_str!("../../../data/observability/threeport-v0.6.1/loki-values.yaml");
/// Promtail has none.
pub const PROMTAIL: &str = "";

/// `over` merged over `base` (see the module doc); an error names the document that is not a
/// YAML map.
pub fn merge(base: &str, over: &str) -> Result<String, String> {
    if base.trim().is_empty() {
        return Ok(over.to_string());
    }
    if over.trim().is_empty() {
        return Ok(base.to_string());
    }
    let base_value = parse(base, "the base values")?;
    let over_value = parse(over, "the values given")?;
    let merged = sorted(merge_values(base_value, over_value));
    serde_yaml_ng::to_string(&merged).map_err(|e| format!("merged values: {e}"))
}

/// [`merge`] with optional documents (absent is empty).
pub fn merge_opt(base: Option<&str>, over: Option<&str>) -> Result<String, String> {
    merge(base.unwrap_or_default(), over.unwrap_or_default())
}

fn parse(doc: &str, what: &str) -> Result<Value, String> {
    match serde_yaml_ng::from_str::<Value>(doc) {
        Ok(Value::Null) => Ok(Value::Mapping(Mapping::new())),
        Ok(v @ Value::Mapping(_)) => Ok(v),
        Ok(_) => Err(format!("{what} are not a YAML map of values")),
        Err(e) => Err(format!("{what} are not YAML: {e}")),
    }
}

fn merge_values(base: Value, over: Value) -> Value {
    match (base, over) {
        (Value::Mapping(mut base), Value::Mapping(over)) => {
            for (key, value) in over {
                let merged = match base.remove(&key) {
                    Some(old) => merge_values(old, value),
                    None => value,
                };
                base.insert(key, merged);
            }
            Value::Mapping(base)
        }
        (_, over) => over,
    }
}

/// Maps with their keys in order, at every depth.
fn sorted(value: Value) -> Value {
    match value {
        Value::Mapping(map) => {
            let mut entries: Vec<(Value, Value)> = map.into_iter().collect();
            entries.sort_by_key(|(key, _)| key_text(key));
            Value::Mapping(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Sequence(items) => Value::Sequence(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        other => serde_yaml_ng::to_string(other).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(doc: &str) -> Value {
        serde_yaml_ng::from_str(doc).expect("YAML")
    }

    #[test]
    fn an_empty_side_returns_the_other_as_it_is() {
        assert_eq!(merge(GRAFANA, "").unwrap(), GRAFANA);
        assert_eq!(merge("", "a: 1 # mine\n").unwrap(), "a: 1 # mine\n");
        assert_eq!(merge_opt(None, None).unwrap(), "");
    }

    #[test]
    fn maps_merge_recursively_and_everything_else_is_replaced() {
        let merged = merge(
            "a:\n  b: 1\n  c: [1, 2]\n  d: keep\nz: 9\n",
            "a:\n  b: 2\n  c: [3]\n  e: new\nz: null\n",
        )
        .unwrap();
        assert_eq!(
            yaml(&merged),
            yaml("a:\n  b: 2\n  c: [3]\n  d: keep\n  e: new\nz: null\n")
        );
        // Sorted keys at every depth, as Threeport writes them.
        assert_eq!(
            merged,
            "a:\n  b: 2\n  c:\n  - 3\n  d: keep\n  e: new\nz: null\n"
        );
    }

    #[test]
    fn numbers_keep_their_type() {
        let merged = merge("big: 12345678901234567890\nx: 1\n", "x: 1.50\n").unwrap();
        assert_eq!(yaml(&merged)["big"], yaml("12345678901234567890"));
        assert_eq!(yaml(&merged)["x"], yaml("1.5"));
    }

    #[test]
    fn the_defaults_parse_and_a_user_value_wins() {
        for doc in [
            GRAFANA,
            GRAFANA_SERVICE_MONITOR,
            KUBE_PROMETHEUS_STACK,
            LOKI,
        ] {
            assert!(matches!(yaml(doc), Value::Mapping(_)));
        }
        let merged = merge(
            GRAFANA,
            "adminPassword: secret\npersistence:\n  size: 5Gi\n",
        )
        .unwrap();
        let v = yaml(&merged);
        assert_eq!(v["adminPassword"], yaml("secret"));
        assert_eq!(v["persistence"], yaml("enabled: true\nsize: 5Gi"));
        assert_eq!(
            v["sidecar"]["dashboards"]["label"],
            yaml("grafana_dashboard")
        );
        let loki = yaml(&merge(LOKI, "singleBinary:\n  replicas: 3\n").unwrap());
        assert_eq!(loki["singleBinary"]["replicas"], yaml("3"));
        assert_eq!(
            loki["extraObjects"][0]["metadata"]["namespace"],
            yaml("'{{ $.Release.Namespace }}'")
        );
    }

    #[test]
    fn a_document_that_is_not_a_map_is_an_error_naming_it() {
        assert_eq!(
            merge(GRAFANA, "- a\n- b\n").unwrap_err(),
            "the values given are not a YAML map of values"
        );
        assert!(merge(GRAFANA, "a: [\n")
            .unwrap_err()
            .starts_with("the values given are not YAML"));
    }
}
