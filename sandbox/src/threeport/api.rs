//! Request handling: routing, write validation, query filters, the envelope, two-phase delete
//! and notifications (spec 1.5, 2.2-2.4, 2.7, 2.9).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Map, Value};

use super::crypto::Key;
use super::faults::{CounterStore, Faults, NotificationDrops};
use super::store::{self, render, Row, Store};
use super::types::{self, Class, Kind, Rule, TypeDef};

/// Shared server state.
pub(crate) struct App {
    pub store: Mutex<Store>,
    pub faults: Arc<Faults>,
    pub counters: Arc<CounterStore>,
    pub js: Option<async_nats::jetstream::Context>,
    pub key: Option<Key>,
    pub drops: Arc<NotificationDrops>,
}

impl App {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An error answered with the Threeport envelope.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: u16,
    pub message: String,
}

fn err(status: u16, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        message: message.into(),
    }
}

type ApiResult = Result<Reply, ApiError>;

/// A successful reply: status, Meta (page, size, total) and pre-rendered objects.
pub(crate) struct Reply {
    status: u16,
    meta: (i64, i64, i64),
    data: Vec<String>,
}

fn single(status: u16, obj: String) -> Reply {
    Reply {
        status,
        meta: (1, 1, 1),
        data: vec![obj],
    }
}

fn status_text(code: u16) -> &'static str {
    StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

fn json_response(status: u16, body: String) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json; charset=UTF-8")
        .body(Body::from(body))
        .unwrap_or_default()
}

/// The envelope of spec 2.2, with Go's key order.
pub(crate) fn envelope(
    status: u16,
    type_name: &str,
    meta: (i64, i64, i64),
    data: Option<&[String]>,
    error: &str,
) -> Response {
    let data = match data {
        Some(d) => format!("[{}]", d.join(",")),
        None => "null".to_string(),
    };
    let body = format!(
        "{{\"Meta\":{{\"Page\":{},\"Size\":{},\"TotalCount\":{}}},\"Type\":{},\"Data\":{},\"Status\":{{\"code\":{},\"message\":{},\"error\":{}}}}}",
        meta.0,
        meta.1,
        meta.2,
        Value::String(type_name.to_string()),
        data,
        status,
        Value::String(status_text(status).to_string()),
        Value::String(error.to_string()),
    );
    json_response(status, body)
}

fn echo_error(status: u16) -> Response {
    json_response(
        status,
        format!(
            "{{\"message\":{}}}",
            Value::String(status_text(status).into())
        ),
    )
}

enum Route {
    Collection(&'static TypeDef),
    Item(&'static TypeDef, String),
    WrdSets,
    EventsJoin,
}

fn route(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/v0/")?;
    let mut parts = rest.split('/');
    let first = parts.next()?;
    let second = parts.next();
    if parts.next().is_some() {
        return None;
    }
    match (first, second) {
        ("workload-resource-definition-sets", None) => Some(Route::WrdSets),
        ("events-join-attached-object-references", None) => Some(Route::EventsJoin),
        (p, None) => types::by_path(p).map(Route::Collection),
        (p, Some(id)) if !id.is_empty() => types::by_path(p).map(|t| Route::Item(t, id.into())),
        _ => None,
    }
}

fn template(r: &Route) -> String {
    match r {
        Route::Collection(t) => format!("/v0/{}", t.path),
        Route::Item(t, _) => format!("/v0/{}/{{id}}", t.path),
        Route::WrdSets => "/v0/workload-resource-definition-sets".into(),
        Route::EventsJoin => "/v0/events-join-attached-object-references".into(),
    }
}

fn route_type(r: &Route) -> &'static str {
    match r {
        Route::Collection(t) | Route::Item(t, _) => t.name,
        Route::WrdSets => "WorkloadResourceDefinition",
        Route::EventsJoin => "Event",
    }
}

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|q| q.0)
        .unwrap_or_default()
}

/// The single axum handler: routes by hand so every route template is counted and unknown
/// routes get echo's `{"message":"Not Found"}`.
pub(crate) async fn handle(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let latency = app.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let path = uri.path().to_string();
    let Some(r) = route(&path) else {
        app.counters.record(method.as_str(), "unknown", 404);
        return echo_error(404);
    };
    let tmpl = template(&r);
    let type_name = route_type(&r);
    let allowed = match (&r, &method) {
        (Route::Collection(_), &Method::GET | &Method::POST) => true,
        (Route::Collection(t), &Method::DELETE) => t.path == "workload-events",
        (Route::Item(..), &Method::GET | &Method::PATCH | &Method::PUT | &Method::DELETE) => true,
        (Route::WrdSets, &Method::POST) => true,
        (Route::EventsJoin, &Method::GET) => true,
        _ => false,
    };
    if !allowed {
        app.counters.record(method.as_str(), &tmpl, 405);
        return echo_error(405);
    }
    if let Some(status) = app.faults.decide(method.as_str(), &path) {
        app.counters.record(method.as_str(), &tmpl, status);
        return envelope(
            status,
            type_name,
            (0, 0, 0),
            None,
            "sandbox: injected fault",
        );
    }
    let query = query_pairs(&uri);
    let result = match (r, method.clone()) {
        (Route::Collection(t), Method::GET) => list(&app, t, &query),
        (Route::Collection(t), Method::POST) => create(&app, t, &body).await,
        (Route::Collection(_), _) => delete_workload_events(&app, &query),
        (Route::Item(t, id), Method::GET) => get(&app, t, &id),
        (Route::Item(t, id), Method::PATCH) => patch(&app, t, &id, &body).await,
        (Route::Item(t, id), Method::PUT) => put(&app, t, &id, &body),
        (Route::Item(t, id), _) => delete(&app, t, &id).await,
        (Route::WrdSets, _) => wrd_sets(&app, &body),
        (Route::EventsJoin, _) => events_join(&app, &query),
    };
    let resp = match result {
        Ok(rep) => envelope(rep.status, type_name, rep.meta, Some(&rep.data), ""),
        Err(e) => envelope(e.status, type_name, (0, 0, 0), None, &e.message),
    };
    app.counters
        .record(method.as_str(), &tmpl, resp.status().as_u16());
    resp
}

// ---------------------------------------------------------------------------------------------
// Payload checks and binding

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) if m.is_empty() => Err(err(400, "JSON payload is empty")),
        Ok(Value::Object(m)) => Ok(m),
        Ok(Value::Array(a)) if a.is_empty() => Err(err(400, "JSON payload is empty")),
        Ok(other) => Err(err(
            400,
            format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_type(&other)
            ),
        )),
        Err(e) if body.iter().all(u8::is_ascii_whitespace) => {
            Err(err(400, format!("unexpected end of JSON input ({e})")))
        }
        Err(e) => Err(err(400, e.to_string())),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `PayloadCheck` (spec 2.4): GORM model fields, associations (PATCH/PUT), unsupported keys.
fn payload_check(td: &TypeDef, m: &Map<String, Value>, check_assoc: bool) -> Result<(), ApiError> {
    let mut gorm = Vec::new();
    let mut assoc = Vec::new();
    let mut unsupported = Vec::new();
    for k in m.keys() {
        if ["ID", "CreatedAt", "UpdatedAt", "DeletedAt"]
            .iter()
            .any(|g| g.eq_ignore_ascii_case(k))
        {
            gorm.push(k.clone());
        }
        if td
            .fields
            .iter()
            .any(|f| f.rule == Rule::Assoc && f.go.eq_ignore_ascii_case(k))
        {
            assoc.push(k.clone());
        }
        let by_go = td
            .fields
            .iter()
            .any(|f| f.rule != Rule::Untagged && f.go.eq_ignore_ascii_case(k));
        if !by_go {
            match td.fields.iter().find(|f| f.json == k) {
                Some(f) if f.rule != Rule::Untagged => {}
                Some(f) => unsupported.push(f.go.to_string()),
                None => unsupported.push(k.clone()),
            }
        }
    }
    if !gorm.is_empty() {
        return Err(err(
            400,
            format!(
                "Update of GORM Model fields is not allowed : {}",
                gorm.join(",")
            ),
        ));
    }
    if check_assoc && !assoc.is_empty() {
        return Err(err(
            400,
            format!(
                "Update of associated objects is not allowed. Use PUT for each associated object : {}",
                assoc.join(",")
            ),
        ));
    }
    if !unsupported.is_empty() {
        return Err(err(
            400,
            format!(
                "Unsupported fields are not allowed : {}",
                unsupported.join(",")
            ),
        ));
    }
    Ok(())
}

/// A bound request body: stored fields (null values dropped, as nil pointers) and transient
/// fields (arrays echoed in the POST response and notification).
#[derive(Default)]
struct Bound {
    fields: HashMap<&'static str, Value>,
    transient: HashMap<&'static str, Value>,
}

fn go_type(k: Kind) -> &'static str {
    match k {
        Kind::U64 => "uint",
        Kind::Int => "int",
        Kind::Bool => "bool",
        Kind::Str => "string",
        Kind::Time => "time.Time",
        Kind::Json | Kind::JsonArray => "datatypes.JSON",
        Kind::Array | Kind::Children(..) => "slice",
    }
}

fn bind_error(field: &str, k: Kind, v: &Value) -> ApiError {
    // echo's Bind error is answered with 500 by the generated handlers.
    err(
        500,
        format!(
            "code=400, message=Unmarshal type error: expected={}, got={}, field={}",
            go_type(k),
            json_type(v),
            field
        ),
    )
}

/// `c.Bind`: encoding/json matches keys to JSON names case-insensitively; keys that matched
/// only a Go field name in the payload check are silently dropped, as in Go.
fn bind(td: &TypeDef, m: &Map<String, Value>) -> Result<Bound, ApiError> {
    let mut b = Bound::default();
    for (k, v) in m {
        let Some(f) = td.field_by_json_ci(k) else {
            continue;
        };
        if f.rule == Rule::Untagged || v.is_null() {
            continue;
        }
        let ok = match f.kind {
            Kind::U64 => v.as_u64().is_some(),
            Kind::Int => v.as_i64().is_some() || v.as_u64().is_some(),
            Kind::Bool => v.is_boolean(),
            Kind::Str => v.is_string(),
            Kind::Time => v.as_str().and_then(store::normalise_time).is_some(),
            Kind::Json | Kind::JsonArray => true,
            Kind::Array | Kind::Children(..) => v.is_array(),
        };
        if !ok {
            return Err(bind_error(f.json, f.kind, v));
        }
        match f.kind {
            Kind::Time => {
                let s = v
                    .as_str()
                    .and_then(store::normalise_time)
                    .unwrap_or_default();
                b.fields.insert(f.json, Value::String(s));
            }
            Kind::Array | Kind::Children(..) => {
                b.transient.insert(f.json, v.clone());
            }
            _ => {
                b.fields.insert(f.json, v.clone());
            }
        }
    }
    Ok(b)
}

fn missing_required(td: &TypeDef, b: &Bound) -> Vec<&'static str> {
    td.fields
        .iter()
        .filter(|f| f.rule == Rule::Req)
        .filter(|f| !b.fields.contains_key(f.json) && !b.transient.contains_key(f.json))
        .map(|f| f.go)
        .collect()
}

fn check_required(td: &TypeDef, b: &Bound) -> Result<(), ApiError> {
    let missing = missing_required(td, b);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(err(
            400,
            format!("Missing required field(s) : {}", missing.join(",")),
        ))
    }
}

fn parse_id(id: &str) -> Result<u64, ApiError> {
    id.parse::<u64>().map_err(|_| {
        err(
            500,
            format!("ERROR: invalid input syntax for type int: \"{id}\" (SQLSTATE 22P02)"),
        )
    })
}

fn not_found() -> ApiError {
    err(404, "record not found")
}

fn encrypt_fields(
    app: &App,
    td: &TypeDef,
    fields: &mut HashMap<&'static str, Value>,
    existing: Option<&Row>,
) -> Result<(), ApiError> {
    let Some(key) = &app.key else {
        return Ok(());
    };
    for f in td.fields.iter().filter(|f| f.encrypted) {
        let Some(Value::String(plain)) = fields.get(f.json) else {
            continue;
        };
        // BeforeUpdate encrypts only when the value changed.
        if existing.and_then(|r| r.get(f.json)) == fields.get(f.json) {
            continue;
        }
        let c = key
            .encrypt(plain)
            .map_err(|e| err(500, format!("failed to encrypt {}: {e}", f.json)))?;
        fields.insert(f.json, Value::String(c));
    }
    Ok(())
}

/// Type-specific gorm hooks the controllers can observe.
fn before_save(
    td: &TypeDef,
    fields: &HashMap<&'static str, Value>,
    existing: Option<&Row>,
) -> Result<(), ApiError> {
    match td.path {
        "kubernetes-runtime-definitions" => {
            if let Some(p) = fields.get("InfraProvider").and_then(Value::as_str) {
                if p != "kind" && p != "eks" {
                    return Err(err(
                        500,
                        format!("invalid infra provider: {p} - must be one of: kind, eks"),
                    ));
                }
            }
        }
        "kubernetes-runtime-instances" => {
            if let (Some(old), Some(new)) = (
                existing.and_then(|r| r.get("Location")),
                fields.get("Location"),
            ) {
                if old != new {
                    return Err(err(
                        500,
                        "kubernetes runtime instance location cannot be changed",
                    ));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// The partial unique index on `Name` (`uniqueIndex:,where:deleted_at IS NULL` in
/// `pkg/api/v0/class.go`): PATCH/PUT renaming onto another live row is a DB error, so 500.
fn check_name_index(
    st: &Store,
    td: &TypeDef,
    id: u64,
    fields: &HashMap<&'static str, Value>,
) -> Result<(), ApiError> {
    if td.class == Class::Plain {
        return Ok(());
    }
    let Some(name) = fields.get("Name") else {
        return Ok(());
    };
    if st
        .live(td.path)
        .any(|r| r.id() != id && r.get("Name") == Some(name))
    {
        return Err(err(
            500,
            format!(
                "ERROR: duplicate key value violates unique constraint \"idx_v0_{}_name\" (SQLSTATE 23505)",
                td.path.replace('-', "_")
            ),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Notifications

async fn publish(app: &App, subject: String, operation: &str, object: &str) {
    let Some(js) = &app.js else {
        return;
    };
    if app.drops.take(&subject) {
        tracing::info!(%subject, "notification dropped on purpose (NotificationDrops)");
        return;
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let payload = format!(
        "{{\"Operation\":\"{operation}\",\"CreationTime\":{now},\"Object\":{object},\"ObjectVersion\":\"v0\"}}"
    );
    // The real API ignores the publish error; the sandbox logs it.
    match js.publish(subject.clone(), Bytes::from(payload)).await {
        Ok(ack) => {
            if let Err(e) = ack.await {
                tracing::warn!(%subject, error = %e, "notification not acknowledged");
            }
        }
        Err(e) => tracing::warn!(%subject, error = %e, "notification publish failed"),
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// Insert a bound object (defaults, ID, timestamps, children). Returns the rendered object.
fn insert(
    app: &App,
    st: &mut Store,
    td: &'static TypeDef,
    mut b: Bound,
) -> Result<(u64, String, bool), ApiError> {
    before_save(td, &b.fields, None)?;
    encrypt_fields(app, td, &mut b.fields, None)?;
    let id = st.alloc_id();
    let now = store::now_value();
    let mut row = Row::default();
    for f in &td.fields {
        if let Some(d) = f.default {
            row.fields.insert(f.json, d.value());
        }
    }
    row.fields.extend(b.fields);
    row.fields.insert("ID", Value::from(id));
    row.fields.insert("CreatedAt", now.clone());
    row.fields.insert("UpdatedAt", now);

    let mut extra = HashMap::new();
    for f in &td.fields {
        let Some(v) = b.transient.get(f.json) else {
            continue;
        };
        match f.kind {
            Kind::Children(child_path, fk) => {
                let Some(ctd) = types::by_path(child_path) else {
                    continue;
                };
                let mut rendered = Vec::new();
                for item in v.as_array().into_iter().flatten() {
                    let Some(m) = item.as_object() else {
                        return Err(bind_error(f.json, f.kind, item));
                    };
                    let mut cb = bind(ctd, m)?;
                    cb.fields.insert(ctd_field(ctd, fk), Value::from(id));
                    cb.transient.clear();
                    let (_, r, _) = insert(app, st, ctd, cb)?;
                    rendered.push(r);
                }
                extra.insert(f.json, format!("[{}]", rendered.join(",")));
            }
            _ => {
                extra.insert(
                    f.json,
                    serde_json::to_string(v).unwrap_or_else(|_| "null".into()),
                );
            }
        }
    }
    let rendered = render(td, &row, &extra);
    let reconciled = row
        .get("Reconciled")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    st.table(td.path).insert(id, row);
    Ok((id, rendered, reconciled))
}

fn ctd_field(td: &'static TypeDef, json: &str) -> &'static str {
    td.fields
        .iter()
        .find(|f| f.json == json)
        .map(|f| f.json)
        .unwrap_or("ID")
}

async fn create(app: &App, td: &'static TypeDef, body: &[u8]) -> ApiResult {
    let m = parse_object(body)?;
    payload_check(td, &m, false)?;
    let b = bind(td, &m)?;
    check_required(td, &b)?;
    let (rendered, notify) = {
        let mut st = app.lock();
        if td.class != Class::Plain {
            let name = b.fields.get("Name");
            if st.live(td.path).any(|r| r.get("Name") == name) {
                return Err(err(409, "object with provided name already exists"));
            }
        }
        if td.path == "attached-object-references" {
            let keys = [
                "ObjectType",
                "ObjectID",
                "AttachedObjectType",
                "AttachedObjectID",
            ];
            // The unique index `idx_attached_object_unique` has no `deleted_at IS NULL`
            // condition, so soft-deleted references still collide.
            if st
                .tables
                .get(td.path)
                .into_iter()
                .flat_map(|t| t.values())
                .any(|r| keys.iter().all(|k| r.get(k) == b.fields.get(k)))
            {
                return Err(err(
                    500,
                    "ERROR: duplicate key value violates unique constraint \"idx_attached_object_unique\" (SQLSTATE 23505)",
                ));
            }
        }
        let (_, rendered, reconciled) = insert(app, &mut st, td, b)?;
        (rendered, td.reconcilable() && !reconciled)
    };
    if notify {
        if let Some(s) = td.subject {
            publish(app, format!("{s}.create"), "Created", &rendered).await;
        }
    }
    Ok(single(201, rendered))
}

fn get(app: &App, td: &'static TypeDef, id: &str) -> ApiResult {
    let id = parse_id(id)?;
    let st = app.lock();
    let row = st.get_live(td.path, id).ok_or_else(not_found)?;
    Ok(single(200, render(td, row, &HashMap::new())))
}

async fn patch(app: &App, td: &'static TypeDef, id: &str, body: &[u8]) -> ApiResult {
    let id = parse_id(id)?;
    if app.lock().get_live(td.path, id).is_none() {
        return Err(not_found());
    }
    let m = parse_object(body)?;
    payload_check(td, &m, true)?;
    let mut b = bind(td, &m)?;
    let (rendered, notify) = {
        let mut st = app.lock();
        let existing = st.get_live(td.path, id).cloned().ok_or_else(not_found)?;
        check_name_index(&st, td, id, &b.fields)?;
        before_save(td, &b.fields, Some(&existing))?;
        encrypt_fields(app, td, &mut b.fields, Some(&existing))?;
        let mut row = existing;
        row.fields.extend(b.fields);
        row.fields.insert("UpdatedAt", store::now_value());
        let rendered = render(td, &row, &HashMap::new());
        let reconciled = row
            .get("Reconciled")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        st.table(td.path).insert(id, row);
        (rendered, td.reconcilable() && !reconciled)
    };
    if notify {
        if let Some(s) = td.subject {
            publish(app, format!("{s}.update"), "Updated", &rendered).await;
        }
    }
    Ok(single(200, rendered))
}

fn put(app: &App, td: &'static TypeDef, id: &str, body: &[u8]) -> ApiResult {
    let id = parse_id(id)?;
    if app.lock().get_live(td.path, id).is_none() {
        return Err(not_found());
    }
    let m = parse_object(body)?;
    payload_check(td, &m, true)?;
    let mut b = bind(td, &m)?;
    check_required(td, &b)?;
    let mut st = app.lock();
    let existing = st.get_live(td.path, id).cloned().ok_or_else(not_found)?;
    check_name_index(&st, td, id, &b.fields)?;
    before_save(td, &b.fields, Some(&existing))?;
    encrypt_fields(app, td, &mut b.fields, Some(&existing))?;
    // gorm Save writes every column: fields not sent become NULL (DB defaults do not apply).
    let mut row = Row::default();
    row.fields.extend(b.fields);
    for k in ["ID", "CreatedAt"] {
        if let Some(v) = existing.fields.get(k) {
            row.fields.insert(k, v.clone());
        }
    }
    row.fields.insert("UpdatedAt", store::now_value());
    let rendered = render(td, &row, &HashMap::new());
    st.table(td.path).insert(id, row);
    Ok(single(200, rendered))
}

fn soft_delete(st: &mut Store, td: &'static TypeDef, id: u64) -> Result<(), ApiError> {
    if td.path == "kubernetes-runtime-instances"
        && st
            .live("workload-instances")
            .any(|r| r.get("KubernetesRuntimeInstanceID").and_then(Value::as_u64) == Some(id))
    {
        // gorm BeforeDelete hook error: a DB error, so 500, with Threeport's message.
        let name = st
            .get_live(td.path, id)
            .and_then(|r| r.get("Name"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        return Err(err(
            500,
            format!(
                "kubernetes runtime instance {name} cannot be deleted until workloads are removed"
            ),
        ));
    }
    if let Some(r) = st.table(td.path).get_mut(&id) {
        r.deleted = true;
        r.fields.insert("DeletedAt", store::now_value());
    }
    Ok(())
}

async fn delete(app: &App, td: &'static TypeDef, id: &str) -> ApiResult {
    let id = parse_id(id)?;
    let (rendered, notify) = {
        let mut st = app.lock();
        let mut row = st.get_live(td.path, id).cloned().ok_or_else(not_found)?;
        if let Some(dep) = td.dependents {
            if st
                .live(dep.path)
                .any(|r| r.get(dep.fk).and_then(Value::as_u64) == Some(id))
            {
                return Err(err(409, dep.message));
            }
        }
        if td.reconcilable() {
            if !row.is_set("DeletionScheduled") {
                let now = store::now_value();
                row.fields.insert("DeletionScheduled", now.clone());
                row.fields.insert("Reconciled", Value::Bool(false));
                row.fields.insert("UpdatedAt", now);
                let rendered = render(td, &row, &HashMap::new());
                st.table(td.path).insert(id, row);
                (rendered, true)
            } else if !row.is_set("DeletionConfirmed") {
                return Err(err(
                    409,
                    format!("object with ID {id} already being deleted"),
                ));
            } else {
                soft_delete(&mut st, td, id)?;
                (render(td, &row, &HashMap::new()), false)
            }
        } else {
            soft_delete(&mut st, td, id)?;
            (render(td, &row, &HashMap::new()), false)
        }
    };
    if notify {
        if let Some(s) = td.subject {
            publish(app, format!("{s}.delete"), "Deleted", &rendered).await;
        }
    }
    Ok(single(200, rendered))
}

// ---------------------------------------------------------------------------------------------
// Lists and filters

fn first_value<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// `page` (default 1) and `size` (default 50, -1 = no limit).
fn pagination(q: &[(String, String)]) -> Result<(i64, i64), ApiError> {
    let parse = |k: &str, d: i64| -> Result<i64, ApiError> {
        match first_value(q, k) {
            None | Some("") => Ok(d),
            Some(v) => v.parse::<i64>().map_err(|_| {
                err(
                    400,
                    format!("strconv.Atoi: parsing \"{v}\": invalid syntax"),
                )
            }),
        }
    };
    let page = parse("page", 1)?;
    let size = parse("size", 50)?;
    Ok((if page < 1 { 1 } else { page }, size))
}

/// A parsed filter value for one field.
struct Filter {
    field: &'static str,
    kind: Kind,
    value: Value,
}

/// echo's query binding: tag match exact, then case-insensitive; unknown keys ignored; a
/// value that does not parse is a bind error (500).
fn filters(td: &TypeDef, q: &[(String, String)]) -> Result<Vec<Filter>, ApiError> {
    let mut out: Vec<Filter> = Vec::new();
    for f in &td.fields {
        let Some(tag) = f.query else { continue };
        let raw = q
            .iter()
            .find(|(k, _)| k == tag)
            .or_else(|| q.iter().find(|(k, _)| k.eq_ignore_ascii_case(tag)))
            .map(|(_, v)| v.as_str());
        let Some(raw) = raw else { continue };
        let value = match f.kind {
            Kind::U64 => raw
                .parse::<u64>()
                .map(Value::from)
                .map_err(|_| format!("strconv.ParseUint: parsing \"{raw}\": invalid syntax")),
            Kind::Int => raw
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| format!("strconv.ParseInt: parsing \"{raw}\": invalid syntax")),
            Kind::Bool => match raw {
                "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Value::Bool(true)),
                "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Value::Bool(false)),
                _ => Err(format!(
                    "strconv.ParseBool: parsing \"{raw}\": invalid syntax"
                )),
            },
            Kind::Time => store::normalise_time(raw)
                .map(Value::String)
                .ok_or_else(|| format!("parsing time \"{raw}\"")),
            _ => Ok(Value::String(raw.to_string())),
        }
        .map_err(|e| err(500, format!("code=400, message={e}")))?;
        out.push(Filter {
            field: f.json,
            kind: f.kind,
            value,
        });
    }
    Ok(out)
}

fn matches(row: &Row, fs: &[Filter]) -> bool {
    fs.iter().all(|f| match (row.get(f.field), f.kind) {
        (Some(v), Kind::Time) => {
            v.as_str().and_then(store::parse_time) == f.value.as_str().and_then(store::parse_time)
        }
        (Some(v), Kind::Int) => v.as_i64() == f.value.as_i64(),
        (Some(v), _) => *v == f.value,
        (None, _) => false,
    })
}

fn list(app: &App, td: &'static TypeDef, q: &[(String, String)]) -> ApiResult {
    let (page, size) = pagination(q)?;
    let fs = filters(td, q)?;
    let st = app.lock();
    let rows: Vec<&Row> = st.live(td.path).filter(|r| matches(r, &fs)).collect();
    let total = rows.len() as i64;
    let data: Vec<String> = if size < 0 {
        rows.iter()
            .map(|r| render(td, r, &HashMap::new()))
            .collect()
    } else {
        let skip = ((page - 1).saturating_mul(size)).max(0) as usize;
        rows.iter()
            .skip(skip)
            .take(size as usize)
            .map(|r| render(td, r, &HashMap::new()))
            .collect()
    };
    Ok(Reply {
        status: 200,
        meta: (page, size, total),
        data,
    })
}

// ---------------------------------------------------------------------------------------------
// Custom routes

fn wrd_sets(app: &App, body: &[u8]) -> ApiResult {
    let td = types::by_path("workload-resource-definitions").ok_or_else(not_found)?;
    let items = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(a)) if a.is_empty() => return Err(err(400, "JSON payload is empty")),
        Ok(Value::Array(a)) => a,
        Ok(Value::Object(m)) if m.is_empty() => return Err(err(400, "JSON payload is empty")),
        Ok(other) => {
            return Err(err(
                500,
                format!(
                    "code=400, message=Unmarshal type error: expected=[]v0.WorkloadResourceDefinition, got={}",
                    json_type(&other)
                ),
            ))
        }
        Err(e) => return Err(err(400, e.to_string())),
    };
    let mut bound = Vec::new();
    let mut missing = Vec::new();
    for item in &items {
        let Some(m) = item.as_object() else {
            return Err(err(
                400,
                format!(
                    "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                    json_type(item)
                ),
            ));
        };
        payload_check(td, m, false)?;
        let b = bind(td, m)?;
        missing.extend(missing_required(td, &b));
        bound.push(b);
    }
    if !missing.is_empty() {
        return Err(err(
            400,
            format!("Missing required field(s) : {}", missing.join(",")),
        ));
    }
    let mut st = app.lock();
    let mut data = Vec::new();
    for b in bound {
        let (_, r, _) = insert(app, &mut st, td, b)?;
        data.push(r);
    }
    let n = data.len() as i64;
    Ok(Reply {
        status: 201,
        meta: (1, n, n),
        data,
    })
}

fn delete_workload_events(app: &App, q: &[(String, String)]) -> ApiResult {
    let td = types::by_path("workload-events").ok_or_else(not_found)?;
    let (page, size) = pagination(q)?;
    let mut keys: Vec<&str> = q.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    if keys.len() != 1 {
        return Err(err(
            400,
            "must provide one - and only one - query parameter when deleting multiple workload events",
        ));
    }
    let valid = ["workloadinstanceid", "helmworkloadinstanceid"];
    if !keys
        .iter()
        .all(|k| valid.iter().any(|v| v.eq_ignore_ascii_case(k)))
    {
        return Err(err(
            400,
            "can only delete multiple workload events using query parameter keys [workloadinstanceid helmworkloadinstanceid]",
        ));
    }
    let fs = filters(td, q)?;
    let mut st = app.lock();
    let ids: Vec<u64> = st
        .live(td.path)
        .filter(|r| matches(r, &fs))
        .map(Row::id)
        .collect();
    if ids.is_empty() {
        return Err(err(404, "object not found"));
    }
    let mut data = Vec::new();
    for id in &ids {
        if let Some(r) = st.get_live(td.path, *id) {
            data.push(render(td, r, &HashMap::new()));
        }
        soft_delete(&mut st, td, *id)?;
    }
    Ok(Reply {
        status: 200,
        meta: (page, size, ids.len() as i64),
        data,
    })
}

/// `GET /v0/events-join-attached-object-references`: events inner-joined with their
/// attached-object reference, filtered on the reference's ObjectID and on the Event query
/// tags. Like the real handler it neither paginates nor counts (TotalCount 0), and the raw
/// join does not exclude soft-deleted references. Sandbox extension: `objecttype` also filters
/// on the reference's ObjectType (the real API ignores that key).
fn events_join(app: &App, q: &[(String, String)]) -> ApiResult {
    let td = types::by_path("events").ok_or_else(not_found)?;
    let (page, size) = pagination(q)?;
    let fs = filters(td, q)?;
    let object_id = match first_value(q, "objectid") {
        None | Some("") => return Err(err(400, "must provide object ID")),
        Some(v) => v.parse::<u64>().map_err(|_| {
            err(
                500,
                format!("ERROR: could not parse \"{v}\" as type int (SQLSTATE 22P02)"),
            )
        })?,
    };
    let object_type = first_value(q, "objecttype");
    let st = app.lock();
    let refs = st.tables.get("attached-object-references");
    let data: Vec<String> = st
        .live(td.path)
        .filter(|e| matches(e, &fs))
        .filter(|e| {
            let Some(rid) = e.get("AttachedObjectReferenceID").and_then(Value::as_u64) else {
                return false;
            };
            let Some(r) = refs.and_then(|t| t.get(&rid)) else {
                return false;
            };
            r.get("ObjectID").and_then(Value::as_u64) == Some(object_id)
                && object_type
                    .is_none_or(|ot| r.get("ObjectType").and_then(Value::as_str) == Some(ot))
        })
        .map(|e| render(td, e, &HashMap::new()))
        .collect();
    Ok(Reply {
        status: 200,
        meta: (page, size, 0),
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert!(matches!(
            route("/v0/workload-instances"),
            Some(Route::Collection(_))
        ));
        assert!(matches!(
            route("/v0/workload-instances/12"),
            Some(Route::Item(_, _))
        ));
        assert!(route("/v0/nope").is_none());
        assert!(route("/v0/workload-instances/1/x").is_none());
        assert!(route("/workload-instances").is_none());
    }

    #[test]
    fn payload_check_rules() {
        let td = types::by_path("workload-definitions").expect("wd");
        let m = |s: &str| serde_json::from_str::<Map<String, Value>>(s).expect("json");
        assert!(payload_check(td, &m(r#"{"Name":"a","YAMLDocument":"x"}"#), false).is_ok());
        let e = payload_check(td, &m(r#"{"id":1}"#), false).expect_err("gorm");
        assert!(e
            .message
            .starts_with("Update of GORM Model fields is not allowed"));
        let e = payload_check(td, &m(r#"{"WorkloadInstances":null}"#), true).expect_err("assoc");
        assert!(e
            .message
            .starts_with("Update of associated objects is not allowed"));
        assert!(payload_check(td, &m(r#"{"WorkloadInstances":null}"#), false).is_ok());
        let e = payload_check(td, &m(r#"{"Bogus":1}"#), false).expect_err("unsupported");
        assert_eq!(e.message, "Unsupported fields are not allowed : Bogus");
        // Go-name matching is case-insensitive.
        assert!(payload_check(td, &m(r#"{"reconciled":true}"#), true).is_ok());
    }
}
