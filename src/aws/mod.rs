//! AWS for the aws and secret controllers: sessions from Threeport AwsAccounts
//! ([`session`]), classified errors ([`error`]), and what is built there ([`eks`]).
//! Everything goes through the official AWS SDK for Rust on the manager's rustls stack.

pub mod eks;
pub mod error;
pub mod rds;
pub mod s3;
pub mod secrets_manager;
pub mod session;

pub use error::AwsError;
pub use session::{AwsSession, AwsSessions};
