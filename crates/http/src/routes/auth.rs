//! `/auth/*` (SPEC §4.1): login, logout, refresh, me, password, sessions, password reset.

use crate::AppState;
use crate::cookies::{cleared_cookie, session_cookie};
use crate::dto::{MeResponse, Page, PageQuery, TokenResponse, UserDto, double_option};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, ForRefresh, Json, Meta};
use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use inventiv_service::auth::{self, LoginInput, ProfileInput, SessionView};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(login)
        .service(logout)
        .service(refresh)
        .service(get_me)
        .service(put_me)
        .service(change_password)
        .service(list_sessions)
        .service(revoke_session)
        .service(revoke_others)
        .service(reset_request)
        .service(reset_confirm);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The account's email (or give `username`). Longer than 320 characters: 400.
    #[schema(max_length = 320)]
    email: Option<String>,
    #[schema(max_length = 320)]
    username: Option<String>,
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct SessionDto {
    id: Uuid,
    current_organization_id: Option<Uuid>,
    current_organization_name: Option<String>,
    organization_role: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    last_used_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    is_current: bool,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    user: UserDto,
    session: SessionDto,
    access_token: String,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

fn session_dto(view: SessionView) -> SessionDto {
    let s = view.session;
    SessionDto {
        id: s.id.as_uuid(),
        current_organization_id: s.current_organization_id.map(|o| o.as_uuid()),
        current_organization_name: view.organization.map(|o| o.name.as_str().to_owned()),
        organization_role: s.organization_role.map(|r| r.as_str().to_owned()),
        ip: s.ip,
        user_agent: s.user_agent,
        created_at: s.created_at,
        last_used_at: s.last_used_at,
        expires_at: s.expires_at,
        is_current: view.is_current,
    }
}

/// Sign in with email (or username) and password: opens a session and returns its token,
/// also set as the `inventiv_session` cookie.
#[utoipa::path(tag = "auth", responses(
    (status = 200, description = "Signed in", body = LoginResponse),
    (status = 400, description = "Neither email nor username, or a malformed body", body = ErrorBody),
    (status = 401, description = "`invalid_credentials` (same answer for an unknown account)", body = ErrorBody),
    (status = 403, description = "`account_disabled`", body = ErrorBody),
    (status = 429, description = "Too many attempts from this IP or for this account", body = ErrorBody),
    (status = 503, description = "`server_busy`: too many passwords are being checked at once; retry after `Retry-After` seconds", body = ErrorBody),
))]
#[post("/login")]
async fn login(
    state: web::Data<AppState>,
    meta: Meta,
    body: Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let outcome = auth::login(&state.deps, body.into_inner().try_into()?, &meta.0).await?;
    let cookie = session_cookie(
        &state.cookies,
        &outcome.token.token,
        outcome.token.expires_at,
    );
    Ok(HttpResponse::Ok()
        .cookie(cookie)
        .json(LoginResponse::from(outcome)))
}

impl TryFrom<LoginRequest> for LoginInput {
    type Error = ApiError;

    /// Exactly one of `email` and `username` names the account.
    fn try_from(body: LoginRequest) -> Result<Self, ApiError> {
        let account = match (body.email, body.username) {
            (Some(email), None) => email,
            (None, Some(username)) => username,
            _ => {
                return Err(inventiv_service::ServiceError::invalid(
                    "email",
                    "give either email or username",
                )
                .into());
            }
        };
        Ok(LoginInput {
            login: account,
            password: body.password,
        })
    }
}

impl From<auth::LoginOutcome> for LoginResponse {
    fn from(outcome: auth::LoginOutcome) -> Self {
        LoginResponse {
            user: UserDto::from(outcome.user),
            session: session_dto(SessionView {
                session: outcome.session,
                organization: outcome.organization,
                is_current: true,
            }),
            access_token: outcome.token.token,
            expires_at: outcome.token.expires_at,
        }
    }
}

/// Revoke the current session and clear the cookie.
#[utoipa::path(security(("bearer" = []), ("session_cookie" = [])), tag = "auth", responses(
    (status = 204, description = "Signed out"),
    (status = 401, description = "Not signed in", body = ErrorBody),
))]
#[post("/logout")]
async fn logout(state: web::Data<AppState>, ctx: Caller) -> Result<HttpResponse, ApiError> {
    auth::logout(&state.deps, &ctx).await?;
    Ok(HttpResponse::NoContent()
        .cookie(cleared_cookie(&state.cookies))
        .finish())
}

/// A new access token for the same session; the presented token stops working. Accepted even
/// past the token's `exp` while the session itself is live.
#[utoipa::path(security(("bearer" = []), ("session_cookie" = [])), tag = "auth", responses(
    (status = 200, description = "New token (also set as the cookie)", body = TokenResponse),
    (status = 401, description = "Session revoked, expired, or token superseded (a superseded token presented after the reuse grace revokes the session: refresh_reuse_detected)", body = ErrorBody),
))]
#[post("/refresh")]
async fn refresh(state: web::Data<AppState>, ctx: ForRefresh) -> Result<HttpResponse, ApiError> {
    let token = auth::refresh(&state.deps, &ctx).await?;
    let cookie = session_cookie(&state.cookies, &token.token, token.expires_at);
    Ok(HttpResponse::Ok()
        .cookie(cookie)
        .json(TokenResponse::from(&token)))
}

/// Who I am, this session's workspace, and the permissions and modules allowed there.
#[utoipa::path(security(("bearer" = []), ("session_cookie" = [])), tag = "auth", responses(
    (status = 200, description = "Me", body = MeResponse),
    (status = 401, description = "Not signed in", body = ErrorBody),
))]
#[get("/me")]
async fn get_me(
    req: HttpRequest,
    state: web::Data<AppState>,
    ctx: Caller,
) -> Result<HttpResponse, ApiError> {
    let me = auth::me(&state.deps, &ctx).await?;
    Ok(crate::dto::cached_json(&req, &me, |me| {
        crate::dto::to_json(&MeResponse::from(me.clone()))
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    /// Absent: unchanged; null or "": cleared.
    #[serde(default, deserialize_with = "double_option")]
    username: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    last_name: Option<Option<String>>,
}

/// Update my profile (username, first and last name).
#[utoipa::path(security(("bearer" = []), ("session_cookie" = [])), tag = "auth", responses(
    (status = 200, description = "Updated", body = MeResponse),
    (status = 400, description = "Invalid field", body = ErrorBody),
    (status = 409, description = "`username_taken`", body = ErrorBody),
))]
#[put("/me")]
async fn put_me(
    state: web::Data<AppState>,
    ctx: Caller,
    body: Json<UpdateMeRequest>,
) -> Result<web::Json<MeResponse>, ApiError> {
    let b = body.into_inner();
    let input = ProfileInput {
        username: b.username,
        first_name: b.first_name,
        last_name: b.last_name,
    };
    Ok(web::Json(
        auth::update_profile(&state.deps, &ctx, input).await?.into(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    current_password: String,
    /// 8 to 1024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    new_password: String,
}

/// Change my password; every other session of mine is revoked, this one is kept.
#[utoipa::path(security(("bearer" = []), ("session_cookie" = [])), tag = "auth", responses(
    (status = 204, description = "Changed"),
    (status = 400, description = "The new password breaks the policy", body = ErrorBody),
    (status = 403, description = "`invalid_current_password`", body = ErrorBody),
))]
#[put("/me/password")]
async fn change_password(
    state: web::Data<AppState>,
    ctx: Caller,
    body: Json<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    auth::change_password(
        &state.deps,
        &ctx,
        &body.current_password,
        &body.new_password,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// My live sessions, most recently used first.
#[utoipa::path(params(PageQuery), security(("bearer" = []), ("session_cookie" = [])), tag = "auth", responses(
    (status = 200, description = "Sessions", body = Page<SessionDto>),
    (status = 400, description = "Invalid `limit` or `cursor`", body = ErrorBody),
    (status = 401, description = "Not signed in", body = ErrorBody),
))]
#[get("/sessions")]
async fn list_sessions(
    state: web::Data<AppState>,
    ctx: Caller,
    query: web::Query<PageQuery>,
) -> Result<web::Json<Page<SessionDto>>, ApiError> {
    Ok(web::Json(crate::dto::page(
        auth::list_sessions(&state.deps, &ctx, &query.request()).await?,
        session_dto,
    )))
}

/// Revoke one of my sessions.
#[utoipa::path(security(("bearer" = []), ("session_cookie" = [])), tag = "auth", params(("id" = Uuid, Path, description = "Session id")), responses(
    (status = 204, description = "Revoked"),
    (status = 404, description = "No live session of yours with this id", body = ErrorBody),
))]
#[delete("/sessions/{id}")]
async fn revoke_session(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<inventiv_domain::SessionId>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    auth::revoke_session(&state.deps, &ctx, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, ToSchema)]
pub struct RevokedCount {
    revoked: u64,
}

/// Revoke all my sessions but this one.
#[utoipa::path(security(("bearer" = []), ("session_cookie" = [])), tag = "auth", responses(
    (status = 200, description = "How many were revoked", body = RevokedCount),
))]
#[post("/sessions/revoke-others")]
async fn revoke_others(
    state: web::Data<AppState>,
    ctx: Caller,
) -> Result<web::Json<RevokedCount>, ApiError> {
    let revoked = auth::revoke_others(&state.deps, &ctx).await?;
    Ok(web::Json(RevokedCount { revoked }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// Longer than 320 characters: 400.
    #[schema(max_length = 320)]
    email: String,
}

#[derive(Serialize, ToSchema)]
pub struct Accepted {
    message: &'static str,
}

/// Ask for a password reset link by email. Always 202 with the same body, whether or not the
/// account exists.
#[utoipa::path(tag = "auth", responses(
    (status = 202, description = "Accepted", body = Accepted),
    (status = 429, description = "Too many requests from this IP or for this address", body = ErrorBody),
))]
#[post("/password-reset/request")]
async fn reset_request(
    state: web::Data<AppState>,
    meta: Meta,
    body: Json<ResetRequest>,
) -> Result<HttpResponse, ApiError> {
    auth::request_password_reset(&state.deps, &body.email, &meta.0).await?;
    Ok(HttpResponse::Accepted().json(Accepted {
        message: "If an account exists for this address, a reset link has been sent to it.",
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    /// The token from the emailed link.
    token: String,
    /// 8 to 1024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    new_password: String,
}

/// Set a new password with an emailed token; every session of the account is revoked.
#[utoipa::path(tag = "auth", responses(
    (status = 204, description = "Password set"),
    (status = 400, description = "The new password breaks the policy", body = ErrorBody),
    (status = 410, description = "`reset_token_invalid`: unknown, expired or already used", body = ErrorBody),
))]
#[post("/password-reset/confirm")]
async fn reset_confirm(
    state: web::Data<AppState>,
    meta: Meta,
    body: Json<ResetConfirm>,
) -> Result<HttpResponse, ApiError> {
    auth::confirm_password_reset(&state.deps, &body.token, &body.new_password, &meta.0).await?;
    Ok(HttpResponse::NoContent().finish())
}
