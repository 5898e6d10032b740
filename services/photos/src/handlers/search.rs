//! Finding photos: public ones by tags (all of them), the caller's own, tag suggestions.

use super::{PhotosState, photo_view};
use crate::db;
use crate::model::{self, PhotoPage, TagCount, TagList};
use actix_web::{HttpRequest, web};
use agora_common::openapi::ProblemDoc;
use agora_common::pagination::{Page, PageParams};
use agora_common::{ApiError, ApiResult, Caller};
use serde::Deserialize;

/// `GET /photos` query: `tag` may repeat, so it is read from the raw query string.
#[derive(Debug, Default)]
struct SearchQuery {
    tags: Vec<String>,
    owner_me: bool,
    page: PageParams,
}

fn parse_search(query: &str) -> Result<SearchQuery, ApiError> {
    let mut out = SearchQuery::default();
    out.page = agora_common::extract::list_query(query, &["tag"], |key, value| {
        match (key, value.as_str()) {
            ("tag", _) => out.tags.push(value),
            ("owner", "me") => out.owner_me = true,
            ("owner", _) => return Err(ApiError::invalid_field("owner", "only `me` is supported")),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    out.tags = model::check_tags("tag", &out.tags).map_err(|e| ApiError::Validation(vec![e]))?;
    Ok(out)
}

/// Search photos: public ones having every `tag` (none: all public photos), except
/// those of people blocked either way, or with `owner=me` the caller's own (any
/// visibility; `tag` filters them too). Newest first.
#[utoipa::path(get, path = "/api/v1/photos", tag = "photos",
    security(("bearer" = [])),
    params(
        ("tag" = Option<Vec<crate::model::Tag>>, Query, explode = true, max_items = 10, description = "repeatable: photos having all of them"),
        ("owner" = Option<String>, Query, pattern = "^me$", description = "`me`: the caller's own photos, any visibility"),
        PageParams,
    ),
    responses(
        (status = 200, body = PhotoPage),
        (status = 400, description = "a bad tag, owner, limit or cursor", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn list(
    state: web::Data<PhotosState>,
    caller: Caller,
    req: HttpRequest,
) -> ApiResult<web::Json<Page<crate::model::Photo>>> {
    let query = parse_search(req.query_string())?;
    let page = query.page.validate::<uuid::Uuid>(if query.owner_me {
        "photos.mine"
    } else {
        "photos.search"
    })?;
    let fetch = i64::from(page.limit) + 1;
    let mut conn = state.conn().await?;
    let rows = if query.owner_me {
        db::owner_photos(&mut conn, caller.user_id, &query.tags, page.after, fetch).await?
    } else {
        drop(conn);
        let hidden = state.hidden_owners(caller.user_id, &req).await?;
        db::search_public(
            &mut *state.conn().await?,
            &query.tags,
            &hidden,
            page.after,
            fetch,
        )
        .await?
    };
    let items = rows.into_iter().map(photo_view).collect();
    Ok(web::Json(Page::from_rows(
        items,
        &page,
        |p: &crate::model::Photo| p.id,
    )))
}

/// `GET /photos/tags` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TagQuery {
    /// 0..=32 of `[a-z0-9_-]` (empty: the most used tags).
    #[param(max_length = 32, pattern = "^[a-z0-9_-]*$")]
    pub prefix: Option<String>,
}

/// Public tags starting with `prefix`, with how many public photos carry each, most
/// used first (at most 20).
#[utoipa::path(get, path = "/api/v1/photos/tags", tag = "photos",
    security(("bearer" = [])),
    params(TagQuery),
    responses(
        (status = 200, body = TagList),
        (status = 400, description = "a bad prefix", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn tags(
    state: web::Data<PhotosState>,
    _caller: Caller,
    query: agora_common::extract::Query<TagQuery>,
) -> ApiResult<web::Json<TagList>> {
    let prefix = query.prefix.as_deref().unwrap_or_default();
    if prefix.len() > model::MAX_TAG_LEN || !(prefix.is_empty() || model::valid_tag(prefix)) {
        return Err(ApiError::invalid_field(
            "prefix",
            "up to 32 characters of a-z, 0-9, _ and -",
        ));
    }
    let rows = db::tags_with_prefix(&mut *state.conn().await?, prefix, 20).await?;
    Ok(web::Json(TagList {
        items: rows
            .into_iter()
            .map(|(tag, count)| TagCount { tag, count })
            .collect(),
    }))
}
