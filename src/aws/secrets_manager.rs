//! A SecretDefinition's data in AWS Secrets Manager: one secret named as the definition,
//! whose value is the JSON object of its keys and plaintext values (keys sorted, as Go's JSON
//! encoding writes a map), untagged, as Threeport makes it.
//!
//! Writing is idempotent, unlike Threeport's (whose "already exists" check compares pointers
//! and never matches, so every retry after a success fails forever): an existing secret gets
//! the value as a new version, and one scheduled for deletion (a definition deleted and made
//! again within AWS's recovery window) is restored first.

use std::collections::BTreeMap;

use super::error::{aws_err, AwsError};
use super::session::AwsSession;

/// The secret's value: `{"key":"value",...}`, keys sorted.
pub fn secret_string(data: &BTreeMap<String, String>) -> String {
    serde_json::to_string(data).expect("a string map serialises")
}

/// Create the secret `name` with `value`, or write `value` to it.
pub async fn put_secret(s: &AwsSession, name: &str, value: &str) -> Result<(), AwsError> {
    let sm = s.secrets_manager();
    let made = sm
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .map_err(aws_err("secretsmanager:CreateSecret"));
    match made {
        Ok(_) => return Ok(()),
        Err(e) if e.is(&["ResourceExistsException"]) => {}
        Err(e) if e.is(&["InvalidRequestException"]) => {
            // "You can't create this secret because a secret with this name is already
            // scheduled for deletion."
            sm.restore_secret()
                .secret_id(name)
                .send()
                .await
                .map_err(aws_err("secretsmanager:RestoreSecret"))?;
        }
        Err(e) => return Err(e),
    }
    sm.put_secret_value()
        .secret_id(name)
        .secret_string(value)
        .send()
        .await
        .map_err(aws_err("secretsmanager:PutSecretValue"))?;
    Ok(())
}

/// Delete the secret `name` with AWS's recovery window, as Threeport does (already gone or
/// already scheduled counts as deleted).
pub async fn delete_secret(s: &AwsSession, name: &str) -> Result<(), AwsError> {
    let deleted = s
        .secrets_manager()
        .delete_secret()
        .secret_id(name)
        .send()
        .await
        .map_err(aws_err("secretsmanager:DeleteSecret"));
    match deleted {
        Ok(_) => Ok(()),
        Err(e) if e.is(&["ResourceNotFoundException"]) => Ok(()),
        Err(e)
            if e.is(&["InvalidRequestException"])
                && e.to_string().contains("scheduled for deletion") =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_is_a_json_object_with_sorted_keys() {
        let data: BTreeMap<String, String> = [("password", "p\"w"), ("host", "db")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(secret_string(&data), r#"{"host":"db","password":"p\"w"}"#);
    }
}
