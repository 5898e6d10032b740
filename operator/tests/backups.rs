//! Backups against the real control plane of `hack/k8s-env.sh` (kwok nodes make Job
//! pods Succeeded without running them): a platform with `spec.backup` gets its
//! schedule with a create-only permission; backups run as Jobs one at a time per
//! platform and end Completed with their location; a backup of no platform fails with
//! the reason; backups outlive their platform.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

mod support;

use agora_kube_testenv::{TestEnv, wait_until};
use agora_operator::SocialPlatform;
use agora_operator::backup::controller::{JobState, job_state};
use agora_operator::backup::jobs::PLATFORM_LABEL;
use agora_operator::backup::{BackupPhase, SocialPlatformBackup, SocialPlatformBackupSpec};
use agora_operator::controller::{self, Context};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use support::{install_crd, volumes_for};

fn backup(name: &str, platform: &str) -> SocialPlatformBackup {
    SocialPlatformBackup::new(
        name,
        SocialPlatformBackupSpec {
            platform: platform.to_owned(),
        },
    )
}

async fn phase_of(
    api: &Api<SocialPlatformBackup>,
    name: &str,
    phase: BackupPhase,
) -> SocialPlatformBackup {
    wait_until(
        &format!("backup {name} is {phase:?}"),
        Duration::from_secs(120),
        || async {
            let backup = api.get(name).await?;
            Ok(backup.status.and_then(|s| s.phase) == Some(phase))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e:?}"));
    api.get(name).await.unwrap()
}

#[tokio::test]
async fn scheduled_and_requested_backups_run_one_at_a_time_and_outlive_their_platform() {
    let env = TestEnv::connect().await.unwrap();
    install_crd(&env).await;
    let ns = env.namespace("sp-backups").await.unwrap();
    let namespace = ns.name().to_owned();
    let ctx = Arc::new(Context::new(env.client()));
    let running = tokio::spawn(async move { controller::run(ctx, Some(&namespace)).await });

    let platforms: Api<SocialPlatform> = ns.api();
    let platform: SocialPlatform = serde_json::from_value(json!({
        "apiVersion": "agora.dev/v1alpha1", "kind": "SocialPlatform",
        "metadata": {"name": "demo"},
        "spec": {
            "host": "demo.localtest.me",
            "photos": {"storage": {"s3": {"bucket": "photos", "secretRef": {"name": "s3"}}}},
            "backup": {
                "schedule": "0 3 * * *",
                "retention": {"count": 1},
                "destination": {"s3": {"bucket": "backups", "prefix": "agora",
                    "credentialsSecret": "backup-s3"}},
                "encryptionKeySecret": "backup-key",
            },
        },
    }))
    .unwrap();
    let platform = platforms
        .create(&PostParams::default(), &platform)
        .await
        .unwrap();

    // The schedule: owned by the platform, allowed to create backups and nothing else.
    let cronjobs: Api<CronJob> = ns.api();
    wait_until("the schedule exists", Duration::from_secs(60), || async {
        Ok(cronjobs.get_opt("demo-backup").await?.is_some())
    })
    .await
    .unwrap();
    let cron = cronjobs.get("demo-backup").await.unwrap();
    let owner = &cron.owner_references()[0];
    assert_eq!(
        (owner.uid.as_str(), owner.controller),
        (platform.uid().unwrap().as_str(), Some(true))
    );
    assert_eq!(cron.spec.unwrap().schedule, "0 3 * * *");
    let role = ns.api::<Role>().get("demo-backup-scheduler").await.unwrap();
    let rules = role.rules.unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].verbs, ["create"]);
    let binding = ns
        .api::<RoleBinding>()
        .get("demo-backup-scheduler")
        .await
        .unwrap();
    assert_eq!(binding.subjects.unwrap()[0].name, "demo-backup-scheduler");

    let backups: Api<SocialPlatformBackup> = ns.api();
    // A backup of no platform fails, saying why.
    backups
        .create(&PostParams::default(), &backup("orphan", "nope"))
        .await
        .unwrap();
    let orphan = phase_of(&backups, "orphan", BackupPhase::Failed).await;
    let error = orphan.status.unwrap().error.unwrap();
    assert!(error.contains("nope"), "{error}");

    // Two at once: each gets a Job in turn (never two unfinished at once), owned by its
    // backup, and removed once the backup has recorded how it ended.
    for name in ["first", "second"] {
        backups
            .create(&PostParams::default(), &backup(name, "demo"))
            .await
            .unwrap();
    }
    let jobs: Api<Job> = ns.api();
    let mine = ListParams::default().labels(&format!("{PLATFORM_LABEL}=demo"));
    let mut seen = std::collections::BTreeSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let list = jobs.list(&mine).await.unwrap().items;
        let unfinished = list.iter().filter(|job| job_state(job) == JobState::Active);
        assert!(unfinished.count() <= 1, "two backup Jobs at once");
        for job in &list {
            assert_eq!(job.owner_references()[0].kind, "SocialPlatformBackup");
            seen.insert(job.name_any());
        }
        let mut ended = 0;
        for name in ["first", "second"] {
            let phase = backups
                .get(name)
                .await
                .unwrap()
                .status
                .and_then(|s| s.phase);
            ended += usize::from(phase == Some(BackupPhase::Completed));
        }
        if ended == 2 && list.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "backups {seen:?} still running: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        seen,
        ["first-backup", "second-backup"].map(str::to_owned).into()
    );
    for name in ["first", "second"] {
        let status = backups.get(name).await.unwrap().status.unwrap();
        assert_eq!(
            status.location.as_deref(),
            Some(format!("s3://backups/agora/{name}").as_str())
        );
        assert_eq!(
            status.job.as_deref(),
            Some(format!("{name}-backup").as_str())
        );
        assert_eq!(status.encryption_key_secret.as_deref(), Some("backup-key"));
        assert_eq!(
            status.destination.unwrap().s3.unwrap().credentials_secret,
            "backup-s3"
        );
        assert!(status.started_at.is_some() && status.completed_at.is_some());
    }

    // Retention keeps one: the first goes (its files by a Job), the second stays.
    wait_until(
        "retention prunes the first",
        Duration::from_secs(120),
        || async { Ok(backups.get_opt("first").await?.is_none()) },
    )
    .await
    .unwrap();
    let deleted = ns.api::<Job>().get_opt("first-delete").await.unwrap();
    if let Some(job) = deleted {
        let args = job.spec.unwrap().template.spec.unwrap().containers[0]
            .args
            .clone()
            .unwrap();
        assert_eq!(args, ["delete-backup", "s3://backups/agora/first"]);
    }
    let platform = platforms.get("demo").await.unwrap();
    let status = platform.status.clone().unwrap();
    let summary = status.backup.unwrap();
    assert_eq!(summary.last_successful_backup.as_deref(), Some("second"));
    assert!(summary.next_scheduled.is_some());
    let healthy = status
        .conditions
        .iter()
        .find(|c| c.type_ == "BackupHealthy")
        .unwrap();
    assert_eq!(healthy.status, "True", "{healthy:?}");

    // Deleting the platform keeps its backups.
    platforms
        .delete("demo", &DeleteParams::foreground())
        .await
        .unwrap();
    wait_until("the platform is gone", Duration::from_secs(60), || async {
        Ok(platforms.get_opt("demo").await?.is_none())
    })
    .await
    .unwrap();
    let kept = backups.get("second").await.unwrap();
    assert_eq!(kept.status.unwrap().phase, Some(BackupPhase::Completed));
    // Deleting a backup deletes its files first, by a Job (its finalizer).
    backups
        .delete("second", &DeleteParams::default())
        .await
        .unwrap();
    wait_until(
        "the second backup is gone",
        Duration::from_secs(120),
        || async { Ok(backups.get_opt("second").await?.is_none()) },
    )
    .await
    .unwrap();
    // The namespace goes with the controller still running: the orphan backup's
    // finalizer is removed by it (a backup never written has no files to delete).
    ns.cleanup().await.unwrap();
    running.abort();
}

/// Waits until platform `name`'s condition `type_` has `status`.
async fn wait_for_condition(
    platforms: &Api<SocialPlatform>,
    name: &str,
    type_: &str,
    status: &str,
    timeout: Duration,
) {
    wait_until(&format!("{name}: {type_} is {status}"), timeout, || async {
        let p = platforms.get(name).await?;
        Ok(condition(&p, type_).is_some_and(|c| c.status == status))
    })
    .await
    .unwrap();
}

fn condition<'a>(platform: &'a SocialPlatform, type_: &str) -> Option<&'a Condition> {
    platform
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

#[tokio::test]
async fn a_restored_platform_serves_only_once_its_restore_has_run() {
    let env = TestEnv::connect().await.unwrap();
    install_crd(&env).await;
    let ns = env.namespace("sp-restore").await.unwrap();
    volumes_for(&env, ns.name(), "fresh").await;
    // A completed backup of a platform that is gone, as its status recorded it.
    let backups: Api<SocialPlatformBackup> = ns.api();
    backups
        .create(&PostParams::default(), &backup("nightly", "old"))
        .await
        .unwrap();
    backups
        .patch_status(
            "nightly",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "phase": "Completed", "location": "s3://backups/agora/nightly",
                "destination": {"s3": {"bucket": "backups", "prefix": "agora",
                    "credentialsSecret": "backup-s3"}},
                "encryptionKeySecret": "backup-key", "agoraImage": "agora:1",
            }})),
        )
        .await
        .unwrap();
    let namespace = ns.name().to_owned();
    let ctx = Arc::new(Context::new(env.client()));
    let running = tokio::spawn(async move { controller::run(ctx, Some(&namespace)).await });

    let platforms: Api<SocialPlatform> = ns.api();
    let platform: SocialPlatform = serde_json::from_value(json!({
        "apiVersion": "agora.dev/v1alpha1", "kind": "SocialPlatform",
        "metadata": {"name": "fresh"},
        "spec": {"host": "fresh.localtest.me", "restore": {"backup": "nightly"},
            "edge": {"authMiddleware": "None"},
            "backup": {"schedule": "@daily", "encryptionKeySecret": "backup-key",
                "destination": {"s3": {"bucket": "backups", "credentialsSecret": "backup-s3"}}}},
    }))
    .unwrap();
    platforms
        .create(&PostParams::default(), &platform)
        .await
        .unwrap();

    // Until the restore has run: no workload, keys Secret empty, Ready false.
    wait_for_condition(
        &platforms,
        "fresh",
        "Restored",
        "False",
        Duration::from_secs(60),
    )
    .await;
    let deployments: Api<Deployment> = ns.api();
    assert!(
        deployments
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let keys = ns.api::<Secret>().get("fresh-keys").await.unwrap();
    assert!(
        keys.data.unwrap_or_default().is_empty(),
        "the restore fills the keys"
    );
    let role = ns.api::<Role>().get("fresh-restore").await.unwrap();
    assert_eq!(
        role.rules.unwrap()[0].resource_names.as_deref(),
        Some(&["fresh-keys".to_owned()][..])
    );

    // The databases provisioned, the restore Job runs (kwok: it succeeds), then the
    // workloads come and the platform is Ready.
    wait_for_condition(
        &platforms,
        "fresh",
        "Ready",
        "True",
        Duration::from_secs(180),
    )
    .await;
    let p = platforms.get("fresh").await.unwrap();
    assert_eq!(condition(&p, "Restored").unwrap().status, "True");
    assert!(
        !deployments
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // The Job went with the restore (the condition stays).
    wait_until(
        "the restore Job is removed",
        Duration::from_secs(60),
        || async { Ok(ns.api::<Job>().get_opt("fresh-restore").await?.is_none()) },
    )
    .await
    .unwrap();
    ns.cleanup().await.unwrap();
    running.abort();
}
