//! Turning a service definition into a running HTTP server with everything shared:
//! extractor configs, middleware, operations endpoints and a problem+json 404.

use crate::extract;
use crate::metrics::Metrics;
use crate::middleware::{observe, problem_fallback};
use crate::ops::{self, Ops, ReadinessCheck};
use crate::problem::ApiError;
use actix_web::dev::Server;
use actix_web::middleware::{Compress, from_fn};
use actix_web::{App, HttpServer, web};
use std::borrow::Cow;
use std::net::TcpListener;
use std::sync::Arc;

/// Adds a service's routes and app data to each worker's `App`.
pub type Routes = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

/// What a service contributes; the shared parts are added by [`Service::serve`].
pub struct Service {
    /// Short name: `auth`, `users`, `gateway`, …
    pub name: &'static str,
    /// Its routes (called once per worker).
    pub routes: Routes,
    /// The OpenAPI document served at `/openapi.json`.
    pub openapi: serde_json::Value,
    /// Dependencies `/readyz` checks.
    pub readiness: Vec<Arc<dyn ReadinessCheck>>,
    /// Metrics registry (add service metrics before serving).
    pub metrics: Metrics,
    /// Largest JSON body accepted.
    pub json_limit: usize,
    /// Compress responses (off for the gateway, which passes bodies through).
    pub compress: bool,
}

impl Service {
    /// A service with default limits and no readiness checks yet.
    pub fn new(name: &'static str, routes: Routes, openapi: serde_json::Value) -> Self {
        Self {
            name,
            routes,
            openapi,
            readiness: Vec::new(),
            metrics: Metrics::new(name),
            json_limit: extract::DEFAULT_JSON_LIMIT,
            compress: true,
        }
    }

    /// Adds a readiness check.
    pub fn ready_when(mut self, check: impl ReadinessCheck + 'static) -> Self {
        self.readiness.push(Arc::new(check));
        self
    }

    /// Starts serving on `listener` with `workers` threads. Signals are not handled
    /// here: the caller owns shutdown (the local runner stops many servers at once).
    pub fn serve(self, listener: TcpListener, workers: usize) -> std::io::Result<Server> {
        let ops = web::Data::new(Ops {
            checks: self.readiness,
            openapi: web::Bytes::from(serde_json::to_vec(&self.openapi).unwrap_or_default()),
        });
        let metrics = web::Data::new(self.metrics);
        let routes = self.routes;
        let json_limit = self.json_limit;
        let compress = self.compress;
        let name = self.name;
        let addr = listener.local_addr()?;
        let server = HttpServer::new(move || {
            App::new()
                .app_data(extract::json_config(json_limit))
                .app_data(extract::query_config())
                .app_data(extract::path_config())
                .app_data(ops.clone())
                .app_data(metrics.clone())
                .wrap(actix_web::middleware::Condition::new(
                    compress,
                    Compress::default(),
                ))
                .wrap(from_fn(problem_fallback))
                .wrap(from_fn(observe))
                .route("/healthz", web::get().to(ops::healthz))
                .route("/readyz", web::get().to(ops::readyz))
                .route("/metrics", web::get().to(ops::metrics))
                .route("/openapi.json", web::get().to(ops::openapi))
                .configure(|cfg| routes(cfg))
                .default_service(web::to(not_found))
        })
        .workers(workers.max(1))
        .disable_signals()
        .shutdown_timeout(10)
        .listen(listener)?
        .run();
        tracing::info!(service = name, %addr, "listening");
        Ok(server)
    }
}

async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound(Cow::Borrowed("no such resource")))
}
