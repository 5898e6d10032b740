//! The auth service's queries, one function per query.

use crate::schema::{refresh_tokens, users};
use crate::tokens;
use agora_common::accounts::AccountCreated;
use agora_common::jobs;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// An account row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct Account {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Insertable)]
#[diesel(table_name = users)]
struct NewAccountRow<'a> {
    id: Uuid,
    username: &'a str,
    email: &'a str,
    password_hash: &'a str,
}

#[derive(Insertable)]
#[diesel(table_name = refresh_tokens)]
struct NewRefreshToken<'a> {
    id: Uuid,
    parent_id: Option<Uuid>,
    family_id: Uuid,
    user_id: Uuid,
    token_hash: &'a [u8],
    expires_at: DateTime<Utc>,
}

/// Constraint names the handlers map to 409 messages.
pub const USERNAME_TAKEN: &str = "users_username_key";
/// See [`USERNAME_TAKEN`].
pub const EMAIL_TAKEN: &str = "users_email_key";

/// Which of the two identifiers are already registered.
pub async fn taken(
    conn: &mut AsyncPgConnection,
    username: &str,
    email: &str,
) -> Result<(bool, bool), Error> {
    let rows: Vec<(String, String)> = users::table
        .filter(users::username.eq(username).or(users::email.eq(email)))
        .select((users::username, users::email))
        .load(conn)
        .await?;
    Ok((
        rows.iter().any(|(u, _)| u == username),
        rows.iter().any(|(_, e)| e == email),
    ))
}

/// Creates an account, the first refresh token of a new family and one delivery job
/// per subscriber (`delivery_kinds`), atomically: the account exists if and only if
/// the other services will hear of it. Returns the account and the jobs' ids.
pub async fn create_account(
    conn: &mut AsyncPgConnection,
    username: &str,
    email: &str,
    password_hash: &str,
    token_hash: &[u8],
    token_expires_at: DateTime<Utc>,
    delivery_kinds: &[&'static str],
) -> Result<(Account, Vec<Uuid>), Error> {
    conn.transaction::<_, Error, _>(async |conn| {
        let account = diesel::insert_into(users::table)
            .values(NewAccountRow {
                id: Uuid::now_v7(),
                username,
                email,
                password_hash,
            })
            .returning(Account::as_returning())
            .get_result(conn)
            .await?;
        insert_refresh_token(
            conn,
            account.id,
            Uuid::now_v7(),
            token_hash,
            token_expires_at,
        )
        .await?;
        let payload = serde_json::to_value(AccountCreated {
            id: account.id,
            username: account.username.clone(),
            created_at: account.created_at,
        })
        .map_err(|e| Error::SerializationError(Box::new(e)))?;
        let mut jobs = Vec::with_capacity(delivery_kinds.len());
        for kind in delivery_kinds {
            jobs.push(jobs::enqueue(conn, kind, &payload).await?);
        }
        Ok((account, jobs))
    })
    .await
}

/// An account by username or by email (whichever `login` looks like).
pub async fn find_for_login(
    conn: &mut AsyncPgConnection,
    login: &str,
) -> Result<Option<Account>, Error> {
    let query = users::table.select(Account::as_select()).into_boxed();
    let query = if login.contains('@') {
        query.filter(users::email.eq(login))
    } else {
        query.filter(users::username.eq(login))
    };
    query.first(conn).await.optional()
}

/// An account by id.
pub async fn find_by_id(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<Account>, Error> {
    users::table
        .find(id)
        .select(Account::as_select())
        .first(conn)
        .await
        .optional()
}

/// Stores the first refresh token of a family.
pub async fn insert_refresh_token(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    family_id: Uuid,
    token_hash: &[u8],
    expires_at: DateTime<Utc>,
) -> Result<(), Error> {
    insert_successor(conn, None, user_id, family_id, token_hash, expires_at).await
}

async fn insert_successor(
    conn: &mut AsyncPgConnection,
    parent_id: Option<Uuid>,
    user_id: Uuid,
    family_id: Uuid,
    token_hash: &[u8],
    expires_at: DateTime<Utc>,
) -> Result<(), Error> {
    diesel::insert_into(refresh_tokens::table)
        .values(NewRefreshToken {
            id: Uuid::now_v7(),
            parent_id,
            family_id,
            user_id,
            token_hash,
            expires_at,
        })
        .execute(conn)
        .await
        .map(|_| ())
}

/// The state of a stored refresh token.
#[derive(Queryable, Selectable)]
#[diesel(table_name = refresh_tokens)]
struct StoredToken {
    id: Uuid,
    family_id: Uuid,
    user_id: Uuid,
    expires_at: DateTime<Utc>,
    rotated_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    successor_sealed: Option<Vec<u8>>,
}

/// What presenting a refresh token did.
#[derive(Debug)]
pub enum Rotation {
    /// Valid: the account, and the refresh token that now continues the session (a
    /// new one, or the same successor again for a re-presentation within the grace
    /// period).
    Rotated {
        /// Whose session it is.
        account: Account,
        /// The successor token to hand out.
        refresh_token: String,
    },
    /// Already rotated before: the whole family is now revoked.
    Reused,
    /// Unknown, revoked or expired.
    Invalid,
}

/// A successor as [`rotate_refresh_token`] checks it.
#[derive(Queryable)]
struct Successor {
    token_hash: Vec<u8>,
    rotated_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

/// Spends a refresh token and stores its successor (`fresh`: the token and its hash),
/// in one transaction; the successor is also kept sealed on the spent row (see
/// [`tokens::seal_successor`]). The row lock makes concurrent uses of one token see
/// each other: the later ones are re-presentations. Within `grace` of the rotation,
/// while the successor is unused, a re-presentation gets that same successor back (a
/// lost response, several tabs), so there is only ever one line of tokens; any other
/// re-presentation is reuse and revokes the family.
pub async fn rotate_refresh_token(
    conn: &mut AsyncPgConnection,
    presented: &str,
    fresh: (&str, &[u8]),
    new_expires_at: DateTime<Utc>,
    grace: chrono::Duration,
) -> Result<Rotation, Error> {
    conn.transaction::<_, Error, _>(async |conn| {
        let row = refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(tokens::refresh_token_hash(presented)))
            .select(StoredToken::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()?;
        let Some(token) = row else {
            return Ok(Rotation::Invalid);
        };
        let now = Utc::now();
        if token.revoked_at.is_some() || token.expires_at <= now {
            return Ok(Rotation::Invalid);
        }
        let refresh_token = match token.rotated_at {
            Some(rotated_at) => {
                let successors: Vec<Successor> = refresh_tokens::table
                    .filter(refresh_tokens::parent_id.eq(token.id))
                    .select((
                        refresh_tokens::token_hash,
                        refresh_tokens::rotated_at,
                        refresh_tokens::revoked_at,
                    ))
                    .for_update()
                    .load(conn)
                    .await?;
                let replay = match (successors.as_slice(), &token.successor_sealed) {
                    ([only], Some(sealed))
                        if now - rotated_at <= grace
                            && only.rotated_at.is_none()
                            && only.revoked_at.is_none() =>
                    {
                        tokens::unseal_successor(presented, sealed).filter(|successor| {
                            tokens::refresh_token_hash(successor) == only.token_hash
                        })
                    }
                    _ => None,
                };
                let Some(successor) = replay else {
                    revoke_family(conn, token.family_id).await?;
                    return Ok(Rotation::Reused);
                };
                successor
            }
            None => {
                let (successor, successor_hash) = fresh;
                diesel::update(refresh_tokens::table.find(token.id))
                    .set((
                        refresh_tokens::rotated_at.eq(now),
                        refresh_tokens::successor_sealed
                            .eq(tokens::seal_successor(presented, successor)),
                    ))
                    .execute(conn)
                    .await?;
                // The parent's sealed copy of this token is useless from now on (its
                // replays are reuse: this token is rotated), and housekeeping clears it
                // after the grace period. Not cleared here: that would lock the parent
                // after this row, the reverse of a replay of the parent, a deadlock.
                insert_successor(
                    conn,
                    Some(token.id),
                    token.user_id,
                    token.family_id,
                    successor_hash,
                    new_expires_at,
                )
                .await?;
                successor.to_owned()
            }
        };
        let account = users::table
            .find(token.user_id)
            .select(Account::as_select())
            .first(conn)
            .await?;
        Ok(Rotation::Rotated {
            account,
            refresh_token,
        })
    })
    .await
}

/// Forgets the sealed successors of tokens rotated longer than `grace` ago: past the
/// grace period nothing may unseal them. Returns the rows cleared.
pub async fn forget_sealed_successors(
    conn: &mut AsyncPgConnection,
    grace: chrono::Duration,
) -> Result<usize, Error> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::successor_sealed.is_not_null())
            .filter(refresh_tokens::rotated_at.lt(Utc::now() - grace)),
    )
    .set(refresh_tokens::successor_sealed.eq(None::<Vec<u8>>))
    .execute(conn)
    .await
}

/// Revokes every token of a family. The rows are locked first, in a statement of their
/// own: a rotation committing meanwhile (its new token invisible to the first
/// statement's snapshot) is waited for, and the `UPDATE`, with a fresh snapshot, then
/// revokes its new token too. Callers run it in a transaction.
async fn revoke_family(conn: &mut AsyncPgConnection, family: Uuid) -> Result<usize, Error> {
    refresh_tokens::table
        .filter(refresh_tokens::family_id.eq(family))
        .select(refresh_tokens::id)
        .for_update()
        .load::<Uuid>(conn)
        .await?;
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(family))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(Utc::now()))
    .execute(conn)
    .await
}

/// Revokes the family of a token, if the token belongs to `user_id`.
pub async fn revoke_family_of(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8],
    user_id: Uuid,
) -> Result<usize, Error> {
    let family: Option<Uuid> = refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .filter(refresh_tokens::user_id.eq(user_id))
        .select(refresh_tokens::family_id)
        .first(conn)
        .await
        .optional()?;
    match family {
        Some(family) => {
            conn.transaction::<_, Error, _>(async |conn| revoke_family(conn, family).await)
                .await
        }
        None => Ok(0),
    }
}

/// Sets a new password hash and revokes every refresh token of the user, atomically.
pub async fn change_password(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    new_hash: &str,
) -> Result<(), Error> {
    conn.transaction::<_, Error, _>(async |conn| {
        let now = Utc::now();
        diesel::update(users::table.find(user_id))
            .set(users::password_hash.eq(new_hash))
            .execute(conn)
            .await?;
        // Lock first, update in a statement of its own: see `revoke_family`.
        refresh_tokens::table
            .filter(refresh_tokens::user_id.eq(user_id))
            .select(refresh_tokens::id)
            .for_update()
            .load::<Uuid>(conn)
            .await?;
        diesel::update(
            refresh_tokens::table
                .filter(refresh_tokens::user_id.eq(user_id))
                .filter(refresh_tokens::revoked_at.is_null()),
        )
        .set(refresh_tokens::revoked_at.eq(now))
        .execute(conn)
        .await?;
        Ok(())
    })
    .await
}

/// Deletes refresh tokens that expired more than a day ago (the day keeps a window in
/// which re-use of an expired-but-rotated token is still recognised and logged). Only
/// one replica does it at a time: the others find the advisory lock taken and skip.
/// Returns `None` when skipped.
pub async fn purge_expired_tokens(conn: &mut AsyncPgConnection) -> Result<Option<usize>, Error> {
    conn.transaction::<_, Error, _>(async |conn| {
        #[derive(QueryableByName)]
        struct Locked {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            locked: bool,
        }
        let lock = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
            .bind::<diesel::sql_types::BigInt, _>(agora_common::db::advisory_lock_key(
                "auth.purge_expired_tokens",
            ))
            .get_result::<Locked>(conn)
            .await?;
        if !lock.locked {
            return Ok(None);
        }
        diesel::delete(
            refresh_tokens::table
                .filter(refresh_tokens::expires_at.lt(Utc::now() - chrono::Duration::days(1))),
        )
        .execute(conn)
        .await
        .map(Some)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_common::db::{advisory_lock_key, migrate, pool};
    use agora_common::testing::fresh_database;

    #[actix_web::test]
    async fn only_one_replica_purges_at_a_time() {
        let url = fresh_database("purge").await;
        migrate(&url, crate::MIGRATIONS, advisory_lock_key("auth"))
            .await
            .unwrap();
        let pool = pool(&url, 2).unwrap();
        let mut other_replica = pool.get().await.unwrap();
        diesel::sql_query("SELECT pg_advisory_lock($1)")
            .bind::<diesel::sql_types::BigInt, _>(advisory_lock_key("auth.purge_expired_tokens"))
            .execute(&mut other_replica)
            .await
            .unwrap();
        let mut conn = pool.get().await.unwrap();
        assert_eq!(purge_expired_tokens(&mut conn).await.unwrap(), None);
        diesel::sql_query("SELECT pg_advisory_unlock_all()")
            .execute(&mut other_replica)
            .await
            .unwrap();
        assert_eq!(purge_expired_tokens(&mut conn).await.unwrap(), Some(0));
    }
}
