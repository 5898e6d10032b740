//! The job queue against a real PostgreSQL: the outbox is atomic with its transaction,
//! failed jobs come back later, and concurrent runners never run one job twice at once.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

use agora_common::db;
use agora_common::jobs::{self, JobError, JobHandler, JobRunner, Pass, RunnerSettings};
use agora_common::testing::fresh_database;
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Records every payload it runs; fails payloads marked `fail_first` on their first run.
#[derive(Default)]
struct Recorder {
    runs: Mutex<HashMap<String, usize>>,
}

impl JobHandler for Recorder {
    fn kind(&self) -> &'static str {
        "test.record"
    }
    fn run(&self, payload: Value) -> BoxFuture<'_, Result<(), JobError>> {
        Box::pin(async move {
            let name = payload["name"].as_str().unwrap().to_owned();
            let runs = {
                let mut runs = self.runs.lock().unwrap();
                let n = runs.entry(name).or_default();
                *n += 1;
                *n
            };
            tokio::time::sleep(Duration::from_millis(20)).await;
            if payload["fail_first"] == true && runs == 1 {
                return Err(JobError::new("first attempt fails"));
            }
            Ok(())
        })
    }
}

fn settings() -> RunnerSettings {
    RunnerSettings {
        base_backoff: Duration::ZERO,
        ..RunnerSettings::default()
    }
}

async fn setup(name: &str) -> db::DbPool {
    let url = fresh_database(name).await;
    jobs::migrate_jobs(&url).await.unwrap();
    db::pool(&url, 8).unwrap()
}

async fn pending(pool: &db::DbPool) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = pool.get().await.unwrap();
    diesel::sql_query("SELECT count(*) AS n FROM agora_jobs")
        .get_result::<Count>(&mut conn)
        .await
        .unwrap()
        .n
}

#[actix_web::test]
async fn jobs_exist_only_if_their_transaction_commits() {
    let pool = setup("outbox").await;
    let mut conn = pool.get().await.unwrap();
    let rolled_back = conn
        .transaction::<(), diesel::result::Error, _>(async |conn| {
            jobs::enqueue(conn, "test.record", &json!({"name": "lost"})).await?;
            Err(diesel::result::Error::RollbackTransaction)
        })
        .await;
    assert!(rolled_back.is_err());
    assert_eq!(pending(&pool).await, 0);
    conn.transaction::<(), diesel::result::Error, _>(async |conn| {
        jobs::enqueue(conn, "test.record", &json!({"name": "kept"})).await?;
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(pending(&pool).await, 1);
}

#[actix_web::test]
async fn failed_jobs_are_retried_and_done_jobs_deleted() {
    let pool = setup("retries").await;
    let recorder = Arc::new(Recorder::default());
    let runner = JobRunner::new(pool.clone(), vec![recorder.clone()], settings());
    let mut conn = pool.get().await.unwrap();
    jobs::enqueue(&mut conn, "test.record", &json!({"name": "ok"}))
        .await
        .unwrap();
    jobs::enqueue(
        &mut conn,
        "test.record",
        &json!({"name": "flaky", "fail_first": true}),
    )
    .await
    .unwrap();
    jobs::enqueue(&mut conn, "test.unknown", &json!({}))
        .await
        .unwrap();
    let first = runner.run_due().await.unwrap();
    assert_eq!(first, Pass { done: 1, failed: 1 });
    assert_eq!(pending(&pool).await, 2);
    // The failure is kept for diagnosis.
    #[derive(diesel::QueryableByName)]
    struct Failed {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        last_error: Option<String>,
    }
    let failed = diesel::sql_query("SELECT last_error FROM agora_jobs WHERE kind = 'test.record'")
        .get_result::<Failed>(&mut conn)
        .await
        .unwrap();
    assert!(failed.last_error.is_some_and(|e| !e.is_empty()));
    let second = runner.run_due().await.unwrap();
    assert_eq!(second, Pass { done: 1, failed: 0 }, "flaky succeeds");
    let runs = recorder.runs.lock().unwrap().clone();
    assert_eq!(runs.get("ok"), Some(&1));
    assert_eq!(runs.get("flaky"), Some(&2));
    // A kind this runner has no handler for is left to the runner that has one (several
    // runners share the table): never claimed, never failed, still queued (the backlog
    // gauges show it).
    #[derive(diesel::QueryableByName)]
    struct Left {
        #[diesel(sql_type = diesel::sql_types::Text)]
        kind: String,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        attempts: i32,
    }
    let left = diesel::sql_query("SELECT kind, attempts FROM agora_jobs")
        .load::<Left>(&mut conn)
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(
        (left[0].kind.as_str(), left[0].attempts),
        ("test.unknown", 0)
    );
}

#[actix_web::test]
async fn concurrent_runners_split_the_work() {
    let pool = setup("concurrent").await;
    let recorder = Arc::new(Recorder::default());
    let mut conn = pool.get().await.unwrap();
    for i in 0..40 {
        jobs::enqueue(
            &mut conn,
            "test.record",
            &json!({"name": format!("job{i}")}),
        )
        .await
        .unwrap();
    }
    let runners: Vec<JobRunner> = (0..4)
        .map(|_| {
            JobRunner::new(
                pool.clone(),
                vec![recorder.clone()],
                RunnerSettings {
                    batch: 5,
                    ..settings()
                },
            )
        })
        .collect();
    loop {
        let passes = futures_util::future::join_all(runners.iter().map(|r| r.run_due())).await;
        let done: usize = passes.into_iter().map(|p| p.unwrap().done).sum();
        if done == 0 {
            break;
        }
    }
    let runs = recorder.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 40);
    assert!(runs.values().all(|n| *n == 1), "{runs:?}");
    assert_eq!(pending(&pool).await, 0);
    // A lease that expired (its runner died) makes the job due again.
    jobs::enqueue(&mut conn, "test.record", &json!({"name": "orphan"}))
        .await
        .unwrap();
    conn.batch_execute(
        "UPDATE agora_jobs SET locked_until = now() - interval '1 second', attempts = 1",
    )
    .await
    .unwrap();
    assert_eq!(runners[0].run_due().await.unwrap().done, 1);
}

/// Never finishes in time.
struct Hangs;

impl JobHandler for Hangs {
    fn kind(&self) -> &'static str {
        "test.hang"
    }
    fn run(&self, _: Value) -> BoxFuture<'_, Result<(), JobError>> {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(())
        })
    }
}

#[actix_web::test]
async fn a_job_cannot_outlive_its_lease() {
    let pool = setup("lease").await;
    let runner = JobRunner::new(
        pool.clone(),
        vec![Arc::new(Hangs)],
        RunnerSettings {
            lease: Duration::from_millis(300),
            ..settings()
        },
    );
    let mut conn = pool.get().await.unwrap();
    jobs::enqueue(&mut conn, "test.hang", &json!({}))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let pass = runner.run_due().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(pass, Pass { done: 0, failed: 1 });
    // Still there, to be retried.
    assert_eq!(pending(&pool).await, 1);
}
