//! The command line: `threeport-manager [FLAGS] [run|list|check-config]`.
//!
//! Parsing (clap derive), the `list` and `check-config` renderings, and logging set-up. `main`
//! stays thin: it parses, loads the config with the process environment, and dispatches here.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::config::{
    CliOverrides, Config, ConfigError, LoadSources, LogConfig, LogFormat, TelemetryConfig,
};
use crate::registry::{ControllerSpec, CONTROLLERS};

/// Exit status for an invalid configuration or invalid flags (clap uses 2 for usage errors).
pub const EXIT_INVALID_CONFIG: u8 = 2;
/// Exit status when the manager fails at start-up or while running.
pub const EXIT_RUNTIME_ERROR: u8 = 1;

/// One process that runs Threeport's controllers, wire-compatible with the Go controllers.
#[derive(Debug, Parser)]
#[command(name = "threeport-manager", version = crate::VERSION, about, long_about = None)]
#[command(after_help = "\
Configuration is layered: built-in defaults < --config file < environment < flags.
Threeport's environment names work unchanged (API_SERVER, AUTH_ENABLED, MSG_BROKER_HOST,
MSG_BROKER_PORT, MSG_BROKER_USER, MSG_BROKER_PASSWORD, ENCRYPTION_KEY, VERBOSE,
<X>_CONCURRENT_RECONCILES); every key can also be set as THREEPORT_MANAGER__<SECTION>__<KEY>,
e.g. THREEPORT_MANAGER__ENGINE__BACKOFF_CAP=2m. Invalid configuration exits with status 2.")]
pub struct Cli {
    /// The flags that may appear anywhere on the command line.
    #[command(flatten)]
    pub global: GlobalArgs,

    /// The subcommand; `None` runs the manager.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags accepted before or after the subcommand.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// Config file (TOML or YAML, by extension).
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "THREEPORT_MANAGER_CONFIG"
    )]
    pub config: Option<PathBuf>,

    /// Controllers to run: comma list of `*` (every implemented one), `name`, `-name`; the
    /// first entry naming a controller wins. Default `*`.
    #[arg(long, global = true, value_name = "LIST", allow_hyphen_values = true)]
    pub enable: Option<String>,

    /// Threeport API `host[:port]`, without a scheme (api.server).
    #[arg(long, global = true, value_name = "HOST[:PORT]")]
    pub api_server: Option<String>,

    /// NATS server URL; repeat for several (nats.urls).
    #[arg(long = "nats-url", global = true, value_name = "URL")]
    pub nats_urls: Vec<String>,

    /// Admin HTTP listen address (admin.listen), default 0.0.0.0:8081.
    #[arg(long, global = true, value_name = "ADDR")]
    pub admin_listen: Option<String>,

    /// Log format (log.format).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,

    /// Log filter directive, e.g. `info` or `info,threeport_manager::engine=debug` (log.level).
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,

    /// Grace period for in-flight reconciles after SIGTERM, e.g. `25s` (shutdown_timeout).
    #[arg(long, global = true, value_name = "DURATION")]
    pub shutdown_timeout: Option<String>,

    /// Workers per reconciler unless configured per reconciler
    /// (reconcilers.default_concurrency).
    #[arg(long, global = true, value_name = "N")]
    pub concurrency: Option<usize>,
}

/// What to do: run, or one of the inspection commands that exit at once.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Run the manager (the default when no subcommand is given).
    Run,
    /// List every Threeport controller and reconciler this manager knows.
    List {
        /// How to print the list.
        #[arg(long, value_enum, default_value_t = ListOutput::Table)]
        output: ListOutput,
    },
    /// Load and validate the configuration, print it (secrets redacted) and what is enabled.
    CheckConfig {
        /// How to print the configuration.
        #[arg(long, value_enum, default_value_t = ConfigOutput::Toml)]
        output: ConfigOutput,
    },
    /// helm's post-renderer for the helm-workload controller: reads the rendered chart on
    /// stdin, prints it labelled with the additional resources appended. Run by helm.
    #[command(hide = true)]
    HelmPostRender {
        /// The release's post-render spec (JSON), written by the reconcile.
        #[arg(long)]
        spec: std::path::PathBuf,
    },
}

/// How `list` prints the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListOutput {
    /// Aligned columns, for people: controllers, then reconcilers (the default).
    Table,
    /// A JSON array of controllers with their reconcilers, for scripts.
    Json,
}

/// How `check-config` prints the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConfigOutput {
    /// The effective configuration as TOML, what is enabled as comments (the default).
    Toml,
    /// A JSON object of the configuration and the enabled reconcilers, for scripts.
    Json,
}

impl Cli {
    /// The subcommand, `run` when none was given.
    pub fn command(&self) -> Command {
        self.command.clone().unwrap_or(Command::Run)
    }

    /// The flags that override configuration keys.
    pub fn overrides(&self) -> CliOverrides {
        let g = &self.global;
        CliOverrides {
            enable: g.enable.clone(),
            api_server: g.api_server.clone(),
            nats_urls: g.nats_urls.clone(),
            admin_listen: g.admin_listen.clone(),
            log_format: g.log_format,
            log_level: g.log_level.clone(),
            shutdown_timeout: g.shutdown_timeout.clone(),
            concurrency: g.concurrency,
        }
    }

    /// Everything [`Config::load`] needs, with the given environment.
    pub fn load_sources(&self, env: HashMap<String, String>) -> LoadSources {
        LoadSources {
            file: self.global.config.clone(),
            env,
            overrides: self.overrides(),
        }
    }
}

/// The process environment as a map; variables that are not valid UTF-8 are skipped.
pub fn process_env() -> HashMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// The message printed on stderr for an invalid configuration.
pub fn invalid_config_message(e: &ConfigError) -> String {
    format!("threeport-manager: invalid configuration: {e}")
}

// ---------------------------------------------------------------------------------------------
// list
// ---------------------------------------------------------------------------------------------

/// `threeport-manager list`.
pub fn render_list(output: ListOutput) -> String {
    render_list_of(CONTROLLERS, output)
}

/// `list` for any table (tests use their own).
pub fn render_list_of(table: &[ControllerSpec], output: ListOutput) -> String {
    match output {
        ListOutput::Json => {
            let v: Vec<serde_json::Value> = table.iter().map(controller_json).collect();
            let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
            s.push('\n');
            s
        }
        ListOutput::Table => {
            let mut out = String::new();
            let rows: Vec<Vec<String>> = std::iter::once(
                [
                    "CONTROLLER",
                    "IMPLEMENTED",
                    "STREAM",
                    "LOCK BUCKET",
                    "REPORTING CONTROLLER",
                ]
                .map(String::from)
                .to_vec(),
            )
            .chain(table.iter().map(|c| {
                vec![
                    c.name.to_string(),
                    if c.implemented() { "yes" } else { "no" }.to_string(),
                    c.stream.to_string(),
                    c.lock_bucket.to_string(),
                    c.reporting_controller.to_string(),
                ]
            }))
            .collect();
            out.push_str(&align(&rows, ""));
            out.push('\n');
            let mut rec_rows = vec![[
                "CONTROLLER",
                "RECONCILER",
                "OBJECT",
                "API PATH",
                "FILTER SUBJECT",
                "DURABLE CONSUMER",
                "CONCURRENCY ENV",
            ]
            .map(String::from)
            .to_vec()];
            for c in table {
                for r in c.reconcilers {
                    rec_rows.push(vec![
                        c.name.to_string(),
                        r.name.to_string(),
                        r.object.name.to_string(),
                        r.object.collection_path(),
                        r.filter_subject(),
                        r.durable_name(),
                        r.concurrency_env.to_string(),
                    ]);
                }
            }
            out.push_str(&align(&rec_rows, ""));
            out
        }
    }
}

fn controller_json(c: &ControllerSpec) -> serde_json::Value {
    json!({
        "name": c.name,
        "implemented": c.implemented(),
        "stream": c.stream,
        "stream_subjects": c.stream_subjects(),
        "lock_bucket": c.lock_bucket,
        "reporting_controller": c.reporting_controller,
        "reconcilers": c.reconcilers.iter().map(|r| json!({
            "name": r.name,
            "object_type": r.object.name,
            "api_path": r.object.collection_path(),
            "filter_subject": r.filter_subject(),
            "durable_consumer": r.durable_name(),
            "concurrency_env": r.concurrency_env,
        })).collect::<Vec<_>>(),
    })
}

/// Left-aligned columns separated by two spaces; no trailing spaces.
fn align(rows: &[Vec<String>], indent: &str) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::from(indent);
        for (i, cell) in row.iter().enumerate() {
            if i + 1 < row.len() {
                let _ = write!(line, "{cell:<w$}  ", w = widths[i]);
            } else {
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------------------------
// check-config
// ---------------------------------------------------------------------------------------------

/// `threeport-manager check-config`: the effective config (redacted) and what it enables.
pub fn render_check_config(config: &Config, output: ConfigOutput) -> Result<String, ConfigError> {
    let enabled = config.enabled_controllers()?;
    match output {
        ConfigOutput::Json => {
            let enabled: Vec<serde_json::Value> = enabled
                .iter()
                .map(|c| {
                    json!({
                        "controller": c.name,
                        "reconcilers": c.reconcilers.iter().map(|r| json!({
                            "name": r.name,
                            "concurrency": config.concurrency_for(r.name),
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let v = json!({ "config": config.redacted_json(), "enabled": enabled });
            let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
            s.push('\n');
            Ok(s)
        }
        ConfigOutput::Toml => {
            let mut out =
                String::from("# threeport-manager effective configuration (secrets redacted)\n");
            out.push_str(&config.to_effective_toml());
            out.push('\n');
            if enabled.is_empty() {
                let implemented: Vec<&str> = CONTROLLERS
                    .iter()
                    .filter(|c| c.implemented())
                    .map(|c| c.name)
                    .collect();
                let _ = writeln!(
                    out,
                    "# enabled controllers: none (implemented: {})",
                    if implemented.is_empty() {
                        "none".to_string()
                    } else {
                        implemented.join(", ")
                    }
                );
            } else {
                out.push_str("# enabled controllers:\n");
                for c in &enabled {
                    let _ = writeln!(
                        out,
                        "#   {} (stream {}, lock bucket {})",
                        c.name, c.stream, c.lock_bucket
                    );
                    for r in c.reconcilers {
                        let _ = writeln!(
                            out,
                            "#     {}: concurrency {}",
                            r.name,
                            config.concurrency_for(r.name)
                        );
                    }
                }
            }
            Ok(out)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// logging
// ---------------------------------------------------------------------------------------------

/// Install the global tracing subscriber: JSON lines or pretty text on stderr, filtered by
/// `log.level`, plus OpenTelemetry trace export when `telemetry.otlp_endpoint` is set (see
/// [`crate::runtime::telemetry`]). Fails if the directive does not parse or a subscriber is
/// already set. Keep the guard until the manager has stopped, then shut it down to flush.
pub fn init_tracing(
    log: &LogConfig,
    telemetry: &TelemetryConfig,
) -> Result<crate::runtime::telemetry::TelemetryGuard, String> {
    crate::runtime::telemetry::init(log, telemetry)
}
