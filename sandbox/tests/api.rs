//! Black-box tests of the sandbox Threeport API over HTTP (no NATS).

mod common;

use std::time::{Duration, Instant};

use common::{error_of, id_of, wd, wi, Http};
use sandbox::threeport::{RouteFilter, SandboxApi, SandboxHandle, SandboxOptions};
use serde_json::{json, Value};

async fn start() -> (SandboxHandle, Http) {
    let h = SandboxApi::start(SandboxOptions::default())
        .await
        .expect("start sandbox");
    let http = Http::plain(h.base_url());
    (h, http)
}

#[tokio::test]
async fn envelope_ids_and_defaults() {
    let (h, http) = start().await;
    assert!(h.base_url().starts_with("http://127.0.0.1:"));
    assert_eq!(h.base_url(), format!("http://{}", h.api_server()));

    let (s, body) = http
        .raw(
            "POST",
            "/v0/workload-definitions",
            Some(&wd("a").to_string()),
        )
        .await
        .expect("post");
    assert_eq!(s, 201);
    assert!(
        body.starts_with(
            r#"{"Meta":{"Page":1,"Size":1,"TotalCount":1},"Type":"WorkloadDefinition","Data":[{"ID":"#
        ),
        "{body}"
    );
    assert!(body.ends_with(r#"}],"Status":{"code":201,"message":"Created","error":""}}"#));
    // Go struct order inside the object: Common, Reconciliation, Definition, own fields.
    let pos = |k: &str| body.find(&format!("\"{k}\":")).unwrap_or(usize::MAX);
    assert!(pos("ID") < pos("CreatedAt"));
    assert!(pos("UpdatedAt") < pos("Name"));
    assert!(pos("Name") < pos("Reconciled"));
    assert!(pos("InterruptReconciliation") < pos("YAMLDocument"));
    assert!(!body.contains("DeletedAt"));

    // The ID is exact (u64 above 2^53), compare the raw digits with the parsed value.
    let v: Value = serde_json::from_str(&body).expect("json");
    let id = id_of(&v);
    assert!(id > (1u64 << 53));
    assert!(body.contains(&format!("\"ID\":{id},")));
    let obj = &v["Data"][0];
    assert_eq!(obj["Reconciled"], json!(false));
    assert_eq!(obj["CreationFailed"], json!(false));
    assert_eq!(obj["InterruptReconciliation"], json!(false));
    let created = obj["CreatedAt"].as_str().expect("CreatedAt");
    assert!(created.ends_with('Z') && created.contains('T'), "{created}");
    assert!(
        created.split('.').nth(1).is_none_or(|f| f.len() <= 7),
        "microseconds at most: {created}"
    );

    // GET by id: same object, 200, Meta {1,1,1}.
    let (s, g) = http.get(&format!("/v0/workload-definitions/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(g["Data"][0], *obj);
    assert_eq!(g["Status"], json!({"code":200,"message":"OK","error":""}));

    // A second object gets a larger ID.
    let (_, v2) = http.post("/v0/workload-definitions", wd("b")).await;
    assert!(id_of(&v2) > id);

    // 404 envelope, unknown route, wrong method.
    let (s, body) = http
        .raw("GET", "/v0/workload-definitions/1", None)
        .await
        .expect("get");
    assert_eq!(s, 404);
    assert_eq!(
        body,
        r#"{"Meta":{"Page":0,"Size":0,"TotalCount":0},"Type":"WorkloadDefinition","Data":null,"Status":{"code":404,"message":"Not Found","error":"record not found"}}"#
    );
    let (s, body) = http
        .raw("GET", "/v0/nothing-here", None)
        .await
        .expect("get");
    assert_eq!((s, body.as_str()), (404, r#"{"message":"Not Found"}"#));
    let (s, _) = http
        .raw(
            "POST",
            &format!("/v0/workload-definitions/{id}"),
            Some("{}"),
        )
        .await
        .expect("post");
    assert_eq!(s, 405);

    // Direct store access.
    assert_eq!(h.list_objects("workload-definitions").len(), 2);
    assert_eq!(
        h.get_object("workload-definitions", id).expect("obj")["Name"],
        "a"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn write_validation() {
    let (h, http) = start().await;
    let p = "/v0/workload-definitions";
    let (s, v) = http.post(p, json!({})).await;
    assert_eq!((s, error_of(&v).as_str()), (400, "JSON payload is empty"));
    assert_eq!(v["Data"], Value::Null);

    let (s, v) = http
        .post(p, json!({"ID": 5, "Name": "x", "YAMLDocument": "y"}))
        .await;
    assert_eq!(s, 400);
    assert!(error_of(&v).starts_with("Update of GORM Model fields is not allowed"));

    let (s, v) = http
        .post(p, json!({"Name": "x", "YAMLDocument": "y", "Bogus": 1}))
        .await;
    assert_eq!(
        (s, error_of(&v).as_str()),
        (400, "Unsupported fields are not allowed : Bogus")
    );

    let (s, v) = http.post(p, json!({"Name": "x"})).await;
    assert_eq!(s, 400);
    assert!(error_of(&v).starts_with("Missing required field(s)"), "{v}");
    assert!(error_of(&v).contains("YAMLDocument"));

    // Wrong JSON type: echo's bind error, answered 500 by the handlers.
    let (s, _) = http.post(p, json!({"Name": 5, "YAMLDocument": "y"})).await;
    assert_eq!(s, 500);

    let (s, v) = http.post(p, wd("dup")).await;
    assert_eq!(s, 201);
    let id = id_of(&v);
    let (s, v) = http.post(p, wd("dup")).await;
    assert_eq!(
        (s, error_of(&v).as_str()),
        (409, "object with provided name already exists")
    );

    // Associations on PATCH/PUT, even null.
    let item = format!("{p}/{id}");
    let (s, v) = http.patch(&item, json!({"WorkloadInstances": null})).await;
    assert_eq!(s, 400);
    assert!(error_of(&v).starts_with("Update of associated objects is not allowed"));
    let (s, _) = http
        .put(
            &item,
            json!({"Name": "dup", "YAMLDocument": "y", "ProfileID": 1}),
        )
        .await;
    assert_eq!(s, 400);
    // Renaming onto another live name violates the partial unique index: 500.
    let (_, v) = http.post(p, wd("other")).await;
    let other = format!("{p}/{}", id_of(&v));
    assert_eq!(http.patch(&other, json!({"Name": "dup"})).await.0, 500);
    assert_eq!(http.patch(&other, json!({"Name": "other"})).await.0, 200);
    // PATCH on a missing object is 404 before any payload check.
    let (s, _) = http.patch(&format!("{p}/42"), json!({"Bogus": true})).await;
    assert_eq!(s, 404);

    // AttachedObjectReference: unique index over all four fields -> 500.
    let aor = json!({"ObjectType":"v0.WorkloadInstance","ObjectID":1,"AttachedObjectType":"v0.GatewayInstance","AttachedObjectID":2});
    assert_eq!(
        http.post("/v0/attached-object-references", aor.clone())
            .await
            .0,
        201
    );
    assert_eq!(
        http.post("/v0/attached-object-references", aor).await.0,
        500
    );
    h.shutdown().await;
}

#[tokio::test]
async fn patch_merges_and_put_replaces() {
    let (h, http) = start().await;
    let (_, v) = http
        .post(
            "/v0/kubernetes-runtime-definitions",
            json!({"Name":"k","InfraProvider":"kind"}),
        )
        .await;
    let krd = id_of(&v);
    assert_eq!(v["Data"][0]["NodeSize"], "Medium");
    assert_eq!(v["Data"][0]["NodeMaximum"], 250);
    let (s, _) = http
        .post(
            "/v0/kubernetes-runtime-definitions",
            json!({"Name":"bad","InfraProvider":"gcp"}),
        )
        .await;
    assert_eq!(s, 500);

    let (_, v) = http
        .post("/v0/kubernetes-runtime-instances", json!({"Name":"kri","Location":"Local","KubernetesRuntimeDefinitionID":krd,"Reconciled":true}))
        .await;
    let kri = id_of(&v);
    let (_, v) = http.post("/v0/workload-definitions", wd("w")).await;
    let wdid = id_of(&v);
    let (s, v) = http
        .post("/v0/workload-instances", wi("i", wdid, kri))
        .await;
    assert_eq!(s, 201);
    let wiid = id_of(&v);
    let item = format!("/v0/workload-instances/{wiid}");

    let (s, v) = http
        .patch(&item, json!({"Reconciled": true, "Status": null}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["Data"][0]["Reconciled"], true);
    let (_, v) = http.patch(&item, json!({"Status": "Healthy"})).await;
    let o = &v["Data"][0];
    assert_eq!(
        (o["Reconciled"].clone(), o["Status"].clone()),
        (json!(true), json!("Healthy"))
    );
    assert_eq!(o["WorkloadDefinitionID"], json!(wdid));
    assert_eq!(http.get(&item).await.1["Data"][0], *o);

    // PUT: required fields present, everything not sent becomes null (gorm Save).
    let (s, v) = http.put(&item, wi("i2", wdid, kri)).await;
    assert_eq!(s, 200);
    let o = &v["Data"][0];
    assert_eq!(o["Name"], "i2");
    assert!(
        o.get("Status").is_none() && o.get("Reconciled").is_none(),
        "{o}"
    );
    assert_eq!(o["ID"], json!(wiid));
    let (s, _) = http.put(&item, json!({"Name": "i3"})).await;
    assert_eq!(s, 400);
    h.shutdown().await;
}

#[tokio::test]
async fn pagination_and_filters() {
    let (h, http) = start().await;
    let mut ids = Vec::new();
    for i in 0..60u64 {
        let wi_id = if i % 3 == 0 { 7 } else { 8 };
        let (s, v) = http
            .post(
                "/v0/workload-resource-instances",
                json!({"JSONDefinition": {"kind":"ConfigMap","n":i}, "WorkloadInstanceID": wi_id}),
            )
            .await;
        assert_eq!(s, 201);
        ids.push(id_of(&v));
    }
    let p = "/v0/workload-resource-instances";
    let (s, v) = http.get(p).await;
    assert_eq!(s, 200);
    assert_eq!(v["Meta"], json!({"Page":1,"Size":50,"TotalCount":60}));
    let got: Vec<u64> = v["Data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|o| o["ID"].as_u64().expect("id"))
        .collect();
    assert_eq!(got, ids[..50]);
    let (_, v) = http.get(&format!("{p}?page=2")).await;
    assert_eq!(v["Meta"], json!({"Page":2,"Size":50,"TotalCount":60}));
    assert_eq!(v["Data"].as_array().expect("data").len(), 10);
    assert_eq!(v["Data"][0]["ID"], json!(ids[50]));
    let (_, v) = http.get(&format!("{p}?size=-1")).await;
    assert_eq!(v["Data"].as_array().expect("data").len(), 60);
    let (_, v) = http.get(&format!("{p}?size=7&page=3")).await;
    assert_eq!(v["Data"][0]["ID"], json!(ids[14]));
    let (s, _) = http.get(&format!("{p}?page=x")).await;
    assert_eq!(s, 400);

    // Filters: query tag, case-insensitive fallback, unknown keys ignored.
    let (_, v) = http.get(&format!("{p}?workloadinstanceid=7")).await;
    assert_eq!(v["Meta"]["TotalCount"], 20);
    assert!(v["Data"]
        .as_array()
        .expect("data")
        .iter()
        .all(|o| o["WorkloadInstanceID"] == 7));
    let (_, v) = http.get(&format!("{p}?WorkloadInstanceID=8")).await;
    assert_eq!(v["Meta"]["TotalCount"], 40);
    let (_, v) = http.get(&format!("{p}?workload-instance-id=7")).await;
    assert_eq!(v["Meta"]["TotalCount"], 60);
    let (s, _) = http.get(&format!("{p}?workloadinstanceid=abc")).await;
    assert_eq!(s, 500);
    // The u64 JSON value in a nested object is preserved.
    assert_eq!(h.list_objects("workload-resource-instances").len(), 60);

    // Name filter and bool filter on [R] types.
    http.post("/v0/workload-definitions", wd("alpha")).await;
    http.post(
        "/v0/workload-definitions",
        json!({"Name":"beta","YAMLDocument":"x","Reconciled":true}),
    )
    .await;
    let (_, v) = http.get("/v0/workload-definitions?name=beta").await;
    assert_eq!(v["Meta"]["TotalCount"], 1);
    let (_, v) = http.get("/v0/workload-definitions?reconciled=false").await;
    assert_eq!(v["Data"][0]["Name"], "alpha");
    assert_eq!(v["Meta"]["TotalCount"], 1);
    // Big IDs in filters stay exact.
    let id = ids[5];
    let (_, v) = http
        .get(&format!("/v0/gateway-instances?gatewaydefinitionid={id}"))
        .await;
    assert_eq!(v["Meta"]["TotalCount"], 0);
    h.shutdown().await;
}

#[tokio::test]
async fn two_phase_delete_without_nats() {
    let (h, http) = start().await;
    let (_, v) = http.post("/v0/workload-definitions", wd("w")).await;
    let wdid = id_of(&v);
    let (_, v) = http.post("/v0/workload-instances", wi("i", wdid, 1)).await;
    let wiid = id_of(&v);
    let wd_item = format!("/v0/workload-definitions/{wdid}");
    let (s, v) = http.delete(&wd_item).await;
    assert_eq!(
        (s, error_of(&v).as_str()),
        (
            409,
            "workload definition has related workload instances - cannot be deleted"
        )
    );

    let item = format!("/v0/workload-instances/{wiid}");
    let (s, v) = http.delete(&item).await;
    assert_eq!(s, 200);
    let o = &v["Data"][0];
    assert!(o["DeletionScheduled"].is_string());
    assert_eq!(o["Reconciled"], false);
    let (s, v) = http.delete(&item).await;
    assert_eq!(s, 409);
    assert_eq!(
        error_of(&v),
        format!("object with ID {wiid} already being deleted")
    );
    let t = "2024-01-01T00:00:00.123456789Z";
    let (s, _) = http
        .patch(
            &item,
            json!({"Reconciled": true, "DeletionAcknowledged": t, "DeletionConfirmed": t}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        h.get_object("workload-instances", wiid).expect("wi")["DeletionConfirmed"],
        "2024-01-01T00:00:00.123456Z"
    );
    let (s, _) = http.delete(&item).await;
    assert_eq!(s, 200);
    assert_eq!(http.get(&item).await.0, 404);
    let deleted = h.deleted_objects("workload-instances");
    assert_eq!(deleted.len(), 1);
    assert!(deleted[0]["DeletedAt"].is_string());
    assert!(h.list_objects("workload-instances").is_empty());

    // Now the definition can be scheduled for deletion.
    assert_eq!(http.delete(&wd_item).await.0, 200);

    // Non-reconcilable types are soft-deleted at once.
    let (_, v) = http
        .post(
            "/v0/gateway-http-ports",
            json!({"GatewayDefinitionID": 1, "Port": 80}),
        )
        .await;
    assert_eq!(v["Data"][0]["Path"], "/");
    let port = format!("/v0/gateway-http-ports/{}", id_of(&v));
    assert_eq!(http.delete(&port).await.0, 200);
    assert_eq!(http.delete(&port).await.0, 404);
    h.shutdown().await;
}

#[tokio::test]
async fn custom_routes() {
    let (h, http) = start().await;
    // Workload resource definition sets.
    let (s, v) = http
        .post(
            "/v0/workload-resource-definition-sets",
            json!([
                {"JSONDefinition": {"kind": "Deployment"}, "WorkloadDefinitionID": 11},
                {"JSONDefinition": {"kind": "Service"}, "WorkloadDefinitionID": 11}
            ]),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(v["Type"], "WorkloadResourceDefinition");
    assert_eq!(v["Data"].as_array().expect("data").len(), 2);
    assert_eq!(v["Data"][1]["JSONDefinition"]["kind"], "Service");
    let (s, v) = http
        .post(
            "/v0/workload-resource-definition-sets",
            json!([{"WorkloadDefinitionID": 11}]),
        )
        .await;
    assert_eq!(s, 400);
    assert!(error_of(&v).contains("JSONDefinition"));
    assert_eq!(
        http.post("/v0/workload-resource-definition-sets", json!([]))
            .await
            .0,
        400
    );
    let (_, v) = http
        .get("/v0/workload-resource-definitions?workloaddefinitionid=11")
        .await;
    assert_eq!(v["Meta"]["TotalCount"], 2);

    // Bulk delete of workload events.
    let ev = |wi: u64| json!({"RuntimeEventUID":"u","Type":"Warning","Reason":"Failed","Message":"m","Timestamp":"2024-01-01T00:00:00Z","WorkloadInstanceID":wi});
    let (s, v) = http
        .delete("/v0/workload-events?workloadinstanceid=5")
        .await;
    assert_eq!((s, error_of(&v).as_str()), (404, "object not found"));
    http.post("/v0/workload-events", ev(5)).await;
    http.post("/v0/workload-events", ev(5)).await;
    http.post("/v0/workload-events", ev(6)).await;
    let (s, _) = http
        .delete("/v0/workload-events?workloadinstanceid=5&helmworkloadinstanceid=1")
        .await;
    assert_eq!(s, 400);
    assert_eq!(http.delete("/v0/workload-events").await.0, 400);
    assert_eq!(http.delete("/v0/workload-events?name=x").await.0, 400);
    let (s, v) = http
        .delete("/v0/workload-events?workloadinstanceid=5")
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["Data"].as_array().expect("data").len(), 2);
    assert_eq!(h.deleted_objects("workload-events").len(), 2);
    assert_eq!(h.list_objects("workload-events").len(), 1);
    assert_eq!(
        http.delete("/v0/workload-events?workloadinstanceid=5")
            .await
            .0,
        404
    );

    // Events joined with attached object references.
    let aor = |otype: &str, oid: u64| json!({"ObjectType":otype,"ObjectID":oid,"AttachedObjectType":"v0.Event","AttachedObjectID":1});
    let (_, a1) = http
        .post(
            "/v0/attached-object-references",
            aor("v0.WorkloadInstance", 100),
        )
        .await;
    let (_, a2) = http
        .post(
            "/v0/attached-object-references",
            aor("v0.GatewayInstance", 100),
        )
        .await;
    let (_, a3) = http
        .post(
            "/v0/attached-object-references",
            aor("v0.WorkloadInstance", 200),
        )
        .await;
    let event = |aor: u64, reason: &str| json!({"AttachedObjectReferenceID":aor,"Reason":reason,"Note":"n","Count":1,"EventTime":"2024-01-01T00:00:00Z","LastObservedTime":"2024-01-01T00:00:00Z","Type":"Normal","ReportingController":"WorkloadController"});
    let (s, e1) = http.post("/v0/events", event(id_of(&a1), "Created")).await;
    assert_eq!(s, 201);
    http.post("/v0/events", event(id_of(&a2), "Created")).await;
    http.post("/v0/events", event(id_of(&a3), "Created")).await;
    http.post("/v0/events", event(id_of(&a1), "Deleted")).await;
    let j = "/v0/events-join-attached-object-references";
    let (s, v) = http
        .get(&format!(
            "{j}?objectid=100&reason=Created&type=Normal&note=n"
        ))
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["Type"], "Event");
    assert_eq!(v["Meta"]["TotalCount"], 0, "the real handler never counts");
    assert_eq!(v["Data"].as_array().expect("data").len(), 2);
    let (_, v) = http
        .get(&format!(
            "{j}?objectid=100&reason=Created&objecttype=v0.WorkloadInstance"
        ))
        .await;
    assert_eq!(v["Data"].as_array().expect("data").len(), 1);
    assert_eq!(v["Data"][0]["ID"], e1["Data"][0]["ID"]);
    let (_, v) = http.get(&format!("{j}?objectid=200")).await;
    assert_eq!(v["Data"].as_array().expect("data").len(), 1);
    let (s, v) = http.get(&format!("{j}?reason=Created")).await;
    assert_eq!((s, error_of(&v).as_str()), (400, "must provide object ID"));
    h.shutdown().await;
}

#[tokio::test]
async fn fault_injection_and_counters() {
    let (h, http) = start().await;
    let (_, v) = http.post("/v0/workload-definitions", wd("w")).await;
    let item = format!("/v0/workload-definitions/{}", id_of(&v));
    h.faults().fail_next(
        2,
        503,
        RouteFilter {
            method: Some("PATCH"),
            route_prefix: Some("/v0/workload-definitions".into()),
        },
    );
    assert_eq!(http.get(&item).await.0, 200);
    let (s, v) = http.patch(&item, json!({"Reconciled": true})).await;
    assert_eq!(s, 503);
    assert_eq!(v["Status"]["code"], 503);
    assert_eq!(v["Status"]["message"], "Service Unavailable");
    assert_eq!(v["Type"], "WorkloadDefinition");
    assert_eq!(v["Data"], Value::Null);
    assert_eq!(http.patch(&item, json!({"Reconciled": true})).await.0, 503);
    assert_eq!(
        h.get_object("workload-definitions", id_of(&http.get(&item).await.1))
            .expect("wd")["Reconciled"],
        false,
        "injected errors do not touch the store"
    );
    assert_eq!(http.patch(&item, json!({"Reconciled": true})).await.0, 200);

    h.faults().set_error_rate(1.0, 500);
    assert_eq!(http.get(&item).await.0, 500);
    h.faults().set_error_rate(0.0, 500);
    h.faults().set_latency(Duration::from_millis(150));
    let t = Instant::now();
    assert_eq!(http.get(&item).await.0, 200);
    assert!(t.elapsed() >= Duration::from_millis(150));
    h.faults().clear();

    let c = h.counters();
    assert_eq!(c.get("PATCH", "/v0/workload-definitions/{id}", 503), 2);
    assert_eq!(c.get("PATCH", "/v0/workload-definitions/{id}", 200), 1);
    assert_eq!(c.get("GET", "/v0/workload-definitions/{id}", 200), 3);
    assert_eq!(c.get("GET", "/v0/workload-definitions/{id}", 500), 1);
    assert_eq!(c.get("POST", "/v0/workload-definitions", 201), 1);
    assert_eq!(c.route_total("PATCH", "/v0/workload-definitions/{id}"), 3);
    assert_eq!(c.total, 8);
    http.get("/nope").await;
    assert_eq!(h.counters().get("GET", "unknown", 404), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn encryption_at_rest() {
    use base64::Engine;
    let key_b64 = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let h = SandboxApi::start(SandboxOptions {
        encryption_key: Some(key_b64.clone()),
        ..Default::default()
    })
    .await
    .expect("start");
    let http = Http::plain(h.base_url());
    let key = sandbox::threeport::crypto::Key::from_base64(&key_b64).expect("key");
    let (s, v) = http
        .post(
            "/v0/kubernetes-runtime-instances",
            json!({"Name":"k","Location":"Local","KubernetesRuntimeDefinitionID":1,"CertificateKey":"PEM-KEY","Certificate":"PEM-CERT"}),
        )
        .await;
    assert_eq!(s, 201);
    let o = &v["Data"][0];
    let ck = o["CertificateKey"].as_str().expect("ck").to_string();
    assert_ne!(ck, "PEM-KEY");
    assert_eq!(key.decrypt(&ck).expect("decrypt"), "PEM-KEY");
    assert_eq!(o["Certificate"], "PEM-CERT");
    let item = format!("/v0/kubernetes-runtime-instances/{}", id_of(&v));
    // Echoing the stored ciphertext does not re-encrypt it.
    let (_, v) = http.patch(&item, json!({"CertificateKey": ck})).await;
    assert_eq!(v["Data"][0]["CertificateKey"], json!(ck));
    // A new plaintext is encrypted.
    let (_, v) = http.patch(&item, json!({"ConnectionToken": "tok"})).await;
    let ct = v["Data"][0]["ConnectionToken"].as_str().expect("ct");
    assert_eq!(key.decrypt(ct).expect("decrypt"), "tok");
    // Location is immutable.
    assert_eq!(
        http.patch(&item, json!({"Location": "Elsewhere"})).await.0,
        500
    );
    assert_eq!(http.patch(&item, json!({"Location": "Local"})).await.0, 200);
    h.shutdown().await;
}

#[tokio::test]
async fn gateway_definition_creates_ports() {
    let (h, http) = start().await;
    let (s, v) = http
        .post(
            "/v0/gateway-definitions",
            json!({"Name":"g","HttpPorts":[{"Port":443,"TLSEnabled":true}],"TcpPorts":[{"Port":5432}]}),
        )
        .await;
    assert_eq!(s, 201);
    let gd = id_of(&v);
    assert_eq!(
        v["Data"][0]["HttpPorts"][0]["GatewayDefinitionID"],
        json!(gd)
    );
    assert_eq!(v["Data"][0]["HttpPorts"][0]["Path"], "/");
    let (_, v) = http
        .get(&format!("/v0/gateway-http-ports?gatewaydefinitionid={gd}"))
        .await;
    assert_eq!(v["Meta"]["TotalCount"], 1);
    assert_eq!(v["Data"][0]["Port"], 443);
    let (_, v) = http
        .get(&format!("/v0/gateway-tcp-ports?gatewaydefinitionid={gd}"))
        .await;
    assert_eq!(v["Data"][0]["Port"], 5432);
    // GET by id does not preload the ports.
    let (_, v) = http.get(&format!("/v0/gateway-definitions/{gd}")).await;
    assert!(v["Data"][0].get("HttpPorts").is_none());
    h.shutdown().await;
}
