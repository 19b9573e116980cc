//! The reconcile loop of one reconciler: pull notifications from its durable consumer and run
//! each through lock -> GET latest -> reconcile -> completion protocol -> release -> settle.
//!
//! Concurrency: up to `workers` messages are in flight per reconciler. The pull loop only asks
//! the server for as many messages as there are free workers (a batch request of size
//! `free permits`), so no message waits in a client-side buffer while its AckWait runs out.
//! Two messages for one object never reconcile at once because both need the object's KV lock,
//! in this process and across replicas (and Go controllers).

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::{self, AckKind};
use futures::{FutureExt, StreamExt};
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn, Instrument};

use super::decision::LockHolder;
use super::decision::{self, AttemptResult, Completion, Dispatch, Settle};
use super::liveness::Heartbeats;
use super::lock::{Holder, Lease, LockClient, LockError};
use super::metrics::{ReconcilerMetrics, TERMINATION_MAX_ATTEMPTS};
use super::notification::{self, Notification};
use super::reconciler::{DynReconciler, ReconcileContext, ReconcileError};
use super::resync::notify::RESYNC_HEADER;
use super::{EngineSettings, EventSink};
use crate::health::ReadyHandle;
use crate::registry::{ControllerSpec, ReconcilerSpec};
use crate::retry::{ErrorChain, RetryClass};
use crate::threeport::events::{self, EventOperation};
use crate::threeport::{models, ApiError, ThreeportApi};

/// Everything one reconciler's tasks share.
pub struct ReconcilerRuntime {
    /// The controller the reconciler belongs to.
    pub controller: &'static ControllerSpec,
    /// The registry entry: object type, durable consumer, lock-key prefix.
    pub reconciler: &'static ReconcilerSpec,
    /// The implementation called for each notification.
    pub handler: Arc<dyn DynReconciler>,
    /// How many reconciles may run at once: the permits of the pull loop's semaphore (0 counts
    /// as 1).
    pub workers: usize,
    /// The Threeport API, for the latest object and the completion protocol.
    pub api: Arc<dyn ThreeportApi>,
    /// Where success and failure events are recorded.
    pub events: Arc<dyn EventSink>,
    /// The controller's lock bucket, opened as this process's owner.
    pub locks: LockClient,
    /// The replicas' heartbeats: whether another owner of a lock is alive, and whether this
    /// process's own heartbeat is current enough to keep reconciling.
    pub heartbeats: Heartbeats,
    /// The metrics with this reconciler's labels bound.
    pub metrics: ReconcilerMetrics,
    /// Retry and timing settings.
    pub settings: EngineSettings,
    /// This process's UUID (the lock value), passed on in every [`ReconcileContext`].
    pub instance_id: uuid::Uuid,
}

impl ReconcilerRuntime {
    /// How long this replica may go without a heartbeat written before it must stop working
    /// under its locks: `lock_reclaim_after` minus one renew interval (the margin).
    fn heartbeat_fence(&self) -> Duration {
        self.settings
            .retry
            .lock_reclaim_after
            .saturating_sub(self.settings.lock_renew_interval)
    }
}

/// Stop signals: `stop` ends pulling; `abort` cancels in-flight reconciles (shutdown timeout).
#[derive(Clone, Default)]
pub struct Shutdown {
    /// Cancelled first: pull loops stop fetching, in-flight reconciles carry on.
    pub stop: CancellationToken,
    /// Cancelled at the shutdown timeout: in-flight reconciles are dropped, NAK'd and their
    /// locks released.
    pub abort: CancellationToken,
}

/// Wait for the stream, bind (or create) the durable consumer exactly as Threeport does.
pub async fn bind_consumer(
    js: &jetstream::Context,
    controller: &ControllerSpec,
    reconciler: &ReconcilerSpec,
    retry_every: Duration,
    stop: &CancellationToken,
) -> Option<jetstream::consumer::Consumer<pull::Config>> {
    let durable = reconciler.durable_name();
    let mut logged = false;
    loop {
        // Cancellable, like every wait at start-up (see `until_ready` in the engine module).
        let bound = tokio::select! {
            _ = stop.cancelled() => return None,
            r = try_bind(js, controller, reconciler, &durable) => r,
        };
        match bound {
            Ok(c) => {
                info!(stream = controller.stream, consumer = %durable, "bound durable consumer");
                return Some(c);
            }
            Err(e) => {
                // Threeport exits when the stream is missing (spec 4.1 #10); we wait for the API
                // to create it, so start-up order does not matter. Readiness stays false.
                if !logged {
                    warn!(stream = controller.stream, consumer = %durable, error = %e, "cannot bind consumer yet; retrying");
                    logged = true;
                } else {
                    debug!(stream = controller.stream, consumer = %durable, error = %e, "still cannot bind consumer");
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return None,
            _ = tokio::time::sleep(retry_every) => {}
        }
    }
}

async fn try_bind(
    js: &jetstream::Context,
    controller: &ControllerSpec,
    reconciler: &ReconcilerSpec,
    durable: &str,
) -> Result<jetstream::consumer::Consumer<pull::Config>, String> {
    let stream = js
        .get_stream(controller.stream)
        .await
        .map_err(|e| format!("stream {}: {e}", controller.stream))?;
    match stream.get_consumer::<pull::Config>(durable).await {
        Ok(mut consumer) => {
            if let Ok(info) = consumer.info().await {
                let filter = &info.config.filter_subject;
                if filter != &reconciler.filter_subject()
                    && !info
                        .config
                        .filter_subjects
                        .contains(&reconciler.filter_subject())
                {
                    warn!(consumer = durable, filter = %filter, expected = %reconciler.filter_subject(),
                        "existing durable consumer has an unexpected filter subject; using it unchanged");
                }
            }
            Ok(consumer)
        }
        Err(get_err) => {
            // Create it with exactly Threeport's config (spec 1.3 step 9): durable name,
            // explicit ack, filter `<x>.*`; everything else server defaults. Creating a
            // consumer with the same config as an existing one is idempotent on the server,
            // so a race with a Go controller or another replica is harmless.
            let config = pull::Config {
                durable_name: Some(durable.to_string()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                filter_subject: reconciler.filter_subject(),
                ..Default::default()
            };
            stream.create_consumer(config).await.map_err(|e| {
                format!("consumer {durable}: not found ({get_err}) and cannot create it ({e})")
            })
        }
    }
}

/// Run one reconciler until `shutdown.stop`: bind, mark ready, pull and dispatch.
pub async fn run_reconciler(
    js: jetstream::Context,
    rt: Arc<ReconcilerRuntime>,
    ready: ReadyHandle,
    shutdown: Shutdown,
    tracker: TaskTracker,
) {
    let Some(mut consumer) = bind_consumer(
        &js,
        rt.controller,
        rt.reconciler,
        Duration::from_secs(2),
        &shutdown.stop,
    )
    .await
    else {
        return;
    };
    ready.set(true);
    tracker.spawn(report_consumer_info(
        consumer.clone(),
        rt.metrics.clone(),
        shutdown.stop.clone(),
    ));

    let permits = Arc::new(Semaphore::new(rt.workers.max(1)));
    let mut consecutive_errors: u32 = 0;
    'pull: loop {
        let first = tokio::select! {
            biased;
            _ = shutdown.stop.cancelled() => break 'pull,
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break 'pull },
        };
        let mut free = vec![first];
        while let Ok(p) = permits.clone().try_acquire_owned() {
            free.push(p);
        }
        let request = consumer
            .batch()
            .max_messages(free.len())
            .expires(rt.settings.fetch_expires)
            .messages();
        let batch = tokio::select! {
            biased;
            _ = shutdown.stop.cancelled() => break 'pull,
            b = request => b,
        };
        let mut batch = match batch {
            Ok(b) => b,
            Err(e) => {
                consecutive_errors += 1;
                warn!(consumer = %rt.reconciler.durable_name(), error = %e, "pull request failed");
                if !pause(consecutive_errors, &shutdown.stop).await {
                    break 'pull;
                }
                if consecutive_errors >= 3 {
                    // The consumer may have been deleted (nats.rs#1584): bind again.
                    match bind_consumer(
                        &js,
                        rt.controller,
                        rt.reconciler,
                        Duration::from_secs(2),
                        &shutdown.stop,
                    )
                    .await
                    {
                        Some(c) => consumer = c,
                        None => break 'pull,
                    }
                }
                continue;
            }
        };
        loop {
            tokio::select! {
                biased;
                _ = shutdown.stop.cancelled() => break 'pull,
                item = batch.next() => match item {
                    None => break,
                    Some(Ok(msg)) => {
                        consecutive_errors = 0;
                        let permit = free.pop();
                        let rt = rt.clone();
                        let abort = shutdown.abort.clone();
                        tracker.spawn(async move { handle_message(rt, msg, abort, permit).await });
                    }
                    Some(Err(e)) => {
                        // Missed heartbeats, timeouts, ...: yielded, not fatal.
                        debug!(consumer = %rt.reconciler.durable_name(), error = %e, "pull stream error");
                        consecutive_errors += 1;
                        if !pause(consecutive_errors, &shutdown.stop).await {
                            break 'pull;
                        }
                        break;
                    }
                },
            }
        }
    }
    debug!(reconciler = rt.reconciler.name, "stopped pulling");
}

/// Back off after pull errors (bounded, no hot loop). Returns false when shutdown began.
async fn pause(consecutive_errors: u32, stop: &CancellationToken) -> bool {
    let delay = Duration::from_millis(100 * 2u64.pow(consecutive_errors.min(6)))
        .min(Duration::from_secs(5));
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(delay) => true,
    }
}

/// Export the consumer's pending and ack-pending counts.
async fn report_consumer_info(
    mut consumer: jetstream::consumer::Consumer<pull::Config>,
    metrics: ReconcilerMetrics,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {
                // Raced with `stop` too: a request in flight when NATS goes away would
                // otherwise hold the shutdown for JetStream's 5 s request timeout.
                let info = tokio::select! {
                    _ = stop.cancelled() => return,
                    info = consumer.info() => info,
                };
                if let Ok(info) = info {
                    metrics.pending.set(info.num_pending as i64);
                    metrics.ack_pending.set(info.num_ack_pending as i64);
                }
            }
        }
    }
}

/// Process one message from delivery to settlement. Holds a worker permit throughout.
pub async fn handle_message(
    rt: Arc<ReconcilerRuntime>,
    msg: jetstream::Message,
    abort: CancellationToken,
    _permit: Option<OwnedSemaphorePermit>,
) {
    let msg = Arc::new(msg);
    let (delivered, published) = match msg.info() {
        Ok(info) => (info.delivered.max(1) as u64, Some(info.published)),
        Err(_) => (1, None),
    };
    if delivered == 1 {
        if let Some(published) = published {
            let lag = time::OffsetDateTime::now_utc() - published;
            rt.metrics
                .queue_latency
                .observe(lag.as_seconds_f64().max(0.0));
        }
    }
    let notif = match notification::decode(&msg.payload) {
        Ok(n) => n,
        Err(poison) => {
            let settle = decision::settle_poison(&rt.settings.retry, delivered, rand::random());
            let seq = msg.info().map(|i| i.stream_sequence).unwrap_or(0);
            match settle {
                Settle::Term => {
                    error!(reconciler = rt.reconciler.name, stream_sequence = seq, delivered, reason = poison.reason.as_str(),
                        detail = %poison.detail, "terminating poison notification");
                    rt.metrics.terminated(poison.reason.as_str());
                }
                // Logged once, on first delivery; later attempts only at debug.
                _ if delivered == 1 => {
                    warn!(reconciler = rt.reconciler.name, stream_sequence = seq, reason = poison.reason.as_str(),
                    detail = %poison.detail, "poison notification; will retry with backoff, then terminate");
                }
                _ => debug!(
                    reconciler = rt.reconciler.name,
                    stream_sequence = seq,
                    delivered,
                    reason = poison.reason.as_str(),
                    "poison notification again"
                ),
            }
            settle_message(&msg, settle).await;
            return;
        }
    };
    // A resync's re-notification (header set by `resync::notify`); Threeport's carry none.
    let resync = msg
        .headers
        .as_ref()
        .is_some_and(|h| h.get(RESYNC_HEADER).is_some());
    let span = tracing::info_span!(
        "reconcile",
        controller = rt.controller.name,
        reconciler = rt.reconciler.name,
        object_id = notif.object_id,
        operation = notif.operation.as_str(),
        delivered,
        resync,
    );
    super::trace_context::set_remote_parent(&span, msg.headers.as_ref());
    async move {
        let started = Instant::now();
        let result = attempt(&rt, &msg, &notif, delivered, resync, &abort).await;
        let settle =
            decision::settle_attempt(&rt.settings.retry, result, delivered, rand::random());
        settle_message(&msg, settle).await;
        if let Some(label) = result.metric_result() {
            rt.metrics.result(label);
            rt.metrics.time.observe(started.elapsed().as_secs_f64());
        }
        match (result, settle) {
            (AttemptResult::LockConflict(_), _) => rt.metrics.lock_conflicts.inc(),
            (AttemptResult::UpToDate, _) => rt.metrics.resync_superseded.inc(),
            (AttemptResult::Failure(_) | AttemptResult::LockLost, Settle::Term) => {
                rt.metrics.errors.inc();
                rt.metrics.terminated(TERMINATION_MAX_ATTEMPTS);
                error!("giving up after {delivered} attempts; notification terminated");
            }
            (AttemptResult::Failure(class), _) => {
                rt.metrics.errors.inc();
                if class == RetryClass::Permanent {
                    rt.metrics.permanent_errors.inc();
                }
            }
            _ => {}
        }
        debug!(
            ?result,
            ?settle,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "settled"
        );
        if result == AttemptResult::Success {
            // Recorded after the ack, as Threeport does; a failure here is only logged.
            record_event(&rt, &notif, true).await;
        }
    }
    .instrument(span)
    .await;
}

async fn settle_message(msg: &jetstream::Message, settle: Settle) {
    let res = match settle {
        // Confirmed ack, like Go's AckSync.
        Settle::Ack => msg.double_ack().await,
        Settle::Nak(d) if d.is_zero() => msg.ack_with(AckKind::Nak(None)).await,
        Settle::Nak(d) => msg.ack_with(AckKind::Nak(Some(d))).await,
        Settle::Term => msg.ack_with(AckKind::Term).await,
    };
    if let Err(e) = res {
        // The server redelivers after AckWait; the lock makes that safe.
        warn!(?settle, error = %e, "could not settle message");
    }
}

/// One attempt: lock, GET latest, reconcile, complete, release.
async fn attempt(
    rt: &Arc<ReconcilerRuntime>,
    msg: &Arc<jetstream::Message>,
    notif: &Notification,
    delivered: u64,
    resync: bool,
    abort: &CancellationToken,
) -> AttemptResult {
    let key = rt.reconciler.lock_key(notif.object_id);
    // Claimed for the whole attempt: another task here never takes this key for a leftover.
    let _claim = rt.locks.claim(&key);
    // A replica whose heartbeat is stale may look dead to the others, who may reclaim its
    // locks: it takes none (and takes back none of its own) until its heartbeat is written.
    if !rt.heartbeats.written_within(rt.heartbeat_fence()) {
        debug!("this replica's heartbeat is stale; taking no lock until it is written again");
        return AttemptResult::LockUnavailable;
    }
    let lease = match rt.locks.acquire(&key).await {
        Ok(lease) => lease,
        Err(LockError::Held { .. }) => match resolve_conflict(rt, &key, delivered).await {
            Ok(lease) => lease,
            Err(result) => return result,
        },
        Err(e) => {
            warn!(error = %e, "cannot take lock");
            return AttemptResult::LockUnavailable;
        }
    };
    rt.metrics.active.inc();
    let lease = Arc::new(Mutex::new(lease));
    let lost = CancellationToken::new();
    let stop_keepalive = CancellationToken::new();
    let keepalive = tokio::spawn(keep_alive(
        rt.clone(),
        lease.clone(),
        msg.clone(),
        lost.clone(),
        stop_keepalive.clone(),
    ));
    // The reconciler's own token fires on lock loss or abort, so it can stop between steps.
    let cancel = CancellationToken::new();
    let work = reconcile_latest(rt, notif, delivered, resync, cancel.clone());
    let result = tokio::select! {
        r = work => r,
        _ = lost.cancelled() => {
            cancel.cancel();
            rt.metrics.lock_lost.inc();
            warn!("lock lost while reconciling; reconcile cancelled");
            AttemptResult::LockLost
        }
        _ = abort.cancelled() => {
            cancel.cancel();
            warn!("shutdown timeout reached; reconcile cancelled, notification handed back");
            AttemptResult::Aborted
        }
    };
    stop_keepalive.cancel();
    let _ = keepalive.await;
    rt.metrics.active.dec();
    if result != AttemptResult::LockLost {
        let lease: Lease = match lease.lock() {
            Ok(l) => l.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        match rt.locks.release(&lease).await {
            Ok(()) => {}
            Err(LockError::Lost { .. }) => {
                rt.metrics.lock_lost.inc();
                warn!(key = %lease.key, "lock was no longer ours at release; left it alone");
            }
            Err(e) => {
                warn!(error = %e, "could not release lock; the next attempt on this object takes it back");
            }
        }
    }
    // Not released after a lost lease: either another owner has it, or our own value stays
    // behind as a leftover that the next attempt here takes back (once this claim is dropped)
    // or another replica reclaims.
    result
}

/// Another owner holds `key`: take it over if the holder is gone, else say when to try again.
async fn resolve_conflict(
    rt: &ReconcilerRuntime,
    key: &str,
    delivered: u64,
) -> Result<Lease, AttemptResult> {
    let policy = &rt.settings.retry;
    let holder = match rt.locks.inspect(key).await {
        Ok(Some(holder)) => holder,
        // Released since `create` failed: the next delivery takes it.
        Ok(None) => return Err(AttemptResult::LockConflict(policy.lock_conflict_delay)),
        Err(e) => {
            warn!(error = %e, "cannot read the lock holder");
            return Err(AttemptResult::LockUnavailable);
        }
    };
    let kind = match classify_holder(rt, key, &holder).await {
        Ok(kind) => kind,
        Err(e) => {
            warn!(error = %e, "cannot read the lock holder's heartbeat");
            return Err(AttemptResult::LockUnavailable);
        }
    };
    match decision::plan_lock_conflict(policy, kind, holder.age, delivered, rand::random()) {
        decision::LockConflictPlan::Wait(delay) => {
            debug!(key, owner = %holder.owner, holder = ?kind, age_ms = holder.age.as_millis() as u64,
                delay_ms = delay.as_millis() as u64, "object locked by another owner; deferring");
            Err(AttemptResult::LockConflict(delay))
        }
        decision::LockConflictPlan::TakeOver => {
            match rt.locks.take_over(key, holder.revision).await {
                Ok(lease) => {
                    let (label, why) = match kind {
                        LockHolder::OwnLeftover => (
                            "own_leftover",
                            "this process's lock left by a release that failed",
                        ),
                        LockHolder::Replica { .. } => {
                            ("dead_replica", "its replica stopped heartbeating")
                        }
                        LockHolder::Unknown => (
                            "no_heartbeat",
                            "an owner without heartbeat had not renewed it for the takeover age",
                        ),
                    };
                    rt.metrics.takeover(label);
                    warn!(key, previous_owner = %holder.owner, age_s = holder.age.as_secs(),
                        holder = label, "took over a lock: {why}");
                    Ok(lease)
                }
                Err(LockError::Held { .. }) => {
                    debug!(key, "the lock changed before the takeover; deferring");
                    Err(AttemptResult::LockConflict(policy.lock_conflict_delay))
                }
                Err(e) => {
                    warn!(error = %e, "cannot take over the lock");
                    Err(AttemptResult::LockUnavailable)
                }
            }
        }
    }
}

/// Who `holder` is: this process (a leftover, or another of its tasks at work), or another
/// owner classified by its heartbeat.
async fn classify_holder(
    rt: &ReconcilerRuntime,
    key: &str,
    holder: &Holder,
) -> Result<LockHolder, super::liveness::HeartbeatError> {
    if rt.locks.is_own_leftover(key, holder) {
        return Ok(LockHolder::OwnLeftover);
    }
    if holder.owner == rt.instance_id.to_string() {
        return Ok(LockHolder::Replica {
            silent_for: Duration::ZERO,
        });
    }
    // Managers write UUIDs; anything else cannot have a heartbeat (and may not even be a
    // valid KV key to look up).
    if uuid::Uuid::parse_str(&holder.owner).is_err() {
        return Ok(LockHolder::Unknown);
    }
    rt.heartbeats.holder(&holder.owner).await
}

/// Renew the lease and send in-progress acks until stopped; cancel `lost` if the lease is lost.
///
/// The lease is also given up, before anyone may take it:
/// - when this replica's heartbeat has not been written for `lock_reclaim_after` minus one
///   renew interval (the other replicas judge it by its heartbeat): a timer fires at that
///   moment, and no NATS call here is waited on past it;
/// - when no renewal has succeeded for `lock_takeover_after` minus one renew interval (were its
///   heartbeat entry gone, the others would judge it by its lock's age).
///
/// The renew interval is the margin.
async fn keep_alive(
    rt: Arc<ReconcilerRuntime>,
    lease: Arc<Mutex<Lease>>,
    msg: Arc<jetstream::Message>,
    lost: CancellationToken,
    stop: CancellationToken,
) {
    let start = tokio::time::Instant::now();
    let mut renew = tokio::time::interval_at(
        start + rt.settings.lock_renew_interval,
        rt.settings.lock_renew_interval,
    );
    let mut progress = tokio::time::interval_at(
        start + rt.settings.progress_interval,
        rt.settings.progress_interval,
    );
    let renew_interval = rt.settings.lock_renew_interval;
    let fence = rt
        .settings
        .retry
        .lock_takeover_after
        .saturating_sub(renew_interval);
    let heartbeat_fence = rt.heartbeat_fence();
    // Time of the last write known to have succeeded (sent no earlier than this).
    let mut written = start;
    loop {
        // Recomputed every turn: each heartbeat written moves it on.
        let heartbeat_deadline = rt.heartbeats.deadline(heartbeat_fence);
        // No call below may outlast the heartbeat deadline or one renew interval.
        let call_limit = || {
            rt.heartbeats
                .deadline(heartbeat_fence)
                .min(tokio::time::Instant::now() + renew_interval)
        };
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep_until(heartbeat_deadline) => {
                if !rt.heartbeats.written_within(heartbeat_fence) {
                    warn!("heartbeat not written for too long; giving the lock up before it can be reclaimed");
                    lost.cancel();
                    return;
                }
            }
            _ = progress.tick() => {
                // +WPI restarts AckWait so a long reconcile is not redelivered meanwhile
                // (Threeport never sends it, spec 4.1 #5).
                match tokio::time::timeout_at(call_limit(), msg.ack_with(AckKind::Progress)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => debug!(error = %e, "in-progress ack failed"),
                    Err(_) => debug!("in-progress ack timed out"),
                }
            }
            _ = renew.tick() => {
                let mut current = match lease.lock() {
                    Ok(l) => l.clone(),
                    Err(p) => p.into_inner().clone(),
                };
                let sent = tokio::time::Instant::now();
                let renewed = tokio::time::timeout_at(call_limit(), rt.locks.renew(&mut current))
                    .await
                    .unwrap_or_else(|_| Err(LockError::Unavailable {
                        key: current.key.clone(),
                        reason: "renewal timed out".into(),
                    }));
                match renewed {
                    Ok(()) => {
                        written = sent;
                        if let Ok(mut l) = lease.lock() {
                            *l = current;
                        }
                    }
                    Err(LockError::Lost { .. }) => {
                        lost.cancel();
                        return;
                    }
                    Err(e) if written.elapsed() + renew_interval > fence => {
                        warn!(error = %e, "lock not renewed for too long; giving it up before it can be taken over");
                        lost.cancel();
                        return;
                    }
                    // Transient: the next tick retries, well before the lease can be taken over.
                    Err(e) => warn!(error = %e, "lock renewal failed; retrying"),
                }
            }
        }
    }
}

/// GET latest, dispatch, and run the completion protocol.
async fn reconcile_latest(
    rt: &Arc<ReconcilerRuntime>,
    notif: &Notification,
    delivered: u64,
    resync: bool,
    cancel: CancellationToken,
) -> AttemptResult {
    let ty = rt.reconciler.object;
    let latest: Value = match rt.api.get(ty, notif.object_id).await {
        Ok(v) => v,
        Err(e) if e.is_not_found() => {
            info!("object no longer exists; nothing to reconcile");
            return AttemptResult::NotFound;
        }
        Err(e) => {
            warn!(error = %e, "cannot read the latest object");
            return AttemptResult::Failure(e.retry_class());
        }
    };
    match decision::plan_dispatch(notif.operation, &latest, resync) {
        Dispatch::Run => {}
        Dispatch::SkipScheduledForDeletion => {
            info!("object is scheduled for deletion; leaving it to the Deleted notification");
            return AttemptResult::SkippedForDeletion;
        }
        Dispatch::SkipUpToDate => {
            info!("resync notification of an object reconciled meanwhile; nothing to do");
            return AttemptResult::UpToDate;
        }
    }
    let ctx = ReconcileContext {
        api: rt.api.clone(),
        controller: rt.controller,
        reconciler: rt.reconciler,
        object_id: notif.object_id,
        operation: notif.operation,
        attempt: delivered,
        instance_id: rt.instance_id,
        cancel,
        notified: Arc::new(notif.object.clone()),
    };
    let outcome = AssertUnwindSafe(rt.handler.dispatch(&ctx, latest))
        .catch_unwind()
        .await;
    let outcome = match outcome {
        Ok(o) => o,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".into());
            error!(panic = %what, "reconciler panicked");
            // A bug in this manager, not in the object: normal backoff and Threeport's own
            // failure event, rather than a "permanent error" event that points at the object.
            Err(ReconcileError::transient(format!(
                "reconciler panicked: {what}"
            )))
        }
    };
    match outcome {
        Ok(super::reconciler::Outcome::RequeueAfter(d)) => {
            debug!(
                delay_ms = d.as_millis() as u64,
                "reconciler asked to be requeued"
            );
            AttemptResult::Requeue(d)
        }
        Ok(super::reconciler::Outcome::Done) => {
            match complete(rt, notif.operation, notif.object_id).await {
                Ok(()) => AttemptResult::Success,
                Err(e) => {
                    warn!(error = %e, "completion protocol failed");
                    record_failure(rt, notif, e.retry_class(), &e, None).await;
                    AttemptResult::Failure(e.retry_class())
                }
            }
        }
        Err(e) => {
            warn!(error = %ErrorChain(&e), class = e.class.as_str(), "reconcile failed");
            record_failure(rt, notif, e.class, &e, e.event.clone()).await;
            AttemptResult::Failure(e.class)
        }
    }
}

/// Spec 1.9 steps 11a/11b/12: PATCH `Reconciled:true`, or the deletion confirmation PATCH then
/// the final DELETE. A 404 means the object is already gone, which is the goal.
async fn complete(
    rt: &ReconcilerRuntime,
    operation: super::Operation,
    id: u64,
) -> Result<(), ApiError> {
    let ty = rt.reconciler.object;
    let ignore_404 = |r: Result<Value, ApiError>| match r {
        Err(e) if e.is_not_found() => Ok(()),
        other => other.map(|_| ()),
    };
    match decision::completion_for(operation) {
        Completion::MarkReconciled => {
            ignore_404(rt.api.patch(ty, id, models::reconciled_patch()).await)
        }
        Completion::ConfirmDeletion => {
            let body = models::deletion_confirmed_patch(time::OffsetDateTime::now_utc());
            ignore_404(rt.api.patch(ty, id, body).await)?;
            ignore_404(rt.api.delete(ty, id).await)
        }
    }
}

/// The failure event: the reconciler's own (Threeport's `ErrWithEvent`), else the standard
/// one. A permanent failure without its own event says so, with the error and the retry
/// interval, as a warning: Threeport's note carries no error text, which leaves a user with a
/// broken object nothing to go on (a transient failure keeps Threeport's exact note, which
/// also keeps its de-duplication key stable while the error text varies).
async fn record_failure(
    rt: &ReconcilerRuntime,
    notif: &Notification,
    class: RetryClass,
    error: &(dyn std::error::Error + Send + Sync),
    custom: Option<super::reconciler::EventOverride>,
) {
    match (custom, class) {
        (Some(ev), _) => emit_event(rt, notif.object_id, &ev.reason, &ev.note, ev.warning).await,
        (None, RetryClass::Permanent) => {
            let op = EventOperation::from(notif.operation);
            let note = events::permanent_failure_note(
                rt.reconciler.words,
                op,
                &ErrorChain(error).to_string(),
                rt.settings.retry.backoff.cap,
            );
            emit_event(rt, notif.object_id, op.failure_reason(), &note, true).await;
        }
        (None, RetryClass::Transient) => record_event(rt, notif, false).await,
    }
}

/// Threeport's standard success / failure events (spec 1.9 steps 11 and 14).
async fn record_event(rt: &ReconcilerRuntime, notif: &Notification, success: bool) {
    let op = EventOperation::from(notif.operation);
    let words = rt.reconciler.words;
    if success {
        emit_event(
            rt,
            notif.object_id,
            op.success_reason(),
            &events::success_note(words, op),
            false,
        )
        .await;
    } else {
        emit_event(
            rt,
            notif.object_id,
            op.failure_reason(),
            &events::failure_note(words, op),
            false,
        )
        .await;
    }
}

/// Record an event; a failure is only logged (as Threeport does).
async fn emit_event(
    rt: &ReconcilerRuntime,
    object_id: u64,
    reason: &str,
    note: &str,
    warning: bool,
) {
    let res = rt
        .events
        .record(
            rt.controller.reporting_controller,
            rt.reconciler.object,
            object_id,
            reason,
            note,
            warning,
        )
        .await;
    if let Err(e) = res {
        warn!(error = %e, reason, "could not record event");
    }
}
