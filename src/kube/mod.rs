//! Access to the Kubernetes clusters Threeport manages (spec 3.1).
//!
//! - [`cluster`]: the operations reconcilers use, as traits (real: [`RuntimeHandle`]).
//! - [`credentials`]: `KubernetesRuntimeInstance` -> endpoint, CA, client cert or token.
//! - [`clients`]: one `kube::Client` per runtime instance, rebuilt on credential rotation.
//! - [`discovery`]: per-runtime (apiVersion, kind) -> resource and scope, fetched lazily.
//! - [`ops`]: create / apply / delete / get / list on `DynamicObject`s, and [`KubeRuntimes`],
//!   which hands out a [`RuntimeHandle`] per runtime instance.
//! - [`manifest`]: YAML splitting, namespace assignment, labels, the ThreeportWorkload object.

pub mod clients;
pub mod cluster;
pub mod credentials;
pub mod discovery;
pub mod error;
pub mod manifest;
pub mod ops;

pub use clients::{ClientCache, ClientSettings};
pub use cluster::{Cluster, Clusters};
pub use credentials::{token_expiring, RuntimeAuth, RuntimeCredentials};
pub use discovery::{DiscoveryCache, ResolvedKind};
pub use error::KubeError;
pub use manifest::ManifestError;
pub use ops::{KubeRuntimes, KubeSettings, RuntimeHandle};
