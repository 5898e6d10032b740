//! Token-bucket rate limiting per key (client address, account), in memory, in bounded
//! space: a flood of distinct keys evicts the oldest entries instead of growing the
//! table, and no operation holds a lock for more than one shard's O(1) work.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Default number of keys a table keeps (the oldest are evicted beyond it).
pub const DEFAULT_CAPACITY: usize = 65_536;
const SHARDS: usize = 16;

struct Shard<K, V> {
    map: HashMap<K, V>,
    /// Insertion order, for first-in-first-out eviction. Entries are never removed
    /// except by eviction, so this and `map` hold the same keys.
    order: VecDeque<K>,
}

/// A map of at most `capacity` entries, split into independently locked shards.
/// When a shard is full, its oldest entry is evicted: forgetting state is the
/// bounded failure mode (an evicted key starts afresh).
pub struct BoundedMap<K, V> {
    shards: Box<[Mutex<Shard<K, V>>]>,
    per_shard: usize,
    hasher: RandomState,
}

impl<K: Eq + Hash + Clone, V> BoundedMap<K, V> {
    /// A map holding at most about `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    map: HashMap::new(),
                    order: VecDeque::new(),
                })
            })
            .collect();
        Self {
            shards,
            per_shard,
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, key: &K) -> &Mutex<Shard<K, V>> {
        let index = (self.hasher.hash_one(key) as usize) % self.shards.len();
        &self.shards[index]
    }

    /// Runs `f` on the entry of `key`, created by `create` if absent.
    pub fn with<T>(&self, key: &K, create: impl FnOnce() -> V, f: impl FnOnce(&mut V) -> T) -> T {
        let mut shard = self
            .shard(key)
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(value) = shard.map.get_mut(key) {
            return f(value);
        }
        if shard.map.len() >= self.per_shard
            && let Some(oldest) = shard.order.pop_front()
        {
            shard.map.remove(&oldest);
        }
        shard.order.push_back(key.clone());
        f(shard.map.entry(key.clone()).or_insert_with(create))
    }

    /// Runs `f` on the entry of `key` if there is one, without creating it.
    pub fn update<T>(&self, key: &K, f: impl FnOnce(&mut V) -> T) -> Option<T> {
        let mut shard = self
            .shard(key)
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        shard.map.get_mut(key).map(f)
    }

    /// Number of entries (sums the shards; for tests and metrics).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).map.len())
            .sum()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// A token bucket per key: `capacity` requests at once, refilled at `capacity` per
/// `period`.
pub struct RateLimiter<K> {
    capacity: f64,
    per_sec: f64,
    buckets: BoundedMap<K, Bucket>,
}

impl<K: Eq + Hash + Clone> RateLimiter<K> {
    /// A limiter allowing `capacity` events per `period`.
    pub fn new(capacity: u32, period: Duration) -> Self {
        Self::with_capacity(capacity, period, DEFAULT_CAPACITY)
    }

    /// A limiter remembering at most `keys` keys.
    pub fn with_capacity(capacity: u32, period: Duration, keys: usize) -> Self {
        let capacity = f64::from(capacity.max(1));
        Self {
            capacity,
            per_sec: capacity / period.as_secs_f64().max(0.001),
            buckets: BoundedMap::new(keys),
        }
    }

    fn with_bucket<T>(&self, key: &K, now: Instant, f: impl FnOnce(&mut Bucket) -> T) -> T {
        let capacity = self.capacity;
        self.buckets.with(
            key,
            || Bucket {
                tokens: capacity,
                updated: now,
            },
            |bucket| {
                bucket.tokens = (bucket.tokens
                    + now.saturating_duration_since(bucket.updated).as_secs_f64() * self.per_sec)
                    .min(self.capacity);
                bucket.updated = now;
                f(bucket)
            },
        )
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

    /// Gives back a token taken by [`acquire`](Self::acquire) (an attempt that turned
    /// out not to count, e.g. a login that succeeded).
    pub fn refund(&self, key: &K) {
        let capacity = self.capacity;
        self.buckets
            .update(key, |b| b.tokens = (b.tokens + 1.0).min(capacity));
    }

    /// Keys currently remembered.
    pub fn tracked_keys(&self) -> usize {
        self.buckets.len()
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
    fn a_flood_of_distinct_keys_stays_bounded() {
        let limiter = RateLimiter::with_capacity(1, Duration::from_secs(60), 1024);
        for i in 0..100_000u32 {
            let _ = limiter.acquire(&i);
        }
        let kept = limiter.tracked_keys();
        assert!(kept <= 1024 + SHARDS, "{kept} keys kept");
        assert!(kept >= 512, "{kept} keys kept");
    }
}
