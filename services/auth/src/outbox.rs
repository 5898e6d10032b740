//! The auth service's outbox: the registration transaction enqueues one job per
//! subscriber to tell it that an account exists (`PUT /internal/accounts/{id}`), and an
//! erasure enqueues one job per service holding anything of people to erase the
//! account there (`DELETE /internal/accounts/{id}`). A request tries its jobs at once
//! and the background runner retries what failed, with backoff; both deliveries are
//! idempotent on the other side.

use crate::db;
use agora_common::accounts::account_path;
use agora_common::client::{ClientError, ClientSettings, Credential, ServiceClient, ServiceToken};
use agora_common::db::DbPool;
use agora_common::jobs::{Deliver, JobError, JobHandler};
use futures_util::future::BoxFuture;
use std::time::Duration;

/// The job kind of deliveries to one subscriber.
pub fn kind_for(subscriber: &str) -> &'static str {
    match subscriber {
        "users" => "account.created:users",
        "relations" => "account.created:relations",
        _ => "account.created:unknown",
    }
}

fn client(
    service: &'static str,
    base_url: &str,
    token: ServiceToken,
) -> Result<ServiceClient, ClientError> {
    let settings = ClientSettings {
        timeout: Duration::from_secs(30),
        service_token: Some(token),
        ..Default::default()
    };
    Ok(ServiceClient::new(service, base_url, settings)?.without_retries())
}

/// The deliverer of [`agora_common::accounts::AccountCreated`] jobs to `subscriber` at
/// `base_url`.
pub fn deliver_accounts(
    subscriber: &'static str,
    base_url: &str,
    token: ServiceToken,
) -> Result<Deliver, ClientError> {
    let client = client(subscriber, base_url, token)?;
    Ok(Deliver::new(kind_for(subscriber), client, |account| {
        let id = account["id"].as_str()?.parse().ok()?;
        Some(account_path(id))
    })
    .with_put())
}

/// Erases accounts at one service: `DELETE /internal/accounts/{id}` until it answers
/// 2xx, then the service's acknowledgement is recorded on the deletion (the last one
/// completes it).
pub struct Erase {
    kind: &'static str,
    service: &'static str,
    client: ServiceClient,
    pool: DbPool,
    /// Whether completed erasures go to the erasure log.
    log: bool,
}

impl Erase {
    /// The eraser at `service` (`base_url`); with `log`, completed erasures are logged.
    pub fn new(
        service: &'static str,
        base_url: &str,
        token: ServiceToken,
        pool: DbPool,
        log: bool,
    ) -> Result<Self, ClientError> {
        Ok(Self {
            kind: erase_kind(service),
            service,
            client: client(service, base_url, token)?,
            pool,
            log,
        })
    }
}

/// The job kind of erasures at `service` (`account.erasing:<service>`).
pub fn erase_kind(service: &'static str) -> &'static str {
    match service {
        "users" => "account.erasing:users",
        "relations" => "account.erasing:relations",
        "photos" => "account.erasing:photos",
        "events" => "account.erasing:events",
        "notifications" => "account.erasing:notifications",
        _ => "account.erasing:unknown",
    }
}

impl JobHandler for Erase {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn run(&self, payload: serde_json::Value) -> BoxFuture<'_, Result<(), JobError>> {
        Box::pin(async move {
            let ids = payload["id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .zip(payload["deletion_id"].as_str().and_then(|s| s.parse().ok()));
            let Some((account, deletion)) = ids else {
                return Err(JobError::new(format!(
                    "a {} job without its ids",
                    self.kind
                )));
            };
            self.client
                .send::<(), serde_json::Value>(
                    reqwest::Method::DELETE,
                    &account_path(account),
                    None,
                    Credential::Service,
                    None,
                )
                .await
                .map_err(JobError::new)?;
            let mut conn = self.pool.get().await.map_err(JobError::new)?;
            let complete = db::acknowledge_erasure(&mut conn, deletion, self.service, self.log)
                .await
                .map_err(JobError::new)?;
            tracing::info!(user_id = %account, deletion = %deletion, service = self.service, complete, "erasure acknowledged");
            Ok(())
        })
    }
}
