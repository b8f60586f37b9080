//! `endpoint_claims`: which owner an external endpoint belongs to — an org, or a user for
//! their personal workspace (the two sides of a [`Scope`]).

use crate::repo::sql::{Params, owned_by};
use crate::repo::{exec_sql, query_all_sql, query_one_sql, row_lock};
use crate::{Store, StoreError, Tx};
use inventiv_domain::{OrgId, Scope, UserId};
use sea_orm::Value;
use time::OffsetDateTime;

fn owner_values(scope: Scope) -> (Value, Value) {
    match scope {
        Scope::Org(org) => (Some(org.as_uuid()).into(), None::<uuid::Uuid>.into()),
        Scope::Personal(user) => (None::<uuid::Uuid>.into(), Some(user.as_uuid()).into()),
    }
}

/// Claims `endpoint` for `scope` unless someone holds it already, and returns the holder
/// (another tenant's scope when it is taken: what the caller decides from).
/// Within `tx` the claim row stays locked (PostgreSQL `FOR UPDATE`; SQLite write transactions
/// are exclusive anyway), so what the caller decides from the holder cannot race another
/// registration or a takeover of the same endpoint.
pub async fn claim_or_holder(
    tx: &Tx,
    scope: Scope,
    endpoint: &str,
    now: OffsetDateTime,
) -> Result<Scope, StoreError> {
    let (org, user) = owner_values(scope);
    exec_sql(
        tx,
        "INSERT INTO endpoint_claims (endpoint, organization_id, user_id, claimed_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (endpoint) DO NOTHING",
        vec![endpoint.into(), org, user, now.into()],
    )
    .await?;
    let lock = row_lock(tx, " FOR UPDATE");
    let row = query_one_sql(
        tx,
        &format!("SELECT organization_id, user_id FROM endpoint_claims WHERE endpoint = $1{lock}"),
        vec![endpoint.into()],
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt(format!("endpoint claim {endpoint} vanished")))?;
    let org: Option<uuid::Uuid> = row.try_get("", "organization_id")?;
    let user: Option<uuid::Uuid> = row.try_get("", "user_id")?;
    match (org, user) {
        (Some(org), _) => Ok(Scope::Org(OrgId::from_uuid(org))),
        (None, Some(user)) => Ok(Scope::Personal(UserId::from_uuid(user))),
        (None, None) => Err(StoreError::Corrupt(format!(
            "endpoint claim {endpoint} has no owner"
        ))),
    }
}

/// Hands `endpoint` from `from` to `to` (compare-and-set on the holder); whether it did.
pub async fn transfer(
    tx: &Tx,
    from: Scope,
    endpoint: &str,
    to: Scope,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let (org, user) = owner_values(to);
    let (holder, was) = match from {
        Scope::Org(org) => ("organization_id", org.as_uuid()),
        Scope::Personal(user) => ("user_id", user.as_uuid()),
    };
    let sql = format!(
        "UPDATE endpoint_claims SET organization_id = $1, user_id = $2, claimed_at = $3 \
         WHERE endpoint = $4 AND {holder} = $5"
    );
    let changed = exec_sql(
        tx,
        &sql,
        vec![org, user, now.into(), endpoint.into(), was.into()],
    )
    .await?;
    Ok(changed == 1)
}

/// The endpoint URLs of `scope`'s external instances that are not terminated (those that
/// keep its claims).
pub async fn live_external_endpoints<S: Store>(
    s: &S,
    scope: Scope,
) -> Result<Vec<String>, StoreError> {
    let mut p = Params::new();
    let sql = format!(
        "SELECT endpoint_url FROM instances WHERE {} AND provider = 'external' \
         AND status <> 'terminated' AND endpoint_url IS NOT NULL",
        owned_by(scope, "organization_id", "owner_user_id", &mut p)
    );
    query_all_sql(s, &sql, p.into_values())
        .await?
        .into_iter()
        .map(|row| Ok(row.try_get("", "endpoint_url")?))
        .collect()
}
