//! The object store and the verbs' semantics (create, get, list, update, patch, apply,
//! delete), independent of HTTP.

use std::collections::BTreeMap;

use rand::Rng;
use serde_json::{json, Map, Value};

use super::fields::{self, FieldSet};
use super::resources::{builtins, sort_versions, ResourceDef};
use super::selector::{FieldSelector, LabelSelector};
use super::status::KErr;

type ObjKey = (String, String);

/// Who is writing, for `metadata.managedFields`.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    pub manager: String,
    pub dry_run: bool,
}

pub(crate) struct Store {
    rv: u64,
    crds: BTreeMap<String, ResourceDef>,
    defs: Vec<ResourceDef>,
    objects: BTreeMap<(String, String), BTreeMap<ObjKey, Value>>,
    next_cluster_ip: u32,
}

pub(crate) fn now() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn uid() -> String {
    let mut b: [u8; 16] = rand::thread_rng().gen();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn random_suffix() -> String {
    // utilrand.String: consonants and digits without vowels or look-alikes.
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut r = rand::thread_rng();
    (0..5)
        .map(|_| ALPHA[r.gen_range(0..ALPHA.len())] as char)
        .collect()
}

const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

pub(crate) fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

pub(crate) fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

/// Name validation per resource: the ones the real server applies to these types.
fn validate_name(def: &ResourceDef, name: &str) -> Result<(), KErr> {
    let bad = |msg: &str| {
        Err(KErr::invalid(
            def,
            name,
            "metadata.name",
            "FieldValueInvalid",
            &format!("Invalid value: \"{name}\": {msg}"),
        ))
    };
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "namespaces") => {
            if name.len() > 63 {
                return bad("must be no more than 63 characters");
            }
            if !is_dns1123_label(name) {
                return bad(DNS1123_LABEL_MSG);
            }
        }
        ("", "services") => {
            let ok = is_dns1123_label(name) && name.starts_with(|c: char| c.is_ascii_lowercase());
            if !ok {
                return bad(DNS1035_LABEL_MSG);
            }
        }
        ("rbac.authorization.k8s.io", _) => {
            // path.ValidatePathSegmentName: `system:` names are allowed.
            if name == "." || name == ".." {
                return bad(&format!("may not be '{name}'"));
            }
            if name.contains('/') || name.contains('%') {
                return bad("may not contain '/' or '%'");
            }
        }
        _ => {
            if name.len() > 253 {
                return bad("must be no more than 253 characters");
            }
            if !is_dns1123_subdomain(name) {
                return bad(DNS1123_SUBDOMAIN_MSG);
            }
        }
    }
    Ok(())
}

fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata")?.as_object()
}

fn meta_str<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    meta(obj)?.get(key)?.as_str()
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata") {
        Some(Value::Object(m)) => m,
        _ => unreachable!("metadata was just set to an object"),
    }
}

pub(crate) fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    meta(obj)
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|l| {
            l.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// One `metadata.managedFields` entry.
#[derive(Debug, Clone)]
struct Managed {
    manager: String,
    operation: String,
    api_version: String,
    time: String,
    fields: FieldSet,
}

fn read_managed(obj: &Value) -> Vec<Managed> {
    meta(obj)
        .and_then(|m| m.get("managedFields"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| Managed {
                    manager: e["manager"].as_str().unwrap_or_default().to_string(),
                    operation: e["operation"].as_str().unwrap_or("Update").to_string(),
                    api_version: e["apiVersion"].as_str().unwrap_or_default().to_string(),
                    time: e["time"].as_str().unwrap_or_default().to_string(),
                    fields: fields::from_fields_v1(&e["fieldsV1"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn write_managed(obj: &mut Value, entries: &[Managed]) {
    let arr: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": fields::to_fields_v1(&e.fields),
            })
        })
        .collect();
    let m = meta_mut(obj);
    if arr.is_empty() {
        m.remove("managedFields");
    } else {
        m.insert("managedFields".into(), Value::Array(arr));
    }
}

/// Ownership after a non-apply write by `manager`: the fields it changed become its own and
/// are taken from everyone else; removed fields are nobody's.
fn managed_after_update(
    old_entries: &[Managed],
    old: Option<&Value>,
    new: &Value,
    manager: &str,
    api_version: &str,
    skip_status: bool,
) -> Vec<Managed> {
    let (changed, removed) = match old {
        Some(o) => fields::changed_fields(o, new, skip_status),
        None => (fields::object_fields(new, skip_status), FieldSet::new()),
    };
    let mut out: Vec<Managed> = old_entries
        .iter()
        .cloned()
        .map(|mut e| {
            e.fields.retain(|p| {
                !changed
                    .iter()
                    .chain(removed.iter())
                    .any(|c| fields::overlaps(p, c))
            });
            e
        })
        .collect();
    if changed.is_empty() {
        return out;
    }
    match out
        .iter_mut()
        .find(|e| e.manager == manager && e.operation == "Update")
    {
        Some(e) => {
            e.fields.extend(changed);
            e.time = now();
            e.api_version = api_version.to_string();
        }
        None => out.push(Managed {
            manager: manager.to_string(),
            operation: "Update".into(),
            api_version: api_version.to_string(),
            time: now(),
            fields: changed,
        }),
    }
    out
}

/// Everything but `metadata` and `status`: a change here bumps `metadata.generation`.
fn spec_part(v: &Value) -> Value {
    let mut c = v.clone();
    if let Value::Object(m) = &mut c {
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
    }
    c
}

/// The object for no-op detection: no resourceVersion, managedFields without times and in a
/// fixed order (a write that only moves ownership is still a write, as in the real server).
fn without_volatile(v: &Value) -> Value {
    let mut c = v.clone();
    if let Some(Value::Object(m)) = c.get_mut("metadata") {
        m.remove("resourceVersion");
        if let Some(Value::Array(entries)) = m.get_mut("managedFields") {
            for e in entries.iter_mut() {
                if let Value::Object(o) = e {
                    o.remove("time");
                }
            }
            entries.sort_by_key(|e| (e["manager"].to_string(), e["operation"].to_string()));
        }
    }
    c
}

/// Result of a delete.
pub(crate) enum Deleted {
    /// Answered with the object (namespaces, CRDs, pods, service accounts).
    Object(Value),
    /// Answered with a `Status` of `Success`.
    Status(Value),
}

pub(crate) struct ListResult {
    pub items: Vec<Value>,
    pub resource_version: String,
}

impl Store {
    pub(crate) fn new() -> Self {
        let mut s = Store {
            rv: 0,
            crds: BTreeMap::new(),
            defs: builtins(),
            objects: BTreeMap::new(),
            next_cluster_ip: 1,
        };
        let ns_def = s.def("", "v1", "namespaces").cloned();
        if let Some(def) = ns_def {
            for ns in ["default", "kube-node-lease", "kube-public", "kube-system"] {
                let w = Writer {
                    manager: "kube-apiserver".into(),
                    dry_run: false,
                };
                let _ = s.create(
                    &def,
                    "v1",
                    None,
                    json!({"metadata": {"name": ns}}),
                    &w,
                    None,
                );
            }
        }
        s
    }

    pub(crate) fn defs(&self) -> &[ResourceDef] {
        &self.defs
    }

    pub(crate) fn def(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceDef> {
        self.defs.iter().find(|d| {
            d.group == group && d.plural == plural && d.versions.iter().any(|v| v == version)
        })
    }

    pub(crate) fn def_by_kind(
        &self,
        group: &str,
        version: &str,
        kind: &str,
    ) -> Option<&ResourceDef> {
        self.defs
            .iter()
            .find(|d| d.group == group && d.kind == kind && d.versions.iter().any(|v| v == version))
    }

    fn next_rv(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    pub(crate) fn current_rv(&self) -> String {
        self.rv.to_string()
    }

    fn bucket(&self, def: &ResourceDef) -> Option<&BTreeMap<ObjKey, Value>> {
        self.objects.get(&(def.group.clone(), def.plural.clone()))
    }

    fn bucket_mut(&mut self, def: &ResourceDef) -> &mut BTreeMap<ObjKey, Value> {
        self.objects
            .entry((def.group.clone(), def.plural.clone()))
            .or_default()
    }

    fn namespace_exists(&self, ns: &str) -> bool {
        self.objects
            .get(&(String::new(), "namespaces".to_string()))
            .is_some_and(|b| b.contains_key(&(String::new(), ns.to_string())))
    }

    fn key(def: &ResourceDef, ns: Option<&str>, name: &str) -> ObjKey {
        (
            if def.namespaced {
                ns.unwrap_or_default().to_string()
            } else {
                String::new()
            },
            name.to_string(),
        )
    }

    /// The object as served at `version`.
    fn render(def: &ResourceDef, version: &str, obj: &Value) -> Value {
        let mut o = obj.clone();
        o["apiVersion"] = json!(def.api_version(version));
        o["kind"] = json!(def.kind);
        o
    }

    pub(crate) fn get(
        &self,
        def: &ResourceDef,
        version: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, KErr> {
        self.bucket(def)
            .and_then(|b| b.get(&Self::key(def, ns, name)))
            .map(|o| Self::render(def, version, o))
            .ok_or_else(|| KErr::not_found(def, name))
    }

    pub(crate) fn list(
        &self,
        def: &ResourceDef,
        version: &str,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields_sel: &FieldSelector,
    ) -> ListResult {
        let items = self
            .bucket(def)
            .map(|b| {
                b.iter()
                    .filter(|((ons, name), o)| {
                        ns.is_none_or(|n| !def.namespaced || n == ons)
                            && labels.matches(&labels_of(o))
                            && fields_sel.matches(name, ons)
                    })
                    .map(|(_, o)| Self::render(def, version, o))
                    .collect()
            })
            .unwrap_or_default();
        ListResult {
            items,
            resource_version: self.current_rv(),
        }
    }

    /// Check body apiVersion/kind against the path; missing ones default to the path's.
    fn check_type(def: &ResourceDef, version: &str, obj: &mut Value) -> Result<(), KErr> {
        if !obj.is_object() {
            return Err(KErr::bad_request(
                "the body of the request was not a JSON object",
            ));
        }
        let want_av = def.api_version(version);
        match obj.get("apiVersion").and_then(Value::as_str) {
            None | Some("") => obj["apiVersion"] = json!(want_av),
            Some(av) if av != want_av => {
                return Err(KErr::bad_request(format!(
                    "the API version in the data ({av}) does not match the expected API version ({want_av})"
                )))
            }
            _ => {}
        }
        match obj.get("kind").and_then(Value::as_str) {
            None | Some("") => obj["kind"] = json!(def.kind),
            Some(k) if k != def.kind => {
                return Err(KErr::bad_request(format!(
                    "the kind in the data ({k}) does not match the expected kind ({})",
                    def.kind
                )))
            }
            _ => {}
        }
        Ok(())
    }

    fn check_namespace(def: &ResourceDef, ns: Option<&str>, obj: &mut Value) -> Result<(), KErr> {
        let m = meta_mut(obj);
        if def.namespaced {
            let path_ns = ns.unwrap_or_default();
            match m.get("namespace").and_then(Value::as_str) {
                Some(n) if !n.is_empty() && n != path_ns => {
                    return Err(KErr::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ))
                }
                _ => {
                    m.insert("namespace".into(), json!(path_ns));
                }
            }
        } else {
            m.remove("namespace");
        }
        Ok(())
    }

    /// Type-specific defaults on create (what the real server's strategies set and the
    /// sandbox imitates).
    fn prepare_create(
        &mut self,
        def: &ResourceDef,
        obj: &mut Value,
        name: &str,
    ) -> Result<(), KErr> {
        if def.status {
            if let Value::Object(m) = obj {
                m.remove("status");
            }
        }
        match (def.group.as_str(), def.plural.as_str()) {
            ("", "namespaces") => {
                let m = meta_mut(obj);
                let labels = m.entry("labels").or_insert_with(|| json!({}));
                if !labels.is_object() {
                    *labels = json!({});
                }
                labels["kubernetes.io/metadata.name"] = json!(name);
                if !obj.get("spec").is_some_and(Value::is_object) {
                    obj["spec"] = json!({});
                }
                obj["spec"]["finalizers"] = json!(["kubernetes"]);
                obj["status"] = json!({"phase": "Active"});
            }
            ("", "services") => {
                if !obj.get("spec").is_some_and(Value::is_object) {
                    obj["spec"] = json!({});
                }
                let spec = &mut obj["spec"];
                if spec.get("type").is_none() {
                    spec["type"] = json!("ClusterIP");
                }
                if spec["type"] != json!("ExternalName") && spec.get("clusterIP").is_none() {
                    let n = self.next_cluster_ip;
                    self.next_cluster_ip += 1;
                    let ip = format!("10.96.{}.{}", n / 250, n % 250 + 1);
                    spec["clusterIP"] = json!(ip);
                    spec["clusterIPs"] = json!([ip]);
                }
                if spec.get("sessionAffinity").is_none() {
                    spec["sessionAffinity"] = json!("None");
                }
                obj["status"] = json!({"loadBalancer": {}});
            }
            ("apiextensions.k8s.io", "customresourcedefinitions") => {
                let rd = crd_def(obj).map_err(|(field, msg)| {
                    KErr::invalid(def, name, &field, "FieldValueInvalid", &msg)
                })?;
                let want = format!("{}.{}", rd.plural, rd.group);
                if name != want {
                    return Err(KErr::invalid(
                        def,
                        name,
                        "metadata.name",
                        "FieldValueInvalid",
                        &format!(
                            "Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"
                        ),
                    ));
                }
                obj["status"] = crd_status(obj, &rd);
            }
            _ => {}
        }
        Ok(())
    }

    pub(crate) fn create(
        &mut self,
        def: &ResourceDef,
        version: &str,
        ns: Option<&str>,
        mut obj: Value,
        w: &Writer,
        apply_fields: Option<FieldSet>,
    ) -> Result<Value, KErr> {
        Self::check_type(def, version, &mut obj)?;
        Self::check_namespace(def, ns, &mut obj)?;
        let mut name = meta_str(&obj, "name").unwrap_or_default().to_string();
        if name.is_empty() {
            match meta_str(&obj, "generateName") {
                Some(g) if !g.is_empty() => {
                    name = format!("{g}{}", random_suffix());
                    meta_mut(&mut obj).insert("name".into(), json!(name));
                }
                _ => {
                    return Err(KErr::invalid(
                        def,
                        "",
                        "metadata.name",
                        "FieldValueRequired",
                        "Required value: name or generateName is required",
                    ))
                }
            }
        }
        validate_name(def, &name)?;
        if def.namespaced {
            let n = ns.unwrap_or_default();
            if !self.namespace_exists(n) {
                return Err(KErr::namespace_not_found(n));
            }
        }
        let key = Self::key(def, ns, &name);
        if self.bucket(def).is_some_and(|b| b.contains_key(&key)) {
            return Err(KErr::already_exists(def, &name));
        }
        self.prepare_create(def, &mut obj, &name)?;
        {
            let m = meta_mut(&mut obj);
            for k in [
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
            ] {
                m.remove(k);
            }
            m.insert("uid".into(), json!(uid()));
            m.insert("creationTimestamp".into(), json!(now()));
            if def.generation {
                m.insert("generation".into(), json!(1));
            } else {
                m.remove("generation");
            }
        }
        let api_version = def.api_version(version);
        let entries = match apply_fields {
            Some(f) => vec![Managed {
                manager: w.manager.clone(),
                operation: "Apply".into(),
                api_version,
                time: now(),
                fields: f,
            }],
            None => managed_after_update(&[], None, &obj, &w.manager, &api_version, def.status),
        };
        write_managed(&mut obj, &entries);
        if w.dry_run {
            meta_mut(&mut obj).insert("resourceVersion".into(), json!(""));
            return Ok(obj);
        }
        let rv = self.next_rv();
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv));
        if def.group == "apiextensions.k8s.io" && def.plural == "customresourcedefinitions" {
            self.register_crd(&name, &obj);
        }
        self.bucket_mut(def).insert(key, obj.clone());
        Ok(Self::render(def, version, &obj))
    }

    /// Write `new` over `old`: carry system fields, keep status when it is a subresource,
    /// bump generation, skip no-op writes.
    #[allow(clippy::too_many_arguments)]
    fn commit_update(
        &mut self,
        def: &ResourceDef,
        version: &str,
        key: ObjKey,
        old: &Value,
        mut new: Value,
        managed: Option<Vec<Managed>>,
        w: &Writer,
        status_write: bool,
    ) -> Result<Value, KErr> {
        {
            let old_m = meta(old).cloned().unwrap_or_default();
            let m = meta_mut(&mut new);
            for k in [
                "uid",
                "creationTimestamp",
                "generation",
                "deletionTimestamp",
                "namespace",
            ] {
                match old_m.get(k) {
                    Some(v) => m.insert(k.to_string(), v.clone()),
                    None => m.remove(k),
                };
            }
            m.remove("selfLink");
        }
        if def.status && !status_write {
            match old.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Value::Object(o) = &mut new {
                        o.remove("status");
                    }
                }
            }
        }
        if def.group.is_empty() && def.plural == "namespaces" {
            new["spec"] = old.get("spec").cloned().unwrap_or(json!({}));
        }
        let crd = def.group == "apiextensions.k8s.io" && def.plural == "customresourcedefinitions";
        let name = key.1.clone();
        if crd && !status_write {
            let rd = crd_def(&new).map_err(|(field, msg)| {
                KErr::invalid(def, &name, &field, "FieldValueInvalid", &msg)
            })?;
            let mut status = crd_status(&new, &rd);
            keep_transition_times(&mut status, &old["status"]);
            new["status"] = status;
        }
        if def.generation && spec_part(old) != spec_part(&new) {
            let g = meta(old)
                .and_then(|m| m.get("generation"))
                .and_then(Value::as_i64)
                .unwrap_or(1);
            meta_mut(&mut new).insert("generation".into(), json!(g + 1));
        }
        let api_version = def.api_version(version);
        let entries = match managed {
            Some(e) => e,
            None => managed_after_update(
                &read_managed(old),
                Some(old),
                &new,
                &w.manager,
                &api_version,
                def.status,
            ),
        };
        write_managed(&mut new, &entries);
        meta_mut(&mut new).insert(
            "resourceVersion".into(),
            old["metadata"]["resourceVersion"].clone(),
        );
        let mut old_cmp = without_volatile(old);
        let mut new_cmp = without_volatile(&new);
        for v in [&mut old_cmp, &mut new_cmp] {
            if let Value::Object(m) = v {
                m.remove("apiVersion");
                m.remove("kind");
            }
        }
        if old_cmp == new_cmp || w.dry_run {
            // The real server does not write (nor bump resourceVersion) for a no-op update.
            let base = if old_cmp == new_cmp { old } else { &new };
            return Ok(Self::render(def, version, base));
        }
        let rv = self.next_rv();
        meta_mut(&mut new).insert("resourceVersion".into(), json!(rv));
        if crd {
            self.register_crd(&name, &new);
        }
        self.bucket_mut(def).insert(key, new.clone());
        Ok(Self::render(def, version, &new))
    }

    fn existing(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        name: &str,
    ) -> Result<(ObjKey, Value), KErr> {
        let key = Self::key(def, ns, name);
        let old = self
            .bucket(def)
            .and_then(|b| b.get(&key))
            .cloned()
            .ok_or_else(|| KErr::not_found(def, name))?;
        Ok((key, old))
    }

    fn check_rv(
        def: &ResourceDef,
        name: &str,
        old: &Value,
        given: Option<&str>,
    ) -> Result<(), KErr> {
        match given {
            Some(rv) if !rv.is_empty() && Some(rv) != meta_str(old, "resourceVersion") => {
                Err(KErr::modified(def, name))
            }
            _ => Ok(()),
        }
    }

    fn check_name(obj: &Value, name: &str) -> Result<(), KErr> {
        match meta_str(obj, "name") {
            Some(n) if n == name => Ok(()),
            Some(n) if !n.is_empty() => Err(KErr::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            ))),
            _ => Err(KErr::bad_request(format!(
                "the name of the object () does not match the name on the URL ({name})"
            ))),
        }
    }

    pub(crate) fn replace(
        &mut self,
        def: &ResourceDef,
        version: &str,
        ns: Option<&str>,
        name: &str,
        mut obj: Value,
        w: &Writer,
    ) -> Result<Value, KErr> {
        Self::check_type(def, version, &mut obj)?;
        Self::check_name(&obj, name)?;
        Self::check_namespace(def, ns, &mut obj)?;
        let (key, old) = self.existing(def, ns, name)?;
        Self::check_rv(def, name, &old, meta_str(&obj, "resourceVersion"))?;
        self.commit_update(def, version, key, &old, obj, None, w, false)
    }

    /// Write the `status` subresource: only `status` changes (set, or removed with `None`);
    /// managedFields are left as they are.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write_status(
        &mut self,
        def: &ResourceDef,
        version: &str,
        ns: Option<&str>,
        name: &str,
        status: Option<Value>,
        rv: Option<&str>,
        w: &Writer,
    ) -> Result<Value, KErr> {
        let (key, old) = self.existing(def, ns, name)?;
        Self::check_rv(def, name, &old, rv)?;
        let mut new = old.clone();
        match status {
            Some(s) => new["status"] = s,
            None => {
                if let Value::Object(m) = &mut new {
                    m.remove("status");
                }
            }
        }
        let entries = read_managed(&old);
        self.commit_update(def, version, key, &old, new, Some(entries), w, true)
    }

    /// Merge patch (`json_patch` false) or RFC 6902 JSON patch (`json_patch` true).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn patch(
        &mut self,
        def: &ResourceDef,
        version: &str,
        ns: Option<&str>,
        name: &str,
        patch: &Value,
        json_patch: bool,
        w: &Writer,
    ) -> Result<Value, KErr> {
        let (key, old) = self.existing(def, ns, name)?;
        let mut new = Self::render(def, version, &old);
        if json_patch {
            fields::json_patch(&mut new, patch).map_err(|e| {
                KErr::invalid(
                    def,
                    name,
                    "",
                    "FieldValueInvalid",
                    &format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?;
        } else {
            if !patch.is_object() {
                return Err(KErr::bad_request("merge patch must be a JSON object"));
            }
            fields::merge_patch(&mut new, patch);
        }
        Self::check_type(def, version, &mut new)?;
        Self::check_name(&new, name)?;
        Self::check_namespace(def, ns, &mut new)?;
        // A resourceVersion in the patched object is a precondition.
        let given = meta_str(&new, "resourceVersion").map(String::from);
        Self::check_rv(def, name, &old, given.as_deref())?;
        self.commit_update(def, version, key, &old, new, None, w, false)
    }

    /// Server-side apply (an approximation; see the module docs and the README).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn apply(
        &mut self,
        def: &ResourceDef,
        version: &str,
        ns: Option<&str>,
        name: &str,
        mut cfg: Value,
        force: bool,
        w: &Writer,
    ) -> Result<Value, KErr> {
        if !cfg.is_object() {
            return Err(KErr::bad_request("apply configuration must be an object"));
        }
        for k in ["apiVersion", "kind"] {
            if cfg
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .is_empty()
            {
                return Err(KErr::bad_request(format!(
                    "{k} must be set in the apply configuration"
                )));
            }
        }
        Self::check_type(def, version, &mut cfg)?;
        Self::check_name(&cfg, name)?;
        Self::check_namespace(def, ns, &mut cfg)?;
        let applied = fields::object_fields(&cfg, def.status);
        let key = Self::key(def, ns, name);
        let Some(old) = self.bucket(def).and_then(|b| b.get(&key)).cloned() else {
            return self.create(def, version, ns, cfg, w, Some(applied));
        };
        Self::check_rv(def, name, &old, meta_str(&cfg, "resourceVersion"))?;
        let api_version = def.api_version(version);
        let mut entries = read_managed(&old);
        let is_mine = |e: &Managed| e.manager == w.manager && e.operation == "Apply";
        // Conflicts: another manager owns a field this config sets to a different value.
        let mut conflicts: Vec<(String, String)> = Vec::new();
        for e in entries.iter().filter(|e| !is_mine(e)) {
            for p in &applied {
                let owned = e.fields.iter().any(|q| fields::overlaps(p, q));
                if owned && fields::get_path(&old, p) != fields::get_path(&cfg, p) {
                    conflicts.push((e.manager.clone(), fields::path_string(p)));
                }
            }
        }
        if !conflicts.is_empty() && !force {
            let n = conflicts.len();
            let list: Vec<String> = conflicts
                .iter()
                .map(|(m, p)| format!("conflict with \"{m}\": {p}"))
                .collect();
            let mut e = KErr::conflict(def, name, "");
            e.message = format!(
                "Apply failed with {n} conflict{}: {}",
                if n == 1 { "" } else { "s" },
                list.join(", ")
            );
            e.details = Some(json!({
                "name": name,
                "group": def.group,
                "kind": def.plural,
                "causes": conflicts.iter().map(|(m, p)| json!({
                    "reason": "FieldManagerConflict",
                    "message": format!("conflict with \"{m}\""),
                    "field": p,
                })).collect::<Vec<_>>(),
            }));
            return Err(e);
        }
        let previously: FieldSet = entries
            .iter()
            .filter(|e| is_mine(e))
            .flat_map(|e| e.fields.iter().cloned())
            .collect();
        // Forced conflicts move ownership to this manager.
        for e in entries.iter_mut().filter(|e| !is_mine(e)) {
            e.fields.retain(|q| {
                !applied.iter().any(|p| {
                    fields::overlaps(p, q) && fields::get_path(&old, p) != fields::get_path(&cfg, p)
                })
            });
        }
        let mut new = Self::render(def, version, &old);
        for p in previously.difference(&applied) {
            let shared = entries
                .iter()
                .filter(|e| !is_mine(e))
                .any(|e| e.fields.iter().any(|q| fields::overlaps(p, q)));
            let still_applied = applied.iter().any(|q| q.starts_with(p) || p.starts_with(q));
            if !shared && !still_applied {
                fields::remove_path(&mut new, p);
            }
        }
        let mut cfg_body = cfg.clone();
        if let Some(Value::Object(m)) = cfg_body.get_mut("metadata") {
            m.remove("resourceVersion");
            m.remove("managedFields");
        }
        fields::apply_merge(&mut new, &cfg_body);
        entries.retain(|e| !is_mine(e));
        entries.push(Managed {
            manager: w.manager.clone(),
            operation: "Apply".into(),
            api_version,
            time: now(),
            fields: applied,
        });
        self.commit_update(def, version, key, &old, new, Some(entries), w, false)
    }

    pub(crate) fn delete(
        &mut self,
        def: &ResourceDef,
        version: &str,
        ns: Option<&str>,
        name: &str,
        preconditions: &Value,
        dry_run: bool,
    ) -> Result<Deleted, KErr> {
        let (key, old) = self.existing(def, ns, name)?;
        let obj_uid = meta_str(&old, "uid").unwrap_or_default().to_string();
        if let Some(u) = preconditions.get("uid").and_then(Value::as_str) {
            if u != obj_uid {
                return Err(KErr::conflict(
                    def,
                    name,
                    &format!("Precondition failed: UID in precondition: {u}, UID in object meta: {obj_uid}"),
                ));
            }
        }
        if let Some(rv) = preconditions.get("resourceVersion").and_then(Value::as_str) {
            let cur = meta_str(&old, "resourceVersion").unwrap_or_default();
            if rv != cur {
                return Err(KErr::conflict(
                    def,
                    name,
                    &format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {cur}"),
                ));
            }
        }
        let is_ns = def.group.is_empty() && def.plural == "namespaces";
        let is_crd =
            def.group == "apiextensions.k8s.io" && def.plural == "customresourcedefinitions";
        if !dry_run {
            self.bucket_mut(def).remove(&key);
            if is_ns {
                for b in self.objects.values_mut() {
                    b.retain(|(ons, _), _| ons != name);
                }
            }
            if is_crd {
                if let Some(rd) = self.crds.remove(name) {
                    self.objects.remove(&(rd.group.clone(), rd.plural.clone()));
                    self.rebuild_defs();
                }
            }
            self.next_rv();
        }
        let returns_object = is_ns
            || is_crd
            || (def.group.is_empty() && (def.plural == "pods" || def.plural == "serviceaccounts"));
        if returns_object {
            let mut o = Self::render(def, version, &old);
            if is_ns {
                meta_mut(&mut o).insert("deletionTimestamp".into(), json!(now()));
                o["status"] = json!({"phase": "Terminating"});
            } else if is_crd {
                meta_mut(&mut o).insert("deletionTimestamp".into(), json!(now()));
            }
            Ok(Deleted::Object(o))
        } else {
            let mut details = json!({"name": name, "kind": def.plural, "uid": obj_uid});
            if !def.group.is_empty() {
                details["group"] = json!(def.group);
            }
            Ok(Deleted::Status(json!({
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": details,
            })))
        }
    }

    fn register_crd(&mut self, name: &str, obj: &Value) {
        if let Ok(rd) = crd_def(obj) {
            if let Some(old) = self.crds.get(name) {
                if old.group != rd.group || old.plural != rd.plural {
                    let k = (old.group.clone(), old.plural.clone());
                    self.objects.remove(&k);
                }
            }
            self.crds.insert(name.to_string(), rd);
            self.rebuild_defs();
        }
    }

    fn rebuild_defs(&mut self) {
        let mut defs = builtins();
        defs.extend(self.crds.values().cloned());
        self.defs = defs;
    }

    /// Live objects of a type, as stored (for the handle).
    pub(crate) fn objects_of(
        &self,
        def: &ResourceDef,
        version: &str,
        ns: Option<&str>,
    ) -> Vec<Value> {
        self.list(
            def,
            version,
            ns,
            &LabelSelector::default(),
            &FieldSelector::default(),
        )
        .items
    }
}

/// The resource a CRD object defines, or the invalid field and message.
fn crd_def(obj: &Value) -> Result<ResourceDef, (String, String)> {
    let spec = &obj["spec"];
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let group = s(&spec["group"]);
    if group.is_empty() {
        return Err(("spec.group".into(), "Required value".into()));
    }
    let names = &spec["names"];
    let plural = s(&names["plural"]);
    let kind = s(&names["kind"]);
    if plural.is_empty() {
        return Err(("spec.names.plural".into(), "Required value".into()));
    }
    if kind.is_empty() {
        return Err(("spec.names.kind".into(), "Required value".into()));
    }
    let scope = s(&spec["scope"]);
    if scope != "Namespaced" && scope != "Cluster" {
        return Err((
            "spec.scope".into(),
            format!(
                "Unsupported value: \"{scope}\": supported values: \"Cluster\", \"Namespaced\""
            ),
        ));
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        return Err((
            "spec.versions".into(),
            "Invalid value: must have exactly one version marked as storage version".into(),
        ));
    }
    if versions
        .iter()
        .filter(|v| v["storage"] == json!(true))
        .count()
        != 1
    {
        return Err((
            "spec.versions".into(),
            "Invalid value: must have exactly one version marked as storage version".into(),
        ));
    }
    let mut served: Vec<String> = versions
        .iter()
        .filter(|v| v["served"] == json!(true))
        .map(|v| s(&v["name"]))
        .collect();
    sort_versions(&mut served);
    let status = versions
        .iter()
        .any(|v| v["subresources"]["status"].is_object());
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let singular = match s(&names["singular"]) {
        x if x.is_empty() => kind.to_lowercase(),
        x => x,
    };
    let list_kind = match s(&names["listKind"]) {
        x if x.is_empty() => format!("{kind}List"),
        x => x,
    };
    Ok(ResourceDef {
        group,
        versions: served,
        plural,
        singular,
        kind,
        list_kind,
        namespaced: scope == "Namespaced",
        short_names: strs(&names["shortNames"]),
        categories: strs(&names["categories"]),
        generation: true,
        status,
        custom: true,
    })
}

/// A condition whose status did not change keeps its `lastTransitionTime`, as in the real
/// API server (so re-applying an unchanged CRD is a no-op that keeps its resourceVersion).
fn keep_transition_times(status: &mut Value, old_status: &Value) {
    let Some(conditions) = status["conditions"].as_array_mut() else {
        return;
    };
    for c in conditions {
        let before = old_status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|o| o["type"] == c["type"] && o["status"] == c["status"]);
        if let Some(before) = before {
            c["lastTransitionTime"] = before["lastTransitionTime"].clone();
        }
    }
}

fn crd_status(obj: &Value, rd: &ResourceDef) -> Value {
    let t = now();
    let storage: Vec<Value> = obj["spec"]["versions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|v| v["storage"] == json!(true))
                .map(|v| v["name"].clone())
                .collect()
        })
        .unwrap_or_default();
    let mut names = obj["spec"]["names"].clone();
    names["singular"] = json!(rd.singular);
    names["listKind"] = json!(rd.list_kind);
    json!({
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": t, "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": t, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}
        ],
        "acceptedNames": names,
        "storedVersions": storage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_keeps_co_owned_fields_and_drops_the_rest() {
        let mut st = Store::new();
        let def = st.def("", "v1", "configmaps").cloned().unwrap();
        let w = |m: &str| Writer {
            manager: m.into(),
            dry_run: false,
        };
        let cfg = |data: Value| {
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "c", "namespace": "default"}, "data": data})
        };
        let ns = Some("default");
        st.apply(
            &def,
            "v1",
            ns,
            "c",
            cfg(json!({"a": "1", "b": "2"})),
            false,
            &w("m1"),
        )
        .unwrap();
        // Same value: shared ownership, no conflict even without force.
        st.apply(&def, "v1", ns, "c", cfg(json!({"a": "1"})), false, &w("m2"))
            .unwrap();
        // Different value owned by m1: conflict without force.
        let e = st
            .apply(&def, "v1", ns, "c", cfg(json!({"b": "3"})), false, &w("m2"))
            .unwrap_err();
        assert_eq!(e.code, 409);
        let mut only_labels = cfg(json!(null));
        only_labels.as_object_mut().unwrap().remove("data");
        only_labels["metadata"]["labels"] = json!({"x": "y"});
        let out = st
            .apply(&def, "v1", ns, "c", only_labels, false, &w("m1"))
            .unwrap();
        assert_eq!(out["data"], json!({"a": "1"}), "{out}");
        assert_eq!(out["metadata"]["labels"], json!({"x": "y"}));
        let managers: Vec<&str> = out["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["manager"].as_str().unwrap())
            .collect();
        assert_eq!(managers, ["m2", "m1"]);
    }

    #[test]
    fn names() {
        assert!(is_dns1123_subdomain("a.b-c.d"));
        assert!(!is_dns1123_subdomain("A"));
        assert!(!is_dns1123_subdomain("a..b"));
        assert!(!is_dns1123_label("a.b"));
        assert!(!is_dns1123_label("-a"));
        assert_eq!(uid().len(), 36);
    }
}
