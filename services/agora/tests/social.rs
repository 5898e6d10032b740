//! The social core end to end, through the gateway of a running platform, as a REST
//! client sees it: two people meet through a suggestion, befriend, post with each
//! visibility, react and comment, read each other in their feeds, then a block hides
//! everything both ways. Plus what a dependency outage looks like.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

mod support;

use serde_json::{Value, json};
use support::*;

#[actix_web::test]
async fn two_people_meet_befriend_post_react_comment_and_block() {
    let p = support::start().await;
    let alice = person(&p, "alice").await;
    let bob = person(&p, "bob").await;
    let carol = person(&p, "carol").await;
    let dave = person(&p, "dave").await;

    // Profiles exist as soon as registration answered.
    let profile = ok(
        &p,
        &alice,
        "GET",
        &format!("/api/v1/users/{}", bob.id),
        None,
    )
    .await;
    assert_eq!(profile["username"], "bob");
    assert_eq!(
        profile["counts"],
        json!({"posts": 0, "followers": 0, "following": 0, "friends": 0})
    );
    let found = ok(&p, &alice, "GET", "/api/v1/users?username=BOB", None).await;
    assert_eq!(found["items"][0]["id"], bob.id.as_str());
    let me = ok(
        &p,
        &dave,
        "PATCH",
        "/api/v1/users/me",
        Some(json!({"display_name": "Dave", "website": "https://dave.example"})),
    )
    .await;
    assert_eq!(me["display_name"], "Dave");
    call(
        &p,
        &dave,
        "PATCH",
        "/api/v1/users/me",
        Some(json!({"website": "javascript:alert(1)"})),
    )
    .await
    .assert_problem(400);

    // Both are friends of carol: alice is suggested bob, and befriends him.
    befriend(&p, &alice, &carol).await;
    befriend(&p, &bob, &carol).await;
    let suggestions = ok(&p, &alice, "GET", "/api/v1/relations/suggestions", None).await;
    let first = &suggestions["items"][0];
    assert_eq!(first["user"]["username"], "bob", "{suggestions}");
    assert_eq!(first["mutual_friends"], 1);
    let bob_id = first["user"]["id"].as_str().unwrap();
    ok(
        &p,
        &alice,
        "PUT",
        &format!("/api/v1/relations/following/{bob_id}"),
        None,
    )
    .await;
    befriend(&p, &alice, &bob).await;
    let counts = ok(
        &p,
        &carol,
        "GET",
        &format!("/api/v1/users/{}", bob.id),
        None,
    )
    .await["counts"]
        .clone();
    assert_eq!(
        (counts["followers"].clone(), counts["friends"].clone()),
        (json!(1), json!(2))
    );

    // Posts with each visibility.
    let mut posts = std::collections::HashMap::new();
    for (who, visibility) in [
        (&bob, "public"),
        (&bob, "friends"),
        (&bob, "private"),
        (&alice, "public"),
    ] {
        let text = format!("{} {visibility}", who.name);
        let reply = call(
            &p,
            who,
            "POST",
            "/api/v1/posts",
            Some(
                json!({"text": text, "visibility": visibility, "links": ["https://example.org/a"]}),
            ),
        )
        .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        assert_eq!(reply.body["author"]["username"], who.name.as_str());
        posts.insert(text, reply.body["id"].as_str().unwrap().to_owned());
    }
    let post = |key: &str| posts[key].clone();
    // Who sees what.
    assert_eq!(
        call(
            &p,
            &alice,
            "GET",
            &format!("/api/v1/posts/{}", post("bob friends")),
            None
        )
        .await
        .status,
        200
    );
    call(
        &p,
        &alice,
        "GET",
        &format!("/api/v1/posts/{}", post("bob private")),
        None,
    )
    .await
    .assert_problem(404);
    call(
        &p,
        &dave,
        "GET",
        &format!("/api/v1/posts/{}", post("bob friends")),
        None,
    )
    .await
    .assert_problem(404);
    assert_eq!(
        call(
            &p,
            &dave,
            "GET",
            &format!("/api/v1/posts/{}", post("bob public")),
            None
        )
        .await
        .status,
        200
    );
    call(
        &p,
        &dave,
        "PATCH",
        &format!("/api/v1/posts/{}", post("bob public")),
        Some(json!({"text": "mine now"})),
    )
    .await
    .assert_problem(403);
    call(
        &p,
        &dave,
        "DELETE",
        &format!("/api/v1/posts/{}", post("bob friends")),
        None,
    )
    .await
    .assert_problem(404);
    assert_eq!(
        texts(
            &ok(
                &p,
                &dave,
                "GET",
                &format!("/api/v1/users/{}/posts", bob.id),
                None
            )
            .await
        ),
        vec!["bob public"]
    );
    assert_eq!(
        texts(
            &ok(
                &p,
                &alice,
                "GET",
                &format!("/api/v1/users/{}/posts", bob.id),
                None
            )
            .await
        ),
        vec!["bob friends", "bob public"]
    );

    // Reactions and comments.
    let bob_public = post("bob public");
    let thumbs = "%F0%9F%91%8D"; // 👍
    let reacted = ok(
        &p,
        &alice,
        "PUT",
        &format!("/api/v1/posts/{bob_public}/reactions/{thumbs}"),
        None,
    )
    .await;
    assert_eq!(
        reacted,
        json!({"reactions": {"👍": 1}, "my_reactions": ["👍"]})
    );
    ok(
        &p,
        &alice,
        "PUT",
        &format!("/api/v1/posts/{bob_public}/reactions/{thumbs}"),
        None,
    )
    .await;
    let family = "%F0%9F%91%A8%E2%80%8D%F0%9F%91%A9%E2%80%8D%F0%9F%91%A7"; // ZWJ sequence
    ok(
        &p,
        &bob,
        "PUT",
        &format!("/api/v1/posts/{bob_public}/reactions/{family}"),
        None,
    )
    .await;
    for bad in ["ok", "%F0%9F%91%8D%F0%9F%91%8D", "%E2%9D%A4"] {
        call(
            &p,
            &alice,
            "PUT",
            &format!("/api/v1/posts/{bob_public}/reactions/{bad}"),
            None,
        )
        .await
        .assert_problem(400);
    }
    let comment = ok(
        &p,
        &alice,
        "POST",
        &format!("/api/v1/posts/{bob_public}/comments"),
        Some(json!({"text": "nice"})),
    )
    .await;
    let reply = ok(
        &p,
        &bob,
        "POST",
        &format!("/api/v1/posts/{bob_public}/comments"),
        Some(json!({"text": "thanks", "parent_id": comment["id"]})),
    )
    .await;
    assert_eq!(reply["parent_id"], comment["id"]);
    let other_post = post("alice public");
    call(
        &p,
        &bob,
        "POST",
        &format!("/api/v1/posts/{other_post}/comments"),
        Some(json!({"text": "x", "parent_id": comment["id"]})),
    )
    .await
    .assert_problem(400);
    let thread = ok(
        &p,
        &dave,
        "GET",
        &format!("/api/v1/posts/{bob_public}/comments",),
        None,
    )
    .await;
    assert_eq!(texts(&thread), vec!["nice", "thanks"], "oldest first");
    let seen = ok(
        &p,
        &bob,
        "GET",
        &format!("/api/v1/posts/{bob_public}"),
        None,
    )
    .await;
    assert_eq!(seen["comment_count"], 2);
    assert_eq!(seen["reactions"]["👍"], 1);
    assert_eq!(seen["my_reactions"], json!(["👨‍👩‍👧"]));
    call(
        &p,
        &dave,
        "DELETE",
        &format!(
            "/api/v1/posts/{bob_public}/comments/{}",
            comment["id"].as_str().unwrap()
        ),
        None,
    )
    .await
    .assert_problem(403);

    // Feeds: own posts and friends'/followees', newest first, as far as visible.
    assert_eq!(
        texts(&ok(&p, &alice, "GET", "/api/v1/feed", None).await),
        vec!["alice public", "bob friends", "bob public"]
    );
    assert_eq!(
        texts(&ok(&p, &bob, "GET", "/api/v1/feed", None).await),
        vec!["alice public", "bob private", "bob friends", "bob public"]
    );
    assert_eq!(
        texts(&ok(&p, &dave, "GET", "/api/v1/feed", None).await),
        Vec::<String>::new()
    );
    // Pages are disjoint and end with a null cursor.
    let first = ok(&p, &bob, "GET", "/api/v1/feed?limit=3", None).await;
    let rest = ok(
        &p,
        &bob,
        "GET",
        &format!(
            "/api/v1/feed?limit=3&cursor={}",
            first["next_cursor"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(texts(&rest), vec!["bob public"]);
    assert_eq!(rest["next_cursor"], Value::Null);
    call(&p, &bob, "GET", "/api/v1/feed?cursor=garbage", None)
        .await
        .assert_problem(400);
    call(&p, &bob, "GET", "/api/v1/feed?limit=0", None)
        .await
        .assert_problem(400);

    // The block: everything is hidden both ways, at once.
    assert_eq!(
        call(
            &p,
            &bob,
            "PUT",
            &format!("/api/v1/relations/blocks/{}", alice.id),
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(
        texts(&ok(&p, &alice, "GET", "/api/v1/feed", None).await),
        vec!["alice public"]
    );
    assert_eq!(
        texts(&ok(&p, &bob, "GET", "/api/v1/feed", None).await),
        vec!["bob private", "bob friends", "bob public"]
    );
    call(
        &p,
        &alice,
        "GET",
        &format!("/api/v1/posts/{bob_public}"),
        None,
    )
    .await
    .assert_problem(404);
    call(
        &p,
        &alice,
        "PUT",
        &format!("/api/v1/posts/{bob_public}/reactions/{thumbs}"),
        None,
    )
    .await
    .assert_problem(404);
    assert!(
        texts(
            &ok(
                &p,
                &alice,
                "GET",
                &format!("/api/v1/users/{}/posts", bob.id),
                None
            )
            .await
        )
        .is_empty()
    );
    call(
        &p,
        &alice,
        "PUT",
        &format!("/api/v1/relations/following/{}", bob.id),
        None,
    )
    .await
    .assert_problem(403);
    let summary = ok(
        &p,
        &alice,
        "GET",
        &format!("/api/v1/relations/users/{}/summary", bob.id),
        None,
    )
    .await;
    assert_eq!(
        (
            summary["is_friend"].clone(),
            summary["is_following"].clone()
        ),
        (json!(false), json!(false))
    );

    // Deleting a post takes its comments and reactions along.
    assert_eq!(
        call(
            &p,
            &bob,
            "DELETE",
            &format!("/api/v1/posts/{bob_public}"),
            None
        )
        .await
        .status,
        204
    );
    call(
        &p,
        &bob,
        "GET",
        &format!("/api/v1/posts/{bob_public}/comments"),
        None,
    )
    .await
    .assert_problem(404);

    // Internal routes are not reachable through the gateway.
    let internal = get(
        &p.url(&format!("/internal/users/{}/graph", bob.id)),
        Some(&bob.token),
    )
    .await;
    assert_eq!(internal.status, 404);
    let alive_only = get(&p.url("/api/v1/users/me"), None).await;
    alive_only.assert_problem(401);
}

#[actix_web::test]
async fn a_dependency_outage_is_a_clean_503_and_readiness_says_why() {
    let p = support::start().await;
    let alice = person(&p, "alice").await;
    let relations = p
        .platform
        .as_ref()
        .unwrap()
        .server_handle("relations")
        .unwrap();
    relations.stop(false).await;
    let feed = call(&p, &alice, "GET", "/api/v1/feed", None).await;
    feed.assert_problem(503);
    assert!(
        feed.body["detail"].as_str().unwrap().contains("relations"),
        "{}",
        feed.body
    );
    let ready = get(&p.ops_url("users", "/readyz"), None).await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.body["status"], "degraded");
    assert!(
        ready.body["degraded"]["relations"].is_string(),
        "{}",
        ready.body
    );
}

#[actix_web::test]
async fn a_registration_during_a_users_outage_keeps_its_profile_queued() {
    let mut p = support::start().await;
    let users = p.platform.as_ref().unwrap().server_handle("users").unwrap();
    users.stop(false).await;
    let reply = post_json(
        &p.url("/api/v1/auth/register"),
        None,
        json!({"username": "late", "email": "late@example.org", "password": "password-late"}),
    )
    .await;
    assert_eq!(
        reply.status, 201,
        "registration does not depend on the users service"
    );
    // The delivery to users waits in the auth service's outbox; relations got its own.
    let auth_db = agora_common::db::with_database(
        &p.config.database_server_url,
        &format!("{}_auth", p.config.database_prefix),
    );
    let pool = agora_common::db::pool(&auth_db, 1).unwrap();
    let mut conn = pool.get().await.unwrap();
    #[derive(diesel::QueryableByName)]
    struct Job {
        #[diesel(sql_type = diesel::sql_types::Text)]
        kind: String,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        attempts: i32,
    }
    let jobs: Vec<Job> = diesel_async::RunQueryDsl::load(
        diesel::sql_query("SELECT kind, attempts FROM agora_jobs"),
        &mut conn,
    )
    .await
    .unwrap();
    let kinds: Vec<(&str, i32)> = jobs.iter().map(|j| (j.kind.as_str(), j.attempts)).collect();
    assert_eq!(kinds, vec![("account.created:users", 1)]);
    p.stop().await;
}

/// A PNG whose pixels depend on `seed`.
/// Photos through the gateway: a public photo found by tag and reused in someone
/// else's post without re-uploading it, its bytes open to anyone; a private photo
/// refused in another's post, hidden without a token, shared by a link, and a tampered
/// link refused.
#[actix_web::test]
async fn photos_are_found_by_tag_reused_in_posts_and_shared_by_link() {
    let p = support::start().await;
    let alice = person(&p, "alice").await;
    let bob = person(&p, "bob").await;
    let beach = upload(&p, &alice, &png(1), "public", "beach,sunset").await;
    let secret = upload(&p, &alice, &png(2), "private", "beach").await;

    // Bob finds the public one (only) by tag, and posts it.
    let found = ok(&p, &bob, "GET", "/api/v1/photos?tag=beach&tag=sunset", None).await;
    assert_eq!(found["items"][0]["id"], beach["id"]);
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    let post = ok(
        &p,
        &bob,
        "POST",
        "/api/v1/posts",
        Some(json!({"text": "found this", "photo_ids": [beach["id"]], "visibility": "public"})),
    )
    .await;
    assert_eq!(post["photos"][0]["id"], beach["id"], "{post}");
    // Alice's private photo is not his to use.
    let refused = call(
        &p,
        &bob,
        "POST",
        "/api/v1/posts",
        Some(json!({"text": "taken", "photo_ids": [secret["id"]]})),
    )
    .await;
    refused.assert_problem(400);
    // Alice may show her own private photo only where she alone looks: on a private
    // post, not on one that others see (they would get a 404 for it).
    let shown = call(
        &p,
        &alice,
        "POST",
        "/api/v1/posts",
        Some(json!({"text": "mine", "photo_ids": [secret["id"]], "visibility": "friends"})),
    )
    .await;
    shown.assert_problem(400);
    assert_eq!(
        shown.body["type"],
        "https://agora.dev/problems/private-photo-shown-to-others"
    );
    assert_eq!(shown.error_fields(), ["photo_ids[0]"]);
    let diary = ok(
        &p,
        &alice,
        "POST",
        "/api/v1/posts",
        Some(json!({"text": "mine", "photo_ids": [secret["id"]], "visibility": "private"})),
    )
    .await;
    // Nor may an edit show it to others later.
    let diary_path = format!("/api/v1/posts/{}", diary["id"].as_str().unwrap());
    let opened = call(
        &p,
        &alice,
        "PATCH",
        &diary_path,
        Some(json!({"visibility": "public"})),
    )
    .await;
    opened.assert_problem(400);
    assert_eq!(
        opened.body["type"],
        "https://agora.dev/problems/private-photo-shown-to-others"
    );
    assert_eq!(
        ok(&p, &alice, "GET", &diary_path, None).await["visibility"],
        "private",
        "nothing written"
    );
    // A public photo on a public post: everyone who sees the post gets its bytes.
    let everyone = ok(
        &p,
        &alice,
        "POST",
        "/api/v1/posts",
        Some(json!({"text": "view", "photo_ids": [beach["id"]], "visibility": "public"})),
    )
    .await;
    let shown_url = everyone["photos"][0]["url"].as_str().unwrap();
    assert_eq!(get(&p.url(shown_url), Some(&bob.token)).await.status, 200);

    // Public bytes need no token, through the gateway too; private ones do.
    let public = get(&p.url(beach["url"].as_str().unwrap()), None).await;
    assert_eq!(public.status, 200);
    assert_eq!(public.header("content-type"), Some("image/png"));
    let hidden = secret["url"].as_str().unwrap();
    get(&p.url(hidden), None).await.assert_problem(404);
    get(&p.url(hidden), Some(&bob.token))
        .await
        .assert_problem(404);
    assert_eq!(get(&p.url(hidden), Some(&alice.token)).await.status, 200);
    let link = ok(
        &p,
        &alice,
        "POST",
        &format!(
            "/api/v1/photos/{}/share-links",
            secret["id"].as_str().unwrap()
        ),
        Some(json!({"expires_in_seconds": 600})),
    )
    .await;
    let shared = link["url"].as_str().unwrap();
    assert_eq!(get(&p.url(shared), None).await.status, 200);
    let tampered = shared.replace("sig=", "sig=x");
    get(&p.url(&tampered), None).await.assert_problem(404);
    // A photo avatar: a public one (one's own or another's); a private one would be
    // broken for everyone else, so even one's own is refused.
    let avatar = |photo: &Value| json!({"avatar_url": photo["url"]});
    let private_avatar = call(
        &p,
        &alice,
        "PATCH",
        "/api/v1/users/me",
        Some(avatar(&secret)),
    )
    .await;
    private_avatar.assert_problem(400);
    assert_eq!(
        private_avatar.body["type"],
        "https://agora.dev/problems/private-photo-shown-to-others"
    );
    assert_eq!(private_avatar.error_fields(), ["avatar_url"]);
    call(&p, &bob, "PATCH", "/api/v1/users/me", Some(avatar(&secret)))
        .await
        .assert_problem(400);
    assert_eq!(
        ok(&p, &bob, "PATCH", "/api/v1/users/me", Some(avatar(&beach))).await["avatar_url"],
        beach["url"]
    );
    // The merged document carries the photos rows.
    let spec = get(&p.url("/api/v1/openapi.json"), None).await;
    assert!(spec.body["paths"]["/api/v1/photos/{id}/content"]["get"].is_object());
}

/// A friends-only event through the gateway: the organizer's friends see it and answer,
/// a stranger finds nothing; answers change and are counted; the organizer alone edits.
#[actix_web::test]
async fn friends_answer_a_friends_only_event() {
    let p = support::start().await;
    let alice = person(&p, "alice").await;
    let bob = person(&p, "bob").await;
    let carol = person(&p, "carol").await;
    befriend(&p, &alice, &bob).await;
    let starts = "2099-07-14T18:00:00Z";
    let event = ok(
        &p,
        &alice,
        "POST",
        "/api/v1/events",
        Some(json!({
            "title": "Rooftop dinner", "location": "Lyon", "starts_at": starts,
            "ends_at": "2099-07-14T23:00:00Z", "visibility": "friends",
        })),
    )
    .await;
    let id = event["id"].as_str().unwrap();
    let path = format!("/api/v1/events/{id}");
    let rsvp = format!("{path}/rsvp");

    // The end must follow the start.
    call(
        &p,
        &alice,
        "POST",
        "/api/v1/events",
        Some(json!({"title": "Oops", "starts_at": starts, "ends_at": "2099-07-14T17:00:00Z", "visibility": "public"})),
    )
    .await
    .assert_problem(400);

    // Bob, a friend, finds it in his window and answers; Carol, a stranger, cannot.
    let window = "/api/v1/events?from=2099-07-01T00:00:00Z&to=2099-08-01T00:00:00Z";
    let found = ok(&p, &bob, "GET", window, None).await;
    assert_eq!(found["items"][0]["id"], id);
    ok(
        &p,
        &bob,
        "PUT",
        &rsvp,
        Some(json!({"status": "interested"})),
    )
    .await;
    let answered = ok(&p, &bob, "PUT", &rsvp, Some(json!({"status": "going"}))).await;
    assert_eq!(
        answered["rsvp_counts"],
        json!({"going": 1, "interested": 0, "not_going": 0})
    );
    assert_eq!(answered["my_rsvp"], "going");
    let stranger = ok(&p, &carol, "GET", window, None).await;
    assert_eq!(stranger["items"], json!([]));
    call(&p, &carol, "GET", &path, None)
        .await
        .assert_problem(404);
    call(&p, &carol, "PUT", &rsvp, Some(json!({"status": "going"})))
        .await
        .assert_problem(404);

    // The organizer sees who comes; only the organizer edits.
    let attendees = ok(&p, &alice, "GET", &format!("{path}/attendees"), None).await;
    assert_eq!(attendees["items"][0]["user"]["username"], bob.name.as_str());
    assert_eq!(attendees["counts"]["going"], 1);
    call(&p, &bob, "PATCH", &path, Some(json!({"title": "Mine now"})))
        .await
        .assert_problem(403);
    let moved = ok(
        &p,
        &alice,
        "PATCH",
        &path,
        Some(json!({"starts_at": "2099-07-14T19:00:00Z"})),
    )
    .await;
    assert_eq!(moved["rsvp_counts"]["going"], 1);
    assert_eq!(ok(&p, &alice, "DELETE", &path, None).await, Value::Null);
    call(&p, &bob, "GET", &path, None).await.assert_problem(404);
    let spec = get(&p.url("/api/v1/openapi.json"), None).await;
    assert!(spec.body["paths"]["/api/v1/events/{id}/rsvp"]["put"].is_object());
}
