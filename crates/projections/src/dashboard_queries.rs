//! Reading a dashboard: a store's or a tenant's figures for one business
//! day, from the dashboard, kitchen and stores read models, in one
//! snapshot-isolated transaction.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ProjectionError;
use crate::dashboard::{BusinessDay, DashboardProjection};
use crate::db::{ReadTx, args};
use crate::kitchen::KitchenProjection;
use crate::kitchen_queries::StationTime;
use crate::larder::StoresProjection;
use crate::queries::{ReadModels, micros};

/// How many items [`Dashboard::top_items`] lists.
pub const TOP_ITEMS: u32 = 5;

/// Revenue in one currency: the orders completed today and their totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Revenue {
    /// ISO 4217.
    pub currency: String,
    /// Orders completed today in this currency.
    pub orders: i64,
    /// The sum of their totals, in minor units.
    pub total_minor: i64,
    /// `total_minor / orders`, rounded half up to a minor unit (0 without
    /// orders).
    pub average_ticket_minor: i64,
}

/// A menu item by portions fired today.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopItem {
    /// The menu item.
    pub menu_item_id: String,
    /// Its name (as last fired).
    pub name: String,
    /// Portions fired today, lines of cancelled orders not ready excluded.
    pub quantity: i64,
}

/// One 5-minute bucket of the orders chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrdersBucket {
    /// The bucket's start (RFC 3339).
    #[serde(serialize_with = "micros")]
    pub start: DateTime<Utc>,
    /// Orders opened in it.
    pub orders: i64,
}

/// One 5-minute bucket of the stock alerts chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertsBucket {
    /// The bucket's start (RFC 3339).
    #[serde(serialize_with = "micros")]
    pub start: DateTime<Utc>,
    /// `LowStock` alerts in it.
    pub low: i64,
    /// `OutOfStock` alerts in it.
    pub out: i64,
    /// `Restocked` alerts in it.
    pub restocked: i64,
}

/// A dashboard: one store's figures, or a whole tenant's, for one business
/// day ([`BusinessDay`]). Counts "today" are of events recorded in
/// `[day_start, day_end)`; `open_orders`, `low_stock` and `out_of_stock`
/// are current.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Dashboard {
    /// The store, or `None` for the tenant's dashboard.
    pub store_id: Option<String>,
    /// The first instant of the business day.
    #[serde(serialize_with = "micros")]
    pub day_start: DateTime<Utc>,
    /// The first instant of the next.
    #[serde(serialize_with = "micros")]
    pub day_end: DateTime<Utc>,
    /// The day's offset from UTC, in minutes.
    pub utc_offset_minutes: i32,
    /// Orders opened today.
    pub orders_opened: i64,
    /// Orders completed today.
    pub orders_completed: i64,
    /// Orders cancelled today.
    pub orders_cancelled: i64,
    /// Revenue of the orders completed today, per currency.
    pub revenue: Vec<Revenue>,
    /// Orders not completed or cancelled (whatever day they opened).
    pub open_orders: i64,
    /// Per station, the lines made ready today and their average time from
    /// fire to ready.
    pub stations: Vec<StationTime>,
    /// Items at or below their threshold, above zero, now.
    pub low_stock: i64,
    /// Items with nothing on hand, now.
    pub out_of_stock: i64,
    /// The [`TOP_ITEMS`] menu items fired most today, most first.
    pub top_items: Vec<TopItem>,
    /// Orders opened per 5 minutes today; buckets without orders are left
    /// out.
    pub orders_per_5_minutes: Vec<OrdersBucket>,
    /// Stock alerts per 5 minutes today; buckets without alerts are left
    /// out.
    pub stock_alerts: Vec<AlertsBucket>,
    /// The log position the figures reflect (the lowest of the read models
    /// they come from).
    pub position: u64,
}

/// `total / count` rounded half up; 0 when `count` is 0.
pub(crate) fn average(total: i64, count: i64) -> i64 {
    if count <= 0 {
        return 0;
    }
    let (quotient, remainder) = (total.div_euclid(count), total.rem_euclid(count));
    if remainder * 2 >= count {
        quotient + 1
    } else {
        quotient
    }
}

/// Rows are scoped with `tenant = $1 AND ($2 = '' OR store_id = $2)`: the
/// empty store is the whole tenant.
const SCOPE: &str = "tenant = $1 AND ($2 = '' OR store_id = $2)";

impl ReadModels {
    /// The dashboard of one store (`Some`) or of the whole tenant (`None`)
    /// for `day`. Read in one snapshot with the checkpoints of the
    /// dashboard, kitchen and stores read models; `position` is the lowest.
    pub async fn dashboard(
        &self,
        tenant: &str,
        store_id: Option<&str>,
        day: BusinessDay,
    ) -> Result<Dashboard, ProjectionError> {
        let store = store_id.unwrap_or("");
        let (start_ms, end_ms) = day.millis();
        let mut tx = ReadTx::begin(self.database()).await?;
        let rows = tx
            .fetch_all(
                "SELECT name, position FROM projection_checkpoints WHERE name IN ($1, $2, $3)",
                args![
                    DashboardProjection::NAME,
                    KitchenProjection::NAME,
                    StoresProjection::NAME
                ],
            )
            .await?;
        let mut position = if rows.len() == 3 { u64::MAX } else { 0 };
        for row in &rows {
            position = position.min(row.uint(1)?);
        }

        let count = |column: &str| {
            format!(
                "SELECT COUNT(*) FROM rm_dashboard_orders WHERE {SCOPE} \
                 AND {column} >= $3 AND {column} < $4"
            )
        };
        let mut counts = [0i64; 3];
        for (slot, column) in counts
            .iter_mut()
            .zip(["opened_ms", "completed_ms", "cancelled_ms"])
        {
            let rows = tx
                .fetch_all(&count(column), args![tenant, store, start_ms, end_ms])
                .await?;
            *slot = rows.first().map_or(Ok(0), |row| row.int(0))?;
        }
        let [orders_opened, orders_completed, orders_cancelled] = counts;

        let rows = tx
            .fetch_all(
                &format!(
                    "SELECT currency, COUNT(*), CAST(SUM(total_minor) AS BIGINT) \
                     FROM rm_dashboard_orders WHERE {SCOPE} \
                     AND completed_ms >= $3 AND completed_ms < $4 \
                     GROUP BY currency ORDER BY currency"
                ),
                args![tenant, store, start_ms, end_ms],
            )
            .await?;
        let mut revenue = Vec::with_capacity(rows.len());
        for row in &rows {
            let orders = row.int(1)?;
            let total_minor = row.opt_int(2)?.unwrap_or(0);
            revenue.push(Revenue {
                currency: row.text(0)?,
                orders,
                total_minor,
                average_ticket_minor: average(total_minor, orders),
            });
        }

        let rows = tx
            .fetch_all(
                &format!(
                    "SELECT COUNT(*) FROM rm_orders WHERE {SCOPE} \
                     AND status IN ('open', 'fired', 'ready', 'served')"
                ),
                args![tenant, store],
            )
            .await?;
        let open_orders = rows.first().map_or(Ok(0), |row| row.int(0))?;

        let rows = tx
            .fetch_all(
                &format!(
                    "SELECT station, COUNT(*), CAST(SUM(prep_ms) AS BIGINT) FROM rm_kitchen_lines \
                     WHERE {SCOPE} AND prep_ms IS NOT NULL AND ready_at >= $3 AND ready_at < $4 \
                     GROUP BY station ORDER BY station"
                ),
                args![tenant, store, day.start, day.end],
            )
            .await?;
        let mut stations = Vec::with_capacity(rows.len());
        for row in &rows {
            let lines = row.int(1)?;
            let total = row.opt_int(2)?.unwrap_or(0);
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
                &format!(
                    "SELECT CAST(SUM(low_stock_count) AS BIGINT), \
                     CAST(SUM(out_of_stock_count) AS BIGINT) FROM rm_stores WHERE {SCOPE}"
                ),
                args![tenant, store],
            )
            .await?;
        let (low_stock, out_of_stock) = match rows.first() {
            Some(row) => (row.opt_int(0)?.unwrap_or(0), row.opt_int(1)?.unwrap_or(0)),
            None => (0, 0),
        };

        let rows = tx
            .fetch_all(
                &format!(
                    "SELECT menu_item_id, MAX(name), CAST(SUM(quantity) AS BIGINT) AS portions \
                     FROM rm_kitchen_lines WHERE {SCOPE} AND status <> 'cancelled' \
                     AND fired_at >= $3 AND fired_at < $4 \
                     GROUP BY menu_item_id ORDER BY portions DESC, menu_item_id LIMIT $5"
                ),
                args![tenant, store, day.start, day.end, i64::from(TOP_ITEMS)],
            )
            .await?;
        let mut top_items = Vec::with_capacity(rows.len());
        for row in &rows {
            top_items.push(TopItem {
                menu_item_id: row.text(0)?,
                name: row.text(1)?,
                quantity: row.opt_int(2)?.unwrap_or(0),
            });
        }

        let rows = tx
            .fetch_all(
                &format!(
                    "SELECT (opened_ms - $3) / {bucket} AS bucket, COUNT(*) FROM rm_dashboard_orders \
                     WHERE {SCOPE} AND opened_ms >= $3 AND opened_ms < $4 \
                     GROUP BY bucket ORDER BY bucket",
                    bucket = crate::dashboard::BUCKET_MS
                ),
                args![tenant, store, start_ms, end_ms],
            )
            .await?;
        let mut orders_per_5_minutes = Vec::with_capacity(rows.len());
        for row in &rows {
            orders_per_5_minutes.push(OrdersBucket {
                start: day.bucket_start(row.int(0)?),
                orders: row.int(1)?,
            });
        }

        let rows = tx
            .fetch_all(
                &format!(
                    "SELECT (at_ms - $3) / {bucket} AS bucket, kind, COUNT(*) FROM rm_dashboard_alerts \
                     WHERE {SCOPE} AND at_ms >= $3 AND at_ms < $4 \
                     GROUP BY bucket, kind ORDER BY bucket, kind",
                    bucket = crate::dashboard::BUCKET_MS
                ),
                args![tenant, store, start_ms, end_ms],
            )
            .await?;
        tx.finish().await?;
        let mut stock_alerts: Vec<AlertsBucket> = Vec::new();
        for row in &rows {
            let start = day.bucket_start(row.int(0)?);
            if stock_alerts.last().is_none_or(|b| b.start != start) {
                stock_alerts.push(AlertsBucket {
                    start,
                    low: 0,
                    out: 0,
                    restocked: 0,
                });
            }
            let Some(bucket) = stock_alerts.last_mut() else {
                continue;
            };
            let count = row.int(2)?;
            match row.text(1)?.as_str() {
                "low" => bucket.low += count,
                "out" => bucket.out += count,
                _ => bucket.restocked += count,
            }
        }

        Ok(Dashboard {
            store_id: store_id.map(str::to_owned),
            day_start: day.start,
            day_end: day.end,
            utc_offset_minutes: day.utc_offset_minutes,
            orders_opened,
            orders_completed,
            orders_cancelled,
            revenue,
            open_orders,
            stations,
            low_stock,
            out_of_stock,
            top_items,
            orders_per_5_minutes,
            stock_alerts,
            position,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::average;

    #[test]
    fn the_average_ticket_rounds_half_up() {
        assert_eq!(average(0, 0), 0);
        assert_eq!(average(1000, 3), 333);
        assert_eq!(average(1001, 2), 501);
        assert_eq!(average(1000, 2), 500);
        assert_eq!(average(2000, 3), 667);
    }
}
