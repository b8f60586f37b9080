//! `organization_model_shares`: read and written from either side (provider or consumer org).
//! Every function takes the acting org first and matches it against the side it acts from.
//! Every write is a compare-and-set on what the domain decided from, so a concurrent change
//! makes it match no row instead of overwriting. The proxy asks for the live share of
//! (provider, consumer, offering).

use crate::repo::sql::{Page, Params, push_page};
use crate::repo::{corrupt, exec_sql, query_all_sql, query_one_sql};
use crate::{Store, StoreError, Tag, Tx};
use inventiv_domain::{
    Activation, Flag, OfferingId, OrgId, ShareId, ShareParty, ShareState, ShareStatus, UserId,
};
use sea_orm::QueryResult;
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct ShareRecord {
    pub id: ShareId,
    pub provider_organization_id: OrgId,
    pub provider_slug: String,
    pub provider_name: String,
    pub consumer_organization_id: OrgId,
    pub consumer_slug: String,
    pub consumer_name: String,
    pub offering_id: OfferingId,
    pub offering_code: String,
    /// The offering is published (`is_active`).
    pub offering_published: bool,
    /// The offering's own two approvals.
    pub offering_activation: Activation,
    /// The offering's model may serve traffic: a public model, or an org model with both of
    /// its approvals (SPEC §1 v2).
    pub offering_model_operational: bool,
    /// Status (as stored; `ShareState::effective` for a due expiry), versions, pauses, dates.
    pub state: ShareState,
    pub price_input_micros_per_1k: i64,
    pub price_output_micros_per_1k: i64,
    pub accepted_at: Option<OffsetDateTime>,
    /// The consumer's monthly ceiling; never shown to the provider.
    pub monthly_cap_micros: Option<i64>,
    /// The consumer's spend on this share this month, and the budget held for calls in
    /// flight (filled by [`with_spend`] for the consumer's view; 0 until then).
    pub spent_this_month_micros: i64,
    pub reserved_micros: i64,
    /// The provider's two approvals.
    pub activation: Activation,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const SELECT: &str = "SELECT s.id, s.provider_organization_id, p.slug AS provider_slug, p.name AS provider_name, \
     s.consumer_organization_id, c.slug AS consumer_slug, c.name AS consumer_name, s.organization_model_id, \
     f.code AS offering_code, f.is_active AS offering_published, f.tech_activated_by AS offering_tech_by, \
     f.eco_activated_by AS offering_eco_by, s.status, s.price_input_micros_per_1k, \
     s.price_output_micros_per_1k, s.starts_at, s.ends_at, s.tech_activated_by, s.eco_activated_by, s.created_at, s.updated_at, \
     s.contract_version, s.accepted_version, s.accepted_at, s.provider_paused, s.consumer_paused, s.monthly_cap_micros, \
     s.proposal_expires_at, m.organization_id AS model_organization_id, \
     m.tech_activated_by AS model_tech_by, m.eco_activated_by AS model_eco_by \
     FROM organization_model_shares s JOIN organizations p ON p.id = s.provider_organization_id \
     JOIN organizations c ON c.id = s.consumer_organization_id JOIN organization_models f ON f.id = s.organization_model_id \
     JOIN models m ON m.id = f.model_id";

fn record(row: QueryResult) -> Result<ShareRecord, StoreError> {
    let status: String = row.try_get("", "status")?;
    let uuid_opt = |col: &str| row.try_get::<Option<uuid::Uuid>>("", col);
    Ok(ShareRecord {
        id: ShareId::from_uuid(row.try_get("", "id")?),
        provider_organization_id: OrgId::from_uuid(row.try_get("", "provider_organization_id")?),
        provider_slug: row.try_get("", "provider_slug")?,
        provider_name: row.try_get("", "provider_name")?,
        consumer_organization_id: OrgId::from_uuid(row.try_get("", "consumer_organization_id")?),
        consumer_slug: row.try_get("", "consumer_slug")?,
        consumer_name: row.try_get("", "consumer_name")?,
        offering_id: OfferingId::from_uuid(row.try_get("", "organization_model_id")?),
        offering_code: row.try_get("", "offering_code")?,
        offering_published: row.try_get("", "offering_published")?,
        offering_activation: Activation {
            tech_by: uuid_opt("offering_tech_by")?.map(UserId::from_uuid),
            eco_by: uuid_opt("offering_eco_by")?.map(UserId::from_uuid),
        },
        offering_model_operational: Activation {
            tech_by: uuid_opt("model_tech_by")?.map(UserId::from_uuid),
            eco_by: uuid_opt("model_eco_by")?.map(UserId::from_uuid),
        }
        .operational(uuid_opt("model_organization_id")?.is_none()),
        state: ShareState {
            status: status
                .parse()
                .map_err(|e| corrupt("organization_model_shares.status", e))?,
            contract_version: row.try_get("", "contract_version")?,
            accepted_version: row.try_get("", "accepted_version")?,
            provider_paused: row.try_get("", "provider_paused")?,
            consumer_paused: row.try_get("", "consumer_paused")?,
            starts_at: row.try_get("", "starts_at")?,
            ends_at: row.try_get("", "ends_at")?,
            proposal_expires_at: row.try_get("", "proposal_expires_at")?,
        },
        price_input_micros_per_1k: row.try_get("", "price_input_micros_per_1k")?,
        price_output_micros_per_1k: row.try_get("", "price_output_micros_per_1k")?,
        accepted_at: row.try_get("", "accepted_at")?,
        monthly_cap_micros: row.try_get("", "monthly_cap_micros")?,
        spent_this_month_micros: 0,
        reserved_micros: 0,
        activation: Activation {
            tech_by: uuid_opt("tech_activated_by")?.map(UserId::from_uuid),
            eco_by: uuid_opt("eco_activated_by")?.map(UserId::from_uuid),
        },
        created_at: row.try_get("", "created_at")?,
        updated_at: row.try_get("", "updated_at")?,
    })
}

/// The column naming the org on `side` of a share.
fn side_column(side: ShareParty) -> &'static str {
    match side {
        ShareParty::Provider => "s.provider_organization_id",
        ShareParty::Consumer => "s.consumer_organization_id",
    }
}

/// What a proposal stores (the provider comes separately).
pub struct NewShare {
    pub id: ShareId,
    pub consumer: OrgId,
    pub offering: OfferingId,
    pub prices: (i64, i64),
    pub starts_at: OffsetDateTime,
    pub ends_at: Option<OffsetDateTime>,
    pub proposal_expires_at: Option<OffsetDateTime>,
    pub now: OffsetDateTime,
}

/// Stores `provider`'s proposal (version 1); a live one for the same triple is
/// `Conflict(ShareLive)`.
pub async fn insert(tx: &Tx, provider: OrgId, new: NewShare) -> Result<(), StoreError> {
    tx.mark(Tag::Routes);
    exec_sql(
        tx,
        "INSERT INTO organization_model_shares (id, provider_organization_id, consumer_organization_id, organization_model_id, \
             status, price_input_micros_per_1k, price_output_micros_per_1k, starts_at, ends_at, created_at, updated_at, \
             contract_version, provider_paused, consumer_paused, proposal_expires_at) \
         VALUES ($1, $2, $3, $4, 'proposed', $5, $6, $7, $8, $9, $9, 1, FALSE, FALSE, $10)",
        vec![
            new.id.as_uuid().into(),
            provider.as_uuid().into(),
            new.consumer.as_uuid().into(),
            new.offering.as_uuid().into(),
            new.prices.0.into(),
            new.prices.1.into(),
            new.starts_at.into(),
            new.ends_at.into(),
            new.now.into(),
            new.proposal_expires_at.into(),
        ],
    )
    .await?;
    Ok(())
}

/// Shares where `org` is on `side`, newest first.
pub async fn list<S: Store>(
    s: &S,
    org: OrgId,
    side: ShareParty,
    before: Option<ShareId>,
    limit: u64,
) -> Result<Vec<ShareRecord>, StoreError> {
    let mut p = Params::new();
    let mut sql = format!(
        "{SELECT} WHERE {} = {}",
        side_column(side),
        p.bind(org.as_uuid())
    );
    let before = before.map(|id| id.as_uuid());
    push_page(&mut sql, &mut p, "s.id", Page::Before(before), limit);
    query_all_sql(s, &sql, p.into_values())
        .await?
        .into_iter()
        .map(record)
        .collect()
}

/// A share where `org` is on `side`.
pub async fn find<S: Store>(
    s: &S,
    org: OrgId,
    side: ShareParty,
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

/// The live (proposed or active) share of (provider, consumer, offering), if any.
pub async fn live_for<S: Store>(
    s: &S,
    provider: OrgId,
    consumer: OrgId,
    offering: OfferingId,
) -> Result<Option<ShareRecord>, StoreError> {
    let sql = format!(
        "{SELECT} WHERE s.provider_organization_id = $1 AND s.consumer_organization_id = $2 \
         AND s.organization_model_id = $3 AND s.status IN ('proposed', 'active')"
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

/// All accepted shares received by `consumer` (for `/v1/models`).
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

/// Live shares where `org` is on either side (to find those due to expire).
pub async fn live_of<S: Store>(s: &S, org: OrgId) -> Result<Vec<ShareRecord>, StoreError> {
    let sql = format!(
        "{SELECT} WHERE (s.provider_organization_id = $1 OR s.consumer_organization_id = $1) \
         AND s.status IN ('proposed', 'active') ORDER BY s.id"
    );
    query_all_sql(s, &sql, vec![org.as_uuid().into()])
        .await?
        .into_iter()
        .map(record)
        .collect()
}

/// Live shares of one offering (an offering with any cannot be deleted).
pub async fn live_of_offering<S: Store>(
    s: &S,
    provider: OrgId,
    offering: OfferingId,
) -> Result<Vec<ShareRecord>, StoreError> {
    let sql = format!(
        "{SELECT} WHERE s.provider_organization_id = $1 AND s.organization_model_id = $2 \
         AND s.status IN ('proposed', 'active') ORDER BY s.id"
    );
    query_all_sql(
        s,
        &sql,
        vec![provider.as_uuid().into(), offering.as_uuid().into()],
    )
    .await?
    .into_iter()
    .map(record)
    .collect()
}

/// Compare-and-set on the status of a share `org` is a party to: from `from` to the terminal
/// `to` (decline, revoke, expire).
pub async fn set_status(
    tx: &Tx,
    org: OrgId,
    id: ShareId,
    from: ShareStatus,
    to: ShareStatus,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    tx.mark(Tag::Routes);
    Ok(exec_sql(
        tx,
        "UPDATE organization_model_shares SET status = $1, updated_at = $2 \
         WHERE (provider_organization_id = $3 OR consumer_organization_id = $3) AND id = $4 AND status = $5",
        vec![
            to.as_str().into(),
            now.into(),
            org.as_uuid().into(),
            id.as_uuid().into(),
            from.as_str().into(),
        ],
    )
    .await?
        == 1)
}

/// The consumer's acceptance, one compare-and-set: only a `proposed` share still at
/// `version` becomes active, so an acceptance racing a change of terms loses.
pub async fn accept(
    tx: &Tx,
    consumer: OrgId,
    id: ShareId,
    version: i64,
    by: UserId,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    tx.mark(Tag::Routes);
    Ok(exec_sql(
        tx,
        "UPDATE organization_model_shares SET status = 'active', accepted_version = contract_version, \
             accepted_at = $1, accepted_by = $2, proposal_expires_at = NULL, updated_at = $1 \
         WHERE consumer_organization_id = $3 AND id = $4 AND status = 'proposed' AND contract_version = $5",
        vec![
            now.into(),
            by.as_uuid().into(),
            consumer.as_uuid().into(),
            id.as_uuid().into(),
            version.into(),
        ],
    )
    .await?
        == 1)
}

/// Sets or lifts the pause flag of `org`'s side of a share (compare-and-set on that flag and a
/// live status).
pub async fn set_paused(
    tx: &Tx,
    org: OrgId,
    side: ShareParty,
    id: ShareId,
    paused: bool,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    tx.mark(Tag::Routes);
    let (party, column) = match side {
        ShareParty::Provider => ("provider_organization_id", "provider_paused"),
        ShareParty::Consumer => ("consumer_organization_id", "consumer_paused"),
    };
    Ok(exec_sql(
        tx,
        &format!(
            "UPDATE organization_model_shares SET {column} = $1, updated_at = $2 \
             WHERE {party} = $3 AND id = $4 AND {column} = $5 AND status IN ('proposed', 'active')"
        ),
        vec![
            paused.into(),
            now.into(),
            org.as_uuid().into(),
            id.as_uuid().into(),
            (!paused).into(),
        ],
    )
    .await?
        == 1)
}

/// New terms from the provider: prices and end, the next contract version, back to
/// `proposed` with a fresh answer deadline, economic approval cleared. Compare-and-set on the
/// version the change was computed from.
pub async fn set_terms(
    tx: &Tx,
    provider: OrgId,
    id: ShareId,
    from_version: i64,
    prices: (i64, i64),
    next: &ShareState,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    tx.mark(Tag::Routes);
    Ok(exec_sql(
        tx,
        "UPDATE organization_model_shares SET price_input_micros_per_1k = $1, price_output_micros_per_1k = $2, \
             ends_at = $3, contract_version = $4, status = 'proposed', proposal_expires_at = $5, \
             eco_activated_by = NULL, eco_activated_at = NULL, updated_at = $6 \
         WHERE provider_organization_id = $7 AND id = $8 AND contract_version = $9 AND status IN ('proposed', 'active')",
        vec![
            prices.0.into(),
            prices.1.into(),
            next.ends_at.into(),
            next.contract_version.into(),
            next.proposal_expires_at.into(),
            now.into(),
            provider.as_uuid().into(),
            id.as_uuid().into(),
            from_version.into(),
        ],
    )
    .await?
        == 1)
}

/// The consumer's monthly cap (`None` = no cap).
pub async fn set_cap(
    tx: &Tx,
    consumer: OrgId,
    id: ShareId,
    cap: Option<i64>,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    tx.mark(Tag::Routes);
    Ok(exec_sql(
        tx,
        "UPDATE organization_model_shares SET monthly_cap_micros = $1, updated_at = $2 \
         WHERE consumer_organization_id = $3 AND id = $4",
        vec![
            cap.into(),
            now.into(),
            consumer.as_uuid().into(),
            id.as_uuid().into(),
        ],
    )
    .await?
        == 1)
}

pub async fn set_flag(
    tx: &Tx,
    provider: OrgId,
    id: ShareId,
    flag: Flag,
    by: Option<UserId>,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    tx.mark(Tag::Routes);
    let mut p = Params::new();
    let condition = format!(
        "provider_organization_id = {} AND id = {}",
        p.bind(provider.as_uuid()),
        p.bind(id.as_uuid())
    );
    crate::repo::set_activation_flag(
        tx,
        "organization_model_shares",
        &condition,
        p,
        flag,
        by,
        now,
    )
    .await
}

/// Fills in this month's spend of the shares `viewer` receives (the consumer's figures: never
/// for the provider's view).
pub async fn with_spend<S: Store>(
    s: &S,
    viewer: OrgId,
    shares: &mut [ShareRecord],
    month: i32,
) -> Result<(), StoreError> {
    use crate::repo::spend::{SubjectKind, counters_of};
    let ids: Vec<uuid::Uuid> = shares
        .iter()
        .filter(|sh| sh.consumer_organization_id == viewer)
        .map(|sh| sh.id.as_uuid())
        .collect();
    let spend = counters_of(s, SubjectKind::Share, &ids, month).await?;
    for share in shares.iter_mut() {
        if share.consumer_organization_id != viewer {
            continue;
        }
        if let Some((spent, leased)) = spend.get(&share.id.as_uuid()) {
            share.spent_this_month_micros = *spent;
            share.reserved_micros = (*leased).max(0);
        }
    }
    Ok(())
}
