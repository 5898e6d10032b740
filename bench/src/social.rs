//! The social mix, in DeathStarBench's shape: 60% home timelines (`GET /feed`), 30% user
//! timelines (`GET /users/{id}/posts`), 10% new posts (`POST /posts`), each by a random
//! signed-in person of a seeded platform (`agora seed`: power-law followers, so a few
//! feeds and timelines are much larger than the rest).

use crate::load::{Request, Workload};
use agora::seed::plan::{Plan, Rng, Sizes};
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use reqwest::Method;
use std::sync::Arc;

/// A signed-in person.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub username: String,
    pub token: Arc<str>,
}

/// Why accounts could not be signed in.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("logging in {username}")]
    Request {
        username: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("logging in {username}: HTTP {status}: {body}")]
    Refused {
        username: String,
        status: u16,
        body: String,
    },
    #[error("logging in {username}: the answer has no {field}")]
    Answer {
        username: String,
        field: &'static str,
    },
}

/// Signs one person in. Sign-in is set-up, not measurement: an answer that says "try
/// again" (502/503/504, e.g. on a machine busy with a parallel build) is retried twice,
/// with a line on stderr so a flaky platform still shows in the log.
async fn login(
    client: &reqwest::Client,
    base: &str,
    username: String,
    password: &str,
) -> Result<Account, LoginError> {
    const ATTEMPTS: u32 = 3;
    let mut attempt = 1;
    loop {
        match login_once(client, base, &username, password).await {
            Err(LoginError::Refused { status, body, .. })
                if matches!(status, 502..=504) && attempt < ATTEMPTS =>
            {
                eprintln!("agora-bench: logging in {username}: HTTP {status} ({body}), retrying");
                tokio::time::sleep(std::time::Duration::from_millis(500 * u64::from(attempt)))
                    .await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

async fn login_once(
    client: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
) -> Result<Account, LoginError> {
    let request_error = |source| LoginError::Request {
        username: username.to_owned(),
        source,
    };
    let response = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"login": username, "password": password}))
        .send()
        .await
        .map_err(request_error)?;
    let status = response.status().as_u16();
    if status != 200 {
        // The problem+json detail says why (rate limit, unavailable dependency, ...).
        let mut body = response.text().await.unwrap_or_default();
        body.truncate(body.floor_char_boundary(300));
        return Err(LoginError::Refused {
            username: username.to_owned(),
            status,
            body,
        });
    }
    let body: serde_json::Value = response.json().await.map_err(request_error)?;
    let field = |pointer: &str, field| {
        body.pointer(pointer)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or(LoginError::Answer {
                username: username.to_owned(),
                field,
            })
    };
    Ok(Account {
        id: field("/user/id", "user.id")?,
        token: field("/access_token", "access_token")?.into(),
        username: username.to_owned(),
    })
}

/// Signs in the people `agora seed --seed <seed> --users <users>` registered (their
/// usernames come from the same plan), `concurrency` at a time.
pub async fn seeded_accounts(
    client: &reqwest::Client,
    base: &str,
    seed: u32,
    users: usize,
    password: &str,
    concurrency: usize,
) -> Result<Vec<Account>, LoginError> {
    let plan = Plan::new(
        seed,
        Sizes {
            users,
            posts_per_user: 0,
        },
    );
    stream::iter(plan.people)
        .map(|person| login(client, base, person.username, password))
        .buffered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Signs in the given usernames.
pub async fn accounts(
    client: &reqwest::Client,
    base: &str,
    usernames: &[String],
    password: &str,
) -> Result<Vec<Account>, LoginError> {
    let mut out = Vec::with_capacity(usernames.len());
    for username in usernames {
        out.push(login(client, base, username.clone(), password).await?);
    }
    Ok(out)
}

/// The request kinds of the mix, in report order.
pub const KINDS: [&str; 3] = ["feed", "user_timeline", "compose"];

/// 60/30/10 home timeline, user timeline, new post, by random people.
pub struct SocialMix {
    base: String,
    accounts: Vec<Account>,
    seed: u64,
    /// Posts per page, as DeathStarBench reads ten.
    page: u32,
}

impl SocialMix {
    pub fn new(base: &str, accounts: Vec<Account>, seed: u64) -> Self {
        SocialMix {
            base: base.trim_end_matches('/').to_owned(),
            accounts,
            seed,
            page: 10,
        }
    }
}

impl Workload for SocialMix {
    fn kinds(&self) -> &[&'static str] {
        &KINDS
    }

    fn next(&self, i: u64) -> Request {
        // One small generator per request: the i-th request is the same in every run.
        let mut rng = Rng::new(self.seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let n = self.accounts.len();
        let caller = &self.accounts[rng.below(n)];
        let roll = rng.below(100);
        let (kind, method, url, body) = if roll < 60 {
            (
                0,
                Method::GET,
                format!("{}/api/v1/feed?limit={}", self.base, self.page),
                None,
            )
        } else if roll < 90 {
            let author = &self.accounts[rng.below(n)];
            (
                1,
                Method::GET,
                format!(
                    "{}/api/v1/users/{}/posts?limit={}",
                    self.base, author.id, self.page
                ),
                None,
            )
        } else {
            let text = format!(
                "{{\"text\":\"bench post {i} from {}\",\"visibility\":\"public\"}}",
                caller.username
            );
            (
                2,
                Method::POST,
                format!("{}/api/v1/posts", self.base),
                Some(("application/json", Bytes::from(text))),
            )
        };
        Request {
            kind,
            method,
            url,
            token: Some(caller.token.clone()),
            body,
        }
    }
}

/// One request kind of the mix alone (the feed, say), by random people.
pub struct OnlyFeed {
    pub base: String,
    pub accounts: Vec<Account>,
}

impl Workload for OnlyFeed {
    fn kinds(&self) -> &[&'static str] {
        &["feed"]
    }

    fn next(&self, i: u64) -> Request {
        let caller = &self.accounts[(i as usize) % self.accounts.len()];
        Request {
            kind: 0,
            method: Method::GET,
            url: format!("{}/api/v1/feed?limit=10", self.base),
            token: Some(caller.token.clone()),
            body: None,
        }
    }
}
