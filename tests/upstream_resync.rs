//! The resync against the real thing: Threeport's REST API v0.6.1 on PostgreSQL, a JetStream
//! nats-server and kube-apiserver (`scripts/upstream.sh up`), the manager's workload
//! reconcilers in process with a 3 s resync.
//!
//! The real API loses a notification as it would in a NATS outage: its JetStream publish
//! fails and it answers the client anyway (spec 1.5). The test makes the publish fail by
//! taking the subject out of the stream for the one request (the API's publish then gets no
//! stream to answer it), and puts it back. Checked on the real API: `reconciled=false` and
//! `reconciled=true` filter, `UpdatedAt == CreatedAt` tells a never-written object (so the
//! re-notification is a Created), and the re-notified objects are reconciled, deployed and
//! deleted to the end by the real workload reconcilers.
//!
//! Without the binaries (`scripts/upstream.sh build`) the test says SKIPPED and returns, unless
//! THREEPORT_UPSTREAM_REQUIRED is set (scripts/test.sh sets it), then it fails.

#[macro_use]
mod harness;
use backend::Stack;
use harness::workload_env::metric_sum;
use harness::{backend, workload_suite};
use workload_suite::Env;

use std::time::Duration;

use async_nats::jetstream;
use serde_json::Value;
use threeport_manager::engine::resync::notify::RESYNC_HEADER;
use threeport_manager::threeport::models::{WORKLOAD_DEFINITION, WORKLOAD_INSTANCE};
use threeport_manager::threeport::ThreeportApi;

const STREAM: &str = "workloadStream";

/// Run `request` while `subject` is not part of the stream: the API's publish of it fails.
async fn with_subject_lost<T>(
    js: &jetstream::Context,
    subject: &str,
    request: impl std::future::Future<Output = T>,
) -> T {
    let mut stream = js.get_stream(STREAM).await.expect("stream");
    let mut config = stream.info().await.expect("stream info").config.clone();
    let all = config.subjects.clone();
    config.subjects.retain(|s| s != subject);
    assert_ne!(config.subjects, all, "{subject} is one of {all:?}");
    js.update_stream(&config)
        .await
        .expect("take the subject out");
    let out = request.await;
    config.subjects = all;
    js.update_stream(&config)
        .await
        .expect("put the subject back");
    out
}

/// The stream's last message on `subject`, if any: (headers, payload).
async fn last_on(js: &jetstream::Context, subject: &str) -> Option<(async_nats::HeaderMap, Value)> {
    let stream = js.get_stream(STREAM).await.expect("stream");
    let m = stream.get_last_raw_message_by_subject(subject).await.ok()?;
    Some((m.headers, serde_json::from_slice(&m.payload).expect("JSON")))
}

fn renotified(env: &Env, reconciler: &str) -> f64 {
    metric_sum(
        &env.metrics(),
        "threeport_resync_renotified_total",
        &[("reconciler", reconciler)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_notifications_are_recovered_on_the_real_api() {
    let Some(stack) = Stack::upstream(false).await else {
        return;
    };
    let js = jetstream::new(
        async_nats::connect(&stack.nats_url)
            .await
            .expect("connect to the stack's NATS"),
    );
    let mut config = stack.config();
    config.resync.interval = Duration::from_secs(3);
    config.resync.grace = Duration::from_secs(1);
    config.resync.jitter = 0.0;
    config.resync.page_size = 2; // several pages even for a handful of objects
    let env = Env::start_with_config(
        stack,
        config,
        &["WorkloadDefinitionReconciler", "WorkloadInstanceReconciler"],
    )
    .await;

    // Reconciled objects that the lists page through and leave alone.
    for i in 0..3 {
        let wd = env
            .create_wd(&format!("resync-bystander-{i}"), workload_suite::WEB_APP)
            .await;
        env.wait_reconciled(WORKLOAD_DEFINITION, wd).await;
    }

    // A definition whose Created notification is lost.
    let wd = with_subject_lost(&js, "workloadDefinition.create", async {
        env.create_wd("resync-web", workload_suite::WEB_APP).await
    })
    .await;
    assert!(
        last_on(&js, "workloadDefinition.create")
            .await
            .is_none_or(|(_, p)| p["Object"]["ID"].as_u64() != Some(wd)),
        "the API's notification was lost"
    );
    env.wait_reconciled(WORKLOAD_DEFINITION, wd).await;
    assert_eq!(env.wrds(wd).await.len(), 3, "resource definitions made");
    let (headers, payload) = last_on(&js, "workloadDefinition.create")
        .await
        .expect("the re-notification");
    assert!(headers.get(RESYNC_HEADER).is_some(), "marked as a resync");
    assert_eq!(payload["Operation"], "Created", "never written: a Created");
    assert_eq!(payload["Object"]["ID"].as_u64(), Some(wd));

    // An instance whose Created notification is lost is deployed.
    let wi = with_subject_lost(&js, "workloadInstance.create", async {
        env.create_wi("resync-web-0", wd).await
    })
    .await;
    env.wait_reconciled(WORKLOAD_INSTANCE, wi).await;
    assert_eq!(env.app_objects_of(wi).await.len(), 3, "web app deployed");

    // Its Deleted notification is lost too: it is still deleted to the end.
    with_subject_lost(&js, "workloadInstance.delete", async {
        env.stack
            .api
            .delete(WORKLOAD_INSTANCE, wi)
            .await
            .expect("first DELETE")
    })
    .await;
    env.wait_gone(WORKLOAD_INSTANCE, wi).await;
    workload_suite::wait_until(workload_suite::LIMIT, "app objects removed", || async {
        env.app_objects_of(wi).await.is_empty()
    })
    .await;
    let (_, payload) = last_on(&js, "workloadInstance.delete")
        .await
        .expect("the re-notification");
    assert_eq!(payload["Operation"], "Deleted");

    // Exactly the three lost notifications were re-notified, nothing else.
    assert_eq!(renotified(&env, "WorkloadDefinitionReconciler"), 1.0);
    assert_eq!(renotified(&env, "WorkloadInstanceReconciler"), 2.0);
    env.stop().await;
}
