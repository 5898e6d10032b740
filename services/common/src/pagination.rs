//! Cursor pagination: `?limit=N&cursor=C` → `{"items": [...], "next_cursor": …}`.
//!
//! A cursor is the keyset position after the last item of a page (for example the
//! `(created_at, id)` of the last row), encoded as versioned, base64url JSON. Decoding
//! checks the version and the exact shape, so a tampered cursor is a 400. Cursors are
//! positions, not permissions: every page query applies its visibility rules again.

use crate::problem::ApiError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Default page size.
pub const DEFAULT_LIMIT: u32 = 20;
/// Largest page size.
pub const MAX_LIMIT: u32 = 100;
const CURSOR_VERSION: &str = "v1";

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
}

impl PageParams {
    /// Validates the limit and decodes the cursor into `K`.
    pub fn validate<K: DeserializeOwned>(&self) -> Result<PageRequest<K>, ApiError> {
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
            Some(c) => Some(decode_cursor(c)?),
        };
        Ok(PageRequest { limit, after })
    }
}

/// Encodes a keyset position as an opaque cursor.
pub fn encode_cursor<K: Serialize>(key: &K) -> String {
    let json = serde_json::to_vec(&(CURSOR_VERSION, key)).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// Decodes a cursor made by [`encode_cursor`] for the same key type.
pub fn decode_cursor<K: DeserializeOwned>(cursor: &str) -> Result<K, ApiError> {
    let invalid = || ApiError::invalid_field("cursor", "not a cursor from this list");
    if cursor.len() > 512 {
        return Err(invalid());
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let (version, key): (String, K) = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if version != CURSOR_VERSION {
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
    /// Builds a page from up to `limit + 1` rows fetched in order: the extra row only
    /// tells that another page exists.
    pub fn from_rows<K: Serialize>(mut rows: Vec<T>, limit: u32, key_of: impl Fn(&T) -> K) -> Self {
        let limit = limit as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|last| encode_cursor(&key_of(last)))
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
    use chrono::{DateTime, Utc};
    use uuid::Uuid;

    type Key = (DateTime<Utc>, Uuid);

    #[test]
    fn cursors_round_trip_and_reject_tampering() {
        let key: Key = (Utc::now(), Uuid::now_v7());
        let cursor = encode_cursor(&key);
        assert_eq!(decode_cursor::<Key>(&cursor).ok(), Some(key));
        assert!(decode_cursor::<Key>("not-base64!!").is_err());
        assert!(decode_cursor::<Key>(&URL_SAFE_NO_PAD.encode(b"[\"v0\",1]")).is_err());
        assert!(decode_cursor::<Key>(&URL_SAFE_NO_PAD.encode(b"[\"v1\",{\"x\":1}]")).is_err());
    }

    #[test]
    fn limits_are_bounded() {
        let p = |limit| {
            PageParams {
                limit,
                cursor: None,
            }
            .validate::<Key>()
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
        assert_eq!(defaulted.page.validate::<Key>().unwrap().limit, 20);
        assert!(query("q=x&limit=ten").is_err());
        let plain = actix_web::web::Query::<PageParams>::from_query("limit=7").unwrap();
        assert_eq!(plain.limit, Some(7));
    }

    #[test]
    fn pages_know_when_more_exist() {
        let page = Page::from_rows(vec![1, 2, 3], 2, |n| *n);
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(
            page.next_cursor
                .as_deref()
                .map(decode_cursor::<i32>)
                .and_then(Result::ok),
            Some(2)
        );
        let last = Page::from_rows(vec![1, 2], 2, |n| *n);
        assert!(last.next_cursor.is_none());
    }
}
