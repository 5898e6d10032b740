//! The photos service, as the users service asks it whether a post may show a photo
//! (the relations client is the kit's: `agora_common::relations::Relations`).

use actix_web::HttpRequest;
use agora_common::client::{Credential, ServiceClient};
use agora_common::photos::{USABLE_PATH, UsableRequest, UsableResponse};
use agora_common::{ApiError, ApiResult, FieldError};
use uuid::Uuid;

/// The photos service, when the platform has one.
#[derive(Clone, Default)]
pub struct Photos(pub Option<ServiceClient>);

impl Photos {
    /// 400 unless every photo is the owner's or public.
    pub async fn check_usable(
        &self,
        owner: Uuid,
        ids: &[Uuid],
        field: impl Fn(usize) -> String,
        origin: &HttpRequest,
    ) -> ApiResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let usable = match &self.0 {
            // Without a photos service no photo exists.
            None => Vec::new(),
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
                    .usable
            }
        };
        let errors: Vec<FieldError> = ids
            .iter()
            .enumerate()
            .filter(|(_, id)| !usable.contains(id))
            .map(|(i, _)| {
                FieldError::new(field(i), "no such photo among yours and the public ones")
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}
