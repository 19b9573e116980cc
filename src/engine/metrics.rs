//! Prometheus metrics. The names follow controller-runtime's vocabulary (README, "Admin endpoints and metrics") and are
//! part of the interface: dashboards and alerts depend on them. Labels never carry object IDs
//! or names; every label combination known at start-up is pre-initialised to 0 so alerts on
//! `rate()` and absent series behave from the first scrape.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use super::notification::PoisonReason;

/// Reconcile results (`result` label).
pub const RESULTS: [&str; 4] = ["success", "error", "requeue", "not_found"];
/// Termination reasons: the poison reasons plus giving up on a failing reconcile.
pub const TERMINATION_MAX_ATTEMPTS: &str = "max_attempts";
/// The `holder` label values of `threeport_lock_takeovers_total`: a manager replica whose
/// heartbeat went silent, this process's own leftover of a failed release, an owner without
/// heartbeat (a Go controller) past `engine.lock_takeover_after`.
pub const TAKEOVER_HOLDERS: [&str; 3] = ["dead_replica", "own_leftover", "no_heartbeat"];

/// Every metric of the manager, registered in one registry.
#[derive(Clone)]
pub struct Metrics {
    /// The registry every metric below is registered in; `/metrics` renders it.
    pub registry: Registry,
    /// `threeport_reconcile_total{controller,reconciler,result}`: reconcile attempts by result.
    pub reconcile_total: IntCounterVec,
    /// `threeport_reconcile_errors_total{controller,reconciler}`: failed reconcile attempts.
    pub reconcile_errors_total: IntCounterVec,
    /// `threeport_reconcile_permanent_errors_total{controller,reconciler}`: failed attempts
    /// classified permanent (a subset of `threeport_reconcile_errors_total`).
    pub reconcile_permanent_errors_total: IntCounterVec,
    /// `threeport_reconcile_time_seconds{controller,reconciler}`: seconds from lock acquisition to
    /// settling the message.
    pub reconcile_time_seconds: HistogramVec,
    /// `threeport_active_workers{controller,reconciler}`: reconciles in progress.
    pub active_workers: IntGaugeVec,
    /// `threeport_max_concurrent_reconciles{controller,reconciler}`: configured workers.
    pub max_concurrent_reconciles: IntGaugeVec,
    /// `threeport_lock_conflicts_total{controller,reconciler}`: notifications deferred because
    /// another owner held the lock.
    pub lock_conflicts_total: IntCounterVec,
    /// `threeport_lock_lost_total{controller,reconciler}`: reconciles cancelled because their
    /// lock was taken over.
    pub lock_lost_total: IntCounterVec,
    /// `threeport_lock_takeovers_total{controller,reconciler,holder}`: locks taken from an
    /// owner that is gone, by kind of owner (see [`TAKEOVER_HOLDERS`]).
    pub lock_takeovers_total: IntCounterVec,
    /// `threeport_heartbeat_failures_total`: heartbeat writes that failed.
    pub heartbeat_failures_total: IntCounter,
    /// `threeport_notifications_terminated_total{controller,reconciler,reason}`: notifications
    /// terminated (`+TERM`), by poison reason or `max_attempts`.
    pub notifications_terminated_total: IntCounterVec,
    /// `threeport_queue_latency_seconds{controller,reconciler}`: seconds from publish to the
    /// start of the first reconcile attempt.
    pub queue_latency_seconds: HistogramVec,
    /// `threeport_consumer_pending{controller,reconciler}`: notifications not yet delivered to the
    /// durable consumer.
    pub consumer_pending: IntGaugeVec,
    /// `threeport_consumer_ack_pending{controller,reconciler}`: notifications delivered but not yet
    /// acknowledged.
    pub consumer_ack_pending: IntGaugeVec,
    /// `threeport_nats_connected`: 1 while the NATS connection is up, else 0.
    pub nats_connected: IntGauge,
    /// `threeport_nats_events_total{event}`: NATS connection events (`connected`,
    /// `disconnected`, ...).
    pub nats_events_total: IntCounterVec,
    /// `threeport_api_requests_total{method,route,code}`: Threeport API requests by route template.
    pub api_requests_total: IntCounterVec,
    /// `threeport_event_record_failures_total`: events that could not be recorded in the API.
    pub event_record_failures_total: IntCounter,
    /// The resync's metrics (see [`ResyncFamilies`]).
    pub resync: ResyncFamilies,
}

/// The resync's metric families, labelled by `reconciler` (its names are unique).
#[derive(Clone)]
pub struct ResyncFamilies {
    /// `threeport_resync_runs_total{reconciler,result}`: resync runs by this replica, `ok` or
    /// `error`.
    pub runs_total: IntCounterVec,
    /// `threeport_resync_renotified_total{reconciler}`: objects re-notified.
    pub renotified_total: IntCounterVec,
    /// `threeport_resync_skipped_total{reconciler,reason}`: objects that needed work but were
    /// not re-notified (see [`super::resync::plan::SKIP_REASONS`]).
    pub skipped_total: IntCounterVec,
    /// `threeport_resync_last_run_timestamp_seconds{reconciler}`: Unix time at which this
    /// replica's last successful run started.
    pub last_run_timestamp_seconds: IntGaugeVec,
    /// `threeport_resync_duration_seconds{reconciler}`: how long runs took.
    pub duration_seconds: HistogramVec,
    /// `threeport_resync_leader{reconciler}`: 1 while this replica holds the reconciler's
    /// resync lease.
    pub leader: IntGaugeVec,
    /// `threeport_resync_superseded_total{reconciler}`: re-notifications acknowledged without
    /// work because the object was reconciled by the time they arrived.
    pub superseded_total: IntCounterVec,
}

impl ResyncFamilies {
    fn new(r: &Registry) -> Self {
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "threeport_resync_duration_seconds",
                "Time of one resync run: the pending scan, every list page and the re-notifications",
            )
            .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]),
            &["reconciler"],
        )
        .expect("static metric definition");
        r.register(Box::new(duration.clone()))
            .expect("metric registered once");
        Self {
            runs_total: counter(
                r,
                "threeport_resync_runs_total",
                "Resync runs made by this replica, by result (ok, error)",
                &["reconciler", "result"],
            ),
            renotified_total: counter(
                r,
                "threeport_resync_renotified_total",
                "Objects needing work without a pending notification, re-notified by the resync",
                &["reconciler"],
            ),
            skipped_total: counter(
                r,
                "threeport_resync_skipped_total",
                "Objects needing work that the resync left alone, by reason (pending, grace, data_only_in_notification)",
                &["reconciler", "reason"],
            ),
            last_run_timestamp_seconds: gauge(
                r,
                "threeport_resync_last_run_timestamp_seconds",
                "Unix time at which this replica's last successful resync run started",
                &["reconciler"],
            ),
            duration_seconds: duration,
            leader: gauge(
                r,
                "threeport_resync_leader",
                "1 while this replica holds the reconciler's resync lease",
                &["reconciler"],
            ),
            superseded_total: counter(
                r,
                "threeport_resync_superseded_total",
                "Re-notifications acknowledged without work: the object was reconciled when they arrived",
                &["reconciler"],
            ),
        }
    }

    /// Create every series of one reconciler at 0.
    pub fn init(&self, reconciler: &str) {
        for result in ["ok", "error"] {
            self.runs_total.with_label_values(&[reconciler, result]);
        }
        for reason in super::resync::plan::SKIP_REASONS {
            self.skipped_total.with_label_values(&[reconciler, reason]);
        }
        self.renotified_total.with_label_values(&[reconciler]);
        self.last_run_timestamp_seconds
            .with_label_values(&[reconciler]);
        self.duration_seconds.with_label_values(&[reconciler]);
        self.leader.with_label_values(&[reconciler]);
        self.superseded_total.with_label_values(&[reconciler]);
    }
}

const RECONCILER_LABELS: [&str; 2] = ["controller", "reconciler"];

fn counter(reg: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("static metric definition");
    reg.register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

fn gauge(reg: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("static metric definition");
    reg.register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

fn histogram(reg: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets),
        &RECONCILER_LABELS,
    )
    .expect("static metric definition");
    reg.register(Box::new(h.clone()))
        .expect("metric registered once");
    h
}

impl Metrics {
    /// Every metric, registered in a registry of its own. Labelled series exist once something
    /// creates them, e.g. [`Metrics::init_reconciler`] and [`Metrics::init_api_routes`].
    pub fn new() -> Self {
        let registry = Registry::new();
        let r = &registry;
        // Reconciles range from milliseconds (no-op) to minutes (helm installs, EKS).
        let time_buckets = vec![
            0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
        ];
        // Which build is running, as a constant 1 (Prometheus' `*_build_info` convention).
        gauge(
            r,
            "threeport_build_info",
            "The running build: version, git commit and compiler, as labels of a constant 1",
            &["version", "git_sha", "rustc"],
        )
        .with_label_values(&[
            env!("CARGO_PKG_VERSION"),
            crate::GIT_SHA,
            crate::RUSTC_VERSION,
        ])
        .set(1);
        // The standard process_* metrics (resident memory, CPU seconds, open file descriptors,
        // start time); Linux only, where the manager runs.
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("metric registered once");
        let nats_connected = IntGauge::new(
            "threeport_nats_connected",
            "1 while the NATS connection is up, else 0",
        )
        .expect("static metric definition");
        registry
            .register(Box::new(nats_connected.clone()))
            .expect("metric registered once");
        let plain_counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("static metric definition");
            registry
                .register(Box::new(c.clone()))
                .expect("metric registered once");
            c
        };
        let event_record_failures_total = plain_counter(
            "threeport_event_record_failures_total",
            "Threeport events that could not be recorded in the API (logged, not retried)",
        );
        let heartbeat_failures_total = plain_counter(
            "threeport_heartbeat_failures_total",
            "Replica heartbeat writes that failed (reconciles stop when none succeeds for lock_reclaim_after minus a renew interval)",
        );
        Self {
            reconcile_total: counter(
                r,
                "threeport_reconcile_total",
                "Reconcile attempts by result",
                &["controller", "reconciler", "result"],
            ),
            reconcile_errors_total: counter(
                r,
                "threeport_reconcile_errors_total",
                "Failed reconcile attempts",
                &RECONCILER_LABELS,
            ),
            reconcile_permanent_errors_total: counter(
                r,
                "threeport_reconcile_permanent_errors_total",
                "Failed reconcile attempts whose error needs someone to change something (retried at the backoff cap); a subset of threeport_reconcile_errors_total",
                &RECONCILER_LABELS,
            ),
            reconcile_time_seconds: histogram(
                r,
                "threeport_reconcile_time_seconds",
                "Time from lock acquisition to settling the message",
                time_buckets.clone(),
            ),
            active_workers: gauge(
                r,
                "threeport_active_workers",
                "Reconciles in progress",
                &RECONCILER_LABELS,
            ),
            max_concurrent_reconciles: gauge(
                r,
                "threeport_max_concurrent_reconciles",
                "Configured workers per reconciler",
                &RECONCILER_LABELS,
            ),
            lock_conflicts_total: counter(
                r,
                "threeport_lock_conflicts_total",
                "Notifications deferred because another owner held the object's lock",
                &RECONCILER_LABELS,
            ),
            lock_lost_total: counter(
                r,
                "threeport_lock_lost_total",
                "Reconciles cancelled because their lock was taken over",
                &RECONCILER_LABELS,
            ),
            lock_takeovers_total: counter(
                r,
                "threeport_lock_takeovers_total",
                "Locks taken from an owner that is gone (dead replica, own leftover, or no heartbeat past the takeover age)",
                &["controller", "reconciler", "holder"],
            ),
            heartbeat_failures_total,
            notifications_terminated_total: counter(
                r,
                "threeport_notifications_terminated_total",
                "Notifications terminated (+TERM) and never redelivered, by reason",
                &["controller", "reconciler", "reason"],
            ),
            queue_latency_seconds: histogram(
                r,
                "threeport_queue_latency_seconds",
                "Time from publish to the start of the first reconcile attempt",
                time_buckets,
            ),
            consumer_pending: gauge(
                r,
                "threeport_consumer_pending",
                "Notifications not yet delivered to the durable consumer",
                &RECONCILER_LABELS,
            ),
            consumer_ack_pending: gauge(
                r,
                "threeport_consumer_ack_pending",
                "Notifications delivered but not yet acknowledged",
                &RECONCILER_LABELS,
            ),
            nats_connected,
            nats_events_total: counter(
                r,
                "threeport_nats_events_total",
                "NATS connection events (connected, disconnected, ...)",
                &["event"],
            ),
            api_requests_total: counter(
                r,
                "threeport_api_requests_total",
                "Threeport API requests by method, route template and status code",
                &["method", "route", "code"],
            ),
            event_record_failures_total,
            resync: ResyncFamilies::new(r),
            registry,
        }
    }

    /// Create every series of one reconciler at 0.
    pub fn init_reconciler(&self, controller: &str, reconciler: &str, workers: usize) {
        let l = [controller, reconciler];
        for result in RESULTS {
            self.reconcile_total
                .with_label_values(&[controller, reconciler, result]);
        }
        for reason in PoisonReason::ALL {
            self.notifications_terminated_total.with_label_values(&[
                controller,
                reconciler,
                reason.as_str(),
            ]);
        }
        self.notifications_terminated_total.with_label_values(&[
            controller,
            reconciler,
            TERMINATION_MAX_ATTEMPTS,
        ]);
        self.reconcile_errors_total.with_label_values(&l);
        self.reconcile_permanent_errors_total.with_label_values(&l);
        self.reconcile_time_seconds.with_label_values(&l);
        self.queue_latency_seconds.with_label_values(&l);
        self.active_workers.with_label_values(&l);
        self.lock_conflicts_total.with_label_values(&l);
        self.lock_lost_total.with_label_values(&l);
        for holder in TAKEOVER_HOLDERS {
            self.lock_takeovers_total
                .with_label_values(&[controller, reconciler, holder]);
        }
        self.consumer_pending.with_label_values(&l);
        self.consumer_ack_pending.with_label_values(&l);
        self.max_concurrent_reconciles
            .with_label_values(&l)
            .set(workers as i64);
    }

    /// Create, at 0, the API request series the engine itself produces for one object type
    /// (GET latest, PATCH completion, final DELETE), so dashboards have series before traffic.
    pub fn init_api_routes(&self, object_path: &str) {
        let route = format!("/v0/{object_path}/{{id}}");
        for method in ["GET", "PATCH", "DELETE"] {
            self.api_requests_total
                .with_label_values(&[method, &route, "200"]);
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metrics.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Metric handles of one reconciler, resolved once so the hot path does no label lookups.
#[derive(Clone)]
pub struct ReconcilerMetrics {
    /// `threeport_reconcile_total{result="success"}`.
    pub success: IntCounter,
    /// `threeport_reconcile_total{result="error"}`.
    pub error: IntCounter,
    /// `threeport_reconcile_total{result="requeue"}`.
    pub requeue: IntCounter,
    /// `threeport_reconcile_total{result="not_found"}`.
    pub not_found: IntCounter,
    /// `threeport_reconcile_errors_total`.
    pub errors: IntCounter,
    /// `threeport_reconcile_permanent_errors_total`.
    pub permanent_errors: IntCounter,
    /// `threeport_reconcile_time_seconds`.
    pub time: Histogram,
    /// `threeport_queue_latency_seconds`.
    pub queue_latency: Histogram,
    /// `threeport_active_workers`.
    pub active: IntGauge,
    /// `threeport_lock_conflicts_total`.
    pub lock_conflicts: IntCounter,
    /// `threeport_lock_lost_total`.
    pub lock_lost: IntCounter,
    /// `threeport_lock_takeovers_total`, all `holder` values (see [`Self::takeover`]).
    lock_takeovers: IntCounterVec,
    /// `threeport_consumer_pending`.
    pub pending: IntGauge,
    /// `threeport_consumer_ack_pending`.
    pub ack_pending: IntGauge,
    /// `threeport_resync_superseded_total`.
    pub resync_superseded: IntCounter,
    terminated: IntCounterVec,
    labels: [String; 2],
}

impl ReconcilerMetrics {
    /// The handles of `reconciler` of `controller` in `m`.
    pub fn new(m: &Metrics, controller: &str, reconciler: &str) -> Self {
        let l = [controller, reconciler];
        let r = |result| {
            m.reconcile_total
                .with_label_values(&[controller, reconciler, result])
        };
        Self {
            success: r("success"),
            error: r("error"),
            requeue: r("requeue"),
            not_found: r("not_found"),
            errors: m.reconcile_errors_total.with_label_values(&l),
            permanent_errors: m.reconcile_permanent_errors_total.with_label_values(&l),
            time: m.reconcile_time_seconds.with_label_values(&l),
            queue_latency: m.queue_latency_seconds.with_label_values(&l),
            active: m.active_workers.with_label_values(&l),
            lock_conflicts: m.lock_conflicts_total.with_label_values(&l),
            lock_lost: m.lock_lost_total.with_label_values(&l),
            lock_takeovers: m.lock_takeovers_total.clone(),
            pending: m.consumer_pending.with_label_values(&l),
            ack_pending: m.consumer_ack_pending.with_label_values(&l),
            resync_superseded: m.resync.superseded_total.with_label_values(&[reconciler]),
            terminated: m.notifications_terminated_total.clone(),
            labels: [controller.to_string(), reconciler.to_string()],
        }
    }

    /// Count one attempt under its `result` label (see [`RESULTS`]); other values are ignored.
    pub fn result(&self, result: &str) {
        match result {
            "success" => self.success.inc(),
            "error" => self.error.inc(),
            "requeue" => self.requeue.inc(),
            "not_found" => self.not_found.inc(),
            _ => {}
        }
    }

    /// Count one lock taken over from a `holder` (one of [`TAKEOVER_HOLDERS`]).
    pub fn takeover(&self, holder: &str) {
        self.lock_takeovers
            .with_label_values(&[&self.labels[0], &self.labels[1], holder])
            .inc();
    }

    /// Count one terminated notification under `reason` (a poison reason or
    /// [`TERMINATION_MAX_ATTEMPTS`]).
    pub fn terminated(&self, reason: &str) {
        self.terminated
            .with_label_values(&[&self.labels[0], &self.labels[1], reason])
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_preinitialised() {
        let m = Metrics::new();
        m.init_reconciler("workload", "WorkloadInstanceReconciler", 4);
        let text = m.render();
        for result in RESULTS {
            assert!(text.contains(&format!(
                "threeport_reconcile_total{{controller=\"workload\",reconciler=\"WorkloadInstanceReconciler\",result=\"{result}\"}} 0"
            )), "{result}\n{text}");
        }
        for reason in PoisonReason::ALL {
            assert!(text.contains(&format!("reason=\"{}\"", reason.as_str())));
        }
        assert!(text.contains("threeport_max_concurrent_reconciles{controller=\"workload\",reconciler=\"WorkloadInstanceReconciler\"} 4"));
        m.resync.init("WorkloadInstanceReconciler");
        let resync = m.render();
        for series in [
            "threeport_resync_runs_total{reconciler=\"WorkloadInstanceReconciler\",result=\"error\"} 0",
            "threeport_resync_renotified_total{reconciler=\"WorkloadInstanceReconciler\"} 0",
            "threeport_resync_skipped_total{reason=\"pending\",reconciler=\"WorkloadInstanceReconciler\"} 0",
            "threeport_resync_last_run_timestamp_seconds{reconciler=\"WorkloadInstanceReconciler\"} 0",
            "threeport_resync_leader{reconciler=\"WorkloadInstanceReconciler\"} 0",
            "threeport_resync_superseded_total{reconciler=\"WorkloadInstanceReconciler\"} 0",
            "threeport_resync_duration_seconds_bucket",
        ] {
            assert!(resync.contains(series), "{series} missing");
        }
        m.init_api_routes("workload-instances");
        assert!(m.render().contains(
            "threeport_api_requests_total{code=\"200\",method=\"PATCH\",route=\"/v0/workload-instances/{id}\"} 0"
        ));
        for name in [
            "threeport_lock_conflicts_total",
            "threeport_lock_lost_total",
            "threeport_lock_takeovers_total{controller=\"workload\",holder=\"dead_replica\",reconciler=\"WorkloadInstanceReconciler\"} 0",
            "threeport_heartbeat_failures_total 0",
            "threeport_active_workers",
            "threeport_consumer_pending",
            "threeport_consumer_ack_pending",
            "threeport_nats_connected",
            "threeport_reconcile_time_seconds_bucket",
            "threeport_queue_latency_seconds_bucket",
            "threeport_reconcile_errors_total",
            "threeport_reconcile_permanent_errors_total",
            "threeport_build_info{",
            "process_resident_memory_bytes",
            "process_cpu_seconds_total",
            "process_open_fds",
            "process_start_time_seconds",
        ] {
            assert!(text.contains(name), "{name} missing");
        }
    }
}
