//! Reading the read models.

use std::time::Duration;

use chrono::{DateTime, Utc};
use larder_store::Database;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::ProjectionError;
use crate::checkpoints::checkpoint;
use crate::db::{Arg, DbRow, ReadTx, args, fetch_all};
use crate::larder::{ActivityProjection, InventoryProjection, StoresProjection};
use crate::runner::Demand;

/// The largest page an inventory or activity query returns.
pub const MAX_PAGE: u32 = 500;

/// The most items a store snapshot carries. A snapshot is built in memory
/// and sent as one message, so it needs a bound; a store with more items is
/// read page by page over REST instead.
pub const MAX_SNAPSHOT_ITEMS: usize = 10_000;

/// A store and all its items, read together at one position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreSnapshot {
    /// The store's summary; `None` if there is no such store (yet).
    pub store: Option<StoreSummary>,
    /// Every item of the store, removed ones included, ordered by SKU.
    pub items: Vec<InventoryItem>,
}

/// Serialises a time as RFC 3339 in UTC with exactly six fractional digits:
/// what the event store keeps on PostgreSQL and what real-time frames carry,
/// so a time reads the same whichever way it reached the client.
pub fn micros<S: serde::Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

/// A query result and the position the read model was at: the result
/// reflects every event up to at least `position`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AtPosition<T> {
    /// The read model's checkpoint when the query ran.
    pub position: u64,
    /// The result.
    pub value: T,
}

/// A store, with counts of its items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoreSummary {
    /// The store's id.
    pub store_id: String,
    /// Its tenant.
    pub tenant: String,
    /// Its name.
    pub name: String,
    /// `open` or `closed`.
    pub status: String,
    /// Items not removed.
    pub item_count: i64,
    /// Items at or below their threshold, above zero.
    pub low_stock_count: i64,
    /// Items with nothing on hand.
    pub out_of_stock_count: i64,
    /// The store stream's version.
    pub version: u64,
    /// Position of the last event that changed this summary.
    pub position: u64,
    /// When that event was recorded (RFC 3339, microseconds).
    #[serde(serialize_with = "micros")]
    pub updated_at: DateTime<Utc>,
}

/// One item of a store's inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InventoryItem {
    /// The item's id.
    pub item_id: String,
    /// Its store.
    pub store_id: String,
    /// Its SKU.
    pub sku: String,
    /// Its name.
    pub name: String,
    /// Its unit.
    pub unit: String,
    /// Stock on hand.
    pub quantity: i64,
    /// Low-stock threshold.
    pub threshold: i64,
    /// `in_stock`, `low`, `out` or `removed`.
    pub status: String,
    /// The item stream's version: send it as `If-Match` to change the item.
    pub version: u64,
    /// Position of the item's last event.
    pub position: u64,
    /// When that event was recorded (RFC 3339, microseconds).
    #[serde(serialize_with = "micros")]
    pub updated_at: DateTime<Utc>,
}

/// One entry of a store's activity feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActivityEntry {
    /// The event's global position.
    pub position: u64,
    /// The store.
    pub store_id: String,
    /// The event's stream.
    pub stream: String,
    /// The event's version in its stream.
    pub version: u64,
    /// The event type, e.g. `StockAdjusted`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// `store` or `item`.
    pub entity_type: String,
    /// The entity's id.
    pub entity_id: String,
    /// Who caused it.
    pub actor: Option<String>,
    /// The event's data.
    pub data: serde_json::Value,
    /// When it was recorded (RFC 3339, microseconds).
    #[serde(serialize_with = "micros")]
    pub recorded_at: DateTime<Utc>,
}

/// Which inventory items to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum StatusFilter {
    /// Every item that is not removed.
    #[default]
    Active,
    /// Above the threshold.
    InStock,
    /// At or below the threshold, above zero.
    Low,
    /// Nothing on hand.
    Out,
    /// Removed items.
    Removed,
    /// Everything.
    All,
}

/// A page request over a store's inventory, ordered by SKU.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InventoryQuery {
    /// Which items.
    pub status: StatusFilter,
    /// Continue after this SKU (the last one of the previous page).
    pub after_sku: Option<String>,
    /// Page size, at most [`MAX_PAGE`].
    pub limit: u32,
}

/// Queries over Larder's read models, and waiting for them to catch up.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct ReadModels {
    db: Database,
    progress: Vec<Progress>,
}

/// One read model's committed position, and where to ask for more.
#[derive(Debug, Clone)]
pub(crate) struct Progress {
    pub(crate) name: &'static str,
    pub(crate) committed: watch::Receiver<u64>,
    pub(crate) demand: Demand,
}

const STORE_COLUMNS: &str = "store_id, tenant, name, status, item_count, low_stock_count, out_of_stock_count, \
     version, position, updated_at";
const ITEM_COLUMNS: &str = "item_id, store_id, sku, name, unit, quantity, threshold, status, version, position, updated_at";

impl ReadModels {
    pub(crate) fn new(db: Database, progress: Vec<Progress>) -> Self {
        Self { db, progress }
    }

    /// The database the read models live in.
    pub(crate) fn db(&self) -> &Database {
        &self.db
    }

    /// The lowest position every read model has reached, as this process
    /// knows it.
    pub fn position(&self) -> u64 {
        self.progress
            .iter()
            .map(|p| *p.committed.borrow())
            .min()
            .unwrap_or(0)
    }

    /// Each read model's name and committed position.
    pub fn positions(&self) -> Vec<(&'static str, u64)> {
        self.progress
            .iter()
            .map(|p| (p.name, *p.committed.borrow()))
            .collect()
    }

    /// Waits until every read model has reached `position`, at most
    /// `timeout`. Returns whether it did: read-your-writes for a client
    /// that knows the position of its own write.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        for progress in &self.progress {
            if *progress.committed.borrow() < position {
                progress.demand.want(position);
            }
        }
        let all = async {
            for progress in &self.progress {
                let mut progress = progress.committed.clone();
                if progress.wait_for(|at| *at >= position).await.is_err() {
                    return false;
                }
            }
            true
        };
        tokio::time::timeout(timeout, all).await.unwrap_or(false)
    }

    /// The database the read models live in.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Every store of `tenant`, by name.
    pub async fn stores(
        &self,
        tenant: &str,
    ) -> Result<AtPosition<Vec<StoreSummary>>, ProjectionError> {
        let position = checkpoint(&self.db, StoresProjection::NAME).await?;
        let sql = format!(
            "SELECT {STORE_COLUMNS} FROM rm_stores WHERE tenant = $1 ORDER BY name, store_id"
        );
        let rows = fetch_all(&self.db, &sql, args![tenant]).await?;
        let value = rows.iter().map(store_from_row).collect::<Result<_, _>>()?;
        Ok(AtPosition { position, value })
    }

    /// One store of `tenant`.
    pub async fn store(
        &self,
        tenant: &str,
        store_id: &str,
    ) -> Result<AtPosition<Option<StoreSummary>>, ProjectionError> {
        let position = checkpoint(&self.db, StoresProjection::NAME).await?;
        let sql =
            format!("SELECT {STORE_COLUMNS} FROM rm_stores WHERE tenant = $1 AND store_id = $2");
        let rows = fetch_all(&self.db, &sql, args![tenant, store_id]).await?;
        let value = rows.first().map(store_from_row).transpose()?;
        Ok(AtPosition { position, value })
    }

    /// A store's summary and every item of it, read in one snapshot-isolated
    /// transaction together with the checkpoints of both read models (which
    /// run as one group): the result reflects exactly the events up to
    /// `position`, none after it. A client that applies the events after
    /// `position` to it neither misses nor repeats one.
    pub async fn store_snapshot(
        &self,
        tenant: &str,
        store_id: &str,
    ) -> Result<AtPosition<StoreSnapshot>, ProjectionError> {
        let mut tx = ReadTx::begin(&self.db).await?;
        let checkpoints = tx
            .fetch_all(
                "SELECT name, position FROM projection_checkpoints WHERE name IN ($1, $2)",
                args![StoresProjection::NAME, InventoryProjection::NAME],
            )
            .await?;
        let at = |name: &str| -> Result<u64, ProjectionError> {
            for row in &checkpoints {
                if row.text(0)? == name {
                    return row.uint(1);
                }
            }
            Ok(0)
        };
        let (stores_at, inventory_at) =
            (at(StoresProjection::NAME)?, at(InventoryProjection::NAME)?);
        if stores_at != inventory_at {
            return Err(ProjectionError::Misaligned {
                first: StoresProjection::NAME,
                first_at: stores_at,
                second: InventoryProjection::NAME,
                second_at: inventory_at,
            });
        }
        let sql =
            format!("SELECT {STORE_COLUMNS} FROM rm_stores WHERE tenant = $1 AND store_id = $2");
        let rows = tx.fetch_all(&sql, args![tenant, store_id]).await?;
        let store = rows.first().map(store_from_row).transpose()?;
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM rm_inventory WHERE tenant = $1 AND store_id = $2 \
             ORDER BY sku LIMIT $3"
        );
        let limit = i64::try_from(MAX_SNAPSHOT_ITEMS + 1).unwrap_or(i64::MAX);
        let rows = tx.fetch_all(&sql, args![tenant, store_id, limit]).await?;
        tx.finish().await?;
        if rows.len() > MAX_SNAPSHOT_ITEMS {
            return Err(ProjectionError::TooLarge {
                what: "items in the store",
                limit: MAX_SNAPSHOT_ITEMS,
            });
        }
        let items = rows.iter().map(item_from_row).collect::<Result<_, _>>()?;
        Ok(AtPosition {
            position: stores_at,
            value: StoreSnapshot { store, items },
        })
    }

    /// A page of one store's inventory, ordered by SKU.
    pub async fn inventory(
        &self,
        tenant: &str,
        store_id: &str,
        query: &InventoryQuery,
    ) -> Result<AtPosition<Vec<InventoryItem>>, ProjectionError> {
        let position = checkpoint(&self.db, InventoryProjection::NAME).await?;
        let mut sql =
            format!("SELECT {ITEM_COLUMNS} FROM rm_inventory WHERE tenant = $1 AND store_id = $2");
        let mut params: Vec<Arg> = args![tenant, store_id];
        let status = match query.status {
            StatusFilter::Active => Some("status <> 'removed'"),
            StatusFilter::InStock => Some("status = 'in_stock'"),
            StatusFilter::Low => Some("status = 'low'"),
            StatusFilter::Out => Some("status = 'out'"),
            StatusFilter::Removed => Some("status = 'removed'"),
            StatusFilter::All => None,
        };
        if let Some(condition) = status {
            sql.push_str(" AND ");
            sql.push_str(condition);
        }
        if let Some(after) = &query.after_sku {
            params.push(after.clone().into());
            sql.push_str(&format!(" AND sku > ${}", params.len()));
        }
        params.push(i64::from(query.limit.clamp(1, MAX_PAGE)).into());
        sql.push_str(&format!(" ORDER BY sku LIMIT ${}", params.len()));
        let rows = fetch_all(&self.db, &sql, params).await?;
        let value = rows.iter().map(item_from_row).collect::<Result<_, _>>()?;
        Ok(AtPosition { position, value })
    }

    /// One item of `tenant`.
    pub async fn item(
        &self,
        tenant: &str,
        item_id: &str,
    ) -> Result<AtPosition<Option<InventoryItem>>, ProjectionError> {
        let position = checkpoint(&self.db, InventoryProjection::NAME).await?;
        let sql =
            format!("SELECT {ITEM_COLUMNS} FROM rm_inventory WHERE tenant = $1 AND item_id = $2");
        let rows = fetch_all(&self.db, &sql, args![tenant, item_id]).await?;
        let value = rows.first().map(item_from_row).transpose()?;
        Ok(AtPosition { position, value })
    }

    /// A store's most recent activity, newest first, optionally before a
    /// position (to page back).
    pub async fn activity(
        &self,
        tenant: &str,
        store_id: &str,
        before: Option<u64>,
        limit: u32,
    ) -> Result<AtPosition<Vec<ActivityEntry>>, ProjectionError> {
        let position = checkpoint(&self.db, ActivityProjection::NAME).await?;
        let sql = "SELECT position, store_id, stream, version, event_type, entity_type, entity_id, actor, data, \
                   recorded_at FROM rm_activity WHERE tenant = $1 AND store_id = $2 AND position < $3 \
                   ORDER BY position DESC LIMIT $4";
        let before = before.unwrap_or(i64::MAX as u64);
        let limit = i64::from(limit.clamp(1, MAX_PAGE));
        let rows = fetch_all(&self.db, sql, args![tenant, store_id, before, limit]).await?;
        let value = rows
            .iter()
            .map(activity_from_row)
            .collect::<Result<_, _>>()?;
        Ok(AtPosition { position, value })
    }
}

fn store_from_row(row: &DbRow) -> Result<StoreSummary, ProjectionError> {
    Ok(StoreSummary {
        store_id: row.text(0)?,
        tenant: row.text(1)?,
        name: row.text(2)?,
        status: row.text(3)?,
        item_count: row.int(4)?,
        low_stock_count: row.int(5)?,
        out_of_stock_count: row.int(6)?,
        version: row.uint(7)?,
        position: row.uint(8)?,
        updated_at: row.time(9)?,
    })
}

fn item_from_row(row: &DbRow) -> Result<InventoryItem, ProjectionError> {
    Ok(InventoryItem {
        item_id: row.text(0)?,
        store_id: row.text(1)?,
        sku: row.text(2)?,
        name: row.text(3)?,
        unit: row.text(4)?,
        quantity: row.int(5)?,
        threshold: row.int(6)?,
        status: row.text(7)?,
        version: row.uint(8)?,
        position: row.uint(9)?,
        updated_at: row.time(10)?,
    })
}

fn activity_from_row(row: &DbRow) -> Result<ActivityEntry, ProjectionError> {
    let position = row.uint(0)?;
    let data = row.text(8)?;
    Ok(ActivityEntry {
        position,
        store_id: row.text(1)?,
        stream: row.text(2)?,
        version: row.uint(3)?,
        event_type: row.text(4)?,
        entity_type: row.text(5)?,
        entity_id: row.text(6)?,
        actor: row.opt_text(7)?,
        data: serde_json::from_str(&data).map_err(|e| ProjectionError::Corrupt {
            position,
            reason: e.to_string(),
        })?,
        recorded_at: row.time(9)?,
    })
}
