//! Password hashing: argon2id, PHC strings, computed on the blocking pool.

use crate::ServiceError;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use inventiv_domain::Password;
use std::sync::Arc;

/// How expensive a hash is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashCost {
    /// OWASP's argon2id minimum: m = 19 MiB, t = 2, p = 1. Every environment but `test`.
    Standard,
    /// m = 1 MiB, t = 1: only for the `test` environment, where hundreds of accounts are made.
    TestOnly,
}

/// Hashes and verifies passwords. Cheap to clone.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// A real hash of a random password: unknown users are verified against it so that a login
    /// for an unknown account costs the same time as one for a known account.
    dummy_hash: Arc<str>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    pub fn new(cost: HashCost) -> Result<Self, ServiceError> {
        let (m_kib, t) = match cost {
            HashCost::Standard => (19 * 1024, 2),
            HashCost::TestOnly => (1024, 1),
        };
        let params = Params::new(m_kib, t, 1, None)
            .map_err(|e| ServiceError::internal(anyhow::anyhow!("argon2 params: {e}")))?;
        let dummy = crate::tokens::random_password(24);
        let dummy_hash = hash_blocking(&params, dummy.as_bytes())?;
        Ok(Self {
            params,
            dummy_hash: dummy_hash.into(),
        })
    }

    /// The PHC string of `password` (random salt).
    pub async fn hash(&self, password: &Password) -> Result<String, ServiceError> {
        let params = self.params.clone();
        let bytes = password.as_str().as_bytes().to_vec();
        tokio::task::spawn_blocking(move || hash_blocking(&params, &bytes))
            .await
            .map_err(ServiceError::internal)?
    }

    /// Whether `password` matches `phc`. With `phc = None` (no such user) the dummy hash is
    /// checked instead and the answer is always `false`, in about the same time.
    pub async fn verify(
        &self,
        password: &Password,
        phc: Option<&str>,
    ) -> Result<bool, ServiceError> {
        let known = phc.is_some();
        let phc: Arc<str> = phc.map_or_else(|| self.dummy_hash.clone(), Arc::from);
        let bytes = password.as_str().as_bytes().to_vec();
        let matches = tokio::task::spawn_blocking(move || {
            Argon2::default().verify_password(&bytes, &*phc).is_ok()
        })
        .await
        .map_err(ServiceError::internal)?;
        Ok(known && matches)
    }
}

fn hash_blocking(params: &Params, password: &[u8]) -> Result<String, ServiceError> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password)
        .map(|h| h.to_string())
        .map_err(|e| ServiceError::internal(anyhow::anyhow!("argon2 hash: {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn standard_cost_meets_the_policy_and_verifies() {
        let hasher = PasswordHasher::new(HashCost::Standard).unwrap();
        let pw = Password::parse("correct horse battery").unwrap();
        let phc = hasher.hash(&pw).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(hasher.verify(&pw, Some(&phc)).await.unwrap());
        let wrong = Password::parse("correct horse battery!").unwrap();
        assert!(!hasher.verify(&wrong, Some(&phc)).await.unwrap());
        assert!(!hasher.verify(&pw, None).await.unwrap());
    }
}
