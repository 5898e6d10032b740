//! Leader election on a `coordination.k8s.io` Lease (with `kube-lease-manager`): every
//! replica of the operator waits for the Lease, one reconciles. The leader releases the
//! Lease when it stops, so another replica takes over at once rather than after the
//! Lease expires; a leader that loses the Lease stops reconciling immediately.

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use std::future::Future;

/// The Lease's name.
pub const LEASE_NAME: &str = "agora-operator";

/// Lease timing: how long a claim is valid, and how long before its end it is renewed.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Seconds a claim lasts without renewal (failover time when a leader dies).
    pub duration: u64,
    /// Seconds before expiry the holder renews (tolerated clock skew).
    pub grace: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            duration: 15,
            grace: 5,
        }
    }
}

/// How leading ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The work finished (a shutdown); the Lease was released.
    Finished,
    /// Another replica took the Lease; the work was stopped.
    LostLease,
    /// `stop` resolved before this replica became the leader.
    Stopped,
}

/// Leader election failed.
#[derive(Debug, thiserror::Error)]
#[error("leader election on Lease {LEASE_NAME}")]
pub struct LeaderError(#[source] LeaseManagerError);

/// Waits for the Lease (or `stop`), then runs `work` while holding it.
pub async fn lead<W, S>(
    client: Client,
    namespace: &str,
    identity: &str,
    timing: Timing,
    work: W,
    stop: S,
) -> Result<Outcome, LeaderError>
where
    W: Future<Output = ()>,
    S: Future<Output = ()>,
{
    let manager = LeaseManagerBuilder::new(client, LEASE_NAME)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_duration(timing.duration)
        .with_grace(timing.grace)
        .build()
        .await
        .map_err(LeaderError)?;
    let (mut leading, task) = manager.watch().await;
    tokio::pin!(stop);
    loop {
        if *leading.borrow_and_update() {
            break;
        }
        tokio::select! {
            changed = leading.changed() => {
                if changed.is_err() {
                    return finish(task).await.map(|()| Outcome::LostLease);
                }
            }
            () = &mut stop => {
                drop(leading);
                return finish(task).await.map(|()| Outcome::Stopped);
            }
        }
    }
    tracing::info!(identity, lease = LEASE_NAME, "leading");
    let lost = async {
        loop {
            if leading.changed().await.is_err() || !*leading.borrow_and_update() {
                return;
            }
        }
    };
    let outcome = tokio::select! {
        () = work => Outcome::Finished,
        () = lost => Outcome::LostLease,
    };
    // Closing the channel releases the Lease.
    drop(leading);
    finish(task).await?;
    tracing::info!(identity, ?outcome, "no longer leading");
    Ok(outcome)
}

async fn finish(
    task: tokio::task::JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
) -> Result<(), LeaderError> {
    match task.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(LeaderError(e)),
        // The manager task panicked or was cancelled: nothing left to release.
        Err(_) => Ok(()),
    }
}
