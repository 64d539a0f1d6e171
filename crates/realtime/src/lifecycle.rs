//! Command lifecycle frames: transient `command` messages that tell a login
//! session what became of a command it sent (`accepted`, then `executed` or
//! `failed`). They are not events: nothing is logged, nothing is replayed,
//! and they go only to the WebSocket connections of the command's tenant
//! that are subscribed to the session's `session:{sid}` topic when the frame
//! is sent.
//!
//! The ordering promise: an `executed` frame carrying position P is queued
//! only once the hub has routed every event up to P. A connection's frames
//! share one queue, so every event at or before P that the connection
//! receives live (on any of its subscribed topics) is written to it before
//! the `executed` frame. Until the hub gets there the frame waits in a
//! bounded list; the broadcaster releases it right after routing P.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::frame::SharedText;
use crate::metrics as m;
use crate::protocol::ServerMessage;
use crate::{Hub, Topic};

/// The most `executed` frames that wait, across the hub, for their position
/// to be routed. Beyond it a frame is sent at once, without the ordering
/// promise, rather than growing memory while the feed is stalled (a hub
/// that routes normally is at most a few milliseconds behind a commit, so
/// the list holds a handful of frames).
pub const MAX_WAITING_COMMAND_FRAMES: usize = 10_000;

/// The body of a `command` message: a command's id and how far it got.
///
/// ```
/// use larder_realtime::{CommandFrame, CommandStatus, ServerMessage};
/// let frame = ServerMessage::Command(CommandFrame {
///     command_id: "c-1".into(),
///     status: CommandStatus::Accepted,
/// });
/// assert_eq!(
///     frame.to_json(),
///     r#"{"type":"command","command_id":"c-1","status":"accepted"}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandFrame {
    /// The id the client gave the command.
    pub command_id: String,
    /// Where the command is.
    #[serde(flatten)]
    pub status: CommandStatus,
}

/// How far a command got: `accepted`, then exactly one of `executed` or
/// `failed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CommandStatus {
    /// The command passed its checks and is being decided and written.
    Accepted,
    /// The command's events are committed, and routed up to `position`.
    Executed {
        /// The global position of the last event the command wrote (the
        /// log's head when it changed nothing).
        position: u64,
        /// Whether this answers an earlier command with the same
        /// idempotency key again (nothing was written now).
        replayed: bool,
        /// The command's answer, as its caller received it.
        result: serde_json::Value,
    },
    /// The command was refused or could not be carried out: nothing was
    /// written.
    Failed {
        /// The machine-readable error code, as the caller received it.
        code: String,
        /// For people.
        message: String,
        /// Structured context, when the error has some.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        details: Option<serde_json::Value>,
    },
}

/// A frame on its way to the session of one tenant.
#[derive(Debug)]
struct Addressed {
    tenant: String,
    session: String,
    frame: SharedText,
}

/// `executed` frames waiting for the hub to route their position, oldest
/// position first.
#[derive(Debug, Default)]
pub(crate) struct Waiting {
    frames: Mutex<WaitingFrames>,
}

#[derive(Debug, Default)]
struct WaitingFrames {
    by_position: BTreeMap<u64, Vec<Addressed>>,
    len: usize,
}

impl Waiting {
    fn lock(&self) -> MutexGuard<'_, WaitingFrames> {
        self.frames
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes the frames whose position is at or before `position`.
    fn take_upto(&self, position: u64) -> Vec<Addressed> {
        let mut frames = self.lock();
        if frames.len == 0 {
            return Vec::new();
        }
        let later = match position.checked_add(1) {
            Some(after) => frames.by_position.split_off(&after),
            None => BTreeMap::new(),
        };
        let due = std::mem::replace(&mut frames.by_position, later);
        let due: Vec<Addressed> = due.into_values().flatten().collect();
        frames.len -= due.len();
        due
    }
}

impl Hub {
    /// Follows a command of `session` in `tenant` with `command` frames, or
    /// `None` when no connection of that session is subscribed to
    /// `session:{session}` (then the command costs nothing here).
    pub fn track_command(
        &self,
        tenant: &str,
        session: &str,
        command_id: &str,
    ) -> Option<CommandTracker> {
        let topic = Topic::Session(session.to_owned());
        (self.room_size(tenant, &topic) > 0).then(|| CommandTracker {
            hub: self.clone(),
            tenant: tenant.to_owned(),
            session: session.to_owned(),
            command_id: command_id.to_owned(),
            accepted: AtomicBool::new(false),
            finished: AtomicBool::new(false),
        })
    }

    /// Sends `frame` now to the session's live WebSocket subscribers.
    fn send_command_frame(&self, to: &Addressed) {
        let topic = format!("session:{}", to.session);
        self.notify_room(
            &to.tenant,
            &topic,
            |identity| identity.session.as_deref() == Some(to.session.as_str()),
            &to.frame,
        );
    }

    /// Sends `frame` once the hub has routed `position`: now if it has.
    fn send_command_frame_after(&self, position: u64, to: Addressed) {
        let waiting = self.waiting_commands();
        {
            let mut frames = waiting.lock();
            if frames.len < MAX_WAITING_COMMAND_FRAMES {
                frames.by_position.entry(position).or_default().push(to);
                frames.len += 1;
                // Holding the lock: a broadcaster that routes `position`
                // after this read takes the frame from the list itself.
                if self.position() < position {
                    return;
                }
            } else {
                tracing::warn!(
                    position,
                    "too many command frames waiting for the hub; sending one early"
                );
                drop(frames);
                metrics::counter!(m::COMMAND_FRAMES_EARLY).increment(1);
                self.send_command_frame(&to);
                return;
            }
        }
        self.commands_routed();
    }

    /// Sends the waiting `executed` frames the hub's position has reached.
    /// The broadcaster calls it after routing each event.
    pub(crate) fn commands_routed(&self) {
        for to in self.waiting_commands().take_upto(self.position()) {
            self.send_command_frame(&to);
        }
    }
}

/// Sends the `command` frames of one command to its session. `accepted` at
/// most once, then one of `executed` or `failed`; the first final call wins.
/// Dropped without either (the command's task panicked or was cancelled),
/// it sends `failed` with code `internal`.
#[derive(Debug)]
pub struct CommandTracker {
    hub: Hub,
    tenant: String,
    session: String,
    command_id: String,
    accepted: AtomicBool,
    finished: AtomicBool,
}

impl CommandTracker {
    /// The command id.
    pub fn command_id(&self) -> &str {
        &self.command_id
    }

    fn addressed(&self, status: CommandStatus) -> Addressed {
        let label = match status {
            CommandStatus::Accepted => "accepted",
            CommandStatus::Executed { .. } => "executed",
            CommandStatus::Failed { .. } => "failed",
        };
        metrics::counter!(m::COMMAND_FRAMES, "status" => label).increment(1);
        let frame = ServerMessage::Command(CommandFrame {
            command_id: self.command_id.clone(),
            status,
        });
        Addressed {
            tenant: self.tenant.clone(),
            session: self.session.clone(),
            frame: SharedText::from(frame.to_json()),
        }
    }

    /// The command passed its checks and enters the pipeline. Sent once,
    /// and never after the final frame.
    pub fn accepted(&self) {
        if self.finished.load(Ordering::Acquire) || self.accepted.swap(true, Ordering::AcqRel) {
            return;
        }
        self.hub
            .send_command_frame(&self.addressed(CommandStatus::Accepted));
    }

    /// The command's events are committed up to `position`: sent once the
    /// hub has routed `position`.
    pub fn executed(&self, position: u64, replayed: bool, result: serde_json::Value) {
        if self.finished.swap(true, Ordering::AcqRel) {
            return;
        }
        let to = self.addressed(CommandStatus::Executed {
            position,
            replayed,
            result,
        });
        self.hub.send_command_frame_after(position, to);
    }

    /// The command did not take effect: sent at once.
    pub fn failed(
        &self,
        code: impl Into<String>,
        message: impl Into<String>,
        details: Option<serde_json::Value>,
    ) {
        if self.finished.swap(true, Ordering::AcqRel) {
            return;
        }
        self.hub
            .send_command_frame(&self.addressed(CommandStatus::Failed {
                code: code.into(),
                message: message.into(),
                details,
            }));
    }
}

impl Drop for CommandTracker {
    fn drop(&mut self) {
        self.failed("internal", "the command ended without an answer", None);
    }
}
