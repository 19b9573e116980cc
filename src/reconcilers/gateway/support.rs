//! The support services a gateway needs on its runtime (spec 3.3.2 c-e, 3.3.3): the nukleros
//! `CertManager`, `GlooEdge` and `ExternalDNS` custom resources, deployed as ordinary
//! WorkloadDefinitions and WorkloadInstances named after the runtime, and the port list of the
//! GlooEdge resource. Pure functions; Threeport's hard-coded versions and contacts are the
//! defaults of [`SupportSettings`].

use serde_json::{json, Value};

use crate::config::GatewayConfig;
use crate::threeport::models::{GatewayHttpPort, GatewayTcpPort};

/// Namespace of gloo edge and external-dns (Threeport's value).
pub const GATEWAY_SYSTEM_NAMESPACE: &str = "nukleros-gateway-system";
/// Namespace of cert-manager (Threeport's value).
pub const CERTS_SYSTEM_NAMESPACE: &str = "nukleros-certs-system";

/// The values Threeport's gateway controller hard-codes for the support services,
/// configurable here (defaults: Threeport's, spec 3.3.2 c and 3.3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportSettings {
    /// cert-manager version of the `CertManager` resource.
    pub cert_manager_version: String,
    /// `contactEmail` of the `CertManager` resource.
    pub cert_manager_contact: String,
    /// external-dns image of the `ExternalDNS` resource.
    pub external_dns_image: String,
    /// external-dns version of the `ExternalDNS` resource.
    pub external_dns_version: String,
}

impl Default for SupportSettings {
    /// Threeport's values (the defaults of the `gateway` config section).
    fn default() -> Self {
        Self::from(&GatewayConfig::default())
    }
}

impl From<&GatewayConfig> for SupportSettings {
    fn from(config: &GatewayConfig) -> Self {
        Self {
            cert_manager_version: config.cert_manager_version.clone(),
            cert_manager_contact: config.cert_manager_contact.clone(),
            external_dns_image: config.external_dns_image.clone(),
            external_dns_version: config.external_dns_version.clone(),
        }
    }
}

/// The runtime's infrastructure provider (its definition's `InfraProvider`), as far as the
/// support services care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InfraProvider {
    /// A local kind cluster: no cloud DNS, no IAM roles.
    Kind,
    /// AWS EKS: Route 53 and the IAM roles from the runtime's inventory.
    Eks {
        /// The role cert-manager assumes for DNS-01 challenges.
        dns01_challenge_role_arn: String,
        /// The role external-dns assumes to manage records.
        dns_management_role_arn: String,
    },
    /// Anything else (Threeport then deploys no cert-manager).
    Other(String),
}

/// The gloo edge support workload of a runtime: `gloo-edge-<runtime>` (definition and instance).
pub fn gloo_edge_workload_name(runtime: &str) -> String {
    format!("gloo-edge-{runtime}")
}

/// The external-dns support workload of a runtime: `external-dns-<runtime>`.
pub fn external_dns_workload_name(runtime: &str) -> String {
    format!("external-dns-{runtime}")
}

/// The documents of the gloo edge support workload: the `CertManager` resource (for a kind or
/// EKS runtime) and the `GlooEdge` resource with no ports yet.
pub fn gloo_edge_documents(provider: &InfraProvider, settings: &SupportSettings) -> Vec<Value> {
    let role = match provider {
        InfraProvider::Kind => Some(""),
        InfraProvider::Eks {
            dns01_challenge_role_arn,
            ..
        } => Some(dns01_challenge_role_arn.as_str()),
        InfraProvider::Other(_) => None,
    };
    let mut docs = Vec::new();
    if let Some(role) = role {
        let component = |name: &str| json!({"replicas": 1, "image": format!("quay.io/jetstack/cert-manager-{name}")});
        docs.push(json!({
            "apiVersion": "certificates.support-services.nukleros.io/v1alpha1",
            "kind": "CertManager",
            "metadata": {"name": "certmanager"},
            "spec": {
                "namespace": CERTS_SYSTEM_NAMESPACE,
                "version": settings.cert_manager_version,
                "contactEmail": settings.cert_manager_contact,
                "iamRoleArn": role,
                "cainjector": component("cainjector"),
                "controller": component("controller"),
                "webhook": component("webhook"),
            },
        }));
    }
    docs.push(json!({
        "apiVersion": "gateway.support-services.nukleros.io/v1alpha1",
        "kind": "GlooEdge",
        "metadata": {"name": "glooedge"},
        "spec": {"namespace": GATEWAY_SYSTEM_NAMESPACE, "ports": []},
    }));
    docs
}

/// The `ExternalDNS` resource of a runtime (spec 3.3.3): records for `domain`, owned by the
/// runtime `runtime_id`, read from gloo's proxies in `gloo_namespace`.
pub fn external_dns_document(
    provider: &InfraProvider,
    domain: &str,
    gloo_namespace: &str,
    runtime_id: u64,
    settings: &SupportSettings,
) -> Value {
    let (dns_provider, role) = match provider {
        InfraProvider::Eks {
            dns_management_role_arn,
            ..
        } => ("route53", dns_management_role_arn.as_str()),
        _ => ("none", ""),
    };
    json!({
        "apiVersion": "gateway.support-services.nukleros.io/v1alpha1",
        "kind": "ExternalDNS",
        "metadata": {"name": "externaldns"},
        "spec": {
            "namespace": GATEWAY_SYSTEM_NAMESPACE,
            "zoneType": "public",
            "domainName": domain,
            "image": settings.external_dns_image,
            "version": settings.external_dns_version,
            "provider": dns_provider,
            "serviceAccountName": "external-dns",
            "iamRoleArn": role,
            "extraArgs": [
                "--source=gloo-proxy",
                format!("--gloo-namespace={gloo_namespace}"),
                format!("--txt-owner-id={runtime_id}-"),
                format!("--txt-prefix={runtime_id}-"),
            ],
        },
    })
}

/// Why the GlooEdge ports cannot be worked out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortsError {
    /// The gateway definition has neither HTTP nor TCP ports.
    #[error("gateway definition {0} has no ports")]
    NoPorts(u64),
}

/// The GlooEdge `spec.ports` that expose every port of a gateway, or `None` when `existing`
/// already does (then nothing is written: Threeport PATCHes the GlooEdge WRI on every
/// validation, which re-applies it each time). An entry is `{name: "<port>", protocol:
/// "http"|"tcp", port, ssl}`; a port is exposed when an entry has the same port, protocol and
/// ssl. Existing entries are kept, in their order, and new ones appended.
pub fn exposed_ports(
    gateway_definition_id: u64,
    existing: &[Value],
    http: &[GatewayHttpPort],
    tcp: &[GatewayTcpPort],
) -> Result<Option<Vec<Value>>, PortsError> {
    if http.is_empty() && tcp.is_empty() {
        return Err(PortsError::NoPorts(gateway_definition_id));
    }
    let wanted = http
        .iter()
        .map(|p| {
            (
                "http",
                p.port.unwrap_or_default(),
                p.tls_enabled == Some(true),
            )
        })
        .chain(tcp.iter().map(|p| {
            (
                "tcp",
                p.port.unwrap_or_default(),
                p.tls_enabled == Some(true),
            )
        }));
    let mut ports = existing.to_vec();
    let mut changed = false;
    for (protocol, port, ssl) in wanted {
        let exposed = ports.iter().any(|e| {
            e["protocol"] == protocol && e["port"].as_i64() == Some(port) && e["ssl"] == ssl
        });
        if !exposed {
            ports.push(
                json!({"name": port.to_string(), "protocol": protocol, "port": port, "ssl": ssl}),
            );
            changed = true;
        }
    }
    Ok(changed.then_some(ports))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcilers::gateway::test_ports::{http, tcp};

    #[test]
    fn gloo_edge_has_cert_manager_for_kind_and_eks_only() {
        let s = SupportSettings::default();
        let kind = gloo_edge_documents(&InfraProvider::Kind, &s);
        assert_eq!(kind.len(), 2);
        assert_eq!(kind[0]["kind"], "CertManager");
        assert_eq!(kind[0]["spec"]["version"], "v1.9.1");
        assert_eq!(kind[0]["spec"]["iamRoleArn"], "");
        assert_eq!(
            kind[0]["spec"]["webhook"]["image"],
            "quay.io/jetstack/cert-manager-webhook"
        );
        assert_eq!(kind[1]["kind"], "GlooEdge");
        assert_eq!(kind[1]["spec"]["ports"], json!([]));
        let eks = gloo_edge_documents(
            &InfraProvider::Eks {
                dns01_challenge_role_arn: "arn:aws:iam::1:role/dns01".into(),
                dns_management_role_arn: "arn:aws:iam::1:role/dns".into(),
            },
            &s,
        );
        assert_eq!(eks[0]["spec"]["iamRoleArn"], "arn:aws:iam::1:role/dns01");
        let other = gloo_edge_documents(&InfraProvider::Other("gke".into()), &s);
        assert_eq!(other.len(), 1);
        assert_eq!(other[0]["kind"], "GlooEdge");
        assert_eq!(gloo_edge_workload_name("local"), "gloo-edge-local");
        assert_eq!(external_dns_workload_name("local"), "external-dns-local");
    }

    #[test]
    fn external_dns_uses_route53_on_eks_and_none_elsewhere() {
        let s = SupportSettings::default();
        let kind = external_dns_document(&InfraProvider::Kind, "example.com", "gloo-ns", 7, &s);
        assert_eq!(kind["spec"]["provider"], "none");
        assert_eq!(kind["spec"]["domainName"], "example.com");
        assert_eq!(
            kind["spec"]["extraArgs"],
            json!([
                "--source=gloo-proxy",
                "--gloo-namespace=gloo-ns",
                "--txt-owner-id=7-",
                "--txt-prefix=7-"
            ])
        );
        let eks = external_dns_document(
            &InfraProvider::Eks {
                dns01_challenge_role_arn: "a".into(),
                dns_management_role_arn: "arn:dns".into(),
            },
            "example.com",
            "gloo-ns",
            7,
            &s,
        );
        assert_eq!(eks["spec"]["provider"], "route53");
        assert_eq!(eks["spec"]["iamRoleArn"], "arn:dns");
    }

    #[test]
    fn ports_are_added_once_and_nothing_is_written_when_all_are_exposed() {
        let http_ports = [http(80, "/", false, false), http(443, "/", true, false)];
        let tcp_ports = [tcp(5432)];
        let first = exposed_ports(1, &[], &http_ports, &tcp_ports)
            .expect("ports")
            .expect("changed");
        assert_eq!(
            first,
            vec![
                json!({"name": "80", "protocol": "http", "port": 80, "ssl": false}),
                json!({"name": "443", "protocol": "http", "port": 443, "ssl": true}),
                json!({"name": "5432", "protocol": "tcp", "port": 5432, "ssl": false}),
            ]
        );
        // Validation without side effects: the same ports again change nothing.
        assert_eq!(exposed_ports(1, &first, &http_ports, &tcp_ports), Ok(None));
        // A new port is appended; the entries of other gateways stay.
        let more = exposed_ports(1, &first, &[http(8080, "/", false, false)], &[])
            .expect("ports")
            .expect("changed");
        assert_eq!(more.len(), 4);
        assert_eq!(more[3]["port"], 8080);
        // Same port, other ssl: a different entry.
        assert!(exposed_ports(1, &first, &[http(80, "/", true, false)], &[])
            .expect("ports")
            .is_some());
    }

    #[test]
    fn a_gateway_without_ports_is_an_error_naming_it() {
        let err = exposed_ports(9, &[], &[], &[]).expect_err("no ports");
        assert_eq!(err.to_string(), "gateway definition 9 has no ports");
    }
}
