//! The workload controller's objects (spec 2.6): definitions, instances and the resources
//! they consist of.

use serde_json::Value;
use time::OffsetDateTime;

use super::{Common, Definition, Instance, Reconciliation};

api_object! {
    /// `/v0/workload-definitions` \[R\]\[D\]: a workload's Kubernetes manifest.
    pub struct WorkloadDefinition as WORKLOAD_DEFINITION at "workload-definitions", subject "workloadDefinition";
    embeds { common: Common, reconciliation: Reconciliation, definition: Definition }
    fields {
        "YAMLDocument" => yaml_document: String [no_query],
        "WorkloadResourceDefinitions" => workload_resource_definitions: Vec<WorkloadResourceDefinition> [association],
        "WorkloadInstances" => workload_instances: Vec<WorkloadInstance> [association],
    }
}

api_object! {
    /// `/v0/workload-resource-definitions` (not reconciled): one document of a definition's
    /// manifest; batch create through `/v0/workload-resource-definition-sets`.
    pub struct WorkloadResourceDefinition as WORKLOAD_RESOURCE_DEFINITION at "workload-resource-definitions";
    embeds { common: Common }
    fields {
        /// One Kubernetes manifest as a JSON object.
        "JSONDefinition" => json_definition: Value,
        "WorkloadDefinitionID" => workload_definition_id: u64,
    }
}

api_object! {
    /// `/v0/workload-instances` \[R\]\[I\]: a deployment of a definition to a runtime.
    pub struct WorkloadInstance as WORKLOAD_INSTANCE at "workload-instances", subject "workloadInstance";
    embeds { common: Common, reconciliation: Reconciliation, instance: Instance }
    fields {
        "KubernetesRuntimeInstanceID" => kubernetes_runtime_instance_id: u64,
        "WorkloadDefinitionID" => workload_definition_id: u64,
        "WorkloadResourceInstances" => workload_resource_instances: Vec<WorkloadResourceInstance> [association],
        "Events" => events: Vec<WorkloadEvent>,
    }
}

api_object! {
    /// `/v0/workload-resource-instances` (not reconciled by a stream, but carries its own
    /// `Reconciled` flag): one Kubernetes object of an instance.
    pub struct WorkloadResourceInstance as WORKLOAD_RESOURCE_INSTANCE at "workload-resource-instances";
    embeds { common: Common }
    fields {
        "JSONDefinition" => json_definition: Value,
        "WorkloadInstanceID" => workload_instance_id: u64,
        "LastOperation" => last_operation: String,
        "Reconciled" => reconciled: bool,
        /// The live object, written by the agent.
        "RuntimeDefinition" => runtime_definition: Value,
        "Events" => events: Vec<WorkloadEvent>,
        /// Set by other controllers to ask the workload controller to delete this resource.
        "ScheduledForDeletion" => scheduled_for_deletion: OffsetDateTime,
    }
}

api_object! {
    /// `/v0/workload-events` (not reconciled): Kubernetes events of an instance's resources,
    /// written by the agent (and by the controller when Kubernetes refuses a resource).
    pub struct WorkloadEvent as WORKLOAD_EVENT at "workload-events";
    embeds { common: Common }
    fields {
        "RuntimeEventUID" => runtime_event_uid: String,
        "Type" => event_type: String,
        "Reason" => reason: String,
        "Message" => message: String,
        "Timestamp" => timestamp: OffsetDateTime,
        "WorkloadInstanceID" => workload_instance_id: u64,
        "WorkloadResourceInstanceID" => workload_resource_instance_id: u64,
        "HelmWorkloadInstanceID" => helm_workload_instance_id: u64,
    }
}
