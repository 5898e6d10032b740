//! Telling the other services that an account exists: the registration transaction
//! enqueues one job per subscriber (the kit's transactional outbox), the handler tries
//! to deliver them at once, and the background runner retries what failed. Delivery is
//! `PUT /internal/accounts/{id}`, idempotent on the other side.

use agora_common::accounts::{AccountCreated, account_path};
use agora_common::client::{ClientError, ClientSettings, Credential, ServiceClient, ServiceToken};
use agora_common::jobs::{JobError, JobHandler};
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

/// Delivers [`AccountCreated`] jobs to one service.
pub struct DeliverAccount {
    kind: &'static str,
    client: ServiceClient,
}

impl DeliverAccount {
    /// A deliverer to `subscriber` at `base_url`.
    pub fn new(
        subscriber: &'static str,
        base_url: &str,
        token: ServiceToken,
    ) -> Result<Self, ClientError> {
        let settings = ClientSettings {
            timeout: Duration::from_secs(5),
            // The job runner retries with backoff; a delivery does not retry itself.
            retries: 0,
            service_token: Some(token),
            ..Default::default()
        };
        Ok(Self {
            kind: kind_for(subscriber),
            client: ServiceClient::new(subscriber, base_url, settings)?,
        })
    }
}

impl JobHandler for DeliverAccount {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn run(&self, payload: serde_json::Value) -> BoxFuture<'_, Result<(), JobError>> {
        Box::pin(async move {
            let account: AccountCreated = serde_json::from_value(payload).map_err(JobError::new)?;
            self.client
                .send::<_, serde_json::Value>(
                    reqwest::Method::PUT,
                    &account_path(account.id),
                    Some(&account),
                    Credential::Service,
                    None,
                )
                .await
                .map(|_| ())
                .map_err(JobError::new)
        })
    }
}
