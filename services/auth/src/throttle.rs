//! Login and registration throttling, in memory.
//!
//! Two mechanisms: token buckets per client address (registrations, failed logins),
//! and per-account backoff after repeated failed logins (exponential, capped, never a
//! permanent lockout). State is per replica; with N replicas an attacker gets at most
//! N times the budget, which still defeats online guessing.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many keys a table holds before idle entries are swept.
const SWEEP_AT: usize = 10_000;

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

    fn acquire_at(&self, key: &K, now: Instant) -> Result<(), u64> {
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

struct Failures {
    count: u32,
    last: Instant,
}

/// Per-account backoff: after `free_failures` failed logins, each further attempt
/// waits `base_delay * 2^(extra failures)`, capped at `max_delay`. Failures are
/// forgotten `max_delay` after the last one, and on a successful login.
pub struct AccountBackoff {
    free_failures: u32,
    base_delay: Duration,
    max_delay: Duration,
    accounts: Mutex<HashMap<String, Failures>>,
}

impl AccountBackoff {
    /// A backoff with the given thresholds.
    pub fn new(free_failures: u32, base_delay: Duration, max_delay: Duration) -> Self {
        Self {
            free_failures,
            base_delay,
            max_delay,
            accounts: Mutex::new(HashMap::new()),
        }
    }

    fn delay_after(&self, count: u32) -> Duration {
        if count < self.free_failures {
            return Duration::ZERO;
        }
        let exp = (count - self.free_failures).min(16);
        self.base_delay.saturating_mul(1 << exp).min(self.max_delay)
    }

    /// `Err(seconds)` while the account must wait.
    pub fn check(&self, account: &str) -> Result<(), u64> {
        self.check_at(account, Instant::now())
    }

    fn check_at(&self, account: &str, now: Instant) -> Result<(), u64> {
        let map = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        let Some(f) = map.get(account) else {
            return Ok(());
        };
        let until = f.last + self.delay_after(f.count);
        if now < until {
            Err(until.duration_since(now).as_secs().max(1))
        } else {
            Ok(())
        }
    }

    /// Records a failed login.
    pub fn failed(&self, account: &str) {
        self.failed_at(account, Instant::now());
    }

    fn failed_at(&self, account: &str, now: Instant) {
        let mut map = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= SWEEP_AT {
            let horizon = self.max_delay;
            map.retain(|_, f| now.duration_since(f.last) < horizon);
        }
        let entry = map.entry(account.to_owned()).or_insert(Failures {
            count: 0,
            last: now,
        });
        if now.duration_since(entry.last) > self.max_delay {
            entry.count = 0;
        }
        entry.count += 1;
        entry.last = now;
    }

    /// Forgets the account's failures after a successful login.
    pub fn succeeded(&self, account: &str) {
        self.accounts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(account);
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

    #[test]
    fn backoff_grows_and_is_capped() {
        let b = AccountBackoff::new(3, Duration::from_secs(10), Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..2 {
            b.failed_at("alice", t0);
        }
        assert!(b.check_at("alice", t0).is_ok());
        b.failed_at("alice", t0);
        assert_eq!(b.check_at("alice", t0), Err(10));
        b.failed_at("alice", t0);
        assert_eq!(b.check_at("alice", t0), Err(20));
        for _ in 0..10 {
            b.failed_at("alice", t0);
        }
        assert_eq!(b.check_at("alice", t0), Err(60));
        // Never permanent.
        assert!(b.check_at("alice", t0 + Duration::from_secs(61)).is_ok());
        assert!(b.check_at("bob", t0).is_ok());
        b.succeeded("alice");
        assert!(b.check_at("alice", t0).is_ok());
    }
}
