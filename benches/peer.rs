//! threeport-manager against Threeport's own Go workload-controller (v0.6.1), on fresh,
//! identical real stacks (`scripts/upstream.sh up`: etcd, kube-apiserver, PostgreSQL,
//! nats-server, Threeport's REST API), one at a time, on the same machine.
//!
//! ```text
//! cargo bench --bench peer                          # N = 200, 1000; go, manager-1, manager-16
//! cargo bench --bench peer -- --n 200 --rows go,manager-16
//! cargo bench --bench peer -- --idle-only           # only the idle memory comparison
//! ```
//!
//! Per row: start the controller (the Go binary as Threeport's Deployment runs it; the manager
//! release binary with its shipped defaults and `--concurrency W`), POST one definition
//! (ConfigMap, Deployment, Service) and wait until it is reconciled. Then, measured:
//!
//! - POST N WorkloadInstances at once (64 requests in flight). Per instance, creation to
//!   `Reconciled:true` = the API's own `UpdatedAt - CreatedAt` (the `Reconciled:true` PATCH is
//!   the last write to the instance); "all reconciled" = first POST -> the last `UpdatedAt`.
//! - DELETE all N (64 in flight); "all deleted" = first DELETE -> the API lists none (polled
//!   every 100 ms through `TotalCount`).
//! - Requests per instance over create + delete, counted on the servers' side: to Threeport's
//!   API by a counting proxy the controller is pointed at (the API's own request log is sampled
//!   by zap and cannot count), to kube-apiserver from its audit log (requests with the
//!   controller's User-Agent). `apiserver_request_total` (every client, the
//!   kube-controller-manager included) is shown as a cross-check.
//! - Controller peak RSS (`VmHWM`) and CPU seconds (utime + stime, over create + delete) from
//!   /proc.
//! - For the Go controller, how long it holds each object lock (from the lock bucket's own
//!   timestamps): the evidence for `engine.lock_takeover_after`.
//!
//! Then the idle memory of the nine Go controllers as Threeport deploys them (one process
//! each), summed, against one manager with every implemented controller enabled.
//!
//! The table is printed as Markdown with ratios (manager / Go). Nothing here is asserted.

#[path = "../tests/harness/mod.rs"]
mod harness;
use harness::{backend, go_controller, scale_suite, workload_env};

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use axum::response::IntoResponse;
use backend::request_log::kube_requests;
use backend::Stack;
use futures::StreamExt;
use go_controller::{GoController, WORKLOAD_CONTROLLER_AGENT};
use serde_json::Value;
use threeport_manager::threeport::api::{ApiRequest, Method};
use threeport_manager::threeport::models::WORKLOAD_INSTANCE;
use threeport_manager::threeport::ThreeportApi;
use workload_env::{quantile, ManagerProcess, ManagerSpec};

const ROW_LIMIT: Duration = Duration::from_secs(1200);
const IN_FLIGHT: usize = 64;
const MANAGER_AGENT: &str = "threeport-manager/";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Controller {
    Go,
    Manager { workers: usize },
}

impl Controller {
    fn label(&self) -> String {
        match self {
            Controller::Go => "Go workload-controller".into(),
            Controller::Manager { workers } => format!("manager, {workers} worker(s)"),
        }
    }

    fn user_agent(&self) -> &'static str {
        match self {
            Controller::Go => WORKLOAD_CONTROLLER_AGENT,
            Controller::Manager { .. } => MANAGER_AGENT,
        }
    }
}

struct Args {
    sizes: Vec<usize>,
    rows: Vec<Controller>,
    manager: PathBuf,
    idle_only: bool,
}

fn parse_args() -> Args {
    let mut sizes = vec![200, 1000];
    let mut rows = vec![
        Controller::Go,
        Controller::Manager { workers: 1 },
        Controller::Manager { workers: 16 },
    ];
    let mut manager = None;
    let mut idle_only = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--n" => {
                if let Some(v) = it.next() {
                    sizes = v.split(',').filter_map(|n| n.trim().parse().ok()).collect();
                }
            }
            "--rows" => {
                if let Some(v) = it.next() {
                    rows = v
                        .split(',')
                        .filter_map(|r| match r.trim() {
                            "go" => Some(Controller::Go),
                            m => m
                                .strip_prefix("manager-")
                                .and_then(|w| w.parse().ok())
                                .map(|workers| Controller::Manager { workers }),
                        })
                        .collect();
                }
            }
            "--manager" => manager = it.next().map(PathBuf::from),
            "--idle-only" => idle_only = true,
            _ => {} // cargo passes --bench
        }
    }
    let manager = manager.unwrap_or_else(workload_env::bench_manager_binary);
    Args {
        sizes,
        rows,
        manager,
        idle_only,
    }
}

/// A plain-HTTP proxy in front of Threeport's API that counts every request it forwards: the
/// controller under test is given its address as `API_SERVER`, the harness talks to the API
/// directly, so the count is exactly the controller's requests. It runs on a thread and
/// runtime of its own, with Nagle off on both legs, so the harness's own work never delays a
/// proxied request.
struct ApiCounter {
    addr: std::net::SocketAddr,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ApiCounter {
    fn start(api_server: &str) -> anyhow::Result<Self> {
        let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let upstream = api_server.to_string();
        let counted = count.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                let _ = axum::serve(listener, proxy(upstream, counted))
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        Ok(ApiCounter {
            addr,
            count,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    fn count(&self) -> u64 {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The controller's environment: the stack's, with `API_SERVER` pointing at the proxy.
    fn env(&self, stack: &Stack) -> Vec<(String, String)> {
        stack
            .process_env()
            .into_iter()
            .map(|(k, v)| {
                if k == "API_SERVER" {
                    (k, self.addr.to_string())
                } else {
                    (k, v)
                }
            })
            .collect()
    }
}

impl Drop for ApiCounter {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The proxy's router: count, forward to `upstream`, return the answer as it came.
fn proxy(upstream: String, counted: std::sync::Arc<std::sync::atomic::AtomicU64>) -> axum::Router {
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<_, axum::body::Body> =
        Client::builder(TokioExecutor::new()).build(connector);
    axum::Router::new().fallback(move |req: axum::extract::Request| {
        let client = client.clone();
        let upstream = upstream.clone();
        let counted = counted.clone();
        async move {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (mut parts, body) = req.into_parts();
            let path = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default();
            parts.uri = match format!("http://{upstream}{path}").parse() {
                Ok(u) => u,
                Err(_) => return axum::http::StatusCode::BAD_REQUEST.into_response(),
            };
            match client
                .request(axum::http::Request::from_parts(parts, body))
                .await
            {
                Ok(resp) => resp.map(axum::body::Body::new).into_response(),
                Err(_) => axum::http::StatusCode::BAD_GATEWAY.into_response(),
            }
        }
    })
}

/// A controller process under test.
enum Running {
    Go(GoController),
    Manager(ManagerProcess),
}

impl Running {
    fn stats(&self) -> workload_env::ProcStats {
        match self {
            Running::Go(g) => g.stats(),
            Running::Manager(m) => m.stats(),
        }
    }

    fn log_tail(&self) -> String {
        match self {
            Running::Go(g) => g.log_tail(20),
            Running::Manager(m) => m.log_tail(20),
        }
    }

    /// The manager's failed and requeued reconciles (its metrics); `None` for Go, which has
    /// no metrics.
    async fn retries(&self) -> Option<(f64, f64)> {
        let Running::Manager(m) = self else {
            return None;
        };
        let text = m.metrics().await;
        let count = |result| {
            workload_env::metric_sum(&text, "threeport_reconcile_total", &[("result", result)])
        };
        Some((count("error"), count("requeue")))
    }

    fn stop(self) {
        match self {
            Running::Go(mut g) => g.kill(),
            Running::Manager(mut m) => {
                m.stop(Duration::from_secs(30));
            }
        }
    }
}

fn start(
    controller: Controller,
    env: &[(String, String)],
    manager_bin: &std::path::Path,
    dir: &std::path::Path,
    enable: &str,
) -> anyhow::Result<Running> {
    Ok(match controller {
        Controller::Go => Running::Go(GoController::start(
            "workload-controller",
            env,
            dir.join("workload-controller.log"),
        )),
        Controller::Manager { workers } => Running::Manager(ManagerProcess::spawn(
            env,
            &ManagerSpec {
                bin: manager_bin,
                concurrency: workers,
                log: dir.join("manager.log"),
                enable,
                test_timings: false,
                nats_urls: &[],
            },
        )?),
    })
}

struct Row {
    controller: Controller,
    n: usize,
    all_reconciled: Duration,
    p50: Duration,
    p99: Duration,
    all_deleted: Duration,
    peak_rss_kib: u64,
    cpu_seconds: f64,
    api_requests: usize,
    kube_requests: usize,
    kube_requests_all_clients: f64,
    lock_holds: Vec<Duration>,
    /// CPU seconds of the stack's components over create + delete.
    stack_cpu: BTreeMap<String, f64>,
    /// Wall time of create + delete.
    window: Duration,
    /// The manager's failed and requeued reconcile attempts (Go reports none).
    retries: Option<(f64, f64)>,
}

fn parse_time(v: &Value) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(v.as_str()?, &time::format_description::well_known::Rfc3339).ok()
}

/// The number of workload instances the API lists (one request: `TotalCount` of page 1).
async fn instance_count(api: &dyn ThreeportApi) -> anyhow::Result<u64> {
    let path = format!("/v0/{}", WORKLOAD_INSTANCE.path);
    let resp = api
        .call(
            ApiRequest::new(Method::Get, path.clone(), path)
                .query("page", "1")
                .query("size", "1"),
        )
        .await?;
    Ok(resp.meta.total_count)
}

/// Sum of `apiserver_request_total` over every label set.
async fn apiserver_requests(kube: &kube::Client) -> f64 {
    let req = http::Request::get("/metrics")
        .body(Vec::new())
        .expect("request");
    let text = kube.request_text(req).await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Record how long each lock in `bucket` is held (put -> delete, by the server's timestamps)
/// until `stop` fires.
async fn watch_lock_holds(
    nats_url: String,
    stop: tokio_util::sync::CancellationToken,
) -> Vec<Duration> {
    let Ok(client) = async_nats::connect(&nats_url).await else {
        return Vec::new();
    };
    let js = async_nats::jetstream::new(client);
    let Ok(store) = js.get_key_value("workloadLock").await else {
        return Vec::new();
    };
    let Ok(mut watch) = store.watch_all().await else {
        return Vec::new();
    };
    let mut taken: HashMap<String, time::OffsetDateTime> = HashMap::new();
    let mut holds = Vec::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return holds,
            e = watch.next() => match e {
                Some(Ok(entry)) => match entry.operation {
                    kv::Operation::Put => { taken.insert(entry.key, entry.created); }
                    _ => if let Some(at) = taken.remove(&entry.key) {
                        holds.push((entry.created - at).try_into().unwrap_or_default());
                    },
                },
                _ => return holds,
            },
        }
    }
}

async fn run_row(args: &Args, controller: Controller, n: usize) -> anyhow::Result<Row> {
    let stack = Stack::upstream(false).await.ok_or_else(|| {
        anyhow::anyhow!("the upstream binaries are not built: scripts/upstream.sh build")
    })?;
    let dir = tempfile::tempdir()?;
    let counter = ApiCounter::start(&stack.api_server)?;
    let mut running = start(
        controller,
        &counter.env(&stack),
        &args.manager,
        dir.path(),
        "workload",
    )?;
    if let Running::Manager(m) = &mut running {
        m.wait_ready(Duration::from_secs(30)).await?;
    }
    let def = scale_suite::create_web_definition(&stack, "web-app", &|| running.log_tail()).await;
    let api = stack.api.clone();

    let up_dir = stack.upstream_dir().expect("real stack").to_path_buf();
    let audit_from = kube_requests(&up_dir).len();
    let kube_all_from = apiserver_requests(&stack.kube).await;
    let cpu_from = running.stats().cpu_seconds().unwrap_or(0.0);
    let stack_cpu_from = stack_cpu(&up_dir);
    let window = Instant::now();
    let stop_watch = tokio_util::sync::CancellationToken::new();
    let holds = tokio::spawn(watch_lock_holds(stack.nats_url.clone(), stop_watch.clone()));
    let api_from = counter.count();

    // Create.
    let t0 = time::OffsetDateTime::now_utc();
    let ids = scale_suite::post_instances(&stack, def, "web", n, IN_FLIGHT).await;
    let started = Instant::now();
    let instances = loop {
        let all = api.list(WORKLOAD_INSTANCE, &[]).await?;
        if all.len() == n && all.iter().all(|o| o["Reconciled"] == true) {
            break all;
        }
        anyhow::ensure!(
            started.elapsed() < ROW_LIMIT,
            "not all reconciled within {ROW_LIMIT:?}; {}",
            running.log_tail()
        );
        // The timings come from the API's timestamps; the poll only needs to see the end, and
        // a cheap one keeps the harness off the cores the stack needs.
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let mut latencies = Vec::with_capacity(n);
    let mut last = t0;
    for o in &instances {
        let (Some(c), Some(u)) = (parse_time(&o["CreatedAt"]), parse_time(&o["UpdatedAt"])) else {
            anyhow::bail!("instance without timestamps: {o}");
        };
        latencies.push(Duration::try_from(u - c).unwrap_or_default());
        last = last.max(u);
    }
    latencies.sort();
    let all_reconciled = Duration::try_from(last - t0).unwrap_or_default();

    // Delete.
    let d0 = Instant::now();
    let deleted: Vec<anyhow::Result<()>> = futures::stream::iter(ids)
        .map(|id| {
            let api = api.clone();
            async move {
                api.delete(WORKLOAD_INSTANCE, id).await?;
                Ok(())
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    deleted.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    while instance_count(api.as_ref()).await? > 0 {
        anyhow::ensure!(
            d0.elapsed() < ROW_LIMIT,
            "not all deleted within {ROW_LIMIT:?}; {}",
            running.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all_deleted = d0.elapsed();

    let cpu_seconds = running.stats().cpu_seconds().unwrap_or(0.0) - cpu_from;
    let window = window.elapsed();
    let mut stack_cpu_used = stack_cpu(&up_dir);
    for (name, used) in &mut stack_cpu_used {
        *used -= stack_cpu_from.get(name).copied().unwrap_or(0.0);
    }
    let peak_rss_kib = running.stats().peak_rss_kib().unwrap_or(0);
    stop_watch.cancel();
    let lock_holds = holds.await.unwrap_or_default();
    // Let the servers flush their logs.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let kube_all = apiserver_requests(&stack.kube).await - kube_all_from;
    let agent = controller.user_agent();
    let kube = kube_requests(&up_dir)[audit_from..]
        .iter()
        .filter(|r| r.user_agent.starts_with(agent))
        .count();
    let api_count = (counter.count() - api_from) as usize;
    let retries = running.retries().await;
    running.stop();
    Ok(Row {
        controller,
        n,
        all_reconciled,
        p50: quantile(&latencies, 0.50),
        p99: quantile(&latencies, 0.99),
        all_deleted,
        peak_rss_kib,
        cpu_seconds,
        api_requests: api_count,
        kube_requests: kube,
        kube_requests_all_clients: kube_all,
        lock_holds,
        stack_cpu: stack_cpu_used,
        window,
        retries,
    })
}

/// CPU seconds (utime + stime) of each process `scripts/upstream.sh up` started (`DIR/pids`),
/// its direct children included (PostgreSQL's backends), by component name.
fn stack_cpu(dir: &std::path::Path) -> BTreeMap<String, f64> {
    let pids: Vec<(String, u32)> = std::fs::read_to_string(dir.join("pids"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (name, pid) = l.split_once(' ')?;
            Some((name.to_string(), pid.trim().parse().ok()?))
        })
        .collect();
    // ppid of every process: field 4 of /proc/<pid>/stat, after the command in parentheses.
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            let ppid = stat
                .rfind(')')
                .and_then(|i| stat[i + 2..].split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut out = BTreeMap::new();
    for (name, pid) in pids {
        let own = workload_env::cpu_seconds(pid).unwrap_or(0.0);
        let kids: f64 = children
            .get(&pid)
            .map(|c| c.iter().filter_map(|&k| workload_env::cpu_seconds(k)).sum())
            .unwrap_or(0.0);
        *out.entry(name).or_insert(0.0) += own + kids;
    }
    out
}

/// Idle RSS (KiB) of the nine Go controllers, one process each, and of one manager with every
/// implemented controller; on one stack, after `settle`.
async fn idle_memory(args: &Args) -> anyhow::Result<(BTreeMap<String, Option<u64>>, u64)> {
    let settle = Duration::from_secs(10);
    let stack = Stack::upstream(false)
        .await
        .ok_or_else(|| anyhow::anyhow!("the upstream binaries are not built"))?;
    let dir = tempfile::tempdir()?;
    let mut go: Vec<GoController> = go_controller::ALL
        .iter()
        .map(|name| {
            GoController::start(
                name,
                &stack.process_env(),
                dir.path().join(format!("{name}.log")),
            )
        })
        .collect();
    tokio::time::sleep(settle).await;
    let mut rss = BTreeMap::new();
    for g in &mut go {
        // A controller that exited (it needs something this stack does not have) counts as
        // unmeasured, not as zero.
        let value = if g.running() {
            g.stats().rss_kib()
        } else {
            None
        };
        if value.is_none() {
            eprintln!("{} is not running:\n{}", g.name, g.log_tail(5));
        }
        rss.insert(g.name.clone(), value);
    }
    for mut g in go {
        g.kill();
    }
    let mut manager = ManagerProcess::spawn(
        &stack.process_env(),
        &ManagerSpec {
            bin: &args.manager,
            concurrency: 1,
            log: dir.path().join("manager.log"),
            enable: "*",
            test_timings: false,
            nats_urls: &[],
        },
    )?;
    manager.wait_ready(Duration::from_secs(30)).await?;
    tokio::time::sleep(settle).await;
    let manager_rss = manager.stats().rss_kib().unwrap_or(0);
    manager.stop(Duration::from_secs(30));
    Ok((rss, manager_rss))
}

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn ratio(manager: f64, go: f64) -> String {
    if go > 0.0 {
        format!("{:.2}", manager / go)
    } else {
        "-".into()
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map(|k| format!("{:.0} GiB", k as f64 / 1024.0 / 1024.0))
        .unwrap_or_default();
    format!("{cores} cores ({cpu}), {mem}")
}

fn print_rows(rows: &[Row]) {
    println!(
        "| controller | N | all reconciled s | inst/s | p50 ms | p99 ms | all deleted s | peak RSS MiB | CPU s | API req/inst | kube req/inst (audit) | apiserver_request_total Δ/inst (all clients) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let n = r.n as f64;
        println!(
            "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            r.controller.label(),
            r.n,
            secs(r.all_reconciled),
            n / r.all_reconciled.as_secs_f64().max(1e-9),
            ms(r.p50),
            ms(r.p99),
            secs(r.all_deleted),
            mib(r.peak_rss_kib),
            r.cpu_seconds,
            r.api_requests as f64 / n,
            r.kube_requests as f64 / n,
            r.kube_requests_all_clients / n,
        );
    }
    println!();
    println!("Ratios, manager / Go at the same N (below 1 is better for the manager):");
    println!();
    println!("| controller | N | all reconciled | p99 | all deleted | peak RSS | CPU s | API req/inst | kube req/inst |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows.iter().filter(|r| r.controller != Controller::Go) {
        let Some(go) = rows
            .iter()
            .find(|g| g.controller == Controller::Go && g.n == r.n)
        else {
            continue;
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.controller.label(),
            r.n,
            ratio(
                r.all_reconciled.as_secs_f64(),
                go.all_reconciled.as_secs_f64()
            ),
            ratio(r.p99.as_secs_f64(), go.p99.as_secs_f64()),
            ratio(r.all_deleted.as_secs_f64(), go.all_deleted.as_secs_f64()),
            ratio(r.peak_rss_kib as f64, go.peak_rss_kib as f64),
            ratio(r.cpu_seconds, go.cpu_seconds),
            ratio(r.api_requests as f64, go.api_requests as f64),
            ratio(r.kube_requests as f64, go.kube_requests as f64),
        );
    }
    println!();
    println!("Where the CPU went over create + delete (seconds; the machine has {} core-seconds per wall second):", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
    println!();
    let names: Vec<&String> = rows
        .first()
        .map(|r| r.stack_cpu.keys().collect())
        .unwrap_or_default();
    let header: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
    println!(
        "| controller | N | wall s | controller | {} | total |",
        header.join(" | ")
    );
    println!("|---|---:|---:|---:|{}---:|", "---:|".repeat(names.len()));
    for r in rows {
        let cells: Vec<String> = names
            .iter()
            .map(|n| format!("{:.1}", r.stack_cpu.get(*n).copied().unwrap_or(0.0)))
            .collect();
        let total = r.cpu_seconds + r.stack_cpu.values().sum::<f64>();
        println!(
            "| {} | {} | {:.1} | {:.1} | {} | {:.1} |",
            r.controller.label(),
            r.n,
            r.window.as_secs_f64(),
            r.cpu_seconds,
            cells.join(" | "),
            total
        );
    }
    for r in rows.iter().filter(|r| r.controller == Controller::Go) {
        let mut holds = r.lock_holds.clone();
        holds.sort();
        if let Some(max) = holds.last() {
            println!();
            println!(
                "Go controller, N={}: {} lock holds, p50 {} ms, p99 {} ms, max {} ms",
                r.n,
                holds.len(),
                ms(quantile(&holds, 0.5)),
                ms(quantile(&holds, 0.99)),
                ms(*max)
            );
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = parse_args();
    anyhow::ensure!(
        args.manager.exists(),
        "manager binary {} not found (build it, or pass --manager PATH / THREEPORT_MANAGER_BIN)",
        args.manager.display()
    );
    if !backend::upstream_built() {
        println!("peer bench: the upstream binaries are not built (scripts/upstream.sh build); nothing to measure.");
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    println!("machine: {}", machine());
    println!("manager: {}", args.manager.display());
    println!();
    if !args.idle_only {
        let mut rows = Vec::new();
        for &n in &args.sizes {
            for &c in &args.rows {
                eprintln!("running {} with N={n} ...", c.label());
                let row = rt.block_on(run_row(&args, c, n))?;
                eprintln!(
                    "  all reconciled {} s, all deleted {} s, (failed, requeued) attempts {:?}",
                    secs(row.all_reconciled),
                    secs(row.all_deleted),
                    row.retries
                );
                rows.push(row);
            }
        }
        print_rows(&rows);
        println!();
    }
    let (go, manager) = rt.block_on(idle_memory(&args))?;
    println!("Idle RSS after 10 s on a fresh stack:");
    println!();
    println!("| process | RSS MiB |");
    println!("|---|---:|");
    let mut sum = 0;
    for (name, rss) in &go {
        match rss {
            Some(kib) => {
                sum += kib;
                println!("| Go {name} | {} |", mib(*kib));
            }
            None => println!("| Go {name} | exited |"),
        }
    }
    let measured = go.values().filter(|v| v.is_some()).count();
    println!(
        "| **{measured} Go controllers, summed** | **{}** |",
        mib(sum)
    );
    println!(
        "| **threeport-manager, every implemented controller** | **{}** ({}x of the sum) |",
        mib(manager),
        ratio(manager as f64, sum as f64)
    );
    Ok(())
}
