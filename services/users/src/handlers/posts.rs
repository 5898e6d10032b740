//! Posts: write, read, edit, delete, a user's posts and the home feed.

use super::{UsersState, no_such_post, post_view};
use crate::db::{self, FeedScope, Position};
use crate::dependencies::Audience;
use crate::model::{Post, PostCreate, PostPage, PostPatch, Visibility, check_post_fields};
use actix_web::{HttpRequest, HttpResponse, web};
use agora_common::notices::{Actor, Cause, Change, NoticeKind, Subject, SubjectType};
use agora_common::openapi::ProblemDoc;
use agora_common::pagination::{Page, PageParams, PageRequest};
use agora_common::{ApiError, ApiResult, Caller};
use diesel_async::AsyncConnection;
use std::borrow::Cow;
use uuid::Uuid;

/// Write a post.
#[utoipa::path(post, path = "/api/v1/posts", tag = "posts",
    security(("bearer" = [])),
    request_body = PostCreate,
    responses(
        (status = 201, body = Post),
        (status = 400, description = "a field is invalid, a photo is neither the author's nor public, or (type `private-photo-shown-to-others`) a private photo on a post others can see (see `errors`)", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn create(
    state: web::Data<UsersState>,
    caller: Caller,
    body: agora_common::extract::Json<PostCreate>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let post = body.into_inner();
    let links = post.links.unwrap_or_default();
    let photo_ids = post.photo_ids.unwrap_or_default();
    let mut errors = check_post_fields(Some(&post.text), Some(&links))
        .err()
        .unwrap_or_default();
    if photo_ids.len() > 4 {
        errors.push(agora_common::FieldError::new(
            "photo_ids",
            "at most 4 photos",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let owners = state
        .photos
        .check_usable(
            caller.user_id,
            &photo_ids,
            audience(post.visibility),
            |i| format!("photo_ids[{i}]"),
            &req,
        )
        .await?;
    let reused = reused_photos(&caller, post.visibility, &photo_ids, &owners);
    let visibility = post.visibility;
    // On a new connection once more should the session end midway (a switchover).
    let id = agora_common::db::transaction_on(&state.pool, |c| {
        let (state, caller, text, links, photo_ids, reused) = (
            state.clone(),
            caller.clone(),
            post.text.clone(),
            links.clone(),
            photo_ids.clone(),
            reused.clone(),
        );
        Box::pin(async move {
            db::ensure_profile(c, caller.user_id, &caller.username).await?;
            let id =
                db::insert_post(c, caller.user_id, &text, &links, &photo_ids, visibility).await?;
            for (owner, photo) in reused {
                let cause = Cause::new(
                    NoticeKind::PhotoReused,
                    owner,
                    &Actor {
                        id: caller.user_id,
                        username: caller.username.clone(),
                    },
                    Subject {
                        photo_id: Some(photo),
                        ..Subject::of(SubjectType::Post, id)
                    },
                );
                state.notifier.tell(c, Change::Made { cause }).await?;
            }
            Ok(id)
        })
    })
    .await?;
    state.notifier.wake();
    let row = agora_common::db::transaction_on(&state.pool, |c| {
        let viewer = caller.user_id;
        Box::pin(async move { db::post(c, viewer, id).await })
    })
    .await?
    .ok_or_else(no_such_post)?;
    tracing::info!(post_id = %id, "post created");
    Ok(HttpResponse::Created().json(post_view(row)))
}

/// Whose public photos a new post shows, and which (the first of each owner's): they
/// hear of it when the post is public (everyone signed in may then follow the
/// notification to it; a friends-only post could be one they cannot see).
fn reused_photos(
    caller: &Caller,
    visibility: Visibility,
    photo_ids: &[Uuid],
    owners: &std::collections::HashMap<Uuid, Uuid>,
) -> Vec<(Uuid, Uuid)> {
    if visibility != Visibility::Public {
        return Vec::new();
    }
    let mut reused: Vec<(Uuid, Uuid)> = Vec::new();
    for photo in photo_ids {
        match owners.get(photo) {
            Some(owner) if *owner != caller.user_id && !reused.iter().any(|(o, _)| o == owner) => {
                reused.push((*owner, *photo));
            }
            _ => {}
        }
    }
    reused
}

/// Read a post.
#[utoipa::path(get, path = "/api/v1/posts/{id}", tag = "posts",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the post")),
    responses(
        (status = 200, body = Post),
        (status = 404, description = "no such post, or not visible to the caller", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn get(
    state: web::Data<UsersState>,
    caller: Caller,
    path: web::Path<Uuid>,
    req: HttpRequest,
) -> ApiResult<web::Json<Post>> {
    let row = state.visible_post(&caller, path.into_inner(), &req).await?;
    Ok(web::Json(post_view(row)))
}

/// Who will see a post's photos.
fn audience(visibility: Visibility) -> Audience {
    match visibility {
        Visibility::Private => Audience::OwnerOnly,
        Visibility::Public | Visibility::Friends => Audience::Others,
    }
}

fn author_only() -> ApiError {
    ApiError::Forbidden(Cow::Borrowed("only the author may change this post"))
}

/// Edit a post (author only): any of `text`, `links`, `visibility`.
#[utoipa::path(patch, path = "/api/v1/posts/{id}", tag = "posts",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the post")),
    request_body = PostPatch,
    responses(
        (status = 200, body = Post),
        (status = 400, description = "a field is invalid, or (type `private-photo-shown-to-others`) the post would show a private photo to others (see `errors`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "the caller sees the post but is not its author", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such post, or not visible to the caller", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn update(
    state: web::Data<UsersState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: agora_common::extract::Json<PostPatch>,
    req: HttpRequest,
) -> ApiResult<web::Json<Post>> {
    let patch = body.into_inner();
    check_post_fields(patch.text.as_deref(), patch.links.as_deref())
        .map_err(ApiError::Validation)?;
    let id = path.into_inner();
    let post = state.visible_post(&caller, id, &req).await?;
    if post.author_id != caller.user_id {
        return Err(author_only());
    }
    // Shown to others from now on: its photos must be public now.
    if let Some(visibility) = patch.visibility.filter(|v| *v != Visibility::Private) {
        state
            .photos
            .check_usable(
                caller.user_id,
                &post.photo_ids,
                audience(visibility),
                |i| format!("photo_ids[{i}]"),
                &req,
            )
            .await?;
    }
    let mut conn = state.conn().await?;
    db::update_post(
        &mut conn,
        id,
        patch.text.as_deref(),
        patch.links.as_deref(),
        patch.visibility,
    )
    .await?;
    let row = db::post(&mut conn, caller.user_id, id)
        .await?
        .ok_or_else(no_such_post)?;
    Ok(web::Json(post_view(row)))
}

/// Delete a post (author only); its comments and reactions go with it.
#[utoipa::path(delete, path = "/api/v1/posts/{id}", tag = "posts",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the post")),
    responses(
        (status = 204, description = "deleted"),
        (status = 403, description = "the caller sees the post but is not its author", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such post, or not visible to the caller", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn delete(
    state: web::Data<UsersState>,
    caller: Caller,
    path: web::Path<Uuid>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let id = path.into_inner();
    let author = state.visible_post_author(&caller, id, &req).await?;
    if author != caller.user_id {
        return Err(author_only());
    }
    let notifier = &state.notifier;
    state
        .conn()
        .await?
        .transaction::<_, diesel::result::Error, _>(async |c| {
            db::delete_post(c, id).await?;
            // Its comments, replies and reactions go with it, and their notifications.
            notifier.tell(c, Change::Gone { subject: id }).await
        })
        .await?;
    state.notifier.wake();
    tracing::info!(post_id = %id, "post deleted");
    Ok(HttpResponse::NoContent().finish())
}

fn page_of(rows: Vec<db::PostRow>, request: &PageRequest<Position>) -> Page<Post> {
    let page = Page::from_rows(rows, request, |r| (r.created_at, r.id));
    Page {
        items: page.items.into_iter().map(post_view).collect(),
        next_cursor: page.next_cursor,
    }
}

/// A user's posts that the caller may see, newest first.
#[utoipa::path(get, path = "/api/v1/users/{id}/posts", tag = "posts",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the author"), PageParams),
    responses(
        (status = 200, description = "empty when the author blocks the caller", body = PostPage),
        (status = 404, description = "no such user", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn by_author(
    state: web::Data<UsersState>,
    caller: Caller,
    path: web::Path<Uuid>,
    page: agora_common::extract::Query<PageParams>,
    req: HttpRequest,
) -> ApiResult<web::Json<Page<Post>>> {
    let page = page.validate::<Position>("users.posts")?;
    let author = path.into_inner();
    if db::profile(&mut *state.conn().await?, author)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound(Cow::Borrowed("no such user")));
    }
    let friend = if author == caller.user_id {
        false
    } else {
        let pair = state
            .relations
            .pair(caller.user_id, author, Some(&req))
            .await?;
        if pair.blocked_by {
            return Ok(web::Json(Page {
                items: Vec::new(),
                next_cursor: None,
            }));
        }
        pair.friend
    };
    let rows = db::author_page(
        &mut *state.conn().await?,
        caller.user_id,
        author,
        friend,
        page.after,
        page.limit,
    )
    .await?;
    Ok(web::Json(page_of(rows, &page)))
}

/// The caller's home timeline: their own posts and those of the people they follow or
/// are friends with, as far as they may see them, newest first. One relations call and
/// one query per page, whatever the number of followees.
#[utoipa::path(get, path = "/api/v1/feed", tag = "posts",
    security(("bearer" = [])),
    params(PageParams),
    responses((status = 200, body = PostPage)))]
pub async fn feed(
    state: web::Data<UsersState>,
    caller: Caller,
    page: agora_common::extract::Query<PageParams>,
    req: HttpRequest,
) -> ApiResult<web::Json<Page<Post>>> {
    let page = page.validate::<Position>("feed")?;
    let graph = state.relations.graph(caller.user_id, &req).await?;
    // Followees and friends, minus anyone who blocks the caller.
    let blocked_by: std::collections::HashSet<&Uuid> = graph.blocked_by.iter().collect();
    let mut authors: Vec<Uuid> = graph
        .following
        .iter()
        .chain(&graph.friends)
        .filter(|id| !blocked_by.contains(id))
        .copied()
        .collect();
    authors.sort_unstable();
    authors.dedup();
    let rows = db::feed_page(
        &mut *state.conn().await?,
        caller.user_id,
        FeedScope {
            authors: &authors,
            friends: &graph.friends,
        },
        page.after,
        page.limit,
    )
    .await?;
    Ok(web::Json(page_of(rows, &page)))
}
