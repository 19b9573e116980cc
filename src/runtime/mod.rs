//! Process wiring: NATS connection, Threeport API client, engine, admin HTTP server, signals.
//!
//! [`Manager::start`] brings everything up and returns at once (NATS connects in the
//! background; readiness says when it is there); [`run`] is what `main` calls: start, wait for
//! a signal, shut down in order.

pub mod admin;
pub mod nats;
pub mod signals;
pub mod telemetry;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tracing::{info, warn};

use crate::config::Config;
use crate::engine::metrics::Metrics;
use crate::engine::resync::ResyncSettings;
use crate::engine::{
    Binding, Engine, EngineDeps, EngineSettings, EventSink, RetryPolicy, ShutdownOutcome,
};
use crate::health::Readiness;
use crate::threeport::client::{ApiClientConfig, ThreeportClient};
use crate::threeport::events::{EventRecorder, EventType};
use crate::threeport::{ObjectType, ThreeportApi};

/// How long cancelled reconciles get to NAK and release their locks after the shutdown timeout.
const ABORT_GRACE: Duration = Duration::from_secs(5);

/// Errors that stop the manager at start-up. Each layer's message appears once: a variant
/// either adds context and keeps the cause as its source, or is transparent.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The admin HTTP server could not bind its address (the cause follows in the chain).
    #[error("admin.listen: cannot listen on {addr}")]
    AdminListen {
        /// The configured `admin.listen`.
        addr: SocketAddr,
        /// The bind error (address in use, permission denied, ...).
        source: std::io::Error,
    },
    /// The NATS options are invalid (a URL, the creds file) or the client could not start.
    #[error(transparent)]
    Nats(#[from] nats::NatsError),
    /// The Threeport API client could not be built (server address, certificate files).
    #[error("Threeport API client")]
    Api(#[from] crate::threeport::ApiError),
    /// The configuration enables controllers that cannot be enabled.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Anything else that stops start-up, e.g. an enabled controller without an implementation.
    #[error("{0}")]
    Startup(String),
}

/// Hooks for tests and benchmarks: run extra reconcilers, or talk to another API.
#[derive(Default)]
pub struct ManagerOptions {
    /// Replace the reconcilers chosen by the config (e.g. a test reconciler).
    pub bindings: Option<Vec<Binding>>,
    /// Replace the Threeport API client built from the config.
    pub api: Option<Arc<dyn ThreeportApi>>,
}

/// A running manager.
pub struct Manager {
    /// This process's UUID, new at every start: the value of every lock it takes, logged at
    /// start-up.
    pub instance_id: uuid::Uuid,
    admin: admin::AdminServer,
    engine: Engine,
    client: async_nats::Client,
    readiness: Readiness,
    metrics: Metrics,
    shutdown_timeout: Duration,
}

/// The engine settings of a config.
pub fn engine_settings(config: &Config) -> EngineSettings {
    let e = &config.engine;
    EngineSettings {
        retry: RetryPolicy {
            backoff: crate::engine::backoff::Backoff::new(e.backoff_base, e.backoff_cap),
            max_poison_attempts: u64::from(e.max_poison_attempts),
            max_reconcile_attempts: u64::from(e.max_reconcile_attempts),
            lock_conflict_delay: e.lock_conflict_delay,
            lock_reclaim_after: e.lock_reclaim_after,
            lock_takeover_after: e.lock_takeover_after,
        },
        lock_renew_interval: e.lock_renew_interval,
        heartbeat_interval: e.heartbeat_interval,
        progress_interval: e.progress_interval,
        fetch_expires: e.fetch_expires,
    }
}

/// The resync settings of a config, `None` when it is turned off.
pub fn resync_settings(config: &Config) -> Option<ResyncSettings> {
    let r = &config.resync;
    r.enabled.then(|| ResyncSettings {
        interval: r.interval,
        jitter: r.jitter,
        grace: r.grace,
        page_size: u64::from(r.page_size),
    })
}

/// The reconcilers the config enables, with their worker counts.
pub fn configured_bindings(config: &Config) -> Result<Vec<Binding>, RuntimeError> {
    let mut out = Vec::new();
    let controllers = config.enabled_controllers()?;
    if controllers.is_empty() {
        return Ok(out);
    }
    let deps =
        crate::reconcilers::ReconcilerDeps::from_config(config).map_err(RuntimeError::Startup)?;
    for controller in controllers {
        let implementation =
            crate::reconcilers::implementation(controller.name).ok_or_else(|| {
                RuntimeError::Startup(format!("controller {} is not implemented", controller.name))
            })?;
        // One handler per registry reconciler, in the registry's order (a unit test of
        // `reconcilers` checks the two agree).
        let mut built = (implementation.reconcilers)(&deps);
        for reconciler in controller.reconcilers {
            let at = built
                .iter()
                .position(|r| r.name == reconciler.name)
                .ok_or_else(|| {
                    RuntimeError::Startup(format!(
                        "controller {} has no implementation of {}",
                        controller.name, reconciler.name
                    ))
                })?;
            out.push(Binding {
                controller,
                reconciler,
                handler: built.swap_remove(at).handler,
                workers: config.concurrency_for(reconciler.name),
            });
        }
    }
    Ok(out)
}

/// Records Threeport events through the API (spec 1.10).
struct ApiEvents {
    api: Arc<dyn ThreeportApi>,
}

#[async_trait]
impl EventSink for ApiEvents {
    async fn record(
        &self,
        reporting_controller: &str,
        object: ObjectType,
        id: u64,
        reason: &str,
        note: &str,
        warning: bool,
    ) -> Result<(), String> {
        let kind = if warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        EventRecorder::new(self.api.clone(), reporting_controller)
            .record(object, id, reason, note, kind)
            .await
            .map_err(|e| e.to_string())
    }
}

impl Manager {
    /// Start the admin server, NATS, the API client and the engine.
    pub async fn start(config: Config, opts: ManagerOptions) -> Result<Manager, RuntimeError> {
        let instance_id = uuid::Uuid::new_v4();
        let metrics = Metrics::new();
        let readiness = Readiness::new();
        let nats_ready = readiness.register("nats");

        let bindings = match opts.bindings {
            Some(b) => b,
            None => configured_bindings(&config)?,
        };
        let api: Arc<dyn ThreeportApi> = match opts.api {
            Some(api) => api,
            None => Arc::new(ThreeportClient::new(
                &ApiClientConfig {
                    server: config.api.server.clone(),
                    auth_enabled: config.api.auth_enabled,
                    cert_file: config.api.cert_file.clone(),
                    key_file: config.api.key_file.clone(),
                    ca_file: config.api.ca_file.clone(),
                    connect_timeout: config.api.connect_timeout,
                    request_timeout: config.api.request_timeout,
                },
                Some(metrics.api_requests_total.clone()),
            )?),
        };

        // Admin first, so probes get a 503 (not a refused connection) while NATS comes up.
        let admin = admin::AdminServer::start(
            config.admin.listen,
            admin::AdminState {
                readiness: readiness.clone(),
                metrics: metrics.clone(),
                configz: Arc::new(config.redacted_json()),
            },
        )
        .await
        .map_err(|source| RuntimeError::AdminListen {
            addr: config.admin.listen,
            source,
        })?;

        let client = nats::connect(&config.nats, metrics.clone(), nats_ready).await?;
        let js = async_nats::jetstream::new(client.clone());
        let deps = EngineDeps {
            js,
            api: api.clone(),
            events: Arc::new(ApiEvents { api }),
            metrics: metrics.clone(),
            settings: engine_settings(&config),
            instance_id,
            resync: resync_settings(&config),
        };
        let names: Vec<_> = bindings
            .iter()
            .map(|b| format!("{}x{}", b.reconciler.name, b.workers))
            .collect();
        if config.encryption_key.is_none() && !bindings.is_empty() {
            warn!(
                "no encryption key configured (ENCRYPTION_KEY / encryption_key): runtime \
                 credentials that Threeport stores encrypted cannot be used"
            );
        }
        if bindings.is_empty() {
            warn!(
                controllers = %config.controllers.join(","),
                "no controller is enabled: the manager will reconcile nothing (check --enable / controllers)"
            );
        }
        let engine = Engine::start(deps, bindings, &readiness);
        info!(
            version = crate::VERSION,
            %instance_id,
            admin = %admin.addr,
            nats = %config
                .nats
                .urls
                .iter()
                .map(|u| crate::config::redact_url(u.expose()))
                .collect::<Vec<_>>()
                .join(","),
            api_server = %config.api.server,
            reconcilers = %names.join(","),
            // Plain values in JSON logs: a string or absent, never Rust's `None`/`Some(..)`.
            otlp_endpoint = config
                .telemetry
                .otlp_endpoint
                .as_deref()
                .map(crate::config::redact_url),
            "threeport-manager started"
        );
        Ok(Manager {
            instance_id,
            admin,
            engine,
            client,
            readiness,
            metrics,
            shutdown_timeout: config.shutdown_timeout,
        })
    }

    /// The address the admin server is bound to (the real port when configured with port 0).
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.addr
    }

    /// The readiness behind `/readyz`.
    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// The metrics behind `/metrics`.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Graceful shutdown (README, "How a notification is handled"): readiness false, stop pulling, let in-flight reconciles
    /// finish within the shutdown timeout, cancel the rest (NAK + release), drain NATS.
    pub async fn shutdown(self) -> ShutdownOutcome {
        self.readiness.set_shutting_down();
        info!(
            timeout_s = self.shutdown_timeout.as_secs_f64(),
            "shutting down"
        );
        // What the connection was doing when the signal came, for the final log line: a
        // "Drained" shutdown of a manager that never reached NATS drained nothing.
        let nats = match (
            self.client.connection_state(),
            self.metrics
                .nats_events_total
                .with_label_values(&["connected"])
                .get(),
        ) {
            (async_nats::connection::State::Connected, _) => "connected",
            (_, 0) => "never connected",
            _ => "reconnecting",
        };
        let outcome = self
            .engine
            .shutdown(self.shutdown_timeout, ABORT_GRACE)
            .await;
        // Drain flushes pending acks and NAKs before closing.
        if let Err(e) = tokio::time::timeout(Duration::from_secs(5), self.client.drain())
            .await
            .unwrap_or(Ok(()))
        {
            warn!(error = %e, "NATS drain failed");
        }
        self.admin.stop().await;
        info!(?outcome, nats, "shutdown complete");
        outcome
    }
}

/// Run the manager until SIGTERM/SIGINT, then shut down gracefully.
pub async fn run(config: Config) -> Result<(), RuntimeError> {
    let manager = Manager::start(config, ManagerOptions::default()).await?;
    let sig = signals::first_signal().await;
    info!(signal = sig, "signal received");
    // Flip readiness before anything else so the Service stops routing probes to us.
    manager.readiness().set_shutting_down();
    signals::exit_on_second_signal();
    manager.shutdown().await;
    Ok(())
}
