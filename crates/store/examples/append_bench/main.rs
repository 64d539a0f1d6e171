//! Append throughput and latency of [`SqlEventStore`] on SQLite and PostgreSQL.
//!
//! ```text
//! cargo run --release -p larder-store --example append_bench -- \
//!     [--backend sqlite|postgres|both] [--scenario single|batch100|concurrent]
//!     [--events N] [--tasks T] [--per-task M] [--seconds S] [--probe]
//! ```
//!
//! Three scenarios, one after the other, on a fresh database per backend (a
//! new SQLite file, removed at the end; a new PostgreSQL schema, dropped at
//! the end):
//! 1. `single`: one task appends `N` single-event appends, each awaiting its
//!    commit before the next.
//! 2. `batch100`: one task appends `N` events as 100-event appends.
//! 3. `concurrent`: `T` tasks each append `M` single events at once, so the
//!    store's writer shares one transaction among the appends waiting
//!    (group commit).
//!
//! Every writer appends to its own stream with `ExpectedVersion::Exact`, as a
//! command handler does. Every scenario is bounded in count and in time: it
//! stops after `S` seconds even if not done, and says so. Events are built
//! before the clock starts, so the figures are the store's alone.
//!
//! Prints a table, then one JSON line with every figure. PostgreSQL comes from
//! `LARDER_BENCH_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`);
//! if it is unreachable the benchmark fails, it never skips.
//!
//! The example also counts the writer's commits (from the store's `committed
//! append batch` debug event), to show how many appends share a transaction.
//!
//! `--probe` runs diagnostics instead (see the `probe` and `lean` modules):
//! round-trip costs, appends on short against long streams, the snapshot
//! query's two forms, and a lean sqlx append path with the changes that
//! `docs/benchmarks.md` recommends, to measure what they would buy.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use larder_store::{
    Database, EventStore, ExpectedVersion, Metadata, NewEvent, SqlEventStore, StoreOptions,
};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

mod commits;
mod database;
mod lean;
mod probe;

use commits::CommitCounts;
use database::BenchDatabase;

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The scenarios, in the order they run.
const SCENARIOS: [&str; 3] = ["single", "batch100", "concurrent"];

/// Events per append in the batch scenario.
const BATCH_SIZE: usize = 100;

/// Appends made before measuring: connections opened, statements prepared
/// (SQLite prepares one insert shape per chunk size), caches warm.
const WARMUP_APPENDS: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

#[derive(Debug)]
struct Args {
    backends: Vec<Backend>,
    /// Events in the single and the batch scenario.
    events: usize,
    /// Concurrent writers in the concurrent scenario.
    tasks: usize,
    /// Single-event appends per concurrent writer.
    per_task: usize,
    /// Time limit of each scenario.
    limit: Duration,
    /// Run the diagnostic probes instead of the benchmark.
    probe: bool,
    /// Run only this scenario (all three when absent).
    scenario: Option<String>,
}

impl Args {
    fn parse() -> Result<Self> {
        let mut args = Args {
            backends: vec![Backend::Sqlite, Backend::Postgres],
            events: 20_000,
            tasks: 64,
            per_task: 500,
            limit: Duration::from_secs(30),
            probe: false,
            scenario: None,
        };
        let mut raw = std::env::args().skip(1);
        while let Some(flag) = raw.next() {
            if flag == "--help" || flag == "-h" {
                println!(
                    "append_bench [--backend sqlite|postgres|both] [--scenario single|batch100|concurrent] [--events N] [--tasks T] [--per-task M] [--seconds S] [--probe]"
                );
                std::process::exit(0);
            }
            if flag == "--probe" {
                args.probe = true;
                continue;
            }
            let value = raw
                .next()
                .with_context(|| format!("{flag} needs a value"))?;
            let number = || -> Result<usize> {
                let n: usize = value
                    .parse()
                    .with_context(|| format!("{flag} {value}: not a number"))?;
                if n == 0 {
                    bail!("{flag} must be at least 1");
                }
                Ok(n)
            };
            match flag.as_str() {
                "--backend" => {
                    args.backends = match value.as_str() {
                        "sqlite" => vec![Backend::Sqlite],
                        "postgres" => vec![Backend::Postgres],
                        "both" => vec![Backend::Sqlite, Backend::Postgres],
                        other => bail!("--backend {other}: expected sqlite, postgres or both"),
                    }
                }
                "--scenario" => {
                    if !SCENARIOS.contains(&value.as_str()) {
                        bail!(
                            "--scenario {value}: expected one of {}",
                            SCENARIOS.join(", ")
                        );
                    }
                    args.scenario = Some(value);
                }
                "--events" => args.events = number()?,
                "--tasks" => args.tasks = number()?,
                "--per-task" => args.per_task = number()?,
                "--seconds" => args.limit = Duration::from_secs(number()? as u64),
                other => bail!("unknown flag {other} (try --help)"),
            }
        }
        if args.events < BATCH_SIZE {
            bail!("--events must be at least {BATCH_SIZE} (one batch)");
        }
        Ok(args)
    }
}

/// One scenario's figures.
#[derive(Debug)]
struct Outcome {
    backend: Backend,
    scenario: &'static str,
    /// Events committed.
    events: usize,
    /// Appends (calls to `append`) made.
    appends: usize,
    elapsed: Duration,
    /// Latency of each append, sorted.
    latencies: Vec<Duration>,
    /// Whether the time limit stopped it before all its appends.
    stopped_early: bool,
    commits: CommitCounts,
}

impl Outcome {
    fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }

    /// Nearest-rank percentile of the append latency, in milliseconds.
    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.latencies.len()) - 1;
        self.latencies[index].as_secs_f64() * 1e3
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "backend": self.backend.name(),
            "scenario": self.scenario,
            "events": self.events,
            "appends": self.appends,
            "seconds": round(self.elapsed.as_secs_f64(), 4),
            "events_per_s": round(self.events_per_second(), 0),
            "p50_ms": round(self.percentile_ms(50.0), 4),
            "p90_ms": round(self.percentile_ms(90.0), 4),
            "p99_ms": round(self.percentile_ms(99.0), 4),
            "p999_ms": round(self.percentile_ms(99.9), 4),
            "max_ms": round(self.percentile_ms(100.0), 4),
            "stopped_early": self.stopped_early,
            "commits": self.commits.commits,
            "appends_per_commit": round(self.commits.appends_per_commit(), 2),
            "commit_mean_ms": round(self.commits.mean_commit_ms(), 4),
        })
    }
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse()?;
    commits::install();
    if args.probe {
        for &backend in &args.backends {
            let bench = BenchDatabase::open(backend).await?;
            eprintln!("{}: {}", backend.name(), bench.describe());
            let result = probe::run(&bench.store, backend).await;
            bench.close().await?;
            result?;
        }
        return Ok(());
    }

    let mut outcomes = Vec::new();
    let mut environment = serde_json::Map::new();
    for &backend in &args.backends {
        let bench = BenchDatabase::open(backend).await?;
        for (key, value) in &bench.facts {
            environment.insert(format!("{}_{key}", backend.name()), json!(value));
        }
        eprintln!("{}: {}", backend.name(), bench.describe());
        // Run, then clean up whatever happened, then report a failure.
        let result = run_scenarios(&bench.store, backend, &args).await;
        bench.close().await?;
        outcomes.extend(result?);
    }

    print_table(&outcomes);
    let line = json!({
        "bench": "append",
        "tasks": args.tasks,
        "batch_size": BATCH_SIZE,
        "event_data_bytes": event_data_bytes(),
        "limit_seconds": args.limit.as_secs(),
        "environment": environment,
        "results": outcomes.iter().map(Outcome::json).collect::<Vec<_>>(),
    });
    println!("{line}");
    Ok(())
}

async fn run_scenarios(
    store: &SqlEventStore,
    backend: Backend,
    args: &Args,
) -> Result<Vec<Outcome>> {
    warm_up(store).await?;
    let wanted = |name: &str| args.scenario.as_deref().is_none_or(|only| only == name);
    let mut outcomes = Vec::new();
    if wanted("single") {
        outcomes.push(single(store, backend, args).await?);
    }
    if wanted("batch100") {
        outcomes.push(batched(store, backend, args).await?);
    }
    if wanted("concurrent") {
        outcomes.push(concurrent(store, backend, args).await?);
    }
    Ok(outcomes)
}

async fn warm_up(store: &SqlEventStore) -> Result<()> {
    let mut writer = Writer::new();
    for _ in 0..WARMUP_APPENDS / 2 {
        let events = writer.events(1);
        writer.append(store, events).await?;
    }
    // Batch sizes that make SQLite prepare every insert chunk shape.
    for size in [BATCH_SIZE, 64, 16, 4, 1] {
        let events = writer.events(size);
        writer.append(store, events).await?;
    }
    let concurrent: Vec<_> = (0..WARMUP_APPENDS / 2)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut writer = Writer::new();
                let events = writer.events(1);
                writer.append(&store, events).await
            })
        })
        .collect();
    for task in concurrent {
        task.await??;
    }
    Ok(())
}

async fn single(store: &SqlEventStore, backend: Backend, args: &Args) -> Result<Outcome> {
    let mut writer = Writer::new();
    let events: Vec<_> = (0..args.events).map(|_| writer.events(1)).collect();
    let before = commits::snapshot();
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(events.len());
    for append in events {
        if started.elapsed() > args.limit {
            break;
        }
        let t = Instant::now();
        writer.append(store, append).await?;
        latencies.push(t.elapsed());
    }
    let elapsed = started.elapsed();
    Ok(Outcome::new(
        backend,
        "single",
        latencies,
        1,
        elapsed,
        args.events,
        before,
    ))
}

async fn batched(store: &SqlEventStore, backend: Backend, args: &Args) -> Result<Outcome> {
    let mut writer = Writer::new();
    let batches = args.events / BATCH_SIZE;
    let events: Vec<_> = (0..batches).map(|_| writer.events(BATCH_SIZE)).collect();
    let before = commits::snapshot();
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(batches);
    for append in events {
        if started.elapsed() > args.limit {
            break;
        }
        let t = Instant::now();
        writer.append(store, append).await?;
        latencies.push(t.elapsed());
    }
    let elapsed = started.elapsed();
    Ok(Outcome::new(
        backend, "batch100", latencies, BATCH_SIZE, elapsed, batches, before,
    ))
}

async fn concurrent(store: &SqlEventStore, backend: Backend, args: &Args) -> Result<Outcome> {
    let work: Vec<_> = (0..args.tasks)
        .map(|_| {
            let mut writer = Writer::new();
            let events: Vec<_> = (0..args.per_task).map(|_| writer.events(1)).collect();
            (writer, events)
        })
        .collect();
    // Every task starts together: none gets a head start while the others
    // are still being spawned.
    let start = Arc::new(tokio::sync::Barrier::new(args.tasks + 1));
    let limit = args.limit;
    let tasks: Vec<_> = work
        .into_iter()
        .map(|(mut writer, events)| {
            let store = store.clone();
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                let started = Instant::now();
                let mut latencies = Vec::with_capacity(events.len());
                for append in events {
                    if started.elapsed() > limit {
                        break;
                    }
                    let t = Instant::now();
                    writer.append(&store, append).await?;
                    latencies.push(t.elapsed());
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let before = commits::snapshot();
    start.wait().await;
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(args.tasks * args.per_task);
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    Ok(Outcome::new(
        backend,
        "concurrent",
        latencies,
        1,
        elapsed,
        args.tasks * args.per_task,
        before,
    ))
}

impl Outcome {
    fn new(
        backend: Backend,
        scenario: &'static str,
        mut latencies: Vec<Duration>,
        events_per_append: usize,
        elapsed: Duration,
        planned_appends: usize,
        before: CommitCounts,
    ) -> Self {
        let commits = commits::snapshot().since(&before);
        latencies.sort_unstable();
        Self {
            backend,
            scenario,
            events: latencies.len() * events_per_append,
            appends: latencies.len(),
            elapsed,
            stopped_early: latencies.len() < planned_appends,
            latencies,
            commits,
        }
    }
}

/// One writer: its own stream, the version it last saw, and a fixed item
/// and store, like a command handler appending to one aggregate.
#[derive(Debug)]
struct Writer {
    stream: String,
    version: u64,
    item: Uuid,
    store: Uuid,
    quantity: i64,
}

impl Writer {
    fn new() -> Self {
        let item = Uuid::new_v4();
        Self {
            stream: format!("item-{item}"),
            version: 0,
            item,
            store: Uuid::new_v4(),
            quantity: 1_000_000,
        }
    }

    /// `count` events of one command: they share a correlation id.
    fn events(&mut self, count: usize) -> Vec<NewEvent> {
        let correlation = Uuid::new_v4();
        (0..count)
            .map(|n| {
                let delta = -((n % 7) as i64 + 1);
                self.quantity += delta;
                stock_adjusted(self.item, self.store, delta, self.quantity, correlation)
            })
            .collect()
    }

    /// Appends at the version this writer last saw, and checks the outcome.
    async fn append(&mut self, store: &SqlEventStore, events: Vec<NewEvent>) -> Result<()> {
        let count = events.len() as u64;
        let result = store
            .append(&self.stream, ExpectedVersion::Exact(self.version), events)
            .await
            .with_context(|| format!("appending to {} at {}", self.stream, self.version))?;
        self.version += count;
        if result.version() != self.version {
            bail!(
                "{} is at version {}, expected {}",
                self.stream,
                result.version(),
                self.version
            );
        }
        Ok(())
    }
}

/// A `StockAdjusted` like the ones Larder writes (see `docs/events.md`),
/// about 200 bytes of JSON data.
fn stock_adjusted(
    item: Uuid,
    store: Uuid,
    delta: i64,
    quantity: i64,
    correlation: Uuid,
) -> NewEvent {
    let data = json!({
        "item_id": item,
        "store_id": store,
        "delta": delta,
        "quantity": quantity,
        "reason": "sold",
        "note": "lunch service, till 3",
        "unit": "each",
    });
    let metadata = Metadata {
        tenant: "acme".into(),
        store: Some(store.to_string()),
        entity_type: "item".into(),
        entity_id: item.to_string(),
        actor: Some("user-42".into()),
        session: Some("session-7".into()),
        correlation_id: Some(correlation),
        causation_id: Some(correlation),
    };
    NewEvent::new("StockAdjusted", 1, data, metadata)
}

fn event_data_bytes() -> usize {
    let event = stock_adjusted(Uuid::nil(), Uuid::nil(), -7, 999_993, Uuid::nil());
    event.data.to_string().len()
}

fn print_table(outcomes: &[Outcome]) {
    println!(
        "{:<9} {:<11} {:>7} {:>7} {:>8} {:>10} {:>9} {:>9} {:>9} {:>8} {:>9} {:>10}",
        "backend",
        "scenario",
        "events",
        "appends",
        "seconds",
        "events/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "commits",
        "appends/c",
        "commit ms"
    );
    for o in outcomes {
        println!(
            "{:<9} {:<11} {:>7} {:>7} {:>8.3} {:>10.0} {:>9.3} {:>9.3} {:>9.3} {:>8} {:>9.1} {:>10.3}{}",
            o.backend.name(),
            o.scenario,
            o.events,
            o.appends,
            o.elapsed.as_secs_f64(),
            o.events_per_second(),
            o.percentile_ms(50.0),
            o.percentile_ms(99.0),
            o.percentile_ms(100.0),
            o.commits.commits,
            o.commits.appends_per_commit(),
            o.commits.mean_commit_ms(),
            if o.stopped_early {
                "  (stopped at the time limit)"
            } else {
                ""
            }
        );
    }
}
