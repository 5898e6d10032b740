//! What other services ask the relations service, on its internal routes: the wire
//! types both sides share, the paths, and the client the asking services use.

use crate::client::{Credential, ServiceClient};
use crate::problem::ApiResult;
use actix_web::HttpRequest;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use uuid::Uuid;

/// `GET /internal/users/{id}/graph`: everyone a user is related to (one call per feed
/// page, whatever the number of followees).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Graph {
    /// Whom the user follows.
    pub following: Vec<Uuid>,
    /// The user's friends.
    pub friends: Vec<Uuid>,
    /// Whom the user blocks.
    pub blocking: Vec<Uuid>,
    /// Who blocks the user.
    pub blocked_by: Vec<Uuid>,
}

impl Graph {
    /// How the user relates to `other`, read from this graph.
    pub fn pair_with(&self, other: Uuid) -> Pair {
        Pair {
            following: self.following.contains(&other),
            friend: self.friends.contains(&other),
            blocking: self.blocking.contains(&other),
            blocked_by: self.blocked_by.contains(&other),
        }
    }

    /// Everyone the user blocks or is blocked by: whose content the user must not see
    /// (and who must not see the user's).
    pub fn blocked_either_way(self) -> Vec<Uuid> {
        let mut hidden = self.blocking;
        hidden.extend(self.blocked_by);
        hidden
    }
}

/// `GET /internal/users/{id}/pair/{other}`: how one user relates to another.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pair {
    /// The user follows the other.
    pub following: bool,
    /// They are friends.
    pub friend: bool,
    /// The user blocks the other.
    pub blocking: bool,
    /// The other blocks the user.
    pub blocked_by: bool,
}

impl Pair {
    /// Whether either of the two blocks the other.
    pub fn blocked_either_way(&self) -> bool {
        self.blocking || self.blocked_by
    }
}

/// `POST /internal/counts` body: at most [`MAX_COUNT_IDS`] ids.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountsRequest {
    /// Whose counts.
    pub ids: Vec<Uuid>,
}

/// The most ids one counts call takes (a page of profiles).
pub const MAX_COUNT_IDS: usize = 100;

/// Someone's relation counts (the answer maps each requested id to one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Counts {
    /// People following them.
    pub followers: i64,
    /// People they follow.
    pub following: i64,
    /// Their friends.
    pub friends: i64,
}

/// The graph path of a user.
pub fn graph_path(user: Uuid) -> String {
    format!("/internal/users/{user}/graph")
}

/// The pair path of two users.
pub fn pair_path(user: Uuid, other: Uuid) -> String {
    format!("/internal/users/{user}/pair/{other}")
}

/// The counts path.
pub const COUNTS_PATH: &str = "/internal/counts";

/// The relations service as another service asks it: on every visibility decision,
/// never cached, so the caller's own changes apply at once.
#[derive(Clone)]
pub struct Relations(pub ServiceClient);

impl Relations {
    /// Everyone `user` is related to (one call, whatever their number).
    pub async fn graph(&self, user: Uuid, origin: &HttpRequest) -> ApiResult<Graph> {
        self.0
            .get(&graph_path(user), Credential::Service, Some(origin))
            .await
    }

    /// How `user` relates to `other` (`origin`: the request being served, if any;
    /// delivering a notice has none).
    pub async fn pair(
        &self,
        user: Uuid,
        other: Uuid,
        origin: Option<&HttpRequest>,
    ) -> ApiResult<Pair> {
        self.0
            .get(&pair_path(user, other), Credential::Service, origin)
            .await
    }

    /// Followers, following and friends of up to [`MAX_COUNT_IDS`] users (one call).
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
