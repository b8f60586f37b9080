//! Invitations (SPEC §4.2): managed from the org workspace; previewed and accepted through the
//! public link `<public_url>/invitations/<token>`.

use crate::AppState;
use crate::cookies::session_cookie;
use crate::dto::{Page, PageQuery, page};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Caller, Json, MaybeAuthenticated, Meta};
use actix_web::{HttpResponse, delete, get, post, web};
use inventiv_domain::{InvitationId, InvitationStatus, Role, effective_status};
use inventiv_service::invitations::{self, Invitation, NewAccount, NewInvite};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

/// The org's invitations and their links (under `/organizations`).
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create)
        .service(list)
        .service(revoke)
        .service(resend)
        .service(preview)
        .service(accept);
}

/// The invitations sent to me (under `/auth`).
pub fn configure_mine(cfg: &mut ServiceConfig) {
    cfg.service(mine).service(accept_mine);
}

/// A pending invitation sent to me.
#[derive(Serialize, ToSchema)]
pub struct MyInvitationDto {
    id: Uuid,
    organization_id: Uuid,
    organization_name: String,
    organization_slug: String,
    role: String,
    /// Who invited me (their email), if the account still exists.
    invited_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

/// The pending invitations sent to my email, by any organization (oldest first): what I can
/// accept here while signed in, without the emailed link.
#[utoipa::path(tag = "invitations", params(PageQuery), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "My pending invitations", body = Page<MyInvitationDto>),
))]
#[get("/invitations")]
async fn mine(
    state: web::Data<AppState>,
    ctx: Caller,
    query: web::Query<PageQuery>,
) -> Result<web::Json<Page<MyInvitationDto>>, ApiError> {
    let found = invitations::mine(&state.deps, &ctx, &query.request()).await?;
    Ok(web::Json(page(found, |m| MyInvitationDto {
        id: m.invitation.id.as_uuid(),
        organization_id: m.organization_id.as_uuid(),
        organization_name: m.organization_name,
        organization_slug: m.organization_slug,
        role: m.invitation.role.as_str().to_owned(),
        invited_by: m.invitation.invited_by_email,
        expires_at: m.invitation.expires_at,
        created_at: m.invitation.created_at,
    })))
}

/// Accept one of my pending invitations (signed in; the session stays in its workspace).
#[utoipa::path(tag = "invitations", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Accepted: I am a member now", body = AcceptResponse),
    (status = 404, description = "No such invitation to my email", body = ErrorBody),
    (status = 409, description = "`already_member` (the role is not changed)", body = ErrorBody),
    (status = 410, description = "`invitation_gone`: expired, revoked or used", body = ErrorBody),
))]
#[post("/invitations/{id}/accept")]
async fn accept_mine(
    state: web::Data<AppState>,
    ctx: Caller,
    id: web::Path<InvitationId>,
) -> Result<web::Json<AcceptResponse>, ApiError> {
    let accepted = invitations::accept_mine(&state.deps, &ctx, id.into_inner()).await?;
    Ok(web::Json(AcceptResponse::from(accepted)))
}

#[derive(Serialize, ToSchema)]
pub struct InvitationDto {
    id: Uuid,
    email: String,
    role: String,
    /// `pending`, `accepted`, `revoked` or `expired` (expiry computed now).
    status: String,
    /// The inviter's email, if the account still exists.
    invited_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    accepted_at: Option<OffsetDateTime>,
}

fn invitation_dto(i: Invitation, now: OffsetDateTime) -> InvitationDto {
    InvitationDto {
        id: i.id.as_uuid(),
        email: i.email.as_str().to_owned(),
        role: i.role.as_str().to_owned(),
        status: effective_status(i.status, i.expires_at, now)
            .as_str()
            .to_owned(),
        invited_by: i.invited_by_email,
        expires_at: i.expires_at,
        created_at: i.created_at,
        accepted_at: i.accepted_at,
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitationRequest {
    #[schema(min_length = 3, max_length = 254)]
    email: String,
    /// Default `user`; must be a role you may assign.
    #[schema(inline)]
    role: Option<Role>,
    /// 1..30, default 7.
    #[schema(minimum = 1, maximum = 30)]
    expires_in_days: Option<i64>,
}

/// Invite someone by email. The link is emailed; its token is never returned.
#[utoipa::path(tag = "invitations", security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 201, description = "Invited", body = InvitationDto),
    (status = 400, description = "Invalid email, role or expiry", body = ErrorBody),
    (status = 403, description = "`forbidden` or `role_change_not_allowed`", body = ErrorBody),
    (status = 409, description = "`already_member` or `invitation_pending`", body = ErrorBody),
))]
#[post("/current/invitations")]
async fn create(
    state: web::Data<AppState>,
    ctx: Caller,
    body: Json<CreateInvitationRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let input = NewInvite {
        email: b.email,
        role: b.role,
        expires_in_days: b.expires_in_days,
    };
    let invitation = invitations::invite(&state.deps, &ctx, input).await?;
    Ok(HttpResponse::Created().json(invitation_dto(invitation, state.deps.clock.now())))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvitationQuery {
    /// Filter by (effective) status.
    #[param(inline)]
    status: Option<InvitationStatus>,
    /// 1..200, default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    cursor: Option<String>,
}

/// Invitations of the current organization, newest first.
#[utoipa::path(tag = "invitations", params(InvitationQuery), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Invitations", body = Page<InvitationDto>),
    (status = 403, description = "Not owner, admin or manager", body = ErrorBody),
))]
#[get("/current/invitations")]
async fn list(
    state: web::Data<AppState>,
    ctx: Caller,
    query: web::Query<InvitationQuery>,
) -> Result<web::Json<Page<InvitationDto>>, ApiError> {
    let q = query.into_inner();
    let paging = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let found = invitations::list(&state.deps, &ctx, q.status, &paging.request()).await?;
    let now = state.deps.clock.now();
    Ok(web::Json(page(found, |i| invitation_dto(i, now))))
}

/// Revoke a pending invitation (a role you may assign).
#[utoipa::path(tag = "invitations", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 204, description = "Revoked"),
    (status = 403, description = "`forbidden` or `role_change_not_allowed`", body = ErrorBody),
    (status = 404, description = "No such invitation in this organization", body = ErrorBody),
    (status = 409, description = "`invitation_not_pending`", body = ErrorBody),
))]
#[delete("/current/invitations/{id}")]
async fn revoke(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<InvitationId>,
) -> Result<HttpResponse, ApiError> {
    invitations::revoke(&state.deps, &ctx, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ResendRequest {
    /// 1..30, default 7.
    expires_in_days: Option<i64>,
}

/// Send a pending or expired invitation again with a new link and expiry; the old link dies.
#[utoipa::path(tag = "invitations", params(("id" = Uuid, Path)), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Resent", body = InvitationDto),
    (status = 403, description = "`forbidden` or `role_change_not_allowed`", body = ErrorBody),
    (status = 404, description = "No such invitation in this organization", body = ErrorBody),
    (status = 409, description = "`invitation_not_pending` or `invitation_pending`", body = ErrorBody),
))]
#[post("/current/invitations/{id}/resend")]
async fn resend(
    state: web::Data<AppState>,
    ctx: Caller,
    path: web::Path<InvitationId>,
    body: Option<web::Json<ResendRequest>>,
) -> Result<web::Json<InvitationDto>, ApiError> {
    let days = body
        .map(|b| b.into_inner())
        .unwrap_or_default()
        .expires_in_days;
    let id = path.into_inner();
    let invitation = invitations::resend(&state.deps, &ctx, id, days).await?;
    Ok(web::Json(invitation_dto(
        invitation,
        state.deps.clock.now(),
    )))
}

#[derive(Serialize, ToSchema)]
pub struct InvitationPreviewDto {
    organization_name: String,
    organization_slug: String,
    role: String,
    email: String,
    invited_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    /// Whether an account exists for the email (sign in to accept) or not (accepting creates it).
    account_exists: bool,
}

/// What an invitation link offers (public: the token is the credential).
#[utoipa::path(tag = "invitations", params(("token" = String, Path)), responses(
    (status = 200, description = "A pending invitation", body = InvitationPreviewDto),
    (status = 404, description = "Unknown token", body = ErrorBody),
    (status = 410, description = "`invitation_gone`: expired, revoked or used", body = ErrorBody),
))]
#[get("/invitations/{token}")]
async fn preview(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<InvitationPreviewDto>, ApiError> {
    let p = invitations::preview(&state.deps, &path.into_inner()).await?;
    Ok(web::Json(InvitationPreviewDto {
        organization_name: p.organization.name.as_str().to_owned(),
        organization_slug: p.organization.slug.as_str().to_owned(),
        role: p.invitation.role.as_str().to_owned(),
        email: p.invitation.email.as_str().to_owned(),
        invited_by: p.invitation.invited_by_email,
        expires_at: p.invitation.expires_at,
        account_exists: p.account_exists,
    }))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct AcceptRequest {
    /// Required when no account exists for the invited email (8..1024 characters).
    password: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AcceptResponse {
    organization_id: Uuid,
    organization_name: String,
    organization_slug: String,
    role: String,
    user_id: Uuid,
    /// When the account was created now: a session already in the organization.
    #[serde(skip_serializing_if = "Option::is_none")]
    access_token: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    expires_at: Option<OffsetDateTime>,
}

/// Accept an invitation: signed in with the invited email → membership; anonymous without an
/// account → creates the account, the membership and a session in the org (cookie); anonymous
/// with an existing account → 401 `login_required`. Works once.
#[utoipa::path(tag = "invitations", params(("token" = String, Path)), responses(
    (status = 200, description = "Accepted", body = AcceptResponse),
    (status = 400, description = "Password missing or invalid for a new account", body = ErrorBody),
    (status = 401, description = "`login_required`", body = ErrorBody),
    (status = 403, description = "`email_mismatch`", body = ErrorBody),
    (status = 404, description = "Unknown token", body = ErrorBody),
    (status = 409, description = "`already_member` (the role is not changed)", body = ErrorBody),
    (status = 410, description = "`invitation_gone`", body = ErrorBody),
    (status = 429, description = "Too many attempts", body = ErrorBody),
))]
#[post("/invitations/{token}/accept")]
async fn accept(
    state: web::Data<AppState>,
    who: MaybeAuthenticated,
    meta: Meta,
    path: web::Path<String>,
    body: Option<web::Json<AcceptRequest>>,
) -> Result<HttpResponse, ApiError> {
    let account = body.map(|b| b.into_inner()).unwrap_or_default().into();
    let token = path.into_inner();
    let accepted =
        invitations::accept(&state.deps, &token, who.0.as_ref(), account, &meta.0).await?;
    let mut res = HttpResponse::Ok();
    if let Some((_, token)) = &accepted.session {
        res.cookie(session_cookie(
            &state.cookies,
            &token.token,
            token.expires_at,
        ));
    }
    Ok(res.json(AcceptResponse::from(accepted)))
}

impl From<AcceptRequest> for NewAccount {
    fn from(b: AcceptRequest) -> Self {
        NewAccount {
            password: b.password,
            first_name: b.first_name,
            last_name: b.last_name,
        }
    }
}

impl From<invitations::Accepted> for AcceptResponse {
    fn from(accepted: invitations::Accepted) -> Self {
        AcceptResponse {
            organization_id: accepted.organization.id.as_uuid(),
            organization_name: accepted.organization.name.as_str().to_owned(),
            organization_slug: accepted.organization.slug.as_str().to_owned(),
            role: accepted.role.as_str().to_owned(),
            user_id: accepted.user_id.as_uuid(),
            access_token: accepted.session.as_ref().map(|(_, t)| t.token.clone()),
            expires_at: accepted.session.map(|(_, t)| t.expires_at),
        }
    }
}
