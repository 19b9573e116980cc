//! SecretDefinitionReconciler (spec 3.6): a definition's data in AWS Secrets Manager
//! ([`crate::aws::secrets_manager`]), in the AwsAccount's `DefaultRegion`, named as the
//! definition.
//!
//! The data exists only in the notification (the API never stores it, spec 1.9.3): each
//! value encrypted by the API on POST. Created writes it; Updated writes it when the
//! notification carries `Data` (a PATCH with data; values the API passes through unencrypted
//! are taken as they are, ciphertext is authenticated so the two cannot be confused);
//! Deleted deletes the secret. Without an AwsAccountID there is nothing to do (as in Go).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use tracing::info;

use crate::aws::secrets_manager::{delete_secret, put_secret, secret_string};
use crate::aws::AwsSessions;
use crate::engine::{Outcome, ReconcileContext, ReconcileError, Reconciler};
use crate::reconcilers::aws::aws_session;
use crate::threeport::crypto::EncryptionKey;
use crate::threeport::models::SecretDefinition;

/// Reconciles secret definitions.
pub struct SecretDefinitionReconciler {
    sessions: Arc<AwsSessions>,
    key: Option<EncryptionKey>,
}

impl SecretDefinitionReconciler {
    /// Writes secrets with sessions from `sessions`, decrypting with `key`.
    pub fn new(sessions: Arc<AwsSessions>, key: Option<EncryptionKey>) -> Self {
        Self { sessions, key }
    }

    /// The plaintext data of the notification, if it carries any. `encrypted`: every value
    /// must decrypt (a Created notification, which the API encrypts; a value that does not
    /// decrypt means another ENCRYPTION_KEY, and storing ciphertext as the secret would be
    /// wrong). Otherwise (an Updated one, which the API passes on as sent) values that do not
    /// decrypt are taken as plaintext: AES-GCM authenticates, so the two cannot be confused.
    fn data(
        &self,
        notified: &Value,
        encrypted: bool,
    ) -> Result<Option<BTreeMap<String, String>>, ReconcileError> {
        let Some(data) = notified.get("Data").filter(|d| !d.is_null()) else {
            return Ok(None);
        };
        // The API sends Data as a JSON object, or as that object's JSON text.
        let parsed;
        let data = match data {
            Value::String(text) => {
                parsed = serde_json::from_str::<Value>(text).map_err(|_| {
                    ReconcileError::permanent("the notification's Data is not a JSON object")
                })?;
                &parsed
            }
            other => other,
        };
        let map = data.as_object().ok_or_else(|| {
            ReconcileError::permanent("the notification's Data is not a JSON object")
        })?;
        let mut plain = BTreeMap::new();
        for (k, v) in map {
            let v = v.as_str().ok_or_else(|| {
                ReconcileError::permanent(format!("the value of Data key {k:?} is not a string"))
            })?;
            let value = match &self.key {
                Some(key) => match key.decrypt(v) {
                    Ok(plain) => plain,
                    Err(_) if !encrypted => v.to_string(),
                    Err(_) => {
                        return Err(ReconcileError::permanent(format!(
                            "the value of Data key {k:?} does not decrypt with the configured \
                             encryption key (ENCRYPTION_KEY differs from the API's?)"
                        )))
                    }
                },
                None => v.to_string(),
            };
            plain.insert(k.clone(), value);
        }
        Ok(Some(plain))
    }

    async fn write(
        &self,
        ctx: &ReconcileContext,
        definition: &SecretDefinition,
        data: BTreeMap<String, String>,
    ) -> Result<(), ReconcileError> {
        let Some(account_id) = definition.aws_account_id else {
            return Ok(());
        };
        let name = name_of(definition)?;
        let session = aws_session(ctx.api.as_ref(), &self.sessions, account_id, None).await?;
        put_secret(&session, &name, &secret_string(&data)).await?;
        info!(secret = %name, keys = data.len(), region = %session.region, "secret written to AWS Secrets Manager");
        Ok(())
    }
}

fn name_of(definition: &SecretDefinition) -> Result<String, ReconcileError> {
    definition
        .definition
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ReconcileError::permanent("the definition has no Name"))
}

#[async_trait]
impl Reconciler for SecretDefinitionReconciler {
    type Object = SecretDefinition;

    async fn created(
        &self,
        ctx: &ReconcileContext,
        object: Self::Object,
    ) -> Result<Outcome, ReconcileError> {
        if object.aws_account_id.is_none() {
            return Ok(Outcome::Done);
        }
        let data = self.data(&ctx.notified, true)?.ok_or_else(|| {
            ReconcileError::permanent("secret data not found in the notification")
        })?;
        self.write(ctx, &object, data).await?;
        Ok(Outcome::Done)
    }

    async fn updated(
        &self,
        ctx: &ReconcileContext,
        object: Self::Object,
    ) -> Result<Outcome, ReconcileError> {
        if let Some(data) = self.data(&ctx.notified, false)? {
            self.write(ctx, &object, data).await?;
        }
        Ok(Outcome::Done)
    }

    async fn deleted(
        &self,
        ctx: &ReconcileContext,
        object: Self::Object,
    ) -> Result<Outcome, ReconcileError> {
        let Some(account_id) = object.aws_account_id else {
            return Ok(Outcome::Done);
        };
        let name = name_of(&object)?;
        let session = aws_session(ctx.api.as_ref(), &self.sessions, account_id, None).await?;
        delete_secret(&session, &name).await?;
        info!(secret = %name, "secret deleted from AWS Secrets Manager");
        Ok(Outcome::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn data_is_decrypted_per_value_and_plain_values_pass() {
        let (key, _) = EncryptionKey::generate();
        let r = SecretDefinitionReconciler::new(
            Arc::new(AwsSessions::new(Default::default(), None)),
            Some(key.clone()),
        );
        let notified = json!({"Data": {"user": key.encrypt("admin").unwrap(), "note": "plain"}});
        // Updated: plaintext passes; Created: every value must decrypt.
        let data = r.data(&notified, false).unwrap().unwrap();
        assert_eq!(data["user"], "admin");
        assert_eq!(data["note"], "plain");
        assert!(r.data(&notified, true).is_err());
        let as_text = json!({"Data": serde_json::to_string(&json!({"a": key.encrypt("b").unwrap()})).unwrap()});
        assert_eq!(r.data(&as_text, true).unwrap().unwrap()["a"], "b");
        assert!(r.data(&json!({"ID": 1}), true).unwrap().is_none());
        assert!(r.data(&json!({"Data": {"n": 1}}), false).is_err());
        assert!(r.data(&json!({"Data": [1]}), false).is_err());
    }
}
