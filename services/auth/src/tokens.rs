//! Token material of the auth service: its signing key on disk, and opaque refresh
//! tokens (random, stored as SHA-256). Signing itself is the kit's
//! ([`agora_common::signing`]).

pub use agora_common::signing::{KeyError, KeyPair, SignError, TokenIssuer, generate_pem};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::path::Path;

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

/// Seals a refresh token's successor for storage beside it: XOR with a one-time pad
/// derived from the rotated token (the database keeps only its hash, so a reader of
/// the database cannot unseal it; whoever re-presents the rotated token can). Each
/// rotated token seals exactly one successor, so no pad is ever used twice. `None`
/// when `successor` is not a token [`new_refresh_token`] made.
pub fn seal_successor(rotated: &str, successor: &str) -> Option<Vec<u8>> {
    let raw = URL_SAFE_NO_PAD.decode(successor).ok()?;
    let pad = successor_pad(rotated);
    (raw.len() == pad.len()).then(|| raw.iter().zip(pad).map(|(r, p)| r ^ p).collect())
}

/// The successor [`seal_successor`] sealed, given the same rotated token. The caller
/// checks it against the successor's stored hash (a wrong token unseals to noise).
pub fn unseal_successor(rotated: &str, sealed: &[u8]) -> Option<String> {
    let pad = successor_pad(rotated);
    (sealed.len() == pad.len()).then(|| {
        let raw: Vec<u8> = sealed.iter().zip(pad).map(|(s, p)| s ^ p).collect();
        URL_SAFE_NO_PAD.encode(raw)
    })
}

fn successor_pad(rotated: &str) -> [u8; 32] {
    let mut digest = Sha256::new();
    digest.update(b"agora refresh successor pad v1\0");
    digest.update(rotated.as_bytes());
    digest.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_common::auth::{KeySource, TokenVerifier};
    use uuid::Uuid;

    fn issuer(ttl: u64) -> TokenIssuer {
        let pem = generate_pem().unwrap();
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
        let token = issuer.access_token(id, "alice").unwrap();
        let caller = verifier.verify(&token).await.map_err(|e| e.to_string());
        assert_eq!(
            caller.map(|c| (c.user_id, c.username)),
            Ok((id, "alice".to_owned()))
        );

        // Another key with the same kid layout is refused.
        let other = self::issuer(60).access_token(id, "alice").unwrap();
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
        let json = serde_json::to_value(issuer.jwks()).unwrap();
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
        let (a, ha) = new_refresh_token().unwrap();
        let (b, _) = new_refresh_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(ha, refresh_token_hash(&a));
        assert_eq!(a.len(), 43);
    }

    #[test]
    fn a_sealed_successor_opens_only_with_its_rotated_token() {
        let (rotated, _) = new_refresh_token().unwrap();
        let (successor, successor_hash) = new_refresh_token().unwrap();
        let sealed = seal_successor(&rotated, &successor).unwrap();
        assert_eq!(sealed.len(), 32);
        // Neither the token nor its hash is what is stored.
        assert_ne!(URL_SAFE_NO_PAD.encode(&sealed), successor);
        assert_ne!(sealed, successor_hash);
        assert_eq!(
            unseal_successor(&rotated, &sealed).as_deref(),
            Some(successor.as_str())
        );
        let (other, _) = new_refresh_token().unwrap();
        let wrong = unseal_successor(&other, &sealed).unwrap();
        assert_ne!(refresh_token_hash(&wrong), successor_hash);
        assert_eq!(unseal_successor(&rotated, &sealed[..31]), None);
        assert_eq!(seal_successor(&rotated, "not a token!"), None);
    }
}
