//! The Threeport REST API as the engine and the reconcilers see it.
//!
//! Everything above this trait talks in terms of object types, IDs and JSON bodies; everything
//! below it (the hyper client in [`super::client`], or an in-memory answerer in benchmarks and
//! unit tests) deals with transport. The trait has one required method, [`ThreeportApi::call`],
//! so a fake only has to answer requests; the convenience methods (GET by id, paginated list,
//! minimal PATCH, ...) are provided on top of it and are the same for every implementation.

use async_trait::async_trait;
use serde_json::Value;

use super::error::ApiError;
use super::models::FieldSpec;

/// Default page size of the Threeport API (spec 2.3). Lists read every page, never just the first.
pub const API_PAGE_SIZE: u64 = 50;

/// An object type of the Threeport API, e.g. `WorkloadInstance` at `/v0/workload-instances`.
/// Declared once each in [`super::models`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjectType {
    /// Go type name without the package, e.g. `WorkloadInstance`.
    pub name: &'static str,
    /// Kebab-case plural route segment, e.g. `workload-instances`.
    pub path: &'static str,
    /// lowerCamel subject prefix of its notifications (`workloadInstance.create`, spec 1.5)
    /// when the API publishes them, i.e. when a reconciler owns the type.
    pub subject: Option<&'static str>,
    /// Its fields, by embedded struct then its own, in Go struct order; empty for a type
    /// declared by route only.
    pub field_groups: &'static [&'static [FieldSpec]],
}

impl ObjectType {
    /// A type the API publishes no notifications for.
    pub const fn new(name: &'static str, path: &'static str) -> Self {
        Self {
            name,
            path,
            subject: None,
            field_groups: &[],
        }
    }

    /// The same type with its field table.
    pub const fn with_fields(self, field_groups: &'static [&'static [FieldSpec]]) -> Self {
        Self {
            field_groups,
            ..self
        }
    }

    /// Every field, in Go struct order.
    pub fn fields(&self) -> impl Iterator<Item = &'static FieldSpec> {
        self.field_groups.iter().flat_map(|group| group.iter())
    }

    /// The field with this JSON name.
    pub fn field(&self, json: &str) -> Option<&'static FieldSpec> {
        self.fields().find(|f| f.json == json)
    }

    /// The same type, reconciled: the API publishes its changes on `<subject>.*`.
    pub const fn with_subject(self, subject: &'static str) -> Self {
        Self {
            subject: Some(subject),
            ..self
        }
    }

    /// Whether a reconciler owns the type (the API publishes notifications for it).
    pub fn is_reconciled(&self) -> bool {
        self.subject.is_some()
    }

    /// The `v0.<X>` string Threeport stores in AttachedObjectReference and event queries
    /// (Go's `reflect.Type.String()`, spec 1.10).
    pub fn versioned_name(&self) -> String {
        format!("v0.{}", self.name)
    }

    /// `/v0/<path>`: the collection route.
    pub fn collection_path(&self) -> String {
        format!("/v0/{}", self.path)
    }

    /// `/v0/<path>/<id>`: the object route.
    pub fn object_path(&self, id: u64) -> String {
        format!("/v0/{}/{}", self.path, id)
    }
}

/// HTTP methods the controllers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// Read one object or a page of a collection.
    Get,
    /// Create an object (answered with 201).
    Post,
    /// Change only the fields in the body.
    Patch,
    /// Replace an object.
    Put,
    /// Delete an object (on a reconciled type, the first DELETE only schedules the deletion).
    Delete,
}

impl Method {
    /// The method as sent and as the `method` metric label: `GET`, `POST`, ...
    pub fn as_str(&self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }

    /// The success code Threeport answers with: 201 for POST, 200 otherwise (spec 2.2).
    pub fn expected_status(&self) -> u16 {
        match self {
            Method::Post => 201,
            _ => 200,
        }
    }
}

/// One request to the API.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiRequest {
    /// The HTTP method.
    pub method: Method,
    /// Path without query, e.g. `/v0/workload-instances/917190976565575681`.
    pub path: String,
    /// Query parameters, unescaped; the transport escapes them.
    pub query: Vec<(String, String)>,
    /// JSON body; `None` sends an empty one (GET, DELETE).
    pub body: Option<Value>,
    /// Route template used as a metric label and span name, e.g. `/v0/workload-instances/{id}`.
    /// Never contains IDs or names.
    pub route: String,
}

impl ApiRequest {
    /// A request without query or body; `route` is the template of `path` (see
    /// [`ApiRequest::route`]).
    pub fn new(method: Method, path: impl Into<String>, route: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
            route: route.into(),
        }
    }

    /// Append a query parameter (unescaped; repeats are kept).
    pub fn query(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((key.into(), value.into()));
        self
    }

    /// Set the JSON body.
    pub fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
}

/// `Meta` of the response envelope (spec 2.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct PageMeta {
    /// 1-based number of this page.
    #[serde(rename = "Page", default)]
    pub page: u64,
    /// Page size the API used (50 unless the request asked otherwise; -1 for "no limit",
    /// which the API echoes as asked).
    #[serde(rename = "Size", default)]
    pub size: i64,
    /// Rows matching the query across all pages.
    #[serde(rename = "TotalCount", default)]
    pub total_count: u64,
}

/// A successful response: the envelope's `Data` array and `Meta`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ApiResponse {
    /// The `Data` array: the objects of this response, as JSON.
    pub data: Vec<Value>,
    /// The `Meta` object: pagination; all zero when the envelope has none.
    pub meta: PageMeta,
}

impl ApiResponse {
    /// The single object of a GET-by-id, POST, PATCH or DELETE response.
    pub fn into_single(self, route: &str) -> Result<Value, ApiError> {
        self.data
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::Decode {
                route: route.to_string(),
                reason: "response envelope has no object in Data".into(),
            })
    }
}

/// The Threeport API. Implementations only answer [`ThreeportApi::call`]; everything else is
/// derived so every implementation behaves the same way (pagination, expected codes, routes).
#[async_trait]
pub trait ThreeportApi: Send + Sync + 'static {
    /// Send one request and return the decoded envelope when the status is the one Threeport
    /// answers with on success ([`Method::expected_status`]); any other status is mapped to a
    /// typed [`ApiError`].
    async fn call(&self, request: ApiRequest) -> Result<ApiResponse, ApiError>;

    /// `GET /v0/<xs>/<id>`.
    async fn get(&self, ty: ObjectType, id: u64) -> Result<Value, ApiError> {
        let route = format!("/v0/{}/{{id}}", ty.path);
        let resp = self
            .call(ApiRequest::new(
                Method::Get,
                ty.object_path(id),
                route.clone(),
            ))
            .await?;
        resp.into_single(&route)
    }

    /// `GET /v0/<xs>?<filters>&page=<page>&size=<size>`: one page (1-based) of a list.
    async fn list_page(
        &self,
        ty: ObjectType,
        filters: &[(&str, String)],
        page: u64,
        size: u64,
    ) -> Result<ApiResponse, ApiError> {
        let mut req = ApiRequest::new(Method::Get, ty.collection_path(), ty.collection_path());
        for (k, v) in filters {
            req = req.query(*k, v.clone());
        }
        req = req
            .query("page", page.to_string())
            .query("size", size.to_string());
        self.call(req).await
    }

    /// `GET /v0/<xs>?<filters>`, reading every page (Threeport's Go client reads only the first
    /// 50 rows, spec 4.2 #17).
    async fn list(
        &self,
        ty: ObjectType,
        filters: &[(&str, String)],
    ) -> Result<Vec<Value>, ApiError> {
        let mut all = Vec::new();
        let mut page: u64 = 1;
        loop {
            let resp = self.list_page(ty, filters, page, API_PAGE_SIZE).await?;
            let got = resp.data.len() as u64;
            all.extend(resp.data);
            // Stop on a short page, or once the total is reached; the page cap guards against an
            // API that keeps answering full pages with a wrong TotalCount.
            if got < API_PAGE_SIZE || all.len() as u64 >= resp.meta.total_count || page >= 100_000 {
                return Ok(all);
            }
            page += 1;
        }
    }

    /// `POST /v0/<xs>` (expects 201); returns the created object.
    async fn create(&self, ty: ObjectType, body: Value) -> Result<Value, ApiError> {
        let route = ty.collection_path();
        let resp = self
            .call(ApiRequest::new(Method::Post, ty.collection_path(), route.clone()).body(body))
            .await?;
        resp.into_single(&route)
    }

    /// `PATCH /v0/<xs>/<id>` with a minimal body (only the fields that change).
    async fn patch(&self, ty: ObjectType, id: u64, body: Value) -> Result<Value, ApiError> {
        let route = format!("/v0/{}/{{id}}", ty.path);
        let resp = self
            .call(ApiRequest::new(Method::Patch, ty.object_path(id), route.clone()).body(body))
            .await?;
        resp.into_single(&route)
    }

    /// `DELETE /v0/<xs>/<id>`.
    async fn delete(&self, ty: ObjectType, id: u64) -> Result<Value, ApiError> {
        let route = format!("/v0/{}/{{id}}", ty.path);
        let resp = self
            .call(ApiRequest::new(
                Method::Delete,
                ty.object_path(id),
                route.clone(),
            ))
            .await?;
        resp.into_single(&route)
    }
}

#[async_trait]
impl<T: ThreeportApi + ?Sized> ThreeportApi for std::sync::Arc<T> {
    async fn call(&self, request: ApiRequest) -> Result<ApiResponse, ApiError> {
        (**self).call(request).await
    }
}
