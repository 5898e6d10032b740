//! The gateway against a real upstream (a small echo server) over loopback: edge
//! authentication, identity-header hygiene, forwarding headers, body limits, streaming,
//! and problem+json answers for unknown routes and dead upstreams.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

use actix_web::http::Method;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use agora_common::client_addr::TrustedProxies;
use agora_common::routing::RoutePolicy;
use agora_common::signing::{KeyPair, TokenIssuer, generate_pem};
use agora_gateway::{Config, Upstream};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Echo {
    hits: AtomicUsize,
    openapi_fetches: AtomicUsize,
    jwks: Value,
}

/// Echoes what arrived: method, path, headers and the body's length (read in full).
async fn echo_handler(
    req: HttpRequest,
    mut body: web::Payload,
    state: web::Data<Echo>,
) -> HttpResponse {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let mut len = 0usize;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => len += c.len(),
            Err(_) => return HttpResponse::BadRequest().finish(),
        }
    }
    let headers: serde_json::Map<String, Value> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap())))
        .collect();
    HttpResponse::Ok().json(json!({"method": req.method().as_str(), "path": req.uri().to_string(), "headers": headers, "body_len": len}))
}

/// The upstream's OpenAPI document, slowly (so concurrent callers overlap).
async fn openapi_doc(state: web::Data<Echo>) -> HttpResponse {
    state.openapi_fetches.fetch_add(1, Ordering::SeqCst);
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    HttpResponse::Ok().json(json!({"openapi": "3.1.0", "paths": {"/api/v1/users/me": {"get": {}}}}))
}

async fn big(size: web::Path<usize>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/octet-stream")
        .body(vec![7u8; size.into_inner()])
}

async fn slow() -> HttpResponse {
    actix_web::rt::time::sleep(Duration::from_secs(10)).await;
    HttpResponse::Ok().finish()
}

/// A small answer of announced length whose body stops after a few bytes.
async fn half() -> HttpResponse {
    let body = futures_util::stream::unfold(0, |sent| async move {
        if sent > 0 {
            actix_web::rt::time::sleep(Duration::from_secs(30)).await;
            return None;
        }
        Some((
            Ok::<_, std::convert::Infallible>(web::Bytes::from_static(b"0123456789")),
            1,
        ))
    });
    HttpResponse::Ok().body(actix_web::body::SizedStream::new(100, body))
}

/// A stream that never ends: a comment line every 100 ms.
async fn endless() -> HttpResponse {
    let beats = futures_util::stream::unfold((), |()| async {
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        Some((
            Ok::<_, std::convert::Infallible>(web::Bytes::from_static(b": beat\n\n")),
            (),
        ))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .streaming(beats)
}

const STREAM: &str = "/api/v1/notifications/stream";

async fn jwks(state: web::Data<Echo>) -> HttpResponse {
    HttpResponse::Ok().json(&state.jwks)
}

struct Setup {
    gateway: String,
    ops: String,
    echo: Arc<Echo>,
    issuer: TokenIssuer,
}

fn loopback() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"))
}

async fn setup(max_body: usize) -> Setup {
    setup_with(max_body, |_| {}).await
}

async fn setup_with(max_body: usize, tweak: impl FnOnce(&mut Config)) -> Setup {
    let key = KeyPair::from_pem(generate_pem().unwrap().as_bytes(), "test")
        .unwrap_or_else(|e| panic!("{e}"));
    let issuer = TokenIssuer::new(key, vec![], "agora".into(), "agora".into(), 300);
    let echo = Arc::new(Echo {
        hits: AtomicUsize::new(0),
        openapi_fetches: AtomicUsize::new(0),
        jwks: serde_json::to_value(issuer.jwks()).unwrap(),
    });
    let data = web::Data::from(echo.clone());
    let upstream = loopback();
    let upstream_addr = upstream.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/jwks", web::get().to(jwks))
            .route("/openapi.json", web::get().to(openapi_doc))
            .route("/api/v1/users/big/{size}", web::get().to(big))
            .route("/api/v1/users/big/{size}", web::head().to(big))
            .route("/api/v1/users/slow", web::get().to(slow))
            .route("/api/v1/users/half", web::get().to(half))
            .route("/api/v1/users/stuck", web::post().to(slow))
            .route(STREAM, web::get().to(endless))
            .default_service(web::to(echo_handler))
    })
    .workers(1)
    .disable_signals()
    .listen(upstream)
    .unwrap_or_else(|e| panic!("{e}"))
    .run();
    actix_web::rt::spawn(server);

    // A closed port: the "events" service is configured but down.
    let dead: SocketAddr = {
        let l = loopback();
        l.local_addr().unwrap_or_else(|e| panic!("{e}"))
    };
    let live = format!("http://{upstream_addr}");
    let mut config = Config::new(vec![
        Upstream::new(
            live.clone(),
            live.clone(),
            RoutePolicy::new("users", &["users", "posts", "feed"]).max_body(max_body),
        ),
        Upstream::new(
            live.clone(),
            live.clone(),
            RoutePolicy::new("photos", &["photos"])
                .public(&["GET"], "/api/v1/photos/{id}/content")
                .max_body(max_body),
        ),
        Upstream::new(
            live.clone(),
            live.clone(),
            RoutePolicy::new("notifications", &["notifications"])
                .public(&["GET"], STREAM)
                .streaming(&["GET"], STREAM),
        ),
        Upstream::new(
            format!("http://{dead}"),
            format!("http://{dead}"),
            RoutePolicy::new("events", &["events"]),
        ),
    ]);
    config.jwks_url = Some(format!("{live}/jwks"));
    config.response_timeout = Duration::from_secs(2);
    tweak(&mut config);
    let gateway = loopback();
    let ops = loopback();
    let gateway_addr = gateway.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let ops_addr = ops.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let serving = agora_gateway::build(config)
        .unwrap_or_else(|e| panic!("{e}"))
        .serve(gateway, ops, 1)
        .unwrap_or_else(|e| panic!("{e}"));
    actix_web::rt::spawn(serving.api);
    actix_web::rt::spawn(serving.ops);
    Setup {
        gateway: format!("http://{gateway_addr}"),
        ops: format!("http://{ops_addr}"),
        echo,
        issuer,
    }
}

fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish()
}

async fn json_of(
    resp: &mut awc::ClientResponse<
        impl futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>>
        + Unpin,
    >,
) -> Value {
    let bytes = resp.body().limit(64 * 1024 * 1024).await.unwrap();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

#[actix_web::test]
async fn identity_comes_from_the_token_only() {
    let s = setup(1024).await;
    let alice = uuid::Uuid::now_v7();
    let token = s.issuer.access_token(alice, "alice").unwrap();

    // Forged identity and no token: refused at the edge, the upstream never sees it.
    let mut resp = client()
        .get(format!("{}/api/v1/users/me", s.gateway))
        .insert_header(("x-user-id", uuid::Uuid::now_v7().to_string()))
        .insert_header(("x-user-name", "root"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/problem+json"[..])
    );
    assert_eq!(json_of(&mut resp).await["status"], 401);
    assert_eq!(s.echo.hits.load(Ordering::SeqCst), 0);

    // Invalid token: refused too.
    let resp = client()
        .get(format!("{}/api/v1/users/me", s.gateway))
        .insert_header(("authorization", "Bearer not.a.token"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), 401);
    assert_eq!(s.echo.hits.load(Ordering::SeqCst), 0);

    // Valid token plus forged headers: the forged ones are replaced.
    let mut resp = client()
        .get(format!("{}/api/v1/users/me?x=1", s.gateway))
        .insert_header(("authorization", format!("Bearer {token}")))
        .insert_header(("x-user-id", uuid::Uuid::now_v7().to_string()))
        .insert_header(("x-user-name", "root"))
        .insert_header(("x-request-id", "trace-42"))
        .insert_header(("x-forwarded-for", "203.0.113.9"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers().get("x-request-id").map(|v| v.as_bytes()),
        Some(&b"trace-42"[..])
    );
    let seen = json_of(&mut resp).await;
    let h = &seen["headers"];
    assert_eq!(seen["path"], "/api/v1/users/me?x=1");
    assert_eq!(h["x-user-id"], alice.to_string());
    assert_eq!(h["x-user-name"], "alice");
    assert_eq!(h["x-request-id"], "trace-42");
    // One entry: the client as the gateway resolved it (it trusts no proxy here, so the
    // client's own header is dropped).
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert!(h["x-forwarded-host"].is_string());
    assert_eq!(
        h["authorization"],
        format!("Bearer {token}"),
        "services verify tokens themselves"
    );
}

#[actix_web::test]
async fn public_routes_pass_without_a_token_and_never_with_a_forged_identity() {
    let s = setup(1024).await;
    // A public route: no token needed, and forged identity headers never arrive.
    let mut resp = client()
        .get(format!("{}/api/v1/photos/abc/content", s.gateway))
        .insert_header(("x-user-id", "forged"))
        .insert_header(("x-user-name", "root"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), 200);
    let seen = json_of(&mut resp).await;
    assert!(seen["headers"]["x-user-id"].is_null(), "{seen}");
    assert!(seen["headers"]["x-user-name"].is_null(), "{seen}");
    // A bad token on a public route names nobody (and is still forwarded as sent).
    let mut resp = client()
        .get(format!("{}/api/v1/photos/abc/content", s.gateway))
        .insert_header(("authorization", "Bearer not.a.token"))
        .insert_header(("x-user-id", "forged"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), 200);
    assert!(json_of(&mut resp).await["headers"]["x-user-id"].is_null());
    // The same service's other routes are not public.
    let resp = client()
        .get(format!("{}/api/v1/photos/abc", s.gateway))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), 401);

    // A configured service that is down: 503, fast.
    let token = s.issuer.access_token(uuid::Uuid::now_v7(), "erin").unwrap();
    let started = Instant::now();
    let mut resp = client()
        .get(format!("{}/api/v1/events", s.gateway))
        .insert_header(("authorization", format!("Bearer {token}")))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(5));
    let problem = json_of(&mut resp).await;
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("events")),
        "{problem}"
    );

    // Unknown areas: 404 problem.
    for path in ["/api/v1/nope", "/elsewhere", "/api/v2/users/x", "/metrics"] {
        let mut resp = client()
            .get(format!("{}{path}", s.gateway))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(resp.status(), 404, "{path}");
        assert_eq!(json_of(&mut resp).await["status"], 404);
    }
}

#[actix_web::test]
async fn bodies_stream_and_are_limited_per_route() {
    let s = setup(64 * 1024).await;
    let token = s.issuer.access_token(uuid::Uuid::now_v7(), "bob").unwrap();
    let auth = ("authorization", format!("Bearer {token}"));

    // Under the limit, with a length: passes whole.
    let mut resp = client()
        .post(format!("{}/api/v1/posts", s.gateway))
        .insert_header(auth.clone())
        .send_body(vec![1u8; 60 * 1024])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), 200);
    assert_eq!(json_of(&mut resp).await["body_len"], 60 * 1024);

    // Declared too large: refused before anything is forwarded.
    let before = s.echo.hits.load(Ordering::SeqCst);
    let mut resp = client()
        .post(format!("{}/api/v1/posts", s.gateway))
        .insert_header(auth.clone())
        .send_body(vec![1u8; 65 * 1024])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), 413);
    assert_eq!(json_of(&mut resp).await["status"], 413);
    assert_eq!(s.echo.hits.load(Ordering::SeqCst), before);

    // Chunked (no length) and too large: cut off with 413.
    let chunks = futures_util::stream::iter(
        (0..20).map(|_| Ok::<_, std::io::Error>(actix_web::web::Bytes::from(vec![2u8; 8 * 1024]))),
    );
    let resp = client()
        .post(format!("{}/api/v1/posts", s.gateway))
        .insert_header(auth.clone())
        .send_stream(chunks)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), 413);

    // Chunked and small: streams through.
    let chunks = futures_util::stream::iter(
        (0..4).map(|_| Ok::<_, std::io::Error>(actix_web::web::Bytes::from(vec![2u8; 8 * 1024]))),
    );
    let mut resp = client()
        .post(format!("{}/api/v1/posts", s.gateway))
        .insert_header(auth.clone())
        .send_stream(chunks)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), 200);
    assert_eq!(json_of(&mut resp).await["body_len"], 32 * 1024);

    // Responses come back whole with their length: small ones (read, then sent) and
    // large ones (streamed), on both sides of the line between the two.
    // HEAD: the length of the body GET would send, and no body.
    for size in [0, 1, 64 * 1024, 64 * 1024 + 1, 8 * 1024 * 1024] {
        for method in [Method::GET, Method::HEAD] {
            let mut resp = client()
                .request(
                    method.clone(),
                    format!("{}/api/v1/users/big/{size}", s.gateway),
                )
                .insert_header(auth.clone())
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(resp.status(), 200);
            assert_eq!(
                resp.headers().get("content-length").map(|v| v.as_bytes()),
                Some(size.to_string().as_bytes()),
                "{method} {size}"
            );
            let body = resp.body().limit(16 * 1024 * 1024).await.unwrap();
            let expected = if method == Method::HEAD { 0 } else { size };
            assert_eq!(body.len(), expected, "{method} {size}");
            assert!(body.iter().all(|b| *b == 7));
        }
    }
}

#[actix_web::test]
async fn open_streams_outlast_the_deadline_and_never_take_the_pool_of_ordinary_requests() {
    // One pooled upstream connection per worker: a stream on it would block the rest.
    let s = setup_with(1024, |config| config.max_connections = 1).await;
    let token = s.issuer.access_token(uuid::Uuid::now_v7(), "dora").unwrap();
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut stream = client()
            .get(format!("{}{STREAM}", s.gateway))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stream.status(), 200);
        let first = stream.next().await.unwrap().unwrap();
        assert!(first.starts_with(b": beat"), "{first:?}");
        streams.push(stream);
    }
    // Ordinary requests still get the pooled connection at once.
    for _ in 0..3 {
        let started = Instant::now();
        let resp = client()
            .get(format!("{}/api/v1/users/echo", s.gateway))
            .insert_header(("authorization", format!("Bearer {token}")))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(resp.status(), 200);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
    // The response deadline (2 s here) is for the head: the stream goes on after it.
    let until = Instant::now() + Duration::from_secs(3);
    let mut beats = 0;
    while Instant::now() < until {
        let chunk = streams[0].next().await.unwrap().unwrap();
        assert!(chunk.starts_with(b": beat"));
        beats += 1;
    }
    assert!(beats >= 20, "{beats} beats in 3 s");
}

#[actix_web::test]
async fn a_hanging_upstream_gets_a_timeout_not_a_hang() {
    let s = setup(1024).await;
    let token = s
        .issuer
        .access_token(uuid::Uuid::now_v7(), "carol")
        .unwrap();
    // No answer at all; and a small answer of announced length whose body stops (small
    // answers are read whole before their head goes out: the stall is the upstream's,
    // reported within the response deadline, 2 s here).
    for path in ["/api/v1/users/slow", "/api/v1/users/half"] {
        let started = Instant::now();
        let mut resp = client()
            .get(format!("{}{path}", s.gateway))
            .insert_header(("authorization", format!("Bearer {token}")))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(resp.status(), 504, "{path}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{path}: {:?}",
            started.elapsed()
        );
        let problem = json_of(&mut resp).await;
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains("users")),
            "{problem}"
        );
    }
}

#[actix_web::test]
async fn each_client_address_gets_a_budget_at_the_edge() {
    // The test client plays a trusted proxy (127.0.0.1) that saw 198.51.100.7.
    let s = setup_with(1024, |c| {
        c.rate_limit_per_minute = 3;
        c.trusted_proxies = TrustedProxies::new(vec!["127.0.0.1/32".parse().unwrap()], 1);
    })
    .await;
    let token = s.issuer.access_token(uuid::Uuid::now_v7(), "dan").unwrap();
    let call = |n: u8| {
        client()
            .get(format!("{}/api/v1/users/me", s.gateway))
            .insert_header(("authorization", format!("Bearer {token}")))
            // The client's own (left) entry changes every time: it buys nothing.
            .insert_header(("x-forwarded-for", format!("203.0.113.{n}, 198.51.100.7")))
            .send()
    };
    for n in 0..3 {
        let mut resp = call(n).await.unwrap();
        assert_eq!(resp.status(), 200);
        // The services get the one client address the gateway settled on.
        assert_eq!(
            json_of(&mut resp).await["headers"]["x-forwarded-for"],
            "198.51.100.7"
        );
    }
    let mut limited = call(9).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!((1..=20).contains(&retry), "Retry-After {retry}");
    assert_eq!(json_of(&mut limited).await["status"], 429);
    assert_eq!(
        s.echo.hits.load(Ordering::SeqCst),
        3,
        "the 4th request never reached the upstream"
    );
    // Another address the proxy vouches for has its own budget.
    let resp = client()
        .get(format!("{}/api/v1/users/me", s.gateway))
        .insert_header(("authorization", format!("Bearer {token}")))
        .insert_header(("x-forwarded-for", "198.51.100.8"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[actix_web::test]
async fn every_request_counts_against_the_budget_matched_or_not() {
    let s = setup_with(1024, |c| c.rate_limit_per_minute = 3).await;
    for path in ["/nope", "/api/v1/nope", "/api/v1/photos/../x"] {
        let resp = client()
            .get(format!("{}{path}", s.gateway))
            .send()
            .await
            .unwrap();
        assert_ne!(resp.status(), 429, "{path}");
    }
    let resp = client()
        .get(format!("{}/api/v1/openapi.json", s.gateway))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
}

#[actix_web::test]
async fn dot_segments_and_encoded_slashes_are_refused_at_the_edge() {
    let s = setup(1024).await;
    for path in [
        "/api/v1/photos/../users/me",
        "/api/v1/photos/%2e%2e/content",
        "/api/v1/photos/%2E%2e/content",
        "/api/v1/photos/a%2Fb/content",
        "/api/v1/photos/./abc/content",
    ] {
        let mut resp = client()
            .get(format!("{}{path}", s.gateway))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{path}");
        assert_eq!(json_of(&mut resp).await["status"], 400);
    }
    assert_eq!(s.echo.hits.load(Ordering::SeqCst), 0);
}

#[actix_web::test]
async fn a_slow_but_steady_upload_is_not_a_timeout_and_a_stalled_one_is() {
    let s = setup_with(1024 * 1024, |c| {
        c.response_timeout = Duration::from_secs(1);
        c.body_idle_timeout = Duration::from_millis(1500);
    })
    .await;
    let token = s.issuer.access_token(uuid::Uuid::now_v7(), "fay").unwrap();
    // Five chunks 600 ms apart: three seconds in all, three times the response deadline.
    let steady = futures_util::stream::unfold(0u8, |n| async move {
        if n == 5 {
            return None;
        }
        actix_web::rt::time::sleep(Duration::from_millis(600)).await;
        Some((
            Ok::<_, std::io::Error>(actix_web::web::Bytes::from(vec![n; 1000])),
            n + 1,
        ))
    });
    let mut resp = client()
        .post(format!("{}/api/v1/posts", s.gateway))
        .insert_header(("authorization", format!("Bearer {token}")))
        .send_stream(steady)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(json_of(&mut resp).await["body_len"], 5000);

    // One chunk, then a pause longer than the idle deadline.
    let stalled = futures_util::stream::unfold(0u8, |n| async move {
        match n {
            0 => Some((
                Ok::<_, std::io::Error>(actix_web::web::Bytes::from_static(b"x")),
                1,
            )),
            _ => {
                actix_web::rt::time::sleep(Duration::from_secs(10)).await;
                None
            }
        }
    });
    let resp = client()
        .post(format!("{}/api/v1/posts", s.gateway))
        .insert_header(("authorization", format!("Bearer {token}")))
        .send_stream(stalled)
        .await
        .unwrap();
    assert_eq!(resp.status(), 408);
}

#[actix_web::test]
async fn an_upstream_that_stops_reading_the_body_gets_a_timeout() {
    let s = setup_with(64 * 1024 * 1024, |c| {
        c.body_idle_timeout = Duration::from_secs(1);
        c.response_timeout = Duration::from_secs(60);
    })
    .await;
    let token = s.issuer.access_token(uuid::Uuid::now_v7(), "gus").unwrap();
    // `stuck` never reads its body: once the socket buffers are full, nothing moves.
    let started = Instant::now();
    let resp = client()
        .post(format!("{}/api/v1/users/stuck", s.gateway))
        .insert_header(("authorization", format!("Bearer {token}")))
        .send_body(vec![0u8; 48 * 1024 * 1024])
        .await;
    let elapsed = started.elapsed();
    let status = resp.map(|r| r.status().as_u16());
    assert_eq!(status.ok(), Some(504), "after {elapsed:?}");
    assert!(elapsed < Duration::from_secs(8), "{elapsed:?}");
}

#[actix_web::test]
async fn ops_endpoints_live_on_their_own_port_with_bounded_labels() {
    let s = setup(1024).await;
    // Any token is a method to actix; the metrics must not grow a label per token.
    let weird = awc::http::Method::from_bytes(b"FOOBARBAZ").unwrap();
    let resp = client()
        .request(weird, format!("{}/api/v1/users/me", s.gateway))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let mut metrics = client()
        .get(format!("{}/metrics", s.ops))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let text = String::from_utf8(metrics.body().await.unwrap().to_vec()).unwrap();
    assert!(text.contains("method=\"OTHER\""), "{text}");
    assert!(!text.contains("FOOBARBAZ"), "{text}");
    assert!(text.contains("route=\"upstream:users\""), "{text}");
    for path in ["/healthz", "/openapi.json"] {
        let resp = client()
            .get(format!("{}{path}", s.ops))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
}

#[actix_web::test]
async fn the_merged_document_is_fetched_once_for_concurrent_callers() {
    let s = setup(1024).await;
    let calls = (0..8).map(|_| async {
        let mut resp = client()
            .get(format!("{}/api/v1/openapi.json", s.gateway))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        json_of(&mut resp).await
    });
    let docs = futures_util::future::join_all(calls).await;
    assert!(
        docs.iter()
            .all(|d| d["paths"]["/api/v1/users/me"].is_object())
    );
    // Three live upstreams (users, photos, notifications share the echo server), one
    // fetch each; the dead one fails fast. Later calls come from the cache.
    assert_eq!(s.echo.openapi_fetches.load(Ordering::SeqCst), 3);
    let resp = client()
        .get(format!("{}/api/v1/openapi.json", s.gateway))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(s.echo.openapi_fetches.load(Ordering::SeqCst), 3);
}
