//! Metric names, recorded with the `metrics` crate; the server installs the
//! exporter (Prometheus).

/// Gauge: connections being served.
pub const CONNECTIONS: &str = "larder_ws_connections";
/// Gauge: active subscriptions (WebSocket topics and SSE/long-poll streams).
pub const SUBSCRIPTIONS: &str = "larder_ws_subscriptions";
/// Counter: frames written to WebSocket peers.
pub const FRAMES_OUT: &str = "larder_ws_frames_out_total";
/// Counter: bytes of text frames written to WebSocket peers.
pub const BYTES_OUT: &str = "larder_ws_bytes_out_total";
/// Counter: deliveries dropped because a subscriber's queue or buffer was
/// full (the subscriber is then closed and resumes).
pub const DROPPED: &str = "larder_ws_dropped_total";
/// Counter: connections closed with 4009 slow consumer.
pub const SLOW_CONSUMER_CLOSES: &str = "larder_ws_slow_consumer_closes_total";
/// Counter with label `outcome` = `new` | `recovered` | `reset`: how
/// subscriptions started.
pub const RESUME: &str = "larder_ws_resume_total";
/// Histogram: seconds from an event's commit (`recorded_at`) to the moment
/// its frame is written to a peer.
pub const DELIVERY_LATENCY: &str = "larder_delivery_latency_seconds";
/// Counter with label `status` = `accepted` | `executed` | `failed`:
/// command lifecycle frames sent (one per command and status, whatever the
/// number of connections of its session).
pub const COMMAND_FRAMES: &str = "larder_ws_command_frames_total";
/// Counter: `executed` command frames sent before their position was
/// routed, because `MAX_WAITING_COMMAND_FRAMES` were already waiting.
pub const COMMAND_FRAMES_EARLY: &str = "larder_ws_command_frames_early_total";
