//! Failed-login throttling that an attacker cannot turn against the account's owner,
//! and that holds whatever the number of auth replicas.
//!
//! Backoff is kept per (account, client address): a stranger who knows a username
//! and keeps failing only slows down their own address, never the owner's. Against
//! guessing from many addresses, each account also has a much larger global budget of
//! failures per hour. That budget is the accepted trade-off: a distributed attack that
//! keeps spending it (one failure per refill interval, from a few addresses) keeps
//! refusing every login of that account, the owner's too, for as long as it goes on;
//! the alternative is unlimited distributed guessing. When the attack stops, the
//! account is usable again within one refill interval. Both live in the auth database, which sees
//! every attempt of every replica (`login_attempt` and `login_succeeded` in the
//! migrations: one statement each, rows locked in one order). Subjects are SHA-256
//! digests of the account id (or, for unknown logins, of the normalised login), so
//! rows are fixed-size whatever a client sends; stale rows are purged hourly.

use agora_common::prepared::Statement;
use diesel::sql_types::{BigInt, Bytea, Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::LazyLock;
use std::time::Duration;
use uuid::Uuid;

/// What a login names: an existing account, or a login no account has.
pub enum Subject<'a> {
    /// An account, by id.
    Account(Uuid),
    /// A login that matched no account (throttled the same way, so a 429 does not
    /// tell which accounts exist).
    Unknown(&'a str),
}

/// A throttle key for a subject: the digest stored in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubjectKey([u8; 32]);

/// Thresholds of [`LoginThrottle`].
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// Failures a (subject, address) pair may have before backoff starts.
    pub free_failures: u32,
    /// First backoff delay, doubled with each further failure.
    pub base_delay: Duration,
    /// Longest backoff (failures are remembered for twice as long).
    pub max_delay: Duration,
    /// Failures per hour an account may collect from all addresses together.
    pub account_failures_per_hour: u32,
}

/// See the module documentation.
pub struct LoginThrottle {
    thresholds: Thresholds,
}

#[derive(diesel::QueryableByName)]
struct Wait {
    #[diesel(sql_type = BigInt)]
    wait_ms: i64,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn int(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl LoginThrottle {
    /// A throttle with these thresholds.
    pub fn new(thresholds: Thresholds) -> Self {
        Self { thresholds }
    }

    /// The key of a subject.
    pub fn key(&self, subject: Subject<'_>) -> SubjectKey {
        let mut digest = Sha256::new();
        match subject {
            Subject::Account(id) => {
                digest.update(b"account\0");
                digest.update(id.as_bytes());
            }
            Subject::Unknown(login) => {
                digest.update(b"login\0");
                digest.update(login.as_bytes());
            }
        }
        SubjectKey(digest.finalize().into())
    }

    /// Starts a login attempt on `key` from `client`: `Ok(Err(seconds))` while it must
    /// wait. The attempt is counted as a failure at once (and the account's budget
    /// spent), so concurrent attempts, on any replica, cannot all slip through before
    /// any failure is recorded; [`succeeded`](Self::succeeded) takes it back.
    pub async fn attempt(
        &self,
        conn: &mut AsyncPgConnection,
        key: SubjectKey,
        client: IpAddr,
    ) -> Result<Result<(), u64>, diesel::result::Error> {
        self.attempt_at(conn, key, client, None).await
    }

    async fn attempt_at(
        &self,
        conn: &mut AsyncPgConnection,
        key: SubjectKey,
        client: IpAddr,
        now: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Result<(), u64>, diesel::result::Error> {
        let t = &self.thresholds;
        // Prepared once per connection (a function call: its plan never depends on the
        // values); `sql_query` would parse, describe and plan it on every login.
        static ATTEMPT: LazyLock<Statement> = LazyLock::new(|| {
            Statement::new("SELECT login_attempt($1, $2, $3, $4, $5, $6, $7) AS wait_ms")
        });
        let wait = ATTEMPT
            .query()
            .bind::<Bytea, _>(&key.0[..])
            .bind::<Text, _>(client.to_string())
            .bind::<Nullable<Timestamptz>, _>(now)
            .bind::<Integer, _>(int(t.free_failures))
            .bind::<BigInt, _>(millis(t.base_delay))
            .bind::<BigInt, _>(millis(t.max_delay))
            .bind::<Integer, _>(int(t.account_failures_per_hour.max(1)))
            .get_result::<Wait>(conn)
            .await?
            .wait_ms;
        Ok(match u64::try_from(wait) {
            Ok(0) | Err(_) => Ok(()),
            Ok(ms) => Err(ms.div_ceil(1000).max(1)),
        })
    }

    /// The attempt succeeded: forget `client`'s failures on `key` and give back the
    /// account's budget.
    pub async fn succeeded(
        &self,
        conn: &mut AsyncPgConnection,
        key: SubjectKey,
        client: IpAddr,
    ) -> Result<(), diesel::result::Error> {
        static SUCCEEDED: LazyLock<Statement> =
            LazyLock::new(|| Statement::new("SELECT login_succeeded($1, $2, $3)"));
        SUCCEEDED
            .query()
            .bind::<Bytea, _>(&key.0[..])
            .bind::<Text, _>(client.to_string())
            .bind::<Integer, _>(int(self.thresholds.account_failures_per_hour.max(1)))
            .execute(conn)
            .await
            .map(|_| ())
    }

    /// Deletes what no longer throttles anyone: pairs whose failures are forgotten and
    /// budgets that have refilled. Returns the rows deleted.
    pub async fn purge(
        &self,
        conn: &mut AsyncPgConnection,
    ) -> Result<usize, diesel::result::Error> {
        let forgotten = diesel::sql_query(
            "DELETE FROM login_failures WHERE last_at < now() - 2 * $1 * interval '1 millisecond'",
        )
        .bind::<BigInt, _>(millis(self.thresholds.max_delay))
        .execute(conn)
        .await?;
        let refilled = diesel::sql_query(
            "DELETE FROM login_budgets WHERE refilled_at < now() - interval '1 hour'",
        )
        .execute(conn)
        .await?;
        Ok(forgotten + refilled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_common::db::{advisory_lock_key, migrate, pool};
    use agora_common::testing::fresh_database;
    use chrono::{DateTime, Utc};

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

    async fn database(name: &str) -> agora_common::db::DbPool {
        let url = fresh_database(name).await;
        migrate(&url, crate::MIGRATIONS, advisory_lock_key("auth"))
            .await
            .unwrap();
        pool(&url, 4).unwrap()
    }

    fn at(t0: DateTime<Utc>, secs: i64) -> Option<DateTime<Utc>> {
        Some(t0 + chrono::Duration::seconds(secs))
    }

    #[actix_web::test]
    async fn backoff_grows_per_address_and_is_capped() {
        let pool = database("throttle_backoff").await;
        let conn = &mut pool.get().await.unwrap();
        let t = throttle();
        let alice = t.key(Subject::Account(Uuid::now_v7()));
        let t0 = Utc::now();
        for _ in 0..3 {
            assert_eq!(
                t.attempt_at(conn, alice, ATTACKER, at(t0, 0))
                    .await
                    .unwrap(),
                Ok(())
            );
        }
        assert_eq!(
            t.attempt_at(conn, alice, ATTACKER, at(t0, 0))
                .await
                .unwrap(),
            Err(10)
        );
        assert_eq!(
            t.attempt_at(conn, alice, ATTACKER, at(t0, 10))
                .await
                .unwrap(),
            Ok(())
        );
        assert_eq!(
            t.attempt_at(conn, alice, ATTACKER, at(t0, 10))
                .await
                .unwrap(),
            Err(20)
        );
        let mut now = 10;
        for _ in 0..6 {
            now += 61;
            // Each wait ends, then the next failure doubles it, up to the cap.
            assert_eq!(
                t.attempt_at(conn, alice, ATTACKER, at(t0, now))
                    .await
                    .unwrap(),
                Ok(())
            );
        }
        assert_eq!(
            t.attempt_at(conn, alice, ATTACKER, at(t0, now))
                .await
                .unwrap(),
            Err(60)
        );
        // Never permanent: after the cap, the pair may try again...
        assert_eq!(
            t.attempt_at(conn, alice, ATTACKER, at(t0, now + 61))
                .await
                .unwrap(),
            Ok(())
        );
        // ... once: waiting the cap out does not give the free attempts back.
        assert_eq!(
            t.attempt_at(conn, alice, ATTACKER, at(t0, now + 61))
                .await
                .unwrap(),
            Err(60)
        );
        // The owner, from their own address, is not held back by the stranger.
        assert_eq!(
            t.attempt_at(conn, alice, OWNER, at(t0, now + 61))
                .await
                .unwrap(),
            Ok(())
        );
        t.succeeded(conn, alice, ATTACKER).await.unwrap();
        assert_eq!(
            t.attempt_at(conn, alice, ATTACKER, at(t0, now + 62))
                .await
                .unwrap(),
            Ok(())
        );
    }

    #[actix_web::test]
    async fn concurrent_attempts_on_two_replicas_are_counted_before_they_finish() {
        let pool = database("throttle_concurrent").await;
        // Two replicas: two throttles (nothing in memory) on one database.
        let (one, two) = (throttle(), throttle());
        let id = Uuid::now_v7();
        let bob = one.key(Subject::Account(id));
        // Keys are the same on every replica.
        assert_eq!(bob, two.key(Subject::Account(id)));
        let attempts = (0..40).map(|i| {
            let pool = pool.clone();
            let t = if i % 2 == 0 { &one } else { &two };
            async move {
                let mut conn = pool.get().await.unwrap();
                t.attempt(&mut conn, bob, ATTACKER).await.unwrap()
            }
        });
        let passed = futures_util::future::join_all(attempts)
            .await
            .into_iter()
            .filter(Result::is_ok)
            .count();
        // 40 attempts in flight at once from one address, half on each replica: only
        // the free ones pass, as with one replica.
        assert_eq!(passed, 3);
        // A success gives its attempt back.
        let conn = &mut pool.get().await.unwrap();
        let carol = one.key(Subject::Account(Uuid::now_v7()));
        for _ in 0..10 {
            assert_eq!(one.attempt(conn, carol, OWNER).await.unwrap(), Ok(()));
            two.succeeded(conn, carol, OWNER).await.unwrap();
        }
    }

    #[actix_web::test]
    async fn distributed_guessing_spends_the_account_budget() {
        let pool = database("throttle_budget").await;
        let conn = &mut pool.get().await.unwrap();
        let t = throttle();
        let bob = t.key(Subject::Account(Uuid::now_v7()));
        for i in 0..50u8 {
            let addr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, i));
            assert_eq!(t.attempt(conn, bob, addr).await.unwrap(), Ok(()));
        }
        // 50 addresses, one failure each: every address is now refused for bob, until
        // the budget refills (one failure's worth: 72 s at 50 an hour).
        let wait = t.attempt(conn, bob, OWNER).await.unwrap().unwrap_err();
        assert!((60..=72).contains(&wait), "{wait}");
        // Other accounts are unaffected.
        let carol = t.key(Subject::Unknown("carol"));
        assert_eq!(t.attempt(conn, carol, OWNER).await.unwrap(), Ok(()));
        // Stale rows are purged once they throttle nobody.
        assert_eq!(t.purge(conn).await.unwrap(), 0);
        diesel_async::SimpleAsyncConnection::batch_execute(
            &mut **conn,
            "UPDATE login_failures SET last_at = now() - interval '2 hours';
             UPDATE login_budgets SET refilled_at = now() - interval '2 hours'",
        )
        .await
        .unwrap();
        assert_eq!(t.purge(conn).await.unwrap(), 51 + 2);
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
