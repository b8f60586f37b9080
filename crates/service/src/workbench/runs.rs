//! Workbench runs: one conversation with one model, owned by a user in a workspace; an org run
//! may be shared read-only with the org. Only the owner edits, deletes, re-shares or continues
//! it (see [`super::messages`] for the conversation).

use super::projects;
use super::{org_of, owner_only, sharing_action, viewer, writer};
use crate::audit::AuditEntry;
use crate::paging::{Page, PageRequest, page_of};
use crate::{Ctx, Deps, ServiceError};
use inventiv_domain::{
    Actor, OrgId, Ownership, UserId, WorkbenchProjectId, WorkbenchRunId, optional_text, workbench,
};
use inventiv_persistence::repo::workbench::{self as repo, RunFields, RunRecord};
use serde_json::json;
use time::OffsetDateTime;

/// The longest run title, in characters.
pub const TITLE_MAX_CHARS: usize = 200;
/// The longest model name (the proxy's bound on `model`).
pub const MODEL_MAX_CHARS: usize = 256;

/// A run as the caller sees it.
#[derive(Debug, Clone)]
pub struct Run {
    pub id: WorkbenchRunId,
    /// None: a personal run.
    pub organization_id: Option<OrgId>,
    pub owner_user_id: UserId,
    pub project_id: Option<WorkbenchProjectId>,
    pub title: String,
    /// What the proxy is asked for: `<org_slug>/<code>` or a public model id.
    pub model: String,
    pub shared_with_org: bool,
    pub message_count: i64,
    /// Whether the caller owns it (and so may change or continue it).
    pub is_mine: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

fn view(ctx: &Ctx, r: RunRecord) -> Run {
    Run {
        is_mine: r.owner_user_id == ctx.user_id(),
        id: r.id,
        organization_id: r.organization_id,
        owner_user_id: r.owner_user_id,
        project_id: r.project_id,
        title: r.title,
        model: r.model,
        shared_with_org: r.shared_with_org,
        message_count: r.message_count,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

pub(super) fn ownership(r: &RunRecord) -> Ownership {
    Ownership {
        owner: r.owner_user_id,
        shared_with_org: r.shared_with_org,
    }
}

/// `POST /workbench/runs` input.
#[derive(Debug, Clone, Default)]
pub struct NewRun {
    pub project_id: Option<WorkbenchProjectId>,
    pub title: String,
    pub model: String,
    pub shared_with_org: bool,
}

/// `PATCH /workbench/runs/{id}` input: absent fields stay; `project_id: Some(None)` takes the
/// run out of its project.
#[derive(Debug, Clone, Default)]
pub struct RunChange {
    pub project_id: Option<Option<WorkbenchProjectId>>,
    pub title: Option<String>,
    pub model: Option<String>,
    pub shared_with_org: Option<bool>,
}

fn title(text: &str) -> Result<String, ServiceError> {
    optional_text("title", Some(text), TITLE_MAX_CHARS)?.ok_or_else(|| {
        ServiceError::invalid(
            "title",
            format!("must be 1 to {TITLE_MAX_CHARS} characters long"),
        )
    })
}

/// A model name as the proxy reads it: 1 to 256 visible ASCII characters. Whether it can be
/// called is decided when a message is sent (it may become available later, or stop being).
fn model(text: &str) -> Result<String, ServiceError> {
    if text.is_empty()
        || text.len() > MODEL_MAX_CHARS
        || !text.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(ServiceError::invalid(
            "model",
            format!(
                "1 to {MODEL_MAX_CHARS} visible ASCII characters: `<org_slug>/<code>` or a public model id"
            ),
        ));
    }
    Ok(text.to_owned())
}

/// A project a run may be filed under: one of mine in this workspace.
async fn my_project(
    deps: &Deps,
    actor: &Actor,
    id: Option<WorkbenchProjectId>,
) -> Result<Option<WorkbenchProjectId>, ServiceError> {
    if let Some(id) = id {
        let project = projects::visible(deps, actor, id).await?;
        owner_only(actor, projects::ownership(&project))?;
    }
    Ok(id)
}

fn audit(
    action: &'static str,
    actor: &Actor,
    id: WorkbenchRunId,
    fields: &RunFields,
) -> AuditEntry {
    AuditEntry {
        action,
        organization: org_of(actor),
        target_type: "workbench_run",
        target_id: id.to_string(),
        before: None,
        after: Some(json!({
            "title": fields.title,
            "model": fields.model,
            "shared_with_org": fields.shared_with_org,
        })),
    }
}

/// `GET /workbench/runs`: my runs and those colleagues share (of one project when given),
/// newest first.
pub async fn list(
    deps: &Deps,
    ctx: &Ctx,
    project: Option<WorkbenchProjectId>,
    page: &PageRequest,
) -> Result<Page<Run>, ServiceError> {
    let actor = viewer(ctx)?;
    let (limit, before) = page.parse::<WorkbenchRunId>()?;
    let rows = repo::list_runs(
        &deps.db,
        actor.scope(),
        actor.user,
        project,
        before,
        limit + 1,
    )
    .await?;
    let items = rows.into_iter().map(|r| view(ctx, r)).collect();
    Ok(page_of(items, limit, |r: &Run| r.id))
}

/// A run the caller sees (404 otherwise, another tenant's included).
pub(super) async fn visible(
    deps: &Deps,
    actor: &Actor,
    id: WorkbenchRunId,
) -> Result<RunRecord, ServiceError> {
    repo::find_run(&deps.db, actor.scope(), actor.user, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("run"))
}

/// A run the caller sees and owns: 404 when it does not see it, 403 `workbench_owner_only`
/// when it is a colleague's shared run.
pub(super) async fn owned(
    deps: &Deps,
    actor: &Actor,
    id: WorkbenchRunId,
) -> Result<RunRecord, ServiceError> {
    let run = visible(deps, actor, id).await?;
    owner_only(actor, ownership(&run))?;
    Ok(run)
}

pub async fn get(deps: &Deps, ctx: &Ctx, id: WorkbenchRunId) -> Result<Run, ServiceError> {
    let actor = viewer(ctx)?;
    Ok(view(ctx, visible(deps, &actor, id).await?))
}

pub async fn create(deps: &Deps, ctx: &Ctx, input: NewRun) -> Result<Run, ServiceError> {
    let actor = writer(ctx)?;
    let fields = RunFields {
        title: title(&input.title)?,
        model: model(&input.model)?,
        shared_with_org: input.shared_with_org,
        project_id: input.project_id,
    };
    workbench::ensure_shareable(actor.workspace, fields.shared_with_org)?;
    my_project(deps, &actor, fields.project_id).await?;
    let id = WorkbenchRunId::new();
    let tx = ctx.begin_in_workspace(deps).await?;
    repo::insert_run(&tx, actor.scope(), actor.user, id, &fields, ctx.now).await?;
    if fields.shared_with_org {
        ctx.record(&tx, audit("workbench_run.shared", &actor, id, &fields))
            .await?;
    }
    tx.commit().await?;
    Ok(Run {
        id,
        organization_id: org_of(&actor),
        owner_user_id: actor.user,
        project_id: fields.project_id,
        title: fields.title,
        model: fields.model,
        shared_with_org: fields.shared_with_org,
        message_count: 0,
        is_mine: true,
        created_at: ctx.now,
        updated_at: ctx.now,
    })
}

/// Changes my run: title, model, project, sharing (a colleague's: 403).
pub async fn update(
    deps: &Deps,
    ctx: &Ctx,
    id: WorkbenchRunId,
    change: RunChange,
) -> Result<Run, ServiceError> {
    let actor = writer(ctx)?;
    owned(deps, &actor, id).await?;
    let new_title = change.title.as_deref().map(title).transpose()?;
    let new_model = change.model.as_deref().map(model).transpose()?;
    let new_project = match change.project_id {
        Some(project) => Some(my_project(deps, &actor, project).await?),
        None => None,
    };
    let tx = deps.db.begin_write().await?;
    // The fields left alone, and whether this shares or unshares, come from the run as it
    // stays until this commits (another tab's edit may have landed since it was read above).
    let current = repo::find_run_for_update(&tx, actor.scope(), actor.user, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("run"))?;
    let fields = RunFields {
        title: new_title.unwrap_or_else(|| current.title.clone()),
        model: new_model.unwrap_or_else(|| current.model.clone()),
        shared_with_org: change.shared_with_org.unwrap_or(current.shared_with_org),
        project_id: new_project.unwrap_or(current.project_id),
    };
    workbench::ensure_shareable(actor.workspace, fields.shared_with_org)?;
    if !repo::update_run(&tx, actor.scope(), actor.user, id, &fields, ctx.now).await? {
        return Err(ServiceError::not_found("run"));
    }
    if let Some(action) = sharing_action(
        current.shared_with_org,
        fields.shared_with_org,
        "workbench_run.shared",
        "workbench_run.unshared",
    ) {
        ctx.record(&tx, audit(action, &actor, id, &fields)).await?;
    }
    tx.commit().await?;
    Ok(Run {
        project_id: fields.project_id,
        title: fields.title,
        model: fields.model,
        shared_with_org: fields.shared_with_org,
        updated_at: ctx.now,
        ..view(ctx, current)
    })
}

/// Deletes my run and its messages (a colleague's: 403).
pub async fn delete(deps: &Deps, ctx: &Ctx, id: WorkbenchRunId) -> Result<(), ServiceError> {
    let actor = writer(ctx)?;
    owned(deps, &actor, id).await?;
    let tx = deps.db.begin_write().await?;
    if !repo::delete_run(&tx, actor.scope(), actor.user, id).await? {
        return Err(ServiceError::not_found("run"));
    }
    tx.commit().await?;
    Ok(())
}
