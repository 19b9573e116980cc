//! Running the helm v3 CLI for the helm-workload controller (spec 3.5, issue 14), as Argo CD
//! drives Helm: a child process per command, never a hand-rendered chart.
//!
//! Unlike Threeport's controller (spec 4.5 items 38 and 40):
//! - Every reconcile gets a private [`HelmWorkspace`]: helm's config, cache and data homes, the
//!   repository file and the runtime's kubeconfig live in a fresh 0700 temporary folder that is
//!   removed when the reconcile ends, so concurrent reconciles share no file (Threeport uses
//!   `/root/repository.yaml`, `/tmp/values.yaml`, `/tmp/helm` and `/root/.cache/helm`, and one
//!   reconcile's cleanup deletes another's files).
//! - Every command has a timeout and ends on cancellation (a lost lock, shutdown): SIGTERM,
//!   then SIGKILL after a grace period, so no helm outlives its reconcile.
//! - Failures are classified ([`classify()`]): a missing chart or repository, invalid values or
//!   templates are permanent; network and API-server trouble is transient. helm's stderr is
//!   kept in the error (so in the event), with the runtime's secrets removed.

pub mod classify;
pub mod kubeconfig;

use std::ffi::OsString;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use crate::kube::RuntimeCredentials;
use crate::retry::{Classify, RetryClass};
pub use classify::classify;

/// Workspaces are folders `<temp dir>/threeport-helm-<pid>-<random>`.
const WORKSPACE_PREFIX: &str = "threeport-helm-";

/// Remove the workspaces that processes which no longer run left in the temporary folder: a
/// manager killed mid-reconcile (SIGKILL, OOM) cannot remove its own, and they hold runtime
/// credentials (a pod's `/tmp` emptyDir outlives a container restart). Runs once per process,
/// before its first workspace; a folder of this process's PID can only be a previous
/// container's (PID 1 again). Returns how many were removed.
pub fn remove_stale_workspaces() -> usize {
    static ONCE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *ONCE.get_or_init(|| {
        let own = std::process::id();
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
            return 0;
        };
        entries
            .flatten()
            .filter(|entry| {
                let name = entry.file_name();
                let pid = name
                    .to_str()
                    .and_then(|n| n.strip_prefix(WORKSPACE_PREFIX))
                    .and_then(|rest| rest.split('-').next())
                    .and_then(|pid| pid.parse::<u32>().ok());
                pid.is_some_and(|pid| pid == own || !Path::new(&format!("/proc/{pid}")).exists())
            })
            .filter(|entry| std::fs::remove_dir_all(entry.path()).is_ok())
            .count()
    })
}

/// Most of helm's stderr kept in an error.
const STDERR_LIMIT: usize = 4096;

/// How helm is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelmSettings {
    /// The helm v3 binary (a bare name is looked up in `PATH`).
    pub binary: PathBuf,
    /// The longest a helm command may run.
    pub timeout: Duration,
    /// After SIGTERM (timeout, cancellation), how long helm has before SIGKILL.
    pub stop_grace: Duration,
}

impl Default for HelmSettings {
    fn default() -> Self {
        Self {
            binary: PathBuf::from("helm"),
            timeout: Duration::from_secs(300),
            stop_grace: Duration::from_secs(5),
        }
    }
}

/// Why a helm command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    /// The workspace could not be prepared, or helm could not be started.
    #[error("helm {command}: {source}")]
    Io {
        /// The helm subcommand.
        command: String,
        /// What failed.
        source: std::io::Error,
    },
    /// helm ran longer than the timeout and was stopped.
    #[error("helm {command} did not finish within {after:?} and was stopped")]
    Timeout {
        /// The helm subcommand.
        command: String,
        /// The timeout.
        after: Duration,
    },
    /// The reconcile was cancelled (lost lock, shutdown) and helm was stopped.
    #[error("helm {command} was stopped: the reconcile was cancelled")]
    Cancelled {
        /// The helm subcommand.
        command: String,
    },
    /// helm exited with an error.
    #[error("helm {command} failed ({status}): {stderr}")]
    Failed {
        /// The helm subcommand.
        command: String,
        /// Its exit status.
        status: String,
        /// Its stderr (secrets removed, at most 4 KiB).
        stderr: String,
        /// How to retry, from the message.
        class: RetryClass,
    },
}

impl Classify for HelmError {
    fn retry_class(&self) -> RetryClass {
        match self {
            HelmError::Failed { class, .. } => *class,
            // A binary that is not there stays missing until the config changes.
            HelmError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                RetryClass::Permanent
            }
            _ => RetryClass::Transient,
        }
    }
}

/// A private folder for one reconcile's helm commands, removed on drop: helm's homes, its
/// repository file, the runtime's kubeconfig and the values files.
pub struct HelmWorkspace {
    dir: tempfile::TempDir,
    /// Strings that must not leave the process in an error (the runtime's key or token).
    secrets: Vec<String>,
}

impl HelmWorkspace {
    /// A new workspace whose kubeconfig reaches the runtime with `credentials`.
    pub fn new(credentials: &RuntimeCredentials) -> std::io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{WORKSPACE_PREFIX}{}-", std::process::id()))
            .tempdir()?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
        let ws = Self {
            secrets: kubeconfig::secrets(credentials),
            dir,
        };
        ws.write_file("kubeconfig", &kubeconfig::kubeconfig_yaml(credentials))?;
        Ok(ws)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write `name` in the workspace, readable by this user only; returns its path.
    pub fn write_file(&self, name: &str, contents: &str) -> std::io::Result<PathBuf> {
        use std::io::Write as _;
        let path = self.dir.path().join(name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(contents.as_bytes())?;
        Ok(path)
    }

    /// The environment helm runs with: nothing of the manager's but `PATH`.
    fn env(&self) -> Vec<(&'static str, OsString)> {
        let at = |p: &str| self.dir.path().join(p).into_os_string();
        vec![
            ("HOME", at("")),
            ("HELM_CACHE_HOME", at("cache")),
            ("HELM_CONFIG_HOME", at("config")),
            ("HELM_DATA_HOME", at("data")),
            ("HELM_REPOSITORY_CONFIG", at("repositories.yaml")),
            ("HELM_REPOSITORY_CACHE", at("cache/repository")),
            ("HELM_REGISTRY_CONFIG", at("registry.json")),
            ("KUBECONFIG", at("kubeconfig")),
            ("PATH", std::env::var_os("PATH").unwrap_or_default()),
        ]
    }

    /// `text` without the workspace's secrets.
    pub fn redact(&self, text: &str) -> String {
        kubeconfig::redact(text, &self.secrets)
    }
}

/// Runs helm commands.
#[derive(Debug, Clone)]
pub struct Helm {
    settings: HelmSettings,
}

impl Helm {
    /// With these settings.
    pub fn new(settings: HelmSettings) -> Self {
        Self { settings }
    }

    /// Run `helm <args>` in `ws`; its stdout when it succeeds. Bounded by the timeout, and
    /// stopped when `cancel` fires.
    pub async fn run(
        &self,
        ws: &HelmWorkspace,
        args: &[OsString],
        cancel: &CancellationToken,
    ) -> Result<String, HelmError> {
        let command = args
            .first()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default();
        let io = |source| HelmError::Io {
            command: command.clone(),
            source,
        };
        let mut child = tokio::process::Command::new(&self.settings.binary)
            .args(args)
            .env_clear()
            .envs(ws.env())
            .current_dir(ws.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(io)?;
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let read_out = tokio::spawn(async move {
            let mut buf = Vec::new();
            stdout.read_to_end(&mut buf).await.map(|_| buf)
        });
        let read_err = tokio::spawn(async move {
            let mut buf = Vec::new();
            stderr.read_to_end(&mut buf).await.map(|_| buf)
        });
        let status = tokio::select! {
            status = child.wait() => status.map_err(io)?,
            _ = tokio::time::sleep(self.settings.timeout) => {
                self.stop(&mut child).await;
                return Err(HelmError::Timeout { command, after: self.settings.timeout });
            }
            _ = cancel.cancelled() => {
                self.stop(&mut child).await;
                return Err(HelmError::Cancelled { command });
            }
        };
        let out = read_out.await.ok().and_then(Result::ok).unwrap_or_default();
        let err = read_err.await.ok().and_then(Result::ok).unwrap_or_default();
        if status.success() {
            return Ok(String::from_utf8_lossy(&out).into_owned());
        }
        let text = ws.redact(String::from_utf8_lossy(&err).trim());
        let mut stderr: String = text.chars().take(STDERR_LIMIT).collect();
        if stderr.len() < text.len() {
            stderr.push_str(" ...");
        }
        Err(HelmError::Failed {
            class: classify(&stderr),
            command,
            status: status.to_string(),
            stderr,
        })
    }

    /// SIGTERM, then SIGKILL once the grace period is over.
    async fn stop(&self, child: &mut tokio::process::Child) {
        if let Some(pid) = child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        if tokio::time::timeout(self.settings.stop_grace, child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }
}
