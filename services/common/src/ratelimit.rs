//! Token-bucket rate limiting per key (client address, account), in memory.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many keys a table holds before idle entries are swept.
pub const SWEEP_AT: usize = 10_000;

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// A token bucket per key: `capacity` requests at once, refilled at `capacity` per
/// `period`.
pub struct RateLimiter<K> {
    capacity: f64,
    per_sec: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Eq + Hash + Clone> RateLimiter<K> {
    /// A limiter allowing `capacity` events per `period`.
    pub fn new(capacity: u32, period: Duration) -> Self {
        let capacity = f64::from(capacity.max(1));
        Self {
            capacity,
            per_sec: capacity / period.as_secs_f64().max(0.001),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn with_bucket<T>(&self, key: &K, now: Instant, f: impl FnOnce(&mut Bucket) -> T) -> T {
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= SWEEP_AT {
            let (cap, rate) = (self.capacity, self.per_sec);
            map.retain(|_, b| b.tokens + now.duration_since(b.updated).as_secs_f64() * rate < cap);
        }
        let bucket = map.entry(key.clone()).or_insert(Bucket {
            tokens: self.capacity,
            updated: now,
        });
        bucket.tokens = (bucket.tokens
            + now.duration_since(bucket.updated).as_secs_f64() * self.per_sec)
            .min(self.capacity);
        bucket.updated = now;
        f(bucket)
    }

    fn wait_for_one(&self, tokens: f64) -> u64 {
        ((1.0 - tokens) / self.per_sec).ceil().max(1.0) as u64
    }

    /// Takes one token, or tells how many seconds until one is available.
    pub fn acquire(&self, key: &K) -> Result<(), u64> {
        self.acquire_at(key, Instant::now())
    }

    /// [`acquire`](Self::acquire) at a given instant (tests).
    pub fn acquire_at(&self, key: &K, now: Instant) -> Result<(), u64> {
        self.with_bucket(key, now, |b| {
            if b.tokens >= 1.0 {
                b.tokens -= 1.0;
                Ok(())
            } else {
                Err(self.wait_for_one(b.tokens))
            }
        })
    }

    /// Checks a token is available without taking it (for budgets spent only on failure).
    pub fn check(&self, key: &K) -> Result<(), u64> {
        self.with_bucket(key, Instant::now(), |b| {
            if b.tokens >= 1.0 {
                Ok(())
            } else {
                Err(self.wait_for_one(b.tokens))
            }
        })
    }

    /// Spends a token (may go into debt down to zero).
    pub fn spend(&self, key: &K) {
        self.with_bucket(key, Instant::now(), |b| {
            b.tokens = (b.tokens - 1.0).max(0.0)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill() {
        let limiter = RateLimiter::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(limiter.acquire_at(&"ip", t0).is_ok());
        assert!(limiter.acquire_at(&"ip", t0).is_ok());
        assert_eq!(limiter.acquire_at(&"ip", t0), Err(30));
        assert!(limiter.acquire_at(&"other", t0).is_ok());
        assert!(
            limiter
                .acquire_at(&"ip", t0 + Duration::from_secs(31))
                .is_ok()
        );
    }
}
