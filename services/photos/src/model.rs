//! The photos service's wire types and the contract's field rules.

use agora_common::FieldError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Most tags on a photo.
pub const MAX_TAGS: usize = 10;
/// Longest tag.
pub const MAX_TAG_LEN: usize = 32;
/// Longest caption, in characters.
pub const MAX_CAPTION: usize = 500;

/// Who may see a photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
// Named apart from the users service's post `Visibility` in the merged document.
#[schema(as = PhotoVisibility)]
pub enum Visibility {
    /// Anyone, without a token; searchable by tag.
    Public,
    /// The owner (and holders of a share link).
    #[default]
    Private,
}

impl Visibility {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
        }
    }

    /// From the stored text (anything but `public` is private: fail closed).
    pub fn parse(text: &str) -> Self {
        if text == "public" {
            Self::Public
        } else {
            Self::Private
        }
    }
}

/// A photo's metadata.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Photo {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub visibility: Visibility,
    pub tags: Vec<String>,
    pub caption: Option<String>,
    /// `image/jpeg`, `image/png`, `image/gif` or `image/webp`.
    pub content_type: String,
    pub width: i32,
    pub height: i32,
    pub size_bytes: i64,
    /// Of the stored (re-encoded) bytes; also their `ETag`.
    pub sha256: String,
    /// `/api/v1/photos/{id}/content`.
    pub url: String,
    /// `/api/v1/photos/{id}/thumbnail` (longest side 320 px).
    pub thumbnail_url: String,
    pub created_at: DateTime<Utc>,
}

/// One tag, as the documents show it: 1..=32 of `[a-z0-9_-]` (a schema only: tags are
/// plain strings in code, checked by [`check_tags`]).
pub struct Tag;

impl utoipa::PartialSchema for Tag {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[a-z0-9_-]{1,32}$"))
            .min_length(Some(1))
            .max_length(Some(MAX_TAG_LEN))
            .into()
    }
}

impl ToSchema for Tag {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("PhotoTag")
    }
}

/// A page of photos.
#[derive(Debug, Serialize, ToSchema)]
pub struct PhotoPage {
    pub items: Vec<Photo>,
    /// Cursor of the next page, `null` on the last one.
    pub next_cursor: Option<String>,
}

/// `PATCH /photos/{id}`: any of the fields; `caption: null` or `""` clears it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhotoPatch {
    #[serde(default, deserialize_with = "agora_common::extract::present")]
    #[schema(nullable = false)]
    pub visibility: Option<Visibility>,
    /// Each 1..=32 of `[a-z0-9_-]`, at most 10 (duplicates are merged).
    #[serde(default, deserialize_with = "agora_common::extract::present")]
    #[schema(nullable = false, value_type = Option<Vec<Tag>>, max_items = 10)]
    pub tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "agora_common::extract::nullable")]
    #[schema(value_type = Option<String>, max_length = 500)]
    pub caption: Option<Option<String>>,
}

/// `POST /photos/{id}/share-links`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareLinkRequest {
    /// Lifetime, 60..=604800 seconds.
    #[schema(value_type = i64, minimum = 60, maximum = 604800)]
    #[serde(deserialize_with = "whole_number")]
    pub expires_in_seconds: i64,
}

/// A JSON integer, also when written as `1152.0` (JSON Schema's `integer` allows it).
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
        _ => Err(serde::de::Error::custom("expected a whole number")),
    }
}

/// A share link.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShareLink {
    /// Serves the photo's content without a token until `expires_at`.
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// A public tag and how many public photos carry it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TagCount {
    pub tag: String,
    pub count: i64,
}

/// `GET /photos/tags`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TagList {
    pub items: Vec<TagCount>,
}

/// Whether `tag` is 1..=32 of `[a-z0-9_-]`.
pub fn valid_tag(tag: &str) -> bool {
    (1..=MAX_TAG_LEN).contains(&tag.len())
        && tag
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Validates a tag list (duplicates merged, order kept).
pub fn check_tags(field: &'static str, tags: &[String]) -> Result<Vec<String>, FieldError> {
    if tags.len() > MAX_TAGS {
        return Err(FieldError::new(field, "at most 10 tags"));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        if !valid_tag(tag) {
            return Err(FieldError::new(
                field,
                "each tag is 1 to 32 characters of a-z, 0-9, _ and -",
            ));
        }
        if !out.contains(tag) {
            out.push(tag.clone());
        }
    }
    Ok(out)
}

/// Splits the comma-separated `tags` form field (blank items and spaces are
/// refused, `""` is none).
pub fn parse_tag_field(text: &str) -> Result<Vec<String>, FieldError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let tags: Vec<String> = text.split(',').map(str::to_owned).collect();
    check_tags("tags", &tags)
}

/// Validates a caption (`None` after trimming to nothing).
pub fn check_caption(caption: &str) -> Result<Option<String>, FieldError> {
    if caption.chars().count() > MAX_CAPTION {
        return Err(FieldError::new("caption", "at most 500 characters"));
    }
    if caption.contains('\0') {
        return Err(FieldError::new(
            "caption",
            "must not contain NUL characters",
        ));
    }
    Ok((!caption.is_empty()).then(|| caption.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_the_contract() {
        assert_eq!(
            parse_tag_field("cat,sea-side,cat").unwrap(),
            ["cat", "sea-side"]
        );
        assert!(parse_tag_field("").unwrap().is_empty());
        assert!(parse_tag_field("a,,b").is_err());
        assert!(parse_tag_field("a, b").is_err());
        assert!(parse_tag_field("Cat").is_err());
        assert!(parse_tag_field(&"x".repeat(33)).is_err());
        let eleven = (0..11).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        assert!(parse_tag_field(&eleven).is_err());
        assert!(check_caption(&"é".repeat(500)).unwrap().is_some());
        assert!(check_caption(&"é".repeat(501)).is_err());
        assert_eq!(check_caption("").unwrap(), None);
    }
}
