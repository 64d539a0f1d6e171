//! Every bound and timer of the realtime layer, with defaults.

use std::time::Duration;

/// Bounds and timers. Each exists so that one client, however broken or
/// hostile, costs the server a bounded amount of memory and work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealtimeConfig {
    /// Frames queued for one connection before it is closed as a slow
    /// consumer (4009). Default 1024. The queue holds shared `Arc<str>`
    /// frames, so a full queue costs pointers plus whatever frames are not
    /// yet shared with others; without the bound, one stalled client would
    /// grow server memory without limit. The client loses nothing: it
    /// resumes with `since`.
    pub outbound_queue: usize,
    /// Largest inbound frame (and message) accepted, in bytes; larger closes
    /// with 1009. Default 64 KiB: client messages are small requests, and
    /// the server must not buffer arbitrary payloads (the server gives its
    /// WebSocket transport the same limit, which refuses a larger frame on
    /// its header).
    pub max_frame_bytes: usize,
    /// Subscriptions per connection. Default 100: each costs a room entry
    /// and routing work per matching event.
    pub max_subscriptions: usize,
    /// Stores one connection may announce presence in. Default 10: a
    /// screen shows one store or a few; each costs a presence entry (and a
    /// store id of up to 256 bytes) until the connection closes. Past it,
    /// `presence` for another store is answered `too_many_presences`.
    pub max_presence: usize,
    /// Connections per client address. Default 100: enough for many tabs and
    /// devices behind one NAT, small enough that one host cannot take all.
    pub max_connections_per_ip: usize,
    /// Connections per user (WebSockets and SSE streams), counted on every
    /// node that shares presence. Default 0: no limit. Past it, the
    /// connection is refused (HTTP 429 before the upgrade, or close 4029
    /// after `auth`).
    pub max_connections_per_user: usize,
    /// Sustained inbound messages per second per connection. Default 50.
    pub rate_per_sec: u32,
    /// Inbound messages a connection may send at once above the sustained
    /// rate. Default 100. The first message over it is dropped with a
    /// `rate_limited` warning; another `rate_burst` dropped before the
    /// bucket refills closes the connection with 4008.
    pub rate_burst: u32,
    /// Heartbeat interval. Default 25 s (below common proxy idle timeouts of
    /// 30–60 s). A peer from which nothing arrives for two intervals is
    /// closed with 4000, so dead connections do not pile up.
    pub heartbeat_interval: Duration,
    /// Time allowed for the first `auth` message. Default 5 s: an
    /// unauthenticated socket is cheap to open and must not linger (4001).
    pub auth_timeout: Duration,
    /// Most events a resume (`since` or snapshot) replays before answering
    /// `reset` instead. Default 10,000: a replay is buffered in memory for
    /// one connection, and a client that far behind is better served by a
    /// fresh snapshot.
    pub max_replay: usize,
    /// Events one replay read fetches from the store. Default 500.
    pub replay_page: u32,
    /// Live events buffered for a subscription while its replay is being
    /// sent. Default 10,000; past it the connection is a slow consumer.
    pub max_buffered: usize,
    /// How long the server tries to flush queued frames and a close frame
    /// before dropping the socket. Default 2 s.
    pub close_timeout: Duration,
    /// How long a slow consumer's socket stays open after it is closed
    /// (4009): its queue is dropped at once, but the close frame goes out
    /// behind the frames already in the socket, which the peer has not read
    /// yet. A peer that resumes reading within this time gets the 4009 and
    /// its reason; one that does not is dropped (it sees 1006). Default
    /// 10 s: the socket's buffers are held that long at most.
    pub slow_consumer_close_timeout: Duration,
    /// Longest the broadcaster waits between two passes so that the events
    /// arriving meanwhile share each socket's write. It waits only after a
    /// pass that took 1 ms or more (a room of hundreds of sockets), and only
    /// as long as that pass took: a big room's deliveries cost about half as
    /// many system calls under a steady load, for at most one pass's time of
    /// added latency. Small rooms and an idle broadcaster never wait.
    /// Default 10 ms; zero turns it off.
    pub fanout_linger: Duration,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        Self {
            outbound_queue: 1024,
            max_frame_bytes: 64 * 1024,
            max_subscriptions: 100,
            max_presence: 10,
            max_connections_per_ip: 100,
            max_connections_per_user: 0,
            rate_per_sec: 50,
            rate_burst: 100,
            heartbeat_interval: Duration::from_secs(25),
            auth_timeout: Duration::from_secs(5),
            max_replay: 10_000,
            replay_page: 500,
            max_buffered: 10_000,
            close_timeout: Duration::from_secs(2),
            slow_consumer_close_timeout: Duration::from_secs(10),
            fanout_linger: Duration::from_millis(10),
        }
    }
}
