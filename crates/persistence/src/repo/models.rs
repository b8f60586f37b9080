//! `models`: the public catalogue (`organization_id` NULL) and org-private models. Every
//! function on them takes a [`Scope`]. Reads see what the scope sees: an org the public
//! catalogue and its own models, Personal the public catalogue only. Writes go to the scope's
//! own catalogue: an org's models, or from Personal the public catalogue (which only platform
//! admins may write; the service checks that). The proxy's lookups read the public catalogue
//! only ([`find_public_by_name`], [`active_public`]).

use crate::repo::sql::{Page, Params, push_page};
use crate::repo::{corrupt, exec_sql, namespaces, query_all_sql, query_one_sql, row_lock};
use crate::{Constraint, Store, StoreError, Tag, Tx};
use inventiv_domain::{Activation, Flag, ModelId, OrgId, Scope, UserId};
use sea_orm::QueryResult;
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct ModelRecord {
    pub id: ModelId,
    /// None = public catalogue.
    pub organization_id: Option<OrgId>,
    pub organization_name: Option<String>,
    pub name: String,
    /// e.g. a Hugging Face repo id.
    pub model_id: String,
    pub required_vram_gb: i32,
    pub context_length: i32,
    pub is_active: bool,
    /// The two approvals of an org model (both off for a public model, which needs none).
    pub activation: Activation,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl ModelRecord {
    /// Whether the model may serve traffic: a public model always; an org model once both
    /// approvals are on (SPEC §1 v2).
    pub fn operational(&self) -> bool {
        self.activation.operational(self.organization_id.is_none())
    }
}

const SELECT: &str = "SELECT m.id, m.organization_id, o.name AS organization_name, m.name, m.model_id, \
     m.required_vram_gb, m.context_length, m.is_active, m.tech_activated_by, m.eco_activated_by, \
     m.created_at, m.updated_at \
     FROM models m LEFT JOIN organizations o ON o.id = m.organization_id";

fn record(row: QueryResult) -> Result<ModelRecord, StoreError> {
    Ok(ModelRecord {
        id: ModelId::from_uuid(row.try_get("", "id")?),
        organization_id: row
            .try_get::<Option<uuid::Uuid>>("", "organization_id")?
            .map(OrgId::from_uuid),
        organization_name: row.try_get("", "organization_name")?,
        name: row.try_get("", "name")?,
        model_id: row.try_get("", "model_id")?,
        required_vram_gb: row.try_get("", "required_vram_gb")?,
        context_length: row.try_get("", "context_length")?,
        is_active: row.try_get("", "is_active")?,
        activation: Activation {
            tech_by: row
                .try_get::<Option<uuid::Uuid>>("", "tech_activated_by")?
                .map(UserId::from_uuid),
            eco_by: row
                .try_get::<Option<uuid::Uuid>>("", "eco_activated_by")?
                .map(UserId::from_uuid),
        },
        created_at: row.try_get("", "created_at")?,
        updated_at: row.try_get("", "updated_at")?,
    })
}

/// The visibility filter of a scope, as SQL over alias `m`.
fn visible(scope: Scope, p: &mut Params) -> String {
    match scope {
        Scope::Org(org) => format!(
            "(m.organization_id IS NULL OR m.organization_id = {})",
            p.bind(org.as_uuid())
        ),
        Scope::Personal(_) => "m.organization_id IS NULL".to_owned(),
    }
}

/// The catalogue `scope` writes to: its org's, or (None) the public one.
fn catalogue(scope: Scope) -> Option<OrgId> {
    match scope {
        Scope::Org(org) => Some(org),
        Scope::Personal(_) => None,
    }
}

/// The condition of a write over columns prefixed by `alias`: exactly `scope`'s catalogue.
fn in_catalogue(scope: Scope, alias: &str, p: &mut Params) -> String {
    match catalogue(scope) {
        Some(org) => format!("{alias}organization_id = {}", p.bind(org.as_uuid())),
        None => format!("{alias}organization_id IS NULL"),
    }
}

/// Models visible in `scope`, ordered by id, after `after`.
pub async fn list<S: Store>(
    s: &S,
    scope: Scope,
    after: Option<ModelId>,
    limit: u64,
) -> Result<Vec<ModelRecord>, StoreError> {
    let mut p = Params::new();
    let mut sql = format!("{SELECT} WHERE {}", visible(scope, &mut p));
    let after = after.map(|id| id.as_uuid());
    push_page(&mut sql, &mut p, "m.id", Page::After(after), limit);
    query_all_sql(s, &sql, p.into_values())
        .await?
        .into_iter()
        .map(record)
        .collect()
}

/// A model visible in `scope` (None if absent or not visible there).
pub async fn find<S: Store>(
    s: &S,
    scope: Scope,
    id: ModelId,
) -> Result<Option<ModelRecord>, StoreError> {
    find_locked(s, scope, id, "").await
}

/// [`find`], locking the model's row until `tx` ends (PostgreSQL; a SQLite write transaction
/// holds the write lock already) with the lock its update takes anyway: what an edit decides
/// from and audits as its "before" is still the row when it writes.
pub async fn find_for_update(
    tx: &crate::Tx,
    scope: Scope,
    id: ModelId,
) -> Result<Option<ModelRecord>, StoreError> {
    let lock = row_lock(tx, " FOR NO KEY UPDATE OF m");
    find_locked(tx, scope, id, lock).await
}

async fn find_locked<S: Store>(
    s: &S,
    scope: Scope,
    id: ModelId,
    lock: &str,
) -> Result<Option<ModelRecord>, StoreError> {
    let mut p = Params::new();
    let sql = format!(
        "{SELECT} WHERE {} AND m.id = {}{lock}",
        visible(scope, &mut p),
        p.bind(id.as_uuid())
    );
    query_one_sql(s, &sql, p.into_values())
        .await?
        .map(record)
        .transpose()
}

/// The fields of a model a writer sets.
#[derive(Debug, Clone)]
pub struct ModelFields {
    pub name: String,
    pub model_id: String,
    pub required_vram_gb: i32,
    pub context_length: i32,
    pub is_active: bool,
}

/// A public model's `model_id` claims its namespace (SPEC §5.1); org models are never called
/// by name (only through an offering's `<slug>/<code>`), so they claim nothing.
async fn claim_namespace(
    tx: &Tx,
    scope: Scope,
    fields: &ModelFields,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    match (catalogue(scope), namespaces::namespace_of(&fields.model_id)) {
        (None, Some(namespace)) => namespaces::claim_public(tx, &namespace, now).await,
        _ => Ok(()),
    }
}

/// Creates a model in `scope`'s catalogue. A duplicate `model_id` in the same catalogue is
/// `Conflict(ModelOrgModelId | ModelPublicModelId)`; a public `model_id` in a namespace owned
/// by an org is `Conflict(ModelNamespace)`.
pub async fn insert(
    tx: &Tx,
    scope: Scope,
    id: ModelId,
    fields: &ModelFields,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    tx.mark(Tag::Routes);
    tx.mark(Tag::Models);
    claim_namespace(tx, scope, fields, now).await?;
    exec_sql(
        tx,
        "INSERT INTO models (id, organization_id, name, model_id, required_vram_gb, context_length, is_active, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        vec![
            id.as_uuid().into(),
            catalogue(scope).map(|o| o.as_uuid()).into(),
            fields.name.clone().into(),
            fields.model_id.clone().into(),
            fields.required_vram_gb.into(),
            fields.context_length.into(),
            fields.is_active.into(),
            now.into(),
        ],
    )
    .await?;
    Ok(())
}

/// Updates a model of `scope`'s catalogue; false if there is none with this id. Renaming a
/// public model into a namespace owned by an org is `Conflict(ModelNamespace)`.
pub async fn update(
    tx: &Tx,
    scope: Scope,
    id: ModelId,
    fields: &ModelFields,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    tx.mark(Tag::Routes);
    tx.mark(Tag::Models);
    claim_namespace(tx, scope, fields, now).await?;
    let mut p = Params::new();
    let sql = format!(
        "UPDATE models SET name = {}, model_id = {}, required_vram_gb = {}, context_length = {}, is_active = {}, \
         updated_at = {} WHERE id = {} AND {}",
        p.bind(fields.name.clone()),
        p.bind(fields.model_id.clone()),
        p.bind(fields.required_vram_gb),
        p.bind(fields.context_length),
        p.bind(fields.is_active),
        p.bind(now),
        p.bind(id.as_uuid()),
        in_catalogue(scope, "", &mut p)
    );
    Ok(exec_sql(tx, &sql, p.into_values()).await? == 1)
}

/// Deletes a model of `scope`'s catalogue; false if there is none with this id.
pub async fn delete(tx: &Tx, scope: Scope, id: ModelId) -> Result<bool, StoreError> {
    tx.mark(Tag::Routes);
    tx.mark(Tag::Models);
    let mut p = Params::new();
    let sql = format!(
        "DELETE FROM models WHERE id = {} AND {}",
        p.bind(id.as_uuid()),
        in_catalogue(scope, "", &mut p)
    );
    match exec_sql(tx, &sql, p.into_values()).await {
        Ok(deleted) => Ok(deleted == 1),
        // Only the keys pointing at `models` can refuse this DELETE (instances, offerings):
        // SQLite's unnamed violation is therefore this one (PostgreSQL's is mapped by name).
        Err(err) if crate::error::is_foreign_key(&err) => {
            Err(StoreError::Conflict(Constraint::ModelInUse))
        }
        Err(err) => Err(err),
    }
}

/// How many instances reference the model `id` of `scope`'s catalogue: (not terminated, all).
/// The instances of every tenant count — a public model is deployed by many — but only as
/// numbers, and only for a model of the caller's own catalogue ((0, 0) for any other).
pub async fn usage<S: Store>(s: &S, scope: Scope, id: ModelId) -> Result<(i64, i64), StoreError> {
    let mut p = Params::new();
    let sql = format!(
        "SELECT COALESCE(SUM(CASE WHEN i.status <> 'terminated' THEN 1 ELSE 0 END), 0) AS live, COUNT(i.id) AS total \
         FROM models m JOIN instances i ON i.model_id = m.id WHERE m.id = {} AND {}",
        p.bind(id.as_uuid()),
        in_catalogue(scope, "m.", &mut p)
    );
    let row = query_one_sql(s, &sql, p.into_values())
        .await?
        .ok_or_else(|| corrupt("instances", "aggregate returned no row"))?;
    Ok((row.try_get("", "live")?, row.try_get("", "total")?))
}

/// How many offerings (of any org) publish the model `id`.
pub async fn offerings_of<S: Store>(s: &S, id: ModelId) -> Result<i64, StoreError> {
    let row = query_one_sql(
        s,
        "SELECT COUNT(*) AS n FROM organization_models WHERE model_id = $1",
        vec![id.as_uuid().into()],
    )
    .await?
    .ok_or_else(|| corrupt("organization_models", "aggregate returned no row"))?;
    Ok(row.try_get("", "n")?)
}

/// The active public catalogue model with this upstream `model_id` (the proxy's fallback).
pub async fn find_public_by_name<S: Store>(
    s: &S,
    model_id: &str,
) -> Result<Option<ModelRecord>, StoreError> {
    query_one_sql(
        s,
        &format!(
            "{SELECT} WHERE m.organization_id IS NULL AND m.model_id = $1 AND m.is_active = TRUE"
        ),
        vec![model_id.into()],
    )
    .await?
    .map(record)
    .transpose()
}

/// Active public catalogue models.
pub async fn active_public<S: Store>(s: &S) -> Result<Vec<ModelRecord>, StoreError> {
    query_all_sql(
        s,
        &format!(
            "{SELECT} WHERE m.organization_id IS NULL AND m.is_active = TRUE ORDER BY m.model_id"
        ),
        vec![],
    )
    .await?
    .into_iter()
    .map(record)
    .collect()
}

/// Sets (`by` = Some) or clears one approval of the org model `id` of `org`. Marks the
/// routes: an org model's approvals decide whether its offerings carry traffic.
pub async fn set_flag(
    tx: &Tx,
    org: OrgId,
    id: ModelId,
    flag: Flag,
    by: Option<UserId>,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    tx.mark(Tag::Routes);
    tx.mark(Tag::Models);
    let mut p = Params::new();
    let condition = format!(
        "organization_id = {} AND id = {}",
        p.bind(org.as_uuid()),
        p.bind(id.as_uuid())
    );
    crate::repo::set_activation_flag(tx, "models", &condition, p, flag, by, now).await
}
