//! The relations service against a real PostgreSQL: every rule of the contract's
//! relations rows, the unhappy paths, and the races the pair lock exists for.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

use agora_common::testing::{self, TestKeys};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

const INTERNAL: &str = "relations-test-internal-token-0123456789";

/// The relations service on the kit's harness (`api`: its base URL).
struct Harness {
    kit: testing::Harness,
    api: String,
}

impl std::ops::Deref for Harness {
    type Target = testing::Harness;
    fn deref(&self) -> &testing::Harness {
        &self.kit
    }
}

type User = testing::Person;

async fn start() -> Harness {
    let keys = TestKeys::new();
    let mut basics = testing::basics(testing::fresh_database("relations").await, INTERNAL);
    basics.db_pool_size = 20; // the race tests hold many connections at once
    let config = agora_relations::Config {
        basics,
        notifications_url: None,
    };
    let service = agora_relations::build_with(config, keys.verifier())
        .await
        .unwrap();
    let api = testing::serve(service).api;
    Harness {
        kit: testing::Harness::new(keys, INTERNAL).serving("/api/v1/relations", &api, true),
        api,
    }
}

impl Harness {
    /// A call to `/api/v1/relations{path}`.
    async fn call(
        &self,
        who: &User,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.kit
            .call(who, method, &format!("/api/v1/relations{path}"), body)
            .await
    }

    async fn status(&self, who: &User, method: Method, path: &str) -> StatusCode {
        self.call(who, method, path, None).await.0
    }

    async fn get(&self, who: &User, path: &str) -> Value {
        let (status, body) = self.call(who, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    async fn summary(&self, who: &User, of: &User) -> Value {
        self.get(who, &format!("/users/{}/summary", of.id)).await
    }

    async fn befriend(&self, a: &User, b: &User) {
        let (status, body) = self
            .call(
                a,
                Method::POST,
                "/friend-requests",
                Some(json!({"to": b.id})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["id"].as_str().unwrap().to_owned();
        let (status, body) = self
            .call(
                b,
                Method::POST,
                &format!("/friend-requests/{id}/accept"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn follow_is_idempotent_and_checked() {
    let h = start().await;
    let (alice, bob) = (h.user("alice").await, h.user("bob").await);
    for _ in 0..2 {
        assert_eq!(
            h.status(&alice, Method::PUT, &format!("/following/{}", bob.id))
                .await,
            StatusCode::NO_CONTENT
        );
    }
    let s = h.summary(&alice, &bob).await;
    assert_eq!(s["followers"], 1);
    assert_eq!(s["is_following"], true);
    assert_eq!(s["is_followed_by"], false);
    let followers = h.get(&alice, &format!("/users/{}/followers", bob.id)).await;
    assert_eq!(followers["items"][0]["username"], alice.name.as_str());
    assert_eq!(followers["next_cursor"], Value::Null);

    assert_eq!(
        h.status(&alice, Method::PUT, &format!("/following/{}", alice.id))
            .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        h.status(
            &alice,
            Method::PUT,
            &format!("/following/{}", Uuid::now_v7())
        )
        .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.status(
            &alice,
            Method::DELETE,
            &format!("/following/{}", Uuid::now_v7())
        )
        .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.status(&alice, Method::PUT, "/following/not-a-uuid").await,
        StatusCode::NOT_FOUND
    );
    for _ in 0..2 {
        assert_eq!(
            h.status(&alice, Method::DELETE, &format!("/following/{}", bob.id))
                .await,
            StatusCode::NO_CONTENT
        );
    }
    assert_eq!(h.summary(&alice, &bob).await["followers"], 0);
    // No token, or a forged one.
    let anonymous = h
        .http
        .put(format!("{}/api/v1/relations/following/{}", h.api, bob.id))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn friend_requests_follow_the_contract() {
    let h = start().await;
    let (alice, bob, carol) = (
        h.user("alice").await,
        h.user("bob").await,
        h.user("carol").await,
    );
    let (status, req) = h
        .call(
            &alice,
            Method::POST,
            "/friend-requests",
            Some(json!({"to": bob.id})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(req["status"], "pending");
    assert_eq!(req["from"], alice.id.to_string());
    let id = req["id"].as_str().unwrap().to_owned();
    // Asking again, asking oneself, unknown people, unknown fields.
    assert_eq!(
        h.call(
            &alice,
            Method::POST,
            "/friend-requests",
            Some(json!({"to": bob.id}))
        )
        .await
        .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        h.call(
            &alice,
            Method::POST,
            "/friend-requests",
            Some(json!({"to": alice.id}))
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        h.call(
            &alice,
            Method::POST,
            "/friend-requests",
            Some(json!({"to": Uuid::now_v7()}))
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.call(
            &alice,
            Method::POST,
            "/friend-requests",
            Some(json!({"to": bob.id, "too": 1}))
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );

    assert_eq!(
        ids(&h.get(&bob, "/friend-requests?direction=incoming").await),
        vec![id.clone()]
    );
    assert_eq!(
        ids(&h.get(&alice, "/friend-requests?direction=outgoing").await),
        vec![id.clone()]
    );
    assert!(ids(&h.get(&alice, "/friend-requests").await).is_empty());
    assert_eq!(
        h.status(&alice, Method::GET, "/friend-requests?direction=sideways")
            .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(h.summary(&bob, &alice).await["friend_request"], "incoming");
    assert_eq!(h.summary(&alice, &bob).await["friend_request"], "outgoing");

    // Only the recipient accepts or declines; only the sender cancels; others see nothing.
    assert_eq!(
        h.status(
            &alice,
            Method::POST,
            &format!("/friend-requests/{id}/accept")
        )
        .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        h.status(
            &carol,
            Method::POST,
            &format!("/friend-requests/{id}/accept")
        )
        .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.status(&bob, Method::DELETE, &format!("/friend-requests/{id}"))
            .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        h.status(&carol, Method::DELETE, &format!("/friend-requests/{id}"))
            .await,
        StatusCode::NOT_FOUND
    );
    let (status, accepted) = h
        .call(
            &bob,
            Method::POST,
            &format!("/friend-requests/{id}/accept"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(accepted["status"], "accepted");
    assert_eq!(
        h.status(&bob, Method::POST, &format!("/friend-requests/{id}/accept"))
            .await,
        StatusCode::NOT_FOUND
    );
    let s = h.summary(&alice, &bob).await;
    assert_eq!(
        (
            s["is_friend"].clone(),
            s["friends"].clone(),
            s["friend_request"].clone()
        ),
        (json!(true), json!(1), json!("none"))
    );
    assert_eq!(
        h.call(
            &bob,
            Method::POST,
            "/friend-requests",
            Some(json!({"to": alice.id}))
        )
        .await
        .0,
        StatusCode::CONFLICT
    );

    // Crossing requests: the second one accepts the first.
    let (status, _) = h
        .call(
            &carol,
            Method::POST,
            "/friend-requests",
            Some(json!({"to": alice.id})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, crossing) = h
        .call(
            &alice,
            Method::POST,
            "/friend-requests",
            Some(json!({"to": carol.id})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(crossing["status"], "accepted");
    assert_eq!(
        h.get(&alice, &format!("/users/{}/friends", alice.id)).await["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Decline and cancel remove the request; unfriend ends the friendship.
    let (_, to_decline) = h
        .call(
            &h.user("dave").await,
            Method::POST,
            "/friend-requests",
            Some(json!({"to": bob.id})),
        )
        .await;
    assert_eq!(
        h.status(
            &bob,
            Method::POST,
            &format!(
                "/friend-requests/{}/decline",
                to_decline["id"].as_str().unwrap()
            )
        )
        .await,
        StatusCode::NO_CONTENT
    );
    let eve = h.user("eve").await;
    let (_, to_cancel) = h
        .call(
            &eve,
            Method::POST,
            "/friend-requests",
            Some(json!({"to": bob.id})),
        )
        .await;
    assert_eq!(
        h.status(
            &eve,
            Method::DELETE,
            &format!("/friend-requests/{}", to_cancel["id"].as_str().unwrap())
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert!(ids(&h.get(&bob, "/friend-requests").await).is_empty());
    assert_eq!(
        h.status(&alice, Method::DELETE, &format!("/friends/{}", bob.id))
            .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(h.summary(&alice, &bob).await["is_friend"], false);
    assert_eq!(h.summary(&bob, &bob).await["friends"], 0);
}

#[actix_web::test]
async fn crossing_requests_sent_at_once_end_as_one_friendship() {
    let h = start().await;
    for _ in 0..10 {
        let (a, b) = (h.user("a").await, h.user("b").await);
        let (x, y) = futures_util::join!(
            h.call(
                &a,
                Method::POST,
                "/friend-requests",
                Some(json!({"to": b.id}))
            ),
            h.call(
                &b,
                Method::POST,
                "/friend-requests",
                Some(json!({"to": a.id}))
            ),
        );
        let mut statuses = [x.0.as_u16(), y.0.as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 201], "{x:?} {y:?}");
        let s = h.summary(&a, &b).await;
        assert_eq!(s["is_friend"], true);
        assert_eq!(s["friends"], 1, "exactly one friendship each way");
        assert_eq!(s["friend_request"], "none", "no request left pending");
    }
}

#[actix_web::test]
async fn concurrent_follows_and_a_block_during_a_request_stay_consistent() {
    let h = start().await;
    let (a, b) = (h.user("a").await, h.user("b").await);
    let path = format!("/following/{}", b.id);
    let follows: Vec<_> = (0..8).map(|_| h.status(&a, Method::PUT, &path)).collect();
    for status in futures_util::future::join_all(follows).await {
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    assert_eq!(h.summary(&a, &b).await["followers"], 1);

    for _ in 0..10 {
        let (c, d) = (h.user("c").await, h.user("d").await);
        let block_path = format!("/blocks/{}", c.id);
        let (request, block) = futures_util::join!(
            h.call(
                &c,
                Method::POST,
                "/friend-requests",
                Some(json!({"to": d.id}))
            ),
            h.status(&d, Method::PUT, &block_path),
        );
        assert_eq!(block, StatusCode::NO_CONTENT);
        // Whichever came first, the block wins: no request survives it.
        assert!(matches!(request.0.as_u16(), 201 | 403), "{request:?}");
        assert!(ids(&h.get(&d, "/friend-requests").await).is_empty());
        assert!(ids(&h.get(&c, "/friend-requests?direction=outgoing").await).is_empty());
    }
}

#[actix_web::test]
async fn blocking_removes_every_tie_and_refuses_new_ones() {
    let h = start().await;
    let (a, b) = (h.user("a").await, h.user("b").await);
    h.befriend(&a, &b).await;
    for (x, y) in [(&a, &b), (&b, &a)] {
        assert_eq!(
            h.status(x, Method::PUT, &format!("/following/{}", y.id))
                .await,
            StatusCode::NO_CONTENT
        );
    }
    assert_eq!(
        h.call(&a, Method::PUT, &format!("/likes/{}", b.id), None)
            .await
            .1["matched"],
        false
    );
    assert_eq!(
        h.call(&b, Method::PUT, &format!("/likes/{}", a.id), None)
            .await
            .1["matched"],
        true
    );
    assert_eq!(ids(&h.get(&a, "/matches").await), vec![b.id.to_string()]);

    assert_eq!(
        h.status(&a, Method::PUT, &format!("/blocks/{}", b.id))
            .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.status(&a, Method::PUT, &format!("/blocks/{}", b.id))
            .await,
        StatusCode::NO_CONTENT
    );
    let s = h.summary(&a, &b).await;
    assert_eq!(
        (
            s["followers"].clone(),
            s["following"].clone(),
            s["friends"].clone(),
            s["is_friend"].clone(),
            s["blocked"].clone()
        ),
        (json!(0), json!(0), json!(0), json!(false), json!(true))
    );
    assert!(ids(&h.get(&a, "/matches").await).is_empty());
    assert!(ids(&h.get(&b, "/matches").await).is_empty());
    assert_eq!(ids(&h.get(&a, "/blocks").await), vec![b.id.to_string()]);
    // Both directions are refused while the block lasts.
    for (x, y) in [(&a, &b), (&b, &a)] {
        assert_eq!(
            h.status(x, Method::PUT, &format!("/following/{}", y.id))
                .await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            h.status(x, Method::PUT, &format!("/likes/{}", y.id)).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            h.call(
                x,
                Method::POST,
                "/friend-requests",
                Some(json!({"to": y.id}))
            )
            .await
            .0,
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(
        h.status(&a, Method::PUT, &format!("/blocks/{}", a.id))
            .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        h.status(&a, Method::DELETE, &format!("/blocks/{}", b.id))
            .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.status(&b, Method::PUT, &format!("/following/{}", a.id))
            .await,
        StatusCode::NO_CONTENT
    );
    assert!(ids(&h.get(&a, "/blocks").await).is_empty());
}

#[actix_web::test]
async fn suggestions_rank_friends_of_friends_and_followees_choices() {
    let h = start().await;
    let me = h.user("me").await;
    let (f1, f2, f3) = (h.user("f1").await, h.user("f2").await, h.user("f3").await);
    let (two_mutual, one_mutual, followed, blocked, already) = (
        h.user("two").await,
        h.user("one").await,
        h.user("followed").await,
        h.user("blocked").await,
        h.user("already").await,
    );
    for f in [&f1, &f2, &f3] {
        h.befriend(&me, f).await;
    }
    h.befriend(&f1, &two_mutual).await;
    h.befriend(&f2, &two_mutual).await;
    h.befriend(&f3, &one_mutual).await;
    h.befriend(&f3, &blocked).await;
    h.befriend(&f1, &already).await;
    // me follows f1 and f2; both follow `followed`.
    for f in [&f1, &f2] {
        assert_eq!(
            h.status(&me, Method::PUT, &format!("/following/{}", f.id))
                .await,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            h.status(f, Method::PUT, &format!("/following/{}", followed.id))
                .await,
            StatusCode::NO_CONTENT
        );
    }
    assert_eq!(
        h.status(&me, Method::PUT, &format!("/following/{}", already.id))
            .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.status(&blocked, Method::PUT, &format!("/blocks/{}", me.id))
            .await,
        StatusCode::NO_CONTENT
    );

    let list = h.get(&me, "/suggestions").await;
    let got: Vec<(String, i64, i64, i64)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["user"]["username"].as_str().unwrap().to_owned(),
                s["score"].as_i64().unwrap(),
                s["mutual_friends"].as_i64().unwrap(),
                s["followed_by_your_followees"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (two_mutual.name.clone(), 4, 2, 0),
            // Equal scores: more mutual friends first.
            (one_mutual.name.clone(), 2, 1, 0),
            (followed.name.clone(), 2, 0, 2),
        ],
        "self, friends, followees and blocked users are never suggested"
    );
    assert_eq!(
        h.get(&me, "/suggestions?limit=1").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    for bad in ["0", "101", "x"] {
        assert_eq!(
            h.status(&me, Method::GET, &format!("/suggestions?limit={bad}"))
                .await,
            StatusCode::BAD_REQUEST
        );
    }
    // Following the suggestion removes it.
    assert_eq!(
        h.status(&me, Method::PUT, &format!("/following/{}", two_mutual.id))
            .await,
        StatusCode::NO_CONTENT
    );
    assert!(
        !h.get(&me, "/suggestions")
            .await
            .to_string()
            .contains(&two_mutual.name)
    );
}

#[actix_web::test]
async fn lists_paginate_into_disjoint_pages() {
    let h = start().await;
    let star = h.user("star").await;
    let mut fans = Vec::new();
    for i in 0..7 {
        let fan = h.user(&format!("fan{i}")).await;
        assert_eq!(
            h.status(&fan, Method::PUT, &format!("/following/{}", star.id))
                .await,
            StatusCode::NO_CONTENT
        );
        fans.push(fan.id.to_string());
    }
    let mut seen = Vec::new();
    let mut path = format!("/users/{}/followers?limit=3", star.id);
    loop {
        let page = h.get(&star, &path).await;
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/users/{}/followers?limit=3&cursor={c}", star.id),
            None => break,
        }
    }
    fans.reverse();
    assert_eq!(seen, fans, "newest first, each follower exactly once");
    for bad in [
        "limit=0",
        "limit=101",
        "limit=abc",
        "cursor=garbage",
        "cursor=%22%22",
    ] {
        assert_eq!(
            h.status(
                &star,
                Method::GET,
                &format!("/users/{}/followers?{bad}", star.id)
            )
            .await,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    assert_eq!(
        h.status(
            &star,
            Method::GET,
            &format!("/users/{}/followers", Uuid::now_v7())
        )
        .await,
        StatusCode::NOT_FOUND
    );
}

#[actix_web::test]
async fn internal_routes_need_the_service_credential() {
    let h = start().await;
    let a = h.user("a").await;
    let graph = format!("{}/internal/users/{}/graph", h.api, a.id);
    let user_token = h
        .http
        .get(&graph)
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_eq!(user_token.status(), StatusCode::UNAUTHORIZED);
    let none = h.http.get(&graph).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    let ok = h
        .http
        .get(&graph)
        .bearer_auth(INTERNAL)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    // An account delivered twice is one account.
    let b = h.user("b").await;
    let again = h
        .http
        .put(format!("{}/internal/accounts/{}", h.api, b.id))
        .bearer_auth(INTERNAL)
        .json(&json!({"id": b.id, "username": b.name, "created_at": "2026-11-25T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
    // A caller not yet delivered is recorded on their first write.
    let newcomer_id = Uuid::now_v7();
    let newcomer = User {
        token: h.keys.token(newcomer_id, "newcomer_xyz"),
        id: newcomer_id,
        name: "newcomer_xyz".into(),
    };
    assert_eq!(
        h.status(&newcomer, Method::PUT, &format!("/following/{}", a.id))
            .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.get(&a, &format!("/users/{}/followers", a.id)).await["items"][0]["username"],
        "newcomer_xyz"
    );
    let graph: Value = h
        .http
        .get(format!("{}/internal/users/{}/graph", h.api, newcomer.id))
        .bearer_auth(INTERNAL)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(graph["following"], json!([a.id]));
}
