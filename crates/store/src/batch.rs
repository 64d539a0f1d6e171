//! The plumbing both writers share: an append on its way to a writer
//! ([`WriteRequest`]), taking a batch of them off the queue, answering their
//! callers, and the integers the databases store positions and versions as.

use tokio::sync::{mpsc, oneshot};

use crate::idempotency::{CommandKey, IdempotencyRecord, IdempotentAppend};
use crate::{AppendResult, StoreError, StreamAppend};

/// How an append is answered.
pub(crate) type Reply = oneshot::Sender<Result<IdempotentAppend, StoreError>>;

/// An append waiting for the writer.
pub(crate) struct WriteRequest {
    pub appends: Vec<StreamAppend>,
    /// The idempotency keys to store with the events (none, one for the
    /// whole append, or one per command of a group commit).
    pub keys: Vec<CommandKey>,
    pub reply: Reply,
}

/// Each caller of a committed batch, with its outcome.
pub(crate) type Answers = Vec<(Reply, Result<IdempotentAppend, StoreError>)>;

/// The callers of a batch while both writers commit it: what follows the
/// commit (logging it, answering) is the same on either backend.
pub(crate) struct Callers {
    replies: Vec<Reply>,
    started: std::time::Instant,
}

impl Callers {
    /// Splits a batch into its requests and their idempotency keys, for the
    /// writer, and its callers.
    pub(crate) fn split(
        batch: Vec<WriteRequest>,
    ) -> (Vec<Vec<StreamAppend>>, Vec<Vec<CommandKey>>, Self) {
        let mut requests = Vec::with_capacity(batch.len());
        let mut keys = Vec::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        for request in batch {
            requests.push(request.appends);
            keys.push(request.keys);
            replies.push(request.reply);
        }
        let callers = Self {
            replies,
            started: std::time::Instant::now(),
        };
        (requests, keys, callers)
    }

    /// Logs a committed batch of `events` events and pairs each caller with
    /// its outcome (a request answered by a stored idempotency record, from
    /// `replayed`, gets that record), to be answered once the events are
    /// published.
    pub(crate) fn committed(
        self,
        events: usize,
        outcomes: Vec<Result<AppendResult, StoreError>>,
        replayed: Vec<(usize, IdempotencyRecord)>,
    ) -> Answers {
        let mut outcomes: Vec<_> = outcomes
            .into_iter()
            .map(|outcome| outcome.map(IdempotentAppend::Appended))
            .collect();
        for (index, record) in replayed {
            if let Some(outcome) = outcomes.get_mut(index) {
                *outcome = Ok(IdempotentAppend::Replayed(record));
            }
        }
        tracing::debug!(
            requests = self.replies.len(),
            events,
            elapsed_us = self.started.elapsed().as_micros() as u64,
            "committed append batch"
        );
        self.replies.into_iter().zip(outcomes).collect()
    }

    /// Logs a failed batch and answers every caller with its error.
    pub(crate) fn failed(self, error: StoreError) {
        tracing::error!(%error, requests = self.replies.len(), "append batch failed");
        for reply in self.replies {
            let _ = reply.send(Err(error.clone()));
        }
    }
}

/// Answers each caller.
pub(crate) fn answer(answers: Answers) {
    for (reply, outcome) in answers {
        // The caller may have gone away; its append stands.
        let _ = reply.send(outcome);
    }
}

/// Takes `first` and whatever else is waiting, up to `max_batch_events`
/// events; an append that would overflow the batch is handed back to start
/// the next one.
pub(crate) fn take_batch(
    first: WriteRequest,
    queue: &mut mpsc::Receiver<WriteRequest>,
    max_batch_events: usize,
) -> (Vec<WriteRequest>, Option<WriteRequest>) {
    let mut events = count_events(&first);
    let mut batch = vec![first];
    while events < max_batch_events {
        let Ok(next) = queue.try_recv() else { break };
        let more = count_events(&next);
        if events + more > max_batch_events {
            return (batch, Some(next));
        }
        events += more;
        batch.push(next);
    }
    (batch, None)
}

fn count_events(request: &WriteRequest) -> usize {
    request
        .appends
        .iter()
        .map(|a| a.events.len())
        .sum::<usize>()
        .max(1)
}

/// A position or version as the databases store it (BIGINT).
pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A stored position or version (never negative) as the store hands it out.
pub(crate) fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}
