//! Request handlers: extract, authorize, one query, map to the response.

pub mod content;
pub mod internal;
pub mod photos;
pub mod search;
pub mod upload;

use crate::db::{self, PhotoRow};
use crate::imaging::DecodeLimits;
use crate::links::LinkSigner;
use crate::model::{Photo, Visibility};
use crate::storage::Storage;
use actix_web::HttpRequest;
use agora_common::db::{DbConn, DbPool, transaction_with_retry};
use agora_common::relations::Relations;
use agora_common::{ApiError, ApiResult};
use std::borrow::Cow;
use std::sync::Arc;
use tokio::sync::Semaphore;
use uuid::Uuid;

/// Everything the handlers share.
pub struct PhotosState {
    pub pool: DbPool,
    pub storage: Storage,
    pub links: LinkSigner,
    /// Largest upload, in bytes.
    pub max_upload: usize,
    pub limits: DecodeLimits,
    /// Decodes running at once (each holds one image in memory): a burst of uploads
    /// waits here instead of filling the blocking pool and the memory.
    pub decoding: Arc<Semaphore>,
    /// The relations service, for blocks (none on a platform without it: nobody
    /// blocks anybody there).
    pub relations: Option<Relations>,
    /// `agora_photos_image_decode_seconds`.
    pub decode_time: prometheus_client::metrics::histogram::Histogram,
}

impl PhotosState {
    /// A pooled connection (503 when the database is unavailable).
    pub async fn conn(&self) -> ApiResult<DbConn> {
        Ok(agora_common::db::checkout(&self.pool).await?)
    }

    /// A photo `viewer` may see (the owner; anyone for a public one), else 404 — whether
    /// it exists or not.
    pub async fn visible(&self, viewer: Option<Uuid>, id: Uuid) -> ApiResult<PhotoRow> {
        let row = db::photo(&mut *self.conn().await?, id)
            .await?
            .ok_or_else(no_such_photo)?;
        if Visibility::parse(&row.visibility) == Visibility::Public || viewer == Some(row.owner_id)
        {
            Ok(row)
        } else {
            Err(no_such_photo())
        }
    }

    /// The people whose photos `viewer` must not see: those `viewer` blocks and those
    /// who block `viewer` (asked on every call: a new block applies at once).
    pub async fn hidden_owners(&self, viewer: Uuid, req: &HttpRequest) -> ApiResult<Vec<Uuid>> {
        let Some(relations) = &self.relations else {
            return Ok(Vec::new());
        };
        Ok(relations.graph(viewer, req).await?.blocked_either_way())
    }

    /// A photo `viewer` may see, and not hidden from them by a block either way.
    pub async fn visible_unblocked(
        &self,
        viewer: Uuid,
        id: Uuid,
        req: &HttpRequest,
    ) -> ApiResult<PhotoRow> {
        let row = self.visible(Some(viewer), id).await?;
        if row.owner_id != viewer
            && let Some(relations) = &self.relations
        {
            let pair = relations.pair(viewer, row.owner_id, Some(req)).await?;
            if pair.blocked_either_way() {
                return Err(no_such_photo());
            }
        }
        Ok(row)
    }

    /// A photo the caller owns; 403 when they only see it, 404 when they cannot.
    pub async fn owned(&self, caller: Uuid, id: Uuid) -> ApiResult<PhotoRow> {
        let row = self.visible(Some(caller), id).await?;
        if row.owner_id == caller {
            Ok(row)
        } else {
            Err(ApiError::Forbidden(Cow::Borrowed(
                "only the owner may change this photo",
            )))
        }
    }

    /// Drops a blob's bytes and row if no photo uses it any more. Under the blob's lock,
    /// so an upload of the same bytes either comes first (and keeps them) or after (and
    /// stores them again). A failure leaves the row for the next sweep.
    pub async fn sweep(&self, sha256: &str) -> ApiResult<()> {
        let mut conn = self.conn().await?;
        let storage = self.storage.clone();
        let sha = sha256.to_owned();
        transaction_with_retry(&mut conn, |c| {
            let storage = storage.clone();
            let sha = sha.clone();
            Box::pin(async move {
                db::lock_blob(c, &sha).await?;
                if db::blob_refs(c, &sha).await? != Some(0) {
                    return Ok(Ok(()));
                }
                if let Err(e) = storage.delete(&sha).await {
                    tracing::warn!(error = %e, sha256 = %sha, "blob not deleted; the next sweep retries");
                    return Ok(Ok(()));
                }
                db::forget_blob(c, &sha).await?;
                tracing::info!(sha256 = %sha, "blob deleted");
                Ok(Ok(()))
            })
        })
        .await?
    }

    /// Sweeps every unreferenced blob (at start: what an interrupted deletion left).
    pub async fn sweep_all(&self) -> ApiResult<usize> {
        let shas = db::unreferenced_blobs(&mut *self.conn().await?).await?;
        for sha in &shas {
            self.sweep(sha).await?;
        }
        Ok(shas.len())
    }
}

/// The one answer for a photo that does not exist or is not the caller's to see.
pub fn no_such_photo() -> ApiError {
    ApiError::NotFound(Cow::Borrowed("no such photo"))
}

/// The wire form of a row.
pub fn photo_view(row: PhotoRow) -> Photo {
    Photo {
        url: agora_common::photos::content_url(row.id),
        thumbnail_url: format!("/api/v1/photos/{}/thumbnail", row.id),
        id: row.id,
        owner_id: row.owner_id,
        visibility: Visibility::parse(&row.visibility),
        tags: row.tags,
        caption: row.caption,
        content_type: row.content_type,
        width: row.width,
        height: row.height,
        size_bytes: row.size_bytes,
        sha256: row.sha256,
        created_at: row.created_at,
    }
}
