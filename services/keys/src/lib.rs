//! Fresh key material, drawn from the OS random source. Its own small crate because
//! both the services (through the kit) and the operator make keys, and the operator
//! should not link the services' web stack to do it.

use base64::Engine;

/// The OS random source failed: no key can be made without it.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw random bytes for a key")]
pub struct RandomError(#[source] getrandom::Error);

/// `bytes` random bytes as lowercase hex (`2 × bytes` characters).
pub fn random_hex(bytes: usize) -> Result<String, RandomError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(RandomError)?;
    Ok(to_hex(&buf))
}

/// Lowercase hex of `bytes` (digests, keys).
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        hex.push(char::from(DIGITS[usize::from(b >> 4)]));
        hex.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    hex
}

/// A new Ed25519 private key as PKCS#8 PEM: RFC 8410's fixed 16-byte prefix and a
/// 32-byte random seed, the format the auth service reads from `AUTH_SIGNING_KEY`.
pub fn ed25519_pem() -> Result<String, RandomError> {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let mut der = [0u8; 48];
    der[..16].copy_from_slice(&PREFIX);
    getrandom::fill(&mut der[16..]).map_err(RandomError)?;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    Ok(format!(
        "-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_has_the_asked_length_and_differs_each_time() {
        let a = random_hex(32).unwrap();
        assert_eq!(a.len(), 64);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(a, random_hex(32).unwrap());
        assert_eq!(to_hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }

    #[test]
    fn pem_wraps_a_fresh_pkcs8_ed25519_seed() {
        let pem = ed25519_pem().unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        assert_eq!(der.len(), 48);
        // SEQUENCE, version 0, OID 1.3.101.112 (Ed25519), OCTET STRING of 32 bytes.
        assert_eq!(
            &der[..16],
            &[
                0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
                0x04, 0x20
            ]
        );
        assert_ne!(pem, ed25519_pem().unwrap());
    }
}
