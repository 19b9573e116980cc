//! The generic reconcile engine (README, "How a notification is handled"). It knows Threeport's wire protocol (notifications,
//! locks, the completion protocol, events) and nothing about workloads or gateways.
//!
//! - [`notification`]: decode notifications; poison classification.
//! - [`decision`]: every ack / NAK / term decision as a pure function.
//! - [`backoff`]: the per-delivery retry schedule.
//! - [`lock`]: KV locks compatible with Threeport's, plus renewal and owner-checked release.
//! - [`liveness`]: replica heartbeats, to reclaim the locks of a replica that died.
//! - [`reconciler`]: the trait a Threeport reconciler implements.
//! - [`worker`]: the pull loop and the per-message pipeline.
//! - [`metrics`]: Prometheus metrics.
//! - [`resync`]: re-notifies objects whose notification was lost, one replica per reconciler.

pub mod backoff;
pub mod decision;
pub mod liveness;
pub mod lock;
pub mod metrics;
pub mod notification;
pub mod reconciler;
pub mod resync;
pub mod trace_context;
pub mod worker;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub use decision::RetryPolicy;
pub use reconciler::{
    DynReconciler, Operation, Outcome, ReconcileContext, ReconcileError, Reconciler,
};
pub use worker::Shutdown;

use crate::health::Readiness;
use crate::registry::{ControllerSpec, ReconcilerSpec};
use crate::threeport::{ObjectType, ThreeportApi};
use liveness::Heartbeats;
use lock::LockClient;
use metrics::{Metrics, ReconcilerMetrics};
use worker::ReconcilerRuntime;

/// Timing and retry settings of the engine (from the config's `engine` section).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineSettings {
    /// Backoff, give-up limits and lock-conflict timing of the ack / NAK / term decisions.
    pub retry: RetryPolicy,
    /// How often a held lock is renewed (`update` with its revision). At most a third of
    /// `retry.lock_takeover_after` and of `retry.lock_reclaim_after`, so a live holder's lock
    /// never looks stale.
    pub lock_renew_interval: Duration,
    /// How often this replica writes its heartbeat. At most a third of
    /// `retry.lock_reclaim_after`, so a live replica never looks dead.
    pub heartbeat_interval: Duration,
    /// How often an in-progress ack (`+WPI`) is sent while reconciling. Must be under the
    /// consumer's AckWait (30 s by default).
    pub progress_interval: Duration,
    /// How long one pull request waits for messages.
    pub fetch_expires: Duration,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            retry: RetryPolicy {
                backoff: backoff::Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
                max_poison_attempts: 5,
                max_reconcile_attempts: 0,
                lock_conflict_delay: Duration::from_secs(1),
                lock_reclaim_after: Duration::from_secs(30),
                lock_takeover_after: lock::LOCK_BUCKET_MAX_AGE,
            },
            lock_renew_interval: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(5),
            progress_interval: Duration::from_secs(10),
            fetch_expires: Duration::from_secs(5),
        }
    }
}

/// Where the engine records Threeport events (spec 1.10). The runtime plugs in the API-backed
/// recorder; keeping it behind a trait keeps the engine free of the recorder's REST details.
#[async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// Record an event for `object_id`, reported by `reporting_controller` (the controller's
    /// `ReportingController`, e.g. `WorkloadController`).
    async fn record(
        &self,
        reporting_controller: &str,
        object: ObjectType,
        object_id: u64,
        reason: &str,
        note: &str,
        warning: bool,
    ) -> Result<(), String>;
}

/// One reconciler to run: its registry entry, its implementation and its worker count.
#[derive(Clone)]
pub struct Binding {
    /// The controller the reconciler belongs to: its stream and lock bucket.
    pub controller: &'static ControllerSpec,
    /// The registry entry: object type, durable consumer, lock-key prefix.
    pub reconciler: &'static ReconcilerSpec,
    /// The implementation the engine calls for each notification.
    pub handler: Arc<dyn DynReconciler>,
    /// How many of its reconciles may run at once (0 counts as 1).
    pub workers: usize,
}

/// What the engine needs from the process.
#[derive(Clone)]
pub struct EngineDeps {
    /// JetStream of the process's NATS connection: streams, consumers and lock buckets.
    pub js: jetstream::Context,
    /// The Threeport API, for the latest object and the completion protocol.
    pub api: Arc<dyn ThreeportApi>,
    /// Where success and failure events are recorded.
    pub events: Arc<dyn EventSink>,
    /// The process's metrics, shared with the admin server's `/metrics`.
    pub metrics: Metrics,
    /// Retry and timing settings from the config's `engine` section.
    pub settings: EngineSettings,
    /// This process's UUID, written as the value of every lock it takes (Threeport's
    /// `controllerID`).
    pub instance_id: uuid::Uuid,
    /// The resync of every bound reconciler; `None` turns it off.
    pub resync: Option<resync::ResyncSettings>,
}

/// The running engine: every reconciler's pull loop and in-flight reconciles, and the
/// replica's heartbeat.
pub struct Engine {
    tracker: TaskTracker,
    shutdown: Shutdown,
    /// Stops the heartbeat, last: it must go on while reconciles drain.
    heartbeat_stop: CancellationToken,
    heartbeat: tokio::task::JoinHandle<()>,
}

/// How a shutdown ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownOutcome {
    /// Every in-flight reconcile finished within the timeout.
    Drained,
    /// Some were cancelled after the timeout, NAK'd and their locks released.
    Aborted,
    /// Even cancelled reconciles did not settle in time (stuck IO); the process exits anyway.
    TimedOut,
}

impl Engine {
    /// Start every binding. Readiness checks (`reconciler/<Name>`) are registered before this
    /// returns and turn true once the reconciler's consumer is bound.
    pub fn start(deps: EngineDeps, bindings: Vec<Binding>, readiness: &Readiness) -> Engine {
        let tracker = TaskTracker::new();
        let shutdown = Shutdown::default();
        // The heartbeat is written before any lock is taken: a live replica's locks must never
        // look like those of a dead one or of an unknown owner.
        let (heartbeats_tx, heartbeats_rx) = tokio::sync::watch::channel(None::<Heartbeats>);
        let heartbeat_stop = CancellationToken::new();
        let heartbeat = tokio::spawn({
            let deps = deps.clone();
            let (stop, heartbeat_stop) = (shutdown.stop.clone(), heartbeat_stop.clone());
            async move {
                let opened = until_ready("heartbeat bucket", &stop, || async {
                    let hb = Heartbeats::open_or_create(&deps.js, deps.instance_id).await?;
                    hb.beat().await?;
                    Ok::<_, liveness::HeartbeatError>(hb)
                })
                .await;
                let Some(hb) = opened else { return };
                info!(bucket = liveness::HEARTBEAT_BUCKET, "heartbeat written");
                let _ = heartbeats_tx.send(Some(hb.clone()));
                let failures = deps.metrics.heartbeat_failures_total.clone();
                hb.run(deps.settings.heartbeat_interval, failures, heartbeat_stop)
                    .await;
            }
        });
        // Group by controller: one lock bucket each.
        let mut by_controller: Vec<(&'static ControllerSpec, Vec<Binding>)> = Vec::new();
        for b in bindings {
            match by_controller
                .iter_mut()
                .find(|(c, _)| c.name == b.controller.name)
            {
                Some((_, v)) => v.push(b),
                None => by_controller.push((b.controller, vec![b])),
            }
        }
        for (controller, bindings) in by_controller {
            let handles: Vec<_> = bindings
                .iter()
                .map(|b| readiness.register(format!("reconciler/{}", b.reconciler.name)))
                .collect();
            let deps = deps.clone();
            let shutdown = shutdown.clone();
            let inner_tracker = tracker.clone();
            let mut heartbeats_rx = heartbeats_rx.clone();
            tracker.spawn(async move {
                let heartbeats = tokio::select! {
                    _ = shutdown.stop.cancelled() => return,
                    hb = heartbeats_rx.wait_for(Option::is_some) => match hb {
                        Ok(hb) => hb.clone().expect("waited for Some"),
                        // The heartbeat task ended without a heartbeat: shutting down.
                        Err(_) => return,
                    },
                };
                let owner = deps.instance_id.to_string();
                let Some(locks) = until_ready("lock bucket", &shutdown.stop, || {
                    LockClient::open_or_create(
                        &deps.js,
                        controller.lock_bucket,
                        controller.lock_bucket_description,
                        &owner,
                    )
                })
                .await
                else {
                    return;
                };
                info!(bucket = controller.lock_bucket, "lock bucket ready");
                let resynced: Vec<&'static ReconcilerSpec> =
                    bindings.iter().map(|b| b.reconciler).collect();
                for (b, ready) in bindings.into_iter().zip(handles) {
                    deps.metrics
                        .init_reconciler(controller.name, b.reconciler.name, b.workers);
                    // At 0 even with the resync off, so dashboards and alerts see the series.
                    deps.metrics.resync.init(b.reconciler.name);
                    deps.metrics.init_api_routes(b.reconciler.object.path);
                    let rt = Arc::new(ReconcilerRuntime {
                        controller,
                        reconciler: b.reconciler,
                        handler: b.handler,
                        workers: b.workers,
                        api: deps.api.clone(),
                        events: deps.events.clone(),
                        locks: locks.clone(),
                        heartbeats: heartbeats.clone(),
                        metrics: ReconcilerMetrics::new(
                            &deps.metrics,
                            controller.name,
                            b.reconciler.name,
                        ),
                        settings: deps.settings,
                        instance_id: deps.instance_id,
                    });
                    inner_tracker.spawn(worker::run_reconciler(
                        deps.js.clone(),
                        rt,
                        ready,
                        shutdown.clone(),
                        inner_tracker.clone(),
                    ));
                }
                if let Some(settings) = deps.resync {
                    start_resync(
                        &deps,
                        controller,
                        &resynced,
                        settings,
                        &shutdown.stop,
                        &inner_tracker,
                    )
                    .await;
                }
            });
        }
        Engine {
            tracker,
            shutdown,
            heartbeat_stop,
            heartbeat,
        }
    }

    /// Stop pulling new notifications (first step of shutdown).
    pub fn stop_pulling(&self) {
        self.shutdown.stop.cancel();
    }

    /// Stop pulling, wait up to `timeout` for in-flight reconciles, then cancel the rest (they
    /// NAK their message and release their lock) and wait up to `grace` for that.
    pub async fn shutdown(self, timeout: Duration, grace: Duration) -> ShutdownOutcome {
        self.shutdown.stop.cancel();
        self.tracker.close();
        let outcome = self.drain(timeout, grace).await;
        // Last: the heartbeat had to go on while reconciles drained (their locks stay safe).
        // Marking it stopped (bounded inside `Heartbeats::run`) lets the others reclaim at once
        // whatever was left; not if some reconcile never settled: its lock must wait for the
        // heartbeat to go stale.
        if outcome == ShutdownOutcome::TimedOut {
            self.heartbeat.abort();
        } else {
            self.heartbeat_stop.cancel();
        }
        let _ = self.heartbeat.await;
        outcome
    }

    async fn drain(&self, timeout: Duration, grace: Duration) -> ShutdownOutcome {
        if tokio::time::timeout(timeout, self.tracker.wait())
            .await
            .is_ok()
        {
            return ShutdownOutcome::Drained;
        }
        warn!(
            timeout_s = timeout.as_secs_f64(),
            "in-flight reconciles still running at the shutdown timeout; cancelling them"
        );
        self.shutdown.abort.cancel();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
        {
            ShutdownOutcome::Aborted
        } else {
            ShutdownOutcome::TimedOut
        }
    }
}

/// Start the resync of every reconciler of `controller` (one task each, contending for its
/// lease) once the lease bucket is open.
async fn start_resync(
    deps: &EngineDeps,
    controller: &'static ControllerSpec,
    reconcilers: &[&'static ReconcilerSpec],
    settings: resync::ResyncSettings,
    stop: &CancellationToken,
    tracker: &TaskTracker,
) {
    let owner = deps.instance_id.to_string();
    let Some(leases) = until_ready("resync lease bucket", stop, || {
        resync::lease::open_bucket(&deps.js, &owner)
    })
    .await
    else {
        return;
    };
    for reconciler in reconcilers {
        let resyncer = resync::Resyncer {
            js: deps.js.clone(),
            api: deps.api.clone(),
            controller,
            reconciler,
            settings,
            instance_id: deps.instance_id,
            metrics: deps.metrics.resync.clone(),
            unrecoverable: Default::default(),
        };
        tracker.spawn(resyncer.run(leases.clone(), stop.clone()));
    }
}

/// Try `attempt` every second until it succeeds (logging the first failure) or `stop` fires.
/// Cancellable, like every wait at start-up: while NATS is unreachable a JetStream request
/// waits for its own timeout (seconds), which must not hold up shutdown.
async fn until_ready<T, E, F, Fut>(
    what: &str,
    stop: &CancellationToken,
    mut attempt: F,
) -> Option<T>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut logged = false;
    loop {
        let result = tokio::select! {
            _ = stop.cancelled() => return None,
            r = attempt() => r,
        };
        match result {
            Ok(value) => return Some(value),
            Err(e) if !logged => {
                warn!(error = %e, "cannot open the {what} yet; retrying");
                logged = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = stop.cancelled() => return None,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Convenience for tests and benchmarks: a binding for a registry reconciler by name.
pub fn binding_for(name: &str, handler: Arc<dyn DynReconciler>, workers: usize) -> Option<Binding> {
    let (controller, reconciler) = crate::registry::reconciler(name)?;
    Some(Binding {
        controller,
        reconciler,
        handler,
        workers,
    })
}
