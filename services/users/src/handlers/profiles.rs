//! Profiles: lookup, search, the caller's own profile and its edits.

use super::UsersState;
use crate::db::{self, ProfileRow};
use crate::dependencies::Audience;
use crate::model::{Profile, ProfileCounts, ProfilePage, ProfilePatch, UserQuery};
use actix_web::{HttpRequest, web};
use agora_common::openapi::ProblemDoc;
use agora_common::pagination::Page;
use agora_common::relations::Pair;
use agora_common::{ApiError, ApiResult, Caller};
use std::borrow::Cow;
use std::collections::HashMap;
use uuid::Uuid;

fn no_such_user() -> ApiError {
    ApiError::NotFound(Cow::Borrowed("no such user"))
}

/// Profiles with their counts as `caller` sees them: the relation counts in one
/// relations call for all of them, and the posts the caller can list, which depend on
/// friendship and blocks (one more call at the same time: the pair for one profile,
/// the caller's graph for a page of them).
async fn with_counts(
    state: &UsersState,
    caller: &Caller,
    rows: Vec<ProfileRow>,
    req: &HttpRequest,
) -> ApiResult<Vec<Profile>> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let others: Vec<Uuid> = ids
        .iter()
        .copied()
        .filter(|id| *id != caller.user_id)
        .collect();
    let pairs = async {
        let relations = &state.relations;
        Ok::<HashMap<Uuid, Pair>, ApiError>(match others.as_slice() {
            [] => HashMap::new(),
            [one] => {
                HashMap::from([(*one, relations.pair(caller.user_id, *one, Some(req)).await?)])
            }
            _ => {
                let graph = relations.graph(caller.user_id, req).await?;
                others
                    .iter()
                    .map(|id| (*id, graph.pair_with(*id)))
                    .collect()
            }
        })
    };
    let (counts, pairs) =
        futures_util::future::join(state.relations.counts(&ids, req), pairs).await;
    let (counts, pairs) = (counts?, pairs?);
    Ok(rows
        .into_iter()
        .map(|r| Profile {
            counts: ProfileCounts::new(
                r.posts_seen_by(
                    caller.user_id,
                    &pairs.get(&r.id).copied().unwrap_or_default(),
                ),
                counts.get(&r.id).copied().unwrap_or_default(),
            ),
            id: r.id,
            username: r.username,
            display_name: r.display_name,
            bio: r.bio,
            avatar_url: r.avatar_url,
            location: r.location,
            website: r.website,
            created_at: r.created_at,
        })
        .collect())
}

async fn one_with_counts(
    state: &UsersState,
    caller: &Caller,
    row: ProfileRow,
    req: &HttpRequest,
) -> ApiResult<Profile> {
    with_counts(state, caller, vec![row], req)
        .await?
        .pop()
        .ok_or_else(no_such_user)
}

/// A user's profile.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the user")),
    responses(
        (status = 200, body = Profile),
        (status = 404, description = "no such user", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn get(
    state: web::Data<UsersState>,
    caller: Caller,
    path: web::Path<Uuid>,
    req: HttpRequest,
) -> ApiResult<web::Json<Profile>> {
    let row = db::profile(&mut *state.conn().await?, path.into_inner())
        .await?
        .ok_or_else(no_such_user)?;
    Ok(web::Json(
        one_with_counts(&state, &caller, row, &req).await?,
    ))
}

/// Checks a `username` or `q` value: 1..=32 of `[A-Za-z0-9_.]`, lowercased.
fn username_term(field: &'static str, value: &str) -> ApiResult<String> {
    let ok = (1..=32).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
    if ok {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(ApiError::invalid_field(
            field,
            "must be 1 to 32 of a-z, 0-9, '_' and '.'",
        ))
    }
}

/// Find users: `?username=` exact lookup, `?q=` username prefix search; both filters
/// apply together, and neither lists everyone (username order, paginated).
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    security(("bearer" = [])),
    params(UserQuery, agora_common::pagination::PageParams),
    responses(
        (status = 200, description = "`username`: zero or one item; otherwise a page in username order", body = ProfilePage),
        (status = 400, description = "an invalid `username`, `q`, `limit` or `cursor`", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn search(
    state: web::Data<UsersState>,
    caller: Caller,
    query: agora_common::extract::Query<UserQuery>,
    req: HttpRequest,
) -> ApiResult<web::Json<Page<Profile>>> {
    let username = query
        .username
        .as_deref()
        .map(|u| username_term("username", u))
        .transpose()?;
    let prefix = query
        .q
        .as_deref()
        .map(|q| username_term("q", q))
        .transpose()?
        .unwrap_or_default();
    let page = query.page.validate::<String>("users.search")?;
    if let Some(username) = username {
        let row = match username.starts_with(&prefix) {
            true => db::profile_by_username(&mut *state.conn().await?, &username).await?,
            false => None,
        };
        let items = match row {
            Some(row) => vec![one_with_counts(&state, &caller, row, &req).await?],
            None => Vec::new(),
        };
        return Ok(web::Json(Page {
            items,
            next_cursor: None,
        }));
    }
    let rows = db::profiles_by_prefix(
        &mut *state.conn().await?,
        &prefix,
        page.after.as_deref(),
        page.limit,
    )
    .await?;
    let page = Page::from_rows(rows, &page, |r| r.username.clone());
    Ok(web::Json(Page {
        items: with_counts(&state, &caller, page.items, &req).await?,
        next_cursor: page.next_cursor,
    }))
}

/// The caller's profile, created from the token if the account's delivery is late.
async fn own_profile(state: &UsersState, caller: &Caller) -> ApiResult<ProfileRow> {
    let mut conn = state.conn().await?;
    if let Some(row) = db::profile(&mut conn, caller.user_id).await? {
        return Ok(row);
    }
    db::ensure_profile(&mut conn, caller.user_id, &caller.username).await?;
    db::profile(&mut conn, caller.user_id)
        .await?
        .ok_or_else(no_such_user)
}

/// The caller's own profile.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "users",
    security(("bearer" = [])),
    responses((status = 200, body = Profile)))]
pub async fn me(
    state: web::Data<UsersState>,
    caller: Caller,
    req: HttpRequest,
) -> ApiResult<web::Json<Profile>> {
    let row = own_profile(&state, &caller).await?;
    Ok(web::Json(
        one_with_counts(&state, &caller, row, &req).await?,
    ))
}

/// Edit the caller's profile: any of the fields; `null` or `""` clears one.
#[utoipa::path(patch, path = "/api/v1/users/me", tag = "users",
    security(("bearer" = [])),
    request_body = ProfilePatch,
    responses(
        (status = 200, body = Profile),
        (status = 400, description = "a field is invalid, or a photo avatar is not public (type `private-photo-shown-to-others` when it is the caller's private photo; see `errors`)", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn update_me(
    state: web::Data<UsersState>,
    caller: Caller,
    body: agora_common::extract::Json<ProfilePatch>,
    req: HttpRequest,
) -> ApiResult<web::Json<Profile>> {
    let change = body.into_inner().validate().map_err(ApiError::Validation)?;
    // A photo avatar must be the caller's own photo or a public one, as in posts.
    if let Some(photo) = change
        .avatar_url
        .as_ref()
        .and_then(|url| url.as_deref())
        .and_then(crate::model::photo_reference)
    {
        state
            .photos
            .check_usable(
                caller.user_id,
                &[photo],
                Audience::Others,
                |_| "avatar_url".to_owned(),
                &req,
            )
            .await?;
    }
    own_profile(&state, &caller).await?;
    db::update_profile(&mut *state.conn().await?, caller.user_id, change).await?;
    let row = own_profile(&state, &caller).await?;
    Ok(web::Json(
        one_with_counts(&state, &caller, row, &req).await?,
    ))
}
