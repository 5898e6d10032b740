//! The `SocialPlatformBackup` controller: a backup waits its turn (one Job at a time per
//! platform), runs as a Job ([`jobs::backup_job`]), and ends `Completed` with its size
//! (the Job's pod reports it in its termination message) or `Failed` with the reason; a
//! finished backup is never run again. A backup that wrote files carries a finalizer:
//! deleting it (a person, or retention) first runs a Job that deletes its files
//! ([`jobs::delete_job`]). Beside it, what a platform's reconcile asks of its backups
//! ([`sync_platform`]): retention, `status.backup`, `BackupHealthy`, metrics.

use super::cron::Schedule;
use super::jobs::{self, PLATFORM_LABEL, SCHEDULED_LABEL};
use super::resource::{
    BackupPhase, PlatformBackupStatus, SocialPlatformBackup, SocialPlatformBackupStatus,
};
use super::retention;
use crate::children::enabled_services;
use crate::controller::Context;
use crate::crd::{DatabaseMode, SocialPlatform};
use crate::database::cloudnative;
use crate::error::{Error, kube_err};
use crate::metrics::BackupMetrics;
use crate::owner::Owner;
use crate::status::Check;
use futures_util::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalized, finalizer};
use kube::runtime::watcher;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// Held by a backup whose files exist, until a Job has deleted them.
pub const FILES_FINALIZER: &str = "agora.dev/backup-files";

/// What the backup Job's pod writes to its termination message when it is done.
#[derive(Debug, Deserialize, PartialEq)]
pub struct Outcome {
    /// Bytes written.
    #[serde(default)]
    pub size_bytes: Option<i64>,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<String>,
}

/// How a Job ended, from its conditions.
#[derive(Debug, PartialEq, Eq)]
pub enum JobState {
    /// Still running (or retrying).
    Active,
    /// Its pod exited 0.
    Complete,
    /// It gave up: the reason and message of its `Failed` condition.
    Failed(String),
}

/// The state of `job` from its status.
pub fn job_state(job: &Job) -> JobState {
    let conditions = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    for condition in conditions.iter().filter(|c| c.status == "True") {
        match condition.type_.as_str() {
            "Complete" => return JobState::Complete,
            "Failed" => {
                let reason = condition.reason.as_deref().unwrap_or("Failed");
                return JobState::Failed(match condition.message.as_deref() {
                    Some(message) if !message.is_empty() => format!("{reason}: {message}"),
                    _ => reason.to_owned(),
                });
            }
            _ => {}
        }
    }
    JobState::Active
}

fn now() -> Time {
    Time(Timestamp::now())
}

async fn write_status(
    api: &Api<SocialPlatformBackup>,
    name: &str,
    status: &SocialPlatformBackupStatus,
) -> Result<(), Error> {
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({ "status": status })),
    )
    .await
    .map_err(kube_err(format!("updating backup {name}'s status")))?;
    Ok(())
}

/// Moves one backup along, or deletes its files when it is being deleted.
pub async fn reconcile(
    backup: Arc<SocialPlatformBackup>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let namespace = backup.namespace().unwrap_or_default();
    let api: Api<SocialPlatformBackup> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer(&api, FILES_FINALIZER, backup, |event| async {
        match event {
            Finalized::Apply(backup) => take(&backup, &ctx).await,
            Finalized::Cleanup(backup) => delete_files(&backup, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// Takes the backup: waits its turn, runs its Job, reads how it ended.
async fn take(backup: &SocialPlatformBackup, ctx: &Context) -> Result<Action, Error> {
    let name = backup.name_any();
    let namespace = backup.namespace().unwrap_or_default();
    let mut status = backup.status.clone().unwrap_or_default();
    if matches!(
        status.phase,
        Some(BackupPhase::Completed | BackupPhase::Failed)
    ) {
        return Ok(Action::await_change());
    }
    let client = ctx.client.clone();
    let backups: Api<SocialPlatformBackup> = Api::namespaced(client.clone(), &namespace);
    let job_name = format!("{name}-backup");
    let job_api: Api<Job> = Api::namespaced(client.clone(), &namespace);
    if let Some(job) = job_api
        .get_opt(&job_name)
        .await
        .map_err(kube_err(format!("reading job {job_name}")))?
    {
        let state = job_state(&job);
        if state == JobState::Active {
            if status.phase != Some(BackupPhase::Running) {
                status.phase = Some(BackupPhase::Running);
                status.started_at.get_or_insert_with(now);
                write_status(&backups, &name, &status).await?;
            }
            return Ok(Action::requeue(Duration::from_secs(60)));
        }
        // The base backup CloudNativePG takes beside the Job (CloudNativePG mode).
        let state = match (&state, &status.database_backup) {
            (JobState::Complete, Some(base)) => {
                match database_backup_state(&client, &namespace, base).await? {
                    JobState::Active => return Ok(Action::requeue(Duration::from_secs(10))),
                    other => other,
                }
            }
            _ => state,
        };
        let outcome = termination_message(&client, &namespace, &job_name, "backup").await?;
        status.completed_at = Some(now());
        let (type_, reason, note) = match state {
            JobState::Failed(reason) => {
                status.phase = Some(BackupPhase::Failed);
                let error = outcome
                    .and_then(|o| o.error)
                    .map_or(reason.clone(), |error| format!("{error} ({reason})"));
                status.error = Some(error.clone());
                (EventType::Warning, "BackupFailed", error)
            }
            _ => {
                status.phase = Some(BackupPhase::Completed);
                status.size_bytes = outcome.as_ref().and_then(|o| o.size_bytes);
                status.error = None;
                let note = format!(
                    "backup of {} completed at {}",
                    backup.spec.platform,
                    status.location.as_deref().unwrap_or("its destination")
                );
                (EventType::Normal, "BackupCompleted", note)
            }
        };
        write_status(&backups, &name, &status).await?;
        ctx.event(backup, type_, reason, note).await;
        // The outcome is in the status now. The Job goes: its finished pod would hold
        // the photo volume it mounted, and the platform's volumes could not be deleted.
        match job_api.delete(&job_name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.is_not_found() => {}
            Err(e) => return Err(kube_err(format!("removing job {job_name}"))(e)),
        }
        return Ok(Action::await_change());
    }
    if status.phase == Some(BackupPhase::Running) {
        // The cached object may predate the outcome this controller wrote before it
        // removed the Job: only the API server's copy says whether it ended.
        let fresh = backups
            .get(&name)
            .await
            .map_err(kube_err(format!("reading backup {name}")))?;
        if fresh.status.and_then(|s| s.phase) != Some(BackupPhase::Running) {
            return Ok(Action::await_change());
        }
        // Its Job is gone before it ended (deleted by hand): it cannot be trusted.
        status.phase = Some(BackupPhase::Failed);
        status.completed_at = Some(now());
        status.error = Some(format!("its Job {job_name} was deleted before it ended"));
        write_status(&backups, &name, &status).await?;
        return Ok(Action::await_change());
    }
    // No Job yet: the platform must exist and say where backups go.
    let platforms: Api<SocialPlatform> = Api::namespaced(client.clone(), &namespace);
    let platform_name = &backup.spec.platform;
    let platform = platforms
        .get_opt(platform_name)
        .await
        .map_err(kube_err(format!("reading platform {platform_name}")))?;
    let Some((platform, spec)) = platform.and_then(|p| p.spec.backup.clone().map(|s| (p, s)))
    else {
        status.phase = Some(BackupPhase::Failed);
        status.completed_at = Some(now());
        let error =
            format!("no SocialPlatform {platform_name} with spec.backup in namespace {namespace}");
        status.error = Some(error.clone());
        write_status(&backups, &name, &status).await?;
        ctx.event(backup, EventType::Warning, "BackupFailed", error)
            .await;
        return Ok(Action::await_change());
    };
    // One backup at a time per platform: another's unfinished Job makes this one wait
    // (the lock makes the check and the start one step).
    let _starting = ctx.backup_start.lock().await;
    let running = job_api
        .list(&ListParams::default().labels(&format!("{PLATFORM_LABEL}={platform_name}")))
        .await
        .map_err(kube_err("listing backup jobs"))?;
    if running
        .items
        .iter()
        .any(|job| job_state(job) == JobState::Active)
    {
        if status.phase != Some(BackupPhase::Pending) {
            status.phase = Some(BackupPhase::Pending);
            write_status(&backups, &name, &status).await?;
        }
        return Ok(Action::requeue(Duration::from_secs(15)));
    }
    let owner = Owner::of(&platform)?;
    let services = enabled_services(&platform);
    let base = (platform.spec.database.mode == DatabaseMode::CloudNativePg)
        .then_some(spec.destination.s3.as_ref())
        .flatten();
    if let Some(bucket) = base
        && !archiving_to(&client, &namespace, &owner, bucket).await?
    {
        // The platform's reconcile has not given the cluster this archive yet.
        if status.phase != Some(BackupPhase::Pending) {
            status.phase = Some(BackupPhase::Pending);
            write_status(&backups, &name, &status).await?;
        }
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    // Where and how, recorded before a byte is written: the files can be found (and
    // deleted) whatever happens to the platform.
    status.phase = Some(BackupPhase::Running);
    status.started_at = Some(now());
    status.job = Some(job_name.clone());
    status.location = Some(jobs::location(platform_name, &spec, &name));
    status.destination = Some(spec.destination.clone());
    status.encryption_key_secret = Some(spec.encryption_key_secret.clone());
    status.agora_image = Some(jobs::agora_image(&platform));
    // CloudNativePG mode: its own base backup into the cluster's archive, beside the
    // Job's photos, keys and dumps; the backup completes when both have.
    let base = base.map(|_| name.clone());
    status.database_backup = base.clone();
    write_status(&backups, &name, &status).await?;
    if let Some(base) = &base {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &namespace, &cloudnative::backup_resource());
        let object = cloudnative::base_backup(base, &owner, backup);
        match api.create(&PostParams::default(), &object).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.is_already_exists() => {}
            Err(e) => return Err(kube_err(format!("creating base backup {base}"))(e)),
        }
    }
    let job = jobs::backup_job(&platform, &owner, &spec, backup, &services);
    match job_api.create(&PostParams::default(), &job).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.is_already_exists() => {}
        Err(e) => return Err(kube_err(format!("creating job {job_name}"))(e)),
    }
    Ok(Action::requeue(Duration::from_secs(60)))
}

/// Whether the platform's CloudNativePG cluster archives to `bucket` (its spec says so).
async fn archiving_to(
    client: &kube::Client,
    namespace: &str,
    owner: &Owner,
    bucket: &super::spec::BackupBucket,
) -> Result<bool, Error> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &cloudnative::cluster_resource());
    let name = crate::database::host(owner);
    let cluster = api
        .get_opt(&name)
        .await
        .map_err(kube_err(format!("reading cluster {name}")))?;
    Ok(cluster.is_some_and(|c| {
        c.data["spec"]["backup"]["barmanObjectStore"]["destinationPath"]
            == cloudnative::archive(bucket)["destinationPath"]
    }))
}

/// Where CloudNativePG's base backup `name` is, from its `status.phase`: gone counts as
/// failed (the set would be incomplete).
async fn database_backup_state(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<JobState, Error> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &cloudnative::backup_resource());
    let object = api
        .get_opt(name)
        .await
        .map_err(kube_err(format!("reading base backup {name}")))?;
    Ok(match object {
        None => JobState::Failed(format!("CloudNativePG's base backup {name} is gone")),
        Some(object) => cloudnative::backup_state(&object),
    })
}

/// Deletes what the backup wrote, by a Job; the finalizer goes when it is done.
async fn delete_files(backup: &SocialPlatformBackup, ctx: &Context) -> Result<Action, Error> {
    let name = backup.name_any();
    let namespace = backup.namespace().unwrap_or_default();
    let status = backup.status.clone().unwrap_or_default();
    let (Some(location), Some(destination), Some(image)) =
        (status.location, status.destination, status.agora_image)
    else {
        // Nothing was ever written.
        return Ok(Action::await_change());
    };
    let job_api: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    // A backup still being written is stopped first (its pod gone, nothing more comes).
    let backup_job = format!("{name}-backup");
    if let Some(job) = job_api
        .get_opt(&backup_job)
        .await
        .map_err(kube_err(format!("reading job {backup_job}")))?
        && job_state(&job) == JobState::Active
    {
        match job_api
            .delete(&backup_job, &DeleteParams::foreground())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.is_not_found() => {}
            Err(e) => return Err(kube_err(format!("stopping job {backup_job}"))(e)),
        }
        return Err(Error::Waiting(format!("backup {name}'s Job to stop")));
    }
    let delete_job = format!("{name}-delete");
    let existing = job_api
        .get_opt(&delete_job)
        .await
        .map_err(kube_err(format!("reading job {delete_job}")))?;
    let Some(job) = existing else {
        let job = jobs::delete_job(backup, &destination, &location, &image);
        return match job_api.create(&PostParams::default(), &job).await {
            Ok(_) => Err(Error::Waiting(format!("{location} to be deleted"))),
            Err(kube::Error::Api(s)) if s.is_already_exists() => {
                Err(Error::Waiting(format!("{location} to be deleted")))
            }
            // The namespace is being deleted: no pod can start in it any more.
            Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains("being terminated") => {
                tracing::warn!(backup = %name, %location, "the namespace is being deleted: the backup's files are kept");
                Ok(Action::await_change())
            }
            Err(e) => Err(kube_err(format!("creating job {delete_job}"))(e)),
        };
    };
    match job_state(&job) {
        JobState::Active => Err(Error::Waiting(format!("{location} to be deleted"))),
        JobState::Complete => Ok(Action::await_change()),
        JobState::Failed(reason) => {
            // Kept forever, the object would block its namespace's deletion: let it
            // go, and say where the files remain.
            let note = format!("deleting {location} failed ({reason}); the files remain");
            ctx.event(backup, EventType::Warning, "BackupFilesKept", note)
                .await;
            Ok(Action::await_change())
        }
    }
}

/// The termination message `container` (or init container) of the Job's newest pod
/// wrote, if it wrote one: the outcome `agora backup`/`restore --report-file` reports.
pub async fn termination_message(
    client: &kube::Client,
    namespace: &str,
    job: &str,
    container: &str,
) -> Result<Option<Outcome>, Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut list = pods
        .list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job}")))
        .await
        .map_err(kube_err(format!("listing the pods of job {job}")))?
        .items;
    list.sort_by_key(|p| p.creation_timestamp());
    Ok(list.iter().rev().find_map(|pod| {
        let status = pod.status.as_ref()?;
        let terminated = status
            .container_statuses
            .iter()
            .chain(status.init_container_statuses.iter())
            .flatten()
            .find(|s| s.name == container)?
            .state
            .as_ref()?
            .terminated
            .as_ref()?;
        serde_json::from_str(terminated.message.as_deref()?).ok()
    }))
}

/// Failed passes retry after a while (the Job, if created, goes on meanwhile).
pub fn error_policy(backup: Arc<SocialPlatformBackup>, error: &Error, _: Arc<Context>) -> Action {
    let waiting = matches!(error, Error::Finalizer(e) if matches!(**e, kube::runtime::finalizer::Error::CleanupFailed(Error::Waiting(_))));
    if waiting {
        return Action::requeue(Duration::from_secs(5));
    }
    tracing::warn!(backup = %backup.name_any(), %error, "backup reconcile failed");
    Action::requeue(Duration::from_secs(15))
}

/// Runs the backup controller until a shutdown signal: backups, and the Jobs they own.
pub async fn run(ctx: Arc<Context>, namespace: Option<&str>) {
    let client = ctx.client.clone();
    let (backups, jobs): (Api<SocialPlatformBackup>, Api<Job>) = match namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    Controller::new(backups, watcher::Config::default())
        .owns(jobs, watcher::Config::default().labels(PLATFORM_LABEL))
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|outcome| async move {
            if let Err(error) = outcome {
                tracing::debug!(%error, "backup reconcile pass ended with an error");
            }
        })
        .await;
}

/// What a platform's reconcile learns from (and does to) its backups.
#[derive(Debug, Default)]
pub struct PlatformBackups {
    /// `status.backup`.
    pub status: Option<PlatformBackupStatus>,
    /// The `BackupHealthy` condition (with `spec.backup` only).
    pub health: Option<Check>,
}

/// Prunes `platform`'s backups by its retention, and summarizes them: `status.backup`,
/// `BackupHealthy` and the backup metrics.
pub async fn sync_platform(
    client: &kube::Client,
    metrics: &BackupMetrics,
    platform: &SocialPlatform,
    now: Timestamp,
) -> Result<PlatformBackups, Error> {
    let namespace = platform.namespace().unwrap_or_default();
    let name = platform.name_any();
    let api: Api<SocialPlatformBackup> = Api::namespaced(client.clone(), &namespace);
    let backups = api
        .list(&ListParams::default())
        .await
        .map_err(kube_err("listing backups"))?
        .items;
    // By the spec: backups people create carry no label.
    let mine: Vec<&SocialPlatformBackup> =
        backups.iter().filter(|b| b.spec.platform == name).collect();
    let Some(spec) = &platform.spec.backup else {
        metrics.forget(&namespace, &name);
        if mine.is_empty() {
            return Ok(PlatformBackups::default());
        }
        return Ok(PlatformBackups {
            status: Some(summary(&mine, None)),
            health: None,
        });
    };
    let pruned = retention::to_prune(&mine, &spec.retention, now);
    for pruned in &pruned {
        let pruned_name = pruned.name_any();
        match api.delete(&pruned_name, &DeleteParams::background()).await {
            Ok(_) => {
                tracing::info!(platform = %name, backup = %pruned_name, "retention pruned a backup")
            }
            Err(kube::Error::Api(s)) if s.is_not_found() => {}
            Err(e) => return Err(kube_err(format!("pruning backup {pruned_name}"))(e)),
        }
    }
    // What is gone or going is history no more.
    let mine: Vec<&SocialPlatformBackup> = mine
        .into_iter()
        .filter(|b| b.metadata.deletion_timestamp.is_none())
        .filter(|b| !pruned.iter().any(|p| p.name_any() == b.name_any()))
        .collect();
    let schedule = Schedule::parse(&spec.schedule);
    let next = schedule.as_ref().and_then(|s| s.next_after(now));
    let status = summary(&mine, next.map(Time));
    // The schedule's period: between its next two runs.
    let period = schedule
        .as_ref()
        .zip(next)
        .and_then(|(s, next)| Some(s.next_after(next)?.as_second() - next.as_second()));
    let last = newest(&mine, BackupPhase::Completed);
    let last_failure = newest(&mine, BackupPhase::Failed)
        .and_then(finished_at)
        .map(|t| t.as_second());
    metrics.record(
        &namespace,
        &name,
        last.and_then(|b| b.status.as_ref()),
        last_failure,
        period,
    );
    let created = platform.creation_timestamp().map(|t| t.0);
    Ok(PlatformBackups {
        health: Some(health(&mine, last, created, period, now)),
        status: Some(status),
    })
}

fn finished_at(backup: &SocialPlatformBackup) -> Option<Timestamp> {
    backup.status.as_ref()?.completed_at.as_ref().map(|t| t.0)
}

fn newest<'a>(
    backups: &[&'a SocialPlatformBackup],
    phase: BackupPhase,
) -> Option<&'a SocialPlatformBackup> {
    backups
        .iter()
        .filter(|b| b.status.as_ref().and_then(|s| s.phase) == Some(phase))
        .max_by_key(|b| {
            (
                finished_at(b),
                b.creation_timestamp().map(|t| t.0),
                b.name_any(),
            )
        })
        .copied()
}

fn summary(backups: &[&SocialPlatformBackup], next: Option<Time>) -> PlatformBackupStatus {
    let (last_successful, last_successful_backup) = newest(backups, BackupPhase::Completed)
        .map(|b| {
            (
                b.status.as_ref().and_then(|s| s.completed_at.clone()),
                b.name_any(),
            )
        })
        .unzip();
    let (last_failed, last_failed_backup) = newest(backups, BackupPhase::Failed)
        .map(|b| {
            (
                b.status.as_ref().and_then(|s| s.completed_at.clone()),
                b.name_any(),
            )
        })
        .unzip();
    PlatformBackupStatus {
        last_successful: last_successful.flatten(),
        last_successful_backup,
        last_failed: last_failed.flatten(),
        last_failed_backup,
        next_scheduled: next,
    }
}

/// `BackupHealthy`: false when the newest finished scheduled backup failed, or when no
/// backup has completed for twice the schedule's period (counted from the platform's
/// creation when none ever did).
fn health(
    backups: &[&SocialPlatformBackup],
    last: Option<&SocialPlatformBackup>,
    created: Option<Timestamp>,
    period: Option<i64>,
    now: Timestamp,
) -> Check {
    let scheduled: Vec<&SocialPlatformBackup> = backups
        .iter()
        .filter(|b| b.labels().get(SCHEDULED_LABEL).is_some_and(|v| v == "true"))
        .filter(|b| finished_at(b).is_some())
        .copied()
        .collect();
    if let Some(failed) = scheduled
        .iter()
        .max_by_key(|b| finished_at(b))
        .filter(|b| b.status.as_ref().and_then(|s| s.phase) == Some(BackupPhase::Failed))
    {
        let error = failed
            .status
            .as_ref()
            .and_then(|s| s.error.clone())
            .unwrap_or_default();
        return Check::new(
            false,
            "LastBackupFailed",
            format!(
                "the last scheduled backup {} failed: {error}",
                failed.name_any()
            ),
        );
    }
    let since = last.and_then(finished_at).or(created);
    if let (Some(period), Some(since)) = (period, since) {
        let age = now.as_second().saturating_sub(since.as_second());
        if age > 2 * period {
            let what = match last {
                Some(last) => format!("the last completed backup, {}, is", last.name_any()),
                None => "no backup has completed; the platform is".to_owned(),
            };
            return Check::new(
                false,
                "BackupTooOld",
                format!(
                    "{what} {} h old, more than twice the schedule's period ({} h)",
                    age / 3600,
                    period / 3600
                ),
            );
        }
    }
    Check::new(
        true,
        "BackupsCurrent",
        match last {
            Some(last) => format!("the last backup, {}, completed", last.name_any()),
            None => "no backup yet; the schedule takes the first".to_owned(),
        },
    )
}
