//! [`TokenBucket`]: a rate in bytes per second and a depth in bytes, in exact integer arithmetic.
//!
//! Tokens are kept in byte-nanoseconds (bytes × 10⁹), so a refill of `elapsed` nanoseconds at
//! `rate` bytes per second adds exactly `elapsed × rate` of them: no rounding, no drift, and the
//! same answer in the kernel and in the simulator's virtual time.

/// Nanoseconds per second: the scale of the token count.
const NANOS: u128 = 1_000_000_000;

/// A token bucket.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TokenBucket {
    rate: u128,
    depth: u128,
    tokens: u128,
    last: u64,
}

impl TokenBucket {
    /// A full bucket of `depth_bytes` filling at `rate_bytes_per_second`, as of `now` (ns).
    pub fn new(rate_bytes_per_second: u64, depth_bytes: u64, now: u64) -> Self {
        let depth = u128::from(depth_bytes) * NANOS;
        Self { rate: u128::from(rate_bytes_per_second), depth, tokens: depth, last: now }
    }

    /// Adds the tokens earned since the last refill (time never runs backwards here).
    pub fn refill(&mut self, now: u64) {
        let elapsed = u128::from(now.saturating_sub(self.last));
        self.last = self.last.max(now);
        self.tokens = self.tokens.saturating_add(elapsed.saturating_mul(self.rate)).min(self.depth);
    }

    /// Takes `bytes` worth of tokens if they are there.
    pub fn try_take(&mut self, bytes: u64) -> bool {
        let cost = u128::from(bytes) * NANOS;
        if cost > self.tokens {
            return false;
        }
        self.tokens -= cost;
        true
    }

    /// Gives back `bytes` worth of tokens (a packet that was paid for but never sent).
    pub fn refund(&mut self, bytes: u64) {
        self.tokens = self.tokens.saturating_add(u128::from(bytes) * NANOS).min(self.depth);
    }

    /// Whole bytes available now (as of the last refill).
    pub fn available(&self) -> u64 {
        u64::try_from(self.tokens / NANOS).unwrap_or(u64::MAX)
    }
}

