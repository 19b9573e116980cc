//! The gateway controller's objects (spec 2.6, 3.3): gateways, their ports and domain names.

use super::{Common, Definition, Instance, Reconciliation};

api_object! {
    /// `/v0/gateway-definitions` \[R\]\[D\].
    pub struct GatewayDefinition as GATEWAY_DEFINITION at "gateway-definitions", subject "gatewayDefinition";
    embeds { common: Common, reconciliation: Reconciliation, definition: Definition }
    fields {
        /// Created with the definition, but not returned by GET by id: list
        /// `/v0/gateway-http-ports?gatewaydefinitionid=` instead.
        "HttpPorts" => http_ports: Vec<GatewayHttpPort>,
        "TcpPorts" => tcp_ports: Vec<GatewayTcpPort>,
        "DomainNameDefinitionID" => domain_name_definition_id: u64,
        "SubDomain" => sub_domain: String,
        "ServiceName" => service_name: String,
        "WorkloadDefinitionID" => workload_definition_id: u64,
        "GatewayInstances" => gateway_instances: Vec<GatewayInstance> [association],
    }
}

api_object! {
    /// `/v0/gateway-http-ports`.
    pub struct GatewayHttpPort as GATEWAY_HTTP_PORT at "gateway-http-ports";
    embeds { common: Common }
    fields {
        "GatewayDefinitionID" => gateway_definition_id: u64,
        "Port" => port: i64,
        "Path" => path: String,
        "TLSEnabled" => tls_enabled: bool,
        "HTTPSRedirect" => https_redirect: bool,
    }
}

api_object! {
    /// `/v0/gateway-tcp-ports`.
    pub struct GatewayTcpPort as GATEWAY_TCP_PORT at "gateway-tcp-ports";
    embeds { common: Common }
    fields {
        "GatewayDefinitionID" => gateway_definition_id: u64,
        "Port" => port: i64,
        "TLSEnabled" => tls_enabled: bool,
    }
}

api_object! {
    /// `/v0/gateway-instances` \[R\]\[I\].
    pub struct GatewayInstance as GATEWAY_INSTANCE at "gateway-instances", subject "gatewayInstance";
    embeds { common: Common, reconciliation: Reconciliation, instance: Instance }
    fields {
        "KubernetesRuntimeInstanceID" => kubernetes_runtime_instance_id: u64,
        "GatewayDefinitionID" => gateway_definition_id: u64,
        /// Its query tag is `workloadresourceinstanceid` (*sic*).
        "WorkloadInstanceID" => workload_instance_id: u64 [query("workloadresourceinstanceid")],
    }
}

api_object! {
    /// `/v0/domain-name-definitions` \[R\]\[D\] (reconciliation fields, but no stream).
    pub struct DomainNameDefinition as DOMAIN_NAME_DEFINITION at "domain-name-definitions";
    embeds { common: Common, reconciliation: Reconciliation, definition: Definition }
    fields {
        "Domain" => domain: String,
        "Zone" => zone: String,
        "AdminEmail" => admin_email: String,
        "DomainNameInstances" => domain_name_instances: Vec<DomainNameInstance> [association],
    }
}

api_object! {
    /// `/v0/domain-name-instances` \[R\]\[I\].
    pub struct DomainNameInstance as DOMAIN_NAME_INSTANCE at "domain-name-instances", subject "domainNameInstance";
    embeds { common: Common, reconciliation: Reconciliation, instance: Instance }
    fields {
        "DomainNameDefinitionID" => domain_name_definition_id: u64,
        /// Its query tag is `workloadresourceinstanceid` (*sic*).
        "WorkloadInstanceID" => workload_instance_id: u64 [query("workloadresourceinstanceid")],
        "KubernetesRuntimeInstanceID" => kubernetes_runtime_instance_id: u64,
    }
}
