//! The one cross-service fact about accounts: the auth service tells every service that
//! keeps per-user rows (users, relations) that an account exists, through its outbox,
//! at least once, with `PUT /internal/accounts/{id}` (idempotent).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `PUT /internal/accounts/{id}`: an account exists. Usernames are immutable, so a
/// repeated delivery carries the same data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountCreated {
    /// The account's id (the `sub` of its tokens).
    pub id: Uuid,
    /// Its username (lowercase, immutable).
    pub username: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// The internal path an [`AccountCreated`] is delivered to.
pub fn account_path(id: Uuid) -> String {
    format!("/internal/accounts/{id}")
}

impl AccountCreated {
    /// A delivery to `/internal/accounts/{path_id}` must be about that account.
    pub fn check_path(&self, path_id: Uuid) -> Result<(), crate::problem::ApiError> {
        if self.id == path_id {
            Ok(())
        } else {
            Err(crate::problem::ApiError::invalid_field(
                "id",
                "must match the path",
            ))
        }
    }
}

/// A service that keeps per-user rows: what it records of a delivered account.
pub trait AccountStore: 'static {
    /// Records `account` (idempotent: deliveries come at least once).
    fn record(
        &self,
        account: &AccountCreated,
    ) -> impl std::future::Future<Output = crate::problem::ApiResult<()>>;
}

/// `PUT /internal/accounts/{id}` for any [`AccountStore`] (app data `web::Data<S>`);
/// the service credential is required.
pub async fn account_created<S: AccountStore>(
    store: actix_web::web::Data<S>,
    _service: crate::client::ServiceCaller,
    path: actix_web::web::Path<Uuid>,
    body: crate::extract::Json<AccountCreated>,
) -> crate::problem::ApiResult<actix_web::HttpResponse> {
    body.check_path(path.into_inner())?;
    store.record(&body).await?;
    Ok(actix_web::HttpResponse::NoContent().finish())
}

/// A service that holds anything of a person: what it erases when the account leaves.
/// The auth service's erasure saga calls `DELETE /internal/accounts/{id}` on each such
/// service until it answers 204, so an erasure must be idempotent (a second run finds
/// nothing), safe for a person who had nothing here, and transactional (a failure
/// leaves everything for the retry).
pub trait AccountEraser: 'static {
    /// Erases everything of `id` this service holds.
    fn erase(&self, id: Uuid) -> impl std::future::Future<Output = crate::problem::ApiResult<()>>;
}

/// `DELETE /internal/accounts/{id}` for any [`AccountEraser`] (app data `web::Data<S>`);
/// the service credential is required.
pub async fn account_erased<S: AccountEraser>(
    store: actix_web::web::Data<S>,
    _service: crate::client::ServiceCaller,
    path: actix_web::web::Path<Uuid>,
) -> crate::problem::ApiResult<actix_web::HttpResponse> {
    let id = path.into_inner();
    store.erase(id).await?;
    tracing::info!(user_id = %id, "account erased");
    Ok(actix_web::HttpResponse::NoContent().finish())
}

/// The internal path of one file of a person's export at a service:
/// `/internal/accounts/{id}/export/{file}`.
pub fn export_path(id: Uuid, file: &str) -> String {
    format!("/internal/accounts/{id}/export/{file}")
}

/// How many rows an export reads at a time.
pub const EXPORT_PAGE: i64 = 500;

/// A JSON array written page by page, so an export never holds a whole file: `page(after)`
/// returns the next rows after the key `after` (none: the first ones) and the key of its
/// last row; a short page ends the array.
pub fn json_array<T, K, F, Fut>(
    mut page: F,
) -> impl futures_util::Stream<Item = Result<actix_web::web::Bytes, crate::problem::ApiError>>
where
    T: Serialize,
    K: Clone,
    F: FnMut(Option<K>) -> Fut,
    Fut: std::future::Future<Output = crate::problem::ApiResult<(Vec<T>, Option<K>)>>,
{
    enum State<K> {
        Start,
        After(K),
        Closing,
        Done,
    }
    futures_util::stream::unfold(State::<K>::Start, move |state: State<K>| {
        let next = match &state {
            State::Start => Some(None),
            State::After(key) => Some(Some(key.clone())),
            State::Closing | State::Done => None,
        };
        let fetched = next.map(&mut page);
        async move {
            match (state, fetched) {
                (State::Done, _) => None,
                (State::Closing, _) => {
                    Some((Ok(actix_web::web::Bytes::from_static(b"]")), State::Done))
                }
                (state, Some(fetch)) => {
                    let first = matches!(state, State::Start);
                    let (rows, last) = match fetch.await {
                        Ok(page) => page,
                        Err(e) => return Some((Err(e), State::Done)),
                    };
                    let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= EXPORT_PAGE;
                    let mut out = Vec::with_capacity(rows.len() * 128 + 2);
                    if first {
                        out.push(b'[');
                    }
                    for (i, row) in rows.iter().enumerate() {
                        if !first || i > 0 {
                            out.push(b',');
                        }
                        if let Err(e) = serde_json::to_writer(&mut out, row) {
                            return Some((Err(crate::problem::ApiError::internal(e)), State::Done));
                        }
                    }
                    let next = match last {
                        Some(key) if full => State::After(key),
                        _ => State::Closing,
                    };
                    Some((Ok(actix_web::web::Bytes::from(out)), next))
                }
                (_, None) => None,
            }
        }
    })
}

/// A streamed `application/json` answer.
pub fn streamed_json(
    body: impl futures_util::Stream<Item = Result<actix_web::web::Bytes, crate::problem::ApiError>>
    + 'static,
) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type("application/json")
        .streaming(body)
}

#[cfg(feature = "db")]
/// One row of an export query: the key to continue after, and the item as JSON.
#[derive(Debug, diesel::QueryableByName)]
pub struct ExportRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    key: Uuid,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    item: serde_json::Value,
}

#[cfg(feature = "db")]
/// A file of a person's export streamed from `sql`, which takes `$1` the person, `$2`
/// the key to continue after (null: from the start) and `$3` the page size, and returns
/// `key uuid, item jsonb` rows in key order.
pub fn export_rows(
    pool: crate::db::DbPool,
    sql: &'static str,
    person: Uuid,
) -> actix_web::HttpResponse {
    streamed_json(json_array(move |after: Option<Uuid>| {
        let pool = pool.clone();
        async move {
            use diesel::sql_types::{BigInt, Nullable, Uuid as SqlUuid};
            use diesel_async::RunQueryDsl;
            let rows: Vec<ExportRow> = diesel::sql_query(sql)
                .bind::<SqlUuid, _>(person)
                .bind::<Nullable<SqlUuid>, _>(after)
                .bind::<BigInt, _>(EXPORT_PAGE)
                .load(&mut *crate::db::checkout(&pool).await?)
                .await?;
            let last = rows.last().map(|r| r.key);
            Ok((rows.into_iter().map(|r| r.item).collect::<Vec<_>>(), last))
        }
    }))
}

#[cfg(feature = "db")]
#[derive(diesel::QueryableByName)]
struct ExportObject {
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    item: serde_json::Value,
}

#[cfg(feature = "db")]
/// A file of a person's export that is one object, read whole (`sql` takes `$1` the
/// person and returns one `item jsonb`): for the small ones (a profile, the lists of
/// relations and events).
pub async fn export_object(
    pool: &crate::db::DbPool,
    sql: &'static str,
    person: Uuid,
) -> crate::problem::ApiResult<actix_web::HttpResponse> {
    use diesel_async::RunQueryDsl;
    let row: ExportObject = diesel::sql_query(sql)
        .bind::<diesel::sql_types::Uuid, _>(person)
        .get_result(&mut *crate::db::checkout(pool).await?)
        .await?;
    Ok(actix_web::HttpResponse::Ok().json(row.item))
}

/// An export file this service does not have.
pub fn no_such_export_file() -> crate::problem::ApiError {
    crate::problem::ApiError::NotFound(std::borrow::Cow::Borrowed("no such export file"))
}

/// One completed erasure in the erasure log kept beside the backups: the account and
/// when, nothing else. A restore re-applies those after its backup's start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasureRecord {
    pub account_id: Uuid,
    pub erased_at: DateTime<Utc>,
}

/// Where erasure records are kept under the log's location.
pub const ERASURES_PREFIX: &str = "erasures";

impl ErasureRecord {
    /// Its object's key: one object per erasure (writing it twice is harmless), named so
    /// that they list in time order.
    pub fn key(&self) -> String {
        format!(
            "{ERASURES_PREFIX}/{}-{}.json",
            self.erased_at.format("%Y%m%dT%H%M%S%.6fZ"),
            self.account_id
        )
    }
}

/// Erases an account straight in a service's database with `erase` (the service's own
/// erasure, in one transaction): what a restore runs for each logged erasure before the
/// platform serves.
#[cfg(feature = "db")]
pub async fn erase_offline<F>(database_url: &str, erase: F) -> Result<(), crate::db::DbError>
where
    F: for<'r> FnOnce(&'r mut diesel_async::AsyncPgConnection) -> crate::db::TxFuture<'r, ()>
        + Send,
{
    use diesel_async::AsyncConnection;
    let mut conn = diesel_async::AsyncPgConnection::establish(database_url)
        .await
        .map_err(|e| crate::db::DbError::Connect(e.into()))?;
    conn.transaction::<_, diesel::result::Error, _>(async |c| erase(c).await)
        .await
        .map_err(|e| crate::db::DbError::Query(e.into()))
}
