//! The post-renderer of every helm install and upgrade (spec 3.5): helm writes the rendered
//! chart to its stdin and deploys what it prints. `threeport-manager helm-post-render --spec
//! FILE` runs [`post_render`] with the [`PostRenderSpec`] the reconcile wrote to FILE.
//!
//! What it prints: every object of the chart with Threeport's labels (the agent finds a
//! release's objects by them), then the additional resources of the definition, then the
//! instance's, each labelled the same and put into the release namespace.
//!
//! Unlike Threeport's `ThreeportPostRenderer` (spec 4.5 item 37): the chart's objects are kept
//! when there are additional resources (Threeport's `AppendAdditionalResources` returns only
//! those, so any definition with additional resources deploys none of its chart), the release
//! namespace it sets on them is kept (Threeport marshals the original JSON, discarding it), and
//! additional resources carry the labels too (Threeport appends them unlabelled, so the agent
//! does not report on them).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::kube::manifest::{add_labels, split_yaml, ManifestError, HELM_WORKLOAD_INSTANCE_LABEL};

/// What the post-renderer needs to know of one release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostRenderSpec {
    /// The HelmWorkloadDefinition's name (label `app.kubernetes.io/name`).
    pub definition_name: String,
    /// The HelmWorkloadInstance's name (label `app.kubernetes.io/instance`).
    pub instance_name: String,
    /// Its ID (label `control-plane.threeport.io/helm-workload-instance`).
    pub instance_id: u64,
    /// The namespace the release goes to.
    pub release_namespace: String,
    /// The definition's `AdditionalResources`, then the instance's.
    pub additional_resources: Vec<Value>,
}

/// Why the rendered chart or an additional resource cannot be post-rendered.
#[derive(Debug, thiserror::Error)]
pub enum PostRenderError {
    /// helm's output is not a stream of Kubernetes objects.
    #[error("the rendered chart: {0}")]
    Rendered(ManifestError),
    /// An additional resource is not a Kubernetes object.
    #[error("additional resource {index}: {reason}")]
    AdditionalResource {
        /// Its position (the definition's first).
        index: usize,
        /// What is wrong.
        reason: String,
    },
}

/// The chart's objects (`rendered`, YAML) and the additional resources, labelled, as one YAML
/// stream.
pub fn post_render(rendered: &str, spec: &PostRenderSpec) -> Result<String, PostRenderError> {
    let mut objects = split_yaml(rendered).map_err(PostRenderError::Rendered)?;
    for object in &mut objects {
        label(object, spec).map_err(PostRenderError::Rendered)?;
    }
    for (index, extra) in spec.additional_resources.iter().enumerate() {
        let mut object = extra.clone();
        let reason = |e: ManifestError| PostRenderError::AdditionalResource {
            index,
            reason: e.to_string(),
        };
        if object.get("apiVersion").and_then(Value::as_str).is_none()
            || object.get("kind").and_then(Value::as_str).is_none()
        {
            return Err(PostRenderError::AdditionalResource {
                index,
                reason: "apiVersion and kind are required".to_string(),
            });
        }
        label(&mut object, spec).map_err(reason)?;
        object["metadata"]["namespace"] = Value::String(spec.release_namespace.clone());
        objects.push(object);
    }
    let mut out = String::new();
    for object in &objects {
        out.push_str("---\n");
        // Serialising a JSON value as YAML cannot fail.
        out.push_str(&serde_yaml_ng::to_string(object).unwrap_or_default());
    }
    Ok(out)
}

fn label(object: &mut Value, spec: &PostRenderSpec) -> Result<(), ManifestError> {
    add_labels(
        object,
        &spec.definition_name,
        &spec.instance_name,
        spec.instance_id,
        HELM_WORKLOAD_INSTANCE_LABEL,
    )
}

#[cfg(test)]
mod tests;
