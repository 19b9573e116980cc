//! The aws controller's objects that other controllers read or write (spec 2.6, 3.4): AWS
//! accounts and the EKS runtimes the kubernetes-runtime controller asks the aws controller for.

use serde_json::Value;

use super::{Common, Definition, Instance, Reconciliation, SecretString};

api_object! {
    /// `/v0/aws-accounts`: credentials (access keys, or a role to assume with an external ID).
    pub struct AwsAccount as AWS_ACCOUNT at "aws-accounts";
    embeds { common: Common }
    fields {
        "Name" => name: String,
        "AccountID" => account_id: String,
        "DefaultAccount" => default_account: bool,
        "DefaultRegion" => default_region: String,
        /// Encrypted at rest (spec 2.9); never echoed in a PATCH.
        "AccessKeyID" => access_key_id: SecretString [encrypted, no_query],
        /// Encrypted at rest (spec 2.9); never echoed in a PATCH.
        "SecretAccessKey" => secret_access_key: SecretString [encrypted, no_query],
        "RoleArn" => role_arn: String,
        "ExternalId" => external_id: String,
        "AwsEksKubernetesRuntimeDefinitions" => aws_eks_kubernetes_runtime_definitions: Vec<AwsEksKubernetesRuntimeDefinition> [association],
    }
}

api_object! {
    /// `/v0/aws-eks-kubernetes-runtime-definitions`: an EKS cluster shape, made by the
    /// kubernetes-runtime controller from an `eks` KubernetesRuntimeDefinition.
    pub struct AwsEksKubernetesRuntimeDefinition as AWS_EKS_KUBERNETES_RUNTIME_DEFINITION at "aws-eks-kubernetes-runtime-definitions";
    embeds { common: Common, definition: Definition }
    fields {
        /// JSON `AWSAccountID` (Go field `AwsAccountID`).
        "AWSAccountID" => aws_account_id: u64,
        "ZoneCount" => zone_count: i64,
        "DefaultNodeGroupInstanceType" => default_node_group_instance_type: String,
        "DefaultNodeGroupInitialSize" => default_node_group_initial_size: i64,
        "DefaultNodeGroupMinimumSize" => default_node_group_minimum_size: i64,
        "DefaultNodeGroupMaximumSize" => default_node_group_maximum_size: i64,
        "AwsEksKubernetesRuntimeInstances" => aws_eks_kubernetes_runtime_instances: Vec<AwsEksKubernetesRuntimeInstance> [association],
        "KubernetesRuntimeDefinitionID" => kubernetes_runtime_definition_id: u64,
    }
}

api_object! {
    /// `/v0/aws-eks-kubernetes-runtime-instances` \[R\]\[I\]: an EKS cluster the aws controller
    /// provisions; its inventory names what it built.
    pub struct AwsEksKubernetesRuntimeInstance as AWS_EKS_KUBERNETES_RUNTIME_INSTANCE at "aws-eks-kubernetes-runtime-instances", subject "awsEksKubernetesRuntimeInstance";
    embeds { common: Common, instance: Instance, reconciliation: Reconciliation }
    fields {
        "Region" => region: String,
        "AwsEksKubernetesRuntimeDefinitionID" => aws_eks_kubernetes_runtime_definition_id: u64,
        /// What the aws controller built (`dns01ChallengeRole.roleArn`, ...).
        "ResourceInventory" => resource_inventory: Value [no_query],
        "KubernetesRuntimeInstanceID" => kubernetes_runtime_instance_id: u64,
    }
}
