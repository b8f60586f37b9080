use super::enforce_limits;
use crate::audit::{AuditActor, AuditEntry, record};
use crate::mailer::OutgoingEmail;
use crate::rate_limit::shared;
use crate::{Deps, RequestMeta, ServiceError};
use inventiv_domain::ErrorCode;
use inventiv_domain::{Email, Password};
use inventiv_persistence::repo::reset_tokens::{self, ConsumeError};
use inventiv_persistence::repo::{sessions, users};
use serde_json::json;
use sha2::{Digest, Sha256};
use time::Duration;

/// How long a reset link works.
pub const RESET_TOKEN_TTL: Duration = Duration::hours(1);

/// SHA-256 of a token, hex: what the database stores and is searched by.
pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// `POST /auth/password-reset/request`: the same answer whether or not the account exists.
/// For an existing, enabled account: a new single-use token (older ones die), emailed off the
/// request path.
///
/// The same answer at the same time, too: once the rate limits pass, the account is looked up
/// and its link issued on a task of its own, after the answer. Done on the request, an
/// existing account's answer waited for a write transaction (the token, the audit event) that
/// an unknown one skipped, and a few timed requests told which addresses have accounts.
pub async fn request_password_reset(
    deps: &Deps,
    email: &str,
    meta: &RequestMeta,
) -> Result<(), ServiceError> {
    super::login::check_login_len(email, "email")?;
    let normalized = email.trim().to_lowercase();
    let ip_key = crate::rate_limit::address_key(meta.ip.as_deref());
    let account_key = format!("account:{normalized}");
    let limit = |limiter, key, kind| shared::Limit {
        limiter,
        scope: "reset",
        key,
        kind,
    };
    enforce_limits(
        deps,
        &[
            limit(&deps.auth.reset_by_ip, &ip_key, "ip"),
            limit(&deps.auth.reset_by_account, &account_key, "account"),
        ],
        "auth.reset_rate_limited",
        meta,
    )
    .await?;
    // A malformed address cannot have an account: same answer as an unknown one.
    let Ok(email) = Email::parse(&normalized) else {
        return Ok(());
    };
    let (deps, meta) = (deps.clone(), meta.clone());
    tokio::spawn(async move {
        if let Err(err) = issue_reset_link(&deps, &email, &meta).await {
            tracing::error!(error = %err, "issuing a password reset link failed");
        }
    });
    Ok(())
}

/// The link of [`request_password_reset`], if `email` names an enabled account.
async fn issue_reset_link(
    deps: &Deps,
    email: &Email,
    meta: &RequestMeta,
) -> Result<(), ServiceError> {
    let Some(user) = users::find_by_email(&deps.db, email).await? else {
        return Ok(());
    };
    if user.disabled_at.is_some() {
        return Ok(());
    }
    let token = crate::tokens::random_token(32);
    let now = deps.clock.now();
    let tx = deps.db.begin_write().await?;
    reset_tokens::replace(
        &tx,
        user.id,
        &token_hash(&token),
        now,
        now + RESET_TOKEN_TTL,
    )
    .await?;
    record(
        &tx,
        now,
        AuditActor::default(),
        meta,
        AuditEntry {
            action: "user.password_reset_requested",
            organization: None,
            target_type: "user",
            target_id: user.id.to_string(),
            before: None,
            after: None,
        },
    )
    .await?;
    tx.commit().await?;

    let link = format!("{}/reset-password?token={token}", deps.public_url);
    let mail = OutgoingEmail {
        to: user.email.clone(),
        subject: "Reset your Inventiv password".to_owned(),
        text: format!(
            "Someone (hopefully you) asked to reset the password of your Inventiv account.\n\n\
             Choose a new password here (the link works once, for one hour):\n{link}\n\n\
             If you did not ask for this, ignore this email: your password stays as it is.\n"
        ),
    };
    crate::mailer::send_in_background(deps.mailer.clone(), mail);
    Ok(())
}

/// `POST /auth/password-reset/confirm`: sets the new password and revokes every session.
/// The token works once (410 afterwards, and when expired or unknown).
pub async fn confirm_password_reset(
    deps: &Deps,
    token: &str,
    new_password: &str,
    meta: &RequestMeta,
) -> Result<(), ServiceError> {
    let password = Password::parse(new_password)
        .map_err(|e| ServiceError::invalid("new_password", e.reason))?;
    if token.is_empty() || token.len() > 256 {
        return Err(gone());
    }
    let hash = deps.passwords.hash(&password).await?;
    let now = deps.clock.now();
    let tx = deps.db.begin_write().await?;
    let user_id = match reset_tokens::consume(&tx, &token_hash(token), now).await? {
        Ok(user) => user,
        Err(ConsumeError::Unknown | ConsumeError::Used | ConsumeError::Expired) => {
            return Err(gone());
        }
    };
    users::set_password_hash(&tx, user_id, &hash, now, None).await?;
    let revoked = sessions::revoke_all_for_user(&tx, user_id, None, "password_reset", now).await?;
    record(
        &tx,
        now,
        AuditActor {
            user: Some(user_id),
            session: None,
        },
        meta,
        AuditEntry {
            action: "user.password_reset",
            organization: None,
            target_type: "user",
            target_id: user_id.to_string(),
            before: None,
            after: Some(json!({"sessions_revoked": revoked})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

fn gone() -> ServiceError {
    ServiceError::Gone {
        code: ErrorCode::ResetTokenInvalid,
        message: "This reset link is invalid, expired or already used; ask for a new one."
            .to_owned(),
    }
}
