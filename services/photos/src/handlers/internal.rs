//! What other services ask (service credential required; never routed publicly).

use super::PhotosState;
use crate::db;
use actix_web::{HttpRequest, web};
use agora_common::client::ServiceCaller;
use agora_common::photos::{UsableRequest, UsableResponse};
use agora_common::{ApiError, ApiResult};

/// `POST /internal/photos/usable`: which of these photos the owner may use in a post or
/// as an avatar (their own, and public ones of people not blocked either way), and
/// which of those are public.
pub async fn usable(
    state: web::Data<PhotosState>,
    _service: ServiceCaller,
    body: agora_common::extract::Json<UsableRequest>,
    req: HttpRequest,
) -> ApiResult<web::Json<UsableResponse>> {
    let request = body.into_inner();
    if request.ids.len() > 100 {
        return Err(ApiError::invalid_field("ids", "at most 100"));
    }
    let rows = db::usable(&mut *state.conn().await?, request.owner, &request.ids).await?;
    let hidden = if rows.iter().any(|r| r.owner_id != request.owner) {
        state.hidden_owners(request.owner, &req).await?
    } else {
        Vec::new()
    };
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|r| !hidden.contains(&r.owner_id))
        .collect();
    Ok(web::Json(UsableResponse {
        usable: rows.iter().map(|r| r.id).collect(),
        public: rows.iter().filter(|r| r.public).map(|r| r.id).collect(),
        owners: rows
            .iter()
            .filter(|r| r.public)
            .map(|r| (r.id, r.owner_id))
            .collect(),
    }))
}

/// `DELETE /internal/accounts/{id}` (the kit's handler): the person's photos go in one
/// transaction, then the bytes nobody else's photo uses (a failed byte deletion is left
/// to the next sweep, as for a deleted photo). Posts that showed them now get 404 for
/// their URLs.
impl agora_common::accounts::AccountEraser for PhotosState {
    async fn erase(&self, id: uuid::Uuid) -> ApiResult<()> {
        let mut conn = self.conn().await?;
        let released = agora_common::db::transaction_with_retry(&mut conn, |c| {
            Box::pin(db::erase_person(c, id))
        })
        .await?;
        drop(conn);
        for sha in &released {
            self.sweep(sha).await?;
        }
        // Their export archives go too.
        self.storage
            .delete_archives(id, None)
            .await
            .map_err(storage_unavailable)?;
        Ok(())
    }
}

fn storage_unavailable(e: crate::storage::StorageError) -> ApiError {
    tracing::error!(error = %e, "photo storage failed");
    ApiError::Unavailable(std::borrow::Cow::Borrowed("photo storage is unavailable"))
}

/// A photo's file in an export: `photos/<id>.<ext>`.
const FILE_PATH: &str = "'photos/' || p.id || '.' || CASE b.content_type \
       WHEN 'image/png' THEN 'png' WHEN 'image/gif' THEN 'gif' \
       WHEN 'image/webp' THEN 'webp' ELSE 'jpg' END";

/// `GET /internal/accounts/{id}/export/photos.json`: the person's photos (metadata,
/// and the path of each one's bytes in the archive), streamed page by page.
pub async fn export(
    state: web::Data<PhotosState>,
    _service: ServiceCaller,
    path: web::Path<(uuid::Uuid, String)>,
) -> ApiResult<actix_web::HttpResponse> {
    static PHOTOS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT p.id AS key, jsonb_build_object( \
               'id', p.id, 'visibility', p.visibility, 'tags', p.tags, 'caption', p.caption, \
               'created_at', p.created_at, 'content_type', b.content_type, \
               'size_bytes', b.size_bytes, 'width', b.width, 'height', b.height, \
               'sha256', p.sha256, 'file', {FILE_PATH}) AS item \
             FROM photos p JOIN blobs b ON b.sha256 = p.sha256 \
             WHERE p.owner_id = $1 AND ($2::uuid IS NULL OR p.id > $2) ORDER BY p.id LIMIT $3"
        )
    });
    let (id, file) = path.into_inner();
    if file != "photos.json" {
        return Err(agora_common::accounts::no_such_export_file());
    }
    Ok(agora_common::accounts::export_rows(
        state.pool.clone(),
        PHOTOS.as_str(),
        id,
    ))
}

/// One of the person's photos as an archive file.
#[derive(Debug, serde::Serialize, serde::Deserialize, diesel::QueryableByName)]
pub struct ExportFile {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub id: uuid::Uuid,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub path: String,
}

/// `after` of the export files' pages.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AfterQuery {
    after: Option<uuid::Uuid>,
}

/// `GET /internal/accounts/{id}/export-files?after=`: the next 500 of the person's
/// photos (by id) as archive files.
pub async fn export_files(
    state: web::Data<PhotosState>,
    _service: ServiceCaller,
    path: web::Path<uuid::Uuid>,
    query: agora_common::extract::Query<AfterQuery>,
) -> ApiResult<web::Json<Vec<ExportFile>>> {
    use diesel::sql_types::{BigInt, Nullable, Uuid as SqlUuid};
    use diesel_async::RunQueryDsl;
    static FILES: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT p.id, {FILE_PATH} AS path FROM photos p JOIN blobs b ON b.sha256 = p.sha256 \
             WHERE p.owner_id = $1 AND ($2::uuid IS NULL OR p.id > $2) ORDER BY p.id LIMIT $3"
        )
    });
    let files = diesel::sql_query(FILES.as_str())
        .bind::<SqlUuid, _>(path.into_inner())
        .bind::<Nullable<SqlUuid>, _>(query.into_inner().after)
        .bind::<BigInt, _>(agora_common::accounts::EXPORT_PAGE)
        .load(&mut *state.conn().await?)
        .await?;
    Ok(web::Json(files))
}

/// `GET /internal/accounts/{id}/export-files/{photo}`: the stored bytes of one of the
/// person's photos.
pub async fn export_file(
    state: web::Data<PhotosState>,
    _service: ServiceCaller,
    path: web::Path<(uuid::Uuid, uuid::Uuid)>,
) -> ApiResult<actix_web::HttpResponse> {
    let (owner, photo) = path.into_inner();
    let sha = db::owned_sha256(&mut *state.conn().await?, owner, photo)
        .await?
        .ok_or_else(agora_common::accounts::no_such_export_file)?;
    let stream = state
        .storage
        .get(crate::storage::Variant::Content, &sha)
        .await
        .map_err(storage_unavailable)?;
    Ok(actix_web::HttpResponse::Ok()
        .content_type("application/octet-stream")
        .streaming(stream))
}

/// `PUT /internal/exports/{user}/{export}`: stores an export archive as it streams in.
pub async fn put_archive(
    state: web::Data<PhotosState>,
    _service: ServiceCaller,
    path: web::Path<(uuid::Uuid, uuid::Uuid)>,
    body: web::Payload,
) -> ApiResult<actix_web::HttpResponse> {
    let (user, export) = path.into_inner();
    let size = state
        .storage
        .put_archive(user, export, body)
        .await
        .map_err(storage_unavailable)?;
    tracing::info!(user_id = %user, export = %export, size, "export archive stored");
    Ok(actix_web::HttpResponse::NoContent().finish())
}

/// `GET /internal/exports/{user}/{export}`: streams an export archive.
pub async fn get_archive(
    state: web::Data<PhotosState>,
    _service: ServiceCaller,
    path: web::Path<(uuid::Uuid, uuid::Uuid)>,
) -> ApiResult<actix_web::HttpResponse> {
    let (user, export) = path.into_inner();
    let stream = match state.storage.get_archive(user, export).await {
        Ok(stream) => stream,
        Err(e) if e.is_not_found() => {
            return Err(ApiError::NotFound(std::borrow::Cow::Borrowed(
                "no such archive",
            )));
        }
        Err(e) => return Err(storage_unavailable(e)),
    };
    Ok(actix_web::HttpResponse::Ok()
        .content_type("application/zip")
        .streaming(stream))
}

/// `DELETE /internal/exports/{user}/{export}`: removes an export archive (idempotent).
pub async fn delete_archive(
    state: web::Data<PhotosState>,
    _service: ServiceCaller,
    path: web::Path<(uuid::Uuid, uuid::Uuid)>,
) -> ApiResult<actix_web::HttpResponse> {
    let (user, export) = path.into_inner();
    state
        .storage
        .delete_archives(user, Some(export))
        .await
        .map_err(storage_unavailable)?;
    Ok(actix_web::HttpResponse::NoContent().finish())
}
