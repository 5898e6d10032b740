//! The Agora API gateway: the one entry point in local mode (and optionally in a
//! cluster). Routes `/api/v1/<area>` to the owning service, rejects missing or invalid
//! tokens on protected routes before proxying, replaces spoofable identity headers,
//! forwards request ids and `X-Forwarded-*`, limits and streams bodies, and serves the
//! merged OpenAPI document.

pub mod openapi;
mod proxy;
pub mod routes;

pub use routes::{RouteTable, Upstream};

use actix_web::web;
use agora_common::Service;
use agora_common::auth::{KeySource, TokenVerifier};
use agora_common::config::{ConfigError, Env};
use agora_common::ops::KeysReady;
use agora_common::ratelimit::RateLimiter;
use std::sync::Arc;
use std::time::Duration;

/// Gateway settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Upstream services (absent ones answer 404).
    pub upstreams: Vec<Upstream>,
    /// Where the auth service publishes its keys.
    pub jwks_url: String,
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud`.
    pub audience: String,
    /// How long an upstream may take to answer (response head).
    pub upstream_timeout: Duration,
    /// Connections kept per upstream host and worker.
    pub max_connections: usize,
    /// Requests per client address per minute (0: no limit).
    pub rate_limit_per_minute: u32,
    /// Proxies in front of the gateway that append to `X-Forwarded-For`.
    pub trusted_proxy_hops: usize,
}

/// Default edge budget per client address: well above what a person's client sends,
/// low enough to blunt a single-address flood. Benchmarks should raise or disable it.
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 6000;

/// Default body limit for JSON APIs.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;
/// Default body limit for photo uploads (10 MiB of image plus multipart framing).
pub const DEFAULT_MAX_UPLOAD: usize = 10 * 1024 * 1024 + 64 * 1024;

impl Config {
    /// A gateway in front of `upstreams`, with the JWKS at the auth upstream.
    pub fn new(upstreams: Vec<Upstream>) -> Self {
        let jwks_url = upstreams
            .iter()
            .find(|u| u.name == "auth")
            .map(|u| format!("{}/api/v1/auth/jwks", u.base_url))
            .unwrap_or_default();
        Self {
            upstreams,
            jwks_url,
            issuer: "agora".into(),
            audience: "agora".into(),
            upstream_timeout: Duration::from_secs(30),
            max_connections: 256,
            rate_limit_per_minute: DEFAULT_RATE_LIMIT_PER_MINUTE,
            trusted_proxy_hops: 0,
        }
    }

    /// `GATEWAY_UPSTREAM_<SERVICE>` (e.g. `GATEWAY_UPSTREAM_AUTH=http://auth:8080`) for
    /// each service, `GATEWAY_MAX_BODY_BYTES`, `GATEWAY_MAX_UPLOAD_BYTES`,
    /// `GATEWAY_UPSTREAM_TIMEOUT_SECS`, `GATEWAY_RATE_LIMIT_PER_MINUTE` (0 disables),
    /// `TRUSTED_PROXY_HOPS`, `AUTH_JWKS_URL`, `AUTH_ISSUER`, `AUTH_AUDIENCE`.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let max_body = env.int_in("GATEWAY_MAX_BODY_BYTES", DEFAULT_MAX_BODY, 1024..=1 << 30)?;
        let max_upload = env.int_in(
            "GATEWAY_MAX_UPLOAD_BYTES",
            DEFAULT_MAX_UPLOAD,
            1024..=1 << 32,
        )?;
        let mut upstreams = Vec::new();
        for name in ["auth", "users", "photos", "relations", "events"] {
            let var = format!("GATEWAY_UPSTREAM_{}", name.to_uppercase());
            if let Some(url) = env.raw(&var) {
                let url = url.trim().trim_end_matches('/').to_owned();
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(ConfigError::Invalid {
                        var,
                        value: url,
                        reason: "must be an http(s) URL".into(),
                    });
                }
                let max_body_bytes = if name == "photos" {
                    max_upload
                } else {
                    max_body
                };
                upstreams.push(Upstream {
                    name,
                    base_url: url,
                    max_body_bytes,
                });
            }
        }
        let mut config = Self::new(upstreams);
        if let Some(url) = env.raw("AUTH_JWKS_URL") {
            config.jwks_url = url;
        }
        if config.jwks_url.is_empty() {
            return Err(ConfigError::Missing(
                "GATEWAY_UPSTREAM_AUTH (or AUTH_JWKS_URL)".into(),
            ));
        }
        config.issuer = env.raw("AUTH_ISSUER").unwrap_or(config.issuer);
        config.audience = env.raw("AUTH_AUDIENCE").unwrap_or(config.audience);
        config.upstream_timeout =
            Duration::from_secs(env.int_in("GATEWAY_UPSTREAM_TIMEOUT_SECS", 30, 1..=3600)?);
        config.rate_limit_per_minute = env.int_in(
            "GATEWAY_RATE_LIMIT_PER_MINUTE",
            DEFAULT_RATE_LIMIT_PER_MINUTE,
            0..=100_000_000,
        )?;
        config.trusted_proxy_hops = env.int_in("TRUSTED_PROXY_HOPS", 0, 0..=10)?;
        Ok(config)
    }
}

/// Builds the gateway service.
pub fn build(config: Config) -> Service {
    let verifier = web::Data::new(TokenVerifier::new(
        &config.issuer,
        &config.audience,
        KeySource::Remote {
            url: config.jwks_url.clone(),
        },
    ));
    let table = web::Data::new(RouteTable::new(config.upstreams.clone()));
    let spec = web::Data::new(openapi::MergedSpec::default());
    let edge = web::Data::new(proxy::EdgeLimit {
        limiter: (config.rate_limit_per_minute > 0)
            .then(|| RateLimiter::new(config.rate_limit_per_minute, Duration::from_secs(60))),
        trusted_proxy_hops: config.trusted_proxy_hops,
    });
    let routes_verifier = verifier.clone();
    let timeout = config.upstream_timeout;
    let max_connections = config.max_connections;
    let routes = Arc::new(move |cfg: &mut web::ServiceConfig| {
        // One client per worker: awc is single-threaded; each keeps its own pool of
        // upstream connections alive between requests.
        let client = awc::Client::builder()
            .connector(
                awc::Connector::new()
                    .timeout(Duration::from_secs(2))
                    .limit(max_connections)
                    .conn_keep_alive(Duration::from_secs(30)),
            )
            .timeout(timeout)
            .disable_redirects()
            .finish();
        cfg.app_data(web::Data::new(client))
            .app_data(table.clone())
            .app_data(routes_verifier.clone())
            .app_data(spec.clone())
            .app_data(edge.clone())
            .route("/api/v1/openapi.json", web::get().to(openapi::merged))
            .route("/.well-known/jwks.json", web::to(proxy::forward))
            .service(web::scope("/api/v1").default_service(web::to(proxy::forward)));
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
    // Bodies pass through untouched (and already-compressed photos would not gain).
    service.compress = false;
    service
}
