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
use std::time::Duration;

/// How long the API server keeps an idle client connection open (actix's default, said
/// here because every pooled client of ours must give up on an idle connection sooner:
/// see [`crate::client::IDLE_CONNECTION_REUSE`]).
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);

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
    /// The longest a request may take to get its response head (503 after it); off for
    /// the gateway, which has per-phase deadlines of its own.
    pub request_deadline: Option<std::time::Duration>,
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
            request_deadline: Some(std::time::Duration::from_secs(30)),
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
            deadline: self.request_deadline,
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
            // Called on each worker thread: its spans and metrics are this service's.
            crate::telemetry::serve_as(name);
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
                .route(
                    crate::client::ALIVE_PATH,
                    web::get().to(|| async { HttpResponse::NoContent().finish() }),
                )
                .configure(|cfg| routes(cfg))
        })
        .workers(workers.max(1))
        .keep_alive(KEEP_ALIVE)
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

/// The operations port of a service that is still starting (migrating, waiting for its
/// database or its upstreams). `/healthz` answers, so a startup probe does not kill a
/// process that is only waiting; `/readyz` is 503, so no traffic comes; anything else
/// (`/routes.json` included, which the gateway waits for) is 404 until
/// [`Service::serve`] takes over the same socket.
pub fn serve_starting(ops: TcpListener) -> std::io::Result<Server> {
    let ops_addr = ops.local_addr()?;
    let server = HttpServer::new(|| {
        App::new()
            .wrap(from_fn(problem_fallback))
            .route("/healthz", web::get().to(ops::healthz))
            .route("/readyz", web::get().to(ops::starting))
            .default_service(web::to(not_found))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(0)
    .listen(ops)?
    .run();
    tracing::info!(%ops_addr, "starting: operations port answers, not ready yet");
    Ok(server)
}

/// No route matched: 405 with `Allow` when the path is documented with other methods
/// (actix answers 404 when a resource's method guard fails), else 404. Also the
/// default of a resource that must not fall through to a template after it (a literal
/// `/photos/tags` before `/photos/{id}`).
pub async fn not_found_or_not_allowed(req: HttpRequest) -> HttpResponse {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn loopback() -> TcpListener {
        TcpListener::bind("127.0.0.1:0").unwrap()
    }

    #[actix_web::test]
    async fn a_request_past_its_deadline_gets_a_503_with_its_request_id() {
        let routes: Routes = Arc::new(|cfg: &mut web::ServiceConfig| {
            cfg.route(
                "/slow",
                web::get().to(|| async {
                    actix_web::rt::time::sleep(Duration::from_secs(10)).await;
                    HttpResponse::Ok().finish()
                }),
            )
            .route("/fast", web::get().to(HttpResponse::NoContent));
        });
        let mut service = Service::new(
            "test",
            routes,
            serde_json::json!({"paths": {"/slow": {"get": {}}, "/fast": {"get": {}}}}),
        );
        service.request_deadline = Some(Duration::from_millis(200));
        let serving = service.serve(loopback(), loopback(), 1).unwrap();
        let base = format!("http://{}", serving.api_addr);
        actix_web::rt::spawn(serving.api);
        actix_web::rt::spawn(serving.ops);
        let client = awc::Client::default();
        let mut slow = client
            .get(format!("{base}/slow"))
            .insert_header(("x-request-id", "deadline-1"))
            .send()
            .await
            .unwrap();
        assert_eq!(slow.status(), 503);
        assert_eq!(
            slow.headers().get("x-request-id").map(|v| v.as_bytes()),
            Some(&b"deadline-1"[..])
        );
        let body: serde_json::Value = slow.json().await.unwrap();
        assert_eq!(body["type"], "https://agora.dev/problems/unavailable");
        let fast = client.get(format!("{base}/fast")).send().await.unwrap();
        assert_eq!(fast.status(), 204);
        // An undeclared method on a documented path: 405 with Allow.
        let wrong = client.post(format!("{base}/fast")).send().await.unwrap();
        assert_eq!(wrong.status(), 405);
        assert_eq!(
            wrong.headers().get("allow").map(|v| v.as_bytes()),
            Some(&b"GET, HEAD"[..])
        );
    }
}
