//! Everything about talking to the Threeport REST API.
//!
//! - [`api`]: the `ThreeportApi` trait the engine and reconcilers use.
//! - [`error`]: typed API errors with retry classes.
//! - [`client`]: the hyper + rustls implementation (mTLS, timeouts, envelope decoding).
//! - [`models`]: typed objects of the API (spec 2.5, 2.6).
//! - [`events`]: Threeport event recording (spec 1.10).
//! - [`crypto`]: AES-GCM decryption in Threeport's format (spec 2.9).

pub mod api;
pub mod client;
pub mod crypto;
pub mod error;
pub mod events;
pub mod location;
pub mod models;

pub use api::{ApiRequest, ApiResponse, Method, ObjectType, ThreeportApi};
pub use error::{ApiError, RetryClass};
