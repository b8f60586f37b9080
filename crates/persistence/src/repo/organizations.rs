//! `organizations`: the tenants themselves. A row is found by its own id (the org scope) or
//! its slug; [`list_for_user`] reads the orgs one account belongs to.

use crate::entities::organizations::{ActiveModel, Column, Entity, Model};
use crate::repo::sql::{Page, Params, push_page};
use crate::repo::{corrupt, exec_sql, namespaces, query_all_sql, query_one_sql, row_lock};
use crate::{Store, StoreError, Tag, Tx};
use inventiv_domain::{OrgId, OrgName, Role, Slug, UserId};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect, Set,
    sea_query::LockType,
};
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct OrgRecord {
    pub id: OrgId,
    pub name: OrgName,
    pub slug: Slug,
    pub created_by_user_id: Option<UserId>,
    pub require_distinct_activators: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

pub struct NewOrg<'a> {
    pub id: OrgId,
    pub name: &'a OrgName,
    pub slug: &'a Slug,
    pub created_by: Option<UserId>,
    pub now: OffsetDateTime,
}

fn record(m: Model) -> Result<OrgRecord, StoreError> {
    Ok(OrgRecord {
        id: OrgId::from_uuid(m.id),
        name: OrgName::parse(&m.name).map_err(|e| corrupt("organizations.name", e))?,
        slug: Slug::parse(&m.slug).map_err(|e| corrupt("organizations.slug", e))?,
        created_by_user_id: m.created_by_user_id.map(UserId::from_uuid),
        require_distinct_activators: m.require_distinct_activators,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

/// Inserts an organization and claims its slug as a model namespace (SPEC §5.1), so no path
/// that creates an org can skip the claim. A slug taken by a live org is
/// `Conflict(OrganizationSlug)`; one taken as a namespace (a public catalogue namespace, a
/// deleted org's slug) is `Conflict(ModelNamespace)`. Run it in a transaction: on a conflict
/// the org row must not stay behind.
pub async fn insert(tx: &Tx, new: NewOrg<'_>) -> Result<OrgRecord, StoreError> {
    let model = ActiveModel {
        id: Set(new.id.as_uuid()),
        name: Set(new.name.as_str().to_owned()),
        slug: Set(new.slug.as_str().to_owned()),
        created_by_user_id: Set(new.created_by.map(|u| u.as_uuid())),
        require_distinct_activators: Set(false),
        created_at: Set(new.now),
        updated_at: Set(new.now),
    };
    let org = record(model.insert(tx.conn()).await?)?;
    namespaces::claim_for_org(tx, new.slug, new.id, new.now).await?;
    Ok(org)
}

pub async fn find_by_id<S: Store>(s: &S, id: OrgId) -> Result<Option<OrgRecord>, StoreError> {
    Entity::find_by_id(id.as_uuid())
        .one(s.conn())
        .await?
        .map(record)
        .transpose()
}

/// [`find_by_id`], locking the org's row until `tx` ends (PostgreSQL; a SQLite write
/// transaction holds the write lock already): the "before" a change audits is still true when
/// it writes, even with another change of the org racing it. The lock is the one the
/// update takes anyway (`FOR NO KEY UPDATE`), taken earlier: rows referencing the org can
/// still be inserted meanwhile.
pub async fn find_by_id_for_update(tx: &Tx, id: OrgId) -> Result<Option<OrgRecord>, StoreError> {
    Entity::find_by_id(id.as_uuid())
        .lock(LockType::NoKeyUpdate)
        .one(tx.conn())
        .await?
        .map(record)
        .transpose()
}

/// [`find_by_id`], locking the org's row against everything until `tx` ends (`FOR UPDATE`,
/// the lock its deletion takes anyway, taken first): rows being inserted that reference the
/// org (an instance deployed, a member added) finish before it, or wait and then fail.
pub async fn find_for_delete(tx: &Tx, id: OrgId) -> Result<Option<OrgRecord>, StoreError> {
    Entity::find_by_id(id.as_uuid())
        .lock(LockType::Update)
        .one(tx.conn())
        .await?
        .map(record)
        .transpose()
}

/// Whether org `id` still exists, holding it until `tx` ends (`FOR KEY SHARE` on PostgreSQL:
/// the lock an insert referencing it takes anyway, taken first): a deletion of the org then
/// waits for `tx`, and one that committed before is seen here instead of failing the insert.
pub async fn hold(tx: &Tx, id: OrgId) -> Result<bool, StoreError> {
    let lock = row_lock(tx, " FOR KEY SHARE");
    let sql = format!("SELECT id FROM organizations WHERE id = $1{lock}");
    Ok(
        crate::repo::query_one_sql(tx, &sql, vec![id.as_uuid().into()])
            .await?
            .is_some(),
    )
}

pub async fn find_by_slug<S: Store>(s: &S, slug: &Slug) -> Result<Option<OrgRecord>, StoreError> {
    Entity::find()
        .filter(Column::Slug.eq(slug.as_str()))
        .one(s.conn())
        .await?
        .map(record)
        .transpose()
}

pub async fn count<S: Store>(s: &S) -> Result<u64, StoreError> {
    Ok(Entity::find().count(s.conn()).await?)
}

/// One of a user's organizations, with their role and the member count.
#[derive(Debug, Clone)]
pub struct MyOrg {
    pub org: OrgRecord,
    pub role: Role,
    pub member_count: i64,
}

/// The organizations `user` belongs to, ordered by id, after `after`, at most `limit`.
pub async fn list_for_user<S: Store>(
    s: &S,
    user: UserId,
    after: Option<OrgId>,
    limit: u64,
) -> Result<Vec<MyOrg>, StoreError> {
    let mut p = Params::new();
    let mut sql = format!(
        "SELECT {ORG_COLUMNS}, m.role, \
                (SELECT COUNT(*) FROM organization_memberships c WHERE c.organization_id = o.id) AS member_count \
         FROM organization_memberships m JOIN organizations o ON o.id = m.organization_id \
         WHERE m.user_id = {}",
        p.bind(user.as_uuid())
    );
    let after = after.map(|id| id.as_uuid());
    push_page(&mut sql, &mut p, "o.id", Page::After(after), limit);
    let rows = query_all_sql(s, &sql, p.into_values()).await?;
    rows.into_iter()
        .map(|row| {
            let (org, role) = org_and_role(&row)?;
            Ok(MyOrg {
                org,
                role,
                member_count: row.try_get("", "member_count")?,
            })
        })
        .collect()
}

/// The workspace a new session of `user` starts in: the organization of the user's most
/// recently used session (revoked or not) with the user's role there, if that session was in
/// an organization and the membership still exists; None (Personal) otherwise. One round trip
/// for what a sign-in read in three (the session, the membership, the organization).
pub async fn last_workspace<S: Store>(
    s: &S,
    user: UserId,
) -> Result<Option<(OrgRecord, Role)>, StoreError> {
    let rows = query_all_sql(
        s,
        &format!(
            "SELECT {ORG_COLUMNS}, m.role \
             FROM organization_memberships m JOIN organizations o ON o.id = m.organization_id \
             WHERE m.user_id = $1 AND m.organization_id = \
                 (SELECT r.current_organization_id FROM user_sessions r \
                  WHERE r.user_id = $1 ORDER BY r.last_used_at DESC LIMIT 1)"
        ),
        vec![user.as_uuid().into()],
    )
    .await?;
    rows.first().map(org_and_role).transpose()
}

/// The columns [`org_and_role`] reads, of `organizations o`.
const ORG_COLUMNS: &str = "o.id, o.name, o.slug, o.created_by_user_id, \
    o.require_distinct_activators, o.created_at, o.updated_at";

/// An organization's row ([`ORG_COLUMNS`]) and a membership's `role`, from one result row.
fn org_and_role(row: &sea_orm::QueryResult) -> Result<(OrgRecord, Role), StoreError> {
    let model = Model {
        id: row.try_get("", "id")?,
        name: row.try_get("", "name")?,
        slug: row.try_get("", "slug")?,
        created_by_user_id: row.try_get("", "created_by_user_id")?,
        require_distinct_activators: row.try_get("", "require_distinct_activators")?,
        created_at: row.try_get("", "created_at")?,
        updated_at: row.try_get("", "updated_at")?,
    };
    let role: String = row.try_get("", "role")?;
    let role = role
        .parse()
        .map_err(|e| corrupt("organization_memberships.role", e))?;
    Ok((record(model)?, role))
}

/// Another org that `user` belongs to already bears `name` (compared without case): its slug.
/// `except` leaves out the org being renamed.
pub async fn same_name_for_member<S: Store>(
    s: &S,
    user: UserId,
    name: &OrgName,
    except: Option<OrgId>,
) -> Result<Option<String>, StoreError> {
    let mut p = Params::new();
    let mut sql = format!(
        "SELECT o.slug FROM organization_memberships m JOIN organizations o ON o.id = m.organization_id \
         WHERE m.user_id = {} AND LOWER(o.name) = LOWER({})",
        p.bind(user.as_uuid()),
        p.bind(name.as_str())
    );
    if let Some(org) = except {
        sql.push_str(&format!(" AND o.id <> {}", p.bind(org.as_uuid())));
    }
    match query_one_sql(s, &sql, p.into_values()).await? {
        Some(row) => Ok(Some(row.try_get("", "slug")?)),
        None => Ok(None),
    }
}

/// Changes the name and/or the distinct-activators setting.
pub async fn update(
    tx: &Tx,
    id: OrgId,
    name: Option<&OrgName>,
    require_distinct_activators: Option<bool>,
    now: OffsetDateTime,
) -> Result<Option<OrgRecord>, StoreError> {
    tx.mark(Tag::Org(id));
    let Some(current) = Entity::find_by_id(id.as_uuid()).one(tx.conn()).await? else {
        return Ok(None);
    };
    let mut model: ActiveModel = current.into();
    if let Some(name) = name {
        model.name = Set(name.as_str().to_owned());
    }
    if let Some(flag) = require_distinct_activators {
        model.require_distinct_activators = Set(flag);
    }
    model.updated_at = Set(now);
    record(model.update(tx.conn()).await?).map(Some)
}

/// Deletes the organization (memberships and invitations cascade; sessions fall back to
/// Personal through their `ON DELETE SET NULL`). Cache entries built from anything under the
/// org depend on its tag; its offerings, shares, models and instances go too (routes).
pub async fn delete(tx: &Tx, id: OrgId) -> Result<bool, StoreError> {
    tx.mark(Tag::Org(id));
    tx.mark(Tag::Routes);
    exec_sql(
        tx,
        "UPDATE user_sessions SET organization_role = NULL WHERE current_organization_id = $1",
        vec![id.as_uuid().into()],
    )
    .await?;
    Ok(exec_sql(
        tx,
        "DELETE FROM organizations WHERE id = $1",
        vec![id.as_uuid().into()],
    )
    .await?
        == 1)
}
