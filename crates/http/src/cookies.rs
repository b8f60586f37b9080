//! The `inventiv_session` cookie: HttpOnly, SameSite=Lax, Secure per configuration.

use crate::extract::SESSION_COOKIE;
use actix_web::cookie::{Cookie, SameSite, time::Duration};
use time::OffsetDateTime;

/// Cookie and CSRF settings (from `[auth]`).
#[derive(Debug, Clone)]
pub struct CookieSettings {
    pub secure: bool,
    /// Exact origins (scheme://host[:port]) accepted on cookie-authenticated writes.
    pub allowed_origins: Vec<String>,
}

/// A cookie carrying `token` until `expires_at`.
pub fn session_cookie(
    settings: &CookieSettings,
    token: &str,
    expires_at: OffsetDateTime,
) -> Cookie<'static> {
    let max_age = (expires_at - OffsetDateTime::now_utc())
        .whole_seconds()
        .max(0);
    Cookie::build(SESSION_COOKIE, token.to_owned())
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(settings.secure)
        .path("/")
        .max_age(Duration::seconds(max_age))
        .finish()
}

/// A cookie that removes the session cookie.
pub fn cleared_cookie(settings: &CookieSettings) -> Cookie<'static> {
    let mut cookie = session_cookie(settings, "", OffsetDateTime::now_utc());
    cookie.make_removal();
    cookie
}
