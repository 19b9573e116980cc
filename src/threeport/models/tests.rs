//! Decoding, encoding and PATCH bodies of the models.

use super::*;
use time::macros::datetime;

use crate::threeport::api::ThreeportApi;

/// `Data[0]` of a GET /v0/workload-instances/{id} response as the real API renders it,
/// with IDs above 2^53 and an unknown field.
const WI_GET: &str = r#"{
    "ID": 917190976565575681,
    "CreatedAt": "2023-11-09T12:18:36.020403Z",
    "UpdatedAt": "2023-11-09T12:18:37.5Z",
    "DeletedAt": null,
    "Reconciled": false,
    "CreationAcknowledged": null,
    "CreationConfirmed": null,
    "CreationFailed": false,
    "DeletionScheduled": "2023-11-09T13:00:00Z",
    "DeletionAcknowledged": null,
    "DeletionConfirmed": null,
    "InterruptReconciliation": false,
    "Name": "web",
    "Status": "Healthy",
    "KubernetesRuntimeInstanceID": 18446744073709551615,
    "WorkloadDefinitionID": 9007199254740993,
    "SomeFutureField": {"x": 1}
}"#;

#[test]
fn decodes_workload_instance_with_exact_ids() {
    let wi: WorkloadInstance = decode(serde_json::from_str(WI_GET).unwrap()).unwrap();
    assert_eq!(wi.id(), Some(917_190_976_565_575_681));
    assert_eq!(wi.kubernetes_runtime_instance_id, Some(u64::MAX));
    // 2^53 + 1 is not representable as f64: proves no float round trip.
    assert_eq!(wi.workload_definition_id, Some(9_007_199_254_740_993));
    assert_eq!(
        wi.common.created_at,
        Some(datetime!(2023-11-09 12:18:36.020403 UTC))
    );
    assert_eq!(
        wi.common.updated_at,
        Some(datetime!(2023-11-09 12:18:37.5 UTC))
    );
    assert_eq!(wi.common.deleted_at, None);
    assert_eq!(wi.reconciliation.reconciled, Some(false));
    assert_eq!(
        wi.reconciliation.deletion_scheduled,
        Some(datetime!(2023-11-09 13:00:00 UTC))
    );
    assert_eq!(wi.instance.name.as_deref(), Some("web"));
    assert_eq!(wi.instance.status.as_deref(), Some("Healthy"));
}

#[test]
fn round_trip_keeps_ids_and_timestamps() {
    let wi: WorkloadInstance = serde_json::from_str(WI_GET).unwrap();
    let text = serde_json::to_string(&wi).unwrap();
    assert!(text.contains(r#""ID":917190976565575681"#), "{text}");
    assert!(text.contains(r#""KubernetesRuntimeInstanceID":18446744073709551615"#));
    assert!(
        text.contains(r#""CreatedAt":"2023-11-09T12:18:36.020403Z""#),
        "{text}"
    );
    assert!(
        text.contains(r#""UpdatedAt":"2023-11-09T12:18:37.5Z""#),
        "{text}"
    );
    assert!(
        !text.contains("DeletedAt"),
        "null fields are omitted: {text}"
    );
    assert!(!text.contains("SomeFutureField"));
    let again: WorkloadInstance = serde_json::from_str(&text).unwrap();
    assert_eq!(again, wi);
}

#[test]
fn timestamps_accept_offsets_and_write_utc_z() {
    let wrd: WorkloadResourceInstance = serde_json::from_str(
        r#"{"ID":1,"ScheduledForDeletion":"2024-02-03T04:05:06.123456789+02:00"}"#,
    )
    .unwrap();
    assert_eq!(
        wrd.scheduled_for_deletion,
        Some(datetime!(2024-02-03 02:05:06.123456789 UTC))
    );
    let out = serde_json::to_value(&wrd).unwrap();
    assert_eq!(
        out["ScheduledForDeletion"],
        "2024-02-03T02:05:06.123456789Z"
    );
    assert!(serde_json::from_str::<Event>(r#"{"EventTime":"yesterday"}"#).is_err());
}

#[test]
fn kubernetes_runtime_instance_sic_names() {
    let raw = r#"{
        "ID": 917190976565575682,
        "Name": "local",
        "Location": "Local",
        "ThreeportControlPlaneHost": true,
        "APIEndpoint": "https://127.0.0.1:6443",
        "CACertificate": "-----BEGIN CERTIFICATE-----",
        "Certificate": "-----BEGIN CERTIFICATE-----",
        "CertificateKey": "yMnKy8zNzs/Q0dLT",
        "ConnectionToken": null,
        "DefaultRuntime": true,
        "KubernetesRuntimeDefinitionID": 917190976565575000,
        "WorkloadInstance": [],
        "ControlPlaneInstance": null,
        "GatewayWorkloadInstanceID": 917190976565575683,
        "DnsControllerInstanceId": 917190976565575684,
        "SecretsControllerInstanceId": 917190976565575685,
        "ThreeportAgentImage": "ghcr.io/threeport/threeport-agent:v0.5.0"
    }"#;
    let kri: KubernetesRuntimeInstance = decode(serde_json::from_str(raw).unwrap()).unwrap();
    assert_eq!(
        kri.gateway_workload_instance_id,
        Some(917_190_976_565_575_683)
    );
    assert_eq!(
        kri.dns_controller_instance_id,
        Some(917_190_976_565_575_684)
    );
    assert_eq!(
        kri.secrets_controller_instance_id,
        Some(917_190_976_565_575_685)
    );
    assert_eq!(kri.workload_instances, Some(vec![]));
    assert_eq!(kri.control_plane_instances, None);
    assert_eq!(
        kri.certificate_key.as_ref().map(|s| s.expose()),
        Some("yMnKy8zNzs/Q0dLT")
    );
    let dbg = format!("{kri:?}");
    assert!(!dbg.contains("yMnKy8zNzs"), "secret leaked in Debug: {dbg}");

    // A minimal PATCH of the support-service IDs uses the sic names and nothing else.
    let update = KubernetesRuntimeInstance {
        gateway_workload_instance_id: Some(917_190_976_565_575_683),
        dns_controller_instance_id: Some(1),
        ..Default::default()
    };
    let body = patch_body(&Patch::Changes(&update)).unwrap();
    assert_eq!(
        body,
        json!({"DnsControllerInstanceId": 1, "GatewayWorkloadInstanceID": 917_190_976_565_575_683u64})
    );

    // A full object read from GET loses gorm, association and encrypted keys.
    let full = patch_body(&Patch::Object(&kri)).unwrap();
    let map = full.as_object().unwrap();
    for k in [
        "ID",
        "WorkloadInstance",
        "CertificateKey",
        "ConnectionToken",
    ] {
        assert!(!map.contains_key(k), "{k} must not be in a PATCH body");
    }
    assert_eq!(
        map["GatewayWorkloadInstanceID"],
        json!(917_190_976_565_575_683u64)
    );
    assert_eq!(map["Name"], "local");
}

#[test]
fn patch_bodies_are_exact() {
    assert_eq!(
        serde_json::to_string(&reconciled_patch()).unwrap(),
        r#"{"Reconciled":true}"#
    );
    assert_eq!(
        serde_json::to_string(&unreconciled_patch()).unwrap(),
        r#"{"Reconciled":false}"#
    );
    let now = datetime!(2026-01-02 03:04:05.123456789 +01:00);
    assert_eq!(
        serde_json::to_string(&deletion_confirmed_patch(now)).unwrap(),
        r#"{"DeletionAcknowledged":"2026-01-02T02:04:05.123456789Z","DeletionConfirmed":"2026-01-02T02:04:05.123456789Z","Reconciled":true}"#
    );
    let whole = datetime!(2026-01-02 03:04:05 UTC);
    assert_eq!(
        deletion_confirmed_patch(whole),
        json!({"Reconciled": true, "DeletionAcknowledged": "2026-01-02T03:04:05Z", "DeletionConfirmed": "2026-01-02T03:04:05Z"})
    );
}

#[test]
fn patch_body_strips_definition_associations() {
    let wd = WorkloadDefinition {
        common: Common {
            id: Some(5),
            ..Default::default()
        },
        definition: Definition {
            name: Some("web".into()),
            profile_id: Some(1),
            tier_id: Some(2),
        },
        workload_resource_definitions: Some(vec![]),
        reconciliation: Reconciliation {
            reconciled: Some(true),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(
        patch_body(&Patch::Object(&wd)).unwrap(),
        json!({"Name": "web", "Reconciled": true})
    );
    // Changes that name an association are refused before anything is sent.
    let err = patch_body(&Patch::Changes(&wd)).unwrap_err();
    assert!(err.to_string().contains("association ProfileID"), "{err}");
}

#[test]
fn event_and_reference_shapes() {
    let ev: Event = serde_json::from_str(
        r#"{"ID":917190976565575690,"AttachedObjectReferenceID":917190976565575691,
            "Reason":"SuccessfulCreate","Note":"n","Count":3,
            "EventTime":"2023-11-09T12:18:36.020403Z","LastObservedTime":"2023-11-09T12:18:36Z",
            "Type":"Normal","ReportingController":"WorkloadController"}"#,
    )
    .unwrap();
    assert_eq!(ev.count, Some(3));
    assert_eq!(
        ev.attached_object_reference_id,
        Some(917_190_976_565_575_691)
    );
    assert_eq!(ev.event_type.as_deref(), Some("Normal"));
    let r = AttachedObjectReference {
        object_type: Some(WORKLOAD_INSTANCE.versioned_name()),
        object_id: Some(u64::MAX),
        attached_object_type: Some(EVENT.versioned_name()),
        attached_object_id: Some(1),
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_string(&r).unwrap(),
        r#"{"ObjectType":"v0.WorkloadInstance","ObjectID":18446744073709551615,"AttachedObjectType":"v0.Event","AttachedObjectID":1}"#
    );
}

#[test]
fn gateway_and_domain_models() {
    let gd: GatewayDefinition = serde_json::from_str(
        r#"{"ID":10,"Name":"gw","HttpPorts":[{"Port":443,"Path":"/","TLSEnabled":true,"HTTPSRedirect":false,"GatewayDefinitionID":10}],
            "TcpPorts":null,"DomainNameDefinitionID":11,"SubDomain":"app","ServiceName":"web","WorkloadDefinitionID":12}"#,
    )
    .unwrap();
    let ports = gd.http_ports.as_ref().unwrap();
    assert_eq!(ports[0].port, Some(443));
    assert_eq!(ports[0].tls_enabled, Some(true));
    assert_eq!(gd.tcp_ports, None);
    let gi: GatewayInstance = serde_json::from_str(
        r#"{"ID":13,"Name":"gw-i","GatewayDefinitionID":10,"KubernetesRuntimeInstanceID":14,"WorkloadInstanceID":15}"#,
    )
    .unwrap();
    assert_eq!(gi.workload_instance_id, Some(15));
    let dni: DomainNameInstance = serde_json::from_str(
        r#"{"ID":16,"Name":"d","DomainNameDefinitionID":17,"WorkloadInstanceID":15,"KubernetesRuntimeInstanceID":14}"#,
    )
    .unwrap();
    assert_eq!(dni.domain_name_definition_id, Some(17));
    let wrd: WorkloadResourceDefinition = serde_json::from_str(
        r#"{"ID":18,"JSONDefinition":{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"}},"WorkloadDefinitionID":917190976565575681}"#,
    )
    .unwrap();
    assert_eq!(wrd.json_definition.as_ref().unwrap()["kind"], "Service");
    assert_eq!(wrd.workload_definition_id, Some(917_190_976_565_575_681));
}

/// Echoes bodies back with an ID, like the API does for POST and PATCH.
struct EchoApi(std::sync::Mutex<Vec<crate::threeport::api::ApiRequest>>);

#[async_trait::async_trait]
impl ThreeportApi for EchoApi {
    async fn call(
        &self,
        request: crate::threeport::api::ApiRequest,
    ) -> Result<crate::threeport::api::ApiResponse, ApiError> {
        let mut obj = request.body.clone().unwrap_or_else(|| json!({}));
        obj["ID"] = json!(917_190_976_565_575_681u64);
        self.0.lock().unwrap().push(request);
        Ok(crate::threeport::api::ApiResponse {
            data: vec![obj],
            meta: Default::default(),
        })
    }
}

#[tokio::test]
async fn typed_create_and_patch() {
    let api = EchoApi(Default::default());
    let template = WorkloadInstance {
        common: Common {
            id: Some(1),
            created_at: Some(datetime!(2024-01-01 00:00 UTC)),
            ..Default::default()
        },
        instance: Instance {
            name: Some("gw-support".into()),
            status: None,
        },
        kubernetes_runtime_instance_id: Some(2),
        workload_definition_id: Some(3),
        ..Default::default()
    };
    let created: WorkloadInstance = api.create_object(&template).await.unwrap();
    assert_eq!(created.id(), Some(917_190_976_565_575_681));
    let patched = api
        .patch_object(
            917_190_976_565_575_681,
            Patch::Changes(&WorkloadInstance {
                reconciliation: Reconciliation {
                    reconciled: Some(false),
                    ..Default::default()
                },
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    assert_eq!(patched.reconciliation.reconciled, Some(false));
    let reqs = api.0.lock().unwrap().clone();
    assert_eq!(reqs[0].path, "/v0/workload-instances");
    assert_eq!(
        reqs[0].body,
        Some(
            json!({"Name": "gw-support", "KubernetesRuntimeInstanceID": 2, "WorkloadDefinitionID": 3})
        )
    );
    assert_eq!(reqs[1].path, "/v0/workload-instances/917190976565575681");
    assert_eq!(reqs[1].body, Some(json!({"Reconciled": false})));
}

#[test]
fn versioned_name_lookup() {
    assert_eq!(
        object_type_from_versioned_name("v0.GatewayInstance"),
        Some(GATEWAY_INSTANCE)
    );
    assert_eq!(object_type_from_versioned_name("v0.Event"), Some(EVENT));
    assert_eq!(object_type_from_versioned_name("GatewayInstance"), None);
    assert_eq!(object_type_from_versioned_name("v0.Nope"), None);
}

#[test]
fn decode_errors_name_the_type() {
    let err = decode::<WorkloadInstance>(json!({"ID": "not a number"})).unwrap_err();
    assert!(err.to_string().contains("WorkloadInstance"), "{err}");
    let err = decode::<WorkloadInstance>(json!({"ID": -1})).unwrap_err();
    assert!(matches!(err, ApiError::Decode { .. }));
}
