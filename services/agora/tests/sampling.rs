//! Sampling at a ratio keeps traces whole: each request is sampled once, where it
//! enters (the gateway), and every service follows that decision, so a trace is
//! either exported from every service it crossed or not at all, never in pieces.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

mod support;

use agora_common::telemetry::capture::init_capturing_sampled;
use opentelemetry::trace::{SpanId, SpanKind};
use opentelemetry_sdk::trace::Sampler;
use serde_json::json;
use std::collections::HashSet;
use support::*;

#[actix_web::test]
async fn a_trace_is_sampled_whole_or_not_at_all() {
    let captured = init_capturing_sampled(Sampler::ParentBased(Box::new(
        Sampler::TraceIdRatioBased(0.5),
    )));
    let p = support::start().await;
    let bob = person(&p, "bob").await;
    let ann = person(&p, "ann").await;
    ok(
        &p,
        &ann,
        "PUT",
        &format!("/api/v1/relations/following/{}", bob.id),
        None,
    )
    .await;
    ok(
        &p,
        &bob,
        "POST",
        "/api/v1/posts",
        Some(json!({"text": "sampled or not", "visibility": "public"})),
    )
    .await;

    let requests = 24;
    for i in 0..requests {
        let id = format!("sampling-feed-{i}");
        let reply = send(
            "GET",
            &p.url("/api/v1/feed"),
            Some(&ann.token),
            &[("x-request-id", &id)],
            None,
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let spans = captured.spans();
    let (mut whole, mut skipped) = (0, 0);
    for i in 0..requests {
        let id = format!("sampling-feed-{i}");
        let servers: Vec<_> = spans
            .iter()
            .filter(|s| {
                s.data.span_kind == SpanKind::Server
                    && s.data
                        .attributes
                        .iter()
                        .any(|kv| kv.key.as_str() == "request_id" && kv.value.as_str() == id)
            })
            .collect();
        if servers.is_empty() {
            skipped += 1;
            continue;
        }
        whole += 1;
        let seen: HashSet<_> = servers.iter().map(|s| s.service).collect();
        for service in ["gateway", "users", "relations"] {
            assert!(
                seen.contains(service),
                "{id}: no {service} span in {seen:?}"
            );
        }
        let trace = servers[0].data.span_context.trace_id();
        let members: Vec<_> = spans
            .iter()
            .filter(|s| s.data.span_context.trace_id() == trace)
            .collect();
        assert!(
            servers
                .iter()
                .all(|s| s.data.span_context.trace_id() == trace),
            "{id} is in more than one trace"
        );
        let ids: HashSet<SpanId> = members
            .iter()
            .map(|s| s.data.span_context.span_id())
            .collect();
        let roots: Vec<_> = members
            .iter()
            .filter(|s| !ids.contains(&s.data.parent_span_id))
            .collect();
        assert_eq!(roots.len(), 1, "{id}: not one tree");
        assert_eq!(roots[0].service, "gateway");
        assert!(
            members.iter().any(|s| s.data.name == "SELECT"),
            "{id}: no query span"
        );
    }
    // Half of 24 at random: both kinds show (all one way has odds of 1 in 8 million).
    assert!(whole > 0 && skipped > 0, "{whole} sampled, {skipped} not");
}
