//! Comments on posts, with nested replies (`parent_id`, same post only).

use super::UsersState;
use crate::db::{self, Position};
use crate::model::{Comment, CommentCreate, CommentPage};
use actix_web::{HttpRequest, HttpResponse, web};
use agora_common::db::{Failure, classify};
use agora_common::notices::{Actor, Cause, Change, NoticeKind, Subject, SubjectType};
use agora_common::openapi::ProblemDoc;
use agora_common::pagination::{Page, PageParams};
use agora_common::{ApiError, ApiResult, Caller};
use diesel_async::AsyncConnection;
use std::borrow::Cow;
use uuid::Uuid;

fn no_such_parent() -> ApiError {
    ApiError::invalid_field("parent_id", "no such comment on this post")
}

/// Comment on a post the caller can see (or reply to a comment on it).
#[utoipa::path(post, path = "/api/v1/posts/{id}/comments", tag = "posts",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the post")),
    request_body = CommentCreate,
    responses(
        (status = 201, body = Comment),
        (status = 400, description = "invalid text, or `parent_id` is not a comment on this post", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such post, or not visible to the caller; or `parent_id` is a comment of someone the caller blocks or is blocked by", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn create(
    state: web::Data<UsersState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: agora_common::extract::Json<CommentCreate>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let comment = body.into_inner();
    if !crate::model::text_within(&comment.text, 2000) {
        return Err(ApiError::invalid_field(
            "text",
            "must be 1 to 2000 characters, not only white space, without NUL",
        ));
    }
    let post = path.into_inner();
    let post_author = state.visible_post_author(&caller, post, &req).await?;
    let mut parent_author = None;
    if let Some(parent) = comment.parent_id {
        let owner = db::comment_owner(&mut *state.conn().await?, parent).await?;
        match owner {
            Some(owner) if owner.post_id == post => {
                parent_author = Some(owner.author_id);
                // A comment hidden from the caller by a block (either way) cannot be
                // answered: as if it did not exist.
                if owner.author_id != caller.user_id {
                    let pair = state
                        .relations
                        .pair(caller.user_id, owner.author_id, Some(&req))
                        .await?;
                    if pair.blocked_either_way() {
                        return Err(ApiError::NotFound(Cow::Borrowed("no such comment")));
                    }
                }
            }
            _ => return Err(no_such_parent()),
        }
    }
    let mut conn = state.conn().await?;
    db::ensure_profile(&mut conn, caller.user_id, &caller.username).await?;
    let notifier = &state.notifier;
    let created = conn
        .transaction::<_, diesel::result::Error, _>(async |c| {
            let created =
                db::insert_comment(c, post, comment.parent_id, caller.user_id, &comment.text)
                    .await?;
            for cause in commented(&caller, &created, post_author, parent_author) {
                notifier.tell(c, Change::Made { cause }).await?;
            }
            Ok(created)
        })
        .await;
    match created {
        Ok(created) => {
            state.notifier.wake();
            Ok(HttpResponse::Created().json(created))
        }
        // The parent (or the post) was deleted meanwhile.
        Err(e) if classify(&e) == Failure::ForeignKey => Err(if comment.parent_id.is_some() {
            no_such_parent()
        } else {
            super::no_such_post()
        }),
        Err(e) => Err(e.into()),
    }
}

/// A post's comments, oldest first (replies carry their `parent_id`), except those of
/// people the caller blocks or is blocked by.
#[utoipa::path(get, path = "/api/v1/posts/{id}/comments", tag = "posts",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the post"), PageParams),
    responses(
        (status = 200, body = CommentPage),
        (status = 404, description = "no such post, or not visible to the caller", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn list(
    state: web::Data<UsersState>,
    caller: Caller,
    path: web::Path<Uuid>,
    page: agora_common::extract::Query<PageParams>,
    req: HttpRequest,
) -> ApiResult<web::Json<Page<Comment>>> {
    let page = page.validate::<Position>("posts.comments")?;
    let post = path.into_inner();
    state.visible_post_author(&caller, post, &req).await?;
    let graph = state.relations.graph(caller.user_id, &req).await?;
    let hidden = graph.blocked_either_way();
    let rows = db::comments_page(
        &mut *state.conn().await?,
        post,
        &hidden,
        page.after,
        page.limit,
    )
    .await?;
    Ok(web::Json(Page::from_rows(rows, &page, |c| {
        (c.created_at, c.id)
    })))
}

/// Delete a comment (its author or the post's author); its replies go with it.
#[utoipa::path(delete, path = "/api/v1/posts/{id}/comments/{comment_id}", tag = "posts",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "the post"),
        ("comment_id" = Uuid, Path, description = "the comment"),
    ),
    responses(
        (status = 204, description = "deleted"),
        (status = 403, description = "neither the comment's nor the post's author", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such post or comment, or not visible to the caller", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn delete(
    state: web::Data<UsersState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let (post_id, comment_id) = path.into_inner();
    let post_author = state.visible_post_author(&caller, post_id, &req).await?;
    let mut conn = state.conn().await?;
    let owner = db::comment_owner(&mut conn, comment_id)
        .await?
        .filter(|o| o.post_id == post_id)
        .ok_or(ApiError::NotFound(Cow::Borrowed("no such comment")))?;
    if owner.author_id != caller.user_id && post_author != caller.user_id {
        return Err(ApiError::Forbidden(Cow::Borrowed(
            "only the comment's author or the post's author may delete it",
        )));
    }
    let notifier = &state.notifier;
    conn.transaction::<_, diesel::result::Error, _>(async |c| {
        // Its replies go with it, and so do the notifications about them all.
        for gone in db::delete_comment(c, comment_id).await? {
            notifier.tell(c, Change::Gone { subject: gone }).await?;
        }
        Ok(())
    })
    .await?;
    state.notifier.wake();
    Ok(HttpResponse::NoContent().finish())
}

/// Who hears of a new comment: the author of the comment it answers (`reply`), and
/// the post's author (`comment`) unless that is the same person (one notification is
/// enough). One's own comments tell nobody (the notifier skips them).
fn commented(
    caller: &Caller,
    comment: &Comment,
    post_author: Uuid,
    parent_author: Option<Uuid>,
) -> Vec<Cause> {
    let actor = Actor {
        id: caller.user_id,
        username: caller.username.clone(),
    };
    let subject = Subject {
        post_id: Some(comment.post_id),
        ..Subject::of(SubjectType::Comment, comment.id)
    };
    let mut causes = Vec::with_capacity(2);
    if let Some(parent_author) = parent_author {
        causes.push(Cause::new(
            NoticeKind::Reply,
            parent_author,
            &actor,
            subject,
        ));
    }
    if parent_author != Some(post_author) {
        causes.push(Cause::new(
            NoticeKind::Comment,
            post_author,
            &actor,
            subject,
        ));
    }
    causes
}
