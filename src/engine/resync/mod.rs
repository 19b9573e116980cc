//! Resync: no object stays unreconciled because its notification was lost.
//!
//! Threeport's API ignores the error of its JetStream publish (spec 1.5, 4.1 #8): an object
//! created, changed or deleted while NATS was down or slow is never reconciled, and nothing
//! notices. Controller-runtime's periodic resync and kube-rs' re-list do not apply (they watch
//! Kubernetes, not an API behind a broker), so the manager does this itself:
//!
//! 1. Per enabled reconciler, one replica at a time ([`lease`]) runs every `resync.interval`
//!    (± `resync.jitter`).
//! 2. A run reads which objects have a notification pending or in flight on the durable
//!    consumer ([`pending`]), then lists the objects that need work, every page: first with
//!    Threeport's filter `reconciled=false` (every notification the API publishes is for an
//!    unreconciled object), then `reconciled=true` for deletions a controller marked
//!    reconciled on the way (the AWS builds do) and never confirmed. The API has no filter for
//!    "DeletionScheduled set", so that second list reads every reconciled object of the type:
//!    the run's main cost (docs/operating.md, "Resync", has the numbers).
//! 3. An object that needs work, with nothing pending, for longer than `resync.grace`
//!    ([`plan`]) is re-notified with Threeport's own payload on its subject ([`notify`]), and
//!    logged with its ID. The lock keeps a race with a late notification harmless, and the
//!    engine acknowledges a re-notification whose object was reconciled meanwhile without work.
//!
//! The cost of a run is its list calls (and the pending backlog, if any): nothing is read or
//! written per object unless it is re-notified.

pub mod lease;
pub mod notify;
pub mod pending;
pub mod plan;

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::time::error::Elapsed;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::lock::{LockClient, LockError};
use super::metrics::ResyncFamilies;
use super::Operation;
use crate::registry::{ControllerSpec, ReconcilerSpec};
use crate::threeport::{ApiError, ThreeportApi};
use lease::{Attempt, Contender, Leadership};
use plan::Verdict;

/// The resync's settings (the config's `resync` section, when enabled).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResyncSettings {
    /// Time between two runs for a reconciler.
    pub interval: Duration,
    /// ± this fraction of the interval, drawn per run.
    pub jitter: f64,
    /// How long an object must have needed work before it is re-notified.
    pub grace: Duration,
    /// Objects per list call.
    pub page_size: u64,
}

impl Default for ResyncSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5 * 60),
            jitter: 0.1,
            grace: Duration::from_secs(60),
            page_size: 500,
        }
    }
}

/// Why a resync run or lease operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ResyncError {
    /// JetStream did not answer (the pending scan or a publish).
    #[error("NATS: {0}")]
    Nats(String),
    /// A list call failed.
    #[error("listing objects: {0}")]
    Api(#[from] ApiError),
    /// The lease bucket did not answer.
    #[error(transparent)]
    Lease(#[from] LockError),
}

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// List calls made.
    pub pages: u64,
    /// Objects listed.
    pub listed: u64,
    /// Notifications read by the pending scan.
    pub pending_read: u64,
    /// Objects re-notified.
    pub renotified: u64,
    /// Objects needing work left alone, by reason (see [`plan::SKIP_REASONS`]).
    pub skipped: BTreeMap<&'static str, u64>,
    /// Re-notifications that could not be published (the run counts as failed).
    pub failed: u64,
}

/// The resync of one reconciler.
pub struct Resyncer {
    /// JetStream of the process's connection.
    pub js: jetstream::Context,
    /// The Threeport API, for the lists.
    pub api: Arc<dyn ThreeportApi>,
    /// The reconciler's controller: its stream.
    pub controller: &'static ControllerSpec,
    /// The reconciler: its type, subject and durable consumer.
    pub reconciler: &'static ReconcilerSpec,
    /// Interval, jitter, grace, page size.
    pub settings: ResyncSettings,
    /// This process's instance UUID: the lease owner and the resync header's value.
    pub instance_id: uuid::Uuid,
    /// The resync metric families.
    pub metrics: ResyncFamilies,
    /// Objects already logged as impossible to re-notify (logged once each per process).
    pub unrecoverable: Mutex<HashSet<u64>>,
}

/// How long releasing the lease may take at shutdown. The release only hands the lease over
/// early: one that cannot be written at once (NATS slow or just gone, where a JetStream request
/// would wait its full 5 s timeout) is given up, and the lease expires after its TTL instead.
/// With NATS known to be disconnected it is not tried at all.
const RELEASE_LIMIT: Duration = Duration::from_millis(500);

type Run<'a> = Pin<Box<dyn Future<Output = Result<RunReport, ResyncError>> + Send + 'a>>;

impl Resyncer {
    /// Contend for the reconciler's lease until `stop`, running the resync while leading.
    pub async fn run(self, locks: LockClient, stop: CancellationToken) {
        let name = self.reconciler.name;
        let ttl = plan::lease_ttl(self.settings.interval);
        let retry = ttl / 3;
        let mut contender = Contender::new(locks, name, &self.instance_id.to_string());
        let mut failing = false;
        loop {
            let attempt = tokio::select! {
                _ = stop.cancelled() => return,
                a = contender.try_lead(ttl) => a,
            };
            match attempt {
                Ok(Attempt::Leading(leadership)) => {
                    failing = false;
                    info!(reconciler = name, "leading this reconciler's resync");
                    self.metrics.leader.with_label_values(&[name]).set(1);
                    let stopped = self.lead(leadership, ttl, &stop).await;
                    self.metrics.leader.with_label_values(&[name]).set(0);
                    if stopped {
                        return;
                    }
                }
                Ok(Attempt::Following { holder }) => {
                    failing = false;
                    debug!(reconciler = name, holder = ?holder, "another replica leads this reconciler's resync");
                }
                Err(e) if !failing => {
                    failing = true;
                    warn!(reconciler = name, error = %e, "cannot read the resync lease; retrying");
                }
                Err(e) => {
                    debug!(reconciler = name, error = %e, "still cannot read the resync lease");
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(retry) => {}
            }
        }
    }

    /// Hold the lease and run on schedule until the lease is lost (returns false) or `stop`
    /// (releases the lease if NATS is connected, returns true). A run in progress is dropped
    /// either way.
    async fn lead(
        &self,
        mut leadership: Box<Leadership>,
        ttl: Duration,
        stop: &CancellationToken,
    ) -> bool {
        let name = self.reconciler.name;
        let renew_every = ttl / 3;
        let mut renew =
            tokio::time::interval_at(tokio::time::Instant::now() + renew_every, renew_every);
        let mut next = self.next_run(leadership.last_run());
        let mut run: Option<Run<'_>> = None;
        let mut started = OffsetDateTime::now_utc();
        loop {
            let running = run.is_some();
            tokio::select! {
                biased;
                _ = stop.cancelled() => {
                    drop(run);
                    if self.js.client().connection_state() != async_nats::connection::State::Connected {
                        debug!(reconciler = name, "NATS is not connected; the resync lease is left to expire");
                        return true;
                    }
                    match tokio::time::timeout(RELEASE_LIMIT, leadership.release()).await {
                        Ok(Ok(())) => debug!(reconciler = name, "released the resync lease"),
                        Ok(Err(e)) => debug!(reconciler = name, error = %e, "could not release the resync lease"),
                        Err(_) => debug!(reconciler = name, "releasing the resync lease timed out"),
                    }
                    return true;
                }
                _ = renew.tick() => {
                    let renewed = tokio::select! {
                        _ = stop.cancelled() => continue, // released by the branch above
                        r = tokio::time::timeout(renew_every, leadership.renew()) => r,
                    };
                    if !self.keep_leading(renewed) {
                        return false;
                    }
                }
                _ = tokio::time::sleep_until(next), if !running => {
                    started = OffsetDateTime::now_utc();
                    // A run that cannot finish within an interval is cut off and retried.
                    let interval = self.settings.interval;
                    run = Some(Box::pin(async move {
                        tokio::time::timeout(interval, self.run_once(started))
                            .await
                            .unwrap_or_else(|_| Err(ResyncError::Nats(format!(
                                "the run did not finish within the interval ({}s)",
                                interval.as_secs_f64()
                            ))))
                    }));
                }
                report = async { run.as_mut().expect("a run is in progress").await }, if running => {
                    run = None;
                    self.record(started, report);
                    let recorded = tokio::select! {
                        _ = stop.cancelled() => continue,
                        r = tokio::time::timeout(renew_every, leadership.record_run(started)) => r,
                    };
                    if !self.keep_leading(recorded) {
                        return false;
                    }
                    next = self.next_run(Some(started));
                }
            }
        }
    }

    /// Whether a lease write's outcome leaves this replica the leader: only a write that
    /// succeeded. After a failed or slow one, another replica may take the lease over within a
    /// TTL of the last good write, so this one stops now, before that can happen; while the
    /// key still says it is ours, the next attempt takes it back at once.
    fn keep_leading(&self, written: Result<Result<(), LockError>, Elapsed>) -> bool {
        let name = self.reconciler.name;
        match written {
            Ok(Ok(())) => true,
            Ok(Err(LockError::Lost { .. })) => {
                warn!(
                    reconciler = name,
                    "another replica took the resync lease; no longer resyncing"
                );
                false
            }
            Ok(Err(e)) => {
                warn!(reconciler = name, error = %e, "could not renew the resync lease; stepping down");
                false
            }
            Err(_) => {
                warn!(
                    reconciler = name,
                    "renewing the resync lease timed out; stepping down"
                );
                false
            }
        }
    }

    fn next_run(&self, last_run: Option<OffsetDateTime>) -> tokio::time::Instant {
        let s = &self.settings;
        let delay = plan::next_run_in(
            last_run,
            OffsetDateTime::now_utc(),
            s.interval,
            s.jitter,
            rand::random(),
        );
        tokio::time::Instant::now() + delay
    }

    /// Metrics and the log line of a finished run.
    fn record(&self, started: OffsetDateTime, report: Result<RunReport, ResyncError>) {
        let name = self.reconciler.name;
        let m = &self.metrics;
        let took = (OffsetDateTime::now_utc() - started)
            .as_seconds_f64()
            .max(0.0);
        m.duration_seconds.with_label_values(&[name]).observe(took);
        match report {
            Ok(report) if report.failed == 0 => {
                m.runs_total.with_label_values(&[name, "ok"]).inc();
                m.last_run_timestamp_seconds
                    .with_label_values(&[name])
                    .set(started.unix_timestamp());
                info!(reconciler = name, listed = report.listed, pages = report.pages,
                    pending_read = report.pending_read, renotified = report.renotified,
                    skipped = ?report.skipped, took_s = took, "resync run done");
            }
            Ok(report) => {
                m.runs_total.with_label_values(&[name, "error"]).inc();
                warn!(
                    reconciler = name,
                    listed = report.listed,
                    renotified = report.renotified,
                    failed = report.failed,
                    took_s = took,
                    "resync run could not re-notify every object; the next run retries"
                );
            }
            Err(e) => {
                m.runs_total.with_label_values(&[name, "error"]).inc();
                warn!(reconciler = name, error = %e, took_s = took, "resync run failed; the next run retries");
            }
        }
    }

    /// One run: the pending scan, every list page, then the re-notifications.
    ///
    /// Objects to re-notify are collected over all pages before any is published: the API
    /// pages with SQL OFFSET, and a re-notified object reconciled while the run still lists
    /// would shift the later pages and hide objects from this run.
    pub async fn run_once(&self, started: OffsetDateTime) -> Result<RunReport, ResyncError> {
        let r = self.reconciler;
        // Bounded by the interval: a scan that cannot finish by the next run is an error.
        let pending = pending::pending_objects(
            &self.js,
            self.controller.stream,
            &r.durable_name(),
            &r.filter_subject(),
            self.settings.interval,
        )
        .await?;
        let mut report = RunReport {
            pending_read: pending.messages_read,
            ..Default::default()
        };
        let mut renotify = Vec::new();
        for reconciled in ["false", "true"] {
            let filters = [("reconciled", reconciled.to_string())];
            let size = self.settings.page_size.max(1);
            let mut last_page = MAX_PAGES;
            let mut page = 1;
            loop {
                let resp = self.api.list_page(r.object, &filters, page, size).await?;
                report.pages += 1;
                if page == 1 {
                    // The pages the first answer announces, and one more in case rows were
                    // added meanwhile: an API that keeps answering full pages (a wrong
                    // TotalCount, `page` ignored) cannot hold the run forever.
                    last_page = (resp.meta.total_count.div_ceil(size) + 1).min(MAX_PAGES);
                }
                let got = resp.data.len() as u64;
                for object in resp.data {
                    report.listed += 1;
                    if let Some((id, operation)) =
                        self.consider(&object, started, &pending.ids, &mut report)
                    {
                        renotify.push((id, operation, object));
                    }
                }
                if got < size || page * size >= resp.meta.total_count || page >= last_page {
                    break;
                }
                page += 1;
            }
        }
        for (id, operation, object) in renotify {
            self.renotify(id, operation, &object, &mut report).await;
        }
        Ok(report)
    }

    /// The verdict on one listed object: `Some` if it is to be re-notified, else counted (and
    /// logged, once per object, when its notification cannot be rebuilt).
    fn consider(
        &self,
        object: &Value,
        now: OffsetDateTime,
        pending: &std::collections::HashSet<u64>,
        report: &mut RunReport,
    ) -> Option<(u64, Operation)> {
        let r = self.reconciler;
        let id = object.get("ID").and_then(Value::as_u64)?;
        let verdict = plan::verdict(
            object,
            now,
            self.settings.grace,
            pending.contains(&id),
            r.data_only_in_notification,
        );
        if let Some(reason) = verdict.skip_reason() {
            *report.skipped.entry(reason).or_default() += 1;
            self.metrics
                .skipped_total
                .with_label_values(&[r.name, reason])
                .inc();
            let first_time = || {
                self.unrecoverable
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id)
            };
            if verdict == Verdict::DataOnlyInNotification && first_time() {
                warn!(reconciler = r.name, object_id = id,
                    "object needs work but its notification, lost, carried data the API does not keep; it cannot be re-notified (create it again)");
            }
            return None;
        }
        match verdict {
            Verdict::Renotify(operation) => Some((id, operation)),
            _ => None,
        }
    }

    /// Publish one re-notification. A failure is logged and counted, and the run goes on with
    /// the others (it is reported as failed at the end).
    async fn renotify(
        &self,
        id: u64,
        operation: Operation,
        object: &Value,
        report: &mut RunReport,
    ) {
        let r = self.reconciler;
        let sender = self.instance_id.to_string();
        match notify::renotify(&self.js, r, id, operation, object, &sender).await {
            Ok(notify::Published::New) => {
                report.renotified += 1;
                self.metrics
                    .renotified_total
                    .with_label_values(&[r.name])
                    .inc();
                let since = plan::need(object).and_then(|n| n.since);
                info!(
                    reconciler = r.name,
                    object_id = id,
                    operation = operation.as_str(),
                    needs_work_since = since.map(|t| t.to_string()),
                    "re-notified an object whose notification was lost"
                );
            }
            Ok(notify::Published::Duplicate) => {
                debug!(
                    reconciler = r.name,
                    object_id = id,
                    "re-notification already in the stream (duplicate window)"
                );
            }
            Err(e) => {
                report.failed += 1;
                warn!(reconciler = r.name, object_id = id, error = %e, "could not re-notify an object; the next run retries");
            }
        }
    }
}

/// The most list calls of one list in a run (500 rows each by default: 50 million objects).
const MAX_PAGES: u64 = 100_000;
