//! Telling the other services that an account exists: the registration transaction
//! enqueues one job per subscriber (the kit's transactional outbox), the handler tries
//! to deliver them at once, and the background runner retries what failed. Delivery is
//! `PUT /internal/accounts/{id}`, idempotent on the other side.

use agora_common::accounts::account_path;
use agora_common::client::{ClientError, ClientSettings, ServiceClient, ServiceToken};
use agora_common::jobs::Deliver;
use std::time::Duration;

/// The job kind of deliveries to one subscriber.
pub fn kind_for(subscriber: &str) -> &'static str {
    match subscriber {
        "users" => "account.created:users",
        "relations" => "account.created:relations",
        _ => "account.created:unknown",
    }
}

/// The deliverer of [`agora_common::accounts::AccountCreated`] jobs to `subscriber` at
/// `base_url`.
pub fn deliver_accounts(
    subscriber: &'static str,
    base_url: &str,
    token: ServiceToken,
) -> Result<Deliver, ClientError> {
    let settings = ClientSettings {
        timeout: Duration::from_secs(5),
        service_token: Some(token),
        ..Default::default()
    };
    let client = ServiceClient::new(subscriber, base_url, settings)?;
    Ok(Deliver::new(kind_for(subscriber), client, |account| {
        let id = account["id"].as_str()?.parse().ok()?;
        Some(account_path(id))
    })
    .with_put())
}
