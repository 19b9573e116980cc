//! The workload controller end to end: N WorkloadInstances of one definition (3 resources
//! each: ConfigMap, Deployment, Service) created at once, against a real nats-server, the
//! sandbox Threeport API and the sandbox Kubernetes API (TLS, client certificate), with the
//! manager run as the real binary (`threeport-manager --enable workload --concurrency W`).
//!
//! ```text
//! cargo bench --bench workload                      # N=200, W = 1, 4, 16
//! cargo bench --bench workload -- --n 500 --workers 4,16
//! ```
//!
//! Per row (a fresh nats-server and sandboxes each): POST the definition and wait until it is
//! reconciled; then POST N instances (64 requests in flight) while polling the sandbox store
//! every 5 ms. Latency per instance = POST returned (the notification is published before the
//! API answers) -> `Reconciled:true` first seen (so up to ~5 ms of polling granularity is
//! included). "all reconciled" = first POST sent -> last instance seen reconciled. Peak RSS is
//! the manager process's own `VmHWM` (/proc/<pid>/status); the sandboxes run in this
//! process, not in the manager. Then every instance is DELETEd and the time until all are gone
//! from the API (and their Kubernetes objects deleted) is reported.
//!
//! Before the workload controller is implemented (`--enable workload` exits 2) this prints a
//! message and exits 0.

#[path = "../tests/harness/mod.rs"]
mod harness;
use harness::workload_env;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use threeport_manager::threeport::models::WORKLOAD_INSTANCE;
use threeport_manager::threeport::ThreeportApi;
use workload_env::{
    metric_sum, quantile, workload_implemented, Env, ManagerProcess, ManagerSpec, WEB_APP_YAML,
};

const POLL: Duration = Duration::from_millis(5);
const ROW_LIMIT: Duration = Duration::from_secs(600);

struct Args {
    n: usize,
    workers: Vec<usize>,
    manager: PathBuf,
}

fn parse_args() -> Args {
    let mut n = 200;
    let mut workers = vec![1, 4, 16];
    let mut manager = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--n" => n = it.next().and_then(|v| v.parse().ok()).unwrap_or(n),
            "--workers" => {
                if let Some(v) = it.next() {
                    workers = v.split(',').filter_map(|w| w.trim().parse().ok()).collect();
                }
            }
            "--manager" => manager = it.next().map(PathBuf::from),
            _ => {} // cargo passes --bench
        }
    }
    let manager = manager.unwrap_or_else(workload_env::bench_manager_binary);
    Args {
        n: n.max(1),
        workers,
        manager,
    }
}

struct Row {
    workers: usize,
    all: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
    peak_rss_mib: f64,
    delete_all: Duration,
    errors: f64,
}

async fn run_row(args: &Args, workers: usize) -> anyhow::Result<Row> {
    let env = Env::start().await?;
    let dir = tempfile::tempdir()?;
    let mut manager = ManagerProcess::spawn(
        &env.process_env(),
        &ManagerSpec {
            bin: &args.manager,
            concurrency: workers,
            log: dir.path().join("manager.log"),
            enable: "workload",
            test_timings: true,
            nats_urls: &[],
        },
    )?;
    manager.wait_ready(Duration::from_secs(30)).await?;

    let def = env.create_definition("web-app", WEB_APP_YAML).await?;
    let start = Instant::now();
    while env
        .api
        .get_object("workload-definitions", def)
        .is_none_or(|o| o["Reconciled"] != true)
    {
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(60),
            "definition not reconciled; log:\n{}",
            manager.log_tail(20)
        );
        tokio::time::sleep(POLL).await;
    }

    let n = args.n;
    let t0 = Instant::now();
    let create = env.create_instances(def, "web", n, 64);
    let poll = async {
        let mut seen: HashMap<u64, Instant> = HashMap::new();
        while seen.len() < n && t0.elapsed() < ROW_LIMIT {
            let now = Instant::now();
            for (id, reconciled) in env.reconciled_instances() {
                if reconciled {
                    seen.entry(id).or_insert(now);
                }
            }
            tokio::time::sleep(POLL).await;
        }
        seen
    };
    let (created, seen) = tokio::join!(create, poll);
    let created = created?;
    anyhow::ensure!(
        seen.len() == n,
        "only {} of {n} instances reconciled within {ROW_LIMIT:?}; log:\n{}",
        seen.len(),
        manager.log_tail(20)
    );
    let last = seen.values().max().copied().unwrap_or(t0);
    let mut lat: Vec<Duration> = created
        .iter()
        .map(|(id, posted)| {
            seen.get(id)
                .map(|s| s.saturating_duration_since(*posted))
                .unwrap_or_default()
        })
        .collect();
    lat.sort();
    let metrics = manager.metrics().await;
    let errors = metric_sum(
        &metrics,
        "threeport_reconcile_errors_total",
        &[("controller", "workload")],
    );

    // Delete everything and wait until it is gone from the API and the cluster.
    let d0 = Instant::now();
    let client = env.client.clone();
    let ids: Vec<u64> = created.iter().map(|(id, _)| *id).collect();
    {
        use futures::StreamExt as _;
        let results: Vec<_> = futures::stream::iter(ids.iter().copied())
            .map(|id| {
                let client = client.clone();
                async move { client.delete(WORKLOAD_INSTANCE, id).await }
            })
            .buffer_unordered(64)
            .collect()
            .await;
        for r in results {
            r?;
        }
    }
    loop {
        let live = env.reconciled_instances();
        let objects = env.labelled("apps/v1", "Deployment").len();
        if live.is_empty() && objects == 0 {
            break;
        }
        anyhow::ensure!(
            d0.elapsed() < ROW_LIMIT,
            "{} instances and {objects} deployments left after {ROW_LIMIT:?}",
            live.len()
        );
        tokio::time::sleep(POLL).await;
    }
    let delete_all = d0.elapsed();
    let peak = manager.stats().peak_rss_kib().unwrap_or(0);
    let code = manager.stop(Duration::from_secs(30));
    if code != Some(0) {
        eprintln!("warning: manager exit code {code:?}");
    }
    Ok(Row {
        workers,
        all: last.saturating_duration_since(t0),
        p50: quantile(&lat, 0.50),
        p99: quantile(&lat, 0.99),
        max: lat.last().copied().unwrap_or_default(),
        peak_rss_mib: peak as f64 / 1024.0,
        delete_all,
        errors,
    })
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}

fn main() -> anyhow::Result<()> {
    if !workload_implemented() {
        println!(
            "workload bench: the workload controller is not implemented in this build \
             (threeport-manager --enable workload exits 2); nothing to measure."
        );
        return Ok(());
    }
    let args = parse_args();
    anyhow::ensure!(
        args.manager.exists(),
        "manager binary {} not found (build it, or pass --manager PATH / THREEPORT_MANAGER_BIN)",
        args.manager.display()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    println!(
        "N={} instances x 3 resources (ConfigMap, Deployment, Service), manager {}",
        args.n,
        args.manager.display()
    );
    println!();
    println!("| workers | all reconciled s | inst/s | p50 ms | p99 ms | max ms | manager peak RSS MiB | delete all s | errors |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &w in &args.workers {
        let row = rt.block_on(run_row(&args, w))?;
        println!(
            "| {} | {:.2} | {:.0} | {} | {} | {} | {:.1} | {:.2} | {} |",
            row.workers,
            row.all.as_secs_f64(),
            args.n as f64 / row.all.as_secs_f64().max(1e-9),
            ms(row.p50),
            ms(row.p99),
            ms(row.max),
            row.peak_rss_mib,
            row.delete_all.as_secs_f64(),
            row.errors,
        );
    }
    Ok(())
}
