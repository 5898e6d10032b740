//! The Agora API gateway: the one entry point in local mode (and optionally in a
//! cluster). Routes `/api/v1/<area>` to the service that declared the area, rejects
//! missing or invalid tokens on protected routes before proxying, replaces spoofable
//! identity headers, forwards request ids and `X-Forwarded-*`, limits and streams
//! bodies, rate-limits every request per client, and serves the merged OpenAPI document.

mod discovery;
pub mod openapi;
mod proxy;
pub mod routes;

pub use discovery::{DiscoveryError, discover};
pub use routes::{RouteTable, Upstream};

use actix_web::dev::ServiceRequest;
use actix_web::web;
use agora_common::Service;
use agora_common::auth::{KeySource, TokenVerifier};
use agora_common::client_addr::{TrustedProxies, rate_key};
use agora_common::config::{ConfigError, Env};
use agora_common::ops::KeysReady;
use agora_common::ratelimit::RateLimiter;
use agora_common::{ApiError, middleware::AdmissionCheck};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Gateway settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Upstream services, with the route policies they declared.
    pub upstreams: Vec<Upstream>,
    /// Where the auth service publishes its keys (default: the auth upstream's).
    pub jwks_url: Option<String>,
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud`.
    pub audience: String,
    /// How long connecting to an upstream may take.
    pub connect_timeout: Duration,
    /// How long the client may pause while sending a request body.
    pub body_idle_timeout: Duration,
    /// How long an upstream may take to answer once the request body is sent.
    pub response_timeout: Duration,
    /// Connections kept per upstream host and worker.
    pub max_connections: usize,
    /// Streams (routes a policy declares `streaming`) open at once per worker, on
    /// connections of their own (`GATEWAY_MAX_STREAMS`).
    pub max_streams: usize,
    /// Requests per client address (IPv6: per /64) per minute (0: no limit).
    pub rate_limit_per_minute: u32,
    /// Proxies in front of the gateway whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
}

/// Default edge budget per client address: well above what a person's client sends,
/// low enough to blunt a single-address flood. Benchmarks should raise or disable it.
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 6000;

impl Config {
    /// A gateway in front of `upstreams`.
    pub fn new(upstreams: Vec<Upstream>) -> Self {
        Self {
            upstreams,
            jwks_url: None,
            issuer: "agora".into(),
            audience: "agora".into(),
            connect_timeout: Duration::from_secs(2),
            body_idle_timeout: Duration::from_secs(30),
            response_timeout: Duration::from_secs(30),
            max_connections: 256,
            max_streams: 10_000,
            rate_limit_per_minute: DEFAULT_RATE_LIMIT_PER_MINUTE,
            trusted_proxies: TrustedProxies::none(),
        }
    }

    /// Everything but the upstreams, from the environment: `AUTH_JWKS_URL`,
    /// `AUTH_ISSUER`, `AUTH_AUDIENCE`, `GATEWAY_CONNECT_TIMEOUT_SECS`,
    /// `GATEWAY_BODY_IDLE_TIMEOUT_SECS`, `GATEWAY_UPSTREAM_TIMEOUT_SECS` (response head),
    /// `GATEWAY_RATE_LIMIT_PER_MINUTE` (0 disables), `GATEWAY_MAX_STREAMS`, `TRUSTED_PROXIES`,
    /// `TRUSTED_PROXY_HOPS`. The upstreams come from [`discover`].
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let mut config = Self::new(Vec::new());
        config.jwks_url = env.raw("AUTH_JWKS_URL");
        config.issuer = env.raw("AUTH_ISSUER").unwrap_or(config.issuer);
        config.audience = env.raw("AUTH_AUDIENCE").unwrap_or(config.audience);
        let secs = |var: &str, default: u64| env.int_in(var, default, 1..=3600);
        config.connect_timeout = Duration::from_secs(secs("GATEWAY_CONNECT_TIMEOUT_SECS", 2)?);
        config.body_idle_timeout = Duration::from_secs(secs("GATEWAY_BODY_IDLE_TIMEOUT_SECS", 30)?);
        config.response_timeout = Duration::from_secs(secs("GATEWAY_UPSTREAM_TIMEOUT_SECS", 30)?);
        config.max_streams = env.int_in("GATEWAY_MAX_STREAMS", 10_000, 1..=1_000_000)?;
        config.rate_limit_per_minute = env.int_in(
            "GATEWAY_RATE_LIMIT_PER_MINUTE",
            DEFAULT_RATE_LIMIT_PER_MINUTE,
            0..=100_000_000,
        )?;
        config.trusted_proxies = TrustedProxies::from_env(env)?;
        Ok(config)
    }

    fn jwks_url(&self) -> Option<String> {
        self.jwks_url.clone().or_else(|| {
            self.upstreams
                .iter()
                .find(|u| u.name() == "auth")
                .map(|u| format!("{}/api/v1/auth/jwks", u.base_url))
        })
    }
}

/// The gateway could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// No auth upstream and no `AUTH_JWKS_URL`: tokens could not be verified.
    #[error("no JWKS URL: route an `auth` upstream or set AUTH_JWKS_URL")]
    NoJwks,
}

/// The per-address request budget at the edge, checked before routing, on every
/// request, matched or not.
struct EdgeLimit {
    limiter: RateLimiter<IpAddr>,
    trusted_proxies: TrustedProxies,
}

impl EdgeLimit {
    fn admit(&self, req: &ServiceRequest) -> Result<(), ApiError> {
        match self.trusted_proxies.client_addr(req.request()) {
            Some(addr) => self
                .limiter
                .acquire(&rate_key(addr))
                .map_err(|retry_after_secs| ApiError::TooManyRequests { retry_after_secs }),
            None => Ok(()),
        }
    }
}

/// Settings the forwarding handler shares.
pub(crate) struct Forwarding {
    pub body_idle: Duration,
    pub response: Duration,
    pub trusted_proxies: TrustedProxies,
}

/// Builds the gateway service.
pub fn build(config: Config) -> Result<Service, BuildError> {
    let jwks_url = config.jwks_url().ok_or(BuildError::NoJwks)?;
    let verifier = web::Data::new(TokenVerifier::new(
        &config.issuer,
        &config.audience,
        KeySource::Remote { url: jwks_url },
    ));
    let table = web::Data::new(RouteTable::new(config.upstreams.clone()));
    let spec = web::Data::new(openapi::MergedSpec::default());
    let forwarding = web::Data::new(Forwarding {
        body_idle: config.body_idle_timeout,
        response: config.response_timeout,
        trusted_proxies: config.trusted_proxies.clone(),
    });
    let routes_verifier = verifier.clone();
    let connect_timeout = config.connect_timeout;
    let max_connections = config.max_connections;
    let max_streams = config.max_streams;
    let routes = Arc::new(move |cfg: &mut web::ServiceConfig| {
        // One client per worker: awc is single-threaded; each keeps its own pool of
        // upstream connections alive between requests. Deadlines are per phase (see
        // `proxy`), so the client's own whole-request timeout is off.
        let client = awc::Client::builder()
            .connector(
                awc::Connector::new()
                    .timeout(connect_timeout)
                    .limit(max_connections)
                    .conn_keep_alive(agora_common::client::IDLE_CONNECTION_REUSE),
            )
            .disable_timeout()
            .disable_redirects()
            .finish();
        // Streams last: on a pool of their own, they never keep the connections of
        // ordinary requests busy.
        let streams = awc::Client::builder()
            .connector(
                awc::Connector::new()
                    .timeout(connect_timeout)
                    .limit(max_streams),
            )
            .disable_timeout()
            .disable_redirects()
            .finish();
        cfg.app_data(web::Data::new(proxy::Clients {
            pooled: client,
            streams,
        }))
        .app_data(table.clone())
        .app_data(routes_verifier.clone())
        .app_data(spec.clone())
        .app_data(forwarding.clone())
        .default_service(web::to(proxy::handle));
    });
    let mut service = Service::new(
        "gateway",
        routes,
        serde_json::json!({
            "openapi": "3.1.0",
            "info": {"title": "Agora gateway", "version": env!("CARGO_PKG_VERSION")},
            "paths": {}
        }),
    )
    .ready_when(KeysReady(verifier));
    if config.rate_limit_per_minute > 0 {
        let edge = EdgeLimit {
            limiter: RateLimiter::new(config.rate_limit_per_minute, Duration::from_secs(60)),
            trusted_proxies: config.trusted_proxies,
        };
        let check: AdmissionCheck = Arc::new(move |req: &ServiceRequest| edge.admit(req));
        service.admission = Some(check);
    }
    // Bodies pass through untouched (and already-compressed photos would not gain);
    // HEAD is forwarded as HEAD.
    service.compress = false;
    service.head_as_get = false;
    service.request_deadline = None;
    Ok(service)
}
