//! The helm-workload controller's objects (spec 3.5): a Helm chart from a repository, and its
//! releases on runtimes.

use serde_json::Value;

use super::{Common, Definition, Instance, Reconciliation};

api_object! {
    /// `/v0/helm-workload-definitions` \[R\]\[D\]: which chart (repository, name, version) with
    /// which values and extra resources.
    pub struct HelmWorkloadDefinition as HELM_WORKLOAD_DEFINITION at "helm-workload-definitions", subject "helmWorkloadDefinition";
    embeds { common: Common, reconciliation: Reconciliation, definition: Definition }
    fields {
        /// An HTTP(S) chart repository, or `oci://...`.
        "Repo" => repo: String,
        "Chart" => chart: String,
        "ChartVersion" => chart_version: String,
        /// Helm values (YAML), inherited by every instance.
        "ValuesDocument" => values_document: String [no_query],
        "HelmWorkloadInstances" => helm_workload_instances: Vec<HelmWorkloadInstance> [association],
        /// Complete Kubernetes objects (a JSON array) deployed with the chart.
        "AdditionalResources" => additional_resources: Value,
    }
}

api_object! {
    /// `/v0/helm-workload-instances` \[R\]\[I\]: one Helm release of a definition on a runtime.
    pub struct HelmWorkloadInstance as HELM_WORKLOAD_INSTANCE at "helm-workload-instances", subject "helmWorkloadInstance";
    embeds { common: Common, reconciliation: Reconciliation, instance: Instance }
    fields {
        /// Helm values (YAML) over the definition's.
        "ValuesDocument" => values_document: String [no_query],
        "KubernetesRuntimeInstanceID" => kubernetes_runtime_instance_id: u64,
        /// Where the release goes; generated when unset.
        "ReleaseNamespace" => release_namespace: String,
        "HelmWorkloadDefinitionID" => helm_workload_definition_id: u64,
        /// Complete Kubernetes objects (a JSON array) deployed with the chart.
        "AdditionalResources" => additional_resources: Value,
    }
}
