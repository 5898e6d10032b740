//! A job queue on PostgreSQL, for cross-service effects that must not be lost (a
//! profile for every new account): the transactional outbox pattern.
//!
//! A producer calls [`enqueue`] inside the transaction of the change the job belongs
//! to, so the job exists if and only if the change was committed. A [`JobRunner`] in
//! every replica claims due jobs with `FOR UPDATE SKIP LOCKED` under a lease, runs
//! their handler, deletes them on success and reschedules them with exponential
//! backoff on failure. Delivery is at least once (a replica dying mid-job leaves the
//! lease to expire), so handlers must be idempotent.
//!
//! The table comes with the kit's own migrations ([`MIGRATIONS`]); a service that uses
//! jobs runs them beside its own.

use crate::db::{DbPool, advisory_lock_key, migrate};
use crate::schema::agora_jobs;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The kit's migrations (the `agora_jobs` table).
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Runs the kit's migrations on a service's database (under their own advisory lock).
pub async fn migrate_jobs(database_url: &str) -> Result<usize, crate::db::DbError> {
    migrate(database_url, MIGRATIONS, advisory_lock_key("agora_jobs")).await
}

/// Adds a job; call it in the transaction of the change it belongs to.
pub async fn enqueue(
    conn: &mut AsyncPgConnection,
    kind: &str,
    payload: &serde_json::Value,
) -> Result<Uuid, DieselError> {
    let id = Uuid::now_v7();
    diesel::insert_into(agora_jobs::table)
        .values((
            agora_jobs::id.eq(id),
            agora_jobs::kind.eq(kind),
            agora_jobs::payload.eq(payload),
            agora_jobs::trace_context.eq(crate::telemetry::propagation::current_traceparent()),
        ))
        .execute(conn)
        .await?;
    Ok(id)
}

/// Why a job failed; it will be retried.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JobError(pub Box<dyn std::error::Error + Send + Sync>);

impl JobError {
    /// A job error from anything error-like.
    pub fn new(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(err.into())
    }
}

/// Runs the jobs of one kind. Must be idempotent: a job may run more than once.
pub trait JobHandler: Send + Sync {
    /// The job kind it handles (`profile.create`, …).
    fn kind(&self) -> &'static str;
    /// Does the work.
    fn run(&self, payload: serde_json::Value) -> BoxFuture<'_, Result<(), JobError>>;
}

/// Delivers jobs of one kind to another service: the payload is the body of a `PUT`
/// or `POST` to a path made from it (the other side must be idempotent). A delivery
/// does not retry itself: the runner retries with backoff.
pub struct Deliver {
    kind: &'static str,
    client: crate::client::ServiceClient,
    method: reqwest::Method,
    path: fn(&serde_json::Value) -> Option<String>,
}

impl Deliver {
    /// `POST`s jobs of `kind` to `client` at the path `path` makes of the payload.
    pub fn new(
        kind: &'static str,
        client: crate::client::ServiceClient,
        path: fn(&serde_json::Value) -> Option<String>,
    ) -> Self {
        Self {
            kind,
            client: client.without_retries(),
            method: reqwest::Method::POST,
            path,
        }
    }

    /// Delivers with `PUT` instead.
    pub fn with_put(mut self) -> Self {
        self.method = reqwest::Method::PUT;
        self
    }
}

impl JobHandler for Deliver {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn run(&self, payload: serde_json::Value) -> BoxFuture<'_, Result<(), JobError>> {
        Box::pin(async move {
            let path = (self.path)(&payload)
                .ok_or_else(|| JobError::new(format!("a {} job without its target", self.kind)))?;
            self.client
                .send::<_, serde_json::Value>(
                    self.method.clone(),
                    &path,
                    Some(&payload),
                    crate::client::Credential::Service,
                    None,
                )
                .await
                .map(|_| ())
                .map_err(JobError::new)
        })
    }
}

/// Settings of a [`JobRunner`].
#[derive(Debug, Clone, Copy)]
pub struct RunnerSettings {
    /// How often to look for due jobs when idle.
    pub poll: Duration,
    /// How long a claimed job is reserved for its runner.
    pub lease: Duration,
    /// Jobs claimed at once. They run concurrently, each within most of the lease, so
    /// a hung handler cannot outlive the lease and run twice.
    pub batch: i64,
    /// First retry delay, doubled per attempt (with jitter), capped at `max_backoff`.
    pub base_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
}

impl Default for RunnerSettings {
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(500),
            lease: Duration::from_secs(60),
            batch: 16,
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(3600),
        }
    }
}

/// Claims and runs due jobs.
#[derive(Clone)]
pub struct JobRunner {
    pool: DbPool,
    handlers: Arc<HashMap<&'static str, Arc<dyn JobHandler>>>,
    settings: RunnerSettings,
    /// Ends the idle wait early ([`JobRunner::wake`]).
    wake: Arc<tokio::sync::Notify>,
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Jobs that succeeded (and were deleted).
    pub done: usize,
    /// Jobs that failed (and were rescheduled).
    pub failed: usize,
}

impl JobRunner {
    /// A runner over `pool` with these handlers.
    pub fn new(pool: DbPool, handlers: Vec<Arc<dyn JobHandler>>, settings: RunnerSettings) -> Self {
        let handlers = handlers.into_iter().map(|h| (h.kind(), h)).collect();
        Self {
            pool,
            handlers: Arc::new(handlers),
            settings,
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Runs a pass now instead of at the next poll (a producer that just committed
    /// jobs; calling it before the commit only wastes a pass).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs passes forever (until the task is dropped), sleeping when idle, as
    /// `service` (its spans and metrics); measures the backlog every 15 seconds.
    pub fn spawn(self, service: &'static str) -> tokio::task::JoinHandle<()> {
        tokio::spawn(crate::telemetry::in_service(service, async move {
            let mut measured: Option<std::time::Instant> = None;
            loop {
                if measured.is_none_or(|at| at.elapsed() >= Duration::from_secs(15)) {
                    measured = Some(std::time::Instant::now());
                    if let Err(err) = self.measure_backlog().await {
                        tracing::warn!(error = %err, "cannot measure the job backlog");
                    }
                }
                match self.run_due().await {
                    Ok(pass) if pass.done + pass.failed > 0 => continue,
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "job pass failed"),
                }
                tokio::select! {
                    () = tokio::time::sleep(self.settings.poll) => {}
                    () = self.wake.notified() => {}
                }
            }
        }))
    }

    /// Sets `agora_outbox_jobs` and `agora_outbox_oldest_job_age_seconds` for every
    /// kind this runner handles (zero when none is queued).
    pub async fn measure_backlog(&self) -> Result<(), DieselError> {
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| DieselError::QueryBuilderError(e.into()))?;
        let rows: Vec<Backlog> = diesel::sql_query(
            "SELECT kind, count(*) AS jobs, \
             COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 AS oldest \
             FROM agora_jobs GROUP BY kind",
        )
        .load(&mut conn)
        .await?;
        let kit = crate::metrics::kit();
        let known = self.handlers.keys().map(|k| (*k).to_owned());
        for kind in known.chain(rows.iter().map(|r| r.kind.clone())) {
            let row = rows.iter().find(|r| r.kind == kind);
            let labels = crate::metrics::JobLabels { kind };
            kit.outbox_jobs
                .get_or_create(&labels)
                .set(row.map_or(0, |r| r.jobs));
            kit.outbox_oldest
                .get_or_create(&labels)
                .set(row.map_or(0.0, |r| r.oldest));
        }
        Ok(())
    }

    /// Claims one batch of due jobs and runs them.
    pub async fn run_due(&self) -> Result<Pass, DieselError> {
        self.claim_and_run(None).await
    }

    /// Runs these jobs now, if no runner holds them (a producer delivering right after
    /// its commit, so the effect is usually visible before it answers; what fails here
    /// stays queued and is retried by the background runner).
    pub async fn run_now(&self, ids: &[Uuid]) -> Result<Pass, DieselError> {
        if ids.is_empty() {
            return Ok(Pass::default());
        }
        self.claim_and_run(Some(ids)).await
    }

    async fn claim_and_run(&self, only: Option<&[Uuid]>) -> Result<Pass, DieselError> {
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| DieselError::QueryBuilderError(e.into()))?;
        let lease_ms = i64::try_from(self.settings.lease.as_millis()).unwrap_or(i64::MAX);
        // Only the kinds this runner handles: several runners may share the table (the
        // auth service's outbox and its exports), and one must not take the other's
        // jobs only to fail them for want of a handler.
        let kinds: Vec<&str> = self.handlers.keys().copied().collect();
        // Whose lease it is: a runner whose lease expired must not delete or reschedule
        // the job another runner has claimed since.
        let token = Uuid::new_v4();
        let claimed: Vec<Claimed> =
            match only {
                None => diesel::sql_query(
                    "UPDATE agora_jobs SET locked_until = now() + $1 * interval '1 millisecond', \
                     locked_by = $3, attempts = attempts + 1 \
                 WHERE id IN (SELECT id FROM agora_jobs \
                     WHERE run_at <= now() AND (locked_until IS NULL OR locked_until < now()) \
                     AND kind = ANY($4) \
                     ORDER BY run_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
                 RETURNING id, kind, payload, attempts, trace_context",
                )
                .bind::<diesel::sql_types::BigInt, _>(lease_ms)
                .bind::<diesel::sql_types::BigInt, _>(self.settings.batch)
                .bind::<diesel::sql_types::Uuid, _>(token)
                .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(&kinds)
                .load(&mut conn)
                .await?,
                Some(ids) => diesel::sql_query(
                    "UPDATE agora_jobs SET locked_until = now() + $1 * interval '1 millisecond', \
                     locked_by = $3, attempts = attempts + 1 \
                 WHERE id IN (SELECT id FROM agora_jobs \
                     WHERE id = ANY($2) AND (locked_until IS NULL OR locked_until < now()) \
                     AND kind = ANY($4) \
                     FOR UPDATE SKIP LOCKED) \
                 RETURNING id, kind, payload, attempts, trace_context",
                )
                .bind::<diesel::sql_types::BigInt, _>(lease_ms)
                .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(ids)
                .bind::<diesel::sql_types::Uuid, _>(token)
                .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(&kinds)
                .load(&mut conn)
                .await?,
            };
        // The batch runs at once (deliveries wait on the network, not the CPU), each job
        // within most of the lease, so none runs on after the lease ends.
        let budget = self.settings.lease.mul_f64(0.8);
        let runs = claimed.into_iter().map(|job| async move {
            // The job joins the trace of the request that enqueued it.
            let parent = job
                .trace_context
                .as_deref()
                .and_then(|tp| crate::telemetry::propagation::from_traceparent(tp, None));
            let root = crate::telemetry::start_trace(parent, || {
                tracing::info_span!(
                    target: crate::telemetry::ROOT,
                    "job",
                    otel.name = format!("job {}", job.kind),
                    otel.kind = "consumer",
                    otel.status_code = tracing::field::Empty,
                    messaging.operation.type = "process",
                    job.kind = %job.kind,
                    job.attempt = job.attempts,
                )
            });
            let outcome = match self.handlers.get(job.kind.as_str()) {
                Some(handler) => root
                    .run(tokio::time::timeout(
                        budget,
                        handler.run(job.payload.clone()),
                    ))
                    .await
                    .unwrap_or_else(|_| Err(JobError::new("the job ran past its lease"))),
                None => Err(JobError::new(format!(
                    "no handler for job kind {:?}",
                    job.kind
                ))),
            };
            if outcome.is_err() {
                root.span.record("otel.status_code", "ERROR");
            }
            (job, outcome)
        });
        let finished = futures_util::future::join_all(runs).await;
        let mut pass = Pass::default();
        for (job, outcome) in finished {
            let mine = agora_jobs::table
                .find(job.id)
                .filter(agora_jobs::locked_by.eq(token));
            match outcome {
                Ok(()) => {
                    diesel::delete(mine).execute(&mut conn).await?;
                    pass.done += 1;
                }
                Err(err) => {
                    let delay = self.backoff(job.attempts);
                    tracing::warn!(job = %job.id, kind = %job.kind, attempts = job.attempts, error = %err, retry_in_s = delay.as_secs(), "job failed");
                    let run_at: DateTime<Utc> = Utc::now()
                        + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
                    diesel::update(mine)
                        .set((
                            agora_jobs::run_at.eq(run_at),
                            agora_jobs::locked_until.eq(None::<DateTime<Utc>>),
                            agora_jobs::locked_by.eq(None::<Uuid>),
                            agora_jobs::last_error.eq(err.to_string()),
                        ))
                        .execute(&mut conn)
                        .await?;
                    pass.failed += 1;
                }
            }
        }
        Ok(pass)
    }

    fn backoff(&self, attempts: i32) -> Duration {
        let exp = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(0)
            .min(20);
        let base = self.settings.base_backoff.saturating_mul(1 << exp);
        // Up to 25 % jitter, so failed jobs of one outage do not retry in lockstep.
        let jitter = base.mul_f64(f64::from(Uuid::new_v4().as_bytes()[0]) / 1024.0);
        (base + jitter).min(self.settings.max_backoff)
    }
}

/// A claimed job.
#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Text)]
    kind: String,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    payload: serde_json::Value,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    attempts: i32,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    trace_context: Option<String>,
}

/// Queued jobs of one kind.
#[derive(QueryableByName)]
struct Backlog {
    #[diesel(sql_type = diesel::sql_types::Text)]
    kind: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    jobs: i64,
    #[diesel(sql_type = diesel::sql_types::Double)]
    oldest: f64,
}
