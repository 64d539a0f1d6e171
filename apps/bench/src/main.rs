//! `larder-bench`: a load generator for Larder.
//!
//! Opens WebSocket clients (authenticated, subscribed to one store), drives
//! stock adjustments through the REST API at a fixed rate, and reports what
//! the clients received (lost, duplicated, out of order: all must be 0),
//! deliveries per second, end-to-end latency (request sent -> event frame
//! received), and the server's memory and CPU time per delivery. Every run is
//! bounded in time and count and talks to 127.0.0.1 only. See
//! `docs/benchmarks.md`.

mod api;
mod drive;
mod hot;
mod orders;
mod peer;
mod server;
mod ws;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::api::Api;
use crate::drive::{Delivery, drain, drive, evaluate};
use crate::server::{Server, Spawn};
use crate::ws::{Client, Counter};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// 1 client, 100 changes/s: end-to-end latency.
    Latency,
    /// 1000 clients in one store, 100 changes/s: fan-out cost.
    Fanout,
    /// 100 clients, rate stepping up: the highest rate held with zero loss
    /// and p99 under 100 ms.
    Saturation,
    /// 10,000 idle connections: memory per connection.
    Idle,
    /// Command latency with 0 and with 1000 subscribers.
    Overhead,
    /// One item, 0 / 100 / 1000 subscribers, rate stepping up: how fast one
    /// stream takes commands, and what its subscribers cost.
    Hot,
    /// The hot load (one stream, 1000 subscribers, 100 changes/s) on Larder
    /// and on peers (Nchan, a bare relay), one after the other on the same
    /// CPUs: held, delivery latency and CPU per delivery side by side.
    Peers,
    /// Restaurants: 10 stores with a grill and a bar screen each and 200
    /// tills, 50 orders/s opened, given two lines and fired: fire-to-screen
    /// latency and every screen and till getting its events once, in order.
    Orders,
}

#[derive(Debug, Clone, Parser)]
#[command(name = "larder-bench", version, about)]
struct Cli {
    /// What to measure.
    #[arg(long, value_enum, default_value_t = Scenario::Latency)]
    scenario: Scenario,
    /// Use the server at this URL (127.0.0.1 only) instead of starting one.
    #[arg(long, requires = "jwt_secret")]
    url: Option<String>,
    /// The external server's process id, for its memory and CPU figures.
    #[arg(long, requires = "url")]
    server_pid: Option<u32>,
    /// The external server's HS256 secret (`LARDER_JWT_SECRET`).
    #[arg(long, env = "LARDER_BENCH_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// The server binary to start (default: `larder` next to this binary).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Pin the started server to these CPUs (`taskset -c` list, e.g. `0`).
    #[arg(long)]
    server_cpus: Option<String>,
    /// The started server's database (default: a fresh SQLite file).
    #[arg(long)]
    database_url: Option<String>,
    /// Extra settings for the started server, `NAME=value` (repeatable).
    #[arg(long = "server-env", value_parser = parse_env)]
    server_env: Vec<(String, String)>,
    /// Clients (default per scenario: 1, 1000, 100, 10000, 1000).
    #[arg(long)]
    clients: Option<usize>,
    /// Changes per second (latency, fanout, overhead; default 100); orders
    /// per second (orders; default 50).
    #[arg(long)]
    rate: Option<u32>,
    /// Saturation and hot steps, changes per second (default
    /// 500,1000,2000,5000,10000 and 100,250,500,1000,2000,5000).
    #[arg(long, value_delimiter = ',')]
    steps: Option<Vec<u32>>,
    /// Orders: stores, each with a grill and a bar screen.
    #[arg(long, default_value_t = 10)]
    stores: usize,
    /// Orders: tills in all, watching their store's orders.
    #[arg(long, default_value_t = 200)]
    tills: usize,
    /// Hot: subscriber counts, one rising series of steps each.
    #[arg(long, value_delimiter = ',', default_value = "0,100,1000")]
    subscribers: Vec<usize>,
    /// Hot: record each step's server profile (`perf record`) in this
    /// directory, as `hot-<subscribers>-<rate>.data`.
    #[arg(long)]
    perf_dir: Option<PathBuf>,
    /// Seconds of load per run (per step for saturation and hot; default
    /// 10, 5).
    #[arg(long)]
    seconds: Option<u64>,
    /// Items the changes go to, round-robin (default 200; hot: 1).
    #[arg(long)]
    items: Option<usize>,
    /// Most commands waiting for an answer at once.
    #[arg(long, default_value_t = 256)]
    max_in_flight: usize,
    /// Peers: what to run, in this order (`larder`, `relay`, `nchan`). A
    /// peer that is not installed is skipped with a note on how to get it.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "larder,relay,nchan"
    )]
    peers: Vec<peer::Target>,
    /// Peers: the `larder-relay` binary (default: next to this binary).
    #[arg(long)]
    relay_bin: Option<PathBuf>,
    /// How long to wait for the last deliveries after the load stops.
    #[arg(long, default_value_t = 10)]
    drain_seconds: u64,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected NAME=value, got {s:?}"))
}

/// A server with a store and items to change, and the clients' plumbing.
struct Bench {
    cli: Cli,
    server: Server,
    api: Api,
    store: String,
    items: Vec<String>,
    client_token: String,
    counter: Arc<Counter>,
    stop: watch::Sender<bool>,
    /// Set when the server is a peer, not Larder.
    peer: bool,
}

impl Bench {
    /// A peer (not Larder) started for the same load.
    async fn start_peer(cli: Cli, target: peer::Target) -> Result<Self> {
        let relay = cli
            .relay_bin
            .clone()
            .unwrap_or_else(|| server::default_binary().with_file_name("larder-relay"));
        let process = peer::start(
            target,
            cli.server_cpus.as_deref(),
            &relay,
            server::free_port()?,
        )
        .await?;
        let server = Server::peer(process);
        let api = Api::peer(&server.url)?;
        Ok(Self {
            cli,
            server,
            api,
            store: String::new(),
            items: vec![target.name().to_owned()],
            client_token: String::new(),
            counter: Arc::default(),
            stop: watch::Sender::new(false),
            peer: true,
        })
    }

    async fn start(cli: Cli) -> Result<Self> {
        let server = match &cli.url {
            Some(url) => {
                if !(url.starts_with("http://127.0.0.1") || url.starts_with("http://localhost")) {
                    bail!("--url must be a 127.0.0.1 address");
                }
                let secret = cli.jwt_secret.clone().unwrap_or_default();
                Server::external(url.clone(), cli.server_pid, secret)
            }
            None => {
                Server::spawn(&Spawn {
                    binary: cli
                        .server_bin
                        .clone()
                        .unwrap_or_else(server::default_binary),
                    cpus: cli.server_cpus.clone(),
                    database_url: cli.database_url.clone(),
                    env: cli.server_env.clone(),
                })
                .await?
            }
        };
        let admin = api::token(&server.secret, "bench-admin", "admin")?;
        let api = Api::new(&server.url, &admin)?;
        let store = api
            .create_store(&format!("Bench {}", uuid::Uuid::new_v4().simple()))
            .await
            .context("creating the bench store (is the JWT secret right?)")?;
        let count = cli.items.unwrap_or(
            if matches!(
                cli.scenario,
                Scenario::Hot | Scenario::Peers | Scenario::Orders
            ) {
                1
            } else {
                200
            },
        );
        let mut items = Vec::with_capacity(count);
        for i in 0..count.max(1) {
            items.push(api.add_item(&store, &format!("BENCH-{i:05}")).await?);
        }
        let client_token = api::token(&server.secret, "bench-viewer", "viewer")?;
        Ok(Self {
            cli,
            server,
            api,
            store,
            items,
            client_token,
            counter: Arc::default(),
            stop: watch::Sender::new(false),
            peer: false,
        })
    }

    async fn connect(&self, n: usize) -> Result<Vec<Client>> {
        if let Some(limit) = server::open_file_limit() {
            if (limit as usize) < n + 256 {
                bail!(
                    "{n} connections need more open files than the limit of {limit}: raise it (`ulimit -n 65536`; scripts/bench.sh does)"
                );
            }
        }
        let topic = format!("store:{}", self.store);
        let subscription = (!self.peer).then_some((self.client_token.as_str(), topic.as_str()));
        ws::connect_many(
            n,
            64,
            &self.server.url,
            subscription,
            &self.counter,
            &self.stop.subscribe(),
        )
        .await
    }

    /// Drives `rate` changes/s for `seconds` and evaluates what `clients` got.
    /// [`Bench::run`], with the server's CPU and run-queue time as shares
    /// of the wall time, and whether the rate was held: nothing lost,
    /// duplicated, reordered or failed, and 95 % of it achieved.
    async fn timed_run(&self, clients: &[Client], rate: u32, seconds: u64) -> Timed {
        let started = Instant::now();
        let queued_before = self.server.run_queue_seconds();
        let run = self.run(clients, rate, seconds).await;
        let wall = started.elapsed().as_secs_f64();
        let queued = match (queued_before, self.server.run_queue_seconds()) {
            (Some(a), Some(b)) => Some((b - a) / wall * 100.0),
            _ => None,
        };
        Timed {
            held: run.clean() && run.delivery.commands_per_sec >= 0.95 * f64::from(rate),
            busy: run.server_cpu_seconds.map(|cpu| cpu / wall * 100.0),
            queued,
            run,
        }
    }

    async fn run(&self, clients: &[Client], rate: u32, seconds: u64) -> Run {
        let before = self.counter.get();
        let cpu_before = self.server.cpu_seconds();
        let driven = drive(
            &self.api,
            &self.items,
            rate,
            Duration::from_secs(seconds),
            self.cli.max_in_flight,
        )
        .await;
        let expected = driven.positions() as u64 * clients.len() as u64;
        drain(
            &self.counter,
            before + expected,
            Duration::from_secs(self.cli.drain_seconds),
        )
        .await;
        let cpu = match (cpu_before, self.server.cpu_seconds()) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        if let Some(error) = &driven.first_error {
            eprintln!("first failed command: {error}");
        }
        let delivery = evaluate(&driven, clients);
        let per_delivery_us = cpu
            .filter(|_| delivery.delivered > 0)
            .map(|cpu| cpu * 1e6 / delivery.delivered as f64);
        let per_command_us = cpu
            .filter(|_| delivery.commands > 0)
            .map(|cpu| cpu * 1e6 / delivery.commands as f64);
        Run {
            rate,
            delivery,
            server_cpu_seconds: cpu,
            server_cpu_us_per_delivery: per_delivery_us,
            server_cpu_us_per_command: per_command_us,
            server_rss_bytes: self.server.rss(),
        }
    }

    async fn finish(self, clients: Vec<Client>) {
        let _ = self.stop.send(true);
        for client in clients {
            client.join().await;
        }
        self.server.stop().await;
    }
}

/// One run's figures.
#[derive(Debug, serde::Serialize)]
struct Run {
    rate: u32,
    #[serde(flatten)]
    delivery: Delivery,
    server_cpu_seconds: Option<f64>,
    server_cpu_us_per_delivery: Option<f64>,
    server_cpu_us_per_command: Option<f64>,
    server_rss_bytes: Option<u64>,
}

impl Run {
    fn clean(&self) -> bool {
        let d = &self.delivery;
        d.lost == 0
            && d.duplicated == 0
            && d.out_of_order == 0
            && d.failed_commands == 0
            && d.closed_clients == 0
    }
}

/// A run with the server's load over it (see [`Bench::timed_run`]).
struct Timed {
    run: Run,
    held: bool,
    /// The server's CPU time over the wall time, in percent.
    busy: Option<f64>,
    /// Its threads' time ready without a CPU over the wall time, in percent.
    queued: Option<f64>,
}

fn mb(bytes: Option<u64>) -> String {
    bytes.map_or("-".into(), |b| format!("{:.1} MB", b as f64 / 1e6))
}

fn opt(value: Option<f64>, digits: usize) -> String {
    value.map_or("-".into(), |v| format!("{v:.digits$}"))
}

fn print_runs(runs: &[Run]) {
    println!(
        "{:>7} {:>7} {:>9} {:>10} {:>6} {:>5} {:>5} {:>10} {:>8} {:>8} {:>8} {:>8} {:>9} {:>10}",
        "clients",
        "rate/s",
        "cmds/s",
        "delivered",
        "lost",
        "dup",
        "ooo",
        "deliv/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "cmd p50",
        "cpu us/dlv"
    );
    for r in runs {
        let d = &r.delivery;
        println!(
            "{:>7} {:>7} {:>9.0} {:>10} {:>6} {:>5} {:>5} {:>10.0} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>9.3} {:>10}",
            d.clients,
            r.rate,
            d.commands_per_sec,
            d.delivered,
            d.lost,
            d.duplicated,
            d.out_of_order,
            d.deliveries_per_sec,
            d.latency_ms.p50,
            d.latency_ms.p90,
            d.latency_ms.p99,
            d.latency_ms.max,
            d.command_ms.p50,
            opt(r.server_cpu_us_per_delivery, 2),
        );
        if d.failed_commands > 0 || d.closed_clients > 0 || d.unexpected > 0 {
            println!(
                "        failed commands {}, closed clients {}, unexpected frames {}",
                d.failed_commands, d.closed_clients, d.unexpected
            );
        }
    }
}

async fn scenario(cli: Cli) -> Result<Value> {
    let which = cli.scenario;
    if which == Scenario::Peers {
        return peer::run(cli).await;
    }
    let seconds = cli.seconds;
    let rate = cli.rate.unwrap_or(100);
    let clients_arg = cli.clients;
    let steps = cli.steps.clone();
    let subscribers = cli.subscribers.clone();
    let perf_dir = cli.perf_dir.clone();
    let bench = Bench::start(cli).await?;
    let idle_rss = bench.server.rss();
    let mut out = json!({
        "scenario": format!("{which:?}").to_lowercase(),
        "server_pid": bench.server.pid,
        "server_rss_idle_bytes": idle_rss,
        "items": bench.items.len(),
    });
    println!(
        "server {} (pid {}), idle RSS {}",
        bench.server.url,
        bench.server.pid.map_or("?".into(), |p| p.to_string()),
        mb(idle_rss)
    );
    match which {
        Scenario::Latency | Scenario::Fanout => {
            let n = clients_arg.unwrap_or(if which == Scenario::Latency { 1 } else { 1000 });
            let clients = bench.connect(n).await?;
            let connected_rss = bench.server.rss();
            println!("{n} clients connected, RSS {}", mb(connected_rss));
            let run = bench.run(&clients, rate, seconds.unwrap_or(10)).await;
            print_runs(std::slice::from_ref(&run));
            out["server_rss_connected_bytes"] = json!(connected_rss);
            out["runs"] = json!([run]);
            out["clean"] = json!(run.clean());
            bench.finish(clients).await;
        }
        Scenario::Saturation => {
            let n = clients_arg.unwrap_or(100);
            let clients = bench.connect(n).await?;
            let mut runs = Vec::new();
            let mut best = None;
            for step in steps.unwrap_or_else(|| vec![500, 1000, 2000, 5000, 10000]) {
                let run = bench.run(&clients, step, seconds.unwrap_or(5)).await;
                let held = run.clean()
                    && run.delivery.latency_ms.p99 < 100.0
                    && run.delivery.commands_per_sec >= 0.95 * f64::from(step);
                print_runs(std::slice::from_ref(&run));
                if held {
                    best = Some((step, run.delivery.deliveries_per_sec));
                }
                runs.push(run);
                if !held {
                    println!("        step {step}/s not held; stopping");
                    break;
                }
            }
            match best {
                Some((step, per_sec)) => println!(
                    "best step held: {step} changes/s = {per_sec:.0} deliveries/s with zero loss and p99 < 100 ms"
                ),
                None => println!("no step held"),
            }
            out["runs"] = json!(runs);
            out["best_rate"] = json!(best.map(|b| b.0));
            out["best_deliveries_per_sec"] = json!(best.map(|b| b.1));
            bench.finish(clients).await;
        }
        Scenario::Idle => {
            let n = clients_arg.unwrap_or(10_000);
            let started = Instant::now();
            let clients = bench.connect(n).await?;
            let took = started.elapsed();
            // Let the connections' first-use allocations settle.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let connected = bench.server.rss();
            let per = match (idle_rss, connected) {
                (Some(a), Some(b)) => Some((b.saturating_sub(a)) as f64 / n as f64),
                _ => None,
            };
            println!(
                "{n} clients connected and subscribed in {:.1} s; RSS {} -> {}: {} bytes per connection",
                took.as_secs_f64(),
                mb(idle_rss),
                mb(connected),
                opt(per, 0)
            );
            out["clients"] = json!(n);
            out["server_rss_connected_bytes"] = json!(connected);
            out["bytes_per_connection"] = json!(per);
            bench.finish(clients).await;
        }
        Scenario::Overhead => {
            let seconds = seconds.unwrap_or(10);
            let alone = bench.run(&[], rate, seconds).await;
            let n = clients_arg.unwrap_or(1000);
            let clients = bench.connect(n).await?;
            let watched = bench.run(&clients, rate, seconds).await;
            let added = |a: f64, b: f64| if a > 0.0 { (b - a) / a * 100.0 } else { 0.0 };
            let (a, b) = (alone.delivery.command_ms, watched.delivery.command_ms);
            println!(
                "{:>12} {:>9} {:>9} {:>9} {:>9}",
                "subscribers", "cmd p50", "cmd p90", "cmd p99", "cmds/s"
            );
            for (subs, p, run) in [(0, a, &alone), (n, b, &watched)] {
                println!(
                    "{:>12} {:>9.3} {:>9.3} {:>9.3} {:>9.0}",
                    subs, p.p50, p.p90, p.p99, run.delivery.commands_per_sec
                );
            }
            println!(
                "added command latency with {n} subscribers: p50 {:+.1} %, p99 {:+.1} %",
                added(a.p50, b.p50),
                added(a.p99, b.p99)
            );
            print_runs(std::slice::from_ref(&watched));
            out["added_p50_percent"] = json!(added(a.p50, b.p50));
            out["added_p99_percent"] = json!(added(a.p99, b.p99));
            out["runs"] = json!([alone, watched]);
            bench.finish(clients).await;
        }
        Scenario::Peers => unreachable!("handled above"),
        Scenario::Orders => {
            let plan = orders::Plan {
                stores: bench.cli.stores.max(1),
                tills: bench.cli.tills,
                rate: bench.cli.rate.unwrap_or(50).max(1),
                seconds: seconds.unwrap_or(10),
                max_in_flight: bench.cli.max_in_flight,
                drain: Duration::from_secs(bench.cli.drain_seconds),
            };
            let (report, clients) = orders::run(&bench, &plan).await?;
            out["clean"] = json!(report.held);
            out["runs"] = json!([report]);
            bench.finish(clients).await;
        }
        Scenario::Hot => {
            let plan = hot::Plan {
                subscribers,
                steps: steps.unwrap_or_else(|| hot::STEPS.to_vec()),
                seconds: seconds.unwrap_or(5),
                perf_dir,
            };
            let (runs, clients) = hot::run(&bench, &plan).await?;
            out["runs"] = json!(runs);
            out["clean"] = json!(runs.iter().all(|r| r.run.clean()));
            bench.finish(clients).await;
        }
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let result = scenario(cli).await?;
    println!("{result}");
    Ok(())
}
