//! `/users` (SPEC §4.3): an org's members (org workspace) or every account (platform admin).

use crate::AppState;
use crate::dto::{Page, PageQuery, double_option, page};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, Json};
use actix_web::{HttpResponse, delete, get, post, put, web};
use inventiv_domain::{Role, UserId};
use inventiv_service::users::{self, NewUserInput, UserUpdate, UserView};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list)
        .service(get_one)
        .service(create)
        .service(update)
        .service(remove);
}

#[derive(Serialize, ToSchema)]
pub struct UserAccountDto {
    id: Uuid,
    email: String,
    username: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    is_platform_admin: bool,
    disabled: bool,
    /// The role in the current org (org workspace only).
    role: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

fn user_dto(v: UserView) -> UserAccountDto {
    UserAccountDto {
        id: v.user.id.as_uuid(),
        email: v.user.email.as_str().to_owned(),
        username: v.user.username.map(|u| u.as_str().to_owned()),
        first_name: v.user.first_name,
        last_name: v.user.last_name,
        is_platform_admin: v.user.is_platform_admin,
        disabled: v.user.disabled_at.is_some(),
        role: v.role.map(|r| r.as_str().to_owned()),
        created_at: v.user.created_at,
    }
}

/// The org's members (owner/admin/manager), or every account (platform admin, Personal).
#[utoipa::path(tag = "users", params(PageQuery), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Users", body = Page<UserAccountDto>),
    (status = 403, description = "Not allowed to list users here", body = ErrorBody),
))]
#[get("")]
async fn list(
    state: web::Data<AppState>,
    ctx: Caller,
    query: web::Query<PageQuery>,
) -> Result<web::Json<Page<UserAccountDto>>, ApiError> {
    Ok(web::Json(page(
        users::list(&state.deps, &ctx, &query.request()).await?,
        user_dto,
    )))
}

/// One member (org workspace) or account (platform admin).
#[utoipa::path(tag = "users", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "The user", body = UserAccountDto),
    (status = 404, description = "Not a member here", body = ErrorBody),
))]
#[get("/{id}")]
async fn get_one(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<UserId>,
) -> Result<web::Json<UserAccountDto>, ApiError> {
    Ok(web::Json(user_dto(
        users::get(&state.deps, &ctx, path.into_inner()).await?,
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    #[schema(min_length = 3, max_length = 254)]
    email: String,
    // No `password`: a one-time set-password link is always emailed, so nobody chooses another
    // person's password (SPEC §6 v2); `deny_unknown_fields` refuses one with 400.
    first_name: Option<String>,
    last_name: Option<String>,
    /// Org workspace: the membership role (default `user`), one you may assign.
    #[schema(inline)]
    role: Option<Role>,
}

/// Create an account (+ membership in the current org). The account has no usable password
/// until its owner follows the one-time set-password link emailed to them (72 hours).
#[utoipa::path(tag = "users", security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 201, description = "Created", body = UserAccountDto),
    (status = 403, description = "Role may not create users or assign this role", body = ErrorBody),
    (status = 409, description = "`email_taken`", body = ErrorBody),
))]
#[post("")]
async fn create(
    state: web::Data<AppState>,
    ctx: Caller,
    body: Json<CreateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let input = NewUserInput {
        email: b.email,
        first_name: b.first_name,
        last_name: b.last_name,
        role: b.role,
    };
    Ok(HttpResponse::Created().json(user_dto(users::create(&state.deps, &ctx, input).await?)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    #[serde(default, deserialize_with = "double_option")]
    username: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    last_name: Option<Option<String>>,
    /// Platform admins only.
    is_platform_admin: Option<bool>,
    /// Platform admins only: true revokes every session and API key of the account at once.
    disabled: Option<bool>,
}

/// Update an account (platform admin), or my own profile.
#[utoipa::path(tag = "users", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Updated", body = UserAccountDto),
    (status = 403, description = "Not allowed", body = ErrorBody),
    (status = 404, description = "No such user", body = ErrorBody),
    (status = 409, description = "`username_taken` or `cannot_change_self`", body = ErrorBody),
))]
#[put("/{id}")]
async fn update(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<UserId>,
    body: Json<UpdateUserRequest>,
) -> Result<web::Json<UserAccountDto>, ApiError> {
    let b = body.into_inner();
    let input = UserUpdate {
        username: b.username,
        first_name: b.first_name,
        last_name: b.last_name,
        is_platform_admin: b.is_platform_admin,
        disabled: b.disabled,
    };
    let id = path.into_inner();
    Ok(web::Json(user_dto(
        users::update(&state.deps, &ctx, id, input).await?,
    )))
}

/// Delete an account (platform admin). 409 `last_owner` if it would orphan an organization.
#[utoipa::path(tag = "users", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 204, description = "Deleted with its memberships, sessions and keys"),
    (status = 403, description = "Not a platform admin in Personal", body = ErrorBody),
    (status = 409, description = "`last_owner` or `cannot_change_self`", body = ErrorBody),
))]
#[delete("/{id}")]
async fn remove(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<UserId>,
) -> Result<HttpResponse, ApiError> {
    users::delete(&state.deps, &ctx, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
