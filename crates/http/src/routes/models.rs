//! Models (SPEC §4.3): the public catalogue plus the current org's private models.

use crate::AppState;
use crate::dto::{Page, PageQuery, page};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, Json};
use crate::routes::instances::{ActivationRequest, can_set_map};
use actix_web::{HttpResponse, delete, get, post, put, web};
use inventiv_domain::ModelId;
use inventiv_service::models::{self, Model, ModelInput};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list)
        .service(get_one)
        .service(create)
        .service(update)
        .service(activation)
        .service(remove);
}

#[derive(Serialize, ToSchema)]
pub struct ModelDto {
    id: Uuid,
    name: String,
    /// e.g. a Hugging Face repo id.
    model_id: String,
    required_vram_gb: i32,
    context_length: i32,
    is_active: bool,
    /// `public` (the catalogue) or `org` (private to `organization_name`): the badge.
    visibility: &'static str,
    organization_id: Option<Uuid>,
    organization_name: Option<String>,
    tech_activated_by: Option<Uuid>,
    eco_activated_by: Option<Uuid>,
    /// Whether it may serve traffic: both approvals for an org model, always for the public
    /// catalogue. A non-operational org model's offerings are not operational either.
    operational: bool,
    /// The approvals still missing, e.g. `["eco"]` (always empty for a public model).
    missing_activation: Vec<&'static str>,
    /// Which roles may set each flag.
    can_set: BTreeMap<&'static str, Vec<&'static str>>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

fn model_dto(m: Model) -> ModelDto {
    let public = m.is_public();
    ModelDto {
        id: m.id.as_uuid(),
        name: m.name,
        model_id: m.model_id,
        required_vram_gb: m.required_vram_gb,
        context_length: m.context_length,
        is_active: m.is_active,
        visibility: if m.organization_id.is_some() {
            "org"
        } else {
            "public"
        },
        organization_id: m.organization_id.map(|o| o.as_uuid()),
        organization_name: m.organization_name,
        tech_activated_by: m.activation.tech_by.map(|u| u.as_uuid()),
        eco_activated_by: m.activation.eco_by.map(|u| u.as_uuid()),
        operational: m.activation.operational(public),
        missing_activation: m
            .activation
            .missing(public)
            .iter()
            .map(|f| f.as_str())
            .collect(),
        can_set: can_set_map(),
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

/// `PUT /models/{id}`: the whole model.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelRequest {
    /// 1 to 100 printable characters.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// 1 to 200 visible ASCII characters, e.g. `meta-llama/Llama-3.1-8B`.
    #[schema(min_length = 1, max_length = 200)]
    model_id: String,
    #[schema(minimum = 0, maximum = 4096)]
    required_vram_gb: i64,
    #[schema(minimum = 1, maximum = 100_000_000)]
    context_length: i64,
    /// Default true.
    is_active: Option<bool>,
}

impl From<ModelRequest> for ModelInput {
    fn from(r: ModelRequest) -> Self {
        ModelInput {
            name: Some(r.name),
            model_id: Some(r.model_id),
            required_vram_gb: Some(r.required_vram_gb),
            context_length: Some(r.context_length),
            is_active: r.is_active,
        }
    }
}

/// `POST /models`: only `model_id` is required (a missing one is `400 validation_failed`
/// naming it); the rest have defaults.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateModelRequest {
    /// Required. 1 to 200 visible ASCII characters: the model's id at the upstream server,
    /// e.g. `meta-llama/Llama-3.1-8B`.
    // Read as an Option so its absence gets a message naming it; documented as the
    // required string it is.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 200)]
    model_id: Option<String>,
    /// 1 to 100 printable characters. Default: the `model_id` (its first 100 characters).
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    /// Default 0 (not stated).
    #[schema(minimum = 0, maximum = 4096)]
    required_vram_gb: Option<i64>,
    /// Tokens; bounds a request's input and output at the proxy. Default 4096.
    #[schema(minimum = 1, maximum = 100_000_000)]
    context_length: Option<i64>,
    /// Default true.
    is_active: Option<bool>,
}

impl From<CreateModelRequest> for ModelInput {
    fn from(r: CreateModelRequest) -> Self {
        ModelInput {
            name: r.name,
            model_id: r.model_id,
            required_vram_gb: r.required_vram_gb,
            context_length: r.context_length,
            is_active: r.is_active,
        }
    }
}

/// The public catalogue plus this org's models (Personal: the public catalogue).
#[utoipa::path(tag = "models", params(PageQuery), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Models", body = Page<ModelDto>),
))]
#[get("")]
async fn list(
    state: web::Data<AppState>,
    ctx: Caller,
    query: web::Query<PageQuery>,
) -> Result<web::Json<Page<ModelDto>>, ApiError> {
    Ok(web::Json(page(
        models::list(&state.deps, &ctx, &query.request()).await?,
        model_dto,
    )))
}

/// One model visible in this workspace.
#[utoipa::path(tag = "models", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "The model", body = ModelDto),
    (status = 404, description = "Not visible here", body = ErrorBody),
))]
#[get("/{id}")]
async fn get_one(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<ModelId>,
) -> Result<web::Json<ModelDto>, ApiError> {
    Ok(web::Json(model_dto(
        models::get(&state.deps, &ctx, path.into_inner()).await?,
    )))
}

/// Add a model to this org (owner/admin), or to the public catalogue (platform admin, Personal).
#[utoipa::path(tag = "models", security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 201, description = "Created", body = ModelDto),
    (status = 400, description = "Invalid field, or no `model_id`", body = ErrorBody),
    (status = 403, description = "Role may not write models here", body = ErrorBody),
    (status = 409, description = "`model_id_taken`, `namespace_taken`", body = ErrorBody),
))]
#[post("")]
async fn create(
    state: web::Data<AppState>,
    ctx: Caller,
    body: Json<CreateModelRequest>,
) -> Result<HttpResponse, ApiError> {
    let model = models::create(&state.deps, &ctx, body.into_inner().into()).await?;
    Ok(HttpResponse::Created().json(model_dto(model)))
}

/// Replace a model of this org's catalogue (or a public one, as platform admin in Personal).
#[utoipa::path(tag = "models", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Updated", body = ModelDto),
    (status = 403, description = "Not yours to write (e.g. a public model from an org)", body = ErrorBody),
    (status = 404, description = "Not visible here", body = ErrorBody),
    (status = 409, description = "`model_id_taken`, `namespace_taken`, or `model_in_use` (a new `model_id` for a model an offering publishes)", body = ErrorBody),
))]
#[put("/{id}")]
async fn update(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<ModelId>,
    body: Json<ModelRequest>,
) -> Result<web::Json<ModelDto>, ApiError> {
    let id = path.into_inner();
    Ok(web::Json(model_dto(
        models::update(&state.deps, &ctx, id, body.into_inner().into()).await?,
    )))
}

/// Delete a model nothing references (409 `model_in_use` otherwise: deactivate it instead).
#[utoipa::path(tag = "models", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 204, description = "Deleted"),
    (status = 403, description = "Not yours to write", body = ErrorBody),
    (status = 404, description = "Not visible here", body = ErrorBody),
    (status = 409, description = "`model_in_use`", body = ErrorBody),
))]
#[delete("/{id}")]
async fn remove(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<ModelId>,
) -> Result<HttpResponse, ApiError> {
    models::delete(&state.deps, &ctx, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Set or clear an approval of an org model: tech by owner/admin, eco by owner/manager. An org
/// model serves traffic (through its offerings) only once both are on.
#[utoipa::path(tag = "models", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "The model with its new activation state", body = ModelDto),
    (status = 403, description = "Role may not set this flag", body = ErrorBody),
    (status = 404, description = "Not visible here", body = ErrorBody),
    (status = 409, description = "`distinct_activators_required` or `activation_not_applicable` (a public model)", body = ErrorBody),
))]
#[post("/{id}/activation")]
async fn activation(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<ModelId>,
    body: Json<ActivationRequest>,
) -> Result<web::Json<ModelDto>, ApiError> {
    let id = path.into_inner();
    let model = models::set_activation(&state.deps, &ctx, id, body.flag, body.active).await?;
    Ok(web::Json(model_dto(model)))
}
