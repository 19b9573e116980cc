//! A gateway setup in the in-memory API for the instance reconcilers' unit tests, with a
//! stand-in for the workload controller (what it records when it applies a workload).

use std::sync::Arc;

use serde_json::{json, Value};

use super::test_ports::{http, tcp};
use crate::engine::{Operation, Outcome, ReconcileContext, ReconcileError};
use crate::reconcilers::testing::{context, FakeApi};
use crate::threeport::models::{
    Definition, DomainNameDefinition, GatewayDefinition, GatewayHttpPort, GatewayInstance,
    GatewayTcpPort, Instance, KubernetesRuntimeDefinition, KubernetesRuntimeInstance,
    Reconciliation, WorkloadDefinition, WorkloadInstance, WorkloadResourceInstance,
};

/// The namespace the user's workload runs in.
pub const USER_NAMESPACE: &str = "web-app-ns";

/// Every object of a gateway on a `kind` runtime named `local`: a domain `app.example.com`
/// (definition `zone`), a gateway definition `web` (reconciled) with HTTP 443 (TLS), HTTP
/// 8080 and TCP 5432, the user's reconciled workload with Service `web`, and an instance.
pub struct Gateway {
    pub api: Arc<FakeApi>,
    pub runtime: u64,
    pub dnd: u64,
    pub gd: u64,
    pub user_wi: u64,
    pub gi: u64,
}

pub fn named(name: &str) -> Definition {
    Definition {
        name: Some(name.into()),
        ..Default::default()
    }
}

pub fn reconciled(yes: bool) -> Reconciliation {
    Reconciliation {
        reconciled: Some(yes),
        ..Default::default()
    }
}

impl Gateway {
    pub fn new() -> Self {
        Self::with_location("Local")
    }

    pub fn with_location(location: &str) -> Self {
        let api = FakeApi::new();
        let krd = api.insert(&KubernetesRuntimeDefinition {
            definition: named("kind-def"),
            infra_provider: Some("kind".into()),
            ..Default::default()
        });
        let runtime = api.insert(&KubernetesRuntimeInstance {
            instance: Instance {
                name: Some("local".into()),
                ..Default::default()
            },
            location: Some(location.into()),
            kubernetes_runtime_definition_id: Some(krd),
            ..Default::default()
        });
        let dnd = api.insert(&DomainNameDefinition {
            definition: named("zone"),
            domain: Some("example.com".into()),
            admin_email: Some("ops@example.com".into()),
            ..Default::default()
        });
        let template = api.insert(&WorkloadDefinition {
            definition: named("web-gateway"),
            ..Default::default()
        });
        let gd = api.insert(&GatewayDefinition {
            definition: named("web"),
            reconciliation: reconciled(true),
            domain_name_definition_id: Some(dnd),
            sub_domain: Some("app".into()),
            workload_definition_id: Some(template),
            ..Default::default()
        });
        let g = Self {
            api,
            runtime,
            dnd,
            gd,
            user_wi: 0,
            gi: 0,
        };
        g.add_http(http(443, "/", true, false));
        g.add_http(http(8080, "/", false, false));
        g.add_tcp(tcp(5432));
        let user_wd = g.api.insert(&WorkloadDefinition {
            definition: named("web-app"),
            ..Default::default()
        });
        let user_wi = g.api.insert(&WorkloadInstance {
            instance: Instance {
                name: Some("web-app".into()),
                ..Default::default()
            },
            reconciliation: reconciled(true),
            kubernetes_runtime_instance_id: Some(runtime),
            workload_definition_id: Some(user_wd),
            ..Default::default()
        });
        for (kind, api_version) in [("Deployment", "apps/v1"), ("Service", "v1")] {
            g.api.insert(&WorkloadResourceInstance {
                json_definition: Some(json!({"apiVersion": api_version, "kind": kind,
                    "metadata": {"name": "web", "namespace": USER_NAMESPACE}})),
                workload_instance_id: Some(user_wi),
                reconciled: Some(true),
                ..Default::default()
            });
        }
        let gi = g.api.insert(&GatewayInstance {
            instance: Instance {
                name: Some("web-gw".into()),
                ..Default::default()
            },
            kubernetes_runtime_instance_id: Some(runtime),
            gateway_definition_id: Some(gd),
            workload_instance_id: Some(user_wi),
            ..Default::default()
        });
        Self { user_wi, gi, ..g }
    }

    pub fn add_http(&self, mut port: GatewayHttpPort) -> u64 {
        port.gateway_definition_id = Some(self.gd);
        self.api.insert(&port)
    }

    pub fn add_tcp(&self, mut port: GatewayTcpPort) -> u64 {
        port.gateway_definition_id = Some(self.gd);
        self.api.insert(&port)
    }

    pub fn context(
        &self,
        reconciler: &str,
        id: u64,
        op: Operation,
        attempt: u64,
    ) -> ReconcileContext {
        context(self.api.clone(), reconciler, id, op, attempt)
    }

    pub fn runtime(&self) -> KubernetesRuntimeInstance {
        FakeApi::get(&self.api, self.runtime).expect("runtime")
    }

    pub fn wris_of(&self, wi: u64) -> Vec<WorkloadResourceInstance> {
        self.api
            .all::<WorkloadResourceInstance>()
            .into_iter()
            .filter(|w| w.workload_instance_id == Some(wi))
            .collect()
    }

    /// The live (not scheduled for deletion) WRIs of a kind on a workload instance.
    pub fn live(&self, wi: u64, kind: &str) -> Vec<Value> {
        self.wris_of(wi)
            .into_iter()
            .filter(|w| w.scheduled_for_deletion.is_none())
            .filter_map(|w| w.json_definition)
            .filter(|d| d["kind"] == kind)
            .collect()
    }

    /// What the workload controller does with an un-reconciled workload instance: on the
    /// first pass create a WRI per document of its definition; afterwards apply the
    /// un-reconciled WRIs (recording them in the user's namespace when namespaced) and delete
    /// the scheduled ones; then mark the instance reconciled.
    pub fn workload_controller_applies(&self, wi_id: u64) {
        let wi: WorkloadInstance = FakeApi::get(&self.api, wi_id).expect("workload instance");
        if wi.reconciliation.reconciled == Some(true) {
            return;
        }
        let wris = self.wris_of(wi_id);
        if wris.is_empty() {
            let wd: WorkloadDefinition =
                FakeApi::get(&self.api, wi.workload_definition_id.expect("definition"))
                    .expect("definition");
            let yaml = wd.yaml_document.unwrap_or_default();
            for doc in serde_yaml_ng::Deserializer::from_str(&yaml) {
                let doc: Value = serde::Deserialize::deserialize(doc).expect("yaml");
                if doc.is_null() {
                    continue;
                }
                self.api.insert(&WorkloadResourceInstance {
                    json_definition: Some(doc),
                    workload_instance_id: Some(wi_id),
                    reconciled: Some(true),
                    ..Default::default()
                });
            }
        }
        for w in wris {
            let id = w.common.id.expect("id");
            if w.scheduled_for_deletion.is_some() {
                self.api.remove::<WorkloadResourceInstance>(id);
            } else if w.reconciled != Some(true) {
                self.api.update::<WorkloadResourceInstance>(id, |w| {
                    w.reconciled = Some(true);
                    if let Some(def) = &mut w.json_definition {
                        if def["kind"] != "GlooEdge" {
                            def["metadata"]["namespace"] = json!(USER_NAMESPACE);
                        }
                    }
                });
            }
        }
        self.api
            .update::<WorkloadInstance>(wi_id, |wi| wi.reconciliation.reconciled = Some(true));
    }

    /// Deliver until the reconciler is done, playing the workload controller between passes;
    /// every error is retried, as the engine would, up to a bound.
    pub async fn until_done<F, Fut>(&self, mut pass: F) -> usize
    where
        F: FnMut(u64) -> Fut,
        Fut: std::future::Future<Output = Result<Outcome, ReconcileError>>,
    {
        for attempt in 1..=20 {
            match pass(attempt).await {
                Ok(Outcome::Done) => return attempt as usize,
                Ok(Outcome::RequeueAfter(_)) | Err(_) => {}
            }
            for wi in self.api.all::<WorkloadInstance>() {
                self.workload_controller_applies(wi.common.id.expect("id"));
            }
        }
        panic!("not done after 20 passes");
    }

    /// Like [`Self::until_done`], but expects the reconciler to fail; returns the error.
    pub async fn until_done_or_error<F, Fut>(&self, mut pass: F) -> ReconcileError
    where
        F: FnMut(u64) -> Fut,
        Fut: std::future::Future<Output = Result<Outcome, ReconcileError>>,
    {
        for attempt in 1..=20 {
            if let Err(e) = pass(attempt).await {
                return e;
            }
            for wi in self.api.all::<WorkloadInstance>() {
                self.workload_controller_applies(wi.common.id.expect("id"));
            }
        }
        panic!("no error after 20 passes");
    }
}
