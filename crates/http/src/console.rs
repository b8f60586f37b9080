//! The web console (issue 10): static files compiled into the binary (`crates/http/console/`,
//! plain HTML, JavaScript modules and CSS; no build step), served at `/` and at the two public
//! addresses the emails link to, `/invitations/{token}` and `/reset-password`. The pages talk
//! to the server through the public REST API only, like any other frontend.
//!
//! These are pages, not API operations: they are not in `/openapi.json`.

use crate::ApiError;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use inventiv_domain::ErrorCode;

/// (name under `/console/`, content type, content).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../console/style.css"),
    ),
    ("app.js", JS, include_str!("../console/app.js")),
    ("api.js", JS, include_str!("../console/api.js")),
    ("dom.js", JS, include_str!("../console/dom.js")),
    ("approvals.js", JS, include_str!("../console/approvals.js")),
    (
        "pages/workbench.js",
        JS,
        include_str!("../console/pages/workbench.js"),
    ),
    (
        "pages/audit.js",
        JS,
        include_str!("../console/pages/audit.js"),
    ),
    (
        "pages/finops.js",
        JS,
        include_str!("../console/pages/finops.js"),
    ),
    (
        "pages/home.js",
        JS,
        include_str!("../console/pages/home.js"),
    ),
    (
        "pages/instances.js",
        JS,
        include_str!("../console/pages/instances.js"),
    ),
    (
        "pages/invitation.js",
        JS,
        include_str!("../console/pages/invitation.js"),
    ),
    (
        "pages/keys.js",
        JS,
        include_str!("../console/pages/keys.js"),
    ),
    (
        "pages/login.js",
        JS,
        include_str!("../console/pages/login.js"),
    ),
    (
        "pages/members.js",
        JS,
        include_str!("../console/pages/members.js"),
    ),
    (
        "pages/models.js",
        JS,
        include_str!("../console/pages/models.js"),
    ),
    (
        "pages/organizations.js",
        JS,
        include_str!("../console/pages/organizations.js"),
    ),
    (
        "pages/reset.js",
        JS,
        include_str!("../console/pages/reset.js"),
    ),
    (
        "pages/sessions.js",
        JS,
        include_str!("../console/pages/sessions.js"),
    ),
    (
        "pages/sharing.js",
        JS,
        include_str!("../console/pages/sharing.js"),
    ),
    (
        "pages/settings.js",
        JS,
        include_str!("../console/pages/settings.js"),
    ),
    (
        "pages/profile.js",
        JS,
        include_str!("../console/pages/profile.js"),
    ),
    (
        "pages/needs-org.js",
        JS,
        include_str!("../console/pages/needs-org.js"),
    ),
    (
        "pages/users.js",
        JS,
        include_str!("../console/pages/users.js"),
    ),
    (
        "pages/marketplace.js",
        JS,
        include_str!("../console/pages/marketplace.js"),
    ),
    (
        "pages/shares.js",
        JS,
        include_str!("../console/pages/shares.js"),
    ),
];
const JS: &str = "text/javascript; charset=utf-8";
const INDEX: &str = include_str!("../console/index.html");

/// Only this server's own scripts, styles and API; no framing (clickjacking).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("/invitations/{token}", web::get().to(index))
        .route("/reset-password", web::get().to(index))
        .route("/console/{path:.*}", web::get().to(asset));
}

fn page(content_type: &'static str, body: &'static str) -> HttpResponse {
    let mut res = HttpResponse::Ok()
        .content_type(content_type)
        // Small files served from memory: always revalidate, so an upgrade shows at once.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body);
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    res.headers_mut().insert(
        header::REFERRER_POLICY,
        // Invitation and reset tokens are in these pages' addresses: never send them on.
        HeaderValue::from_static("no-referrer"),
    );
    res
}

async fn index() -> HttpResponse {
    page("text/html; charset=utf-8", INDEX)
}

async fn asset(path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    match ASSETS.iter().find(|(name, _, _)| *name == path.as_str()) {
        Some((_, content_type, body)) => Ok(page(content_type, body)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "No such console file.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::ASSETS;

    /// Every module the pages import is served (a missing entry would break the console).
    #[test]
    fn every_imported_module_is_served() {
        for (name, _, body) in ASSETS {
            for line in body.lines().filter(|l| l.starts_with("import ")) {
                let Some(spec) = line.split('\'').nth(1) else {
                    continue;
                };
                let base = name.rsplit_once('/').map_or("", |(dir, _)| dir);
                let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
                for part in spec.split('/') {
                    match part {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        p => parts.push(p),
                    }
                }
                let target = parts.join("/");
                assert!(
                    ASSETS.iter().any(|(n, _, _)| *n == target),
                    "{name} imports {spec}, which is not served"
                );
            }
        }
    }
}
