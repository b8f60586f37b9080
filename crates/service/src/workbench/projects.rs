//! Workbench projects: folders of runs, owned by a user in a workspace; an org project may be
//! shared (read-only) with the org, like a run.

use super::{org_of, owner_only, sharing_action, viewer, writer};
use crate::audit::AuditEntry;
use crate::paging::{Page, PageRequest, page_of};
use crate::{Ctx, Deps, ServiceError};
use inventiv_domain::{
    DisplayName, OrgId, Ownership, UserId, WorkbenchProjectId, optional_text, workbench,
};
use inventiv_persistence::repo::workbench::{self as repo, ProjectFields, ProjectRecord};
use serde_json::json;
use time::OffsetDateTime;

/// The longest project description, in characters.
pub const DESCRIPTION_MAX_CHARS: usize = 2000;

/// A project as the caller sees it.
#[derive(Debug, Clone)]
pub struct Project {
    pub id: WorkbenchProjectId,
    /// None: a personal project.
    pub organization_id: Option<OrgId>,
    pub owner_user_id: UserId,
    pub name: String,
    pub description: Option<String>,
    pub shared_with_org: bool,
    /// Whether the caller owns it (and so may change it).
    pub is_mine: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

fn view(ctx: &Ctx, p: ProjectRecord) -> Project {
    Project {
        is_mine: p.owner_user_id == ctx.user_id(),
        id: p.id,
        organization_id: p.organization_id,
        owner_user_id: p.owner_user_id,
        name: p.name,
        description: p.description,
        shared_with_org: p.shared_with_org,
        created_at: p.created_at,
        updated_at: p.updated_at,
    }
}

pub(super) fn ownership(p: &ProjectRecord) -> Ownership {
    Ownership {
        owner: p.owner_user_id,
        shared_with_org: p.shared_with_org,
    }
}

/// `POST /workbench/projects` input.
#[derive(Debug, Clone, Default)]
pub struct NewProject {
    pub name: String,
    pub description: Option<String>,
    pub shared_with_org: bool,
}

/// `PATCH /workbench/projects/{id}` input: absent fields stay; `description: Some(None)`
/// clears it.
#[derive(Debug, Clone, Default)]
pub struct ProjectChange {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub shared_with_org: Option<bool>,
}

fn description(text: Option<&str>) -> Result<Option<String>, ServiceError> {
    Ok(optional_text("description", text, DESCRIPTION_MAX_CHARS)?)
}

fn audit(
    action: &'static str,
    actor: &inventiv_domain::Actor,
    id: WorkbenchProjectId,
    fields: &ProjectFields,
) -> AuditEntry {
    AuditEntry {
        action,
        organization: org_of(actor),
        target_type: "workbench_project",
        target_id: id.to_string(),
        before: None,
        after: Some(json!({"name": fields.name, "shared_with_org": fields.shared_with_org})),
    }
}

/// `GET /workbench/projects`: my projects and those colleagues share, newest first.
pub async fn list(
    deps: &Deps,
    ctx: &Ctx,
    page: &PageRequest,
) -> Result<Page<Project>, ServiceError> {
    let actor = viewer(ctx)?;
    let (limit, before) = page.parse::<WorkbenchProjectId>()?;
    let rows = repo::list_projects(&deps.db, actor.scope(), actor.user, before, limit + 1).await?;
    let items = rows.into_iter().map(|p| view(ctx, p)).collect();
    Ok(page_of(items, limit, |p: &Project| p.id))
}

/// A project the caller sees (404 otherwise, another tenant's included).
pub(super) async fn visible(
    deps: &Deps,
    actor: &inventiv_domain::Actor,
    id: WorkbenchProjectId,
) -> Result<ProjectRecord, ServiceError> {
    repo::find_project(&deps.db, actor.scope(), actor.user, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("project"))
}

pub async fn get(deps: &Deps, ctx: &Ctx, id: WorkbenchProjectId) -> Result<Project, ServiceError> {
    let actor = viewer(ctx)?;
    Ok(view(ctx, visible(deps, &actor, id).await?))
}

pub async fn create(deps: &Deps, ctx: &Ctx, input: NewProject) -> Result<Project, ServiceError> {
    let actor = writer(ctx)?;
    let fields = ProjectFields {
        name: DisplayName::parse("name", &input.name)?.into_inner(),
        description: description(input.description.as_deref())?,
        shared_with_org: input.shared_with_org,
    };
    workbench::ensure_shareable(actor.workspace, fields.shared_with_org)?;
    let id = WorkbenchProjectId::new();
    let tx = ctx.begin_in_workspace(deps).await?;
    repo::insert_project(&tx, actor.scope(), actor.user, id, &fields, ctx.now).await?;
    if fields.shared_with_org {
        ctx.record(&tx, audit("workbench_project.shared", &actor, id, &fields))
            .await?;
    }
    tx.commit().await?;
    Ok(Project {
        id,
        organization_id: org_of(&actor),
        owner_user_id: actor.user,
        name: fields.name,
        description: fields.description,
        shared_with_org: fields.shared_with_org,
        is_mine: true,
        created_at: ctx.now,
        updated_at: ctx.now,
    })
}

/// Changes my project (a colleague's shared one: 403 `workbench_owner_only`).
pub async fn update(
    deps: &Deps,
    ctx: &Ctx,
    id: WorkbenchProjectId,
    change: ProjectChange,
) -> Result<Project, ServiceError> {
    let actor = writer(ctx)?;
    owner_only(&actor, ownership(&visible(deps, &actor, id).await?))?;
    let name = change
        .name
        .as_deref()
        .map(|name| DisplayName::parse("name", name))
        .transpose()?;
    let new_description = change
        .description
        .as_ref()
        .map(|text| description(text.as_deref()))
        .transpose()?;
    let tx = deps.db.begin_write().await?;
    // The fields left alone, and whether this shares or unshares, come from the project as it
    // stays until this commits (another tab's edit may have landed since it was read above).
    let current = repo::find_project_for_update(&tx, actor.scope(), actor.user, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("project"))?;
    let fields = ProjectFields {
        name: name.map_or_else(|| current.name.clone(), DisplayName::into_inner),
        description: new_description.unwrap_or_else(|| current.description.clone()),
        shared_with_org: change.shared_with_org.unwrap_or(current.shared_with_org),
    };
    workbench::ensure_shareable(actor.workspace, fields.shared_with_org)?;
    if !repo::update_project(&tx, actor.scope(), actor.user, id, &fields, ctx.now).await? {
        return Err(ServiceError::not_found("project"));
    }
    if let Some(action) = sharing_action(
        current.shared_with_org,
        fields.shared_with_org,
        "workbench_project.shared",
        "workbench_project.unshared",
    ) {
        ctx.record(&tx, audit(action, &actor, id, &fields)).await?;
    }
    tx.commit().await?;
    Ok(Project {
        name: fields.name,
        description: fields.description,
        shared_with_org: fields.shared_with_org,
        updated_at: ctx.now,
        ..view(ctx, current)
    })
}

/// Deletes my project; its runs stay, outside any project.
pub async fn delete(deps: &Deps, ctx: &Ctx, id: WorkbenchProjectId) -> Result<(), ServiceError> {
    let actor = writer(ctx)?;
    let current = visible(deps, &actor, id).await?;
    owner_only(&actor, ownership(&current))?;
    let tx = deps.db.begin_write().await?;
    if !repo::delete_project(&tx, actor.scope(), actor.user, id).await? {
        return Err(ServiceError::not_found("project"));
    }
    tx.commit().await?;
    Ok(())
}
