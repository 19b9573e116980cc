//! `threeport-sandbox`: the sandbox Threeport API as a standalone process.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use sandbox::kube::{KubeSandbox, KubeSandboxHandle, KubeSandboxOptions, RuntimeAuth};
use sandbox::threeport::{SandboxApi, SandboxHandle, SandboxOptions};

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
    /// Threeport's ENCRYPTION_KEY (standard base64 AES key). With `--kube`, the registered
    /// runtime's client key is stored encrypted with it, as Threeport does.
    #[arg(long, env = "ENCRYPTION_KEY", hide_env_values = true)]
    encryption_key: Option<String>,
    /// Also start the Kubernetes API sandbox (TLS, client certificates) with the
    /// ThreeportWorkload CRD installed, and register it in the Threeport API as the default
    /// KubernetesRuntimeInstance `--runtime-name` (client certificate credentials).
    #[arg(long)]
    kube: bool,
    /// Where the Kubernetes sandbox listens (with `--kube`).
    #[arg(long, default_value = "127.0.0.1:0", requires = "kube")]
    kube_listen: SocketAddr,
    /// Name of the KubernetesRuntimeInstance registered with `--kube`.
    #[arg(long, default_value = "sandbox-runtime", requires = "kube")]
    runtime_name: String,
    /// With `--kube`: write `kubeconfig`, `ca.crt`, `client.crt` and `client.key` (mode 0600)
    /// for the Kubernetes sandbox into this directory (created if missing), for kubectl or
    /// curl.
    #[arg(long, requires = "kube")]
    kube_dir: Option<PathBuf>,
}

/// Write the Kubernetes sandbox's kubeconfig and PEM files into `dir`.
fn write_kube_files(k: &KubeSandboxHandle, dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let files = [
        ("kubeconfig", k.kubeconfig_yaml(), 0o600),
        ("ca.crt", k.ca_pem().to_string(), 0o644),
        ("client.crt", k.client_cert_pem().to_string(), 0o644),
        ("client.key", k.client_key_pem().to_string(), 0o600),
    ];
    for (name, content, mode) in files {
        let path = dir.join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        std::io::Write::write_all(&mut f, content.as_bytes())?;
    }
    Ok(())
}

/// Start the Kubernetes sandbox and register it in the Threeport sandbox.
async fn start_kube(args: &Args, api: &SandboxHandle) -> anyhow::Result<(KubeSandboxHandle, u64)> {
    let k = KubeSandbox::start(KubeSandboxOptions {
        listen: args.kube_listen,
        ..Default::default()
    })
    .await
    .context("starting the Kubernetes sandbox")?;
    // A Threeport runtime cluster has the agent's CRD (installed by Threeport's installer).
    k.install_threeport_workload_crd()?;
    let id = k
        .register_runtime(api, &args.runtime_name, RuntimeAuth::ClientCert)
        .await
        .context("registering the KubernetesRuntimeInstance")?;
    if let Some(dir) = &args.kube_dir {
        write_kube_files(&k, dir)?;
    }
    Ok((k, id))
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
    let nats_user_password = match (args.nats_user.clone(), args.nats_password.clone()) {
        (Some(u), Some(p)) => Some((u, p)),
        _ => None,
    };
    let handle = SandboxApi::start(SandboxOptions {
        listen: args.listen,
        nats_url: args.nats_url.clone(),
        nats_user_password,
        tls: args.tls,
        tls_dir: args.tls_dir.clone(),
        encryption_key: args.encryption_key.clone().filter(|k| !k.is_empty()),
        stream_replicas: 1,
    })
    .await?;
    let kube = if args.kube {
        Some(start_kube(&args, &handle).await?)
    } else {
        None
    };
    match handle.tls_files() {
        Some(t) => println!(
            "threeport-sandbox listening on {} (tls dir {})",
            handle.base_url(),
            t.dir.display()
        ),
        None => println!("threeport-sandbox listening on {}", handle.base_url()),
    }
    if let Some((k, id)) = &kube {
        println!("kube sandbox listening on {}", k.url());
        println!(
            "registered KubernetesRuntimeInstance {id} (name {}, default runtime)",
            args.runtime_name
        );
        if let Some(dir) = &args.kube_dir {
            println!("kube files in {}", dir.display());
        }
    }
    use std::io::Write;
    std::io::stdout().flush()?;

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    // Bounded: flushing the NATS connection never finishes if nats-server is already gone
    // (e.g. a script stopping everything at once), and open keep-alive connections would hold
    // the Kubernetes server. A second signal exits at once.
    let shutdown = async {
        if let Some((k, _)) = kube {
            k.shutdown().await;
        }
        handle.shutdown().await;
    };
    tokio::select! {
        _ = shutdown => {}
        _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {
            tracing::warn!("shutdown did not finish within 5s; exiting");
        }
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}
