//! What one resync run costs at N objects of a type (default 10,000 WorkloadDefinitions),
//! against the real Threeport API v0.6.1 on PostgreSQL and a JetStream nats-server
//! (`scripts/upstream.sh up`; build it first with `scripts/upstream.sh build`).
//!
//! ```text
//! cargo bench --bench resync                 # N = 10000, 5 runs per scenario
//! cargo bench --bench resync -- --n 2000 --runs 3 --page-size 50
//! ```
//!
//! The run is the manager's own (`Resyncer::run_once`, page size 500 by default), in this
//! process, on
//! three states of the same N objects:
//! - `reconciled`: every object `Reconciled:true`, nothing pending (the steady state);
//! - `unreconciled`: every object `Reconciled:false`, their notifications acknowledged (what a
//!   NATS outage during a mass change leaves behind, the most a run can list); grace is set to
//!   a day so nothing is re-notified and the run is its lists alone;
//! - `pending`: every object `Reconciled:false` with its notification pending on the durable
//!   consumer (a backlog of N), so the run also reads the backlog.
//!
//! Per scenario: the median wall time of a run, list calls and objects listed, notifications
//! read by the pending scan, and the CPU seconds per run of the Threeport API process, of
//! PostgreSQL (postmaster and its backends) and of this process (the manager's side). The
//! baseline, measured in the same run: one `GET /v0/workload-definitions?size=-1`, every row in
//! one request (reading the table once). Without the upstream binaries it prints why and
//! exits 0.

#[path = "../tests/harness/mod.rs"]
mod harness;
use harness::backend::{self, Stack};
use harness::workload_env::cpu_seconds;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use threeport_manager::engine::metrics::Metrics;
use threeport_manager::engine::resync::{ResyncSettings, Resyncer, RunReport};
use threeport_manager::threeport::models::WORKLOAD_DEFINITION;
use threeport_manager::threeport::{ApiRequest, Method, ThreeportApi};
use tokio_util::sync::CancellationToken;

const RECONCILER: &str = "WorkloadDefinitionReconciler";
const YAML: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: resync-bench\n";

struct Args {
    n: usize,
    runs: usize,
    page_size: u64,
}

fn args() -> Args {
    let mut a = Args {
        n: 10_000,
        runs: 5,
        page_size: ResyncSettings::default().page_size,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--n" => a.n = it.next().and_then(|v| v.parse().ok()).unwrap_or(a.n),
            "--runs" => a.runs = it.next().and_then(|v| v.parse().ok()).unwrap_or(a.runs),
            "--page-size" => {
                a.page_size = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(a.page_size)
                    .max(1);
            }
            _ => {} // cargo passes --bench
        }
    }
    a.runs = a.runs.max(1);
    a
}

/// CPU seconds of the stack's Threeport API and of PostgreSQL (postmaster, its exited
/// children, and its live backends).
struct StackCpu {
    api: u32,
    postmaster: u32,
}

impl StackCpu {
    fn of(stack: &Stack) -> Self {
        let dir = stack.upstream_dir().expect("a real stack");
        let pids = std::fs::read_to_string(dir.join("pids")).expect("the stack's pids");
        let pid = |name: &str| {
            pids.lines()
                .filter_map(|l| l.split_once(' '))
                .filter(|(n, _)| *n == name)
                .filter_map(|(_, p)| p.trim().parse().ok())
                .next_back()
                .unwrap_or_else(|| panic!("{name} in {}", dir.join("pids").display()))
        };
        StackCpu {
            api: pid("rest-api"),
            postmaster: pid("postgres"),
        }
    }

    fn api_seconds(&self) -> f64 {
        process_tree_seconds(self.api)
    }

    fn postgres_seconds(&self) -> f64 {
        process_tree_seconds(self.postmaster)
    }
}

/// utime + stime of `pid` and its reaped children, plus its live children's.
fn process_tree_seconds(pid: u32) -> f64 {
    let own = stat_fields(pid)
        .map(|f| (f[11] + f[12] + f[13] + f[14]) as f64 / 100.0)
        .unwrap_or(0.0);
    let children: f64 = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| stat_fields(p).filter(|f| f[1] == u64::from(pid)).map(|_| p))
        .filter_map(cpu_seconds)
        .sum();
    own + children
}

/// `/proc/<pid>/stat` fields after the command, as numbers (state as 0): index 1 is the
/// parent, 11..=14 utime, stime, cutime, cstime in clock ticks (100 per second here).
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    Some(
        rest.split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

fn own_cpu_seconds() -> f64 {
    cpu_seconds(std::process::id()).unwrap_or(0.0)
}

struct Row {
    name: &'static str,
    wall: Duration,
    report: RunReport,
    api_cpu: f64,
    pg_cpu: f64,
    own_cpu: f64,
}

async fn measure(
    name: &'static str,
    resyncer: &Resyncer,
    cpu: &StackCpu,
    runs: usize,
) -> anyhow::Result<Row> {
    let mut walls = Vec::new();
    let mut report = RunReport::default();
    let (api0, pg0, own0) = (cpu.api_seconds(), cpu.postgres_seconds(), own_cpu_seconds());
    for _ in 0..runs {
        let started = Instant::now();
        report = resyncer.run_once(time::OffsetDateTime::now_utc()).await?;
        walls.push(started.elapsed());
    }
    walls.sort();
    let per = |total: f64| total / runs as f64;
    Ok(Row {
        name,
        wall: walls[walls.len() / 2],
        report,
        api_cpu: per(cpu.api_seconds() - api0),
        pg_cpu: per(cpu.postgres_seconds() - pg0),
        own_cpu: per(own_cpu_seconds() - own0),
    })
}

/// PATCH every object `Reconciled:false` (each publishes an Updated notification).
async fn unreconcile_all(api: &Arc<dyn ThreeportApi>, ids: &[u64]) -> anyhow::Result<()> {
    let results: Vec<_> = futures::stream::iter(ids.iter().copied())
        .map(|id| {
            let api = api.clone();
            async move {
                api.patch(WORKLOAD_DEFINITION, id, json!({"Reconciled": false}))
                    .await
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for r in results {
        r?;
    }
    Ok(())
}

/// Acknowledge every notification on the durable consumer, as controllers that reconciled
/// nothing would.
async fn ack_all(
    consumer: &async_nats::jetstream::consumer::Consumer<
        async_nats::jetstream::consumer::pull::Config,
    >,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        let mut batch = consumer
            .fetch()
            .max_messages(1000)
            .expires(Duration::from_secs(1))
            .messages()
            .await?;
        let mut got = 0;
        while let Some(m) = batch.next().await {
            m.map_err(|e| anyhow::anyhow!("{e}"))?
                .double_ack()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            got += 1;
        }
        if got == 0 {
            let info = consumer.clone().info().await?.clone();
            if info.num_pending == 0 && info.num_ack_pending == 0 {
                return Ok(());
            }
        }
    }
    anyhow::bail!("could not acknowledge the backlog within 300 s")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = args();
    if !backend::upstream_available() {
        println!("resync bench: the upstream stack is not built (scripts/upstream.sh build); nothing measured");
        return Ok(());
    }
    let Some(stack) = Stack::upstream(false).await else {
        return Ok(());
    };
    let cpu = StackCpu::of(&stack);
    let js = async_nats::jetstream::new(async_nats::connect(&stack.nats_url).await?);
    let (controller, reconciler) =
        threeport_manager::registry::reconciler(RECONCILER).expect("registry");
    let stop = CancellationToken::new();
    let consumer = threeport_manager::engine::worker::bind_consumer(
        &js,
        controller,
        reconciler,
        Duration::from_millis(200),
        &stop,
    )
    .await
    .expect("durable consumer");

    println!(
        "creating {} workload definitions (Reconciled:true, no notification) ...",
        args.n
    );
    let created = Instant::now();
    let api = stack.api.clone();
    let ids: Vec<u64> = futures::stream::iter(0..args.n)
        .map(|i| {
            let api = api.clone();
            async move {
                let o = api
                    .create(
                        WORKLOAD_DEFINITION,
                        json!({"Name": format!("resync-bench-{i}"), "YAMLDocument": YAML, "Reconciled": true}),
                    )
                    .await?;
                o["ID"]
                    .as_u64()
                    .ok_or_else(|| anyhow::anyhow!("no ID in {o}"))
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<anyhow::Result<u64>>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    println!("created in {:.1?}", created.elapsed());

    let resyncer = Resyncer {
        js: js.clone(),
        api: api.clone(),
        controller,
        reconciler,
        settings: ResyncSettings {
            grace: Duration::from_secs(24 * 3600),
            page_size: args.page_size,
            ..ResyncSettings::default()
        },
        instance_id: uuid::Uuid::new_v4(),
        metrics: Metrics::new().resync,
        unrecoverable: Default::default(),
    };

    // Baseline: the whole table in one request.
    let mut base = Vec::new();
    let (api0, pg0) = (cpu.api_seconds(), cpu.postgres_seconds());
    for _ in 0..args.runs {
        let started = Instant::now();
        let all = api
            .call(
                ApiRequest::new(
                    Method::Get,
                    WORKLOAD_DEFINITION.collection_path(),
                    WORKLOAD_DEFINITION.collection_path(),
                )
                .query("size", "-1"),
            )
            .await?;
        assert_eq!(all.data.len(), args.n, "every row in one request");
        base.push(started.elapsed());
    }
    base.sort();
    let baseline = base[base.len() / 2];
    let base_server_cpu =
        (cpu.api_seconds() - api0 + cpu.postgres_seconds() - pg0) / args.runs as f64;

    let mut rows = vec![measure("reconciled", &resyncer, &cpu, args.runs).await?];
    unreconcile_all(&api, &ids).await?;
    ack_all(&consumer).await?;
    rows.push(measure("unreconciled", &resyncer, &cpu, args.runs).await?);
    unreconcile_all(&api, &ids).await?;
    rows.push(measure("pending", &resyncer, &cpu, args.runs).await?);

    println!();
    println!(
        "resync run at {} objects, page size {} ({} runs per scenario, median wall time)",
        args.n, resyncer.settings.page_size, args.runs
    );
    println!(
        "baseline: one GET of all {} rows (size=-1): {:.0} ms, {:.3} s API+PostgreSQL CPU",
        args.n,
        baseline.as_secs_f64() * 1e3,
        base_server_cpu
    );
    println!(
        "{:<13} {:>9} {:>10} {:>6} {:>7} {:>8} {:>8} {:>8} {:>9}",
        "scenario",
        "wall ms",
        "x baseline",
        "lists",
        "listed",
        "pending",
        "API cpu",
        "PG cpu",
        "own cpu"
    );
    for r in &rows {
        println!(
            "{:<13} {:>9.0} {:>10.2} {:>6} {:>7} {:>8} {:>8.3} {:>8.3} {:>9.3}",
            r.name,
            r.wall.as_secs_f64() * 1e3,
            r.wall.as_secs_f64() / baseline.as_secs_f64(),
            r.report.pages,
            r.report.listed,
            r.report.pending_read,
            r.api_cpu,
            r.pg_cpu,
            r.own_cpu
        );
        assert_eq!(r.report.renotified, 0, "a day's grace: nothing re-notified");
        assert_eq!(r.report.failed, 0);
    }
    stop.cancel();
    Ok(())
}
