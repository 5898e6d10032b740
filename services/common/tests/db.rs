//! The kit's database layer against a real PostgreSQL (the throwaway cluster of
//! `hack/test.sh`): deadlines on every connection, failures classified once, retries
//! of serialization failures, idempotent database creation.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

use agora_common::ApiError;
use agora_common::db::{self, Deadlines, Failure};
use agora_common::testing::{fresh_database, server_url, unique_prefix};
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn short() -> Deadlines {
    Deadlines {
        statement: Duration::from_millis(300),
        lock: Duration::from_millis(200),
        idle_in_transaction: Duration::from_secs(5),
    }
}

#[actix_web::test]
async fn a_slow_statement_ends_at_its_deadline_as_a_503() {
    let pool = db::pool_with(&fresh_database("deadline").await, 2, short()).unwrap();
    let mut conn = pool.get().await.unwrap();
    let started = std::time::Instant::now();
    let err = diesel::sql_query("SELECT pg_sleep(10)")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(db::classify(&err), Failure::Timeout, "{err}");
    assert!(matches!(ApiError::from(err), ApiError::Unavailable(_)));
}

#[actix_web::test]
async fn a_lock_wait_ends_at_its_deadline() {
    let pool = db::pool_with(&fresh_database("locks").await, 2, short()).unwrap();
    let mut holder = pool.get().await.unwrap();
    holder
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    holder
        .batch_execute("BEGIN; SELECT * FROM t WHERE id = 1 FOR UPDATE")
        .await
        .unwrap();
    let mut waiter = pool.get().await.unwrap();
    let err = diesel::sql_query("UPDATE t SET id = 2 WHERE id = 1")
        .execute(&mut waiter)
        .await
        .unwrap_err();
    assert_eq!(db::classify(&err), Failure::Timeout, "{err}");
    holder.batch_execute("ROLLBACK").await.unwrap();
}

#[actix_web::test]
async fn serialization_failures_are_retried() {
    let pool = db::pool(&fresh_database("retry").await, 2).unwrap();
    let mut conn = pool.get().await.unwrap();
    let attempts = AtomicUsize::new(0);
    let answer = db::transaction_with_retry(&mut conn, |conn| {
        let attempt = attempts.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            if attempt == 0 {
                conn.batch_execute(
                    "DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$",
                )
                .await?;
            }
            Ok(attempt)
        })
    })
    .await
    .unwrap();
    assert_eq!(answer, 1);
    assert_eq!(AtomicUsize::load(&attempts, Ordering::SeqCst), 2);
    // Other failures are not retried.
    let tries = AtomicUsize::new(0);
    let err = db::transaction_with_retry(&mut conn, |conn| {
        tries.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            conn.batch_execute("SELECT * FROM no_such_table").await?;
            Ok(())
        })
    })
    .await
    .unwrap_err();
    assert_eq!(AtomicUsize::load(&tries, Ordering::SeqCst), 1);
    assert_eq!(db::classify(&err), Failure::Other);
}

/// Table `t` holds exactly one row (a retried attempt's row was not committed twice).
async fn assert_one_row(conn: &mut diesel_async::AsyncPgConnection) {
    conn.batch_execute(
        "DO $$ BEGIN IF (SELECT count(*) FROM t) <> 1 THEN \
         RAISE EXCEPTION 'rows: %', (SELECT count(*) FROM t); END IF; END $$",
    )
    .await
    .unwrap();
}

#[actix_web::test]
async fn a_transaction_whose_session_ends_midway_runs_once_more_on_a_new_one() {
    let pool = db::pool(&fresh_database("session_end").await, 2).unwrap();
    let mut conn = pool.get().await.unwrap();
    conn.batch_execute("CREATE TABLE t (n int)").await.unwrap();
    let attempts = AtomicUsize::new(0);
    let answer = db::transaction_on(&pool, |conn| {
        let attempt = attempts.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            conn.batch_execute("INSERT INTO t VALUES (1)").await?;
            if attempt == 0 {
                // What a fast shutdown (a switchover's former primary) does to every
                // session: 57P01.
                conn.batch_execute("SELECT pg_terminate_backend(pg_backend_pid())")
                    .await?;
            }
            Ok(attempt)
        })
    })
    .await
    .unwrap();
    assert_eq!(answer, 1);
    assert_eq!(AtomicUsize::load(&attempts, Ordering::SeqCst), 2);
    // The first attempt's row was not committed: one row.
    assert_one_row(&mut conn).await;
    // Once more only: a session that ends again is a 503.
    let tries = AtomicUsize::new(0);
    let err = db::transaction_on(&pool, |conn| {
        tries.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            conn.batch_execute("SELECT pg_terminate_backend(pg_backend_pid())")
                .await?;
            Ok(())
        })
    })
    .await
    .unwrap_err();
    assert_eq!(AtomicUsize::load(&tries, Ordering::SeqCst), 2);
    assert!(matches!(err, ApiError::Unavailable(_)), "{err:?}");
    // Other failures are not tried again.
    let tries = AtomicUsize::new(0);
    let err = db::transaction_on(&pool, |conn| {
        tries.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            conn.batch_execute("SELECT * FROM no_such_table").await?;
            Ok(())
        })
    })
    .await
    .unwrap_err();
    assert_eq!(AtomicUsize::load(&tries, Ordering::SeqCst), 1);
    assert!(!matches!(err, ApiError::Unavailable(_)), "{err:?}");
}

#[actix_web::test]
async fn a_transaction_whose_commit_is_cut_runs_again_when_it_did_not_commit() {
    let pool = db::pool(&fresh_database("commit_cut").await, 2).unwrap();
    let mut conn = pool.get().await.unwrap();
    // A deferred constraint trigger runs inside the COMMIT: the first one ends its own
    // session there (a sequence is not rolled back), before the commit is recorded.
    conn.batch_execute(
        "CREATE TABLE t (n int); CREATE SEQUENCE cuts; \
         CREATE FUNCTION cut() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           IF nextval('cuts') = 1 THEN PERFORM pg_terminate_backend(pg_backend_pid()); \
           PERFORM pg_sleep(5); END IF; RETURN NULL; END $$; \
         CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT ON t DEFERRABLE INITIALLY DEFERRED \
           FOR EACH ROW EXECUTE FUNCTION cut()",
    )
    .await
    .unwrap();
    let attempts = AtomicUsize::new(0);
    let answer = db::transaction_on(&pool, |conn| {
        let attempt = attempts.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            conn.batch_execute("INSERT INTO t VALUES (1)").await?;
            Ok(attempt)
        })
    })
    .await
    .unwrap();
    assert_eq!(answer, 1, "the second attempt's result");
    assert_one_row(&mut conn).await;
}

#[actix_web::test]
async fn creating_one_database_concurrently_is_harmless() {
    let name = unique_prefix("concurrent");
    let server = server_url();
    let runs = (0..6).map(|_| db::ensure_database(&server, &name));
    for outcome in futures_util::future::join_all(runs).await {
        assert!(outcome.is_ok(), "{outcome:?}");
    }
}

#[actix_web::test]
async fn a_session_the_server_terminates_is_a_503_not_a_500() {
    // What a switchover's former primary does to open sessions (a fast shutdown).
    let url = fresh_database("terminated").await;
    let pool = db::pool(&url, 2).unwrap();
    let mut victim = pool.get().await.unwrap();
    #[derive(diesel::QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    let pid: Pid = diesel::sql_query("SELECT pg_backend_pid() AS pid")
        .get_result(&mut victim)
        .await
        .unwrap();
    let mut other = pool.get().await.unwrap();
    diesel::sql_query(format!("SELECT pg_terminate_backend({})", pid.pid))
        .execute(&mut other)
        .await
        .unwrap();
    let err = diesel::sql_query("SELECT 1")
        .execute(&mut victim)
        .await
        .unwrap_err();
    assert_eq!(db::classify(&err), Failure::Unavailable, "{err}");
    assert!(matches!(ApiError::from(err), ApiError::Unavailable(_)));
}

#[actix_web::test]
async fn a_checkout_waits_out_the_seconds_without_a_primary() {
    // The read-write address refuses connections (no primary yet), then forwards to the
    // server 1.5 s later, as a promoted replica behind the same Service would.
    let url = fresh_database("failover").await;
    let parsed = reqwest::Url::parse(&url).unwrap();
    let server = format!(
        "{}:{}",
        parsed.host_str().unwrap(),
        parsed.port().unwrap_or(5432)
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut through = parsed.clone();
    through.set_port(Some(port)).unwrap();
    let pool = db::pool(through.as_str(), 2).unwrap();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            let server = server.clone();
            tokio::spawn(async move {
                let mut upstream = tokio::net::TcpStream::connect(server).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    let started = std::time::Instant::now();
    let mut conn = db::checkout(&pool).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1400));
    assert!(started.elapsed() < db::FAILOVER_WAIT);
    diesel::sql_query("SELECT 1")
        .execute(&mut conn)
        .await
        .unwrap();
}

#[actix_web::test]
async fn a_checkout_gives_up_after_the_failover_wait() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let pool = db::pool(&format!("postgres://nobody@127.0.0.1:{port}/none"), 1).unwrap();
    let started = std::time::Instant::now();
    let err = db::checkout(&pool).await.err().unwrap();
    assert!(started.elapsed() >= db::FAILOVER_WAIT - Duration::from_secs(2));
    assert!(matches!(ApiError::from(err), ApiError::Unavailable(_)));
}
