//! Internal routes for other services (never routed by the gateway or the edge; the
//! service credential is required).

use super::UsersState;
use crate::db;
use agora_common::ApiResult;
use agora_common::accounts::{AccountCreated, AccountStore};

/// `PUT /internal/accounts/{id}` (the kit's handler): an account exists; its profile
/// is created.
impl AccountStore for UsersState {
    async fn record(&self, account: &AccountCreated) -> ApiResult<()> {
        let conn = &mut *self.conn().await?;
        db::upsert_profile(conn, account.id, &account.username, account.created_at).await?;
        Ok(())
    }
}
