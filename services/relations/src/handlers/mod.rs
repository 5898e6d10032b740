//! Request handlers: extract, authorize, one query (or one transaction), map to the
//! response. Paths name the other person by id; the caller comes from the token.

pub mod blocks;
pub mod follows;
pub mod friends;
pub mod internal;
pub mod likes;
pub mod people;

use crate::db::{self, Refusal};
use agora_common::db::{DbConn, DbPool, transaction_with_retry};
use agora_common::notices::{Actor, Change, Notifier};
use agora_common::{ApiError, ApiResult, Caller};
use diesel_async::AsyncPgConnection;
use std::borrow::Cow;
use uuid::Uuid;

/// Everything the handlers share.
pub struct RelationsState {
    pub pool: DbPool,
    /// Tells the notifications service of follows, requests, matches and blocks.
    pub notifier: Notifier,
}

impl RelationsState {
    /// A pooled connection (503 when the database is unavailable).
    pub async fn conn(&self) -> ApiResult<DbConn> {
        Ok(agora_common::db::checkout(&self.pool).await?)
    }
}

/// 400 when the caller names themselves.
pub fn not_self(caller: &Caller, other: Uuid, action: &'static str) -> ApiResult<()> {
    if caller.user_id == other {
        Err(ApiError::BadRequest(Cow::Borrowed(action)))
    } else {
        Ok(())
    }
}

pub fn unknown_user() -> ApiError {
    ApiError::NotFound(Cow::Borrowed("no such user"))
}

pub fn blocked() -> ApiError {
    ApiError::Forbidden(Cow::Borrowed("not possible: one of you blocks the other"))
}

/// 404 unless the user exists.
pub async fn require_user(conn: &mut AsyncPgConnection, id: Uuid) -> ApiResult<()> {
    if db::account_exists(conn, id).await? {
        Ok(())
    } else {
        Err(unknown_user())
    }
}

/// Runs a write about the pair (caller, other) under the pair's lock: records the
/// caller's account if it is new here, refuses unknown or blocked targets, then runs
/// `work`. `work` decides what the write means and returns it.
pub async fn pair_write<T, F>(
    state: &RelationsState,
    caller: &Caller,
    other: Uuid,
    refuse_blocked: bool,
    work: F,
    notices: Notices<T>,
) -> ApiResult<T>
where
    T: Send + 'static,
    F: for<'r> Fn(&'r mut AsyncPgConnection, Uuid, Uuid) -> db_tx::Work<'r, T>
        + Copy
        + Send
        + Sync
        + 'static,
{
    let me = caller.user_id;
    let mut conn = state.conn().await?;
    let done = transaction_with_retry(&mut conn, |c| {
        // Owned: the transaction's future may outlive any borrow of the request.
        let actor = Actor {
            id: me,
            username: caller.username.clone(),
        };
        let notifier = state.notifier.clone();
        Box::pin(async move {
            db::ensure_account(c, me, &actor.username).await?;
            db::lock_pair(c, me, other).await?;
            match db::check_target(c, me, other).await? {
                Some(Refusal::Unknown) => return Ok(Err(unknown_user())),
                Some(Refusal::Blocked) if refuse_blocked => return Ok(Err(blocked())),
                _ => {}
            }
            let done = work(c, me, other).await?;
            if let Ok(value) = &done {
                for change in notices(value, &actor, other) {
                    notifier.tell(c, change).await?;
                }
            }
            Ok(done)
        })
    })
    .await?;
    state.notifier.wake();
    done
}

/// What the notifications service hears of a pair write: from its result, the caller
/// (the actor) and the other person.
pub type Notices<T> = fn(&T, &Actor, Uuid) -> Vec<Change>;

/// The future type of a [`pair_write`] step: an answer for the client (`Err` for a
/// refusal, which still commits nothing harmful) or a database error.
/// Ends a relation of the caller's with `other` (unfriend, unlike: idempotent) under the
/// pair's lock; `on_self` is the refusal when `other` is the caller.
pub async fn end_pair<F>(
    state: &RelationsState,
    caller: &Caller,
    other: Uuid,
    on_self: &'static str,
    end: F,
    notices: Notices<()>,
) -> ApiResult<actix_web::HttpResponse>
where
    F: for<'r> Fn(&'r mut AsyncPgConnection, Uuid, Uuid) -> agora_common::db::TxFuture<'r, ()>
        + Copy
        + Send
        + Sync
        + 'static,
{
    not_self(caller, other, on_self)?;
    let mut conn = state.conn().await?;
    require_user(&mut conn, other).await?;
    let me = caller.user_id;
    transaction_with_retry(&mut conn, |c| {
        let actor = Actor {
            id: me,
            username: caller.username.clone(),
        };
        let notifier = state.notifier.clone();
        Box::pin(async move {
            db::lock_pair(c, me, other).await?;
            end(c, me, other).await?;
            for change in notices(&(), &actor, other) {
                notifier.tell(c, change).await?;
            }
            Ok(())
        })
    })
    .await?;
    state.notifier.wake();
    Ok(actix_web::HttpResponse::NoContent().finish())
}

pub mod db_tx {
    use agora_common::ApiResult;
    use diesel::result::Error;
    /// A boxed transactional step.
    pub type Work<'r, T> = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<ApiResult<T>, Error>> + Send + 'r>,
    >;
}
