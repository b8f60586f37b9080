//! `organization_invitations`: every function takes the org first, except the lookup by
//! token hash (the public accept page, where the token itself is the credential), which
//! returns the invitation with its org.

use crate::repo::sql::{Page, Params, push_page};
use crate::repo::{corrupt, exec_sql, query_all_sql, query_one_sql, row_lock, ts};
use crate::{Store, StoreError};
use inventiv_domain::{Email, InvitationId, InvitationStatus, OrgId, Role, UserId};
use sea_orm::QueryResult;
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct InvitationRecord {
    pub id: InvitationId,
    pub organization_id: OrgId,
    pub email: Email,
    pub role: Role,
    /// As stored; the effective status also depends on `expires_at` (see the domain).
    pub status: InvitationStatus,
    pub invited_by_user_id: Option<UserId>,
    /// The inviter's email, if the account still exists (for the accept page and lists).
    pub invited_by_email: Option<String>,
    pub expires_at: OffsetDateTime,
    pub accepted_at: Option<OffsetDateTime>,
    pub accepted_by_user_id: Option<UserId>,
    pub revoked_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

const COLUMNS: &str = "i.id, i.organization_id, i.email, i.role, i.status, i.invited_by_user_id, \
     u.email AS invited_by_email, i.expires_at, i.accepted_at, i.accepted_by_user_id, i.revoked_at, i.created_at \
     FROM organization_invitations i LEFT JOIN users u ON u.id = i.invited_by_user_id";

fn record(row: QueryResult) -> Result<InvitationRecord, StoreError> {
    let email: String = row.try_get("", "email")?;
    let role: String = row.try_get("", "role")?;
    let status: String = row.try_get("", "status")?;
    Ok(InvitationRecord {
        id: InvitationId::from_uuid(row.try_get("", "id")?),
        organization_id: OrgId::from_uuid(row.try_get("", "organization_id")?),
        email: Email::parse(&email).map_err(|e| corrupt("organization_invitations.email", e))?,
        role: role
            .parse()
            .map_err(|e| corrupt("organization_invitations.role", e))?,
        status: status
            .parse()
            .map_err(|e| corrupt("organization_invitations.status", e))?,
        invited_by_user_id: row
            .try_get::<Option<uuid::Uuid>>("", "invited_by_user_id")?
            .map(UserId::from_uuid),
        invited_by_email: row.try_get("", "invited_by_email")?,
        expires_at: row.try_get("", "expires_at")?,
        accepted_at: row.try_get("", "accepted_at")?,
        accepted_by_user_id: row
            .try_get::<Option<uuid::Uuid>>("", "accepted_by_user_id")?
            .map(UserId::from_uuid),
        revoked_at: row.try_get("", "revoked_at")?,
        created_at: row.try_get("", "created_at")?,
    })
}

/// What an invite stores (the org comes separately).
pub struct NewInvitation<'a> {
    pub id: InvitationId,
    pub email: &'a Email,
    pub role: Role,
    pub token_hash: &'a str,
    pub invited_by: UserId,
    pub expires_at: OffsetDateTime,
    pub now: OffsetDateTime,
}

/// Marks a pending-but-expired invitation for (org, email) as `expired`, so the partial
/// unique index admits a new one.
pub async fn expire_stale<S: Store>(
    s: &S,
    org: OrgId,
    email: &Email,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let (expires, now_sql) = (ts(s.backend(), "expires_at"), ts(s.backend(), "$1"));
    exec_sql(
        s,
        &format!(
            "UPDATE organization_invitations SET status = 'expired', updated_at = $1 \
             WHERE organization_id = $2 AND email = $3 AND status = 'pending' AND {expires} <= {now_sql}"
        ),
        vec![now.into(), org.as_uuid().into(), email.as_str().into()],
    )
    .await?;
    Ok(())
}

/// Stores a pending invitation to `org`; another pending one for the address is
/// `Conflict(InvitationPendingEmail)`.
pub async fn insert<S: Store>(s: &S, org: OrgId, new: NewInvitation<'_>) -> Result<(), StoreError> {
    exec_sql(
        s,
        "INSERT INTO organization_invitations (id, organization_id, email, role, token_hash, status, \
             invited_by_user_id, expires_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8, $8)",
        vec![
            new.id.as_uuid().into(),
            org.as_uuid().into(),
            new.email.as_str().into(),
            new.role.as_str().into(),
            new.token_hash.into(),
            new.invited_by.as_uuid().into(),
            new.expires_at.into(),
            new.now.into(),
        ],
    )
    .await?;
    Ok(())
}

/// The invitation `id` of `org` (None if absent or another org's).
pub async fn find<S: Store>(
    s: &S,
    org: OrgId,
    id: InvitationId,
) -> Result<Option<InvitationRecord>, StoreError> {
    find_locked(s, org, id, "").await
}

/// [`find`], locking the invitation's row until `tx` ends (PostgreSQL; a SQLite write
/// transaction holds the write lock already): a change decides from, and supersedes, the link
/// and expiry that are current, not those a concurrent change just replaced.
pub async fn find_for_update(
    tx: &crate::Tx,
    org: OrgId,
    id: InvitationId,
) -> Result<Option<InvitationRecord>, StoreError> {
    let lock = row_lock(tx, " FOR NO KEY UPDATE OF i");
    find_locked(tx, org, id, lock).await
}

async fn find_locked<S: Store>(
    s: &S,
    org: OrgId,
    id: InvitationId,
    lock: &str,
) -> Result<Option<InvitationRecord>, StoreError> {
    query_one_sql(
        s,
        &format!("SELECT {COLUMNS} WHERE i.organization_id = $1 AND i.id = $2{lock}"),
        vec![org.as_uuid().into(), id.as_uuid().into()],
    )
    .await?
    .map(record)
    .transpose()
}

/// The invitation carrying this token hash (the public accept flow).
pub async fn find_by_token_hash<S: Store>(
    s: &S,
    token_hash: &str,
) -> Result<Option<InvitationRecord>, StoreError> {
    query_one_sql(
        s,
        &format!("SELECT {COLUMNS} WHERE i.token_hash = $1"),
        vec![token_hash.into()],
    )
    .await?
    .map(record)
    .transpose()
}

/// Whether `token_hash` is the hash of a link a resend replaced.
pub async fn is_superseded<S: Store>(s: &S, token_hash: &str) -> Result<bool, StoreError> {
    Ok(query_one_sql(
        s,
        "SELECT 1 AS one FROM superseded_invitation_links WHERE token_hash = $1",
        vec![token_hash.into()],
    )
    .await?
    .is_some())
}

/// Invitations of `org`, newest first, filtered by *effective* status at `now`.
pub async fn list<S: Store>(
    s: &S,
    org: OrgId,
    status: Option<InvitationStatus>,
    now: OffsetDateTime,
    before: Option<InvitationId>,
    limit: u64,
) -> Result<Vec<InvitationRecord>, StoreError> {
    let mut p = Params::new();
    let mut sql = format!(
        "SELECT {COLUMNS} WHERE i.organization_id = {}",
        p.bind(org.as_uuid())
    );
    let expires = ts(s.backend(), "i.expires_at");
    match status {
        None => {}
        Some(InvitationStatus::Pending) => {
            let now = ts(s.backend(), &p.bind(now));
            sql.push_str(&format!(" AND i.status = 'pending' AND {expires} > {now}"));
        }
        Some(InvitationStatus::Expired) => {
            let now = ts(s.backend(), &p.bind(now));
            sql.push_str(&format!(
                " AND (i.status = 'expired' OR (i.status = 'pending' AND {expires} <= {now}))"
            ));
        }
        Some(InvitationStatus::Accepted) => sql.push_str(" AND i.status = 'accepted'"),
        Some(InvitationStatus::Revoked) => sql.push_str(" AND i.status = 'revoked'"),
    }
    let before = before.map(|id| id.as_uuid());
    push_page(&mut sql, &mut p, "i.id", Page::Before(before), limit);
    query_all_sql(s, &sql, p.into_values())
        .await?
        .into_iter()
        .map(record)
        .collect()
}

/// A pending invitation with the name and slug of the org that sent it.
#[derive(Debug, Clone)]
pub struct AddressedInvitation {
    pub invitation: InvitationRecord,
    pub organization_name: String,
    pub organization_slug: String,
}

/// Deliberately across tenants: the pending, unexpired invitations sent to `email` by any
/// org (what its owner may see and accept while signed in), by id, after `after`.
pub async fn pending_for_email<S: Store>(
    s: &S,
    email: &Email,
    now: OffsetDateTime,
    after: Option<InvitationId>,
    limit: u64,
) -> Result<Vec<AddressedInvitation>, StoreError> {
    let mut p = Params::new();
    let expires = ts(s.backend(), "i.expires_at");
    let mut sql = format!(
        "SELECT o.name AS organization_name, o.slug AS organization_slug, {COLUMNS} \
         JOIN organizations o ON o.id = i.organization_id \
         WHERE i.email = {} AND i.status = 'pending' AND {expires} > {}",
        p.bind(email.as_str()),
        ts(s.backend(), &p.bind(now))
    );
    let after = after.map(|id| id.as_uuid());
    push_page(&mut sql, &mut p, "i.id", Page::After(after), limit);
    query_all_sql(s, &sql, p.into_values())
        .await?
        .into_iter()
        .map(|row| {
            Ok(AddressedInvitation {
                organization_name: row.try_get("", "organization_name")?,
                organization_slug: row.try_get("", "organization_slug")?,
                invitation: record(row)?,
            })
        })
        .collect()
}

/// Deliberately across tenants: the invitation `id` if it was sent to `email`.
pub async fn find_for_email<S: Store>(
    s: &S,
    email: &Email,
    id: InvitationId,
) -> Result<Option<InvitationRecord>, StoreError> {
    query_one_sql(
        s,
        &format!("SELECT {COLUMNS} WHERE i.id = $1 AND i.email = $2"),
        vec![id.as_uuid().into(), email.as_str().into()],
    )
    .await?
    .map(record)
    .transpose()
}

/// pending → accepted, once: false if it was no longer pending or had expired.
pub async fn mark_accepted<S: Store>(
    s: &S,
    org: OrgId,
    id: InvitationId,
    user: UserId,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let (expires, now_sql) = (ts(s.backend(), "expires_at"), ts(s.backend(), "$1"));
    Ok(exec_sql(
        s,
        &format!(
            "UPDATE organization_invitations SET status = 'accepted', accepted_at = $1, accepted_by_user_id = $2, \
                 updated_at = $1 WHERE organization_id = $3 AND id = $4 AND status = 'pending' AND {expires} > {now_sql}"
        ),
        vec![now.into(), user.as_uuid().into(), org.as_uuid().into(), id.as_uuid().into()],
    )
    .await?
        == 1)
}

/// pending → revoked: false if it was no longer pending.
pub async fn mark_revoked<S: Store>(
    s: &S,
    org: OrgId,
    id: InvitationId,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    Ok(exec_sql(
        s,
        "UPDATE organization_invitations SET status = 'revoked', revoked_at = $1, updated_at = $1 \
         WHERE organization_id = $2 AND id = $3 AND status = 'pending'",
        vec![now.into(), org.as_uuid().into(), id.as_uuid().into()],
    )
    .await?
        == 1)
}

/// pending/expired → pending with a new token and expiry (resend). A newer pending invitation
/// for the same address is `Conflict(InvitationPendingEmail)`.
pub async fn renew<S: Store>(
    s: &S,
    org: OrgId,
    id: InvitationId,
    token_hash: &str,
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    // The replaced link is remembered (by hash), so a click on it says a newer one was sent.
    exec_sql(
        s,
        "INSERT INTO superseded_invitation_links (token_hash, invitation_id, superseded_at) \
         SELECT token_hash, id, $1 FROM organization_invitations \
         WHERE organization_id = $2 AND id = $3 AND status IN ('pending', 'expired')",
        vec![now.into(), org.as_uuid().into(), id.as_uuid().into()],
    )
    .await?;
    Ok(exec_sql(
        s,
        "UPDATE organization_invitations SET status = 'pending', token_hash = $1, expires_at = $2, updated_at = $3 \
         WHERE organization_id = $4 AND id = $5 AND status IN ('pending', 'expired')",
        vec![token_hash.into(), expires_at.into(), now.into(), org.as_uuid().into(), id.as_uuid().into()],
    )
    .await?
        == 1)
}
