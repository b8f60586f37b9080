//! `api_keys`: listed and changed through a [`Scope`] (an org's keys, or the caller's personal
//! keys); looked up by hash only to authenticate a request.

use crate::repo::{corrupt, exec_sql, query_all_sql, query_one_sql};
use crate::{Store, StoreError};
use inventiv_domain::{ApiKeyId, OrgId, Role, Scope, UserId};
use sea_orm::{QueryResult, Value};
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub id: ApiKeyId,
    pub organization_id: Option<OrgId>,
    pub organization_name: Option<String>,
    pub owner_user_id: UserId,
    pub name: String,
    pub key_prefix: String,
    /// Offering/model names this key may call (None: any the scope allows).
    pub allowed_models: Option<Vec<String>>,
    pub expires_at: Option<OffsetDateTime>,
    pub last_used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    /// The key's monthly spend ceiling in micro-EUR (None: none).
    pub monthly_cap_micros: Option<i64>,
    /// This month's spend and the budget replicas hold for in-flight calls (filled by
    /// [`with_spend`]; 0 until then).
    pub spent_this_month_micros: i64,
    pub reserved_micros: i64,
}

const SELECT: &str = "SELECT k.id, k.organization_id, o.name AS organization_name, k.owner_user_id, k.name, \
     k.key_prefix, k.allowed_models, k.expires_at, k.last_used_at, k.revoked_at, k.created_at, \
     k.monthly_cap_micros FROM api_keys k LEFT JOIN organizations o ON o.id = k.organization_id";

fn record(row: QueryResult) -> Result<ApiKeyRecord, StoreError> {
    let allowed: Option<serde_json::Value> = row.try_get("", "allowed_models")?;
    let allowed_models = allowed
        .map(serde_json::from_value::<Vec<String>>)
        .transpose()
        .map_err(|e| corrupt("api_keys.allowed_models", e))?;
    Ok(ApiKeyRecord {
        id: ApiKeyId::from_uuid(row.try_get("", "id")?),
        organization_id: row
            .try_get::<Option<uuid::Uuid>>("", "organization_id")?
            .map(OrgId::from_uuid),
        organization_name: row.try_get("", "organization_name")?,
        owner_user_id: UserId::from_uuid(row.try_get("", "owner_user_id")?),
        name: row.try_get("", "name")?,
        key_prefix: row.try_get("", "key_prefix")?,
        allowed_models,
        expires_at: row.try_get("", "expires_at")?,
        last_used_at: row.try_get("", "last_used_at")?,
        revoked_at: row.try_get("", "revoked_at")?,
        created_at: row.try_get("", "created_at")?,
        monthly_cap_micros: row.try_get("", "monthly_cap_micros")?,
        spent_this_month_micros: 0,
        reserved_micros: 0,
    })
}

fn in_scope(scope: Scope, values: &mut Vec<Value>) -> String {
    match scope {
        Scope::Org(org) => {
            values.push(org.as_uuid().into());
            format!("k.organization_id = ${}", values.len())
        }
        Scope::Personal(user) => {
            values.push(user.as_uuid().into());
            format!(
                "k.organization_id IS NULL AND k.owner_user_id = ${}",
                values.len()
            )
        }
    }
}

pub struct NewApiKey<'a> {
    pub id: ApiKeyId,
    pub scope: Scope,
    pub owner: UserId,
    pub name: &'a str,
    pub key_prefix: &'a str,
    pub key_hash: &'a str,
    pub allowed_models: Option<&'a [String]>,
    pub expires_at: Option<OffsetDateTime>,
    pub monthly_cap_micros: Option<i64>,
    pub now: OffsetDateTime,
}

pub async fn insert<S: Store>(s: &S, new: NewApiKey<'_>) -> Result<(), StoreError> {
    let org = match new.scope {
        Scope::Org(org) => Some(org.as_uuid()),
        Scope::Personal(_) => None,
    };
    let allowed = new.allowed_models.map(|m| serde_json::json!(m));
    exec_sql(
        s,
        "INSERT INTO api_keys (id, organization_id, owner_user_id, name, key_prefix, key_hash, allowed_models, expires_at, created_at, monthly_cap_micros) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        vec![
            new.id.as_uuid().into(),
            org.into(),
            new.owner.as_uuid().into(),
            new.name.into(),
            new.key_prefix.into(),
            new.key_hash.into(),
            allowed.into(),
            new.expires_at.into(),
            new.now.into(),
            new.monthly_cap_micros.into(),
        ],
    )
    .await?;
    Ok(())
}

/// Keys of `scope`, newest first (revoked ones included, marked).
pub async fn list<S: Store>(
    s: &S,
    scope: Scope,
    before: Option<ApiKeyId>,
    limit: u64,
) -> Result<Vec<ApiKeyRecord>, StoreError> {
    let mut values = Vec::new();
    let mut sql = format!("{SELECT} WHERE {}", in_scope(scope, &mut values));
    if let Some(before) = before {
        values.push(before.as_uuid().into());
        sql.push_str(&format!(" AND k.id < ${}", values.len()));
    }
    sql.push_str(&format!(" ORDER BY k.id DESC LIMIT {limit}"));
    query_all_sql(s, &sql, values)
        .await?
        .into_iter()
        .map(record)
        .collect()
}

pub async fn find<S: Store>(
    s: &S,
    scope: Scope,
    id: ApiKeyId,
) -> Result<Option<ApiKeyRecord>, StoreError> {
    let mut values = Vec::new();
    let filter = in_scope(scope, &mut values);
    values.push(id.as_uuid().into());
    query_one_sql(
        s,
        &format!("{SELECT} WHERE {filter} AND k.id = ${}", values.len()),
        values,
    )
    .await?
    .map(record)
    .transpose()
}

pub async fn rename<S: Store>(
    s: &S,
    scope: Scope,
    id: ApiKeyId,
    name: &str,
) -> Result<bool, StoreError> {
    let mut values: Vec<Value> = vec![name.into(), id.as_uuid().into()];
    let filter = in_scope(scope, &mut values).replace("k.", "");
    Ok(exec_sql(
        s,
        &format!("UPDATE api_keys SET name = $1 WHERE id = $2 AND {filter}"),
        values,
    )
    .await?
        == 1)
}

/// Sets (or, with None, removes) the monthly spend cap of a key of `scope`.
pub async fn set_cap<S: Store>(
    s: &S,
    scope: Scope,
    id: ApiKeyId,
    cap: Option<i64>,
) -> Result<bool, StoreError> {
    let mut values: Vec<Value> = vec![cap.into(), id.as_uuid().into()];
    let filter = in_scope(scope, &mut values).replace("k.", "");
    Ok(exec_sql(
        s,
        &format!("UPDATE api_keys SET monthly_cap_micros = $1 WHERE id = $2 AND {filter}"),
        values,
    )
    .await?
        == 1)
}

/// Revokes a live key of `scope`; false if absent or already revoked.
pub async fn revoke<S: Store>(
    s: &S,
    scope: Scope,
    id: ApiKeyId,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let mut values: Vec<Value> = vec![now.into(), id.as_uuid().into()];
    let filter = in_scope(scope, &mut values).replace("k.", "");
    let sql = format!(
        "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL AND {filter}"
    );
    Ok(exec_sql(s, &sql, values).await? == 1)
}

/// A key revoked along with its owner's membership or account (for the audit trail).
#[derive(Debug, Clone)]
pub struct RevokedKey {
    pub id: ApiKeyId,
    pub organization_id: Option<OrgId>,
    pub name: String,
    pub key_prefix: String,
}

/// Whose live keys [`revoke_owned`] revokes.
#[derive(Debug, Clone, Copy)]
pub enum OwnedKeys {
    /// The org keys `user` created in `org` (membership removed, or role lowered).
    InOrg { org: OrgId, user: UserId },
    /// Every key of `user`, personal and org (account disabled or deleted).
    All(UserId),
}

/// Revokes the live keys `which` designates, in one statement, and returns them.
pub async fn revoke_owned<S: Store>(
    s: &S,
    which: OwnedKeys,
    now: OffsetDateTime,
) -> Result<Vec<RevokedKey>, StoreError> {
    let (filter, values): (&str, Vec<Value>) = match which {
        OwnedKeys::InOrg { org, user } => (
            "owner_user_id = $2 AND organization_id = $3",
            vec![now.into(), user.as_uuid().into(), org.as_uuid().into()],
        ),
        OwnedKeys::All(user) => (
            "owner_user_id = $2",
            vec![now.into(), user.as_uuid().into()],
        ),
    };
    // RETURNING (PostgreSQL, SQLite ≥ 3.35): exactly the rows this statement revoked, so the
    // audit trail names every one of them, and none twice, whatever runs concurrently.
    let sql = format!(
        "UPDATE api_keys SET revoked_at = $1 WHERE {filter} AND revoked_at IS NULL \
         RETURNING id, organization_id, name, key_prefix"
    );
    let mut revoked = query_all_sql(s, &sql, values)
        .await?
        .into_iter()
        .map(|row| {
            Ok(RevokedKey {
                id: ApiKeyId::from_uuid(row.try_get("", "id")?),
                organization_id: row
                    .try_get::<Option<uuid::Uuid>>("", "organization_id")?
                    .map(OrgId::from_uuid),
                name: row.try_get("", "name")?,
                key_prefix: row.try_get("", "key_prefix")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    // RETURNING gives no order: sort, so the audit events come in a stable order.
    revoked.sort_by_key(|k| k.id);
    Ok(revoked)
}

/// What authenticating a request by key needs, in one round trip.
#[derive(Debug, Clone)]
pub struct KeyAuth {
    pub key: ApiKeyRecord,
    pub key_hash: String,
    pub email: String,
    pub user_disabled: bool,
    /// For an org key: its creator's role in the key's org *now* (None: no longer a member).
    pub creator_role: Option<Role>,
}

/// The key with this hash (any state; the caller checks revocation and expiry).
pub async fn find_by_hash<S: Store>(s: &S, key_hash: &str) -> Result<Option<KeyAuth>, StoreError> {
    let sql = format!(
        "{} , k.key_hash, u.email, u.disabled_at, m.role AS creator_role FROM api_keys k \
         LEFT JOIN organizations o ON o.id = k.organization_id \
         JOIN users u ON u.id = k.owner_user_id \
         LEFT JOIN organization_memberships m ON m.organization_id = k.organization_id AND m.user_id = k.owner_user_id \
         WHERE k.key_hash = $1",
        SELECT.split(" FROM ").next().unwrap_or_default()
    );
    let Some(row) = query_one_sql(s, &sql, vec![key_hash.into()]).await? else {
        return Ok(None);
    };
    let key_hash: String = row.try_get("", "key_hash")?;
    let email: String = row.try_get("", "email")?;
    let disabled: Option<OffsetDateTime> = row.try_get("", "disabled_at")?;
    let creator_role = row
        .try_get::<Option<String>>("", "creator_role")?
        .map(|r| r.parse())
        .transpose()
        .map_err(|e| corrupt("organization_memberships.role", e))?;
    Ok(Some(KeyAuth {
        key: record(row)?,
        key_hash,
        email,
        user_disabled: disabled.is_some(),
        creator_role,
    }))
}

/// Records use (the caller throttles it to once a minute per key).
pub async fn touch<S: Store>(s: &S, id: ApiKeyId, now: OffsetDateTime) -> Result<(), StoreError> {
    exec_sql(
        s,
        "UPDATE api_keys SET last_used_at = $1 WHERE id = $2",
        vec![now.into(), id.as_uuid().into()],
    )
    .await?;
    Ok(())
}

/// Fills in the spend of `month` of each key (one query for all of them).
pub async fn with_spend<S: Store>(
    s: &S,
    keys: &mut [ApiKeyRecord],
    month: i32,
) -> Result<(), StoreError> {
    let ids: Vec<uuid::Uuid> = keys.iter().map(|k| k.id.as_uuid()).collect();
    let spend =
        crate::repo::spend::counters_of(s, crate::repo::spend::SubjectKind::ApiKey, &ids, month)
            .await?;
    for key in keys {
        if let Some((spent, leased)) = spend.get(&key.id.as_uuid()) {
            key.spent_this_month_micros = *spent;
            key.reserved_micros = (*leased).max(0);
        }
    }
    Ok(())
}
