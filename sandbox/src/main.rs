//! `threeport-sandbox`: the sandbox Threeport API as a standalone process.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use sandbox::threeport::{SandboxApi, SandboxOptions};

#[derive(Debug, Parser)]
#[command(
    name = "threeport-sandbox",
    about = "A local fake of Threeport's REST API"
)]
struct Args {
    /// Address to listen on (loopback recommended).
    #[arg(long, default_value = "127.0.0.1:1323")]
    listen: SocketAddr,
    /// NATS URL; when set, create the streams and publish notifications.
    #[arg(long, env = "NATS_URL")]
    nats_url: Option<String>,
    /// NATS user (with --nats-password).
    #[arg(long, env = "NATS_USER")]
    nats_user: Option<String>,
    /// NATS password.
    #[arg(long, env = "NATS_PASSWORD", hide_env_values = true)]
    nats_password: Option<String>,
    /// Serve HTTPS requiring client certificates (mTLS).
    #[arg(long)]
    tls: bool,
    /// Where to write ca/tls.crt, cert/tls.crt and cert/tls.key (default: a temporary dir).
    #[arg(long)]
    tls_dir: Option<PathBuf>,
    /// Threeport's ENCRYPTION_KEY (standard base64 AES key).
    #[arg(long, env = "ENCRYPTION_KEY", hide_env_values = true)]
    encryption_key: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let nats_user_password = match (args.nats_user, args.nats_password) {
        (Some(u), Some(p)) => Some((u, p)),
        _ => None,
    };
    let handle = SandboxApi::start(SandboxOptions {
        listen: args.listen,
        nats_url: args.nats_url,
        nats_user_password,
        tls: args.tls,
        tls_dir: args.tls_dir,
        encryption_key: args.encryption_key.filter(|k| !k.is_empty()),
    })
    .await?;
    match handle.tls_files() {
        Some(t) => println!(
            "threeport-sandbox listening on {} (tls dir {})",
            handle.base_url(),
            t.dir.display()
        ),
        None => println!("threeport-sandbox listening on {}", handle.base_url()),
    }
    use std::io::Write;
    std::io::stdout().flush()?;

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    handle.shutdown().await;
    Ok(())
}
