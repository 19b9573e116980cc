//! Starts and stops a real `nats-server` with JetStream for tests, benchmarks and the demo.
//!
//! The binary comes from `NATS_SERVER_BIN`, else the project's pinned install
//! (`scripts/install-nats-server.sh` puts it in `.tools/nats/bin`), else `nats-server` on PATH.
//! Each server listens on loopback only, on a port the server picks itself (`-p -1`, reported
//! through `--ports_file_dir`, so parallel tests never race for a port), with its own store
//! directory. It is stopped by PID when the handle is dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why a nats-server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum NatsServerError {
    /// The binary could not be run (usually: not installed).
    #[error("cannot start nats-server {binary}: {source} (run scripts/install-nats-server.sh)")]
    Spawn {
        /// The binary's path (see [`nats_server_binary`]).
        binary: String,
        /// The spawn error.
        source: std::io::Error,
    },
    /// The server exited before it reported its port.
    #[error("nats-server exited during start-up with {status}; its log: {log}")]
    Exited {
        /// Its exit status.
        status: String,
        /// Its log file's content.
        log: String,
    },
    /// The server did not report an open client port within this time.
    #[error("nats-server did not report its port within {0:?}")]
    NoPort(Duration),
    /// A temporary directory could not be created, or the child could not be polled.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Options for [`NatsServer::start_with`].
#[derive(Debug, Clone, Default)]
pub struct NatsServerOptions {
    /// Fixed client port; `None` lets the server pick a free one.
    pub port: Option<u16>,
    /// Require this user and password.
    pub user_password: Option<(String, String)>,
    /// Reuse this store directory (to restart a server with its streams); default: a fresh one.
    pub store_dir: Option<PathBuf>,
    /// Run as one member of a cluster (see [`NatsCluster`]).
    pub cluster: Option<ClusterMember>,
}

/// One server's place in a cluster: its names, its route port and its peers' route ports.
#[derive(Debug, Clone)]
pub struct ClusterMember {
    /// The cluster's name (the same on every member).
    pub cluster_name: String,
    /// This server's name (unique in the cluster; JetStream needs it).
    pub server_name: String,
    /// The port this server listens on for routes, on 127.0.0.1.
    pub route_port: u16,
    /// The route ports of the other members.
    pub peers: Vec<u16>,
}

/// A running nats-server; killed (by PID) on drop.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store_dir: PathBuf,
    user_password: Option<(String, String)>,
    cluster: Option<ClusterMember>,
    _tmp: Option<tempfile::TempDir>,
    _ports_dir: tempfile::TempDir,
    log_path: PathBuf,
}

/// The nats-server binary tests and the demo use.
pub fn nats_server_binary() -> PathBuf {
    if let Ok(p) = std::env::var("NATS_SERVER_BIN") {
        if !p.is_empty() {
            return PathBuf::from(p);
        }
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/nats/bin/nats-server");
    if local.exists() {
        return local;
    }
    PathBuf::from("nats-server")
}

impl NatsServer {
    /// Start a JetStream server on a free loopback port.
    pub fn start() -> Result<Self, NatsServerError> {
        Self::start_with(NatsServerOptions::default())
    }

    /// Start a JetStream server with `opts`, waiting until its client port accepts connections.
    pub fn start_with(opts: NatsServerOptions) -> Result<Self, NatsServerError> {
        let (tmp, store_dir) = match opts.store_dir.clone() {
            Some(d) => (None, d),
            None => {
                let t = tempfile::Builder::new().prefix("tpm-nats-").tempdir()?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let ports_dir = tempfile::Builder::new()
            .prefix("tpm-nats-ports-")
            .tempdir()?;
        let log_path = ports_dir.path().join("nats.log");
        let mut server = Self {
            child: None,
            port: opts.port.unwrap_or(0),
            store_dir,
            user_password: opts.user_password,
            cluster: opts.cluster,
            _tmp: tmp,
            _ports_dir: ports_dir,
            log_path,
        };
        server.spawn(opts.port)?;
        Ok(server)
    }

    /// Run the binary on `port` (`None`: a free one) and wait for its client port.
    fn spawn(&mut self, port: Option<u16>) -> Result<(), NatsServerError> {
        let binary = nats_server_binary();
        let ports_dir = self._ports_dir.path().to_path_buf();
        // A ports file of an earlier run would name the old process.
        for entry in std::fs::read_dir(&ports_dir)?.flatten() {
            if entry.file_name().to_string_lossy().ends_with(".ports") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let port_arg = port.map(|p| p.to_string()).unwrap_or_else(|| "-1".into());
        let mut cmd = Command::new(&binary);
        cmd.arg("-js")
            .args(["-a", "127.0.0.1", "-p", &port_arg])
            .arg("-sd")
            .arg(&self.store_dir)
            .arg("--ports_file_dir")
            .arg(&ports_dir)
            .arg("-l")
            .arg(&self.log_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((user, pass)) = &self.user_password {
            cmd.args(["--user", user, "--pass", pass]);
        }
        if let Some(c) = &self.cluster {
            let routes: Vec<String> = c
                .peers
                .iter()
                .map(|p| format!("nats://127.0.0.1:{p}"))
                .collect();
            cmd.args(["--server_name", &c.server_name])
                .args(["--cluster_name", &c.cluster_name])
                .args(["--cluster", &format!("nats://127.0.0.1:{}", c.route_port)])
                .args(["--routes", &routes.join(",")]);
        }
        let mut child = cmd.spawn().map_err(|source| NatsServerError::Spawn {
            binary: binary.display().to_string(),
            source,
        })?;
        match wait_for_port(&mut child, &ports_dir, &self.log_path) {
            Ok(p) => {
                self.port = p;
                self.child = Some(child);
                Ok(())
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    /// Kill the server (SIGKILL) and start it again on the same port with the same store, as
    /// a crash and restart of the NATS pod would. Clients reconnect by themselves.
    pub fn restart(&mut self) -> Result<(), NatsServerError> {
        self.stop();
        // The port was just freed by our own process; retry briefly if the OS holds it.
        let start = Instant::now();
        loop {
            match self.spawn(Some(self.port)) {
                Err(NatsServerError::Exited { .. }) if start.elapsed() < Duration::from_secs(5) => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                other => return other,
            }
        }
    }

    /// The client port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The JetStream store directory, to restart a server on the same streams.
    pub fn store_dir(&self) -> &Path {
        &self.store_dir
    }

    /// The server's process ID; `None` once it was stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The server's log, for diagnosing a failed test.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Stop the server (SIGKILL by PID) and wait for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A JetStream cluster of nats-servers on loopback, routed to each other.
pub struct NatsCluster {
    /// The members, in start order.
    pub servers: Vec<NatsServer>,
}

impl NatsCluster {
    /// Start `size` members (client and route ports picked free on 127.0.0.1). JetStream
    /// becomes usable once the members have elected a meta leader, a few seconds later.
    pub fn start(size: usize) -> Result<Self, NatsServerError> {
        let free = || -> Result<u16, NatsServerError> {
            Ok(std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port())
        };
        let routes: Vec<u16> = (0..size).map(|_| free()).collect::<Result<_, _>>()?;
        let mut servers = Vec::new();
        for (i, route_port) in routes.iter().enumerate() {
            servers.push(NatsServer::start_with(NatsServerOptions {
                cluster: Some(ClusterMember {
                    cluster_name: "tpm-test".into(),
                    server_name: format!("n{i}"),
                    route_port: *route_port,
                    peers: routes.iter().copied().filter(|p| p != route_port).collect(),
                }),
                ..Default::default()
            })?);
        }
        Ok(NatsCluster { servers })
    }

    /// Every member's client URL.
    pub fn urls(&self) -> Vec<String> {
        self.servers.iter().map(NatsServer::url).collect()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_for_port(child: &mut Child, ports_dir: &Path, log: &Path) -> Result<u16, NatsServerError> {
    let limit = Duration::from_secs(15);
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Err(NatsServerError::Exited {
                status: status.to_string(),
                log: std::fs::read_to_string(log).unwrap_or_default(),
            });
        }
        if let Some(port) = read_ports_file(ports_dir) {
            // The ports file is written once the listeners are up, but give JetStream a moment
            // by checking that the client port accepts connections.
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(port);
            }
        }
        if start.elapsed() > limit {
            return Err(NatsServerError::NoPort(limit));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// nats-server writes `<exe>_<pid>.ports` as JSON: `{"nats":["nats://127.0.0.1:4222"],...}`.
fn read_ports_file(dir: &Path) -> Option<u16> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().ends_with(".ports") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        let url = v.get("nats")?.as_array()?.first()?.as_str()?;
        return url.rsplit(':').next()?.parse().ok();
    }
    None
}
