//! Dashboards: a store's or a tenant's figures for today, computed from the
//! read models on request (REST, a WebSocket snapshot) and pushed to
//! `dashboard` subscribers by the hub's state publisher, at most once per
//! `--dashboard-interval-ms`.

use async_trait::async_trait;
use chrono::Utc;
use larder_projections::{BusinessDay, Dashboard, ProjectionError, ReadModels};
use larder_realtime::{StateProvider, Topic};

/// Computes dashboards for today, at the configured offset from UTC.
#[derive(Debug, Clone)]
pub struct Dashboards {
    reads: ReadModels,
    utc_offset_minutes: i32,
}

impl Dashboards {
    /// Dashboards over `reads`, whose day starts at midnight
    /// `utc_offset_minutes` east of UTC.
    pub fn new(reads: ReadModels, utc_offset_minutes: i32) -> Self {
        Self {
            reads,
            utc_offset_minutes,
        }
    }

    /// The business day now.
    pub fn today(&self) -> BusinessDay {
        BusinessDay::containing(Utc::now(), self.utc_offset_minutes)
    }

    /// The figures of one store (`Some`) or of the whole tenant, today.
    pub async fn figures(
        &self,
        tenant: &str,
        store_id: Option<&str>,
    ) -> Result<Dashboard, ProjectionError> {
        self.reads.dashboard(tenant, store_id, self.today()).await
    }

    /// The dashboard of a `dashboard` or `dashboard:{store}` topic, as JSON
    /// with its position; `None` for other topics.
    pub(crate) async fn of_topic(
        &self,
        tenant: &str,
        topic: &Topic,
    ) -> Result<Option<(serde_json::Value, u64)>, String> {
        let Topic::Dashboard(store_id) = topic else {
            return Ok(None);
        };
        let figures = self
            .figures(tenant, store_id.as_deref())
            .await
            .map_err(|e| e.to_string())?;
        let position = figures.position;
        let data = serde_json::to_value(&figures).map_err(|e| e.to_string())?;
        Ok(Some((data, position)))
    }
}

#[async_trait]
impl StateProvider for Dashboards {
    async fn state(
        &self,
        tenant: &str,
        topic: &Topic,
    ) -> Result<Option<(serde_json::Value, u64)>, String> {
        self.of_topic(tenant, topic).await
    }
}
