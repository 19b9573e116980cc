//! The aws controller's objects (spec 2.6, 3.4, 3.6): AWS accounts, the EKS runtimes the
//! kubernetes-runtime controller asks the aws controller for, and the RDS databases and S3
//! buckets users attach to their workloads.

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

api_object! {
    /// `/v0/aws-relational-database-definitions`: an RDS database's engine and size.
    pub struct AwsRelationalDatabaseDefinition as AWS_RELATIONAL_DATABASE_DEFINITION at "aws-relational-database-definitions";
    embeds { common: Common, definition: Definition }
    fields {
        /// `mariadb`, `mysql` or `postgres`.
        "Engine" => engine: String,
        "EngineVersion" => engine_version: String,
        "DatabaseName" => database_name: String,
        "DatabasePort" => database_port: i64,
        /// Query tag `BackupDays` (*sic*, capitalised).
        "BackupDays" => backup_days: i64 [query("BackupDays")],
        /// `XSmall` ... `4XLarge` (spec 3.6, mapped to an RDS class).
        "MachineSize" => machine_size: String,
        "StorageGb" => storage_gb: i64,
        /// The Kubernetes Secret with the connection details in the workload's namespace;
        /// query tag `WorkloadSecretName` (*sic*).
        "WorkloadSecretName" => workload_secret_name: String [query("WorkloadSecretName")],
        "AwsAccountID" => aws_account_id: u64,
    }
}

api_object! {
    /// `/v0/aws-relational-database-instances` \[R\]\[I\]: an RDS database for a workload.
    pub struct AwsRelationalDatabaseInstance as AWS_RELATIONAL_DATABASE_INSTANCE at "aws-relational-database-instances", subject "awsRelationalDatabaseInstance";
    embeds { common: Common, instance: Instance, reconciliation: Reconciliation }
    fields {
        "AwsRelationalDatabaseDefinitionID" => aws_relational_database_definition_id: u64,
        /// aws-builder's `RdsInventory`.
        "ResourceInventory" => resource_inventory: Value [no_query],
        "WorkloadInstanceID" => workload_instance_id: u64,
    }
}

api_object! {
    /// `/v0/aws-object-storage-bucket-definitions`: an S3 bucket's access.
    pub struct AwsObjectStorageBucketDefinition as AWS_OBJECT_STORAGE_BUCKET_DEFINITION at "aws-object-storage-bucket-definitions";
    embeds { common: Common, definition: Definition }
    fields {
        "PublicReadAccess" => public_read_access: bool,
        /// The workload's service account that gets read-write access (IRSA).
        "WorkloadServiceAccountName" => workload_service_account_name: String,
        /// The environment variable that carries the bucket's name into the workload.
        "WorkloadBucketEnvVar" => workload_bucket_env_var: String,
        "AwsAccountID" => aws_account_id: u64,
    }
}

api_object! {
    /// `/v0/aws-object-storage-bucket-instances` \[R\]\[I\]: an S3 bucket for a workload.
    pub struct AwsObjectStorageBucketInstance as AWS_OBJECT_STORAGE_BUCKET_INSTANCE at "aws-object-storage-bucket-instances", subject "awsObjectStorageBucketInstance";
    embeds { common: Common, instance: Instance, reconciliation: Reconciliation }
    fields {
        /// aws-builder's `S3Inventory`.
        "ResourceInventory" => resource_inventory: Value [no_query],
        "AwsObjectStorageBucketDefinitionID" => aws_object_storage_bucket_definition_id: u64,
        "WorkloadInstanceID" => workload_instance_id: u64,
    }
}
