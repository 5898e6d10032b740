//! What a black-box probe of the API found, each checked through the gateway of a
//! running platform as a client would see it: blocks that hide photos and comments,
//! post counts that match the lists, cursors that are input like any other, limits a
//! social network needs, event answers that close, and suggestions for a newcomer.
//! (The refresh-token findings are in `auth_api.rs`, private photos in posts and
//! avatars in `social.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use support::*;

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a page: {page}"))
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

fn problem_type(reply: &Reply) -> &str {
    reply.body["type"].as_str().unwrap_or_default()
}

async fn block(p: &TestPlatform, who: &Person, whom: &Person) {
    ok(
        p,
        who,
        "PUT",
        &format!("/api/v1/relations/blocks/{}", whom.id),
        None,
    )
    .await;
}

async fn post(p: &TestPlatform, who: &Person, text: &str, visibility: &str) -> Value {
    ok(
        p,
        who,
        "POST",
        "/api/v1/posts",
        Some(json!({"text": text, "visibility": visibility})),
    )
    .await
}

/// Blocked either way, the other person's photos are invisible (tag search,
/// metadata), as are their comments on a third party's post, which cannot be answered.
#[actix_web::test]
async fn a_block_hides_photos_and_comments_both_ways() {
    let p = start().await;
    let (xena, yuri, zoe) = (
        person(&p, "xena").await,
        person(&p, "yuri").await,
        person(&p, "zoe").await,
    );
    let photo = upload(&p, &xena, &png(7), "public", "harbour").await;
    let photo_path = format!("/api/v1/photos/{}", id(&photo));
    let wall = post(&p, &zoe, "open to all", "public").await;
    let comments = format!("/api/v1/posts/{}/comments", id(&wall));
    let remark = ok(
        &p,
        &xena,
        "POST",
        &comments,
        Some(json!({"text": "xena was here"})),
    )
    .await;
    ok(
        &p,
        &yuri,
        "POST",
        &comments,
        Some(json!({"text": "yuri too"})),
    )
    .await;

    // Before the block, Yuri sees all of it.
    let found = ok(&p, &yuri, "GET", "/api/v1/photos?tag=harbour", None).await;
    assert_eq!(ids(&found), [id(&photo)]);
    assert_eq!(
        ok(&p, &yuri, "GET", &photo_path, None).await["id"],
        photo["id"]
    );
    assert_eq!(
        ok(&p, &yuri, "GET", &comments, None).await["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    for (blocker, blocked) in [(&xena, &yuri), (&yuri, &xena)] {
        block(&p, blocker, blocked).await;
        // Yuri (blocked or blocking) no longer finds or reads Xena's photo.
        let found = ok(&p, &yuri, "GET", "/api/v1/photos?tag=harbour", None).await;
        assert_eq!(ids(&found), Vec::<String>::new(), "{}", blocker.name);
        call(&p, &yuri, "GET", &photo_path, None)
            .await
            .assert_problem(404);
        // Zoe still does.
        let found = ok(&p, &zoe, "GET", "/api/v1/photos?tag=harbour", None).await;
        assert_eq!(ids(&found), [id(&photo)]);
        // On Zoe's post, each sees only their own comment and Zoe's; a reply to the
        // other's comment is refused as if it did not exist.
        let seen = ok(&p, &yuri, "GET", &comments, None).await;
        let texts: Vec<&str> = seen["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["text"].as_str().unwrap())
            .collect();
        assert_eq!(texts, ["yuri too"], "{}", blocker.name);
        let seen = ok(&p, &xena, "GET", &comments, None).await;
        let texts: Vec<&str> = seen["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["text"].as_str().unwrap())
            .collect();
        assert_eq!(texts, ["xena was here"]);
        let reply = call(
            &p,
            &yuri,
            "POST",
            &comments,
            Some(json!({"text": "answer", "parent_id": remark["id"]})),
        )
        .await;
        reply.assert_problem(404);
        // Nothing was written.
        assert_eq!(
            ok(&p, &zoe, "GET", &comments, None).await["items"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        // Photos of the blocked person cannot go into the blocker's posts either.
        let reuse = call(
            &p,
            &yuri,
            "POST",
            "/api/v1/posts",
            Some(json!({"text": "look", "photo_ids": [photo["id"]], "visibility": "public"})),
        )
        .await;
        reuse.assert_problem(400);
        ok(
            &p,
            blocker,
            "DELETE",
            &format!("/api/v1/relations/blocks/{}", blocked.id),
            None,
        )
        .await;
    }
    // Unblocked, all of it is back.
    assert_eq!(
        ids(&ok(&p, &yuri, "GET", "/api/v1/photos?tag=harbour", None).await),
        [id(&photo)]
    );
}

/// A profile's post count is the number of that person's posts the viewer can list.
#[actix_web::test]
async fn post_counts_match_what_the_viewer_can_list() {
    let p = start().await;
    let (ann, friend, stranger, foe) = (
        person(&p, "ann").await,
        person(&p, "ann_friend").await,
        person(&p, "stranger").await,
        person(&p, "foe").await,
    );
    befriend(&p, &ann, &friend).await;
    post(&p, &ann, "for everyone", "public").await;
    post(&p, &ann, "for friends", "friends").await;
    let diary = post(&p, &ann, "for me", "private").await;
    block(&p, &ann, &foe).await;
    let profile = format!("/api/v1/users/{}", ann.id);
    let list = format!("/api/v1/users/{}/posts", ann.id);
    for (viewer, expected) in [(&ann, 3), (&friend, 2), (&stranger, 1), (&foe, 0)] {
        let counts = &ok(&p, viewer, "GET", &profile, None).await["counts"];
        let listed = ok(&p, viewer, "GET", &list, None).await["items"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(counts["posts"], expected, "{}", viewer.name);
        assert_eq!(listed, expected, "{}", viewer.name);
    }
    // Search results count the same way.
    let found = ok(&p, &friend, "GET", "/api/v1/users?q=ann", None).await;
    let ann_found = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == ann.id.as_str())
        .unwrap();
    assert_eq!(ann_found["counts"]["posts"], 2);
    // Counters follow edits and deletions.
    let diary_path = format!("/api/v1/posts/{}", id(&diary));
    ok(
        &p,
        &ann,
        "PATCH",
        &diary_path,
        Some(json!({"visibility": "public"})),
    )
    .await;
    assert_eq!(
        ok(&p, &stranger, "GET", &profile, None).await["counts"]["posts"],
        2
    );
    ok(&p, &ann, "DELETE", &diary_path, None).await;
    assert_eq!(
        ok(&p, &stranger, "GET", &profile, None).await["counts"]["posts"],
        1
    );
    assert_eq!(
        ok(&p, &ann, "GET", "/api/v1/users/me", None).await["counts"]["posts"],
        2
    );
}

/// A decoded cursor is input: bad values and cursors of another list are a 400, never
/// a 500.
#[actix_web::test]
async fn crafted_and_foreign_cursors_are_refused() {
    let p = start().await;
    let (amy, ben) = (person(&p, "amy").await, person(&p, "ben").await);
    ok(
        &p,
        &amy,
        "PUT",
        &format!("/api/v1/relations/following/{}", ben.id),
        None,
    )
    .await;
    for i in 0..3 {
        post(&p, &ben, &format!("post {i}"), "public").await;
    }
    let cursor = |json: &str| URL_SAFE_NO_PAD.encode(json.as_bytes());
    // NUL in a text position, a timestamp PostgreSQL cannot hold, the old format.
    let nul = cursor(r#"["v2","users.search","a\u0000"]"#);
    let old = "WyJ2MSIsImFcdTAwMDAiXQ"; // ["v1","a\u0000"], the probe's own
    for query in [
        format!("/api/v1/users?q=a&cursor={nul}"),
        format!("/api/v1/users?cursor={nul}"),
        format!("/api/v1/users?q=a&cursor={old}"),
        format!(
            "/api/v1/feed?cursor={}",
            cursor(
                r#"["v2","feed",["-200000-01-01T00:00:00Z","00000000-0000-0000-0000-000000000000"]]"#
            )
        ),
    ] {
        let reply = call(&p, &amy, "GET", &query, None).await;
        reply.assert_problem(400);
        assert_eq!(reply.error_fields(), ["cursor"], "{query}");
    }
    // A real feed cursor works on the feed, and on no other list.
    let page = ok(&p, &amy, "GET", "/api/v1/feed?limit=1", None).await;
    let next = page["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(
        ok(
            &p,
            &amy,
            "GET",
            &format!("/api/v1/feed?limit=1&cursor={next}"),
            None
        )
        .await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    for list in [
        format!("/api/v1/users/{}/posts", ben.id),
        format!("/api/v1/relations/users/{}/followers", ben.id),
        format!("/api/v1/relations/users/{}/following", amy.id),
        "/api/v1/relations/friend-requests".to_owned(),
        "/api/v1/relations/blocks".to_owned(),
        "/api/v1/events".to_owned(),
    ] {
        let sep = if list.contains('?') { '&' } else { '?' };
        call(&p, &amy, "GET", &format!("{list}{sep}cursor={next}"), None)
            .await
            .assert_problem(400);
    }
}

/// Reactions are capped per person and post; text of only spaces is no post; a
/// declined friend request may not be sent again at once.
#[actix_web::test]
async fn limits_a_social_network_needs() {
    let p = start().await;
    let (kim, lee) = (person(&p, "kim").await, person(&p, "lee").await);
    let note = post(&p, &kim, "react to this", "public").await;
    let reactions = format!("/api/v1/posts/{}/reactions", id(&note));
    let emoji = [
        "👍", "❤️", "😂", "😮", "😢", "🎉", "🔥", "👀", "🙏", "💯", "🚀",
    ];
    let reaction = |e: &str| format!("{reactions}/{}", urlencode(e));
    for e in &emoji[..10] {
        ok(&p, &lee, "PUT", &reaction(e), None).await;
    }
    let eleventh = call(&p, &lee, "PUT", &reaction(emoji[10]), None).await;
    eleventh.assert_problem(409);
    assert_eq!(
        problem_type(&eleventh),
        "https://agora.dev/problems/reaction-limit"
    );
    // Adding one already there stays idempotent; withdrawing one makes room.
    let again = ok(&p, &lee, "PUT", &reaction(emoji[0]), None).await;
    assert_eq!(again["my_reactions"].as_array().unwrap().len(), 10);
    ok(&p, &lee, "DELETE", &reaction(emoji[0]), None).await;
    let room = ok(&p, &lee, "PUT", &reaction(emoji[10]), None).await;
    assert_eq!(room["my_reactions"].as_array().unwrap().len(), 10);
    // Five concurrent additions of new emoji at nine: only one passes the cap.
    ok(&p, &lee, "DELETE", &reaction(emoji[10]), None).await;
    let racers = ["🌈", "🍕", "⚽", "🎸", "🌊"];
    let paths: Vec<String> = racers.iter().map(|e| reaction(e)).collect();
    let replies =
        futures_util::future::join_all(paths.iter().map(|path| call(&p, &lee, "PUT", path, None)))
            .await;
    assert_eq!(replies.iter().filter(|r| r.status == 200).count(), 1);
    assert_eq!(replies.iter().filter(|r| r.status == 409).count(), 4);

    // Text of only white space.
    for text in ["   ", "\n\t "] {
        let blank = call(
            &p,
            &kim,
            "POST",
            "/api/v1/posts",
            Some(json!({"text": text})),
        )
        .await;
        blank.assert_problem(400);
        assert_eq!(blank.error_fields(), ["text"]);
        let comment = call(
            &p,
            &kim,
            "POST",
            &format!("/api/v1/posts/{}/comments", id(&note)),
            Some(json!({"text": text})),
        )
        .await;
        comment.assert_problem(400);
    }

    // A decline holds for a day: the same sender may not ask again meanwhile.
    let requests = "/api/v1/relations/friend-requests";
    let asked = ok(&p, &kim, "POST", requests, Some(json!({"to": lee.id}))).await;
    ok(
        &p,
        &lee,
        "POST",
        &format!("{requests}/{}/decline", id(&asked)),
        None,
    )
    .await;
    let again = call(&p, &kim, "POST", requests, Some(json!({"to": lee.id}))).await;
    again.assert_problem(429);
    assert_eq!(
        problem_type(&again),
        "https://agora.dev/problems/friend-request-cooldown"
    );
    let retry: u64 = again.header("retry-after").unwrap().parse().unwrap();
    assert!((86_000..=86_400).contains(&retry), "{retry}");
    // The one who declined may still ask; asked, both are friends.
    let reverse = call(&p, &lee, "POST", requests, Some(json!({"to": kim.id}))).await;
    assert_eq!(reverse.status, 201, "{}", reverse.body);
    // Already pending, already friends: their own types.
    let pending = call(&p, &lee, "POST", requests, Some(json!({"to": kim.id}))).await;
    assert_eq!(
        problem_type(&pending),
        "https://agora.dev/problems/friend-request-pending"
    );
    ok(
        &p,
        &kim,
        "POST",
        &format!("{requests}/{}/accept", id(&reverse.body)),
        None,
    )
    .await;
    let friends = call(&p, &kim, "POST", requests, Some(json!({"to": lee.id}))).await;
    friends.assert_problem(409);
    assert_eq!(
        problem_type(&friends),
        "https://agora.dev/problems/already-friends"
    );
}

fn urlencode(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// Answers close when an event is over (also their withdrawal); an event in progress
/// is listed by default; the documented edits work, and errors name field and rule.
#[actix_web::test]
async fn events_in_progress_past_answers_and_documented_edits() {
    let p = start().await;
    let (org, guest) = (person(&p, "org").await, person(&p, "guest").await);
    let now = chrono::Utc::now();
    let at = |minutes: i64| {
        (now + chrono::Duration::minutes(minutes))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let create = |title: &str, starts: String, ends: String| json!({"title": title, "starts_at": starts, "ends_at": ends, "visibility": "public"});
    let running = ok(
        &p,
        &org,
        "POST",
        "/api/v1/events",
        Some(create("running", at(-30), at(60))),
    )
    .await;
    let ended = ok(
        &p,
        &org,
        "POST",
        "/api/v1/events",
        Some(create("ended", at(-120), at(-60))),
    )
    .await;
    let coming = ok(
        &p,
        &org,
        "POST",
        "/api/v1/events",
        Some(create("coming", at(60), at(120))),
    )
    .await;

    // Without `from`: the event in progress and the coming one, not the past one.
    let listed = ok(&p, &guest, "GET", "/api/v1/events", None).await;
    assert_eq!(ids(&listed), [id(&running), id(&coming)]);
    // With `from`, as documented: what starts from then on.
    let from = format!("/api/v1/events?from={}", at(0).replace('+', "%2B"));
    assert_eq!(
        ids(&ok(&p, &guest, "GET", &from, None).await),
        [id(&coming)]
    );
    // A `from` at the end of time without `to` is an empty window, not an error.
    let last = ok(
        &p,
        &guest,
        "GET",
        "/api/v1/events?from=9999-12-31T23:59:59Z",
        None,
    )
    .await;
    assert_eq!(ids(&last), Vec::<String>::new());

    // An answer to the running one can change and be withdrawn; to the ended one not.
    let rsvp = |e: &Value| format!("/api/v1/events/{}/rsvp", id(e));
    ok(
        &p,
        &guest,
        "PUT",
        &rsvp(&running),
        Some(json!({"status": "going"})),
    )
    .await;
    ok(&p, &guest, "DELETE", &rsvp(&running), None).await;
    for (method, body) in [("PUT", Some(json!({"status": "going"}))), ("DELETE", None)] {
        let closed = call(&p, &guest, method, &rsvp(&ended), body).await;
        closed.assert_problem(409);
        assert_eq!(
            problem_type(&closed),
            "https://agora.dev/problems/event-over"
        );
    }

    // `""` clears ends_at, as documented; `null` on a field that cannot be cleared
    // names the field and the rule.
    let path = format!("/api/v1/events/{}", id(&coming));
    let cleared = ok(&p, &org, "PATCH", &path, Some(json!({"ends_at": ""}))).await;
    assert_eq!(cleared["ends_at"], Value::Null);
    let set = ok(&p, &org, "PATCH", &path, Some(json!({"ends_at": at(180)}))).await;
    assert!(set["ends_at"].is_string());
    let cleared = ok(&p, &org, "PATCH", &path, Some(json!({"ends_at": null}))).await;
    assert_eq!(cleared["ends_at"], Value::Null);
    for (body, field) in [
        (json!({"visibility": null}), "visibility"),
        (json!({"title": null}), "title"),
        (json!({"ends_at": "tomorrow"}), "ends_at"),
        (json!({"visibility": "everyone"}), "visibility"),
    ] {
        let refused = call(&p, &org, "PATCH", &path, Some(body.clone())).await;
        refused.assert_problem(400);
        assert_eq!(refused.error_fields(), [field], "{body}");
        assert!(
            refused.body["detail"].as_str().unwrap().starts_with(field),
            "{}",
            refused.body
        );
    }
}

/// A newcomer, with no graph yet, is offered the most followed people (with why),
/// never themselves, the people they follow or asked, nor anyone blocked either way.
#[actix_web::test]
async fn a_newcomer_gets_popular_suggestions() {
    let p = start().await;
    let star = person(&p, "star").await;
    let rising = person(&p, "rising").await;
    let names: Vec<String> = (0..4).map(|i| format!("fan{i}")).collect();
    let fans: Vec<Person> =
        futures_util::future::join_all(names.iter().map(|name| person(&p, name))).await;
    for (i, fan) in fans.iter().enumerate() {
        ok(
            &p,
            fan,
            "PUT",
            &format!("/api/v1/relations/following/{}", star.id),
            None,
        )
        .await;
        if i < 2 {
            ok(
                &p,
                fan,
                "PUT",
                &format!("/api/v1/relations/following/{}", rising.id),
                None,
            )
            .await;
        }
    }
    let new = person(&p, "newcomer").await;
    let suggested = ok(
        &p,
        &new,
        "GET",
        "/api/v1/relations/suggestions?limit=2",
        None,
    )
    .await;
    let items = suggested["items"].as_array().unwrap();
    let names: Vec<&str> = items
        .iter()
        .map(|s| s["user"]["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["star", "rising"], "{suggested}");
    assert!(
        items.iter().all(|s| s["reason"] == "popular"),
        "{suggested}"
    );

    // A block (either way) and a pending request take people off the list; following
    // one leads to graph-based suggestions of those they follow.
    block(&p, &rising, &new).await;
    let someone = &fans[3];
    ok(
        &p,
        &new,
        "POST",
        "/api/v1/relations/friend-requests",
        Some(json!({"to": someone.id})),
    )
    .await;
    ok(
        &p,
        &new,
        "PUT",
        &format!("/api/v1/relations/following/{}", fans[0].id),
        None,
    )
    .await;
    let suggested = ok(&p, &new, "GET", "/api/v1/relations/suggestions", None).await;
    let names: Vec<&str> = suggested["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["user"]["username"].as_str().unwrap())
        .collect();
    assert_eq!(names.first(), Some(&"star"), "{suggested}");
    assert_eq!(
        suggested["items"][0]["reason"],
        "followed_by_your_followees"
    );
    for absent in ["rising", "fan3", "fan0", "newcomer"] {
        assert!(!names.contains(&absent), "{absent}: {suggested}");
    }
}
