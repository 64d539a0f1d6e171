//! The pipeline against a real event store (SQLite on a temporary file),
//! with a rival node writing to the same streams where a test needs a race.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use larder_domain::{
    AdjustReason, Delta, DomainError, ItemCommand, ItemId, ItemName, ItemState, Quantity, Sku,
    StoreCommand, StoreId, StoreName, StoreState, TenantId, Threshold, TransferId, TransferStock,
    Unit,
};
use larder_store::{
    AppendResult, CommandKey, EventFilter, EventStore, IdempotencyRecord, IdempotentAppend, Page,
    RecordedEvent, SqlEventStore, StoreError, StoreOptions, StreamAppend,
};
use uuid::Uuid;

use crate::{App, AppError, Context, IdempotencyKey, Outcome, Request};

/// The event store a node under test writes to: the real store, with a
/// rival node that commits a change of its own to the same item just before
/// each of the next `rivals` appends, the way a second server on the same
/// database does.
pub(crate) struct Racing {
    inner: Arc<SqlEventStore>,
    rival: App,
    rivals: AtomicUsize,
    appends: AtomicUsize,
}

impl Racing {
    /// The next `count` appends each lose to the rival adding one to `item`.
    pub(crate) fn arm(&self, count: usize) {
        self.rivals.store(count, Ordering::SeqCst);
    }

    pub(crate) fn appends(&self) -> usize {
        self.appends.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl EventStore for Racing {
    async fn append_streams(&self, appends: Vec<StreamAppend>) -> Result<AppendResult, StoreError> {
        self.appends.fetch_add(1, Ordering::SeqCst);
        let armed = self
            .rivals
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if armed {
            let item = appends[0].stream.trim_start_matches("item-");
            let item = ItemId::new(Uuid::parse_str(item).expect("an item stream"));
            let store_id = appends[1].stream.trim_start_matches("store-");
            let store_id = StoreId::new(Uuid::parse_str(store_id).expect("a store stream"));
            self.rival
                .execute(&ctx(), adjust(store_id, item, 1, None))
                .await
                .expect("the rival's change commits");
        }
        self.inner.append_streams(appends).await
    }

    async fn append_keyed(
        &self,
        appends: Vec<StreamAppend>,
        keys: Vec<CommandKey>,
    ) -> Result<IdempotentAppend, StoreError> {
        self.appends.fetch_add(1, Ordering::SeqCst);
        self.inner.append_keyed(appends, keys).await
    }

    async fn idempotency_record(
        &self,
        tenant: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.inner.idempotency_record(tenant, key).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(stream, from_version, limit).await
    }

    async fn read_event(&self, id: Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        self.inner.read_event(id).await
    }

    async fn stream_version(&self, stream: &str) -> Result<u64, StoreError> {
        self.inner.stream_version(stream).await
    }

    async fn read_all(
        &self,
        after: u64,
        limit: u32,
        filter: &EventFilter,
    ) -> Result<Page, StoreError> {
        self.inner.read_all(after, limit, filter).await
    }

    async fn head(&self) -> Result<u64, StoreError> {
        self.inner.head().await
    }
}

/// A fresh SQLite event store, a node (`app`) over it with `retries`, and a
/// store with one item of quantity 10 in it.
pub(crate) struct Given {
    pub(crate) app: App,
    pub(crate) store: Arc<Racing>,
    pub(crate) store_id: StoreId,
    pub(crate) item: ItemId,
    file: std::path::PathBuf,
}

impl Drop for Given {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.file.display()));
        }
    }
}

pub(crate) fn ctx() -> Context {
    Context {
        tenant: TenantId::parse("acme").expect("valid tenant"),
        actor: "alice".to_owned(),
        session: None,
        correlation_id: Uuid::new_v4(),
        idempotency: None,
        lifecycle: None,
        causation_id: None,
    }
}

pub(crate) fn keyed(key: &str, fingerprint: &str) -> Context {
    Context {
        idempotency: Some(IdempotencyKey {
            key: key.to_owned(),
            fingerprint: fingerprint.to_owned(),
            status: 200,
        }),
        ..ctx()
    }
}

pub(crate) fn adjust(
    store_id: StoreId,
    item: ItemId,
    delta: i64,
    expected: Option<u64>,
) -> Request<ItemState> {
    Request {
        id: item,
        within: Some(store_id),
        expected,
        command: ItemCommand::AdjustStock {
            delta: Delta::parse(delta).expect("valid delta"),
            reason: AdjustReason::Counted,
            note: None,
        },
    }
}

pub(crate) async fn given_an_item(retries: usize) -> anyhow::Result<Given> {
    given_a_patient_item(retries, std::time::Duration::ZERO).await
}

/// [`given_an_item`], on a node that goes on trying for `patience`.
pub(crate) async fn given_a_patient_item(
    retries: usize,
    patience: std::time::Duration,
) -> anyhow::Result<Given> {
    let file = std::env::temp_dir().join(format!("larder-app-{}.db", Uuid::new_v4()));
    let url = format!("sqlite://{}", file.display());
    let inner = Arc::new(SqlEventStore::connect(&url, StoreOptions::default()).await?);
    let store = Arc::new(Racing {
        rival: App::new(inner.clone()),
        inner,
        rivals: AtomicUsize::new(0),
        appends: AtomicUsize::new(0),
    });
    let app = App::with_retries(store.clone(), retries).patient_for(patience);
    let store_id = StoreId::new(Uuid::new_v4());
    app.execute(
        &ctx(),
        Request::<StoreState> {
            id: store_id,
            within: None,
            expected: None,
            command: StoreCommand::CreateStore {
                store_id,
                tenant: ctx().tenant,
                name: StoreName::parse("Deli")?,
            },
        },
    )
    .await?;
    let item = add_item(&app, store_id, "OAT-1").await?;
    store.appends.store(0, Ordering::SeqCst);
    Ok(Given {
        app,
        store,
        store_id,
        item,
        file,
    })
}

async fn add_item(app: &App, store_id: StoreId, sku: &str) -> anyhow::Result<ItemId> {
    let sku = Sku::parse(sku)?;
    let item = ItemId::for_sku(store_id, &sku);
    app.execute(
        &ctx(),
        Request::<ItemState> {
            id: item,
            within: Some(store_id),
            expected: None,
            command: ItemCommand::AddItem {
                store_id,
                sku,
                name: ItemName::parse("Oats")?,
                unit: Unit::parse("kg")?,
                quantity: Quantity::parse(10)?,
                threshold: Threshold::parse(0)?,
            },
        },
    )
    .await?;
    Ok(item)
}

/// The item's quantity, folded from its stored events.
pub(crate) async fn quantity(given: &Given) -> anyhow::Result<i64> {
    let (state, _) = given
        .app
        .state::<ItemState>(&given.item.stream_name(), true)
        .await?;
    Ok(match state {
        ItemState::Active { quantity, .. } => quantity.get(),
        other => anyhow::bail!("not active: {other:?}"),
    })
}

#[tokio::test]
async fn a_conflict_is_retried_and_no_update_is_lost() -> anyhow::Result<()> {
    // Given an item at 10, and a rival node that adds 1 just before our append
    let given = given_an_item(20).await?;
    given.store.arm(1);
    // When we take 3 out
    let outcome = given
        .app
        .execute(&ctx(), adjust(given.store_id, given.item, -3, None))
        .await?;
    // Then our first append lost, the second (decided again) won, both
    // changes are stored
    assert_eq!(given.store.appends(), 2);
    assert_eq!(outcome.events, ["StockAdjusted"]);
    assert_eq!(outcome.version, 3);
    assert_eq!(quantity(&given).await?, 8);
    Ok(())
}

#[tokio::test]
async fn retries_are_bounded_and_end_in_a_conflict() -> anyhow::Result<()> {
    // Given a node that tries 3 times, and a rival that wins every race
    let given = given_an_item(3).await?;
    given.store.arm(usize::MAX);
    // When we take 3 out
    let result = given
        .app
        .execute(&ctx(), adjust(given.store_id, given.item, -3, None))
        .await;
    // Then it gave up after 3 appends with a conflict at the stream's version,
    // and only the rival's changes are stored
    let stream = given.item.stream_name();
    let current = given.store.stream_version(&stream).await?;
    assert_eq!(given.store.appends(), 3);
    assert_eq!(current, 4);
    assert!(
        matches!(&result, Err(AppError::Conflict { stream: s, current_version }) if *s == stream && *current_version == current),
        "{result:?}"
    );
    assert_eq!(quantity(&given).await?, 13);
    Ok(())
}

#[tokio::test]
async fn a_command_that_keeps_losing_goes_on_for_its_patience() -> anyhow::Result<()> {
    // Given a node that tries at least 3 times and for at least 2 s, and a
    // rival that wins the first 8 races (several nodes on one hot stream)
    let given = given_a_patient_item(3, std::time::Duration::from_secs(2)).await?;
    given.store.arm(8);
    // When we take 3 out
    let outcome = given
        .app
        .execute(&ctx(), adjust(given.store_id, given.item, -3, None))
        .await?;
    // Then it went on past its 3 tries, within its patience, and won the
    // ninth race: every change is stored
    assert_eq!(given.store.appends(), 9);
    assert_eq!(outcome.events, ["StockAdjusted"]);
    assert_eq!(quantity(&given).await?, 10 + 8 - 3);
    Ok(())
}

#[tokio::test]
async fn a_rejected_command_appends_nothing() -> anyhow::Result<()> {
    // Given an item at 10
    let given = given_an_item(20).await?;
    let head = given.store.head().await?;
    // When we take 11 out
    let result = given
        .app
        .execute(&ctx(), adjust(given.store_id, given.item, -11, None))
        .await;
    // Then the domain refuses, and nothing was appended or even tried
    assert!(
        matches!(
            result,
            Err(AppError::Rejected(DomainError::InsufficientStock { .. }))
        ),
        "{result:?}"
    );
    assert_eq!(given.store.appends(), 0);
    assert_eq!(given.store.head().await?, head);
    Ok(())
}

#[tokio::test]
async fn a_stale_expected_version_is_a_conflict_and_is_not_retried() -> anyhow::Result<()> {
    // Given an item at version 1, and a rival that changes it first
    let given = given_an_item(20).await?;
    given.store.arm(1);
    // When we adjust expecting version 1
    let result = given
        .app
        .execute(&ctx(), adjust(given.store_id, given.item, -3, Some(1)))
        .await;
    // Then the one append lost, and the client hears the version it missed
    assert!(
        matches!(
            result,
            Err(AppError::Conflict {
                current_version: 2,
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(given.store.appends(), 1);
    assert_eq!(quantity(&given).await?, 11);
    Ok(())
}

#[tokio::test]
async fn another_tenants_store_is_not_found() -> anyhow::Result<()> {
    // Given acme's store
    let given = given_an_item(20).await?;
    // When another tenant renames it
    let other = Context {
        tenant: TenantId::parse("globex")?,
        ..ctx()
    };
    let result = given
        .app
        .execute(
            &other,
            Request::<StoreState> {
                id: given.store_id,
                within: None,
                expected: None,
                command: StoreCommand::RenameStore {
                    name: StoreName::parse("Mine")?,
                },
            },
        )
        .await;
    // Then it is answered as if the store did not exist
    assert!(
        matches!(result, Err(AppError::NotFound("store"))),
        "{result:?}"
    );
    assert_eq!(given.store.appends(), 0);
    Ok(())
}

#[tokio::test]
async fn a_replayed_transfer_answers_the_first_and_moves_stock_once() -> anyhow::Result<()> {
    // Given two items of 10
    let given = given_an_item(20).await?;
    let to = add_item(&given.app, given.store_id, "OAT-2").await?;
    let command = TransferStock {
        transfer_id: TransferId::new(Uuid::new_v4()),
        quantity: Quantity::parse(4)?,
        note: None,
    };
    // When the same transfer is sent twice
    let first = given
        .app
        .transfer(&ctx(), given.item, to, command.clone())
        .await?;
    let head = given.store.head().await?;
    let again = given.app.transfer(&ctx(), given.item, to, command).await?;
    // Then the replay answers what the first did and writes nothing
    assert_eq!(again, first);
    assert_eq!(given.store.head().await?, head);
    assert_eq!(quantity(&given).await?, 6);
    let Outcome { events, .. } = first.to;
    assert_eq!(events, ["StockAdjusted", "TransferCompleted"]);
    Ok(())
}

#[tokio::test]
async fn a_retry_with_the_same_key_answers_the_first_outcome_and_appends_nothing()
-> anyhow::Result<()> {
    // Given an item at 10 and its version
    let given = given_an_item(20).await?;
    let (_, version) = given
        .app
        .state::<ItemState>(&given.item.stream_name(), true)
        .await?;
    let appends = given.store.appends();
    // When we take 3 out with If-Match and a key, then send it again
    let first = given
        .app
        .execute(
            &keyed("k1", "f1"),
            adjust(given.store_id, given.item, -3, Some(version)),
        )
        .await?;
    let retry = given
        .app
        .execute(
            &keyed("k1", "f1"),
            adjust(given.store_id, given.item, -3, Some(version)),
        )
        .await?;
    // Then the retry passed its (now stale) version check, answers the same
    // version, position and events, and only the first appended
    assert!(!first.replayed);
    assert_eq!(
        retry,
        Outcome {
            replayed: true,
            ..first.clone()
        }
    );
    assert_eq!(given.store.appends(), appends + 1);
    assert_eq!(quantity(&given).await?, 7);
    Ok(())
}

#[tokio::test]
async fn the_same_key_for_another_request_is_refused_and_changes_nothing() -> anyhow::Result<()> {
    // Given a command stored with key k1
    let given = given_an_item(20).await?;
    given
        .app
        .execute(
            &keyed("k1", "f1"),
            adjust(given.store_id, given.item, -3, None),
        )
        .await?;
    // When another command (another fingerprint) reuses k1
    let reused = given
        .app
        .execute(
            &keyed("k1", "f2"),
            adjust(given.store_id, given.item, -5, None),
        )
        .await;
    // Then it is refused as a reused key and nothing else is stored
    assert!(
        matches!(&reused, Err(AppError::IdempotencyKeyReused(key)) if key == "k1"),
        "{reused:?}"
    );
    assert_eq!(quantity(&given).await?, 7);
    Ok(())
}

/// Starts `requests` at once, each as its own task, in order, and returns
/// their answers in the same order.
async fn all_at_once(
    app: &App,
    requests: Vec<Request<ItemState>>,
) -> anyhow::Result<Vec<Result<Outcome, AppError>>> {
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|request| {
            let app = app.clone();
            tokio::spawn(async move { app.execute(&ctx(), request).await })
        })
        .collect();
    let mut answers = Vec::with_capacity(tasks.len());
    for task in tasks {
        answers.push(task.await?);
    }
    Ok(answers)
}

#[tokio::test]
async fn commands_waiting_on_one_stream_share_one_append_and_each_gets_its_own_answer()
-> anyhow::Result<()> {
    // Given an item at 10 (its stream at version 1)
    let given = given_an_item(20).await?;
    let head = given.store.head().await?;
    // When 40 commands arrive together: +1 each, except one that takes out
    // more than there is, one that expects the version before them all
    // (first in line, so it holds) and one that expects it too but comes
    // later (stale by then)
    let mut requests: Vec<_> = (0..40)
        .map(|_| adjust(given.store_id, given.item, 1, None))
        .collect();
    requests[0] = adjust(given.store_id, given.item, 1, Some(1));
    requests[10] = adjust(given.store_id, given.item, -1_000, None);
    requests[20] = adjust(given.store_id, given.item, 1, Some(1));
    let answers = all_at_once(&given.app, requests).await?;
    // Then one append wrote all 38 changes, and each command's answer has
    // its own version and position, in arrival order
    assert_eq!(given.store.appends(), 1);
    let mut written = 0;
    for (index, answer) in answers.iter().enumerate() {
        match (index, answer) {
            (10, Err(AppError::Rejected(DomainError::InsufficientStock { .. }))) => {}
            (
                20,
                Err(AppError::Conflict {
                    current_version, ..
                }),
            ) => {
                assert_eq!(*current_version, 1 + written);
            }
            (10 | 20, other) => panic!("command {index}: {other:?}"),
            (_, Ok(outcome)) => {
                written += 1;
                assert_eq!(outcome.version, 1 + written, "command {index}");
                assert_eq!(outcome.position, head + written, "command {index}");
                assert_eq!(outcome.events, ["StockAdjusted"]);
            }
            (_, Err(error)) => panic!("command {index}: {error:?}"),
        }
    }
    assert_eq!(written, 38);
    assert_eq!(quantity(&given).await?, 48);
    // And the stored events say so, one per command, in the same order
    let stream = given
        .store
        .read_stream(&given.item.stream_name(), 2, 100)
        .await?;
    assert_eq!(stream.len(), 38);
    assert!(stream.iter().zip(head + 1..).all(|(e, p)| e.position == p));
    Ok(())
}

#[tokio::test]
async fn a_round_that_loses_a_race_is_decided_again_whole() -> anyhow::Result<()> {
    // Given an item at 10, and a rival node that adds 1 just before our
    // first append
    let given = given_an_item(20).await?;
    given.store.arm(1);
    // When 10 commands take 1 out each, together
    let requests = (0..10)
        .map(|_| adjust(given.store_id, given.item, -1, None))
        .collect();
    let answers = all_at_once(&given.app, requests).await?;
    // Then the round lost once and won on fresh state: every change and the
    // rival's are stored, none twice
    assert_eq!(given.store.appends(), 2);
    let versions: Vec<u64> = answers
        .into_iter()
        .map(|answer| answer.map(|outcome| outcome.version))
        .collect::<Result<_, _>>()?;
    assert_eq!(versions, (3..=12).collect::<Vec<_>>());
    assert_eq!(quantity(&given).await?, 1);
    Ok(())
}

#[tokio::test]
async fn keyed_commands_share_a_round_and_each_key_answers_its_own_part() -> anyhow::Result<()> {
    // Given an item at 10
    let given = given_an_item(20).await?;
    // When 10 commands with keys arrive together, the fourth sent twice (a
    // retry that arrived while its first try waited)
    let mut sent: Vec<(Context, Request<ItemState>)> = (0..10)
        .map(|n| {
            let ctx = keyed(&format!("key-{n}"), &format!("adjust +{n}"));
            (ctx, adjust(given.store_id, given.item, n + 1, None))
        })
        .collect();
    sent.push(sent[3].clone());
    // (the stream's turn held until all of them wait in its lane, the copy
    // last)
    let stream = given.item.stream_name();
    let turn = given.app.turns.take(&stream).await;
    let queued = |count: usize| {
        let app = given.app.clone();
        let stream = stream.clone();
        tokio::time::timeout(std::time::Duration::from_secs(10), async move {
            while app.lanes.queued::<ItemState>(&stream) < count {
                tokio::task::yield_now().await;
            }
        })
    };
    let mut tasks = Vec::new();
    for (n, (ctx, request)) in sent.iter().cloned().enumerate() {
        if n == 10 {
            queued(10).await?;
        }
        let app = given.app.clone();
        tasks.push(tokio::spawn(
            async move { app.execute(&ctx, request).await },
        ));
    }
    queued(11).await?;
    drop(turn);
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await??);
    }
    // Then the ten commands were one append, the copy a replay of the
    // fourth, and stock moved once per command
    assert_eq!(quantity(&given).await?, 10 + 55);
    // (and the copy, in the next round, found its key stored)
    assert_eq!(given.store.appends(), 2);
    assert_eq!(answers[10].version, answers[3].version);
    assert_eq!(answers[10].position, answers[3].position);
    assert!(answers[10].replayed && !answers[3].replayed);
    // And each retry now answers exactly what its command was answered,
    // appending nothing
    let appends = given.store.appends();
    for ((ctx, request), first) in sent.iter().zip(&answers).take(10) {
        let again = given.app.execute(ctx, request.clone()).await?;
        assert!(again.replayed);
        assert_eq!(
            (again.version, again.position, &again.events),
            (first.version, first.position, &first.events)
        );
    }
    assert_eq!(given.store.appends(), appends);
    Ok(())
}

/// Counts how often a command's follower is told it was accepted.
#[derive(Debug, Default)]
struct Followed(AtomicUsize);

impl crate::Lifecycle for Followed {
    fn accepted(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_followed_command_is_accepted_once_however_often_it_is_retried() -> anyhow::Result<()> {
    // Given an item, a rival that wins the first two appends, and a
    // follower on the command
    let given = given_an_item(20).await?;
    given.store.arm(2);
    let followed = Arc::new(Followed::default());
    let ctx = Context {
        lifecycle: Some(followed.clone()),
        ..ctx()
    };
    // When the command is executed (and retried twice)
    given
        .app
        .execute(&ctx, adjust(given.store_id, given.item, -3, None))
        .await?;
    // Then its follower heard of it once
    assert_eq!(given.store.appends(), 3);
    assert_eq!(followed.0.load(Ordering::SeqCst), 1);

    // And a refused command and a transfer are accepted too: both entered
    // the pipeline
    let refused = given
        .app
        .execute(&ctx, adjust(given.store_id, given.item, -1000, None))
        .await;
    assert!(matches!(refused, Err(AppError::Rejected(_))), "{refused:?}");
    let to = add_item(&given.app, given.store_id, "OAT-2").await?;
    let command = TransferStock {
        transfer_id: TransferId::new(Uuid::new_v4()),
        quantity: Quantity::parse(1)?,
        note: None,
    };
    given.app.transfer(&ctx, given.item, to, command).await?;
    assert_eq!(followed.0.load(Ordering::SeqCst), 3);
    Ok(())
}
