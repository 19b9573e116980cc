//! AWS for the aws and secret controllers: sessions from Threeport AwsAccounts
//! ([`session`]), classified errors ([`error`]), and what is built there ([`eks`]).
//! Everything goes through the official AWS SDK for Rust on the manager's rustls stack.

pub mod eks;
pub mod error;
pub mod iam;
pub mod rds;
pub mod s3;
pub mod secrets_manager;
pub mod session;

pub use error::AwsError;
pub use session::{AwsSession, AwsSessions};

/// A build's record of what exists, stored as an object's `ResourceInventory` in
/// aws-builder's JSON format.
pub trait Inventory: serde::Serialize + serde::de::DeserializeOwned + Default {
    /// From the object's `ResourceInventory` (absent or `null` for a new object).
    fn from_value(value: Option<&serde_json::Value>) -> Result<Self, serde_json::Error> {
        match value {
            None | Some(serde_json::Value::Null) => Ok(Self::default()),
            Some(v) => serde_json::from_value(v.clone()),
        }
    }

    /// As JSON for the object's `ResourceInventory`.
    fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("an inventory serialises")
    }
}
