//! The keys in a backup, sealed with the backup's encryption key: AES-256-GCM under a
//! key derived by HKDF-SHA256 from the secret and a random salt, so the same secret
//! never reuses a (key, nonce) pair. Layout: magic, salt, nonce, ciphertext and tag.
//! The manifest gets an HMAC-SHA256 under another key derived from the same secret:
//! it lists every file's SHA-256, so a restore given the key trusts nothing it did
//! not make (a rewritten dump, keys from another backup).

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf::{HKDF_SHA256, Salt};
use ring::hmac;

const MAGIC: &[u8] = b"AGORA-SEALED-1\n";
const SALT_LEN: usize = 16;
const INFO: &[u8] = b"agora backup keys";
const MAC_SALT: &[u8] = b"agora backup manifest";

/// Why sealed bytes could not be opened (or made).
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Not sealed by this format.
    #[error("not a sealed Agora backup object")]
    Format,
    /// Wrong key, or altered bytes.
    #[error("cannot decrypt: wrong encryption key, or the file was altered")]
    Open,
    /// The OS random source failed.
    #[error("no randomness for the salt and nonce")]
    Random,
    /// A key could not be derived or used (not expected with these algorithms).
    #[error("cannot derive a key from the encryption key")]
    Derive,
    /// The manifest's tag is missing, or not this key's for these bytes.
    #[error("not made with this encryption key, or altered")]
    Unauthentic,
}

fn key(secret: &[u8], salt: &[u8]) -> Result<LessSafeKey, SealError> {
    let prk = Salt::new(HKDF_SHA256, salt).extract(secret);
    let okm = prk
        .expand(&[INFO], &AES_256_GCM)
        .map_err(|_| SealError::Derive)?;
    Ok(LessSafeKey::new(UnboundKey::from(okm)))
}

fn mac_key(secret: &[u8]) -> Result<hmac::Key, SealError> {
    let prk = Salt::new(HKDF_SHA256, MAC_SALT).extract(secret);
    let okm = prk
        .expand(&[MAC_SALT], hmac::HMAC_SHA256)
        .map_err(|_| SealError::Derive)?;
    Ok(hmac::Key::from(okm))
}

/// The manifest's tag (hex) under `secret`.
pub fn tag(secret: &[u8], manifest: &[u8]) -> Result<String, SealError> {
    Ok(super::archive::hex(
        hmac::sign(&mac_key(secret)?, manifest).as_ref(),
    ))
}

/// Whether `tag` is `secret`'s for `manifest`.
pub fn check_tag(secret: &[u8], manifest: &[u8], tag: &str) -> Result<(), SealError> {
    let tag = tag.trim();
    let bytes: Option<Vec<u8>> = tag
        .len()
        .is_multiple_of(2)
        .then(|| {
            (0..tag.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(tag.get(i..i + 2)?, 16).ok())
                .collect()
        })
        .flatten();
    let bytes = bytes.ok_or(SealError::Unauthentic)?;
    hmac::verify(&mac_key(secret)?, manifest, &bytes).map_err(|_| SealError::Unauthentic)
}

/// `plain` sealed with `secret`.
pub fn seal(secret: &[u8], plain: &[u8]) -> Result<Vec<u8>, SealError> {
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut salt).map_err(|_| SealError::Random)?;
    getrandom::fill(&mut nonce).map_err(|_| SealError::Random)?;
    let mut body = plain.to_vec();
    key(secret, &salt)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(MAGIC),
            &mut body,
        )
        .map_err(|_| SealError::Derive)?;
    let mut out = Vec::with_capacity(MAGIC.len() + SALT_LEN + NONCE_LEN + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&body);
    Ok(out)
}

/// The plain bytes of `sealed`, if `secret` sealed them and nothing changed since.
pub fn open(secret: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    let rest = sealed.strip_prefix(MAGIC).ok_or(SealError::Format)?;
    if rest.len() < SALT_LEN + NONCE_LEN {
        return Err(SealError::Format);
    }
    let (salt, rest) = rest.split_at(SALT_LEN);
    let (nonce, body) = rest.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Format)?;
    let mut body = body.to_vec();
    let plain = key(secret, salt)?
        .open_in_place(nonce, Aad::from(MAGIC), &mut body)
        .map_err(|_| SealError::Open)?;
    Ok(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_bytes_open_with_their_key_only_and_never_when_altered() {
        let sealed = seal(b"secret one", b"the signing key").unwrap();
        assert!(!sealed.windows(15).any(|w| w == b"the signing key"));
        assert_eq!(open(b"secret one", &sealed).unwrap(), b"the signing key");
        assert!(matches!(open(b"secret two", &sealed), Err(SealError::Open)));
        let mut altered = sealed.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert!(matches!(
            open(b"secret one", &altered),
            Err(SealError::Open)
        ));
        assert!(matches!(
            open(b"secret one", &sealed[..20]),
            Err(SealError::Format)
        ));
        let manifest_tag = tag(b"secret one", b"{}").unwrap();
        assert!(check_tag(b"secret one", b"{}", &manifest_tag).is_ok());
        assert!(check_tag(b"secret two", b"{}", &manifest_tag).is_err());
        assert!(check_tag(b"secret one", b"{ }", &manifest_tag).is_err());
        assert!(check_tag(b"secret one", b"{}", "zz").is_err());
        // A fresh salt and nonce every time.
        assert_ne!(
            seal(b"secret one", b"x").unwrap(),
            seal(b"secret one", b"x").unwrap()
        );
    }
}
