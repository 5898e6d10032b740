//! What other services ask the photos service, on its internal routes.

use actix_web::http::Method;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The photos service's public routes (`GET`, and so `HEAD`): a public photo's bytes need
/// no token, so links work anywhere. The service declares these in its route policy;
/// the auth service's forward-auth `/verify` lets them through for ingress middlewares,
/// which cannot express a path with an id in it.
pub const PUBLIC_PATHS: [&str; 2] = [
    "/api/v1/photos/{id}/content",
    "/api/v1/photos/{id}/thumbnail",
];

/// Whether `method path` is one of [`PUBLIC_PATHS`] (a query string is ignored).
pub fn is_public(method: &Method, path: &str) -> bool {
    if method != Method::GET && method != Method::HEAD {
        return false;
    }
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    path.strip_prefix("/api/v1/photos/")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(id, what)| !id.is_empty() && matches!(what, "content" | "thumbnail"))
}

/// `POST /internal/photos/usable`: which of these photos may `owner` put in a post or
/// use as an avatar (their own photos, and public ones)?
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsableRequest {
    /// Who wants to use them.
    pub owner: Uuid,
    /// The photos (at most a post's worth).
    pub ids: Vec<Uuid>,
}

/// The answer: the usable subset of the ids (unknown ones, others' private ones and
/// those of people blocked either way are not), and which of those are public.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UsableResponse {
    /// The usable ids.
    pub usable: Vec<Uuid>,
    /// The public ones among them (the others are the owner's private photos, which
    /// only the owner can see: not usable where anyone else looks).
    #[serde(default)]
    pub public: Vec<Uuid>,
    /// Whose each public one is (a post reusing someone's photo tells them).
    #[serde(default)]
    pub owners: std::collections::HashMap<Uuid, Uuid>,
}

/// Where [`UsableRequest`] goes.
pub const USABLE_PATH: &str = "/internal/photos/usable";

/// The public URL of a photo's content.
pub fn content_url(id: Uuid) -> String {
    format!("/api/v1/photos/{id}/content")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::RoutePolicy;

    #[test]
    fn public_routes_agree_with_a_policy_declaring_them() {
        let policy = PUBLIC_PATHS
            .iter()
            .fold(RoutePolicy::new("photos", &["photos"]), |p, path| {
                p.public(&["GET"], path)
            });
        let cases = [
            (Method::GET, "/api/v1/photos/abc/content", true),
            (Method::HEAD, "/api/v1/photos/abc/thumbnail", true),
            (Method::GET, "/api/v1/photos/abc/content?sig=x&exp=1", true),
            (Method::DELETE, "/api/v1/photos/abc/content", false),
            (Method::GET, "/api/v1/photos/abc", false),
            (Method::GET, "/api/v1/photos//content", false),
            (Method::GET, "/api/v1/photos/a/b/content", false),
            (Method::GET, "/api/v1/photos/abc/contents", false),
            (Method::GET, "/api/v1/users/abc/content", false),
        ];
        for (method, path, public) in cases {
            assert_eq!(is_public(&method, path), public, "{method} {path}");
            let bare = path.split_once('?').map_or(path, |(p, _)| p);
            assert_eq!(
                policy.is_public(&method, bare),
                public,
                "policy: {method} {path}"
            );
        }
    }
}
