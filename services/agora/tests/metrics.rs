//! Every metric the alert rules and the Grafana dashboard name is one an Agora process
//! exports: the services' `/metrics` scraped live from a running platform (after a
//! little of everything: registrations, logins good and bad, an upload, posts, the
//! feed), and the operator's. A renamed metric breaks this test, not a dashboard.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

mod support;

use serde_json::json;
use std::collections::BTreeSet;
use support::*;

/// The sample names an exposition offers, from its `# TYPE` lines (a family with no
/// sample yet still declares itself).
fn exported(text: &str, names: &mut BTreeSet<String>) {
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("#") || words.next() != Some("TYPE") {
            continue;
        }
        let (Some(name), Some(kind)) = (words.next(), words.next()) else {
            continue;
        };
        match kind {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                names.insert(name.to_owned());
            }
        }
    }
}

fn referenced(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("agora_") {
        let start = i + at;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start;
        while end < bytes.len()
            && (bytes[end].is_ascii_lowercase()
                || bytes[end].is_ascii_digit()
                || bytes[end] == b'_')
        {
            end += 1;
        }
        if boundary {
            names.insert(text[start..end].to_owned());
        }
        i = end;
    }
    names
}

#[actix_web::test]
async fn the_rules_and_the_dashboard_name_only_exported_metrics() {
    let p = support::start().await;
    let alice = person(&p, "alice").await;
    let bob = person(&p, "bob").await;
    let wrong = post_json(
        &p.url("/api/v1/auth/login"),
        None,
        json!({"login": "alice", "password": "not her password"}),
    )
    .await;
    assert_eq!(wrong.status, 401);
    let photo = upload(&p, &alice, &png(7), "public", "").await;
    let photo_id = photo["id"].as_str().unwrap();
    ok(
        &p,
        &alice,
        "POST",
        "/api/v1/posts",
        Some(json!({"text": "hi", "photo_ids": [photo_id]})),
    )
    .await;
    call(
        &p,
        &bob,
        "PUT",
        &format!("/api/v1/relations/following/{}", alice.id),
        None,
    )
    .await;
    ok(&p, &bob, "GET", "/api/v1/feed", None).await;

    let mut names = BTreeSet::new();
    for service in ["auth", "users", "relations", "photos", "events", "gateway"] {
        // What the kubelet's probe does in a cluster (`agora_ready` records its answer).
        assert_eq!(get(&p.ops_url(service, "/readyz"), None).await.status, 200);
        let metrics = get(&p.ops_url(service, "/metrics"), None).await;
        assert_eq!(metrics.status, 200);
        exported(&String::from_utf8_lossy(&metrics.raw), &mut names);
    }
    // The operator's: its backup series exist once a platform has backups.
    let operator = agora_operator::metrics::Metrics::default();
    let backup: agora_operator::backup::SocialPlatformBackupStatus =
        serde_json::from_value(json!({
            "phase": "Completed", "startedAt": "2026-12-06T03:00:00Z",
            "completedAt": "2026-12-06T03:01:00Z", "sizeBytes": 1024,
        }))
        .unwrap();
    operator
        .backups
        .record("agora", "demo", Some(&backup), Some(1), Some(86_400));
    exported(&operator.encode(), &mut names);
    // `up` is Prometheus's own, for every target.
    names.insert("up".into());

    let rules = agora_operator::monitoring::reference_rules().unwrap();
    let dashboard = include_str!("../../../charts/agora/dashboards/agora.json");
    let wanted: BTreeSet<String> = referenced(&rules)
        .into_iter()
        .chain(referenced(dashboard))
        .collect();
    assert!(wanted.len() >= 15, "{wanted:?}");
    let missing: Vec<_> = wanted.difference(&names).collect();
    assert!(
        missing.is_empty(),
        "named but not exported: {missing:?}\nexported: {names:?}"
    );
}
