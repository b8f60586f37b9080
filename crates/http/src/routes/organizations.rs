//! `/organizations` and `/organizations/current` (SPEC §4.2).

use crate::AppState;
use crate::cookies::session_cookie;
use crate::dto::{MeResponse, MeWithToken, Page, PageQuery, TokenResponse, page};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, Json};
use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use inventiv_domain::OrgId;
use inventiv_service::auth;
use inventiv_service::organizations::{
    self, MyOrganization, NewOrganization, Organization, OrganizationChange,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_mine)
        .service(create)
        .service(switch_workspace)
        .service(update_current)
        .service(delete_current);
}

/// An organization as seen by one of its members.
#[derive(Serialize, ToSchema)]
pub struct OrganizationDto {
    id: Uuid,
    name: String,
    slug: String,
    require_distinct_activators: bool,
    /// The caller's role in it (absent right after creation responses, where it is `owner`).
    role: Option<String>,
    member_count: Option<i64>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

fn org_dto(org: Organization, role: Option<String>, member_count: Option<i64>) -> OrganizationDto {
    OrganizationDto {
        id: org.id.as_uuid(),
        name: org.name.as_str().to_owned(),
        slug: org.slug.as_str().to_owned(),
        require_distinct_activators: org.require_distinct_activators,
        role,
        member_count,
        created_at: org.created_at,
    }
}

/// The organizations I belong to, with my role.
#[utoipa::path(tag = "organizations", params(PageQuery), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "My organizations", body = Page<OrganizationDto>),
    (status = 401, description = "Not signed in", body = ErrorBody),
))]
#[get("")]
async fn list_mine(
    state: web::Data<AppState>,
    ctx: Caller,
    query: web::Query<PageQuery>,
) -> Result<web::Json<Page<OrganizationDto>>, ApiError> {
    let orgs = organizations::list_mine(&state.deps, &ctx, &query.request()).await?;
    Ok(web::Json(page(orgs, |m: MyOrganization| {
        org_dto(
            m.org,
            Some(m.role.as_str().to_owned()),
            Some(m.member_count),
        )
    })))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganizationRequest {
    /// 1..100 characters.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// `[a-z0-9-]`, 2..64; derived from the name when absent.
    #[schema(min_length = 2, max_length = 64, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$")]
    slug: Option<String>,
    /// Switch this session to the new org (default true).
    set_as_current: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedOrganization {
    #[serde(flatten)]
    organization: OrganizationDto,
    /// With `set_as_current`: the session's new token (also set as the cookie).
    #[serde(skip_serializing_if = "Option::is_none")]
    access_token: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    expires_at: Option<OffsetDateTime>,
}

/// Create an organization; I become its owner.
#[utoipa::path(tag = "organizations", security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 201, description = "Created", body = CreatedOrganization),
    (status = 400, description = "Invalid name or slug", body = ErrorBody),
    (status = 409, description = "`slug_taken` (also a public model namespace, a deleted org's slug or a reserved name)", body = ErrorBody),
))]
#[post("")]
async fn create(
    state: web::Data<AppState>,
    ctx: Caller,
    body: Json<CreateOrganizationRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let input = NewOrganization {
        name: b.name,
        slug: b.slug,
        set_as_current: b.set_as_current.unwrap_or(true),
    };
    let (org, token) = organizations::create(&state.deps, &ctx, input).await?;
    let mut res = HttpResponse::Created();
    if let Some(t) = &token {
        res.cookie(session_cookie(&state.cookies, &t.token, t.expires_at));
    }
    Ok(res.json(CreatedOrganization {
        organization: org_dto(org, Some("owner".to_owned()), Some(1)),
        access_token: token.as_ref().map(|t| t.token.clone()),
        expires_at: token.map(|t| t.expires_at),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchRequest {
    /// The organization to act in; null (or absent) for the personal workspace.
    #[serde(default)]
    organization_id: Option<OrgId>,
}

/// Switch THIS session's workspace. Returns Me with a new token (also set as the cookie); the
/// session's previous token stops working. Other sessions keep their own workspace.
#[utoipa::path(tag = "organizations", security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Switched", body = MeWithToken),
    (status = 403, description = "`not_a_member`", body = ErrorBody),
))]
#[put("/current")]
async fn switch_workspace(
    state: web::Data<AppState>,
    ctx: Caller,
    body: Json<SwitchRequest>,
) -> Result<HttpResponse, ApiError> {
    let target = body.organization_id;
    let (me, token) = auth::switch_workspace(&state.deps, &ctx, target).await?;
    let cookie = session_cookie(&state.cookies, &token.token, token.expires_at);
    let body = MeWithToken {
        me: MeResponse::from(me),
        token: TokenResponse::from(&token),
    };
    Ok(HttpResponse::Ok().cookie(cookie).json(body))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganizationRequest {
    /// 1..100 characters.
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    require_distinct_activators: Option<bool>,
}

/// Rename the current organization or change its settings (owner).
#[utoipa::path(tag = "organizations", security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Updated", body = OrganizationDto),
    (status = 403, description = "Not the owner, or not in an organization workspace", body = ErrorBody),
))]
#[patch("/current")]
async fn update_current(
    state: web::Data<AppState>,
    ctx: Caller,
    body: Json<UpdateOrganizationRequest>,
) -> Result<web::Json<OrganizationDto>, ApiError> {
    let b = body.into_inner();
    let change = OrganizationChange {
        name: b.name,
        require_distinct_activators: b.require_distinct_activators,
    };
    let org = organizations::update_current(&state.deps, &ctx, change).await?;
    Ok(web::Json(org_dto(org, Some("owner".to_owned()), None)))
}

/// Delete the current organization (owner). Its members' sessions fall back to Personal.
#[utoipa::path(tag = "organizations", security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 204, description = "Deleted"),
    (status = 403, description = "Not the owner", body = ErrorBody),
    (status = 409, description = "It still has non-terminated instances", body = ErrorBody),
))]
#[delete("/current")]
async fn delete_current(state: web::Data<AppState>, ctx: Caller) -> Result<HttpResponse, ApiError> {
    organizations::delete_current(&state.deps, &ctx).await?;
    Ok(HttpResponse::NoContent().finish())
}
