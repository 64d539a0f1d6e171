//! Threads of the server's own, each with a single-threaded runtime, beside
//! tokio's worker threads:
//!
//! - `larder-fanout`: the realtime broadcaster (routing committed events to
//!   rooms and writing their frames into the subscribers' sockets), at a
//!   lower scheduling priority (by default [`FANOUT_NICENESS`],
//!   `--ws-fanout-niceness`). On a busy core, requests (commands, queries,
//!   the WebSocket handshakes) and the read models go first and the fan-out
//!   takes the rest: a command on a stream with 1,000 subscribers no longer
//!   waits behind a whole event's fan-out. Every delivery guarantee is the
//!   hub's and holds whichever thread it runs on.
//! - `larder-bus` (with `--bus nats://...`): the NATS connection, at the
//!   process's priority. What this node commits goes out to the other
//!   nodes, and what they commit comes in, without queueing behind the
//!   requests on the worker threads.

use std::io;

use tokio::sync::oneshot;

/// How much lower than the rest of the server the fan-out runs by default
/// (Linux niceness: 0 is the default, 19 the lowest). At 10 the kernel gives
/// a runnable request about ten times the fan-out's share of a contended
/// core, and the fan-out everything the requests leave.
pub const FANOUT_NICENESS: u8 = 10;

/// The lowest priority (highest niceness) a thread can be given.
pub const LOWEST_PRIORITY: u8 = 19;

/// A thread running a runtime of its own; it ends when this is dropped.
#[derive(Debug)]
pub struct RuntimeThread {
    handle: tokio::runtime::Handle,
    stop: Option<oneshot::Sender<()>>,
}

impl RuntimeThread {
    /// Starts the thread `name` and its runtime, at `niceness` (0: the
    /// process's own priority; at most [`LOWEST_PRIORITY`]).
    pub fn start(name: &str, niceness: u8) -> io::Result<Self> {
        let (ready, started) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                if niceness > 0 {
                    lower_priority(niceness.min(LOWEST_PRIORITY));
                }
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match runtime {
                    Ok(runtime) => {
                        let _ = ready.send(Ok(runtime.handle().clone()));
                        // Until the server is dropped; its tasks are
                        // dropped with the runtime.
                        let _ = runtime.block_on(stopped);
                    }
                    Err(error) => {
                        let _ = ready.send(Err(error));
                    }
                }
            })?;
        let handle = started
            .recv()
            .map_err(|_| io::Error::other(format!("the thread {name} did not start")))??;
        Ok(Self {
            handle,
            stop: Some(stop),
        })
    }

    /// Its runtime, to spawn on.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }
}

impl Drop for RuntimeThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// `niceness` on `thread-priority`'s scale (0 to 99, mapped onto niceness
/// 19 to -20 with rounding down): the first value that maps onto it.
#[cfg(unix)]
fn crossplatform_priority(niceness: u8) -> Option<u8> {
    // The crate's own mapping for normal threads (`to_posix`).
    let maps_to = |value: u8| (39.0 * (1.0 - f32::from(value) / 99.0)) as i8 - 20;
    let niceness = i8::try_from(niceness).ok()?;
    (0..=99).find(|&value| maps_to(value) == niceness)
}

/// Sets the calling thread's niceness; a failure is logged and the thread
/// runs at the server's priority.
#[cfg(unix)]
fn lower_priority(niceness: u8) {
    use thread_priority::unix::{
        NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
        thread_native_id,
    };
    use thread_priority::{ThreadPriority, ThreadPriorityValue};
    let priority = crossplatform_priority(niceness)
        .ok_or_else(|| format!("no priority maps onto niceness {niceness}"))
        .and_then(|value| ThreadPriorityValue::try_from(value).map_err(|e| e.to_string()));
    let result = priority.and_then(|value| {
        set_thread_priority_and_policy(
            thread_native_id(),
            ThreadPriority::Crossplatform(value),
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other),
        )
        .map_err(|e| format!("{e:?}"))
    });
    match result {
        Ok(()) => tracing::debug!(niceness, "thread started at a lower priority"),
        Err(error) => tracing::warn!(%error, "could not lower a thread's priority"),
    }
}

#[cfg(not(unix))]
fn lower_priority(_niceness: u8) {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The calling thread's niceness, from `/proc/thread-self/stat`.
    fn niceness() -> i64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("readable stat");
        // Fields after the command name (which ends with the last ')'):
        // state is field 3, nice is field 19.
        let rest = &stat[stat.rfind(')').expect("a command name") + 2..];
        rest.split(' ')
            .nth(16)
            .expect("a nice field")
            .parse()
            .expect("a number")
    }

    #[tokio::test]
    async fn a_runtime_thread_runs_its_tasks_at_the_niceness_asked() {
        let before = niceness();
        for asked in [FANOUT_NICENESS, 1, 7, LOWEST_PRIORITY] {
            let fanout = RuntimeThread::start("larder-fanout", asked).expect("the thread starts");
            let seen = fanout
                .handle()
                .spawn(async { (std::thread::current().name().map(str::to_owned), niceness()) })
                .await
                .expect("the task runs");
            assert_eq!(seen.0.as_deref(), Some("larder-fanout"));
            assert_eq!(seen.1, i64::from(asked));
        }
        // And this thread kept its priority.
        assert_eq!(niceness(), before);
    }

    #[tokio::test]
    async fn at_niceness_zero_a_thread_keeps_the_process_priority() {
        let before = niceness();
        let fanout = RuntimeThread::start("larder-bus", 0).expect("the thread starts");
        let seen = fanout
            .handle()
            .spawn(async { niceness() })
            .await
            .expect("the task runs");
        assert_eq!(seen, before);
    }

    #[test]
    fn every_niceness_has_a_value_on_the_crates_scale() {
        for niceness in 1..=LOWEST_PRIORITY {
            assert!(crossplatform_priority(niceness).is_some(), "{niceness}");
        }
    }
}
