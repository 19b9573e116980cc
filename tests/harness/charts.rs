//! Chart repositories on loopback for the helm tests: charts of tests/fixtures/charts packaged
//! and indexed by the real helm (`helm package`, `helm repo index`), served over HTTP by
//! python's `http.server` until dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::backend::repo_root;
use super::workload_env::free_port;

/// A chart repository at [`url`](Self::url).
pub struct ChartRepo {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    dir: tempfile::TempDir,
    server: Child,
}

impl ChartRepo {
    /// A repository holding the fixture charts `charts` (folder names under
    /// tests/fixtures/charts), made with the helm binary `helm`.
    pub fn serve(helm: &Path, charts: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        for chart in charts {
            let source = repo_root().join("tests/fixtures/charts").join(chart);
            run_helm(
                helm,
                dir.path(),
                &[
                    "package".as_ref(),
                    source.as_os_str(),
                    "--destination".as_ref(),
                    dir.path().as_os_str(),
                ],
            );
        }
        run_helm(
            helm,
            dir.path(),
            &[
                "repo".as_ref(),
                "index".as_ref(),
                dir.path().as_os_str(),
                "--url".as_ref(),
                url.as_ref(),
            ],
        );
        let server = Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "-d",
            ])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the chart server did not listen on {url}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        ChartRepo { url, dir, server }
    }

    /// The folder served (packaged charts and index.yaml).
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for ChartRepo {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// Run helm with its homes in `dir/.helm` (nothing of the user's); panics with its stderr.
fn run_helm(helm: &Path, dir: &Path, args: &[&std::ffi::OsStr]) {
    let home = dir.join(".helm");
    let out = Command::new(helm)
        .args(args)
        .env("HOME", &home)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .expect("run helm");
    assert!(
        out.status.success(),
        "helm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
