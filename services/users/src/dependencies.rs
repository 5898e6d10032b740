//! The services the users service asks: relations (who relates to whom, on every
//! visibility decision: never cached, so the caller's own changes apply at once) and
//! photos (whether a post may show a photo).

use actix_web::HttpRequest;
use agora_common::client::{Credential, ServiceClient};
use agora_common::photos::{USABLE_PATH, UsableRequest, UsableResponse};
use agora_common::relations::{
    COUNTS_PATH, Counts, CountsRequest, Graph, Pair, graph_path, pair_path,
};
use agora_common::{ApiError, ApiResult, FieldError};
use std::collections::HashMap;
use uuid::Uuid;

/// The relations service.
#[derive(Clone)]
pub struct Relations(pub ServiceClient);

impl Relations {
    /// Everyone `user` is related to (one call, whatever their number).
    pub async fn graph(&self, user: Uuid, origin: &HttpRequest) -> ApiResult<Graph> {
        self.0
            .get(&graph_path(user), Credential::Service, Some(origin))
            .await
    }

    /// How `user` relates to `other`.
    pub async fn pair(&self, user: Uuid, other: Uuid, origin: &HttpRequest) -> ApiResult<Pair> {
        self.0
            .get(&pair_path(user, other), Credential::Service, Some(origin))
            .await
    }

    /// Followers, following and friends of up to 100 users (one call).
    pub async fn counts(
        &self,
        ids: &[Uuid],
        origin: &HttpRequest,
    ) -> ApiResult<HashMap<Uuid, Counts>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let body = CountsRequest { ids: ids.to_vec() };
        let reply = self
            .0
            .send::<_, HashMap<Uuid, Counts>>(
                reqwest::Method::POST,
                COUNTS_PATH,
                Some(&body),
                Credential::Service,
                Some(origin),
            )
            .await?;
        Ok(reply.body.unwrap_or_default())
    }
}

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
