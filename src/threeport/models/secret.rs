//! The secret controller's objects (spec 3.6): secrets kept in AWS Secrets Manager and the
//! external-secrets objects that bring them into workloads.

use serde_json::Value;

use super::{Common, Definition, Instance, Reconciliation};

api_object! {
    /// `/v0/secret-definitions` \[R\]\[D\]: a secret's data. `Data` is never stored by the API;
    /// it travels only in the Created notification, each value encrypted (spec 1.5, 1.9.3).
    pub struct SecretDefinition as SECRET_DEFINITION at "secret-definitions", subject "secretDefinition";
    embeds { common: Common, definition: Definition, reconciliation: Reconciliation }
    fields {
        "AwsAccountID" => aws_account_id: u64,
        /// `{"key": "<encrypted value>", ...}` in a notification; absent from GET answers.
        "Data" => data: Value [no_query],
    }
}

api_object! {
    /// `/v0/secret-instances` \[R\]\[I\]: a secret definition made available to a workload
    /// (a WorkloadInstance or a HelmWorkloadInstance) on a runtime.
    pub struct SecretInstance as SECRET_INSTANCE at "secret-instances", subject "secretInstance";
    embeds { common: Common, instance: Instance, reconciliation: Reconciliation }
    fields {
        "KubernetesRuntimeInstanceID" => kubernetes_runtime_instance_id: u64,
        "SecretDefinitionID" => secret_definition_id: u64,
        "WorkloadInstanceID" => workload_instance_id: u64,
        "HelmWorkloadInstanceID" => helm_workload_instance_id: u64,
    }
}
