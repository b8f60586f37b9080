//! `/finops/*` (SPEC §4.3): costs of the current workspace's instances, in micro-EUR.

use crate::AppState;
use crate::dto::{opt_date, query_value};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Caller;
use actix_web::{get, web};
use inventiv_service::finops::{self, GroupBy, UsageGroupBy, UsageSideQuery};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(current).service(dashboard).service(usage);
}

#[derive(Serialize, ToSchema)]
pub struct CurrentCostDto {
    /// Always `EUR`; amounts are integer micro-EUR (1 EUR = 1 000 000).
    currency: &'static str,
    /// Burn rate of the running instances, micro-EUR per hour.
    hourly_micros: i64,
    instances: usize,
}

/// The burn rate of the running instances in this workspace.
#[utoipa::path(tag = "finops", security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Burn rate", body = CurrentCostDto),
    (status = 403, description = "Not a finops viewer", body = ErrorBody),
))]
#[get("/cost/current")]
async fn current(
    state: web::Data<AppState>,
    ctx: Caller,
) -> Result<web::Json<CurrentCostDto>, ApiError> {
    let c = finops::current(&state.deps, &ctx).await?;
    Ok(web::Json(CurrentCostDto {
        currency: "EUR",
        hourly_micros: c.hourly_micros,
        instances: c.instances,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CostQuery {
    /// RFC 3339, inclusive; years 1970 to 9999 (UTC). Default: the first instant of the
    /// current calendar month (UTC).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<OffsetDateTime>,
    /// RFC 3339, exclusive; at most 366 days after `from`; years 1970 to 9999 (UTC). Default:
    /// the first instant of the next calendar month (UTC).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<OffsetDateTime>,
    /// `day` (default), `instance` or `model`.
    // Read by `query_value`: an unknown name is `validation_failed`, not `invalid_query`.
    #[param(inline, value_type = Option<GroupBy>)]
    group_by: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CostGroupDto {
    key: String,
    label: String,
    cost_micros: i64,
}

impl From<finops::CostGroup> for CostGroupDto {
    fn from(g: finops::CostGroup) -> Self {
        CostGroupDto {
            key: g.key,
            label: g.label,
            cost_micros: g.cost_micros,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CostReportDto {
    currency: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    to: OffsetDateTime,
    group_by: String,
    total_micros: i64,
    groups: Vec<CostGroupDto>,
}

/// Instance costs accrued in `[from, to)`, grouped by day, instance or model.
#[utoipa::path(tag = "finops", params(CostQuery), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Costs", body = CostReportDto),
    (status = 400, description = "Invalid range or grouping", body = ErrorBody),
    (status = 403, description = "Not a finops viewer", body = ErrorBody),
))]
#[get("/dashboard/costs")]
async fn dashboard(
    state: web::Data<AppState>,
    ctx: Caller,
    query: web::Query<CostQuery>,
) -> Result<web::Json<CostReportDto>, ApiError> {
    let q = query.into_inner();
    let group_by: GroupBy = query_value(q.group_by.as_deref())?.unwrap_or_default();
    let (from, to) = (opt_date("from", q.from)?, opt_date("to", q.to)?);
    let r = finops::costs(&state.deps, &ctx, from, to, group_by).await?;
    Ok(web::Json(CostReportDto {
        currency: "EUR",
        from: r.from,
        to: r.to,
        group_by: group_by.as_str().to_owned(),
        total_micros: r.total_micros,
        groups: r.groups.into_iter().map(CostGroupDto::from).collect(),
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// RFC 3339, inclusive; years 1970 to 9999 (UTC). Default: the first instant of the
    /// current calendar month (UTC).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<OffsetDateTime>,
    /// RFC 3339, exclusive; at most 366 days after `from`; years 1970 to 9999 (UTC). Default:
    /// the first instant of the next calendar month (UTC).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<OffsetDateTime>,
    /// `consumer` (default: what this workspace spent) or `provider` (what others spent on this org's offerings).
    // Read by `query_value`: an unknown name is `validation_failed`, not `invalid_query`.
    #[param(inline, value_type = Option<UsageSideQuery>)]
    side: Option<String>,
    /// `day` (default), `offering`, `api_key` or `organization` (the counterparty).
    // Read by `query_value`: an unknown name is `validation_failed`, not `invalid_query`.
    #[param(inline, value_type = Option<UsageGroupBy>)]
    group_by: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UsageGroupDto {
    key: String,
    requests: i64,
    input_tokens: i64,
    output_tokens: i64,
    charged_micros: i64,
}

#[derive(Serialize, ToSchema)]
pub struct UsageReportDto {
    currency: &'static str,
    /// The range reported, `[from, to)` (the current calendar month when not given).
    #[serde(with = "time::serde::rfc3339")]
    from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    to: OffsetDateTime,
    side: String,
    group_by: String,
    total: UsageGroupDto,
    groups: Vec<UsageGroupDto>,
}

fn usage_group(g: finops::UsageGroup) -> UsageGroupDto {
    UsageGroupDto {
        key: g.key,
        requests: g.requests,
        input_tokens: g.input_tokens,
        output_tokens: g.output_tokens,
        charged_micros: g.charged_micros,
    }
}

/// Token usage and charges of this workspace: its spend (consumer) or its revenue (provider).
#[utoipa::path(tag = "finops", params(UsageQuery), security(("bearer" = []), ("session_cookie" = [])), responses(
    (status = 200, description = "Usage", body = UsageReportDto),
    (status = 400, description = "Invalid range, side or grouping", body = ErrorBody),
    (status = 403, description = "Not a finops viewer", body = ErrorBody),
))]
#[get("/usage")]
async fn usage(
    state: web::Data<AppState>,
    ctx: Caller,
    query: web::Query<UsageQuery>,
) -> Result<web::Json<UsageReportDto>, ApiError> {
    let q = query.into_inner();
    let side: UsageSideQuery = query_value(q.side.as_deref())?.unwrap_or_default();
    let group_by: UsageGroupBy = query_value(q.group_by.as_deref())?.unwrap_or_default();
    let (from, to) = (opt_date("from", q.from)?, opt_date("to", q.to)?);
    let report = finops::usage(&state.deps, &ctx, from, to, side, group_by).await?;
    Ok(web::Json(UsageReportDto {
        currency: "EUR",
        from: report.from,
        to: report.to,
        side: side.as_str().to_owned(),
        group_by: group_by.as_str().to_owned(),
        total: usage_group(report.total),
        groups: report.groups.into_iter().map(usage_group).collect(),
    }))
}
