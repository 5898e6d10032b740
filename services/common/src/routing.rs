//! What a service declares about its paths: which methods each path template accepts
//! (read from its OpenAPI document, so `Allow` and the document cannot disagree), and
//! its route policy (areas, public paths, body limit) that the gateway and the
//! operator's edge read instead of keeping tables of their own.

use actix_web::http::Method;
use actix_web::http::header::HeaderValue;
use serde::{Deserialize, Serialize};

/// A path template such as `/api/v1/photos/{id}/content`: literal segments, and
/// `{name}` segments that match any one non-empty segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PathTemplate {
    text: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param,
}

/// A template that is not of the form `/a/{b}/c`.
#[derive(Debug, thiserror::Error)]
#[error("invalid path template {0:?}")]
pub struct TemplateError(String);

impl PathTemplate {
    /// Parses `/a/{b}/c`.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let rest = text
            .strip_prefix('/')
            .ok_or_else(|| TemplateError(text.to_owned()))?;
        let segments = rest
            .split('/')
            .map(|s| {
                if s.len() > 2 && s.starts_with('{') && s.ends_with('}') {
                    Ok(Segment::Param)
                } else if s.contains(['{', '}']) {
                    Err(TemplateError(text.to_owned()))
                } else {
                    Ok(Segment::Literal(s.to_owned()))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            text: text.to_owned(),
            segments,
        })
    }

    /// Whether a request path (as routed, without query) matches.
    pub fn matches(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        let mut parts = rest.split('/');
        for segment in &self.segments {
            match (segment, parts.next()) {
                (Segment::Literal(l), Some(p)) if l == p => {}
                (Segment::Param, Some(p)) if !p.is_empty() => {}
                _ => return false,
            }
        }
        parts.next().is_none()
    }

    /// The template text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl TryFrom<String> for PathTemplate {
    type Error = TemplateError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PathTemplate> for String {
    fn from(value: PathTemplate) -> Self {
        value.text
    }
}

/// The methods each documented path accepts, for `405` answers with `Allow`.
#[derive(Debug, Default)]
pub struct AllowIndex {
    paths: Vec<(PathTemplate, HeaderValue)>,
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

impl AllowIndex {
    /// Reads the `paths` of an OpenAPI document. `HEAD` is allowed wherever `GET` is.
    pub fn from_openapi(doc: &serde_json::Value) -> Self {
        let mut paths = Vec::new();
        let Some(entries) = doc.get("paths").and_then(|p| p.as_object()) else {
            return Self::default();
        };
        for (path, item) in entries {
            let Ok(template) = PathTemplate::parse(path) else {
                continue;
            };
            let mut allowed: Vec<String> = METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| m.to_ascii_uppercase())
                .collect();
            if allowed.iter().any(|m| m == "GET") && !allowed.iter().any(|m| m == "HEAD") {
                allowed.push("HEAD".to_owned());
            }
            if let Ok(value) = HeaderValue::from_str(&allowed.join(", ")) {
                paths.push((template, value));
            }
        }
        // As routers do, a literal segment wins over a parameter where both match
        // (`/photos/tags` before `/photos/{id}`).
        paths.sort_by_key(|(template, _)| {
            template
                .segments
                .iter()
                .map(|s| matches!(s, Segment::Param))
                .collect::<Vec<bool>>()
        });
        Self { paths }
    }

    /// The `Allow` value of the documented path matching `path`, if any.
    pub fn allowed(&self, path: &str) -> Option<&HeaderValue> {
        self.paths
            .iter()
            .find(|(t, _)| t.matches(path))
            .map(|(_, v)| v)
    }
}

/// A path that may pass the edge without a token (the contract's *public* endpoints).
/// Services still decide what an anonymous caller may see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicRoute {
    /// Methods, upper case (`HEAD` is implied by `GET`).
    pub methods: Vec<String>,
    /// The path template.
    pub path: PathTemplate,
}

/// What a service declares about the public routes it owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutePolicy {
    /// The service (`auth`, `users`, …).
    pub service: String,
    /// First path segments after `/api/v1/` that the service owns (`users`, `posts`, …).
    pub areas: Vec<String>,
    /// Other exact paths it owns (e.g. `/.well-known/jwks.json`).
    pub extra_paths: Vec<String>,
    /// Routes that need no token at the edge.
    pub public: Vec<PublicRoute>,
    /// Routes whose responses last (server-sent events): the edge forwards them on
    /// connections of their own, so open streams never take the pool's connections
    /// from ordinary requests.
    #[serde(default)]
    pub streaming: Vec<PublicRoute>,
    /// Largest request body the edge forwards to it.
    pub max_body_bytes: usize,
}

impl RoutePolicy {
    /// A policy for `service` owning `areas`, with no public routes and a 1 MiB body limit.
    pub fn new(service: &str, areas: &[&str]) -> Self {
        Self {
            service: service.to_owned(),
            areas: areas.iter().map(|a| (*a).to_owned()).collect(),
            extra_paths: Vec::new(),
            public: Vec::new(),
            streaming: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY,
        }
    }

    /// Declares a public route. Panics on a malformed template: policies are
    /// constants written by the service's authors and checked by its tests.
    pub fn public(mut self, methods: &[&str], path: &str) -> Self {
        let path = match PathTemplate::parse(path) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        self.public.push(PublicRoute {
            methods: methods.iter().map(|m| m.to_ascii_uppercase()).collect(),
            path,
        });
        self
    }

    /// Declares a route whose responses last (see [`RoutePolicy::streaming`]). Panics
    /// on a malformed template, as [`RoutePolicy::public`] does.
    pub fn streaming(mut self, methods: &[&str], path: &str) -> Self {
        let path = match PathTemplate::parse(path) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        self.streaming.push(PublicRoute {
            methods: methods.iter().map(|m| m.to_ascii_uppercase()).collect(),
            path,
        });
        self
    }

    /// Declares an exact path outside `/api/v1/<area>` that the service owns.
    pub fn extra_path(mut self, path: &str) -> Self {
        self.extra_paths.push(path.to_owned());
        self
    }

    /// Sets the body limit.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Whether the service owns `path`.
    pub fn owns(&self, path: &str) -> bool {
        if self.extra_paths.iter().any(|p| p == path) {
            return true;
        }
        let Some(rest) = path.strip_prefix("/api/v1/") else {
            return false;
        };
        let area = rest.split('/').next().unwrap_or_default();
        self.areas.iter().any(|a| a == area)
    }

    /// Whether `method path` is one of the public routes.
    pub fn is_public(&self, method: &Method, path: &str) -> bool {
        any_matches(&self.public, method, path)
    }

    /// Whether `method path` is one of the streaming routes.
    pub fn is_streaming(&self, method: &Method, path: &str) -> bool {
        any_matches(&self.streaming, method, path)
    }
}

fn any_matches(routes: &[PublicRoute], method: &Method, path: &str) -> bool {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    routes
        .iter()
        .any(|r| r.methods.iter().any(|m| m == method) && r.path.matches(path))
}

/// Default body limit for JSON APIs.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// Why a request path is refused before routing: dot segments (also percent-encoded),
/// encoded slashes or backslashes and encoded NULs would let `/photos/x/../y` be
/// checked as one path and served as another.
pub fn unsafe_path(raw_path: &str) -> Option<&'static str> {
    let lower_has = |needle: &str| {
        raw_path
            .as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
    };
    if lower_has("%2f") || lower_has("%5c") || raw_path.contains('\\') {
        return Some("encoded slashes and backslashes are not allowed in paths");
    }
    if lower_has("%00") {
        return Some("encoded NUL bytes are not allowed in paths");
    }
    let dot_segment = raw_path.split('/').any(is_dot_segment);
    dot_segment.then_some("dot segments are not allowed in paths")
}

/// `.` or `..`, each dot possibly written `%2e` (checked on every request: no copies).
fn is_dot_segment(segment: &str) -> bool {
    let mut rest = segment.as_bytes();
    let mut dots = 0;
    while let Some(&first) = rest.first() {
        if first == b'.' {
            rest = &rest[1..];
        } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b"%2e") {
            rest = &rest[3..];
        } else {
            return false;
        }
        dots += 1;
    }
    dots == 1 || dots == 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates_match_whole_segments() {
        let t = PathTemplate::parse("/api/v1/photos/{id}/content").unwrap();
        assert!(t.matches("/api/v1/photos/abc/content"));
        assert!(!t.matches("/api/v1/photos//content"));
        assert!(!t.matches("/api/v1/photos/abc/content/x"));
        assert!(!t.matches("/api/v1/photos/abc"));
        assert!(PathTemplate::parse("no-slash").is_err());
        assert!(PathTemplate::parse("/a/{b").is_err());
    }

    #[test]
    fn allow_lists_documented_methods_and_head() {
        let index = AllowIndex::from_openapi(&json!({"paths": {
            "/api/v1/users/me": {"get": {}, "patch": {}},
            "/api/v1/users/{id}": {"get": {}},
            "/api/v1/auth/login": {"post": {}},
        }}));
        assert_eq!(
            index.allowed("/api/v1/users/me").map(|v| v.as_bytes()),
            Some(&b"GET, PATCH, HEAD"[..])
        );
        assert_eq!(
            index.allowed("/api/v1/auth/login").map(|v| v.as_bytes()),
            Some(&b"POST"[..])
        );
        assert!(index.allowed("/api/v1/nope").is_none());
    }

    #[test]
    fn literal_paths_win_over_templates_for_allowed_methods() {
        let doc = serde_json::json!({"paths": {
            "/api/v1/photos/{id}": {"get": {}, "patch": {}, "delete": {}},
            "/api/v1/photos/tags": {"get": {}},
        }});
        let index = AllowIndex::from_openapi(&doc);
        assert_eq!(
            index
                .allowed("/api/v1/photos/tags")
                .map(|v| v.to_str().unwrap()),
            Some("GET, HEAD")
        );
        assert_eq!(
            index
                .allowed("/api/v1/photos/123")
                .map(|v| v.to_str().unwrap()),
            Some("GET, DELETE, PATCH, HEAD")
        );
    }

    #[test]
    fn policies_say_what_is_public() {
        let policy = RoutePolicy::new("photos", &["photos"])
            .public(&["GET"], "/api/v1/photos/{id}/content")
            .extra_path("/.well-known/x");
        assert!(policy.owns("/api/v1/photos/1"));
        assert!(policy.owns("/.well-known/x"));
        assert!(!policy.owns("/api/v1/photosx/1"));
        assert!(policy.is_public(&Method::GET, "/api/v1/photos/1/content"));
        assert!(policy.is_public(&Method::HEAD, "/api/v1/photos/1/content"));
        assert!(!policy.is_public(&Method::DELETE, "/api/v1/photos/1/content"));
        assert!(!policy.is_public(&Method::GET, "/api/v1/photos/1"));
    }

    #[test]
    fn dot_segments_and_encoded_slashes_are_unsafe() {
        for bad in [
            "/api/v1/photos/../content",
            "/api/v1/photos/%2e%2e/content",
            "/api/v1/photos/%2E./x",
            "/api/v1/./auth",
            "/api/v1/photos/a%2Fb/content",
            "/api/v1/photos/a%5cb",
            "/api/v1/a\\b",
            "/api/v1/a%00",
            "/api/v1/photos/.%2E",
            "/api/v1/%2e/x",
            "/api/v1/..",
        ] {
            assert!(unsafe_path(bad).is_some(), "{bad}");
        }
        for good in [
            "/api/v1/photos/abc/content",
            "/api/v1/users/a.b",
            "/x/...y",
            "/x/...",
            "/x/%2e%2E%2e",
            "/x/%2",
            "/x/.%2",
            "/",
        ] {
            assert!(unsafe_path(good).is_none(), "{good}");
        }
    }
}
