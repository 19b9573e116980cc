//! The gateway controller (spec 3.3): GatewayDefinitions compile into a template
//! WorkloadDefinition, GatewayInstances add gloo and cert-manager objects to the user's
//! WorkloadInstance, DomainNameInstances deploy external-dns.
//!
//! In progress (issue 12): the names and template documents ([`manifests`]), the support
//! services' resources and GlooEdge port list ([`support`]), what an instance adds to the
//! user's WorkloadInstance with the plan from the WRIs there to it, for any number of ports
//! ([`instance_plan`]), and the GatewayDefinitionReconciler ([`definition`]) are built and
//! tested against the in-memory API. The GatewayInstance and DomainNameInstance reconcilers are
//! not written yet, so the controller is not registered and `--enable gateway` still exits 2.

pub mod definition;
pub mod instance_plan;
pub mod manifests;
pub mod support;
#[cfg(test)]
mod test_ports;
