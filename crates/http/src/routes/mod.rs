//! Routes, one module per resource; each exposes `configure`.

mod api_keys;
mod audit;
mod auth;
mod finops;
pub(crate) mod instances;
mod invitations;
mod marketplace;
mod members;
mod models;
mod ops;
mod organizations;
mod proxy;
pub(crate) mod sharing;
mod users;
mod workbench;

use utoipa_actix_web::service_config::ServiceConfig;

/// Registers every route (and, through utoipa-actix-web, its OpenAPI description).
pub fn configure(cfg: &mut ServiceConfig) {
    // The proxy first: actix tries routes in order, and the proxy is the hot path (the
    // routes before it with path parameters each cost a regex match).
    proxy::configure(cfg);
    ops::configure(cfg);
    auth::configure(cfg);
    organizations::configure(cfg);
    members::configure(cfg);
    invitations::configure(cfg);
    audit::configure(cfg);
    instances::configure(cfg);
    models::configure(cfg);
    api_keys::configure(cfg);
    users::configure(cfg);
    finops::configure(cfg);
    sharing::configure(cfg);
    marketplace::configure(cfg);
    workbench::configure(cfg);
}
