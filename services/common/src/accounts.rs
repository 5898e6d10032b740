//! The one cross-service fact about accounts: the auth service tells every service that
//! keeps per-user rows (users, relations) that an account exists, through its outbox,
//! at least once, with `PUT /internal/accounts/{id}` (idempotent).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `PUT /internal/accounts/{id}`: an account exists. Usernames are immutable, so a
/// repeated delivery carries the same data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountCreated {
    /// The account's id (the `sub` of its tokens).
    pub id: Uuid,
    /// Its username (lowercase, immutable).
    pub username: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// The internal path an [`AccountCreated`] is delivered to.
pub fn account_path(id: Uuid) -> String {
    format!("/internal/accounts/{id}")
}

impl AccountCreated {
    /// A delivery to `/internal/accounts/{path_id}` must be about that account.
    pub fn check_path(&self, path_id: Uuid) -> Result<(), crate::problem::ApiError> {
        if self.id == path_id {
            Ok(())
        } else {
            Err(crate::problem::ApiError::invalid_field(
                "id",
                "must match the path",
            ))
        }
    }
}

/// A service that keeps per-user rows: what it records of a delivered account.
pub trait AccountStore: 'static {
    /// Records `account` (idempotent: deliveries come at least once).
    fn record(
        &self,
        account: &AccountCreated,
    ) -> impl std::future::Future<Output = crate::problem::ApiResult<()>>;
}

/// `PUT /internal/accounts/{id}` for any [`AccountStore`] (app data `web::Data<S>`);
/// the service credential is required.
pub async fn account_created<S: AccountStore>(
    store: actix_web::web::Data<S>,
    _service: crate::client::ServiceCaller,
    path: actix_web::web::Path<Uuid>,
    body: crate::extract::Json<AccountCreated>,
) -> crate::problem::ApiResult<actix_web::HttpResponse> {
    body.check_path(path.into_inner())?;
    store.record(&body).await?;
    Ok(actix_web::HttpResponse::NoContent().finish())
}
