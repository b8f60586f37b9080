//! `/api_keys` (SPEC §4.3): org keys in an org workspace, my personal keys in Personal.

use crate::AppState;
use crate::dto::{Page, PageQuery, opt_date, page};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, Json};
use crate::routes::instances::{ActivationRequest, can_set_map};
use actix_web::{HttpResponse, delete, get, post, put, web};
use inventiv_domain::ApiKeyId;
use inventiv_service::api_keys::{self, ApiKey, NewKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list)
        .service(create)
        .service(rename)
        .service(activation)
        .service(revoke);
}

/// A key's metadata (never its secret).
#[derive(Serialize, ToSchema)]
pub struct ApiKeyDto {
    id: Uuid,
    name: String,
    /// The first characters of the secret, to recognize it.
    prefix: String,
    /// `personal` or `org` (the badge).
    scope: &'static str,
    organization_id: Option<Uuid>,
    organization_name: Option<String>,
    owner_user_id: Uuid,
    allowed_models: Option<Vec<String>>,
    #[serde(with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    revoked_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    /// Monthly spend ceiling in micro-EUR (calendar month, UTC); null: none.
    monthly_cap_micros: Option<i64>,
    /// Charged to this key this month.
    spent_this_month_micros: i64,
    /// Budget held for calls in flight (slices leased by the proxy replicas).
    reserved_micros: i64,
    tech_activated_by: Option<Uuid>,
    eco_activated_by: Option<Uuid>,
    /// Whether the key authenticates: both approvals for an org key, always for a personal
    /// key (a non-operational key is refused with 403 `api_key_not_operational`).
    operational: bool,
    /// The approvals still missing, e.g. `["eco"]` (always empty for a personal key).
    missing_activation: Vec<&'static str>,
    /// Which roles may set each flag.
    can_set: BTreeMap<&'static str, Vec<&'static str>>,
}

fn key_dto(k: ApiKey) -> ApiKeyDto {
    let personal = k.organization_id.is_none();
    ApiKeyDto {
        id: k.id.as_uuid(),
        name: k.name,
        prefix: k.key_prefix,
        scope: if k.organization_id.is_some() {
            "org"
        } else {
            "personal"
        },
        organization_id: k.organization_id.map(|o| o.as_uuid()),
        organization_name: k.organization_name,
        owner_user_id: k.owner_user_id.as_uuid(),
        allowed_models: k.allowed_models,
        expires_at: k.expires_at,
        last_used_at: k.last_used_at,
        revoked_at: k.revoked_at,
        created_at: k.created_at,
        monthly_cap_micros: k.monthly_cap_micros,
        spent_this_month_micros: k.spent_this_month_micros,
        reserved_micros: k.reserved_micros,
        tech_activated_by: k.activation.tech_by.map(|u| u.as_uuid()),
        eco_activated_by: k.activation.eco_by.map(|u| u.as_uuid()),
        operational: k.activation.operational(personal),
        missing_activation: k
            .activation
            .missing(personal)
            .iter()
            .map(|f| f.as_str())
            .collect(),
        can_set: can_set_map(),
    }
}

/// The org's keys (org workspace) or my personal keys; metadata only.
#[utoipa::path(tag = "api_keys", params(PageQuery), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Keys", body = Page<ApiKeyDto>),
))]
#[get("")]
async fn list(
    state: web::Data<AppState>,
    ctx: Caller,
    query: web::Query<PageQuery>,
) -> Result<web::Json<Page<ApiKeyDto>>, ApiError> {
    Ok(web::Json(page(
        api_keys::list(&state.deps, &ctx, &query.request()).await?,
        key_dto,
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// 1 to 100 printable characters.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// RFC 3339; years 1970 to 9999 (UTC).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<OffsetDateTime>,
    /// Restrict the key to these models/offerings (`org_slug/code` or public model ids).
    #[schema(min_items = 1, max_items = 100)]
    allowed_models: Option<Vec<String>>,
    /// Monthly spend ceiling in micro-EUR (org keys: owner/manager only).
    #[schema(minimum = 0)]
    monthly_cap_micros: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    key: ApiKeyDto,
    /// `sk-inv-…`: shown this once, never again.
    secret: String,
}

/// Create a key (org: owner/admin; Personal: for myself). The secret is in this answer only.
#[utoipa::path(tag = "api_keys", security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 201, description = "Created", body = CreatedKey),
    (status = 400, description = "Invalid name, expiry or allowed_models", body = ErrorBody),
    (status = 403, description = "Role may not create keys", body = ErrorBody),
))]
#[post("")]
async fn create(
    state: web::Data<AppState>,
    ctx: Caller,
    body: Json<CreateKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let input = NewKey {
        name: b.name,
        expires_at: opt_date("expires_at", b.expires_at)?,
        allowed_models: b.allowed_models,
        monthly_cap_micros: b.monthly_cap_micros,
    };
    let (key, secret) = api_keys::create(&state.deps, &ctx, input).await?;
    Ok(HttpResponse::Created().json(CreatedKey {
        key: key_dto(key),
        secret,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateKeyRequest {
    /// 1 to 100 printable characters.
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    /// Monthly spend ceiling in micro-EUR, or null to remove it (org keys: owner/manager only).
    #[serde(default, deserialize_with = "crate::dto::double_option")]
    #[schema(value_type = Option<i64>, minimum = 0)]
    monthly_cap_micros: Option<Option<i64>>,
}

/// Rename a key or change its monthly cap.
#[utoipa::path(tag = "api_keys", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Changed", body = ApiKeyDto),
    (status = 400, description = "Invalid name or cap", body = ErrorBody),
    (status = 403, description = "Role may not manage keys", body = ErrorBody),
    (status = 404, description = "No such key in this workspace", body = ErrorBody),
))]
#[put("/{id}")]
async fn rename(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<ApiKeyId>,
    body: Json<UpdateKeyRequest>,
) -> Result<web::Json<ApiKeyDto>, ApiError> {
    let b = body.into_inner();
    let change = api_keys::KeyChange {
        name: b.name,
        monthly_cap_micros: b.monthly_cap_micros,
    };
    let key = api_keys::update(&state.deps, &ctx, path.into_inner(), change).await?;
    Ok(web::Json(key_dto(key)))
}

/// Revoke a key: refused on its very next request.
#[utoipa::path(tag = "api_keys", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 204, description = "Revoked"),
    (status = 403, description = "Role may not manage keys", body = ErrorBody),
    (status = 404, description = "No such key in this workspace", body = ErrorBody),
    (status = 409, description = "`already_revoked`", body = ErrorBody),
))]
#[delete("/{id}")]
async fn revoke(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<ApiKeyId>,
) -> Result<HttpResponse, ApiError> {
    api_keys::revoke(&state.deps, &ctx, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Set or clear an approval of an org key: tech by owner/admin, eco by owner/manager. An org
/// key authenticates only once both are on.
#[utoipa::path(tag = "api_keys", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "The key with its new activation state", body = ApiKeyDto),
    (status = 403, description = "Role may not set this flag", body = ErrorBody),
    (status = 404, description = "No such key in this workspace", body = ErrorBody),
    (status = 409, description = "`distinct_activators_required`", body = ErrorBody),
))]
#[post("/{id}/activation")]
async fn activation(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<ApiKeyId>,
    body: Json<ActivationRequest>,
) -> Result<web::Json<ApiKeyDto>, ApiError> {
    let id = path.into_inner();
    let key = api_keys::set_activation(&state.deps, &ctx, id, body.flag, body.active).await?;
    Ok(web::Json(key_dto(key)))
}
