//! The marketplace (SPEC §4.7): other orgs' published public offerings. Every function takes
//! the viewing org first and never returns that org's own offerings.

use crate::repo::sql::{Page, Params, push_page};
use crate::repo::{query_all_sql, query_one_sql};
use crate::{Store, StoreError};
use inventiv_domain::offering::Visibility;
use inventiv_domain::{Activation, OfferingId, OrgId, UserId};
use sea_orm::QueryResult;

/// A published public offering as the marketplace shows it.
#[derive(Debug, Clone)]
pub struct ListingRecord {
    pub id: OfferingId,
    pub provider_organization_id: OrgId,
    pub provider_slug: String,
    pub provider_name: String,
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    pub default_price_input_micros_per_1k: i64,
    pub default_price_output_micros_per_1k: i64,
    /// The offering's own two approvals.
    pub activation: Activation,
    /// Its model's approvals when it is an org model (None: a public model, which needs none).
    pub model_activation: Option<Activation>,
}

const SELECT: &str = "SELECT f.id, f.organization_id, o.slug AS provider_slug, o.name AS provider_name, f.code, f.name, \
     f.description, f.default_price_input_micros_per_1k, f.default_price_output_micros_per_1k, \
     f.tech_activated_by, f.eco_activated_by, m.organization_id AS model_organization_id, \
     m.tech_activated_by AS model_tech_activated_by, m.eco_activated_by AS model_eco_activated_by \
     FROM organization_models f JOIN organizations o ON o.id = f.organization_id JOIN models m ON m.id = f.model_id";

fn record(row: QueryResult) -> Result<ListingRecord, StoreError> {
    let uuid_opt = |col: &str| row.try_get::<Option<uuid::Uuid>>("", col);
    Ok(ListingRecord {
        id: OfferingId::from_uuid(row.try_get("", "id")?),
        provider_organization_id: OrgId::from_uuid(row.try_get("", "organization_id")?),
        provider_slug: row.try_get("", "provider_slug")?,
        provider_name: row.try_get("", "provider_name")?,
        code: row.try_get("", "code")?,
        name: row.try_get("", "name")?,
        description: row.try_get("", "description")?,
        default_price_input_micros_per_1k: row.try_get("", "default_price_input_micros_per_1k")?,
        default_price_output_micros_per_1k: row
            .try_get("", "default_price_output_micros_per_1k")?,
        activation: Activation {
            tech_by: uuid_opt("tech_activated_by")?.map(UserId::from_uuid),
            eco_by: uuid_opt("eco_activated_by")?.map(UserId::from_uuid),
        },
        model_activation: crate::repo::offerings::model_activation(&row)?,
    })
}

/// The condition "listed for `viewer`": published, public, another org's.
fn listed_for(viewer: OrgId, p: &mut Params) -> String {
    format!(
        "f.organization_id <> {} AND f.visibility = {} AND f.is_active = {}",
        p.bind(viewer.as_uuid()),
        p.bind(Visibility::Public.as_str()),
        p.bind(true)
    )
}

/// What `viewer` sees in the marketplace, ordered by offering id.
pub async fn list<S: Store>(
    s: &S,
    viewer: OrgId,
    after: Option<OfferingId>,
    limit: u64,
) -> Result<Vec<ListingRecord>, StoreError> {
    let mut p = Params::new();
    let mut sql = format!("{SELECT} WHERE {}", listed_for(viewer, &mut p));
    push_page(
        &mut sql,
        &mut p,
        "f.id",
        Page::After(after.map(|id| id.as_uuid())),
        limit,
    );
    query_all_sql(s, &sql, p.into_values())
        .await?
        .into_iter()
        .map(record)
        .collect()
}

/// Offering `id` if `viewer` sees it in the marketplace (None: absent, private, unpublished,
/// or `viewer`'s own).
pub async fn find<S: Store>(
    s: &S,
    viewer: OrgId,
    id: OfferingId,
) -> Result<Option<ListingRecord>, StoreError> {
    let mut p = Params::new();
    let listed = listed_for(viewer, &mut p);
    let sql = format!(
        "{SELECT} WHERE {listed} AND f.id = {}",
        p.bind(id.as_uuid())
    );
    query_one_sql(s, &sql, p.into_values())
        .await?
        .map(record)
        .transpose()
}
