//! Password hashing: argon2id, PHC strings, computed on the password hash threads
//! ([`workers`]: at most one hash per core at once, a bounded queue of places, 503
//! `server_busy` beyond).

mod argon;
mod workers;

pub use workers::PoolSize;

use crate::ServiceError;
use argon::Memory;
use argon2::Params;
use inventiv_domain::Password;
use std::sync::Arc;
use workers::HashWorkers;

/// How expensive a hash is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashCost {
    /// OWASP's argon2id minimum: m = 19 MiB, t = 2, p = 1. Every environment but `test`.
    Standard,
    /// m = 1 MiB, t = 1: only for the `test` environment, where hundreds of accounts are made.
    TestOnly,
}

/// Hashes and verifies passwords. Cheap to clone (the clones share the hash threads).
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// A real hash of a random password: unknown users are verified against it so that a login
    /// for an unknown account costs the same time as one for a known account.
    dummy_hash: Arc<str>,
    workers: HashWorkers,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.params)
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// Starts the hash threads (`pool`) and makes the dummy hash.
    pub fn new(cost: HashCost, pool: PoolSize) -> Result<Self, ServiceError> {
        let (m_kib, t) = match cost {
            HashCost::Standard => (19 * 1024, 2),
            HashCost::TestOnly => (1024, 1),
        };
        let params = Params::new(m_kib, t, 1, None)
            .map_err(|e| ServiceError::internal(anyhow::anyhow!("argon2 params: {e}")))?;
        // Once, at start-up, before the threads serve anyone.
        let dummy = crate::tokens::random_password(24);
        let dummy_hash = argon::hash(&mut Memory::default(), &params, dummy.as_bytes())
            .map_err(ServiceError::internal)?;
        Ok(Self {
            params,
            dummy_hash: dummy_hash.into(),
            workers: HashWorkers::start(pool)?,
        })
    }

    /// The PHC string of `password` (random salt). `ServiceError::Busy` when every place
    /// among the hash threads is taken.
    pub async fn hash(&self, password: &Password) -> Result<String, ServiceError> {
        let params = self.params.clone();
        let bytes = password.as_str().as_bytes().to_vec();
        self.workers
            .reserve()?
            .run(move |memory| argon::hash(memory, &params, &bytes))
            .await?
            .map_err(ServiceError::internal)
    }

    /// Reserves a place among the hash threads for one [`PasswordCheck`]: a login takes it
    /// before anything else, so that a refusal (`ServiceError::Busy`) costs no database round
    /// trip.
    pub fn reserve_check(&self) -> Result<PasswordCheck, ServiceError> {
        Ok(PasswordCheck {
            place: self.workers.reserve()?,
            dummy_hash: self.dummy_hash.clone(),
        })
    }

    /// [`Self::reserve_check`], then [`PasswordCheck::verify`].
    pub async fn verify(
        &self,
        password: &Password,
        phc: Option<&str>,
    ) -> Result<bool, ServiceError> {
        self.reserve_check()?.verify(password, phc).await
    }
}

/// One password check with its place among the hash threads already taken.
pub struct PasswordCheck {
    place: workers::Place,
    dummy_hash: Arc<str>,
}

impl PasswordCheck {
    /// Whether `password` matches `phc`. With `phc = None` (no such user) the dummy hash is
    /// checked instead and the answer is always `false`, in about the same time.
    pub async fn verify(
        self,
        password: &Password,
        phc: Option<&str>,
    ) -> Result<bool, ServiceError> {
        let known = phc.is_some();
        let phc: Arc<str> = phc.map_or(self.dummy_hash, Arc::from);
        let bytes = password.as_str().as_bytes().to_vec();
        let matches = self
            .place
            .run(move |memory| argon::verify(memory, &bytes, &phc))
            .await?;
        Ok(known && matches)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn standard_cost_meets_the_policy_and_verifies() {
        let hasher = PasswordHasher::new(HashCost::Standard, PoolSize::default()).unwrap();
        let pw = Password::parse("correct horse battery").unwrap();
        let phc = hasher.hash(&pw).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(hasher.verify(&pw, Some(&phc)).await.unwrap());
        let wrong = Password::parse("correct horse battery!").unwrap();
        assert!(!hasher.verify(&wrong, Some(&phc)).await.unwrap());
        assert!(!hasher.verify(&pw, None).await.unwrap());
    }
}
