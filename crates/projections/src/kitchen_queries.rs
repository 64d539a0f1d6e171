//! Reading the order and kitchen read models: a station's tickets,
//! preparation times, menu availability, the order board.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ProjectionError;
use crate::checkpoints::checkpoint;
use crate::db::{DbRow, ReadTx, args, fetch_all};
use crate::kitchen::{KitchenProjection, MenuProjection};
use crate::larder::InventoryProjection;
use crate::queries::{AtPosition, ReadModels, micros};

/// The most tickets a station's screen lists, and the most orders a board
/// lists: a screen shows far fewer, and a query needs a bound.
pub const MAX_TICKETS: u32 = 500;
/// How many of the most recent lines' preparation times
/// [`ReadModels::kitchen_times`] lists.
pub const RECENT_TIMES: u32 = 100;
/// The most menu items [`ReadModels::menu_availability`] reads.
pub const MAX_MENU_ITEMS: u32 = 2_000;

/// One line on a station's screen: fired, not ready yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KitchenTicket {
    /// The order.
    pub order_id: String,
    /// The line.
    pub line_id: String,
    /// `dine_in` or `takeaway`.
    pub service: String,
    /// The table, for dine-in.
    pub table: Option<String>,
    /// The menu item.
    pub menu_item_id: String,
    /// Its name.
    pub name: String,
    /// How many portions.
    pub quantity: i64,
    /// The guest's changes.
    pub modifiers: Vec<String>,
    /// The note for the kitchen.
    pub note: Option<String>,
    /// Its course.
    pub course: i64,
    /// Whether its order is a rush order.
    pub rush: bool,
    /// `fired` or `started`.
    pub status: String,
    /// When it was fired (RFC 3339, microseconds).
    #[serde(serialize_with = "micros")]
    pub fired_at: DateTime<Utc>,
    /// When the kitchen started it, if it did.
    #[serde(serialize_with = "opt_micros")]
    pub started_at: Option<DateTime<Utc>>,
}

/// A station's preparation times, over every line it made ready.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StationTime {
    /// The station.
    pub station: String,
    /// How many lines it made ready (recalled lines count once, at their
    /// last bump).
    pub lines: i64,
    /// Their average time from fire to ready, in seconds.
    pub average_secs: f64,
}

/// One line's preparation time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LineTime {
    /// The order.
    pub order_id: String,
    /// The line.
    pub line_id: String,
    /// Its station.
    pub station: String,
    /// The menu item's name.
    pub name: String,
    /// When it was fired.
    #[serde(serialize_with = "micros")]
    pub fired_at: DateTime<Utc>,
    /// When it was bumped.
    #[serde(serialize_with = "micros")]
    pub ready_at: DateTime<Utc>,
    /// From fire to ready, in seconds.
    pub prep_secs: f64,
}

/// A store's preparation times: per station over all time, and the most
/// recent lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KitchenTimes {
    /// Per station, by station key.
    pub stations: Vec<StationTime>,
    /// The [`RECENT_TIMES`] lines made ready last, newest first.
    pub recent: Vec<LineTime>,
}

/// An ingredient a menu item lacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MissingIngredient {
    /// The inventory item.
    pub item_id: String,
    /// How much one portion takes.
    pub per_portion: i64,
    /// Stock on hand (0 for an item removed or unknown).
    pub on_hand: i64,
}

/// A menu item and whether a portion can be made now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MenuAvailability {
    /// The menu item.
    pub menu_item_id: String,
    /// Its name.
    pub name: String,
    /// The station preparing it.
    pub station: String,
    /// Its price per portion, in minor units.
    pub price_minor: i64,
    /// The price's currency (ISO 4217).
    pub currency: String,
    /// Whether it is on sale (not deactivated).
    pub active: bool,
    /// Whether every ingredient has at least one portion's worth in stock;
    /// `false` is "86'd".
    pub available: bool,
    /// The ingredients short of one portion (empty when available).
    pub missing: Vec<MissingIngredient>,
}

/// An order on a store's board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BoardOrder {
    /// The order.
    pub order_id: String,
    /// `dine_in` or `takeaway`.
    pub service: String,
    /// The table, for dine-in.
    pub table: Option<String>,
    /// How many guests.
    pub covers: i64,
    /// Whether it is a rush order.
    pub rush: bool,
    /// `open`, `fired`, `ready` or `served`.
    pub status: String,
    /// Lines fired to the kitchen (not voided).
    pub lines_fired: i64,
    /// Of those, the ones ready.
    pub lines_ready: i64,
    /// When it was opened.
    #[serde(serialize_with = "micros")]
    pub opened_at: DateTime<Utc>,
    /// When it last changed.
    #[serde(serialize_with = "micros")]
    pub updated_at: DateTime<Utc>,
    /// The order stream's version.
    pub version: u64,
}

fn opt_micros<S: serde::Serializer>(
    at: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => micros(at, serializer),
        None => serializer.serialize_none(),
    }
}

fn corrupt(position: u64, error: impl std::fmt::Display) -> ProjectionError {
    ProjectionError::Corrupt {
        position,
        reason: error.to_string(),
    }
}

impl ReadModels {
    /// A station's tickets: its lines fired and not ready, rush orders
    /// first, then in fire order (and, within one firing, in the order the
    /// lines were added). A recalled line is listed again.
    pub async fn kitchen_tickets(
        &self,
        tenant: &str,
        store_id: &str,
        station: &str,
    ) -> Result<AtPosition<Vec<KitchenTicket>>, ProjectionError> {
        let db = self.database();
        let position = checkpoint(db, KitchenProjection::NAME).await?;
        let sql = "SELECT l.order_id, l.line_id, o.service, o.table_label, l.menu_item_id, l.name, \
                   l.quantity, l.modifiers, l.note, l.course, o.rush, l.status, l.fired_at, l.started_at \
                   FROM rm_kitchen_lines l JOIN rm_orders o ON o.order_id = l.order_id \
                   WHERE l.tenant = $1 AND l.store_id = $2 AND l.station = $3 \
                   AND l.status IN ('fired', 'started') \
                   ORDER BY o.rush DESC, l.fired_seq, l.fired_index LIMIT $4";
        let rows = fetch_all(
            db,
            sql,
            args![tenant, store_id, station, i64::from(MAX_TICKETS)],
        )
        .await?;
        let value = rows
            .iter()
            .map(|row| ticket_from_row(row, position))
            .collect::<Result<_, _>>()?;
        Ok(AtPosition { position, value })
    }

    /// A store's preparation times (fire to ready): per station, the count
    /// and average over every line made ready (all time: simple, and what a
    /// manager compares stations by), and the most recent lines.
    pub async fn kitchen_times(
        &self,
        tenant: &str,
        store_id: &str,
    ) -> Result<AtPosition<KitchenTimes>, ProjectionError> {
        let mut tx = ReadTx::begin(self.database()).await?;
        let position = read_checkpoint(&mut tx, KitchenProjection::NAME).await?;
        let rows = tx
            .fetch_all(
                "SELECT station, COUNT(*), CAST(SUM(prep_ms) AS BIGINT) FROM rm_kitchen_lines \
                 WHERE tenant = $1 AND store_id = $2 AND prep_ms IS NOT NULL \
                 GROUP BY station ORDER BY station",
                args![tenant, store_id],
            )
            .await?;
        let mut stations = Vec::with_capacity(rows.len());
        for row in &rows {
            let lines = row.int(1)?;
            let total = row.int(2)?;
            stations.push(StationTime {
                station: row.text(0)?,
                lines,
                average_secs: if lines > 0 {
                    total as f64 / lines as f64 / 1000.0
                } else {
                    0.0
                },
            });
        }
        let rows = tx
            .fetch_all(
                "SELECT order_id, line_id, station, name, fired_at, ready_at, prep_ms \
                 FROM rm_kitchen_lines WHERE tenant = $1 AND store_id = $2 AND prep_ms IS NOT NULL \
                 ORDER BY ready_at DESC, order_id, line_id LIMIT $3",
                args![tenant, store_id, i64::from(RECENT_TIMES)],
            )
            .await?;
        tx.finish().await?;
        let mut recent = Vec::with_capacity(rows.len());
        for row in &rows {
            recent.push(LineTime {
                order_id: row.text(0)?,
                line_id: row.text(1)?,
                station: row.text(2)?,
                name: row.text(3)?,
                fired_at: row.time(4)?,
                ready_at: row.time(5)?,
                prep_secs: row.int(6)? as f64 / 1000.0,
            });
        }
        Ok(AtPosition {
            position,
            value: KitchenTimes { stations, recent },
        })
    }

    /// A store's menu items by name, each with whether a portion can be
    /// made from the stock on hand now (the inventory read model): an item
    /// is unavailable when any ingredient is below its quantity per portion
    /// (or removed). Read in one snapshot with both read models'
    /// checkpoints; `position` is the lower of the two.
    pub async fn menu_availability(
        &self,
        tenant: &str,
        store_id: &str,
    ) -> Result<AtPosition<Vec<MenuAvailability>>, ProjectionError> {
        let mut tx = ReadTx::begin(self.database()).await?;
        let menu_at = read_checkpoint(&mut tx, MenuProjection::NAME).await?;
        let inventory_at = read_checkpoint(&mut tx, InventoryProjection::NAME).await?;
        let rows = tx
            .fetch_all(
                "SELECT m.menu_item_id, m.name, m.station, m.price, m.currency, m.active, \
                 r.item_id, r.per_portion, i.quantity, i.status \
                 FROM rm_menu_items m \
                 LEFT JOIN rm_menu_recipes r ON r.menu_item_id = m.menu_item_id \
                 LEFT JOIN rm_inventory i ON i.item_id = r.item_id \
                 WHERE m.menu_item_id IN (SELECT menu_item_id FROM rm_menu_items \
                   WHERE tenant = $1 AND store_id = $2 ORDER BY name, menu_item_id LIMIT $3) \
                 ORDER BY m.name, m.menu_item_id, r.item_id",
                args![tenant, store_id, i64::from(MAX_MENU_ITEMS)],
            )
            .await?;
        tx.finish().await?;
        let mut value: Vec<MenuAvailability> = Vec::new();
        for row in &rows {
            let id = row.text(0)?;
            if value.last().is_none_or(|last| last.menu_item_id != id) {
                value.push(MenuAvailability {
                    menu_item_id: id,
                    name: row.text(1)?,
                    station: row.text(2)?,
                    price_minor: row.int(3)?,
                    currency: row.text(4)?,
                    active: row.int(5)? != 0,
                    available: true,
                    missing: Vec::new(),
                });
            }
            let Some(entry) = value.last_mut() else {
                continue;
            };
            let Some(item_id) = row.opt_text(6)? else {
                continue;
            };
            let per_portion = row.opt_int(7)?.unwrap_or(0);
            let removed = row.opt_text(9)?.is_none_or(|status| status == "removed");
            let on_hand = if removed {
                0
            } else {
                row.opt_int(8)?.unwrap_or(0)
            };
            if on_hand < per_portion {
                entry.available = false;
                entry.missing.push(MissingIngredient {
                    item_id,
                    per_portion,
                    on_hand,
                });
            }
        }
        Ok(AtPosition {
            position: menu_at.min(inventory_at),
            value,
        })
    }

    /// A store's order board: the orders not completed or cancelled, rush
    /// orders first, then oldest first, with how many of their fired lines
    /// are ready.
    pub async fn order_board(
        &self,
        tenant: &str,
        store_id: &str,
    ) -> Result<AtPosition<Vec<BoardOrder>>, ProjectionError> {
        let db = self.database();
        let position = checkpoint(db, KitchenProjection::NAME).await?;
        let sql = "SELECT o.order_id, o.service, o.table_label, o.covers, o.rush, o.status, \
                   (SELECT COUNT(*) FROM rm_kitchen_lines l WHERE l.order_id = o.order_id \
                    AND l.status <> 'cancelled'), \
                   (SELECT COUNT(*) FROM rm_kitchen_lines l WHERE l.order_id = o.order_id \
                    AND l.status = 'ready'), \
                   o.opened_at, o.updated_at, o.version \
                   FROM rm_orders o WHERE o.tenant = $1 AND o.store_id = $2 \
                   AND o.status IN ('open', 'fired', 'ready', 'served') \
                   ORDER BY o.rush DESC, o.opened_at, o.order_id LIMIT $3";
        let rows = fetch_all(db, sql, args![tenant, store_id, i64::from(MAX_TICKETS)]).await?;
        let mut value = Vec::with_capacity(rows.len());
        for row in &rows {
            value.push(BoardOrder {
                order_id: row.text(0)?,
                service: row.text(1)?,
                table: row.opt_text(2)?,
                covers: row.int(3)?,
                rush: row.int(4)? != 0,
                status: row.text(5)?,
                lines_fired: row.int(6)?,
                lines_ready: row.int(7)?,
                opened_at: row.time(8)?,
                updated_at: row.time(9)?,
                version: row.uint(10)?,
            });
        }
        Ok(AtPosition { position, value })
    }
}

async fn read_checkpoint(tx: &mut ReadTx, name: &str) -> Result<u64, ProjectionError> {
    let rows = tx
        .fetch_all(
            "SELECT position FROM projection_checkpoints WHERE name = $1",
            args![name],
        )
        .await?;
    rows.first().map_or(Ok(0), |row| row.uint(0))
}

fn ticket_from_row(row: &DbRow, position: u64) -> Result<KitchenTicket, ProjectionError> {
    let modifiers = row.text(7)?;
    Ok(KitchenTicket {
        order_id: row.text(0)?,
        line_id: row.text(1)?,
        service: row.text(2)?,
        table: row.opt_text(3)?,
        menu_item_id: row.text(4)?,
        name: row.text(5)?,
        quantity: row.int(6)?,
        modifiers: serde_json::from_str(&modifiers).map_err(|e| corrupt(position, e))?,
        note: row.opt_text(8)?,
        course: row.int(9)?,
        rush: row.int(10)? != 0,
        status: row.text(11)?,
        fired_at: row.time(12)?,
        started_at: row.opt_time(13)?,
    })
}
