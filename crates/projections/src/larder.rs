//! Larder's read models: stores, inventory per store, recent activity.

use std::fmt::Write as _;
use std::sync::Arc;

use async_trait::async_trait;
use larder_domain::{DomainEvent, ItemEvent, Quantity, StockStatus, StoreEvent, Threshold};
use larder_store::RecordedEvent;

use crate::ProjectionError;
use crate::db::{Tx, args};
use crate::runner::Projection;

/// An item's status in the read models: its stock status, or `removed`.
pub(crate) fn status_name(status: StockStatus) -> &'static str {
    match status {
        StockStatus::InStock => "in_stock",
        StockStatus::Low => "low",
        StockStatus::Out => "out",
    }
}

pub(crate) const REMOVED: &str = "removed";

/// Decodes a Larder event (with `larder-codec`, the translation the command
/// pipeline writes with); `None` for event types this build does not know
/// (another service's events in a shared log). A known type that does not
/// decode stops the projection (it lags and retries) rather than being
/// skipped: a newer node may have written it, and skipping would corrupt the
/// read model.
pub(crate) fn decode(event: &RecordedEvent) -> Result<Option<DomainEvent>, ProjectionError> {
    match larder_codec::decode(event) {
        Ok(decoded) => Ok(Some(decoded)),
        Err(error) if error.is_unknown_type() => Ok(None),
        Err(error) => Err(ProjectionError::Corrupt {
            position: error.position,
            reason: error.source.to_string(),
        }),
    }
}

fn status_of(
    position: u64,
    quantity: i64,
    threshold: i64,
) -> Result<&'static str, ProjectionError> {
    let corrupt = |e: larder_domain::DomainError| ProjectionError::Corrupt {
        position,
        reason: e.to_string(),
    };
    Ok(status_name(StockStatus::of(
        Quantity::parse(quantity).map_err(corrupt)?,
        Threshold::parse(threshold).map_err(corrupt)?,
    )))
}

/// The events of a batch that leave a mark on the stock read models, in
/// order: within a run of stock changes to one item (consecutive events of
/// one stream, each a `StockAdjusted` or an event that only moves the row's
/// version: an alert or a transfer's fact), only the last `StockAdjusted`
/// and the last event, since each of the others sets only what a later one
/// of the run sets again. A hot item's batch then costs a few statements,
/// not a few per event.
fn lasting(events: &[Arc<RecordedEvent>]) -> Vec<&RecordedEvent> {
    const ADJUSTED: &str = "StockAdjusted";
    const VERSION_ONLY: [&str; 4] = ["LowStock", "OutOfStock", "Restocked", "TransferCompleted"];
    let in_run = |e: &RecordedEvent| {
        e.event_type == ADJUSTED || VERSION_ONLY.contains(&e.event_type.as_str())
    };
    let mut kept = Vec::with_capacity(events.len());
    let mut start = 0;
    while start < events.len() {
        let first = &events[start];
        if !in_run(first) {
            kept.push(&**first);
            start += 1;
            continue;
        }
        let end = start
            + events[start..]
                .iter()
                .take_while(|e| e.stream == first.stream && in_run(e))
                .count();
        let run = &events[start..end];
        let last = &run[run.len() - 1];
        if let Some(adjusted) = run.iter().rev().find(|e| e.event_type == ADJUSTED)
            && !Arc::ptr_eq(adjusted, last)
        {
            kept.push(&**adjusted);
        }
        kept.push(&**last);
        start = end;
    }
    kept
}

/// Applies the [`lasting`] events of a batch, one by one.
async fn apply_lasting(
    projection: &dyn Projection,
    tx: &mut Tx,
    events: &[Arc<RecordedEvent>],
) -> Result<(), ProjectionError> {
    for event in lasting(events) {
        projection.apply(tx, event).await?;
    }
    Ok(())
}

/// Stores with their item, low-stock and out-of-stock counts.
#[derive(Debug, Default, Clone, Copy)]
pub struct StoresProjection;

impl StoresProjection {
    /// The checkpoint name.
    pub const NAME: &'static str = "stores";
}

#[async_trait]
impl Projection for StoresProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn apply_batch(
        &self,
        tx: &mut Tx,
        events: &[Arc<RecordedEvent>],
    ) -> Result<(), ProjectionError> {
        apply_lasting(self, tx, events).await
    }

    async fn apply(&self, tx: &mut Tx, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let Some(decoded) = decode(event)? else {
            return Ok(());
        };
        let (version, position, at) = (event.version, event.position, event.recorded_at);
        match decoded {
            DomainEvent::Store(StoreEvent::StoreCreated {
                store_id,
                tenant,
                name,
            }) => {
                tx.execute(
                    "INSERT INTO rm_stores (store_id, tenant, name, status, version, position, updated_at) \
                     VALUES ($1, $2, $3, 'open', $4, $5, $6) \
                     ON CONFLICT (store_id) DO UPDATE SET tenant = excluded.tenant, name = excluded.name, \
                     status = 'open', version = excluded.version, position = excluded.position, \
                     updated_at = excluded.updated_at",
                    args![store_id.to_string(), tenant.as_str(), name.as_str(), version, position, at],
                )
                .await?;
                return Ok(());
            }
            DomainEvent::Store(StoreEvent::StoreRenamed { store_id, name }) => {
                tx.execute(
                    "UPDATE rm_stores SET name = $2, version = $3, position = $4, updated_at = $5 WHERE store_id = $1",
                    args![store_id.to_string(), name.as_str(), version, position, at],
                )
                .await?;
                return Ok(());
            }
            DomainEvent::Store(StoreEvent::StoreClosed { store_id }) => {
                tx.execute(
                    "UPDATE rm_stores SET status = 'closed', version = $2, position = $3, updated_at = $4 \
                     WHERE store_id = $1",
                    args![store_id.to_string(), version, position, at],
                )
                .await?;
                return Ok(());
            }
            DomainEvent::Item(ItemEvent::ItemAdded {
                item_id,
                store_id,
                quantity,
                threshold,
                ..
            }) => {
                let status = status_of(position, quantity.get(), threshold.get())?;
                tx.execute(
                    "INSERT INTO rm_store_items (item_id, store_id, quantity, threshold, status) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (item_id) DO UPDATE SET store_id = excluded.store_id, \
                     quantity = excluded.quantity, threshold = excluded.threshold, status = excluded.status",
                    args![item_id.to_string(), store_id.to_string(), quantity.get(), threshold.get(), status],
                )
                .await?;
            }
            DomainEvent::Item(ItemEvent::StockAdjusted {
                item_id, quantity, ..
            }) => {
                set_item_stock(
                    tx,
                    position,
                    &item_id.to_string(),
                    Some(quantity.get()),
                    None,
                )
                .await?;
            }
            DomainEvent::Item(ItemEvent::ThresholdChanged {
                item_id, threshold, ..
            }) => {
                set_item_stock(
                    tx,
                    position,
                    &item_id.to_string(),
                    None,
                    Some(threshold.get()),
                )
                .await?;
            }
            DomainEvent::Item(ItemEvent::ItemRemoved { item_id, .. }) => {
                tx.execute(
                    "UPDATE rm_store_items SET status = $2 WHERE item_id = $1",
                    args![item_id.to_string(), REMOVED],
                )
                .await?;
            }
            // Menus and orders have read models of their own.
            DomainEvent::Item(_)
            | DomainEvent::Menu(_)
            | DomainEvent::Order(_)
            | DomainEvent::Inbox(_) => return Ok(()),
        }
        // An item changed: recount its store from the items' statuses, so the
        // counts cannot drift whatever the order of changes.
        let Some(store) = event.metadata.store.clone() else {
            return Ok(());
        };
        tx.execute(
            "UPDATE rm_stores SET \
               item_count = (SELECT COUNT(*) FROM rm_store_items WHERE store_id = $1 AND status <> 'removed'), \
               low_stock_count = (SELECT COUNT(*) FROM rm_store_items WHERE store_id = $1 AND status = 'low'), \
               out_of_stock_count = (SELECT COUNT(*) FROM rm_store_items WHERE store_id = $1 AND status = 'out'), \
               position = $2, updated_at = $3 \
             WHERE store_id = $1",
            args![store, position, at],
        )
        .await?;
        Ok(())
    }

    async fn reset(&self, tx: &mut Tx) -> Result<(), ProjectionError> {
        tx.execute("DELETE FROM rm_store_items", vec![]).await?;
        tx.execute("DELETE FROM rm_stores", vec![]).await?;
        Ok(())
    }
}

async fn set_item_stock(
    tx: &mut Tx,
    position: u64,
    item_id: &str,
    quantity: Option<i64>,
    threshold: Option<i64>,
) -> Result<(), ProjectionError> {
    let Some(row) = tx
        .fetch_optional(
            "SELECT quantity, threshold FROM rm_store_items WHERE item_id = $1",
            args![item_id],
        )
        .await?
    else {
        return Ok(());
    };
    let quantity = quantity.map_or_else(|| row.int(0), Ok)?;
    let threshold = threshold.map_or_else(|| row.int(1), Ok)?;
    let status = status_of(position, quantity, threshold)?;
    tx.execute(
        "UPDATE rm_store_items SET quantity = $2, threshold = $3, status = $4 WHERE item_id = $1",
        args![item_id, quantity, threshold, status],
    )
    .await?;
    Ok(())
}

/// Every item of every store: SKU, name, stock, threshold, status, and the
/// item stream's version (for `If-Match`) and last position.
#[derive(Debug, Default, Clone, Copy)]
pub struct InventoryProjection;

impl InventoryProjection {
    /// The checkpoint name.
    pub const NAME: &'static str = "inventory";
}

#[async_trait]
impl Projection for InventoryProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn apply_batch(
        &self,
        tx: &mut Tx,
        events: &[Arc<RecordedEvent>],
    ) -> Result<(), ProjectionError> {
        apply_lasting(self, tx, events).await
    }

    async fn apply(&self, tx: &mut Tx, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let Some(DomainEvent::Item(item_event)) = decode(event)? else {
            return Ok(());
        };
        let (version, position, at) = (event.version, event.position, event.recorded_at);
        // The row belongs to the stream the event is in (a transfer's
        // TransferCompleted names two items; each copy updates its own).
        let item_id = event.metadata.entity_id.clone();
        match item_event {
            ItemEvent::ItemAdded {
                store_id,
                sku,
                name,
                unit,
                quantity,
                threshold,
                ..
            } => {
                let status = status_of(position, quantity.get(), threshold.get())?;
                tx.execute(
                    "INSERT INTO rm_inventory (item_id, tenant, store_id, sku, name, unit, quantity, threshold, \
                     status, version, position, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                     ON CONFLICT (item_id) DO UPDATE SET tenant = excluded.tenant, store_id = excluded.store_id, \
                     sku = excluded.sku, name = excluded.name, unit = excluded.unit, quantity = excluded.quantity, \
                     threshold = excluded.threshold, status = excluded.status, version = excluded.version, \
                     position = excluded.position, updated_at = excluded.updated_at",
                    args![
                        item_id,
                        event.metadata.tenant.as_str(),
                        store_id.to_string(),
                        sku.as_str(),
                        name.as_str(),
                        unit.as_str(),
                        quantity.get(),
                        threshold.get(),
                        status,
                        version,
                        position,
                        at
                    ],
                )
                .await?;
            }
            ItemEvent::StockAdjusted { quantity, .. } => {
                let threshold = current(tx, &item_id, "threshold").await?;
                let status = status_of(position, quantity.get(), threshold)?;
                tx.execute(
                    "UPDATE rm_inventory SET quantity = $2, status = $3, version = $4, position = $5, \
                     updated_at = $6 WHERE item_id = $1",
                    args![item_id, quantity.get(), status, version, position, at],
                )
                .await?;
            }
            ItemEvent::ThresholdChanged { threshold, .. } => {
                let quantity = current(tx, &item_id, "quantity").await?;
                let status = status_of(position, quantity, threshold.get())?;
                tx.execute(
                    "UPDATE rm_inventory SET threshold = $2, status = $3, version = $4, position = $5, \
                     updated_at = $6 WHERE item_id = $1",
                    args![item_id, threshold.get(), status, version, position, at],
                )
                .await?;
            }
            ItemEvent::ItemRenamed { name, .. } => {
                tx.execute(
                    "UPDATE rm_inventory SET name = $2, version = $3, position = $4, updated_at = $5 \
                     WHERE item_id = $1",
                    args![item_id, name.as_str(), version, position, at],
                )
                .await?;
            }
            ItemEvent::ItemRemoved { .. } => {
                tx.execute(
                    "UPDATE rm_inventory SET status = $2, version = $3, position = $4, updated_at = $5 \
                     WHERE item_id = $1",
                    args![item_id, REMOVED, version, position, at],
                )
                .await?;
            }
            // Alerts and transfer facts change no field, but they are in the
            // item's stream: the row's version must follow the stream's.
            ItemEvent::LowStock { .. }
            | ItemEvent::OutOfStock { .. }
            | ItemEvent::Restocked { .. }
            | ItemEvent::TransferCompleted { .. } => {
                tx.execute(
                    "UPDATE rm_inventory SET version = $2, position = $3, updated_at = $4 WHERE item_id = $1",
                    args![item_id, version, position, at],
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn reset(&self, tx: &mut Tx) -> Result<(), ProjectionError> {
        tx.execute("DELETE FROM rm_inventory", vec![]).await?;
        Ok(())
    }
}

async fn current(tx: &mut Tx, item_id: &str, column: &'static str) -> Result<i64, ProjectionError> {
    let sql = format!("SELECT {column} FROM rm_inventory WHERE item_id = $1");
    match tx.fetch_optional(&sql, args![item_id]).await? {
        Some(row) => row.int(0),
        None => Ok(0),
    }
}

/// Every event about a store, newest first when queried: the store's
/// activity feed.
#[derive(Debug, Default, Clone, Copy)]
pub struct ActivityProjection;

impl ActivityProjection {
    /// The checkpoint name.
    pub const NAME: &'static str = "activity";
}

#[async_trait]
impl Projection for ActivityProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn apply(&self, tx: &mut Tx, event: &RecordedEvent) -> Result<(), ProjectionError> {
        insert_activity(tx, &[event]).await
    }

    async fn apply_batch(
        &self,
        tx: &mut Tx,
        events: &[Arc<RecordedEvent>],
    ) -> Result<(), ProjectionError> {
        let rows: Vec<&RecordedEvent> = events.iter().map(|event| &**event).collect();
        for chunk in rows.chunks(ACTIVITY_ROWS_PER_INSERT) {
            insert_activity(tx, chunk).await?;
        }
        Ok(())
    }

    async fn reset(&self, tx: &mut Tx) -> Result<(), ProjectionError> {
        tx.execute("DELETE FROM rm_activity", vec![]).await?;
        Ok(())
    }
}

/// The most activity rows one `INSERT` writes (11 values each: well under
/// SQLite's and PostgreSQL's limits on bound values).
const ACTIVITY_ROWS_PER_INSERT: usize = 100;

/// Inserts the activity rows of `events` (those about a store, of a type
/// this build knows) in one statement.
async fn insert_activity(tx: &mut Tx, events: &[&RecordedEvent]) -> Result<(), ProjectionError> {
    const COLUMNS: usize = 11;
    let mut sql = String::from(
        "INSERT INTO rm_activity (position, tenant, store_id, stream, version, event_type, entity_type, \
         entity_id, actor, data, recorded_at) VALUES ",
    );
    let mut values = Vec::with_capacity(events.len() * COLUMNS);
    for event in events {
        let Some(store) = &event.metadata.store else {
            continue;
        };
        if decode(event)?.is_none() {
            continue;
        }
        let meta = &event.metadata;
        let first = values.len();
        values.extend(args![
            event.position,
            meta.tenant.as_str(),
            store.as_str(),
            event.stream.as_str(),
            event.version,
            event.event_type.as_str(),
            meta.entity_type.as_str(),
            meta.entity_id.as_str(),
            meta.actor.clone(),
            event.data.json(),
            event.recorded_at
        ]);
        sql.push_str(if first == 0 { "(" } else { ", (" });
        for column in 1..=COLUMNS {
            let separator = if column == COLUMNS { ")" } else { ", " };
            let _ = write!(sql, "${}{separator}", first + column);
        }
    }
    if values.is_empty() {
        return Ok(());
    }
    sql.push_str(" ON CONFLICT (position) DO NOTHING");
    tx.execute(&sql, values).await?;
    Ok(())
}
