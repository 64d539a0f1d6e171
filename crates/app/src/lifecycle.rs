//! Command lifecycle: a command may be followed by someone who wants to know
//! when it enters the pipeline (e.g. the session that sent it, told over
//! the real-time connection). How it ended is its answer.

use std::fmt;

/// Told when a command passed the caller's checks and enters the pipeline:
/// from then on it is decided and written, or refused, and answered.
///
/// Implementations must not wait: the pipeline calls them inline.
pub trait Lifecycle: Send + Sync + fmt::Debug {
    /// The command enters the pipeline. Called once per command (a retry
    /// inside the pipeline does not call it again).
    fn accepted(&self);
}
