//! Authentication and sessions (SPEC §4.1, §6): login, the per-request [`Principal`],
//! workspace switch, refresh, logout, session management, profile, password change and reset.
//!
//! The JWT names a session; on every request the session row is loaded and decides: live,
//! not idle- or absolute-expired, same generation, and the role is read from the membership
//! *now*, so a removed or demoted member loses access on the very next request.

mod account;
pub mod jwt;
mod login;
mod principal;
mod reset;
pub(crate) mod sessions;

pub use account::{Me, ProfileInput, change_password, me, update_profile};
pub use login::{LoginInput, LoginOutcome, login};
pub use principal::{
    ApiKeyRef, Principal, SessionRef, Via, authenticate, authenticate_cached,
    authenticate_for_refresh,
};
pub(crate) use reset::token_hash;
pub use reset::{confirm_password_reset, request_password_reset};
pub use sessions::{
    Session, SessionView, list_sessions, logout, refresh, revoke_others, revoke_session,
    switch_workspace,
};

use crate::rate_limit::RateLimiter;
use crate::{Deps, ServiceError};
use inventiv_domain::ErrorCode;
use inventiv_domain::{OrgId, Role, SessionId, UserId};
use jwt::{Claims, JwtKeys};
use std::time::Duration as StdDuration;
use time::{Duration, OffsetDateTime};

/// `[auth]` and `[rate_limit]` settings, with the keys built.
#[derive(Debug)]
pub struct AuthConfig {
    pub jwt: JwtKeys,
    pub access_token_ttl: Duration,
    pub session_idle: Duration,
    pub session_absolute: Duration,
    /// `auth.refresh_reuse_grace_seconds`: how long after a rotation the superseded token
    /// still refreshes (to the current token) instead of revoking the session.
    pub refresh_reuse_grace: Duration,
    pub login_by_ip: RateLimiter,
    pub login_by_account: RateLimiter,
    pub reset_by_ip: RateLimiter,
    pub reset_by_account: RateLimiter,
    pub accept_by_ip: RateLimiter,
    pub accept_by_account: RateLimiter,
    /// State of the limits shared through PostgreSQL (see [`crate::rate_limit::shared`]).
    pub shared_limits: crate::rate_limit::shared::SharedLimits,
}

impl AuthConfig {
    pub fn new(
        jwt_secret: &[u8],
        access_token_ttl_seconds: u64,
        session_idle_seconds: u64,
        session_absolute_seconds: u64,
        attempts_per_minute: u32,
    ) -> Result<Self, ServiceError> {
        let secs = |s: u64| Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 2));
        let limiter = || RateLimiter::new(attempts_per_minute, StdDuration::from_secs(60));
        Ok(Self {
            jwt: JwtKeys::new(jwt_secret).map_err(ServiceError::internal)?,
            access_token_ttl: secs(access_token_ttl_seconds),
            session_idle: secs(session_idle_seconds),
            session_absolute: secs(session_absolute_seconds),
            // SPEC §4.6 default; the server sets the configured value.
            refresh_reuse_grace: Duration::seconds(10),
            login_by_ip: limiter(),
            login_by_account: limiter(),
            reset_by_ip: limiter(),
            reset_by_account: limiter(),
            accept_by_ip: limiter(),
            accept_by_account: limiter(),
            shared_limits: Default::default(),
        })
    }

    /// Sets `auth.refresh_reuse_grace_seconds`.
    #[must_use]
    pub fn with_refresh_reuse_grace(mut self, seconds: u64) -> Self {
        self.refresh_reuse_grace =
            Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX / 2));
        self
    }
}

/// A signed access token and when it stops being accepted.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires_at: OffsetDateTime,
}

/// Signs a token for session `sid` at `generation`; it expires with the access TTL or the
/// session's absolute expiry, whichever comes first.
pub fn issue_token(
    deps: &Deps,
    user: UserId,
    sid: SessionId,
    generation: i32,
    workspace: Option<(OrgId, Role)>,
    session_expires_at: OffsetDateTime,
) -> Result<IssuedToken, ServiceError> {
    let now = deps.clock.now();
    let expires_at = (now + deps.auth.access_token_ttl).min(session_expires_at);
    let claims = Claims {
        sub: user.to_string(),
        sid: sid.to_string(),
        generation: i64::from(generation),
        org: workspace.map(|(o, _)| o.to_string()),
        org_role: workspace.map(|(_, r)| r.as_str().to_owned()),
        iat: now.unix_timestamp(),
        exp: expires_at.unix_timestamp(),
        iss: jwt::ISSUER.to_owned(),
        aud: jwt::AUDIENCE.to_owned(),
    };
    let token = deps
        .auth
        .jwt
        .issue(&claims)
        .map_err(ServiceError::internal)?;
    Ok(IssuedToken { token, expires_at })
}

pub(crate) fn unauthorized(message: &str) -> ServiceError {
    ServiceError::Unauthenticated {
        code: ErrorCode::Unauthorized,
        message: message.to_owned(),
    }
}

/// Counts one attempt against each of `limits` in order (see [`crate::rate_limit::shared`]);
/// the first that refuses it answers 429, and the first refusal of a burst is recorded in the
/// audit trail as `action`.
pub(crate) async fn enforce_limits(
    deps: &Deps,
    limits: &[crate::rate_limit::shared::Limit<'_>],
    action: &'static str,
    meta: &crate::RequestMeta,
) -> Result<(), ServiceError> {
    use crate::audit::{AuditActor, AuditEntry, record};
    match crate::rate_limit::shared::check(deps, limits).await? {
        None => Ok(()),
        Some(crate::rate_limit::shared::Refusal {
            kind: key_kind,
            retry_after_secs,
            first,
        }) => {
            if first {
                let tx = deps.db.begin_write().await?;
                record(
                    &tx,
                    deps.clock.now(),
                    AuditActor::default(),
                    meta,
                    AuditEntry {
                        action,
                        organization: None,
                        target_type: "rate_limit",
                        target_id: key_kind.to_owned(),
                        before: None,
                        after: Some(serde_json::json!({"retry_after_secs": retry_after_secs})),
                    },
                )
                .await?;
                tx.commit().await?;
            }
            Err(ServiceError::RateLimited { retry_after_secs })
        }
    }
}
