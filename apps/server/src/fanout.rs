//! The fan-out's own thread. The realtime broadcaster (routing committed
//! events to rooms and writing their frames into the subscribers' sockets)
//! runs on a single-threaded runtime of its own, at a lower scheduling
//! priority ([`FANOUT_NICENESS`]). On a busy core, requests (commands,
//! queries, the WebSocket handshakes) and the read models go first and the
//! fan-out takes the rest: a command on a stream with 1,000 subscribers no
//! longer waits behind a whole event's fan-out. Every delivery guarantee is
//! the hub's and holds whichever thread it runs on.

use std::io;

use tokio::sync::oneshot;

/// How much lower than the rest of the server the fan-out runs (Linux
/// niceness: 0 is the default, 19 the lowest). At 10 the kernel gives a
/// runnable request about ten times the fan-out's share of a contended
/// core, and the fan-out everything the requests leave.
pub const FANOUT_NICENESS: i8 = 10;

/// [`FANOUT_NICENESS`] on `thread-priority`'s scale (0 to 99, mapped onto
/// niceness 19 to -20): 22 is niceness 10.
#[cfg(unix)]
const FANOUT_PRIORITY: u8 = 22;

/// The fan-out thread; it ends when this is dropped.
#[derive(Debug)]
pub struct FanoutThread {
    handle: tokio::runtime::Handle,
    stop: Option<oneshot::Sender<()>>,
}

impl FanoutThread {
    /// Starts the thread and its runtime.
    pub fn start() -> io::Result<Self> {
        let (ready, started) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("larder-fanout".into())
            .spawn(move || {
                lower_priority();
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
            .map_err(|_| io::Error::other("the fan-out thread did not start"))??;
        Ok(Self {
            handle,
            stop: Some(stop),
        })
    }

    /// The runtime the hub's broadcaster runs on.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }
}

impl Drop for FanoutThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Lowers the calling thread's priority; a failure is logged and the
/// fan-out runs at the server's priority.
#[cfg(unix)]
fn lower_priority() {
    use thread_priority::unix::{
        NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
        thread_native_id,
    };
    use thread_priority::{ThreadPriority, ThreadPriorityValue};
    let priority = ThreadPriorityValue::try_from(FANOUT_PRIORITY);
    let result = priority.map_err(|e| e.to_string()).and_then(|value| {
        set_thread_priority_and_policy(
            thread_native_id(),
            ThreadPriority::Crossplatform(value),
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other),
        )
        .map_err(|e| format!("{e:?}"))
    });
    match result {
        Ok(()) => tracing::debug!(niceness = FANOUT_NICENESS, "fan-out thread started"),
        Err(error) => tracing::warn!(%error, "could not lower the fan-out thread's priority"),
    }
}

#[cfg(not(unix))]
fn lower_priority() {}

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
    async fn the_fanout_runs_on_its_own_thread_at_a_lower_priority() {
        let before = niceness();
        let fanout = FanoutThread::start().expect("the thread starts");
        let seen = fanout
            .handle()
            .spawn(async { (std::thread::current().name().map(str::to_owned), niceness()) })
            .await
            .expect("the task runs");
        assert_eq!(seen.0.as_deref(), Some("larder-fanout"));
        assert_eq!(seen.1, i64::from(FANOUT_NICENESS));
        // And this thread kept its priority.
        assert_eq!(niceness(), before);
    }
}
