//! Per-account backoff after repeated failed logins (exponential, capped, never a
//! permanent lockout); per-address budgets use the shared
//! [`RateLimiter`](agora_common::ratelimit::RateLimiter). State is per replica: with N
//! replicas an attacker gets at most N times the budget, which still defeats online
//! guessing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use agora_common::ratelimit::SWEEP_AT;

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
