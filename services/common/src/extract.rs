//! Extractor configuration: every malformed body, query or path becomes problem+json.
//!
//! Request types declare `#[serde(deny_unknown_fields)]`; these handlers turn serde's
//! message ("unknown field `nmae`, expected one of …") into a 400 the client can read.

use crate::problem::ApiError;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{HttpRequest, web};
use std::borrow::Cow;

/// For PATCH bodies, where absent and `null` differ: `#[serde(default, deserialize_with
/// = "agora_common::extract::nullable")]` on an `Option<Option<T>>` reads absent as
/// `None` (keep), `null` as `Some(None)` (clear) and a value as `Some(Some(v))`.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

/// For optional fields that may not be `null` (a PATCH that can change but not clear
/// them): `#[serde(default, deserialize_with = "agora_common::extract::present")]` on an
/// `Option<T>` reads absent as `None` and refuses `null` (400).
pub fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    match <Option<T> as serde::Deserialize>::deserialize(d)? {
        Some(value) => Ok(Some(value)),
        None => Err(serde::de::Error::custom(
            "may not be null (leave the field out to keep its value)",
        )),
    }
}

/// Default JSON body limit (bytes) for services that take small JSON documents.
pub const DEFAULT_JSON_LIMIT: usize = 64 * 1024;

/// JSON body settings: size limit, `application/json` required, problem+json errors.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .content_type_required(true)
        .error_handler(json_error)
}

/// Query string settings with problem+json errors.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(query_error)
}

/// Path parameter settings with problem+json errors (a malformed id reads as not found).
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(path_error)
}

fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let api = match &err {
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType(Cow::Borrowed(
            "expected a JSON body with Content-Type: application/json",
        )),
        JsonPayloadError::OverflowKnownLength { limit, .. }
        | JsonPayloadError::Overflow { limit } => {
            ApiError::PayloadTooLarge(Cow::Owned(format!("the JSON body exceeds {limit} bytes")))
        }
        JsonPayloadError::Deserialize(e) if e.is_data() => {
            ApiError::BadRequest(Cow::Owned(format!("invalid JSON body: {e}")))
        }
        JsonPayloadError::Deserialize(e) if e.is_eof() => ApiError::BadRequest(Cow::Owned(
            format!("malformed JSON: the body ends early ({e})"),
        )),
        JsonPayloadError::Deserialize(e) => {
            ApiError::BadRequest(Cow::Owned(format!("malformed JSON: {e}")))
        }
        other => ApiError::BadRequest(Cow::Owned(format!("unreadable body: {other}"))),
    };
    api.into()
}

fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    query_problem(&err).into()
}

fn query_problem(err: &QueryPayloadError) -> ApiError {
    let detail = match err {
        QueryPayloadError::Deserialize(e) => format!("invalid query string: {e}"),
        other => format!("invalid query string: {other}"),
    };
    ApiError::BadRequest(Cow::Owned(detail))
}

/// The query string's parameters, in order; 400 when it cannot be decoded.
pub fn query_pairs(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str(query)
        .map_err(|_| ApiError::BadRequest(Cow::Borrowed("malformed query string")))
}

/// A 400 naming the first parameter of `pairs` that appears more than once, unless the
/// endpoint takes a list under that name (`repeatable`).
pub fn refuse_repeated(pairs: &[(String, String)], repeatable: &[&str]) -> Result<(), ApiError> {
    for (i, (key, _)) in pairs.iter().enumerate() {
        if !repeatable.contains(&key.as_str()) && pairs[..i].iter().any(|(k, _)| k == key) {
            return Err(ApiError::invalid_field(
                Cow::Owned(key.chars().take(64).collect::<String>()),
                "may be given only once",
            ));
        }
    }
    Ok(())
}

/// A list endpoint's query string when some parameter may repeat (`tag`, `kind`), which
/// serde's query reader cannot take: `limit` and `cursor` are read here, every other
/// parameter goes to `take`, which answers whether it knows it (an unknown one is a 400
/// naming it). A repeated parameter not in `repeatable` is a 400 too.
pub fn list_query(
    query: &str,
    repeatable: &[&str],
    mut take: impl FnMut(&str, String) -> Result<bool, ApiError>,
) -> Result<crate::pagination::PageParams, ApiError> {
    let pairs = query_pairs(query)?;
    refuse_repeated(&pairs, repeatable)?;
    let mut page = crate::pagination::PageParams::default();
    for (key, value) in pairs {
        match key.as_str() {
            "limit" => {
                page.limit =
                    Some(value.parse().map_err(|_| {
                        ApiError::invalid_field("limit", "must be between 1 and 100")
                    })?)
            }
            "cursor" => page.cursor = Some(value),
            other => {
                if !take(other, value)? {
                    return Err(ApiError::invalid_field(
                        Cow::Owned(other.chars().take(64).collect::<String>()),
                        "unknown parameter",
                    ));
                }
            }
        }
    }
    Ok(page)
}

/// A query string read into `T` (as `web::Query`, with problem+json errors) after
/// refusing a repeated parameter: serde would otherwise keep one of the values
/// silently (always so for parameters of a flattened struct, such as the page's).
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T> Query<T> {
    /// The parameters.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Query<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: serde::de::DeserializeOwned> actix_web::FromRequest for Query<T> {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        let query = req.query_string();
        let read = query_pairs(query)
            .and_then(|pairs| refuse_repeated(&pairs, &[]))
            .and_then(|()| {
                web::Query::<T>::from_query(query)
                    .map(|q| Query(q.into_inner()))
                    .map_err(|e| query_problem(&e))
            });
        std::future::ready(read.map_err(Into::into))
    }
}

fn path_error(_err: PathError, _req: &HttpRequest) -> actix_web::Error {
    // A path segment that is not a valid id cannot name anything the caller can see.
    ApiError::NotFound(Cow::Borrowed("no such resource")).into()
}

/// A JSON request body that must be an object. serde's derived `Deserialize` also
/// reads a struct from an array (`[null, null]` would fill the first two fields), so
/// handlers take this instead of `web::Json`: an array or scalar body is a 400.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    /// The body.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Deserializes `T` only from a map.
struct ObjectOnly<T>(T);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Visitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer
            .deserialize_map(Visitor(std::marker::PhantomData))
            .map(ObjectOnly)
    }
}

/// Reads a JSON object into `T`; a value that does not fit is a validation problem
/// naming the field (its path: `links[2]`, `visibility`) and what was wrong.
fn from_json<T: serde::de::DeserializeOwned>(raw: &str) -> Result<T, ApiError> {
    let mut json = serde_json::Deserializer::from_str(raw);
    match serde_path_to_error::deserialize::<_, ObjectOnly<T>>(&mut json) {
        Ok(value) => Ok(value.0),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            // serde_json ends its messages with where in the body they happened.
            let message = inner.to_string();
            let message = message
                .rsplit_once(" at line ")
                .map_or(message.as_str(), |(m, _)| m)
                .to_owned();
            Err(if inner.is_data() && path != "." {
                ApiError::invalid_field(path, message)
            } else {
                ApiError::BadRequest(Cow::Owned(format!("invalid JSON body: {message}")))
            })
        }
    }
}

impl<T: serde::de::DeserializeOwned + 'static> actix_web::FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        // Syntax, size and media type as `web::Json` checks them (with its
        // configuration), then the fields with their paths.
        let body = web::Json::<Box<serde_json::value::RawValue>>::from_request(req, payload);
        Box::pin(async move {
            let raw = body.await?;
            from_json(raw.get()).map(Json).map_err(Into::into)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{App, HttpResponse, http::StatusCode, test};
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[allow(dead_code)]
        name: String,
    }

    async fn echo(_body: Json<Body>) -> HttpResponse {
        HttpResponse::NoContent().finish()
    }

    #[derive(Deserialize)]
    struct Search {
        q: Option<String>,
        #[serde(flatten)]
        page: crate::pagination::PageParams,
    }

    async fn search(query: Query<Search>) -> HttpResponse {
        let limit = query.page.limit.unwrap_or_default();
        HttpResponse::Ok().body(format!("{}:{limit}", query.q.as_deref().unwrap_or("-")))
    }

    #[actix_web::test]
    async fn a_repeated_query_parameter_is_a_problem_naming_it() {
        let app = test::init_service(App::new().route("/", web::get().to(search))).await;
        for (query, status, needle) in [
            ("q=a&limit=5", StatusCode::OK, "a:5"),
            (
                "q=a&q=b",
                StatusCode::BAD_REQUEST,
                "q: may be given only once",
            ),
            // A flattened field's duplicates would otherwise pass silently.
            (
                "limit=1&limit=100",
                StatusCode::BAD_REQUEST,
                "limit: may be given only once",
            ),
            ("limit=x", StatusCode::BAD_REQUEST, "invalid query string"),
        ] {
            let req = test::TestRequest::get()
                .uri(&format!("/?{query}"))
                .to_request();
            let resp = test::call_service(&app, req).await;
            assert_eq!(resp.status(), status, "{query}");
            let body = test::read_body(resp).await;
            let body = String::from_utf8_lossy(&body);
            assert!(body.contains(needle), "{query}: {body}");
        }
    }

    #[actix_web::test]
    async fn json_errors_are_problems() {
        let app = test::init_service(
            App::new()
                .app_data(json_config(32))
                .route("/", web::post().to(echo)),
        )
        .await;
        let cases: [(&str, &str, StatusCode, &str); 6] = [
            (
                "application/json",
                "[\"a\"]",
                StatusCode::BAD_REQUEST,
                "a JSON object",
            ),
            (
                "application/json",
                "3",
                StatusCode::BAD_REQUEST,
                "a JSON object",
            ),
            (
                "application/json",
                "{\"name\":\"a\",\"nmae\":1}",
                StatusCode::BAD_REQUEST,
                "unknown field",
            ),
            (
                "application/json",
                "{\"name\":",
                StatusCode::BAD_REQUEST,
                "malformed",
            ),
            (
                "text/plain",
                "{\"name\":\"a\"}",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type",
            ),
            (
                "application/json",
                "{\"name\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
                StatusCode::PAYLOAD_TOO_LARGE,
                "exceeds",
            ),
        ];
        for (ct, body, status, needle) in cases {
            let req = test::TestRequest::post()
                .uri("/")
                .insert_header(("content-type", ct))
                .set_payload(body)
                .to_request();
            let resp = test::call_service(&app, req).await;
            assert_eq!(resp.status(), status, "{body}");
            assert_eq!(
                resp.headers().get("content-type").map(|v| v.as_bytes()),
                Some(&b"application/problem+json"[..])
            );
            let json: serde_json::Value = test::read_body_json(resp).await;
            assert!(json["detail"].as_str().unwrap().contains(needle), "{json}");
        }
    }
}
