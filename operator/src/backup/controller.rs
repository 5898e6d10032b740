//! The `SocialPlatformBackup` controller: a backup waits its turn (one Job at a time per
//! platform), runs as a Job ([`jobs::backup_job`]), and ends `Completed` with its size
//! and location (the Job's pod reports them in its termination message) or `Failed`
//! with the reason. A finished backup is never touched again.

use super::jobs::{self, PLATFORM_LABEL};
use super::resource::{
    BackupPhase, PlatformBackupStatus, SocialPlatformBackup, SocialPlatformBackupStatus,
};
use crate::children::enabled_services;
use crate::controller::Context;
use crate::crd::SocialPlatform;
use crate::error::{Error, kube_err};
use crate::owner::Owner;
use futures_util::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

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
                let message = condition.message.as_deref().unwrap_or_default();
                return JobState::Failed(
                    format!("{reason}: {message}")
                        .trim_end_matches(": ")
                        .to_owned(),
                );
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

/// Moves one backup along.
pub async fn reconcile(
    backup: Arc<SocialPlatformBackup>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
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
        let outcome = termination_message(&client, &namespace, &job_name).await?;
        status.completed_at = Some(now());
        match state {
            JobState::Complete => {
                status.phase = Some(BackupPhase::Completed);
                status.size_bytes = outcome.as_ref().and_then(|o| o.size_bytes);
                status.error = None;
            }
            JobState::Failed(reason) => {
                status.phase = Some(BackupPhase::Failed);
                status.error = Some(
                    outcome
                        .and_then(|o| o.error)
                        .map_or(reason.clone(), |error| format!("{error} ({reason})")),
                );
            }
            JobState::Active => {}
        }
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
        status.error = Some(format!(
            "no SocialPlatform {platform_name} with spec.backup in namespace {namespace}"
        ));
        write_status(&backups, &name, &status).await?;
        return Ok(Action::await_change());
    };
    // One backup at a time per platform: another's unfinished Job makes this one wait.
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
    let job = jobs::backup_job(&platform, &owner, &spec, &backup, &services);
    match job_api.create(&PostParams::default(), &job).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.is_already_exists() => {}
        Err(e) => return Err(kube_err(format!("creating job {job_name}"))(e)),
    }
    status.phase = Some(BackupPhase::Running);
    status.started_at = Some(now());
    status.job = Some(job_name);
    status.location = Some(jobs::location(platform_name, &spec, &name));
    status.destination = Some(spec.destination.clone());
    status.encryption_key_secret = Some(spec.encryption_key_secret.clone());
    write_status(&backups, &name, &status).await?;
    Ok(Action::requeue(Duration::from_secs(60)))
}

/// The backup container's termination message of the Job's newest pod, if it wrote one.
async fn termination_message(
    client: &kube::Client,
    namespace: &str,
    job: &str,
) -> Result<Option<Outcome>, Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut list = pods
        .list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job}")))
        .await
        .map_err(kube_err(format!("listing the pods of job {job}")))?
        .items;
    list.sort_by_key(|p| p.creation_timestamp());
    Ok(list.iter().rev().find_map(|pod| {
        let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
        let terminated = statuses
            .iter()
            .find(|s| s.name == "backup")?
            .state
            .as_ref()?
            .terminated
            .as_ref()?;
        serde_json::from_str(terminated.message.as_deref()?).ok()
    }))
}

/// Failed passes retry after a while (the Job, if created, goes on meanwhile).
pub fn error_policy(backup: Arc<SocialPlatformBackup>, error: &Error, _: Arc<Context>) -> Action {
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

/// `status.backup` of `platform`: its newest completed and failed backups (none when
/// it has neither `spec.backup` nor any backup).
pub async fn summary(
    client: &kube::Client,
    platform: &SocialPlatform,
) -> Result<Option<PlatformBackupStatus>, Error> {
    let namespace = platform.namespace().unwrap_or_default();
    let api: Api<SocialPlatformBackup> = Api::namespaced(client.clone(), &namespace);
    let backups = api
        .list(&ListParams::default())
        .await
        .map_err(kube_err("listing backups"))?
        .items;
    let name = platform.name_any();
    // By the spec: backups people create carry no label.
    let mine: Vec<&SocialPlatformBackup> =
        backups.iter().filter(|b| b.spec.platform == name).collect();
    if platform.spec.backup.is_none() && mine.is_empty() {
        return Ok(None);
    }
    let newest = |phase: BackupPhase| {
        mine.iter()
            .filter_map(|b| {
                let status = b.status.as_ref()?;
                (status.phase == Some(phase))
                    .then_some((status.completed_at.clone()?, b.name_any()))
            })
            .max_by(|a, b| a.0.0.cmp(&b.0.0))
    };
    let (last_successful, last_successful_backup) = newest(BackupPhase::Completed).unzip();
    let (last_failed, last_failed_backup) = newest(BackupPhase::Failed).unzip();
    Ok(Some(PlatformBackupStatus {
        last_successful,
        last_successful_backup,
        last_failed,
        last_failed_backup,
        next_scheduled: None,
    }))
}
