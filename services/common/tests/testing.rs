//! The test kit itself: a service under test verifies tokens minted by `TestKeys` and
//! serves on loopback with its ops port, as in production.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

use actix_web::{HttpResponse, web};
use agora_common::testing::{TestKeys, serve};
use agora_common::{Caller, Service};
use std::sync::Arc;

#[actix_web::test]
async fn a_service_under_test_accepts_test_tokens() {
    let keys = TestKeys::new();
    let verifier = web::Data::new(keys.verifier());
    let routes = Arc::new(move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(verifier.clone()).route(
            "/api/v1/things/me",
            web::get().to(|caller: Caller| async move { HttpResponse::Ok().body(caller.username) }),
        );
    });
    let server = serve(Service::new(
        "things",
        routes,
        serde_json::json!({"paths": {"/api/v1/things/me": {"get": {}}}}),
    ));
    let client = awc::Client::default();
    let user = uuid::Uuid::now_v7();
    let mut ok = client
        .get(format!("{}/api/v1/things/me", server.api))
        .bearer_auth(keys.token(user, "tess"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.body().await.unwrap(), "tess");
    let anonymous = client
        .get(format!("{}/api/v1/things/me", server.api))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let health = client
        .get(format!("{}/healthz", server.ops))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}
