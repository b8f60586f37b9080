//! `users`: global accounts.

use crate::entities::users::{ActiveModel, Column, Entity, Model};
use crate::repo::corrupt;
use crate::{Store, StoreError, Tag, Tx};
use inventiv_domain::{Email, UserId, Username};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, sea_query::LockType,
};
use time::OffsetDateTime;

/// A user as the service layer sees it. `password_hash` is a PHC string; never serialize it.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: UserId,
    pub email: Email,
    pub username: Option<Username>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub password_hash: String,
    pub is_platform_admin: bool,
    pub disabled_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// What creating an account needs.
pub struct NewUser<'a> {
    pub id: UserId,
    pub email: &'a Email,
    pub username: Option<&'a Username>,
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub password_hash: &'a str,
    pub is_platform_admin: bool,
    pub now: OffsetDateTime,
}

fn record(m: Model) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        id: UserId::from_uuid(m.id),
        email: Email::parse(&m.email).map_err(|e| corrupt("users.email", e))?,
        username: m
            .username
            .as_deref()
            .map(Username::parse)
            .transpose()
            .map_err(|e| corrupt("users.username", e))?,
        first_name: m.first_name,
        last_name: m.last_name,
        password_hash: m.password_hash,
        is_platform_admin: m.is_platform_admin,
        disabled_at: m.disabled_at,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

/// Inserts a user; a taken email or username is `Conflict(UserEmail | UserUsername)`.
pub async fn insert<S: Store>(s: &S, new: NewUser<'_>) -> Result<UserRecord, StoreError> {
    let model = ActiveModel {
        id: Set(new.id.as_uuid()),
        email: Set(new.email.as_str().to_owned()),
        username: Set(new.username.map(|u| u.as_str().to_owned())),
        first_name: Set(new.first_name.map(str::to_owned)),
        last_name: Set(new.last_name.map(str::to_owned)),
        password_hash: Set(new.password_hash.to_owned()),
        is_platform_admin: Set(new.is_platform_admin),
        disabled_at: Set(None),
        created_at: Set(new.now),
        updated_at: Set(new.now),
    };
    record(model.insert(s.conn()).await?)
}

pub async fn find_by_id<S: Store>(s: &S, id: UserId) -> Result<Option<UserRecord>, StoreError> {
    Entity::find_by_id(id.as_uuid())
        .one(s.conn())
        .await?
        .map(record)
        .transpose()
}

/// [`find_by_id`], locking the row until `tx` ends (PostgreSQL; a SQLite write transaction
/// holds the write lock already) with the lock its update takes anyway (`FOR NO KEY
/// UPDATE`): what a change decides from, and audits as its "before", is still true when it
/// writes.
pub async fn find_for_update(tx: &Tx, id: UserId) -> Result<Option<UserRecord>, StoreError> {
    find_locked(tx, id, LockType::NoKeyUpdate).await
}

/// [`find_by_id`], locking the row against everything until `tx` ends (`FOR UPDATE`): rows
/// about to reference the account (a membership being inserted) wait, then fail, instead of
/// slipping past the checks of its deletion.
pub async fn find_for_delete(tx: &Tx, id: UserId) -> Result<Option<UserRecord>, StoreError> {
    find_locked(tx, id, LockType::Update).await
}

async fn find_locked(
    tx: &Tx,
    id: UserId,
    lock: LockType,
) -> Result<Option<UserRecord>, StoreError> {
    Entity::find_by_id(id.as_uuid())
        .lock(lock)
        .one(tx.conn())
        .await?
        .map(record)
        .transpose()
}

pub async fn find_by_email<S: Store>(
    s: &S,
    email: &Email,
) -> Result<Option<UserRecord>, StoreError> {
    Entity::find()
        .filter(Column::Email.eq(email.as_str()))
        .one(s.conn())
        .await?
        .map(record)
        .transpose()
}

pub async fn find_by_username<S: Store>(
    s: &S,
    username: &Username,
) -> Result<Option<UserRecord>, StoreError> {
    Entity::find()
        .filter(Column::Username.eq(username.as_str()))
        .one(s.conn())
        .await?
        .map(record)
        .transpose()
}

pub async fn count<S: Store>(s: &S) -> Result<u64, StoreError> {
    Ok(Entity::find().count(s.conn()).await?)
}

/// Replaces the password hash; with `replacing`, only if it is still that hash (a change
/// that verified the old password must not land over a change made meanwhile). Returns
/// whether it was replaced.
pub async fn set_password_hash(
    tx: &Tx,
    id: UserId,
    password_hash: &str,
    now: OffsetDateTime,
    replacing: Option<&str>,
) -> Result<bool, StoreError> {
    tx.mark(Tag::User(id));
    let mut values = vec![password_hash.into(), now.into(), id.as_uuid().into()];
    let mut sql = "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3".to_owned();
    if let Some(old) = replacing {
        sql.push_str(" AND password_hash = $4");
        values.push(old.into());
    }
    Ok(crate::repo::exec_sql(tx, &sql, values).await? == 1)
}

/// Profile fields a user may change about themselves. `None` leaves a field as it is;
/// `Some(None)` clears it.
#[derive(Debug, Default, Clone)]
pub struct ProfileChange {
    pub username: Option<Option<Username>>,
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
}

/// Applies a profile change; a taken username is `Conflict(UserUsername)`.
pub async fn update_profile(
    tx: &Tx,
    id: UserId,
    change: ProfileChange,
    now: OffsetDateTime,
) -> Result<Option<UserRecord>, StoreError> {
    tx.mark(Tag::User(id));
    let Some(current) = Entity::find_by_id(id.as_uuid()).one(tx.conn()).await? else {
        return Ok(None);
    };
    let mut model: ActiveModel = current.into();
    if let Some(username) = change.username {
        model.username = Set(username.map(|u| u.as_str().to_owned()));
    }
    if let Some(first) = change.first_name {
        model.first_name = Set(first);
    }
    if let Some(last) = change.last_name {
        model.last_name = Set(last);
    }
    model.updated_at = Set(now);
    record(model.update(tx.conn()).await?).map(Some)
}

/// All accounts, ordered by id, after `after` (platform admins only).
pub async fn list<S: Store>(
    s: &S,
    after: Option<UserId>,
    limit: u64,
) -> Result<Vec<UserRecord>, StoreError> {
    let mut q = Entity::find();
    if let Some(after) = after {
        q = q.filter(Column::Id.gt(after.as_uuid()));
    }
    q.order_by_asc(Column::Id)
        .limit(limit)
        .all(s.conn())
        .await?
        .into_iter()
        .map(record)
        .collect()
}

/// Sets or clears `disabled_at` and/or `is_platform_admin`.
pub async fn set_flags(
    tx: &Tx,
    id: UserId,
    disabled_at: Option<Option<OffsetDateTime>>,
    is_platform_admin: Option<bool>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    tx.mark(Tag::User(id));
    if let Some(disabled_at) = disabled_at {
        crate::repo::exec_sql(
            tx,
            "UPDATE users SET disabled_at = $1, updated_at = $2 WHERE id = $3",
            vec![disabled_at.into(), now.into(), id.as_uuid().into()],
        )
        .await?;
    }
    if let Some(flag) = is_platform_admin {
        crate::repo::exec_sql(
            tx,
            "UPDATE users SET is_platform_admin = $1, updated_at = $2 WHERE id = $3",
            vec![flag.into(), now.into(), id.as_uuid().into()],
        )
        .await?;
    }
    Ok(())
}

/// Deletes an account; memberships, sessions, API keys and reset tokens cascade (their cache
/// entries depend on the account's tag), and so do its personal models and instances (routes).
///
/// The approvals the account gave, and the org instances it owns, are set to NULL by their
/// foreign keys: rows cached under other tags than the account's (an org's keys, its instance
/// pages). Their tags are marked too, found before the rows change.
pub async fn delete(tx: &Tx, id: UserId) -> Result<bool, StoreError> {
    tx.mark(Tag::User(id));
    tx.mark(Tag::Routes);
    mark_what_its_deletion_clears(tx, id).await?;
    Ok(crate::repo::exec_sql(
        tx,
        "DELETE FROM users WHERE id = $1",
        vec![id.as_uuid().into()],
    )
    .await?
        == 1)
}

/// Marks the tags of the rows whose `…_activated_by` or `owner_user_id` the deletion of `id`
/// sets to NULL (`ON DELETE SET NULL`): the API keys it approved, and the scopes of the org
/// instances it approved or owns. The approvals of models, offerings and shares are read
/// through [`Tag::Routes`], which the deletion marks anyway.
async fn mark_what_its_deletion_clears(tx: &Tx, id: UserId) -> Result<(), StoreError> {
    use crate::repo::query_all_sql;
    use inventiv_domain::{ApiKeyId, OrgId, Scope};
    let user = || vec![id.as_uuid().into()];
    let keys = query_all_sql(
        tx,
        "SELECT id FROM api_keys WHERE tech_activated_by = $1 OR eco_activated_by = $1",
        user(),
    )
    .await?;
    for row in &keys {
        tx.mark(Tag::ApiKey(ApiKeyId::from_uuid(row.try_get("", "id")?)));
    }
    let orgs = query_all_sql(
        tx,
        "SELECT DISTINCT organization_id FROM instances WHERE organization_id IS NOT NULL \
         AND (owner_user_id = $1 OR tech_activated_by = $1 OR eco_activated_by = $1)",
        user(),
    )
    .await?;
    for row in &orgs {
        let org = OrgId::from_uuid(row.try_get("", "organization_id")?);
        tx.mark(Tag::Instances(Scope::Org(org)));
    }
    Ok(())
}
