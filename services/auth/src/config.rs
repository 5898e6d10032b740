//! The auth service's settings, read from the environment once at start-up.

use crate::passwords::HashParams;
use agora_common::client_addr::TrustedProxies;
use agora_common::config::{ConfigError, Env};
use std::path::PathBuf;

/// Where the signing key comes from.
#[derive(Debug, Clone)]
pub enum SigningKeySource {
    /// `AUTH_SIGNING_KEY`: the PEM itself (e.g. from a Kubernetes Secret).
    Pem(String),
    /// `AUTH_SIGNING_KEY_FILE`; generated there on first start when `generate` is set
    /// (`AUTH_GENERATE_SIGNING_KEY=true`, local mode).
    File { path: PathBuf, generate: bool },
}

/// Throttling thresholds.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Registrations per client address per minute.
    pub registrations_per_minute: u32,
    /// Login attempts (any outcome) per client address per minute.
    pub logins_per_minute: u32,
    /// Failed logins per client address per minute.
    pub failed_logins_per_minute: u32,
    /// Failed logins an account may have before backoff starts.
    pub account_free_failures: u32,
    /// First backoff delay, doubled with each further failure.
    pub account_backoff_secs: u64,
    /// Longest backoff (and how long failures are remembered).
    pub account_max_backoff_secs: u64,
    /// Failed logins per hour one account may collect from all addresses together
    /// (the budget against distributed guessing; much larger than the per-address one).
    pub account_failures_per_hour: u32,
}

/// Everything the auth service needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL` (never logged).
    pub database_url: String,
    /// `DB_POOL_SIZE`.
    pub db_pool_size: usize,
    /// `AUTH_ISSUER`: the `iss` claim.
    pub issuer: String,
    /// `AUTH_AUDIENCE`: the `aud` claim.
    pub audience: String,
    /// The signing key.
    pub signing_key: SigningKeySource,
    /// `AUTH_PREVIOUS_KEY_FILES`: retired keys still published in the JWKS.
    pub previous_key_files: Vec<PathBuf>,
    /// `AUTH_ACCESS_TOKEN_TTL_SECS`.
    pub access_ttl_secs: u64,
    /// `AUTH_REFRESH_TOKEN_TTL_SECS`.
    pub refresh_ttl_secs: u64,
    /// `AUTH_ARGON2_MEMORY_KIB`, `AUTH_ARGON2_ITERATIONS`, `AUTH_ARGON2_PARALLELISM`.
    pub hash: HashParams,
    /// `AUTH_MAX_CONCURRENT_HASHES`.
    pub max_concurrent_hashes: usize,
    /// `AUTH_*_PER_MINUTE`, `AUTH_ACCOUNT_*`.
    pub limits: Limits,
    /// `TRUSTED_PROXIES`, `TRUSTED_PROXY_HOPS`: the proxies in front of the service
    /// (the gateway, an ingress) whose `X-Forwarded-For` entries are believed.
    pub trusted_proxies: TrustedProxies,
    /// `AUTH_REFRESH_REUSE_GRACE_SECS`: how long after a rotation the rotated token may
    /// be presented again (lost response, two tabs) while its successor is unused.
    pub refresh_reuse_grace_secs: u64,
    /// `USERS_URL`, `RELATIONS_URL`: the services told of every new account (through
    /// the outbox, at least once), each with its name.
    pub account_subscribers: Vec<(&'static str, String)>,
    /// `USERS_URL`, `RELATIONS_URL`, `PHOTOS_URL`, `EVENTS_URL`, `NOTIFICATIONS_URL`:
    /// the services an account's erasure must reach (each holds something of people).
    pub erasure_services: Vec<(&'static str, String)>,
    /// `AUTH_USERNAME_QUARANTINE_DAYS` (default 30): how long an erased account's
    /// username stays taken.
    pub username_quarantine_days: u32,
    /// `AUTH_EXPORTS_PER_DAY` (default 3): data exports one account may request a day.
    pub exports_per_day: i64,
    /// `AUTH_ERASURE_LOG`: where completed erasures are logged for restores (a directory
    /// or `s3://bucket/prefix`, beside the backups; unset: not logged).
    pub erasure_log: Option<agora_common::store::Location>,
    /// `INTERNAL_TOKEN`: the service credential those deliveries carry (required when
    /// there are subscribers).
    pub service_token: Option<agora_common::client::ServiceToken>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            registrations_per_minute: 120,
            logins_per_minute: 300,
            failed_logins_per_minute: 30,
            account_free_failures: 5,
            account_backoff_secs: 15,
            account_max_backoff_secs: 900,
            account_failures_per_hour: 100,
        }
    }
}

impl Limits {
    /// `AUTH_REGISTRATIONS_PER_MINUTE`, `AUTH_LOGINS_PER_MINUTE`,
    /// `AUTH_FAILED_LOGINS_PER_MINUTE`, `AUTH_ACCOUNT_*`; the defaults where unset.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let d = Limits::default();
        Ok(Limits {
            registrations_per_minute: env.int_in(
                "AUTH_REGISTRATIONS_PER_MINUTE",
                d.registrations_per_minute,
                1..=1_000_000,
            )?,
            logins_per_minute: env.int_in(
                "AUTH_LOGINS_PER_MINUTE",
                d.logins_per_minute,
                1..=1_000_000,
            )?,
            failed_logins_per_minute: env.int_in(
                "AUTH_FAILED_LOGINS_PER_MINUTE",
                d.failed_logins_per_minute,
                1..=1_000_000,
            )?,
            account_free_failures: env.int_in(
                "AUTH_ACCOUNT_FREE_FAILURES",
                d.account_free_failures,
                1..=1000,
            )?,
            account_backoff_secs: env.int_in(
                "AUTH_ACCOUNT_BACKOFF_SECS",
                d.account_backoff_secs,
                1..=3600,
            )?,
            account_max_backoff_secs: env.int_in(
                "AUTH_ACCOUNT_MAX_BACKOFF_SECS",
                d.account_max_backoff_secs,
                1..=86_400,
            )?,
            account_failures_per_hour: env.int_in(
                "AUTH_ACCOUNT_FAILURES_PER_HOUR",
                d.account_failures_per_hour,
                1..=1_000_000,
            )?,
        })
    }
}

impl Config {
    /// Defaults for everything but the database and the key.
    pub fn new(database_url: String, signing_key: SigningKeySource) -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Self {
            database_url,
            db_pool_size: 10,
            issuer: "agora".into(),
            audience: "agora".into(),
            signing_key,
            previous_key_files: Vec::new(),
            access_ttl_secs: 900,
            refresh_ttl_secs: 30 * 24 * 3600,
            hash: HashParams::default(),
            // One hash per core: the permit is held only while hashing, so queued logins
            // keep every core busy; more at once only made them share caches (each
            // hash walks 19 MiB).
            max_concurrent_hashes: cores,
            limits: Limits::default(),
            trusted_proxies: TrustedProxies::none(),
            refresh_reuse_grace_secs: 30,
            account_subscribers: Vec::new(),
            erasure_services: Vec::new(),
            username_quarantine_days: 30,
            exports_per_day: 3,
            erasure_log: None,
            service_token: None,
        }
    }

    /// Reads every setting, failing on the first bad one.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let signing_key = match (
            env.raw("AUTH_SIGNING_KEY"),
            env.raw("AUTH_SIGNING_KEY_FILE"),
        ) {
            (Some(pem), None) => SigningKeySource::Pem(pem),
            (None, Some(path)) => SigningKeySource::File {
                path: path.into(),
                generate: env.flag("AUTH_GENERATE_SIGNING_KEY", false)?,
            },
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid {
                    var: "AUTH_SIGNING_KEY".into(),
                    value: "<redacted>".into(),
                    reason: "set either AUTH_SIGNING_KEY or AUTH_SIGNING_KEY_FILE, not both".into(),
                });
            }
            (None, None) => return Err(ConfigError::Missing("AUTH_SIGNING_KEY_FILE".into())),
        };
        let mut config = Self::new(env.required("DATABASE_URL")?, signing_key);
        config.db_pool_size = env.int_in("DB_POOL_SIZE", config.db_pool_size, 1..=200)?;
        config.issuer = env.raw("AUTH_ISSUER").unwrap_or(config.issuer);
        config.audience = env.raw("AUTH_AUDIENCE").unwrap_or(config.audience);
        config.previous_key_files = env
            .raw("AUTH_PREVIOUS_KEY_FILES")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        config.access_ttl_secs = env.int_in("AUTH_ACCESS_TOKEN_TTL_SECS", 900, 60..=86_400)?;
        config.refresh_ttl_secs = env.int_in(
            "AUTH_REFRESH_TOKEN_TTL_SECS",
            config.refresh_ttl_secs,
            3_600..=31_536_000,
        )?;
        config.hash = HashParams {
            memory_kib: env.int_in("AUTH_ARGON2_MEMORY_KIB", 19_456, 19_456..=4_194_304)?,
            iterations: env.int_in("AUTH_ARGON2_ITERATIONS", 2, 2..=100)?,
            parallelism: env.int_in("AUTH_ARGON2_PARALLELISM", 1, 1..=16)?,
        };
        config.max_concurrent_hashes = env.int_in(
            "AUTH_MAX_CONCURRENT_HASHES",
            config.max_concurrent_hashes,
            1..=1024,
        )?;
        config.limits = Limits::from_env(env)?;
        config.trusted_proxies = TrustedProxies::from_env(env)?;
        config.refresh_reuse_grace_secs = env.int_in(
            "AUTH_REFRESH_REUSE_GRACE_SECS",
            config.refresh_reuse_grace_secs,
            0..=300,
        )?;
        config.account_subscribers = [("users", "USERS_URL"), ("relations", "RELATIONS_URL")]
            .into_iter()
            .filter_map(|(name, var)| env.raw(var).map(|url| (name, url)))
            .collect();
        config.erasure_services = [
            ("users", "USERS_URL"),
            ("relations", "RELATIONS_URL"),
            ("photos", "PHOTOS_URL"),
            ("events", "EVENTS_URL"),
            ("notifications", "NOTIFICATIONS_URL"),
        ]
        .into_iter()
        .filter_map(|(name, var)| env.raw(var).map(|url| (name, url)))
        .collect();
        config.username_quarantine_days = env.int_in(
            "AUTH_USERNAME_QUARANTINE_DAYS",
            config.username_quarantine_days,
            0..=3650,
        )?;
        config.erasure_log = env
            .raw("AUTH_ERASURE_LOG")
            .map(|text| {
                agora_common::store::Location::parse(&text).map_err(|e| ConfigError::Invalid {
                    var: "AUTH_ERASURE_LOG".into(),
                    value: text,
                    reason: e.to_string(),
                })
            })
            .transpose()?;
        config.exports_per_day =
            env.int_in("AUTH_EXPORTS_PER_DAY", config.exports_per_day, 1..=100)?;
        config.service_token = env.service_token()?;
        if !config.erasure_services.is_empty() && config.service_token.is_none() {
            return Err(ConfigError::Missing("INTERNAL_TOKEN".into()));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_common::config::Env;

    #[test]
    fn reads_and_validates() {
        let ok = Config::from_env(&Env::from_pairs(&[
            ("DATABASE_URL", "postgres://x/y"),
            ("AUTH_SIGNING_KEY_FILE", "/k.pem"),
            ("AUTH_GENERATE_SIGNING_KEY", "true"),
            ("AUTH_ACCESS_TOKEN_TTL_SECS", "300"),
        ]));
        let ok = ok.map_err(|e| e.to_string());
        assert!(matches!(
            ok.as_ref().map(|c| &c.signing_key),
            Ok(SigningKeySource::File { generate: true, .. })
        ));
        assert_eq!(ok.map(|c| c.access_ttl_secs), Ok(300));

        let weak = Config::from_env(&Env::from_pairs(&[
            ("DATABASE_URL", "postgres://x/y"),
            ("AUTH_SIGNING_KEY_FILE", "/k.pem"),
            ("AUTH_ARGON2_MEMORY_KIB", "1024"),
        ]));
        assert!(
            weak.err()
                .map(|e| e.to_string())
                .unwrap()
                .contains("AUTH_ARGON2_MEMORY_KIB")
        );
        let keyless = Config::from_env(&Env::from_pairs(&[("DATABASE_URL", "postgres://x/y")]));
        assert!(
            keyless
                .err()
                .map(|e| e.to_string())
                .unwrap()
                .contains("AUTH_SIGNING_KEY_FILE")
        );
    }
}
