//! The observability controller's objects (spec 3.6): stacks of Grafana, kube-prometheus-stack,
//! Loki and Promtail, composed of helm workloads. Each definition and instance records the IDs
//! of the children it made. Mind the *sic* query tag of
//! [`ObservabilityDashboardInstance::grafana_helm_values_document`].

use super::{Common, Definition, Instance, Reconciliation};

api_object! {
    /// `/v0/observability-stack-definitions` \[R\]\[D\]: a dashboard, metrics and logging
    /// definition together.
    pub struct ObservabilityStackDefinition as OBSERVABILITY_STACK_DEFINITION at "observability-stack-definitions", subject "observabilityStackDefinition";
    embeds { common: Common, reconciliation: Reconciliation, definition: Definition }
    fields {
        "ObservabilityDashboardDefinitionID" => observability_dashboard_definition_id: u64,
        "GrafanaHelmChartVersion" => grafana_helm_chart_version: String,
        "GrafanaHelmValuesDocument" => grafana_helm_values_document: String,
        "MetricsDefinitionID" => metrics_definition_id: u64,
        "KubePrometheusStackHelmChartVersion" => kube_prometheus_stack_helm_chart_version: String,
        "KubePrometheusStackHelmValuesDocument" => kube_prometheus_stack_helm_values_document: String,
        "LoggingDefinitionID" => logging_definition_id: u64,
        "LokiHelmChartVersion" => loki_helm_chart_version: String,
        "LokiHelmValuesDocument" => loki_helm_values_document: String,
        "PromtailHelmChartVersion" => promtail_helm_chart_version: String,
        "PromtailHelmValuesDocument" => promtail_helm_values_document: String,
        "ObservabilityStackInstances" => observability_stack_instances: Vec<ObservabilityStackInstance> [association],
    }
}

api_object! {
    /// `/v0/observability-stack-instances` \[R\]\[I\]: a stack on a runtime.
    pub struct ObservabilityStackInstance as OBSERVABILITY_STACK_INSTANCE at "observability-stack-instances", subject "observabilityStackInstance";
    embeds { common: Common, reconciliation: Reconciliation, instance: Instance }
    fields {
        "ObservabilityStackDefinitionID" => observability_stack_definition_id: u64,
        "KubernetesRuntimeInstanceID" => kubernetes_runtime_instance_id: u64,
        /// Default true (the API's).
        "MetricsEnabled" => metrics_enabled: bool,
        /// Default true (the API's).
        "LoggingEnabled" => logging_enabled: bool,
        "ObservabilityDashboardInstanceID" => observability_dashboard_instance_id: u64,
        "GrafanaHelmValuesDocument" => grafana_helm_values_document: String,
        "MetricsInstanceID" => metrics_instance_id: u64,
        "KubePrometheusStackHelmValuesDocument" => kube_prometheus_stack_helm_values_document: String,
        "LoggingInstanceID" => logging_instance_id: u64,
        "LokiHelmValuesDocument" => loki_helm_values_document: String,
        "PromtailHelmValuesDocument" => promtail_helm_values_document: String,
    }
}

api_object! {
    /// `/v0/observability-dashboard-definitions` \[R\]\[D\]: Grafana.
    pub struct ObservabilityDashboardDefinition as OBSERVABILITY_DASHBOARD_DEFINITION at "observability-dashboard-definitions", subject "observabilityDashboardDefinition";
    embeds { common: Common, reconciliation: Reconciliation, definition: Definition }
    fields {
        "GrafanaHelmWorkloadDefinitionID" => grafana_helm_workload_definition_id: u64,
        /// Default `7.2.1` (the API's).
        "GrafanaHelmChartVersion" => grafana_helm_chart_version: String,
        "GrafanaHelmValuesDocument" => grafana_helm_values_document: String,
        "ObservabilityDashboardInstances" => observability_dashboard_instances: Vec<ObservabilityDashboardInstance> [association],
    }
}

api_object! {
    /// `/v0/observability-dashboard-instances` \[R\]\[I\]: Grafana on a runtime.
    pub struct ObservabilityDashboardInstance as OBSERVABILITY_DASHBOARD_INSTANCE at "observability-dashboard-instances", subject "observabilityDashboardInstance";
    embeds { common: Common, reconciliation: Reconciliation, instance: Instance }
    fields {
        "ObservabilityDashboardDefinitionID" => observability_dashboard_definition_id: u64,
        "KubernetesRuntimeInstanceID" => kubernetes_runtime_instance_id: u64,
        "GrafanaHelmWorkloadInstanceID" => grafana_helm_workload_instance_id: u64,
        /// Query tag *sic*.
        "GrafanaHelmValuesDocument" => grafana_helm_values_document: String [query("grafanahelmvaluedsdocument")],
    }
}

api_object! {
    /// `/v0/metrics-definitions` \[R\]\[D\]: kube-prometheus-stack.
    pub struct MetricsDefinition as METRICS_DEFINITION at "metrics-definitions", subject "metricsDefinition";
    embeds { common: Common, reconciliation: Reconciliation, definition: Definition }
    fields {
        "KubePrometheusStackHelmWorkloadDefinitionID" => kube_prometheus_stack_helm_workload_definition_id: u64,
        /// Default `55.8.1` (the API's).
        "KubePrometheusStackHelmChartVersion" => kube_prometheus_stack_helm_chart_version: String,
        "KubePrometheusStackHelmValuesDocument" => kube_prometheus_stack_helm_values_document: String,
        "MetricsInstances" => metrics_instances: Vec<MetricsInstance> [association],
    }
}

api_object! {
    /// `/v0/metrics-instances` \[R\]\[I\]: kube-prometheus-stack on a runtime.
    pub struct MetricsInstance as METRICS_INSTANCE at "metrics-instances", subject "metricsInstance";
    embeds { common: Common, reconciliation: Reconciliation, instance: Instance }
    fields {
        "MetricsDefinitionID" => metrics_definition_id: u64,
        "KubernetesRuntimeInstanceID" => kubernetes_runtime_instance_id: u64,
        "KubePrometheusStackHelmWorkloadInstanceID" => kube_prometheus_stack_helm_workload_instance_id: u64,
        "KubePrometheusStackHelmValuesDocument" => kube_prometheus_stack_helm_values_document: String,
    }
}

api_object! {
    /// `/v0/logging-definitions` \[R\]\[D\]: Loki and Promtail.
    pub struct LoggingDefinition as LOGGING_DEFINITION at "logging-definitions", subject "loggingDefinition";
    embeds { common: Common, reconciliation: Reconciliation, definition: Definition }
    fields {
        "LokiHelmWorkloadDefinitionID" => loki_helm_workload_definition_id: u64,
        "PromtailHelmWorkloadDefinitionID" => promtail_helm_workload_definition_id: u64,
        /// Default `5.41.6` (the API's).
        "LokiHelmChartVersion" => loki_helm_chart_version: String,
        /// Default `6.15.3` (the API's).
        "PromtailHelmChartVersion" => promtail_helm_chart_version: String,
        "LokiHelmValuesDocument" => loki_helm_values_document: String,
        "PromtailHelmValuesDocument" => promtail_helm_values_document: String,
        "LoggingInstances" => logging_instances: Vec<LoggingInstance> [association],
    }
}

api_object! {
    /// `/v0/logging-instances` \[R\]\[I\]: Loki and Promtail on a runtime.
    pub struct LoggingInstance as LOGGING_INSTANCE at "logging-instances", subject "loggingInstance";
    embeds { common: Common, reconciliation: Reconciliation, instance: Instance }
    fields {
        "LoggingDefinitionID" => logging_definition_id: u64,
        "KubernetesRuntimeInstanceID" => kubernetes_runtime_instance_id: u64,
        "LokiHelmWorkloadInstanceID" => loki_helm_workload_instance_id: u64,
        "PromtailHelmWorkloadInstanceID" => promtail_helm_workload_instance_id: u64,
        "LokiHelmValuesDocument" => loki_helm_values_document: String,
        "PromtailHelmValuesDocument" => promtail_helm_values_document: String,
    }
}
