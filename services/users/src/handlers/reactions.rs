//! Emoji reactions on posts: one RGI emoji each, idempotent.

use super::UsersState;
use crate::db;
use crate::emoji::Emoji;
use crate::model::Reactions;
use actix_web::{HttpRequest, web};
use agora_common::notices::{Actor, Cause, Change, NoticeKind, Subject, SubjectType};
use agora_common::openapi::ProblemDoc;
use agora_common::{ApiError, ApiResult, Caller};
use diesel_async::AsyncConnection;
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
    let author = state.visible_post_author(&caller, post, &req).await?;
    let cause = reacted(&caller, author, post, &emoji);
    let added = {
        let mut conn = state.conn().await?;
        db::ensure_profile(&mut conn, caller.user_id, &caller.username).await?;
        let notifier = &state.notifier;
        conn.transaction::<_, diesel::result::Error, _>(async |c| {
            let added = db::add_reaction(c, post, caller.user_id, emoji.as_str()).await?;
            if added == db::ReactionAdded::Yes {
                notifier.tell(c, Change::Made { cause }).await?;
            }
            Ok(added)
        })
        .await?
    };
    state.notifier.wake();
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
    let author = state.visible_post_author(&caller, post, &req).await?;
    let cause = reacted(&caller, author, post, &emoji);
    let notifier = &state.notifier;
    state
        .conn()
        .await?
        .transaction::<_, diesel::result::Error, _>(async |c| {
            if db::remove_reaction(c, post, caller.user_id, emoji.as_str()).await? {
                notifier.tell(c, Change::Undone { cause }).await?;
            }
            Ok(())
        })
        .await?;
    state.notifier.wake();
    Ok(web::Json(summary(&state, post, caller.user_id).await?))
}

/// The cause of a `reaction` notification (grouped per post by the notifications
/// service; the emoji tells one person's reactions apart).
fn reacted(caller: &Caller, author: Uuid, post: Uuid, emoji: &Emoji) -> Cause {
    Cause {
        detail: Some(emoji.as_str().to_owned()),
        ..Cause::new(
            NoticeKind::Reaction,
            author,
            &Actor {
                id: caller.user_id,
                username: caller.username.clone(),
            },
            Subject::of(SubjectType::Post, post),
        )
    }
}
