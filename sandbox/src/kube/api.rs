//! HTTP: authentication, fault injection, counters, path parsing and the verbs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::{json, Value};

use super::faults::{CounterStore, KubeFaults};
use super::resources::{self, ResourceDef};
use super::selector::{FieldSelector, LabelSelector};
use super::status::KErr;
use super::store::{Deleted, Store, Writer};

pub(crate) struct App {
    pub token: String,
    pub faults: KubeFaults,
    pub counters: CounterStore,
    pub store: Mutex<Store>,
    pub server_address: String,
}

impl App {
    pub(crate) fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Set per TLS connection: whether the peer presented a certificate the CA signed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnAuth {
    pub client_cert: bool,
}

fn json_response(code: u16, v: &Value, content_type: &str) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn err_response(e: &KErr) -> Response {
    json_response(e.code, &e.to_json(), "application/json")
}

/// What a request is, for counters and faults.
enum Target {
    Discovery(Discovery),
    Health,
    Resource(Box<ResourceReq>),
    Unknown,
}

enum Discovery {
    Version,
    Api,
    Apis,
    Group(String),
    GroupVersion(String, String),
}

struct ResourceReq {
    def: ResourceDef,
    version: String,
    namespace: Option<String>,
    name: Option<String>,
    /// `status` for `/<name>/status`.
    subresource: Option<String>,
    verb: &'static str,
}

fn parse_target(store: &Store, method: &Method, path: &str, watch: bool) -> Result<Target, KErr> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
        ["version"] => return Ok(Target::Discovery(Discovery::Version)),
        ["healthz" | "livez" | "readyz"] => return Ok(Target::Health),
        ["api"] => return Ok(Target::Discovery(Discovery::Api)),
        ["apis"] => return Ok(Target::Discovery(Discovery::Apis)),
        ["api", v] => {
            return Ok(Target::Discovery(Discovery::GroupVersion(
                String::new(),
                v.to_string(),
            )))
        }
        ["apis", g] => return Ok(Target::Discovery(Discovery::Group(g.to_string()))),
        ["apis", g, v] => {
            return Ok(Target::Discovery(Discovery::GroupVersion(
                g.to_string(),
                v.to_string(),
            )))
        }
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Ok(Target::Unknown),
    };
    let (namespace, parts): (Option<String>, &[&str]) = match rest {
        ["namespaces", ns, tail @ ..] if !tail.is_empty() => (Some(ns.to_string()), tail),
        _ => (None, rest),
    };
    let (plural, name, subresource) = match parts {
        [r] => (*r, None, None),
        [r, n] => (*r, Some(n.to_string()), None),
        [r, n, "status"] => (*r, Some(n.to_string()), Some("status".to_string())),
        _ => return Err(KErr::path_not_found()), // other subresources are not served
    };
    let def = store
        .def(group, version, plural)
        .cloned()
        .ok_or_else(KErr::path_not_found)?;
    if name.is_some() && def.namespaced && namespace.is_none() {
        return Err(KErr::path_not_found());
    }
    if namespace.is_some() && !def.namespaced {
        return Err(KErr::path_not_found());
    }
    if name.as_deref() == Some("") || (subresource.is_some() && !def.status) {
        return Err(KErr::path_not_found());
    }
    let verb = match (method.as_str(), name.is_some()) {
        ("GET", false) if watch => "watch",
        ("GET", false) => "list",
        ("GET", true) if watch => "watch",
        ("GET", true) => "get",
        ("POST", false) => "create",
        ("PUT", true) => "update",
        ("PATCH", true) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unsupported",
    };
    Ok(Target::Resource(Box::new(ResourceReq {
        def,
        version: version.to_string(),
        namespace,
        name,
        subresource,
        verb,
    })))
}

fn authenticated(app: &App, auth: ConnAuth, headers: &HeaderMap) -> bool {
    if auth.client_cert {
        return true;
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| !app.token.is_empty() && t.trim() == app.token)
}

/// The field manager: `fieldManager`, else the User-Agent up to its first `/` (as the real
/// server's `prefixFromUserAgent`), else `unknown`.
fn manager(q: &HashMap<String, String>, headers: &HeaderMap) -> String {
    if let Some(m) = q.get("fieldManager").filter(|m| !m.is_empty()) {
        return m.clone();
    }
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.split('/').next())
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(128).collect())
        .unwrap_or_else(|| "unknown".to_string())
}

pub(crate) async fn handle(
    State(app): State<Arc<App>>,
    Extension(auth): Extension<ConnAuth>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    if !authenticated(&app, auth, &headers) {
        app.counters.record("unauthenticated", &path, 401);
        return err_response(&KErr::unauthorized());
    }
    let q: HashMap<String, String> = Query::try_from_uri(&uri)
        .map(|Query(q)| q)
        .unwrap_or_default();
    let watch = q.get("watch").is_some_and(|w| w == "true" || w == "1");
    let target = {
        let store = app.store();
        parse_target(&store, &method, &path, watch)
    };
    let (verb, resource) = match &target {
        Ok(Target::Discovery(_)) => ("discovery", path.clone()),
        Ok(Target::Resource(r)) => match &r.subresource {
            Some(sub) => (r.verb, format!("{}/{sub}", r.def.plural)),
            None => (r.verb, r.def.plural.clone()),
        },
        Ok(Target::Health) => ("health", path.clone()),
        Ok(Target::Unknown) | Err(_) => ("unknown", path.clone()),
    };
    let latency = app.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(code) = app.faults.decide(verb, &resource) {
        app.counters.record(verb, &resource, code);
        return err_response(&KErr::injected(code));
    }
    let resp = match target {
        Err(e) => err_response(&e),
        Ok(Target::Unknown) => err_response(&KErr::path_not_found()),
        Ok(Target::Health) => (StatusCode::OK, "ok").into_response(),
        Ok(Target::Discovery(d)) => discovery(&app, &method, d, &headers),
        Ok(Target::Resource(r)) => match resource_op(&app, &method, &r, &q, &headers, &body) {
            Ok(r) => r,
            Err(e) => err_response(&e),
        },
    };
    app.counters.record(verb, &resource, resp.status().as_u16());
    resp
}

fn discovery(app: &App, method: &Method, d: Discovery, headers: &HeaderMap) -> Response {
    if method != Method::GET {
        return err_response(&KErr::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method})"
        )));
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let aggregated = resources::wants_aggregated(accept);
    let store = app.store();
    let defs = store.defs();
    let ok = |v: Value| json_response(200, &v, "application/json");
    match d {
        Discovery::Version => ok(resources::version_doc()),
        Discovery::Api if aggregated => json_response(
            200,
            &resources::aggregated(defs, true),
            resources::AGGREGATED_CONTENT_TYPE,
        ),
        Discovery::Apis if aggregated => json_response(
            200,
            &resources::aggregated(defs, false),
            resources::AGGREGATED_CONTENT_TYPE,
        ),
        Discovery::Api => ok(resources::api_versions(&app.server_address)),
        Discovery::Apis => ok(resources::api_group_list(defs)),
        Discovery::Group(g) => match resources::api_group(defs, &g) {
            Some(v) => ok(v),
            None => err_response(&KErr::path_not_found()),
        },
        Discovery::GroupVersion(g, v) => match resources::api_resource_list(defs, &g, &v) {
            Some(v) => ok(v),
            None => err_response(&KErr::path_not_found()),
        },
    }
}

fn parse_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, KErr> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if body.is_empty() {
        return Err(KErr::bad_request("the body of the request was empty"));
    }
    if ct.contains("yaml") {
        serde_yaml_ng::from_slice::<Value>(body)
            .map_err(|e| KErr::bad_request(format!("error decoding YAML: {e}")))
    } else {
        serde_json::from_slice::<Value>(body)
            .map_err(|e| KErr::bad_request(format!("error decoding JSON: {e}")))
    }
}

fn resource_op(
    app: &App,
    method: &Method,
    r: &ResourceReq,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, KErr> {
    let ns = r.namespace.as_deref();
    let dry_run = q.get("dryRun").is_some_and(|d| d == "All");
    if let Some(d) = q.get("dryRun").filter(|d| *d != "All" && !d.is_empty()) {
        return Err(KErr::bad_request(format!(
            "Unsupported value: \"{d}\": supported values: \"All\""
        )));
    }
    let w = Writer {
        manager: manager(q, headers),
        dry_run,
    };
    let ok = |code: u16, v: &Value| Ok(json_response(code, v, "application/json"));
    if r.subresource.is_some() {
        return status_op(app, method, r, q, headers, body, &w)
            .map(|v| json_response(200, &v, "application/json"));
    }
    match r.verb {
        "watch" => Err(KErr::method_not_allowed(
            "sandbox: watch is not implemented; use list/get and poll",
        )),
        "unsupported" => Err(KErr::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method})"
        ))),
        "list" => {
            let labels = LabelSelector::parse(q.get("labelSelector").map_or("", |s| s.as_str()))
                .map_err(|e| KErr::bad_request(format!("unable to parse requirement: {e}")))?;
            let fsel = FieldSelector::parse(q.get("fieldSelector").map_or("", |s| s.as_str()))
                .map_err(KErr::bad_request)?;
            let limit = match q.get("limit").filter(|l| !l.is_empty()) {
                Some(l) => l
                    .parse::<i64>()
                    .map_err(|_| KErr::bad_request(format!("invalid limit {l:?}")))?,
                None => 0,
            };
            let after = match q.get("continue").filter(|c| !c.is_empty()) {
                Some(c) => Some(decode_continue(c)?),
                None => None,
            };
            let res = app.store().list(&r.def, &r.version, ns, &labels, &fsel);
            let key = |o: &Value| {
                (
                    o["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    o["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            };
            let mut items: Vec<Value> = res
                .items
                .into_iter()
                .filter(|o| after.as_ref().is_none_or(|a| key(o) > *a))
                .collect();
            let mut meta = json!({"resourceVersion": res.resource_version});
            if limit > 0 && items.len() > limit as usize {
                let remaining = items.len() - limit as usize;
                items.truncate(limit as usize);
                if let Some(last) = items.last() {
                    meta["continue"] = json!(encode_continue(&key(last), &res.resource_version));
                }
                if q.get("labelSelector").is_none_or(|s| s.is_empty())
                    && q.get("fieldSelector").is_none_or(|s| s.is_empty())
                {
                    meta["remainingItemCount"] = json!(remaining);
                }
            }
            if !r.def.custom {
                // Like the real server, items of built-in lists carry no apiVersion/kind.
                for o in &mut items {
                    if let Value::Object(m) = o {
                        m.remove("apiVersion");
                        m.remove("kind");
                    }
                }
            }
            ok(
                200,
                &json!({
                    "kind": r.def.list_kind,
                    "apiVersion": r.def.api_version(&r.version),
                    "metadata": meta,
                    "items": items,
                }),
            )
        }
        "get" => {
            let name = r.name.as_deref().unwrap_or_default();
            let v = app.store().get(&r.def, &r.version, ns, name)?;
            ok(200, &v)
        }
        "create" => {
            let obj = parse_body(headers, body)?;
            let v = app.store().create(&r.def, &r.version, ns, obj, &w, None)?;
            ok(201, &v)
        }
        "update" => {
            let name = r.name.as_deref().unwrap_or_default();
            let obj = parse_body(headers, body)?;
            let v = app.store().replace(&r.def, &r.version, ns, name, obj, &w)?;
            ok(200, &v)
        }
        "patch" => {
            let name = r.name.as_deref().unwrap_or_default();
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let ct = ct.split(';').next().unwrap_or_default().trim();
            match ct {
                "application/merge-patch+json" | "application/json-patch+json" => {
                    let patch = parse_body(headers, body)?;
                    let json_patch = ct == "application/json-patch+json";
                    let v = app
                        .store()
                        .patch(&r.def, &r.version, ns, name, &patch, json_patch, &w)?;
                    ok(200, &v)
                }
                "application/apply-patch+yaml" => {
                    if q.get("fieldManager").is_none_or(|m| m.is_empty()) {
                        return Err(KErr::bad_request(
                            "PATCH, application/apply-patch+yaml requires fieldManager to be set",
                        ));
                    }
                    let cfg = serde_yaml_ng::from_slice::<Value>(body)
                        .map_err(|e| KErr::bad_request(format!("error decoding YAML: {e}")))?;
                    let force = q.get("force").is_some_and(|f| f == "true");
                    let mut store = app.store();
                    let existed = store.get(&r.def, &r.version, ns, name).is_ok();
                    let v = store.apply(&r.def, &r.version, ns, name, cfg, force, &w)?;
                    ok(if existed { 200 } else { 201 }, &v)
                }
                other => Err(KErr::unsupported_media_type(format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (sandbox: {other:?} is not implemented)"
                ))),
            }
        }
        "delete" => {
            let name = r.name.as_deref().unwrap_or_default();
            let opts: Value = if body.is_empty() {
                json!({})
            } else {
                serde_json::from_slice(body)
                    .map_err(|e| KErr::bad_request(format!("error decoding DeleteOptions: {e}")))?
            };
            let dry = dry_run
                || opts["dryRun"]
                    .as_array()
                    .is_some_and(|a| a.contains(&json!("All")));
            let pre = opts.get("preconditions").cloned().unwrap_or(json!({}));
            match app
                .store()
                .delete(&r.def, &r.version, ns, name, &pre, dry)?
            {
                Deleted::Object(o) => ok(200, &o),
                Deleted::Status(s) => ok(200, &s),
            }
        }
        "deletecollection" => {
            let labels = LabelSelector::parse(q.get("labelSelector").map_or("", |s| s.as_str()))
                .map_err(|e| KErr::bad_request(format!("unable to parse requirement: {e}")))?;
            let fsel = FieldSelector::parse(q.get("fieldSelector").map_or("", |s| s.as_str()))
                .map_err(KErr::bad_request)?;
            let mut store = app.store();
            let res = store.list(&r.def, &r.version, ns, &labels, &fsel);
            for o in &res.items {
                let name = o["metadata"]["name"].as_str().unwrap_or_default();
                let ons = o["metadata"]["namespace"].as_str();
                let _ = store.delete(&r.def, &r.version, ons, name, &json!({}), dry_run)?;
            }
            ok(
                200,
                &json!({
                    "kind": r.def.list_kind,
                    "apiVersion": r.def.api_version(&r.version),
                    "metadata": {"resourceVersion": store.current_rv()},
                    "items": res.items,
                }),
            )
        }
        _ => Err(KErr::path_not_found()),
    }
}

/// Continue tokens: base64 of `{"rv":..,"start":[ns,name]}` (the real server's token also
/// carries a key and a resourceVersion; the sandbox does not serve a snapshot, see README).
fn encode_continue(key: &(String, String), rv: &str) -> String {
    use base64::Engine as _;
    let t = json!({"v": "sandbox/v1", "rv": rv, "start": [key.0, key.1]});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(t.to_string())
}

fn decode_continue(c: &str) -> Result<(String, String), KErr> {
    use base64::Engine as _;
    let bad = || {
        KErr::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    match (v["start"][0].as_str(), v["start"][1].as_str()) {
        (Some(ns), Some(name)) => Ok((ns.to_string(), name.to_string())),
        _ => Err(bad()),
    }
}

fn patch_content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// `GET|PUT|PATCH .../<name>/status`: only `status` is read from the request.
fn status_op(
    app: &App,
    method: &Method,
    r: &ResourceReq,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
    w: &Writer,
) -> Result<Value, KErr> {
    let ns = r.namespace.as_deref();
    let name = r.name.as_deref().unwrap_or_default();
    let mut store = app.store();
    match r.verb {
        "get" => store.get(&r.def, &r.version, ns, name),
        "update" => {
            let obj = parse_body(headers, body)?;
            if let Some(n) = obj["metadata"]["name"].as_str() {
                if n != name {
                    return Err(KErr::bad_request(format!(
                        "the name of the object ({n}) does not match the name on the URL ({name})"
                    )));
                }
            }
            let rv = obj["metadata"]["resourceVersion"].as_str();
            store.write_status(
                &r.def,
                &r.version,
                ns,
                name,
                obj.get("status").cloned(),
                rv,
                w,
            )
        }
        "patch" => {
            let current = store.get(&r.def, &r.version, ns, name)?;
            let ct = patch_content_type(headers);
            let (status, rv) = match ct.as_str() {
                "application/merge-patch+json" => {
                    let patch = parse_body(headers, body)?;
                    let mut whole = current.clone();
                    crate::kube::fields::merge_patch(&mut whole, &patch);
                    let rv = patch["metadata"]["resourceVersion"].as_str().map(String::from);
                    (whole.get("status").cloned(), rv)
                }
                "application/apply-patch+yaml" => {
                    if q.get("fieldManager").is_none_or(|m| m.is_empty()) {
                        return Err(KErr::bad_request(
                            "PATCH, application/apply-patch+yaml requires fieldManager to be set",
                        ));
                    }
                    let cfg = serde_yaml_ng::from_slice::<Value>(body)
                        .map_err(|e| KErr::bad_request(format!("error decoding YAML: {e}")))?;
                    let mut st = current.get("status").cloned().unwrap_or(json!({}));
                    if let Some(s) = cfg.get("status") {
                        crate::kube::fields::apply_merge(&mut st, s);
                    }
                    (Some(st), None)
                }
                other => {
                    return Err(KErr::unsupported_media_type(format!(
                        "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/apply-patch+yaml (sandbox: {other:?} is not implemented)"
                    )))
                }
            };
            store.write_status(&r.def, &r.version, ns, name, status, rv.as_deref(), w)
        }
        _ => Err(KErr::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method})"
        ))),
    }
}
