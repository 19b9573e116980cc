//! JSON merge patch (RFC 7386) and the field ownership used for server-side apply.
//!
//! Ownership is tracked per field manager as a set of *leaf paths* (map keys from the object
//! root down to a non-map value or an empty map). Lists are atomic: a list is one leaf, as an
//! `x-kubernetes-list-type: atomic` list is in real server-side apply. Sets are rendered as
//! `FieldsV1` (`{"f:spec":{"f:replicas":{}}}`), which is exactly the real format for maps and
//! atomic lists; the real server tracks list items of associative lists (`k:{"name":..}`) that
//! this approximation does not.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

pub(crate) type Path = Vec<String>;
pub(crate) type FieldSet = BTreeSet<Path>;

/// RFC 7386 JSON merge patch.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    if let Value::Object(p) = patch {
        if !target.is_object() {
            *target = Value::Object(Map::new());
        }
        if let Value::Object(t) = target {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
    } else {
        *target = patch.clone();
    }
}

/// Deep merge for apply: maps merge key by key, anything else (lists included) replaces;
/// `null` removes the key.
pub(crate) fn apply_merge(target: &mut Value, cfg: &Value) {
    match (target, cfg) {
        (Value::Object(t), Value::Object(c)) => {
            for (k, v) in c {
                if v.is_null() {
                    t.remove(k);
                } else if let (Some(tv @ Value::Object(_)), Value::Object(_)) = (t.get_mut(k), v) {
                    apply_merge(tv, v);
                } else {
                    t.insert(k.clone(), v.clone());
                }
            }
        }
        (t, c) => *t = c.clone(),
    }
}

/// Metadata fields that are the server's, never owned by a manager.
const SYSTEM_METADATA: [&str; 10] = [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// The leaf paths of an object's user fields (not `apiVersion`, `kind`, system metadata, or
/// `status` when `skip_status`).
pub(crate) fn object_fields(obj: &Value, skip_status: bool) -> FieldSet {
    let mut out = FieldSet::new();
    if let Value::Object(m) = obj {
        for (k, v) in m {
            match k.as_str() {
                "apiVersion" | "kind" => {}
                "status" if skip_status => {}
                "metadata" => {
                    if let Value::Object(md) = v {
                        for (mk, mv) in md {
                            if !SYSTEM_METADATA.contains(&mk.as_str()) {
                                leaves(mv, vec!["metadata".into(), mk.clone()], &mut out);
                            }
                        }
                    }
                }
                _ => leaves(v, vec![k.clone()], &mut out),
            }
        }
    }
    out
}

fn leaves(v: &Value, path: Path, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, c) in m {
                let mut p = path.clone();
                p.push(k.clone());
                leaves(c, p, out);
            }
        }
        _ => {
            out.insert(path);
        }
    }
}

pub(crate) fn get_path<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = v;
    for k in path {
        cur = cur.as_object()?.get(k)?;
    }
    Some(cur)
}

/// Remove the value at `path`, then remove maps left empty by the removal.
pub(crate) fn remove_path(v: &mut Value, path: &[String]) {
    fn rec(v: &mut Value, path: &[String]) -> bool {
        let Some((first, rest)) = path.split_first() else {
            return false;
        };
        let Value::Object(m) = v else { return false };
        if rest.is_empty() {
            m.remove(first);
        } else if let Some(child) = m.get_mut(first) {
            if rec(child, rest) {
                m.remove(first);
            }
        }
        m.is_empty()
    }
    rec(v, path);
}

pub(crate) fn overlaps(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Leaf paths whose value differs between `old` and `new` (added, changed or removed).
pub(crate) fn changed_fields(old: &Value, new: &Value, skip_status: bool) -> (FieldSet, FieldSet) {
    let old_f = object_fields(old, skip_status);
    let new_f = object_fields(new, skip_status);
    let changed = new_f
        .iter()
        .filter(|p| get_path(old, p) != get_path(new, p))
        .cloned()
        .collect();
    let removed = old_f
        .iter()
        .filter(|p| get_path(new, p).is_none())
        .cloned()
        .collect();
    (changed, removed)
}

/// Render a set as FieldsV1.
pub(crate) fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for p in set {
        let mut cur = &mut root;
        for k in p {
            let e = cur
                .entry(format!("f:{k}"))
                .or_insert_with(|| Value::Object(Map::new()));
            if !e.is_object() {
                *e = Value::Object(Map::new());
            }
            let Value::Object(next) = e else { break };
            cur = next;
        }
    }
    Value::Object(root)
}

/// Parse FieldsV1 back into leaf paths. Keys other than `f:` (`k:`, `v:`, `i:`, `.`), which
/// the sandbox never writes, make their parent a leaf.
pub(crate) fn from_fields_v1(v: &Value) -> FieldSet {
    fn rec(v: &Value, path: &mut Path, out: &mut FieldSet) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, c) in m {
                    match k.strip_prefix("f:") {
                        Some(name) => {
                            path.push(name.to_string());
                            rec(c, path, out);
                            path.pop();
                        }
                        None => {
                            if !path.is_empty() {
                                out.insert(path.clone());
                            }
                        }
                    }
                }
            }
            _ => {
                if !path.is_empty() {
                    out.insert(path.clone());
                }
            }
        }
    }
    let mut out = FieldSet::new();
    rec(v, &mut Vec::new(), &mut out);
    out
}

pub(crate) fn path_string(p: &[String]) -> String {
    p.iter().map(|k| format!(".{k}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_rfc7386_examples() {
        let mut t = json!({"a":"b","c":{"d":"e","f":"g"}});
        merge_patch(&mut t, &json!({"a":"z","c":{"f":null}}));
        assert_eq!(t, json!({"a":"z","c":{"d":"e"}}));
        let mut t = json!({"a":[{"b":"c"}]});
        merge_patch(&mut t, &json!({"a":[1]}));
        assert_eq!(t, json!({"a":[1]}));
        let mut t = json!(["a"]);
        merge_patch(&mut t, &json!({"a":"c"}));
        assert_eq!(t, json!({"a":"c"}));
    }

    #[test]
    fn fields_round_trip() {
        let obj = json!({"apiVersion":"v1","kind":"ConfigMap",
            "metadata":{"name":"x","labels":{"a":"1"},"uid":"u"},
            "data":{"k":"v","e":{}},"list":[1,2]});
        let f = object_fields(&obj, true);
        let want: FieldSet = [
            vec!["metadata", "labels", "a"],
            vec!["data", "k"],
            vec!["data", "e"],
            vec!["list"],
        ]
        .iter()
        .map(|p| p.iter().map(|s| s.to_string()).collect())
        .collect();
        assert_eq!(f, want);
        let v1 = to_fields_v1(&f);
        assert_eq!(v1["f:metadata"]["f:labels"]["f:a"], json!({}));
        assert_eq!(from_fields_v1(&v1), f);
    }

    #[test]
    fn remove_prunes_empty_maps() {
        let mut v = json!({"metadata":{"labels":{"a":"1"}},"spec":{"x":1}});
        remove_path(&mut v, &["metadata".into(), "labels".into(), "a".into()]);
        assert_eq!(v, json!({"spec":{"x":1}}));
    }
}
