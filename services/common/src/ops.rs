//! Operations endpoints every service serves on its own port (never routed publicly):
//! `/healthz`, `/readyz`, `/metrics`, `/openapi.json`, and `/routes.json` (the
//! service's [`RoutePolicy`](crate::routing::RoutePolicy), read by the gateway).

use crate::metrics::Metrics;
use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, web};
use futures_util::future::LocalBoxFuture;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// A dependency that must answer before the service takes traffic.
pub trait ReadinessCheck: Send + Sync {
    /// Short name shown in the `/readyz` body (`database`, `jwks`, …).
    fn name(&self) -> &'static str;
    /// Resolves to `Err(reason)` when the dependency is not usable.
    fn check(&self) -> LocalBoxFuture<'_, Result<(), String>>;
    /// Whether a failure takes the service out of traffic (`/readyz` 503). Another
    /// service being down is reported but is not: every replica would fail together,
    /// and the endpoints that do not need it keep working.
    fn critical(&self) -> bool {
        true
    }
}

/// Another Agora service answers on its API port (`GET /internal/alive`). Not critical:
/// `/readyz` stays 200 and names it under `degraded`.
pub struct DependencyReady(pub crate::client::ServiceClient);

impl ReadinessCheck for DependencyReady {
    fn name(&self) -> &'static str {
        self.0.service()
    }
    fn check(&self) -> LocalBoxFuture<'_, Result<(), String>> {
        Box::pin(self.0.alive())
    }
    fn critical(&self) -> bool {
        false
    }
}

/// The database answers `SELECT 1`.
#[cfg(feature = "db")]
pub struct DatabaseReady(pub crate::db::DbPool);

#[cfg(feature = "db")]
impl ReadinessCheck for DatabaseReady {
    fn name(&self) -> &'static str {
        "database"
    }
    fn check(&self) -> LocalBoxFuture<'_, Result<(), String>> {
        Box::pin(crate::db::ping(&self.0))
    }
}

/// The verifier holds (or can fetch) the auth service's keys.
pub struct KeysReady(pub web::Data<crate::auth::TokenVerifier>);

impl ReadinessCheck for KeysReady {
    fn name(&self) -> &'static str {
        "jwks"
    }
    fn check(&self) -> LocalBoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.0
                .ensure_keys()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}

/// Everything the operations endpoints need.
pub struct Ops {
    pub(crate) checks: Vec<Arc<dyn ReadinessCheck>>,
    pub(crate) openapi: web::Bytes,
    pub(crate) policy: web::Bytes,
}

pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

pub(crate) async fn readyz(ops: web::Data<Ops>, metrics: web::Data<Metrics>) -> HttpResponse {
    let mut failures = serde_json::Map::new();
    let mut degraded = serde_json::Map::new();
    for check in &ops.checks {
        let outcome = tokio::time::timeout(Duration::from_secs(3), check.check()).await;
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(reason)) => Some(reason),
            Err(_) => Some("timed out".to_owned()),
        };
        if let Some(reason) = failure {
            if check.critical() {
                tracing::warn!(check = check.name(), %reason, "not ready");
                failures.insert(check.name().to_owned(), json!(reason));
            } else {
                tracing::warn!(dependency = check.name(), %reason, "dependency unavailable");
                degraded.insert(check.name().to_owned(), json!(reason));
            }
        }
    }
    // `agora_ready` keeps what the kubelet was told, for the not-ready alert.
    metrics.record_readiness(failures.is_empty());
    match (failures.is_empty(), degraded.is_empty()) {
        (true, true) => HttpResponse::Ok().json(json!({"status": "ready"})),
        (true, false) => {
            HttpResponse::Ok().json(json!({"status": "degraded", "degraded": degraded}))
        }
        (false, _) => not_ready(
            "not ready",
            json!({"failed": failures, "degraded": degraded}),
        ),
    }
}

/// A 503 from `/readyz`: problem+json (which the fallback middleware keeps as it is)
/// with what failed beside the standard members; `detail` says `not ready` or
/// `starting`.
fn not_ready(detail: &str, mut what: serde_json::Value) -> HttpResponse {
    let (slug, title) =
        crate::problem::kind_of_status(actix_web::http::StatusCode::SERVICE_UNAVAILABLE);
    if let Some(members) = what.as_object_mut() {
        members.insert(
            "type".into(),
            json!(format!("{}{slug}", crate::problem::PROBLEM_BASE)),
        );
        members.insert("title".into(), json!(title));
        members.insert("status".into(), json!(503));
        members.insert("detail".into(), json!(detail));
    }
    HttpResponse::ServiceUnavailable()
        .content_type(crate::problem::PROBLEM_JSON)
        .json(what)
}

/// `/readyz` before the service is built.
pub(crate) async fn starting() -> HttpResponse {
    not_ready("starting", json!({}))
}

pub(crate) async fn metrics(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(metrics.encode())
}

pub(crate) async fn openapi(ops: web::Data<Ops>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(ContentType::json())
        .body(ops.openapi.clone())
}

pub(crate) async fn routes(ops: web::Data<Ops>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(ContentType::json())
        .body(ops.policy.clone())
}
