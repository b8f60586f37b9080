//! `GET /organizations/current/audit` (owner/admin/manager) and `GET /platform/audit`
//! (platform admins, personal workspace).

use crate::AppState;
use crate::dto::{Page, opt_date, page};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Caller;
use actix_web::{get, web};
use inventiv_service::audit_log::{self, AuditEvent, AuditFilter};
use inventiv_service::paging::PageRequest;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

/// The org's trail (under `/organizations`).
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list);
}

/// The platform's trail (under `/platform`).
pub fn configure_platform(cfg: &mut ServiceConfig) {
    cfg.service(platform);
}

#[derive(Serialize, ToSchema)]
pub struct AuditEventDto {
    id: i64,
    organization_id: Option<Uuid>,
    actor_user_id: Option<Uuid>,
    /// Dotted lowercase, e.g. `member.role_changed`.
    action: String,
    target_type: Option<String>,
    target_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    before: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    after: Option<serde_json::Value>,
    request_id: Option<String>,
    ip: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    occurred_at: OffsetDateTime,
    hash: String,
}

fn event_dto(e: AuditEvent) -> AuditEventDto {
    AuditEventDto {
        id: e.id,
        organization_id: e.organization_id.map(|o| o.as_uuid()),
        actor_user_id: e.actor_user_id.map(|u| u.as_uuid()),
        action: e.action,
        target_type: e.target_type,
        target_id: e.target_id,
        before: e.before,
        after: e.after,
        request_id: e.request_id,
        ip: e.ip,
        occurred_at: e.occurred_at,
        hash: e.hash,
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Exact action name: dotted lowercase, e.g. `member.role_changed`.
    #[param(pattern = "^[a-z._]{0,64}$")]
    action: Option<String>,
    /// RFC 3339; events at or after it; years 1970 to 9999 (UTC).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<OffsetDateTime>,
    /// 1..200, default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    cursor: Option<String>,
}

impl AuditQuery {
    /// The service's filter and paging (both trails take the same query).
    fn parts(self) -> Result<(AuditFilter, PageRequest), ApiError> {
        let filter = AuditFilter {
            action: self.action,
            since: opt_date("since", self.since)?,
        };
        let paging = PageRequest {
            limit: self.limit,
            cursor: self.cursor,
        };
        Ok((filter, paging))
    }
}

/// The current organization's audit trail, newest first.
#[utoipa::path(tag = "audit", params(AuditQuery), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Events", body = Page<AuditEventDto>),
    (status = 403, description = "Not owner, admin or manager", body = ErrorBody),
))]
#[get("/current/audit")]
async fn list(
    state: web::Data<AppState>,
    ctx: Caller,
    query: web::Query<AuditQuery>,
) -> Result<web::Json<Page<AuditEventDto>>, ApiError> {
    let (filter, paging) = query.into_inner().parts()?;
    Ok(web::Json(page(
        audit_log::list_for_org(&state.deps, &ctx, &filter, &paging).await?,
        event_dto,
    )))
}

/// The platform chain of the audit trail, newest first: events with no organization —
/// accounts (`user.*`), sessions (`session.*`), sign-ins (`auth.*`) and the public catalogue
/// (`model.*`). Platform admins only, from the personal workspace (403 in an org workspace).
#[utoipa::path(tag = "audit", params(AuditQuery), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Events", body = Page<AuditEventDto>),
    (status = 400, description = "Invalid filter or cursor", body = ErrorBody),
    (status = 403, description = "Not a platform admin, or not in the personal workspace", body = ErrorBody),
))]
#[get("/audit")]
async fn platform(
    state: web::Data<AppState>,
    ctx: Caller,
    query: web::Query<AuditQuery>,
) -> Result<web::Json<Page<AuditEventDto>>, ApiError> {
    let (filter, paging) = query.into_inner().parts()?;
    Ok(web::Json(page(
        audit_log::list_platform(&state.deps, &ctx, &filter, &paging).await?,
        event_dto,
    )))
}
