//! The read models of orders and the kitchen: the order board, each
//! station's lines (tickets and preparation times), and the menu with its
//! recipes (for availability).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use larder_domain::{DomainEvent, MenuEvent, OrderEvent, RecalledTo, Service};
use larder_store::RecordedEvent;

use crate::ProjectionError;
use crate::db::{Tx, args};
use crate::larder::decode;
use crate::runner::Projection;

/// An order's status on the board: `open` (taking lines), `fired` (the
/// kitchen has lines to cook), `ready`, `served`; then `completed` or
/// `cancelled`, which leave the board.
pub(crate) const OPEN: &str = "open";
const FIRED: &str = "fired";
const READY: &str = "ready";

/// A line's status in the kitchen: `fired`, `started`, `ready`, or
/// `cancelled` (its order was cancelled). A voided line is deleted.
const LINE_FIRED: &str = "fired";
const LINE_STARTED: &str = "started";
const LINE_READY: &str = "ready";

/// Orders on the board and the kitchen's lines, with each line's fire,
/// start and ready times and its preparation time (fire to ready).
///
/// A recalled line comes back to its station's tickets (`fired` or
/// `started`, as the event says) and loses its ready time, so its
/// preparation time is measured again at its next bump.
#[derive(Debug, Default, Clone, Copy)]
pub struct KitchenProjection;

impl KitchenProjection {
    /// The checkpoint name.
    pub const NAME: &'static str = "kitchen";
}

fn millis_between(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_milliseconds().max(0)
}

async fn set_order_status(
    tx: &mut Tx,
    event: &RecordedEvent,
    order_id: &str,
    status: &str,
) -> Result<(), ProjectionError> {
    tx.execute(
        "UPDATE rm_orders SET status = $1, version = $2, position = $3, updated_at = $4 \
         WHERE order_id = $5",
        args![
            status,
            event.version,
            event.position,
            event.recorded_at,
            order_id
        ],
    )
    .await?;
    Ok(())
}

/// Moves the order's version and position without changing its status.
async fn touch_order(
    tx: &mut Tx,
    event: &RecordedEvent,
    order_id: &str,
) -> Result<(), ProjectionError> {
    tx.execute(
        "UPDATE rm_orders SET version = $1, position = $2, updated_at = $3 WHERE order_id = $4",
        args![event.version, event.position, event.recorded_at, order_id],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl Projection for KitchenProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn apply(&self, tx: &mut Tx, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let Some(DomainEvent::Order(order)) = decode(event)? else {
            return Ok(());
        };
        let order_id = order.order_id().as_uuid().to_string();
        let at = event.recorded_at;
        match order {
            OrderEvent::OrderOpened {
                store_id,
                service,
                covers,
                rush,
                ..
            } => {
                let (kind, table) = match service {
                    Service::DineIn { table } => ("dine_in", Some(table.as_str().to_owned())),
                    Service::Takeaway => ("takeaway", None),
                };
                tx.execute(
                    "INSERT INTO rm_orders (order_id, tenant, store_id, service, table_label, covers, \
                     rush, status, opened_at, version, position, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                     ON CONFLICT (order_id) DO NOTHING",
                    args![
                        order_id.as_str(),
                        event.metadata.tenant.as_str(),
                        store_id.to_string(),
                        kind,
                        table,
                        i64::from(covers.get()),
                        i64::from(rush),
                        OPEN,
                        at,
                        event.version,
                        event.position,
                        at
                    ],
                )
                .await?;
            }
            OrderEvent::OrderLineAdded { .. } => {
                // A line added to a ready order opens it again.
                tx.execute(
                    "UPDATE rm_orders SET status = $1 WHERE order_id = $2 AND status = $3",
                    args![OPEN, order_id.as_str(), READY],
                )
                .await?;
                touch_order(tx, event, &order_id).await?;
            }
            OrderEvent::OrderFired {
                store_id, lines, ..
            } => {
                for (index, line) in lines.into_iter().enumerate() {
                    let modifiers = serde_json::to_string(&line.modifiers).map_err(|e| {
                        ProjectionError::Corrupt {
                            position: event.position,
                            reason: e.to_string(),
                        }
                    })?;
                    tx.execute(
                        "INSERT INTO rm_kitchen_lines (order_id, line_id, tenant, store_id, station, \
                         menu_item_id, name, quantity, modifiers, note, course, status, fired_seq, fired_index, \
                         fired_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
                         ON CONFLICT (order_id, line_id) DO NOTHING",
                        args![
                            order_id.as_str(),
                            line.line_id.as_uuid().to_string(),
                            event.metadata.tenant.as_str(),
                            store_id.to_string(),
                            line.station.as_str(),
                            line.menu_item_id.as_uuid().to_string(),
                            line.name.as_str(),
                            line.quantity.get(),
                            modifiers,
                            line.note,
                            i64::from(line.course.get()),
                            LINE_FIRED,
                            event.position,
                            index as u64,
                            at
                        ],
                    )
                    .await?;
                }
                set_order_status(tx, event, &order_id, FIRED).await?;
            }
            OrderEvent::OrderLineStarted { line_id, .. } => {
                tx.execute(
                    "UPDATE rm_kitchen_lines SET status = $1, started_at = $2 \
                     WHERE order_id = $3 AND line_id = $4",
                    args![
                        LINE_STARTED,
                        at,
                        order_id.as_str(),
                        line_id.as_uuid().to_string()
                    ],
                )
                .await?;
                touch_order(tx, event, &order_id).await?;
            }
            OrderEvent::OrderLineReady { line_id, .. } => {
                let line = line_id.as_uuid().to_string();
                let fired = tx
                    .fetch_optional(
                        "SELECT fired_at FROM rm_kitchen_lines WHERE order_id = $1 AND line_id = $2",
                        args![order_id.as_str(), line.as_str()],
                    )
                    .await?;
                if let Some(row) = fired {
                    let prep = millis_between(row.time(0)?, at);
                    tx.execute(
                        "UPDATE rm_kitchen_lines SET status = $1, ready_at = $2, prep_ms = $3 \
                         WHERE order_id = $4 AND line_id = $5",
                        args![LINE_READY, at, prep, order_id.as_str(), line.as_str()],
                    )
                    .await?;
                }
                touch_order(tx, event, &order_id).await?;
            }
            OrderEvent::OrderLineRecalled {
                line_id, back_to, ..
            } => {
                let status = match back_to {
                    RecalledTo::Fired => LINE_FIRED,
                    RecalledTo::Started => LINE_STARTED,
                };
                tx.execute(
                    "UPDATE rm_kitchen_lines SET status = $1, ready_at = NULL, prep_ms = NULL \
                     WHERE order_id = $2 AND line_id = $3",
                    args![status, order_id.as_str(), line_id.as_uuid().to_string()],
                )
                .await?;
                // A recalled line puts the kitchen back to work on the order.
                tx.execute(
                    "UPDATE rm_orders SET status = $1 WHERE order_id = $2 AND status = $3",
                    args![FIRED, order_id.as_str(), READY],
                )
                .await?;
                touch_order(tx, event, &order_id).await?;
            }
            OrderEvent::OrderLineVoided { line_id, .. } => {
                tx.execute(
                    "DELETE FROM rm_kitchen_lines WHERE order_id = $1 AND line_id = $2",
                    args![order_id.as_str(), line_id.as_uuid().to_string()],
                )
                .await?;
                touch_order(tx, event, &order_id).await?;
            }
            OrderEvent::OrderReady { .. } => {
                set_order_status(tx, event, &order_id, READY).await?;
            }
            OrderEvent::OrderServed { .. } => {
                set_order_status(tx, event, &order_id, "served").await?;
            }
            OrderEvent::OrderCompleted { .. } => {
                set_order_status(tx, event, &order_id, "completed").await?;
            }
            OrderEvent::OrderCancelled { .. } => {
                // Lines not ready leave the screens; ready ones keep their
                // preparation time.
                tx.execute(
                    "UPDATE rm_kitchen_lines SET status = 'cancelled' \
                     WHERE order_id = $1 AND status <> $2",
                    args![order_id.as_str(), LINE_READY],
                )
                .await?;
                set_order_status(tx, event, &order_id, "cancelled").await?;
            }
            OrderEvent::OrderRushed { .. } | OrderEvent::OrderRushCleared { .. } => {
                let rush = matches!(order, OrderEvent::OrderRushed { .. });
                tx.execute(
                    "UPDATE rm_orders SET rush = $1 WHERE order_id = $2",
                    args![i64::from(rush), order_id.as_str()],
                )
                .await?;
                touch_order(tx, event, &order_id).await?;
            }
        }
        Ok(())
    }

    async fn reset(&self, tx: &mut Tx) -> Result<(), ProjectionError> {
        tx.execute("DELETE FROM rm_kitchen_lines", vec![]).await?;
        tx.execute("DELETE FROM rm_orders", vec![]).await?;
        Ok(())
    }
}

/// Each store's menu items and their recipes. Availability is not stored:
/// it is read against the inventory read model
/// ([`crate::ReadModels::menu_availability`]), so it follows every stock
/// change and every menu change without a copy of the stock to keep in step.
#[derive(Debug, Default, Clone, Copy)]
pub struct MenuProjection;

impl MenuProjection {
    /// The checkpoint name.
    pub const NAME: &'static str = "menu";
}

#[async_trait]
impl Projection for MenuProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn apply(&self, tx: &mut Tx, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let Some(DomainEvent::Menu(menu)) = decode(event)? else {
            return Ok(());
        };
        match menu {
            MenuEvent::StationSet { .. } => {}
            MenuEvent::MenuItemAdded {
                store_id,
                menu_item_id,
                name,
                price,
                station,
                recipe,
            }
            | MenuEvent::MenuItemChanged {
                store_id,
                menu_item_id,
                name,
                price,
                station,
                recipe,
            } => {
                let id = menu_item_id.as_uuid().to_string();
                tx.execute(
                    "INSERT INTO rm_menu_items (menu_item_id, tenant, store_id, name, station, price, \
                     currency, active, position) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8) \
                     ON CONFLICT (menu_item_id) DO UPDATE SET name = excluded.name, \
                     station = excluded.station, price = excluded.price, \
                     currency = excluded.currency, position = excluded.position",
                    args![
                        id.as_str(),
                        event.metadata.tenant.as_str(),
                        store_id.to_string(),
                        name.as_str(),
                        station.as_str(),
                        price.amount_minor(),
                        price.currency().as_str(),
                        event.position
                    ],
                )
                .await?;
                tx.execute(
                    "DELETE FROM rm_menu_recipes WHERE menu_item_id = $1",
                    args![id.as_str()],
                )
                .await?;
                for ingredient in recipe.ingredients() {
                    tx.execute(
                        "INSERT INTO rm_menu_recipes (menu_item_id, item_id, per_portion) \
                         VALUES ($1, $2, $3)",
                        args![
                            id.as_str(),
                            ingredient.item_id.as_uuid().to_string(),
                            ingredient.quantity.get()
                        ],
                    )
                    .await?;
                }
            }
            MenuEvent::MenuItemActivated { menu_item_id, .. }
            | MenuEvent::MenuItemDeactivated { menu_item_id, .. } => {
                let active = matches!(menu, MenuEvent::MenuItemActivated { .. });
                tx.execute(
                    "UPDATE rm_menu_items SET active = $1, position = $2 WHERE menu_item_id = $3",
                    args![
                        i64::from(active),
                        event.position,
                        menu_item_id.as_uuid().to_string()
                    ],
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn reset(&self, tx: &mut Tx) -> Result<(), ProjectionError> {
        tx.execute("DELETE FROM rm_menu_recipes", vec![]).await?;
        tx.execute("DELETE FROM rm_menu_items", vec![]).await?;
        Ok(())
    }
}
