//! The inter-service client against a real HTTP server: retries of idempotent calls,
//! problem answers mapped to the same errors, request ids passed on, credentials, and
//! internal routes that refuse anything but the service credential.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, test, web};
use agora_common::ApiError;
use agora_common::client::IDLE_CONNECTION_REUSE;
use agora_common::client::{
    ClientSettings, Credential, ServiceCaller, ServiceClient, ServiceToken,
};
use agora_common::middleware::observe;
use agora_common::server::KEEP_ALIVE;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const SECRET: &str = "0123456789abcdef0123456789abcdef-internal";

#[derive(Default)]
struct Counters {
    flaky: AtomicUsize,
    post: AtomicUsize,
}

async fn flaky(state: web::Data<Counters>) -> HttpResponse {
    if state.flaky.fetch_add(1, Ordering::SeqCst) < 2 {
        HttpResponse::ServiceUnavailable().finish()
    } else {
        HttpResponse::Ok().json(json!({"ok": true}))
    }
}

async fn post_fails(state: web::Data<Counters>) -> HttpResponse {
    state.post.fetch_add(1, Ordering::SeqCst);
    HttpResponse::ServiceUnavailable().finish()
}

async fn problem(status: web::Path<u16>) -> Result<HttpResponse, ApiError> {
    Err(match status.into_inner() {
        404 => ApiError::NotFound("no such photo".into()),
        409 => ApiError::Conflict("already there".into()),
        _ => ApiError::TooManyRequests {
            retry_after_secs: 7,
        },
    })
}

async fn whoami(req: HttpRequest) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    HttpResponse::Ok().json(
        json!({"authorization": header("authorization"), "request_id": header("x-request-id")}),
    )
}

/// The client's end of the connection the request came on.
async fn peer(req: HttpRequest) -> HttpResponse {
    HttpResponse::Ok().json(json!({"port": req.peer_addr().map(|a| a.port())}))
}

async fn internal(_: ServiceCaller) -> HttpResponse {
    HttpResponse::Ok().json(json!({"internal": true}))
}

fn start() -> (String, web::Data<Counters>) {
    let counters = web::Data::new(Counters::default());
    let token = web::Data::new(ServiceToken::new(SECRET).unwrap());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let data = counters.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(token.clone())
            .route("/flaky", web::get().to(flaky))
            .route("/post", web::post().to(post_fails))
            .route("/problem/{status}", web::get().to(problem))
            .route("/whoami", web::get().to(whoami))
            .route("/peer", web::get().to(peer))
            .route("/internal/thing", web::get().to(internal))
    })
    .workers(1)
    .keep_alive(KEEP_ALIVE)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    (base, counters)
}

fn client(base: &str) -> ServiceClient {
    ServiceClient::new(
        "photos",
        base,
        ClientSettings {
            timeout: Duration::from_secs(5),
            service_token: ServiceToken::new(SECRET),
            ..ClientSettings::default()
        },
    )
    .unwrap()
}

#[actix_web::test]
async fn idempotent_calls_are_retried_and_others_are_not() {
    let (base, counters) = start();
    let photos = client(&base);
    let ok: Value = photos.get("/flaky", Credential::None, None).await.unwrap();
    assert_eq!(ok["ok"], true);
    assert_eq!(counters.flaky.load(Ordering::SeqCst), 3);
    let err = photos
        .send::<Value, Value>(
            reqwest::Method::POST,
            "/post",
            Some(&json!({})),
            Credential::None,
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Unavailable(_)), "{err:?}");
    assert_eq!(counters.post.load(Ordering::SeqCst), 1);
}

/// A pooled connection is reused while fresh and given up once idle for
/// `IDLE_CONNECTION_REUSE`, while the server (its keep-alive is longer) would still
/// hold it: the client never races the server's close with a request.
#[actix_web::test]
async fn idle_connections_are_given_up_before_the_server_would_close_them() {
    let (base, _) = start();
    let photos = client(&base);
    let port = || async {
        let peer: Value = photos.get("/peer", Credential::None, None).await.unwrap();
        peer["port"].as_u64().unwrap()
    };
    let first = port().await;
    assert_eq!(port().await, first, "a fresh connection is reused");
    // Past the client's limit, still inside the server's keep-alive.
    let idle = IDLE_CONNECTION_REUSE + Duration::from_millis(500);
    assert!(idle < KEEP_ALIVE);
    tokio::time::sleep(idle).await;
    assert_ne!(port().await, first, "an idle connection was reused");
}

#[actix_web::test]
async fn problems_keep_their_meaning() {
    let (base, _) = start();
    let photos = client(&base);
    let missing = photos
        .get::<Value>("/problem/404", Credential::None, None)
        .await;
    assert!(
        matches!(&missing, Err(ApiError::NotFound(d)) if d == "no such photo"),
        "{missing:?}"
    );
    let conflict = photos
        .get::<Value>("/problem/409", Credential::None, None)
        .await;
    assert!(matches!(conflict, Err(ApiError::Conflict(_))));
    let limited = photos
        .get::<Value>("/problem/429", Credential::None, None)
        .await;
    assert!(matches!(
        limited,
        Err(ApiError::TooManyRequests {
            retry_after_secs: 7
        })
    ));
}

#[actix_web::test]
async fn a_dead_dependency_is_a_clean_503() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let photos = client(&format!("http://{dead}"));
    let started = std::time::Instant::now();
    let err = photos
        .get::<Value>("/x", Credential::None, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ApiError::Unavailable(d) if d.contains("photos")),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[actix_web::test]
async fn credentials_and_request_ids_travel_and_internal_routes_need_the_secret() {
    let (base, _) = start();
    let photos = client(&base);
    // The request being served, as the observe middleware leaves it.
    let app = test::init_service(
        App::new()
            .wrap(actix_web::middleware::from_fn(observe))
            .route(
                "/",
                web::get().to(move |req: HttpRequest| {
                    let photos = photos.clone();
                    async move {
                        let seen: Value = photos
                            .get("/whoami", Credential::of(&req), Some(&req))
                            .await
                            .unwrap();
                        let internal: Result<Value, _> = photos
                            .get("/internal/thing", Credential::Service, None)
                            .await;
                        let as_user: Result<Value, _> = photos
                            .get("/internal/thing", Credential::of(&req), None)
                            .await;
                        HttpResponse::Ok().json(json!({
                            "seen": seen,
                            "internal": internal.is_ok(),
                            "internal_as_user": matches!(as_user, Err(ApiError::Unauthorized(_))),
                        }))
                    }
                }),
            ),
    )
    .await;
    let req = test::TestRequest::get()
        .uri("/")
        .insert_header(("authorization", "Bearer user-token"))
        .insert_header(("x-request-id", "trace-7"))
        .to_request();
    let body: Value = test::call_and_read_body_json(&app, req).await;
    assert_eq!(body["seen"]["authorization"], "Bearer user-token");
    assert_eq!(body["seen"]["request_id"], "trace-7");
    assert_eq!(body["internal"], true);
    assert_eq!(body["internal_as_user"], true);
}
