//! The keys in a backup, sealed with the backup's encryption key: AES-256-GCM under a
//! key derived by HKDF-SHA256 from the secret and a random salt, so the same secret
//! never reuses a (key, nonce) pair. Layout: magic, salt, nonce, ciphertext and tag.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf::{HKDF_SHA256, Salt};

const MAGIC: &[u8] = b"AGORA-SEALED-1\n";
const SALT_LEN: usize = 16;
const INFO: &[u8] = b"agora backup keys";

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
}

fn key(secret: &[u8], salt: &[u8]) -> Result<LessSafeKey, SealError> {
    let prk = Salt::new(HKDF_SHA256, salt).extract(secret);
    let okm = prk
        .expand(&[INFO], &AES_256_GCM)
        .map_err(|_| SealError::Random)?;
    Ok(LessSafeKey::new(UnboundKey::from(okm)))
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
        .map_err(|_| SealError::Random)?;
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
        // A fresh salt and nonce every time.
        assert_ne!(
            seal(b"secret one", b"x").unwrap(),
            seal(b"secret one", b"x").unwrap()
        );
    }
}
