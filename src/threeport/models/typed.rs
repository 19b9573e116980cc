//! Typed calls: how reconcilers talk to Threeport. Every call takes and returns models, so a
//! body is never built by hand and a response never decoded by hand; the object type, its
//! route, its query tags and which keys a PATCH may carry come from the object table.
//!
//! ```text
//! let wd: WorkloadDefinition = api.get_object(def_id).await?;
//! let wris: Vec<WorkloadResourceInstance> =
//!     api.list_objects(&[Filter::eq("WorkloadInstanceID", id)]).await?;
//! api.patch_object(wri_id, Patch::Changes(&WorkloadResourceInstance { reconciled: Some(true), ..Default::default() })).await?;
//! ```

use async_trait::async_trait;
use serde_json::Value;

use super::{create_body, decode, patch_body, ApiObject};
use crate::threeport::api::{ApiRequest, Method, ThreeportApi};
use crate::threeport::error::ApiError;

/// What a PATCH means. Threeport writes only the keys present in a PATCH body (spec 2.4), so
/// the two differ in intent, and in what is sent:
#[derive(Debug)]
pub enum Patch<'a, T> {
    /// A model with only the fields to change set (the others `None`). Sent as it is, minus
    /// gorm keys; an encrypted field that is set is a deliberate new secret value (the API
    /// encrypts it); an association that is set is refused before sending (a 400 otherwise).
    Changes(&'a T),
    /// A whole object read from the API, written back (what Threeport's Go controllers do).
    /// Associations and encrypted fields are dropped: the API rejects the former, and would
    /// encrypt the ciphertext of the latter a second time. Prefer [`Patch::Changes`]: writing
    /// back a whole object overwrites fields someone else changed since it was read.
    Object(&'a T),
}

/// One `?<tag>=<value>` filter of a list, naming the field by its JSON name: the query tag is
/// the table's (several are *sic*), and a field that cannot be filtered on is an error before
/// anything is sent, not a filter the API silently ignores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    field: &'static str,
    value: String,
}

impl Filter {
    /// `field == value`.
    pub fn eq(field: &'static str, value: impl ToString) -> Self {
        Self {
            field,
            value: value.to_string(),
        }
    }

    fn query<T: ApiObject>(&self) -> Result<(String, String), ApiError> {
        let ty = T::OBJECT_TYPE;
        let key = ty
            .field(self.field)
            .and_then(|f| f.query_key())
            .ok_or_else(|| {
                ApiError::Config(format!(
                    "{} cannot be filtered on {:?}: not a query field of the type",
                    ty.name, self.field
                ))
            })?;
        Ok((key.into_owned(), self.value.clone()))
    }
}

fn queries<T: ApiObject>(filters: &[Filter]) -> Result<Vec<(String, String)>, ApiError> {
    filters.iter().map(Filter::query::<T>).collect()
}

/// Typed calls over any [`ThreeportApi`] (the real client, or a fake in tests).
#[async_trait]
pub trait TypedApi: ThreeportApi {
    /// `GET /v0/<xs>/<id>`.
    async fn get_object<T: ApiObject>(&self, id: u64) -> Result<T, ApiError> {
        decode(self.get(T::OBJECT_TYPE, id).await?)
    }

    /// `GET /v0/<xs>?<filters>`, every page, in ID order (creation order).
    async fn list_objects<T: ApiObject>(&self, filters: &[Filter]) -> Result<Vec<T>, ApiError> {
        let query = queries::<T>(filters)?;
        let query: Vec<(&str, String)> =
            query.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let mut objects = self
            .list(T::OBJECT_TYPE, &query)
            .await?
            .into_iter()
            .map(decode::<T>)
            .collect::<Result<Vec<_>, _>>()?;
        objects.sort_by_key(|o| o.id());
        Ok(objects)
    }

    /// `POST /v0/<xs>` (gorm keys removed); returns the object as the API stored it.
    async fn create_object<T: ApiObject>(&self, object: &T) -> Result<T, ApiError> {
        let body = create_body(object)?;
        decode(self.create(T::OBJECT_TYPE, body).await?)
    }

    /// `POST` of several objects at once to a batch route such as
    /// `/v0/workload-resource-definition-sets` (spec 2.7), which answers 201 with the set.
    async fn create_object_set<T: ApiObject>(
        &self,
        set_route: &'static str,
        objects: &[T],
    ) -> Result<(), ApiError> {
        let body = objects
            .iter()
            .map(create_body)
            .collect::<Result<Vec<_>, _>>()?;
        self.call(ApiRequest::new(Method::Post, set_route, set_route).body(Value::Array(body)))
            .await?;
        Ok(())
    }

    /// `PATCH /v0/<xs>/<id>` (see [`Patch`]); returns the object as the API now has it.
    async fn patch_object<T: ApiObject>(
        &self,
        id: u64,
        patch: Patch<'_, T>,
    ) -> Result<T, ApiError> {
        let body = patch_body(&patch)?;
        decode(self.patch(T::OBJECT_TYPE, id, body).await?)
    }

    /// `DELETE /v0/<xs>/<id>`; `Ok(false)` when it was already gone (404), which is what a
    /// delete wants.
    async fn delete_object<T: ApiObject>(&self, id: u64) -> Result<bool, ApiError> {
        match self.delete(T::OBJECT_TYPE, id).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `DELETE /v0/<xs>?<filters>`: every object that matches (the API answers 404 when none
    /// does, which is success here).
    async fn delete_objects_where<T: ApiObject>(&self, filters: &[Filter]) -> Result<(), ApiError> {
        let ty = T::OBJECT_TYPE;
        let mut request =
            ApiRequest::new(Method::Delete, ty.collection_path(), ty.collection_path());
        for (key, value) in queries::<T>(filters)? {
            request = request.query(key, value);
        }
        match self.call(request).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl<A: ThreeportApi + ?Sized> TypedApi for A {}
