//! Counts the store's `committed append batch` debug events with a minimal
//! `tracing` subscriber, so the example needs no extra dependency. Warnings
//! and errors from anywhere go to stderr.

use super::*;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Level, Subscriber, span};

static COMMITS: AtomicU64 = AtomicU64::new(0);
static REQUESTS: AtomicU64 = AtomicU64::new(0);
static EVENTS: AtomicU64 = AtomicU64::new(0);
static COMMIT_US: AtomicU64 = AtomicU64::new(0);

pub fn install() {
    tracing::subscriber::set_global_default(Recorder).expect("no other subscriber is installed");
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
            || (*metadata.level() == Level::DEBUG && metadata.target().starts_with("larder_store"))
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

/// Commits counted by the writer, between two snapshots.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommitCounts {
    pub commits: u64,
    pub requests: u64,
    pub events: u64,
    pub commit_us: u64,
}

impl CommitCounts {
    pub fn since(&self, before: &Self) -> Self {
        Self {
            commits: self.commits - before.commits,
            requests: self.requests - before.requests,
            events: self.events - before.events,
            commit_us: self.commit_us - before.commit_us,
        }
    }

    pub fn appends_per_commit(&self) -> f64 {
        self.requests as f64 / self.commits.max(1) as f64
    }

    /// Mean time the writer spent in one commit (lock, snapshot, insert, commit).
    pub fn mean_commit_ms(&self) -> f64 {
        self.commit_us as f64 / self.commits.max(1) as f64 / 1e3
    }
}
