//! The load: stock adjustments sent at a fixed rate (open loop, bounded in
//! flight), and what the clients made of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::api::Api;
use crate::ws::{Client, ClientLog, Counter};

/// One command sent: when, how long it took, what it wrote.
#[derive(Debug, Clone, Copy)]
pub struct Sent {
    pub at: Instant,
    pub took: Duration,
    pub position: u64,
    pub events: u64,
}

/// The commands of one run.
#[derive(Debug, Default)]
pub struct Drive {
    pub sent: Vec<Sent>,
    pub failed: u64,
    pub first_error: Option<String>,
    /// How long sending took (longer than asked when the server fell behind).
    pub elapsed: Duration,
    pub started: Option<Instant>,
}

/// Sends `rate` adjustments per second for `duration`, round-robin over
/// `items`, at most `max_in_flight` at once. Each due request is sent on
/// time unless `max_in_flight` are already waiting for answers.
pub async fn drive(
    api: &Api,
    items: &[String],
    rate: u32,
    duration: Duration,
    max_in_flight: usize,
) -> Drive {
    let total = (u64::from(rate) * duration.as_millis() as u64 / 1000).max(1);
    let results: Arc<Mutex<Drive>> = Arc::default();
    let permits = Arc::new(Semaphore::new(max_in_flight));
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let start = Instant::now();
    let mut issued = 0u64;
    let mut tasks = tokio::task::JoinSet::new();
    while issued < total {
        tick.tick().await;
        let due = ((start.elapsed().as_secs_f64() * f64::from(rate)) as u64 + 1).min(total);
        while issued < due {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let api = api.clone();
            let item = items[(issued as usize) % items.len()].clone();
            let results = results.clone();
            tasks.spawn(async move {
                let at = Instant::now();
                let outcome = api.adjust(&item).await;
                let took = at.elapsed();
                drop(permit);
                let mut results = results.lock().unwrap_or_else(|p| p.into_inner());
                match outcome {
                    Ok(c) => results.sent.push(Sent {
                        at,
                        took,
                        position: c.position,
                        events: c.events,
                    }),
                    Err(error) => {
                        results.failed += 1;
                        results.first_error.get_or_insert_with(|| error.to_string());
                    }
                }
            });
            issued += 1;
        }
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let mut drive = std::mem::take(&mut *results.lock().unwrap_or_else(|p| p.into_inner()));
    drive.elapsed = start.elapsed();
    drive.started = Some(start);
    drive
}

impl Drive {
    /// Every position the commands wrote (a command's events are
    /// consecutive, ending at its answer's position).
    pub fn positions(&self) -> usize {
        self.sent.iter().map(|s| s.events as usize).sum()
    }
}

/// Waits until the clients together received `expected` event frames, or
/// `timeout` passed. Returns whether they did.
pub async fn drain(counter: &Counter, expected: u64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while counter.get() < expected {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// Delivery figures of one run.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Delivery {
    pub clients: usize,
    pub commands: usize,
    pub failed_commands: u64,
    pub expected: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    pub unexpected: u64,
    pub closed_clients: usize,
    /// Achieved command rate.
    pub commands_per_sec: f64,
    pub deliveries_per_sec: f64,
    /// End to end: request sent -> frame received, milliseconds.
    pub latency_ms: Percentiles,
    /// Request sent -> response received, milliseconds.
    pub command_ms: Percentiles,
}

/// p50 / p90 / p99 / max in milliseconds.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub samples: usize,
}

impl Percentiles {
    /// Nearest-rank percentiles of `values` (nanoseconds).
    pub fn of(mut values: Vec<u64>) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        values.sort_unstable();
        let at = |q: f64| {
            let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
            values[rank - 1] as f64 / 1e6
        };
        Self {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: at(1.0),
            samples: values.len(),
        }
    }
}

/// Checks every client's log against the commands sent: each client must
/// have received every written position once, in order.
pub fn evaluate(drive: &Drive, clients: &[Client]) -> Delivery {
    let mut sent_at: HashMap<u64, Instant> = HashMap::with_capacity(drive.positions());
    for s in drive.sent.iter().filter(|s| s.events > 0) {
        for position in (s.position + 1).saturating_sub(s.events)..=s.position {
            sent_at.insert(position, s.at);
        }
    }
    let per_client = sent_at.len() as u64;
    let mut report = Delivery {
        clients: clients.len(),
        commands: drive.sent.len(),
        failed_commands: drive.failed,
        expected: per_client * clients.len() as u64,
        command_ms: Percentiles::of(
            drive
                .sent
                .iter()
                .map(|s| s.took.as_nanos() as u64)
                .collect(),
        ),
        commands_per_sec: drive.sent.len() as f64 / drive.elapsed.as_secs_f64().max(1e-9),
        ..Delivery::default()
    };
    let mut latencies = Vec::with_capacity(report.expected as usize);
    let mut last_arrival = drive.started;
    for client in clients {
        let log: ClientLog = client.take();
        if log.closed.is_some() {
            report.closed_clients += 1;
        }
        report.unexpected += log.unexpected;
        let mut seen = std::collections::HashSet::with_capacity(log.events.len());
        let mut last = 0u64;
        for (position, arrived) in log.events {
            let Some(sent) = sent_at.get(&position) else {
                report.unexpected += 1;
                continue;
            };
            if !seen.insert(position) {
                report.duplicated += 1;
                continue;
            }
            if position < last {
                report.out_of_order += 1;
            }
            last = last.max(position);
            report.delivered += 1;
            latencies.push(arrived.saturating_duration_since(*sent).as_nanos() as u64);
            if last_arrival.is_none_or(|l| arrived > l) {
                last_arrival = Some(arrived);
            }
        }
        report.lost += per_client - seen.len() as u64;
    }
    if let (Some(start), Some(end)) = (drive.started, last_arrival) {
        let span = end.saturating_duration_since(start).as_secs_f64().max(1e-9);
        report.deliveries_per_sec = report.delivered as f64 / span;
    }
    report.latency_ms = Percentiles::of(latencies);
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let p = Percentiles::of((1..=100).map(|ms| ms * 1_000_000).collect());
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(Percentiles::of(vec![]).samples, 0);
    }
}
