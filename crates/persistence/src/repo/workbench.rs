//! `workbench_projects`, `workbench_runs`, `workbench_messages` (SPEC §4.8): read through a
//! [`Scope`] and a viewer, changed through a scope and an owner.
//!
//! What a viewer sees in its scope is the query form of `inventiv_domain::workbench::can_see`:
//! its own rows, plus the rows its colleagues share with the org. Writes name the owner in their
//! WHERE clause (`ensure_owner` in SQL), so a colleague's id can never change another's row
//! even if a caller forgot the domain check. Messages belong to a run; their functions take a
//! run id the caller has already found in its scope.

use crate::repo::sql::{Page, Params, owned_by, push_page};
use crate::repo::{exec_sql, query_all_sql, query_one_sql, row_lock};
use crate::{Store, StoreError, Tx};
use inventiv_domain::{
    OrgId, Scope, UsageId, UserId, WorkbenchMessageId, WorkbenchProjectId, WorkbenchRunId,
};
use sea_orm::QueryResult;
use time::OffsetDateTime;

/// The rows of `scope` that `viewer` sees (columns prefixed by `alias`).
fn visible(scope: Scope, viewer: UserId, alias: &str, p: &mut Params) -> String {
    let scoped = owned_by(
        scope,
        &format!("{alias}organization_id"),
        &format!("{alias}owner_user_id"),
        p,
    );
    format!(
        "{scoped} AND ({alias}owner_user_id = {} OR {alias}shared_with_org = {})",
        p.bind(viewer.as_uuid()),
        p.bind(true)
    )
}

/// The rows of `scope` that `owner` owns.
fn owned(scope: Scope, owner: UserId, p: &mut Params) -> String {
    let scoped = owned_by(scope, "organization_id", "owner_user_id", p);
    format!("{scoped} AND owner_user_id = {}", p.bind(owner.as_uuid()))
}

fn org_of(scope: Scope) -> Option<uuid::Uuid> {
    match scope {
        Scope::Org(org) => Some(org.as_uuid()),
        Scope::Personal(_) => None,
    }
}

fn org_column(row: &QueryResult) -> Result<Option<OrgId>, StoreError> {
    Ok(row
        .try_get::<Option<uuid::Uuid>>("", "organization_id")?
        .map(OrgId::from_uuid))
}

// --- Projects ----------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct ProjectRecord {
    pub id: WorkbenchProjectId,
    pub organization_id: Option<OrgId>,
    pub owner_user_id: UserId,
    pub name: String,
    pub description: Option<String>,
    pub shared_with_org: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const PROJECT: &str = "SELECT id, organization_id, owner_user_id, name, description, shared_with_org, \
     created_at, updated_at FROM workbench_projects";

fn project(row: QueryResult) -> Result<ProjectRecord, StoreError> {
    Ok(ProjectRecord {
        id: WorkbenchProjectId::from_uuid(row.try_get("", "id")?),
        organization_id: org_column(&row)?,
        owner_user_id: UserId::from_uuid(row.try_get("", "owner_user_id")?),
        name: row.try_get("", "name")?,
        description: row.try_get("", "description")?,
        shared_with_org: row.try_get("", "shared_with_org")?,
        created_at: row.try_get("", "created_at")?,
        updated_at: row.try_get("", "updated_at")?,
    })
}

/// What a project holds besides its scope, owner and times.
#[derive(Debug, Clone)]
pub struct ProjectFields {
    pub name: String,
    pub description: Option<String>,
    pub shared_with_org: bool,
}

pub async fn insert_project(
    tx: &Tx,
    scope: Scope,
    owner: UserId,
    id: WorkbenchProjectId,
    fields: &ProjectFields,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    exec_sql(
        tx,
        "INSERT INTO workbench_projects (id, organization_id, owner_user_id, name, description, shared_with_org, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        vec![
            id.as_uuid().into(),
            org_of(scope).into(),
            owner.as_uuid().into(),
            fields.name.clone().into(),
            fields.description.clone().into(),
            fields.shared_with_org.into(),
            now.into(),
        ],
    )
    .await?;
    Ok(())
}

/// The projects of `scope` that `viewer` sees, newest first.
pub async fn list_projects<S: Store>(
    s: &S,
    scope: Scope,
    viewer: UserId,
    before: Option<WorkbenchProjectId>,
    limit: u64,
) -> Result<Vec<ProjectRecord>, StoreError> {
    let mut p = Params::new();
    let mut sql = format!("{PROJECT} WHERE {}", visible(scope, viewer, "", &mut p));
    push_page(
        &mut sql,
        &mut p,
        "id",
        Page::Before(before.map(|id| id.as_uuid())),
        limit,
    );
    query_all_sql(s, &sql, p.into_values())
        .await?
        .into_iter()
        .map(project)
        .collect()
}

/// A project of `scope` that `viewer` sees.
pub async fn find_project<S: Store>(
    s: &S,
    scope: Scope,
    viewer: UserId,
    id: WorkbenchProjectId,
) -> Result<Option<ProjectRecord>, StoreError> {
    find_project_locked(s, scope, viewer, id, "").await
}

/// [`find_project`], locking the row until `tx` ends (PostgreSQL; a SQLite write transaction holds
/// the write lock already): an edit merges the fields it leaves alone, and decides whether it
/// shares or unshares, from the row as it stays until it writes.
pub async fn find_project_for_update(
    tx: &Tx,
    scope: Scope,
    viewer: UserId,
    id: WorkbenchProjectId,
) -> Result<Option<ProjectRecord>, StoreError> {
    let lock = row_lock(tx, " FOR NO KEY UPDATE");
    find_project_locked(tx, scope, viewer, id, lock).await
}

async fn find_project_locked<S: Store>(
    s: &S,
    scope: Scope,
    viewer: UserId,
    id: WorkbenchProjectId,
    lock: &str,
) -> Result<Option<ProjectRecord>, StoreError> {
    let mut p = Params::new();
    let sql = format!(
        "{PROJECT} WHERE {} AND id = {}{lock}",
        visible(scope, viewer, "", &mut p),
        p.bind(id.as_uuid())
    );
    query_one_sql(s, &sql, p.into_values())
        .await?
        .map(project)
        .transpose()
}

/// Replaces the fields of `owner`'s project; false if it is not theirs (or absent).
pub async fn update_project(
    tx: &Tx,
    scope: Scope,
    owner: UserId,
    id: WorkbenchProjectId,
    fields: &ProjectFields,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let mut p = Params::new();
    let sql = format!(
        "UPDATE workbench_projects SET name = {}, description = {}, shared_with_org = {}, updated_at = {} \
         WHERE id = {} AND {}",
        p.bind(fields.name.clone()),
        p.bind(fields.description.clone()),
        p.bind(fields.shared_with_org),
        p.bind(now),
        p.bind(id.as_uuid()),
        owned(scope, owner, &mut p)
    );
    Ok(exec_sql(tx, &sql, p.into_values()).await? == 1)
}

/// Deletes `owner`'s project (its runs stay, outside any project); false if not theirs.
pub async fn delete_project(
    tx: &Tx,
    scope: Scope,
    owner: UserId,
    id: WorkbenchProjectId,
) -> Result<bool, StoreError> {
    let mut p = Params::new();
    let sql = format!(
        "DELETE FROM workbench_projects WHERE id = {} AND {}",
        p.bind(id.as_uuid()),
        owned(scope, owner, &mut p)
    );
    Ok(exec_sql(tx, &sql, p.into_values()).await? == 1)
}

// --- Runs --------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct RunRecord {
    pub id: WorkbenchRunId,
    pub organization_id: Option<OrgId>,
    pub owner_user_id: UserId,
    pub project_id: Option<WorkbenchProjectId>,
    pub title: String,
    pub model: String,
    pub shared_with_org: bool,
    pub message_count: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const RUN: &str = "SELECT r.id, r.organization_id, r.owner_user_id, r.project_id, r.title, r.model, \
     r.shared_with_org, r.created_at, r.updated_at, \
     (SELECT COUNT(*) FROM workbench_messages m WHERE m.run_id = r.id) AS message_count \
     FROM workbench_runs r";

fn run(row: QueryResult) -> Result<RunRecord, StoreError> {
    Ok(RunRecord {
        id: WorkbenchRunId::from_uuid(row.try_get("", "id")?),
        organization_id: org_column(&row)?,
        owner_user_id: UserId::from_uuid(row.try_get("", "owner_user_id")?),
        project_id: row
            .try_get::<Option<uuid::Uuid>>("", "project_id")?
            .map(WorkbenchProjectId::from_uuid),
        title: row.try_get("", "title")?,
        model: row.try_get("", "model")?,
        shared_with_org: row.try_get("", "shared_with_org")?,
        message_count: row.try_get("", "message_count")?,
        created_at: row.try_get("", "created_at")?,
        updated_at: row.try_get("", "updated_at")?,
    })
}

/// What a run holds besides its scope, owner and times.
#[derive(Debug, Clone)]
pub struct RunFields {
    pub project_id: Option<WorkbenchProjectId>,
    pub title: String,
    pub model: String,
    pub shared_with_org: bool,
}

pub async fn insert_run(
    tx: &Tx,
    scope: Scope,
    owner: UserId,
    id: WorkbenchRunId,
    fields: &RunFields,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    exec_sql(
        tx,
        "INSERT INTO workbench_runs (id, organization_id, owner_user_id, project_id, title, model, shared_with_org, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        vec![
            id.as_uuid().into(),
            org_of(scope).into(),
            owner.as_uuid().into(),
            fields.project_id.map(|p| p.as_uuid()).into(),
            fields.title.clone().into(),
            fields.model.clone().into(),
            fields.shared_with_org.into(),
            now.into(),
        ],
    )
    .await?;
    Ok(())
}

/// The runs of `scope` that `viewer` sees (only those of `project` when given), newest first.
pub async fn list_runs<S: Store>(
    s: &S,
    scope: Scope,
    viewer: UserId,
    project: Option<WorkbenchProjectId>,
    before: Option<WorkbenchRunId>,
    limit: u64,
) -> Result<Vec<RunRecord>, StoreError> {
    let mut p = Params::new();
    let mut sql = format!("{RUN} WHERE {}", visible(scope, viewer, "r.", &mut p));
    if let Some(project) = project {
        sql.push_str(&format!(
            " AND r.project_id = {}",
            p.bind(project.as_uuid())
        ));
    }
    push_page(
        &mut sql,
        &mut p,
        "r.id",
        Page::Before(before.map(|id| id.as_uuid())),
        limit,
    );
    query_all_sql(s, &sql, p.into_values())
        .await?
        .into_iter()
        .map(run)
        .collect()
}

/// A run of `scope` that `viewer` sees.
pub async fn find_run<S: Store>(
    s: &S,
    scope: Scope,
    viewer: UserId,
    id: WorkbenchRunId,
) -> Result<Option<RunRecord>, StoreError> {
    find_run_locked(s, scope, viewer, id, "").await
}

/// [`find_run`], locking the row until `tx` ends (PostgreSQL; a SQLite write transaction holds
/// the write lock already): an edit merges the fields it leaves alone, and decides whether it
/// shares or unshares, from the row as it stays until it writes.
pub async fn find_run_for_update(
    tx: &Tx,
    scope: Scope,
    viewer: UserId,
    id: WorkbenchRunId,
) -> Result<Option<RunRecord>, StoreError> {
    let lock = row_lock(tx, " FOR NO KEY UPDATE OF r");
    find_run_locked(tx, scope, viewer, id, lock).await
}

async fn find_run_locked<S: Store>(
    s: &S,
    scope: Scope,
    viewer: UserId,
    id: WorkbenchRunId,
    lock: &str,
) -> Result<Option<RunRecord>, StoreError> {
    let mut p = Params::new();
    let sql = format!(
        "{RUN} WHERE {} AND r.id = {}{lock}",
        visible(scope, viewer, "r.", &mut p),
        p.bind(id.as_uuid())
    );
    query_one_sql(s, &sql, p.into_values())
        .await?
        .map(run)
        .transpose()
}

/// Replaces the fields of `owner`'s run; false if it is not theirs (or absent).
pub async fn update_run(
    tx: &Tx,
    scope: Scope,
    owner: UserId,
    id: WorkbenchRunId,
    fields: &RunFields,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let mut p = Params::new();
    let sql = format!(
        "UPDATE workbench_runs SET project_id = {}, title = {}, model = {}, shared_with_org = {}, updated_at = {} \
         WHERE id = {} AND {}",
        p.bind(fields.project_id.map(|p| p.as_uuid())),
        p.bind(fields.title.clone()),
        p.bind(fields.model.clone()),
        p.bind(fields.shared_with_org),
        p.bind(now),
        p.bind(id.as_uuid()),
        owned(scope, owner, &mut p)
    );
    Ok(exec_sql(tx, &sql, p.into_values()).await? == 1)
}

/// Deletes `owner`'s run with its messages; false if not theirs.
pub async fn delete_run(
    tx: &Tx,
    scope: Scope,
    owner: UserId,
    id: WorkbenchRunId,
) -> Result<bool, StoreError> {
    let mut p = Params::new();
    let sql = format!(
        "DELETE FROM workbench_runs WHERE id = {} AND {}",
        p.bind(id.as_uuid()),
        owned(scope, owner, &mut p)
    );
    Ok(exec_sql(tx, &sql, p.into_values()).await? == 1)
}

// --- Messages ----------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct MessageRecord {
    pub id: WorkbenchMessageId,
    pub run_id: WorkbenchRunId,
    /// `user` or `assistant`.
    pub role: String,
    pub content: String,
    /// The proxied call that produced an answer (its usage row's `request_id`).
    pub usage_id: Option<UsageId>,
    pub created_at: OffsetDateTime,
}

const MESSAGE: &str =
    "SELECT id, run_id, role, content, usage_id, created_at FROM workbench_messages";

fn message(row: QueryResult) -> Result<MessageRecord, StoreError> {
    Ok(MessageRecord {
        id: WorkbenchMessageId::from_uuid(row.try_get("", "id")?),
        run_id: WorkbenchRunId::from_uuid(row.try_get("", "run_id")?),
        role: row.try_get("", "role")?,
        content: row.try_get("", "content")?,
        usage_id: row
            .try_get::<Option<uuid::Uuid>>("", "usage_id")?
            .map(UsageId::from_uuid),
        created_at: row.try_get("", "created_at")?,
    })
}

/// Appends a message to `run`, and marks the run as changed at `created_at`. False if the run
/// no longer exists (deleted meanwhile): nothing is stored then.
pub async fn append_message(tx: &Tx, m: &MessageRecord) -> Result<bool, StoreError> {
    let touched = exec_sql(
        tx,
        "UPDATE workbench_runs SET updated_at = $1 WHERE id = $2",
        vec![m.created_at.into(), m.run_id.as_uuid().into()],
    )
    .await?;
    if touched != 1 {
        return Ok(false);
    }
    exec_sql(
        tx,
        "INSERT INTO workbench_messages (id, run_id, role, content, usage_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        vec![
            m.id.as_uuid().into(),
            m.run_id.as_uuid().into(),
            m.role.clone().into(),
            m.content.clone().into(),
            m.usage_id.map(|u| u.as_uuid()).into(),
            m.created_at.into(),
        ],
    )
    .await?;
    Ok(true)
}

/// A page of `run`'s messages, oldest first.
pub async fn list_messages<S: Store>(
    s: &S,
    run: WorkbenchRunId,
    after: Option<WorkbenchMessageId>,
    limit: u64,
) -> Result<Vec<MessageRecord>, StoreError> {
    let mut p = Params::new();
    let mut sql = format!("{MESSAGE} WHERE run_id = {}", p.bind(run.as_uuid()));
    push_page(
        &mut sql,
        &mut p,
        "id",
        Page::After(after.map(|id| id.as_uuid())),
        limit,
    );
    query_all_sql(s, &sql, p.into_values())
        .await?
        .into_iter()
        .map(message)
        .collect()
}

/// The total length in characters of `run`'s stored messages (bounds what is sent again,
/// before any of it is read).
pub async fn conversation_chars<S: Store>(s: &S, run: WorkbenchRunId) -> Result<i64, StoreError> {
    let row = query_one_sql(
        s,
        "SELECT COALESCE(SUM(LENGTH(content)), 0) AS total FROM workbench_messages WHERE run_id = $1",
        vec![run.as_uuid().into()],
    )
    .await?;
    Ok(match row {
        Some(row) => row.try_get::<i64>("", "total")?,
        None => 0,
    })
}

/// Every message of `run`, oldest first: the conversation sent to the model.
pub async fn conversation<S: Store>(
    s: &S,
    run: WorkbenchRunId,
) -> Result<Vec<MessageRecord>, StoreError> {
    query_all_sql(
        s,
        &format!("{MESSAGE} WHERE run_id = $1 ORDER BY id"),
        vec![run.as_uuid().into()],
    )
    .await?
    .into_iter()
    .map(message)
    .collect()
}
