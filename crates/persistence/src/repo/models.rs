//! `models`: the public catalogue (`organization_id` NULL) and org-private models.
//! Reads take a [`Scope`]: an org sees the public catalogue and its own models; Personal sees
//! the public catalogue only.

use crate::repo::{corrupt, exec_sql, namespaces, query_all_sql, query_one_sql};
use crate::{Constraint, Store, StoreError};
use inventiv_domain::{ModelId, OrgId, Scope};
use sea_orm::{QueryResult, Value};
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
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const SELECT: &str = "SELECT m.id, m.organization_id, o.name AS organization_name, m.name, m.model_id, \
     m.required_vram_gb, m.context_length, m.is_active, m.created_at, m.updated_at \
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
        created_at: row.try_get("", "created_at")?,
        updated_at: row.try_get("", "updated_at")?,
    })
}

/// The visibility filter of a scope, as SQL over alias `m`, with its parameter.
fn visible(scope: Scope, values: &mut Vec<Value>) -> String {
    match scope {
        Scope::Org(org) => {
            values.push(org.as_uuid().into());
            format!(
                "(m.organization_id IS NULL OR m.organization_id = ${})",
                values.len()
            )
        }
        Scope::Personal(_) => "m.organization_id IS NULL".to_owned(),
    }
}

/// Models visible in `scope`, ordered by id, after `after`.
pub async fn list<S: Store>(
    s: &S,
    scope: Scope,
    after: Option<ModelId>,
    limit: u64,
) -> Result<Vec<ModelRecord>, StoreError> {
    let mut values = Vec::new();
    let mut sql = format!("{SELECT} WHERE {}", visible(scope, &mut values));
    if let Some(after) = after {
        values.push(after.as_uuid().into());
        sql.push_str(&format!(" AND m.id > ${}", values.len()));
    }
    sql.push_str(&format!(" ORDER BY m.id LIMIT {limit}"));
    query_all_sql(s, &sql, values)
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
    let mut values = Vec::new();
    let filter = visible(scope, &mut values);
    values.push(id.as_uuid().into());
    let sql = format!("{SELECT} WHERE {filter} AND m.id = ${}", values.len());
    query_one_sql(s, &sql, values)
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
async fn claim_namespace<S: Store>(
    s: &S,
    owner: Option<OrgId>,
    fields: &ModelFields,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    match (owner, namespaces::namespace_of(&fields.model_id)) {
        (None, Some(namespace)) => namespaces::claim_public(s, &namespace, now).await,
        _ => Ok(()),
    }
}

/// Creates a model owned by `owner` (None = public). A duplicate `model_id` in the same
/// catalogue is `Conflict(ModelOrgModelId | ModelPublicModelId)`; a public `model_id` in a
/// namespace owned by an org is `Conflict(ModelNamespace)`.
pub async fn insert<S: Store>(
    s: &S,
    owner: Option<OrgId>,
    id: ModelId,
    fields: &ModelFields,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    claim_namespace(s, owner, fields, now).await?;
    exec_sql(
        s,
        "INSERT INTO models (id, organization_id, name, model_id, required_vram_gb, context_length, is_active, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        vec![
            id.as_uuid().into(),
            owner.map(|o| o.as_uuid()).into(),
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

/// The ownership condition of a write: exactly the catalogue `owner` (None = public).
fn owned(owner: Option<OrgId>, values: &mut Vec<Value>) -> String {
    match owner {
        Some(org) => {
            values.push(org.as_uuid().into());
            format!("organization_id = ${}", values.len())
        }
        None => "organization_id IS NULL".to_owned(),
    }
}

/// Updates a model of catalogue `owner`; false if there is none with this id. Renaming a
/// public model into a namespace owned by an org is `Conflict(ModelNamespace)`.
pub async fn update<S: Store>(
    s: &S,
    owner: Option<OrgId>,
    id: ModelId,
    fields: &ModelFields,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    claim_namespace(s, owner, fields, now).await?;
    let mut values: Vec<Value> = vec![
        fields.name.clone().into(),
        fields.model_id.clone().into(),
        fields.required_vram_gb.into(),
        fields.context_length.into(),
        fields.is_active.into(),
        now.into(),
        id.as_uuid().into(),
    ];
    let condition = owned(owner, &mut values);
    let sql = format!(
        "UPDATE models SET name = $1, model_id = $2, required_vram_gb = $3, context_length = $4, is_active = $5, \
         updated_at = $6 WHERE id = $7 AND {condition}"
    );
    Ok(exec_sql(s, &sql, values).await? == 1)
}

/// Deletes a model of catalogue `owner`; false if there is none with this id.
pub async fn delete<S: Store>(
    s: &S,
    owner: Option<OrgId>,
    id: ModelId,
) -> Result<bool, StoreError> {
    let mut values: Vec<Value> = vec![id.as_uuid().into()];
    let condition = owned(owner, &mut values);
    match exec_sql(
        s,
        &format!("DELETE FROM models WHERE id = $1 AND {condition}"),
        values,
    )
    .await
    {
        Ok(deleted) => Ok(deleted == 1),
        // Only the keys pointing at `models` can refuse this DELETE (instances, offerings):
        // SQLite's unnamed violation is therefore this one (PostgreSQL's is mapped by name).
        Err(err) if crate::error::is_foreign_key(&err) => {
            Err(StoreError::Conflict(Constraint::ModelInUse))
        }
        Err(err) => Err(err),
    }
}

/// How many instances reference the model: (not terminated, all).
pub async fn usage<S: Store>(s: &S, id: ModelId) -> Result<(i64, i64), StoreError> {
    let row = query_one_sql(
        s,
        "SELECT COALESCE(SUM(CASE WHEN status <> 'terminated' THEN 1 ELSE 0 END), 0) AS live, COUNT(*) AS total \
         FROM instances WHERE model_id = $1",
        vec![id.as_uuid().into()],
    )
    .await?
    .ok_or_else(|| corrupt("instances", "aggregate returned no row"))?;
    Ok((row.try_get("", "live")?, row.try_get("", "total")?))
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
