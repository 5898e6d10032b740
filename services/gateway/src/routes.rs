//! The route table: which upstream owns a path, read from the route policy each
//! service declares (`/routes.json` on its ops port), never from a table kept here.

use actix_web::http::Method;
use actix_web::http::uri::{Authority, Parts, PathAndQuery, Scheme, Uri};
use agora_common::routing::RoutePolicy;
use std::sync::Arc;

/// A service the gateway forwards to.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Base URL of its API, e.g. `http://users:8080` (no trailing slash).
    pub base_url: String,
    /// Base URL of its operations endpoints (OpenAPI document, route policy).
    pub ops_url: String,
    /// What it declared about its routes.
    pub policy: RoutePolicy,
    /// The metrics label of requests forwarded to it.
    metric_label: Arc<str>,
    /// `base_url`'s scheme and authority when it has no path: a forward's URI is then
    /// put together from parts instead of formatted and parsed again.
    origin: Option<(Scheme, Authority)>,
}

impl Upstream {
    /// An upstream at `base_url` (API) and `ops_url` (operations endpoints).
    pub fn new(base_url: String, ops_url: String, policy: RoutePolicy) -> Self {
        let metric_label = Arc::from(format!("upstream:{}", policy.service));
        let base_url = base_url.trim_end_matches('/').to_owned();
        let origin = base_url.parse::<Uri>().ok().and_then(|uri| {
            let parts = uri.into_parts();
            match (parts.scheme, parts.authority, parts.path_and_query) {
                (Some(scheme), Some(authority), pq)
                    if pq.as_ref().is_none_or(|pq| pq.as_str() == "/") =>
                {
                    Some((scheme, authority))
                }
                _ => None,
            }
        });
        Self {
            origin,
            base_url,
            ops_url: ops_url.trim_end_matches('/').to_owned(),
            policy,
            metric_label,
        }
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.policy.service
    }

    /// Where a request for `incoming` (its path and query) goes on this upstream.
    pub fn uri_for(&self, incoming: &Uri) -> Uri {
        let path_and_query = incoming
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        if let Some((scheme, authority)) = &self.origin {
            let mut parts = Parts::default();
            parts.scheme = Some(scheme.clone());
            parts.authority = Some(authority.clone());
            parts.path_and_query = Some(path_and_query.clone());
            if let Ok(uri) = Uri::from_parts(parts) {
                return uri;
            }
        }
        // A base URL with a path of its own: the request's path goes after it.
        let joined = format!("{}{}", self.base_url, path_and_query.as_str());
        joined.parse().unwrap_or_else(|_| incoming.clone())
    }

    /// The metrics label of requests forwarded to it (one per upstream: bounded).
    pub fn metric_label(&self) -> Arc<str> {
        self.metric_label.clone()
    }
}

/// Maps request paths to upstreams.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    upstreams: Vec<Upstream>,
}

impl RouteTable {
    /// A table over the configured upstreams; paths no upstream owns get 404s.
    pub fn new(upstreams: Vec<Upstream>) -> Self {
        Self { upstreams }
    }

    /// The configured upstreams.
    pub fn upstreams(&self) -> &[Upstream] {
        &self.upstreams
    }

    /// The upstream that owns `path`, if any.
    pub fn resolve(&self, path: &str) -> Option<&Upstream> {
        self.upstreams.iter().find(|u| u.policy.owns(path))
    }
}

/// Whether `method path` may pass the edge without a token, per its owner's policy.
pub fn is_public(upstream: &Upstream, method: &Method, path: &str) -> bool {
    upstream.policy.is_public(method, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(policy: RoutePolicy) -> Upstream {
        Upstream::new("http://x".into(), "http://x:9090".into(), policy)
    }

    #[test]
    fn resolves_paths_by_the_declared_areas() {
        let t = RouteTable::new(vec![
            upstream(RoutePolicy::new("auth", &["auth"]).extra_path("/.well-known/jwks.json")),
            upstream(RoutePolicy::new("users", &["users", "posts", "feed"])),
        ]);
        let name = |p: &str| t.resolve(p).map(|u| u.name().to_owned());
        assert_eq!(name("/api/v1/auth/login").as_deref(), Some("auth"));
        assert_eq!(name("/api/v1/posts/1/comments").as_deref(), Some("users"));
        assert_eq!(name("/api/v1/feed").as_deref(), Some("users"));
        assert_eq!(name("/.well-known/jwks.json").as_deref(), Some("auth"));
        assert!(name("/api/v1/photos/1").is_none());
        assert!(name("/api/v1/nope").is_none());
        assert!(name("/api/v2/auth/login").is_none());
        assert!(name("/api/v1/authx/login").is_none());
    }

    #[test]
    fn forwards_go_to_the_upstream_with_the_path_and_query() {
        for (base, incoming, expected) in [
            (
                "http://users:8080",
                "/api/v1/feed?limit=5",
                "http://users:8080/api/v1/feed?limit=5",
            ),
            (
                "http://users:8080/",
                "/api/v1/feed",
                "http://users:8080/api/v1/feed",
            ),
            (
                "https://10.0.0.7:443",
                "/x/%2e?a=%20",
                "https://10.0.0.7:443/x/%2e?a=%20",
            ),
            (
                "http://proxy:80/prefix",
                "/api/v1/feed?a=1",
                "http://proxy:80/prefix/api/v1/feed?a=1",
            ),
        ] {
            let u = Upstream::new(
                base.into(),
                "http://x:9090".into(),
                RoutePolicy::new("users", &["feed"]),
            );
            let incoming: Uri = incoming.parse().unwrap();
            assert_eq!(u.uri_for(&incoming).to_string(), expected, "{base}");
        }
    }
}
