//! Share links: `…/content?expires=<unix seconds>&sig=<base64url HMAC-SHA256>` over the
//! photo id and the expiry, with a key only the photos service holds. A link names one
//! photo until one instant; changing either breaks the signature.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// Shortest and longest link lifetimes, in seconds (the contract's bounds).
pub const LIFETIME_SECS: std::ops::RangeInclusive<i64> = 60..=604_800;

/// What a presented link proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkCheck {
    /// Authentic and current.
    Valid,
    /// Authentic, but past its expiry.
    Expired,
    /// Not signed by us for this photo and expiry.
    Invalid,
}

/// Signs and checks share links.
#[derive(Clone)]
pub struct LinkSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner(..)")
    }
}

impl LinkSigner {
    /// A signer with `key` (at least 32 bytes).
    pub fn new(key: &[u8]) -> Option<Self> {
        (key.len() >= 32).then(|| Self { key: key.to_vec() })
    }

    fn mac(&self, photo: Uuid, expires: i64) -> HmacSha256 {
        // Any key length is valid for HMAC.
        let mut mac = HmacSha256::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(photo.as_bytes());
        mac.update(&expires.to_be_bytes());
        mac
    }

    /// The signature of a link to `photo` until `expires`.
    pub fn sign(&self, photo: Uuid, expires: i64) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(photo, expires).finalize().into_bytes())
    }

    /// Checks a presented `(expires, sig)` for `photo` at time `now` (constant-time).
    pub fn check(&self, photo: Uuid, expires: i64, sig: &str, now: i64) -> LinkCheck {
        let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else {
            return LinkCheck::Invalid;
        };
        if self.mac(photo, expires).verify_slice(&sig).is_err() {
            return LinkCheck::Invalid;
        }
        if now >= expires {
            LinkCheck::Expired
        } else {
            LinkCheck::Valid
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_hold_for_their_photo_until_they_expire() {
        let signer = LinkSigner::new(&[7u8; 32]).unwrap();
        let photo = Uuid::now_v7();
        let sig = signer.sign(photo, 1_000);
        assert_eq!(signer.check(photo, 1_000, &sig, 999), LinkCheck::Valid);
        assert_eq!(signer.check(photo, 1_000, &sig, 1_000), LinkCheck::Expired);
        assert_eq!(
            signer.check(photo, 2_000, &sig, 999),
            LinkCheck::Invalid,
            "expiry changed"
        );
        assert_eq!(
            signer.check(Uuid::now_v7(), 1_000, &sig, 999),
            LinkCheck::Invalid,
            "another photo"
        );
        let mut tampered = sig.clone().into_bytes();
        tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            signer.check(photo, 1_000, &tampered, 999),
            LinkCheck::Invalid
        );
        assert_eq!(
            signer.check(photo, 1_000, "not base64!", 999),
            LinkCheck::Invalid
        );
        let other = LinkSigner::new(&[8u8; 32]).unwrap();
        assert_eq!(
            other.check(photo, 1_000, &sig, 999),
            LinkCheck::Invalid,
            "another key"
        );
        assert!(LinkSigner::new(b"short").is_none());
    }
}
