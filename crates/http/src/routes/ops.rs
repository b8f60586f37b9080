//! Operations endpoints (SPEC §4.5): liveness, readiness, metrics, the API description.

use crate::{AppState, error::ApiError};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(healthz)
        .service(readyz)
        .service(metrics)
        .service(openapi_json)
        .service(docs);
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` when the process is up.
    status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    status: &'static str,
    /// Whether the database answered.
    database: bool,
    /// Whether every migration is applied.
    migrations: bool,
}

/// Liveness: the process is up (touches nothing else).
#[utoipa::path(tag = "operations", responses((status = 200, description = "The process is up", body = Health)))]
#[get("/healthz")]
async fn healthz() -> web::Json<Health> {
    web::Json(Health { status: "ok" })
}

/// Readiness: the database is reachable and migrations are applied (503 otherwise).
#[utoipa::path(tag = "operations", responses(
    (status = 200, description = "Ready to serve", body = Readiness),
    (status = 503, description = "Database unreachable or migrations pending", body = Readiness)
))]
#[get("/readyz")]
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let readiness = inventiv_service::health::readiness(&state.deps).await;
    let ready = readiness.ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    HttpResponse::build(status).json(Readiness {
        status: if ready { "ready" } else { "not_ready" },
        database: readiness.database,
        migrations: readiness.migrations,
    })
}

/// Prometheus text: request counts and latency histograms per route.
#[utoipa::path(tag = "operations", responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String)))]
#[get("/metrics")]
async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

/// This API's OpenAPI 3.1 description.
#[utoipa::path(tag = "operations", responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)))]
#[get("/openapi.json")]
async fn openapi_json(doc: web::Data<String>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.get_ref().clone())
}

/// A human-readable API reference, rendered from `/openapi.json` in the browser with no
/// external resource (works offline).
#[utoipa::path(tag = "operations", responses((status = 200, description = "The API reference page", content_type = "text/html", body = String)))]
#[get("/docs")]
async fn docs() -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'"))
        .body(include_str!("../../assets/docs.html")))
}
