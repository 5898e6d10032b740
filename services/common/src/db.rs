//! PostgreSQL access: a `diesel-async` connection pool and embedded migrations that
//! run at start-up under an advisory lock, so replicas starting together take turns.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};
use std::time::Duration;
use tracing::Instrument;

/// The pool every service uses.
pub type DbPool = Pool<AsyncPgConnection>;
/// A connection checked out of the pool.
pub type DbConn = diesel_async::pooled_connection::deadpool::Object<AsyncPgConnection>;
/// Failure to check out a connection.
pub type PoolError = diesel_async::pooled_connection::deadpool::PoolError;

/// Start-up database failures.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The pool could not be built.
    #[error("cannot build the database pool")]
    Pool(#[source] BoxError),
    /// Connecting (or creating a database) failed.
    #[error("cannot connect to the database")]
    Connect(#[source] BoxError),
    /// A migration failed.
    #[error("database migration failed")]
    Migration(#[source] BoxError),
    /// A statement of a one-off task (not a request's) failed.
    #[error("a database statement failed")]
    Query(#[source] BoxError),
}

/// Any error, kept as the source of a [`DbError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Deadlines every connection of a pool gets, so no query or lock wait can hold a
/// worker (and a connection) forever.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// `statement_timeout`: the longest any one statement may run.
    pub statement: Duration,
    /// `lock_timeout`: the longest a statement may wait for a lock.
    pub lock: Duration,
    /// `idle_in_transaction_session_timeout`: a transaction left open by a dropped
    /// request is ended by the server.
    pub idle_in_transaction: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            statement: Duration::from_secs(5),
            lock: Duration::from_secs(2),
            idle_in_transaction: Duration::from_secs(30),
        }
    }
}

/// Builds a pool of at most `max_size` connections with the default [`Deadlines`].
/// Connections are opened lazily.
pub fn pool(database_url: &str, max_size: usize) -> Result<DbPool, DbError> {
    pool_with(database_url, max_size, Deadlines::default())
}

/// Builds a pool whose connections run with `deadlines`.
pub fn pool_with(
    database_url: &str,
    max_size: usize,
    deadlines: Deadlines,
) -> Result<DbPool, DbError> {
    crate::telemetry::queries::install();
    let settings = format!(
        "SET statement_timeout = {}; SET lock_timeout = {}; \
         SET idle_in_transaction_session_timeout = {}",
        deadlines.statement.as_millis(),
        deadlines.lock.as_millis(),
        deadlines.idle_in_transaction.as_millis()
    );
    let mut config = ManagerConfig::default();
    // A connection back from the pool is checked without a round trip: an open
    // transaction or a closed socket (the server went away; tokio-postgres notices
    // the end of the stream) discards it. The default `SELECT 1` per checkout was a
    // quarter of the feed's round trips; readiness (`ping`) still asks the server.
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |url| {
        let settings = settings.clone();
        Box::pin(async move {
            use diesel_async::{AsyncConnection, SimpleAsyncConnection};
            let mut conn = AsyncPgConnection::establish(url).await?;
            conn.batch_execute(&settings)
                .await
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        })
    });
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(database_url, config);
    Pool::builder(manager)
        .max_size(max_size)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| DbError::Pool(e.into()))
}

/// How long a checkout keeps trying to open a connection the server refuses or does
/// not answer: the seconds a replicated database (CloudNativePG) has no primary during
/// a failover or switchover. Nothing was sent, so waiting is always safe; past it the
/// request gets a 503.
pub const FAILOVER_WAIT: Duration = Duration::from_secs(15);

/// A connection from `pool`; the wait is timed (`agora_db_pool_wait_seconds`) and,
/// when traced, a span of its own. A connection that cannot be opened is tried again
/// for up to [`FAILOVER_WAIT`].
pub async fn checkout(pool: &DbPool) -> Result<DbConn, PoolError> {
    let started = std::time::Instant::now();
    let conn = if crate::telemetry::current_sampled() {
        checkout_through_failover(pool, started)
            .instrument(tracing::info_span!(
                "db.pool.wait",
                db.system.name = "postgresql"
            ))
            .await
    } else {
        checkout_through_failover(pool, started).await
    };
    let kit = crate::metrics::kit();
    kit.pool_wait.observe(started.elapsed().as_secs_f64());
    if conn.is_err() {
        kit.db_errors
            .get_or_create(&crate::metrics::ErrorLabels { kind: "pool" })
            .inc();
    }
    conn
}

async fn checkout_through_failover(
    pool: &DbPool,
    started: std::time::Instant,
) -> Result<DbConn, PoolError> {
    use deadpool::managed::TimeoutType;
    let mut pause = Duration::from_millis(100);
    loop {
        match pool.get().await {
            // Refused (no primary behind the read-write Service yet) or unanswered.
            Err(PoolError::Backend(_) | PoolError::Timeout(TimeoutType::Create))
                if started.elapsed() + pause < FAILOVER_WAIT =>
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

/// What a failed query means for the request that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No row where one was required.
    NotFound,
    /// A unique constraint (the constraint's name is in the error).
    Unique,
    /// A foreign key: the row refers to something missing, or is still referred to.
    ForeignKey,
    /// A serialization failure or deadlock: the transaction may simply be retried.
    Retryable,
    /// The statement or a lock wait ran past its deadline.
    Timeout,
    /// The connection is gone.
    Unavailable,
    /// Anything else: a bug.
    Other,
}

/// Classifies a diesel error once, for every service.
pub fn classify(err: &DieselError) -> Failure {
    match err {
        DieselError::NotFound => Failure::NotFound,
        DieselError::DatabaseError(kind, info) => match kind {
            DatabaseErrorKind::UniqueViolation => Failure::Unique,
            DatabaseErrorKind::ForeignKeyViolation => Failure::ForeignKey,
            DatabaseErrorKind::SerializationFailure => Failure::Retryable,
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand => {
                Failure::Unavailable
            }
            // diesel-async keeps no SQLSTATE for these; PostgreSQL's (English) messages
            // are stable: 57014 statement timeout, 55P03 lock timeout, 40P01 deadlock.
            _ => {
                let message = info.message();
                if message.contains("statement timeout") || message.contains("lock timeout") {
                    Failure::Timeout
                } else if message.contains("deadlock detected") {
                    Failure::Retryable
                } else if message.starts_with("terminating connection")
                    || message.contains("the database system is")
                    || message.contains("read-only transaction")
                {
                    // 57P01 (a fast shutdown: a switchover's former primary), 57P03
                    // (starting up, shutting down, in recovery), 25006 (a write reached
                    // a server that is a replica now): the primary is changing.
                    Failure::Unavailable
                } else {
                    Failure::Other
                }
            }
        },
        DieselError::BrokenTransactionManager => Failure::Unavailable,
        _ => Failure::Other,
    }
}

/// A unit of transactional work for [`transaction_with_retry`]: a closure from the
/// connection to a boxed future (`|conn| Box::pin(async move { … })`).
pub type TxFuture<'r, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, DieselError>> + Send + 'r>>;

/// Runs `work` in a transaction, retrying it (up to three more times, with a short
/// jittered pause) when PostgreSQL reports a serialization failure or a deadlock.
pub async fn transaction_with_retry<T, F>(
    conn: &mut AsyncPgConnection,
    mut work: F,
) -> Result<T, DieselError>
where
    T: Send,
    F: for<'r> FnMut(&'r mut AsyncPgConnection) -> TxFuture<'r, T> + Send,
{
    use diesel_async::AsyncConnection;
    let mut attempt = 0u32;
    loop {
        let outcome = conn
            .transaction::<T, DieselError, _>(async |conn| work(conn).await)
            .await;
        match outcome {
            Err(err) if attempt < 3 && classify(&err) == Failure::Retryable => {
                attempt += 1;
                conflict_pause(attempt).await;
            }
            other => return other,
        }
    }
}

/// The short, jittered pause before a transaction that conflicted runs again.
async fn conflict_pause(attempt: u32) {
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 20);
    tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt) + jitter)).await;
}

/// Runs `work` in a transaction on a connection from `pool`, retried as
/// [`transaction_with_retry`] retries, and through a change of primary (a CloudNativePG
/// switchover or failover): when the session ends while `work` runs (the former
/// primary's fast shutdown terminating it, the connection lost), nothing of it was
/// committed and it runs once more on a new connection, whose checkout waits for the new
/// primary ([`FAILOVER_WAIT`]). When the COMMIT itself is cut (a commit waiting for its
/// synchronous standby when the primary stops), the server behind the pool then (the new
/// primary) is asked whether the transaction committed (`pg_xact_status`): committed, its
/// result stands; not there, it runs once more.
pub async fn transaction_on<T, F>(pool: &DbPool, mut work: F) -> Result<T, crate::ApiError>
where
    T: Send + 'static,
    F: for<'r> FnMut(&'r mut AsyncPgConnection) -> TxFuture<'r, T> + Send,
{
    let mut new_session_left = true;
    let mut conflicts = 0u32;
    loop {
        let mut conn = checkout(pool).await?;
        let (err, cut_commit) = match run_once(&mut conn, &mut work).await {
            Ok(value) => return Ok(value),
            Err(cut) => cut,
        };
        let failure = classify(&err);
        if failure == Failure::Retryable && cut_commit.is_none() && conflicts < 3 {
            conflicts += 1;
            conflict_pause(conflicts).await;
            continue;
        }
        if failure != Failure::Unavailable || !new_session_left {
            return Err(err.into());
        }
        new_session_left = false;
        // Not back into the pool: its session is gone.
        drop(DbConn::take(conn));
        if let Some((xid, value)) = cut_commit {
            match committed(pool, &xid).await? {
                Some(true) => return Ok(value),
                Some(false) => {}
                None => return Err(err.into()),
            }
        }
        tracing::warn!(error = %err, "the database session ended before its transaction committed; once more on a new one");
    }
}

/// The error, and for a cut COMMIT the transaction's id (none when it wrote nothing)
/// and what `work` returned.
type Cut<T> = (DieselError, Option<(String, T)>);

async fn run_once<T, F>(conn: &mut AsyncPgConnection, work: &mut F) -> Result<T, Cut<T>>
where
    F: for<'r> FnMut(&'r mut AsyncPgConnection) -> TxFuture<'r, T> + Send,
{
    use diesel::dsl::sql;
    use diesel::sql_types::{Nullable, Text};
    use diesel_async::{AnsiTransactionManager, RunQueryDsl, TransactionManager};
    AnsiTransactionManager::begin_transaction(conn)
        .await
        .map_err(|e| (e, None))?;
    let body = async {
        let value = work(&mut *conn).await?;
        // Only a transaction that wrote has an id (asking would give a read one).
        let xid: Option<String> = diesel::select(sql::<Nullable<Text>>(
            "pg_current_xact_id_if_assigned()::text",
        ))
        .get_result(&mut *conn)
        .await?;
        Ok::<_, DieselError>((value, xid))
    }
    .await;
    match body {
        Ok((value, xid)) => match AnsiTransactionManager::commit_transaction(conn).await {
            Ok(()) => Ok(value),
            // Nothing written: as if cut before the COMMIT.
            Err(err) => Err((err, xid.map(|xid| (xid, value)))),
        },
        Err(err) => {
            // Best effort: a session that is gone rolled it back already.
            let _ = AnsiTransactionManager::rollback_transaction(conn).await;
            Err((err, None))
        }
    }
}

/// Whether transaction `xid` committed, as the server behind `pool` now knows it:
/// `Some(false)` when it aborted or never reached that server (an id "in the future"),
/// `None` when that cannot be told.
async fn committed(pool: &DbPool, xid: &str) -> Result<Option<bool>, crate::ApiError> {
    use diesel::dsl::sql;
    use diesel::sql_types::{Nullable, Text};
    use diesel_async::RunQueryDsl;
    let mut conn = checkout(pool).await?;
    let status = diesel::select(
        sql::<Nullable<Text>>("pg_xact_status(")
            .bind::<Text, _>(xid)
            .sql("::xid8)"),
    )
    .get_result::<Option<String>>(&mut conn)
    .await;
    Ok(match status {
        Ok(Some(s)) if s == "committed" => Some(true),
        Ok(Some(s)) if s == "aborted" => Some(false),
        Err(DieselError::DatabaseError(_, info)) if info.message().contains("in the future") => {
            Some(false)
        }
        _ => None,
    })
}

/// An advisory lock key for a name (a service's migrations, a periodic job): a stable
/// hash of the name.
pub fn advisory_lock_key(service: &str) -> i64 {
    // FNV-1a: stable across builds and platforms, unlike `DefaultHasher`.
    let hash = service.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// How long a starting service waits for its database to take its connection. On a
/// fresh platform the server, then the database and role the service logs in as (made
/// by the provisioning Job), appear after the services start; exiting instead would
/// put every pod into crash-loop back-off.
pub const DATABASE_WAIT: Duration = Duration::from_secs(180);

/// What every service does with its database at start-up: run its migrations (under
/// the advisory lock of its name) once the database takes connections (waiting up to
/// [`DATABASE_WAIT`]), then open the pool.
pub async fn prepare(
    database_url: &str,
    migrations: EmbeddedMigrations,
    service: &str,
    pool_size: usize,
) -> Result<DbPool, DbError> {
    wait_until_reachable(database_url, DATABASE_WAIT).await?;
    migrate(database_url, migrations, advisory_lock_key(service)).await?;
    pool(database_url, pool_size)
}

/// Returns once a connection to `database_url` succeeds, retrying with a growing pause
/// (up to 4 s) for up to `wait`; then the last failure is the error.
pub async fn wait_until_reachable(database_url: &str, wait: Duration) -> Result<(), DbError> {
    use diesel_async::AsyncConnection;
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(250);
    loop {
        // A server that drops packets would hold a connect forever (no default timeout).
        let reason: BoxError = match tokio::time::timeout(
            Duration::from_secs(5),
            AsyncPgConnection::establish(database_url),
        )
        .await
        {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(err)) => err.into(),
            Err(_) => "connecting timed out".into(),
        };
        if started.elapsed() + pause >= wait {
            return Err(DbError::Connect(reason));
        }
        // The reason names the server and the role, never the password.
        tracing::warn!(%reason, retry_in_ms = pause.as_millis(), "waiting for the database");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(4));
    }
}

/// Runs pending migrations while holding `pg_advisory_lock(lock_key)`.
///
/// Diesel's migration harness is synchronous; it runs on its own thread through
/// diesel-async's connection wrapper so no async worker is blocked.
pub async fn migrate(
    database_url: &str,
    migrations: EmbeddedMigrations,
    lock_key: i64,
) -> Result<usize, DbError> {
    let url = database_url.to_owned();
    on_own_thread(move || migrate_blocking(&url, migrations, lock_key))
        .await
        .map_err(|e| DbError::Migration(e.into()))?
}

/// Runs blocking diesel work on a dedicated thread. A plain thread, not
/// `spawn_blocking`: the connection wrapper then builds its own small runtime and
/// never depends on the caller's (possibly single-threaded) one.
async fn on_own_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("db-blocking".into())
        .spawn(move || {
            let _ = tx.send(work());
        })
        .map_err(|e| e.to_string())?;
    rx.await.map_err(|_| "database thread died".to_owned())
}

/// Replaces the database name of a PostgreSQL URL (`postgres://u@h:5432/x?…`).
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

/// Creates database `name` on the server of `server_url` unless it exists; returns its URL.
/// `name` must be a plain identifier (`[a-z0-9_]`), which callers control.
pub async fn ensure_database(server_url: &str, name: &str) -> Result<String, DbError> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(DbError::Connect(
            format!("refusing database name {name:?}").into(),
        ));
    }
    let admin = with_database(server_url, "postgres");
    let db = name.to_owned();
    on_own_thread(move || {
        use diesel::{Connection, RunQueryDsl};
        type Wrapper =
            diesel_async::async_connection_wrapper::AsyncConnectionWrapper<AsyncPgConnection>;
        let mut conn = Wrapper::establish(&admin).map_err(|e| DbError::Connect(e.into()))?;
        #[derive(diesel::QueryableByName)]
        struct Found {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            found: bool,
        }
        let exists = diesel::sql_query(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS found",
        )
        .bind::<diesel::sql_types::Text, _>(&db)
        .get_result::<Found>(&mut conn)
        .map_err(|e| DbError::Connect(e.into()))?;
        if !exists.found {
            match diesel::sql_query(format!("CREATE DATABASE \"{db}\"")).execute(&mut conn) {
                Ok(_) => {}
                // Another process created it in between (23505 on the catalog, or
                // 42P04 duplicate_database): that is what we wanted.
                Err(e) if unique_violation(&e).is_some() || already_exists(&e) => {}
                Err(e) => return Err(DbError::Connect(e.into())),
            }
        }
        Ok(())
    })
    .await
    .map_err(|e| DbError::Connect(e.into()))??;
    Ok(with_database(server_url, name))
}

fn migrate_blocking(
    url: &str,
    migrations: EmbeddedMigrations,
    lock_key: i64,
) -> Result<usize, DbError> {
    use diesel::{Connection, RunQueryDsl};
    type Wrapper =
        diesel_async::async_connection_wrapper::AsyncConnectionWrapper<AsyncPgConnection>;
    let mut conn = Wrapper::establish(url).map_err(|e| DbError::Connect(e.into()))?;
    diesel::sql_query(format!("SELECT pg_advisory_lock({lock_key})"))
        .execute(&mut conn)
        .map_err(|e| DbError::Migration(e.into()))?;
    let result = conn
        .run_pending_migrations(migrations)
        .map(|applied| applied.len())
        .map_err(DbError::Migration);
    // The lock also ends with the session; unlocking explicitly frees it sooner.
    let _ = diesel::sql_query(format!("SELECT pg_advisory_unlock({lock_key})")).execute(&mut conn);
    result
}

/// Which unique constraint a failed insert violated, if that is what failed.
pub fn unique_violation(err: &DieselError) -> Option<&str> {
    match err {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            Some(info.constraint_name().unwrap_or(""))
        }
        _ => None,
    }
}

/// Whether a `CREATE` failed because the object already exists (42P04, 42P07).
fn already_exists(err: &DieselError) -> bool {
    matches!(err, DieselError::DatabaseError(_, info) if info.message().contains("already exists"))
}

/// Whether the error is a foreign-key violation.
pub fn foreign_key_violation(err: &DieselError) -> bool {
    matches!(
        err,
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)
    )
}

/// Checks the database answers (readiness).
pub async fn ping(pool: &DbPool) -> Result<(), String> {
    use diesel_async::RunQueryDsl;
    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
    diesel::sql_query("SELECT 1")
        .execute(&mut conn)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database() {
        assert_eq!(
            with_database("postgres://u@h:5/postgres", "x"),
            "postgres://u@h:5/x"
        );
        assert_eq!(with_database("postgres://u@h:5", "x"), "postgres://u@h:5/x");
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
    }

    #[test]
    fn lock_keys_are_stable_and_distinct() {
        assert_eq!(advisory_lock_key("auth"), advisory_lock_key("auth"));
        assert_ne!(advisory_lock_key("auth"), advisory_lock_key("users"));
    }
}
