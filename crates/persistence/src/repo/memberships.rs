//! `organization_memberships`: (org, user, role). Every function takes the org first, except
//! [`orgs_of`], which reads one account's own memberships across its orgs.

use crate::entities::memberships::{ActiveModel, Column, Entity, Model};
use crate::repo::sql::{Page, Params, push_page};
use crate::repo::{corrupt, exec_sql, query_all_sql};
use crate::{Backend, Store, StoreError, Tag, Tx};
use inventiv_domain::{OrgId, Role, UserId};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct MembershipRecord {
    pub organization_id: OrgId,
    pub user_id: UserId,
    pub role: Role,
    pub created_at: OffsetDateTime,
}

fn record(m: Model) -> Result<MembershipRecord, StoreError> {
    Ok(MembershipRecord {
        organization_id: OrgId::from_uuid(m.organization_id),
        user_id: UserId::from_uuid(m.user_id),
        role: m
            .role
            .parse()
            .map_err(|e| corrupt("organization_memberships.role", e))?,
        created_at: m.created_at,
    })
}

/// Adds a member; an existing membership is `Conflict(MembershipPrimaryKey)`.
pub async fn insert(
    tx: &Tx,
    org: OrgId,
    user: UserId,
    role: Role,
    now: OffsetDateTime,
) -> Result<MembershipRecord, StoreError> {
    // Caches may hold "not a member" (an org key whose creator left): a new membership is news.
    tx.mark(Tag::Membership(org, user));
    let model = ActiveModel {
        organization_id: Set(org.as_uuid()),
        user_id: Set(user.as_uuid()),
        role: Set(role.as_str().to_owned()),
        created_at: Set(now),
    };
    record(model.insert(tx.conn()).await?)
}

/// The membership of `user` in `org`, if any.
pub async fn find<S: Store>(
    s: &S,
    org: OrgId,
    user: UserId,
) -> Result<Option<MembershipRecord>, StoreError> {
    Entity::find()
        .filter(Column::OrganizationId.eq(org.as_uuid()))
        .filter(Column::UserId.eq(user.as_uuid()))
        .one(s.conn())
        .await?
        .map(record)
        .transpose()
}

/// The owners of `org`, with the org's membership changes serialized until the end of `tx`.
///
/// On PostgreSQL this first takes `FOR NO KEY UPDATE` on the organization's row: one lock per
/// org that every owner-reducing change takes first, so two concurrent demotions cannot both
/// see "another owner remains". (Locking the owner rows themselves was tried and deadlocks
/// under load: a waiter re-checking a row another transaction just demoted or deleted joins a
/// lock cycle.) `NO KEY` keeps foreign-key checks of unrelated inserts (e.g. an invitation
/// being accepted) from waiting. On SQLite, `BEGIN IMMEDIATE` already holds the write lock.
pub async fn lock_owners(tx: &Tx, org: OrgId) -> Result<Vec<UserId>, StoreError> {
    if tx.backend() == Backend::Postgres {
        query_all_sql(
            tx,
            "SELECT id FROM organizations WHERE id = $1 FOR NO KEY UPDATE",
            vec![org.as_uuid().into()],
        )
        .await?;
    }
    let rows = query_all_sql(
        tx,
        "SELECT user_id FROM organization_memberships WHERE organization_id = $1 AND role = 'owner'",
        vec![org.as_uuid().into()],
    )
    .await?;
    rows.into_iter()
        .map(|r| Ok(UserId::from_uuid(r.try_get("", "user_id")?)))
        .collect()
}

/// A member with their account's public fields.
#[derive(Debug, Clone)]
pub struct MemberRow {
    pub user_id: UserId,
    pub email: String,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub role: Role,
    pub joined_at: OffsetDateTime,
    /// Live (not revoked) org API keys this member created in the org: what removing them, or
    /// demoting them below owner/admin, revokes.
    pub org_api_keys: i64,
}

/// The `org_api_keys` column of [`MemberRow`] (`m` is the membership row).
const ORG_KEYS: &str = "(SELECT COUNT(*) FROM api_keys k WHERE k.organization_id = m.organization_id \
     AND k.owner_user_id = m.user_id AND k.revoked_at IS NULL) AS org_api_keys";

/// Members of `org` ordered by user id, after `after`, at most `limit`.
pub async fn list<S: Store>(
    s: &S,
    org: OrgId,
    after: Option<UserId>,
    limit: u64,
) -> Result<Vec<MemberRow>, StoreError> {
    let mut p = Params::new();
    let mut sql = format!(
        "SELECT u.id, u.email, u.username, u.first_name, u.last_name, m.role, m.created_at, \
         {ORG_KEYS} FROM organization_memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.organization_id = {}",
        p.bind(org.as_uuid())
    );
    let after = after.map(|id| id.as_uuid());
    push_page(&mut sql, &mut p, "u.id", Page::After(after), limit);
    query_all_sql(s, &sql, p.into_values())
        .await?
        .into_iter()
        .map(|row| {
            let role: String = row.try_get("", "role")?;
            Ok(MemberRow {
                user_id: UserId::from_uuid(row.try_get("", "id")?),
                email: row.try_get("", "email")?,
                username: row.try_get("", "username")?,
                first_name: row.try_get("", "first_name")?,
                last_name: row.try_get("", "last_name")?,
                role: role
                    .parse()
                    .map_err(|e| corrupt("organization_memberships.role", e))?,
                joined_at: row.try_get("", "created_at")?,
                org_api_keys: row.try_get("", "org_api_keys")?,
            })
        })
        .collect()
}

/// Sets a member's role; false if they are not a member.
pub async fn set_role(tx: &Tx, org: OrgId, user: UserId, role: Role) -> Result<bool, StoreError> {
    tx.mark(Tag::Membership(org, user));
    Ok(exec_sql(
        tx,
        "UPDATE organization_memberships SET role = $1 WHERE organization_id = $2 AND user_id = $3",
        vec![
            role.as_str().into(),
            org.as_uuid().into(),
            user.as_uuid().into(),
        ],
    )
    .await?
        == 1)
}

/// Removes a membership, and moves that user's sessions in `org` back to Personal.
/// (The sessions' cache entries depend on this membership: its tag covers them.)
pub async fn delete(tx: &Tx, org: OrgId, user: UserId) -> Result<bool, StoreError> {
    tx.mark(Tag::Membership(org, user));
    exec_sql(
        tx,
        "UPDATE user_sessions SET current_organization_id = NULL, organization_role = NULL \
         WHERE user_id = $1 AND current_organization_id = $2",
        vec![user.as_uuid().into(), org.as_uuid().into()],
    )
    .await?;
    Ok(exec_sql(
        tx,
        "DELETE FROM organization_memberships WHERE organization_id = $1 AND user_id = $2",
        vec![org.as_uuid().into(), user.as_uuid().into()],
    )
    .await?
        == 1)
}

/// How many owners `org` has (unlocked read; for reports and tests).
pub async fn count_owners<S: Store>(s: &S, org: OrgId) -> Result<u64, StoreError> {
    Ok(Entity::find()
        .filter(Column::OrganizationId.eq(org.as_uuid()))
        .filter(Column::Role.eq(Role::Owner.as_str()))
        .all(s.conn())
        .await?
        .len() as u64)
}

/// One member with their account's public fields.
pub async fn find_row<S: Store>(
    s: &S,
    org: OrgId,
    user: UserId,
) -> Result<Option<MemberRow>, StoreError> {
    let rows = query_all_sql(
        s,
        &format!(
            "SELECT u.id, u.email, u.username, u.first_name, u.last_name, m.role, m.created_at, \
         {ORG_KEYS} FROM organization_memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.organization_id = $1 AND m.user_id = $2"
        ),
        vec![org.as_uuid().into(), user.as_uuid().into()],
    )
    .await?;
    rows.into_iter()
        .next()
        .map(|row| {
            let role: String = row.try_get("", "role")?;
            Ok(MemberRow {
                user_id: UserId::from_uuid(row.try_get("", "id")?),
                email: row.try_get("", "email")?,
                username: row.try_get("", "username")?,
                first_name: row.try_get("", "first_name")?,
                last_name: row.try_get("", "last_name")?,
                role: role
                    .parse()
                    .map_err(|e| corrupt("organization_memberships.role", e))?,
                joined_at: row.try_get("", "created_at")?,
                org_api_keys: row.try_get("", "org_api_keys")?,
            })
        })
        .transpose()
}

/// The organizations `user` is a member of, ordered by id (the lock order of a deletion).
/// Keyed by the account, across the orgs it belongs to: the account is being deleted.
pub async fn orgs_of<S: Store>(s: &S, user: UserId) -> Result<Vec<OrgId>, StoreError> {
    let rows = query_all_sql(
        s,
        "SELECT organization_id FROM organization_memberships WHERE user_id = $1 ORDER BY organization_id",
        vec![user.as_uuid().into()],
    )
    .await?;
    rows.into_iter()
        .map(|r| Ok(OrgId::from_uuid(r.try_get("", "organization_id")?)))
        .collect()
}
