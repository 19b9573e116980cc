//! Streams and notifications against a real nats-server.

mod common;

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use common::{id_of, wd, wi, Http};
use futures::StreamExt;
use sandbox::nats::NatsServer;
use sandbox::threeport::{SandboxApi, SandboxHandle, SandboxOptions};
use serde_json::{json, Value};

async fn start(nats: &NatsServer) -> (SandboxHandle, Http) {
    let h = SandboxApi::start(SandboxOptions {
        nats_url: Some(nats.url()),
        ..Default::default()
    })
    .await
    .expect("start sandbox");
    let http = Http::plain(h.base_url());
    (h, http)
}

async fn js(nats: &NatsServer) -> jetstream::Context {
    let c = async_nats::connect(nats.url()).await.expect("connect");
    jetstream::new(c)
}

/// All messages of a stream, in order: (subject, raw payload).
async fn messages(js: &jetstream::Context, name: &str) -> Vec<(String, String)> {
    let mut s = js.get_stream(name).await.expect("stream");
    let n = s.info().await.expect("info").state.messages;
    let first = s.info().await.expect("info").state.first_sequence;
    let mut out = Vec::new();
    for seq in first..first + n {
        let m = s.get_raw_message(seq).await.expect("message");
        out.push((
            m.subject.to_string(),
            String::from_utf8(m.payload.to_vec()).expect("utf8"),
        ));
    }
    out
}

#[tokio::test]
async fn streams_created_exactly() {
    let nats = NatsServer::start().expect("nats-server");
    let js = js(&nats).await;
    // A stream that exists already is left alone.
    js.create_stream(stream::Config {
        name: "terraformStream".into(),
        subjects: vec!["terraformDefinition.create".into()],
        ..Default::default()
    })
    .await
    .expect("pre-create");
    let (h, _) = start(&nats).await;

    let expected: &[(&str, &[&str])] = &[
        ("secretStream", &["secretDefinition", "secretInstance"]),
        (
            "awsStream",
            &[
                "awsEksKubernetesRuntimeInstance",
                "awsRelationalDatabaseInstance",
                "awsObjectStorageBucketInstance",
            ],
        ),
        (
            "control-planeStream",
            &["controlPlaneDefinition", "controlPlaneInstance"],
        ),
        (
            "gatewayStream",
            &["gatewayDefinition", "gatewayInstance", "domainNameInstance"],
        ),
        (
            "helm-workloadStream",
            &["helmWorkloadDefinition", "helmWorkloadInstance"],
        ),
        (
            "kubernetes-runtimeStream",
            &["kubernetesRuntimeDefinition", "kubernetesRuntimeInstance"],
        ),
        (
            "observabilityStream",
            &[
                "observabilityStackDefinition",
                "observabilityStackInstance",
                "observabilityDashboardDefinition",
                "observabilityDashboardInstance",
                "metricsDefinition",
                "metricsInstance",
                "loggingDefinition",
                "loggingInstance",
            ],
        ),
        (
            "workloadStream",
            &["workloadDefinition", "workloadInstance"],
        ),
    ];
    for (name, types) in expected {
        let mut s = js
            .get_stream(*name)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let cfg = s.info().await.expect("info").config.clone();
        let subjects: Vec<String> = types
            .iter()
            .flat_map(|t| ["create", "update", "delete"].map(|op| format!("{t}.{op}")))
            .collect();
        assert_eq!(cfg.subjects, subjects, "{name}");
        assert_eq!(cfg.retention, stream::RetentionPolicy::Limits);
        assert_eq!(cfg.storage, stream::StorageType::File);
        assert_eq!(cfg.max_messages, -1);
        assert_eq!(cfg.max_age, Duration::ZERO);
        assert_eq!(cfg.duplicate_window, Duration::from_secs(120));
    }
    let mut tf = js.get_stream("terraformStream").await.expect("tf");
    assert_eq!(
        tf.info().await.expect("info").config.subjects,
        vec!["terraformDefinition.create".to_string()]
    );
    let mut names = js.stream_names();
    let mut n = 0;
    while let Some(Ok(_)) = names.next().await {
        n += 1;
    }
    assert_eq!(n, 9);
    h.shutdown().await;

    // Starting again against the same server is fine (streams exist).
    let (h, _) = start(&nats).await;
    h.shutdown().await;
}

#[tokio::test]
async fn notification_rules_and_payloads() {
    let nats = NatsServer::start().expect("nats-server");
    let (h, http) = start(&nats).await;
    let js = js(&nats).await;

    let (s, v) = http.post("/v0/workload-definitions", wd("w")).await;
    assert_eq!(s, 201);
    let id = id_of(&v);
    let created = v["Data"][0].clone();
    let item = format!("/v0/workload-definitions/{id}");
    // Reconciled -> no notification; PATCH on a reconciled object -> none.
    assert_eq!(http.patch(&item, json!({"Reconciled": true})).await.0, 200);
    assert_eq!(http.patch(&item, json!({"YAMLDocument": "a"})).await.0, 200);
    // PATCH Reconciled:false -> update; PATCH on an unreconciled object -> update again.
    assert_eq!(http.patch(&item, json!({"Reconciled": false})).await.0, 200);
    let (_, v) = http.patch(&item, json!({"YAMLDocument": "b"})).await;
    let updated = v["Data"][0].clone();
    // PUT never notifies.
    assert_eq!(
        http.put(
            &item,
            json!({"Name": "w", "YAMLDocument": "c", "Reconciled": false})
        )
        .await
        .0,
        200
    );
    // First DELETE -> delete; second -> 409, nothing.
    let (s, v) = http.delete(&item).await;
    assert_eq!(s, 200);
    let scheduled = v["Data"][0].clone();
    assert_eq!(http.delete(&item).await.0, 409);
    let t = "2024-05-01T10:00:00Z";
    assert_eq!(
        http.patch(
            &item,
            json!({"Reconciled": true, "DeletionAcknowledged": t, "DeletionConfirmed": t})
        )
        .await
        .0,
        200
    );
    assert_eq!(http.delete(&item).await.0, 200);
    // POST with Reconciled:true -> none; non-reconcilable types -> none.
    http.post(
        "/v0/workload-definitions",
        json!({"Name":"r","YAMLDocument":"x","Reconciled":true}),
    )
    .await;
    http.post(
        "/v0/workload-resource-definitions",
        json!({"JSONDefinition":{},"WorkloadDefinitionID":id}),
    )
    .await;
    // DomainNameDefinition carries Reconciliation but is not reconcilable: no notification.
    http.post(
        "/v0/domain-name-definitions",
        json!({"Name":"d","Domain":"example.com","Zone":"Public","AdminEmail":"a@example.com"}),
    )
    .await;

    let msgs = messages(&js, "workloadStream").await;
    let subjects: Vec<&str> = msgs.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        subjects,
        vec![
            "workloadDefinition.create",
            "workloadDefinition.update",
            "workloadDefinition.update",
            "workloadDefinition.delete"
        ]
    );
    // Exact key order of the payload.
    for ((_, p), op) in msgs
        .iter()
        .zip(["Created", "Updated", "Updated", "Deleted"])
    {
        let prefix = format!("{{\"Operation\":\"{op}\",\"CreationTime\":");
        assert!(p.starts_with(&prefix), "{p}");
        assert!(p.contains(",\"Object\":{\"ID\":"), "{p}");
        assert!(p.ends_with("},\"ObjectVersion\":\"v0\"}"), "{p}");
        assert!(p.contains(&format!("\"ID\":{id},")), "exact u64 ID: {p}");
    }
    let payload = |i: usize| -> Value { serde_json::from_str(&msgs[i].1).expect("json") };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let p0 = payload(0);
    assert!((now - p0["CreationTime"].as_i64().expect("secs")).abs() < 60);
    assert_eq!(p0["Object"], created);
    assert_eq!(p0["Object"]["Reconciled"], false);
    assert_eq!(payload(1)["Object"]["YAMLDocument"], "a");
    assert_eq!(payload(2)["Object"], updated);
    let p3 = payload(3);
    assert_eq!(p3["Object"], scheduled);
    assert!(p3["Object"]["DeletionScheduled"].is_string());
    assert_eq!(p3["Object"]["Reconciled"], false);
    assert_eq!(p3["ObjectVersion"], "v0");
    assert!(messages(&js, "gatewayStream").await.is_empty());
    assert_eq!(h.deleted_objects("workload-definitions").len(), 1);

    // Instances too, and a live subscriber sees the same subject.
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let mut sub = client.subscribe("workloadInstance.*").await.expect("sub");
    // flush() only writes our socket; the server may not have processed the SUB before the
    // sandbox publishes on its own connection. A probe published on this connection comes
    // back only after the SUB is in place (one connection's operations are ordered).
    client
        .publish("workloadInstance.probe", "probe".into())
        .await
        .expect("probe");
    let probe = tokio::time::timeout(Duration::from_secs(30), sub.next())
        .await
        .expect("probe in time")
        .expect("probe");
    assert_eq!(probe.subject.as_str(), "workloadInstance.probe");
    let (status, v) = http.post("/v0/workload-instances", wi("i", 1, 2)).await;
    assert_eq!(status, 201, "{v}");
    // A generous limit: it only matters when the notification never comes.
    let msg = tokio::time::timeout(Duration::from_secs(30), sub.next())
        .await
        .expect("notification in time")
        .expect("message");
    assert_eq!(msg.subject.as_str(), "workloadInstance.create");
    let p: Value = serde_json::from_slice(&msg.payload).expect("json");
    assert_eq!(p["Object"]["ID"], v["Data"][0]["ID"]);
    assert_eq!(p["Object"]["WorkloadDefinitionID"], 1);

    // GatewayDefinition POST: the notification includes the ports sent with it.
    let (_, v) = http
        .post(
            "/v0/gateway-definitions",
            json!({"Name":"g","HttpPorts":[{"Port":80}]}),
        )
        .await;
    let g = messages(&js, "gatewayStream").await;
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].0, "gatewayDefinition.create");
    let p: Value = serde_json::from_str(&g[0].1).expect("json");
    assert_eq!(p["Object"]["HttpPorts"][0]["Port"], 80);
    assert_eq!(p["Object"]["ID"], v["Data"][0]["ID"]);
    h.shutdown().await;
}

#[tokio::test]
async fn nats_with_user_password() {
    let nats = NatsServer::start_with(sandbox::nats::NatsServerOptions {
        user_password: Some(("tp".into(), "secret".into())),
        ..Default::default()
    })
    .expect("nats-server");
    let bad = SandboxApi::start(SandboxOptions {
        nats_url: Some(nats.url()),
        ..Default::default()
    })
    .await;
    assert!(bad.is_err(), "no credentials must fail like the real API");
    let h = SandboxApi::start(SandboxOptions {
        nats_url: Some(nats.url()),
        nats_user_password: Some(("tp".into(), "secret".into())),
        ..Default::default()
    })
    .await
    .expect("start with credentials");
    let http = Http::plain(h.base_url());
    assert_eq!(http.post("/v0/workload-definitions", wd("x")).await.0, 201);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_publish_once_each() {
    let nats = NatsServer::start().expect("nats-server");
    let (h, http) = start(&nats).await;
    let http = std::sync::Arc::new(http);
    let mut tasks = Vec::new();
    for i in 0..100u64 {
        let http = http.clone();
        tasks.push(tokio::spawn(async move {
            let (s, v) = http
                .post("/v0/workload-instances", wi(&format!("wi-{i}"), 1, 2))
                .await;
            assert_eq!(s, 201);
            let item = format!("/v0/workload-instances/{}", id_of(&v));
            assert_eq!(http.patch(&item, json!({"Reconciled": true})).await.0, 200);
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let js = js(&nats).await;
    let msgs = messages(&js, "workloadStream").await;
    assert_eq!(msgs.len(), 100);
    assert!(msgs.iter().all(|(s, _)| s == "workloadInstance.create"));
    let objs = h.list_objects("workload-instances");
    assert_eq!(objs.len(), 100);
    assert!(objs.iter().all(|o| o["Reconciled"] == true));
    let c = h.counters();
    assert_eq!(c.get("POST", "/v0/workload-instances", 201), 100);
    assert_eq!(c.get("PATCH", "/v0/workload-instances/{id}", 200), 100);
    h.shutdown().await;
}
