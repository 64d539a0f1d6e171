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

/// A fresh database for one backend, and what it runs on.
struct BenchDatabase {
    store: SqlEventStore,
    facts: Vec<(&'static str, String)>,
    cleanup: Cleanup,
}

enum Cleanup {
    /// The SQLite file and its WAL and shared-memory files.
    Sqlite(PathBuf),
    /// The schema to drop, and a pool outside it to drop it through.
    Postgres { schema: String, admin: sqlx::PgPool },
}

impl BenchDatabase {
    async fn open(backend: Backend) -> Result<Self> {
        match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("larder-bench-{}.db", Uuid::new_v4()));
                let url = format!("sqlite://{}", path.display());
                let store = SqlEventStore::connect(&url, StoreOptions::default())
                    .await
                    .with_context(|| format!("opening {url}"))?;
                let Database::Sqlite(pool) = store.database() else {
                    bail!("{url} did not open as SQLite");
                };
                let mut facts = vec![("file", path.display().to_string())];
                for (key, sql) in [
                    ("version", "SELECT sqlite_version()"),
                    ("journal_mode", "PRAGMA journal_mode"),
                    // 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA.
                    ("synchronous", "PRAGMA synchronous"),
                ] {
                    let value: String =
                        match sqlx::query_scalar::<_, String>(sql).fetch_one(&pool).await {
                            Ok(text) => text,
                            Err(_) => sqlx::query_scalar::<_, i64>(sql)
                                .fetch_one(&pool)
                                .await?
                                .to_string(),
                        };
                    facts.push((key, value));
                }
                Ok(Self {
                    store,
                    facts,
                    cleanup: Cleanup::Sqlite(path),
                })
            }
            Backend::Postgres => {
                let url = std::env::var("LARDER_BENCH_DATABASE_URL")
                    .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into());
                let admin = PgPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(&url)
                    .await
                    .with_context(|| {
                        format!(
                            "PostgreSQL is unreachable at {} (set LARDER_BENCH_DATABASE_URL)",
                            redact(&url)
                        )
                    })?;
                let mut facts = Vec::new();
                for (key, sql) in [
                    ("version", "SELECT version()"),
                    ("synchronous_commit", "SHOW synchronous_commit"),
                    ("fsync", "SHOW fsync"),
                    ("wal_sync_method", "SHOW wal_sync_method"),
                ] {
                    let value: String = sqlx::query_scalar(sql).fetch_one(&admin).await?;
                    facts.push((key, value));
                }
                let schema = format!("larder_bench_{}", Uuid::new_v4().simple());
                let store =
                    SqlEventStore::connect(&url, StoreOptions::default().pg_schema(&schema)).await;
                let store = match store {
                    Ok(store) => store,
                    Err(error) => {
                        // The schema may exist already; leave nothing behind.
                        drop_schema(&admin, &schema).await?;
                        return Err(error).context("opening the PostgreSQL event store");
                    }
                };
                facts.push(("schema", schema.clone()));
                Ok(Self {
                    store,
                    facts,
                    cleanup: Cleanup::Postgres { schema, admin },
                })
            }
        }
    }

    fn describe(&self) -> String {
        self.facts
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    async fn close(self) -> Result<()> {
        drop(self.store);
        match self.cleanup {
            Cleanup::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
                Ok(())
            }
            Cleanup::Postgres { schema, admin } => {
                drop_schema(&admin, &schema).await?;
                admin.close().await;
                Ok(())
            }
        }
    }
}

async fn drop_schema(admin: &sqlx::PgPool, schema: &str) -> Result<()> {
    // The name is ours (letters, digits, underscores), so quoting is enough.
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .execute(admin)
        .await
        .with_context(|| format!("dropping schema {schema}"))?;
    Ok(())
}

/// The URL without its password, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
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

/// Commits counted by the writer, between two snapshots.
#[derive(Debug, Clone, Copy, Default)]
struct CommitCounts {
    commits: u64,
    requests: u64,
    events: u64,
    commit_us: u64,
}

impl CommitCounts {
    fn since(&self, before: &Self) -> Self {
        Self {
            commits: self.commits - before.commits,
            requests: self.requests - before.requests,
            events: self.events - before.events,
            commit_us: self.commit_us - before.commit_us,
        }
    }

    fn appends_per_commit(&self) -> f64 {
        self.requests as f64 / self.commits.max(1) as f64
    }

    /// Mean time the writer spent in one commit (lock, snapshot, insert, commit).
    fn mean_commit_ms(&self) -> f64 {
        self.commit_us as f64 / self.commits.max(1) as f64 / 1e3
    }
}

/// Counts the store's `committed append batch` debug events with a minimal
/// `tracing` subscriber, so the example needs no extra dependency. Warnings
/// and errors from anywhere go to stderr.
mod commits {
    use super::*;
    use tracing::field::{Field, Visit};
    use tracing::level_filters::LevelFilter;
    use tracing::{Event, Level, Subscriber, span};

    static COMMITS: AtomicU64 = AtomicU64::new(0);
    static REQUESTS: AtomicU64 = AtomicU64::new(0);
    static EVENTS: AtomicU64 = AtomicU64::new(0);
    static COMMIT_US: AtomicU64 = AtomicU64::new(0);

    pub fn install() {
        tracing::subscriber::set_global_default(Recorder)
            .expect("no other subscriber is installed");
    }

    pub fn snapshot() -> CommitCounts {
        CommitCounts {
            commits: COMMITS.load(Ordering::Relaxed),
            requests: REQUESTS.load(Ordering::Relaxed),
            events: EVENTS.load(Ordering::Relaxed),
            commit_us: COMMIT_US.load(Ordering::Relaxed),
        }
    }

    struct Recorder;

    #[derive(Default)]
    struct Fields {
        requests: Option<u64>,
        events: Option<u64>,
        elapsed_us: Option<u64>,
        text: String,
    }

    impl Visit for Fields {
        fn record_u64(&mut self, field: &Field, value: u64) {
            match field.name() {
                "requests" => self.requests = Some(value),
                "events" => self.events = Some(value),
                "elapsed_us" => self.elapsed_us = Some(value),
                _ => self.record_debug(field, &value),
            }
        }

        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            use std::fmt::Write;
            let _ = write!(self.text, " {}={value:?}", field.name());
        }
    }

    impl Subscriber for Recorder {
        fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
            *metadata.level() <= Level::WARN
                || (*metadata.level() == Level::DEBUG
                    && metadata.target().starts_with("larder_store"))
        }

        fn max_level_hint(&self) -> Option<LevelFilter> {
            Some(LevelFilter::DEBUG)
        }

        fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
            span::Id::from_u64(1)
        }

        fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

        fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

        fn event(&self, event: &Event<'_>) {
            let mut fields = Fields::default();
            event.record(&mut fields);
            if let (Some(requests), Some(events), Some(us)) =
                (fields.requests, fields.events, fields.elapsed_us)
            {
                COMMITS.fetch_add(1, Ordering::Relaxed);
                REQUESTS.fetch_add(requests, Ordering::Relaxed);
                EVENTS.fetch_add(events, Ordering::Relaxed);
                COMMIT_US.fetch_add(us, Ordering::Relaxed);
            } else if *event.metadata().level() <= Level::WARN {
                eprintln!(
                    "{} {}:{}",
                    event.metadata().level(),
                    event.metadata().target(),
                    fields.text
                );
            }
        }

        fn enter(&self, _: &span::Id) {}

        fn exit(&self, _: &span::Id) {}
    }
}

/// Diagnostics for the append path (`--probe`): where an append's time goes.
///
/// - the cost of one database round trip through sqlx (with and without the
///   pool's acquire, which pings the connection first);
/// - single-event and 100-event appends on short streams (a new stream
///   each time) against the same on a stream that already holds
///   `LONG_STREAM` events, to separate a per-append fixed cost from one that
///   grows with the stream;
/// - the writer's snapshot query for one long stream as the store writes it
///   (`GROUP BY stream`) against a per-stream `MAX(version)` lookup.
mod probe {
    use super::*;

    const LONG_STREAM: usize = 20_000;
    const ROUND_TRIPS: usize = 2_000;
    const APPENDS: usize = 1_000;
    const BATCHES: usize = 100;

    pub async fn run(store: &SqlEventStore, backend: Backend) -> Result<()> {
        let name = backend.name();
        let line = |what: &str, value: String| println!("{name:<9} {what:<62} {value}");

        let (pool_rt, conn_rt) = round_trips(&store.database()).await?;
        line(
            "SELECT 1 through the pool (acquire + ping + query), us",
            format!("{pool_rt:.1}"),
        );
        line("SELECT 1 on a held connection, us", format!("{conn_rt:.1}"));

        warm_up(store).await?;
        let fresh = appends(store, 1, APPENDS, None, Ids::Random).await?;
        line(
            "1-event append, new stream each time: p50 ms / commit ms",
            show(fresh),
        );
        let fresh = appends(store, BATCH_SIZE, BATCHES, None, Ids::Random).await?;
        line(
            "100-event append, new stream each time: p50 ms / commit ms",
            show(fresh),
        );
        // Alternate the two kinds of ids, so both see the same table sizes.
        let (mut random, mut ordered) = (Vec::new(), Vec::new());
        for _ in 0..10 {
            random.push(appends(store, BATCH_SIZE, BATCHES / 10, None, Ids::Random).await?);
            ordered.push(appends(store, BATCH_SIZE, BATCHES / 10, None, Ids::TimeOrdered).await?);
        }
        line(
            "100-event append, new streams, random (v4) ids: p50 / commit ms",
            mean(&random),
        );
        line(
            "100-event append, new streams, v7 ids: p50 / commit ms",
            mean(&ordered),
        );

        let mut long = Writer::new();
        for _ in 0..LONG_STREAM / 1_000 {
            let events = long.events(1_000);
            long.append(store, events).await?;
        }
        let long_single = appends(store, 1, APPENDS, Some(&mut long), Ids::Random).await?;
        line(
            &format!("1-event append, stream of {LONG_STREAM}+: p50 ms / commit ms"),
            show(long_single),
        );
        let long_batch = appends(store, BATCH_SIZE, BATCHES, Some(&mut long), Ids::Random).await?;
        line(
            &format!("100-event append, stream of {LONG_STREAM}+: p50 ms / commit ms"),
            show(long_batch),
        );

        let (grouped, lookup) = snapshot_forms(&store.database(), &long.stream).await?;
        line(
            "snapshot versions, GROUP BY stream (as the store), ms",
            format!("{grouped:.3}"),
        );
        line(
            "snapshot versions, per-stream MAX(version) lookup, ms",
            format!("{lookup:.3}"),
        );

        let concurrent = concurrent_new_streams(store).await?;
        line(
            "64 tasks x 100 1-event appends, new streams: events/s / per commit",
            concurrent,
        );

        // The same appends through sqlx without the store: what the append
        // path costs with the changes recommended in docs/benchmarks.md.
        let database = store.database();
        for (writers, size, commits, ids) in [
            (1, 1, APPENDS * 2, Ids::Random),
            (1, BATCH_SIZE, BATCHES * 2, Ids::Random),
            (1, BATCH_SIZE, BATCHES * 2, Ids::TimeOrdered),
            (lean::GROUP, 1, BATCHES * 2, Ids::Random),
        ] {
            let (p50, rate) = lean::commits(&database, writers, size, commits, ids).await?;
            line(
                &format!(
                    "lean, {writers} stream(s) x {size} event(s) a commit, {ids:?} ids: p50 ms / events/s"
                ),
                format!("{p50:.3} / {rate:.0}"),
            );
        }
        Ok(())
    }

    /// Mean microseconds of `SELECT 1` through the pool and on one connection.
    async fn round_trips(database: &Database) -> Result<(f64, f64)> {
        const SQL: &str = "SELECT 1";
        let per = |t: Instant| t.elapsed().as_secs_f64() * 1e6 / ROUND_TRIPS as f64;
        Ok(match database {
            Database::Sqlite(pool) => {
                let t = Instant::now();
                for _ in 0..ROUND_TRIPS {
                    sqlx::query(SQL).execute(pool).await?;
                }
                let pooled = per(t);
                let mut conn = pool.acquire().await?;
                let t = Instant::now();
                for _ in 0..ROUND_TRIPS {
                    sqlx::query(SQL).execute(&mut *conn).await?;
                }
                (pooled, per(t))
            }
            Database::Postgres(pool) => {
                let t = Instant::now();
                for _ in 0..ROUND_TRIPS {
                    sqlx::query(SQL).execute(pool).await?;
                }
                let pooled = per(t);
                let mut conn = pool.acquire().await?;
                let t = Instant::now();
                for _ in 0..ROUND_TRIPS {
                    sqlx::query(SQL).execute(&mut *conn).await?;
                }
                (pooled, per(t))
            }
        })
    }

    /// How event ids are made.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) enum Ids {
        /// `Uuid::new_v4`, as `NewEvent::new` does: each insert lands on a
        /// random page of the id index.
        Random,
        /// UUIDv7 layout (millisecond time, then a counter): inserts land at
        /// the end of the id index.
        TimeOrdered,
    }

    pub(super) fn time_ordered_id() -> Uuid {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut tail = [0u8; 10];
        tail[..8].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        uuid::Builder::from_unix_timestamp_millis(millis, &tail).into_uuid()
    }

    /// `count` appends of `size` events, to `stream` or a new stream each.
    async fn appends(
        store: &SqlEventStore,
        size: usize,
        count: usize,
        mut stream: Option<&mut Writer>,
        ids: Ids,
    ) -> Result<(f64, f64)> {
        let mut latencies = Vec::with_capacity(count);
        let before = commits::snapshot();
        for _ in 0..count {
            let mut fresh = Writer::new();
            let writer = match stream.as_deref_mut() {
                Some(writer) => writer,
                None => &mut fresh,
            };
            let mut events = writer.events(size);
            if ids == Ids::TimeOrdered {
                for event in &mut events {
                    event.id = time_ordered_id();
                }
            }
            let t = Instant::now();
            writer.append(store, events).await?;
            latencies.push(t.elapsed());
        }
        let commit = commits::snapshot().since(&before).mean_commit_ms();
        latencies.sort_unstable();
        let p50 = latencies[latencies.len() / 2].as_secs_f64() * 1e3;
        Ok((p50, commit))
    }

    fn show((p50, commit): (f64, f64)) -> String {
        format!("{p50:.3} / {commit:.3}")
    }

    /// The mean p50 and commit time of several runs, shown.
    fn mean(runs: &[(f64, f64)]) -> String {
        let n = runs.len() as f64;
        show((
            runs.iter().map(|r| r.0).sum::<f64>() / n,
            runs.iter().map(|r| r.1).sum::<f64>() / n,
        ))
    }

    /// Mean milliseconds of the two forms of the versions part of the snapshot.
    async fn snapshot_forms(database: &Database, stream: &str) -> Result<(f64, f64)> {
        const RUNS: usize = 200;
        let streams = vec![stream.to_string()];
        let per = |t: Instant| t.elapsed().as_secs_f64() * 1e3 / RUNS as f64;
        Ok(match database {
            Database::Sqlite(pool) => {
                let json = serde_json::to_string(&streams)?;
                let grouped = "SELECT stream, MAX(version) FROM events \
                     WHERE stream IN (SELECT value FROM json_each($1)) GROUP BY stream";
                let lookup = "SELECT j.value, (SELECT MAX(version) FROM events WHERE stream = j.value) \
                     FROM json_each($1) AS j";
                let mut times = Vec::new();
                for sql in [grouped, lookup] {
                    let t = Instant::now();
                    for _ in 0..RUNS {
                        sqlx::query(sql).bind(&json).fetch_all(pool).await?;
                    }
                    times.push(per(t));
                }
                (times[0], times[1])
            }
            Database::Postgres(pool) => {
                let grouped = "SELECT stream, MAX(version) FROM events WHERE stream = ANY($1) GROUP BY stream";
                let lookup = "SELECT s, (SELECT MAX(version) FROM events WHERE stream = s) \
                     FROM unnest($1::text[]) AS s";
                let mut times = Vec::new();
                for sql in [grouped, lookup] {
                    let t = Instant::now();
                    for _ in 0..RUNS {
                        sqlx::query(sql).bind(&streams).fetch_all(pool).await?;
                    }
                    times.push(per(t));
                }
                (times[0], times[1])
            }
        })
    }

    /// 64 tasks, each making 100 single-event appends to new streams.
    async fn concurrent_new_streams(store: &SqlEventStore) -> Result<String> {
        const TASKS: usize = 64;
        const EACH: usize = 100;
        let before = commits::snapshot();
        let started = Instant::now();
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    for _ in 0..EACH {
                        let mut writer = Writer::new();
                        let events = writer.events(1);
                        writer.append(&store, events).await?;
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        let rate = (TASKS * EACH) as f64 / started.elapsed().as_secs_f64();
        let per_commit = commits::snapshot().since(&before).appends_per_commit();
        Ok(format!("{rate:.0} / {per_commit:.1}"))
    }
}

/// A lean append path straight through sqlx, on the store's own tables, with
/// what `docs/benchmarks.md` recommends for the store's writer:
/// - one connection held by the writer (the pool pings a connection on every
///   acquire: one more round trip per commit);
/// - each stream's version read with a per-stream `MAX(version)`, which the
///   index answers in O(log n), instead of `GROUP BY stream` (O(stream));
/// - PostgreSQL: `BEGIN` and the advisory lock in one round trip, and a
///   custom plan for every snapshot (`plan_cache_mode = force_custom_plan`),
///   so a generic plan made while the table was small (sequential scans)
///   is never reused once it is large.
///
/// It keeps the store's work otherwise: the write lock, one snapshot (head,
/// stream versions, stored ids), the version checks, the insert (in the
/// store's chunks on SQLite, one `UNNEST` on PostgreSQL) and the commit.
/// A commit carries one append from each of `writers` streams, as a group
/// commit of that many waiting appends does; commits run back to back, so
/// the rate is what one writer task could sustain.
mod lean {
    use super::probe::{Ids, time_ordered_id};
    use super::*;
    use chrono::Utc;
    use sqlx::QueryBuilder;

    /// Appends in one emulated group commit: the store's writer gathered
    /// 38 to 46 of the 64 waiting appends per commit in the benchmark.
    pub const GROUP: usize = 40;

    const COLUMNS: &str = "INSERT INTO events (position, id, stream, version, event_type, schema_version, data, \
         tenant, store_id, entity_type, entity_id, actor, session, correlation_id, causation_id, recorded_at) ";

    /// One row to insert.
    struct Row<'a> {
        position: i64,
        version: i64,
        stream: &'a str,
        event: &'a NewEvent,
        data: String,
    }

    /// `commits` commits of `size` events to each of `writers` streams:
    /// (p50 ms per commit, events/s).
    pub async fn commits(
        database: &Database,
        writers: usize,
        size: usize,
        commits: usize,
        ids: Ids,
    ) -> Result<(f64, f64)> {
        let mut streams: Vec<Writer> = (0..writers).map(|_| Writer::new()).collect();
        let work: Vec<Vec<Vec<NewEvent>>> = (0..commits)
            .map(|_| {
                streams
                    .iter_mut()
                    .map(|writer| {
                        let mut events = writer.events(size);
                        if ids == Ids::TimeOrdered {
                            for event in &mut events {
                                event.id = time_ordered_id();
                            }
                        }
                        events
                    })
                    .collect()
            })
            .collect();
        let mut latencies = Vec::with_capacity(commits);
        let started = Instant::now();
        match database {
            Database::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                for events in &work {
                    let t = Instant::now();
                    sqlite_commit(&mut conn, &mut streams, events).await?;
                    latencies.push(t.elapsed());
                }
            }
            Database::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                sqlx::query("SET plan_cache_mode = force_custom_plan")
                    .execute(&mut *conn)
                    .await?;
                for events in &work {
                    let t = Instant::now();
                    postgres_commit(&mut conn, &mut streams, events).await?;
                    latencies.push(t.elapsed());
                }
                // The connection goes back to the store's pool.
                sqlx::query("RESET plan_cache_mode")
                    .execute(&mut *conn)
                    .await?;
            }
        }
        let rate = (commits * writers * size) as f64 / started.elapsed().as_secs_f64();
        latencies.sort_unstable();
        Ok((latencies[latencies.len() / 2].as_secs_f64() * 1e3, rate))
    }

    /// Checks every stream's version and that no id is stored, and lays out
    /// the rows after `head`.
    fn plan<'a>(
        streams: &'a [Writer],
        events: &'a [Vec<NewEvent>],
        head: i64,
        versions: &[(String, i64)],
        stored: i64,
    ) -> Result<Vec<Row<'a>>> {
        if stored != 0 {
            bail!("{stored} event ids are already stored");
        }
        let mut position = head;
        let mut rows = Vec::new();
        for (writer, events) in streams.iter().zip(events) {
            let version = versions
                .iter()
                .find(|(stream, _)| *stream == writer.stream)
                .map_or(0, |(_, v)| *v);
            if version as u64 != writer.version {
                bail!(
                    "{} is at {version}, expected {}",
                    writer.stream,
                    writer.version
                );
            }
            for (i, event) in events.iter().enumerate() {
                position += 1;
                rows.push(Row {
                    position,
                    version: version + 1 + i as i64,
                    stream: &writer.stream,
                    event,
                    data: event.data.to_string(),
                });
            }
        }
        Ok(rows)
    }

    fn advance(streams: &mut [Writer], events: &[Vec<NewEvent>]) {
        for (writer, events) in streams.iter_mut().zip(events) {
            writer.version += events.len() as u64;
        }
    }

    async fn sqlite_commit(
        conn: &mut sqlx::SqliteConnection,
        streams: &mut [Writer],
        events: &[Vec<NewEvent>],
    ) -> Result<()> {
        let names = serde_json::to_string(&streams.iter().map(|w| &w.stream).collect::<Vec<_>>())?;
        let ids =
            serde_json::to_string(&events.iter().flatten().map(|e| e.id).collect::<Vec<_>>())?;
        let mut tx = sqlx::Connection::begin_with(&mut *conn, Database::SQLITE_BEGIN_WRITE).await?;
        // kind 0: how many ids are stored; 1: a stream's version; 2: head.
        let snapshot: Vec<(i64, Option<String>, i64)> = sqlx::query_as(
            "SELECT 0, NULL, (SELECT COUNT(*) FROM events WHERE id IN (SELECT value FROM json_each($2))) \
             UNION ALL SELECT 2, NULL, COALESCE((SELECT MAX(position) FROM events), 0) \
             UNION ALL SELECT 1, j.value, COALESCE((SELECT MAX(version) FROM events WHERE stream = j.value), 0) \
               FROM json_each($1) AS j",
        )
        .bind(names)
        .bind(ids)
        .fetch_all(&mut *tx)
        .await?;
        let (head, stored, versions) = split(snapshot);
        let recorded_at = Utc::now();
        let rows = plan(streams, events, head, &versions, stored)?;
        let mut rest = &rows[..];
        while !rest.is_empty() {
            // The store's chunk sizes, so both prepare the same statements.
            let size = [256, 64, 16, 4, 1]
                .into_iter()
                .find(|s| *s <= rest.len())
                .unwrap_or(1);
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            let mut insert = QueryBuilder::new(COLUMNS);
            insert.push_values(chunk, |mut values, row| {
                let e = row.event;
                values
                    .push_bind(row.position)
                    .push_bind(e.id.to_string())
                    .push_bind(row.stream)
                    .push_bind(row.version)
                    .push_bind(&e.event_type)
                    .push_bind(i64::from(e.schema_version))
                    .push_bind(&row.data)
                    .push_bind(&e.metadata.tenant)
                    .push_bind(&e.metadata.store)
                    .push_bind(&e.metadata.entity_type)
                    .push_bind(&e.metadata.entity_id)
                    .push_bind(&e.metadata.actor)
                    .push_bind(&e.metadata.session)
                    .push_bind(e.metadata.correlation_id.map(|id| id.to_string()))
                    .push_bind(e.metadata.causation_id.map(|id| id.to_string()))
                    .push_bind(recorded_at);
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        advance(streams, events);
        Ok(())
    }

    async fn postgres_commit(
        conn: &mut sqlx::PgConnection,
        streams: &mut [Writer],
        events: &[Vec<NewEvent>],
    ) -> Result<()> {
        let names: Vec<&str> = streams.iter().map(|w| w.stream.as_str()).collect();
        let ids: Vec<Uuid> = events.iter().flatten().map(|e| e.id).collect();
        // The store's lock (class "LAR", keyed by schema), taken in the same
        // round trip as BEGIN: a simple query may hold several statements.
        let mut tx = sqlx::Connection::begin_with(
            &mut *conn,
            "BEGIN; SELECT pg_advisory_xact_lock(4997458, hashtext(current_schema()))",
        )
        .await?;
        // kind 0: how many ids are stored; 1: a stream's version; 2: head.
        let snapshot: Vec<(i64, Option<String>, i64)> = sqlx::query_as(
            "SELECT 0::bigint, NULL::text, (SELECT COUNT(*) FROM events WHERE id = ANY($2)) \
             UNION ALL SELECT 2, NULL, COALESCE((SELECT MAX(position) FROM events), 0)::bigint \
             UNION ALL SELECT 1, s, COALESCE((SELECT MAX(version) FROM events WHERE stream = s), 0)::bigint \
               FROM unnest($1::text[]) AS s",
        )
        .bind(&names)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        let (head, stored, versions) = split(snapshot);
        let rows = plan(streams, events, head, &versions, stored)?;
        let column = |f: fn(&Row<'_>) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
        sqlx::query(
            "INSERT INTO events (position, id, stream, version, event_type, schema_version, data, tenant, store_id, \
                                 entity_type, entity_id, actor, correlation_id, causation_id, recorded_at, session) \
             SELECT p, i, s, v, t, 1, d::json, te, st, et, ei, a, c, ca, $14, se \
               FROM UNNEST($1::bigint[], $2::uuid[], $3::text[], $4::bigint[], $5::text[], $6::text[], \
                           $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::uuid[], $13::uuid[], \
                           $15::text[]) \
                    AS u(p, i, s, v, t, d, te, st, et, ei, a, c, ca, se)",
        )
        .bind(rows.iter().map(|r| r.position).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.event.id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.stream).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.version).collect::<Vec<_>>())
        .bind(column(|r| Some(r.event.event_type.clone())))
        .bind(rows.iter().map(|r| r.data.as_str()).collect::<Vec<_>>())
        .bind(column(|r| Some(r.event.metadata.tenant.clone())))
        .bind(column(|r| r.event.metadata.store.clone()))
        .bind(column(|r| Some(r.event.metadata.entity_type.clone())))
        .bind(column(|r| Some(r.event.metadata.entity_id.clone())))
        .bind(column(|r| r.event.metadata.actor.clone()))
        .bind(rows.iter().map(|r| r.event.metadata.correlation_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.event.metadata.causation_id).collect::<Vec<_>>())
        .bind(Utc::now())
        .bind(column(|r| r.event.metadata.session.clone()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        advance(streams, events);
        Ok(())
    }

    /// (head, stored id count, stream versions) from the snapshot rows.
    fn split(rows: Vec<(i64, Option<String>, i64)>) -> (i64, i64, Vec<(String, i64)>) {
        let (mut head, mut stored, mut versions) = (0, 0, Vec::new());
        for (kind, stream, value) in rows {
            match (kind, stream) {
                (0, _) => stored = value,
                (2, _) => head = value,
                (_, Some(stream)) => versions.push((stream, value)),
                _ => {}
            }
        }
        (head, stored, versions)
    }
}
