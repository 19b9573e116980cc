//! `threeport-manager`: parse the command line, load the configuration, dispatch.
//!
//! Exit status: 0 on success (and after a clean shutdown), 1 when the manager fails at start-up
//! or while running, 2 for invalid configuration or flags (an admin address already in use
//! included).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use threeport_manager::cli::{self, Cli, Command, EXIT_INVALID_CONFIG, EXIT_RUNTIME_ERROR};
use threeport_manager::config::Config;
use threeport_manager::runtime::telemetry::SHUTDOWN_FLUSH_TIMEOUT;
use threeport_manager::runtime::RuntimeError;

fn main() -> ExitCode {
    // clap prints help/version (exit 0) and usage errors (exit 2) itself.
    let cli = Cli::parse();
    let command = cli.command();

    if let Command::List { output } = command {
        print!("{}", cli::render_list(output));
        return ExitCode::SUCCESS;
    }
    // Run by helm, with no configuration: nothing but stdin, the spec file and stdout.
    if let Command::HelmPostRender { spec } = &command {
        return match helm_post_render(spec) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("threeport-manager helm-post-render: {e:#}");
                ExitCode::from(EXIT_RUNTIME_ERROR)
            }
        };
    }

    let config = match Config::load(&cli.load_sources(cli::process_env())) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{}", cli::invalid_config_message(&e));
            return ExitCode::from(EXIT_INVALID_CONFIG);
        }
    };

    match command {
        Command::CheckConfig { output } => match cli::render_check_config(&config, output) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}", cli::invalid_config_message(&e));
                ExitCode::from(EXIT_INVALID_CONFIG)
            }
        },
        Command::Run | Command::List { .. } | Command::HelmPostRender { .. } => match run(config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("threeport-manager: {e:#}");
                // A configured address that cannot be used is the configuration's fault.
                let config_fault = e.chain().any(|c| {
                    matches!(
                        c.downcast_ref::<RuntimeError>(),
                        Some(RuntimeError::AdminListen { .. } | RuntimeError::Config(_))
                    )
                });
                ExitCode::from(if config_fault {
                    EXIT_INVALID_CONFIG
                } else {
                    EXIT_RUNTIME_ERROR
                })
            }
        },
    }
}

fn run(config: Config) -> anyhow::Result<()> {
    let telemetry =
        cli::init_tracing(&config.log, &config.telemetry).map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("threeport-manager")
        .build()
        .context("cannot start the tokio runtime")?;
    let result = runtime.block_on(threeport_manager::runtime::run(config));
    // The manager has stopped: export the last spans (bounded), whatever the outcome.
    telemetry.shutdown(SHUTDOWN_FLUSH_TIMEOUT);
    result?;
    Ok(())
}

/// `helm-post-render --spec FILE`: the rendered chart from stdin, post-rendered to stdout.
fn helm_post_render(spec_file: &std::path::Path) -> anyhow::Result<()> {
    use std::io::{Read as _, Write as _};
    use threeport_manager::reconcilers::helm_workload::post_render::{post_render, PostRenderSpec};
    let spec: PostRenderSpec = serde_json::from_slice(
        &std::fs::read(spec_file).with_context(|| format!("read {}", spec_file.display()))?,
    )
    .with_context(|| format!("{} is not a post-render spec", spec_file.display()))?;
    let mut rendered = String::new();
    std::io::stdin()
        .read_to_string(&mut rendered)
        .context("read the rendered chart from stdin")?;
    let out = post_render(&rendered, &spec)?;
    std::io::stdout()
        .write_all(out.as_bytes())
        .context("write to stdout")?;
    Ok(())
}
