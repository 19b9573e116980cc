//! The gateway controller (spec 3.3): GatewayDefinitions compile into a template
//! WorkloadDefinition, GatewayInstances add gloo and cert-manager objects to the user's
//! WorkloadInstance, DomainNameInstances deploy external-dns.
//!
//! In progress (issue 12): the names and template documents ([`manifests`]) and the support
//! services' resources and GlooEdge port list ([`support`]) are built and tested; the
//! reconcilers are not written yet, so the controller is not registered and `--enable gateway`
//! still exits 2.

pub mod manifests;
pub mod support;
