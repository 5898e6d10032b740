//! Shared parts of every service's OpenAPI document: the bearer scheme and the
//! problem+json schema.

use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// An RFC 9457 problem, as every error response carries it.
#[derive(Serialize, ToSchema)]
#[schema(as = Problem)]
pub struct ProblemDoc {
    /// URI naming the kind of problem, `https://agora.dev/problems/<slug>`: one slug
    /// per status (`validation-failed`, `unauthorized`, `not-found`, `conflict`,
    /// `rate-limited`, …), and one per condition a client may act on differently:
    /// `username-taken`, `email-taken`, `refresh-token-reused`, `photo-not-usable`,
    /// `private-photo-shown-to-others`, `reaction-limit`, `friend-request-pending`,
    /// `already-friends`, `friend-request-cooldown`, `event-over`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Fixed summary of the kind.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// This occurrence.
    pub detail: String,
    /// Per-field validation failures (400 only).
    pub errors: Option<Vec<FieldErrorDoc>>,
}

/// One invalid field.
#[derive(Serialize, ToSchema)]
#[schema(as = FieldError)]
pub struct FieldErrorDoc {
    /// The field's name.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// Adds the `bearer` security scheme, the problem schemas, and every status code the
/// kit and the edge can answer any operation with, and returns the document as JSON:
/// 400 (malformed input or path), 429 (edge rate limit), 502/503/504 (edge and
/// dependencies); with a body also 408, 413 and 415; with a security requirement 401;
/// with path parameters 404. A document that names every status is what the contract
/// fuzzer holds the service to.
pub fn finish(mut doc: OpenApi) -> serde_json::Value {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    let shared = utoipa::openapi::ComponentsBuilder::new()
        .schema_from::<ProblemDoc>()
        .schema_from::<FieldErrorDoc>()
        .build();
    for (name, schema) in shared.schemas {
        components.schemas.entry(name).or_insert(schema);
    }
    let mut value = serde_json::to_value(&doc).unwrap_or_default();
    add_common_responses(&mut value);
    value
}

/// The shared responses, by status: (status, component name, description).
const COMMON: [(&str, &str, &str); 10] = [
    (
        "400",
        "BadRequest",
        "Invalid input (see `errors`): a field or parameter that breaks its rule, an unknown field, a single-valued query parameter or form field given more than once; or a malformed request or path",
    ),
    (
        "401",
        "Unauthorized",
        "Missing, invalid or expired access token",
    ),
    (
        "404",
        "NotFound",
        "No such resource, or not visible to the caller",
    ),
    ("408", "RequestTimeout", "The request body stalled"),
    ("413", "PayloadTooLarge", "The request body is too large"),
    (
        "415",
        "UnsupportedMediaType",
        "The body is not of a media type this endpoint accepts",
    ),
    (
        "429",
        "TooManyRequests",
        "Rate limited; retry after `Retry-After` seconds",
    ),
    ("502", "BadGateway", "An upstream service answered badly"),
    (
        "503",
        "Unavailable",
        "A dependency (database, key set, upstream) is unavailable",
    ),
    (
        "504",
        "GatewayTimeout",
        "An upstream service did not answer in time",
    ),
];

const OPERATIONS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn add_common_responses(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};
    let problem =
        json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}});
    let mut shared = serde_json::Map::new();
    for (_, name, description) in COMMON {
        let mut response = json!({"description": description, "content": problem});
        match name {
            "TooManyRequests" => {
                response["headers"] = json!({"Retry-After": {
                    "description": "Seconds until a retry may succeed",
                    "schema": {"type": "integer", "minimum": 1}
                }});
            }
            "Unauthorized" => {
                response["headers"] = json!({"WWW-Authenticate": {
                    "description": "`Bearer realm=\"agora\"`",
                    "schema": {"type": "string"}
                }});
            }
            _ => {}
        }
        shared.insert(name.to_owned(), response);
    }
    if let Some(components) = doc.get_mut("components").and_then(Value::as_object_mut) {
        let responses = components.entry("responses").or_insert_with(|| json!({}));
        if let Some(responses) = responses.as_object_mut() {
            for (name, response) in shared {
                responses.entry(name).or_insert(response);
            }
        }
    }
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let has_params = path.contains('{');
        for method in OPERATIONS {
            let Some(op) = item.get_mut(method).and_then(Value::as_object_mut) else {
                continue;
            };
            let has_body = op.contains_key("requestBody");
            let secured = op
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|reqs| {
                    reqs.iter()
                        .any(|r| r.as_object().is_some_and(|o| !o.is_empty()))
                });
            let responses = op.entry("responses").or_insert_with(|| json!({}));
            let Some(responses) = responses.as_object_mut() else {
                continue;
            };
            for (status, name, _) in COMMON {
                let applies = match status {
                    "401" => secured,
                    "404" => has_params,
                    "408" | "413" | "415" => has_body,
                    _ => true,
                };
                if applies {
                    responses.entry(status).or_insert_with(
                        || json!({"$ref": format!("#/components/responses/{name}")}),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_operation_names_the_statuses_the_kit_can_answer() {
        let mut doc = json!({
            "paths": {
                "/a/{id}": {"post": {"requestBody": {}, "security": [{"bearer": []}], "responses": {"201": {"description": "made"}}}},
                "/b": {"get": {"responses": {"200": {"description": "ok"}, "400": {"description": "own"}}}}
            },
            "components": {}
        });
        add_common_responses(&mut doc);
        let a = &doc["paths"]["/a/{id}"]["post"]["responses"];
        for status in [
            "201", "400", "401", "404", "408", "413", "415", "429", "502", "503", "504",
        ] {
            assert!(a[status].is_object(), "{status} missing: {a}");
        }
        let b = &doc["paths"]["/b"]["get"]["responses"];
        assert_eq!(b["400"]["description"], "own", "kept the operation's own");
        for status in ["401", "404", "413", "415"] {
            assert!(b[status].is_null(), "{status} added to {b}");
        }
        assert!(
            doc["components"]["responses"]["TooManyRequests"]["headers"]["Retry-After"].is_object()
        );
    }
}
