//! How the observability reconcilers make and remove the objects they compose (child
//! definitions and instances, helm workloads), idempotently.
//!
//! Unlike Threeport's (which POSTs each child and records its ID only at the end, so a retry
//! after any failure is refused forever with "name already exists", and whose Updated does
//! nothing): a child is found by the ID its parent recorded, else by its name (the API keeps
//! names unique per type), and only made when neither finds it; a found child whose fields
//! differ from what the parent now says is PATCHed (with `Reconciled:false` when its own
//! reconciler has to act on the change). Deleting a child that is already gone is success.

use serde_json::{Map, Value};

use crate::engine::ReconcileError;
use crate::threeport::api::ThreeportApi;
use crate::threeport::models::{ApiObject, Filter, TypedApi};

/// The child `desired` (named `name`), made if it does not exist, its fields brought up to
/// date if it does; its ID. `recorded`: the ID its parent recorded, if any. `retrigger`:
/// PATCH a changed child with `Reconciled:false`, so its reconciler applies the change.
pub async fn ensure<T: ApiObject>(
    api: &dyn ThreeportApi,
    recorded: Option<u64>,
    name: &str,
    desired: &T,
    retrigger: bool,
) -> Result<u64, ReconcileError> {
    let kind = T::OBJECT_TYPE.name;
    let Some(existing) = find::<T>(api, recorded, name).await? else {
        let made = api.create_object(desired).await?;
        return made.id().ok_or_else(|| {
            ReconcileError::transient(format!("the API returned {kind} {name} without an ID"))
        });
    };
    let id = existing
        .id()
        .ok_or_else(|| ReconcileError::transient(format!("{kind} {name} has no ID")))?;
    let existing = serde_json::to_value(&existing).map_err(encode)?;
    if existing["DeletionScheduled"].is_string() {
        // Its name is taken until its deletion finishes; a new one is made then.
        return Err(ReconcileError::transient(format!(
            "{kind} {name} (ID {id}) is being deleted; waiting to make it again"
        )));
    }
    let desired = serde_json::to_value(desired).map_err(encode)?;
    let (wanted, has) = (
        &desired["KubernetesRuntimeInstanceID"],
        &existing["KubernetesRuntimeInstanceID"],
    );
    if !wanted.is_null() && !has.is_null() && wanted != has {
        // Its release would stay on the old runtime: moving is deleting and making anew.
        return Err(ReconcileError::permanent(format!(
            "{kind} {name} (ID {id}) runs on runtime {has}, not {wanted}; moving it to another \
             runtime is not supported: delete the instance and create it on the new runtime"
        )));
    }
    let changes = changed_fields(&desired, &existing);
    if !changes.is_empty() {
        let mut body = changes;
        if retrigger {
            body.insert("Reconciled".to_string(), Value::Bool(false));
        }
        api.patch(T::OBJECT_TYPE, id, Value::Object(body)).await?;
    }
    Ok(id)
}

/// Delete the child recorded as `recorded` (else found by `name`); done when it is gone. The
/// API refuses (409) while a definition still has instances or a deletion is in progress:
/// that is retried with backoff until it goes through.
pub async fn remove<T: ApiObject>(
    api: &dyn ThreeportApi,
    recorded: Option<u64>,
    name: &str,
) -> Result<(), ReconcileError> {
    let Some(existing) = find::<T>(api, recorded, name).await? else {
        return Ok(());
    };
    let Some(id) = existing.id() else {
        return Ok(());
    };
    if serde_json::to_value(&existing).map_err(encode)?["DeletionScheduled"].is_string() {
        return Ok(());
    }
    api.delete_object::<T>(id).await?;
    Ok(())
}

/// The child by its recorded ID, else by name.
async fn find<T: ApiObject>(
    api: &dyn ThreeportApi,
    recorded: Option<u64>,
    name: &str,
) -> Result<Option<T>, ReconcileError> {
    if let Some(id) = recorded {
        match api.get_object::<T>(id).await {
            Ok(o) => return Ok(Some(o)),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    // Compared here as well: an object found by the filter alone, had the API ignored it,
    // would be someone else's.
    Ok(api
        .list_objects::<T>(&[Filter::eq("Name", name)])
        .await?
        .into_iter()
        .find(|o| {
            serde_json::to_value(o)
                .map(|v| v["Name"] == name)
                .unwrap_or(false)
        }))
}

/// The top-level fields of `desired` whose value `existing` does not have.
pub fn changed_fields(desired: &Value, existing: &Value) -> Map<String, Value> {
    desired
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(key, value)| existing.get(key.as_str()) != Some(value))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

fn encode(e: serde_json::Error) -> ReconcileError {
    ReconcileError::permanent(format!("encoding an object: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_fields_that_differ_are_changed() {
        let desired = json!({"Name": "a", "Repo": "https://x", "ChartVersion": "1.0"});
        let existing = json!({"ID": 3, "Name": "a", "Repo": "https://x", "ChartVersion": "0.9",
                              "Reconciled": true});
        let changes = changed_fields(&desired, &existing);
        assert_eq!(Value::Object(changes), json!({"ChartVersion": "1.0"}));
        assert!(changed_fields(&json!({"Name": "a"}), &existing).is_empty());
    }
}
