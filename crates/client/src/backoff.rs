//! Exponential backoff with full jitter.

use std::time::Duration;

/// How long to wait before the n-th retry: "full jitter", uniformly random
/// below `min(max, base * 2^n)`. The randomness spreads a crowd of clients
/// that lost the server at the same moment, so they do not all come back in
/// the same millisecond; the ceiling bounds the wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first retry's wait.
    pub base: Duration,
    /// The largest ceiling.
    pub max: Duration,
}

impl Backoff {
    /// The reconnect default, as the JavaScript client's: below 1, 2, 4, 8,
    /// 16 s, then 30 s at most.
    pub const RECONNECT: Backoff = Backoff {
        base: Duration::from_secs(1),
        max: Duration::from_secs(30),
    };

    /// The command retry default: below 0.5, 1, 2, 4 s, then 8 s at most.
    pub const COMMAND: Backoff = Backoff {
        base: Duration::from_millis(500),
        max: Duration::from_secs(8),
    };

    /// The ceiling of retry `attempt` (0 for the first retry).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.min(20);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The wait before retry `attempt` (0 for the first retry): random
    /// below [`ceiling`](Self::ceiling).
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, random_unit())
    }

    /// The wait for a given random number in `[0, 1)`.
    pub fn delay_with(&self, attempt: u32, random: f64) -> Duration {
        self.ceiling(attempt).mul_f64(random.clamp(0.0, 1.0))
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::RECONNECT
    }
}

/// A random number in `[0, 1)`, from the operating system's generator (the
/// one behind `Uuid::new_v4`, so no other dependency is needed).
fn random_unit() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() as u64 >> 11;
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_doubles_up_to_the_maximum() {
        let b = Backoff::RECONNECT;
        let secs: Vec<u64> = (0..7).map(|n| b.ceiling(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn a_delay_stays_below_its_ceiling() {
        let b = Backoff::COMMAND;
        for n in 0..10 {
            for _ in 0..50 {
                assert!(b.delay(n) < b.ceiling(n) || b.ceiling(n).is_zero());
            }
        }
        assert_eq!(b.delay_with(2, 0.5), Duration::from_secs(1));
        assert_eq!(b.delay_with(0, 0.0), Duration::ZERO);
    }

    #[test]
    fn random_numbers_are_in_the_unit_interval_and_vary() {
        let draws: Vec<f64> = (0..100).map(|_| random_unit()).collect();
        assert!(draws.iter().all(|r| (0.0..1.0).contains(r)));
        assert!(draws.iter().any(|r| *r != draws[0]));
    }
}
