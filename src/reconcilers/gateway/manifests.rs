//! The gateway controller's names and template documents (spec 3.3, "Naming helpers", and
//! 3.3.1): pure functions of the API objects, so the same GatewayDefinition always compiles to
//! the same template WorkloadDefinition `<gd>-gateway`, and the reconcilers only do IO.
//!
//! The template is what Threeport's Go controller builds, with the values it hard-codes (the
//! ACME server, the Route 53 region) taken from [`TemplateSettings`] whose defaults are
//! Threeport's.

use serde_json::{json, Value};

use crate::config::GatewayConfig;
use crate::threeport::models::{DomainNameDefinition, GatewayHttpPort, GatewayTcpPort};

/// The namespace Threeport writes into the template documents; the instance reconciler
/// rewrites it with the GlooEdge namespace.
pub const TEMPLATE_GLOO_NAMESPACE: &str = "gloo-system";
/// The placeholder upstream of the template routes (replaced per instance).
const PLACEHOLDER_UPSTREAM: &str = "my-upstream";
/// Gloo TCP gateways listen on 8000 + the port (Threeport's rule).
const TCP_BIND_PORT_OFFSET: i64 = 8000;

/// The values Threeport's gateway controller hard-codes in the template, configurable here
/// (defaults: Threeport's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSettings {
    /// ACME directory of the Issuer.
    pub acme_server: String,
    /// Region of the Issuer's Route 53 DNS-01 solver.
    pub route53_region: String,
}

impl Default for TemplateSettings {
    /// Threeport's values (the defaults of the `gateway` config section).
    fn default() -> Self {
        Self::from(&GatewayConfig::default())
    }
}

impl From<&GatewayConfig> for TemplateSettings {
    fn from(config: &GatewayConfig) -> Self {
        Self {
            acme_server: config.acme_server.clone(),
            route53_region: config.route53_region.clone(),
        }
    }
}

/// A gateway's domain and the contact for its certificates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GatewayDomain {
    /// `<SubDomain>.<Domain>`, the definition's `Domain`, or `""` without a domain name
    /// definition; never with an `http://` or `https://` prefix.
    pub name: String,
    /// The domain name definition's `AdminEmail` (`""` without one).
    pub admin_email: String,
}

/// The domain of a gateway: its `SubDomain` under the domain name definition's `Domain`, or
/// the `Domain` alone, or none (spec 3.3, naming helpers).
pub fn gateway_domain(
    sub_domain: Option<&str>,
    dnd: Option<&DomainNameDefinition>,
) -> GatewayDomain {
    let Some(dnd) = dnd else {
        return GatewayDomain::default();
    };
    // The scheme is stripped from the definition's domain before the subdomain is put in
    // front of it (stripping only the result would leave `app.https://example.com`).
    let domain = strip_scheme(dnd.domain.as_deref().unwrap_or_default());
    let name = match sub_domain.filter(|s| !s.is_empty()) {
        Some(sub) => format!("{}.{domain}", strip_scheme(sub)),
        None => domain.to_string(),
    };
    GatewayDomain {
        name,
        admin_email: dnd.admin_email.clone().unwrap_or_default(),
    }
}

fn strip_scheme(s: &str) -> &str {
    s.strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s)
}

/// Kebab case exactly as Threeport computes it for object names (`strcase.ToKebab` of
/// `github.com/iancoleman/strcase` v0.3.0, the version Threeport v0.6.1 requires), so that the
/// names match the Go controller's byte for byte:
///
/// - surrounding whitespace is trimmed; then the string is walked byte by byte, and only ASCII
///   letters and digits have a class (upper, lower, digit); ASCII capitals are lower-cased,
///   every other byte (non-ASCII included) is copied as it is;
/// - each space, `_`, `-` and `.` becomes one `-` (runs are kept, ends are not trimmed);
/// - where the class changes between a byte and the next one, a `-` goes after a lower-case
///   letter or digit (`myGateway` -> `my-gateway`, `port8080` -> `port-8080`, `2And` ->
///   `2-and`), after a capital followed by a digit (`A1` -> `a-1`), and before the last capital
///   of a run followed by a lower-case letter (`HTTPServer` -> `http-server`).
pub fn kebab(s: &str) -> String {
    let b = s.trim().as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len() + 4);
    for (i, &v) in b.iter().enumerate() {
        let (v_cap, v_low, v_num) = (
            v.is_ascii_uppercase(),
            v.is_ascii_lowercase(),
            v.is_ascii_digit(),
        );
        if let Some(&next) = b.get(i + 1) {
            let (n_cap, n_low, n_num) = (
                next.is_ascii_uppercase(),
                next.is_ascii_lowercase(),
                next.is_ascii_digit(),
            );
            if (v_cap && (n_low || n_num))
                || (v_low && (n_cap || n_num))
                || (v_num && (n_cap || n_low))
            {
                let prev_cap = i > 0 && b[i - 1].is_ascii_uppercase();
                if v_cap && n_low && prev_cap {
                    out.push(b'-');
                }
                out.push(v.to_ascii_lowercase());
                if v_low || v_num || n_num {
                    out.push(b'-');
                }
                continue;
            }
        }
        if matches!(v, b' ' | b'_' | b'-' | b'.') {
            out.push(b'-');
        } else {
            out.push(v.to_ascii_lowercase());
        }
    }
    // Only ASCII bytes were changed (to ASCII), so the UTF-8 of the rest is intact.
    String::from_utf8(out).unwrap_or_default()
}

/// The VirtualService of an HTTP port: `<gd>-<port>` without a domain, else
/// `<kebab(domain)>-<port>`.
pub fn virtual_service_name(gateway_definition: &str, domain: &str, port: i64) -> String {
    if domain.is_empty() {
        format!("{gateway_definition}-{port}")
    } else {
        format!("{}-{port}", kebab(domain))
    }
}

/// The gloo TCP Gateway of a TCP port: `<gd>-<port>`.
pub fn tcp_gateway_name(gateway_definition: &str, port: i64) -> String {
    format!("{gateway_definition}-{port}")
}

/// Whether any port of a gateway has TLS (then it needs a domain, an Issuer and a
/// Certificate).
pub fn any_tls(http_ports: &[GatewayHttpPort], tcp_ports: &[GatewayTcpPort]) -> bool {
    http_ports.iter().any(|p| p.tls_enabled == Some(true))
        || tcp_ports.iter().any(|p| p.tls_enabled == Some(true))
}

/// The name of the template WorkloadDefinition of a gateway definition.
pub fn template_workload_definition_name(gateway_definition: &str) -> String {
    format!("{gateway_definition}-gateway")
}

/// Why a template cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A port asks for TLS but the gateway has no domain to certify.
    #[error("gateway definition {gateway_definition}: a port has TLS enabled but the gateway has no domain (set DomainNameDefinitionID)")]
    TlsWithoutDomain {
        /// The gateway definition's name.
        gateway_definition: String,
    },
}

/// The template documents of a gateway definition (spec 3.3.1), in Threeport's order: one
/// VirtualService per HTTP port, one gloo Gateway per TCP port, then, if any port has TLS, the
/// Issuer and the Certificate of the domain.
pub fn template_documents(
    gateway_definition: &str,
    domain: &GatewayDomain,
    http_ports: &[GatewayHttpPort],
    tcp_ports: &[GatewayTcpPort],
    settings: &TemplateSettings,
) -> Result<Vec<Value>, TemplateError> {
    let host = if domain.name.is_empty() {
        "*"
    } else {
        domain.name.as_str()
    };
    let mut docs = Vec::new();
    for p in http_ports {
        docs.push(virtual_service(gateway_definition, domain, host, p));
    }
    for p in tcp_ports {
        docs.push(tcp_gateway(gateway_definition, p));
    }
    if any_tls(http_ports, tcp_ports) {
        if domain.name.is_empty() {
            return Err(TemplateError::TlsWithoutDomain {
                gateway_definition: gateway_definition.to_string(),
            });
        }
        docs.push(issuer(domain, settings));
        docs.push(certificate(domain));
    }
    Ok(docs)
}

fn virtual_service(gd: &str, domain: &GatewayDomain, host: &str, p: &GatewayHttpPort) -> Value {
    let port = p.port.unwrap_or_default();
    let path = p.path.as_deref().unwrap_or("/");
    let route = if p.https_redirect == Some(true) {
        json!({
            "matchers": [{"prefix": path}],
            "redirectAction": {"hostRedirect": domain.name, "httpsRedirect": true},
        })
    } else {
        json!({
            "matchers": [{"prefix": path}],
            "routeAction": {"single": {"upstream": {
                "name": PLACEHOLDER_UPSTREAM, "namespace": TEMPLATE_GLOO_NAMESPACE,
            }}},
        })
    };
    let mut spec = json!({"virtualHost": {"domains": [host], "routes": [route]}});
    if p.tls_enabled == Some(true) {
        spec["sslConfig"] = json!({
            "secretRef": {"name": tls_secret_name(&domain.name), "namespace": "default"},
            "sniDomains": [host],
        });
    }
    json!({
        "apiVersion": "gateway.solo.io/v1",
        "kind": "VirtualService",
        "metadata": {
            "name": virtual_service_name(gd, &domain.name, port),
            "namespace": TEMPLATE_GLOO_NAMESPACE,
        },
        "spec": spec,
    })
}

fn tcp_gateway(gd: &str, p: &GatewayTcpPort) -> Value {
    let port = p.port.unwrap_or_default();
    json!({
        "apiVersion": "gateway.solo.io/v1",
        "kind": "Gateway",
        "metadata": {"name": tcp_gateway_name(gd, port), "namespace": TEMPLATE_GLOO_NAMESPACE},
        "spec": {
            "bindAddress": "::",
            "bindPort": TCP_BIND_PORT_OFFSET + port,
            "tcpGateway": {"tcpHosts": [{
                "name": "upstream-host",
                "destination": {"single": {"upstream": {
                    "name": PLACEHOLDER_UPSTREAM, "namespace": TEMPLATE_GLOO_NAMESPACE,
                }}},
            }]},
            "useProxyProto": false,
        },
    })
}

/// The Secret the Certificate writes and the VirtualServices serve: `<kebab(domain)>-tls`.
pub fn tls_secret_name(domain: &str) -> String {
    format!("{}-tls", kebab(domain))
}

fn issuer(domain: &GatewayDomain, settings: &TemplateSettings) -> Value {
    json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "Issuer",
        "metadata": {"name": kebab(&domain.name)},
        "spec": {"acme": {
            "email": domain.admin_email,
            "server": settings.acme_server,
            "privateKeySecretRef": {"name": "letsencrypt-prod-private-key"},
            "solvers": [{
                "selector": {"dnsZones": [domain.name]},
                "dns01": {"route53": {"region": settings.route53_region}},
            }],
        }},
    })
}

fn certificate(domain: &GatewayDomain) -> Value {
    let name = kebab(&domain.name);
    json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": name},
        "spec": {
            "secretName": tls_secret_name(&domain.name),
            "dnsNames": [domain.name],
            "issuerRef": {"name": name, "kind": "Issuer"},
        },
    })
}

/// The documents as one YAML stream the way Threeport writes a `YAMLDocument`
/// (`util.HyphenDelimitedString`): each document preceded by `---\n`, keys sorted.
pub fn yaml_stream(docs: &[Value]) -> Result<String, serde_yaml_ng::Error> {
    let mut out = String::new();
    for d in docs {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(d)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
