//! `organization_model_shares`: read from either side (provider or consumer org), written by the
//! provider; the proxy asks for the live share of (provider, consumer, offering).

use crate::repo::{corrupt, exec_sql, query_all_sql, query_one_sql};
use crate::{Store, StoreError};
use inventiv_domain::{Activation, Flag, OfferingId, OrgId, ShareId, ShareStatus, UserId};
use sea_orm::{QueryResult, Value};
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct ShareRecord {
    pub id: ShareId,
    pub provider_organization_id: OrgId,
    pub provider_slug: String,
    pub consumer_organization_id: OrgId,
    pub consumer_slug: String,
    pub offering_id: OfferingId,
    pub offering_code: String,
    /// As stored; use `ShareStatus::effective` for expiry.
    pub status: ShareStatus,
    pub price_input_micros_per_1k: i64,
    pub price_output_micros_per_1k: i64,
    pub starts_at: OffsetDateTime,
    pub ends_at: Option<OffsetDateTime>,
    pub activation: Activation,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const SELECT: &str = "SELECT s.id, s.provider_organization_id, p.slug AS provider_slug, s.consumer_organization_id, \
     c.slug AS consumer_slug, s.organization_model_id, f.code AS offering_code, s.status, s.price_input_micros_per_1k, \
     s.price_output_micros_per_1k, s.starts_at, s.ends_at, s.tech_activated_by, s.eco_activated_by, s.created_at, s.updated_at \
     FROM organization_model_shares s JOIN organizations p ON p.id = s.provider_organization_id \
     JOIN organizations c ON c.id = s.consumer_organization_id JOIN organization_models f ON f.id = s.organization_model_id";

fn record(row: QueryResult) -> Result<ShareRecord, StoreError> {
    let status: String = row.try_get("", "status")?;
    let uuid_opt = |col: &str| row.try_get::<Option<uuid::Uuid>>("", col);
    Ok(ShareRecord {
        id: ShareId::from_uuid(row.try_get("", "id")?),
        provider_organization_id: OrgId::from_uuid(row.try_get("", "provider_organization_id")?),
        provider_slug: row.try_get("", "provider_slug")?,
        consumer_organization_id: OrgId::from_uuid(row.try_get("", "consumer_organization_id")?),
        consumer_slug: row.try_get("", "consumer_slug")?,
        offering_id: OfferingId::from_uuid(row.try_get("", "organization_model_id")?),
        offering_code: row.try_get("", "offering_code")?,
        status: status
            .parse()
            .map_err(|e| corrupt("organization_model_shares.status", e))?,
        price_input_micros_per_1k: row.try_get("", "price_input_micros_per_1k")?,
        price_output_micros_per_1k: row.try_get("", "price_output_micros_per_1k")?,
        starts_at: row.try_get("", "starts_at")?,
        ends_at: row.try_get("", "ends_at")?,
        activation: Activation {
            tech_by: uuid_opt("tech_activated_by")?.map(UserId::from_uuid),
            eco_by: uuid_opt("eco_activated_by")?.map(UserId::from_uuid),
        },
        created_at: row.try_get("", "created_at")?,
        updated_at: row.try_get("", "updated_at")?,
    })
}

/// Which side of a share an org is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Provider,
    Consumer,
}

fn side_column(side: Side) -> &'static str {
    match side {
        Side::Provider => "s.provider_organization_id",
        Side::Consumer => "s.consumer_organization_id",
    }
}

pub struct NewShare {
    pub id: ShareId,
    pub provider: OrgId,
    pub consumer: OrgId,
    pub offering: OfferingId,
    pub prices: (i64, i64),
    pub starts_at: OffsetDateTime,
    pub ends_at: Option<OffsetDateTime>,
    pub now: OffsetDateTime,
}

/// Stores an active share; a live one for the same triple is `Conflict(ShareLive)`.
pub async fn insert<S: Store>(s: &S, new: NewShare) -> Result<(), StoreError> {
    exec_sql(
        s,
        "INSERT INTO organization_model_shares (id, provider_organization_id, consumer_organization_id, organization_model_id, \
             status, price_input_micros_per_1k, price_output_micros_per_1k, starts_at, ends_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'active', $5, $6, $7, $8, $9, $9)",
        vec![
            new.id.as_uuid().into(),
            new.provider.as_uuid().into(),
            new.consumer.as_uuid().into(),
            new.offering.as_uuid().into(),
            new.prices.0.into(),
            new.prices.1.into(),
            new.starts_at.into(),
            new.ends_at.into(),
            new.now.into(),
        ],
    )
    .await?;
    Ok(())
}

/// Shares where `org` is on `side`, newest first.
pub async fn list<S: Store>(
    s: &S,
    org: OrgId,
    side: Side,
    before: Option<ShareId>,
    limit: u64,
) -> Result<Vec<ShareRecord>, StoreError> {
    let mut values: Vec<Value> = vec![org.as_uuid().into()];
    let mut sql = format!("{SELECT} WHERE {} = $1", side_column(side));
    if let Some(before) = before {
        values.push(before.as_uuid().into());
        sql.push_str(" AND s.id < $2");
    }
    sql.push_str(&format!(" ORDER BY s.id DESC LIMIT {limit}"));
    query_all_sql(s, &sql, values)
        .await?
        .into_iter()
        .map(record)
        .collect()
}

/// A share where `org` is on `side`.
pub async fn find<S: Store>(
    s: &S,
    org: OrgId,
    side: Side,
    id: ShareId,
) -> Result<Option<ShareRecord>, StoreError> {
    let sql = format!("{SELECT} WHERE {} = $1 AND s.id = $2", side_column(side));
    query_one_sql(s, &sql, vec![org.as_uuid().into(), id.as_uuid().into()])
        .await?
        .map(record)
        .transpose()
}

/// Either side: the provider or the consumer may read a share.
pub async fn find_either<S: Store>(
    s: &S,
    org: OrgId,
    id: ShareId,
) -> Result<Option<ShareRecord>, StoreError> {
    let sql = format!(
        "{SELECT} WHERE (s.provider_organization_id = $1 OR s.consumer_organization_id = $1) AND s.id = $2"
    );
    query_one_sql(s, &sql, vec![org.as_uuid().into(), id.as_uuid().into()])
        .await?
        .map(record)
        .transpose()
}

/// The live (active or paused) share of (provider, consumer, offering), if any.
pub async fn live_for<S: Store>(
    s: &S,
    provider: OrgId,
    consumer: OrgId,
    offering: OfferingId,
) -> Result<Option<ShareRecord>, StoreError> {
    let sql = format!(
        "{SELECT} WHERE s.provider_organization_id = $1 AND s.consumer_organization_id = $2 \
         AND s.organization_model_id = $3 AND s.status IN ('active', 'paused')"
    );
    query_one_sql(
        s,
        &sql,
        vec![
            provider.as_uuid().into(),
            consumer.as_uuid().into(),
            offering.as_uuid().into(),
        ],
    )
    .await?
    .map(record)
    .transpose()
}

/// All live shares received by `consumer` (for `/v1/models`).
pub async fn live_received<S: Store>(
    s: &S,
    consumer: OrgId,
) -> Result<Vec<ShareRecord>, StoreError> {
    let sql = format!(
        "{SELECT} WHERE s.consumer_organization_id = $1 AND s.status = 'active' ORDER BY s.id"
    );
    query_all_sql(s, &sql, vec![consumer.as_uuid().into()])
        .await?
        .into_iter()
        .map(record)
        .collect()
}

/// Compare-and-set on the status (provider side).
pub async fn set_status<S: Store>(
    s: &S,
    provider: OrgId,
    id: ShareId,
    from: ShareStatus,
    to: ShareStatus,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    Ok(exec_sql(
        s,
        "UPDATE organization_model_shares SET status = $1, updated_at = $2 \
         WHERE provider_organization_id = $3 AND id = $4 AND status = $5",
        vec![
            to.as_str().into(),
            now.into(),
            provider.as_uuid().into(),
            id.as_uuid().into(),
            from.as_str().into(),
        ],
    )
    .await?
        == 1)
}

/// Sets the prices and clears the economic approval.
pub async fn set_prices<S: Store>(
    s: &S,
    provider: OrgId,
    id: ShareId,
    prices: (i64, i64),
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    Ok(exec_sql(
        s,
        "UPDATE organization_model_shares SET price_input_micros_per_1k = $1, price_output_micros_per_1k = $2, \
             eco_activated_by = NULL, eco_activated_at = NULL, updated_at = $3 WHERE provider_organization_id = $4 AND id = $5",
        vec![prices.0.into(), prices.1.into(), now.into(), provider.as_uuid().into(), id.as_uuid().into()],
    )
    .await?
        == 1)
}

pub async fn set_flag<S: Store>(
    s: &S,
    provider: OrgId,
    id: ShareId,
    flag: Flag,
    by: Option<UserId>,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let condition = "provider_organization_id = $1 AND id = $2";
    let values = vec![provider.as_uuid().into(), id.as_uuid().into()];
    crate::repo::set_activation_flag(
        s,
        "organization_model_shares",
        condition,
        values,
        flag,
        by,
        now,
    )
    .await
}
