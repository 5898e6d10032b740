//! A service's start-up on a platform that is still coming up: it waits for its database
//! (a fresh platform's database and role appear after the pods start) instead of exiting,
//! gives up after its deadline, and its operations port answers the probes meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

use agora_common::Service;
use agora_common::db::{self, DbError};
use agora_common::jobs::MIGRATIONS;
use agora_common::ops::ReadinessCheck;
use agora_common::routing::RoutePolicy;
use agora_common::server::serve_starting;
use agora_common::testing::{server_url, unique_prefix};
use futures_util::future::LocalBoxFuture;
use serde_json::Value;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[actix_web::test]
async fn start_up_waits_for_a_database_that_appears_later() {
    let name = unique_prefix("late");
    let url = db::with_database(&server_url(), &name);
    let appears = async {
        actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
        db::ensure_database(&server_url(), &name).await.unwrap();
    };
    let started = Instant::now();
    let (reached, ()) = futures_util::join!(
        db::wait_until_reachable(&url, Duration::from_secs(60)),
        appears
    );
    reached.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1500));
    // What `prepare` does next works on it.
    assert!(db::migrate(&url, MIGRATIONS, 1).await.unwrap() > 0);
    assert_eq!(db::ping(&db::pool(&url, 1).unwrap()).await, Ok(()));
}

#[actix_web::test]
async fn start_up_gives_up_on_a_database_that_never_appears() {
    let url = db::with_database(&server_url(), &unique_prefix("never"));
    let started = Instant::now();
    let err = db::wait_until_reachable(&url, Duration::from_secs(2))
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(err, DbError::Connect(_)), "{err:?}");
    // It retried (the first attempt fails at once), and stopped near its deadline.
    assert!(
        waited >= Duration::from_millis(700),
        "gave up after {waited:?}"
    );
    assert!(waited < Duration::from_secs(6), "gave up after {waited:?}");
}

async fn get(http: &awc::Client, url: &str) -> (u16, Value) {
    let mut reply = http.get(url).send().await.unwrap();
    let body = reply.body().await.unwrap();
    (
        reply.status().as_u16(),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

#[actix_web::test]
async fn the_operations_port_answers_while_starting_then_the_service_takes_it_over() {
    let ops = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", ops.local_addr().unwrap());
    let http = awc::Client::default();

    let starting = serve_starting(ops.try_clone().unwrap()).unwrap();
    let handle = starting.handle();
    let task = actix_web::rt::spawn(starting);
    let (status, body) = get(&http, &format!("{base}/healthz")).await;
    assert_eq!(status, 200, "a waiting process is alive");
    assert_eq!(body["status"], "ok");
    let (status, body) = get(&http, &format!("{base}/readyz")).await;
    assert_eq!(status, 503, "but takes no traffic");
    assert_eq!(body["detail"], "starting", "{body}");
    // The gateway discovers routes only from a built service.
    let (status, _) = get(&http, &format!("{base}/routes.json")).await;
    assert_eq!(status, 404);
    handle.stop(true).await;
    task.await.unwrap().unwrap();

    // The built service serves the same socket: nothing in between refuses the probes'
    // connections for good.
    let service = Service::new(
        "late",
        Arc::new(|_| {}),
        serde_json::json!({"paths": {"/api/v1/late": {"get": {}}}}),
    )
    .with_policy(RoutePolicy::new("late", &["late"]));
    let serving = service
        .serve(TcpListener::bind("127.0.0.1:0").unwrap(), ops, 1)
        .unwrap();
    let (api, ops_server) = (serving.api.handle(), serving.ops.handle());
    actix_web::rt::spawn(serving.api);
    actix_web::rt::spawn(serving.ops);
    let (status, body) = get(&http, &format!("{base}/readyz")).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ready");
    let (status, body) = get(&http, &format!("{base}/routes.json")).await;
    assert_eq!(status, 200);
    assert_eq!(body["service"], "late");
    api.stop(true).await;
    ops_server.stop(true).await;
}

struct Down;

impl ReadinessCheck for Down {
    fn name(&self) -> &'static str {
        "database"
    }
    fn check(&self) -> LocalBoxFuture<'_, Result<(), String>> {
        Box::pin(async { Err("connection refused".to_owned()) })
    }
}

#[actix_web::test]
async fn a_failed_readiness_check_is_named_in_the_503() {
    let ops = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", ops.local_addr().unwrap());
    let serving = Service::new("down", Arc::new(|_| {}), serde_json::json!({"paths": {}}))
        .ready_when(Down)
        .serve(TcpListener::bind("127.0.0.1:0").unwrap(), ops, 1)
        .unwrap();
    let (api, ops_server) = (serving.api.handle(), serving.ops.handle());
    actix_web::rt::spawn(serving.api);
    actix_web::rt::spawn(serving.ops);
    let mut reply = awc::Client::default()
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 503);
    assert_eq!(
        reply.headers().get("content-type").unwrap(),
        "application/problem+json"
    );
    let body: Value = serde_json::from_slice(&reply.body().await.unwrap()).unwrap();
    assert_eq!(body["status"], 503, "{body}");
    assert_eq!(body["detail"], "not ready", "{body}");
    assert_eq!(body["failed"]["database"], "connection refused", "{body}");
    api.stop(true).await;
    ops_server.stop(true).await;
}
