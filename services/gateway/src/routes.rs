//! The route table: which service owns which `/api/v1/<area>`, and which paths are
//! public (no token needed at the edge).

use actix_web::http::Method;

/// A service the gateway forwards to.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Service name (`auth`, `users`, …), used in errors and logs.
    pub name: &'static str,
    /// Base URL, e.g. `http://users:8080` (no trailing slash).
    pub base_url: String,
    /// Largest request body forwarded to it.
    pub max_body_bytes: usize,
}

/// Which service owns each first path segment after `/api/v1/`.
pub const AREAS: &[(&str, &str)] = &[
    ("auth", "auth"),
    ("users", "users"),
    ("posts", "users"),
    ("feed", "users"),
    ("photos", "photos"),
    ("relations", "relations"),
    ("events", "events"),
];

/// Maps request paths to upstreams.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    upstreams: Vec<Upstream>,
}

impl RouteTable {
    /// A table over the configured upstreams; areas whose service is absent get 404s.
    pub fn new(upstreams: Vec<Upstream>) -> Self {
        Self { upstreams }
    }

    /// The configured upstreams.
    pub fn upstreams(&self) -> &[Upstream] {
        &self.upstreams
    }

    /// The upstream of a service by name.
    pub fn upstream(&self, service: &str) -> Option<&Upstream> {
        self.upstreams.iter().find(|u| u.name == service)
    }

    /// The upstream that owns `path`, if any.
    pub fn resolve(&self, path: &str) -> Option<&Upstream> {
        if path == "/.well-known/jwks.json" {
            return self.upstream("auth");
        }
        let rest = path.strip_prefix("/api/v1/")?;
        let area = rest.split('/').next()?;
        let service = AREAS.iter().find(|(a, _)| *a == area).map(|(_, s)| *s)?;
        self.upstream(service)
    }
}

/// Whether a request may pass the edge without a token (the contract's *public*
/// endpoints). Services still decide what an anonymous caller may see.
pub fn is_public(method: &Method, path: &str) -> bool {
    let read = method == Method::GET || method == Method::HEAD;
    match path {
        "/api/v1/auth/register" | "/api/v1/auth/login" | "/api/v1/auth/refresh" => {
            method == Method::POST
        }
        "/api/v1/auth/jwks" | "/.well-known/jwks.json" => read,
        _ => read && is_photo_bytes(path),
    }
}

/// `/api/v1/photos/{id}/content` or `/thumbnail`: public photos' bytes load anywhere.
fn is_photo_bytes(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/api/v1/photos/") else {
        return false;
    };
    let mut parts = rest.split('/');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(id), Some("content" | "thumbnail"), None) if !id.is_empty()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        RouteTable::new(vec![
            Upstream {
                name: "auth",
                base_url: "http://a".into(),
                max_body_bytes: 10,
            },
            Upstream {
                name: "users",
                base_url: "http://u".into(),
                max_body_bytes: 10,
            },
        ])
    }

    #[test]
    fn resolves_areas_to_services() {
        let t = table();
        assert_eq!(
            t.resolve("/api/v1/auth/login").map(|u| u.name),
            Some("auth")
        );
        assert_eq!(
            t.resolve("/api/v1/posts/1/comments").map(|u| u.name),
            Some("users")
        );
        assert_eq!(t.resolve("/api/v1/feed").map(|u| u.name), Some("users"));
        assert_eq!(
            t.resolve("/.well-known/jwks.json").map(|u| u.name),
            Some("auth")
        );
        // Configured areas only; unknown or absent services resolve to nothing.
        assert!(t.resolve("/api/v1/photos/1").is_none());
        assert!(t.resolve("/api/v1/nope").is_none());
        assert!(t.resolve("/api/v2/auth/login").is_none());
        assert!(t.resolve("/api/v1/authx/login").is_none());
    }

    #[test]
    fn public_paths_follow_the_contract() {
        assert!(is_public(&Method::POST, "/api/v1/auth/login"));
        assert!(!is_public(&Method::GET, "/api/v1/auth/login"));
        assert!(!is_public(&Method::POST, "/api/v1/auth/logout"));
        assert!(!is_public(&Method::GET, "/api/v1/auth/me"));
        assert!(is_public(&Method::GET, "/api/v1/auth/jwks"));
        assert!(is_public(&Method::GET, "/api/v1/photos/abc/content"));
        assert!(is_public(&Method::HEAD, "/api/v1/photos/abc/thumbnail"));
        assert!(!is_public(&Method::GET, "/api/v1/photos/abc"));
        assert!(!is_public(&Method::DELETE, "/api/v1/photos/abc/content"));
        assert!(!is_public(&Method::GET, "/api/v1/photos/abc/content/x"));
    }
}
