//! The inbound rate limit: a token bucket per connection. Every frame the
//! peer sends counts (messages, and WebSocket pings and pongs too: each one
//! costs the server a read and, for a ping, a reply).

use tokio::time::Instant;

/// What the rate limiter says about one inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allow,
    /// The first message over the limit: dropped, the client is warned.
    Warn,
    /// Dropped.
    Drop,
    /// A burst's worth dropped since the last full refill: close 4008.
    Close,
}

/// A token bucket: `rate` tokens per second up to `burst`. Messages over it
/// are dropped; the drop count resets only once the bucket is full again,
/// so a client that keeps exceeding the rate is eventually closed.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    dropped: u32,
}

impl RateLimiter {
    pub(crate) fn new(rate: u32, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate: f64::from(rate),
            burst,
            tokens: burst,
            last: now,
            dropped: 0,
        }
    }

    pub(crate) fn check(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= self.burst {
            self.dropped = 0;
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Allow;
        }
        self.dropped += 1;
        if self.dropped == 1 {
            Verdict::Warn
        } else if f64::from(self.dropped) > self.burst {
            Verdict::Close
        } else {
            Verdict::Drop
        }
    }
}
