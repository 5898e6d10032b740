//! Request and response bodies of the users API, and the validated field types.

use agora_common::FieldError;
use agora_common::pagination::PageParams;
use agora_common::relations::Counts;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// The URL pattern of the contract (http or https, at most 2048 characters). Checked
/// by [`check_web_url`] exactly as written here, so the document and the code agree.
pub const WEB_URL_PATTERN: &str = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#][!-~]*)?$";
/// A web URL or a photo reference (avatar, website).
pub const PROFILE_URL_PATTERN: &str = r"^(https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#][!-~]*)?|/api/v1/photos/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/content)$";
/// Longest URL.
pub const MAX_URL_CHARS: usize = 2048;

/// An http(s) URL: scheme, a host of letters, digits, dots and dashes, an optional
/// port, then printable ASCII (IRIs must be percent-encoded). Not dereferenced here.
pub fn check_web_url(url: &str) -> Result<(), &'static str> {
    const MESSAGE: &str = "must be an http(s) URL of at most 2048 characters";
    if url.len() > MAX_URL_CHARS {
        return Err(MESSAGE);
    }
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or(MESSAGE)?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    let port_ok =
        port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    let tail_ok = tail.bytes().all(|b| (b'!'..=b'~').contains(&b));
    if host_ok && port_ok && tail_ok {
        Ok(())
    } else {
        Err(MESSAGE)
    }
}

/// The photo a `/api/v1/photos/{id}/content` reference names.
pub fn photo_reference(url: &str) -> Option<Uuid> {
    let id = url
        .strip_prefix("/api/v1/photos/")?
        .strip_suffix("/content")?;
    // Only the hyphenated form the pattern allows.
    (id.len() == 36).then(|| Uuid::parse_str(id).ok()).flatten()
}

/// A web URL or a photo reference.
pub fn check_profile_url(url: &str) -> Result<(), &'static str> {
    if photo_reference(url).is_some() {
        return Ok(());
    }
    check_web_url(url).map_err(
        |_| "must be an http(s) URL of at most 2048 characters or /api/v1/photos/{id}/content",
    )
}

/// Who can see a post.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Everyone signed in.
    #[default]
    Public,
    /// The author and the author's friends.
    Friends,
    /// The author only.
    Private,
}

impl Visibility {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Friends => "friends",
            Self::Private => "private",
        }
    }

    /// The stored form back (the column has a CHECK constraint).
    pub fn parse(stored: &str) -> Self {
        match stored {
            "friends" => Self::Friends,
            "private" => Self::Private,
            _ => Self::Public,
        }
    }
}

/// A user's profile.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Profile {
    pub id: Uuid,
    pub username: String,
    pub display_name: Option<String>,
    pub bio: Option<String>,
    pub avatar_url: Option<String>,
    pub location: Option<String>,
    pub website: Option<String>,
    pub created_at: DateTime<Utc>,
    pub counts: ProfileCounts,
}

/// A profile's counts. `posts` is the number of the user's posts the caller can list
/// (public ones; friends-only ones too for a friend; all on the caller's own profile;
/// none when either blocks the other), so counts never reveal posts the caller may not
/// see; the others are totals.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct ProfileCounts {
    pub posts: i64,
    pub followers: i64,
    pub following: i64,
    pub friends: i64,
}

impl ProfileCounts {
    /// Posts from this service, the rest from the relations service.
    pub fn new(posts: i64, relations: Counts) -> Self {
        Self {
            posts,
            followers: relations.followers,
            following: relations.following,
            friends: relations.friends,
        }
    }
}

/// A page of profiles.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfilePage {
    pub items: Vec<Profile>,
    /// Cursor of the next page; `null` on the last one (and for exact lookups).
    pub next_cursor: Option<String>,
}

/// `GET /users` query: `username` and `q` filter together; neither lists everyone.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Exact username (case-insensitive).
    #[param(min_length = 1, max_length = 32, pattern = "^[A-Za-z0-9_.]+$")]
    pub username: Option<String>,
    /// Username prefix (case-insensitive); results in username order, paginated.
    #[param(min_length = 1, max_length = 32, pattern = "^[A-Za-z0-9_.]+$")]
    pub q: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    pub page: PageParams,
}

/// `PATCH /users/me`: any of the fields; `null` or `""` clears one.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    #[serde(default, deserialize_with = "agora_common::extract::nullable")]
    #[schema(value_type = Option<String>, max_length = 64, pattern = "^[^\\u0000]*$", nullable)]
    pub display_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "agora_common::extract::nullable")]
    #[schema(value_type = Option<String>, max_length = 500, pattern = "^[^\\u0000]*$", nullable)]
    pub bio: Option<Option<String>>,
    /// An http(s) URL or `/api/v1/photos/{id}/content`.
    #[serde(default, deserialize_with = "agora_common::extract::nullable")]
    #[schema(value_type = Option<String>, max_length = 2048, pattern = r"^(|https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#][!-~]*)?|/api/v1/photos/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/content)$", nullable)]
    pub avatar_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "agora_common::extract::nullable")]
    #[schema(value_type = Option<String>, max_length = 64, pattern = "^[^\\u0000]*$", nullable)]
    pub location: Option<Option<String>>,
    /// An http(s) URL or `/api/v1/photos/{id}/content`.
    #[serde(default, deserialize_with = "agora_common::extract::nullable")]
    #[schema(value_type = Option<String>, max_length = 2048, pattern = r"^(|https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#][!-~]*)?|/api/v1/photos/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/content)$", nullable)]
    pub website: Option<Option<String>>,
}

/// A profile change whose fields all passed validation: `Some(None)` clears.
#[derive(Debug, Default)]
pub struct ProfileChange {
    pub display_name: Option<Option<String>>,
    pub bio: Option<Option<String>>,
    pub avatar_url: Option<Option<String>>,
    pub location: Option<Option<String>>,
    pub website: Option<Option<String>>,
}

fn text_field(
    errors: &mut Vec<FieldError>,
    field: &'static str,
    value: Option<Option<String>>,
    max: usize,
    message: &'static str,
) -> Option<Option<String>> {
    let value = value?.filter(|v| !v.is_empty());
    if value
        .as_ref()
        .is_some_and(|v| v.chars().count() > max || v.contains('\0'))
    {
        errors.push(FieldError::new(field, message));
    }
    Some(value)
}

fn url_field(
    errors: &mut Vec<FieldError>,
    field: &'static str,
    value: Option<Option<String>>,
) -> Option<Option<String>> {
    let value = value?.filter(|v| !v.is_empty());
    if let Some(Err(message)) = value.as_deref().map(check_profile_url) {
        errors.push(FieldError::new(field, message));
    }
    Some(value)
}

impl ProfilePatch {
    /// Validates every field, reporting all problems at once.
    pub fn validate(self) -> Result<ProfileChange, Vec<FieldError>> {
        let mut errors = Vec::new();
        let change = ProfileChange {
            display_name: text_field(
                &mut errors,
                "display_name",
                self.display_name,
                64,
                "must be at most 64 characters, without NUL",
            ),
            bio: text_field(
                &mut errors,
                "bio",
                self.bio,
                500,
                "must be at most 500 characters, without NUL",
            ),
            avatar_url: url_field(&mut errors, "avatar_url", self.avatar_url),
            location: text_field(
                &mut errors,
                "location",
                self.location,
                64,
                "must be at most 64 characters, without NUL",
            ),
            website: url_field(&mut errors, "website", self.website),
        };
        if errors.is_empty() {
            Ok(change)
        } else {
            Err(errors)
        }
    }
}

/// Someone named on a post or comment.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Author {
    pub id: Uuid,
    pub username: String,
}

/// A photo on a post.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PostPhoto {
    pub id: Uuid,
    /// `/api/v1/photos/{id}/content`.
    pub url: String,
}

/// A post as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Post {
    pub id: Uuid,
    pub author: Author,
    pub text: String,
    pub links: Vec<String>,
    pub photos: Vec<PostPhoto>,
    pub visibility: Visibility,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub comment_count: i64,
    /// Reactions by emoji, with their counts.
    #[schema(value_type = std::collections::HashMap<String, i64>)]
    pub reactions: BTreeMap<String, i64>,
    /// The caller's own reactions.
    pub my_reactions: Vec<String>,
}

/// A page of posts, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PostPage {
    pub items: Vec<Post>,
    /// Cursor of the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// `POST /posts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostCreate {
    /// 1..=5000 characters, not only white space (no NUL: PostgreSQL text cannot
    /// hold it).
    #[schema(
        min_length = 1,
        max_length = 5000,
        pattern = "^[^\\u0000]*[^\\u0000\\s][^\\u0000]*$"
    )]
    pub text: String,
    /// At most 10 http(s) URLs.
    #[schema(max_items = 10, value_type = Option<Vec<LinkDoc>>)]
    pub links: Option<Vec<String>>,
    /// At most 4 photos, each the author's own or public.
    #[schema(max_items = 4, value_type = Option<Vec<Uuid>>)]
    pub photo_ids: Option<Vec<Uuid>>,
    /// Default `public`.
    #[serde(default)]
    pub visibility: Visibility,
}

/// `PATCH /posts/{id}`: any of the fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostPatch {
    /// 1..=5000 characters (no NUL).
    #[serde(default, deserialize_with = "agora_common::extract::present")]
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 5000,
        pattern = "^[^\\u0000]*[^\\u0000\\s][^\\u0000]*$"
    )]
    pub text: Option<String>,
    /// At most 10 http(s) URLs; replaces the list.
    #[serde(default, deserialize_with = "agora_common::extract::present")]
    #[schema(nullable = false, max_items = 10, value_type = Option<Vec<LinkDoc>>)]
    pub links: Option<Vec<String>>,
    #[serde(default, deserialize_with = "agora_common::extract::present")]
    #[schema(nullable = false)]
    pub visibility: Option<Visibility>,
}

/// A link: an http(s) URL.
#[derive(ToSchema)]
#[schema(value_type = String, max_length = 2048, pattern = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#][!-~]*)?$")]
pub struct LinkDoc(#[allow(dead_code)] String);

/// Whether `text` has 1..=`max` characters and no NUL (PostgreSQL text cannot hold it).
pub fn text_within(text: &str, max: usize) -> bool {
    (1..=max).contains(&text.chars().count()) && !text.contains('\0') && !text.trim().is_empty()
}

/// Checks post text and links; all problems at once.
pub fn check_post_fields(
    text: Option<&str>,
    links: Option<&[String]>,
) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    if text.is_some_and(|text| !text_within(text, 5000)) {
        errors.push(FieldError::new(
            "text",
            "must be 1 to 5000 characters, not only white space, without NUL",
        ));
    }
    if let Some(links) = links {
        if links.len() > 10 {
            errors.push(FieldError::new("links", "at most 10 links"));
        }
        for (i, link) in links.iter().enumerate() {
            if let Err(message) = check_web_url(link) {
                errors.push(FieldError::new(format!("links[{i}]"), message));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// `POST /posts/{id}/comments`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentCreate {
    /// 1..=2000 characters, not only white space (no NUL).
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = "^[^\\u0000]*[^\\u0000\\s][^\\u0000]*$"
    )]
    pub text: String,
    /// The comment this replies to (on the same post).
    pub parent_id: Option<Uuid>,
}

/// A comment.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Comment {
    pub id: Uuid,
    pub post_id: Uuid,
    pub parent_id: Option<Uuid>,
    pub author: Author,
    pub text: String,
    pub created_at: DateTime<Utc>,
}

/// A page of comments, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommentPage {
    pub items: Vec<Comment>,
    /// Cursor of the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// A post's reactions after a change.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Reactions {
    #[schema(value_type = std::collections::HashMap<String, i64>)]
    pub reactions: BTreeMap<String, i64>,
    pub my_reactions: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_http_or_https_only() {
        for ok in [
            "https://example.org",
            "http://a.b:8080/path?q=1#frag",
            "https://xn--bcher-kva.example/~user/%20x",
        ] {
            assert!(check_web_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "ftp://example.org",
            "https://",
            "https://exa mple.org",
            "https://example.org/ü",
            "https://a:123456",
            "//example.org",
            "HTTPS://example.org",
        ] {
            assert!(check_web_url(bad).is_err(), "{bad}");
        }
        assert!(check_web_url(&format!("https://a.b/{}", "x".repeat(2040))).is_err());
    }

    #[test]
    fn photo_references_are_exact() {
        let id = Uuid::now_v7();
        assert_eq!(
            photo_reference(&format!("/api/v1/photos/{id}/content")),
            Some(id)
        );
        assert!(photo_reference(&format!("/api/v1/photos/{}/content", id.simple())).is_none());
        assert!(check_profile_url(&format!("/api/v1/photos/{id}/thumbnail")).is_err());
    }
}
