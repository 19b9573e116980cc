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

fn pointer_tokens(ptr: &str) -> Result<Vec<String>, String> {
    if ptr.is_empty() {
        return Ok(Vec::new());
    }
    let rest = ptr
        .strip_prefix('/')
        .ok_or_else(|| format!("invalid JSON pointer {ptr:?}"))?;
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn parent_mut<'a>(doc: &'a mut Value, toks: &[String]) -> Result<&'a mut Value, String> {
    let mut cur = doc;
    for t in toks {
        cur = match cur {
            Value::Object(m) => m
                .get_mut(t)
                .ok_or_else(|| format!("missing path element {t:?}"))?,
            Value::Array(a) => {
                let i: usize = t
                    .parse()
                    .map_err(|_| format!("invalid array index {t:?}"))?;
                a.get_mut(i)
                    .ok_or_else(|| format!("array index {i} out of range"))?
            }
            _ => return Err(format!("cannot descend into a scalar at {t:?}")),
        };
    }
    Ok(cur)
}

fn json_add(doc: &mut Value, ptr: &str, v: Value) -> Result<(), String> {
    let toks = pointer_tokens(ptr)?;
    let Some((last, parent)) = toks.split_last() else {
        *doc = v;
        return Ok(());
    };
    match parent_mut(doc, parent)? {
        Value::Object(m) => {
            m.insert(last.clone(), v);
        }
        Value::Array(a) => {
            let i = if last == "-" {
                a.len()
            } else {
                last.parse::<usize>()
                    .map_err(|_| format!("invalid array index {last:?}"))?
            };
            if i > a.len() {
                return Err(format!("array index {i} out of range"));
            }
            a.insert(i, v);
        }
        _ => return Err(format!("cannot add to a scalar at {ptr:?}")),
    }
    Ok(())
}

fn json_remove(doc: &mut Value, ptr: &str) -> Result<Value, String> {
    let toks = pointer_tokens(ptr)?;
    let Some((last, parent)) = toks.split_last() else {
        return Err("cannot remove the whole document".into());
    };
    match parent_mut(doc, parent)? {
        Value::Object(m) => m
            .remove(last)
            .ok_or_else(|| format!("unable to remove nonexistent key: {last}")),
        Value::Array(a) => {
            let i: usize = last
                .parse()
                .map_err(|_| format!("invalid array index {last:?}"))?;
            if i >= a.len() {
                return Err(format!("array index {i} out of range"));
            }
            Ok(a.remove(i))
        }
        _ => Err(format!("cannot remove from a scalar at {ptr:?}")),
    }
}

/// RFC 6902 JSON patch (add, remove, replace, move, copy, test).
pub(crate) fn json_patch(doc: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops.as_array().ok_or("a JSON patch must be an array")?;
    for op in ops {
        let path = op["path"].as_str().ok_or("missing path")?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| "missing value".to_string())
        };
        match op["op"].as_str().unwrap_or_default() {
            "add" => json_add(doc, path, value()?)?,
            "remove" => {
                json_remove(doc, path)?;
            }
            "replace" => {
                json_remove(doc, path)?;
                json_add(doc, path, value()?)?;
            }
            "move" => {
                let from = op["from"].as_str().ok_or("missing from")?;
                let v = json_remove(doc, from)?;
                json_add(doc, path, v)?;
            }
            "copy" => {
                let from = op["from"].as_str().ok_or("missing from")?;
                let v = doc
                    .pointer(from)
                    .cloned()
                    .ok_or_else(|| format!("missing path {from:?}"))?;
                json_add(doc, path, v)?;
            }
            "test" => {
                if doc.pointer(path) != Some(&value()?) {
                    return Err(format!("testing value {path} failed"));
                }
            }
            other => return Err(format!("unexpected kind: {other}")),
        }
    }
    Ok(())
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
    fn json_patch_ops() {
        let mut d = json!({"metadata":{"labels":{"a":"1","b/c":"2"}},"list":[1,2,3]});
        json_patch(
            &mut d,
            &json!([
                {"op":"remove","path":"/metadata/labels/b~1c"},
                {"op":"add","path":"/metadata/labels/x","value":"y"},
                {"op":"replace","path":"/list/0","value":9},
                {"op":"add","path":"/list/-","value":4},
                {"op":"test","path":"/list/1","value":2},
                {"op":"copy","from":"/list","path":"/copy"},
                {"op":"move","from":"/copy","path":"/moved"}
            ]),
        )
        .unwrap();
        assert_eq!(
            d,
            json!({"metadata":{"labels":{"a":"1","x":"y"}},"list":[9,2,3,4],"moved":[9,2,3,4]})
        );
        assert!(json_patch(&mut d, &json!([{"op":"test","path":"/list/0","value":1}])).is_err());
        assert!(json_patch(&mut d, &json!([{"op":"remove","path":"/nope"}])).is_err());
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
