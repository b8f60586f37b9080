//! `organization_models` (offerings): every function takes the owning org first, except the
//! proxy's lookup by `(org_slug, code)` ([`find_by_name`]), whose result is then checked
//! against the caller's shares.

use crate::repo::sql::{Page, Params, push_page};
use crate::repo::{exec_sql, query_all_sql, query_one_sql};
use crate::{Store, StoreError, Tag, Tx};
use inventiv_domain::{Activation, Flag, ModelId, OfferingId, OrgId, UserId};
use sea_orm::QueryResult;
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct OfferingRecord {
    pub id: OfferingId,
    pub organization_id: OrgId,
    pub organization_slug: String,
    pub model_id: ModelId,
    /// The underlying model's id at the upstream (e.g. a Hugging Face repo id).
    pub upstream_model: String,
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    pub visibility: String,
    pub is_active: bool,
    pub default_price_input_micros_per_1k: i64,
    pub default_price_output_micros_per_1k: i64,
    pub activation: Activation,
    /// The approvals of the underlying model when it is an org model (None: a public model,
    /// which needs none).
    pub model_activation: Option<Activation>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl OfferingRecord {
    /// Whether the underlying model may serve traffic (an org model needs both approvals).
    pub fn model_operational(&self) -> bool {
        self.model_activation.is_none_or(|a| a.operational(false))
    }

    /// Whether the offering carries traffic as far as its approvals go: its own two, and its
    /// org model's (SPEC §1 v2: a non-operational org model serves no traffic).
    pub fn operational(&self) -> bool {
        self.activation.operational(false) && self.model_operational()
    }
}

const SELECT: &str = "SELECT f.id, f.organization_id, o.slug AS organization_slug, f.model_id, m.model_id AS upstream_model, \
     f.code, f.name, f.description, f.visibility, f.is_active, f.default_price_input_micros_per_1k, \
     f.default_price_output_micros_per_1k, f.tech_activated_by, f.eco_activated_by, f.created_at, f.updated_at, \
     m.organization_id AS model_organization_id, m.tech_activated_by AS model_tech_activated_by, \
     m.eco_activated_by AS model_eco_activated_by \
     FROM organization_models f JOIN organizations o ON o.id = f.organization_id JOIN models m ON m.id = f.model_id";

/// The approvals of an offering's model when it is an org model (None: a public model, which
/// needs none), from the `model_*` columns both the offerings' and the marketplace's queries
/// select.
pub(crate) fn model_activation(row: &QueryResult) -> Result<Option<Activation>, StoreError> {
    let uuid_opt = |col: &str| row.try_get::<Option<uuid::Uuid>>("", col);
    Ok(match uuid_opt("model_organization_id")? {
        None => None,
        Some(_) => Some(Activation {
            tech_by: uuid_opt("model_tech_activated_by")?.map(UserId::from_uuid),
            eco_by: uuid_opt("model_eco_activated_by")?.map(UserId::from_uuid),
        }),
    })
}

fn record(row: QueryResult) -> Result<OfferingRecord, StoreError> {
    let uuid_opt = |col: &str| row.try_get::<Option<uuid::Uuid>>("", col);
    Ok(OfferingRecord {
        id: OfferingId::from_uuid(row.try_get("", "id")?),
        organization_id: OrgId::from_uuid(row.try_get("", "organization_id")?),
        organization_slug: row.try_get("", "organization_slug")?,
        model_id: ModelId::from_uuid(row.try_get("", "model_id")?),
        upstream_model: row.try_get("", "upstream_model")?,
        code: row.try_get("", "code")?,
        name: row.try_get("", "name")?,
        description: row.try_get("", "description")?,
        visibility: row.try_get("", "visibility")?,
        is_active: row.try_get("", "is_active")?,
        default_price_input_micros_per_1k: row.try_get("", "default_price_input_micros_per_1k")?,
        default_price_output_micros_per_1k: row
            .try_get("", "default_price_output_micros_per_1k")?,
        activation: Activation {
            tech_by: uuid_opt("tech_activated_by")?.map(UserId::from_uuid),
            eco_by: uuid_opt("eco_activated_by")?.map(UserId::from_uuid),
        },
        model_activation: model_activation(&row)?,
        created_at: row.try_get("", "created_at")?,
        updated_at: row.try_get("", "updated_at")?,
    })
}

/// The fields an owner/admin sets.
#[derive(Debug, Clone)]
pub struct OfferingFields {
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    pub visibility: String,
    pub is_active: bool,
}

pub async fn insert(
    tx: &Tx,
    org: OrgId,
    id: OfferingId,
    model: ModelId,
    fields: &OfferingFields,
    prices: (i64, i64),
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    tx.mark(Tag::Routes);
    exec_sql(
        tx,
        "INSERT INTO organization_models (id, organization_id, model_id, code, name, description, visibility, is_active, \
             default_price_input_micros_per_1k, default_price_output_micros_per_1k, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
        vec![
            id.as_uuid().into(),
            org.as_uuid().into(),
            model.as_uuid().into(),
            fields.code.clone().into(),
            fields.name.clone().into(),
            fields.description.clone().into(),
            fields.visibility.clone().into(),
            fields.is_active.into(),
            prices.0.into(),
            prices.1.into(),
            now.into(),
        ],
    )
    .await?;
    Ok(())
}

/// Offerings of `org`, ordered by id.
pub async fn list<S: Store>(
    s: &S,
    org: OrgId,
    after: Option<OfferingId>,
    limit: u64,
) -> Result<Vec<OfferingRecord>, StoreError> {
    let mut p = Params::new();
    let mut sql = format!(
        "{SELECT} WHERE f.organization_id = {}",
        p.bind(org.as_uuid())
    );
    let after = after.map(|id| id.as_uuid());
    push_page(&mut sql, &mut p, "f.id", Page::After(after), limit);
    query_all_sql(s, &sql, p.into_values())
        .await?
        .into_iter()
        .map(record)
        .collect()
}

/// An offering of `org`.
pub async fn find<S: Store>(
    s: &S,
    org: OrgId,
    id: OfferingId,
) -> Result<Option<OfferingRecord>, StoreError> {
    query_one_sql(
        s,
        &format!("{SELECT} WHERE f.organization_id = $1 AND f.id = $2"),
        vec![org.as_uuid().into(), id.as_uuid().into()],
    )
    .await?
    .map(record)
    .transpose()
}

/// The offering published as `<slug>/<code>`, whoever owns it: the proxy's name resolution,
/// which then checks it against the caller's shares.
pub async fn find_by_name<S: Store>(
    s: &S,
    slug: &str,
    code: &str,
) -> Result<Option<OfferingRecord>, StoreError> {
    query_one_sql(
        s,
        &format!("{SELECT} WHERE o.slug = $1 AND f.code = $2"),
        vec![slug.into(), code.into()],
    )
    .await?
    .map(record)
    .transpose()
}

/// Replaces the descriptive fields.
pub async fn update_fields(
    tx: &Tx,
    org: OrgId,
    id: OfferingId,
    f: &OfferingFields,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    tx.mark(Tag::Routes);
    Ok(exec_sql(
        tx,
        "UPDATE organization_models SET code = $1, name = $2, description = $3, visibility = $4, is_active = $5, updated_at = $6 \
         WHERE organization_id = $7 AND id = $8",
        vec![
            f.code.clone().into(),
            f.name.clone().into(),
            f.description.clone().into(),
            f.visibility.clone().into(),
            f.is_active.into(),
            now.into(),
            org.as_uuid().into(),
            id.as_uuid().into(),
        ],
    )
    .await?
        == 1)
}

/// Sets the default prices and clears the economic approval (a new price needs a new one).
pub async fn set_prices(
    tx: &Tx,
    org: OrgId,
    id: OfferingId,
    prices: (i64, i64),
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    tx.mark(Tag::Routes);
    Ok(exec_sql(
        tx,
        "UPDATE organization_models SET default_price_input_micros_per_1k = $1, default_price_output_micros_per_1k = $2, \
             eco_activated_by = NULL, eco_activated_at = NULL, updated_at = $3 WHERE organization_id = $4 AND id = $5",
        vec![prices.0.into(), prices.1.into(), now.into(), org.as_uuid().into(), id.as_uuid().into()],
    )
    .await?
        == 1)
}

pub async fn set_flag(
    tx: &Tx,
    org: OrgId,
    id: OfferingId,
    flag: Flag,
    by: Option<UserId>,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    tx.mark(Tag::Routes);
    let mut p = Params::new();
    let condition = format!(
        "organization_id = {} AND id = {}",
        p.bind(org.as_uuid()),
        p.bind(id.as_uuid())
    );
    crate::repo::set_activation_flag(tx, "organization_models", &condition, p, flag, by, now).await
}

/// Deletes an offering of `org` (its ended shares go with it: the usage rows, which have no
/// foreign keys, and the audit trail keep the history).
pub async fn delete(tx: &Tx, org: OrgId, id: OfferingId) -> Result<bool, StoreError> {
    tx.mark(Tag::Routes);
    Ok(exec_sql(
        tx,
        "DELETE FROM organization_models WHERE organization_id = $1 AND id = $2",
        vec![org.as_uuid().into(), id.as_uuid().into()],
    )
    .await?
        == 1)
}

/// Locks an offering's row until the end of `tx` (PostgreSQL; SQLite's write transactions are
/// serialized already).
pub async fn lock(tx: &crate::Tx, org: OrgId, id: OfferingId) -> Result<(), StoreError> {
    if tx.backend() == crate::Backend::Postgres {
        query_one_sql(
            tx,
            "SELECT id FROM organization_models WHERE organization_id = $1 AND id = $2 FOR UPDATE",
            vec![org.as_uuid().into(), id.as_uuid().into()],
        )
        .await?;
    }
    Ok(())
}
