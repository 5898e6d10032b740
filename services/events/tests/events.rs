//! The events service against a real PostgreSQL and a real relations service: field
//! rules, friends-only visibility and blocks, organizer-only edits, RSVP changes with
//! their counts, attendee lists and time-window pagination.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

use agora_common::testing::{self, TestKeys, basics};
use chrono::{DateTime, Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const INTERNAL: &str = "events-test-internal-token-0123456789abcdef";

/// The events service and the relations service it asks, on the kit's harness.
struct Harness(testing::Harness);

impl std::ops::Deref for Harness {
    type Target = testing::Harness;
    fn deref(&self) -> &testing::Harness {
        &self.0
    }
}

type User = testing::Person;

async fn start() -> Harness {
    let keys = TestKeys::new();
    let relations = agora_relations::build_with(
        agora_relations::Config {
            basics: basics(testing::fresh_database("events_rel").await, INTERNAL),
            notifications_url: None,
        },
        keys.verifier(),
    )
    .await
    .unwrap();
    let relations = testing::serve(relations).api;
    let events = agora_events::build_with(
        agora_events::Config {
            basics: basics(testing::fresh_database("events").await, INTERNAL),
            relations_url: relations.clone(),
            notifications_url: None,
        },
        keys.verifier(),
    )
    .await
    .unwrap();
    Harness(
        testing::Harness::new(keys, INTERNAL)
            .serving("/api/v1", &testing::serve(events).api, false)
            .serving("/api/v1/relations", &relations, true),
    )
}

/// An instant from now, to the second (PostgreSQL keeps microseconds).
fn at(offset: Duration) -> String {
    (Utc::now() + offset).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Harness {
    async fn event(
        &self,
        who: &User,
        title: &str,
        starts_in: Duration,
        visibility: &str,
    ) -> String {
        let body = json!({"title": title, "starts_at": at(starts_in), "visibility": visibility});
        let event = self
            .ok(who, Method::POST, "/api/v1/events", Some(body))
            .await;
        event["id"].as_str().unwrap().to_owned()
    }

    async fn befriend(&self, a: &User, b: &User) {
        let request = self
            .ok(
                a,
                Method::POST,
                "/api/v1/relations/friend-requests",
                Some(json!({"to": b.id})),
            )
            .await;
        let id = request["id"].as_str().unwrap();
        let path = format!("/api/v1/relations/friend-requests/{id}/accept");
        self.ok(b, Method::POST, &path, None).await;
    }

    async fn rsvp(&self, who: &User, event: &str, status: &str) -> (StatusCode, Value) {
        let path = format!("/api/v1/events/{event}/rsvp");
        self.call(who, Method::PUT, &path, Some(json!({"status": status})))
            .await
    }
}

fn fields(body: &Value) -> Vec<&str> {
    body["errors"]
        .as_array()
        .map(|a| a.iter().map(|e| e["field"].as_str().unwrap()).collect())
        .unwrap_or_default()
}

fn titles(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["title"].as_str().unwrap())
        .collect()
}

#[actix_web::test]
async fn events_follow_the_field_rules() {
    let h = start().await;
    let alice = h.user("alice").await;
    let create = |body: Value| h.call(&alice, Method::POST, "/api/v1/events", Some(body));

    let starts = at(Duration::days(3));
    let (status, body) = create(json!({
        "title": "Picnic", "starts_at": starts, "ends_at": starts, "visibility": "public",
    }))
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(fields(&body), ["ends_at"]);
    assert_eq!(
        body["type"], "https://agora.dev/problems/validation-failed",
        "{body}"
    );

    let (status, body) = create(json!({
        "title": "  ", "description": "d".repeat(5001), "location": "l".repeat(201),
        "starts_at": starts, "visibility": "public",
    }))
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(fields(&body), ["title", "description", "location"]);

    for bad in [
        json!({"title": "x", "starts_at": starts}),
        json!({"title": "x", "starts_at": starts, "visibility": "private"}),
        json!({"title": "x", "starts_at": "tomorrow", "visibility": "public"}),
        json!({"title": "x", "starts_at": starts, "visibility": "public", "colour": "red"}),
    ] {
        let (status, body) = create(bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["status"], 400);
    }
    // Nothing was written by the refused requests.
    let everything = format!("/api/v1/events?from={}", urlencode(&at(-Duration::days(1))));
    let page = h.ok(&alice, Method::GET, &everything, None).await;
    assert_eq!(titles(&page), Vec::<&str>::new());

    let ends = at(Duration::days(3) + Duration::hours(2));
    let event = h
        .ok(
            &alice,
            Method::POST,
            "/api/v1/events",
            Some(json!({
                "title": "Picnic 🧺", "description": "Bring fruit", "location": "Parc de la Tête d'Or",
                "starts_at": starts, "ends_at": ends, "visibility": "friends",
            })),
        )
        .await;
    assert_eq!(event["organizer"]["id"], alice.id.to_string());
    assert_eq!(event["visibility"], "friends");
    assert_eq!(
        event["rsvp_counts"],
        json!({"going": 0, "interested": 0, "not_going": 0})
    );
    assert_eq!(event["my_rsvp"], Value::Null);
    let parsed: DateTime<Utc> = event["ends_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(parsed, ends.parse::<DateTime<Utc>>().unwrap());
}

#[actix_web::test]
async fn friends_only_events_are_for_friends_and_blocks_hide_everything() {
    let h = start().await;
    let alice = h.user("alice").await;
    let bob = h.user("bob").await;
    let carol = h.user("carol").await;
    h.befriend(&alice, &carol).await;
    let party = h.event(&alice, "Party", Duration::days(2), "friends").await;
    let talk = h.event(&alice, "Talk", Duration::days(1), "public").await;
    let path = format!("/api/v1/events/{party}");

    // Bob is no friend: the party does not exist for him, in any way.
    let (status, body) = h.call(&bob, Method::GET, &path, None).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(h.rsvp(&bob, &party, "going").await.0, 404);
    let attendees = format!("{path}/attendees");
    assert_eq!(h.call(&bob, Method::GET, &attendees, None).await.0, 404);
    assert_eq!(
        h.call(&bob, Method::PATCH, &path, Some(json!({"title": "mine"})))
            .await
            .0,
        404
    );
    let page = h.ok(&bob, Method::GET, "/api/v1/events", None).await;
    assert_eq!(titles(&page), ["Talk"]);

    // Carol is a friend: she sees both, soonest first, and may answer.
    let page = h.ok(&carol, Method::GET, "/api/v1/events", None).await;
    assert_eq!(titles(&page), ["Talk", "Party"]);
    let (status, event) = h.rsvp(&carol, &party, "going").await;
    assert_eq!(status, 200, "{event}");
    assert_eq!(event["rsvp_counts"]["going"], 1);
    assert_eq!(event["my_rsvp"], "going");
    // The organizer sees their own friends-only event.
    let page = h.ok(&alice, Method::GET, "/api/v1/events", None).await;
    assert_eq!(titles(&page), ["Talk", "Party"]);

    // Unfriended, Carol loses the party at once (no stale cache).
    let unfriend = format!("/api/v1/relations/friends/{}", alice.id);
    h.ok(&carol, Method::DELETE, &unfriend, None).await;
    assert_eq!(h.call(&carol, Method::GET, &path, None).await.0, 404);

    // Blocked by Alice, Bob sees not even her public talk.
    let block = format!("/api/v1/relations/blocks/{}", bob.id);
    h.ok(&alice, Method::PUT, &block, None).await;
    let talk_path = format!("/api/v1/events/{talk}");
    assert_eq!(h.call(&bob, Method::GET, &talk_path, None).await.0, 404);
    let page = h.ok(&bob, Method::GET, "/api/v1/events", None).await;
    assert_eq!(titles(&page), Vec::<&str>::new());
    let mine = format!("/api/v1/events?organizer={}", alice.id);
    let page = h.ok(&bob, Method::GET, &mine, None).await;
    assert_eq!(titles(&page), Vec::<&str>::new());
}

#[actix_web::test]
async fn only_the_organizer_edits_and_deletes() {
    let h = start().await;
    let alice = h.user("alice").await;
    let bob = h.user("bob").await;
    let id = h.event(&alice, "Meetup", Duration::days(5), "public").await;
    let path = format!("/api/v1/events/{id}");

    let patch = json!({"title": "Bob's now"});
    let (status, body) = h.call(&bob, Method::PATCH, &path, Some(patch)).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(h.call(&bob, Method::DELETE, &path, None).await.0, 403);

    // An end before the (unchanged) start is refused, and nothing changes.
    let early = json!({"ends_at": at(Duration::days(4))});
    let (status, body) = h.call(&alice, Method::PATCH, &path, Some(early)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(fields(&body), ["ends_at"]);
    let unchanged = h.ok(&alice, Method::GET, &path, None).await;
    assert_eq!(unchanged["ends_at"], Value::Null);

    let edited = h
        .ok(
            &alice,
            Method::PATCH,
            &path,
            Some(json!({
                "title": "Meetup, moved", "location": "Lyon", "ends_at": at(Duration::days(6)),
                "visibility": "friends",
            })),
        )
        .await;
    assert_eq!(edited["title"], "Meetup, moved");
    assert_eq!(edited["location"], "Lyon");
    assert_eq!(edited["visibility"], "friends");
    assert!(edited["updated_at"].as_str() > edited["created_at"].as_str());
    // Now friends-only: Bob cannot see it any more.
    assert_eq!(h.call(&bob, Method::GET, &path, None).await.0, 404);
    // null clears, absent keeps.
    let cleared = h
        .ok(
            &alice,
            Method::PATCH,
            &path,
            Some(json!({"location": null, "ends_at": null})),
        )
        .await;
    assert_eq!(
        (cleared["location"].clone(), cleared["ends_at"].clone()),
        (Value::Null, Value::Null)
    );
    assert_eq!(cleared["title"], "Meetup, moved");
    let (status, _) = h
        .call(&alice, Method::PATCH, &path, Some(json!({"title": null})))
        .await;
    assert_eq!(status, 400);

    assert_eq!(h.rsvp(&alice, &id, "going").await.0, 200);
    assert_eq!(h.call(&alice, Method::DELETE, &path, None).await.0, 204);
    assert_eq!(h.call(&alice, Method::GET, &path, None).await.0, 404);
    assert_eq!(h.rsvp(&alice, &id, "going").await.0, 404);
    assert_eq!(h.call(&alice, Method::DELETE, &path, None).await.0, 404);
}

#[actix_web::test]
async fn rsvps_change_and_count() {
    let h = start().await;
    let alice = h.user("alice").await;
    let guests = [
        h.user("bob").await,
        h.user("carol").await,
        h.user("dave").await,
    ];
    let id = h
        .event(&alice, "Concert", Duration::days(1), "public")
        .await;

    let (status, body) = h.rsvp(&guests[0], &id, "maybe").await;
    assert_eq!(status, 400, "{body}");
    for (guest, status) in guests.iter().zip(["going", "interested", "going"]) {
        assert_eq!(h.rsvp(guest, &id, status).await.0, 200);
    }
    // Bob changes his mind twice; the same answer again changes nothing.
    h.rsvp(&guests[0], &id, "interested").await;
    let (_, event) = h.rsvp(&guests[0], &id, "not_going").await;
    let (_, again) = h.rsvp(&guests[0], &id, "not_going").await;
    let counts = json!({"going": 1, "interested": 1, "not_going": 1});
    assert_eq!(event["rsvp_counts"], counts);
    assert_eq!(again["rsvp_counts"], counts);
    assert_eq!(again["my_rsvp"], "not_going");

    // The list keeps first-answer order, filters by status, and pages.
    let path = format!("/api/v1/events/{id}/attendees");
    let all = h.ok(&alice, Method::GET, &path, None).await;
    let people: Vec<_> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["user"]["id"].as_str().unwrap(),
                a["status"].as_str().unwrap(),
            )
        })
        .collect();
    let ids: Vec<String> = guests.iter().map(|g| g.id.to_string()).collect();
    assert_eq!(
        people,
        [
            (ids[0].as_str(), "not_going"),
            (ids[1].as_str(), "interested"),
            (ids[2].as_str(), "going")
        ]
    );
    assert_eq!(all["counts"], counts);
    let going = h
        .ok(&alice, Method::GET, &format!("{path}?status=going"), None)
        .await;
    assert_eq!(going["items"].as_array().unwrap().len(), 1);
    assert_eq!(going["items"][0]["user"]["id"], ids[2]);
    let first = h
        .ok(&alice, Method::GET, &format!("{path}?limit=2"), None)
        .await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = h
        .ok(
            &alice,
            Method::GET,
            &format!("{path}?limit=2&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(rest["items"][0]["user"]["id"], ids[2]);
    assert_eq!(rest["next_cursor"], Value::Null);
    for bad in ["?status=maybe", "?limit=0", "?cursor=forged"] {
        let (status, body) = h
            .call(&alice, Method::GET, &format!("{path}{bad}"), None)
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }

    // Withdrawn answers leave the counts (idempotent).
    let rsvp = format!("/api/v1/events/{id}/rsvp");
    for _ in 0..2 {
        let (status, _) = h.call(&guests[2], Method::DELETE, &rsvp, None).await;
        assert_eq!(status, 204);
    }
    let event = h
        .ok(
            &guests[2],
            Method::GET,
            &format!("/api/v1/events/{id}"),
            None,
        )
        .await;
    assert_eq!(
        event["rsvp_counts"],
        json!({"going": 0, "interested": 1, "not_going": 1})
    );
    assert_eq!(event["my_rsvp"], Value::Null);

    // Carol blocks the organizer: her answer leaves the organizer's list, not the counts.
    let block = format!("/api/v1/relations/blocks/{}", alice.id);
    h.ok(&guests[1], Method::PUT, &block, None).await;
    let listed = h.ok(&alice, Method::GET, &path, None).await;
    let listed: Vec<_> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["user"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, [ids[0].clone()]);
    let all = h.ok(&alice, Method::GET, &path, None).await;
    assert_eq!(
        all["counts"],
        json!({"going": 0, "interested": 1, "not_going": 1})
    );

    // Answers close when the event is over.
    let past = h
        .event(&alice, "Yesterday", -Duration::days(1), "public")
        .await;
    let (status, body) = h.rsvp(&guests[0], &past, "going").await;
    assert_eq!(status, 409, "{body}");
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[actix_web::test]
async fn listings_cover_a_time_window_in_pages() {
    let h = start().await;
    let alice = h.user("alice").await;
    let bob = h.user("bob").await;
    h.event(&alice, "past", -Duration::hours(1), "public").await;
    for day in 1..=5 {
        h.event(&alice, &format!("day {day}"), Duration::days(day), "public")
            .await;
    }
    h.event(
        &bob,
        "bob's",
        Duration::days(3) + Duration::hours(1),
        "public",
    )
    .await;

    // Default window: from now on, soonest first, in pages.
    let mut seen = Vec::new();
    let mut path = "/api/v1/events?limit=4".to_owned();
    loop {
        let page = h.ok(&bob, Method::GET, &path, None).await;
        seen.extend(titles(&page).into_iter().map(str::to_owned));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/events?limit=4&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ["day 1", "day 2", "day 3", "bob's", "day 4", "day 5"]);

    let window = format!(
        "/api/v1/events?from={}&to={}",
        urlencode(&at(Duration::days(2) - Duration::hours(1))),
        urlencode(&at(Duration::days(4) - Duration::hours(1)))
    );
    let page = h.ok(&bob, Method::GET, &window, None).await;
    assert_eq!(titles(&page), ["day 2", "day 3", "bob's"]);
    let theirs = format!("{window}&organizer={}", alice.id);
    let page = h.ok(&bob, Method::GET, &theirs, None).await;
    assert_eq!(titles(&page), ["day 2", "day 3"]);
    let since = format!(
        "/api/v1/events?from={}&limit=1",
        urlencode(&at(-Duration::days(1)))
    );
    let page = h.ok(&bob, Method::GET, &since, None).await;
    assert_eq!(titles(&page), ["past"]);

    let backwards = format!(
        "/api/v1/events?from={}&to={}",
        urlencode(&at(Duration::days(2))),
        urlencode(&at(Duration::days(1)))
    );
    for bad in [
        backwards.as_str(),
        "/api/v1/events?from=soon",
        "/api/v1/events?limit=101",
        "/api/v1/events?organizer=me",
        "/api/v1/events?sort=asc",
    ] {
        let (status, body) = h.call(&bob, Method::GET, bad, None).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
}
