//! Request handlers: the list and its read marks, preferences, the stream and its
//! tickets, and the internal route the other services deliver notices to.

pub mod list;
pub mod notices;
pub mod stream;

use crate::streams::Streams;
use agora_common::ApiResult;
use agora_common::db::{DbConn, DbPool};
use agora_common::relations::Relations;
use std::time::Duration;

/// Everything the handlers share.
pub struct NotificationsState {
    pub pool: DbPool,
    pub relations: Relations,
    pub streams: Streams,
    /// Open streams one user may have, across replicas.
    pub streams_per_user: i64,
    /// How long a stream ticket stays valid.
    pub ticket_ttl: Duration,
}

impl NotificationsState {
    /// A pooled connection (503 when the database is unavailable).
    pub async fn conn(&self) -> ApiResult<DbConn> {
        Ok(agora_common::db::checkout(&self.pool).await?)
    }
}
