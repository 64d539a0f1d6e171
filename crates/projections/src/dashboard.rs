//! The dashboard's read model: the facts the kitchen and stock read models
//! do not keep (when each order opened, completed with its total, or was
//! cancelled; every stock alert), and the business day they are counted in.
//!
//! Open orders, preparation times, top items and stock counts are not
//! copied here: [`crate::ReadModels::dashboard`] reads them from the kitchen
//! ([`crate::KitchenProjection`]) and stores ([`crate::StoresProjection`])
//! read models.

use async_trait::async_trait;
use chrono::{DateTime, Duration, FixedOffset, TimeZone, Utc};
use larder_domain::{DomainEvent, ItemEvent, OrderEvent};
use larder_store::RecordedEvent;

use crate::ProjectionError;
use crate::db::{Tx, args};
use crate::larder::decode;
use crate::runner::Projection;

/// The width of a chart bucket: 5 minutes, in milliseconds.
pub const BUCKET_MS: i64 = 5 * 60 * 1000;

/// The dashboard's facts: `rm_dashboard_orders` (per order: opened,
/// completed with its total, cancelled; unix milliseconds) and
/// `rm_dashboard_alerts` (every `LowStock`, `OutOfStock`, `Restocked`).
///
/// It runs in one group with [`crate::KitchenProjection`], so a dashboard
/// reads the orders, the kitchen's lines and these facts at one position.
#[derive(Debug, Default, Clone, Copy)]
pub struct DashboardProjection;

impl DashboardProjection {
    /// The checkpoint name.
    pub const NAME: &'static str = "dashboard";
}

/// The kind of a stock alert as the dashboard stores it.
fn alert_kind(event: &ItemEvent) -> Option<&'static str> {
    match event {
        ItemEvent::LowStock { .. } => Some("low"),
        ItemEvent::OutOfStock { .. } => Some("out"),
        ItemEvent::Restocked { .. } => Some("restocked"),
        _ => None,
    }
}

#[async_trait]
impl Projection for DashboardProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn apply(&self, tx: &mut Tx, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let at_ms = event.recorded_at.timestamp_millis();
        match decode(event)? {
            Some(DomainEvent::Order(order)) => {
                let order_id = order.order_id().as_uuid().to_string();
                match order {
                    OrderEvent::OrderOpened {
                        store_id, currency, ..
                    } => {
                        tx.execute(
                            "INSERT INTO rm_dashboard_orders (order_id, tenant, store_id, currency, \
                             opened_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (order_id) DO NOTHING",
                            args![
                                order_id,
                                event.metadata.tenant.as_str(),
                                store_id.to_string(),
                                currency.as_str(),
                                at_ms
                            ],
                        )
                        .await?;
                    }
                    OrderEvent::OrderCompleted { total, .. } => {
                        tx.execute(
                            "UPDATE rm_dashboard_orders SET completed_ms = $1, total_minor = $2, \
                             currency = $3 WHERE order_id = $4",
                            args![
                                at_ms,
                                total.amount_minor(),
                                total.currency().as_str(),
                                order_id
                            ],
                        )
                        .await?;
                    }
                    OrderEvent::OrderCancelled { .. } => {
                        tx.execute(
                            "UPDATE rm_dashboard_orders SET cancelled_ms = $1 WHERE order_id = $2",
                            args![at_ms, order_id],
                        )
                        .await?;
                    }
                    _ => {}
                }
            }
            Some(DomainEvent::Item(item)) => {
                if let Some(kind) = alert_kind(&item) {
                    tx.execute(
                        "INSERT INTO rm_dashboard_alerts (position, tenant, store_id, item_id, kind, \
                         at_ms) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (position) DO NOTHING",
                        args![
                            event.position,
                            event.metadata.tenant.as_str(),
                            item.store_id().to_string(),
                            item.item_id().as_uuid().to_string(),
                            kind,
                            at_ms
                        ],
                    )
                    .await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn reset(&self, tx: &mut Tx) -> Result<(), ProjectionError> {
        tx.execute("DELETE FROM rm_dashboard_alerts", vec![])
            .await?;
        tx.execute("DELETE FROM rm_dashboard_orders", vec![])
            .await?;
        Ok(())
    }
}

/// A business day: from midnight to midnight at a fixed offset from UTC.
///
/// Larder counts "today" at one offset per server (`--dashboard-utc-offset`,
/// default UTC): a fixed offset, not a time zone, so a day is always 24
/// hours and the same instant falls in the same day on every node. A
/// tenant whose stores keep another clock sets the offset of its stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusinessDay {
    /// The first instant of the day.
    pub start: DateTime<Utc>,
    /// The first instant of the next day.
    pub end: DateTime<Utc>,
    /// The offset from UTC, in minutes.
    pub utc_offset_minutes: i32,
}

/// The most a day's offset may be from UTC, in minutes (UTC-14:00 to
/// UTC+14:00: every offset in use).
pub const MAX_UTC_OFFSET_MINUTES: i32 = 14 * 60;

impl BusinessDay {
    /// The day `at` falls in, at `utc_offset_minutes` (clamped to
    /// ±[`MAX_UTC_OFFSET_MINUTES`]).
    pub fn containing(at: DateTime<Utc>, utc_offset_minutes: i32) -> Self {
        let minutes = utc_offset_minutes.clamp(-MAX_UTC_OFFSET_MINUTES, MAX_UTC_OFFSET_MINUTES);
        let offset = FixedOffset::east_opt(minutes * 60)
            .unwrap_or(FixedOffset::east_opt(0).expect("zero offset"));
        let local = at.with_timezone(&offset).date_naive();
        let midnight = local.and_hms_opt(0, 0, 0).unwrap_or_default();
        let start = offset
            .from_local_datetime(&midnight)
            .single()
            .map_or(at, |start| start.with_timezone(&Utc));
        Self {
            start,
            end: start + Duration::days(1),
            utc_offset_minutes: minutes,
        }
    }

    /// The day's bounds in unix milliseconds (end excluded).
    pub fn millis(&self) -> (i64, i64) {
        (self.start.timestamp_millis(), self.end.timestamp_millis())
    }

    /// The start of the 5-minute bucket `index` of the day.
    pub fn bucket_start(&self, index: i64) -> DateTime<Utc> {
        self.start + Duration::milliseconds(index * BUCKET_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_utc_day_runs_from_midnight_to_midnight() {
        let day = BusinessDay::containing(at("2026-12-02T13:45:00Z"), 0);
        assert_eq!(day.start, at("2026-12-02T00:00:00Z"));
        assert_eq!(day.end, at("2026-12-03T00:00:00Z"));
    }

    #[test]
    fn an_offset_moves_the_boundary() {
        // 23:30 UTC is already the next day at UTC+01:00.
        let day = BusinessDay::containing(at("2026-12-02T23:30:00Z"), 60);
        assert_eq!(day.start, at("2026-12-02T23:00:00Z"));
        // 02:00 UTC is still the previous day at UTC-05:00.
        let day = BusinessDay::containing(at("2026-12-02T02:00:00Z"), -300);
        assert_eq!(day.start, at("2026-12-01T05:00:00Z"));
        assert_eq!(day.end, at("2026-12-02T05:00:00Z"));
    }

    #[test]
    fn offsets_beyond_fourteen_hours_are_clamped() {
        let day = BusinessDay::containing(at("2026-12-02T12:00:00Z"), 10_000);
        assert_eq!(day.utc_offset_minutes, MAX_UTC_OFFSET_MINUTES);
    }

    #[test]
    fn buckets_are_five_minutes_from_the_start() {
        let day = BusinessDay::containing(at("2026-12-02T12:00:00Z"), 0);
        assert_eq!(day.bucket_start(3), at("2026-12-02T00:15:00Z"));
    }
}
