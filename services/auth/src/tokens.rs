//! Token material: the Ed25519 signing key and JWKS, access-token issuance, and
//! opaque refresh tokens (random, stored as SHA-256).

use agora_common::auth::AccessClaims;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sha2::{Digest, Sha256};
use std::path::Path;
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
    // PKCS#8 v1 wrapping of a 32-byte Ed25519 seed (RFC 8410): fixed 16-byte prefix.
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let mut der = [0u8; 48];
    der[..16].copy_from_slice(&PREFIX);
    getrandom::fill(&mut der[16..]).map_err(|e| KeyError::Invalid {
        origin: "generated key".into(),
        reason: e.to_string(),
    })?;
    Ok(format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(der)
    ))
}

/// Reads the key at `path`, generating it first (mode 0600) when `generate` is set and
/// the file is missing.
pub fn load_or_generate(path: &Path, generate: bool) -> Result<KeyPair, KeyError> {
    let io = |e: std::io::Error| KeyError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    if generate && !path.exists() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let pem = generate_pem()?;
        write_private(path, pem.as_bytes()).map_err(io)?;
        tracing::info!(path = %path.display(), "generated a new signing key");
    }
    let pem = std::fs::read(path).map_err(io)?;
    KeyPair::from_pem(&pem, &path.display().to_string())
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
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

    /// A signed access token for the user.
    pub fn access_token(&self, user_id: Uuid, username: &str) -> Result<String, SignError> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id,
            name: username.to_owned(),
            iat: now,
            exp: now + self.access_ttl_secs,
            jti: Uuid::now_v7(),
        };
        Ok(jsonwebtoken::encode(
            &self.header,
            &claims,
            &self.signing.encoding,
        )?)
    }
}

/// A new refresh token (256 random bits, base64url) and its stored hash.
pub fn new_refresh_token() -> Result<(String, Vec<u8>), getrandom::Error> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw)?;
    let token = URL_SAFE_NO_PAD.encode(raw);
    let hash = refresh_token_hash(&token);
    Ok((token, hash))
}

/// What the database stores for a refresh token.
pub fn refresh_token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_common::auth::{KeySource, TokenVerifier};

    fn issuer(ttl: u64) -> TokenIssuer {
        let pem = generate_pem().unwrap_or_default();
        match KeyPair::from_pem(pem.as_bytes(), "test") {
            Ok(key) => TokenIssuer::new(key, vec![], "agora".into(), "agora".into(), ttl),
            Err(e) => panic!("{e}"),
        }
    }

    #[actix_web::test]
    async fn tokens_verify_with_the_published_keys_only() {
        let issuer = issuer(60);
        let verifier =
            TokenVerifier::new("agora", "agora", KeySource::Static(issuer.jwks().clone()));
        let id = Uuid::now_v7();
        let token = issuer.access_token(id, "alice").unwrap_or_default();
        let caller = verifier.verify(&token).await.map_err(|e| e.to_string());
        assert_eq!(
            caller.map(|c| (c.user_id, c.username)),
            Ok((id, "alice".to_owned()))
        );

        // Another key with the same kid layout is refused.
        let other = self::issuer(60)
            .access_token(id, "alice")
            .unwrap_or_default();
        assert!(verifier.verify(&other).await.is_err());
        // Flipping one signature character breaks it.
        let mut tampered = token.clone();
        let last = tampered
            .pop()
            .map(|c| if c == 'A' { 'B' } else { 'A' })
            .unwrap_or('A');
        tampered.push(last);
        assert!(verifier.verify(&tampered).await.is_err());
        // Wrong audience.
        let strict = TokenVerifier::new(
            "agora",
            "elsewhere",
            KeySource::Static(issuer.jwks().clone()),
        );
        assert!(strict.verify(&token).await.is_err());
    }

    #[test]
    fn jwks_has_kid_and_okp() {
        let issuer = issuer(60);
        let json = serde_json::to_value(issuer.jwks()).unwrap_or_default();
        let key = &json["keys"][0];
        assert_eq!(key["kty"], "OKP");
        assert_eq!(key["crv"], "Ed25519");
        assert_eq!(key["alg"], "EdDSA");
        assert!(key["kid"].as_str().is_some_and(|k| k.len() == 43));
        assert!(
            key.get("d").is_none(),
            "private part must never be published"
        );
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let (a, ha) = new_refresh_token().unwrap_or_default();
        let (b, _) = new_refresh_token().unwrap_or_default();
        assert_ne!(a, b);
        assert_eq!(ha, refresh_token_hash(&a));
        assert_eq!(a.len(), 43);
    }
}
