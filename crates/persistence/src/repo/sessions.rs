//! `user_sessions`: one row per login; the row — not the token — is the truth.

use crate::entities::user_sessions::{Column, Entity, Model};
use crate::repo::{corrupt, exec_sql, query_all_sql, query_one_sql};
use crate::{Store, StoreError, Tag, Tx};
use inventiv_domain::{Email, OrgId, Role, SessionId, UserId};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use time::OffsetDateTime;

/// A session row.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub id: SessionId,
    pub user_id: UserId,
    pub current_organization_id: Option<OrgId>,
    pub organization_role: Option<Role>,
    pub token_generation: i32,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: OffsetDateTime,
    pub last_used_at: OffsetDateTime,
    pub idle_expires_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    /// Why it was revoked (`logout`, `revoked_by_user`, `reuse_detected`…).
    pub revoked_reason: Option<String>,
}

fn record(m: Model) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        id: SessionId::from_uuid(m.id),
        user_id: UserId::from_uuid(m.user_id),
        current_organization_id: m.current_organization_id.map(OrgId::from_uuid),
        organization_role: m
            .organization_role
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| corrupt("user_sessions.organization_role", e))?,
        token_generation: m.token_generation,
        ip: m.ip,
        user_agent: m.user_agent,
        created_at: m.created_at,
        last_used_at: m.last_used_at,
        idle_expires_at: m.idle_expires_at,
        expires_at: m.expires_at,
        revoked_at: m.revoked_at,
        revoked_reason: m.revoked_reason,
    })
}

/// What a login creates.
pub struct NewSession<'a> {
    pub id: SessionId,
    pub user_id: UserId,
    pub organization: Option<(OrgId, Role)>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub now: OffsetDateTime,
    pub idle_expires_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// For a sign-in: the password hash that was verified. The session is stored only if the
    /// account still has it.
    pub verified_password_hash: Option<&'a str>,
}

/// Stores a new session, if its account is still enabled and (for a sign-in) still has the
/// password hash that was verified; None otherwise.
///
/// The condition is checked in the insert itself, under a share lock on the account's row
/// (PostgreSQL): a password change, reset or disabling that commits while the password is
/// being verified (tens of milliseconds of hashing) either lands first, and this insert sees
/// the new row and stores nothing, or waits for this insert, and its revocation of the
/// account's sessions then includes this one. Either way no session outlives it.
pub async fn insert<S: Store>(
    s: &S,
    new: NewSession<'_>,
) -> Result<Option<SessionRecord>, StoreError> {
    use sea_orm::FromQueryResult;
    let lock = crate::repo::row_lock(s, " FOR SHARE");
    let sql = format!(
        "INSERT INTO user_sessions (id, user_id, current_organization_id, organization_role, \
             token_generation, ip, user_agent, created_at, last_used_at, idle_expires_at, expires_at) \
         SELECT $1, $2, $3, $4, 0, $5, $6, $7, $7, $8, $9 \
         WHERE EXISTS (SELECT 1 FROM users WHERE id = $2 AND disabled_at IS NULL \
                       AND ($10 IS NULL OR password_hash = $10){lock}) \
         RETURNING *"
    );
    let row = query_one_sql(
        s,
        &sql,
        vec![
            new.id.as_uuid().into(),
            new.user_id.as_uuid().into(),
            new.organization.map(|(o, _)| o.as_uuid()).into(),
            new.organization.map(|(_, r)| r.as_str().to_owned()).into(),
            new.ip.map(|v| truncate(v, 64)).into(),
            new.user_agent.map(|v| truncate(v, 512)).into(),
            new.now.into(),
            new.idle_expires_at.into(),
            new.expires_at.into(),
            new.verified_password_hash.map(str::to_owned).into(),
        ],
    )
    .await?;
    row.map(|row| record(Model::from_query_result(&row, "")?))
        .transpose()
}

fn truncate(value: &str, max_chars: usize) -> String {
    value.chars().take(max_chars).collect()
}

pub async fn find<S: Store>(s: &S, id: SessionId) -> Result<Option<SessionRecord>, StoreError> {
    Entity::find_by_id(id.as_uuid())
        .one(s.conn())
        .await?
        .map(record)
        .transpose()
}

/// Everything an authenticated request needs, in one round trip: the session, its user, and
/// the user's *current* role in the session's org (None if the membership is gone).
#[derive(Debug, Clone)]
pub struct SessionAuth {
    pub session_id: SessionId,
    pub user_id: UserId,
    pub current_organization_id: Option<OrgId>,
    pub member_role: Option<Role>,
    pub token_generation: i32,
    /// When the generation last moved (None: never since login).
    pub rotated_at: Option<OffsetDateTime>,
    pub last_used_at: OffsetDateTime,
    pub idle_expires_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub revoked: bool,
    pub email: Email,
    pub is_platform_admin: bool,
    pub user_disabled: bool,
}

pub async fn load_auth<S: Store>(s: &S, id: SessionId) -> Result<Option<SessionAuth>, StoreError> {
    let row = query_one_sql(
        s,
        "SELECT s.id, s.user_id, s.current_organization_id, s.token_generation, s.rotated_at, s.last_used_at, \
                s.idle_expires_at, s.expires_at, s.revoked_at, u.email, u.is_platform_admin, \
                u.disabled_at, m.role AS member_role \
         FROM user_sessions s \
         JOIN users u ON u.id = s.user_id \
         LEFT JOIN organization_memberships m \
           ON m.organization_id = s.current_organization_id AND m.user_id = s.user_id \
         WHERE s.id = $1",
        vec![id.as_uuid().into()],
    )
    .await?;
    let Some(row) = row else { return Ok(None) };
    let member_role: Option<String> = row.try_get("", "member_role")?;
    let email: String = row.try_get("", "email")?;
    let revoked_at: Option<OffsetDateTime> = row.try_get("", "revoked_at")?;
    let disabled_at: Option<OffsetDateTime> = row.try_get("", "disabled_at")?;
    Ok(Some(SessionAuth {
        session_id: SessionId::from_uuid(row.try_get("", "id")?),
        user_id: UserId::from_uuid(row.try_get("", "user_id")?),
        current_organization_id: row
            .try_get::<Option<uuid::Uuid>>("", "current_organization_id")?
            .map(OrgId::from_uuid),
        member_role: member_role
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| corrupt("organization_memberships.role", e))?,
        token_generation: row.try_get("", "token_generation")?,
        rotated_at: row.try_get("", "rotated_at")?,
        last_used_at: row.try_get("", "last_used_at")?,
        idle_expires_at: row.try_get("", "idle_expires_at")?,
        expires_at: row.try_get("", "expires_at")?,
        revoked: revoked_at.is_some(),
        email: Email::parse(&email).map_err(|e| corrupt("users.email", e))?,
        is_platform_admin: row.try_get("", "is_platform_admin")?,
        user_disabled: disabled_at.is_some(),
    }))
}

/// Records use: `last_used_at = now`, idle expiry pushed to `idle_expires_at`. Not a
/// transaction and marks no tag, on purpose: it runs at most once a minute per session on
/// the request path, and a cached copy of the row can only hold an *earlier* idle expiry
/// than the database, so it never lets a session live longer (the caller refreshes its own
/// copy, and re-reads the row before refusing on the strength of a cached one).
pub async fn touch<S: Store>(
    s: &S,
    id: SessionId,
    now: OffsetDateTime,
    idle_expires_at: OffsetDateTime,
) -> Result<(), StoreError> {
    exec_sql(
        s,
        "UPDATE user_sessions SET last_used_at = $1, idle_expires_at = $2 WHERE id = $3 AND revoked_at IS NULL",
        vec![now.into(), idle_expires_at.into(), id.as_uuid().into()],
    )
    .await?;
    Ok(())
}

/// Moves a live session to another workspace and bumps its generation, but only if the
/// generation is still `expected_generation` (a concurrent switch or refresh wins otherwise).
/// `rotated_at = now` (refresh-reuse grace). Returns the new generation, or None if the session
/// is gone, revoked or moved on.
pub async fn set_workspace(
    tx: &Tx,
    id: SessionId,
    expected_generation: i32,
    organization: Option<(OrgId, Role)>,
    now: OffsetDateTime,
) -> Result<Option<i32>, StoreError> {
    tx.mark(Tag::Session(id));
    let changed = exec_sql(
        tx,
        "UPDATE user_sessions SET current_organization_id = $1, organization_role = $2, \
             token_generation = token_generation + 1, rotated_at = $5 \
         WHERE id = $3 AND token_generation = $4 AND revoked_at IS NULL",
        vec![
            organization.map(|(o, _)| o.as_uuid()).into(),
            organization.map(|(_, r)| r.as_str().to_owned()).into(),
            id.as_uuid().into(),
            expected_generation.into(),
            now.into(),
        ],
    )
    .await?;
    Ok((changed == 1).then_some(expected_generation + 1))
}

/// Bumps the generation without moving (token refresh): a compare-and-set on the generation,
/// with `rotated_at = now`. Same conditions as [`set_workspace`].
pub async fn bump_generation(
    tx: &Tx,
    id: SessionId,
    expected_generation: i32,
    now: OffsetDateTime,
) -> Result<Option<i32>, StoreError> {
    tx.mark(Tag::Session(id));
    let changed = exec_sql(
        tx,
        "UPDATE user_sessions SET token_generation = token_generation + 1, rotated_at = $3 \
         WHERE id = $1 AND token_generation = $2 AND revoked_at IS NULL",
        vec![id.as_uuid().into(), expected_generation.into(), now.into()],
    )
    .await?;
    Ok((changed == 1).then_some(expected_generation + 1))
}

/// Revokes a live session whatever its user (refresh reuse: the presenter may be a thief).
/// Returns the token generation it was revoked at, or None if it was not live. That is the
/// generation no later rotation can move (a rotation needs a live session), so what an audit
/// event records of it is exact even when a rotation committed just before.
pub async fn revoke_by_id(
    tx: &Tx,
    id: SessionId,
    reason: &str,
    now: OffsetDateTime,
) -> Result<Option<i32>, StoreError> {
    tx.mark(Tag::Session(id));
    let revoked = query_one_sql(
        tx,
        "UPDATE user_sessions SET revoked_at = $1, revoked_reason = $2 \
         WHERE id = $3 AND revoked_at IS NULL RETURNING token_generation",
        vec![now.into(), reason.into(), id.as_uuid().into()],
    )
    .await?;
    revoked
        .map(|row| row.try_get("", "token_generation"))
        .transpose()
        .map_err(Into::into)
}

/// A session whose org membership vanished goes back to the personal workspace.
pub async fn fall_back_to_personal(tx: &Tx, id: SessionId) -> Result<(), StoreError> {
    tx.mark(Tag::Session(id));
    exec_sql(
        tx,
        "UPDATE user_sessions SET current_organization_id = NULL, organization_role = NULL WHERE id = $1",
        vec![id.as_uuid().into()],
    )
    .await?;
    Ok(())
}

/// Revokes one live session of `user`. Returns whether it was live and theirs.
pub async fn revoke(
    tx: &Tx,
    user: UserId,
    id: SessionId,
    reason: &str,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    tx.mark(Tag::Session(id));
    let changed = exec_sql(
        tx,
        "UPDATE user_sessions SET revoked_at = $1, revoked_reason = $2 \
         WHERE id = $3 AND user_id = $4 AND revoked_at IS NULL",
        vec![
            now.into(),
            reason.into(),
            id.as_uuid().into(),
            user.as_uuid().into(),
        ],
    )
    .await?;
    Ok(changed == 1)
}

/// Revokes every live session of `user` except `keep`. Returns how many.
pub async fn revoke_all_for_user(
    tx: &Tx,
    user: UserId,
    keep: Option<SessionId>,
    reason: &str,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    // A nil UUID never names a session, so "keep nothing" needs no second statement.
    let keep = keep.map_or_else(uuid::Uuid::nil, |k| k.as_uuid());
    // RETURNING (PostgreSQL, SQLite ≥ 3.35): exactly the sessions this statement revoked, so
    // only their cache entries go (not the user's other cached facts).
    let revoked = query_all_sql(
        tx,
        "UPDATE user_sessions SET revoked_at = $1, revoked_reason = $2 \
         WHERE user_id = $3 AND id <> $4 AND revoked_at IS NULL RETURNING id",
        vec![
            now.into(),
            reason.into(),
            user.as_uuid().into(),
            keep.into(),
        ],
    )
    .await?;
    for row in &revoked {
        tx.mark(Tag::Session(SessionId::from_uuid(row.try_get("", "id")?)));
    }
    Ok(revoked.len() as u64)
}

/// The user's live sessions (not revoked, not expired at `now`), most recently used first.
/// Expiry is compared here, in Rust: a user has few sessions and this avoids comparing
/// timestamps as text on SQLite.
pub async fn list_live<S: Store>(
    s: &S,
    user: UserId,
    now: OffsetDateTime,
) -> Result<Vec<SessionRecord>, StoreError> {
    let rows = Entity::find()
        .filter(Column::UserId.eq(user.as_uuid()))
        .filter(Column::RevokedAt.is_null())
        .order_by_desc(Column::LastUsedAt)
        .all(s.conn())
        .await?;
    rows.into_iter()
        .filter(|m| m.expires_at > now && m.idle_expires_at > now)
        .map(record)
        .collect()
}
