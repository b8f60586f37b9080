//! `/organizations/*` (SPEC §4.2).

use crate::AppState;
use crate::cookies::session_cookie;
use crate::dto::{MeResponse, MeWithToken, TokenResponse};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Authenticated, Meta};
use actix_web::{HttpResponse, put, web};
use inventiv_domain::OrgId;
use inventiv_service::auth;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(switch_workspace);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchRequest {
    /// The organization to act in; null (or absent) for the personal workspace.
    #[serde(default)]
    organization_id: Option<Uuid>,
}

/// Switch THIS session's workspace. Returns Me with a new token (also set as the cookie); the
/// session's previous token stops working. Other sessions keep their own workspace.
#[utoipa::path(tag = "organizations", responses(
    (status = 200, description = "Switched", body = MeWithToken),
    (status = 403, description = "`not_a_member`", body = ErrorBody),
))]
#[put("/organizations/current")]
async fn switch_workspace(
    state: web::Data<AppState>,
    who: Authenticated,
    meta: Meta,
    body: web::Json<SwitchRequest>,
) -> Result<HttpResponse, ApiError> {
    let target = body.organization_id.map(OrgId::from_uuid);
    let (me, token) = auth::switch_workspace(&state.deps, &who.0, target, &meta.0).await?;
    let cookie = session_cookie(&state.cookies, &token.token, token.expires_at);
    let body = MeWithToken {
        me: MeResponse::from(me),
        token: TokenResponse::from(&token),
    };
    Ok(HttpResponse::Ok().cookie(cookie).json(body))
}
