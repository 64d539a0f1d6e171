//! The hot-stream scenario: every change goes to one item, watched by 0,
//! then 100, then 1000 subscribers of its store, at a rising rate. It shows
//! how many commands one stream takes per second, what a command costs the
//! server, and how much its subscribers slow it down.

use std::path::PathBuf;

use anyhow::Result;

use crate::server::Recording;
use crate::ws::Client;
use crate::{Bench, Run, opt};

/// The default steps, changes per second.
pub const STEPS: [u32; 6] = [100, 250, 500, 1000, 2000, 5000];

/// What to run.
#[derive(Debug)]
pub struct Plan {
    /// Subscriber counts, each with its own rising series of steps.
    pub subscribers: Vec<usize>,
    pub steps: Vec<u32>,
    /// Seconds of load per step.
    pub seconds: u64,
    /// Where to write a `perf record` profile of the server per step.
    pub perf_dir: Option<PathBuf>,
}

/// One step's figures.
#[derive(Debug, serde::Serialize)]
pub struct Step {
    pub subscribers: usize,
    /// Nothing lost, duplicated, reordered or failed, and at least 95 % of
    /// the offered rate achieved.
    pub held: bool,
    /// Server CPU time over the step's wall time (load and drain), in
    /// percent: under 100 % with the stream saturated, commands wait for
    /// something other than this server's CPU.
    pub server_cpu_busy_percent: Option<f64>,
    /// Time the server's threads were ready to run but waited for a CPU,
    /// over the step's wall time, in percent: the share of the step the
    /// server lost to other processes on its CPU (and to its own threads,
    /// queued behind each other).
    pub server_run_queue_percent: Option<f64>,
    /// The step's `perf record` file, when one was taken.
    pub profile: Option<PathBuf>,
    #[serde(flatten)]
    pub run: Run,
}

/// Runs the plan. Subscribers are connected once and kept, so the counts
/// run in rising order; a series stops after its first step not held (the
/// next ones would only queue more), which bounds the run's length: a step
/// not held lasts at most its commands divided by the rate achieved.
/// Returns the steps and the clients, for the caller to close.
pub async fn run(bench: &Bench, plan: &Plan) -> Result<(Vec<Step>, Vec<Client>)> {
    let mut counts = plan.subscribers.clone();
    counts.sort_unstable();
    counts.dedup();
    if let Some(dir) = &plan.perf_dir {
        std::fs::create_dir_all(dir)?;
    }
    let mut clients: Vec<Client> = Vec::new();
    let mut steps = Vec::new();
    header();
    for n in counts {
        if clients.len() < n {
            let more = bench.connect(n - clients.len()).await?;
            clients.extend(more);
        }
        for &rate in &plan.steps {
            let recording = match (&plan.perf_dir, bench.server.pid) {
                (Some(dir), Some(pid)) => {
                    let file = dir.join(format!("hot-{n}-{rate}.data"));
                    Some(Recording::start(
                        pid,
                        bench.cli.server_cpus.as_deref(),
                        &file,
                    )?)
                }
                _ => None,
            };
            let timed = bench.timed_run(&clients, rate, plan.seconds).await;
            let profile = match recording {
                Some(recording) => Some(recording.stop().await?),
                None => None,
            };
            let held = timed.held;
            let step = Step {
                subscribers: n,
                held,
                server_cpu_busy_percent: timed.busy,
                server_run_queue_percent: timed.queued,
                profile,
                run: timed.run,
            };
            line(&step);
            steps.push(step);
            if !held {
                break;
            }
        }
    }
    Ok((steps, clients))
}

fn header() {
    println!(
        "{:>5} {:>6} {:>8} {:>8} {:>8} {:>9} {:>12} {:>9} {:>9} {:>10} {:>10} {:>5} {:>5} {:>5}",
        "subs",
        "rate/s",
        "cmds/s",
        "cmd p50",
        "cmd p99",
        "delivered",
        "lost/dup/ooo",
        "dlv p50",
        "dlv p99",
        "cpu us/cmd",
        "cpu us/dlv",
        "busy%",
        "rq%",
        "held"
    );
}

fn line(step: &Step) {
    let d = &step.run.delivery;
    let (dlv50, dlv99) = if d.delivered > 0 {
        (
            format!("{:.3}", d.latency_ms.p50),
            format!("{:.3}", d.latency_ms.p99),
        )
    } else {
        ("-".into(), "-".into())
    };
    println!(
        "{:>5} {:>6} {:>8.0} {:>8.3} {:>8.3} {:>9} {:>12} {:>9} {:>9} {:>10} {:>10} {:>5} {:>5} {:>5}",
        step.subscribers,
        step.run.rate,
        d.commands_per_sec,
        d.command_ms.p50,
        d.command_ms.p99,
        d.delivered,
        format!("{}/{}/{}", d.lost, d.duplicated, d.out_of_order),
        dlv50,
        dlv99,
        opt(step.run.server_cpu_us_per_command, 1),
        opt(step.run.server_cpu_us_per_delivery, 2),
        opt(step.server_cpu_busy_percent, 0),
        opt(step.server_run_queue_percent, 0),
        if step.held { "yes" } else { "no" },
    );
    if d.failed_commands > 0 || d.closed_clients > 0 || d.unexpected > 0 {
        println!(
            "      failed commands {}, closed clients {}, unexpected frames {}",
            d.failed_commands, d.closed_clients, d.unexpected
        );
    }
}
