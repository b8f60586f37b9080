//! `/workbench` (SPEC §4.8): projects and runs of the caller's workspace — mine, and those
//! colleagues share with the org — and a run's conversation, continued through the proxy.

use crate::AppState;
use crate::dto::{Page, PageQuery, page};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, Json};
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use inventiv_domain::{WorkbenchProjectId, WorkbenchRunId};
use inventiv_service::workbench::messages::{self, Message, NewMessage, Sent};
use inventiv_service::workbench::projects::{self, NewProject, Project, ProjectChange};
use inventiv_service::workbench::runs::{self, NewRun, Run, RunChange};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_projects)
        .service(create_project)
        .service(get_project)
        .service(update_project)
        .service(delete_project)
        .service(list_runs)
        .service(create_run)
        .service(get_run)
        .service(update_run)
        .service(delete_run)
        .service(list_messages)
        .service(send_message);
}

fn scope_name(org: Option<Uuid>) -> &'static str {
    if org.is_some() { "org" } else { "personal" }
}

// --- Projects ----------------------------------------------------------------------------------

/// A workbench project.
#[derive(Serialize, ToSchema)]
pub struct ProjectDto {
    id: Uuid,
    /// `personal` or `org`.
    scope: &'static str,
    organization_id: Option<Uuid>,
    owner_user_id: Uuid,
    name: String,
    description: Option<String>,
    /// Shared read-only with every member of the org.
    shared_with_org: bool,
    /// Whether I own it (only the owner changes it).
    is_mine: bool,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

fn project_dto(p: Project) -> ProjectDto {
    let organization_id = p.organization_id.map(|o| o.as_uuid());
    ProjectDto {
        id: p.id.as_uuid(),
        scope: scope_name(organization_id),
        organization_id,
        owner_user_id: p.owner_user_id.as_uuid(),
        name: p.name,
        description: p.description,
        shared_with_org: p.shared_with_org,
        is_mine: p.is_mine,
        created_at: p.created_at,
        updated_at: p.updated_at,
    }
}

/// My projects and those colleagues share with the org, newest first.
#[utoipa::path(tag = "workbench", params(PageQuery), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Projects", body = Page<ProjectDto>),
))]
#[get("/projects")]
async fn list_projects(
    state: web::Data<AppState>,
    ctx: Caller,
    query: web::Query<PageQuery>,
) -> Result<web::Json<Page<ProjectDto>>, ApiError> {
    Ok(web::Json(page(
        projects::list(&state.deps, &ctx, &query.request()).await?,
        project_dto,
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProjectRequest {
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    #[schema(max_length = 2000)]
    description: Option<String>,
    /// Org workspace only (Personal: 400 `sharing_requires_organization`).
    #[serde(default)]
    shared_with_org: bool,
}

/// Create a project (any member; Personal: for myself).
#[utoipa::path(tag = "workbench", security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 201, description = "Created", body = ProjectDto),
    (status = 400, description = "Invalid name or description; `sharing_requires_organization`", body = ErrorBody),
    (status = 403, description = "`api_key_not_allowed`", body = ErrorBody),
))]
#[post("/projects")]
async fn create_project(
    state: web::Data<AppState>,
    ctx: Caller,
    body: Json<CreateProjectRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let input = NewProject {
        name: b.name,
        description: b.description,
        shared_with_org: b.shared_with_org,
    };
    let project = projects::create(&state.deps, &ctx, input).await?;
    Ok(HttpResponse::Created().json(project_dto(project)))
}

/// One of my projects, or one a colleague shares.
#[utoipa::path(tag = "workbench", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "The project", body = ProjectDto),
    (status = 404, description = "No such project visible to me in this workspace", body = ErrorBody),
))]
#[get("/projects/{id}")]
async fn get_project(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<WorkbenchProjectId>,
) -> Result<web::Json<ProjectDto>, ApiError> {
    let project = projects::get(&state.deps, &ctx, path.into_inner()).await?;
    Ok(web::Json(project_dto(project)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProjectRequest {
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    /// null clears it.
    #[serde(default, deserialize_with = "crate::dto::double_option")]
    #[schema(value_type = Option<String>, max_length = 2000)]
    description: Option<Option<String>>,
    /// Share with the org or stop sharing (org workspace only).
    shared_with_org: Option<bool>,
}

/// Change my project (a colleague's shared project: 403 `workbench_owner_only`).
#[utoipa::path(tag = "workbench", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Changed", body = ProjectDto),
    (status = 400, description = "Invalid field; `sharing_requires_organization`", body = ErrorBody),
    (status = 403, description = "`workbench_owner_only`, `api_key_not_allowed`", body = ErrorBody),
    (status = 404, description = "No such project visible to me in this workspace", body = ErrorBody),
))]
#[patch("/projects/{id}")]
async fn update_project(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<WorkbenchProjectId>,
    body: Json<UpdateProjectRequest>,
) -> Result<web::Json<ProjectDto>, ApiError> {
    let b = body.into_inner();
    let change = ProjectChange {
        name: b.name,
        description: b.description,
        shared_with_org: b.shared_with_org,
    };
    let project = projects::update(&state.deps, &ctx, path.into_inner(), change).await?;
    Ok(web::Json(project_dto(project)))
}

/// Delete my project; its runs stay, outside any project.
#[utoipa::path(tag = "workbench", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 204, description = "Deleted"),
    (status = 403, description = "`workbench_owner_only`, `api_key_not_allowed`", body = ErrorBody),
    (status = 404, description = "No such project visible to me in this workspace", body = ErrorBody),
))]
#[delete("/projects/{id}")]
async fn delete_project(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<WorkbenchProjectId>,
) -> Result<HttpResponse, ApiError> {
    projects::delete(&state.deps, &ctx, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

// --- Runs --------------------------------------------------------------------------------------

/// A workbench run: a conversation with one model.
#[derive(Serialize, ToSchema)]
pub struct RunDto {
    id: Uuid,
    /// `personal` or `org`.
    scope: &'static str,
    organization_id: Option<Uuid>,
    owner_user_id: Uuid,
    project_id: Option<Uuid>,
    title: String,
    /// `<org_slug>/<code>` or a public model id, called through the proxy.
    model: String,
    /// Shared read-only with every member of the org.
    shared_with_org: bool,
    message_count: i64,
    /// Whether I own it (only the owner changes or continues it).
    is_mine: bool,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

fn run_dto(r: Run) -> RunDto {
    let organization_id = r.organization_id.map(|o| o.as_uuid());
    RunDto {
        id: r.id.as_uuid(),
        scope: scope_name(organization_id),
        organization_id,
        owner_user_id: r.owner_user_id.as_uuid(),
        project_id: r.project_id.map(|p| p.as_uuid()),
        title: r.title,
        model: r.model,
        shared_with_org: r.shared_with_org,
        message_count: r.message_count,
        is_mine: r.is_mine,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunQuery {
    /// Only the runs of this project.
    #[param(value_type = Option<Uuid>)]
    project_id: Option<WorkbenchProjectId>,
    /// 1..200, default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// My runs and those colleagues share with the org, newest first.
#[utoipa::path(tag = "workbench", params(RunQuery), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Runs", body = Page<RunDto>),
))]
#[get("/runs")]
async fn list_runs(
    state: web::Data<AppState>,
    ctx: Caller,
    query: web::Query<RunQuery>,
) -> Result<web::Json<Page<RunDto>>, ApiError> {
    let q = query.into_inner();
    let paging = inventiv_service::paging::PageRequest {
        limit: q.limit,
        cursor: q.cursor,
    };
    Ok(web::Json(page(
        runs::list(&state.deps, &ctx, q.project_id, &paging).await?,
        run_dto,
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRunRequest {
    /// One of my projects in this workspace.
    #[schema(value_type = Option<Uuid>)]
    project_id: Option<WorkbenchProjectId>,
    #[schema(min_length = 1, max_length = 200)]
    title: String,
    /// `<org_slug>/<code>` or a public model id; resolved by the proxy at each message.
    #[schema(min_length = 1, max_length = 256)]
    model: String,
    /// Org workspace only (Personal: 400 `sharing_requires_organization`).
    #[serde(default)]
    shared_with_org: bool,
}

/// Create a run (any member; Personal: for myself).
#[utoipa::path(tag = "workbench", security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 201, description = "Created", body = RunDto),
    (status = 400, description = "Invalid title or model; `sharing_requires_organization`", body = ErrorBody),
    (status = 403, description = "`workbench_owner_only` (a colleague's project), `api_key_not_allowed`", body = ErrorBody),
    (status = 404, description = "No such project visible to me in this workspace", body = ErrorBody),
))]
#[post("/runs")]
async fn create_run(
    state: web::Data<AppState>,
    ctx: Caller,
    body: Json<CreateRunRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let input = NewRun {
        project_id: b.project_id,
        title: b.title,
        model: b.model,
        shared_with_org: b.shared_with_org,
    };
    let run = runs::create(&state.deps, &ctx, input).await?;
    Ok(HttpResponse::Created().json(run_dto(run)))
}

/// One of my runs, or one a colleague shares.
#[utoipa::path(tag = "workbench", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "The run", body = RunDto),
    (status = 404, description = "No such run visible to me in this workspace", body = ErrorBody),
))]
#[get("/runs/{id}")]
async fn get_run(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<WorkbenchRunId>,
) -> Result<web::Json<RunDto>, ApiError> {
    let run = runs::get(&state.deps, &ctx, path.into_inner()).await?;
    Ok(web::Json(run_dto(run)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRunRequest {
    /// One of my projects, or null to take the run out of its project.
    #[serde(default, deserialize_with = "crate::dto::double_option")]
    #[schema(value_type = Option<Uuid>)]
    project_id: Option<Option<WorkbenchProjectId>>,
    #[schema(min_length = 1, max_length = 200)]
    title: Option<String>,
    #[schema(min_length = 1, max_length = 256)]
    model: Option<String>,
    /// Share with the org or stop sharing (org workspace only; audited).
    shared_with_org: Option<bool>,
}

/// Change my run (a colleague's shared run: 403 `workbench_owner_only`).
#[utoipa::path(tag = "workbench", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Changed", body = RunDto),
    (status = 400, description = "Invalid field; `sharing_requires_organization`", body = ErrorBody),
    (status = 403, description = "`workbench_owner_only`, `api_key_not_allowed`", body = ErrorBody),
    (status = 404, description = "No such run (or project) visible to me in this workspace", body = ErrorBody),
))]
#[patch("/runs/{id}")]
async fn update_run(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<WorkbenchRunId>,
    body: Json<UpdateRunRequest>,
) -> Result<web::Json<RunDto>, ApiError> {
    let b = body.into_inner();
    let change = RunChange {
        project_id: b.project_id,
        title: b.title,
        model: b.model,
        shared_with_org: b.shared_with_org,
    };
    let run = runs::update(&state.deps, &ctx, path.into_inner(), change).await?;
    Ok(web::Json(run_dto(run)))
}

/// Delete my run and its messages.
#[utoipa::path(tag = "workbench", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 204, description = "Deleted"),
    (status = 403, description = "`workbench_owner_only`, `api_key_not_allowed`", body = ErrorBody),
    (status = 404, description = "No such run visible to me in this workspace", body = ErrorBody),
))]
#[delete("/runs/{id}")]
async fn delete_run(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<WorkbenchRunId>,
) -> Result<HttpResponse, ApiError> {
    runs::delete(&state.deps, &ctx, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

// --- Messages ----------------------------------------------------------------------------------

/// One message of a run.
#[derive(Serialize, ToSchema)]
pub struct MessageDto {
    id: Uuid,
    run_id: Uuid,
    /// `user` or `assistant`.
    role: String,
    content: String,
    /// On an answer: the `request_id` of the usage row of the proxied call.
    usage_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

fn message_dto(m: Message) -> MessageDto {
    MessageDto {
        id: m.id.as_uuid(),
        run_id: m.run_id.as_uuid(),
        role: m.role,
        content: m.content,
        usage_id: m.usage_id.map(|u| u.as_uuid()),
        created_at: m.created_at,
    }
}

/// A run's messages, oldest first (whoever sees the run).
#[utoipa::path(tag = "workbench", params(("id" = Uuid, Path), PageQuery), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Messages", body = Page<MessageDto>),
    (status = 404, description = "No such run visible to me in this workspace", body = ErrorBody),
))]
#[get("/runs/{id}/messages")]
async fn list_messages(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<WorkbenchRunId>,
    query: web::Query<PageQuery>,
) -> Result<web::Json<Page<MessageDto>>, ApiError> {
    Ok(web::Json(page(
        messages::list(&state.deps, &ctx, path.into_inner(), &query.request()).await?,
        message_dto,
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessageRequest {
    /// 1 to 100,000 characters.
    #[schema(min_length = 1, max_length = 100000)]
    content: String,
    /// Stream the answer as server-sent events (OpenAI chat chunks).
    #[serde(default)]
    stream: bool,
}

/// The stored question and answer.
#[derive(Serialize, ToSchema)]
pub struct ExchangeDto {
    /// The user message, then the assistant's answer.
    messages: Vec<MessageDto>,
    /// The `request_id` of the call's usage row.
    usage_id: Uuid,
}

/// Continue my run: its conversation goes to its model through the proxy (same resolution,
/// caps and metering as `/v1/chat/completions`, billed to this workspace); both messages are
/// stored. With `stream: true` the answer streams as SSE and is stored when it ends.
#[utoipa::path(tag = "workbench", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 201, description = "Both messages, stored", body = ExchangeDto),
    (status = 200, description = "`stream: true`: the answer as server-sent events (OpenAI chat chunks)", content_type = "text/event-stream", body = String),
    (status = 400, description = "Invalid content", body = ErrorBody),
    (status = 402, description = "`spend_cap_reached`", body = ErrorBody),
    (status = 403, description = "`workbench_owner_only`, `model_not_operational`, `model_not_allowed`, `api_key_not_allowed`", body = ErrorBody),
    (status = 404, description = "No such run visible to me in this workspace; `model_not_found`", body = ErrorBody),
    (status = 409, description = "`conversation_too_long`", body = ErrorBody),
    (status = 502, description = "`upstream_error`, `upstream_unreachable`", body = ErrorBody),
    (status = 503, description = "`no_ready_instance`", body = ErrorBody),
    (status = 504, description = "`upstream_timeout`", body = ErrorBody),
))]
#[post("/runs/{id}/messages")]
async fn send_message(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<WorkbenchRunId>,
    body: Json<SendMessageRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let input = NewMessage {
        content: b.content,
        stream: b.stream,
    };
    let sent = messages::send(&state.deps, &ctx, path.into_inner(), input).await?;
    let usage_header =
        |usage: inventiv_domain::UsageId| (super::proxy::USAGE_HEADER, usage.to_string());
    Ok(match sent {
        Sent::Whole(exchanged) => {
            let messages::Exchanged {
                user,
                assistant,
                usage_id,
            } = *exchanged;
            HttpResponse::Created()
                .insert_header(usage_header(usage_id))
                .json(ExchangeDto {
                    messages: vec![message_dto(user), message_dto(assistant)],
                    usage_id: usage_id.as_uuid(),
                })
        }
        Sent::Streaming { stream, usage_id } => HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, "text/event-stream"))
            .insert_header(("cache-control", "no-cache"))
            .insert_header(usage_header(usage_id))
            .streaming(stream),
    })
}
