//! Logging and OpenTelemetry trace export.
//!
//! [`init`] installs the global tracing subscriber: the log layer (JSON or pretty, filtered by
//! `log.level`) and, when `telemetry.otlp_endpoint` is set, an OpenTelemetry layer that exports
//! spans over OTLP/HTTP (protobuf). The two layers have independent per-layer filters, so the
//! `threeport_api` debug spans are exported while the log shows only `info`:
//!
//! - spans are exported when their target is under `threeport_manager` (or `kube_client`,
//!   whose HTTP spans follow the OpenTelemetry conventions) at `debug` or above: the
//!   `reconcile` span, its `threeport_api` children, and any later span such as `kube_api`
//!   created inside a reconcile;
//! - events of those targets at `info` or above become span events (warnings and errors on the
//!   reconcile span);
//! - nothing else (hyper, async-nats, the exporter itself) reaches the exporter, so exporting
//!   cannot feed back into more spans.
//!
//! Export runs off the manager's runtime: the SDK's batch processor has its own thread, and its
//! HTTP requests run on a one-worker tokio runtime owned by the exporter. A slow or unreachable
//! collector therefore never blocks reconciles; the batch queue drops spans when full and the
//! SDK logs failed exports as warnings. [`TelemetryGuard::shutdown`] flushes what is left, with
//! a time bound, after the manager has stopped.
//!
//! With no endpoint configured there is no OpenTelemetry layer at all.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing::level_filters::LevelFilter;
use tracing::{Level, Metadata};
use tracing_subscriber::filter::{filter_fn, FilterExt as _, FilterFn};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{redact_url, LogConfig, LogFormat, TelemetryConfig};

/// The path OTLP/HTTP receivers accept traces on.
pub const TRACES_PATH: &str = "/v1/traces";
/// How long one export request may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default bound on the final flush at shutdown.
pub const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Keeps the trace pipeline alive; flush it at shutdown with [`TelemetryGuard::shutdown`].
#[must_use = "dropping the guard shuts trace export down"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl std::fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryGuard")
            .field("exporting", &self.is_exporting())
            .finish()
    }
}

impl TelemetryGuard {
    /// A guard with no exporter (no endpoint configured).
    pub fn disabled() -> Self {
        Self { provider: None }
    }

    /// Whether spans are exported.
    pub fn is_exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Export every finished span now. Blocks until the exporter answers (bounded by the export
    /// timeout); call it from a blocking context (e.g. `spawn_blocking`), not a runtime worker.
    pub fn force_flush(&self) -> Result<(), String> {
        match &self.provider {
            Some(p) => p.force_flush().map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    /// Flush the remaining spans and stop the exporter, waiting at most `timeout`. Blocking:
    /// call it after the manager's runtime work is done.
    pub fn shutdown(mut self, timeout: Duration) {
        if let Some(p) = self.provider.take() {
            if let Err(e) = p.shutdown_with_timeout(timeout) {
                tracing::warn!(error = %e, "trace export did not shut down cleanly");
            }
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown_with_timeout(SHUTDOWN_FLUSH_TIMEOUT);
        }
    }
}

/// Install the global subscriber: logs per `log`, traces per `telemetry`. Fails if the log
/// directive does not parse or a subscriber is already set. If the exporter cannot be built
/// (e.g. no CA certificates for an `https` endpoint) the manager runs without trace export
/// and logs why; traces never stop it from reconciling.
pub fn init(log: &LogConfig, telemetry: &TelemetryConfig) -> Result<TelemetryGuard, String> {
    let filter = EnvFilter::builder()
        .parse(&log.level)
        .map_err(|e| format!("log.level: {e}"))?
        .and(dependencies_at_info_at_most());
    let fmt_layer = match log.format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .pretty()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
    };

    let (provider, setup_error) = match &telemetry.otlp_endpoint {
        None => (None, None),
        Some(endpoint) => match build_provider(endpoint, telemetry) {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(e)),
        },
    };
    let otel_layer = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("threeport-manager"))
            .with_threads(false)
            .with_filter(export_filter())
    });
    tracing_subscriber::registry()
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()
        .map_err(|e| format!("cannot install the log subscriber: {e}"))?;

    if let Some(endpoint) = &telemetry.otlp_endpoint {
        let endpoint = redact_url(endpoint);
        match setup_error {
            None => {
                opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
                tracing::info!(
                    %endpoint,
                    service_name = %telemetry.service_name,
                    sampling_ratio = telemetry.sampling_ratio,
                    "exporting traces over OTLP/HTTP"
                );
            }
            Some(e) => tracing::warn!(
                %endpoint,
                error = %e,
                "cannot set up OTLP trace export; running without it"
            ),
        }
    }
    Ok(TelemetryGuard { provider })
}

/// Which spans and events reach the OpenTelemetry layer (see the module docs).
/// Dependencies log at info at most, whatever `log.level` says: their debug and trace output
/// includes what must never reach a log (async-nats prints the server URLs it parses and the
/// CONNECT it sends, with user-info and credentials; HTTP clients print request details).
/// The manager's own debug logs carry no secrets by construction (`Secret`, `SecretString`
/// and redacted URLs).
///
/// async-nats is held to warnings, and its connector (which logs a failed connection attempt
/// without naming the server, right before the connection event the manager logs with the
/// servers and the cause) is silent: one line per failure, not two.
fn dependencies_at_info_at_most() -> FilterFn<impl Fn(&Metadata<'_>) -> bool> {
    filter_fn(|meta| {
        let target = meta.target();
        if target.starts_with("threeport_manager") || target.starts_with("sandbox") {
            return true;
        }
        if target.starts_with("async_nats::connector") {
            return false;
        }
        let most_verbose = if target.starts_with("async_nats") {
            tracing::Level::WARN
        } else {
            tracing::Level::INFO
        };
        *meta.level() <= most_verbose
    })
}

fn export_filter() -> FilterFn<impl Fn(&Metadata<'_>) -> bool> {
    filter_fn(|meta| {
        let target = meta.target();
        let ours = target == "threeport_manager" || target.starts_with("threeport_manager::");
        if meta.is_span() {
            (ours || target == "kube_client" || target.starts_with("kube_client::"))
                && *meta.level() <= Level::DEBUG
        } else {
            ours && *meta.level() <= Level::INFO
        }
    })
    .with_max_level_hint(LevelFilter::DEBUG)
}

/// The URL spans are posted to: the endpoint as given if it already ends in `/v1/traces`,
/// otherwise `/v1/traces` appended (OTLP/HTTP's convention for a base endpoint).
pub fn traces_url(endpoint: &str) -> String {
    let trimmed = endpoint.trim_end_matches('/');
    if trimmed.ends_with(TRACES_PATH) {
        trimmed.to_string()
    } else {
        format!("{trimmed}{TRACES_PATH}")
    }
}

fn build_provider(
    endpoint: &str,
    telemetry: &TelemetryConfig,
) -> Result<SdkTracerProvider, String> {
    let https = endpoint.starts_with("https://");
    let client = ExportClient::new(https, telemetry.ca_file.as_deref())?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(traces_url(endpoint))
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| format!("OTLP exporter: {e}"))?;
    let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
        telemetry.sampling_ratio,
    )));
    let resource = Resource::builder()
        .with_service_name(telemetry.service_name.clone())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(sampler)
        .with_resource(resource)
        .build())
}

/// The exporter's HTTP client: hyper + rustls (ring; for `https`, the CA certificates of
/// `telemetry.ca_file`, else the platform's), driven by a dedicated one-worker runtime so that the SDK's batch thread can
/// await it and exports never compete with reconciles for the manager's runtime.
struct ExportClient {
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    runtime: Arc<ExportRuntime>,
}

impl std::fmt::Debug for ExportClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExportClient")
    }
}

#[derive(Debug)]
struct ExportRuntime(Option<tokio::runtime::Runtime>);

impl Drop for ExportRuntime {
    fn drop(&mut self) {
        // Never blocks, even when the last reference goes away inside an async context.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Collector answers are tiny; anything bigger is not read.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

impl ExportClient {
    fn new(https: bool, ca_file: Option<&std::path::Path>) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        // The roots an https endpoint must chain to: telemetry.ca_file, else the platform's
        // (None here). Plain http gets an empty store: it never does a TLS handshake.
        let roots = match (https, ca_file) {
            (true, Some(ca_file)) => Some(
                crate::threeport::client::load_roots(ca_file)
                    .map_err(|e| format!("telemetry.ca_file: {e}"))?,
            ),
            (true, None) => None,
            (false, _) => Some(rustls::RootCertStore::empty()),
        };
        let builder = match roots {
            None => builder
                .with_provider_and_native_roots(provider)
                .map_err(|e| {
                    format!("loading the platform's CA certificates (set telemetry.ca_file): {e}")
                })?,
            Some(roots) => {
                let tls = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| format!("TLS setup: {e}"))?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                builder.with_tls_config(tls)
            }
        };
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(Duration::from_secs(5)));
        let connector = builder.https_or_http().enable_http1().wrap_connector(tcp);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("otlp-export")
            .enable_all()
            .build()
            .map_err(|e| format!("starting the export runtime: {e}"))?;
        let http = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Ok(Self {
            http,
            runtime: Arc::new(ExportRuntime(Some(runtime))),
        })
    }
}

async fn send(
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    request: Request<Bytes>,
) -> Result<Response<Bytes>, HttpError> {
    let (parts, body) = request.into_parts();
    let request = Request::from_parts(parts, Full::new(body));
    let work = async {
        let response = http.request(request).await?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_RESPONSE_BYTES)
            .collect()
            .await?
            .to_bytes();
        Ok::<_, HttpError>(Response::from_parts(parts, body))
    };
    tokio::time::timeout(EXPORT_TIMEOUT, work)
        .await
        .map_err(|_| -> HttpError { format!("no answer within {EXPORT_TIMEOUT:?}").into() })?
}

#[async_trait]
impl HttpClient for ExportClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let Some(rt) = &self.runtime.0 else {
            return Err("export runtime stopped".into());
        };
        rt.spawn(send(self.http.clone(), request))
            .await
            .map_err(|e| -> HttpError { Box::new(e) })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_export_client_trusts_telemetry_ca_file_and_names_it_when_unusable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = rcgen::generate_simple_self_signed(vec!["collector".into()]).expect("CA");
        let good = dir.path().join("ca.crt");
        std::fs::write(&good, ca.cert.pem()).expect("write");
        assert!(ExportClient::new(true, Some(&good)).is_ok());

        let missing = dir.path().join("missing.crt");
        let err = ExportClient::new(true, Some(&missing)).expect_err("missing file");
        assert!(
            err.contains("telemetry.ca_file") && err.contains("missing.crt"),
            "{err}"
        );

        let empty = dir.path().join("empty.crt");
        std::fs::write(&empty, "not a certificate").expect("write");
        let err = ExportClient::new(true, Some(&empty)).expect_err("no certificate");
        assert!(err.contains("no PEM CERTIFICATE block"), "{err}");
    }

    #[test]
    fn traces_url_appends_the_otlp_path_once() {
        assert_eq!(traces_url("http://otel:4318"), "http://otel:4318/v1/traces");
        assert_eq!(
            traces_url("http://otel:4318/"),
            "http://otel:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://otel.example/v1/traces"),
            "https://otel.example/v1/traces"
        );
    }

    #[test]
    fn disabled_guard_flushes_and_shuts_down() {
        let g = TelemetryGuard::disabled();
        assert!(!g.is_exporting());
        assert!(g.force_flush().is_ok());
        g.shutdown(Duration::from_millis(10));
    }

    #[test]
    fn an_unreachable_collector_fails_the_flush_quickly_and_nothing_panics() {
        use opentelemetry::trace::{Tracer as _, TracerProvider as _};
        // Port 9 (discard) on loopback: connection refused.
        let telemetry = TelemetryConfig {
            otlp_endpoint: Some("http://127.0.0.1:9".into()),
            ..TelemetryConfig::default()
        };
        let provider = build_provider("http://127.0.0.1:9", &telemetry).expect("provider");
        provider.tracer("test").in_span("lost", |_| {});
        let started = std::time::Instant::now();
        assert!(provider.force_flush().is_err(), "the export failed");
        assert!(started.elapsed() < EXPORT_TIMEOUT);
        let guard = TelemetryGuard {
            provider: Some(provider),
        };
        guard.shutdown(Duration::from_secs(2));
    }
}
