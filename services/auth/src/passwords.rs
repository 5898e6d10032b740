//! Password hashing with argon2id (OWASP's minimum: m=19 MiB, t=2, p=1, or stronger).
//!
//! Hashing is CPU- and memory-heavy by design, so it runs on the blocking pool and at
//! most `max_concurrent` at once: a burst of logins queues instead of eating all memory.

use agora_common::ApiError;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// argon2id parameters.
#[derive(Debug, Clone, Copy)]
pub struct HashParams {
    /// Memory in KiB (≥ 19456).
    pub memory_kib: u32,
    /// Iterations (≥ 2).
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// Hashes and verifies passwords; cheap to clone.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
    permits: Arc<Semaphore>,
    /// A real hash of a random password: verifying against it costs what a real
    /// verification costs, so unknown accounts answer as slowly as wrong passwords.
    dummy_hash: Arc<str>,
}

/// Hashing failed (bad parameters or an internal error of the hasher).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

impl From<HashError> for ApiError {
    fn from(err: HashError) -> Self {
        ApiError::internal(err)
    }
}

impl Passwords {
    /// Builds the hasher and its dummy hash.
    pub fn new(params: HashParams, max_concurrent: usize) -> Result<Self, HashError> {
        let params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|e| HashError(e.to_string()))?;
        let mut random = [0u8; 24];
        getrandom::fill(&mut random).map_err(|e| HashError(e.to_string()))?;
        let dummy = hash_with(&params, &random)?;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            dummy_hash: dummy.into(),
        })
    }

    fn hasher(params: &Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashError(e.to_string()))?;
        let params = self.params.clone();
        actix_web::web::block(move || hash_with(&params, password.as_bytes()))
            .await
            .map_err(|e| HashError(e.to_string()))?
    }

    /// Checks `password` against `stored`, or against the dummy hash when there is no
    /// account, so both cases cost the same. Returns whether it matched.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashError(e.to_string()))?;
        let real = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let params = self.params.clone();
        let matched = actix_web::web::block(move || {
            Self::hasher(&params)
                .verify_password(password.as_bytes(), hash.as_str())
                .is_ok()
        })
        .await
        .map_err(|e| HashError(e.to_string()))?;
        Ok(real && matched)
    }
}

fn hash_with(params: &Params, password: &[u8]) -> Result<String, HashError> {
    Passwords::hasher(params)
        .hash_password(password)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn hashes_are_argon2id_and_verify() {
        let p = Passwords::new(HashParams::default(), 2).map_err(|e| e.to_string());
        let p = match p {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        let hash = p.hash("correct horse".into()).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert_eq!(
            p.verify("correct horse".into(), Some(hash.clone()))
                .await
                .ok(),
            Some(true)
        );
        assert_eq!(
            p.verify("wrong horse".into(), Some(hash)).await.ok(),
            Some(false)
        );
        // No account: never a match, even for the dummy's own password space.
        assert_eq!(
            p.verify("correct horse".into(), None).await.ok(),
            Some(false)
        );
    }
}
