//! The auth service's queries, one function per query.

use crate::schema::{deletions, exports, refresh_tokens, revocations, users};
use crate::tokens;
use agora_common::accounts::AccountCreated;
use agora_common::jobs;
use agora_common::revocations::Revocation;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// An active account's row.
#[derive(Debug, Clone, Queryable)]
pub struct Account {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
    /// Its tokens' `ver`: a password change raises it.
    pub token_version: i64,
}

/// The columns of an [`Account`]. Email and password are only ever absent from an
/// account being erased, which [`active`] leaves out.
type AccountColumns = (
    users::id,
    users::username,
    diesel::dsl::AssumeNotNull<users::email>,
    diesel::dsl::AssumeNotNull<users::password_hash>,
    users::created_at,
    users::token_version,
);

fn account() -> AccountColumns {
    (
        users::id,
        users::username,
        users::email.assume_not_null(),
        users::password_hash.assume_not_null(),
        users::created_at,
        users::token_version,
    )
}

/// Accounts that are not being erased.
fn active() -> diesel::dsl::IsNull<users::deleted_at> {
    users::deleted_at.is_null()
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
    // An erased account's username stays taken through its quarantine; its email is
    // gone from the row.
    let rows: Vec<(String, Option<String>)> = users::table
        .filter(users::username.eq(username).or(users::email.eq(email)))
        .select((users::username, users::email))
        .load(conn)
        .await?;
    Ok((
        rows.iter().any(|(u, _)| u == username),
        rows.iter().any(|(_, e)| e.as_deref() == Some(email)),
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
        let account: Account = diesel::insert_into(users::table)
            .values(NewAccountRow {
                id: Uuid::now_v7(),
                username,
                email,
                password_hash,
            })
            .returning(account())
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
    let query = users::table.filter(active()).select(account()).into_boxed();
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
        .filter(active())
        .select(account())
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
        // An account being erased has no live refresh token; this is the backstop.
        let Some(account) = users::table
            .find(token.user_id)
            .filter(active())
            .select(account())
            .first(conn)
            .await
            .optional()?
        else {
            return Ok(Rotation::Invalid);
        };
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

/// Sets a new password hash, raises the token version (the access tokens issued before
/// are refused: see [`revoke_access`]) and revokes every refresh token of the user,
/// atomically.
pub async fn change_password(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    new_hash: &str,
    access_ttl: chrono::Duration,
) -> Result<Revocation, Error> {
    conn.transaction::<_, Error, _>(async |conn| {
        let version: i64 = diesel::update(users::table.find(user_id).filter(active()))
            .set((
                users::password_hash.eq(new_hash),
                users::token_version.eq(users::token_version + 1),
            ))
            .returning(users::token_version)
            .get_result(conn)
            .await?;
        let revocation = revoke_access(conn, user_id, version, access_ttl).await?;
        revoke_all_refresh_tokens(conn, user_id).await?;
        Ok(revocation)
    })
    .await
}

/// Refuses the user's access tokens below `below_version` until the last of them has
/// expired (`access_ttl` and the verifiers' leeway from now).
async fn revoke_access(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    below_version: i64,
    access_ttl: chrono::Duration,
) -> Result<Revocation, Error> {
    let revocation = Revocation {
        user_id,
        below_version,
        until: Utc::now() + access_ttl + chrono::Duration::seconds(60),
    };
    diesel::insert_into(revocations::table)
        .values((
            revocations::user_id.eq(revocation.user_id),
            revocations::below_version.eq(revocation.below_version),
            revocations::until.eq(revocation.until),
        ))
        .execute(conn)
        .await?;
    Ok(revocation)
}

/// Revokes every live refresh token of the user (in the caller's transaction).
async fn revoke_all_refresh_tokens(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
) -> Result<(), Error> {
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
    .set(refresh_tokens::revoked_at.eq(Utc::now()))
    .execute(conn)
    .await?;
    Ok(())
}

/// The job kinds of erasure deliveries start with this, then the service's name.
pub const ERASING: &str = "account.erasing:";

/// An erasure as its owner sees it.
#[derive(Debug, Clone, Queryable)]
pub struct Deletion {
    pub requested_at: DateTime<Utc>,
    pub erased_at: Option<DateTime<Utc>>,
}

/// A started erasure.
#[derive(Debug)]
pub struct Erasure {
    pub deletion: Uuid,
    pub revocation: Revocation,
}

/// Starts erasing an active account, atomically: it stops being active (no login, no
/// refresh; its email is free at once, its username stays taken), every refresh token
/// and access token of it is revoked, deliveries of its creation still queued are
/// dropped, and one erasure job per service in `services` is queued. `None` when the
/// account was no longer active.
pub async fn start_erasure(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    services: &[&'static str],
    access_ttl: chrono::Duration,
) -> Result<Option<Erasure>, Error> {
    conn.transaction::<_, Error, _>(async |conn| {
        let now = Utc::now();
        let gone = diesel::update(users::table.find(user_id).filter(active()))
            .set((
                users::deleted_at.eq(now),
                users::email.eq(None::<String>),
                users::password_hash.eq(None::<String>),
            ))
            .execute(conn)
            .await?;
        if gone == 0 {
            return Ok(None);
        }
        let revocation = revoke_access(
            conn,
            user_id,
            agora_common::revocations::ALL_VERSIONS,
            access_ttl,
        )
        .await?;
        revoke_all_refresh_tokens(conn, user_id).await?;
        // A creation delivered after the erasure would bring a profile back.
        diesel::sql_query(
            "DELETE FROM agora_jobs WHERE kind LIKE 'account.created:%' AND payload ->> 'id' = $1",
        )
        .bind::<diesel::sql_types::Text, _>(user_id.to_string())
        .execute(conn)
        .await?;
        // Unguessable: the status route is public.
        let deletion = Uuid::new_v4();
        diesel::insert_into(deletions::table)
            .values((
                deletions::id.eq(deletion),
                deletions::user_id.eq(user_id),
                deletions::requested_at.eq(now),
                deletions::pending.eq(services.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()),
            ))
            .execute(conn)
            .await?;
        let payload = serde_json::json!({"id": user_id, "deletion_id": deletion});
        for service in services {
            jobs::enqueue(conn, &format!("{ERASING}{service}"), &payload).await?;
        }
        Ok(Some(Erasure {
            deletion,
            revocation,
        }))
    })
    .await
}

/// `service` has erased its part of `deletion`; when it was the last one, the
/// erasure is complete (and, with `log`, a write to the erasure log is queued).
/// Idempotent. Returns whether the erasure is complete.
pub async fn acknowledge_erasure(
    conn: &mut AsyncPgConnection,
    deletion: Uuid,
    service: &str,
    log: bool,
) -> Result<bool, Error> {
    conn.transaction::<_, Error, _>(async |conn| {
        #[derive(QueryableByName)]
        struct Acknowledged {
            #[diesel(sql_type = diesel::sql_types::Uuid)]
            user_id: Uuid,
            #[diesel(sql_type = diesel::sql_types::Integer)]
            pending: i32,
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
            erased_at: Option<DateTime<Utc>>,
        }
        let row: Option<Acknowledged> = diesel::sql_query(
            "UPDATE deletions SET pending = array_remove(pending, $2) WHERE id = $1 \
             RETURNING user_id, cardinality(pending) AS pending, erased_at",
        )
        .bind::<diesel::sql_types::Uuid, _>(deletion)
        .bind::<diesel::sql_types::Text, _>(service)
        .get_result(conn)
        .await
        .optional()?;
        let Some(Acknowledged {
            user_id,
            pending,
            erased_at,
        }) = row
        else {
            return Ok(false);
        };
        if pending > 0 {
            return Ok(false);
        }
        if erased_at.is_none() {
            let now = Utc::now();
            diesel::update(deletions::table.find(deletion))
                .set(deletions::erased_at.eq(now))
                .execute(conn)
                .await?;
            // Nothing of the person is left but the username's reservation (their
            // archives went with the photos service's part).
            diesel::delete(refresh_tokens::table.filter(refresh_tokens::user_id.eq(user_id)))
                .execute(conn)
                .await?;
            diesel::delete(exports::table.filter(exports::user_id.eq(user_id)))
                .execute(conn)
                .await?;
            if log {
                let record = agora_common::accounts::ErasureRecord {
                    account_id: user_id,
                    erased_at: now,
                };
                let payload = serde_json::to_value(&record)
                    .map_err(|e| Error::SerializationError(Box::new(e)))?;
                jobs::enqueue(conn, crate::erasure_log::LOG_JOB, &payload).await?;
            }
        }
        Ok(true)
    })
    .await
}

/// An erasure's state by its id.
pub async fn deletion(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<Deletion>, Error> {
    deletions::table
        .find(id)
        .select((deletions::requested_at, deletions::erased_at))
        .first(conn)
        .await
        .optional()
}

/// The live revocations recorded after `since` (all live ones without it), and the
/// database's time.
pub async fn revocations_since(
    conn: &mut AsyncPgConnection,
    since: Option<DateTime<Utc>>,
) -> Result<agora_common::revocations::RevocationFeed, Error> {
    let now: DateTime<Utc> =
        diesel::select(diesel::dsl::sql::<diesel::sql_types::Timestamptz>("now()"))
            .get_result(conn)
            .await?;
    let mut query = revocations::table
        .filter(revocations::until.gt(now))
        .select((
            revocations::user_id,
            revocations::below_version,
            revocations::until,
        ))
        .into_boxed();
    if let Some(since) = since {
        query = query.filter(revocations::recorded_at.gt(since));
    }
    let rows: Vec<(Uuid, i64, DateTime<Utc>)> = query.load(conn).await?;
    Ok(agora_common::revocations::RevocationFeed {
        now,
        revocations: rows
            .into_iter()
            .map(|(user_id, below_version, until)| Revocation {
                user_id,
                below_version,
                until,
            })
            .collect(),
    })
}

/// Forgets revocations that no longer matter, and frees the usernames of accounts
/// erased more than `quarantine` ago. Returns how many usernames were freed.
pub async fn forget_erased(
    conn: &mut AsyncPgConnection,
    quarantine: chrono::Duration,
) -> Result<usize, Error> {
    diesel::delete(revocations::table.filter(revocations::until.lt(Utc::now())))
        .execute(conn)
        .await?;
    diesel::sql_query(
        "DELETE FROM users u USING deletions d \
         WHERE d.user_id = u.id AND d.erased_at < $1 AND u.deleted_at IS NOT NULL",
    )
    .bind::<diesel::sql_types::Timestamptz, _>(Utc::now() - quarantine)
    .execute(conn)
    .await
}

/// Re-applies a logged erasure to a restored auth database (before the platform
/// serves): the account is erased as it was — no email, no password, no session, its
/// username reserved from `erased_at` — and tokens issued before are refused.
/// Idempotent; an account the backup never had is left alone.
pub async fn reapply_erasure(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    erased_at: DateTime<Utc>,
) -> Result<(), Error> {
    conn.transaction::<_, Error, _>(async |conn| {
        let found = diesel::update(users::table.find(user_id))
            .set((
                users::deleted_at.eq(diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>>(
                    "coalesce(deleted_at, now())",
                )),
                users::email.eq(None::<String>),
                users::password_hash.eq(None::<String>),
            ))
            .execute(conn)
            .await?;
        if found == 0 {
            return Ok(());
        }
        revoke_access(
            conn,
            user_id,
            agora_common::revocations::ALL_VERSIONS,
            chrono::Duration::hours(1),
        )
        .await?;
        diesel::delete(refresh_tokens::table.filter(refresh_tokens::user_id.eq(user_id)))
            .execute(conn)
            .await?;
        diesel::delete(exports::table.filter(exports::user_id.eq(user_id)))
            .execute(conn)
            .await?;
        diesel::sql_query("DELETE FROM agora_jobs WHERE payload ->> 'id' = $1 AND kind LIKE 'account.%'")
            .bind::<diesel::sql_types::Text, _>(user_id.to_string())
            .execute(conn)
            .await?;
        // Done, as the log says: its quarantine runs from then.
        diesel::sql_query(
            "INSERT INTO deletions (id, user_id, requested_at, erased_at, pending) \
             SELECT $1, $2, $3, $3, '{}' WHERE NOT EXISTS \
               (SELECT 1 FROM deletions WHERE user_id = $2 AND erased_at IS NOT NULL)",
        )
        .bind::<diesel::sql_types::Uuid, _>(Uuid::new_v4())
        .bind::<diesel::sql_types::Uuid, _>(user_id)
        .bind::<diesel::sql_types::Timestamptz, _>(erased_at)
        .execute(conn)
        .await?;
        diesel::sql_query("UPDATE deletions SET pending = '{}', erased_at = coalesce(erased_at, $2) WHERE user_id = $1")
            .bind::<diesel::sql_types::Uuid, _>(user_id)
            .bind::<diesel::sql_types::Timestamptz, _>(erased_at)
            .execute(conn)
            .await?;
        Ok(())
    })
    .await
}

/// The job kind of exports.
pub const EXPORT_JOB: &str = "account.export";

/// How long an archive can be fetched once ready.
pub const EXPORT_TTL: chrono::Duration = chrono::Duration::days(7);

/// The constraint that keeps one pending or running export per account.
const ONE_EXPORT_AT_A_TIME: &str = "exports_one_at_a_time";

/// What a request for an export came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportRequest {
    /// Queued, with its id.
    Queued(Uuid),
    /// One is pending or running already.
    Running,
    /// `per_day` were requested in the last 24 hours.
    TooMany,
}

/// Queues an export of `user`'s data, unless one is under way or `per_day` were
/// requested in the last day.
pub async fn request_export(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    per_day: i64,
) -> Result<ExportRequest, Error> {
    let outcome = conn
        .transaction::<_, Error, _>(async |conn| {
            let rows: Vec<String> = exports::table
                .filter(exports::user_id.eq(user))
                .filter(exports::requested_at.gt(Utc::now() - chrono::Duration::days(1)))
                .select(exports::status)
                .load(conn)
                .await?;
            if rows.iter().any(|s| s == "pending" || s == "running") {
                return Ok(ExportRequest::Running);
            }
            if i64::try_from(rows.len()).unwrap_or(i64::MAX) >= per_day {
                return Ok(ExportRequest::TooMany);
            }
            let id = Uuid::new_v4();
            diesel::insert_into(exports::table)
                .values((
                    exports::id.eq(id),
                    exports::user_id.eq(user),
                    exports::status.eq("pending"),
                ))
                .execute(conn)
                .await?;
            jobs::enqueue(
                conn,
                EXPORT_JOB,
                &serde_json::json!({"id": id, "user_id": user}),
            )
            .await?;
            Ok(ExportRequest::Queued(id))
        })
        .await;
    // A concurrent request of the same person won the race.
    match outcome {
        Err(e) if agora_common::db::unique_violation(&e) == Some(ONE_EXPORT_AT_A_TIME) => {
            Ok(ExportRequest::Running)
        }
        other => other,
    }
}

/// An export as its owner sees it.
#[derive(Debug, Clone, Queryable)]
pub struct Export {
    pub id: Uuid,
    pub status: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub size_bytes: Option<i64>,
}

/// `user`'s export `id` (`None` for anybody else's).
pub async fn export_of(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    id: Uuid,
) -> Result<Option<Export>, Error> {
    exports::table
        .find(id)
        .filter(exports::user_id.eq(user))
        .select((
            exports::id,
            exports::status,
            exports::expires_at,
            exports::size_bytes,
        ))
        .first(conn)
        .await
        .optional()
}

/// Marks an export running; its owner, unless it is no longer to be built.
pub async fn start_export(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<Uuid>, Error> {
    diesel::update(
        exports::table
            .find(id)
            .filter(exports::status.eq_any(["pending", "running"])),
    )
    .set(exports::status.eq("running"))
    .returning(exports::user_id)
    .get_result(conn)
    .await
    .optional()
}

/// Records how an export ended: ready with the archive's size, or failed.
pub async fn finish_export(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    size: Option<u64>,
) -> Result<(), Error> {
    let now = Utc::now();
    let target = exports::table
        .find(id)
        .filter(exports::status.eq("running"));
    match size {
        Some(size) => {
            diesel::update(target)
                .set((
                    exports::status.eq("ready"),
                    exports::ready_at.eq(now),
                    exports::expires_at.eq(now + EXPORT_TTL),
                    exports::size_bytes.eq(i64::try_from(size).unwrap_or(i64::MAX)),
                ))
                .execute(conn)
                .await?
        }
        None => {
            diesel::update(target)
                .set(exports::status.eq("failed"))
                .execute(conn)
                .await?
        }
    };
    Ok(())
}

/// Ready exports past their 7 days: `(owner, id)`.
pub async fn expired_exports(conn: &mut AsyncPgConnection) -> Result<Vec<(Uuid, Uuid)>, Error> {
    exports::table
        .filter(exports::status.eq("ready"))
        .filter(exports::expires_at.lt(Utc::now()))
        .select((exports::user_id, exports::id))
        .limit(1000)
        .load(conn)
        .await
}

/// Marks an export expired (its archive is gone).
pub async fn expire_export(conn: &mut AsyncPgConnection, id: Uuid) -> Result<(), Error> {
    diesel::update(exports::table.find(id))
        .set(exports::status.eq("expired"))
        .execute(conn)
        .await
        .map(drop)
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
