//! The planner's decisions, request by request.

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
