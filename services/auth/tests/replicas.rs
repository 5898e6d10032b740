//! Two auth replicas on one database, as the operator's autoscaler runs them: the
//! failed-login throttle is shared, so an attacker gets no more guesses from two
//! replicas than from one, and either replica refreshes the other's tokens.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

use agora_auth::{Config, SigningKeySource};
use agora_common::testing::{self, fresh_database};
use serde_json::{Value, json};

async fn replica(database_url: &str, pem: &str) -> String {
    let mut config = Config::new(
        database_url.to_owned(),
        SigningKeySource::Pem(pem.to_owned()),
    );
    config.limits.account_free_failures = 3;
    config.limits.account_backoff_secs = 60;
    config.limits.registrations_per_minute = 1000;
    config.limits.logins_per_minute = 1000;
    config.limits.failed_logins_per_minute = 1000;
    testing::serve(agora_auth::build(config).await.unwrap()).api
}

async fn post(http: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let reply = http.post(url).json(&body).send().await.unwrap();
    let status = reply.status().as_u16();
    (status, reply.json().await.unwrap_or(Value::Null))
}

#[actix_web::test]
async fn two_replicas_share_the_failed_login_throttle() {
    let url = fresh_database("auth_replicas").await;
    let pem = agora_auth::tokens::generate_pem().unwrap();
    // Started one after the other: both migrate the one database (the second finds
    // nothing to do).
    let one = replica(&url, &pem).await;
    let two = replica(&url, &pem).await;
    let http = reqwest::Client::new();
    let (status, _) = post(
        &http,
        format!("{one}/api/v1/auth/register"),
        json!({"username": "mallory_target", "email": "t@example.org", "password": "right password"}),
    )
    .await;
    assert_eq!(status, 201);

    // Three free failures in all, alternating replicas: the fourth guess, on either
    // replica, waits (with one throttle per replica it would have had six).
    let guess = |base: &String| {
        post(
            &http,
            format!("{base}/api/v1/auth/login"),
            json!({"login": "mallory_target", "password": "wrong guess"}),
        )
    };
    for base in [&one, &two, &one] {
        assert_eq!(guess(base).await.0, 401);
    }
    for base in [&two, &one] {
        let (status, body) = guess(base).await;
        assert_eq!(status, 429, "{body}");
    }
    // Even the right password waits from this address until the backoff ends.
    let (status, _) = post(
        &http,
        format!("{two}/api/v1/auth/login"),
        json!({"login": "mallory_target", "password": "right password"}),
    )
    .await;
    assert_eq!(status, 429);
}

#[actix_web::test]
async fn a_refresh_replayed_on_the_other_replica_gets_the_same_successor() {
    let url = fresh_database("auth_replicas_refresh").await;
    let pem = agora_auth::tokens::generate_pem().unwrap();
    let (one, two) = (replica(&url, &pem).await, replica(&url, &pem).await);
    let http = reqwest::Client::new();
    let (_, session) = post(
        &http,
        format!("{one}/api/v1/auth/register"),
        json!({"username": "tabs", "email": "tabs@example.org", "password": "right password"}),
    )
    .await;
    let r0 = session["refresh_token"].clone();
    let (s1, a) = post(
        &http,
        format!("{one}/api/v1/auth/refresh"),
        json!({"refresh_token": r0}),
    )
    .await;
    let (s2, b) = post(
        &http,
        format!("{two}/api/v1/auth/refresh"),
        json!({"refresh_token": r0}),
    )
    .await;
    assert_eq!((s1, s2), (200, 200), "{a} {b}");
    assert_eq!(a["refresh_token"], b["refresh_token"], "one line of tokens");
}
