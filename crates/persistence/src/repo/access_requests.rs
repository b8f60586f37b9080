//! `access_requests` (SPEC §4.7): read from either side (the provider org that owns the
//! offering, or the consumer org that asked). Every function takes the acting org first and
//! matches it against a side; a decision is a compare-and-set on `pending`, so a concurrent
//! decision makes it match no row instead of overwriting.

use crate::repo::sql::{Page, Params, push_page};
use crate::repo::{corrupt, exec_sql, query_all_sql, query_one_sql};
use crate::{Store, StoreError, Tx};
use inventiv_domain::{
    AccessRequestId, AccessRequestStatus, OfferingId, OrgId, ShareId, ShareParty, UserId,
};
use sea_orm::QueryResult;
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct AccessRequestRecord {
    pub id: AccessRequestId,
    pub provider_organization_id: OrgId,
    pub provider_slug: String,
    pub provider_name: String,
    pub consumer_organization_id: OrgId,
    pub consumer_slug: String,
    pub consumer_name: String,
    pub offering_id: OfferingId,
    pub offering_code: String,
    pub offering_name: String,
    pub status: AccessRequestStatus,
    pub message: Option<String>,
    pub requested_by: Option<UserId>,
    pub decided_by: Option<UserId>,
    pub decided_at: Option<OffsetDateTime>,
    /// The share an approval proposed.
    pub share_id: Option<ShareId>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const SELECT: &str = "SELECT r.id, r.provider_organization_id, p.slug AS provider_slug, p.name AS provider_name, \
     r.consumer_organization_id, c.slug AS consumer_slug, c.name AS consumer_name, r.organization_model_id, \
     f.code AS offering_code, f.name AS offering_name, r.status, r.message, r.requested_by_user_id, \
     r.decided_by_user_id, r.decided_at, r.share_id, r.created_at, r.updated_at \
     FROM access_requests r JOIN organizations p ON p.id = r.provider_organization_id \
     JOIN organizations c ON c.id = r.consumer_organization_id JOIN organization_models f ON f.id = r.organization_model_id";

fn record(row: QueryResult) -> Result<AccessRequestRecord, StoreError> {
    let status: String = row.try_get("", "status")?;
    let uuid_opt = |col: &str| row.try_get::<Option<uuid::Uuid>>("", col);
    Ok(AccessRequestRecord {
        id: AccessRequestId::from_uuid(row.try_get("", "id")?),
        provider_organization_id: OrgId::from_uuid(row.try_get("", "provider_organization_id")?),
        provider_slug: row.try_get("", "provider_slug")?,
        provider_name: row.try_get("", "provider_name")?,
        consumer_organization_id: OrgId::from_uuid(row.try_get("", "consumer_organization_id")?),
        consumer_slug: row.try_get("", "consumer_slug")?,
        consumer_name: row.try_get("", "consumer_name")?,
        offering_id: OfferingId::from_uuid(row.try_get("", "organization_model_id")?),
        offering_code: row.try_get("", "offering_code")?,
        offering_name: row.try_get("", "offering_name")?,
        status: status
            .parse()
            .map_err(|e| corrupt("access_requests.status", e))?,
        message: row.try_get("", "message")?,
        requested_by: uuid_opt("requested_by_user_id")?.map(UserId::from_uuid),
        decided_by: uuid_opt("decided_by_user_id")?.map(UserId::from_uuid),
        decided_at: row.try_get("", "decided_at")?,
        share_id: uuid_opt("share_id")?.map(ShareId::from_uuid),
        created_at: row.try_get("", "created_at")?,
        updated_at: row.try_get("", "updated_at")?,
    })
}

fn side_column(side: ShareParty) -> &'static str {
    match side {
        ShareParty::Provider => "r.provider_organization_id",
        ShareParty::Consumer => "r.consumer_organization_id",
    }
}

/// What a new request stores (the consumer comes separately).
pub struct NewAccessRequest {
    pub id: AccessRequestId,
    pub provider: OrgId,
    pub offering: OfferingId,
    pub message: Option<String>,
    pub requested_by: UserId,
    pub now: OffsetDateTime,
}

/// Stores `consumer`'s pending request; a pending one for the same offering is
/// `Conflict(AccessRequestPending)`.
pub async fn insert(tx: &Tx, consumer: OrgId, new: NewAccessRequest) -> Result<(), StoreError> {
    exec_sql(
        tx,
        "INSERT INTO access_requests (id, provider_organization_id, consumer_organization_id, organization_model_id, \
             status, message, requested_by_user_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $7)",
        vec![
            new.id.as_uuid().into(),
            new.provider.as_uuid().into(),
            consumer.as_uuid().into(),
            new.offering.as_uuid().into(),
            new.message.into(),
            new.requested_by.as_uuid().into(),
            new.now.into(),
        ],
    )
    .await?;
    Ok(())
}

/// `consumer`'s most recent request for `offering`.
pub async fn latest<S: Store>(
    s: &S,
    consumer: OrgId,
    offering: OfferingId,
) -> Result<Option<AccessRequestRecord>, StoreError> {
    let sql = format!(
        "{SELECT} WHERE r.consumer_organization_id = $1 AND r.organization_model_id = $2 \
         ORDER BY r.id DESC LIMIT 1"
    );
    query_one_sql(
        s,
        &sql,
        vec![consumer.as_uuid().into(), offering.as_uuid().into()],
    )
    .await?
    .map(record)
    .transpose()
}

/// Requests where `org` is on `side`, newest first.
pub async fn list<S: Store>(
    s: &S,
    org: OrgId,
    side: ShareParty,
    before: Option<AccessRequestId>,
    limit: u64,
) -> Result<Vec<AccessRequestRecord>, StoreError> {
    let mut p = Params::new();
    let mut sql = format!(
        "{SELECT} WHERE {} = {}",
        side_column(side),
        p.bind(org.as_uuid())
    );
    let before = before.map(|id| id.as_uuid());
    push_page(&mut sql, &mut p, "r.id", Page::Before(before), limit);
    query_all_sql(s, &sql, p.into_values())
        .await?
        .into_iter()
        .map(record)
        .collect()
}

/// A request where `org` is either side.
pub async fn find_either<S: Store>(
    s: &S,
    org: OrgId,
    id: AccessRequestId,
) -> Result<Option<AccessRequestRecord>, StoreError> {
    let sql = format!(
        "{SELECT} WHERE (r.provider_organization_id = $1 OR r.consumer_organization_id = $1) AND r.id = $2"
    );
    query_one_sql(s, &sql, vec![org.as_uuid().into(), id.as_uuid().into()])
        .await?
        .map(record)
        .transpose()
}

/// The provider's decision: `pending` → `to`, with the share an approval proposed. False when
/// the request is no longer pending (decided meanwhile).
pub async fn decide(
    tx: &Tx,
    provider: OrgId,
    id: AccessRequestId,
    to: AccessRequestStatus,
    by: UserId,
    share: Option<ShareId>,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    Ok(exec_sql(
        tx,
        "UPDATE access_requests SET status = $1, decided_by_user_id = $2, decided_at = $3, share_id = $4, updated_at = $3 \
         WHERE provider_organization_id = $5 AND id = $6 AND status = 'pending'",
        vec![
            to.as_str().into(),
            by.as_uuid().into(),
            now.into(),
            share.map(|s| s.as_uuid()).into(),
            provider.as_uuid().into(),
            id.as_uuid().into(),
        ],
    )
    .await?
        == 1)
}
