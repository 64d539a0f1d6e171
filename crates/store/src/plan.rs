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
mod tests {
    use super::*;
    use crate::Metadata;

    fn event() -> NewEvent {
        NewEvent::new("Happened", 1, serde_json::json!({}), Metadata::default())
    }

    fn append(stream: &str, expected: ExpectedVersion, events: Vec<NewEvent>) -> StreamAppend {
        StreamAppend {
            stream: stream.to_owned(),
            expected,
            events,
        }
    }

    fn snapshot(head: u64, versions: &[(&str, u64)]) -> Snapshot {
        Snapshot::known(head, versions)
    }

    #[test]
    fn accepted_requests_get_consecutive_positions_after_the_head() {
        let requests = vec![
            vec![append(
                "a",
                ExpectedVersion::NoStream,
                vec![event(), event()],
            )],
            vec![append("b", ExpectedVersion::Exact(3), vec![event()])],
        ];
        let plan = plan(snapshot(10, &[("b", 3)]), requests, Utc::now());

        let positions: Vec<u64> = plan.rows.iter().map(|r| r.position).collect();
        assert_eq!(positions, vec![11, 12, 13]);
        let versions: Vec<u64> = plan.rows.iter().map(|r| r.version).collect();
        assert_eq!(versions, vec![1, 2, 4]);
        assert_eq!(plan.outcomes[0].as_ref().unwrap().last_position, 12);
        assert_eq!(plan.outcomes[1].as_ref().unwrap().last_position, 13);
        assert_eq!(plan.outcomes[1].as_ref().unwrap().version(), 4);
    }

    #[test]
    fn a_conflicting_request_adds_nothing_and_leaves_no_gap() {
        let requests = vec![
            vec![append("a", ExpectedVersion::Exact(5), vec![event()])],
            vec![append("b", ExpectedVersion::Any, vec![event()])],
        ];
        let plan = plan(snapshot(7, &[("a", 2)]), requests, Utc::now());

        assert!(matches!(
            plan.outcomes[0],
            Err(StoreError::WrongExpectedVersion { actual: 2, .. })
        ));
        assert_eq!(plan.rows.len(), 1);
        assert_eq!(plan.rows[0].position, 8);
    }

    #[test]
    fn later_requests_in_a_batch_see_earlier_ones() {
        let requests = vec![
            vec![append("a", ExpectedVersion::NoStream, vec![event()])],
            vec![append("a", ExpectedVersion::NoStream, vec![event()])],
            vec![append("a", ExpectedVersion::Exact(1), vec![event()])],
        ];
        let plan = plan(snapshot(0, &[]), requests, Utc::now());

        assert!(plan.outcomes[0].is_ok());
        assert!(matches!(
            plan.outcomes[1],
            Err(StoreError::WrongExpectedVersion { actual: 1, .. })
        ));
        assert_eq!(plan.outcomes[2].as_ref().unwrap().version(), 2);
    }

    #[test]
    fn one_failing_stream_fails_the_whole_multi_stream_request() {
        let requests = vec![vec![
            append("a", ExpectedVersion::NoStream, vec![event()]),
            append("b", ExpectedVersion::Exact(9), vec![event()]),
        ]];
        let plan = plan(snapshot(0, &[("b", 1)]), requests, Utc::now());

        assert!(plan.outcomes[0].is_err());
        assert!(plan.rows.is_empty());
    }

    #[test]
    fn a_retry_with_the_same_ids_returns_the_original_result() {
        let events = vec![event(), event()];
        let first = plan(
            snapshot(0, &[]),
            vec![vec![append("a", ExpectedVersion::NoStream, events.clone())]],
            Utc::now(),
        );
        let mut stored = snapshot(5, &[("a", 2)]);
        for row in &first.rows {
            stored.existing.insert(
                row.id,
                Location {
                    stream: "a".to_owned(),
                    version: row.version,
                    position: row.position,
                },
            );
        }

        let retry = plan(
            stored,
            vec![vec![append("a", ExpectedVersion::NoStream, events)]],
            Utc::now(),
        );

        assert!(retry.rows.is_empty());
        assert_eq!(
            retry.outcomes[0].as_ref().unwrap(),
            first.outcomes[0].as_ref().unwrap()
        );
    }

    #[test]
    fn reusing_a_stored_id_for_another_append_is_refused() {
        let stored_event = event();
        let mut stored = snapshot(1, &[("a", 1)]);
        stored.existing.insert(
            stored_event.id,
            Location {
                stream: "a".to_owned(),
                version: 1,
                position: 1,
            },
        );
        let requests = vec![
            vec![append(
                "b",
                ExpectedVersion::Any,
                vec![stored_event.clone()],
            )],
            vec![append(
                "a",
                ExpectedVersion::Any,
                vec![stored_event.clone(), event()],
            )],
            vec![append("a", ExpectedVersion::Exact(3), vec![stored_event])],
        ];
        let plan = plan(stored, requests, Utc::now());

        for outcome in &plan.outcomes {
            assert!(
                matches!(outcome, Err(StoreError::DuplicateEventId { .. })),
                "{outcome:?}"
            );
        }
        assert!(plan.rows.is_empty());
    }

    #[test]
    fn a_check_only_stream_conditions_the_request_without_writing() {
        let requests = vec![vec![
            append("store", ExpectedVersion::Exact(4), vec![]),
            append("item", ExpectedVersion::NoStream, vec![event()]),
        ]];
        let plan = plan(snapshot(3, &[("store", 4)]), requests, Utc::now());

        let result = plan.outcomes[0].as_ref().unwrap();
        assert_eq!(result.version_of("store"), Some(4));
        assert_eq!(result.version_of("item"), Some(1));
        assert_eq!(plan.rows.len(), 1);
    }

    fn appending(stream: &str, expected: ExpectedVersion, events: usize) -> StreamAppend {
        StreamAppend {
            stream: stream.to_owned(),
            expected,
            events: (0..events)
                .map(|n| {
                    NewEvent::new(
                        "Happened",
                        1,
                        serde_json::json!({ "n": n }),
                        Metadata::default(),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn accepts_all_agrees_with_the_plan() {
        let cases = vec![
            vec![
                vec![appending("a", ExpectedVersion::Exact(2), 3)],
                vec![appending("a", ExpectedVersion::Exact(5), 1)],
                vec![
                    appending("b", ExpectedVersion::NoStream, 2),
                    appending("a", ExpectedVersion::Any, 0),
                ],
            ],
            vec![
                vec![appending("a", ExpectedVersion::Exact(2), 1)],
                vec![appending("a", ExpectedVersion::Exact(2), 1)],
            ],
            vec![vec![
                appending("b", ExpectedVersion::Any, 1),
                appending("a", ExpectedVersion::NoStream, 1),
            ]],
        ];
        for requests in cases {
            let accepted = accepts_all(&snapshot(7, &[("a", 2), ("b", 0)]), &requests);
            let plan = plan(snapshot(7, &[("a", 2), ("b", 0)]), requests, Utc::now());
            assert_eq!(accepted, plan.outcomes.iter().all(Result::is_ok));
        }
    }

    #[test]
    fn an_id_shared_between_requests_is_left_to_the_slow_path() {
        let first = vec![appending("a", ExpectedVersion::Any, 2)];
        let requests = vec![first.clone(), first];
        assert!(!accepts_all(&snapshot(0, &[("a", 0)]), &requests));
    }

    #[test]
    fn an_accepted_plan_gives_its_requests_back() {
        let requests = vec![
            vec![appending("a", ExpectedVersion::Exact(2), 3)],
            vec![
                appending("c", ExpectedVersion::Any, 0),
                appending("b", ExpectedVersion::NoStream, 2),
            ],
        ];
        let ids = |requests: &[Vec<StreamAppend>]| {
            requests
                .iter()
                .map(|r| {
                    r.iter()
                        .map(|a| {
                            let ids: Vec<_> = a.events.iter().map(|e| e.id).collect();
                            (a.stream.clone(), a.expected, ids)
                        })
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        };
        let before = ids(&requests);
        let shapes = shapes(&requests);
        let plan = plan(
            snapshot(4, &[("a", 2), ("b", 0), ("c", 1)]),
            requests,
            Utc::now(),
        );
        let rebuilt = unplan(shapes, plan.rows);
        assert_eq!(ids(&rebuilt), before);
        assert_eq!(rebuilt[0][0].events[1].data.json(), "{\"n\":1}");
    }

    fn idempotency(name: &str) -> crate::Idempotency {
        crate::Idempotency {
            tenant: "acme".into(),
            key: name.into(),
            fingerprint: "f".into(),
            status: 201,
            response: "{}".into(),
        }
    }

    fn key(name: &str) -> Vec<CommandKey> {
        vec![CommandKey::whole(idempotency(name))]
    }

    #[test]
    fn one_key_twice_in_a_batch_appends_once_and_a_refused_request_stores_no_key() {
        let requests = vec![
            vec![append("a", ExpectedVersion::Exact(9), vec![event()])],
            vec![append("a", ExpectedVersion::NoStream, vec![event()])],
            vec![append("b", ExpectedVersion::NoStream, vec![event()])],
        ];
        let keys = [key("refused"), key("k"), key("k")];
        let plan = plan_keyed(snapshot(0, &[]), requests, &keys, Utc::now());

        assert_eq!(
            plan.rows.len(),
            1,
            "only the first request with key k appends"
        );
        assert!(plan.outcomes[0].is_err());
        assert_eq!(plan.new_keys.len(), 1);
        assert_eq!(plan.new_keys[0].key, "k");
        assert_eq!(plan.replayed.len(), 1);
        assert_eq!(plan.replayed[0].0, 2);
        assert_eq!(
            plan.replayed[0].1.result,
            *plan.outcomes[1].as_ref().unwrap()
        );
    }

    #[test]
    fn each_command_of_a_group_commit_stores_its_own_part_of_the_result() {
        // Three commands on stream "a" (at version 2, head 4) in one
        // append: two events, none, one; and a parent checked unchanged.
        let requests = vec![vec![
            append(
                "a",
                ExpectedVersion::Exact(2),
                vec![event(), event(), event()],
            ),
            append("p", ExpectedVersion::Exact(1), vec![]),
        ]];
        let part = |name: &str, through| CommandKey {
            idempotency: idempotency(name),
            through: Some(through),
        };
        let keys = [vec![part("first", 2), part("second", 2), part("third", 3)]];
        let plan = plan_keyed(
            snapshot(4, &[("a", 2), ("p", 1)]),
            requests,
            &keys,
            Utc::now(),
        );

        assert_eq!(plan.rows.len(), 3);
        let answers: Vec<(String, u64, u64)> = plan
            .new_keys
            .iter()
            .map(|r| {
                (
                    r.key.clone(),
                    r.result.version_of("a").unwrap(),
                    r.result.last_position,
                )
            })
            .collect();
        assert_eq!(
            answers,
            [
                ("first".to_owned(), 4, 6),
                ("second".to_owned(), 4, 6),
                ("third".to_owned(), 5, 7)
            ]
        );
        assert!(
            plan.new_keys
                .iter()
                .all(|r| r.result.version_of("p") == Some(1))
        );
    }

    #[test]
    fn a_group_commit_with_one_live_key_appends_nothing_and_answers_that_record() {
        let mut snapshot = snapshot(4, &[("a", 2)]);
        let stored = IdempotencyRecord::new(
            &idempotency("old"),
            AppendResult {
                streams: vec![StreamVersion {
                    stream: "a".into(),
                    version: 2,
                }],
                last_position: 4,
            },
            Utc::now(),
        );
        snapshot
            .keys
            .insert(("acme".into(), "old".into()), stored.clone());
        let requests = vec![vec![append(
            "a",
            ExpectedVersion::Exact(2),
            vec![event(), event()],
        )]];
        let part = |name: &str, through| CommandKey {
            idempotency: idempotency(name),
            through: Some(through),
        };
        let keys = [vec![part("new", 1), part("old", 2)]];
        let plan = plan_keyed(snapshot, requests, &keys, Utc::now());

        assert!(plan.rows.is_empty());
        assert!(plan.new_keys.is_empty());
        assert_eq!(plan.replayed, vec![(0, stored)]);
    }
}
