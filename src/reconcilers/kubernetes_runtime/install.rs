//! What a runtime cluster gets when its KubernetesRuntimeInstance has an API endpoint (spec 3.4,
//! KRI Updated): the objects Threeport v0.6.1's installer creates there, as data files in
//! `data/runtime-install/threeport-v0.6.1/` (recorded from what Threeport's own Go controller
//! sends to a real kube-apiserver; `tests/upstream_runtime_install.rs` checks they still match
//! and its README says how to record them again).
//!
//! The files hold two placeholders, replaced in string values only (never in raw YAML, so a
//! name cannot inject anything): `${RUNTIME_NAME}` (the runtime instance's name) and
//! `${AWS_ACCOUNT_ID}` (the account's AWS ID, EKS only). The agent image is the one in the
//! file unless the instance names another (`ThreeportAgentImage`).
//!
//! The install happens in [`InstallStep`] order; before the support-services step every CRD
//! of the earlier steps must be served (its `SupportServices` object needs one of them).

use serde_json::Value;

use crate::kube::manifest::split_yaml;

/// The Threeport release the data files come from.
pub const THREEPORT_VERSION: &str = "v0.6.1";

/// Placeholder for the runtime instance's name.
pub const RUNTIME_NAME: &str = "${RUNTIME_NAME}";
/// Placeholder for the AWS account ID (EKS system services).
pub const AWS_ACCOUNT_ID: &str = "${AWS_ACCOUNT_ID}";

/// The agent's Deployment and the container whose image `ThreeportAgentImage` replaces.
const AGENT_DEPLOYMENT: &str = "threeport-agent";
const AGENT_CONTAINER: &str = "manager";

/// One step of the install, in Threeport's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstallStep {
    /// The `threeport-control-plane` namespace.
    ControlPlaneNamespace,
    /// The threeport agent: the ThreeportWorkload CRD, RBAC, metrics Service, Deployment.
    Agent,
    /// The nukleros support-services CRDs (CertManager, ExternalDNS, GlooEdge, ...).
    ThreeportCrds,
    /// The support-services operator and its `SupportServices` object.
    SupportServicesOperator,
    /// EKS only: cluster-autoscaler.
    EksSystemServices,
}

impl InstallStep {
    /// Every step, in install order.
    pub const ALL: [InstallStep; 5] = [
        InstallStep::ControlPlaneNamespace,
        InstallStep::Agent,
        InstallStep::ThreeportCrds,
        InstallStep::SupportServicesOperator,
        InstallStep::EksSystemServices,
    ];

    /// The data file of the step, in `data/runtime-install/threeport-v0.6.1/`.
    pub fn file_name(self) -> &'static str {
        match self {
            InstallStep::ControlPlaneNamespace => "01-control-plane-namespace.yaml",
            InstallStep::Agent => "02-agent.yaml",
            InstallStep::ThreeportCrds => "03-crds.yaml",
            InstallStep::SupportServicesOperator => "04-support-services-operator.yaml",
            InstallStep::EksSystemServices => "05-eks-system-services.yaml",
        }
    }

    /// The step's data file, compiled in.
    fn source(self) -> &'static str {
        match self {
            InstallStep::ControlPlaneNamespace => include_str!(
                "../../../data/runtime-install/threeport-v0.6.1/01-control-plane-namespace.yaml"
            ),
            InstallStep::Agent => {
                include_str!("../../../data/runtime-install/threeport-v0.6.1/02-agent.yaml")
            }
            InstallStep::ThreeportCrds => {
                include_str!("../../../data/runtime-install/threeport-v0.6.1/03-crds.yaml")
            }
            InstallStep::SupportServicesOperator => include_str!(
                "../../../data/runtime-install/threeport-v0.6.1/04-support-services-operator.yaml"
            ),
            InstallStep::EksSystemServices => include_str!(
                "../../../data/runtime-install/threeport-v0.6.1/05-eks-system-services.yaml"
            ),
        }
    }

    /// Whether the step is for EKS runtimes only.
    pub fn eks_only(self) -> bool {
        self == InstallStep::EksSystemServices
    }

    /// Whether every CRD of the earlier steps must be served before this step.
    pub fn needs_crds_served(self) -> bool {
        self == InstallStep::SupportServicesOperator
    }

    /// The step's objects as in the data file, placeholders unreplaced.
    pub fn template(self) -> Result<Vec<Value>, InstallError> {
        split_yaml(self.source()).map_err(|e| InstallError::DataFile {
            file: self.file_name(),
            reason: e.to_string(),
        })
    }
}

/// What the install of one runtime depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallInputs {
    /// The runtime instance's name.
    pub runtime_name: String,
    /// `ThreeportAgentImage`, when set.
    pub agent_image: Option<String>,
    /// The AWS account ID, for EKS runtimes (`None`: not EKS, the EKS step is left out).
    pub aws_account_id: Option<String>,
    /// The runtime hosts the Threeport control plane (`ThreeportControlPlaneHost`): its agent
    /// was installed with the control plane, by Threeport's installer, with the API's auth
    /// secrets and arguments this controller cannot reproduce (it has no CA key), so the agent
    /// step is left out rather than applying an agent without auth over it.
    pub control_plane_host: bool,
}

/// Why the install cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstallError {
    /// A compiled-in data file does not parse (a build defect, caught by the unit tests).
    #[error("runtime manifest {file}: {reason}")]
    DataFile {
        /// The file.
        file: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// `ThreeportAgentImage` is not an image reference.
    #[error("ThreeportAgentImage {image:?} {reason}")]
    AgentImage {
        /// The value.
        image: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The agent Deployment is missing from the agent data file.
    #[error("runtime manifest {}: no container {AGENT_CONTAINER:?} in Deployment {AGENT_DEPLOYMENT:?}", InstallStep::Agent.file_name())]
    NoAgentContainer,
}

/// The steps to run for `inputs`, with their objects ready to apply.
pub fn install_plan(
    inputs: &InstallInputs,
) -> Result<Vec<(InstallStep, Vec<Value>)>, InstallError> {
    let agent_image = inputs
        .agent_image
        .as_deref()
        .filter(|i| !i.is_empty())
        .map(checked_image)
        .transpose()?;
    let mut plan = Vec::new();
    for step in InstallStep::ALL {
        if step.eks_only() && inputs.aws_account_id.is_none() {
            continue;
        }
        if step == InstallStep::Agent && inputs.control_plane_host {
            continue;
        }
        let mut objects = step.template()?;
        for object in &mut objects {
            replace_placeholders(object, inputs);
        }
        if let (InstallStep::Agent, Some(image)) = (step, agent_image) {
            set_agent_image(&mut objects, image)?;
        }
        plan.push((step, objects));
    }
    Ok(plan)
}

/// `image` if it is an image reference with a tag or a digest. Threeport requires
/// `<registry>[/<org>]/<name>:<tag>`, keeps its own name `threeport-agent` whatever the image
/// names, and crashes without a tag; here the image is used as given, and anything without
/// a tag or digest is refused (a floating `latest` would make the agent version unknowable).
pub fn checked_image(image: &str) -> Result<&str, InstallError> {
    let refuse = |reason| {
        Err(InstallError::AgentImage {
            image: image.to_string(),
            reason,
        })
    };
    if image.chars().any(char::is_whitespace) {
        return refuse("contains whitespace");
    }
    let last = image.rsplit('/').next().unwrap_or_default();
    let (name, version) = match last.split_once('@') {
        Some((name, digest)) => {
            // A digest is `<algorithm>:<hex>`.
            if !digest.split_once(':').is_some_and(|(a, h)| {
                !a.is_empty() && !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit())
            }) {
                return refuse("has a digest that is not <algorithm>:<hex>");
            }
            (name, digest)
        }
        None => last.split_once(':').unwrap_or((last, "")),
    };
    if name.is_empty() {
        return refuse("has no image name");
    }
    if version.is_empty() {
        return refuse("has no tag or digest (expected <registry>/<name>:<tag>)");
    }
    Ok(image)
}

fn replace_placeholders(value: &mut Value, inputs: &InstallInputs) {
    match value {
        Value::String(s) if s.contains("${") => {
            let mut out = s.replace(RUNTIME_NAME, &inputs.runtime_name);
            if let Some(account) = &inputs.aws_account_id {
                out = out.replace(AWS_ACCOUNT_ID, account);
            }
            *s = out;
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| replace_placeholders(v, inputs)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|v| replace_placeholders(v, inputs)),
        _ => {}
    }
}

fn set_agent_image(objects: &mut [Value], image: &str) -> Result<(), InstallError> {
    let container = objects
        .iter_mut()
        .filter(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == AGENT_DEPLOYMENT)
        .filter_map(|o| o.pointer_mut("/spec/template/spec/containers"))
        .filter_map(Value::as_array_mut)
        .flatten()
        .find(|c| c["name"] == AGENT_CONTAINER)
        .ok_or(InstallError::NoAgentContainer)?;
    container["image"] = Value::String(image.to_string());
    Ok(())
}

/// `(apiVersion, kind)` of every version each CRD among `objects` serves.
pub fn crd_kinds(objects: &[Value]) -> Vec<(String, String)> {
    objects
        .iter()
        .filter(|o| o["kind"] == "CustomResourceDefinition")
        .flat_map(|crd| {
            let group = crd["spec"]["group"].as_str().unwrap_or_default();
            let kind = crd["spec"]["names"]["kind"].as_str().unwrap_or_default();
            crd["spec"]["versions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|v| v["served"] != false)
                .filter_map(|v| v["name"].as_str())
                .map(move |version| (format!("{group}/{version}"), kind.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests;
