//! `password_reset_tokens`: single-use, hashed, short-lived.

use crate::repo::{exec_sql, query_one_sql};
use crate::{Store, StoreError};
use inventiv_domain::{ResetTokenId, UserId};
use time::OffsetDateTime;

/// Stores a new token hash for `user`, after invalidating every unused older one.
pub async fn replace<S: Store>(
    s: &S,
    user: UserId,
    token_hash: &str,
    now: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<(), StoreError> {
    void_unused(s, user, now).await?;
    exec_sql(
        s,
        "INSERT INTO password_reset_tokens (id, user_id, token_hash, expires_at, used_at, created_at) \
         VALUES ($1, $2, $3, $4, NULL, $5)",
        vec![
            ResetTokenId::new().as_uuid().into(),
            user.as_uuid().into(),
            token_hash.into(),
            expires_at.into(),
            now.into(),
        ],
    )
    .await?;
    Ok(())
}

/// Marks every unused token of `user` used: a newer link was sent, or the password was
/// changed by someone who knew it (a link in someone else's hands must not undo that).
pub async fn void_unused<S: Store>(
    s: &S,
    user: UserId,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    exec_sql(
        s,
        "UPDATE password_reset_tokens SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL",
        vec![now.into(), user.as_uuid().into()],
    )
    .await?;
    Ok(())
}

/// Why a token cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeError {
    /// No such token.
    Unknown,
    /// Already used (or superseded by a newer request).
    Used,
    Expired,
}

/// Consumes the token with this hash, exactly once: the conditional UPDATE succeeds for one
/// caller only, whatever the concurrency. Returns the user it belongs to.
pub async fn consume<S: Store>(
    s: &S,
    token_hash: &str,
    now: OffsetDateTime,
) -> Result<Result<UserId, ConsumeError>, StoreError> {
    let Some(row) = query_one_sql(
        s,
        "SELECT user_id, expires_at, used_at FROM password_reset_tokens WHERE token_hash = $1",
        vec![token_hash.into()],
    )
    .await?
    else {
        return Ok(Err(ConsumeError::Unknown));
    };
    let user = UserId::from_uuid(row.try_get("", "user_id")?);
    let expires_at: OffsetDateTime = row.try_get("", "expires_at")?;
    let used_at: Option<OffsetDateTime> = row.try_get("", "used_at")?;
    if used_at.is_some() {
        return Ok(Err(ConsumeError::Used));
    }
    if now >= expires_at {
        return Ok(Err(ConsumeError::Expired));
    }
    let changed = exec_sql(
        s,
        "UPDATE password_reset_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
        vec![now.into(), token_hash.into()],
    )
    .await?;
    Ok(if changed == 1 {
        Ok(user)
    } else {
        Err(ConsumeError::Used)
    })
}
