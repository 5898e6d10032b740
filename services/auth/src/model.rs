//! Request and response bodies of the auth API, and the validated account fields.

use agora_common::FieldError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A username: 3..=32 of `[a-z0-9_.]` with at least one letter or digit (`...` names
/// nobody), lowercased on the way in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Lowercases and validates.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        // Checked before lowercasing: some non-ASCII letters lowercase to ASCII ones.
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        {
            return Err("may only contain a-z, 0-9, '_' and '.'");
        }
        let lower = raw.to_ascii_lowercase();
        let len = lower.len();
        if !(3..=32).contains(&len) {
            return Err("must be 3 to 32 characters");
        }
        if !lower
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
        {
            return Err("may only contain a-z, 0-9, '_' and '.'");
        }
        if !lower.bytes().any(|b| b.is_ascii_alphanumeric()) {
            return Err("must contain at least one letter or digit");
        }
        Ok(Self(lower))
    }

    /// The stored form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address, lowercased; checked for a plausible `local@domain.tld` shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Lowercases and validates.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let lower = raw.to_ascii_lowercase();
        if lower.len() > 254 {
            return Err("must be at most 254 characters");
        }
        let Some((local, domain)) = lower.split_once('@') else {
            return Err("must be an email address");
        };
        // The local part's RFC 5321 limit of 64 is not enforced: the total is, and the
        // contract's pattern (which cannot express both) stays exact.
        let local_ok = !local.is_empty()
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if local_ok && domain_ok {
            Ok(Self(lower))
        } else {
            Err("must be an email address")
        }
    }

    /// The stored form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a new password: 8..=128 characters.
pub fn check_password(password: &str) -> Result<(), &'static str> {
    let len = password.chars().count();
    if (8..=128).contains(&len) {
        Ok(())
    } else {
        Err("must be 8 to 128 characters")
    }
}

/// `POST /auth/register`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 3..=32 of `[a-z0-9_.]`, at least one a letter or digit (stored lowercase,
    /// immutable).
    #[schema(
        min_length = 3,
        max_length = 32,
        pattern = "^[A-Za-z0-9_.]*[A-Za-z0-9][A-Za-z0-9_.]*$"
    )]
    pub username: String,
    /// An email address (stored lowercase).
    #[schema(
        max_length = 254,
        pattern = r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
    )]
    pub email: String,
    /// 8..=128 characters.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
}

/// A register request whose fields all passed validation.
pub struct NewAccount {
    pub username: Username,
    pub email: Email,
    pub password: String,
}

impl RegisterRequest {
    /// Validates every field, reporting all problems at once.
    pub fn validate(self) -> Result<NewAccount, Vec<FieldError>> {
        let mut errors = Vec::new();
        let username = Username::parse(&self.username)
            .map_err(|m| errors.push(FieldError::new("username", m)))
            .ok();
        let email = Email::parse(&self.email)
            .map_err(|m| errors.push(FieldError::new("email", m)))
            .ok();
        if let Err(m) = check_password(&self.password) {
            errors.push(FieldError::new("password", m));
        }
        match (username, email) {
            (Some(username), Some(email)) if errors.is_empty() => Ok(NewAccount {
                username,
                email,
                password: self.password,
            }),
            _ => Err(errors),
        }
    }
}

/// `POST /auth/login`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Username or email address.
    #[schema(min_length = 1, max_length = 254)]
    pub login: String,
    /// The password.
    #[schema(min_length = 1, max_length = 128)]
    pub password: String,
}

/// `POST /auth/refresh` and `POST /auth/logout`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// A refresh token from register, login or a previous refresh.
    #[schema(min_length = 1, max_length = 512)]
    pub refresh_token: String,
}

/// `PUT /auth/password`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChangeRequest {
    /// The password in use now.
    #[schema(min_length = 1, max_length = 128)]
    pub current_password: String,
    /// 8..=128 characters.
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
}

/// `DELETE /auth/me`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountDeletionRequest {
    /// The account's password.
    #[schema(min_length = 1, max_length = 128)]
    pub password: String,
}

/// Where an erasure stands.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeletionStatus {
    /// Some service has not erased its part yet.
    Erasing,
    /// Every service has.
    Erased,
}

/// The answer to `DELETE /auth/me`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeletionStarted {
    /// Follow it at `GET /auth/deletions/{deletion_id}` (unguessable).
    pub deletion_id: Uuid,
    pub status: DeletionStatus,
}

/// `GET /auth/deletions/{id}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeletionView {
    pub status: DeletionStatus,
    pub requested_at: DateTime<Utc>,
    /// When every service had erased its part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erased_at: Option<DateTime<Utc>>,
}

/// Where an export stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportStatus {
    Pending,
    Running,
    Ready,
    Failed,
    Expired,
}

/// An export of the caller's data.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ExportView {
    pub id: Uuid,
    pub status: ExportStatus,
    /// The archive's size (ready only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    /// Until when the archive can be fetched (ready and expired only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Where to fetch it with the owner's token (ready only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
}

/// An account as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub created_at: DateTime<Utc>,
}

/// Tokens issued by register, login and refresh.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub user: UserView,
    /// EdDSA-signed JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque; send to `/auth/refresh` for new tokens. Single use.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(
            Username::parse("Alice_01.x").map(|u| u.0).ok().as_deref(),
            Some("alice_01.x")
        );
        for bad in [
            "ab",
            "a-b-c",
            "with space",
            "émile",
            &"x".repeat(33),
            "",
            "...",
            "___",
            "._._",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad}");
        }
        assert!(Username::parse(&"x".repeat(32)).is_ok());
        assert_eq!(
            Username::parse("_._7").map(|u| u.0).ok().as_deref(),
            Some("_._7")
        );
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse("Bob@Example.ORG").map(|e| e.0).ok().as_deref(),
            Some("bob@example.org")
        );
        for bad in [
            "bob",
            "bob@",
            "@example.org",
            "bob@example",
            "bo b@example.org",
            "bob@exa_mple.org",
            "bob@-x.org",
            "a..b@x.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_count_characters() {
        assert!(check_password("ééééééé").is_err());
        assert!(check_password("éééééééé").is_ok());
        assert!(check_password(&"p".repeat(129)).is_err());
    }

    #[test]
    fn register_reports_every_field() {
        let req = RegisterRequest {
            username: "x".into(),
            email: "nope".into(),
            password: "short".into(),
        };
        let errors = req.validate().err().unwrap();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_ref()).collect();
        assert_eq!(fields, ["username", "email", "password"]);
    }
}
