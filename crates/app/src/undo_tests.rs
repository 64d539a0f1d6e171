//! Undo and redo through the one pipeline, against a real event store.

use larder_domain::{
    DomainError, EventId, ItemHistory, TenantId, UndoAction, UndoChange, UndoScope,
};
use larder_store::{EventStore, RecordedEvent};

use crate::tests::{Given, adjust, ctx, given_an_item, keyed, quantity};
use crate::{AppError, Context, Outcome, Request};

fn undo(given: &Given, action: UndoAction, event: &RecordedEvent) -> Request<ItemHistory> {
    Request {
        id: given.item,
        within: Some(given.store_id),
        expected: None,
        command: UndoChange {
            action,
            event_id: EventId::new(event.id),
            actor: "alice".to_owned(),
            scope: UndoScope::AnyChange,
        },
    }
}

/// The item's stored events, oldest first.
async fn events(given: &Given) -> anyhow::Result<Vec<RecordedEvent>> {
    Ok(given
        .store
        .read_stream(&given.item.stream_name(), 1, 100)
        .await?)
}

#[tokio::test]
async fn an_undo_appends_the_inverse_caused_by_the_undone_event() -> anyhow::Result<()> {
    // Given an item at 10 from which 3 were taken
    let given = given_an_item(20).await?;
    given
        .app
        .execute(&ctx(), adjust(given.store_id, given.item, -3, None))
        .await?;
    let taken = events(&given).await?.pop().expect("the adjustment");
    // When it is undone
    let context = ctx();
    let outcome = given
        .app
        .execute(&context, undo(&given, UndoAction::Undo, &taken))
        .await?;
    // Then a compensating adjustment was appended, caused by the undone one
    assert_eq!(outcome.events, ["StockAdjusted"]);
    assert_eq!(outcome.version, 3);
    assert_eq!(quantity(&given).await?, 10);
    let compensating = events(&given).await?.pop().expect("the undo");
    assert_eq!(compensating.metadata.causation_id, Some(taken.id));
    assert_eq!(
        compensating.metadata.correlation_id,
        Some(context.correlation_id)
    );
    assert_eq!(compensating.metadata.actor.as_deref(), Some("alice"));
    // And a redo takes the 3 out again, caused by the undo
    given
        .app
        .execute(&ctx(), undo(&given, UndoAction::Redo, &taken))
        .await?;
    assert_eq!(quantity(&given).await?, 7);
    let redo = events(&given).await?.pop().expect("the redo");
    assert_eq!(redo.metadata.causation_id, Some(compensating.id));
    // And the stream's other commands still see the right state
    given
        .app
        .execute(&ctx(), adjust(given.store_id, given.item, -7, None))
        .await?;
    assert_eq!(quantity(&given).await?, 0);
    Ok(())
}

#[tokio::test]
async fn an_undo_racing_a_stock_count_is_decided_again_and_refused() -> anyhow::Result<()> {
    // Given an adjustment, and a rival node that counts the stock (the test
    // store's rival adjusts with reason `counted`) just before our append
    let given = given_an_item(20).await?;
    given
        .app
        .execute(&ctx(), adjust(given.store_id, given.item, -3, None))
        .await?;
    let taken = events(&given).await?.pop().expect("the adjustment");
    let appends = given.store.appends();
    given.store.arm(1);
    // When we undo the adjustment
    let result = given
        .app
        .execute(&ctx(), undo(&given, UndoAction::Undo, &taken))
        .await;
    // Then the lost append is decided again on the fresh stream, where the
    // count now depends on the adjustment: refused, and only the count stored
    let count = events(&given).await?.pop().expect("the rival's count");
    assert!(
        matches!(
            &result,
            Err(AppError::Rejected(DomainError::UndoConflict { later, .. })) if later.as_uuid() == count.id
        ),
        "{result:?}"
    );
    assert_eq!(given.store.appends(), appends + 1);
    assert_eq!(quantity(&given).await?, 8);
    Ok(())
}

#[tokio::test]
async fn an_undo_retried_with_its_key_is_answered_again_and_undoes_once() -> anyhow::Result<()> {
    // Given an adjustment
    let given = given_an_item(20).await?;
    given
        .app
        .execute(&ctx(), adjust(given.store_id, given.item, -3, None))
        .await?;
    let taken = events(&given).await?.pop().expect("the adjustment");
    // When its undo is sent twice with one idempotency key
    let first = given
        .app
        .execute(&keyed("u1", "f1"), undo(&given, UndoAction::Undo, &taken))
        .await?;
    let retry = given
        .app
        .execute(&keyed("u1", "f1"), undo(&given, UndoAction::Undo, &taken))
        .await?;
    // Then the retry answers the first outcome (not `already_undone`) and
    // the stock went back once
    assert_eq!(
        retry,
        Outcome {
            replayed: true,
            ..first.clone()
        }
    );
    assert_eq!(quantity(&given).await?, 10);
    // And without the key, a second undo is refused
    let again = given
        .app
        .execute(&ctx(), undo(&given, UndoAction::Undo, &taken))
        .await;
    assert!(
        matches!(
            again,
            Err(AppError::Rejected(DomainError::AlreadyUndone { .. }))
        ),
        "{again:?}"
    );
    Ok(())
}

#[tokio::test]
async fn another_tenant_cannot_undo_and_learns_nothing() -> anyhow::Result<()> {
    // Given acme's adjustment
    let given = given_an_item(20).await?;
    given
        .app
        .execute(&ctx(), adjust(given.store_id, given.item, -3, None))
        .await?;
    let taken = events(&given).await?.pop().expect("the adjustment");
    let head = given.store.head().await?;
    // When another tenant undoes it
    let other = Context {
        tenant: TenantId::parse("globex")?,
        ..ctx()
    };
    let result = given
        .app
        .execute(&other, undo(&given, UndoAction::Undo, &taken))
        .await;
    // Then it is answered as if the store did not exist, and nothing changed
    assert!(matches!(result, Err(AppError::NotFound(_))), "{result:?}");
    assert_eq!(given.store.head().await?, head);
    assert_eq!(quantity(&given).await?, 7);
    Ok(())
}
