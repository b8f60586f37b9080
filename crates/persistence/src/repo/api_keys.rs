//! `api_keys`: read and changed through a [`Scope`] (an org's keys, or a user's personal
//! keys). Across tenants on purpose, and named so: the lookup by hash that authenticates a
//! request ([`find_by_hash`]) and the revocation of a disabled or deleted account's keys
//! ([`revoke_all_of_account`]).

use crate::repo::sql::{Page, Params, owned_by, push_page};
use crate::repo::{corrupt, exec_sql, query_all_sql, query_one_sql, row_lock};
use crate::{Store, StoreError, Tag, Tx};
use inventiv_domain::{Activation, ApiKeyId, Flag, OrgId, Role, Scope, UserId};
use sea_orm::QueryResult;
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
    /// The two approvals of an org key (both off for a personal key, which needs none).
    pub activation: Activation,
}

const SELECT: &str = "SELECT k.id, k.organization_id, o.name AS organization_name, k.owner_user_id, k.name, \
     k.key_prefix, k.allowed_models, k.expires_at, k.last_used_at, k.revoked_at, k.created_at, \
     k.monthly_cap_micros, k.tech_activated_by, k.eco_activated_by \
     FROM api_keys k LEFT JOIN organizations o ON o.id = k.organization_id";

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
        activation: Activation {
            tech_by: row
                .try_get::<Option<uuid::Uuid>>("", "tech_activated_by")?
                .map(UserId::from_uuid),
            eco_by: row
                .try_get::<Option<uuid::Uuid>>("", "eco_activated_by")?
                .map(UserId::from_uuid),
        },
    })
}

impl ApiKeyRecord {
    /// The scope the key belongs to: its org, or its owner's personal workspace.
    pub fn scope(&self) -> Scope {
        self.organization_id
            .map_or(Scope::Personal(self.owner_user_id), Scope::Org)
    }

    /// Whether the key may authenticate: a personal key always; an org key once both
    /// approvals are on (SPEC §4.3 v2).
    pub fn operational(&self) -> bool {
        self.activation.operational(self.organization_id.is_none())
    }
}

/// The tenant filter of `scope` over api_keys columns prefixed by `alias` (`k.` or empty).
fn in_scope(scope: Scope, alias: &str, p: &mut Params) -> String {
    owned_by(
        scope,
        &format!("{alias}organization_id"),
        &format!("{alias}owner_user_id"),
        p,
    )
}

/// What creating a key stores (the scope comes separately).
pub struct NewApiKey<'a> {
    pub id: ApiKeyId,
    pub owner: UserId,
    pub name: &'a str,
    pub key_prefix: &'a str,
    pub key_hash: &'a str,
    pub allowed_models: Option<&'a [String]>,
    pub expires_at: Option<OffsetDateTime>,
    pub monthly_cap_micros: Option<i64>,
    pub now: OffsetDateTime,
}

/// Stores a key of `scope` (an org key, or a personal key with `organization_id` NULL).
pub async fn insert<S: Store>(s: &S, scope: Scope, new: NewApiKey<'_>) -> Result<(), StoreError> {
    let org = match scope {
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
    let mut p = Params::new();
    let mut sql = format!("{SELECT} WHERE {}", in_scope(scope, "k.", &mut p));
    let before = before.map(|id| id.as_uuid());
    push_page(&mut sql, &mut p, "k.id", Page::Before(before), limit);
    query_all_sql(s, &sql, p.into_values())
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
    find_locked(s, scope, id, "").await
}

/// [`find`], locking the key's row until `tx` ends (on PostgreSQL; a SQLite write transaction
/// holds the database's write lock already): what a change reads as its "before" is still
/// true when it writes. Only the key's row, and with the lock its update takes anyway (`FOR
/// NO KEY UPDATE`): usage rows referencing the key can still be inserted meanwhile.
pub async fn find_for_update(
    tx: &Tx,
    scope: Scope,
    id: ApiKeyId,
) -> Result<Option<ApiKeyRecord>, StoreError> {
    let lock = row_lock(tx, " FOR NO KEY UPDATE OF k");
    find_locked(tx, scope, id, lock).await
}

async fn find_locked<S: Store>(
    s: &S,
    scope: Scope,
    id: ApiKeyId,
    lock: &str,
) -> Result<Option<ApiKeyRecord>, StoreError> {
    let mut p = Params::new();
    let sql = format!(
        "{SELECT} WHERE {} AND k.id = {}{lock}",
        in_scope(scope, "k.", &mut p),
        p.bind(id.as_uuid())
    );
    query_one_sql(s, &sql, p.into_values())
        .await?
        .map(record)
        .transpose()
}

pub async fn rename(tx: &Tx, scope: Scope, id: ApiKeyId, name: &str) -> Result<bool, StoreError> {
    tx.mark(Tag::ApiKey(id));
    let mut p = Params::new();
    let sql = format!(
        "UPDATE api_keys SET name = {} WHERE id = {} AND {}",
        p.bind(name),
        p.bind(id.as_uuid()),
        in_scope(scope, "", &mut p)
    );
    Ok(exec_sql(tx, &sql, p.into_values()).await? == 1)
}

/// Sets (or, with None, removes) the monthly spend cap of a key of `scope`.
pub async fn set_cap(
    tx: &Tx,
    scope: Scope,
    id: ApiKeyId,
    cap: Option<i64>,
) -> Result<bool, StoreError> {
    tx.mark(Tag::ApiKey(id));
    let mut p = Params::new();
    let sql = format!(
        "UPDATE api_keys SET monthly_cap_micros = {} WHERE id = {} AND {}",
        p.bind(cap),
        p.bind(id.as_uuid()),
        in_scope(scope, "", &mut p)
    );
    Ok(exec_sql(tx, &sql, p.into_values()).await? == 1)
}

/// Revokes a live key of `scope`; false if absent or already revoked.
pub async fn revoke(
    tx: &Tx,
    scope: Scope,
    id: ApiKeyId,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    tx.mark(Tag::ApiKey(id));
    let mut p = Params::new();
    let sql = format!(
        "UPDATE api_keys SET revoked_at = {} WHERE id = {} AND revoked_at IS NULL AND {}",
        p.bind(now),
        p.bind(id.as_uuid()),
        in_scope(scope, "", &mut p)
    );
    Ok(exec_sql(tx, &sql, p.into_values()).await? == 1)
}

/// Sets (`by` = Some) or clears one approval of the org key `id` of `org`. Marks the key's
/// tag: the key-auth cache must see the change on the next request.
pub async fn set_flag(
    tx: &Tx,
    org: OrgId,
    id: ApiKeyId,
    flag: Flag,
    by: Option<UserId>,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    tx.mark(Tag::ApiKey(id));
    let column = flag.as_str();
    let at: Option<OffsetDateTime> = by.map(|_| now);
    let mut p = Params::new();
    // Not `repo::set_activation_flag`: api_keys has no `updated_at`.
    let sql = format!(
        "UPDATE api_keys SET {column}_activated_by = {}, {column}_activated_at = {} \
         WHERE organization_id = {} AND id = {}",
        p.bind(by.map(|u| u.as_uuid())),
        p.bind(at),
        p.bind(org.as_uuid()),
        p.bind(id.as_uuid())
    );
    Ok(exec_sql(tx, &sql, p.into_values()).await? == 1)
}

/// A key revoked along with its owner's membership or account (for the audit trail).
#[derive(Debug, Clone)]
pub struct RevokedKey {
    pub id: ApiKeyId,
    pub organization_id: Option<OrgId>,
    pub name: String,
    pub key_prefix: String,
}

/// Revokes the live keys of `scope` that `creator` created (their membership was removed, or
/// their role lowered below those that may hold org keys), and returns them.
pub async fn revoke_created_by(
    tx: &Tx,
    scope: Scope,
    creator: UserId,
    now: OffsetDateTime,
) -> Result<Vec<RevokedKey>, StoreError> {
    let mut p = Params::new();
    let revoked_at = p.bind(now);
    let filter = format!(
        "owner_user_id = {} AND {}",
        p.bind(creator.as_uuid()),
        in_scope(scope, "", &mut p)
    );
    revoke_where(tx, &revoked_at, &filter, p).await
}

/// Revokes every live key `owner` created, personal and in every org — across tenants on
/// purpose: the account itself is disabled or deleted.
pub async fn revoke_all_of_account(
    tx: &Tx,
    owner: UserId,
    now: OffsetDateTime,
) -> Result<Vec<RevokedKey>, StoreError> {
    let mut p = Params::new();
    let revoked_at = p.bind(now);
    let filter = format!("owner_user_id = {}", p.bind(owner.as_uuid()));
    revoke_where(tx, &revoked_at, &filter, p).await
}

/// Revokes, in one statement, the live keys matching `filter`; returns them sorted by id.
async fn revoke_where(
    tx: &Tx,
    revoked_at: &str,
    filter: &str,
    p: Params,
) -> Result<Vec<RevokedKey>, StoreError> {
    // RETURNING (PostgreSQL, SQLite ≥ 3.35): exactly the rows this statement revoked, so the
    // audit trail names every one of them, and none twice, whatever runs concurrently.
    let sql = format!(
        "UPDATE api_keys SET revoked_at = {revoked_at} WHERE {filter} AND revoked_at IS NULL \
         RETURNING id, organization_id, name, key_prefix"
    );
    let mut revoked = query_all_sql(tx, &sql, p.into_values())
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
    for key in &revoked {
        tx.mark(Tag::ApiKey(key.id));
    }
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

/// The key with this hash (any state; the caller checks revocation and expiry). Across
/// tenants on purpose: the hash is the credential, and the key found names its own scope.
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

/// Records use of a key of `scope` (the caller throttles it to once a minute per key). Not a
/// transaction and marks no tag, on purpose: `last_used_at` decides nothing but when to
/// record use again (the caller refreshes its own cached copy).
pub async fn touch<S: Store>(
    s: &S,
    scope: Scope,
    id: ApiKeyId,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let mut p = Params::new();
    let sql = format!(
        "UPDATE api_keys SET last_used_at = {} WHERE id = {} AND {}",
        p.bind(now),
        p.bind(id.as_uuid()),
        in_scope(scope, "", &mut p)
    );
    exec_sql(s, &sql, p.into_values()).await?;
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
