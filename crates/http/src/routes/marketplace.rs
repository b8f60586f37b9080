//! The marketplace and access requests (SPEC §4.7).

use crate::AppState;
use crate::dto::{Page, PageQuery, page, query_value};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, Json};
use crate::routes::sharing::optional_body;
use actix_web::{HttpResponse, get, post, web};
use inventiv_domain::{AccessRequestId, OfferingId, ShareParty};
use inventiv_service::access_requests::{self, AccessRequest};
use inventiv_service::marketplace::{self, Listing};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

/// The offerings and the requests for them (under `/marketplace`).
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_offerings).service(request_access);
}

/// The requests an org received (under `/organizations`).
pub fn configure_requests(cfg: &mut ServiceConfig) {
    cfg.service(list_requests).service(approve).service(reject);
}

/// The org publishing an offering, or a party of an access request.
#[derive(Serialize, ToSchema)]
pub struct MarketOrgDto {
    id: Uuid,
    slug: String,
    name: String,
}

/// A published public offering of another org.
#[derive(Serialize, ToSchema)]
pub struct MarketplaceOfferingDto {
    id: Uuid,
    /// What clients put in `model` once a share is active: `<provider_slug>/<code>`.
    address: String,
    name: String,
    description: Option<String>,
    provider: MarketOrgDto,
    /// The prices an approved access request proposes (0/0: not priced yet, an approval is
    /// refused with `offering_unpriced`).
    default_price_input_micros_per_1k: i64,
    default_price_output_micros_per_1k: i64,
    /// Both of the offering's approvals are on (a share of it needs its own on top).
    operational: bool,
}

fn listing_dto(l: Listing) -> MarketplaceOfferingDto {
    MarketplaceOfferingDto {
        id: l.id.as_uuid(),
        address: l.address(),
        operational: l.operational(),
        name: l.name,
        description: l.description,
        provider: MarketOrgDto {
            id: l.provider_organization_id.as_uuid(),
            slug: l.provider_slug,
            name: l.provider_name,
        },
        default_price_input_micros_per_1k: l.default_price_input_micros_per_1k,
        default_price_output_micros_per_1k: l.default_price_output_micros_per_1k,
    }
}

/// The offering an access request is for.
#[derive(Serialize, ToSchema)]
pub struct RequestedOfferingDto {
    id: Uuid,
    /// `<provider_slug>/<code>`.
    address: String,
    name: String,
}

#[derive(Serialize, ToSchema)]
pub struct AccessRequestDto {
    id: Uuid,
    /// pending, approved or rejected.
    status: String,
    offering: RequestedOfferingDto,
    provider_organization: MarketOrgDto,
    consumer_organization: MarketOrgDto,
    /// The consumer's note to the provider.
    message: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    /// When it was approved or rejected.
    #[serde(with = "time::serde::rfc3339::option")]
    decided_at: Option<OffsetDateTime>,
    /// Rejected: from when the consumer may send a new request.
    #[serde(with = "time::serde::rfc3339::option")]
    renewable_at: Option<OffsetDateTime>,
    /// Approved: the share proposed to the consumer (it accepts it under
    /// `/organizations/current/shares/{id}/accept`).
    share_id: Option<Uuid>,
}

fn request_dto(r: AccessRequest) -> AccessRequestDto {
    AccessRequestDto {
        id: r.id.as_uuid(),
        status: r.status.as_str().to_owned(),
        offering: RequestedOfferingDto {
            id: r.offering_id.as_uuid(),
            address: r.address(),
            name: r.offering_name.clone(),
        },
        renewable_at: r.renewable_at(),
        provider_organization: MarketOrgDto {
            id: r.provider_organization_id.as_uuid(),
            slug: r.provider_slug,
            name: r.provider_name,
        },
        consumer_organization: MarketOrgDto {
            id: r.consumer_organization_id.as_uuid(),
            slug: r.consumer_slug,
            name: r.consumer_name,
        },
        message: r.message,
        created_at: r.created_at,
        decided_at: r.decided_at,
        share_id: r.share_id.map(|s| s.as_uuid()),
    }
}

/// Published public offerings of every other org (any member of an org workspace).
#[utoipa::path(tag = "marketplace", params(PageQuery), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Offerings", body = Page<MarketplaceOfferingDto>),
    (status = 403, description = "`organization_required`: not in an organization workspace", body = ErrorBody),
))]
#[get("/offerings")]
async fn list_offerings(
    state: web::Data<AppState>,
    ctx: Caller,
    q: web::Query<PageQuery>,
) -> Result<web::Json<Page<MarketplaceOfferingDto>>, ApiError> {
    Ok(web::Json(page(
        marketplace::list(&state.deps, &ctx, &q.request()).await?,
        listing_dto,
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessRequestBody {
    /// A note to the provider, up to 1000 characters.
    #[schema(max_length = 1000)]
    message: Option<String>,
}

/// Ask the provider for a share of one of its offerings (owner/manager of the consumer org).
#[utoipa::path(tag = "marketplace", params(("id" = Uuid, Path)), request_body(content = AccessRequestBody, description = "Optional"), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 201, description = "Pending", body = AccessRequestDto),
    (status = 403, description = "Role may not request access", body = ErrorBody),
    (status = 404, description = "No published public offering of another org with this id", body = ErrorBody),
    (status = 409, description = "`access_request_pending`, `access_request_rejected_recently`, `already_shared`", body = ErrorBody),
))]
#[post("/offerings/{id}/access-requests")]
async fn request_access(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<OfferingId>,
    req: actix_web::HttpRequest,
    body: Result<Json<AccessRequestBody>, actix_web::Error>,
) -> Result<HttpResponse, actix_web::Error> {
    let message = optional_body(&req, body)?.and_then(|b| b.message);
    let created = access_requests::create(&state.deps, &ctx, path.into_inner(), message)
        .await
        .map_err(ApiError::from)?;
    Ok(HttpResponse::Created().json(request_dto(created)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccessRequestQuery {
    /// `provider` (default: requests for this org's offerings) or `consumer` (those it sent).
    // Read by `query_value`: an unknown name is `validation_failed`, not `invalid_query`.
    #[param(inline, value_type = Option<ShareParty>)]
    side: Option<String>,
    /// 1..200, default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    cursor: Option<String>,
}

/// Access requests this org received (provider) or sent (consumer), newest first
/// (owner/admin/manager).
#[utoipa::path(tag = "marketplace", params(AccessRequestQuery), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Access requests", body = Page<AccessRequestDto>),
    (status = 403, description = "Role may not see access requests", body = ErrorBody),
))]
#[get("/current/access-requests")]
async fn list_requests(
    state: web::Data<AppState>,
    ctx: Caller,
    q: web::Query<AccessRequestQuery>,
) -> Result<web::Json<Page<AccessRequestDto>>, ApiError> {
    let q = q.into_inner();
    let side = query_value(q.side.as_deref())?.unwrap_or(ShareParty::Provider);
    let paging = inventiv_service::paging::PageRequest {
        limit: q.limit,
        cursor: q.cursor,
    };
    Ok(web::Json(page(
        access_requests::list(&state.deps, &ctx, side, &paging).await?,
        request_dto,
    )))
}

/// Approve a pending request (provider owner/admin): proposes a share at the offering's
/// default prices; the provider's approvals and the consumer's acceptance follow.
#[utoipa::path(tag = "marketplace", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Approved; `share_id` is the proposed share", body = AccessRequestDto),
    (status = 403, description = "Role may not decide, or this org is the consumer (`provider_only`)", body = ErrorBody),
    (status = 404, description = "Not a request of this org", body = ErrorBody),
    (status = 409, description = "`access_request_not_pending`, `offering_unpriced`, `already_shared`", body = ErrorBody),
))]
#[post("/current/access-requests/{id}/approve")]
async fn approve(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<AccessRequestId>,
) -> Result<web::Json<AccessRequestDto>, ApiError> {
    Ok(web::Json(request_dto(
        access_requests::approve(&state.deps, &ctx, path.into_inner()).await?,
    )))
}

/// Reject a pending request (provider owner/admin); the consumer may ask again 7 days later.
#[utoipa::path(tag = "marketplace", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Rejected", body = AccessRequestDto),
    (status = 403, description = "Role may not decide, or this org is the consumer (`provider_only`)", body = ErrorBody),
    (status = 404, description = "Not a request of this org", body = ErrorBody),
    (status = 409, description = "`access_request_not_pending`", body = ErrorBody),
))]
#[post("/current/access-requests/{id}/reject")]
async fn reject(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<AccessRequestId>,
) -> Result<web::Json<AccessRequestDto>, ApiError> {
    Ok(web::Json(request_dto(
        access_requests::reject(&state.deps, &ctx, path.into_inner()).await?,
    )))
}
