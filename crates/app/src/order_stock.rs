//! Stock follows orders: the process manager that turns order events into
//! stock adjustments, exactly once.
//!
//! - Each line of an `OrderFired` takes its recipe's stock: one `sold`
//!   adjustment ([`ItemCommand::AdjustStock`] with reason `sold`, negative
//!   delta) per (order, line, item).
//! - An `OrderLineVoided` whose `returned` is not empty, and each line of an
//!   `OrderCancelled`'s `returned`, give it back: one `returned` adjustment
//!   ([`ItemCommand::ReturnStock`], positive delta) per (order, line, item).
//!
//! # Why it lives here
//!
//! It issues item commands, so it sits on the command pipeline
//! ([`App::execute`]): the same rules, retries, alerts and idempotency as a
//! user's adjustment. `larder-projections` sits below this crate and cannot
//! call it; this crate can use the projections' database plumbing (the
//! checkpoint table, [`Tx`]) without a circle. It is not a projection: a
//! projection's `apply` runs inside the read-model transaction, and on
//! SQLite (one writer) an append from within it would wait on itself.
//!
//! # Exactly once
//!
//! Every adjustment carries an idempotency key derived from what it is for,
//! `order-stock:{order_id}:{line_id}:{item_id}:{sold|returned}`, stored with
//! its events in the same transaction: running it again (a replay from an
//! older checkpoint, a restart between the order event and the adjustment,
//! a second node) appends nothing. Its `causation_id` is the order event's
//! id, its `correlation_id` the order event's.
//!
//! The checkpoint (in `projection_checkpoints`, under [`OrderStock::NAME`];
//! the loop is [`crate::consumer`]'s) moves only after every adjustment of
//! a batch committed or was refused, so a stop or a crash re-runs at most
//! that batch, which the keys make a no-op. Keys live as long as the event store keeps idempotency records
//! (24 hours by default): the checkpoint, not the key, guards a replay of
//! anything older, so resetting it by hand to a position more than a
//! retention period back would count those orders again.
//!
//! # Refused adjustments
//!
//! The domain may refuse an adjustment: the item was removed, the store
//! closed, or the sale would take stock below zero (stock never goes
//! negative). Retrying would never succeed, and holding the consumer back
//! would stop every later order's stock, so a refusal is logged (warn),
//! recorded in `order_stock_refusals` with the domain's code, and skipped.
//! A `returned` adjustment whose `sold` one was refused is skipped too
//! (recorded as `not_sold`): it would give back stock that was never taken.
//! Failures that may pass (the event store unavailable, a conflict through
//! every retry) are retried with backoff from the checkpoint, like a
//! projection's.

use std::sync::Arc;
use std::time::Duration;

use larder_bus::EventBus;
use larder_codec::decode;
use larder_domain::{
    AdjustReason, Delta, DomainEvent, ItemCommand, ItemId, ItemState, LineId, OrderEvent, OrderId,
    StockUse, StoreId, TenantId,
};
use larder_projections::Tx;
use larder_store::{Database, EventStore, RecordedEvent};
use tokio::sync::watch;
use uuid::Uuid;

use crate::consumer::{Consumer, Handler, Log, storage};
use crate::{App, AppError, Context, IdempotencyKey, Request};

/// Which way stock moves for an order line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StockMoveKind {
    /// The line was fired: its stock is taken (reason `sold`).
    Sold,
    /// The line was voided or cancelled before it was started: its stock
    /// goes back (reason `returned`).
    Returned,
}

impl StockMoveKind {
    /// `sold` or `returned`, as in the key.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sold => "sold",
            Self::Returned => "returned",
        }
    }
}

/// One adjustment an order event owes: one item of one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockMove {
    /// The tenant of the order (and of the item).
    pub tenant: TenantId,
    /// The store.
    pub store_id: StoreId,
    /// The order.
    pub order_id: OrderId,
    /// The line.
    pub line_id: LineId,
    /// The inventory item.
    pub item_id: ItemId,
    /// Taken or given back.
    pub kind: StockMoveKind,
    /// How much, above zero.
    pub quantity: i64,
    /// The order event's id (the adjustment's `causation_id`).
    pub cause: Uuid,
    /// The order event's correlation id (its own id if it has none).
    pub correlation_id: Uuid,
    /// The order event's global position.
    pub position: u64,
}

impl StockMove {
    /// The idempotency key: the same for every run over the same
    /// (order, line, item, kind), whoever runs it.
    pub fn key(&self) -> String {
        Self::key_of(self.order_id, self.line_id, self.item_id, self.kind)
    }

    fn key_of(order: OrderId, line: LineId, item: ItemId, kind: StockMoveKind) -> String {
        format!(
            "order-stock:{}:{}:{}:{}",
            order.as_uuid(),
            line.as_uuid(),
            item.as_uuid(),
            kind.as_str()
        )
    }

    /// The context the adjustment is issued in.
    fn context(&self) -> Context {
        Context {
            tenant: self.tenant.clone(),
            actor: ACTOR.to_owned(),
            session: None,
            correlation_id: self.correlation_id,
            idempotency: Some(IdempotencyKey {
                key: self.key(),
                // Deterministic: a re-run is recognised as the same request.
                fingerprint: format!("{}:{}", self.kind.as_str(), self.quantity),
                status: 200,
            }),
            lifecycle: None,
            causation_id: Some(self.cause),
        }
    }

    /// The item command.
    fn request(&self) -> Result<Request<ItemState>, AppError> {
        let signed = match self.kind {
            StockMoveKind::Sold => -self.quantity,
            StockMoveKind::Returned => self.quantity,
        };
        let delta = Delta::parse(signed)?;
        let note = Some(format!("order {}", self.order_id.as_uuid()));
        let command = match self.kind {
            StockMoveKind::Sold => ItemCommand::AdjustStock {
                delta,
                reason: AdjustReason::Sold,
                note,
            },
            StockMoveKind::Returned => ItemCommand::ReturnStock { delta, note },
        };
        Ok(Request {
            id: self.item_id,
            within: Some(self.store_id),
            expected: None,
            command,
        })
    }
}

/// The actor recorded on the adjustments.
pub const ACTOR: &str = "larder:order-stock";

/// The adjustments a stored event owes, in order (none for events other
/// than `OrderFired`, `OrderLineVoided` and `OrderCancelled`, and for
/// events of types this build does not know).
pub fn stock_moves(event: &RecordedEvent) -> Result<Vec<StockMove>, AppError> {
    let order = match decode(event) {
        Ok(DomainEvent::Order(order)) => order,
        Ok(_) => return Ok(Vec::new()),
        Err(error) if error.is_unknown_type() => return Ok(Vec::new()),
        Err(error) => return Err(error.into()),
    };
    let lines: Vec<(LineId, &[StockUse], StockMoveKind)> = match &order {
        OrderEvent::OrderFired { lines, .. } => lines
            .iter()
            .map(|l| (l.line_id, l.stock.as_slice(), StockMoveKind::Sold))
            .collect(),
        OrderEvent::OrderLineVoided {
            line_id, returned, ..
        } => vec![(*line_id, returned.as_slice(), StockMoveKind::Returned)],
        OrderEvent::OrderCancelled { returned, .. } => returned
            .iter()
            .map(|l| (l.line_id, l.stock.as_slice(), StockMoveKind::Returned))
            .collect(),
        _ => return Ok(Vec::new()),
    };
    let tenant = TenantId::parse(&event.metadata.tenant)?;
    Ok(lines
        .into_iter()
        .flat_map(|(line_id, stock, kind)| stock.iter().map(move |use_| (line_id, use_, kind)))
        .filter(|(_, use_, _)| use_.quantity.get() > 0)
        .map(|(line_id, use_, kind)| StockMove {
            tenant: tenant.clone(),
            store_id: order.store_id(),
            order_id: order.order_id(),
            line_id,
            item_id: use_.item_id,
            kind,
            quantity: use_.quantity.get(),
            cause: event.id,
            correlation_id: event.metadata.correlation_id.unwrap_or(event.id),
            position: event.position,
        })
        .collect())
}

/// How one adjustment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followed {
    /// It was appended now.
    Applied,
    /// Its key was stored already: it had been applied before.
    AlreadyApplied,
    /// The domain refused it (its code), or a return's sale never happened
    /// (`not_sold`): recorded and skipped.
    Refused(String),
}

/// Issues one adjustment through the pipeline. `Err` only for failures
/// that may pass (retry later); refusals are [`Followed::Refused`].
pub async fn follow(app: &App, db: &Database, stock: &StockMove) -> Result<Followed, AppError> {
    if stock.kind == StockMoveKind::Returned {
        let sold = StockMove::key_of(
            stock.order_id,
            stock.line_id,
            stock.item_id,
            StockMoveKind::Sold,
        );
        if refused(db, stock.tenant.as_str(), &sold).await? {
            record_refusal(db, stock, "not_sold", "its sale was refused").await?;
            return Ok(Followed::Refused("not_sold".to_owned()));
        }
    }
    match app.execute(&stock.context(), stock.request()?).await {
        Ok(outcome) if outcome.replayed => Ok(Followed::AlreadyApplied),
        Ok(_) => Ok(Followed::Applied),
        Err(AppError::Rejected(error)) => {
            record_refusal(db, stock, error.code(), &error.to_string()).await?;
            Ok(Followed::Refused(error.code().to_owned()))
        }
        Err(error @ (AppError::NotFound(_) | AppError::IdempotencyKeyReused(_))) => {
            let code = match error {
                AppError::NotFound(_) => "not_found",
                _ => "key_reused",
            };
            record_refusal(db, stock, code, &error.to_string()).await?;
            Ok(Followed::Refused(code.to_owned()))
        }
        Err(error) => Err(error),
    }
}

async fn refused(db: &Database, tenant: &str, key: &str) -> Result<bool, AppError> {
    let mut tx = Tx::begin(db).await.map_err(storage)?;
    let row = tx
        .fetch_optional(
            "SELECT 1 FROM order_stock_refusals WHERE tenant = $1 AND key = $2",
            vec![tenant.into(), key.into()],
        )
        .await
        .map_err(storage)?;
    tx.commit().await.map_err(storage)?;
    Ok(row.is_some())
}

async fn record_refusal(
    db: &Database,
    stock: &StockMove,
    code: &str,
    reason: &str,
) -> Result<(), AppError> {
    tracing::warn!(
        order = %stock.order_id.as_uuid(),
        line = %stock.line_id.as_uuid(),
        item = %stock.item_id.as_uuid(),
        kind = stock.kind.as_str(),
        quantity = stock.quantity,
        code,
        reason,
        "an order's stock adjustment was refused; recorded and skipped"
    );
    let mut tx = Tx::begin(db).await.map_err(storage)?;
    tx.execute(
        "INSERT INTO order_stock_refusals \
         (tenant, key, store_id, order_id, line_id, item_id, kind, quantity, code, reason, position) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (tenant, key) DO NOTHING",
        vec![
            stock.tenant.as_str().into(),
            stock.key().into(),
            stock.store_id.to_string().into(),
            stock.order_id.as_uuid().to_string().into(),
            stock.line_id.as_uuid().to_string().into(),
            stock.item_id.as_uuid().to_string().into(),
            stock.kind.as_str().into(),
            stock.quantity.into(),
            code.into(),
            reason.into(),
            stock.position.into(),
        ],
    )
    .await
    .map_err(storage)?;
    tx.commit().await.map_err(storage)
}

/// The order-to-stock process manager, running. Dropping the handle does
/// not stop it; call [`OrderStock::stop`].
#[derive(Debug)]
pub struct OrderStock(Consumer);

/// What it does with each event: the stock moves it owes.
struct Moves {
    app: App,
    db: Database,
}

impl Handler for Moves {
    fn name(&self) -> &'static str {
        OrderStock::NAME
    }

    fn lagging(&self) -> &'static str {
        "orders' stock"
    }

    async fn handle(&self, event: &RecordedEvent) -> Result<(), AppError> {
        for stock in stock_moves(event)? {
            follow(&self.app, &self.db, &stock).await?;
        }
        Ok(())
    }
}

impl OrderStock {
    /// Its checkpoint's name.
    pub const NAME: &'static str = "order_stock";

    /// Starts it from its checkpoint: it catches up on the log, then
    /// follows the bus, refilling from the store whenever the bus lags.
    /// The read-model tables must exist (`larder_projections::migrate`).
    pub async fn start(
        app: App,
        db: Database,
        store: Arc<dyn EventStore>,
        bus: Option<Arc<dyn EventBus<RecordedEvent>>>,
    ) -> Result<Self, AppError> {
        Self::start_polling(app, db, store, bus, larder_store::DEFAULT_POLL_INTERVAL).await
    }

    /// [`OrderStock::start`], with the longest it waits on a silent bus
    /// before it reads the store anyway.
    ///
    /// Several nodes may run it on one database: each skips what the shared
    /// checkpoint already covers, the idempotency keys make an adjustment
    /// that two nodes issue at once count once, and the checkpoint only
    /// moves forward (see [`crate::consumer`]).
    pub async fn start_polling(
        app: App,
        db: Database,
        store: Arc<dyn EventStore>,
        bus: Option<Arc<dyn EventBus<RecordedEvent>>>,
        poll_interval: Duration,
    ) -> Result<Self, AppError> {
        let log = Log {
            store,
            bus,
            poll_interval,
        };
        let moves = Moves {
            app,
            db: db.clone(),
        };
        Ok(Self(Consumer::start(moves, db, log).await?))
    }

    /// The position it has committed (every adjustment up to it is done).
    pub fn position(&self) -> u64 {
        self.0.position()
    }

    /// Progress updates, for waiting until a position is reached.
    pub fn progress(&self) -> watch::Receiver<u64> {
        self.0.progress()
    }

    /// Stops it between batches; the checkpoint says where to resume.
    pub async fn stop(self) {
        self.0.stop().await;
    }
}
