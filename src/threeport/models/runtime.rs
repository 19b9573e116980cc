//! The kubernetes-runtime controller's objects (spec 2.6, 3.4): the clusters workloads run on.
//! Mind the *sic* JSON names of [`KubernetesRuntimeInstance`].

use serde_json::Value;
use time::OffsetDateTime;

use super::{Common, Definition, Instance, Reconciliation, SecretString, WorkloadInstance};

api_object! {
    /// `/v0/kubernetes-runtime-definitions` \[R\]\[D\].
    pub struct KubernetesRuntimeDefinition as KUBERNETES_RUNTIME_DEFINITION at "kubernetes-runtime-definitions", subject "kubernetesRuntimeDefinition";
    embeds { common: Common, reconciliation: Reconciliation, definition: Definition }
    fields {
        /// `"kind"` or `"eks"`.
        "InfraProvider" => infra_provider: String,
        "InfraProviderAccountName" => infra_provider_account_name: String,
        "HighAvailability" => high_availability: bool,
        "NodeSize" => node_size: String,
        "NodeProfile" => node_profile: String,
        "NodeMaximum" => node_maximum: i64,
        "KubernetesRuntimeInstances" => kubernetes_runtime_instances: Vec<KubernetesRuntimeInstance> [association],
    }
}

api_object! {
    /// `/v0/kubernetes-runtime-instances` \[R\]\[I\].
    pub struct KubernetesRuntimeInstance as KUBERNETES_RUNTIME_INSTANCE at "kubernetes-runtime-instances", subject "kubernetesRuntimeInstance";
    embeds { common: Common, reconciliation: Reconciliation, instance: Instance }
    fields {
        /// Immutable after creation.
        "Location" => location: String,
        "ThreeportControlPlaneHost" => threeport_control_plane_host: bool,
        "APIEndpoint" => api_endpoint: String [no_query],
        /// PEM, plaintext.
        "CACertificate" => ca_certificate: String [no_query],
        /// PEM, plaintext.
        "Certificate" => certificate: String [no_query],
        /// Encrypted at rest (spec 2.9); never echoed in a PATCH.
        "CertificateKey" => certificate_key: SecretString [encrypted, no_query],
        /// Encrypted at rest (spec 2.9); never echoed in a PATCH.
        "ConnectionToken" => connection_token: SecretString [encrypted, no_query],
        "ConnectionTokenExpiration" => connection_token_expiration: OffsetDateTime [no_query],
        "DefaultRuntime" => default_runtime: bool,
        "KubernetesRuntimeDefinitionID" => kubernetes_runtime_definition_id: u64,
        /// JSON name is singular (*sic*, Go field `WorkloadInstances`).
        "WorkloadInstance" => workload_instances: Vec<WorkloadInstance> [association],
        /// JSON name is singular (*sic*).
        "ControlPlaneInstance" => control_plane_instances: Vec<Value> [association],
        "ForceDelete" => force_delete: bool,
        /// The gloo-edge support WorkloadInstance (*sic*, Go field `GatewayControllerInstanceID`).
        "GatewayWorkloadInstanceID" => gateway_workload_instance_id: u64 [no_query],
        /// The external-dns WorkloadInstance (*sic*, lower-case `d`).
        "DnsControllerInstanceId" => dns_controller_instance_id: u64 [no_query],
        /// The external-secrets WorkloadInstance (*sic*).
        "SecretsControllerInstanceId" => secrets_controller_instance_id: u64 [no_query],
        "ThreeportAgentImage" => threeport_agent_image: String [no_query],
    }
}
