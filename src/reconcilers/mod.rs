//! Threeport controllers implemented by this manager: one folder per controller, one file per
//! reconciler, and one line in [`IMPLEMENTATIONS`] that registers the controller. Whether a
//! controller is implemented ([`ControllerSpec::implemented`]) is derived from that line, so
//! the registry's table and the implementations cannot disagree; enabling a controller that
//! is not implemented is a start-up error rather than a silent no-op. The walk-through is in
//! docs/adding-a-controller.md.

pub mod aws;
pub mod gateway;
pub mod helm_workload;
pub mod kubernetes_runtime;
pub mod observability;
pub mod runtime_access;
pub mod runtime_token;
pub mod secret;
pub mod user_workload;
pub mod workload;

#[cfg(test)]
pub(crate) mod testing;

use std::sync::Arc;

use crate::aws::AwsSessions;
use crate::config::{Config, GatewayConfig, HelmConfig, ObservabilityConfig};
use crate::engine::{DynReconciler, Reconciler};
use crate::kube::{KubeRuntimes, KubeSettings};
#[cfg(doc)]
use crate::registry::ControllerSpec;
use crate::threeport::crypto::EncryptionKey;
use crate::threeport::models::ApiObject;
use crate::threeport::ObjectType;
use runtime_access::RuntimeAccess;
use runtime_token::RuntimeTokens;

/// Every controller this manager implements, by its `--enable` name, with the function that
/// builds its reconcilers. Adding a controller is adding its folder and one line here.
pub static IMPLEMENTATIONS: &[Implementation] = &[
    Implementation {
        controller: "workload",
        reconcilers: workload::reconcilers,
    },
    Implementation {
        controller: "gateway",
        reconcilers: gateway::reconcilers,
    },
    Implementation {
        controller: "kubernetes-runtime",
        reconcilers: kubernetes_runtime::reconcilers,
    },
    Implementation {
        controller: "helm-workload",
        reconcilers: helm_workload::reconcilers,
    },
    Implementation {
        controller: "aws",
        reconcilers: aws::reconcilers,
    },
    Implementation {
        controller: "secret",
        reconcilers: secret::reconcilers,
    },
    Implementation {
        controller: "observability",
        reconcilers: observability::reconcilers,
    },
];

/// One implemented controller.
pub struct Implementation {
    /// The registry's name of the controller, e.g. `workload`.
    pub controller: &'static str,
    /// Builds one handler per reconciler of the controller, in the registry's order.
    pub reconcilers: fn(&ReconcilerDeps) -> Vec<Registered>,
}

/// A reconciler as the engine runs it, with what identifies it in the registry.
pub struct Registered {
    /// The registry's (Threeport's) reconciler name, e.g. `WorkloadInstanceReconciler`.
    pub name: &'static str,
    /// The object type it reconciles, from its model.
    pub object: ObjectType,
    /// The implementation the engine calls.
    pub handler: Arc<dyn DynReconciler>,
}

impl Registered {
    /// Register `reconciler` under its Threeport `name`; the object type comes from its model.
    pub fn new<R>(name: &'static str, reconciler: R) -> Self
    where
        R: Reconciler,
        R::Object: ApiObject,
    {
        Self {
            name,
            object: <R::Object as ApiObject>::OBJECT_TYPE,
            handler: Arc::new(reconciler),
        }
    }
}

/// The registration of the controller with this `--enable` name, if the manager implements it.
pub fn implementation(controller: &str) -> Option<&'static Implementation> {
    IMPLEMENTATIONS.iter().find(|i| i.controller == controller)
}

/// Whether the manager implements the controller with this `--enable` name.
pub fn is_implemented(controller: &str) -> bool {
    implementation(controller).is_some()
}

/// What reconcilers share in one process, built once from the config: one Kubernetes client
/// and discovery cache per runtime cluster for every reconciler and worker.
#[derive(Clone)]
pub struct ReconcilerDeps {
    /// The Kubernetes cluster of a runtime instance, with cached clients and EKS tokens
    /// refreshed on the way.
    pub runtimes: RuntimeAccess,
    /// The gateway controller's values (the `gateway` config section).
    pub gateway: GatewayConfig,
    /// How the helm-workload controller runs helm (the `helm` config section).
    pub helm: HelmConfig,
    /// The observability controller's chart repositories (the `observability` section).
    pub observability: ObservabilityConfig,
    /// AWS sessions for the aws and secret controllers (the `aws` section).
    pub aws: Arc<AwsSessions>,
    /// `ENCRYPTION_KEY`, for what Threeport encrypts outside stored fields (a
    /// SecretDefinition's `Data` in its notification).
    pub encryption_key: Option<EncryptionKey>,
}

impl ReconcilerDeps {
    /// Build the shared dependencies; fails (with a message naming `encryption_key`) when the
    /// configured encryption key is unusable.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let kube = KubeRuntimes::from_config(config, KubeSettings::default())
            .map_err(|e| format!("encryption_key: {e}"))?;
        let key = config
            .encryption_key
            .as_ref()
            .map(|k| EncryptionKey::from_base64(k.expose()))
            .transpose()
            .map_err(|e| format!("encryption_key: {e}"))?;
        let aws = Arc::new(AwsSessions::new(config.aws.clone(), key.clone()));
        Ok(Self {
            runtimes: RuntimeAccess::new(Arc::new(kube), Arc::new(RuntimeTokens::new(aws.clone()))),
            gateway: config.gateway.clone(),
            helm: config.helm.clone(),
            observability: config.observability.clone(),
            aws,
            encryption_key: key,
        })
    }
}

/// The handler of a registry reconciler, by its Threeport name; `None` when its controller is
/// not implemented.
pub fn handler_for(reconciler_name: &str, deps: &ReconcilerDeps) -> Option<Arc<dyn DynReconciler>> {
    let (controller, _) = crate::registry::reconciler(reconciler_name)?;
    (implementation(controller.name)?.reconcilers)(deps)
        .into_iter()
        .find(|r| r.name == reconciler_name)
        .map(|r| r.handler)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{self, CONTROLLERS};

    fn deps() -> ReconcilerDeps {
        ReconcilerDeps {
            runtimes: testing::runtime_access(Arc::new(KubeRuntimes::new(
                None,
                KubeSettings::default(),
            ))),
            gateway: GatewayConfig::default(),
            helm: HelmConfig::default(),
            observability: ObservabilityConfig::default(),
            aws: Arc::new(AwsSessions::new(Default::default(), None)),
            encryption_key: None,
        }
    }

    #[test]
    fn every_implementation_builds_exactly_its_registry_reconcilers() {
        assert!(!IMPLEMENTATIONS.is_empty());
        for implementation in IMPLEMENTATIONS {
            let spec = registry::controller(implementation.controller).unwrap_or_else(|| {
                panic!("{} is not a registry controller", implementation.controller)
            });
            let built = (implementation.reconcilers)(&deps());
            let built: Vec<(&str, ObjectType)> = built.iter().map(|r| (r.name, r.object)).collect();
            let expected: Vec<(&str, ObjectType)> = spec
                .reconcilers
                .iter()
                .map(|r| (r.name, r.object))
                .collect();
            assert_eq!(built, expected, "controller {}", spec.name);
        }
    }

    #[test]
    fn implemented_is_derived_from_the_registrations() {
        let implemented: Vec<&str> = CONTROLLERS
            .iter()
            .filter(|c| c.implemented())
            .map(|c| c.name)
            .collect();
        let registered: Vec<&str> = IMPLEMENTATIONS.iter().map(|i| i.controller).collect();
        assert_eq!(implemented, registered);
        for c in CONTROLLERS {
            for r in c.reconcilers {
                assert_eq!(
                    handler_for(r.name, &deps()).is_some(),
                    c.implemented(),
                    "{}",
                    r.name
                );
            }
        }
        assert!(handler_for("NoSuchReconciler", &deps()).is_none());
    }
}
