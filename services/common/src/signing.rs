//! Signing access tokens: Ed25519 key pairs with their JWK (`kid` = RFC 7638
//! thumbprint), and the issuer that signs [`AccessClaims`] and publishes the key set.
//! The auth service signs with it; every service's tests mint tokens with it.

use crate::auth::AccessClaims;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use uuid::Uuid;

/// Signing key problems found at start-up.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The PEM is not an Ed25519 PKCS#8 private key.
    #[error("{origin}: not an Ed25519 private key in PKCS#8 PEM form ({reason})")]
    Invalid { origin: String, reason: String },
    /// Reading or writing the key file failed.
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
}

/// One Ed25519 key pair with its JWK (`kid` = RFC 7638 thumbprint).
pub struct KeyPair {
    encoding: EncodingKey,
    jwk: Jwk,
}

impl KeyPair {
    /// Loads a PKCS#8 PEM (`openssl genpkey -algorithm ed25519` makes one).
    pub fn from_pem(pem: &[u8], origin: &str) -> Result<Self, KeyError> {
        let invalid = |reason: String| KeyError::Invalid {
            origin: origin.to_owned(),
            reason,
        };
        let encoding = EncodingKey::from_ed_pem(pem).map_err(|e| invalid(e.to_string()))?;
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::EdDSA)
            .map_err(|e| invalid(e.to_string()))?;
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| invalid(e.to_string()))?;
        jwk.common.key_id = Some(kid);
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(Self { encoding, jwk })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        self.jwk.common.key_id.as_deref().unwrap_or_default()
    }
}

/// A new Ed25519 private key as PKCS#8 PEM.
pub fn generate_pem() -> Result<String, KeyError> {
    agora_keys::ed25519_pem().map_err(|e| KeyError::Invalid {
        origin: "generated key".into(),
        reason: e.to_string(),
    })
}

/// Issues access tokens and publishes the key set.
pub struct TokenIssuer {
    signing: KeyPair,
    header: Header,
    jwks: JwkSet,
    issuer: String,
    audience: String,
    /// Access-token lifetime in seconds.
    pub access_ttl_secs: u64,
}

/// Signing failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot sign token: {0}")]
pub struct SignError(#[from] jsonwebtoken::errors::Error);

impl TokenIssuer {
    /// Signs with `signing`; `previous` keys are published (for tokens they signed
    /// before a rotation) but never used to sign.
    pub fn new(
        signing: KeyPair,
        previous: Vec<KeyPair>,
        issuer: String,
        audience: String,
        access_ttl_secs: u64,
    ) -> Self {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(signing.kid().to_owned());
        let keys = std::iter::once(&signing)
            .chain(&previous)
            .map(|k| k.jwk.clone())
            .collect();
        Self {
            signing,
            header,
            jwks: JwkSet { keys },
            issuer,
            audience,
            access_ttl_secs,
        }
    }

    /// The public key set.
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// A signed access token for the user (token version 0).
    pub fn access_token(&self, user_id: Uuid, username: &str) -> Result<String, SignError> {
        self.access_token_at(user_id, username, 0)
    }

    /// A signed access token for the user at the account's token `version`.
    pub fn access_token_at(
        &self,
        user_id: Uuid,
        username: &str,
        version: i64,
    ) -> Result<String, SignError> {
        let _span = tracing::info_span!("token.sign", jwt.alg = "EdDSA").entered();
        let now = jsonwebtoken::get_current_timestamp();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id,
            name: username.to_owned(),
            iat: now,
            exp: now + self.access_ttl_secs,
            jti: Uuid::now_v7(),
            ver: version,
        };
        Ok(jsonwebtoken::encode(
            &self.header,
            &claims,
            &self.signing.encoding,
        )?)
    }
}
