//! Routes, one module per resource; each exposes `configure`.

mod auth;
mod ops;
mod organizations;

use utoipa_actix_web::service_config::ServiceConfig;

/// Registers every route (and, through utoipa-actix-web, its OpenAPI description).
pub fn configure(cfg: &mut ServiceConfig) {
    ops::configure(cfg);
    auth::configure(cfg);
    organizations::configure(cfg);
}
