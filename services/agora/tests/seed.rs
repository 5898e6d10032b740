//! `agora seed` against a running platform: it fills it through the public API without
//! an error, what it created is what its plan says (checked through the API as the demo
//! accounts see it), and seeding the same platform with the same seed again is refused
//! before anything is written.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

mod support;

use agora::seed::plan::{Plan, Sizes};
use agora::seed::{SeedOptions, api::SeedError};
use serde_json::{Value, json};
use support::{get, post_json};

const PASSWORD: &str = "seed-test-password";

async fn login(p: &support::TestPlatform, username: &str) -> String {
    let reply = post_json(
        &p.url("/api/v1/auth/login"),
        None,
        json!({"login": username, "password": PASSWORD}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["access_token"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn seed_fills_a_fresh_platform_as_planned() {
    let p = support::start().await;
    let options = SeedOptions {
        url: p.url(""),
        users: 16,
        posts_per_user: 2,
        seed: 9,
        password: PASSWORD.into(),
        concurrency: 4,
    };
    let lines = std::sync::Mutex::new(Vec::new());
    let summary = agora::seed::run(&options, &|line| {
        lines.lock().unwrap().push(line.to_owned());
    })
    .await
    .unwrap();
    let plan = Plan::new(
        9,
        Sizes {
            users: 16,
            posts_per_user: 2,
        },
    );
    assert_eq!(
        (
            summary.users,
            summary.follows,
            summary.friendships,
            summary.photos,
            summary.posts,
            summary.events,
            summary.rsvps
        ),
        (
            16,
            plan.follows.len(),
            plan.friendships.len(),
            plan.photos.len(),
            plan.posts.len(),
            plan.events.len(),
            plan.events.iter().map(|e| e.rsvps.len()).sum()
        )
    );
    assert!(summary.comments > 0 && summary.reactions > 0 && summary.rsvps > 0);
    let progress = lines.lock().unwrap().join("\n");
    assert!(progress.contains("rsvps: "), "{progress}");

    // The most followed person comes first among the demo accounts, and the platform
    // counts their followers as the plan has them.
    let (star, star_id) = summary.demo_accounts[0].clone();
    let token = login(&p, &star).await;
    let me = get(&p.url("/api/v1/users/me"), Some(&token)).await.body;
    let star_index = plan
        .people
        .iter()
        .position(|person| person.username == star)
        .unwrap();
    let planned_followers = plan.follows.iter().filter(|f| f.1 == star_index).count();
    assert_eq!(me["counts"]["followers"], planned_followers, "{me}");
    assert_eq!(me["id"], star_id.as_str());
    assert_eq!(
        me["avatar_url"]
            .as_str()
            .is_some_and(|url| url.starts_with("/api/v1/photos/")),
        plan.avatars[star_index].is_some(),
        "{me}"
    );
    let planned_posts = plan.posts.iter().filter(|p| p.author == star_index).count();
    assert_eq!(me["counts"]["posts"], planned_posts);

    // Every person got a profile, and those with a public photo an avatar that anyone
    // may load, without a token (an avatar is never a private photo).
    assert!(plan.avatars.iter().filter(|a| a.is_some()).count() > plan.people.len() / 2);
    for (i, person) in plan.people.iter().enumerate() {
        let found = get(
            &p.url(&format!("/api/v1/users?username={}", person.username)),
            Some(&token),
        )
        .await;
        let profile = &found.body["items"][0];
        assert_eq!(profile["display_name"], person.display_name.as_str());
        assert_eq!(
            profile["avatar_url"].is_string(),
            plan.avatars[i].is_some(),
            "{profile}"
        );
        if let Some(url) = profile["avatar_url"].as_str() {
            assert_eq!(get(&p.url(url), None).await.status, 200, "{url}");
        }
    }

    // Public photos are found by tag; the feed has posts; every event has its answers.
    let tags = get(&p.url("/api/v1/photos/tags?prefix="), Some(&token)).await;
    let top = tags.body["items"][0]["tag"].as_str().unwrap().to_owned();
    let found = get(&p.url(&format!("/api/v1/photos?tag={top}")), Some(&token)).await;
    assert!(!found.body["items"].as_array().unwrap().is_empty());
    let feed = get(&p.url("/api/v1/feed"), Some(&token)).await;
    assert!(!feed.body["items"].as_array().unwrap().is_empty());
    let mut answers = 0;
    for event in &plan.events {
        let organizer = &plan.people[event.organizer].username;
        let token = login(&p, organizer).await;
        let me = get(&p.url("/api/v1/users/me"), Some(&token)).await.body;
        let mine = get(
            &p.url(&format!(
                "/api/v1/events?organizer={}",
                me["id"].as_str().unwrap()
            )),
            Some(&token),
        )
        .await;
        for e in mine.body["items"].as_array().unwrap() {
            let counts: &Value = &e["rsvp_counts"];
            answers += ["going", "interested", "not_going"]
                .iter()
                .map(|s| counts[s].as_i64().unwrap())
                .sum::<i64>();
        }
    }
    // The plan gives each organizer one event, so no event is counted twice.
    let organizers: std::collections::HashSet<usize> =
        plan.events.iter().map(|e| e.organizer).collect();
    assert_eq!(
        organizers.len(),
        plan.events.len(),
        "one event per organizer"
    );
    assert_eq!(answers as usize, summary.rsvps);

    // The same seed again: refused, nothing written.
    let again = agora::seed::run(&options, &|_| {}).await;
    assert!(
        matches!(again, Err(SeedError::AlreadySeeded(_))),
        "{again:?}"
    );
}
