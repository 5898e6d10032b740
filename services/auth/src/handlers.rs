//! Request handlers: extract, authorize, one query, map to the response.

use crate::db::{self, Account, Rotation};
use crate::model::*;
use crate::passwords::Passwords;
use crate::throttle::{LoginThrottle, Subject};
use crate::tokens::{TokenIssuer, new_refresh_token, refresh_token_hash};
use actix_web::http::Method;
use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use agora_common::auth::{bearer_token, identify};
use agora_common::client_addr::{TrustedProxies, rate_key};
use agora_common::db::{DbPool, unique_violation};
use agora_common::ratelimit::RateLimiter;
use agora_common::{ApiError, ApiResult, Caller, FieldError, TokenVerifier};
use agora_common::{notices, photos};
use chrono::Utc;
use std::borrow::Cow;
use std::net::IpAddr;

/// Throttles shared by all workers.
pub struct Throttles {
    pub registrations: RateLimiter<IpAddr>,
    pub logins: RateLimiter<IpAddr>,
    pub failed_logins: RateLimiter<IpAddr>,
    pub accounts: LoginThrottle,
}

/// Everything the handlers share.
pub struct AuthState {
    pub pool: DbPool,
    pub passwords: Passwords,
    pub tokens: TokenIssuer,
    pub refresh_ttl: chrono::Duration,
    pub throttles: Throttles,
    pub trusted_proxies: TrustedProxies,
    pub reuse_grace: chrono::Duration,
    pub deliveries: Deliveries,
    /// How long an erased account's username stays taken.
    pub username_quarantine: chrono::Duration,
    /// Data exports.
    pub exports: Exports,
}

/// Data exports: where archives are kept (the photos service), the runner that builds
/// them, and how many one account may request a day.
pub struct Exports {
    pub photos: Option<agora_common::client::ServiceClient>,
    pub runner: Option<agora_common::jobs::JobRunner>,
    pub per_day: i64,
}

/// The outbox of accounts: which job kinds a registration enqueues, the services an
/// erasure reaches, and the runner that delivers both.
pub struct Deliveries {
    pub kinds: Vec<&'static str>,
    pub erasing: Vec<&'static str>,
    pub runner: Option<agora_common::jobs::JobRunner>,
}

/// How long a registration waits for its deliveries before answering anyway (what is
/// not delivered by then is retried in the background).
const DELIVERY_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

impl Deliveries {
    /// Delivers a registration's jobs now, so the profile usually exists when the client
    /// gets its 201; failures stay queued for the background runner.
    async fn deliver_now(&self, jobs: &[uuid::Uuid]) {
        let Some(runner) = &self.runner else { return };
        match tokio::time::timeout(DELIVERY_WAIT, runner.run_now(jobs)).await {
            Ok(Ok(pass)) if pass.failed == 0 => {}
            Ok(Ok(pass)) => {
                tracing::warn!(
                    failed = pass.failed,
                    "account deliveries failed; they will be retried"
                )
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "account deliveries not run; they will be retried")
            }
            Err(_) => tracing::warn!("account deliveries are slow; they will be retried"),
        }
    }
}

/// The longest `login` accepted (an email address's maximum length).
const MAX_LOGIN_CHARS: usize = 254;
/// The longest password accepted.
const MAX_PASSWORD_CHARS: usize = 128;

const UNSPECIFIED: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);

impl AuthState {
    /// How long an access token lives.
    fn access_ttl(&self) -> chrono::Duration {
        chrono::Duration::seconds(
            i64::try_from(self.tokens.access_ttl_secs).unwrap_or(i64::MAX / 1000),
        )
    }

    /// Checks the caller's own password under the login throttle (per account and
    /// client, kept in the database): `wrong` when it does not match.
    async fn check_own_password(
        &self,
        req: &HttpRequest,
        caller: &Caller,
        password: String,
        wrong: ApiError,
    ) -> ApiResult<Account> {
        let throttle = &self.throttles.accounts;
        let (key, client) = (
            throttle.key(Subject::Account(caller.user_id)),
            self.client(req),
        );
        let mut conn = agora_common::db::checkout(&self.pool).await?;
        throttle
            .attempt(&mut conn, key, client)
            .await?
            .map_err(rate_limited)?;
        let account =
            db::find_by_id(&mut conn, caller.user_id)
                .await?
                .ok_or(ApiError::NotFound(Cow::Borrowed(
                    "this account no longer exists",
                )))?;
        // Not held during the deliberately slow hash.
        drop(conn);
        if !self
            .passwords
            .verify(password, Some(account.password_hash.clone()))
            .await?
        {
            return Err(wrong);
        }
        throttle
            .succeeded(
                &mut *agora_common::db::checkout(&self.pool).await?,
                key,
                client,
            )
            .await?;
        Ok(account)
    }

    /// The client's rate-limit key (its address; an IPv6 client's /64).
    fn client(&self, req: &HttpRequest) -> IpAddr {
        rate_key(self.trusted_proxies.client_addr(req).unwrap_or(UNSPECIFIED))
    }

    /// Tokens for an account whose new refresh token is already stored.
    fn token_response(&self, account: Account, refresh_token: String) -> ApiResult<TokenResponse> {
        let access_token = self
            .tokens
            .access_token_at(account.id, &account.username, account.token_version)
            .map_err(ApiError::internal)?;
        Ok(TokenResponse {
            user: user_view(account),
            access_token,
            refresh_token,
            token_type: "Bearer",
            expires_in: self.tokens.access_ttl_secs,
        })
    }
}

fn user_view(a: Account) -> UserView {
    UserView {
        id: a.id,
        username: a.username,
        email: a.email,
        created_at: a.created_at,
    }
}

fn rate_limited(retry_after_secs: u64) -> ApiError {
    ApiError::TooManyRequests { retry_after_secs }
}

fn bad_credentials() -> ApiError {
    ApiError::Unauthorized(Cow::Borrowed("invalid login or password"))
}

/// The shape every presented refresh token must have (the contract's bounds).
fn check_refresh_token(token: &str) -> ApiResult<()> {
    match token.chars().count() {
        0 => Err(ApiError::invalid_field("refresh_token", "is required")),
        1..=512 => Ok(()),
        _ => Err(ApiError::invalid_field(
            "refresh_token",
            "must be at most 512 characters",
        )),
    }
}

fn new_token() -> ApiResult<(String, Vec<u8>)> {
    new_refresh_token().map_err(ApiError::internal)
}

/// Create an account and sign in.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, body = TokenResponse),
        (status = 400, description = "invalid fields", body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "username or email taken", body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 429, description = "too many registrations from this address", body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn register(
    state: web::Data<AuthState>,
    req: HttpRequest,
    body: agora_common::extract::Json<RegisterRequest>,
) -> ApiResult<HttpResponse> {
    state
        .throttles
        .registrations
        .acquire(&state.client(&req))
        .map_err(rate_limited)?;
    let account = body.into_inner().validate().map_err(ApiError::Validation)?;
    let (username, email) = (account.username.as_str(), account.email.as_str());
    // Cheap early answer before the deliberately slow hash; the unique constraints
    // below still decide races.
    let (username_taken, email_taken) = db::taken(
        &mut *agora_common::db::checkout(&state.pool).await?,
        username,
        email,
    )
    .await?;
    if username_taken || email_taken {
        return Err(taken_conflict(username_taken));
    }
    let password_hash = state.passwords.hash(account.password).await?;
    let (refresh, refresh_hash) = new_token()?;
    let expires = Utc::now() + state.refresh_ttl;
    let mut conn = agora_common::db::checkout(&state.pool).await?;
    let created = db::create_account(
        &mut conn,
        username,
        email,
        &password_hash,
        &refresh_hash,
        expires,
        &state.deliveries.kinds,
    )
    .await;
    drop(conn);
    let (account, jobs) = match created {
        Ok(created) => created,
        Err(e) => match unique_violation(&e) {
            Some(db::USERNAME_TAKEN) => return Err(taken_conflict(true)),
            Some(db::EMAIL_TAKEN) => return Err(taken_conflict(false)),
            _ => return Err(e.into()),
        },
    };
    tracing::info!(user_id = %account.id, "account registered");
    state.deliveries.deliver_now(&jobs).await;
    Ok(HttpResponse::Created().json(state.token_response(account, refresh)?))
}

fn taken_conflict(username: bool) -> ApiError {
    if username {
        ApiError::Conflict(Cow::Borrowed("that username is taken")).typed("username-taken")
    } else {
        ApiError::Conflict(Cow::Borrowed("that email address is already registered"))
            .typed("email-taken")
    }
}

/// Sign in with username or email.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 400, body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "wrong login or password", body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 429, description = "too many attempts; see Retry-After", body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn login(
    state: web::Data<AuthState>,
    req: HttpRequest,
    body: agora_common::extract::Json<LoginRequest>,
) -> ApiResult<HttpResponse> {
    let LoginRequest { login, password } = body.into_inner();
    let mut errors = Vec::new();
    if login.is_empty() {
        errors.push(FieldError::new("login", "is required"));
    } else if login.chars().count() > MAX_LOGIN_CHARS {
        errors.push(FieldError::new("login", "must be at most 254 characters"));
    }
    let login = login.to_lowercase();
    if password.is_empty() {
        errors.push(FieldError::new("password", "is required"));
    } else if password.chars().count() > MAX_PASSWORD_CHARS {
        errors.push(FieldError::new(
            "password",
            "must be at most 128 characters",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let client = state.client(&req);
    let throttles = &state.throttles;
    throttles.logins.acquire(&client).map_err(rate_limited)?;
    // Taken now and given back on success: attempts in flight count as failures, so a
    // burst of concurrent guesses cannot all pass the check before any is recorded.
    throttles
        .failed_logins
        .acquire(&client)
        .map_err(rate_limited)?;

    // PostgreSQL text cannot hold NUL: such a login names no account.
    let mut conn = agora_common::db::checkout(&state.pool).await?;
    let account = if login.contains('\0') {
        None
    } else {
        db::find_for_login(&mut conn, &login).await?
    };
    // Unknown logins are throttled by name exactly like accounts are by id, so the
    // throttle does not tell which accounts exist.
    let subject = throttles.accounts.key(match &account {
        Some(a) => Subject::Account(a.id),
        None => Subject::Unknown(&login),
    });
    let attempt = throttles.accounts.attempt(&mut conn, subject, client).await;
    // Not held during the deliberately slow hash.
    drop(conn);
    if let Err(refused) = attempt
        .map_err(ApiError::from)
        .and_then(|a| a.map_err(rate_limited))
    {
        throttles.failed_logins.refund(&client);
        return Err(refused);
    }

    let stored = account.as_ref().map(|a| a.password_hash.clone());
    let matched = state.passwords.verify(password, stored).await?;
    let Some(account) = account.filter(|_| matched) else {
        tracing::info!(client = %client, "failed login");
        return Err(bad_credentials());
    };
    let mut conn = agora_common::db::checkout(&state.pool).await?;
    throttles
        .accounts
        .succeeded(&mut conn, subject, client)
        .await?;
    throttles.failed_logins.refund(&client);

    let (refresh, refresh_hash) = new_token()?;
    let expires = Utc::now() + state.refresh_ttl;
    let family = uuid::Uuid::now_v7();
    db::insert_refresh_token(&mut conn, account.id, family, &refresh_hash, expires).await?;
    tracing::info!(user_id = %account.id, "signed in");
    Ok(HttpResponse::Ok().json(state.token_response(account, refresh)?))
}

/// Trade a refresh token for new tokens (rotation).
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "unknown, expired, revoked or re-used token (re-use revokes its family)", body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn refresh(
    state: web::Data<AuthState>,
    body: agora_common::extract::Json<RefreshRequest>,
) -> ApiResult<HttpResponse> {
    let presented = body.into_inner().refresh_token;
    check_refresh_token(&presented)?;
    let (fresh, fresh_hash) = new_token()?;
    let expires = Utc::now() + state.refresh_ttl;
    let mut conn = agora_common::db::checkout(&state.pool).await?;
    match db::rotate_refresh_token(
        &mut conn,
        &presented,
        (&fresh, &fresh_hash),
        expires,
        state.reuse_grace,
    )
    .await?
    {
        Rotation::Rotated {
            account,
            refresh_token,
        } => Ok(HttpResponse::Ok().json(state.token_response(account, refresh_token)?)),
        Rotation::Reused => {
            tracing::warn!("rotated refresh token presented again; its family is revoked");
            Err(ApiError::Unauthorized(Cow::Borrowed(
                "this refresh token was already used; the session is revoked, sign in again",
            ))
            .typed("refresh-token-reused"))
        }
        Rotation::Invalid => Err(ApiError::Unauthorized(Cow::Borrowed(
            "invalid or expired refresh token",
        ))),
    }
}

/// Sign out: revoke the refresh token's family.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    request_body = RefreshRequest,
    responses(
        (status = 204, description = "revoked (also when the token was unknown)"),
        (status = 401, body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn logout(
    state: web::Data<AuthState>,
    caller: Caller,
    body: agora_common::extract::Json<RefreshRequest>,
) -> ApiResult<HttpResponse> {
    let token = body.into_inner().refresh_token;
    check_refresh_token(&token)?;
    // Only the caller's own sessions can be revoked; anything else is a silent no-op.
    let revoked = db::revoke_family_of(
        &mut *agora_common::db::checkout(&state.pool).await?,
        &refresh_token_hash(&token),
        caller.user_id,
    )
    .await?;
    tracing::info!(user_id = %caller.user_id, revoked, "signed out");
    Ok(HttpResponse::NoContent().finish())
}

/// The signed-in account.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, body = UserView),
        (status = 401, body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "the account was deleted", body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn me(state: web::Data<AuthState>, caller: Caller) -> ApiResult<web::Json<UserView>> {
    let account = db::find_by_id(
        &mut *agora_common::db::checkout(&state.pool).await?,
        caller.user_id,
    )
    .await?
    .ok_or(ApiError::NotFound(Cow::Borrowed(
        "this account no longer exists",
    )))?;
    Ok(web::Json(user_view(account)))
}

/// Change the password; every refresh token of the account is revoked.
#[utoipa::path(put, path = "/api/v1/auth/password", tag = "auth", security(("bearer" = [])),
    request_body = PasswordChangeRequest,
    responses(
        (status = 204, description = "changed; sign in again on other devices"),
        (status = 400, description = "a field is invalid (see `errors`)", body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "current_password is wrong", body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "the account was deleted", body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 429, body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn change_password(
    state: web::Data<AuthState>,
    verifier: web::Data<TokenVerifier>,
    req: HttpRequest,
    caller: Caller,
    body: agora_common::extract::Json<PasswordChangeRequest>,
) -> ApiResult<HttpResponse> {
    let PasswordChangeRequest {
        current_password,
        new_password,
    } = body.into_inner();
    let mut errors = Vec::new();
    match current_password.chars().count() {
        0 => errors.push(FieldError::new("current_password", "is required")),
        1..=MAX_PASSWORD_CHARS => {}
        _ => errors.push(FieldError::new(
            "current_password",
            "must be at most 128 characters",
        )),
    }
    if let Err(m) = check_password(&new_password) {
        errors.push(FieldError::new("new_password", m));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    // 403, not 400 (the input is well-formed) nor 401 (the token is fine, and clients
    // treat 401 as "sign in again").
    let wrong = ApiError::Forbidden(Cow::Borrowed("current_password is incorrect"));
    state
        .check_own_password(&req, &caller, current_password, wrong)
        .await?;
    let new_hash = state.passwords.hash(new_password).await?;
    let revocation = db::change_password(
        &mut *agora_common::db::checkout(&state.pool).await?,
        caller.user_id,
        &new_hash,
        state.access_ttl(),
    )
    .await
    .map_err(|e| match e {
        diesel::result::Error::NotFound => {
            ApiError::NotFound(Cow::Borrowed("this account no longer exists"))
        }
        e => e.into(),
    })?;
    verifier.revocations().apply(&[revocation]);
    tracing::info!(user_id = %caller.user_id, "password changed; earlier tokens revoked");
    Ok(HttpResponse::NoContent().finish())
}

/// Leave Agora: erase the account from every service.
#[utoipa::path(delete, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    request_body = AccountDeletionRequest,
    responses(
        (status = 202, description = "erasing: from now on the account cannot sign in and its tokens are refused everywhere", body = DeletionStarted),
        (status = 400, description = "`password` is missing or too long", body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "no valid token, or the password is wrong", body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "the account was deleted", body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 429, description = "too many wrong passwords; see Retry-After", body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn delete_me(
    state: web::Data<AuthState>,
    verifier: web::Data<TokenVerifier>,
    req: HttpRequest,
    caller: Caller,
    body: agora_common::extract::Json<AccountDeletionRequest>,
) -> ApiResult<HttpResponse> {
    let password = body.into_inner().password;
    match password.chars().count() {
        0 => return Err(ApiError::invalid_field("password", "is required")),
        1..=MAX_PASSWORD_CHARS => {}
        _ => {
            return Err(ApiError::invalid_field(
                "password",
                "must be at most 128 characters",
            ));
        }
    }
    state
        .check_own_password(&req, &caller, password, bad_credentials())
        .await?;
    let started = db::start_erasure(
        &mut *agora_common::db::checkout(&state.pool).await?,
        caller.user_id,
        &state.deliveries.erasing,
        state.access_ttl(),
    )
    .await?;
    let Some(erasure) = started else {
        return Err(ApiError::NotFound(Cow::Borrowed(
            "this account no longer exists",
        )));
    };
    // This replica refuses the tokens at once; the others, and every service, within
    // a second.
    verifier.revocations().apply(&[erasure.revocation]);
    let deletion_id = erasure.deletion;
    tracing::info!(user_id = %caller.user_id, deletion = %deletion_id, "account erasure started");
    // The runner takes the jobs now (and retries what fails); nobody waits for them.
    if let Some(runner) = &state.deliveries.runner {
        runner.wake();
    }
    Ok(HttpResponse::Accepted().json(DeletionStarted {
        deletion_id,
        status: DeletionStatus::Erasing,
    }))
}

/// Where an erasure stands (public: the id is unguessable, and says nothing else).
#[utoipa::path(get, path = "/api/v1/auth/deletions/{deletion_id}", tag = "auth",
    params(("deletion_id" = Uuid, Path, description = "from `DELETE /auth/me`")),
    responses(
        (status = 200, body = DeletionView),
        (status = 404, description = "no such deletion (a malformed id too)", body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn deletion(
    state: web::Data<AuthState>,
    path: web::Path<uuid::Uuid>,
) -> ApiResult<web::Json<DeletionView>> {
    let found = db::deletion(
        &mut *agora_common::db::checkout(&state.pool).await?,
        path.into_inner(),
    )
    .await?
    .ok_or(ApiError::NotFound(Cow::Borrowed("no such deletion")))?;
    Ok(web::Json(DeletionView {
        status: if found.erased_at.is_some() {
            DeletionStatus::Erased
        } else {
            DeletionStatus::Erasing
        },
        requested_at: found.requested_at,
        erased_at: found.erased_at,
    }))
}

fn no_such_export() -> ApiError {
    ApiError::NotFound(Cow::Borrowed("no such export"))
}

fn export_view(export: db::Export) -> ExportView {
    let status = match export.status.as_str() {
        "pending" => ExportStatus::Pending,
        "running" => ExportStatus::Running,
        "ready" if export.expires_at.is_some_and(|at| at <= Utc::now()) => ExportStatus::Expired,
        "ready" => ExportStatus::Ready,
        "expired" => ExportStatus::Expired,
        _ => ExportStatus::Failed,
    };
    let ready = status == ExportStatus::Ready;
    ExportView {
        id: export.id,
        status,
        size_bytes: export.size_bytes.filter(|_| ready),
        expires_at: export
            .expires_at
            .filter(|_| ready || status == ExportStatus::Expired),
        download_url: ready.then(|| format!("/api/v1/auth/me/exports/{}/archive", export.id)),
    }
}

/// The caller's export `id` as they see it (404 for anybody else's).
async fn own_export(state: &AuthState, caller: &Caller, id: uuid::Uuid) -> ApiResult<ExportView> {
    db::export_of(
        &mut *agora_common::db::checkout(&state.pool).await?,
        caller.user_id,
        id,
    )
    .await?
    .map(export_view)
    .ok_or_else(no_such_export)
}

/// Start an export of everything the caller has on Agora (a zip: see the contract).
#[utoipa::path(post, path = "/api/v1/auth/me/exports", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 202, description = "queued; follow it at `GET /auth/me/exports/{id}`", body = ExportView),
        (status = 401, body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "an export of this account is pending or running (`export-running`)", body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 429, description = "the day's exports are used up; see Retry-After", body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "this platform keeps no archives (no photos service)", body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn start_export(state: web::Data<AuthState>, caller: Caller) -> ApiResult<HttpResponse> {
    let exports = &state.exports;
    let Some(runner) = exports.runner.as_ref().filter(|_| exports.photos.is_some()) else {
        return Err(ApiError::Unavailable(Cow::Borrowed(
            "exports are not available on this platform",
        )));
    };
    let requested = db::request_export(
        &mut *agora_common::db::checkout(&state.pool).await?,
        caller.user_id,
        exports.per_day,
    )
    .await?;
    let id = match requested {
        db::ExportRequest::Queued(id) => id,
        db::ExportRequest::Running => {
            return Err(ApiError::Conflict(Cow::Borrowed(
                "an export of this account is already under way",
            ))
            .typed("export-running"));
        }
        db::ExportRequest::TooMany => return Err(rate_limited(3600)),
    };
    runner.wake();
    tracing::info!(user_id = %caller.user_id, export = %id, "export requested");
    Ok(HttpResponse::Accepted().json(ExportView {
        id,
        status: ExportStatus::Pending,
        size_bytes: None,
        expires_at: None,
        download_url: None,
    }))
}

/// Where one of the caller's exports stands.
#[utoipa::path(get, path = "/api/v1/auth/me/exports/{id}", tag = "auth", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "from `POST /auth/me/exports`")),
    responses(
        (status = 200, body = ExportView),
        (status = 401, body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such export of the caller's", body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn export(
    state: web::Data<AuthState>,
    caller: Caller,
    path: web::Path<uuid::Uuid>,
) -> ApiResult<web::Json<ExportView>> {
    Ok(web::Json(
        own_export(&state, &caller, path.into_inner()).await?,
    ))
}

/// The archive of one of the caller's exports, for 7 days after it is ready.
#[utoipa::path(get, path = "/api/v1/auth/me/exports/{id}/archive", tag = "auth", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "a ready export of the caller's")),
    responses(
        (status = 200, description = "the zip archive", content_type = "application/zip"),
        (status = 401, body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such export of the caller's, not ready yet, or expired", body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "the archive's storage is unavailable", body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn export_archive(
    state: web::Data<AuthState>,
    caller: Caller,
    path: web::Path<uuid::Uuid>,
) -> ApiResult<HttpResponse> {
    let export = Some(own_export(&state, &caller, path.into_inner()).await?)
        .filter(|e| e.status == ExportStatus::Ready)
        .ok_or_else(no_such_export)?;
    let photos = state.exports.photos.as_ref().ok_or_else(no_such_export)?;
    let body = crate::export::archive(photos, caller.user_id, export.id).await?;
    let mut answer = HttpResponse::Ok();
    answer
        .content_type("application/zip")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"agora-export-{}.zip\"", export.id),
        ))
        .insert_header((CACHE_CONTROL, "private, no-store"));
    if let Some(size) = export.size_bytes.and_then(|s| u64::try_from(s).ok()) {
        answer.no_chunking(size);
    }
    Ok(answer.streaming(body))
}

/// `since` of `GET /internal/revocations`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationsQuery {
    since: Option<chrono::DateTime<Utc>>,
}

/// `GET /internal/revocations` (service credential): the live token revocations
/// recorded after `since`, for every process that verifies tokens.
pub async fn revocations(
    state: web::Data<AuthState>,
    _service: agora_common::client::ServiceCaller,
    query: agora_common::extract::Query<RevocationsQuery>,
) -> ApiResult<web::Json<agora_common::revocations::RevocationFeed>> {
    Ok(web::Json(
        db::revocations_since(
            &mut *agora_common::db::checkout(&state.pool).await?,
            query.into_inner().since,
        )
        .await?,
    ))
}

/// The public keys that verify access tokens.
#[utoipa::path(get, path = "/api/v1/auth/jwks", tag = "auth",
    responses((status = 200, description = "JWK set; also at /.well-known/jwks.json", body = Object)))]
pub async fn jwks(state: web::Data<AuthState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "public, max-age=300"))
        .json(state.tokens.jwks())
}

/// Forward-auth for ingress middlewares: 200 with identity headers for a valid token,
/// 401 without one. The contract's public routes that an Ingress cannot list (a public
/// photo's bytes: an id in the path) pass without identity headers when the token is
/// absent or bad; the service behind decides from there. The original request comes as
/// Traefik sends it (`X-Forwarded-Method`/`-Uri`) or as ingress-nginx does
/// (`X-Original-Method`/`-URI`).
#[utoipa::path(get, path = "/api/v1/auth/verify", tag = "auth", security(("bearer" = [])),
    params(
        ("X-Forwarded-Method" = Option<String>, Header, description = "the original method (Traefik forwardAuth)"),
        ("X-Forwarded-Uri" = Option<String>, Header, description = "the original path and query (Traefik forwardAuth)"),
        ("X-Original-Method" = Option<String>, Header, description = "the original method (ingress-nginx auth-url)"),
        ("X-Original-URI" = Option<String>, Header, description = "the original path and query (ingress-nginx auth-url)"),
    ),
    responses(
        (status = 200, description = "valid (X-User-Id and X-User-Name headers name the caller), or a public route (no such headers)"),
        (status = 401, body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 503, body = agora_common::openapi::ProblemDoc, content_type = "application/problem+json", description = "the key set cannot be loaded"),
    ))]
pub async fn verify(
    req: HttpRequest,
    verifier: web::Data<TokenVerifier>,
) -> ApiResult<HttpResponse> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let original = header("x-forwarded-method")
        .zip(header("x-forwarded-uri"))
        .or_else(|| header("x-original-method").zip(header("x-original-uri")))
        .and_then(|(method, uri)| Some((Method::from_bytes(method.as_bytes()).ok()?, uri)));
    let public = original.is_some_and(|(method, uri)| is_public_by_id(&method, uri));
    answer_verify(&req, &verifier, public).await
}

/// Forward-auth as Envoy's external authorization asks it (Envoy Gateway's
/// `SecurityPolicy`): the original method, and the original path after `/verify`.
/// Not in the OpenAPI document: its path is a whole URL path, which OpenAPI cannot
/// express as a parameter; it answers as `GET /verify` does.
pub async fn verify_prefixed(
    req: HttpRequest,
    verifier: web::Data<TokenVerifier>,
) -> ApiResult<HttpResponse> {
    let path = req.match_info().get("path").unwrap_or_default();
    let original = format!("/{path}");
    let public = is_public_by_id(req.method(), &original);
    answer_verify(&req, &verifier, public).await
}

/// The public routes an Ingress cannot list (an id in the path, or a ticket instead of
/// a token): a public photo's bytes, the notification stream, an erasure's status.
fn is_public_by_id(method: &Method, uri: &str) -> bool {
    let path = uri.split(['?', '#']).next().unwrap_or_default();
    let deletion = path
        .strip_prefix("/api/v1/auth/deletions/")
        .is_some_and(|id| !id.is_empty() && !id.contains('/'));
    photos::is_public(method, uri)
        || notices::is_stream(method, uri)
        || (method == Method::GET && deletion)
}

async fn answer_verify(
    req: &HttpRequest,
    verifier: &TokenVerifier,
    public: bool,
) -> ApiResult<HttpResponse> {
    let caller = identify(verifier, bearer_token(req), public).await?;
    let mut response = HttpResponse::Ok();
    response.insert_header((CACHE_CONTROL, "no-store"));
    if let Some(caller) = caller {
        let mut buf = uuid::Uuid::encode_buffer();
        let id = caller.user_id.hyphenated().encode_lower(&mut buf);
        response.insert_header((
            "x-user-id",
            HeaderValue::from_str(id).map_err(ApiError::internal)?,
        ));
        response.insert_header((
            "x-user-name",
            HeaderValue::from_str(&caller.username).map_err(ApiError::internal)?,
        ));
    }
    Ok(response.finish())
}
