//! The reconcile driver: for one `SocialPlatform`, fetch what its spec points to,
//! build every child (`children`), apply them and clean up (`apply`), and write the
//! status computed from what was applied (`status`); plus the error policy, Events,
//! and the controller that watches platforms and every owned kind.

use crate::apply::{self, owned_kinds};
use crate::backup::SocialPlatformBackup;
use crate::backup::controller::JobState;
use crate::backup::restore;
use crate::children;
use crate::crd::{DatabaseMode, SocialPlatform, SocialPlatformStatus};
use crate::error::{Error, kube_err};
use crate::metrics::Metrics;
use crate::owner::{MANAGER, Owner};
use crate::status;
use futures_util::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What every reconcile shares.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Reconcile metrics (served on the ops port).
    pub metrics: Arc<Metrics>,
    /// Publishes Kubernetes Events about platforms.
    recorder: Recorder,
    /// Consecutive failures per platform (`namespace/name`), for the backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// Held while a backup checks that no other of its platform runs and starts its Job:
    /// backups are reconciled concurrently, and one at a time per platform must hold.
    pub backup_start: tokio::sync::Mutex<()>,
}

impl Context {
    /// A context over `client`.
    pub fn new(client: Client) -> Self {
        let reporter = Reporter {
            controller: MANAGER.to_owned(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics: Arc::new(Metrics::default()),
            failures: Mutex::new(HashMap::new()),
            backup_start: tokio::sync::Mutex::new(()),
        }
    }

    /// Publishes an Event about `object` (best effort: a lost Event is only logged).
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &object.object_ref(&())).await {
            tracing::warn!(%error, "cannot publish an event");
        }
    }

    fn key(platform: &SocialPlatform) -> String {
        format!(
            "{}/{}",
            platform.namespace().unwrap_or_default(),
            platform.name_any()
        )
    }

    fn failed(&self, platform: &SocialPlatform) -> u32 {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = failures.entry(Self::key(platform)).or_insert(0);
        *n = n.saturating_add(1);
        *n
    }

    fn succeeded(&self, platform: &SocialPlatform) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(&Self::key(platform));
    }
}

/// Reconciles one platform (timed and counted).
pub async fn reconcile(platform: Arc<SocialPlatform>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = ctx.metrics.start();
    // One span per reconcile: which platform, and how it ended.
    let root = agora_common::telemetry::start_trace(None, || {
        tracing::info_span!(
            target: agora_common::telemetry::ROOT,
            "reconcile",
            k8s.namespace.name = platform.metadata.namespace.as_deref().unwrap_or_default(),
            agora.platform = platform.metadata.name.as_deref().unwrap_or_default(),
            outcome = tracing::field::Empty,
        )
    });
    let outcome = root.run(reconcile_platform(&platform, &ctx)).await;
    let reason = outcome.as_ref().err().map(Error::reason);
    root.span.record("outcome", reason.unwrap_or("ok"));
    ctx.metrics.finish(started, reason);
    outcome
}

async fn reconcile_platform(platform: &SocialPlatform, ctx: &Context) -> Result<Action, Error> {
    // Validate: a platform that was never stored cannot own anything.
    let owner = Owner::of(platform)?;
    let external = external_secret(platform, &ctx.client, &owner).await?;
    let restore_from = restore::source(platform, restore_backup(platform, ctx).await?.as_ref());
    let desired = children::desired(
        platform,
        &owner,
        restore_from.as_ref().ok().and_then(Option::as_ref),
    )?;
    let applied = apply::apply(&ctx.client, &owner, &desired).await?;
    let now = k8s_openapi::jiff::Timestamp::now();
    let restore_job = applied.get::<Job>(&restore::name(&owner));
    // A failed restore says why: the restore container's own report.
    let failure = match &restore_job {
        Some(job)
            if matches!(
                crate::backup::controller::job_state(job),
                JobState::Failed(_)
            ) =>
        {
            crate::backup::controller::termination_message(
                &ctx.client,
                owner.namespace(),
                &restore::name(&owner),
                restore::RESTORE,
            )
            .await?
            .and_then(|outcome| outcome.error)
        }
        _ => None,
    };
    let restored = restore::check(
        platform,
        &restore_from,
        restore_job.as_ref(),
        restore::condition_true(platform, "DatabaseReady"),
        failure.as_deref(),
    );
    let mut status = status::status(
        platform,
        &owner,
        &applied,
        external.as_ref(),
        restored.as_ref(),
        now,
    );
    let backups =
        crate::backup::controller::sync_platform(&ctx.client, &ctx.metrics.backups, platform, now)
            .await?;
    status.backup = backups.status;
    if let Some(check) = backups.health {
        let previous = platform
            .status
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or_default();
        status.conditions.push(status::condition(
            "BackupHealthy",
            &check,
            platform.metadata.generation,
            previous,
            now,
        ));
    }
    let ready = status::is_ready(&status);
    announce(platform, ctx, &status).await;
    write_status(platform, ctx, status).await?;
    ctx.succeeded(platform);
    // Children's changes wake the controller; the periodic pass is a safety net.
    Ok(Action::requeue(if ready {
        Duration::from_secs(300)
    } else {
        Duration::from_secs(15)
    }))
}

/// The dereference stage: the `SocialPlatformBackup` a restore names, if any.
async fn restore_backup(
    platform: &SocialPlatform,
    ctx: &Context,
) -> Result<Option<SocialPlatformBackup>, Error> {
    let Some(name) = platform
        .spec
        .restore
        .as_ref()
        .and_then(|r| r.backup.as_ref())
    else {
        return Ok(None);
    };
    if restore::condition_true(platform, "Restored") {
        return Ok(None);
    }
    Api::<SocialPlatformBackup>::namespaced(
        ctx.client.clone(),
        &platform.namespace().unwrap_or_default(),
    )
    .get_opt(name)
    .await
    .map_err(kube_err(format!("reading backup {name}")))
}

/// The dereference stage: the Secret an External database's URLs are in (read only).
async fn external_secret(
    platform: &SocialPlatform,
    client: &Client,
    owner: &Owner,
) -> Result<Option<Secret>, Error> {
    let Some(external) = platform.spec.database.external.as_ref() else {
        return Ok(None);
    };
    if platform.spec.database.mode != DatabaseMode::External {
        return Ok(None);
    }
    let name = &external.secret_ref.name;
    Api::<Secret>::namespaced(client.clone(), owner.namespace())
        .get_opt(name)
        .await
        .map_err(kube_err(format!("reading secret {name}")))
}

/// An Event when the platform becomes Ready or stops being Ready (not for the first
/// status of a new platform, which is no transition worth a warning).
async fn announce(platform: &SocialPlatform, ctx: &Context, status: &SocialPlatformStatus) {
    let previous = platform.status.clone().unwrap_or_default();
    let (ready, was_ready) = (status::is_ready(status), status::is_ready(&previous));
    if ready == was_ready || (!ready && previous.conditions.is_empty()) {
        return;
    }
    if ready {
        let note = "the platform serves its API".to_owned();
        ctx.event(platform, EventType::Normal, "Ready", note).await;
    } else {
        let waiting: Vec<&str> = status
            .conditions
            .iter()
            .filter(|c| ["DatabaseReady", "ServicesReady", "EdgeReady"].contains(&c.type_.as_str()))
            .filter(|c| c.status != "True")
            .map(|c| c.message.as_str())
            .collect();
        ctx.event(platform, EventType::Warning, "NotReady", waiting.join("; "))
            .await;
    }
}

/// Writes the status when it differs from the stored one.
async fn write_status(
    platform: &SocialPlatform,
    ctx: &Context,
    status: SocialPlatformStatus,
) -> Result<(), Error> {
    if platform.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let previous = platform.status.clone().unwrap_or_default();
    let mut patch = serde_json::json!({"status": status});
    // A merge patch keeps map keys it does not mention: gone services are nulled.
    for gone in previous
        .services
        .keys()
        .filter(|k| !status.services.contains_key(*k))
    {
        patch["status"]["services"][gone] = serde_json::Value::Null;
    }
    let api: Api<SocialPlatform> = Api::namespaced(
        ctx.client.clone(),
        &platform.namespace().unwrap_or_default(),
    );
    api.patch_status(
        &platform.name_any(),
        &PatchParams::default(),
        &Patch::Merge(patch),
    )
    .await
    .map_err(kube_err("updating the status"))?;
    Ok(())
}

/// Failed reconciles retry with per-object exponential backoff (1 s doubling, at most
/// 5 minutes); a success resets it.
pub fn error_policy(platform: Arc<SocialPlatform>, error: &Error, ctx: Arc<Context>) -> Action {
    let failures = ctx.failed(&platform);
    let delay = Duration::from_secs(1u64 << failures.saturating_sub(1).min(8))
        .min(Duration::from_secs(300));
    tracing::warn!(platform = %Context::key(&platform), %error, failures, retry_in_s = delay.as_secs(), "reconcile failed");
    // One Event per failure streak, not per retry.
    if failures == 1 {
        let note = error.to_string();
        tokio::spawn(async move {
            ctx.event(
                platform.as_ref(),
                EventType::Warning,
                "ReconcileFailed",
                note,
            )
            .await;
        });
    }
    Action::requeue(delay)
}

/// Runs the controllers until a shutdown signal, over every namespace or one: platforms,
/// and every watched owned kind ([`owned_kinds`]), so a deleted or edited child is put
/// back; beside it, the backups' controller.
pub async fn run(ctx: Arc<Context>, namespace: Option<&str>) {
    let client = ctx.client.clone();
    let platforms: Api<SocialPlatform> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    // Children are watched by their managed-by label only: without it the operator would
    // cache every Secret and ConfigMap of the cluster.
    let children =
        watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGER}"));
    let mut controller = Controller::new(platforms, watcher::Config::default());
    let backups = crate::backup::controller::run(ctx.clone(), namespace);
    for owned in owned_kinds().into_iter().filter(|k| k.watched) {
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &owned.resource),
            None => Api::all_with(client.clone(), &owned.resource),
        };
        controller = controller.owns_with(api, owned.resource, children.clone());
    }
    let platforms = controller
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|outcome| async move {
            match outcome {
                Ok((object, _)) => tracing::debug!(platform = %object.name, "reconciled"),
                Err(error) => tracing::debug!(%error, "reconcile pass ended with an error"),
            }
        });
    futures_util::future::join(platforms, backups).await;
}
