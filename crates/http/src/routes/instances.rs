//! Instances and deployments (SPEC §4.3), scoped to the caller's workspace.

use crate::AppState;
use crate::dto::{Page, page};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, Json};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use inventiv_domain::{Flag, InstanceId, ModelId, can_set_roles};
use inventiv_service::instances::{self, Deploy, Instance};
use inventiv_service::paging::PageRequest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

/// The instances (under `/instances`).
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list)
        .service(get_one)
        .service(terminate)
        .service(reinstall)
        .service(activation);
}

/// Deploying one (under `/deployments`).
pub fn configure_deployments(cfg: &mut ServiceConfig) {
    cfg.service(deploy);
}

/// An instance with its workspace badge and activation state.
#[derive(Serialize, ToSchema)]
pub struct InstanceDto {
    id: Uuid,
    /// `personal` or `org` (the badge).
    scope: &'static str,
    organization_id: Option<Uuid>,
    organization_name: Option<String>,
    owner_user_id: Option<Uuid>,
    model_id: Uuid,
    model_name: String,
    provider: String,
    zone: Option<String>,
    instance_type: Option<String>,
    /// provisioning, booting, ready, terminating, terminated or failed.
    status: String,
    failure_reason: Option<String>,
    endpoint_url: Option<String>,
    hourly_cost_micros: i64,
    tech_activated_by: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339::option")]
    tech_activated_at: Option<OffsetDateTime>,
    eco_activated_by: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339::option")]
    eco_activated_at: Option<OffsetDateTime>,
    /// Ready and approved: both approvals present (personal instances need none) and the
    /// status `ready` — a terminated or provisioning instance is not operational.
    operational: bool,
    /// The approvals still missing, e.g. `["eco"]`.
    missing_activation: Vec<&'static str>,
    /// Which roles may set each flag, e.g. `{"tech": ["owner","admin"], "eco": ["owner","manager"]}`.
    can_set: BTreeMap<&'static str, Vec<&'static str>>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    ready_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    terminated_at: Option<OffsetDateTime>,
}

/// The `can_set` map every activatable resource carries.
pub fn can_set_map() -> BTreeMap<&'static str, Vec<&'static str>> {
    Flag::ALL
        .iter()
        .map(|f| {
            (
                f.as_str(),
                can_set_roles(*f).iter().map(|r| r.as_str()).collect(),
            )
        })
        .collect()
}

pub fn instance_dto(i: Instance) -> InstanceDto {
    let personal = i.organization_id.is_none();
    let operational = i.operational();
    InstanceDto {
        id: i.id.as_uuid(),
        scope: if personal { "personal" } else { "org" },
        organization_id: i.organization_id.map(|o| o.as_uuid()),
        organization_name: i.organization_name,
        owner_user_id: i.owner_user_id.map(|u| u.as_uuid()),
        model_id: i.model_id.as_uuid(),
        model_name: i.model_name,
        provider: i.provider,
        zone: i.zone,
        instance_type: i.instance_type,
        status: i.status.as_str().to_owned(),
        failure_reason: i.failure_reason,
        endpoint_url: i.endpoint_url,
        hourly_cost_micros: i.hourly_cost_micros,
        tech_activated_by: i.activation.tech_by.map(|u| u.as_uuid()),
        tech_activated_at: i.tech_activated_at,
        eco_activated_by: i.activation.eco_by.map(|u| u.as_uuid()),
        eco_activated_at: i.eco_activated_at,
        operational,
        missing_activation: i
            .activation
            .missing(personal)
            .iter()
            .map(|f| f.as_str())
            .collect(),
        can_set: can_set_map(),
        created_at: i.created_at,
        ready_at: i.ready_at,
        terminated_at: i.terminated_at,
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InstanceQuery {
    /// Only operational (true) or non-operational (false) instances.
    operational: Option<bool>,
    /// 1..200, default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    cursor: Option<String>,
}

/// Instances of the current workspace (an org's, or my personal ones).
#[utoipa::path(tag = "instances", params(InstanceQuery), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Instances", body = Page<InstanceDto>),
    (status = 401, description = "Not signed in", body = ErrorBody),
))]
#[get("")]
async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    ctx: Caller,
    query: web::Query<InstanceQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let filter = inventiv_service::instances::Filter {
        operational: q.operational,
    };
    let paging = PageRequest {
        limit: q.limit,
        cursor: q.cursor,
    };
    let cached = instances::list(&state.deps, &ctx, filter, &paging).await?;
    Ok(crate::dto::cached_json(&req, &cached, |rows| {
        crate::dto::to_json(&page(rows.clone(), instance_dto))
    }))
}

/// One instance of the current workspace.
#[utoipa::path(tag = "instances", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "The instance", body = InstanceDto),
    (status = 404, description = "No such instance in this workspace", body = ErrorBody),
))]
#[get("/{id}")]
async fn get_one(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<InstanceId>,
) -> Result<web::Json<InstanceDto>, ApiError> {
    let instance = instances::get(&state.deps, &ctx, path.into_inner()).await?;
    Ok(web::Json(instance_dto(instance)))
}

/// Schema-only: the providers an instance can be deployed with.
#[derive(ToSchema)]
#[allow(dead_code)]
enum ProviderName {
    #[schema(rename = "mock")]
    Mock,
    #[schema(rename = "external")]
    External,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    /// A public model or one of this org's models.
    model_id: ModelId,
    /// `mock` (default) or `external`.
    #[schema(inline, value_type = Option<ProviderName>)]
    provider: Option<String>,
    zone: Option<String>,
    instance_type: Option<String>,
    /// external: the `http://` base URL of an OpenAI-compatible server (the proxy calls
    /// `<endpoint_url>/v1/…`). Its host must resolve only to allowed networks (public
    /// addresses and `providers.external.allowed_networks`), and its host:port must not be
    /// another owner's.
    endpoint_url: Option<String>,
    /// Price of an hour, micro-EUR (default: the provider's).
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    hourly_cost_micros: Option<i64>,
}

/// Deploy a model in the current workspace (owner/admin in an org).
#[utoipa::path(tag = "instances", security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 201, description = "Provisioning", body = InstanceDto),
    (status = 400, description = "Unknown model or provider, invalid endpoint (`validation_failed`), endpoint outside the allowed networks (`endpoint_not_allowed`)", body = ErrorBody),
    (status = 403, description = "Role may not deploy", body = ErrorBody),
    (status = 409, description = "`endpoint_taken`: another organization or user registered this endpoint", body = ErrorBody),
))]
#[post("")]
async fn deploy(
    state: web::Data<AppState>,
    ctx: Caller,
    body: Json<DeployRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let input = Deploy {
        model_id: b.model_id,
        provider: b.provider,
        zone: b.zone,
        instance_type: b.instance_type,
        endpoint_url: b.endpoint_url,
        hourly_cost_micros: b.hourly_cost_micros,
    };
    let instance = instances::deploy(&state.deps, &ctx, input).await?;
    Ok(HttpResponse::Created().json(instance_dto(instance)))
}

/// Terminate an instance (owner/admin in an org): terminating now, terminated shortly.
#[utoipa::path(tag = "instances", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 202, description = "Terminating", body = InstanceDto),
    (status = 403, description = "Role may not terminate", body = ErrorBody),
    (status = 404, description = "No such instance in this workspace", body = ErrorBody),
    (status = 409, description = "`invalid_state`", body = ErrorBody),
))]
#[post("/{id}/terminate")]
async fn terminate(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<InstanceId>,
) -> Result<HttpResponse, ApiError> {
    let instance = instances::terminate(&state.deps, &ctx, path.into_inner()).await?;
    Ok(HttpResponse::Accepted().json(instance_dto(instance)))
}

/// Reinstall a ready or failed instance (owner/admin in an org).
#[utoipa::path(tag = "instances", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 202, description = "Provisioning again", body = InstanceDto),
    (status = 403, description = "Role may not reinstall", body = ErrorBody),
    (status = 404, description = "No such instance in this workspace", body = ErrorBody),
    (status = 409, description = "`invalid_state`", body = ErrorBody),
))]
#[post("/{id}/reinstall")]
async fn reinstall(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<InstanceId>,
) -> Result<HttpResponse, ApiError> {
    let instance = instances::reinstall(&state.deps, &ctx, path.into_inner()).await?;
    Ok(HttpResponse::Accepted().json(instance_dto(instance)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivationRequest {
    // No doc comment: utoipa would wrap the inline enum in an unsatisfiable `allOf` with it.
    #[schema(inline)]
    pub(crate) flag: Flag,
    pub(crate) active: bool,
}

/// Set or clear an approval: tech by owner/admin, eco by owner/manager.
#[utoipa::path(tag = "instances", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "The instance with its new activation state", body = InstanceDto),
    (status = 403, description = "Role may not set this flag", body = ErrorBody),
    (status = 404, description = "No such instance in this workspace", body = ErrorBody),
    (status = 409, description = "`distinct_activators_required` or `activation_not_applicable`", body = ErrorBody),
))]
#[post("/{id}/activation")]
async fn activation(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<InstanceId>,
    body: Json<ActivationRequest>,
) -> Result<web::Json<InstanceDto>, ApiError> {
    let id = path.into_inner();
    let instance = instances::set_activation(&state.deps, &ctx, id, body.flag, body.active).await?;
    Ok(web::Json(instance_dto(instance)))
}
