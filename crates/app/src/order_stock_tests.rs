//! The order-to-stock process manager: a fired order takes its recipe's
//! stock exactly once (across restarts, replays and a stop between the
//! order event and its adjustments), voids and cancellations give it back
//! once, and a refused adjustment does not hold the others back.

use std::sync::Arc;
use std::time::Duration;

use larder_bus::{EventBus, InMemoryEventBus};
use larder_codec::{Entity, Origin, encode};
use larder_domain::{
    CancelReason, Course, DomainEvent, FiredLine, ItemCommand, ItemId, ItemName, ItemState, LineId,
    LineQuantity, MenuItemId, MenuItemName, OrderEvent, OrderId, Quantity, ReturnedLine, Sku,
    StationKey, StockUse, StoreCommand, StoreId, StoreName, StoreState, Threshold, Unit,
};
use larder_store::{
    Database, EventStore, ExpectedVersion, RecordedEvent, SqlEventStore, StoreOptions, StreamAppend,
};
use uuid::Uuid;

use crate::order_stock::{ACTOR, OrderStock, StockMoveKind, follow, stock_moves};
use crate::tests::ctx;
use crate::{App, Followed, Request};

/// How long a test waits for the process manager to reach a position.
const WAIT: Duration = Duration::from_secs(10);

struct Kitchen {
    app: App,
    store: Arc<dyn EventStore>,
    bus: Arc<dyn EventBus<RecordedEvent>>,
    db: Database,
    store_id: StoreId,
    beef: ItemId,
    bun: ItemId,
    order: OrderId,
    file: std::path::PathBuf,
}

impl Drop for Kitchen {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

fn line(n: u128) -> LineId {
    LineId::new(Uuid::from_u128(n))
}

fn uses(item: ItemId, quantity: i64) -> StockUse {
    StockUse {
        item_id: item,
        quantity: Quantity::parse(quantity).expect("valid quantity"),
    }
}

impl Kitchen {
    /// A store with BEEF (10) and BUN (10) in stock.
    async fn new() -> anyhow::Result<Self> {
        let file = std::env::temp_dir().join(format!("larder-order-stock-{}.db", Uuid::new_v4()));
        let bus: Arc<dyn EventBus<RecordedEvent>> = Arc::new(InMemoryEventBus::default());
        let sql = SqlEventStore::connect(
            &format!("sqlite://{}", file.display()),
            StoreOptions::default().bus(bus.clone()),
        )
        .await?;
        let db = sql.database();
        larder_projections::migrate(&db).await?;
        let store: Arc<dyn EventStore> = Arc::new(sql);
        let app = App::new(store.clone());
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
                    name: StoreName::parse("Diner")?,
                },
            },
        )
        .await?;
        let mut kitchen = Self {
            app,
            store,
            bus,
            db,
            store_id,
            beef: ItemId::new(Uuid::nil()),
            bun: ItemId::new(Uuid::nil()),
            order: OrderId::new(Uuid::new_v4()),
            file,
        };
        kitchen.beef = kitchen.add_item("BEEF", 10).await?;
        kitchen.bun = kitchen.add_item("BUN", 10).await?;
        Ok(kitchen)
    }

    async fn add_item(&self, sku: &str, quantity: i64) -> anyhow::Result<ItemId> {
        let sku = Sku::parse(sku)?;
        let item = ItemId::for_sku(self.store_id, &sku);
        self.app
            .execute(
                &ctx(),
                Request::<ItemState> {
                    id: item,
                    within: Some(self.store_id),
                    expected: None,
                    command: ItemCommand::AddItem {
                        store_id: self.store_id,
                        sku,
                        name: ItemName::parse("Ingredient")?,
                        unit: Unit::parse("each")?,
                        quantity: Quantity::parse(quantity)?,
                        threshold: Threshold::parse(0)?,
                    },
                },
            )
            .await?;
        Ok(item)
    }

    /// Appends an order event as the order pipeline would; its position.
    async fn record(&self, event: OrderEvent) -> anyhow::Result<u64> {
        let event = DomainEvent::Order(event);
        let origin = Origin {
            tenant: ctx().tenant,
            actor: "till".to_owned(),
            session: None,
            correlation_id: Uuid::new_v4(),
            causation_id: None,
        };
        let new = encode(&event, &origin, Entity::of(&event));
        let result = self
            .store
            .append_streams(vec![StreamAppend::new(
                format!("order-{}", self.order.as_uuid()),
                ExpectedVersion::Any,
                vec![new],
            )])
            .await?;
        Ok(result.last_position)
    }

    /// Fires two lines: line 1 takes 4 BEEF and 2 BUN, line 2 takes 1 BEEF.
    fn fired(&self) -> anyhow::Result<OrderEvent> {
        let fired = |n: u128, stock: Vec<StockUse>| -> anyhow::Result<FiredLine> {
            Ok(FiredLine {
                line_id: line(n),
                menu_item_id: MenuItemId::new(Uuid::from_u128(n)),
                name: MenuItemName::parse("Burger")?,
                station: StationKey::parse("grill")?,
                course: Course::parse(1)?,
                quantity: LineQuantity::parse(2)?,
                modifiers: vec![],
                note: None,
                stock,
            })
        };
        Ok(OrderEvent::OrderFired {
            order_id: self.order,
            store_id: self.store_id,
            course: None,
            lines: vec![
                fired(1, vec![uses(self.beef, 4), uses(self.bun, 2)])?,
                fired(2, vec![uses(self.beef, 1)])?,
            ],
        })
    }

    async fn quantity(&self, item: ItemId) -> anyhow::Result<i64> {
        let stream = format!("item-{}", item.as_uuid());
        let (state, _) = self.app.state::<ItemState>(&stream, true).await?;
        state
            .quantity()
            .map(|q| q.get())
            .ok_or_else(|| anyhow::anyhow!("item {item:?} is not active"))
    }

    async fn stock(&self) -> anyhow::Result<(i64, i64)> {
        Ok((
            self.quantity(self.beef).await?,
            self.quantity(self.bun).await?,
        ))
    }

    async fn start(&self) -> anyhow::Result<OrderStock> {
        Ok(OrderStock::start(
            self.app.clone(),
            self.db.clone(),
            self.store.clone(),
            Some(self.bus.clone()),
        )
        .await?)
    }

    async fn rewind(&self, position: u64) -> anyhow::Result<()> {
        let mut tx = larder_projections::Tx::begin(&self.db).await?;
        tx.execute(
            "UPDATE projection_checkpoints SET position = $1 WHERE name = $2",
            vec![position.into(), OrderStock::NAME.into()],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn adjustments(&self, item: ItemId) -> anyhow::Result<Vec<RecordedEvent>> {
        let events = self
            .store
            .read_stream(&format!("item-{}", item.as_uuid()), 1, 1000)
            .await?;
        Ok(events
            .into_iter()
            .filter(|e| e.event_type == "StockAdjusted")
            .collect())
    }
}

async fn reached(running: &OrderStock, position: u64) -> anyhow::Result<()> {
    let mut progress = running.progress();
    tokio::time::timeout(WAIT, progress.wait_for(|at| *at >= position))
        .await
        .map_err(|_| anyhow::anyhow!("the process manager did not reach {position}"))??;
    Ok(())
}

#[tokio::test]
async fn a_fired_order_takes_its_recipe_from_stock_once_caused_by_the_order_event()
-> anyhow::Result<()> {
    let kitchen = Kitchen::new().await?;
    let running = kitchen.start().await?;
    let at = kitchen.record(kitchen.fired()?).await?;
    reached(&running, at).await?;
    running.stop().await;
    assert_eq!(kitchen.stock().await?, (5, 8));
    let fired = kitchen
        .store
        .read_all(at - 1, 1, &Default::default())
        .await?;
    let fired_id = fired.events[0].id;
    let sales = kitchen.adjustments(kitchen.beef).await?;
    assert_eq!(sales.len(), 2, "one sale per line");
    for sale in &sales {
        assert_eq!(sale.metadata.causation_id, Some(fired_id));
        assert_eq!(sale.metadata.actor.as_deref(), Some(ACTOR));
        assert!(
            sale.data.json().contains(r#""reason":"sold""#),
            "{}",
            sale.data.json()
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_replay_from_an_older_checkpoint_takes_nothing_twice() -> anyhow::Result<()> {
    let kitchen = Kitchen::new().await?;
    let at = kitchen.record(kitchen.fired()?).await?;
    let running = kitchen.start().await?;
    reached(&running, at).await?;
    running.stop().await;
    assert_eq!(kitchen.stock().await?, (5, 8));
    kitchen.rewind(0).await?;
    let running = kitchen.start().await?;
    assert_eq!(running.position(), 0);
    let head = kitchen.store.head().await?;
    reached(&running, head).await?;
    running.stop().await;
    assert_eq!(kitchen.stock().await?, (5, 8));
    assert_eq!(kitchen.adjustments(kitchen.beef).await?.len(), 2);
    Ok(())
}

#[tokio::test]
async fn a_stop_between_the_order_event_and_its_adjustments_loses_and_repeats_nothing()
-> anyhow::Result<()> {
    let kitchen = Kitchen::new().await?;
    let at = kitchen.record(kitchen.fired()?).await?;
    // The process manager stopped after the first adjustment committed and
    // before its checkpoint moved past the order event.
    let fired = kitchen
        .store
        .read_all(at - 1, 1, &Default::default())
        .await?;
    let moves = stock_moves(&fired.events[0])?;
    assert_eq!(moves.len(), 3);
    assert_eq!(
        follow(&kitchen.app, &kitchen.db, &moves[0]).await?,
        Followed::Applied
    );
    assert_eq!(kitchen.stock().await?, (6, 10));
    let running = kitchen.start().await?;
    reached(&running, at).await?;
    running.stop().await;
    assert_eq!(kitchen.stock().await?, (5, 8));
    assert_eq!(
        follow(&kitchen.app, &kitchen.db, &moves[0]).await?,
        Followed::AlreadyApplied
    );
    Ok(())
}

#[tokio::test]
async fn voided_and_cancelled_lines_give_their_stock_back_once() -> anyhow::Result<()> {
    let kitchen = Kitchen::new().await?;
    kitchen.record(kitchen.fired()?).await?;
    kitchen
        .record(OrderEvent::OrderLineVoided {
            order_id: kitchen.order,
            store_id: kitchen.store_id,
            line_id: line(2),
            station: StationKey::parse("grill")?,
            returned: vec![uses(kitchen.beef, 1)],
        })
        .await?;
    let at = kitchen
        .record(OrderEvent::OrderCancelled {
            order_id: kitchen.order,
            store_id: kitchen.store_id,
            reason: CancelReason::parse("guest left")?,
            returned: vec![ReturnedLine {
                line_id: line(1),
                station: StationKey::parse("grill")?,
                stock: vec![uses(kitchen.beef, 4), uses(kitchen.bun, 2)],
            }],
        })
        .await?;
    let running = kitchen.start().await?;
    reached(&running, at).await?;
    running.stop().await;
    assert_eq!(kitchen.stock().await?, (10, 10));
    let returns = kitchen.adjustments(kitchen.beef).await?;
    let returned = returns
        .iter()
        .filter(|e| e.data.json().contains(r#""reason":"returned""#))
        .count();
    assert_eq!(returned, 2);
    kitchen.rewind(0).await?;
    let running = kitchen.start().await?;
    reached(&running, kitchen.store.head().await?).await?;
    running.stop().await;
    assert_eq!(kitchen.stock().await?, (10, 10));
    // Two sales and two returns of beef, not one more of either.
    assert_eq!(kitchen.adjustments(kitchen.beef).await?.len(), 4);
    Ok(())
}

#[tokio::test]
async fn a_refused_sale_is_recorded_skipped_and_never_given_back() -> anyhow::Result<()> {
    let kitchen = Kitchen::new().await?;
    let mut fired = kitchen.fired()?;
    if let OrderEvent::OrderFired { lines, .. } = &mut fired {
        // More beef than there is: refused (stock never goes negative).
        lines[1].stock = vec![uses(kitchen.beef, 50)];
    }
    kitchen.record(fired).await?;
    let at = kitchen
        .record(OrderEvent::OrderLineVoided {
            order_id: kitchen.order,
            store_id: kitchen.store_id,
            line_id: line(2),
            station: StationKey::parse("grill")?,
            returned: vec![uses(kitchen.beef, 50)],
        })
        .await?;
    let running = kitchen.start().await?;
    reached(&running, at).await?;
    running.stop().await;
    // Line 1 was sold; line 2's sale was refused and its return skipped.
    assert_eq!(kitchen.stock().await?, (6, 8));
    let mut tx = larder_projections::Tx::begin(&kitchen.db).await?;
    let row = tx
        .fetch_optional(
            "SELECT COUNT(*) FROM order_stock_refusals WHERE code IN ('insufficient_stock', 'not_sold')",
            vec![],
        )
        .await?;
    tx.commit().await?;
    assert_eq!(row.map(|r| r.int(0)).transpose()?, Some(2));
    let moves = stock_moves(
        &kitchen
            .store
            .read_all(at - 1, 1, &Default::default())
            .await?
            .events[0],
    )?;
    assert_eq!(moves[0].kind, StockMoveKind::Returned);
    Ok(())
}
