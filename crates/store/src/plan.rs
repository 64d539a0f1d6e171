//! Deciding a batch of appends against one snapshot of the log.
//!
//! The writer takes the write lock, reads one [`Snapshot`] (head position,
//! the versions of the streams involved, which of the event ids are already
//! stored) and then decides every request of the batch here, in memory and in
//! arrival order, as if each had its own transaction: a request that fails
//! its checks contributes nothing, the next one sees the effects of the ones
//! before it. Only the rows of accepted requests are inserted, all in the
//! same transaction, so a batch of many small appends costs one commit.
//!
//! On PostgreSQL the writer may instead plan against what it remembers of the
//! log (no stored ids) and have the append function check, under the lock,
//! that the head and versions are unchanged; it only keeps such a plan when
//! every request was accepted (see `postgres_writer::commit_postgres`).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::idempotency::{CommandKey, IdempotencyRecord, KeyId};
use crate::{
    AppendResult, ExpectedVersion, NewEvent, RecordedEvent, StoreError, StreamAppend, StreamVersion,
};

/// Where a stored event is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Location {
    pub stream: String,
    pub version: u64,
    pub position: u64,
}

/// The state of the log a batch is decided against, read under the lock.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub head: u64,
    /// Current versions of the streams the batch touches (absent: 0).
    pub versions: HashMap<String, u64>,
    /// Event ids of the batch that are already stored.
    pub existing: HashMap<Uuid, Location>,
    /// The live idempotency records of the batch's keys.
    pub keys: HashMap<KeyId, IdempotencyRecord>,
}

#[cfg(test)]
impl Snapshot {
    /// A snapshot with these stream versions and no stored ids, for tests.
    pub(crate) fn known(head: u64, versions: &[(&str, u64)]) -> Self {
        Self {
            head,
            versions: versions
                .iter()
                .map(|(s, v)| ((*s).to_owned(), *v))
                .collect(),
            existing: HashMap::new(),
            keys: HashMap::new(),
        }
    }
}

/// The decisions for a batch.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Rows to insert (the events as they will be recorded), in position
    /// order.
    pub rows: Vec<RecordedEvent>,
    /// One outcome per request, in request order.
    pub outcomes: Vec<Result<AppendResult, StoreError>>,
    /// The requests answered by a stored idempotency record (by index),
    /// which appended nothing.
    pub replayed: Vec<(usize, IdempotencyRecord)>,
    /// Idempotency records to store, one per accepted request with a key.
    pub new_keys: Vec<IdempotencyRecord>,
}

/// Decides every request of a batch against `snapshot`, in order. Takes the
/// requests by value: accepted events move into their rows, uncopied.
#[cfg(test)]
pub(crate) fn plan(
    snapshot: Snapshot,
    requests: Vec<Vec<StreamAppend>>,
    recorded_at: DateTime<Utc>,
) -> Plan {
    plan_keyed(snapshot, requests, &[], recorded_at)
}

/// [`plan`], with each request's idempotency keys (`keys[i]` for request
/// `i`; missing: none). A request one of whose keys has a live record in
/// the snapshot, or was stored by an earlier request of the batch, is
/// answered with that record and appends nothing; an accepted request
/// stores a record per key (each with its command's part of the result,
/// see [`CommandKey`]); a refused one stores none.
pub(crate) fn plan_keyed(
    mut snapshot: Snapshot,
    requests: Vec<Vec<StreamAppend>>,
    keys: &[Vec<CommandKey>],
    recorded_at: DateTime<Utc>,
) -> Plan {
    let capacity = requests
        .iter()
        .flatten()
        .map(|append| append.events.len())
        .sum();
    let mut rows = Vec::with_capacity(capacity);
    let mut outcomes = Vec::with_capacity(requests.len());
    let mut replayed = Vec::new();
    let mut new_keys = Vec::new();
    let count = requests.len();
    for (index, request) in requests.into_iter().enumerate() {
        let keys = keys.get(index).map_or(&[][..], Vec::as_slice);
        let live = keys.iter().find_map(|key| {
            let id = (key.idempotency.tenant.clone(), key.idempotency.key.clone());
            snapshot.keys.get(&id)
        });
        if let Some(record) = live {
            outcomes.push(Ok(record.result.clone()));
            replayed.push((index, record.clone()));
            continue;
        }
        // Later requests of the batch are decided knowing these events' ids
        // (a retry may share the batch); after the last, nothing asks.
        let decided_later = index + 1 < count;
        let decision = decide(&snapshot, &request);
        if let Ok(Decision::Replay(result) | Decision::Append(result)) = &decision {
            let sizes: Vec<usize> = request.iter().map(|append| append.events.len()).collect();
            for key in keys {
                let part = key.result_of(result, &sizes);
                let record = IdempotencyRecord::new(&key.idempotency, part, recorded_at);
                let id = (key.idempotency.tenant.clone(), key.idempotency.key.clone());
                snapshot.keys.insert(id, record.clone());
                new_keys.push(record);
            }
        }
        match decision {
            Ok(Decision::Replay(result)) => outcomes.push(Ok(result)),
            Ok(Decision::Append(result)) => {
                // `decide` accepted every stream of the request: one entry of
                // `result.streams` per append, in order, at its new version.
                let mut position = snapshot.head;
                for (append, stream) in request.into_iter().zip(&result.streams) {
                    let first = stream.version - append.events.len() as u64 + 1;
                    for (version, event) in (first..).zip(append.events) {
                        position += 1;
                        if decided_later {
                            snapshot.existing.insert(
                                event.id,
                                Location {
                                    stream: append.stream.clone(),
                                    version,
                                    position,
                                },
                            );
                        }
                        rows.push(RecordedEvent {
                            position,
                            id: event.id,
                            stream: append.stream.clone(),
                            version,
                            event_type: event.event_type,
                            schema_version: event.schema_version,
                            data: event.data,
                            metadata: event.metadata,
                            recorded_at,
                        });
                    }
                    snapshot.versions.insert(append.stream, stream.version);
                }
                snapshot.head = result.last_position.max(snapshot.head);
                outcomes.push(Ok(result));
            }
            Err(error) => outcomes.push(Err(error)),
        }
    }
    Plan {
        rows,
        outcomes,
        replayed,
        new_keys,
    }
}

enum Decision {
    /// Every event of the request is already stored exactly as asked: the
    /// request is a retry, answered with the original result.
    Replay(AppendResult),
    /// New events to insert: each stream's events follow its current
    /// version, and the request's events take the positions after the head.
    Append(AppendResult),
}

fn decide(snapshot: &Snapshot, request: &[StreamAppend]) -> Result<Decision, StoreError> {
    let mut replayed = false;
    let mut appended = false;
    let mut replay_position = 0;
    let mut head = snapshot.head;
    let mut streams = Vec::with_capacity(request.len());

    for append in request {
        let current = snapshot.versions.get(&append.stream).copied().unwrap_or(0);
        let stored = |e: &NewEvent| snapshot.existing.get(&e.id);
        let first_stored = append
            .events
            .iter()
            .find_map(|e| stored(e).map(|location| (e.id, location)));

        if let Some((first_id, first)) = first_stored {
            // Some ids are stored: this must be an exact retry of an earlier
            // append, or it is refused whole.
            let exact_retry = append.events.iter().enumerate().all(|(i, e)| {
                stored(e).is_some_and(|loc| {
                    loc.stream == append.stream && loc.version == first.version + i as u64
                })
            }) && append.expected.accepts(first.version - 1);
            if !exact_retry {
                return Err(StoreError::DuplicateEventId { id: first_id });
            }
            // An exact retry has every event stored, the last one last.
            let last = append.events.last().and_then(stored).unwrap_or(first);
            replayed = true;
            replay_position = replay_position.max(last.position);
            streams.push(StreamVersion {
                stream: append.stream.clone(),
                version: last.version,
            });
            continue;
        }

        if !append.expected.accepts(current) {
            return Err(StoreError::WrongExpectedVersion {
                stream: append.stream.clone(),
                expected: append.expected,
                actual: current,
            });
        }
        let added = append.events.len() as u64;
        head += added;
        appended |= added > 0;
        let version = current + added;
        streams.push(StreamVersion {
            stream: append.stream.clone(),
            version,
        });
    }

    match (replayed, appended) {
        (true, true) => {
            // Part of the request is stored and part is not: not a retry of
            // one earlier append. Refuse it rather than guess.
            let id = request
                .iter()
                .flat_map(|a| &a.events)
                .map(|e| e.id)
                .find(|id| snapshot.existing.contains_key(id))
                .unwrap_or_default();
            Err(StoreError::DuplicateEventId { id })
        }
        (true, false) => Ok(Decision::Replay(AppendResult {
            streams,
            last_position: replay_position,
        })),
        (false, _) => Ok(Decision::Append(AppendResult {
            streams,
            last_position: head,
        })),
    }
}

/// Whether [`plan`] accepts every request of the batch as new events
/// against `snapshot`, which has no stored ids. Checked before planning,
/// which consumes the requests: only a batch planned whole can be taken
/// back apart ([`unplan`]) if the fast path falls back. With no stored ids
/// and no id shared between requests, a request is accepted exactly when
/// each stream's expected version accepts its version so far.
pub(crate) fn accepts_all(snapshot: &Snapshot, requests: &[Vec<StreamAppend>]) -> bool {
    let count = requests.iter().flatten().map(|a| a.events.len()).sum();
    let mut ids = HashSet::with_capacity(count);
    let distinct = requests
        .iter()
        .flatten()
        .flat_map(|a| &a.events)
        .all(|e| ids.insert(e.id));
    if !distinct {
        return false;
    }
    let mut versions = snapshot.versions.clone();
    requests.iter().flatten().all(|append| {
        let current = versions.get(&append.stream).copied().unwrap_or(0);
        // A request names each stream once, so updating as we go is the
        // same as updating after the request.
        versions.insert(append.stream.clone(), current + append.events.len() as u64);
        append.expected.accepts(current)
    })
}

/// A request's streams, expected versions and event counts, to rebuild it
/// from the plan's rows.
pub(crate) type Shape = Vec<(String, ExpectedVersion, usize)>;

pub(crate) fn shapes(requests: &[Vec<StreamAppend>]) -> Vec<Shape> {
    requests
        .iter()
        .map(|request| {
            request
                .iter()
                .map(|a| (a.stream.clone(), a.expected, a.events.len()))
                .collect()
        })
        .collect()
}

/// The requests a plan was made from, when it accepted every one of them
/// (see [`accepts_all`]): their events are its rows, in request order.
pub(crate) fn unplan(shapes: Vec<Shape>, rows: Vec<RecordedEvent>) -> Vec<Vec<StreamAppend>> {
    let mut rows = rows.into_iter();
    shapes
        .into_iter()
        .map(|request| {
            request
                .into_iter()
                .map(|(stream, expected, count)| StreamAppend {
                    stream,
                    expected,
                    events: rows
                        .by_ref()
                        .take(count)
                        .map(|row| NewEvent {
                            id: row.id,
                            event_type: row.event_type,
                            schema_version: row.schema_version,
                            data: row.data,
                            metadata: row.metadata,
                        })
                        .collect(),
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests;
