//! Failed-login throttling that an attacker cannot turn against the account's owner.
//!
//! Backoff is kept per (account, client address): a stranger who knows a username
//! and keeps failing only slows down their own address, never the owner's. Against
//! guessing from many addresses, each account also has a much larger global budget of
//! failures per hour; only a distributed attack that spends it can delay the owner,
//! and then for at most the refill time. Accounts are keyed by a keyed hash of the
//! account id (or, for unknown logins, of the normalised login), so keys are small
//! and fixed-size whatever a client sends, and tables are bounded
//! ([`BoundedMap`]), so a flood of distinct names cannot grow memory.

use agora_common::ratelimit::{BoundedMap, DEFAULT_CAPACITY, RateLimiter};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// What a login names: an existing account, or a login no account has.
pub enum Subject<'a> {
    /// An account, by id.
    Account(Uuid),
    /// A login that matched no account (throttled the same way, so a 429 does not
    /// tell which accounts exist).
    Unknown(&'a str),
}

/// A throttle key for a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubjectKey(u64);

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// Thresholds of [`LoginThrottle`].
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// Failures a (subject, address) pair may have before backoff starts.
    pub free_failures: u32,
    /// First backoff delay, doubled with each further failure.
    pub base_delay: Duration,
    /// Longest backoff (and how long failures are remembered).
    pub max_delay: Duration,
    /// Failures per hour an account may collect from all addresses together.
    pub account_failures_per_hour: u32,
}

/// See the module documentation.
pub struct LoginThrottle {
    thresholds: Thresholds,
    pairs: BoundedMap<(SubjectKey, IpAddr), Failures>,
    accounts: RateLimiter<SubjectKey>,
    hasher: RandomState,
}

impl LoginThrottle {
    /// A throttle with these thresholds.
    pub fn new(thresholds: Thresholds) -> Self {
        Self {
            thresholds,
            pairs: BoundedMap::new(DEFAULT_CAPACITY),
            accounts: RateLimiter::new(
                thresholds.account_failures_per_hour,
                Duration::from_secs(3600),
            ),
            hasher: RandomState::new(),
        }
    }

    /// The key of a subject (random per process: clients cannot aim for collisions).
    pub fn key(&self, subject: Subject<'_>) -> SubjectKey {
        SubjectKey(match subject {
            Subject::Account(id) => self.hasher.hash_one((0u8, id)),
            Subject::Unknown(login) => self.hasher.hash_one((1u8, login)),
        })
    }

    fn delay_after(&self, count: u32) -> Duration {
        let t = &self.thresholds;
        if count < t.free_failures {
            return Duration::ZERO;
        }
        let exp = (count - t.free_failures).min(16);
        t.base_delay.saturating_mul(1 << exp).min(t.max_delay)
    }

    /// Starts a login attempt on `key` from `client`: `Err(seconds)` while it must
    /// wait. The attempt is counted as a failure at once (and the account's budget
    /// spent), so concurrent attempts cannot all slip through before any failure is
    /// recorded; [`succeeded`](Self::succeeded) takes it back.
    pub fn attempt(&self, key: SubjectKey, client: IpAddr) -> Result<(), u64> {
        self.attempt_at(key, client, Instant::now())
    }

    fn attempt_at(&self, key: SubjectKey, client: IpAddr, now: Instant) -> Result<(), u64> {
        self.accounts.acquire_at(&key, now)?;
        let horizon = self.thresholds.max_delay;
        let waited = self.pairs.with(
            &(key, client),
            || Failures {
                count: 0,
                last: now,
            },
            |f| {
                if now.saturating_duration_since(f.last) > horizon {
                    f.count = 0;
                }
                let wait = (f.last + self.delay_after(f.count)).saturating_duration_since(now);
                if wait.is_zero() {
                    f.count = f.count.saturating_add(1);
                    f.last = now;
                }
                wait
            },
        );
        if waited.is_zero() {
            Ok(())
        } else {
            self.accounts.refund(&key);
            Err(waited.as_secs().max(1))
        }
    }

    /// The attempt succeeded: forget `client`'s failures on `key` and give back the
    /// account's budget.
    pub fn succeeded(&self, key: SubjectKey, client: IpAddr) {
        self.pairs.update(&(key, client), |f| f.count = 0);
        self.accounts.refund(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(Thresholds {
            free_failures: 3,
            base_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(60),
            account_failures_per_hour: 50,
        })
    }

    const ATTACKER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 66));
    const OWNER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 7));

    #[test]
    fn backoff_grows_per_address_and_is_capped() {
        let t = throttle();
        let alice = t.key(Subject::Account(Uuid::now_v7()));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(t.attempt_at(alice, ATTACKER, t0).is_ok());
        }
        assert_eq!(t.attempt_at(alice, ATTACKER, t0), Err(10));
        assert!(
            t.attempt_at(alice, ATTACKER, t0 + Duration::from_secs(10))
                .is_ok()
        );
        assert_eq!(
            t.attempt_at(alice, ATTACKER, t0 + Duration::from_secs(10)),
            Err(20)
        );
        let mut now = t0 + Duration::from_secs(10);
        for _ in 0..6 {
            now += Duration::from_secs(61);
            // Each wait ends, then the next failure doubles it, up to the cap.
            let _ = t.attempt_at(alice, ATTACKER, now);
        }
        // Never permanent: after the cap, the pair may try again.
        assert!(
            t.attempt_at(alice, ATTACKER, now + Duration::from_secs(61))
                .is_ok()
        );
        // The owner, from their own address, is not held back by the stranger.
        assert!(t.attempt_at(alice, OWNER, t0).is_ok());
        t.succeeded(alice, ATTACKER);
        assert!(
            t.attempt_at(alice, ATTACKER, now + Duration::from_secs(62))
                .is_ok()
        );
    }

    #[test]
    fn concurrent_attempts_are_counted_before_they_finish() {
        let t = throttle();
        let bob = t.key(Subject::Account(Uuid::now_v7()));
        // 100 attempts in flight at once from one address: only the free ones pass.
        let passed = (0..100)
            .filter(|_| t.attempt(bob, ATTACKER).is_ok())
            .count();
        assert_eq!(passed, 3);
        // A success gives its attempt back.
        let carol = t.key(Subject::Account(Uuid::now_v7()));
        for _ in 0..10 {
            assert!(t.attempt(carol, OWNER).is_ok());
            t.succeeded(carol, OWNER);
        }
    }

    #[test]
    fn distributed_guessing_spends_the_account_budget() {
        let t = throttle();
        let bob = t.key(Subject::Account(Uuid::now_v7()));
        for i in 0..50u8 {
            let addr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, i));
            assert!(t.attempt(bob, addr).is_ok());
        }
        // 50 addresses, one failure each: every address is now refused for bob.
        assert!(t.attempt(bob, OWNER).is_err());
        // Other accounts are unaffected.
        assert!(t.attempt(t.key(Subject::Unknown("carol")), OWNER).is_ok());
    }

    #[test]
    fn unknown_logins_are_fixed_size_keys() {
        let t = throttle();
        let long = "x".repeat(10_000);
        assert_eq!(
            t.key(Subject::Unknown(&long)),
            t.key(Subject::Unknown(&long))
        );
        assert_ne!(t.key(Subject::Unknown("a")), t.key(Subject::Unknown("b")));
        let id = Uuid::now_v7();
        assert_ne!(
            t.key(Subject::Account(id)),
            t.key(Subject::Unknown(&id.to_string()))
        );
    }
}
