//! A photo's bytes: streamed from storage with `Content-Type`, `Content-Length`, an
//! `ETag` (the SHA-256 of the stored bytes; `304` on `If-None-Match`) and
//! `Cache-Control`. Public photos need no token; private ones the owner's token or a
//! share link.

use super::{PhotosState, no_such_photo};
use crate::db::PhotoRow;
use crate::links::LinkCheck;
use crate::model::Visibility;
use crate::storage::Variant;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use agora_common::auth::bearer_token;
use agora_common::openapi::ProblemDoc;
use agora_common::{ApiError, ApiResult, TokenVerifier};
use chrono::Utc;
use serde::Deserialize;
use std::borrow::Cow;
use uuid::Uuid;

/// A share link's query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinkParams {
    /// Unix seconds (from a share link).
    pub expires: Option<i64>,
    /// The link's signature.
    #[param(max_length = 128)]
    pub sig: Option<String>,
}

/// The photo, if the request may read its bytes.
async fn readable(
    state: &PhotosState,
    req: &HttpRequest,
    id: Uuid,
    link: &LinkParams,
) -> ApiResult<PhotoRow> {
    if link.sig.as_deref().is_some_and(|s| s.len() > 128) {
        return Err(ApiError::invalid_field("sig", "at most 128 characters"));
    }
    let photo = crate::db::photo(&mut *state.conn().await?, id)
        .await?
        .ok_or_else(no_such_photo)?;
    if Visibility::parse(&photo.visibility) == Visibility::Public {
        return Ok(photo);
    }
    if let (Some(expires), Some(sig)) = (link.expires, link.sig.as_deref()) {
        match state.links.check(id, expires, sig, Utc::now().timestamp()) {
            LinkCheck::Valid => return Ok(photo),
            LinkCheck::Expired => {
                return Err(ApiError::Forbidden(Cow::Borrowed(
                    "this share link has expired",
                )));
            }
            LinkCheck::Invalid => {}
        }
    }
    // The owner's token; anything else (none, bad, another user's) learns nothing.
    if let (Some(token), Some(verifier)) = (
        bearer_token(req),
        req.app_data::<web::Data<TokenVerifier>>(),
    ) && let Ok(caller) = verifier.verify(token).await
        && caller.user_id == photo.owner_id
    {
        return Ok(photo);
    }
    Err(no_such_photo())
}

async fn serve(
    state: &PhotosState,
    req: &HttpRequest,
    id: Uuid,
    link: &LinkParams,
    variant: Variant,
) -> ApiResult<HttpResponse> {
    let photo = readable(state, req, id, link).await?;
    let etag = format!(
        "\"{}{}\"",
        photo.sha256,
        if variant == Variant::Thumbnail {
            "-t"
        } else {
            ""
        }
    );
    let cache = if Visibility::parse(&photo.visibility) == Visibility::Public {
        // Shared caches may keep public bytes but must revalidate each use (a 304 on
        // the same ETag, no body): a photo made private or deleted stops being served
        // at once, instead of living on in caches for the length of a max-age.
        "public, no-cache"
    } else {
        "private, no-store"
    };
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header((header::CACHE_CONTROL, cache))
            .finish());
    }
    let length = match variant {
        Variant::Content => photo.size_bytes,
        Variant::Thumbnail => photo.thumbnail_bytes,
    };
    let stream = state
        .storage
        .get(variant, &photo.sha256)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, sha256 = %photo.sha256, "stored bytes unreadable");
            ApiError::Unavailable(Cow::Borrowed("photo storage is unavailable"))
        })?;
    let content_type = HeaderValue::from_str(&photo.content_type).map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header(("x-content-type-options", "nosniff"))
        .no_chunking(length.max(0) as u64)
        .streaming(stream))
}

/// A photo's bytes (public photos: no token needed).
#[utoipa::path(get, path = "/api/v1/photos/{id}/content", tag = "photos",
    security((), ("bearer" = [])),
    params(("id" = Uuid, Path, description = "the photo"), LinkParams,
        ("If-None-Match" = Option<String>, Header, description = "an ETag from an earlier answer")),
    responses(
        (status = 200, description = "the image", content_type = "image/*"),
        (status = 304, description = "unchanged since the given ETag"),
        (status = 403, description = "an authentic share link that has expired", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such photo, or private and neither the owner's token nor a valid share link", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn content(
    state: web::Data<PhotosState>,
    req: HttpRequest,
    path: web::Path<Uuid>,
    link: agora_common::extract::Query<LinkParams>,
) -> ApiResult<HttpResponse> {
    serve(&state, &req, path.into_inner(), &link, Variant::Content).await
}

/// A photo's thumbnail, longest side 320 px (as `content` for access).
#[utoipa::path(get, path = "/api/v1/photos/{id}/thumbnail", tag = "photos",
    security((), ("bearer" = [])),
    params(("id" = Uuid, Path, description = "the photo"), LinkParams,
        ("If-None-Match" = Option<String>, Header, description = "an ETag from an earlier answer")),
    responses(
        (status = 200, description = "the thumbnail", content_type = "image/*"),
        (status = 304, description = "unchanged since the given ETag"),
        (status = 403, description = "an authentic share link that has expired", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such photo, or private and neither the owner's token nor a valid share link", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn thumbnail(
    state: web::Data<PhotosState>,
    req: HttpRequest,
    path: web::Path<Uuid>,
    link: agora_common::extract::Query<LinkParams>,
) -> ApiResult<HttpResponse> {
    serve(&state, &req, path.into_inner(), &link, Variant::Thumbnail).await
}
