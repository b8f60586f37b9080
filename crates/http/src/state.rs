use crate::cookies::CookieSettings;
use crate::metrics::Metrics;
use inventiv_service::Deps;

/// Shared by every handler (wrapped in `web::Data`).
#[derive(Clone, Debug)]
pub struct AppState {
    pub deps: Deps,
    pub metrics: Metrics,
    pub cookies: CookieSettings,
}
