//! One photo's metadata: read, edit, delete, share.

use super::{PhotosState, no_such_photo, photo_view};
use crate::db;
use crate::links;
use crate::model::{self, Photo, PhotoPatch, ShareLink, ShareLinkRequest};
use actix_web::{HttpRequest, HttpResponse, web};
use agora_common::openapi::ProblemDoc;
use agora_common::{ApiError, ApiResult, Caller, FieldError};
use chrono::Utc;
use uuid::Uuid;

/// A photo's metadata (a private one: its owner only).
#[utoipa::path(get, path = "/api/v1/photos/{id}", tag = "photos",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the photo")),
    responses(
        (status = 200, body = Photo),
        (status = 404, description = "no such photo, private and not the caller's, or its owner and the caller are blocked either way", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn get(
    state: web::Data<PhotosState>,
    caller: Caller,
    path: web::Path<Uuid>,
    req: HttpRequest,
) -> ApiResult<web::Json<Photo>> {
    let row = state
        .visible_unblocked(caller.user_id, path.into_inner(), &req)
        .await?;
    Ok(web::Json(photo_view(row)))
}

/// Edit a photo (owner only): `visibility`, `tags`, `caption`.
#[utoipa::path(patch, path = "/api/v1/photos/{id}", tag = "photos",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the photo")),
    request_body = PhotoPatch,
    responses(
        (status = 200, body = Photo),
        (status = 400, description = "a field is invalid (see `errors`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "a public photo of someone else", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such photo, or private and not the caller's", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn update(
    state: web::Data<PhotosState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: agora_common::extract::Json<PhotoPatch>,
) -> ApiResult<web::Json<Photo>> {
    let patch = body.into_inner();
    let mut errors: Vec<FieldError> = Vec::new();
    let tags = match patch.tags.as_deref().map(|t| model::check_tags("tags", t)) {
        Some(Err(e)) => {
            errors.push(e);
            None
        }
        Some(Ok(t)) => Some(t),
        None => None,
    };
    let caption = match patch.caption {
        Some(Some(text)) => match model::check_caption(&text) {
            Ok(c) => Some(c),
            Err(e) => {
                errors.push(e);
                None
            }
        },
        Some(None) => Some(None),
        None => None,
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let id = path.into_inner();
    state.owned(caller.user_id, id).await?;
    let mut conn = state.conn().await?;
    db::update_photo(
        &mut conn,
        id,
        patch.visibility.map(|v| v.as_str()),
        tags.as_deref(),
        caption.as_ref().map(|c| c.as_deref()),
    )
    .await?;
    let row = db::photo(&mut conn, id).await?.ok_or_else(no_such_photo)?;
    Ok(web::Json(photo_view(row)))
}

/// Delete a photo (owner only); its bytes go once no photo uses them. Posts that show
/// it keep its id and URL, which then answers 404.
#[utoipa::path(delete, path = "/api/v1/photos/{id}", tag = "photos",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the photo")),
    responses(
        (status = 204, description = "deleted"),
        (status = 403, description = "a public photo of someone else", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such photo, or private and not the caller's", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn delete(
    state: web::Data<PhotosState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let id = path.into_inner();
    state.owned(caller.user_id, id).await?;
    let mut conn = state.conn().await?;
    let released = agora_common::db::transaction_with_retry(&mut conn, |c| {
        let owner = caller.user_id;
        Box::pin(async move {
            let Some(sha) = db::delete_photo(c, id, owner).await? else {
                return Ok(None); // deleted meanwhile
            };
            db::lock_blob(c, &sha).await?;
            let refs = db::release_blob(c, &sha).await?;
            Ok((refs == 0).then_some(sha))
        })
    })
    .await?;
    drop(conn);
    if let Some(sha) = released {
        state.sweep(&sha).await?;
    }
    tracing::info!(photo_id = %id, "photo deleted");
    Ok(HttpResponse::NoContent().finish())
}

/// Make a share link (owner only): the photo's content without a token until it expires.
#[utoipa::path(post, path = "/api/v1/photos/{id}/share-links", tag = "photos",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the photo")),
    request_body = ShareLinkRequest,
    responses(
        (status = 201, body = ShareLink),
        (status = 400, description = "`expires_in_seconds` is not within 60..=604800", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "a public photo of someone else", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such photo, or private and not the caller's", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn share(
    state: web::Data<PhotosState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: agora_common::extract::Json<ShareLinkRequest>,
) -> ApiResult<HttpResponse> {
    let lifetime = body.into_inner().expires_in_seconds;
    if !links::LIFETIME_SECS.contains(&lifetime) {
        return Err(ApiError::invalid_field(
            "expires_in_seconds",
            "must be between 60 and 604800",
        ));
    }
    let id = path.into_inner();
    state.owned(caller.user_id, id).await?;
    let expires = Utc::now().timestamp() + lifetime;
    let expires_at = chrono::DateTime::from_timestamp(expires, 0)
        .ok_or_else(|| ApiError::internal("expiry out of range"))?;
    let sig = state.links.sign(id, expires);
    Ok(HttpResponse::Created().json(ShareLink {
        url: format!(
            "{}?expires={expires}&sig={sig}",
            agora_common::photos::content_url(id)
        ),
        expires_at,
    }))
}
