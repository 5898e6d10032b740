//! Refusing access tokens before they expire. Tokens are verified offline, so an
//! account that is being erased, or whose password just changed, would keep working
//! until its tokens expire (15 minutes). The auth service records a revocation instead
//! — "tokens of this person below this version" — and every process that verifies
//! tokens follows the list of live revocations (kept until every token they cover has
//! expired), asking again every second.
//!
//! The version is the token's `ver` claim: the account's token version when it was
//! issued. A password change raises it, so the tokens issued before are refused and a
//! sign-in right after the change is not (no clock comparison, so no `iat` resolution
//! issue); an erasure refuses every version. The check costs one atomic load while no
//! revocation is live, a map lookup otherwise.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use uuid::Uuid;

/// The auth service's internal route that lists live revocations.
pub const REVOCATIONS_PATH: &str = "/internal/revocations";

/// Every version: what an erasure refuses.
pub const ALL_VERSIONS: i64 = i64::MAX;

/// How often a follower asks for new revocations (the contract: refused within 2 s).
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// How far before the previous answer's `now` each poll reaches back: a revocation's
/// transaction may commit a little after the time it recorded.
pub const OVERLAP: chrono::Duration = chrono::Duration::seconds(30);

/// One revocation: the person's tokens whose `ver` is below `below_version` are refused
/// until `until` (when the last of them has expired).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Revocation {
    /// The account.
    pub user_id: Uuid,
    /// Tokens with a lower `ver` are refused ([`ALL_VERSIONS`]: all).
    pub below_version: i64,
    /// When the revocation stops mattering.
    pub until: DateTime<Utc>,
}

/// `GET /internal/revocations?since=…`: the live revocations recorded after `since`
/// (all live ones without it), and the time to ask from next.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RevocationFeed {
    /// The auth database's time when it answered.
    pub now: DateTime<Utc>,
    /// The revocations.
    pub revocations: Vec<Revocation>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    below: i64,
    until: DateTime<Utc>,
}

/// The live revocations a process knows of.
#[derive(Debug, Default)]
pub struct Revocations {
    entries: RwLock<HashMap<Uuid, Entry>>,
    /// Some entry exists: the common path reads only this.
    any: AtomicBool,
    /// A follower is attached: readiness waits for its first answer.
    followed: AtomicBool,
    /// The first answer arrived.
    loaded: AtomicBool,
}

impl Revocations {
    /// Whether a token of `user` with version `ver` is refused.
    pub fn refuses(&self, user: Uuid, ver: i64) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return false;
        }
        let entries = self
            .entries
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries
            .get(&user)
            .is_some_and(|e| ver < e.below && Utc::now() < e.until)
    }

    /// Takes in revocations (repeats are harmless: the strictest one wins), and forgets
    /// those that no longer matter.
    pub fn apply(&self, revocations: &[Revocation]) {
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for r in revocations {
            let entry = entries.entry(r.user_id).or_insert(Entry {
                below: r.below_version,
                until: r.until,
            });
            entry.below = entry.below.max(r.below_version);
            entry.until = entry.until.max(r.until);
        }
        let now = Utc::now();
        entries.retain(|_, e| e.until > now);
        self.any.store(!entries.is_empty(), Ordering::Release);
        self.loaded.store(true, Ordering::Release);
    }

    /// Whether the process may serve: no follower, or its first answer is in.
    pub fn ready(&self) -> bool {
        !self.followed.load(Ordering::Acquire) || self.loaded.load(Ordering::Acquire)
    }

    /// Follows a source of revocations: `fetch(since)` every [`POLL_EVERY`], from
    /// start-up on (a failure keeps what is known and is retried).
    pub fn follow<F, Fut, E>(self: &Arc<Self>, service: &'static str, fetch: F)
    where
        F: Fn(Option<DateTime<Utc>>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<RevocationFeed, E>> + Send,
        E: std::fmt::Display,
    {
        self.followed.store(true, Ordering::Release);
        let this = self.clone();
        tokio::spawn(crate::telemetry::in_service(service, async move {
            let mut since: Option<DateTime<Utc>> = None;
            let mut failing = false;
            let mut every = tokio::time::interval(POLL_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                match fetch(since).await {
                    Ok(feed) => {
                        this.apply(&feed.revocations);
                        since = Some(feed.now - OVERLAP);
                        if std::mem::take(&mut failing) {
                            tracing::info!("token revocations reachable again");
                        }
                    }
                    // Once per outage, not every second.
                    Err(error) if !failing => {
                        failing = true;
                        tracing::warn!(%error, "cannot read token revocations; keeping those known");
                    }
                    Err(_) => {}
                }
            }
        }));
    }

    /// Follows the auth service's list at `auth_url` (its origin, e.g.
    /// `http://auth:8080`) with the service credential. A client that cannot be built
    /// leaves the process unready, and says why.
    pub fn follow_remote(
        self: &Arc<Self>,
        service: &'static str,
        auth_url: &str,
        token: crate::client::ServiceToken,
    ) {
        self.followed.store(true, Ordering::Release);
        let settings = crate::client::ClientSettings {
            service_token: Some(token),
            timeout: Duration::from_secs(2),
            ..Default::default()
        };
        let client = match crate::client::ServiceClient::new("auth", auth_url, settings) {
            Ok(client) => Arc::new(client.without_retries()),
            Err(error) => {
                tracing::error!(error = %crate::problem::Chain(&error), "cannot follow token revocations");
                return;
            }
        };
        self.follow(service, move |since| {
            let client = client.clone();
            async move {
                let path = match since {
                    Some(at) => format!(
                        "{REVOCATIONS_PATH}?since={}",
                        at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                    ),
                    None => REVOCATIONS_PATH.to_owned(),
                };
                client
                    .get::<RevocationFeed>(&path, crate::client::Credential::Service, None)
                    .await
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revocation(user: Uuid, below: i64, secs: i64) -> Revocation {
        Revocation {
            user_id: user,
            below_version: below,
            until: Utc::now() + chrono::Duration::seconds(secs),
        }
    }

    #[test]
    fn refuses_lower_versions_until_the_revocation_ends() {
        let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
        let list = Revocations::default();
        assert!(!list.refuses(alice, 0));
        list.apply(&[revocation(alice, 3, 60)]);
        assert!(list.refuses(alice, 2));
        assert!(!list.refuses(alice, 3), "a token issued after the change");
        assert!(!list.refuses(bob, 0));
        // A repeat, or an older weaker one, never loosens it.
        list.apply(&[revocation(alice, 1, 10)]);
        assert!(list.refuses(alice, 2));
        list.apply(&[revocation(alice, ALL_VERSIONS, 60)]);
        assert!(list.refuses(alice, 3));
        // Past `until`, nothing is refused and the entry is forgotten.
        list.apply(&[revocation(bob, ALL_VERSIONS, -1)]);
        assert!(!list.refuses(bob, 0));
    }

    #[test]
    fn is_ready_once_a_followed_list_has_answered() {
        let list = Revocations::default();
        assert!(list.ready());
        list.followed.store(true, Ordering::Release);
        assert!(!list.ready());
        list.apply(&[]);
        assert!(list.ready());
    }
}
