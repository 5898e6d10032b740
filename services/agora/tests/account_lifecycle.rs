//! Leaving Agora through `agora up`: an erasure reaches every service, the person's
//! tokens stop at once everywhere, counts others see follow, and a service that is away
//! during the erasure finishes its part when it returns. A password change refuses the
//! tokens issued before it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

mod support;

use agora_common::client::ServiceToken;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::{Person, TestPlatform, call, get, ok, person, png, post_json, send, upload};

const INTERNAL: &str = "account-lifecycle-internal-token-0123456789";

async fn platform() -> TestPlatform {
    let mut config = support::config();
    config.internal_token = ServiceToken::new(INTERNAL).unwrap();
    support::start_with(config).await
}

/// One authenticated `GET` on each service, through the gateway.
fn one_path_per_service(who: &Person) -> Vec<(&'static str, String)> {
    vec![
        ("auth", "/api/v1/auth/me".to_owned()),
        ("users", format!("/api/v1/users/{}", who.id)),
        (
            "relations",
            format!("/api/v1/relations/users/{}/followers", who.id),
        ),
        ("photos", "/api/v1/photos?tag=anything".to_owned()),
        ("events", "/api/v1/events".to_owned()),
        ("notifications", "/api/v1/notifications".to_owned()),
    ]
}

/// Waits until `who`'s token is refused (401) by every service; panics after `limit`.
async fn refused_everywhere_within(p: &TestPlatform, who: &Person, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut waiting = one_path_per_service(who);
    while !waiting.is_empty() {
        let mut still = Vec::new();
        for (service, path) in waiting {
            if call(p, who, "GET", &path, None).await.status != 401 {
                still.push((service, path));
            }
        }
        waiting = still;
        assert!(
            started.elapsed() <= limit || waiting.is_empty(),
            "still accepted after {limit:?} by {:?}",
            waiting.iter().map(|(s, _)| s).collect::<Vec<_>>()
        );
        if !waiting.is_empty() {
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }
    started.elapsed()
}

async fn deletion_status(p: &TestPlatform, id: &str) -> Value {
    let reply = get(&p.url(&format!("/api/v1/auth/deletions/{id}")), None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

async fn erased_within(p: &TestPlatform, id: &str, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let status = deletion_status(p, id).await;
        if status["status"] == "erased" {
            return status;
        }
        assert_eq!(status["status"], "erasing");
        assert!(
            started.elapsed() < limit,
            "not erased within {limit:?}: {status}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn delete_account(p: &TestPlatform, who: &Person, password: &str) -> support::Reply {
    send(
        "DELETE",
        &p.url("/api/v1/auth/me"),
        Some(&who.token),
        &[],
        Some((
            "application/json",
            json!({ "password": password }).to_string().into_bytes(),
        )),
    )
    .await
}

/// Everything a person left in every service, and what others see of them.
struct Footprint {
    post: String,
    own_post: String,
    photo: String,
    own_event: String,
    others_event: String,
}

async fn leave_a_footprint(p: &TestPlatform, alice: &Person, bob: &Person) -> Footprint {
    let post = ok(
        p,
        bob,
        "POST",
        "/api/v1/posts",
        Some(json!({"text": "bob's post"})),
    )
    .await;
    let post = post["id"].as_str().unwrap().to_owned();
    ok(
        p,
        alice,
        "POST",
        &format!("/api/v1/posts/{post}/comments"),
        Some(json!({"text": "nice"})),
    )
    .await;
    ok(
        p,
        alice,
        "PUT",
        &format!("/api/v1/posts/{post}/reactions/%F0%9F%91%8D"),
        None,
    )
    .await;
    ok(
        p,
        alice,
        "PUT",
        &format!("/api/v1/relations/following/{}", bob.id),
        None,
    )
    .await;
    ok(
        p,
        bob,
        "PUT",
        &format!("/api/v1/relations/following/{}", alice.id),
        None,
    )
    .await;
    let photo = upload(p, alice, &png(7), "public", "erasure-sunset").await;
    let photo = photo["id"].as_str().unwrap().to_owned();
    let own_post = ok(
        p,
        alice,
        "POST",
        "/api/v1/posts",
        Some(json!({"text": "alice's", "photo_ids": [photo]})),
    )
    .await;
    let own_post = own_post["id"].as_str().unwrap().to_owned();
    ok(
        p,
        bob,
        "PUT",
        &format!("/api/v1/posts/{own_post}/reactions/%F0%9F%8E%89"),
        None,
    )
    .await;
    let event = |title: &str| json!({"title": title, "starts_at": "2099-07-14T18:00:00Z", "visibility": "public"});
    let own_event = ok(p, alice, "POST", "/api/v1/events", Some(event("alice's"))).await;
    let own_event = own_event["id"].as_str().unwrap().to_owned();
    let others_event = ok(p, bob, "POST", "/api/v1/events", Some(event("bob's"))).await;
    let others_event = others_event["id"].as_str().unwrap().to_owned();
    let going = json!({"status": "going"});
    ok(
        p,
        bob,
        "PUT",
        &format!("/api/v1/events/{own_event}/rsvp"),
        Some(going.clone()),
    )
    .await;
    ok(
        p,
        alice,
        "PUT",
        &format!("/api/v1/events/{others_event}/rsvp"),
        Some(going),
    )
    .await;
    Footprint {
        post,
        own_post,
        photo,
        own_event,
        others_event,
    }
}

/// The counts Bob sees: his post's comments and reactions, his followers and following,
/// his event's attendance.
async fn counts_bob_sees(p: &TestPlatform, bob: &Person, f: &Footprint) -> Value {
    let post = ok(p, bob, "GET", &format!("/api/v1/posts/{}", f.post), None).await;
    let profile = ok(p, bob, "GET", &format!("/api/v1/users/{}", bob.id), None).await;
    let event = ok(
        p,
        bob,
        "GET",
        &format!("/api/v1/events/{}", f.others_event),
        None,
    )
    .await;
    json!({
        "comments": post["comment_count"],
        "reactions": post["reactions"],
        "followers": profile["counts"]["followers"],
        "following": profile["counts"]["following"],
        "going": event["rsvp_counts"]["going"],
    })
}

/// Every actor named in Bob's notifications.
async fn actors_in_notifications(p: &TestPlatform, bob: &Person) -> Vec<String> {
    let page = ok(p, bob, "GET", "/api/v1/notifications?limit=100", None).await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| n["actors"].as_array().unwrap().clone())
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn an_erasure_removes_the_person_everywhere_and_refuses_their_tokens_at_once() {
    let p = platform().await;
    let alice = person(&p, "alice").await;
    let bob = person(&p, "bob").await;
    let f = leave_a_footprint(&p, &alice, &bob).await;
    let before = counts_bob_sees(&p, &bob, &f).await;
    assert_eq!(
        before,
        json!({"comments": 1, "reactions": {"👍": 1}, "followers": 1, "following": 1, "going": 1})
    );
    let photo_url = format!("/api/v1/photos/{}/content", f.photo);
    assert_eq!(get(&p.url(&photo_url), None).await.status, 200);
    // The notifications reach Bob (delivered in the background).
    let started = Instant::now();
    while !actors_in_notifications(&p, &bob).await.contains(&alice.id) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no notification names alice"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }

    // A wrong password changes nothing; an empty one is a 400 naming the field.
    delete_account(&p, &alice, "not-her-password")
        .await
        .assert_problem(401);
    let empty = delete_account(&p, &alice, "").await;
    empty.assert_problem(400);
    assert_eq!(empty.error_fields(), ["password"]);
    assert_eq!(
        call(&p, &alice, "GET", "/api/v1/auth/me", None)
            .await
            .status,
        200
    );

    let answer = delete_account(&p, &alice, "password-alice").await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert_eq!(answer.body["status"], "erasing");
    let deletion = answer.body["deletion_id"].as_str().unwrap().to_owned();
    // Her unexpired token is refused by every service within 2 s.
    let took = refused_everywhere_within(&p, &alice, Duration::from_secs(2)).await;
    eprintln!("token refused everywhere after {took:?}");
    let login = post_json(
        &p.url("/api/v1/auth/login"),
        None,
        json!({"login": "alice", "password": "password-alice"}),
    )
    .await;
    login.assert_problem(401);

    let done = erased_within(&p, &deletion, Duration::from_secs(60)).await;
    assert!(
        done["erased_at"].is_string() && done["requested_at"].is_string(),
        "{done}"
    );

    // Nothing of her is readable; what others see of her counts dropped.
    let after = counts_bob_sees(&p, &bob, &f).await;
    assert_eq!(
        after,
        json!({"comments": 0, "reactions": {}, "followers": 0, "following": 0, "going": 0})
    );
    for path in [
        format!("/api/v1/users/{}", alice.id),
        format!("/api/v1/posts/{}", f.own_post),
        format!("/api/v1/events/{}", f.own_event),
        format!("/api/v1/photos/{}", f.photo),
    ] {
        call(&p, &bob, "GET", &path, None).await.assert_problem(404);
    }
    assert_eq!(get(&p.url(&photo_url), None).await.status, 404);
    let found = ok(&p, &bob, "GET", "/api/v1/photos?tag=erasure-sunset", None).await;
    assert_eq!(found["items"], json!([]));
    let comments = ok(
        &p,
        &bob,
        "GET",
        &format!("/api/v1/posts/{}/comments", f.post),
        None,
    )
    .await;
    assert_eq!(comments["items"], json!([]));
    assert!(!actors_in_notifications(&p, &bob).await.contains(&alice.id));

    // The username stays reserved; the email is free at once.
    let again = |username: &str| json!({"username": username, "email": "alice@example.org", "password": "password-again"});
    let taken = post_json(&p.url("/api/v1/auth/register"), None, again("alice")).await;
    taken.assert_problem(409);
    assert_eq!(
        taken.body["type"]
            .as_str()
            .unwrap_or_default()
            .rsplit('/')
            .next(),
        Some("username-taken")
    );
    let fresh = post_json(&p.url("/api/v1/auth/register"), None, again("alice2")).await;
    assert_eq!(fresh.status, 201, "{}", fresh.body);

    // Each service's erasure runs again safely: nothing left, nothing else touched.
    for service in ["users", "relations", "photos", "events", "notifications"] {
        let url = p.service_url(service, &format!("/internal/accounts/{}", alice.id));
        let reply = send("DELETE", &url, Some(INTERNAL), &[], None).await;
        assert_eq!(reply.status, 204, "{service}: {}", reply.body);
        // Without the service credential, nothing.
        let refused = send("DELETE", &url, Some(&bob.token), &[], None).await;
        assert_eq!(refused.status, 401, "{service}");
    }
    assert_eq!(counts_bob_sees(&p, &bob, &f).await, after);
    // Bob's own things are untouched.
    let bobs = ok(&p, &bob, "GET", &format!("/api/v1/posts/{}", f.post), None).await;
    assert_eq!(bobs["text"], "bob's post");
}

#[actix_web::test]
async fn an_erasure_status_is_public_by_its_unguessable_id_and_says_nothing_else() {
    let p = platform().await;
    let unknown = get(
        &p.url(&format!("/api/v1/auth/deletions/{}", uuid::Uuid::new_v4())),
        None,
    )
    .await;
    unknown.assert_problem(404);
    let malformed = get(&p.url("/api/v1/auth/deletions/not-a-uuid"), None).await;
    malformed.assert_problem(404);
    let carol = person(&p, "carol").await;
    let answer = delete_account(&p, &carol, "password-carol").await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let id = answer.body["deletion_id"].as_str().unwrap();
    let status = erased_within(&p, id, Duration::from_secs(60)).await;
    let mut fields: Vec<&str> = status
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["erased_at", "requested_at", "status"]);
    // A second request with the refused token: 401, not a second erasure.
    delete_account(&p, &carol, "password-carol")
        .await
        .assert_problem(401);
}

#[actix_web::test]
async fn an_erasure_waits_for_a_service_that_is_away_and_completes_when_it_returns() {
    let p = platform().await;
    let dan = person(&p, "dan").await;
    let erin = person(&p, "erin").await;
    let event = ok(
        &p,
        &erin,
        "POST",
        "/api/v1/events",
        Some(
            json!({"title": "erin's", "starts_at": "2099-07-14T18:00:00Z", "visibility": "public"}),
        ),
    )
    .await;
    let rsvp = format!("/api/v1/events/{}/rsvp", event["id"].as_str().unwrap());
    ok(&p, &dan, "PUT", &rsvp, Some(json!({"status": "going"}))).await;
    // The events service stops taking connections: its erasure waits.
    let events = p
        .platform
        .as_ref()
        .unwrap()
        .server_handle("events")
        .unwrap();
    events.pause().await;
    let answer = delete_account(&p, &dan, "password-dan").await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let id = answer.body["deletion_id"].as_str().unwrap().to_owned();
    actix_web::rt::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(deletion_status(&p, &id).await["status"], "erasing");
    events.resume().await;
    erased_within(&p, &id, Duration::from_secs(60)).await;
    let after = ok(
        &p,
        &erin,
        "GET",
        &format!("/api/v1/events/{}", event["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(after["rsvp_counts"]["going"], 0, "{after}");
}

#[actix_web::test]
async fn a_password_change_refuses_the_tokens_issued_before_it_and_a_new_sign_in_works_at_once() {
    let p = platform().await;
    let fay = person(&p, "fay").await;
    // A second session's token, issued before the change.
    let other = post_json(
        &p.url("/api/v1/auth/login"),
        None,
        json!({"login": "fay", "password": "password-fay"}),
    )
    .await;
    assert_eq!(other.status, 200, "{}", other.body);
    let changed = send(
        "PUT",
        &p.url("/api/v1/auth/password"),
        Some(&fay.token),
        &[],
        Some((
            "application/json",
            json!({"current_password": "password-fay", "new_password": "a-new-password"})
                .to_string()
                .into_bytes(),
        )),
    )
    .await;
    assert_eq!(changed.status, 204, "{}", changed.body);
    // Signed in again right away (the same second as the change, most likely).
    let signed_in = post_json(
        &p.url("/api/v1/auth/login"),
        None,
        json!({"login": "fay", "password": "a-new-password"}),
    )
    .await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    let fresh = Person {
        id: fay.id.clone(),
        name: fay.name.clone(),
        token: support::token(&signed_in.body, "access_token"),
    };
    let second = Person {
        id: fay.id.clone(),
        name: fay.name.clone(),
        token: support::token(&other.body, "access_token"),
    };
    refused_everywhere_within(&p, &fay, Duration::from_secs(2)).await;
    refused_everywhere_within(&p, &second, Duration::from_secs(2)).await;
    for (service, path) in one_path_per_service(&fresh) {
        let reply = call(&p, &fresh, "GET", &path, None).await;
        assert_eq!(reply.status, 200, "{service}: {}", reply.body);
    }
}

async fn export_status(p: &TestPlatform, who: &Person, id: &str) -> support::Reply {
    call(
        p,
        who,
        "GET",
        &format!("/api/v1/auth/me/exports/{id}"),
        None,
    )
    .await
}

async fn ready_within(p: &TestPlatform, who: &Person, id: &str, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let reply = export_status(p, who, id).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        match reply.body["status"].as_str() {
            Some("ready") => return reply.body,
            Some("pending" | "running") => {}
            other => panic!("export ended {other:?}: {}", reply.body),
        }
        assert!(started.elapsed() < limit, "not ready within {limit:?}");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The files of a zip, read with a reader this project did not write.
fn unzip(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut files = std::collections::BTreeMap::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).unwrap();
        let mut content = Vec::new();
        file.read_to_end(&mut content).unwrap();
        files.insert(file.name().unwrap().into_owned(), content);
    }
    files
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[actix_web::test]
async fn an_export_holds_every_file_with_its_digest_and_only_the_owners_data() {
    let p = platform().await;
    let gus = person(&p, "gus").await;
    let hal = person(&p, "hal").await;
    let f = leave_a_footprint(&p, &gus, &hal).await;
    let photo = png(7);

    let started = call(&p, &gus, "POST", "/api/v1/auth/me/exports", None).await;
    assert_eq!(started.status, 202, "{}", started.body);
    assert_eq!(started.body["status"], "pending");
    let id = started.body["id"].as_str().unwrap().to_owned();
    let again = call(&p, &gus, "POST", "/api/v1/auth/me/exports", None).await;
    if again.status == 409 {
        assert!(
            again.body["type"]
                .as_str()
                .unwrap()
                .ends_with("export-running")
        );
    } else {
        // The first one was already done: this is the second of the day.
        assert_eq!(again.status, 202, "{}", again.body);
        ready_within(
            &p,
            &gus,
            again.body["id"].as_str().unwrap(),
            Duration::from_secs(60),
        )
        .await;
    }
    // Somebody else's export does not exist for anybody else.
    export_status(&p, &hal, &id).await.assert_problem(404);
    let archive_path = format!("/api/v1/auth/me/exports/{id}/archive");
    call(&p, &hal, "GET", &archive_path, None)
        .await
        .assert_problem(404);

    let ready = ready_within(&p, &gus, &id, Duration::from_secs(60)).await;
    assert_eq!(ready["download_url"], archive_path);
    assert!(ready["expires_at"].is_string());
    let archive = call(&p, &gus, "GET", &archive_path, None).await;
    assert_eq!(archive.status, 200);
    assert_eq!(archive.header("content-type"), Some("application/zip"));
    assert_eq!(
        archive.raw.len() as u64,
        ready["size_bytes"].as_u64().unwrap()
    );
    call(&p, &hal, "GET", &archive_path, None)
        .await
        .assert_problem(404);

    let files = unzip(&archive.raw);
    let photo_file = format!("photos/{}.png", f.photo);
    let mut names: Vec<&str> = files.keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut expected = vec![
        "comments.json",
        "events.json",
        "manifest.json",
        "notifications.json",
        "photos.json",
        "posts.json",
        "profile.json",
        "reactions.json",
        "relations.json",
        photo_file.as_str(),
    ];
    expected.sort_unstable();
    assert_eq!(names, expected);
    // The manifest names every other file with its size and digest.
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(manifest["format_version"], 1);
    let listed = manifest["files"].as_array().unwrap();
    assert_eq!(listed.len(), files.len() - 1);
    for entry in listed {
        let path = entry["path"].as_str().unwrap();
        let content = &files[path];
        assert_eq!(entry["size"].as_u64(), Some(content.len() as u64), "{path}");
        assert_eq!(
            entry["sha256"].as_str(),
            Some(sha256_hex(content).as_str()),
            "{path}"
        );
    }
    // The photo's exact bytes, the person's own post, comment, reaction and relations.
    assert_eq!(files[&photo_file], photo);
    let json = |name: &str| -> Value { serde_json::from_slice(&files[name]).unwrap() };
    assert_eq!(json("profile.json")["username"], gus.name);
    let posts = json("posts.json");
    assert_eq!(posts.as_array().unwrap().len(), 1);
    assert_eq!(posts[0]["text"], "alice's");
    assert_eq!(posts[0]["reactions"], json!({"🎉": 1}));
    assert_eq!(json("comments.json")[0]["post_id"], f.post);
    assert_eq!(json("reactions.json")[0]["reactions"][0]["emoji"], "👍");
    assert_eq!(
        json("relations.json")["following"],
        json!([{"id": hal.id, "username": hal.name, "since": json("relations.json")["following"][0]["since"]}])
    );
    assert_eq!(json("events.json")["organized"][0]["id"], f.own_event);
    assert_eq!(
        json("events.json")["answered"][0]["event_id"],
        f.others_event
    );
    assert_eq!(json("photos.json")[0]["file"], photo_file);
    // Nobody else's email or private content: others appear by id and username only.
    let everything = files.values().flatten().copied().collect::<Vec<u8>>();
    let text = String::from_utf8_lossy(&everything);
    assert!(!text.contains("hal@example.org"));
    assert!(!text.contains("bob's post"), "another person's post text");

    // A few a day: the third of the day is the last (the second may have run above).
    let mut requested = if again.status == 202 { 2 } else { 1 };
    while requested < 3 {
        let next = call(&p, &gus, "POST", "/api/v1/auth/me/exports", None).await;
        assert_eq!(next.status, 202, "{}", next.body);
        ready_within(
            &p,
            &gus,
            next.body["id"].as_str().unwrap(),
            Duration::from_secs(60),
        )
        .await;
        requested += 1;
    }
    let refused = call(&p, &gus, "POST", "/api/v1/auth/me/exports", None).await;
    refused.assert_problem(429);
    assert!(refused.header("retry-after").is_some());
}
