//! `/organizations/current/members` and `/leave` (SPEC §2.1, §2.2).

use crate::AppState;
use crate::dto::{Page, PageQuery, page};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, Json};
use actix_web::{HttpResponse, delete, get, post, put, web};
use inventiv_domain::{Role, UserId};
use inventiv_service::members::{self, Member};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list)
        .service(change_role)
        .service(remove)
        .service(leave);
}

#[derive(Serialize, ToSchema)]
pub struct MemberDto {
    user_id: Uuid,
    email: String,
    username: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    role: String,
    #[serde(with = "time::serde::rfc3339")]
    joined_at: OffsetDateTime,
    /// Live org API keys this member created here: removing them (or demoting them below
    /// owner/admin) revokes these keys.
    org_api_keys: i64,
}

fn member_dto(m: Member) -> MemberDto {
    MemberDto {
        user_id: m.user_id.as_uuid(),
        email: m.email,
        username: m.username,
        first_name: m.first_name,
        last_name: m.last_name,
        role: m.role.as_str().to_owned(),
        joined_at: m.joined_at,
        org_api_keys: m.org_api_keys,
    }
}

/// Members of the current organization.
#[utoipa::path(tag = "members", params(PageQuery), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Members", body = Page<MemberDto>),
    (status = 403, description = "Not in an organization workspace", body = ErrorBody),
))]
#[get("/current/members")]
async fn list(
    state: web::Data<AppState>,
    ctx: Caller,
    query: web::Query<PageQuery>,
) -> Result<web::Json<Page<MemberDto>>, ApiError> {
    Ok(web::Json(page(
        members::list(&state.deps, &ctx, &query.request()).await?,
        member_dto,
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRoleRequest {
    // No doc comment: utoipa would wrap the inline enum in an unsatisfiable `allOf` with it.
    #[schema(inline)]
    role: Role,
}

/// Change a member's role, per the delegation rule: an owner changes anyone, an admin toggles
/// user↔admin, a manager toggles user↔manager. Demoting an owner/admin to manager or user
/// revokes the org API keys they created.
#[utoipa::path(tag = "members", params(("user_id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "The member with the new role", body = MemberDto),
    (status = 403, description = "`role_change_not_allowed` or `forbidden`", body = ErrorBody),
    (status = 404, description = "No such member", body = ErrorBody),
    (status = 409, description = "`last_owner`", body = ErrorBody),
))]
#[put("/current/members/{user_id}")]
async fn change_role(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<UserId>,
    body: Json<ChangeRoleRequest>,
) -> Result<web::Json<MemberDto>, ApiError> {
    let user = path.into_inner();
    let member = members::change_role(&state.deps, &ctx, user, body.role).await?;
    Ok(web::Json(member_dto(member)))
}

/// Remove a member (yourself: same as leave). Their sessions in this org fall back to Personal;
/// the org API keys they created (`org_api_keys` in the member list) are revoked with them.
#[utoipa::path(tag = "members", params(("user_id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 204, description = "Removed"),
    (status = 403, description = "`role_change_not_allowed` or `forbidden`", body = ErrorBody),
    (status = 404, description = "No such member", body = ErrorBody),
    (status = 409, description = "`last_owner`", body = ErrorBody),
))]
#[delete("/current/members/{user_id}")]
async fn remove(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<UserId>,
) -> Result<HttpResponse, ApiError> {
    members::remove(&state.deps, &ctx, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Leave the current organization (refused for its last owner).
#[utoipa::path(tag = "members", security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 204, description = "Left; this session is back in Personal"),
    (status = 409, description = "`last_owner`", body = ErrorBody),
))]
#[post("/current/leave")]
async fn leave(state: web::Data<AppState>, ctx: Caller) -> Result<HttpResponse, ApiError> {
    members::leave(&state.deps, &ctx).await?;
    Ok(HttpResponse::NoContent().finish())
}
