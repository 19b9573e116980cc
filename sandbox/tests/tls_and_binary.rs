//! mTLS and the `threeport-sandbox` binary.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{wd, Http};
use sandbox::threeport::{SandboxApi, SandboxOptions};

#[tokio::test]
async fn mtls_requires_a_client_certificate() {
    let h = SandboxApi::start(SandboxOptions {
        tls: true,
        ..Default::default()
    })
    .await
    .expect("start");
    assert!(h.base_url().starts_with("https://127.0.0.1:"));
    let files = h.tls_files().expect("tls files").clone();
    for p in [&files.ca_cert, &files.client_cert, &files.client_key] {
        assert!(p.exists(), "{}", p.display());
    }
    assert_eq!(files.ca_cert, files.dir.join("ca/tls.crt"));
    assert_eq!(files.client_cert, files.dir.join("cert/tls.crt"));
    assert_eq!(files.client_key, files.dir.join("cert/tls.key"));

    let good = Http::tls(h.base_url(), &files, true);
    let (s, _) = good.post("/v0/workload-definitions", wd("t")).await;
    assert_eq!(s, 201);
    assert_eq!(good.get("/v0/workload-definitions").await.0, 200);
    // The server certificate is also valid for "localhost".
    let by_name = Http::tls(
        format!("https://localhost:{}", h.local_addr().port()),
        &files,
        true,
    );
    assert_eq!(by_name.get("/v0/workload-definitions").await.0, 200);

    let anonymous = Http::tls(h.base_url(), &files, false);
    assert!(anonymous
        .raw("GET", "/v0/workload-definitions", None)
        .await
        .is_err());
    let plain = Http::plain(h.base_url().replace("https://", "http://"));
    assert!(plain
        .raw("GET", "/v0/workload-definitions", None)
        .await
        .is_err());
    let dir = files.dir.clone();
    h.shutdown().await;
    assert!(!dir.exists(), "temporary TLS dir removed with the handle");
}

#[tokio::test]
async fn binary_prints_url_and_serves() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_threeport-sandbox"))
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("NATS_URL")
        .env_remove("ENCRYPTION_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        let mut l = String::new();
        BufReader::new(stdout).read_line(&mut l).map(|_| l)
    })
    .await
    .expect("join")
    .expect("read line");
    let url = line
        .trim()
        .strip_prefix("threeport-sandbox listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"));
    let http = Http::plain(url);
    let (s, _) = http.post("/v0/workload-definitions", wd("b")).await;
    // Kill the child we started, by its handle.
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(s, 201);
}
