//! `POST /photos`: a multipart upload, read up to the size limit (413 at the first byte
//! past it, without reading the rest), typed from its bytes, decoded and re-encoded on
//! the blocking pool behind a bound, stored once per distinct image.

use super::{PhotosState, photo_view};
use crate::db::{self, NewBlob};
use crate::imaging::{self, ImagingError};
use crate::model::{self, Photo, Visibility};
use actix_multipart::{Field, Multipart, MultipartError};
use actix_web::{HttpResponse, web};
use agora_common::db::transaction_with_retry;
use agora_common::openapi::ProblemDoc;
use agora_common::{ApiError, ApiResult, Caller, FieldError};
use futures_util::TryStreamExt;
use std::borrow::Cow;
use uuid::Uuid;

/// The form fields, for the OpenAPI document only (the handler reads the stream). The
/// optional fields may be left out, but are never `null`.
#[derive(utoipa::ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)] // documents `additionalProperties: false`: other fields are a 400
#[allow(dead_code)]
pub struct UploadForm {
    /// JPEG, PNG, GIF or WebP (detected from the bytes), at most the configured size.
    #[schema(value_type = String, format = Binary, content_media_type = "image/*")]
    file: Vec<u8>,
    /// `public` or `private` (default).
    #[serde(default)]
    visibility: Visibility,
    /// Comma-separated, each 1..=32 of `[a-z0-9_-]`, at most 10.
    #[serde(default)]
    #[schema(
        max_length = 329,
        pattern = "^([a-z0-9_-]{1,32}(,[a-z0-9_-]{1,32}){0,9})?$"
    )]
    tags: String,
    /// At most 500 characters.
    #[serde(default)]
    #[schema(max_length = 500)]
    caption: String,
}

/// Longest text field (a caption is ≤ 500 characters, ≤ 2000 bytes).
const MAX_TEXT_FIELD: usize = 4096;

fn form_error(err: MultipartError) -> ApiError {
    match err {
        MultipartError::ContentTypeMissing
        | MultipartError::ContentTypeParse
        | MultipartError::ContentTypeIncompatible => {
            ApiError::UnsupportedMediaType(Cow::Borrowed("the body must be multipart/form-data"))
        }
        other => ApiError::BadRequest(Cow::Owned(format!("malformed multipart body: {other}"))),
    }
}

/// Reads a field's bytes, refusing more than `limit`.
async fn read_field(field: &mut Field, limit: usize) -> Result<Option<Vec<u8>>, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.try_next().await.map_err(form_error)? {
        if bytes.len() + chunk.len() > limit {
            return Ok(None);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Some(bytes))
}

async fn text_field(field: &mut Field, name: &'static str) -> Result<String, ApiError> {
    let bytes = read_field(field, MAX_TEXT_FIELD)
        .await?
        .ok_or_else(|| ApiError::invalid_field(name, "too long"))?;
    String::from_utf8(bytes).map_err(|_| ApiError::invalid_field(name, "must be UTF-8 text"))
}

fn too_large(limit: usize) -> ApiError {
    ApiError::PayloadTooLarge(Cow::Owned(format!("the file is larger than {limit} bytes")))
}

/// The form's fields, each accepted once.
const FIELDS: [&str; 4] = ["file", "visibility", "tags", "caption"];
/// The most field errors one answer lists.
const MAX_FIELD_ERRORS: usize = 16;

/// Upload a photo.
#[utoipa::path(post, path = "/api/v1/photos", tag = "photos",
    security(("bearer" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = Photo),
        (status = 400, description = "a field is missing, unknown, given more than once or invalid, or the image is corrupt (see `errors`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "the file is over the size limit, or the image has too many pixels", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "the file is not a JPEG, PNG, GIF or WebP image, or the body is not multipart/form-data", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn upload(
    state: web::Data<PhotosState>,
    caller: Caller,
    mut form: Multipart,
) -> ApiResult<HttpResponse> {
    let mut file = None;
    let mut visibility = Visibility::Private;
    let mut tags = Vec::new();
    let mut caption = None;
    let mut errors: Vec<FieldError> = Vec::new();
    let mut seen = [false; FIELDS.len()];
    while let Some(mut field) = form.try_next().await.map_err(form_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        // Each field once: a second `caption` must not silently replace the first (nor
        // a second `file` be read at all).
        if let Some(i) = FIELDS.iter().position(|f| *f == name)
            && std::mem::replace(&mut seen[i], true)
        {
            errors.push(FieldError::new(FIELDS[i], "may be given only once"));
            continue;
        }
        // A form of nothing but bad fields is refused without reading it all.
        if errors.len() >= MAX_FIELD_ERRORS {
            return Err(ApiError::Validation(errors));
        }
        match name.as_str() {
            "file" => {
                let bytes = read_field(&mut field, state.max_upload)
                    .await?
                    .ok_or_else(|| too_large(state.max_upload))?;
                file = Some(bytes);
            }
            "visibility" => match text_field(&mut field, "visibility").await?.as_str() {
                "public" => visibility = Visibility::Public,
                "private" => visibility = Visibility::Private,
                _ => errors.push(FieldError::new("visibility", "public or private")),
            },
            "tags" => match model::parse_tag_field(&text_field(&mut field, "tags").await?) {
                Ok(t) => tags = t,
                Err(e) => errors.push(e),
            },
            "caption" => match model::check_caption(&text_field(&mut field, "caption").await?) {
                Ok(c) => caption = c,
                Err(e) => errors.push(e),
            },
            _ => errors.push(FieldError::new(
                Cow::Owned(name.chars().take(64).collect::<String>()),
                "unknown field",
            )),
        }
    }
    let Some(file) = file else {
        errors.push(FieldError::new("file", "required"));
        return Err(ApiError::Validation(errors));
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    // The cheap check first: no permit, no decode for what is not an image.
    imaging::detect(&file).map_err(imaging_error)?;
    let processed = {
        let _permit = state.decoding.acquire().await.map_err(ApiError::internal)?;
        let limits = state.limits;
        agora_common::telemetry::blocking(tracing::info_span!("image.process"), move || {
            imaging::process(&file, limits)
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(imaging_error)?
    };
    state
        .decode_time
        .observe(processed.decode_time.as_secs_f64());
    let sha256 = processed.sha256.clone();
    let blob = NewBlob {
        sha256: sha256.clone(),
        content_type: processed.content_type,
        size_bytes: processed.content.len() as i64,
        width: processed.width as i32,
        height: processed.height as i32,
        thumbnail_bytes: processed.thumbnail.len() as i64,
    };
    let id = Uuid::now_v7();
    let owner = caller.user_id;
    let content = bytes::Bytes::from(processed.content);
    let thumbnail = bytes::Bytes::from(processed.thumbnail);
    let storage = state.storage.clone();
    let mut conn = state.conn().await?;
    transaction_with_retry(&mut conn, |c| {
        let (blob, tags, caption) = (blob.clone(), tags.clone(), caption.clone());
        let (storage, content, thumbnail) = (storage.clone(), content.clone(), thumbnail.clone());
        Box::pin(async move {
            db::lock_blob(c, &blob.sha256).await?;
            // A blob some photo uses is stored; otherwise (new, or being swept) store it.
            if db::blob_refs(c, &blob.sha256).await?.unwrap_or(0) == 0
                && let Err(e) = storage
                    .put(&blob.sha256, content.into(), thumbnail.into())
                    .await
            {
                tracing::error!(error = %e, "photo storage refused a blob");
                return Ok(Err(ApiError::Unavailable(Cow::Borrowed(
                    "photo storage is unavailable",
                ))));
            }
            db::reference_blob(c, &blob).await?;
            db::insert_photo(
                c,
                id,
                owner,
                &blob.sha256,
                visibility.as_str(),
                &tags,
                caption.as_deref(),
            )
            .await?;
            Ok(Ok(()))
        })
    })
    .await??;
    let row = db::photo(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::internal("an inserted photo is missing"))?;
    tracing::info!(photo_id = %id, sha256 = %sha256, "photo uploaded");
    Ok(HttpResponse::Created().json(photo_view(row)))
}

fn imaging_error(err: ImagingError) -> ApiError {
    match err {
        ImagingError::Unsupported => ApiError::UnsupportedMediaType(Cow::Borrowed(
            "the file is not a JPEG, PNG, GIF or WebP image",
        )),
        ImagingError::TooLarge(why) => {
            ApiError::PayloadTooLarge(Cow::Owned(format!("the image is too large: {why}")))
        }
        ImagingError::Corrupt(e) => {
            ApiError::invalid_field("file", format!("the image cannot be decoded: {e}"))
        }
        ImagingError::CorruptJpeg(e) => {
            ApiError::invalid_field("file", format!("the image cannot be decoded: {e}"))
        }
        e @ (ImagingError::Encode(_)
        | ImagingError::EncodeJpeg(_)
        | ImagingError::Resize(_)
        | ImagingError::Inconsistent(_)) => ApiError::internal(e),
    }
}
