//! The gateway controller (spec 3.3): GatewayDefinitions compile into a template
//! WorkloadDefinition ([`definition`]), GatewayInstances add gloo and cert-manager objects to
//! the user's WorkloadInstance ([`instance`]), DomainNameInstances deploy external-dns
//! ([`domain_name`]). The support services (gloo edge with cert-manager, external-dns) are
//! ordinary workloads of nukleros support-services-operator resources ([`runtime_support`]);
//! what they write on other workloads is in [`crate::reconcilers::user_workload`].
//!
//! The pure parts are in their own modules: names and template documents ([`manifests`]), the
//! support resources and the GlooEdge port list ([`support`]), and what an instance adds to
//! the user's workload with the plan from its WRIs to that, for any number of ports
//! ([`instance_plan`]). Where it deliberately differs from Threeport's Go controller is in
//! docs/compatibility.md, "Gateway controller".

pub mod definition;
pub mod domain_name;
pub mod instance;
pub mod instance_plan;
pub mod manifests;
pub mod runtime_support;
pub mod support;
#[cfg(test)]
mod test_fixture;
#[cfg(test)]
mod test_ports;

use crate::config::GatewayConfig;

pub use definition::GatewayDefinitionReconciler;
pub use domain_name::DomainNameInstanceReconciler;
pub use instance::GatewayInstanceReconciler;

use super::{ReconcilerDeps, Registered};
use manifests::TemplateSettings;
use support::SupportSettings;

/// The values the controller writes that Threeport hard-codes, from the `gateway` config
/// section (Threeport's by default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewaySettings {
    /// What the template documents use.
    pub template: TemplateSettings,
    /// What the support resources use.
    pub support: SupportSettings,
}

impl From<&GatewayConfig> for GatewaySettings {
    fn from(config: &GatewayConfig) -> Self {
        Self {
            template: TemplateSettings::from(config),
            support: SupportSettings::from(config),
        }
    }
}

/// The controller's reconcilers, in the registry's order (its registration in
/// [`IMPLEMENTATIONS`](super::IMPLEMENTATIONS)).
pub fn reconcilers(deps: &ReconcilerDeps) -> Vec<Registered> {
    let settings = GatewaySettings::from(&deps.gateway);
    vec![
        Registered::new(
            "GatewayDefinitionReconciler",
            GatewayDefinitionReconciler::new(settings.template.clone()),
        ),
        Registered::new(
            "GatewayInstanceReconciler",
            GatewayInstanceReconciler::new(settings.clone()),
        ),
        Registered::new(
            "DomainNameInstanceReconciler",
            DomainNameInstanceReconciler::new(settings.support),
        ),
    ]
}
