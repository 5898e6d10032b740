//! Cursor pagination: `?limit=N&cursor=C` → `{"items": [...], "next_cursor": …}`.
//!
//! A cursor is the keyset position after the last item of a page (for example the
//! `(created_at, id)` of the last row), encoded as versioned, base64url JSON together
//! with the name of the list it belongs to. Decoding checks the version, the list and
//! the exact shape, and every decoded value is validated like any other input
//! ([`CursorKey`]: no NUL in text, timestamps in range), so a tampered cursor, or one
//! from another list, is a 400. Cursors are positions, not permissions: every page
//! query applies its visibility rules again.

use crate::problem::ApiError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Default page size.
pub const DEFAULT_LIMIT: u32 = 20;
/// Largest page size.
pub const MAX_LIMIT: u32 = 100;
const CURSOR_VERSION: &str = "v2";

/// A keyset position a cursor may carry: what its values must satisfy before they
/// reach a query (PostgreSQL refuses NUL in text and timestamps beyond its range,
/// which would be a 500 for a client's mistake).
pub trait CursorKey: Serialize + DeserializeOwned {
    /// Whether the decoded values may be used.
    fn is_valid(&self) -> bool;
}

impl CursorKey for String {
    fn is_valid(&self) -> bool {
        !self.contains('\0') && self.len() <= 256
    }
}

impl CursorKey for uuid::Uuid {
    fn is_valid(&self) -> bool {
        true
    }
}

impl CursorKey for chrono::DateTime<chrono::Utc> {
    fn is_valid(&self) -> bool {
        use chrono::Datelike;
        (1..=9999).contains(&self.year())
    }
}

impl CursorKey for i64 {
    fn is_valid(&self) -> bool {
        true
    }
}

impl<A: CursorKey, B: CursorKey> CursorKey for (A, B) {
    fn is_valid(&self) -> bool {
        self.0.is_valid() && self.1.is_valid()
    }
}

/// The pagination part of a query string; `#[serde(flatten)]` it into an endpoint's
/// query type. (Flattened fields reach serde as strings, so `limit` accepts both.)
/// Also documents itself: list endpoints name it in `params(...)`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 1..=100 (default 20).
    #[serde(default, deserialize_with = "limit_from_text_or_number")]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// Opaque cursor from the previous page's `next_cursor`.
    #[param(max_length = 512)]
    pub cursor: Option<String>,
}

fn limit_from_text_or_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Limit {
        Number(i64),
        Text(String),
    }
    match Option::<Limit>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Limit::Number(n)) => Ok(Some(n)),
        Some(Limit::Text(t)) => t
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom("limit must be an integer")),
    }
}

/// A validated page request with the decoded keyset position.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRequest<K> {
    /// Items to return.
    pub limit: u32,
    /// Where the previous page ended, if any.
    pub after: Option<K>,
    /// The list the cursors belong to (see [`PageParams::validate`]).
    pub list: &'static str,
}

impl PageParams {
    /// Validates the limit and decodes the cursor into `K`; the cursor must have been
    /// made for `list` (a name unique among the lists whose keys have the same shape,
    /// such as `"feed"` or `"users.posts"`).
    pub fn validate<K: CursorKey>(&self, list: &'static str) -> Result<PageRequest<K>, ApiError> {
        let limit = match self.limit {
            None => DEFAULT_LIMIT,
            Some(n) if (1..=i64::from(MAX_LIMIT)).contains(&n) => n as u32,
            Some(_) => {
                return Err(ApiError::invalid_field(
                    "limit",
                    "must be between 1 and 100",
                ));
            }
        };
        let after = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(c) => Some(decode_cursor(list, c)?),
        };
        Ok(PageRequest { limit, after, list })
    }
}

/// Encodes a keyset position of `list` as an opaque cursor.
pub fn encode_cursor<K: Serialize>(list: &str, key: &K) -> String {
    let json = serde_json::to_vec(&(CURSOR_VERSION, list, key)).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// Decodes a cursor made by [`encode_cursor`] for the same list and key type, and
/// validates its values.
pub fn decode_cursor<K: CursorKey>(list: &str, cursor: &str) -> Result<K, ApiError> {
    let invalid = || ApiError::invalid_field("cursor", "not a cursor from this list");
    if cursor.len() > 512 {
        return Err(invalid());
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let (version, from, key): (String, String, K) =
        serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if version != CURSOR_VERSION || from != list || !key.is_valid() {
        return Err(invalid());
    }
    Ok(key)
}

/// A page of results in the contract's shape.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Cursor of the next page, `null` on the last one.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page of `request`'s list from up to `limit + 1` rows fetched in order:
    /// the extra row only tells that another page exists.
    pub fn from_rows<K: Serialize>(
        mut rows: Vec<T>,
        request: &PageRequest<K>,
        key_of: impl Fn(&T) -> K,
    ) -> Self {
        let limit = request.limit as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last()
                .map(|last| encode_cursor(request.list, &key_of(last)))
        } else {
            None
        };
        Self {
            items: rows,
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::ResponseError;
    use chrono::{DateTime, Utc};
    use uuid::Uuid;

    type Key = (DateTime<Utc>, Uuid);

    #[test]
    fn cursors_round_trip_and_reject_tampering() {
        let key: Key = (Utc::now(), Uuid::now_v7());
        let cursor = encode_cursor("feed", &key);
        assert_eq!(decode_cursor::<Key>("feed", &cursor).ok(), Some(key));
        assert!(decode_cursor::<Key>("feed", "not-base64!!").is_err());
        let raw = |json: &str| URL_SAFE_NO_PAD.encode(json.as_bytes());
        assert!(decode_cursor::<Key>("feed", &raw(r#"["v0","feed",1]"#)).is_err());
        assert!(decode_cursor::<Key>("feed", &raw(r#"["v2","feed",{"x":1}]"#)).is_err());
    }

    #[test]
    fn a_cursor_works_on_its_own_list_only() {
        let key: Key = (Utc::now(), Uuid::now_v7());
        let feed = encode_cursor("feed", &key);
        let err = decode_cursor::<Key>("users.posts", &feed).unwrap_err();
        assert_eq!(err.status_code(), actix_web::http::StatusCode::BAD_REQUEST);
        assert!(err.to_string().contains("validation"), "{err}");
    }

    #[test]
    fn decoded_values_are_validated_like_input() {
        let raw = |json: &str| URL_SAFE_NO_PAD.encode(json.as_bytes());
        // NUL in text: PostgreSQL would refuse it (a 500 before this check).
        assert!(
            decode_cursor::<String>("users.search", &raw(r#"["v2","users.search","a\u0000"]"#))
                .is_err()
        );
        assert_eq!(
            decode_cursor::<String>("users.search", &raw(r#"["v2","users.search","ab"]"#)).ok(),
            Some("ab".to_owned())
        );
        // Timestamps PostgreSQL cannot hold, or no one can have written.
        let id = Uuid::nil();
        for t in ["-200000-01-01T00:00:00Z", "+200000-01-01T00:00:00Z"] {
            let json = format!(r#"["v2","feed",["{t}","{id}"]]"#);
            assert!(decode_cursor::<Key>("feed", &raw(&json)).is_err(), "{t}");
        }
        let json = format!(r#"["v2","feed",["2026-01-01T00:00:00Z","{id}"]]"#);
        assert!(decode_cursor::<Key>("feed", &raw(&json)).is_ok());
    }

    #[test]
    fn limits_are_bounded() {
        let p = |limit| {
            PageParams {
                limit,
                cursor: None,
            }
            .validate::<Key>("feed")
        };
        assert_eq!(p(None).map(|r| r.limit).ok(), Some(20));
        assert_eq!(p(Some(100)).map(|r| r.limit).ok(), Some(100));
        assert!(p(Some(0)).is_err());
        assert!(p(Some(101)).is_err());
        assert!(p(Some(-5)).is_err());
    }

    #[test]
    fn page_params_work_flattened_in_a_query_type() {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Search {
            q: String,
            #[serde(flatten)]
            page: PageParams,
        }
        let query = |q: &str| actix_web::web::Query::<Search>::from_query(q).map(|q| q.0);
        let parsed = query("q=ali&limit=5&cursor=abc").unwrap();
        assert_eq!(parsed.q, "ali");
        assert_eq!(parsed.page.limit, Some(5));
        assert_eq!(parsed.page.cursor.as_deref(), Some("abc"));
        let defaulted = query("q=x").unwrap();
        assert_eq!(defaulted.page.validate::<Key>("feed").unwrap().limit, 20);
        assert!(query("q=x&limit=ten").is_err());
        let plain = actix_web::web::Query::<PageParams>::from_query("limit=7").unwrap();
        assert_eq!(plain.limit, Some(7));
    }

    #[test]
    fn pages_know_when_more_exist() {
        let request = |limit| PageRequest::<i64> {
            limit,
            after: None,
            list: "numbers",
        };
        let page = Page::from_rows(vec![1, 2, 3], &request(2), |n| *n);
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(
            page.next_cursor
                .as_deref()
                .map(|c| decode_cursor::<i64>("numbers", c))
                .and_then(Result::ok),
            Some(2)
        );
        let last = Page::from_rows(vec![1, 2], &request(2), |n| *n);
        assert!(last.next_cursor.is_none());
    }
}
