//! Extractor configuration: every malformed body, query or path becomes problem+json.
//!
//! Request types declare `#[serde(deny_unknown_fields)]`; these handlers turn serde's
//! message ("unknown field `nmae`, expected one of …") into a 400 the client can read.

use crate::problem::ApiError;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{HttpRequest, web};
use std::borrow::Cow;

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
        JsonPayloadError::Deserialize(e) => {
            ApiError::BadRequest(Cow::Owned(format!("malformed JSON: {e}")))
        }
        other => ApiError::BadRequest(Cow::Owned(format!("unreadable body: {other}"))),
    };
    api.into()
}

fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let detail = match &err {
        QueryPayloadError::Deserialize(e) => format!("invalid query string: {e}"),
        other => format!("invalid query string: {other}"),
    };
    ApiError::BadRequest(Cow::Owned(detail)).into()
}

fn path_error(_err: PathError, _req: &HttpRequest) -> actix_web::Error {
    // A path segment that is not a valid id cannot name anything the caller can see.
    ApiError::NotFound(Cow::Borrowed("no such resource")).into()
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

    async fn echo(_body: web::Json<Body>) -> HttpResponse {
        HttpResponse::NoContent().finish()
    }

    #[actix_web::test]
    async fn json_errors_are_problems() {
        let app = test::init_service(
            App::new()
                .app_data(json_config(32))
                .route("/", web::post().to(echo)),
        )
        .await;
        let cases: [(&str, &str, StatusCode, &str); 4] = [
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
