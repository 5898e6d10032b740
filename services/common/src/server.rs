//! Turning a service definition into running HTTP servers with everything shared:
//! extractor configs, middleware, a problem+json 404/405, and the operations endpoints
//! on a listener of their own (probes and scrapes go there; it is never routed).

use crate::extract;
use crate::metrics::Metrics;
use crate::middleware::{Admission, AdmissionCheck, admit, observe, problem_fallback};
use crate::ops::{self, Ops, ReadinessCheck};
use crate::problem::ApiError;
use crate::routing::{AllowIndex, RoutePolicy};
use actix_web::dev::Server;
use actix_web::http::header;
use actix_web::middleware::{Compress, from_fn};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, ResponseError, web};
use std::borrow::Cow;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

/// Adds a service's routes and app data to each worker's `App`.
pub type Routes = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

/// What a service contributes; the shared parts are added by [`Service::serve`].
pub struct Service {
    /// Short name: `auth`, `users`, `gateway`, …
    pub name: &'static str,
    /// Its routes (called once per worker).
    pub routes: Routes,
    /// The OpenAPI document served at `/openapi.json` on the ops port; its `paths`
    /// also give the `Allow` header of 405 answers.
    pub openapi: serde_json::Value,
    /// What the edge must know about its routes (served at `/routes.json` on the ops
    /// port); `None` for the gateway itself.
    pub policy: Option<RoutePolicy>,
    /// Dependencies `/readyz` checks.
    pub readiness: Vec<Arc<dyn ReadinessCheck>>,
    /// Metrics registry (add service metrics before serving).
    pub metrics: Metrics,
    /// Largest JSON body accepted.
    pub json_limit: usize,
    /// Compress responses (off for the gateway, which passes bodies through).
    pub compress: bool,
    /// Checked on every request before routing (the gateway's edge rate limit).
    pub admission: Option<AdmissionCheck>,
    /// Serve `HEAD` with `GET` handlers (off for the gateway, which forwards `HEAD`).
    pub head_as_get: bool,
}

/// The two servers of a running service: the API and the operations endpoints.
pub struct Serving {
    /// The API server (routes of the service).
    pub api: Server,
    /// `/healthz`, `/readyz`, `/metrics`, `/openapi.json`, `/routes.json`.
    pub ops: Server,
    /// Where the API listens.
    pub api_addr: SocketAddr,
    /// Where the operations endpoints listen.
    pub ops_addr: SocketAddr,
}

impl Service {
    /// A service with default limits and no readiness checks yet.
    pub fn new(name: &'static str, routes: Routes, openapi: serde_json::Value) -> Self {
        Self {
            name,
            routes,
            openapi,
            policy: None,
            readiness: Vec::new(),
            metrics: Metrics::new(name),
            json_limit: extract::DEFAULT_JSON_LIMIT,
            compress: true,
            admission: None,
            head_as_get: true,
        }
    }

    /// Adds a readiness check.
    pub fn ready_when(mut self, check: impl ReadinessCheck + 'static) -> Self {
        self.readiness.push(Arc::new(check));
        self
    }

    /// Declares the route policy the edge reads.
    pub fn with_policy(mut self, policy: RoutePolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Starts the API on `api` with `workers` threads and the operations endpoints on
    /// `ops` (one thread; never routed publicly). Signals are not handled here: the
    /// caller owns shutdown (the local runner stops many servers at once).
    pub fn serve(
        self,
        api: TcpListener,
        ops: TcpListener,
        workers: usize,
    ) -> std::io::Result<Serving> {
        let ops_data = web::Data::new(Ops {
            checks: self.readiness,
            openapi: web::Bytes::from(serde_json::to_vec(&self.openapi)?),
            policy: web::Bytes::from(serde_json::to_vec(&self.policy)?),
        });
        let allow = web::Data::new(AllowIndex::from_openapi(&self.openapi));
        let admission = web::Data::new(Admission {
            check: self.admission,
            head_as_get: self.head_as_get,
        });
        let metrics = web::Data::new(self.metrics);
        let routes = self.routes;
        let json_limit = self.json_limit;
        let compress = self.compress;
        let name = self.name;
        let api_addr = api.local_addr()?;
        let ops_addr = ops.local_addr()?;
        let ops_metrics = metrics.clone();
        let api = HttpServer::new(move || {
            App::new()
                .app_data(extract::json_config(json_limit))
                .app_data(extract::query_config())
                .app_data(extract::path_config())
                .app_data(metrics.clone())
                .app_data(allow.clone())
                .app_data(admission.clone())
                .wrap(from_fn(admit))
                .wrap(actix_web::middleware::Condition::new(
                    compress,
                    Compress::default(),
                ))
                .wrap(from_fn(problem_fallback))
                .wrap(from_fn(observe))
                // Before `configure`, so a service may replace it (the gateway does).
                .default_service(web::to(not_found_or_not_allowed))
                .configure(|cfg| routes(cfg))
        })
        .workers(workers.max(1))
        .disable_signals()
        .shutdown_timeout(10)
        .listen(api)?
        .run();
        let ops = HttpServer::new(move || {
            App::new()
                .app_data(ops_data.clone())
                .app_data(ops_metrics.clone())
                .wrap(from_fn(problem_fallback))
                .route("/healthz", web::get().to(ops::healthz))
                .route("/readyz", web::get().to(ops::readyz))
                .route("/metrics", web::get().to(ops::metrics))
                .route("/openapi.json", web::get().to(ops::openapi))
                .route("/routes.json", web::get().to(ops::routes))
                .default_service(web::to(not_found))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(5)
        .listen(ops)?
        .run();
        tracing::info!(service = name, %api_addr, %ops_addr, "listening");
        Ok(Serving {
            api,
            ops,
            api_addr,
            ops_addr,
        })
    }
}

/// No route matched: 405 with `Allow` when the path is documented with other methods
/// (actix answers 404 when a resource's method guard fails), else 404.
async fn not_found_or_not_allowed(req: HttpRequest) -> HttpResponse {
    match req
        .app_data::<web::Data<AllowIndex>>()
        .and_then(|index| index.allowed(req.path()))
    {
        Some(allow) => {
            let mut response = ApiError::MethodNotAllowed.error_response();
            response.headers_mut().insert(header::ALLOW, allow.clone());
            response
        }
        None => not_found_response(),
    }
}

fn not_found_response() -> HttpResponse {
    ApiError::NotFound(Cow::Borrowed("no such resource")).error_response()
}

async fn not_found() -> HttpResponse {
    not_found_response()
}
