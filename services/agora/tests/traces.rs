//! Traces across the platform, from the spans the services really export (the SDK's
//! in-memory exporter in place of a collector): a feed request continues the caller's
//! trace through gateway → users → relations with database spans; a registration's
//! outbox deliveries join its trace; nothing a client sent (passwords, emails, tokens,
//! bound values) is on any span; a malformed trace context fails nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

mod support;

use agora_common::telemetry::capture::{CapturedSpan, init_capturing};
use opentelemetry::trace::{SpanId, SpanKind, TraceId};
use serde_json::json;
use std::collections::HashSet;
use support::*;

const TRACE_FEED: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACE_REGISTER: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT: &str = "00f067aa0ba902b7";

fn traceparent(trace: &str) -> String {
    format!("00-{trace}-{PARENT}-01")
}

fn of_trace(spans: &[CapturedSpan], trace: &str) -> Vec<CapturedSpan> {
    let trace = TraceId::from_hex(trace).unwrap();
    spans
        .iter()
        .filter(|s| s.data.span_context.trace_id() == trace)
        .cloned()
        .collect()
}

/// Every span hangs from the caller's span or from another span of the trace.
fn assert_one_tree(spans: &[CapturedSpan]) {
    let ids: HashSet<SpanId> = spans
        .iter()
        .map(|s| s.data.span_context.span_id())
        .collect();
    let root = SpanId::from_hex(PARENT).unwrap();
    for span in spans {
        let parent = span.data.parent_span_id;
        assert!(
            parent == root || ids.contains(&parent),
            "{} of {} hangs from nothing in the trace",
            span.data.name,
            span.service
        );
    }
}

/// Every name and attribute on the spans, and on their events (log lines inside a span
/// become span events).
fn attribute_text(spans: &[CapturedSpan]) -> String {
    let mut text = Vec::new();
    for span in spans {
        text.push(span.data.name.to_string());
        for kv in &span.data.attributes {
            text.push(format!("{}={}", kv.key, kv.value));
        }
        for event in span.data.events.iter() {
            text.push(event.name.to_string());
            for kv in &event.attributes {
                text.push(format!("{}={}", kv.key, kv.value));
            }
        }
    }
    text.join("\n")
}

/// Spans end (and are exported) a little after the response: wait for `ready`.
async fn settle(
    captured: &agora_common::telemetry::capture::Captured,
    trace: &str,
    ready: impl Fn(&[CapturedSpan]) -> bool,
) -> Vec<CapturedSpan> {
    for _ in 0..100 {
        let spans = of_trace(&captured.spans(), trace);
        if ready(&spans) {
            return spans;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    of_trace(&captured.spans(), trace)
}

fn services(spans: &[CapturedSpan]) -> HashSet<&'static str> {
    spans.iter().map(|s| s.service).collect()
}

#[actix_web::test]
async fn requests_are_traced_across_services_without_secrets() {
    let captured = init_capturing();
    let p = support::start().await;

    // A registration with our own trace context: auth hashes the password in a span
    // of its own, and the outbox deliveries to users and relations join the trace.
    let password = "password-tracy-secret";
    let reply = send(
        "POST",
        &p.url("/api/v1/auth/register"),
        None,
        &[("traceparent", &traceparent(TRACE_REGISTER))],
        Some((
            "application/json",
            json!({"username": "tracy", "email": "tracy@example.org", "password": password})
                .to_string()
                .into_bytes(),
        )),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let access = token(&reply.body, "access_token");
    let refresh = token(&reply.body, "refresh_token");
    let registration = settle(&captured, TRACE_REGISTER, |spans| {
        ["gateway", "auth", "users", "relations"]
            .iter()
            .all(|s| services(spans).contains(s))
    })
    .await;
    let seen = services(&registration);
    for service in ["gateway", "auth", "users", "relations"] {
        assert!(seen.contains(service), "no {service} span in {seen:?}");
    }
    assert!(
        registration
            .iter()
            .any(|s| s.service == "auth" && s.data.name == "password.hash"),
        "no password hashing span"
    );
    assert!(
        registration
            .iter()
            .any(|s| s.service == "auth" && s.data.name.starts_with("job ")),
        "no outbox job span in the registration's trace"
    );
    assert_one_tree(&registration);

    // The feed, continuing our span: gateway → users → relations, with queries.
    let bob = person(&p, "bob").await;
    call(
        &p,
        &bob,
        "POST",
        "/api/v1/posts",
        Some(json!({"text": "hello", "visibility": "public"})),
    )
    .await;
    let tracy = Person {
        id: reply.body["user"]["id"].as_str().unwrap().to_owned(),
        name: "tracy".into(),
        token: access.clone(),
    };
    let followed = call(
        &p,
        &tracy,
        "PUT",
        &format!("/api/v1/relations/following/{}", bob.id),
        None,
    )
    .await;
    assert!(followed.status < 300, "{}", followed.body);
    let feed = send(
        "GET",
        &p.url("/api/v1/feed"),
        Some(&access),
        &[
            ("traceparent", &traceparent(TRACE_FEED)),
            ("tracestate", "agora=1"),
        ],
        None,
    )
    .await;
    assert_eq!(feed.status, 200, "{}", feed.body);
    let trace = settle(&captured, TRACE_FEED, |spans| {
        ["gateway", "users", "relations"]
            .iter()
            .all(|s| services(spans).contains(s))
    })
    .await;
    let seen = services(&trace);
    for service in ["gateway", "users", "relations"] {
        assert!(seen.contains(service), "no {service} span in {seen:?}");
    }
    assert_one_tree(&trace);
    let queries: Vec<_> =
        trace
            .iter()
            .filter(|s| {
                s.data.attributes.iter().any(|kv| {
                    kv.key.as_str() == "db.system.name" && kv.value.as_str() == "postgresql"
                }) && s.data.span_kind == SpanKind::Client
            })
            .collect();
    assert!(queries.len() >= 2, "{} database spans", queries.len());
    // Server spans are named by route template, and the gateway's parent is ours.
    let servers: Vec<_> = trace
        .iter()
        .filter(|s| s.data.span_kind == SpanKind::Server)
        .collect();
    assert!(
        servers
            .iter()
            .any(|s| s.service == "users" && s.data.name == "GET /api/v1/feed"),
        "{:?}",
        servers
            .iter()
            .map(|s| (s.service, s.data.name.clone()))
            .collect::<Vec<_>>()
    );
    let gateway = servers.iter().find(|s| s.service == "gateway").unwrap();
    assert_eq!(
        gateway.data.parent_span_id,
        SpanId::from_hex(PARENT).unwrap()
    );
    assert!(gateway.data.parent_span_is_remote);
    for server in &servers {
        assert!(
            !server.data.name.contains(&bob.id) && !server.data.name.contains(&tracy.id),
            "raw path in {}",
            server.data.name
        );
    }

    // Nothing a client sent: no password, email, token or bound value anywhere.
    let everything = attribute_text(&captured.spans());
    for secret in [
        password,
        "tracy@example.org",
        access.as_str(),
        refresh.as_str(),
        "hello",
    ] {
        assert!(!everything.contains(secret), "{secret} is on a span");
    }
    // The caller's id is on the request span (an id, not a name).
    assert!(everything.contains(&format!("user.id={}", tracy.id)));

    // A malformed or oversized trace context starts a fresh trace and fails nothing.
    let before: HashSet<TraceId> = captured
        .spans()
        .iter()
        .map(|s| s.data.span_context.trace_id())
        .collect();
    let long_state = format!("agora={}", "x".repeat(600));
    for headers in [
        vec![("traceparent", "00-zzzz-yyyy-01".to_owned())],
        vec![("traceparent", format!("00-{TRACE_FEED}-{PARENT}-01-extra"))],
        vec![("traceparent", format!("00-{}-{PARENT}-01", "0".repeat(32)))],
        vec![("traceparent", "x".repeat(4000))],
        vec![("tracestate", long_state.clone())],
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let reply = send("GET", &p.url("/api/v1/feed"), Some(&access), &headers, None).await;
        assert_eq!(reply.status, 200, "{headers:?}: {}", reply.body);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let fresh: Vec<_> = captured
        .spans()
        .into_iter()
        .filter(|s| {
            s.service == "gateway"
                && s.data.span_kind == SpanKind::Server
                && !before.contains(&s.data.span_context.trace_id())
        })
        .collect();
    assert_eq!(fresh.len(), 5, "one new trace per malformed request");
    for span in &fresh {
        assert_eq!(
            span.data.parent_span_id,
            SpanId::INVALID,
            "continued a bad parent"
        );
        assert_ne!(
            span.data.span_context.trace_id(),
            TraceId::from_hex(TRACE_FEED).unwrap()
        );
    }
    // An acceptable traceparent with an oversized tracestate continues, without it.
    let reply = send(
        "GET",
        &p.url("/api/v1/feed"),
        Some(&access),
        &[
            (
                "traceparent",
                &traceparent("11111111111111111111111111111111"),
            ),
            ("tracestate", &long_state),
        ],
        None,
    )
    .await;
    assert_eq!(reply.status, 200);
    let continued = settle(&captured, "11111111111111111111111111111111", |spans| {
        services(spans).contains("users")
    })
    .await;
    assert!(!continued.is_empty());
    assert!(
        continued
            .iter()
            .all(|s| s.data.span_context.trace_state().header().is_empty())
    );

    // A caller that did not sample its trace: nothing is exported for the request by
    // any service (the gateway passes the flag on, so users and relations skip it too,
    // rather than starting traces of their own).
    let request_id = "unsampled-feed-request";
    let reply = send(
        "GET",
        &p.url("/api/v1/feed"),
        Some(&access),
        &[
            ("traceparent", &format!("00-{}-{PARENT}-00", "2".repeat(32))),
            ("x-request-id", request_id),
        ],
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let leaked: Vec<_> = captured
        .spans()
        .into_iter()
        .filter(|s| {
            s.data.span_context.trace_id() == TraceId::from_hex(&"2".repeat(32)).unwrap()
                || s.data
                    .attributes
                    .iter()
                    .any(|kv| kv.key.as_str() == "request_id" && kv.value.as_str() == request_id)
        })
        .map(|s| (s.service, s.data.name))
        .collect();
    assert!(
        leaked.is_empty(),
        "an unsampled request exported {leaked:?}"
    );
}
