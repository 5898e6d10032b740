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
    /// URI naming the kind of problem.
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

/// Adds the `bearer` security scheme and returns the document as JSON. (Problem
/// schemas are collected from the handlers' responses.)
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
    serde_json::to_value(&doc).unwrap_or_default()
}
