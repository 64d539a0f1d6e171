//! Checkpoints of the SQLite writer's database: a thread of their own, on a
//! connection of their own, so that appends do not pay for copying the WAL
//! back into the database file.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use rusqlite::Connection;

/// WAL pages after which the writer's own connection checkpoints, if the
/// checkpoint thread has not kept the WAL short (SQLite's default is 1,000;
/// the thread starts the WAL over from [`RESTART_AFTER_PAGES`]).
pub(super) const WRITER_AUTOCHECKPOINT_PAGES: u32 = 16_000;

/// How often, at most, the checkpoint thread checkpoints while appends
/// keep coming.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(50);

/// WAL pages, as the writer estimates them, after which it wakes the
/// checkpoint thread: SQLite's own default threshold.
const CHECKPOINT_AFTER_FRAMES: usize = 1_000;

/// The writer's side of the checkpoint thread.
#[derive(Debug)]
pub(super) struct Checkpoints {
    wake: SyncSender<()>,
    /// WAL pages written since the thread was last woken, estimated: a
    /// commit writes the table's last page and one page of each index (3),
    /// and a page holds about eight events.
    frames: usize,
}

impl Checkpoints {
    /// The writer's side, and the channel that wakes the thread.
    pub(super) fn new() -> (Self, Receiver<()>) {
        let (wake, woken) = sync_channel::<()>(1);
        (Self { wake, frames: 0 }, woken)
    }

    /// Counts a commit of `events` events; wakes the thread when enough
    /// pages have gone to the WAL. False when the thread has stopped.
    pub(super) fn committed(&mut self, events: usize) -> bool {
        self.frames += 3 + events / 8;
        if self.frames < CHECKPOINT_AFTER_FRAMES {
            return true;
        }
        self.frames = 0;
        !matches!(self.wake.try_send(()), Err(TrySendError::Disconnected(())))
    }
}

/// Starts the checkpoint thread on its own connection. Woken by the writer,
/// it copies what the WAL holds back into the database file (a passive
/// checkpoint: it never waits for the writer or for readers), then rests
/// [`CHECKPOINT_INTERVAL`] before the next one. It stops when the writer is
/// gone (`hold_writer` runs what it is given while holding the writer, and
/// says false once the writer is gone).
///
/// Under constant writes a passive checkpoint never reaches the end of the
/// WAL (commits add frames while it copies), and the WAL can only start over
/// from its beginning once every frame is copied. So when the WAL has grown
/// past [`RESTART_AFTER_PAGES`], the thread copies the rest while holding the
/// writer (no commit can add frames meanwhile): little is left by then, and
/// the next commit starts the WAL over. Appends wait for that short catch-up
/// instead of for the writer's own automatic checkpoint, which copies and
/// syncs everything the thread has not.
pub(super) fn spawn(
    connection: Connection,
    woken: Receiver<()>,
    hold_writer: impl Fn(&dyn Fn()) -> bool + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("larder-sqlite-checkpoint".into())
        .spawn(move || {
            while woken.recv().is_ok() {
                if let Some(wal_pages) = checkpoint(&connection)
                    && wal_pages >= RESTART_AFTER_PAGES
                {
                    // Once more without the writer: what commits added while
                    // the first copied, so that less is left for the part
                    // that holds appends up.
                    checkpoint(&connection);
                    if !hold_writer(&|| {
                        checkpoint(&connection);
                    }) {
                        break;
                    }
                }
                std::thread::sleep(CHECKPOINT_INTERVAL);
            }
        })?;
    Ok(())
}

/// WAL pages after which the checkpoint thread finishes a checkpoint while
/// holding the writer, so that the WAL starts over.
const RESTART_AFTER_PAGES: i64 = 4_000;

/// Runs a passive checkpoint; the WAL's size in pages, if it ran.
fn checkpoint(connection: &Connection) -> Option<i64> {
    let result = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
    });
    match result {
        Ok((wal_pages, copied)) => {
            tracing::trace!(wal_pages, copied, "checkpointed");
            Some(wal_pages)
        }
        Err(error) => {
            tracing::warn!(%error, "SQLite checkpoint failed");
            None
        }
    }
}
