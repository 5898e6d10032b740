//! The users service against a real PostgreSQL and a real relations service: the
//! contract's field rules, visibility, pagination and read-your-writes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

use agora_common::testing::{self, TestKeys, basics};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

const INTERNAL: &str = "users-test-internal-token-0123456789abcdef";

/// The users service and the relations service it asks, on the kit's harness.
struct Harness {
    kit: testing::Harness,
    users: String,
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
    let relations = agora_relations::build_with(
        agora_relations::Config {
            basics: basics(testing::fresh_database("users_rel").await, INTERNAL),
            notifications_url: None,
        },
        keys.verifier(),
    )
    .await
    .unwrap();
    let relations = testing::serve(relations).api;
    let users = agora_users::build_with(
        agora_users::Config {
            basics: basics(testing::fresh_database("users").await, INTERNAL),
            relations_url: relations.clone(),
            photos_url: None,
            notifications_url: None,
        },
        keys.verifier(),
    )
    .await
    .unwrap();
    let users = testing::serve(users).api;
    Harness {
        kit: testing::Harness::new(keys, INTERNAL)
            .serving("/api/v1", &users, true)
            .serving("/api/v1/relations", &relations, true),
        users,
    }
}

impl Harness {
    async fn post(&self, who: &User, text: &str, visibility: &str) -> String {
        let body = self
            .ok(
                who,
                Method::POST,
                "/api/v1/posts",
                Some(json!({"text": text, "visibility": visibility})),
            )
            .await;
        body["id"].as_str().unwrap().to_owned()
    }
}

fn fields(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["field"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn texts(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn profiles_follow_the_field_rules() {
    let h = start().await;
    let alice = h.user("alice").await;
    // A photo avatar must exist among the caller's and the public photos: with no photos
    // service here, none does (the happy path is in the end-to-end tests).
    let photo = format!("/api/v1/photos/{}/content", Uuid::now_v7());
    let (status, body) = h
        .call(
            &alice,
            Method::PATCH,
            "/api/v1/users/me",
            Some(json!({"avatar_url": photo})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["field"], "avatar_url");
    let photo = "https://cdn.example/alice.png".to_owned();
    let me = h
        .ok(
            &alice,
            Method::PATCH,
            "/api/v1/users/me",
            Some(json!({
                "display_name": "Alice ✨", "bio": "b".repeat(500), "location": "Lyon",
                "website": "https://alice.example/~a?x=1", "avatar_url": photo,
            })),
        )
        .await;
    assert_eq!(me["display_name"], "Alice ✨");
    assert_eq!(me["avatar_url"], photo.as_str());
    // null and "" clear; absent keeps.
    let me = h
        .ok(
            &alice,
            Method::PATCH,
            "/api/v1/users/me",
            Some(json!({"bio": null, "location": ""})),
        )
        .await;
    assert_eq!(
        (
            me["bio"].clone(),
            me["location"].clone(),
            me["website"].clone()
        ),
        (
            Value::Null,
            Value::Null,
            json!("https://alice.example/~a?x=1")
        )
    );

    let (status, body) = h
        .call(
            &alice,
            Method::PATCH,
            "/api/v1/users/me",
            Some(json!({
                "display_name": "x".repeat(65), "bio": "x".repeat(501), "location": "x".repeat(65),
                "website": "ftp://files.example", "avatar_url": "/api/v1/photos/nope/content",
            })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        fields(&body),
        vec!["display_name", "bio", "avatar_url", "location", "website"]
    );
    let (status, _) = h
        .call(
            &alice,
            Method::PATCH,
            "/api/v1/users/me",
            Some(json!({"displayname": "typo"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let unchanged = h.ok(&alice, Method::GET, "/api/v1/users/me", None).await;
    assert_eq!(
        unchanged["display_name"], "Alice ✨",
        "a refused patch changes nothing"
    );
    let wrong_type = h
        .http
        .patch(format!("{}/api/v1/users/me", h.users))
        .bearer_auth(&alice.token)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    assert_eq!(
        h.call(
            &alice,
            Method::GET,
            &format!("/api/v1/users/{}", Uuid::now_v7()),
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    for bad in [
        "?username=a%20b",
        "?q=",
        "?username=",
        "?q=al&cursor=x",
        "?q=al&limit=101",
        &format!("?q={}", "a".repeat(33)),
    ] {
        assert_eq!(
            h.call(&alice, Method::GET, &format!("/api/v1/users{bad}"), None)
                .await
                .0,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    // Counts: others see public posts only; the owner sees all of theirs.
    h.post(&alice, "public", "public").await;
    h.post(&alice, "private", "private").await;
    let bob = h.user("bob").await;
    assert_eq!(
        h.ok(
            &bob,
            Method::GET,
            &format!("/api/v1/users/{}", alice.id),
            None
        )
        .await["counts"]["posts"],
        1
    );
    assert_eq!(
        h.ok(&alice, Method::GET, "/api/v1/users/me", None).await["counts"]["posts"],
        2
    );
}

#[actix_web::test]
async fn username_search_is_by_prefix_and_paginates() {
    let h = start().await;
    let me = h.user("searcher").await;
    let prefix = format!("p{}", &Uuid::new_v4().simple().to_string()[..8]);
    let mut names = Vec::new();
    for i in 0..5 {
        names.push(h.user(&format!("{prefix}_{i}")).await.name);
    }
    h.user(&format!("{prefix}x")).await; // `_` is not a wildcard
    names.sort();
    let mut seen = Vec::new();
    let mut query = format!("?q={prefix}_&limit=2");
    loop {
        let page = h
            .ok(&me, Method::GET, &format!("/api/v1/users{query}"), None)
            .await;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["username"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => query = format!("?q={prefix}_&limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, names);
    let exact = h
        .ok(
            &me,
            Method::GET,
            &format!("/api/v1/users?username={}", names[0].to_uppercase()),
            None,
        )
        .await;
    assert_eq!(exact["items"].as_array().unwrap().len(), 1);
    let none = h
        .ok(&me, Method::GET, "/api/v1/users?username=nobody_here", None)
        .await;
    assert_eq!(none, json!({"items": [], "next_cursor": null}));
    // Both filters apply together; neither lists everyone.
    let both = format!("/api/v1/users?username={}&q={prefix}_", names[1]);
    assert_eq!(
        h.ok(&me, Method::GET, &both, None).await["items"][0]["username"],
        names[1].as_str()
    );
    let elsewhere = format!("/api/v1/users?username={}&q=zz", names[1]);
    assert!(
        h.ok(&me, Method::GET, &elsewhere, None).await["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let everyone = h
        .ok(&me, Method::GET, "/api/v1/users?limit=100", None)
        .await;
    assert_eq!(everyone["items"].as_array().unwrap().len(), 7);
}

#[actix_web::test]
async fn posts_are_validated_and_lose_nothing_on_refusal() {
    let h = start().await;
    let alice = h.user("alice").await;
    let max = "é".repeat(5000);
    assert_eq!(
        h.call(
            &alice,
            Method::POST,
            "/api/v1/posts",
            Some(json!({"text": max}))
        )
        .await
        .0,
        StatusCode::CREATED
    );
    let cases = [
        (json!({"text": ""}), vec!["text"]),
        (json!({"text": "x".repeat(5001)}), vec!["text"]),
        (
            json!({"text": "x", "links": vec!["https://a.example"; 11]}),
            vec!["links"],
        ),
        (
            json!({"text": "x", "links": ["https://ok.example", "javascript:alert(1)"]}),
            vec!["links[1]"],
        ),
        (
            json!({"text": "x", "photo_ids": [Uuid::now_v7()]}),
            vec!["photo_ids[0]"],
        ),
    ];
    for (body, expected) in cases {
        let (status, problem) = h
            .call(&alice, Method::POST, "/api/v1/posts", Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(fields(&problem), expected, "{problem}");
    }
    for body in [
        json!({"text": "x", "visibility": "secret"}),
        json!({"text": "x", "txet": 1}),
        json!({"links": []}),
    ] {
        assert_eq!(
            h.call(&alice, Method::POST, "/api/v1/posts", Some(body.clone()))
                .await
                .0,
            StatusCode::BAD_REQUEST,
            "{body}"
        );
    }
    let mine = h
        .ok(
            &alice,
            Method::GET,
            &format!("/api/v1/users/{}/posts", alice.id),
            None,
        )
        .await;
    assert_eq!(
        mine["items"].as_array().unwrap().len(),
        1,
        "refused posts were not stored"
    );

    let id = &mine["items"][0]["id"].as_str().unwrap().to_owned();
    let edited = h
        .ok(
            &alice,
            Method::PATCH,
            &format!("/api/v1/posts/{id}"),
            Some(json!({"text": "edited", "visibility": "friends", "links": ["http://x.example"]})),
        )
        .await;
    assert_eq!(
        (
            edited["text"].clone(),
            edited["visibility"].clone(),
            edited["links"].clone()
        ),
        (
            json!("edited"),
            json!("friends"),
            json!(["http://x.example"])
        )
    );
    assert!(edited["updated_at"].as_str() > edited["created_at"].as_str());
    let (status, _) = h
        .call(
            &alice,
            Method::PATCH,
            &format!("/api/v1/posts/{id}"),
            Some(json!({"text": ""})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        h.ok(&alice, Method::GET, &format!("/api/v1/posts/{id}"), None)
            .await["text"],
        "edited"
    );
}

#[actix_web::test]
async fn the_feed_pages_stay_disjoint_and_follow_the_callers_own_changes() {
    let h = start().await;
    let (reader, writer) = (h.user("reader").await, h.user("writer").await);
    h.follow(&reader, &writer).await;
    for i in 0..5 {
        h.post(&writer, &format!("p{i}"), "public").await;
    }
    h.post(&writer, "for friends", "friends").await;
    let first = h
        .ok(&reader, Method::GET, "/api/v1/feed?limit=2", None)
        .await;
    assert_eq!(
        texts(&first),
        vec!["p4", "p3"],
        "friends-only posts need a friendship"
    );
    // New posts while paging: the next page continues where the first ended.
    h.post(&writer, "late", "public").await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = h
        .ok(
            &reader,
            Method::GET,
            &format!("/api/v1/feed?limit=10&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(texts(&second), vec!["p2", "p1", "p0"]);
    assert_eq!(second["next_cursor"], Value::Null);

    // Read-your-writes: unfollow, block and friendship change the very next page.
    h.unfollow(&reader, &writer).await;
    assert!(texts(&h.ok(&reader, Method::GET, "/api/v1/feed", None).await).is_empty());
    h.befriend(&reader, &writer).await;
    assert_eq!(
        texts(
            &h.ok(&reader, Method::GET, "/api/v1/feed?limit=2", None)
                .await
        ),
        vec!["late", "for friends"]
    );
    h.ok(
        &writer,
        Method::PUT,
        &format!("/api/v1/relations/blocks/{}", reader.id),
        None,
    )
    .await;
    assert!(texts(&h.ok(&reader, Method::GET, "/api/v1/feed", None).await).is_empty());
}

impl Harness {
    /// `who` follows `whom`.
    async fn follow(&self, who: &User, whom: &User) {
        let path = format!("/api/v1/relations/following/{}", whom.id);
        self.ok(who, Method::PUT, &path, None).await;
    }

    /// `who` stops following `whom`.
    async fn unfollow(&self, who: &User, whom: &User) {
        let path = format!("/api/v1/relations/following/{}", whom.id);
        self.ok(who, Method::DELETE, &path, None).await;
    }

    /// `from` asks `to` for friendship and `to` accepts.
    async fn befriend(&self, from: &User, to: &User) {
        let request = self
            .ok(
                from,
                Method::POST,
                "/api/v1/relations/friend-requests",
                Some(json!({"to": to.id})),
            )
            .await;
        let accept = format!(
            "/api/v1/relations/friend-requests/{}/accept",
            request["id"].as_str().unwrap()
        );
        self.ok(to, Method::POST, &accept, None).await;
    }

    /// Every text of the caller's feed, page after page of `limit`.
    async fn whole_feed(&self, who: &User, limit: u32) -> Vec<String> {
        let mut all = Vec::new();
        let mut path = format!("/api/v1/feed?limit={limit}");
        loop {
            let page = self.ok(who, Method::GET, &path, None).await;
            let items = texts(&page);
            assert!(items.len() <= limit as usize);
            all.extend(items);
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/api/v1/feed?limit={limit}&cursor={cursor}"),
                None => return all,
            }
        }
    }
}

/// Above `FEED_FEW_AUTHORS` followees the feed walks the newest posts instead of reading
/// each author's: both must show the same posts, in the same pages.
#[actix_web::test]
async fn a_feed_of_many_authors_pages_like_a_feed_of_few() {
    let h = start().await;
    let reader = h.user("reader").await;
    let many = agora_users::FEED_FEW_AUTHORS + 8;
    let mut writers = Vec::new();
    for i in 0..many {
        writers.push(h.user(&format!("w{i}")).await);
    }
    for writer in &writers {
        h.follow(&reader, writer).await;
    }
    // The last two writers are also friends.
    for writer in &writers[many - 2..] {
        h.befriend(writer, &reader).await;
    }
    // Posts interleaved across writers, newest last; the reader's own too.
    let mut written = Vec::new();
    for round in 0..2 {
        for (i, writer) in writers.iter().enumerate() {
            for visibility in ["public", "friends", "private"] {
                let text = format!("w{i} r{round} {visibility}");
                h.post(writer, &text, visibility).await;
                written.push((i, text, visibility));
            }
        }
        let own = format!("own r{round}");
        h.post(&reader, &own, "private").await;
        written.push((usize::MAX, own, "private"));
    }
    let expected = |followed: &dyn Fn(usize) -> bool| -> Vec<String> {
        written
            .iter()
            .rev()
            .filter(|(i, _, visibility)| {
                *i == usize::MAX
                    || (followed(*i) || *i >= many - 2)
                        && (*visibility == "public" || *visibility == "friends" && *i >= many - 2)
            })
            .map(|(_, text, _)| text.clone())
            .collect()
    };
    let all_followed = expected(&|_| true);
    assert_eq!(all_followed.len(), 2 * (many + 2 + 1));
    assert_eq!(h.whole_feed(&reader, 7).await, all_followed);

    // Unfollow down to a few authors (friends stay authors): the other strategy.
    let few = 4;
    for writer in &writers[few..many - 2] {
        h.unfollow(&reader, writer).await;
    }
    let some_followed = expected(&|i| i < few);
    assert_eq!(some_followed.len(), 2 * (few + 2 + 2 + 1));
    assert_eq!(h.whole_feed(&reader, 7).await, some_followed);
}

#[actix_web::test]
async fn comments_and_reactions_belong_to_visible_posts() {
    let h = start().await;
    let (author, friend, stranger) = (
        h.user("author").await,
        h.user("friend").await,
        h.user("stranger").await,
    );
    let post = h.post(&author, "hello", "public").await;
    let c1 = h
        .ok(
            &friend,
            Method::POST,
            &format!("/api/v1/posts/{post}/comments"),
            Some(json!({"text": "first"})),
        )
        .await;
    let c1_id = c1["id"].as_str().unwrap().to_owned();
    let reply = h
        .ok(
            &stranger,
            Method::POST,
            &format!("/api/v1/posts/{post}/comments"),
            Some(json!({"text": "reply", "parent_id": c1_id})),
        )
        .await;
    assert_eq!(reply["author"]["username"], stranger.name.as_str());
    let counted = |post: Value| post["comment_count"].as_i64();
    assert_eq!(
        counted(
            h.ok(&friend, Method::GET, &format!("/api/v1/posts/{post}"), None)
                .await
        ),
        Some(2)
    );
    for body in [
        json!({"text": ""}),
        json!({"text": "x".repeat(2001)}),
        json!({"text": "x", "parent_id": Uuid::now_v7()}),
        json!({"text": "x", "extra": 1}),
    ] {
        assert_eq!(
            h.call(
                &friend,
                Method::POST,
                &format!("/api/v1/posts/{post}/comments"),
                Some(body.clone())
            )
            .await
            .0,
            StatusCode::BAD_REQUEST,
            "{body}"
        );
    }
    assert_eq!(
        h.call(
            &friend,
            Method::POST,
            &format!("/api/v1/posts/{}/comments", Uuid::now_v7()),
            Some(json!({"text": "x"}))
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    // Only the comment's author or the post's author deletes; replies go with their parent.
    assert_eq!(
        h.call(
            &stranger,
            Method::DELETE,
            &format!("/api/v1/posts/{post}/comments/{c1_id}"),
            None
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        h.call(
            &author,
            Method::DELETE,
            &format!("/api/v1/posts/{post}/comments/{c1_id}"),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert!(
        h.ok(
            &author,
            Method::GET,
            &format!("/api/v1/posts/{post}/comments"),
            None
        )
        .await["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // The parent and its reply were both counted down.
    assert_eq!(
        counted(
            h.ok(&author, Method::GET, &format!("/api/v1/posts/{post}"), None)
                .await
        ),
        Some(0)
    );

    let heart = "%E2%9D%A4%EF%B8%8F"; // ❤️
    let tone = "%F0%9F%91%8D%F0%9F%8F%BD"; // 👍🏽
    h.ok(
        &friend,
        Method::PUT,
        &format!("/api/v1/posts/{post}/reactions/{heart}"),
        None,
    )
    .await;
    h.ok(
        &friend,
        Method::PUT,
        &format!("/api/v1/posts/{post}/reactions/{tone}"),
        None,
    )
    .await;
    let r = h
        .ok(
            &stranger,
            Method::PUT,
            &format!("/api/v1/posts/{post}/reactions/{heart}"),
            None,
        )
        .await;
    assert_eq!(
        r,
        json!({"reactions": {"❤️": 2, "👍🏽": 1}, "my_reactions": ["❤️"]})
    );
    let r = h
        .ok(
            &friend,
            Method::DELETE,
            &format!("/api/v1/posts/{post}/reactions/{heart}"),
            None,
        )
        .await;
    assert_eq!(
        r,
        json!({"reactions": {"❤️": 1, "👍🏽": 1}, "my_reactions": ["👍🏽"]})
    );
    h.ok(
        &friend,
        Method::DELETE,
        &format!("/api/v1/posts/{post}/reactions/{heart}"),
        None,
    )
    .await;
    let page = h
        .ok(
            &friend,
            Method::GET,
            &format!("/api/v1/users/{}/posts", author.id),
            None,
        )
        .await;
    assert_eq!(page["items"][0]["reactions"], json!({"❤️": 1, "👍🏽": 1}));
    assert_eq!(page["items"][0]["my_reactions"], json!(["👍🏽"]));
    assert_eq!(page["items"][0]["comment_count"], 0);
    // An emoji whose last reaction goes leaves the counts.
    let r = h
        .ok(
            &friend,
            Method::DELETE,
            &format!("/api/v1/posts/{post}/reactions/{tone}"),
            None,
        )
        .await;
    assert_eq!(r, json!({"reactions": {"❤️": 1}, "my_reactions": []}));
    let feed = h.ok(&author, Method::GET, "/api/v1/feed", None).await;
    let shown = feed["items"]
        .as_array()
        .and_then(|items| items.iter().find(|p| p["id"] == post.as_str()));
    assert_eq!(shown.map(|p| &p["reactions"]), Some(&json!({"❤️": 1})));

    // A private post: invisible (404) to others for every action, even with its id.
    let private = h.post(&author, "secret", "private").await;
    for (method, path) in [
        (Method::GET, format!("/api/v1/posts/{private}")),
        (Method::DELETE, format!("/api/v1/posts/{private}")),
        (Method::GET, format!("/api/v1/posts/{private}/comments")),
        (
            Method::PUT,
            format!("/api/v1/posts/{private}/reactions/{heart}"),
        ),
    ] {
        assert_eq!(
            h.call(&friend, method.clone(), &path, None).await.0,
            StatusCode::NOT_FOUND,
            "{method} {path}"
        );
    }
}

#[actix_web::test]
async fn account_deliveries_need_the_service_credential() {
    let h = start().await;
    let id = Uuid::now_v7();
    let url = format!("{}/internal/accounts/{id}", h.users);
    let body = json!({"id": id, "username": "x_y", "created_at": "2026-11-25T00:00:00Z"});
    let user_token = h.keys.token(id, "x_y");
    assert_eq!(
        h.http
            .put(&url)
            .bearer_auth(&user_token)
            .json(&body)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let mismatch =
        json!({"id": Uuid::now_v7(), "username": "x_y", "created_at": "2026-11-25T00:00:00Z"});
    assert_eq!(
        h.http
            .put(&url)
            .bearer_auth(INTERNAL)
            .json(&mismatch)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );
    for _ in 0..2 {
        assert_eq!(
            h.http
                .put(&url)
                .bearer_auth(INTERNAL)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::NO_CONTENT
        );
    }
}
