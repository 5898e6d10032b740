//! The photos service, as the users service asks it whether a post may show a photo
//! (the relations client is the kit's: `agora_common::relations::Relations`).

use actix_web::HttpRequest;
use agora_common::client::{Credential, ServiceClient};
use agora_common::photos::{USABLE_PATH, UsableRequest, UsableResponse};
use agora_common::{ApiError, ApiResult, FieldError};
use std::collections::HashMap;
use uuid::Uuid;

/// The photos service, when the platform has one.
#[derive(Clone, Default)]
pub struct Photos(pub Option<ServiceClient>);

/// Who will look at the photos being referenced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The owner alone (a private post): their private photos are fine.
    OwnerOnly,
    /// Others too (a public or friends-only post, an avatar): the photos must be
    /// public, or some of those who may see the post or profile would get a 404 for
    /// them. (Made private or deleted later by their owner, they break; that is the
    /// owner's choice.)
    Others,
}

/// The problem `type` of a photo the caller may not use: unknown, someone else's
/// private one, or of someone blocked either way.
pub const PHOTO_NOT_USABLE: &str = "photo-not-usable";

/// The problem `type` of a private photo where others would look.
pub const PRIVATE_PHOTO_SHOWN_TO_OTHERS: &str = "private-photo-shown-to-others";

impl Photos {
    /// 400 unless every photo is the owner's or public (and not hidden by a block
    /// either way), and public when `audience` is [`Audience::Others`] (its own
    /// problem type, [`PRIVATE_PHOTO_SHOWN_TO_OTHERS`]). The answer: whose each public
    /// one is.
    pub async fn check_usable(
        &self,
        owner: Uuid,
        ids: &[Uuid],
        audience: Audience,
        field: impl Fn(usize) -> String,
        origin: &HttpRequest,
    ) -> ApiResult<HashMap<Uuid, Uuid>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let answer = match &self.0 {
            // Without a photos service no photo exists.
            None => UsableResponse::default(),
            Some(client) => {
                let body = UsableRequest {
                    owner,
                    ids: ids.to_vec(),
                };
                client
                    .send::<_, UsableResponse>(
                        reqwest::Method::POST,
                        USABLE_PATH,
                        Some(&body),
                        Credential::Service,
                        Some(origin),
                    )
                    .await?
                    .body
                    .unwrap_or_default()
            }
        };
        let errors: Vec<FieldError> = ids
            .iter()
            .enumerate()
            .filter(|(_, id)| !answer.usable.contains(id))
            .map(|(i, _)| {
                FieldError::new(field(i), "no such photo among yours and the public ones")
            })
            .collect();
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors).typed(PHOTO_NOT_USABLE));
        }
        if audience == Audience::OwnerOnly {
            return Ok(answer.owners);
        }
        let private: Vec<FieldError> = ids
            .iter()
            .enumerate()
            .filter(|(_, id)| !answer.public.contains(id))
            .map(|(i, _)| {
                FieldError::new(
                    field(i),
                    "a private photo cannot be shown where others look; make it public, or \
                     make the post private",
                )
            })
            .collect();
        if private.is_empty() {
            Ok(answer.owners)
        } else {
            Err(ApiError::Validation(private).typed(PRIVATE_PHOTO_SHOWN_TO_OTHERS))
        }
    }
}
