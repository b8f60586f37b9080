//! Offerings and shares (SPEC §4.4).

use crate::AppState;
use crate::dto::{Page, PageQuery, date, double_option, opt_date, page, query_value};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, Json};
use crate::routes::instances::can_set_map;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use inventiv_domain::offering::Visibility;
use inventiv_domain::{Flag, ModelId, OfferingId, OrgId, ShareId, ShareParty};
use inventiv_service::offerings::{self, NewOffering, Offering, OfferingChange};
use inventiv_service::shares::{self, NewGrant, Share, ShareChange, ShareTransition};
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
        .service(delete_offering)
        .service(list_shares)
        .service(grant)
        .service(accept)
        .service(decline)
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
    /// Its two approvals and, for an org model, the model's.
    operational: bool,
    /// Any of `tech`, `eco`, and `model` (the org model is not operational).
    missing_activation: Vec<&'static str>,
    can_set: BTreeMap<&'static str, Vec<&'static str>>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

fn offering_dto(o: Offering) -> OfferingDto {
    let (operational, missing_activation) = (o.operational(), o.missing_activation());
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
        operational,
        missing_activation,
        can_set: can_set_map(),
        created_at: o.created_at,
    }
}

/// One party of a share.
#[derive(Serialize, ToSchema)]
pub struct ShareOrgDto {
    id: Uuid,
    slug: String,
    name: String,
}

/// What only the consumer sees of a share it receives. Never sent to the provider.
#[derive(Serialize, ToSchema)]
pub struct ConsumerTermsDto {
    /// The consumer's monthly ceiling on this share in micro-EUR; null = no cap.
    monthly_cap_micros: Option<i64>,
    /// Charged on this share this calendar month (UTC).
    spent_this_month_micros: i64,
    /// Budget held by the proxy for calls in flight (see docs/spend-caps.md).
    reserved_micros: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ShareDto {
    id: Uuid,
    provider_organization: ShareOrgDto,
    consumer_organization: ShareOrgDto,
    provider_organization_id: Uuid,
    provider_organization_slug: String,
    consumer_organization_id: Uuid,
    consumer_organization_slug: String,
    offering_id: Uuid,
    /// What the consumer puts in `model`.
    name_for_clients: String,
    /// proposed, active, declined, revoked or expired.
    status: String,
    /// Moves on with every change of prices or `ends_at`; the consumer accepts one version.
    contract_version: i64,
    /// The version the consumer last accepted (null: never).
    accepted_version: Option<i64>,
    price_input_micros_per_1k: i64,
    price_output_micros_per_1k: i64,
    #[serde(with = "time::serde::rfc3339")]
    starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    ends_at: Option<OffsetDateTime>,
    /// When an unanswered proposal expires.
    #[serde(with = "time::serde::rfc3339::option")]
    proposal_expires_at: Option<OffsetDateTime>,
    provider_paused: bool,
    consumer_paused: bool,
    operational: bool,
    /// Any of `tech`, `eco` (the provider's approvals) and `consumer_acceptance`.
    missing_activation: Vec<&'static str>,
    can_set: BTreeMap<&'static str, Vec<&'static str>>,
    /// Present only in the consumer's view.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    #[schema(inline)]
    consumer_terms: Option<ConsumerTermsDto>,
}

/// `viewer` is the org asking: the consumer's own terms are shown to the consumer only.
fn share_dto(s: Share, viewer: Option<OrgId>, now: OffsetDateTime) -> ShareDto {
    let consumer_terms = (viewer == Some(s.consumer_organization_id)).then_some(ConsumerTermsDto {
        monthly_cap_micros: s.monthly_cap_micros,
        spent_this_month_micros: s.spent_this_month_micros,
        reserved_micros: s.reserved_micros,
    });
    ShareDto {
        id: s.id.as_uuid(),
        provider_organization: ShareOrgDto {
            id: s.provider_organization_id.as_uuid(),
            slug: s.provider_slug.clone(),
            name: s.provider_name.clone(),
        },
        consumer_organization: ShareOrgDto {
            id: s.consumer_organization_id.as_uuid(),
            slug: s.consumer_slug.clone(),
            name: s.consumer_name.clone(),
        },
        provider_organization_id: s.provider_organization_id.as_uuid(),
        name_for_clients: format!("{}/{}", s.provider_slug, s.offering_code),
        provider_organization_slug: s.provider_slug.clone(),
        consumer_organization_id: s.consumer_organization_id.as_uuid(),
        consumer_organization_slug: s.consumer_slug.clone(),
        offering_id: s.offering_id.as_uuid(),
        status: s.state.effective(now).as_str().to_owned(),
        contract_version: s.state.contract_version,
        accepted_version: s.state.accepted_version,
        price_input_micros_per_1k: s.price_input_micros_per_1k,
        price_output_micros_per_1k: s.price_output_micros_per_1k,
        starts_at: s.state.starts_at,
        ends_at: s.state.ends_at,
        proposal_expires_at: s.state.proposal_expires_at,
        provider_paused: s.state.provider_paused,
        consumer_paused: s.state.consumer_paused,
        operational: s.operational(now),
        missing_activation: s.missing_activation(now),
        can_set: can_set_map(),
        consumer_terms,
    }
}

fn viewer(ctx: &inventiv_service::Ctx) -> Option<OrgId> {
    match ctx.actor().workspace {
        inventiv_domain::Workspace::Org { org, .. } => Some(org),
        inventiv_domain::Workspace::Personal => None,
    }
}

/// This org's offerings.
#[utoipa::path(tag = "sharing", params(PageQuery), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Offerings", body = Page<OfferingDto>),
    (status = 403, description = "Not in an organization workspace", body = ErrorBody),
))]
#[get("/current/offerings")]
async fn list_offerings(
    state: web::Data<AppState>,
    ctx: Caller,
    q: web::Query<PageQuery>,
) -> Result<web::Json<Page<OfferingDto>>, ApiError> {
    Ok(web::Json(page(
        offerings::list(&state.deps, &ctx, &q.request()).await?,
        offering_dto,
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOfferingRequest {
    /// A public model or one of this org's models.
    model_id: ModelId,
    /// `[a-z0-9-]`, 2..64, unique in this org.
    #[schema(min_length = 2, max_length = 64, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$")]
    code: String,
    /// 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// At most 1000 characters.
    #[schema(max_length = 1000)]
    description: Option<String>,
    /// `private` (default) or `public`.
    // A string, checked by the service (`validation_failed`, not serde's `invalid_body`).
    #[schema(inline, value_type = Option<Visibility>)]
    visibility: Option<String>,
    /// Default prices (owner/admin may set them at creation; later changes: owner/manager).
    #[schema(minimum = 0, maximum = 10_000_000)]
    default_price_input_micros_per_1k: Option<i64>,
    #[schema(minimum = 0, maximum = 10_000_000)]
    default_price_output_micros_per_1k: Option<i64>,
}

/// Create an offering (owner/admin): unpublished, at its default prices (0 if absent),
/// awaiting both approvals.
#[utoipa::path(tag = "sharing", security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 201, description = "Created", body = OfferingDto),
    (status = 400, description = "Invalid field", body = ErrorBody),
    (status = 403, description = "Role may not manage offerings", body = ErrorBody),
    (status = 409, description = "`code_taken`", body = ErrorBody),
))]
#[post("/current/offerings")]
async fn create_offering(
    state: web::Data<AppState>,
    ctx: Caller,
    body: Json<CreateOfferingRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let input = NewOffering {
        model_id: b.model_id,
        code: b.code,
        name: b.name,
        description: b.description,
        visibility: b.visibility,
        default_prices: (
            b.default_price_input_micros_per_1k,
            b.default_price_output_micros_per_1k,
        ),
    };
    Ok(HttpResponse::Created().json(offering_dto(
        offerings::create(&state.deps, &ctx, input).await?,
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOfferingRequest {
    #[schema(min_length = 2, max_length = 64, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$")]
    code: Option<String>,
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    /// At most 1000 characters.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, max_length = 1000)]
    description: Option<Option<String>>,
    // A string, checked by the service (`validation_failed`, not serde's `invalid_body`).
    #[schema(inline, value_type = Option<Visibility>)]
    visibility: Option<String>,
    /// true publishes, false unpublishes.
    is_active: Option<bool>,
    /// Owner/manager; clears the economic approval.
    #[schema(minimum = 0, maximum = 10_000_000)]
    default_price_input_micros_per_1k: Option<i64>,
    #[schema(minimum = 0, maximum = 10_000_000)]
    default_price_output_micros_per_1k: Option<i64>,
}

/// Update an offering: fields and publishing (owner/admin), prices (owner/manager; clears eco).
#[utoipa::path(tag = "sharing", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Updated", body = OfferingDto),
    (status = 403, description = "Role may not change these fields", body = ErrorBody),
    (status = 404, description = "No such offering here", body = ErrorBody),
))]
#[patch("/current/offerings/{id}")]
async fn update_offering(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<OfferingId>,
    body: Json<UpdateOfferingRequest>,
) -> Result<web::Json<OfferingDto>, ApiError> {
    let change = body.into_inner().into();
    let id = path.into_inner();
    Ok(web::Json(offering_dto(
        offerings::update(&state.deps, &ctx, id, change).await?,
    )))
}

impl From<UpdateOfferingRequest> for OfferingChange {
    fn from(b: UpdateOfferingRequest) -> Self {
        // One price given alone sets the other to 0: a pair is always written whole.
        let prices = match (
            b.default_price_input_micros_per_1k,
            b.default_price_output_micros_per_1k,
        ) {
            (None, None) => None,
            (i, o) => Some((i.unwrap_or(0), o.unwrap_or(0))),
        };
        OfferingChange {
            code: b.code,
            name: b.name,
            description: b.description,
            visibility: b.visibility,
            is_active: b.is_active,
            prices,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlagRequest {
    #[schema(inline)]
    flag: Flag,
    active: bool,
}

/// Set or clear an approval of an offering (tech: owner/admin, eco: owner/manager).
#[utoipa::path(tag = "sharing", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Updated", body = OfferingDto),
    (status = 403, description = "Role may not set this flag", body = ErrorBody),
    (status = 409, description = "`distinct_activators_required`", body = ErrorBody),
))]
#[post("/current/offerings/{id}/activation")]
async fn offering_activation(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<OfferingId>,
    body: Json<FlagRequest>,
) -> Result<web::Json<OfferingDto>, ApiError> {
    let id = path.into_inner();
    Ok(web::Json(offering_dto(
        offerings::set_activation(&state.deps, &ctx, id, body.flag, body.active).await?,
    )))
}

/// Delete an offering (owner/admin); refused while a share of it is proposed or active.
#[utoipa::path(tag = "sharing", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 204, description = "Deleted"),
    (status = 403, description = "Role may not manage offerings", body = ErrorBody),
    (status = 404, description = "No such offering here", body = ErrorBody),
    (status = 409, description = "`offering_in_use`", body = ErrorBody),
))]
#[delete("/current/offerings/{id}")]
async fn delete_offering(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<OfferingId>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    offerings::delete(&state.deps, &ctx, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShareQuery {
    /// `provider` (default: the shares this org gives) or `consumer` (those it receives).
    // Read by `query_value`: an unknown name is `validation_failed`, not `invalid_query`.
    #[param(inline, value_type = Option<ShareParty>)]
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
#[get("/current/shares")]
async fn list_shares(
    state: web::Data<AppState>,
    ctx: Caller,
    q: web::Query<ShareQuery>,
) -> Result<web::Json<Page<ShareDto>>, ApiError> {
    let q = q.into_inner();
    let side = query_value(q.side.as_deref())?.unwrap_or(ShareParty::Provider);
    let paging = inventiv_service::paging::PageRequest {
        limit: q.limit,
        cursor: q.cursor,
    };
    let now = state.deps.clock.now();
    let org = viewer(&ctx);
    Ok(web::Json(page(
        shares::list(&state.deps, &ctx, side, &paging).await?,
        |s| share_dto(s, org, now),
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    offering_id: OfferingId,
    consumer_organization_slug: String,
    #[schema(minimum = 0, maximum = 10_000_000)]
    price_input_micros_per_1k: i64,
    #[schema(minimum = 0, maximum = 10_000_000)]
    price_output_micros_per_1k: i64,
    /// RFC 3339; years 1970 to 9999 (UTC).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    ends_at: Option<OffsetDateTime>,
}

/// Propose an offering to another org (owner/admin of the provider): `proposed` until the
/// consumer accepts.
#[utoipa::path(tag = "sharing", security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 201, description = "Proposed", body = ShareDto),
    (status = 400, description = "Unknown offering or consumer, invalid price or end", body = ErrorBody),
    (status = 403, description = "Role may not manage shares", body = ErrorBody),
    (status = 409, description = "`share_exists`", body = ErrorBody),
))]
#[post("/current/shares")]
async fn grant(
    state: web::Data<AppState>,
    ctx: Caller,
    body: Json<GrantRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let input = NewGrant {
        offering_id: b.offering_id,
        consumer_slug: b.consumer_organization_slug,
        prices: (b.price_input_micros_per_1k, b.price_output_micros_per_1k),
        ends_at: opt_date("ends_at", b.ends_at)?,
    };
    let share = shares::grant(&state.deps, &ctx, input).await?;
    Ok(HttpResponse::Created().json(share_dto(share, viewer(&ctx), state.deps.clock.now())))
}

async fn transition(
    state: web::Data<AppState>,
    ctx: Caller,
    id: ShareId,
    change: ShareTransition,
) -> Result<web::Json<ShareDto>, ApiError> {
    let share = shares::transition(&state.deps, &ctx, id, change).await?;
    Ok(web::Json(share_dto(
        share,
        viewer(&ctx),
        state.deps.clock.now(),
    )))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct AcceptRequest {
    /// The version the consumer read; when given it must be the current one (409
    /// `contract_changed` otherwise).
    contract_version: Option<i64>,
}

/// Accept a received share at its current terms (consumer owner/manager): `proposed` → `active`.
#[utoipa::path(tag = "sharing", params(("id" = Uuid, Path)), request_body(content = AcceptRequest, description = "Optional: an empty body accepts the current version"), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Active", body = ShareDto),
    (status = 403, description = "Role may not accept, or this org is the provider (`consumer_only`)", body = ErrorBody),
    (status = 404, description = "Not a share of this org", body = ErrorBody),
    (status = 409, description = "`contract_changed`, `invalid_state`", body = ErrorBody),
))]
#[post("/current/shares/{id}/accept")]
async fn accept(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<ShareId>,
    req: actix_web::HttpRequest,
    body: Result<Json<AcceptRequest>, actix_web::Error>,
) -> Result<web::Json<ShareDto>, actix_web::Error> {
    let version = optional_body(&req, body)?.and_then(|b| b.contract_version);
    let share = shares::accept(&state.deps, &ctx, path.into_inner(), version)
        .await
        .map_err(ApiError::from)?;
    Ok(web::Json(share_dto(
        share,
        viewer(&ctx),
        state.deps.clock.now(),
    )))
}

/// An optional JSON body: absent (no `Transfer-Encoding`, no or zero `Content-Length`) is
/// `None`; a body that is there must be valid — a malformed version must not silently become
/// "accept whatever is current".
pub(crate) fn optional_body<T>(
    req: &actix_web::HttpRequest,
    body: Result<Json<T>, actix_web::Error>,
) -> Result<Option<T>, actix_web::Error> {
    match body {
        Ok(b) => Ok(Some(b.into_inner())),
        Err(e) => {
            let headers = req.headers();
            let empty = !headers.contains_key(actix_web::http::header::TRANSFER_ENCODING)
                && headers
                    .get(actix_web::http::header::CONTENT_LENGTH)
                    .is_none_or(|len| len.as_bytes() == b"0");
            if empty { Ok(None) } else { Err(e) }
        }
    }
}

/// Decline a proposed share (consumer owner/manager; terminal).
#[utoipa::path(tag = "sharing", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Declined", body = ShareDto),
    (status = 403, description = "Role may not decline, or this org is the provider (`consumer_only`)", body = ErrorBody),
    (status = 404, description = "Not a share of this org", body = ErrorBody),
    (status = 409, description = "`invalid_state`", body = ErrorBody),
))]
#[post("/current/shares/{id}/decline")]
async fn decline(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<ShareId>,
) -> Result<web::Json<ShareDto>, ApiError> {
    let share = shares::decline(&state.deps, &ctx, path.into_inner()).await?;
    Ok(web::Json(share_dto(
        share,
        viewer(&ctx),
        state.deps.clock.now(),
    )))
}

/// Pause a share: sets this side's own flag (provider owner/admin, consumer owner/admin/manager).
#[utoipa::path(tag = "sharing", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Paused", body = ShareDto),
    (status = 404, description = "Not a share of this org", body = ErrorBody),
    (status = 409, description = "`invalid_state`", body = ErrorBody),
))]
#[post("/current/shares/{id}/pause")]
async fn pause(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<ShareId>,
) -> Result<web::Json<ShareDto>, ApiError> {
    transition(state, ctx, path.into_inner(), ShareTransition::Pause).await
}

/// Resume: lifts this side's own pause flag (the other side's stays).
#[utoipa::path(tag = "sharing", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Active again", body = ShareDto),
    (status = 409, description = "`invalid_state`", body = ErrorBody),
))]
#[post("/current/shares/{id}/resume")]
async fn resume(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<ShareId>,
) -> Result<web::Json<ShareDto>, ApiError> {
    transition(state, ctx, path.into_inner(), ShareTransition::Resume).await
}

/// Revoke a share, from either side (terminal).
#[utoipa::path(tag = "sharing", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Revoked", body = ShareDto),
    (status = 409, description = "`invalid_state`", body = ErrorBody),
))]
#[post("/current/shares/{id}/revoke")]
async fn revoke(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<ShareId>,
) -> Result<web::Json<ShareDto>, ApiError> {
    transition(state, ctx, path.into_inner(), ShareTransition::Revoke).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateShareRequest {
    /// Provider owner/manager. A change of terms bumps `contract_version`, clears the eco
    /// approval and puts an active share back to `proposed`.
    #[schema(minimum = 0, maximum = 10_000_000)]
    price_input_micros_per_1k: Option<i64>,
    #[schema(minimum = 0, maximum = 10_000_000)]
    price_output_micros_per_1k: Option<i64>,
    /// Provider owner/manager; RFC 3339, years 1970 to 9999 (UTC); null removes the end.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    ends_at: Option<Option<String>>,
    /// Consumer owner/manager: monthly ceiling in micro-EUR, null removes it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>, minimum = 0)]
    monthly_cap_micros: Option<Option<i64>>,
}

/// Change a share: the provider its terms (prices, `ends_at`), the consumer its spend cap.
#[utoipa::path(tag = "sharing", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Updated", body = ShareDto),
    (status = 400, description = "Invalid field", body = ErrorBody),
    (status = 403, description = "Role may not change this, or the other side's field (`provider_only`, `consumer_only`)", body = ErrorBody),
    (status = 404, description = "Not a share of this org", body = ErrorBody),
    (status = 409, description = "`invalid_state`", body = ErrorBody),
))]
#[patch("/current/shares/{id}")]
async fn update_share(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<ShareId>,
    body: Json<UpdateShareRequest>,
) -> Result<web::Json<ShareDto>, ApiError> {
    let change = ShareChange::try_from(body.into_inner())?;
    let share = shares::update(&state.deps, &ctx, path.into_inner(), change).await?;
    Ok(web::Json(share_dto(
        share,
        viewer(&ctx),
        state.deps.clock.now(),
    )))
}

impl TryFrom<UpdateShareRequest> for ShareChange {
    type Error = ApiError;

    fn try_from(b: UpdateShareRequest) -> Result<Self, ApiError> {
        let ends_at = match b.ends_at {
            None => None,
            Some(None) => Some(None),
            Some(Some(text)) => Some(Some(date(
                "ends_at",
                OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| {
                        inventiv_service::ServiceError::invalid("ends_at", "an RFC 3339 date-time")
                    })?,
            )?)),
        };
        Ok(ShareChange {
            price_input: b.price_input_micros_per_1k,
            price_output: b.price_output_micros_per_1k,
            ends_at,
            monthly_cap_micros: b.monthly_cap_micros,
        })
    }
}

/// Set or clear an approval of a share (provider side).
#[utoipa::path(tag = "sharing", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Updated", body = ShareDto),
    (status = 403, description = "Role may not set this flag", body = ErrorBody),
))]
#[post("/current/shares/{id}/activation")]
async fn share_activation(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<ShareId>,
    body: Json<FlagRequest>,
) -> Result<web::Json<ShareDto>, ApiError> {
    let share =
        shares::set_activation(&state.deps, &ctx, path.into_inner(), body.flag, body.active)
            .await?;
    Ok(web::Json(share_dto(
        share,
        viewer(&ctx),
        state.deps.clock.now(),
    )))
}
