//! What a GatewayInstance adds to the user's WorkloadInstance (spec 3.3.2, step 4 and
//! Updated/Deleted), as pure functions: the documents for the user's Service, and the plan that
//! turns the WRIs already there into exactly those documents, for any number of ports (Threeport
//! handles one VirtualService and never updates or deletes TCP gateways, spec 4.4).
//!
//! A WRI belongs to the gateway when its kind and name are ones the gateway's names can take:
//! `<prefix>-<number>` for VirtualServices (prefix: the kebab-cased domain, or the definition's
//! name without a domain) and gloo Gateways (prefix: the definition's name), and the
//! Issuer/Certificate name of its domain name definition. So a port that was removed is still
//! recognised, and its WRI scheduled for deletion.

use serde_json::{json, Value};

use super::manifests::{any_tls, kebab, tcp_gateway_name, virtual_service_name, GatewayDomain};
use crate::threeport::models::{
    DomainNameDefinition, GatewayHttpPort, GatewayTcpPort, WorkloadResourceInstance,
};

/// The user's Service the gateway routes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRef {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

/// Everything besides the ports that the instance documents depend on.
#[derive(Debug, Clone)]
pub struct InstanceInputs<'a> {
    /// The gateway definition's name.
    pub gateway_definition: &'a str,
    /// The gateway's domain (see [`super::manifests::gateway_domain`]).
    pub domain: &'a GatewayDomain,
    /// The definition's `SubDomain`.
    pub sub_domain: Option<&'a str>,
    /// The domain name definition (required when a port has TLS).
    pub domain_name_definition: Option<&'a DomainNameDefinition>,
    /// The Service the routes point at.
    pub service: &'a ServiceRef,
    /// Where gloo runs (the GlooEdge resource's `spec.namespace`): its upstreams live there.
    pub gloo_namespace: &'a str,
    /// The Route 53 region of the runtime (from its location).
    pub route53_region: &'a str,
}

/// Why the instance documents cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The template WorkloadDefinition lacks a document the ports need.
    #[error("the gateway template has no {kind} named {name}; is the gateway definition reconciled with these ports?")]
    MissingTemplate {
        /// The kind looked for.
        kind: &'static str,
        /// The name looked for.
        name: String,
    },
    /// A port has TLS but the gateway definition has no domain name definition.
    #[error(
        "gateway definition {0}: a port has TLS enabled but DomainNameDefinitionID is not set"
    )]
    TlsWithoutDomainName(String),
}

fn template<'t>(docs: &'t [Value], kind: &'static str, name: &str) -> Result<&'t Value, PlanError> {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .ok_or_else(|| PlanError::MissingTemplate {
            kind,
            name: name.to_string(),
        })
}

/// The gloo upstream gloo's discovery creates for a Service port: `<ns>-<name>-<port>`.
fn upstream(inputs: &InstanceInputs<'_>, port: i64) -> Value {
    json!({
        "name": format!("{}-{}-{port}", inputs.service.namespace, inputs.service.name),
        "namespace": inputs.gloo_namespace,
    })
}

/// The documents to add to the user's WorkloadInstance: the template's VirtualServices and
/// gloo Gateways pointed at the user's Service, and, with TLS, the Issuer and Certificate of
/// the domain name definition.
pub fn instance_documents(
    template_docs: &[Value],
    inputs: &InstanceInputs<'_>,
    http_ports: &[GatewayHttpPort],
    tcp_ports: &[GatewayTcpPort],
) -> Result<Vec<Value>, PlanError> {
    let gd = inputs.gateway_definition;
    let mut out = Vec::new();
    for p in http_ports {
        let port = p.port.unwrap_or_default();
        let tls = p.tls_enabled == Some(true);
        let name = virtual_service_name(gd, &inputs.domain.name, port);
        let mut vs = template(template_docs, "VirtualService", &name)?.clone();
        if p.https_redirect != Some(true) {
            // gloo's discovery upstream of the Service port (Threeport: 80 behind TLS).
            let target = if tls { 80 } else { port };
            vs["spec"]["virtualHost"]["routes"][0]["routeAction"]["single"]["upstream"] =
                upstream(inputs, target);
        }
        if tls {
            vs["spec"]["sslConfig"]["secretRef"]["namespace"] = json!(inputs.service.namespace);
        }
        out.push(vs);
    }
    for p in tcp_ports {
        let port = p.port.unwrap_or_default();
        let mut gw = template(template_docs, "Gateway", &tcp_gateway_name(gd, port))?.clone();
        gw["spec"]["tcpGateway"]["tcpHosts"][0]["destination"]["single"]["upstream"] =
            upstream(inputs, port);
        out.push(gw);
    }
    if any_tls(http_ports, tcp_ports) {
        let dnd = inputs
            .domain_name_definition
            .ok_or_else(|| PlanError::TlsWithoutDomainName(gd.to_string()))?;
        out.extend(tls_documents(template_docs, inputs, dnd)?);
    }
    Ok(out)
}

fn tls_documents(
    template_docs: &[Value],
    inputs: &InstanceInputs<'_>,
    dnd: &DomainNameDefinition,
) -> Result<[Value; 2], PlanError> {
    let domain = dnd.domain.clone().unwrap_or_default();
    let name = kebab(dnd.definition.name.as_deref().unwrap_or_default());
    let sub = inputs.sub_domain.filter(|s| !s.is_empty());
    let full = sub.map(|s| format!("{s}.{domain}"));
    let template_name = kebab(&inputs.domain.name);
    let mut issuer = template(template_docs, "Issuer", &template_name)?.clone();
    issuer["metadata"]["name"] = json!(name);
    let mut zones = vec![json!(domain)];
    zones.extend(full.iter().map(|f| json!(f)));
    issuer["spec"]["acme"]["solvers"] = json!([{
        "selector": {"dnsZones": zones},
        "dns01": {"route53": {"region": inputs.route53_region}},
    }]);
    let mut cert = template(template_docs, "Certificate", &template_name)?.clone();
    cert["metadata"]["name"] = json!(name);
    cert["spec"]["dnsNames"] = json!([full.unwrap_or(domain)]);
    cert["spec"]["issuerRef"]["name"] = json!(name);
    Ok([issuer, cert])
}

/// How to bring the user's WRIs to the wanted documents.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriPlan {
    /// Documents with no WRI yet: POST a WRI (`Reconciled:false`) for each.
    pub create: Vec<Value>,
    /// Existing WRIs whose definition differs: PATCH `JSONDefinition` and `Reconciled:false`.
    pub update: Vec<(u64, Value)>,
    /// The gateway's WRIs nothing wants any more (a removed port): PATCH
    /// `ScheduledForDeletion` and `Reconciled:false`.
    pub schedule_deletion: Vec<u64>,
    /// Some of the gateway's WRIs that need no write are not applied yet: not reconciled, or
    /// scheduled for deletion and still there. The workload controller must still be asked to
    /// apply them (an earlier attempt wrote them and failed before asking).
    pub unapplied: bool,
}

impl WriPlan {
    /// Whether the plan writes no WRI.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.schedule_deletion.is_empty()
    }

    /// Whether the user's WorkloadInstance must be un-reconciled after the plan is applied, so
    /// the workload controller applies the gateway's WRIs: something was written, or is still
    /// waiting to be applied.
    pub fn needs_apply(&self) -> bool {
        !self.is_empty() || self.unapplied
    }
}

/// What identifies a WRI's object here: API group, kind and name (the namespace is the
/// workload controller's to set; the version is not part of the identity).
fn identity(doc: &Value) -> (&str, &str, &str) {
    let api_version = doc["apiVersion"].as_str().unwrap_or_default();
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    (
        group,
        doc["kind"].as_str().unwrap_or_default(),
        doc["metadata"]["name"].as_str().unwrap_or_default(),
    )
}

/// Whether a WRI's definition already is `wanted`: equal but for `metadata.namespace`, which
/// the workload controller sets to the workload's namespace when it applies the object and
/// records it (so comparing it would rewrite every WRI on every pass).
fn holds(current: &Value, wanted: &Value) -> bool {
    let without_namespace = |v: &Value| {
        let mut v = v.clone();
        if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("namespace");
        }
        v
    };
    without_namespace(current) == without_namespace(wanted)
}

/// Whether a WRI's object is one of this gateway's (see the module doc).
fn belongs_to_gateway(doc: &Value, inputs: &InstanceInputs<'_>) -> bool {
    let numbered = |name: &str, prefix: &str| {
        name.strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    let gd = inputs.gateway_definition;
    let (group, kind, name) = identity(doc);
    match (group, kind) {
        ("gateway.solo.io", "VirtualService") => {
            let prefix = if inputs.domain.name.is_empty() {
                gd.to_string()
            } else {
                kebab(&inputs.domain.name)
            };
            numbered(name, &prefix)
        }
        ("gateway.solo.io", "Gateway") => numbered(name, gd),
        ("cert-manager.io", "Issuer" | "Certificate") => inputs
            .domain_name_definition
            .and_then(|d| d.definition.name.as_deref())
            .is_some_and(|n| kebab(n) == name),
        _ => false,
    }
}

/// The plan for the user's `existing` WRIs to hold exactly the `wanted` documents of this
/// gateway, matched by API group, kind and name: missing ones created, differing ones
/// updated, the gateway's WRIs that nothing wants scheduled for deletion, WRIs of anything
/// else left alone (WRIs already scheduled for deletion count as gone).
pub fn plan_wris(
    existing: &[WorkloadResourceInstance],
    wanted: &[Value],
    inputs: &InstanceInputs<'_>,
) -> WriPlan {
    let is_wanted = |doc: &Value| wanted.iter().any(|w| identity(w) == identity(doc));
    let mut plan = WriPlan::default();
    for wri in existing {
        let (Some(id), Some(doc)) = (wri.common.id, wri.json_definition.as_ref()) else {
            continue;
        };
        let ours = is_wanted(doc) || belongs_to_gateway(doc, inputs);
        if !ours {
            continue;
        }
        if wri.scheduled_for_deletion.is_some() {
            // Still listed: the workload controller has not deleted it yet.
            plan.unapplied = true;
        } else if !is_wanted(doc) {
            plan.schedule_deletion.push(id);
        } else if wri.reconciled != Some(true) {
            plan.unapplied = true;
        }
    }
    let live: Vec<(u64, &Value)> = existing
        .iter()
        .filter(|w| w.scheduled_for_deletion.is_none())
        .filter_map(|w| Some((w.common.id?, w.json_definition.as_ref()?)))
        .collect();
    for doc in wanted {
        match live.iter().find(|(_, d)| identity(d) == identity(doc)) {
            None => plan.create.push(doc.clone()),
            Some((id, current)) if !holds(current, doc) => plan.update.push((*id, doc.clone())),
            Some(_) => {}
        }
    }
    plan
}

#[cfg(test)]
mod tests;
