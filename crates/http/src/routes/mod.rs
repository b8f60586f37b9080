//! Routes, one module per resource; each exposes `configure`.

mod ops;

use utoipa_actix_web::service_config::ServiceConfig;

/// Registers every route (and, through utoipa-actix-web, its OpenAPI description).
pub fn configure(cfg: &mut ServiceConfig) {
    ops::configure(cfg);
}
