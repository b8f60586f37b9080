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

use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

/// Registers every route (and, through utoipa-actix-web, its OpenAPI description), in one
/// scope per first path segment. Why: actix tries the routes of a level one after another,
/// and each route with a path parameter costs a regex match (and every route a small
/// allocation), so a flat list made a route as slow as its position: 2 µs of a cached `GET
/// /instances` went to the 39 routes registered before it (issue 18). A scope is matched by
/// its literal prefix; a request now only tries the routes of its own segment. The handlers'
/// paths are relative to their scope; the OpenAPI document shows them whole.
pub fn configure(cfg: &mut ServiceConfig) {
    // The proxy first: it is the hot path.
    cfg.service(scope("/v1").configure(proxy::configure));
    ops::configure(cfg);
    cfg.service(
        scope("/auth")
            .configure(auth::configure)
            .configure(invitations::configure_mine),
    );
    cfg.service(scope("/instances").configure(instances::configure));
    cfg.service(
        scope("/organizations")
            .configure(organizations::configure)
            .configure(members::configure)
            .configure(invitations::configure)
            .configure(audit::configure)
            .configure(sharing::configure)
            .configure(marketplace::configure_requests),
    );
    cfg.service(scope("/deployments").configure(instances::configure_deployments));
    cfg.service(scope("/models").configure(models::configure));
    cfg.service(scope("/api_keys").configure(api_keys::configure));
    cfg.service(scope("/users").configure(users::configure));
    cfg.service(scope("/finops").configure(finops::configure));
    cfg.service(scope("/marketplace").configure(marketplace::configure));
    cfg.service(scope("/workbench").configure(workbench::configure));
    cfg.service(scope("/platform").configure(audit::configure_platform));
}
