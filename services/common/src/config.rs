//! Typed configuration from environment variables, validated once at start-up.
//!
//! Every reader names the variable in its error, so a bad deployment fails fast
//! with a message like `invalid AUTH_ACCESS_TOKEN_TTL_SECS="abc": not a number`.

use std::str::FromStr;

/// A configuration variable is missing or unreadable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set (or empty).
    #[error("missing required environment variable {0}")]
    Missing(String),
    /// A variable is set to a value that does not parse or is out of range.
    #[error("invalid {var}={value:?}: {reason}")]
    Invalid {
        /// The variable's name.
        var: String,
        /// The raw value (never a secret: secret readers redact it).
        value: String,
        /// Why it was refused.
        reason: String,
    },
}

/// Reads variables from a source (the process environment, or a map in tests).
pub struct Env<F = fn(&str) -> Option<String>> {
    lookup: F,
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Self {
            lookup: |name| std::env::var(name).ok(),
        }
    }
}

impl Env<Box<dyn Fn(&str) -> Option<String>>> {
    /// Fixed name/value pairs (tests, embedded configuration).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Self {
            lookup: Box::new(move |k| map.get(k).cloned()),
        }
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// `INTERNAL_TOKEN` (at least 32 characters; never echoed in an error), if set.
    pub fn service_token(&self) -> Result<Option<crate::client::ServiceToken>, ConfigError> {
        match self.raw("INTERNAL_TOKEN") {
            None => Ok(None),
            Some(secret) => crate::client::ServiceToken::new(&secret)
                .map(Some)
                .ok_or_else(|| ConfigError::Invalid {
                    var: "INTERNAL_TOKEN".into(),
                    value: "<redacted>".into(),
                    reason: "must be at least 32 characters".into(),
                }),
        }
    }

    /// Any lookup function, e.g. over a `HashMap` in tests.
    pub fn from_fn(lookup: F) -> Self {
        Self { lookup }
    }

    /// The raw value, `None` when unset or blank.
    pub fn raw(&self, var: &str) -> Option<String> {
        (self.lookup)(var).filter(|v| !v.trim().is_empty())
    }

    /// A required string.
    pub fn required(&self, var: &str) -> Result<String, ConfigError> {
        self.raw(var)
            .ok_or_else(|| ConfigError::Missing(var.to_owned()))
    }

    /// An optional value parsed with `FromStr`.
    pub fn parse<T>(&self, var: &str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.raw(var) {
            None => Ok(None),
            Some(value) => value
                .trim()
                .parse::<T>()
                .map(Some)
                .map_err(|e| ConfigError::Invalid {
                    var: var.to_owned(),
                    reason: e.to_string(),
                    value,
                }),
        }
    }

    /// A value parsed with `FromStr`, or `default` when unset.
    pub fn parse_or<T>(&self, var: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        Ok(self.parse(var)?.unwrap_or(default))
    }

    /// An integer within `range`, or `default` when unset.
    pub fn int_in<T>(
        &self,
        var: &str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
        T::Err: std::fmt::Display,
    {
        let value = self.parse_or(var, default)?;
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError::Invalid {
                var: var.to_owned(),
                value: value.to_string(),
                reason: format!("must be between {} and {}", range.start(), range.end()),
            })
        }
    }

    /// A boolean (`true/false/1/0/yes/no`), or `default` when unset.
    pub fn flag(&self, var: &str, default: bool) -> Result<bool, ConfigError> {
        match self.raw(var).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => Ok(true),
            Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => Ok(false),
            Some(value) => Err(ConfigError::Invalid {
                var: var.to_owned(),
                value,
                reason: "expected true or false".to_owned(),
            }),
        }
    }
}

/// What every business service (users, relations, photos, events) reads the same way:
/// its database, how it verifies tokens, and the service credential.
#[derive(Debug, Clone)]
pub struct ServiceBasics {
    /// `DATABASE_URL` (never logged).
    pub database_url: String,
    /// `DB_POOL_SIZE` (default 10).
    pub db_pool_size: usize,
    /// `AUTH_JWKS_URL`: where the auth service publishes its keys.
    pub jwks_url: String,
    /// `AUTH_ISSUER` (default `agora`).
    pub issuer: String,
    /// `AUTH_AUDIENCE` (default `agora`).
    pub audience: String,
    /// `INTERNAL_TOKEN`: the credential of internal routes (required).
    pub service_token: crate::client::ServiceToken,
}

impl ServiceBasics {
    /// Reads the shared settings, failing on the first bad one.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            database_url: env.required("DATABASE_URL")?,
            db_pool_size: env.int_in("DB_POOL_SIZE", 10, 1..=200)?,
            jwks_url: env.required("AUTH_JWKS_URL")?,
            issuer: env.raw("AUTH_ISSUER").unwrap_or_else(|| "agora".into()),
            audience: env.raw("AUTH_AUDIENCE").unwrap_or_else(|| "agora".into()),
            service_token: env
                .service_token()?
                .ok_or_else(|| ConfigError::Missing("INTERNAL_TOKEN".into()))?,
        })
    }

    /// The token verifier these settings describe.
    pub fn verifier(&self) -> crate::auth::TokenVerifier {
        crate::auth::TokenVerifier::new(
            &self.issuer,
            &self.audience,
            crate::auth::KeySource::Remote {
                url: self.jwks_url.clone(),
            },
        )
    }

    /// The auth service's origin (`http://auth:8080`), from `AUTH_JWKS_URL`.
    pub fn auth_url(&self) -> String {
        reqwest::Url::parse(&self.jwks_url)
            .map(|url| url.origin().ascii_serialization())
            .unwrap_or_default()
    }

    /// A client for another service at `base_url`, carrying the service credential.
    pub fn client(
        &self,
        service: &'static str,
        base_url: &str,
    ) -> Result<crate::client::ServiceClient, crate::client::ClientError> {
        crate::client::ServiceClient::new(
            service,
            base_url,
            crate::client::ClientSettings {
                service_token: Some(self.service_token.clone()),
                ..Default::default()
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn errors_name_the_variable() {
        let e = Env::from_pairs(&[("PORT", "eighty")]);
        let err = e.parse::<u16>("PORT").err().map(|e| e.to_string()).unwrap();
        assert!(err.contains("PORT") && err.contains("eighty"), "{err}");
        let missing = e
            .required("DATABASE_URL")
            .err()
            .map(|e| e.to_string())
            .unwrap();
        assert!(missing.contains("DATABASE_URL"));
    }

    #[test]
    fn ranges_and_flags() {
        let e = Env::from_pairs(&[("N", "500"), ("F", "yes"), ("B", "maybe"), ("BLANK", "  ")]);
        assert!(e.int_in("N", 1u32, 1..=100).is_err());
        assert_eq!(e.int_in("UNSET", 7u32, 1..=100).ok(), Some(7));
        assert_eq!(e.flag("F", false).ok(), Some(true));
        assert!(e.flag("B", false).is_err());
        assert!(e.required("BLANK").is_err());
    }
}
