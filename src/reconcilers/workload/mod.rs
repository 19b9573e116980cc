//! The workload controller (spec 3.2): WorkloadDefinitions become WorkloadResourceDefinitions,
//! WorkloadInstances become Kubernetes objects plus one WorkloadResourceInstance per object and
//! a ThreeportWorkload for the agent.
//!
//! Unlike Threeport's Go controller (spec 4.3), every step here is safe to repeat: the
//! managed namespace is derived from the instance ID, Kubernetes writes are server-side apply
//! (create-or-update), and existing WRDs / WRIs are looked up before anything is POSTed, so a
//! failure at any point followed by a retry converges on one copy of everything.
//!
//! The pure decisions (which WRI belongs to which object, the requeue delay, what an update
//! must apply or delete) live in this file and are unit-tested; [`definition`] and
//! [`instance`] do the IO.

pub mod definition;
pub mod instance;
#[cfg(test)]
mod scenarios;

use std::time::Duration;

use serde_json::Value;

use crate::kube::discovery::split_api_version;
use crate::threeport::models::WorkloadResourceInstance;

pub use definition::WorkloadDefinitionReconciler;
pub use instance::WorkloadInstanceReconciler;

use super::{ReconcilerDeps, Registered};

/// The controller's reconcilers, in the registry's order (its registration in
/// [`IMPLEMENTATIONS`](super::IMPLEMENTATIONS)).
pub fn reconcilers(deps: &ReconcilerDeps) -> Vec<Registered> {
    vec![
        Registered::new(
            "WorkloadDefinitionReconciler",
            WorkloadDefinitionReconciler::new(),
        ),
        Registered::new(
            "WorkloadInstanceReconciler",
            WorkloadInstanceReconciler::new(deps.runtimes.clone()),
        ),
    ]
}

/// First delay when an instance waits for its definition to be reconciled. A definition is
/// usually reconciled within a few hundred milliseconds, so start short.
pub const DEFINITION_WAIT_BASE: Duration = Duration::from_secs(1);
/// Longest wait between two checks of an unreconciled definition: a definition with broken
/// YAML may never reconcile, and checking it every 30 s costs nothing.
pub const DEFINITION_WAIT_CAP: Duration = Duration::from_secs(30);

/// Delay before the `attempt`-th (JetStream delivery count, from 1) re-check of an
/// unreconciled definition: 1 s, 2 s, 4 s, ... capped at [`DEFINITION_WAIT_CAP`]. A requeue,
/// not an error, so no failure event storm while the definition is being processed.
pub fn definition_wait_delay(attempt: u64) -> Duration {
    let exp = attempt.saturating_sub(1).min(16) as u32;
    DEFINITION_WAIT_BASE
        .saturating_mul(2u32.saturating_pow(exp))
        .min(DEFINITION_WAIT_CAP)
}

/// What identifies a Kubernetes object for WRI matching: (API group, kind, namespace, name).
/// The version is left out on purpose: the same object served under another version is still
/// the same object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKey {
    /// API group, empty for the core group.
    pub group: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.namespace`, empty for cluster-scoped objects.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

impl ResourceKey {
    /// The key of a Kubernetes object as JSON; missing fields are empty strings.
    pub fn of(obj: &Value) -> Self {
        let s = |p: &str| {
            obj.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let api_version = s("/apiVersion");
        Self {
            group: split_api_version(&api_version).0.to_string(),
            kind: s("/kind"),
            namespace: s("/metadata/namespace"),
            name: s("/metadata/name"),
        }
    }
}

impl std::fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        if self.namespace.is_empty() {
            write!(f, "{group} {} {}", self.kind, self.name)
        } else {
            write!(f, "{group} {} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// The key of a WRI's stored object, if it has one.
pub fn wri_key(wri: &WorkloadResourceInstance) -> Option<ResourceKey> {
    wri.json_definition.as_ref().map(ResourceKey::of)
}

/// For each object (in order), the index in `existing` of the WRI that already stands for it,
/// or `None` when a WRI must be POSTed. Each WRI is used at most once, so duplicates left by
/// someone else are not counted twice; WRIs scheduled for deletion never match.
pub fn match_wris(objects: &[Value], existing: &[WorkloadResourceInstance]) -> Vec<Option<usize>> {
    let mut used = vec![false; existing.len()];
    objects
        .iter()
        .map(|obj| {
            let key = ResourceKey::of(obj);
            let found = existing.iter().enumerate().position(|(i, w)| {
                !used[i] && w.scheduled_for_deletion.is_none() && wri_key(w).as_ref() == Some(&key)
            });
            if let Some(i) = found {
                used[i] = true;
            }
            found
        })
        .collect()
}

/// The minimal change that brings an existing WRI in line with what was applied (a
/// [`Patch::Changes`](crate::threeport::models::Patch::Changes)): `Reconciled` and, if it
/// changed, `JSONDefinition`. `None` when nothing changed. Never carries IDs or timestamps (a
/// PATCH with them would be rejected or rewrite history).
pub fn wri_patch(
    existing: &WorkloadResourceInstance,
    applied: &Value,
) -> Option<WorkloadResourceInstance> {
    let changes = WorkloadResourceInstance {
        json_definition: (existing.json_definition.as_ref() != Some(applied))
            .then(|| applied.clone()),
        reconciled: (existing.reconciled != Some(true)).then_some(true),
        ..Default::default()
    };
    (changes != WorkloadResourceInstance::default()).then_some(changes)
}

/// Creation priority: Namespaces, then CRDs, then the rest (see
/// [`order_for_apply`](crate::kube::manifest::order_for_apply)).
pub fn apply_rank(obj: &Value) -> u8 {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    let av = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if kind == "Namespace" && av == "v1" {
        0
    } else if kind == "CustomResourceDefinition" && av.starts_with("apiextensions.k8s.io/") {
        1
    } else {
        2
    }
}

/// What an Updated reconcile (spec 3.2.3) has to do with the instance's WRIs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpdatePlan {
    /// Indexes (into the WRI list) of WRIs to delete, in the cluster and in the API.
    pub delete: Vec<usize>,
    /// Indexes of WRIs whose object must be applied (they are `Reconciled:false`).
    pub apply: Vec<usize>,
}

/// Spec 3.2.3: a WRI with `ScheduledForDeletion` is deleted; one that is not reconciled
/// (`Reconciled` false or absent) is applied; the rest are left alone. Deletions come in
/// reverse creation priority (custom resources before their CRDs, namespaces last); applies
/// in creation priority, each group in WRI order.
pub fn plan_update(wris: &[WorkloadResourceInstance]) -> UpdatePlan {
    let rank = |w: &WorkloadResourceInstance| w.json_definition.as_ref().map_or(2, apply_rank);
    let mut delete: Vec<usize> = (0..wris.len())
        .filter(|&i| wris[i].scheduled_for_deletion.is_some())
        .collect();
    delete.sort_by_key(|&i| std::cmp::Reverse(rank(&wris[i])));
    let mut apply: Vec<usize> = (0..wris.len())
        .filter(|&i| wris[i].scheduled_for_deletion.is_none() && wris[i].reconciled != Some(true))
        .collect();
    apply.sort_by_key(|&i| rank(&wris[i]));
    UpdatePlan { delete, apply }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threeport::models::Common;
    use serde_json::json;

    fn wri(id: u64, obj: Value, reconciled: Option<bool>) -> WorkloadResourceInstance {
        WorkloadResourceInstance {
            common: Common {
                id: Some(id),
                ..Default::default()
            },
            json_definition: Some(obj),
            reconciled,
            ..Default::default()
        }
    }

    fn cm(ns: &str, name: &str) -> Value {
        json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":name,"namespace":ns}})
    }

    #[test]
    fn delay_grows_and_is_capped() {
        let d: Vec<u64> = (0..9).map(|a| definition_wait_delay(a).as_secs()).collect();
        assert_eq!(d, vec![1, 1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(definition_wait_delay(u64::MAX), DEFINITION_WAIT_CAP);
    }

    #[test]
    fn keys_ignore_the_version_and_name_the_group() {
        let a = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d","namespace":"n"}});
        let b = json!({"apiVersion":"apps/v1beta2","kind":"Deployment","metadata":{"name":"d","namespace":"n"}});
        assert_eq!(ResourceKey::of(&a), ResourceKey::of(&b));
        assert_eq!(ResourceKey::of(&a).to_string(), "apps Deployment n/d");
        let ns = json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"x"}});
        assert_eq!(ResourceKey::of(&ns).to_string(), "core Namespace x");
        assert_ne!(
            ResourceKey::of(&cm("a", "x")),
            ResourceKey::of(&cm("b", "x"))
        );
    }

    #[test]
    fn matching_reuses_each_wri_once_and_skips_deleted_ones() {
        let objects = vec![cm("n", "a"), cm("n", "b"), cm("n", "a"), cm("n", "c")];
        let mut gone = wri(4, cm("n", "c"), Some(true));
        gone.scheduled_for_deletion = Some(time::OffsetDateTime::UNIX_EPOCH);
        let existing = vec![
            wri(1, cm("n", "b"), Some(true)),
            wri(2, cm("n", "a"), Some(true)),
            wri(3, cm("other", "a"), Some(true)),
            gone,
            WorkloadResourceInstance::default(),
        ];
        assert_eq!(
            match_wris(&objects, &existing),
            vec![Some(1), Some(0), None, None]
        );
        assert_eq!(match_wris(&objects, &[]), vec![None; 4]);
    }

    #[test]
    fn patch_is_minimal() {
        let wri_patch = |w: &WorkloadResourceInstance, applied: &Value| {
            super::wri_patch(w, applied).map(|c| serde_json::to_value(c).expect("encode"))
        };
        let w = wri(1, cm("n", "a"), Some(true));
        assert_eq!(wri_patch(&w, &cm("n", "a")), None);
        let w = wri(1, cm("n", "a"), Some(false));
        assert_eq!(
            wri_patch(&w, &cm("n", "a")),
            Some(json!({"Reconciled": true}))
        );
        let w = wri(1, cm("default", "a"), Some(true));
        let p = wri_patch(&w, &cm("n", "a")).unwrap();
        assert_eq!(p, json!({"JSONDefinition": cm("n", "a")}));
        assert!(p.get("ID").is_none() && p.get("CreatedAt").is_none());
    }

    #[test]
    fn update_plan_applies_unreconciled_and_deletes_scheduled() {
        let ns = json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"n"}});
        let crd = json!({"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"ws.x.io"}});
        let cr = json!({"apiVersion":"x.io/v1","kind":"W","metadata":{"name":"w","namespace":"n"}});
        let mut del_ns = wri(1, ns.clone(), Some(false));
        del_ns.scheduled_for_deletion = Some(time::OffsetDateTime::UNIX_EPOCH);
        let mut del_cr = wri(5, cr.clone(), Some(true));
        del_cr.scheduled_for_deletion = Some(time::OffsetDateTime::UNIX_EPOCH);
        let wris = vec![
            del_ns,
            wri(2, cm("n", "a"), Some(true)),
            wri(3, cr, None),
            wri(4, crd, Some(false)),
            del_cr,
            wri(6, ns, Some(false)),
        ];
        let plan = plan_update(&wris);
        // Custom resource first, namespace last.
        assert_eq!(plan.delete, vec![4, 0]);
        // Namespace, CRD, then the custom resource; the reconciled ConfigMap is left alone.
        assert_eq!(plan.apply, vec![5, 3, 2]);
        assert_eq!(plan_update(&[]), UpdatePlan::default());
    }

    #[test]
    fn rank_orders_namespaces_then_crds() {
        let ns = json!({"apiVersion":"v1","kind":"Namespace"});
        let other_ns = json!({"apiVersion":"example.io/v1","kind":"Namespace"});
        let crd =
            json!({"apiVersion":"apiextensions.k8s.io/v1beta1","kind":"CustomResourceDefinition"});
        assert_eq!(apply_rank(&ns), 0);
        assert_eq!(apply_rank(&crd), 1);
        assert_eq!(apply_rank(&other_ns), 2);
        assert_eq!(apply_rank(&cm("n", "a")), 2);
    }
}
