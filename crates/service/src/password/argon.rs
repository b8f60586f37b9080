//! Argon2id over memory the caller owns: a PHC string from a password, and a password checked
//! against a PHC string. Pure CPU work with no allocation of the hash's memory, so that a hash
//! thread can keep one buffer for its whole life (see [`super::workers`]).
//!
//! The strings are exactly what `argon2`'s own `PasswordHasher`/`PasswordVerifier` make and
//! accept (`$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>`, 16-byte salt, 32-byte output); only the
//! memory handling differs: `hash_password_into_with_memory` instead of a fresh allocation of
//! m KiB per call.

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// Length of the random salt of a new hash (the PHC format's recommendation).
const SALT_BYTES: usize = 16;

/// A hash thread's working memory: grown to the largest `m` it has been asked for, then reused.
#[derive(Default)]
pub struct Memory(Vec<Block>);

impl Memory {
    /// The first `params.block_count()` blocks, growing the buffer if it is too small. A stored
    /// hash made with a larger `m` than the configured one still verifies.
    fn blocks(&mut self, params: &Params) -> &mut [Block] {
        let needed = params.block_count();
        if self.0.len() < needed {
            self.0.resize(needed, Block::new());
        }
        &mut self.0[..needed]
    }
}

/// The PHC string of `password` under `params` (argon2id v19, random salt).
pub fn hash(memory: &mut Memory, params: &Params, password: &[u8]) -> anyhow::Result<String> {
    let mut salt = [0u8; SALT_BYTES];
    rand::fill(&mut salt);
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, &salt, &mut out, memory.blocks(params))
        .map_err(|e| anyhow::anyhow!("argon2 hash: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params)
            .map_err(|e| anyhow::anyhow!("argon2 params: {e}"))?,
        salt: Some(Salt::new(&salt).map_err(|e| anyhow::anyhow!("argon2 salt: {e}"))?),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("argon2 output: {e}"))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches `phc`. Anything unreadable in `phc` is a mismatch, as with
/// `argon2`'s own verifier; the comparison of the outputs is in constant time.
pub fn verify(memory: &mut Memory, password: &[u8], phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    // Also takes the output length from the stored hash.
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut out = [0u8; Output::MAX_LENGTH];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    let computed = Argon2::new(algorithm, version, params.clone()).hash_password_into_with_memory(
        password,
        salt.as_ref(),
        out,
        memory.blocks(&params),
    );
    // `Output`'s equality is constant-time.
    computed.is_ok() && Output::new(out).is_ok_and(|out| out == *expected)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    fn small() -> Params {
        Params::new(64, 1, 1, None).unwrap()
    }

    #[test]
    fn hashes_are_what_the_argon2_crate_reads_and_makes() {
        let mut memory = Memory::default();
        let phc = hash(&mut memory, &small(), b"correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        let theirs = Argon2::default();
        assert!(
            theirs
                .verify_password(b"correct horse", phc.as_str())
                .is_ok()
        );
        assert!(
            theirs
                .verify_password(b"correct horsE", phc.as_str())
                .is_err()
        );

        let made_by_them = Argon2::new(Algorithm::Argon2id, Version::V0x13, small())
            .hash_password(b"battery staple")
            .unwrap()
            .to_string();
        assert!(verify(&mut memory, b"battery staple", &made_by_them));
        assert!(!verify(&mut memory, b"battery stapler", &made_by_them));
    }

    #[test]
    fn one_buffer_serves_every_size_and_other_variants() {
        let mut memory = Memory::default();
        let big = Params::new(256, 1, 1, None).unwrap();
        let large = hash(&mut memory, &big, b"pw").unwrap();
        let small_phc = hash(&mut memory, &small(), b"pw").unwrap();
        assert!(verify(&mut memory, b"pw", &large));
        assert!(verify(&mut memory, b"pw", &small_phc));
        // Argon2i, v16, two lanes and a 16-byte output: read from the string, as argon2 does.
        let other = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x10,
            Params::new(128, 2, 2, Some(16)).unwrap(),
        )
        .hash_password(b"pw")
        .unwrap()
        .to_string();
        assert!(verify(&mut memory, b"pw", &other));
        assert!(!verify(&mut memory, b"px", &other));
    }

    #[test]
    fn unreadable_strings_never_match() {
        let mut memory = Memory::default();
        for phc in [
            "",
            "not a hash",
            "$argon2id$v=19$m=64,t=1,p=1",
            "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ",
            "$argon2id$v=18$m=64,t=1,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
            "$scrypt$ln=16,r=8,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert!(!verify(&mut memory, b"pw", phc), "{phc}");
        }
    }
}
