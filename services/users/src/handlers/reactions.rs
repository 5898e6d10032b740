//! Emoji reactions on posts: one RGI emoji each, idempotent.

use super::UsersState;
use crate::db;
use crate::emoji::Emoji;
use crate::model::Reactions;
use actix_web::{HttpRequest, web};
use agora_common::openapi::ProblemDoc;
use agora_common::{ApiError, ApiResult, Caller};
use std::borrow::Cow;
use uuid::Uuid;

fn parse(emoji: &str) -> ApiResult<Emoji> {
    Emoji::parse(emoji).ok_or_else(|| {
        ApiError::invalid_field(
            "emoji",
            "must be exactly one emoji (RGI, fully qualified; ZWJ sequences and skin tones included)",
        )
    })
}

async fn summary(state: &UsersState, post: Uuid, viewer: Uuid) -> ApiResult<Reactions> {
    let s = db::reaction_summary(&mut *state.conn().await?, post, viewer).await?;
    Ok(Reactions {
        reactions: super::reaction_counts(s.reactions),
        my_reactions: s.my_reactions,
    })
}

/// React to a post the caller can see (idempotent), with at most 10 different emoji
/// per person and post.
#[utoipa::path(put, path = "/api/v1/posts/{id}/reactions/{emoji}", tag = "posts",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "the post"),
        ("emoji" = String, Path, description = "one RGI emoji, URL-encoded"),
    ),
    responses(
        (status = 200, body = Reactions),
        (status = 400, description = "not exactly one RGI emoji", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such post, or not visible to the caller", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "type `reaction-limit`: the caller already has 10 other reactions on this post", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn add(
    state: web::Data<UsersState>,
    caller: Caller,
    path: web::Path<(Uuid, String)>,
    req: HttpRequest,
) -> ApiResult<web::Json<Reactions>> {
    let (post, emoji) = path.into_inner();
    let emoji = parse(&emoji)?;
    state.visible_post_author(&caller, post, &req).await?;
    let added = {
        let mut conn = state.conn().await?;
        db::ensure_profile(&mut conn, caller.user_id, &caller.username).await?;
        db::add_reaction(&mut conn, post, caller.user_id, emoji.as_str()).await?
    };
    if added == db::ReactionAdded::LimitReached {
        return Err(ApiError::Conflict(Cow::Borrowed(
            "at most 10 different reactions per person on one post; withdraw one first",
        ))
        .typed("reaction-limit"));
    }
    Ok(web::Json(summary(&state, post, caller.user_id).await?))
}

/// Withdraw a reaction (idempotent).
#[utoipa::path(delete, path = "/api/v1/posts/{id}/reactions/{emoji}", tag = "posts",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "the post"),
        ("emoji" = String, Path, description = "one RGI emoji, URL-encoded"),
    ),
    responses(
        (status = 200, body = Reactions),
        (status = 400, description = "not exactly one RGI emoji", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such post, or not visible to the caller", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn remove(
    state: web::Data<UsersState>,
    caller: Caller,
    path: web::Path<(Uuid, String)>,
    req: HttpRequest,
) -> ApiResult<web::Json<Reactions>> {
    let (post, emoji) = path.into_inner();
    let emoji = parse(&emoji)?;
    state.visible_post_author(&caller, post, &req).await?;
    db::remove_reaction(
        &mut *state.conn().await?,
        post,
        caller.user_id,
        emoji.as_str(),
    )
    .await?;
    Ok(web::Json(summary(&state, post, caller.user_id).await?))
}
