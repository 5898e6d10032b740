//! Password hashing with argon2id (OWASP's minimum: m=19 MiB, t=2, p=1, or stronger).
//!
//! Hashing is CPU- and memory-heavy by design, so it runs on the blocking pool and at
//! most `max_concurrent` at once: a burst of logins queues instead of eating all memory.
//! Verifications reuse their 19 MiB working memory (one buffer per permit) instead of
//! allocating and zeroing it for every login.

use agora_common::ApiError;
use argon2::password_hash::PasswordHasher;
use argon2::password_hash::phc::{Output, PasswordHash};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use std::sync::{Arc, Mutex};
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
    /// Working memory of finished verifications, at most one per permit.
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
    /// `agora_auth_password_hash_wait_seconds`: time waited for a hashing permit.
    pub wait: Histogram,
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
            memory: Arc::new(Mutex::new(Vec::new())),
            wait: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
        })
    }

    fn hasher(params: &Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let _permit = self.permit().await?;
        let params = self.params.clone();
        agora_common::telemetry::blocking(tracing::info_span!("password.hash"), move || {
            hash_with(&params, password.as_bytes())
        })
        .await
        .map_err(|e| HashError(e.to_string()))?
    }

    /// A hashing permit; the wait is measured.
    async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, HashError> {
        let started = std::time::Instant::now();
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashError(e.to_string()));
        self.wait.observe(started.elapsed().as_secs_f64());
        permit
    }

    /// Checks `password` against `stored`, or against the dummy hash when there is no
    /// account, so both cases cost the same. Returns whether it matched.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        let _permit = self.permit().await?;
        let real = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let pool = self.memory.clone();
        let matched =
            agora_common::telemetry::blocking(tracing::info_span!("password.verify"), move || {
                let mut memory = lock(&pool).pop().unwrap_or_default();
                let matched = verify_with(password.as_bytes(), &hash, &mut memory);
                lock(&pool).push(memory);
                matched
            })
            .await
            .map_err(|e| HashError(e.to_string()))?;
        Ok(real && matched)
    }
}

fn lock(pool: &Mutex<Vec<Vec<Block>>>) -> std::sync::MutexGuard<'_, Vec<Vec<Block>>> {
    pool.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether `password` matches the PHC string `stored`, hashed with the algorithm,
/// version and parameters written in it (as `PasswordVerifier` does) in `memory`, grown
/// to what those parameters need. Anything unparsable is a mismatch.
fn verify_with(password: &[u8], stored: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else {
        return false;
    };
    let Ok(version) = hash
        .version
        .map_or(Ok(Version::default()), Version::try_from)
    else {
        return false;
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let mut buffer = [0u8; Output::MAX_LENGTH];
    let Some(out) = buffer.get_mut(..expected.len()) else {
        return false;
    };
    // argon2 writes every block before reading it: old contents need no zeroing.
    memory.resize(params.block_count(), Block::default());
    let hasher = Argon2::new(algorithm, version, params);
    if hasher
        .hash_password_into_with_memory(password, salt, out, &mut memory[..])
        .is_err()
    {
        return false;
    }
    // Output's equality is constant-time.
    Output::new(out).is_ok_and(|computed| &computed == expected)
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

    #[test]
    fn reused_memory_verifies_like_the_library_whatever_the_stored_parameters() {
        use argon2::password_hash::PasswordVerifier;
        let hashes: Vec<String> = [
            (Algorithm::Argon2id, 19_456, 2),
            (Algorithm::Argon2id, 32_768, 3),
            (Algorithm::Argon2i, 8_192, 2),
            (Algorithm::Argon2id, 19_456, 2),
        ]
        .into_iter()
        .map(|(algorithm, m, t)| {
            let params = Params::new(m, t, 1, None).unwrap();
            Argon2::new(algorithm, Version::V0x13, params)
                .hash_password(b"correct horse")
                .unwrap()
                .to_string()
        })
        .collect();
        // One buffer, grown and shrunk from hash to hash, as the pool hands them out.
        let mut memory = Vec::new();
        for hash in &hashes {
            for password in [&b"correct horse"[..], b"wrong horse", b""] {
                let library = Argon2::default().verify_password(password, hash.as_str());
                assert_eq!(
                    verify_with(password, hash, &mut memory),
                    library.is_ok(),
                    "{hash}"
                );
            }
        }
        let tampered = {
            let mut h = hashes[0].clone();
            let last = h.pop().unwrap();
            h.push(if last == 'A' { 'B' } else { 'A' });
            h
        };
        assert!(!verify_with(b"correct horse", &tampered, &mut memory));
        for garbage in [
            "",
            "$argon2id$",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA",
            "plain",
        ] {
            assert!(
                !verify_with(b"correct horse", garbage, &mut memory),
                "{garbage}"
            );
        }
    }
}
