//! Offerings and shares (SPEC §4.4).

use crate::AppState;
use crate::dto::{Page, PageQuery, double_option, page};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Authenticated, Json, Meta};
use crate::routes::instances::can_set_map;
use actix_web::{HttpResponse, get, patch, post, web};
use inventiv_domain::{Flag, ModelId, OfferingId, ShareId};
use inventiv_service::sharing::{
    self, NewGrant, NewOffering, Offering, OfferingChange, Share, ShareSide, ShareTransition,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_offerings)
        .service(create_offering)
        .service(update_offering)
        .service(offering_activation)
        .service(list_shares)
        .service(grant)
        .service(pause)
        .service(resume)
        .service(revoke)
        .service(update_share)
        .service(share_activation);
}

#[derive(Serialize, ToSchema)]
pub struct OfferingDto {
    id: Uuid,
    /// What clients put in `model`: `<org_slug>/<code>`.
    name_for_clients: String,
    code: String,
    name: String,
    description: Option<String>,
    model_id: Uuid,
    upstream_model: String,
    visibility: String,
    /// Published.
    is_active: bool,
    default_price_input_micros_per_1k: i64,
    default_price_output_micros_per_1k: i64,
    operational: bool,
    missing_activation: Vec<&'static str>,
    can_set: BTreeMap<&'static str, Vec<&'static str>>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

fn offering_dto(o: Offering) -> OfferingDto {
    OfferingDto {
        id: o.id.as_uuid(),
        name_for_clients: format!("{}/{}", o.organization_slug, o.code),
        code: o.code,
        name: o.name,
        description: o.description,
        model_id: o.model_id.as_uuid(),
        upstream_model: o.upstream_model,
        visibility: o.visibility,
        is_active: o.is_active,
        default_price_input_micros_per_1k: o.default_price_input_micros_per_1k,
        default_price_output_micros_per_1k: o.default_price_output_micros_per_1k,
        operational: o.activation.operational(false),
        missing_activation: o
            .activation
            .missing(false)
            .iter()
            .map(|f| f.as_str())
            .collect(),
        can_set: can_set_map(),
        created_at: o.created_at,
    }
}

#[derive(Serialize, ToSchema)]
pub struct ShareDto {
    id: Uuid,
    provider_organization_id: Uuid,
    provider_organization_slug: String,
    consumer_organization_id: Uuid,
    consumer_organization_slug: String,
    offering_id: Uuid,
    /// What the consumer puts in `model`.
    name_for_clients: String,
    /// active, paused, revoked or expired (expiry computed now).
    status: String,
    price_input_micros_per_1k: i64,
    price_output_micros_per_1k: i64,
    #[serde(with = "time::serde::rfc3339")]
    starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    ends_at: Option<OffsetDateTime>,
    operational: bool,
    missing_activation: Vec<&'static str>,
    can_set: BTreeMap<&'static str, Vec<&'static str>>,
}

fn share_dto(s: Share, now: OffsetDateTime) -> ShareDto {
    ShareDto {
        id: s.id.as_uuid(),
        provider_organization_id: s.provider_organization_id.as_uuid(),
        name_for_clients: format!("{}/{}", s.provider_slug, s.offering_code),
        provider_organization_slug: s.provider_slug.clone(),
        consumer_organization_id: s.consumer_organization_id.as_uuid(),
        consumer_organization_slug: s.consumer_slug.clone(),
        offering_id: s.offering_id.as_uuid(),
        status: sharing::effective_status(&s, now).as_str().to_owned(),
        price_input_micros_per_1k: s.price_input_micros_per_1k,
        price_output_micros_per_1k: s.price_output_micros_per_1k,
        starts_at: s.starts_at,
        ends_at: s.ends_at,
        operational: s.activation.operational(false),
        missing_activation: s
            .activation
            .missing(false)
            .iter()
            .map(|f| f.as_str())
            .collect(),
        can_set: can_set_map(),
    }
}

/// This org's offerings.
#[utoipa::path(tag = "sharing", params(PageQuery), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Offerings", body = Page<OfferingDto>),
    (status = 403, description = "Not in an organization workspace", body = ErrorBody),
))]
#[get("/organizations/current/offerings")]
async fn list_offerings(
    state: web::Data<AppState>,
    who: Authenticated,
    q: web::Query<PageQuery>,
) -> Result<web::Json<Page<OfferingDto>>, ApiError> {
    Ok(web::Json(page(
        sharing::list_offerings(&state.deps, &who.0, &q.request()).await?,
        offering_dto,
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOfferingRequest {
    /// A public model or one of this org's models.
    model_id: Uuid,
    /// `[a-z0-9-]`, 2..64, unique in this org.
    #[schema(min_length = 2, max_length = 64, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$")]
    code: String,
    /// 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    description: Option<String>,
    /// `private` (default) or `public`.
    #[schema(inline, value_type = Option<VisibilityName>)]
    visibility: Option<String>,
}

/// Create an offering (owner/admin): unpublished, priced 0, awaiting both approvals.
#[utoipa::path(tag = "sharing", security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 201, description = "Created", body = OfferingDto),
    (status = 400, description = "Invalid field", body = ErrorBody),
    (status = 403, description = "Role may not manage offerings", body = ErrorBody),
    (status = 409, description = "`code_taken`", body = ErrorBody),
))]
#[post("/organizations/current/offerings")]
async fn create_offering(
    state: web::Data<AppState>,
    who: Authenticated,
    meta: Meta,
    body: Json<CreateOfferingRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let input = NewOffering {
        model_id: ModelId::from_uuid(b.model_id),
        code: b.code,
        name: b.name,
        description: b.description,
        visibility: b.visibility,
    };
    Ok(HttpResponse::Created().json(offering_dto(
        sharing::create_offering(&state.deps, &who.0, input, &meta.0).await?,
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOfferingRequest {
    #[schema(min_length = 2, max_length = 64, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$")]
    code: Option<String>,
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    description: Option<Option<String>>,
    #[schema(inline, value_type = Option<VisibilityName>)]
    visibility: Option<String>,
    /// true publishes, false unpublishes.
    is_active: Option<bool>,
    /// Owner/manager; clears the economic approval.
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    default_price_input_micros_per_1k: Option<i64>,
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    default_price_output_micros_per_1k: Option<i64>,
}

/// Update an offering: fields and publishing (owner/admin), prices (owner/manager; clears eco).
#[utoipa::path(tag = "sharing", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Updated", body = OfferingDto),
    (status = 403, description = "Role may not change these fields", body = ErrorBody),
    (status = 404, description = "No such offering here", body = ErrorBody),
))]
#[patch("/organizations/current/offerings/{id}")]
async fn update_offering(
    state: web::Data<AppState>,
    who: Authenticated,
    meta: Meta,
    path: web::Path<Uuid>,
    body: Json<UpdateOfferingRequest>,
) -> Result<web::Json<OfferingDto>, ApiError> {
    let b = body.into_inner();
    let prices = match (
        b.default_price_input_micros_per_1k,
        b.default_price_output_micros_per_1k,
    ) {
        (None, None) => None,
        (i, o) => Some((i.unwrap_or(0), o.unwrap_or(0))),
    };
    let change = OfferingChange {
        code: b.code,
        name: b.name,
        description: b.description,
        visibility: b.visibility,
        is_active: b.is_active,
        prices,
    };
    let id = OfferingId::from_uuid(path.into_inner());
    Ok(web::Json(offering_dto(
        sharing::update_offering(&state.deps, &who.0, id, change, &meta.0).await?,
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlagRequest {
    #[schema(inline, value_type = crate::dto::names::FlagName)]
    flag: Flag,
    active: bool,
}

/// Set or clear an approval of an offering (tech: owner/admin, eco: owner/manager).
#[utoipa::path(tag = "sharing", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Updated", body = OfferingDto),
    (status = 403, description = "Role may not set this flag", body = ErrorBody),
    (status = 409, description = "`distinct_activators_required`", body = ErrorBody),
))]
#[post("/organizations/current/offerings/{id}/activation")]
async fn offering_activation(
    state: web::Data<AppState>,
    who: Authenticated,
    meta: Meta,
    path: web::Path<Uuid>,
    body: Json<FlagRequest>,
) -> Result<web::Json<OfferingDto>, ApiError> {
    let id = OfferingId::from_uuid(path.into_inner());
    Ok(web::Json(offering_dto(
        sharing::set_offering_activation(&state.deps, &who.0, id, body.flag, body.active, &meta.0)
            .await?,
    )))
}

/// Schema-only: who may be granted an offering.
#[derive(ToSchema)]
#[allow(dead_code)]
enum VisibilityName {
    #[schema(rename = "private")]
    Private,
    #[schema(rename = "public")]
    Public,
}

/// Schema-only: the sides of a share list.
#[derive(ToSchema)]
#[allow(dead_code)]
enum ShareSideName {
    #[schema(rename = "provider")]
    Provider,
    #[schema(rename = "consumer")]
    Consumer,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShareQuery {
    /// `provider` (default: the shares this org gives) or `consumer` (those it receives).
    #[param(inline, value_type = Option<ShareSideName>)]
    side: Option<String>,
    /// 1..200, default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    cursor: Option<String>,
}

/// Shares this org gives or receives.
#[utoipa::path(tag = "sharing", params(ShareQuery), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Shares", body = Page<ShareDto>),
    (status = 403, description = "Not in an organization workspace", body = ErrorBody),
))]
#[get("/organizations/current/shares")]
async fn list_shares(
    state: web::Data<AppState>,
    who: Authenticated,
    q: web::Query<ShareQuery>,
) -> Result<web::Json<Page<ShareDto>>, ApiError> {
    let q = q.into_inner();
    let side = match q.side.as_deref() {
        None | Some("provider") => ShareSide::Provider,
        Some("consumer") => ShareSide::Consumer,
        Some(_) => {
            return Err(
                inventiv_service::ServiceError::invalid("side", "provider or consumer").into(),
            );
        }
    };
    let paging = inventiv_service::paging::PageRequest {
        limit: q.limit,
        cursor: q.cursor,
    };
    let now = state.deps.clock.now();
    Ok(web::Json(page(
        sharing::list_shares(&state.deps, &who.0, side, &paging).await?,
        |s| share_dto(s, now),
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    offering_id: Uuid,
    consumer_organization_slug: String,
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    price_input_micros_per_1k: i64,
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    price_output_micros_per_1k: i64,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    ends_at: Option<OffsetDateTime>,
}

/// Grant an offering to another org (owner/admin of the provider).
#[utoipa::path(tag = "sharing", security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 201, description = "Granted", body = ShareDto),
    (status = 400, description = "Unknown offering or consumer, invalid price or end", body = ErrorBody),
    (status = 403, description = "Role may not manage shares", body = ErrorBody),
    (status = 409, description = "`share_exists`", body = ErrorBody),
))]
#[post("/organizations/current/shares")]
async fn grant(
    state: web::Data<AppState>,
    who: Authenticated,
    meta: Meta,
    body: Json<GrantRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let input = NewGrant {
        offering_id: OfferingId::from_uuid(b.offering_id),
        consumer_slug: b.consumer_organization_slug,
        prices: (b.price_input_micros_per_1k, b.price_output_micros_per_1k),
        ends_at: b.ends_at,
    };
    let share = sharing::grant(&state.deps, &who.0, input, &meta.0).await?;
    Ok(HttpResponse::Created().json(share_dto(share, state.deps.clock.now())))
}

async fn transition(
    state: web::Data<AppState>,
    who: Authenticated,
    meta: Meta,
    id: Uuid,
    change: ShareTransition,
) -> Result<web::Json<ShareDto>, ApiError> {
    let share =
        sharing::transition(&state.deps, &who.0, ShareId::from_uuid(id), change, &meta.0).await?;
    Ok(web::Json(share_dto(share, state.deps.clock.now())))
}

/// Pause a share (provider owner/admin).
#[utoipa::path(tag = "sharing", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Paused", body = ShareDto),
    (status = 404, description = "Not a share this org provides", body = ErrorBody),
    (status = 409, description = "`invalid_state`", body = ErrorBody),
))]
#[post("/organizations/current/shares/{id}/pause")]
async fn pause(
    state: web::Data<AppState>,
    who: Authenticated,
    meta: Meta,
    path: web::Path<Uuid>,
) -> Result<web::Json<ShareDto>, ApiError> {
    transition(state, who, meta, path.into_inner(), ShareTransition::Pause).await
}

/// Resume a paused share.
#[utoipa::path(tag = "sharing", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Active again", body = ShareDto),
    (status = 409, description = "`invalid_state`", body = ErrorBody),
))]
#[post("/organizations/current/shares/{id}/resume")]
async fn resume(
    state: web::Data<AppState>,
    who: Authenticated,
    meta: Meta,
    path: web::Path<Uuid>,
) -> Result<web::Json<ShareDto>, ApiError> {
    transition(state, who, meta, path.into_inner(), ShareTransition::Resume).await
}

/// Revoke a share (terminal).
#[utoipa::path(tag = "sharing", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Revoked", body = ShareDto),
    (status = 409, description = "`invalid_state`", body = ErrorBody),
))]
#[post("/organizations/current/shares/{id}/revoke")]
async fn revoke(
    state: web::Data<AppState>,
    who: Authenticated,
    meta: Meta,
    path: web::Path<Uuid>,
) -> Result<web::Json<ShareDto>, ApiError> {
    transition(state, who, meta, path.into_inner(), ShareTransition::Revoke).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SharePriceRequest {
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    price_input_micros_per_1k: i64,
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    price_output_micros_per_1k: i64,
}

/// Change a share's prices (provider owner/manager); clears its economic approval.
#[utoipa::path(tag = "sharing", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Repriced", body = ShareDto),
    (status = 403, description = "Role may not set prices", body = ErrorBody),
))]
#[patch("/organizations/current/shares/{id}")]
async fn update_share(
    state: web::Data<AppState>,
    who: Authenticated,
    meta: Meta,
    path: web::Path<Uuid>,
    body: Json<SharePriceRequest>,
) -> Result<web::Json<ShareDto>, ApiError> {
    let prices = (
        body.price_input_micros_per_1k,
        body.price_output_micros_per_1k,
    );
    let share = sharing::set_share_prices(
        &state.deps,
        &who.0,
        ShareId::from_uuid(path.into_inner()),
        prices,
        &meta.0,
    )
    .await?;
    Ok(web::Json(share_dto(share, state.deps.clock.now())))
}

/// Set or clear an approval of a share (provider side).
#[utoipa::path(tag = "sharing", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Updated", body = ShareDto),
    (status = 403, description = "Role may not set this flag", body = ErrorBody),
))]
#[post("/organizations/current/shares/{id}/activation")]
async fn share_activation(
    state: web::Data<AppState>,
    who: Authenticated,
    meta: Meta,
    path: web::Path<Uuid>,
    body: Json<FlagRequest>,
) -> Result<web::Json<ShareDto>, ApiError> {
    let share = sharing::set_share_activation(
        &state.deps,
        &who.0,
        ShareId::from_uuid(path.into_inner()),
        body.flag,
        body.active,
        &meta.0,
    )
    .await?;
    Ok(web::Json(share_dto(share, state.deps.clock.now())))
}
