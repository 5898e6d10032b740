//! Notifications end to end, through the gateway of a running platform: made from what
//! the users, relations and events services record (within two seconds), undone with
//! their causes, grouped, filtered, marked read, muted, withheld between people who
//! block each other; the internal route's ordering guarantees; and the live stream
//! (credentials, tickets, heartbeats, `Last-Event-ID`, a slow reader).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

mod support;

use agora_common::client::ServiceToken;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::*;
use uuid::Uuid;

const INTERNAL: &str = "notifications-test-internal-credential-0123456789";

async fn platform() -> TestPlatform {
    let mut config = support::config();
    config.internal_token = ServiceToken::new(INTERNAL).unwrap();
    config.stream_heartbeat = Duration::from_secs(1);
    support::start_with(config).await
}

/// The caller's notifications (one page of up to 100).
async fn list(p: &TestPlatform, who: &Person, query: &str) -> Vec<Value> {
    let page = ok(
        p,
        who,
        "GET",
        &format!("/api/v1/notifications{query}"),
        None,
    )
    .await;
    page["items"].as_array().unwrap().clone()
}

/// Waits (up to the contract's two seconds, measured from now) until `who`'s list
/// satisfies `check`; the list as it then is.
async fn within_2s(p: &TestPlatform, who: &Person, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let items = list(p, who, "?limit=100").await;
        if check(&items) {
            return items;
        }
        assert!(
            Instant::now() < deadline,
            "not within 2 s; the list: {items:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether nothing changes for a while: for what must *not* be made (the same
/// deliveries as for what must, and then some).
async fn still_after_delivery(p: &TestPlatform, who: &Person, expected: usize) {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let items = list(p, who, "?limit=100").await;
    assert_eq!(items.len(), expected, "{items:#?}");
}

fn kinds(items: &[Value]) -> Vec<&str> {
    items.iter().map(|n| n["kind"].as_str().unwrap()).collect()
}

async fn unread(p: &TestPlatform, who: &Person) -> i64 {
    ok(p, who, "GET", "/api/v1/notifications/unread-count", None).await["unread"]
        .as_i64()
        .unwrap()
}

/// 👍 and 🎉, as a path segment.
const THUMBS: &str = "%F0%9F%91%8D";
const PARTY: &str = "%F0%9F%8E%89";

/// `who` adds (`PUT`) or withdraws (`DELETE`) a reaction on `post`.
async fn react(p: &TestPlatform, who: &Person, post: &str, emoji: &str, method: &str) {
    let path = format!("/api/v1/posts/{post}/reactions/{emoji}");
    ok(p, who, method, &path, None).await;
}

/// `who` follows (`PUT`) or unfollows (`DELETE`) `whom`.
async fn follow(p: &TestPlatform, who: &Person, whom: &Person, method: &str) {
    let path = format!("/api/v1/relations/following/{}", whom.id);
    ok(p, who, method, &path, None).await;
}

/// `who` comments on `post` (`body`: the comment's fields).
async fn comment(p: &TestPlatform, who: &Person, post: &str, body: Value) -> Value {
    let path = format!("/api/v1/posts/{post}/comments");
    ok(p, who, "POST", &path, Some(body)).await
}

/// `POST /notifications/read` with `body`.
async fn mark_read(p: &TestPlatform, who: &Person, body: Value) -> Reply {
    call(p, who, "POST", "/api/v1/notifications/read", Some(body)).await
}

async fn post(p: &TestPlatform, who: &Person, text: &str) -> String {
    let post = ok(
        p,
        who,
        "POST",
        "/api/v1/posts",
        Some(json!({"text": text, "visibility": "public"})),
    )
    .await;
    post["id"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn actions_notify_their_recipient_and_undoing_them_takes_it_back() {
    let p = platform().await;
    let ada = person(&p, "ada").await;
    let bo = person(&p, "bob").await;
    let cy = person(&p, "cyd").await;

    // A follow notifies within 2 s; one's own actions notify nobody.
    follow(&p, &bo, &ada, "PUT").await;
    let items = within_2s(&p, &ada, |i| i.len() == 1).await;
    assert_eq!(items[0]["kind"], "follow");
    assert_eq!(
        items[0]["actors"],
        json!([{"id": bo.id, "username": "bob"}])
    );
    assert_eq!(items[0]["actors_count"], 1);
    assert_eq!(items[0]["subject"], json!({"type": "user", "id": bo.id}));
    assert_eq!(items[0]["read"], false);
    let own = post(&p, &ada, "ada's post").await;
    react(&p, &ada, &own, THUMBS, "PUT").await;
    comment(&p, &ada, &own, json!({"text": "me"})).await;

    // Two people's reactions (three emoji) on one post: one notification, two actors,
    // the newest first; it keeps its id when it grows.
    react(&p, &bo, &own, THUMBS, "PUT").await;
    let first = within_2s(&p, &ada, |i| i.len() == 2).await;
    let reaction_id = first[0]["id"].clone();
    react(&p, &cy, &own, PARTY, "PUT").await;
    react(&p, &bo, &own, PARTY, "PUT").await;
    // bob's 🎉 (after cyd's) makes him the newest actor.
    let items = within_2s(&p, &ada, |i| {
        i[0]["actors_count"] == 2 && i[0]["actors"][0]["id"] == bo.id.as_str()
    })
    .await;
    assert_eq!(kinds(&items), ["reaction", "follow"]);
    assert_eq!(
        items[0]["id"], reaction_id,
        "a group keeps its id and place"
    );
    assert_eq!(items[0]["subject"], json!({"type": "post", "id": own}));
    // A repeated PUT is no news: the group does not change.
    react(&p, &bo, &own, PARTY, "PUT").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(list(&p, &ada, "").await[0], items[0]);

    // A comment and a reply; the count matches the list.
    let bos_comment = comment(&p, &bo, &own, json!({"text": "nice"})).await;
    let comment_id = bos_comment["id"].as_str().unwrap().to_owned();
    let mine = comment(&p, &ada, &own, json!({"text": "thanks"})).await;
    comment(
        &p,
        &cy,
        &own,
        json!({"text": "agreed", "parent_id": mine["id"]}),
    )
    .await;
    let items = within_2s(&p, &ada, |i| i.len() == 4).await;
    assert_eq!(kinds(&items), ["reply", "comment", "reaction", "follow"]);
    assert_eq!(
        items[1]["subject"],
        json!({"type": "comment", "id": comment_id, "post_id": own})
    );
    let unread_items = items.iter().filter(|n| n["read"] == false).count();
    assert_eq!((unread(&p, &ada).await, unread_items), (4, 4));
    let replies = list(&p, &ada, "?kind=reply&kind=comment&kind=reply").await;
    assert_eq!(kinds(&replies), ["reply", "comment"]);

    // Undone or deleted causes leave the list: the comment, bo's reactions, the follow.
    ok(
        &p,
        &bo,
        "DELETE",
        &format!("/api/v1/posts/{own}/comments/{comment_id}"),
        None,
    )
    .await;
    within_2s(&p, &ada, |i| kinds(i) == ["reply", "reaction", "follow"]).await;
    react(&p, &bo, &own, THUMBS, "DELETE").await;
    react(&p, &bo, &own, PARTY, "DELETE").await;
    let items = within_2s(&p, &ada, |i| i[1]["actors_count"] == 1).await;
    assert_eq!(
        items[1]["actors"],
        json!([{"id": cy.id, "username": "cyd"}])
    );
    follow(&p, &bo, &ada, "DELETE").await;
    within_2s(&p, &ada, |i| kinds(i) == ["reply", "reaction"]).await;

    // Pages, newest first.
    let page = ok(&p, &ada, "GET", "/api/v1/notifications?limit=1", None).await;
    assert_eq!(page["items"][0]["kind"], "reply");
    let cursor = page["next_cursor"].as_str().unwrap();
    let next = ok(
        &p,
        &ada,
        "GET",
        &format!("/api/v1/notifications?limit=1&cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(next["items"][0]["kind"], "reaction");
    assert!(next["next_cursor"].is_null());

    // Read marks: by ids (others' ids ignored), then `up_to`.
    let newest = page["items"][0]["id"].as_str().unwrap().to_owned();
    let bos = person(&p, "boss").await;
    assert_eq!(
        mark_read(&p, &bos, json!({"ids": [newest]})).await.status,
        204
    );
    assert_eq!(
        unread(&p, &ada).await,
        2,
        "someone else's read marks change nothing"
    );
    assert_eq!(
        mark_read(&p, &ada, json!({"ids": [newest, Uuid::now_v7()]}))
            .await
            .status,
        204
    );
    assert_eq!(unread(&p, &ada).await, 1);
    assert_eq!(list(&p, &ada, "?unread=true").await.len(), 1);
    let oldest = next["items"][0]["id"].as_str().unwrap();
    mark_read(&p, &bos, json!({"up_to": oldest}))
        .await
        .assert_problem(404);
    assert_eq!(
        mark_read(&p, &ada, json!({"up_to": newest})).await.status,
        204
    );
    assert_eq!(unread(&p, &ada).await, 0);
    assert_eq!(
        mark_read(&p, &ada, json!({"up_to": newest})).await.status,
        204
    );

    // A new actor on a read group makes it unread again, in its place.
    react(&p, &bo, &own, THUMBS, "PUT").await;
    let items = within_2s(&p, &ada, |i| i[1]["actors_count"] == 2).await;
    assert_eq!(items[1]["read"], false);
    assert_eq!(items[1]["id"], reaction_id);

    // Deleting the post takes everything about it away.
    ok(&p, &ada, "DELETE", &format!("/api/v1/posts/{own}"), None).await;
    within_2s(&p, &ada, |i| i.is_empty()).await;

    // Bad input: each a problem, nothing changed.
    let many: Vec<Uuid> = (0..101).map(|_| Uuid::now_v7()).collect();
    let reply = mark_read(&p, &ada, json!({"ids": many})).await;
    reply.assert_problem(400);
    assert_eq!(reply.error_fields(), ["ids"]);
    let reply = call(&p, &ada, "GET", "/api/v1/notifications?kind=poke", None).await;
    reply.assert_problem(400);
    assert_eq!(reply.error_fields(), ["kind"]);
    mark_read(&p, &ada, json!({})).await.assert_problem(400);
    call(&p, &ada, "GET", "/api/v1/notifications?unread=maybe", None)
        .await
        .assert_problem(400);
    call(&p, &ada, "GET", "/api/v1/notifications?cursor=forged", None)
        .await
        .assert_problem(400);
    call(
        &p,
        &ada,
        "PUT",
        "/api/v1/notifications/preferences",
        Some(json!({"muted_kinds": ["poke"]})),
    )
    .await
    .assert_problem(400);
}

#[actix_web::test]
async fn relations_and_events_notify_and_blocks_and_mutes_withhold() {
    let p = platform().await;
    let ada = person(&p, "ada").await;
    let bo = person(&p, "bob").await;
    let cy = person(&p, "cyd").await;

    // A friend request, its acceptance, a match, an RSVP.
    let request = ok(
        &p,
        &bo,
        "POST",
        "/api/v1/relations/friend-requests",
        Some(json!({"to": ada.id})),
    )
    .await;
    let items = within_2s(&p, &ada, |i| i.len() == 1).await;
    assert_eq!(items[0]["kind"], "friend_request");
    assert_eq!(
        items[0]["subject"],
        json!({"type": "friend_request", "id": request["id"]})
    );
    ok(
        &p,
        &ada,
        "POST",
        &format!(
            "/api/v1/relations/friend-requests/{}/accept",
            request["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    let items = within_2s(&p, &bo, |i| i.len() == 1).await;
    assert_eq!(items[0]["kind"], "friend_accepted");
    assert_eq!(items[0]["subject"], json!({"type": "user", "id": ada.id}));
    within_2s(&p, &ada, |i| i.is_empty()).await; // the request is settled
    ok(
        &p,
        &ada,
        "PUT",
        &format!("/api/v1/relations/likes/{}", bo.id),
        None,
    )
    .await;
    ok(
        &p,
        &bo,
        "PUT",
        &format!("/api/v1/relations/likes/{}", ada.id),
        None,
    )
    .await;
    let items = within_2s(&p, &ada, |i| i.len() == 1).await;
    assert_eq!(items[0]["kind"], "match");
    let event = ok(
        &p,
        &ada,
        "POST",
        "/api/v1/events",
        Some(json!({
            "title": "picnic", "starts_at": "2099-01-01T12:00:00Z", "visibility": "public"
        })),
    )
    .await;
    let event_id = event["id"].as_str().unwrap().to_owned();
    ok(
        &p,
        &cy,
        "PUT",
        &format!("/api/v1/events/{event_id}/rsvp"),
        Some(json!({"status": "going"})),
    )
    .await;
    let items = within_2s(&p, &ada, |i| i.len() == 2).await;
    assert_eq!(items[0]["kind"], "event_rsvp");
    assert_eq!(
        items[0]["subject"],
        json!({"type": "event", "id": event_id})
    );
    ok(
        &p,
        &cy,
        "PUT",
        &format!("/api/v1/events/{event_id}/rsvp"),
        Some(json!({"status": "not_going"})),
    )
    .await;
    within_2s(&p, &ada, |i| kinds(i) == ["match"]).await;
    ok(
        &p,
        &bo,
        "DELETE",
        &format!("/api/v1/relations/likes/{}", ada.id),
        None,
    )
    .await;
    within_2s(&p, &ada, |i| i.is_empty()).await;
    ok(
        &p,
        &bo,
        "DELETE",
        &format!("/api/v1/relations/friends/{}", ada.id),
        None,
    )
    .await;
    within_2s(&p, &bo, |i| i.is_empty()).await;

    // Muted kinds are not made; unmuted, they are again.
    let prefs = ok(
        &p,
        &ada,
        "PUT",
        "/api/v1/notifications/preferences",
        Some(json!({"muted_kinds": ["follow", "follow"]})),
    )
    .await;
    assert_eq!(prefs, json!({"muted_kinds": ["follow"]}));
    assert_eq!(
        ok(&p, &ada, "GET", "/api/v1/notifications/preferences", None).await,
        prefs
    );
    follow(&p, &cy, &ada, "PUT").await;
    still_after_delivery(&p, &ada, 0).await;
    ok(
        &p,
        &ada,
        "PUT",
        "/api/v1/notifications/preferences",
        Some(json!({"muted_kinds": []})),
    )
    .await;
    follow(&p, &cy, &ada, "DELETE").await;
    follow(&p, &cy, &ada, "PUT").await;
    within_2s(&p, &ada, |i| kinds(i) == ["follow"]).await;

    // Blocking removes what the other caused, and nothing new comes from them.
    let own = post(&p, &ada, "hello").await;
    react(&p, &cy, &own, THUMBS, "PUT").await;
    react(&p, &bo, &own, THUMBS, "PUT").await;
    within_2s(&p, &ada, |i| i.len() == 2 && i[0]["actors_count"] == 2).await;
    ok(
        &p,
        &ada,
        "PUT",
        &format!("/api/v1/relations/blocks/{}", cy.id),
        None,
    )
    .await;
    let items = within_2s(&p, &ada, |i| i.len() == 1).await;
    assert_eq!(
        items[0]["actors"],
        json!([{"id": bo.id, "username": "bob"}])
    );
    // cy can no longer see the post; an event RSVP from someone blocked is withheld.
    ok(
        &p,
        &ada,
        "PUT",
        &format!("/api/v1/relations/blocks/{}", bo.id),
        None,
    )
    .await;
    within_2s(&p, &ada, |i| i.is_empty()).await;
    let theirs = ok(
        &p,
        &bo,
        "POST",
        "/api/v1/events",
        Some(json!({
            "title": "party", "starts_at": "2099-01-01T20:00:00Z", "visibility": "public"
        })),
    )
    .await;
    call(
        &p,
        &ada,
        "PUT",
        &format!("/api/v1/events/{}/rsvp", theirs["id"].as_str().unwrap()),
        Some(json!({"status": "going"})),
    )
    .await;
    still_after_delivery(&p, &bo, 0).await;
}

/// Delivers a notice to the notifications service's internal route, as an outbox does.
async fn deliver(p: &TestPlatform, notice: Value) -> u16 {
    send(
        "POST",
        &p.service_url("notifications", "/internal/notices"),
        Some(INTERNAL),
        &[],
        Some(("application/json", notice.to_string().into_bytes())),
    )
    .await
    .status
}

#[actix_web::test]
async fn notices_are_safe_to_repeat_and_to_reorder() {
    let p = platform().await;
    let ada = person(&p, "ada").await;
    let bo = person(&p, "bob").await;
    let follow = |op: &str, id: Uuid| {
        json!({"id": id, "op": op, "cause": {
            "kind": "follow", "recipient": ada.id,
            "actor": {"id": bo.id, "username": "bob"},
            "subject": {"type": "user", "id": bo.id}
        }})
    };
    // Only other services may deliver.
    let reply = post_json(
        &p.service_url("notifications", "/internal/notices"),
        Some(&ada.token),
        follow("made", Uuid::now_v7()),
    )
    .await;
    reply.assert_problem(401);

    // The undo is newer than the fact but arrives first: the fact then makes nothing.
    let (fact, undo) = (Uuid::now_v7(), Uuid::now_v7());
    assert_eq!(deliver(&p, follow("undone", undo)).await, 204);
    assert_eq!(deliver(&p, follow("made", fact)).await, 204);
    assert!(list(&p, &ada, "").await.is_empty());

    // A newer fact counts, once however often it is delivered.
    let again = Uuid::now_v7();
    for _ in 0..3 {
        assert_eq!(deliver(&p, follow("made", again)).await, 204);
    }
    assert_eq!(list(&p, &ada, "").await.len(), 1);
    assert_eq!(unread(&p, &ada).await, 1);

    // Unfollow then follow again, delivered the other way round (deliveries run
    // concurrently): the new follow is news, the older undo changes nothing.
    let first = list(&p, &ada, "").await[0].clone();
    mark_read(&p, &ada, json!({"up_to": first["id"]})).await;
    let (undo, refollow) = (Uuid::now_v7(), Uuid::now_v7());
    assert_eq!(deliver(&p, follow("made", refollow)).await, 204);
    assert_eq!(deliver(&p, follow("undone", undo)).await, 204);
    let items = list(&p, &ada, "").await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["read"], false, "the follow again is news");

    // A subject gone before its cause arrives: the cause makes nothing.
    let post = Uuid::now_v7();
    assert_eq!(
        deliver(
            &p,
            json!({"id": Uuid::now_v7(), "op": "gone", "subject": post})
        )
        .await,
        204
    );
    let reaction = json!({"id": Uuid::now_v7(), "op": "made", "cause": {
        "kind": "reaction", "recipient": ada.id, "actor": {"id": bo.id, "username": "bob"},
        "subject": {"type": "post", "id": post}, "detail": "👍"
    }});
    assert_eq!(deliver(&p, reaction).await, 204);
    assert_eq!(list(&p, &ada, "").await.len(), 1);

    // A malformed notice is refused, and changes nothing.
    let status = deliver(
        &p,
        json!({"id": Uuid::now_v7(), "op": "made", "cause": {"kind": "poke"}}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(list(&p, &ada, "").await.len(), 1);
}

async fn ticket(p: &TestPlatform, who: &Person) -> String {
    let reply = call(p, who, "POST", "/api/v1/notifications/stream-tickets", None).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert!(reply.body["expires_in"].as_u64().unwrap() <= 60);
    reply.body["ticket"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn the_stream_delivers_through_the_gateway() {
    let p = platform().await;
    let ada = person(&p, "ada").await;
    let bo = person(&p, "bob").await;
    let stream = p.url("/api/v1/notifications/stream");

    // A credential is required, and a token never goes in the URL.
    assert_eq!(Events::open(&stream, None, None).await.err(), Some(401));
    let reply = get(&format!("{stream}?access_token={}", ada.token), None).await;
    reply.assert_problem(400);
    assert_eq!(
        Events::open(&format!("{stream}?ticket=forged"), None, None)
            .await
            .err(),
        Some(401)
    );

    // A ticket opens it once; it starts with the unread count.
    let ticket = ticket(&p, &ada).await;
    let mut events = Events::open(&format!("{stream}?ticket={ticket}"), None, None)
        .await
        .unwrap();
    assert_eq!(
        Events::open(&format!("{stream}?ticket={ticket}"), None, None)
            .await
            .err(),
        Some(401)
    );
    let first = events.next_event(Duration::from_secs(2)).await.unwrap();
    assert_eq!(
        (first.event.as_str(), first.data.as_str()),
        ("unread", r#"{"unread":0}"#)
    );

    // A new notification arrives within 2 s of the action's answer, with its id, then
    // the count.
    let acted = Instant::now();
    follow(&p, &bo, &ada, "PUT").await;
    let event = events
        .next_event(Duration::from_secs(2))
        .await
        .expect("no event within 2 s");
    assert!(acted.elapsed() < Duration::from_secs(2));
    assert_eq!(event.event, "notification");
    let item: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(item["kind"], "follow");
    assert_eq!(item, list(&p, &ada, "").await[0]);
    let seen = event.id.clone().expect("a notification event has an id");
    let count = events.next_event(Duration::from_secs(2)).await.unwrap();
    assert_eq!(
        (count.event.as_str(), count.data.as_str()),
        ("unread", r#"{"unread":1}"#)
    );

    // Heartbeats (1 s in this platform) keep it open.
    let beat = events.next(Duration::from_secs(3)).await.unwrap();
    assert_eq!(beat.event, ":");
    drop(events);

    // Missed while away: replayed after `Last-Event-ID` (header auth this time).
    let own = post(&p, &ada, "hi").await;
    react(&p, &bo, &own, THUMBS, "PUT").await;
    within_2s(&p, &ada, |i| i.len() == 2).await;
    let mut events = Events::open(&stream, Some(&ada.token), Some(&seen))
        .await
        .unwrap();
    let replayed = events.next_event(Duration::from_secs(2)).await.unwrap();
    assert_eq!(replayed.event, "notification");
    assert_eq!(
        serde_json::from_str::<Value>(&replayed.data).unwrap()["kind"],
        "reaction"
    );
    assert!(replayed.id.unwrap().parse::<i64>().unwrap() > seen.parse::<i64>().unwrap());
    assert_eq!(
        events
            .next_event(Duration::from_secs(2))
            .await
            .unwrap()
            .event,
        "unread"
    );
    drop(events);

    // An id that is not one of this stream's: a reset, then live.
    let mut events = Events::open(&stream, Some(&bo.token), Some(&seen))
        .await
        .unwrap();
    assert_eq!(
        events
            .next_event(Duration::from_secs(2))
            .await
            .unwrap()
            .event,
        "reset"
    );
    assert_eq!(
        events
            .next_event(Duration::from_secs(2))
            .await
            .unwrap()
            .event,
        "unread"
    );
    drop(events);

    // Open streams per user are limited (5 by default), and a closed one frees its
    // place (at the latest when the next heartbeat finds its client gone).
    let mut open = Vec::new();
    for _ in 0..5 {
        open.push(open_when_free(&stream, &bo).await);
    }
    assert_eq!(
        Events::open(&stream, Some(&bo.token), None).await.err(),
        Some(429)
    );
    open.pop();
    open.push(open_when_free(&stream, &bo).await);
}

/// Opens a stream of `who`'s, waiting for a closed one to be let go: at the latest
/// when the heartbeats (1 s here) written to its client fail, at each hop.
async fn open_when_free(stream: &str, who: &Person) -> Events {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(10);
    loop {
        match Events::open(stream, Some(&who.token), None).await {
            Ok(events) => {
                eprintln!("stream opened after {:?}", started.elapsed());
                return events;
            }
            Err(status) => {
                assert_eq!(status, 429);
                assert!(Instant::now() < deadline, "a closed stream still counts");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[actix_web::test]
async fn a_public_post_reusing_a_public_photo_tells_its_owner() {
    let p = platform().await;
    let ada = person(&p, "ada").await;
    let bob = person(&p, "bob").await;
    let photo = upload(&p, &ada, &png(3), "public", "sunset").await;
    let photo_id = photo["id"].as_str().unwrap().to_owned();
    let own = upload(&p, &bob, &png(4), "public", "").await;

    // A friends-only post may be one ada cannot see: no notification. A public one,
    // with ada's photo twice and bob's own: one, naming the post and the photo.
    let mut hidden =
        json!({"text": "only friends", "visibility": "friends", "photo_ids": [photo_id]});
    ok(&p, &bob, "POST", "/api/v1/posts", Some(hidden.take())).await;
    let public = ok(
        &p,
        &bob,
        "POST",
        "/api/v1/posts",
        Some(json!({
            "text": "look", "visibility": "public", "photo_ids": [photo_id, own["id"], photo_id]
        })),
    )
    .await;
    let items = within_2s(&p, &ada, |i| !i.is_empty()).await;
    still_after_delivery(&p, &ada, 1).await;
    assert_eq!(items[0]["kind"], "photo_reused");
    assert_eq!(
        items[0]["subject"],
        json!({"type": "post", "id": public["id"], "photo_id": photo_id})
    );
    assert_eq!(
        items[0]["actors"],
        json!([{"id": bob.id, "username": "bob"}])
    );
    // Reusing one's own photo tells nobody.
    assert!(list(&p, &bob, "").await.is_empty());
    // The post deleted, the notification goes.
    let path = format!("/api/v1/posts/{}", public["id"].as_str().unwrap());
    ok(&p, &bob, "DELETE", &path, None).await;
    within_2s(&p, &ada, |i| i.is_empty()).await;
}
