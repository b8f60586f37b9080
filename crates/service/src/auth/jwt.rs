//! Access tokens: HS256 JWTs naming a session. Claims are hints; the session row decides.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

pub const ISSUER: &str = "inventiv";
pub const AUDIENCE: &str = "inventiv-api";

/// SPEC §6 claims.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Session id.
    pub sid: String,
    /// The session's token generation when issued; a mismatch means superseded.
    #[serde(rename = "gen")]
    pub generation: i64,
    /// Workspace org id at issue (hint).
    pub org: Option<String>,
    /// Role in that org at issue (hint).
    pub org_role: Option<String>,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

/// Signs and verifies tokens. Expiry is checked by the caller against the injected clock.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Tokens that verified, with their claims (issue 18: a signed-in read spent about a
    /// tenth of its server CPU decoding base64, computing the HMAC and parsing the claims of
    /// the same token again). Keyed by the whole token, so only the exact bytes that verified
    /// are found here, and a verification never changes its answer for the same bytes and
    /// keys: expiry is checked by the caller on every request, and whether the session still
    /// stands is decided by the session (its cache and its row), never by this map.
    /// foldhash (seeded per process) rather than SipHash: a token is ~400 bytes, hashed on
    /// every request, and only tokens that verified are ever inserted.
    verified: Mutex<foldhash::HashMap<Box<str>, Arc<Claims>>>,
}

/// Verified tokens kept at most; the map is simply cleared beyond (it refills as tokens are
/// presented again). About 0.5 KB each.
const VERIFIED_CAPACITY: usize = 10_000;

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys(***)")
    }
}

impl JwtKeys {
    /// Keys from the configured secret (≥ 32 bytes, checked by the settings).
    pub fn new(secret: &[u8]) -> Result<Self, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(Algorithm::HS256);
        // Only HS256: `alg: none` and every other algorithm are refused by the library.
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // The service compares `exp` with its own clock (tests pin time); refresh also
        // accepts a token past `exp` because the live session row is what authorizes it.
        validation.validate_exp = false;
        Ok(Self {
            encoding: EncodingKey::from_secret(secret)?,
            decoding: DecodingKey::from_secret(secret)?,
            validation,
            verified: Mutex::new(foldhash::HashMap::default()),
        })
    }

    pub fn issue(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
    }

    /// Signature, algorithm, issuer and audience; `None` for anything else.
    pub fn verify(&self, token: &str) -> Option<Arc<Claims>> {
        if let Some(claims) = self.verified.lock().ok()?.get(token) {
            return Some(claims.clone());
        }
        let claims = Arc::new(
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
                .ok()?
                .claims,
        );
        if let Ok(mut verified) = self.verified.lock() {
            if verified.len() >= VERIFIED_CAPACITY {
                verified.clear();
            }
            verified.insert(token.into(), claims.clone());
        }
        Some(claims)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn claims(sid: &str) -> Claims {
        Claims {
            sub: "user".to_owned(),
            sid: sid.to_owned(),
            generation: 1,
            org: None,
            org_role: None,
            iat: 0,
            exp: 1,
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
        }
    }

    #[test]
    fn only_the_exact_bytes_that_verified_are_remembered() {
        let keys = JwtKeys::new(&[7u8; 32]).unwrap();
        let token = keys.issue(&claims("s1")).unwrap();
        assert_eq!(keys.verify(&token).unwrap().sid, "s1");
        // Remembered: the same answer, from the map.
        assert_eq!(keys.verify(&token).unwrap().sid, "s1");
        assert_eq!(keys.verified.lock().unwrap().len(), 1);
        // A token that differs in its signature, its claims or by a byte is verified afresh,
        // and refused, however often its genuine sibling was presented.
        let (body, signature) = token.rsplit_once('.').unwrap();
        let mut forged = signature.to_owned();
        forged.replace_range(..1, if forged.starts_with('A') { "B" } else { "A" });
        assert!(keys.verify(&format!("{body}.{forged}")).is_none());
        assert!(keys.verify(&format!("{token}x")).is_none());
        let other = JwtKeys::new(&[8u8; 32]).unwrap();
        let foreign = other.issue(&claims("s1")).unwrap();
        assert!(keys.verify(&foreign).is_none());
        assert_eq!(
            keys.verified.lock().unwrap().len(),
            1,
            "refusals are not kept"
        );
    }

    #[test]
    fn the_map_is_bounded() {
        let keys = JwtKeys::new(&[7u8; 32]).unwrap();
        for i in 0..VERIFIED_CAPACITY + 10 {
            let token = keys.issue(&claims(&i.to_string())).unwrap();
            assert!(keys.verify(&token).is_some());
        }
        assert!(keys.verified.lock().unwrap().len() <= VERIFIED_CAPACITY);
    }
}
