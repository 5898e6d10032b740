//! What other services ask the photos service, on its internal routes.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

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

/// The answer: the usable subset of the ids (unknown and others' private ones are not).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UsableResponse {
    /// The usable ids.
    pub usable: Vec<Uuid>,
}

/// Where [`UsableRequest`] goes.
pub const USABLE_PATH: &str = "/internal/photos/usable";

/// The public URL of a photo's content.
pub fn content_url(id: Uuid) -> String {
    format!("/api/v1/photos/{id}/content")
}
