//! Bodies shared by several routes. Never a database model: each DTO is built from a service
//! result, field by field, so a new column never leaks by accident.

use inventiv_domain::Workspace;
use inventiv_service::auth::{IssuedToken, Me};
use inventiv_service::cache::Rendered;
use inventiv_service::users::User;
use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// A date sent by the client, checked against the accepted range (1970..9999 in UTC, see
/// `inventiv_domain::dates`) before any use, and returned in UTC: out of range is
/// `400 validation_failed` naming `field`, never an overflow further on.
pub(crate) fn date(
    field: &str,
    t: OffsetDateTime,
) -> Result<OffsetDateTime, inventiv_service::ServiceError> {
    inventiv_domain::dates::accepted(t).ok_or_else(|| {
        inventiv_service::ServiceError::invalid(field, inventiv_domain::dates::OUT_OF_RANGE)
    })
}

/// An optional query parameter read by its domain type's `FromStr`. The query string itself
/// parsed, so a name the type does not know is `400 validation_failed` naming the parameter
/// (the reason lists the accepted names), not `invalid_query`.
pub(crate) fn query_value<T>(
    value: Option<&str>,
) -> Result<Option<T>, inventiv_service::ServiceError>
where
    T: std::str::FromStr<Err = inventiv_domain::ValueError>,
{
    Ok(value.map(str::parse).transpose()?)
}

/// [`date`] for an optional field.
pub(crate) fn opt_date(
    field: &str,
    t: Option<OffsetDateTime>,
) -> Result<Option<OffsetDateTime>, inventiv_service::ServiceError> {
    t.map(|t| date(field, t)).transpose()
}

/// A list page (SPEC §4): `next_cursor` is null on the last page.
#[derive(Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// One frontend module and how it may be used (SPEC §2.4).
#[derive(Serialize, ToSchema)]
pub struct ModuleDto {
    /// e.g. `instances`
    pub id: &'static str,
    /// `read` or `write`
    pub access: &'static str,
}

/// `GET /auth/me`: the account, this session's workspace, and what it may do there.
#[derive(Serialize, ToSchema)]
pub struct MeResponse {
    pub user_id: Uuid,
    pub email: String,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub is_platform_admin: bool,
    /// The session (null when the caller used an API key).
    pub session_id: Option<Uuid>,
    pub current_organization_id: Option<Uuid>,
    pub current_organization_name: Option<String>,
    pub current_organization_slug: Option<String>,
    /// `owner`, `admin`, `manager` or `user`; null in the personal workspace.
    pub current_organization_role: Option<String>,
    /// The roles this caller may give here (invite, change a member to; SPEC §2.1 delegation):
    /// the menus of a client come from this, not from a copy of the rule. Empty in the
    /// personal workspace.
    pub assignable_roles: Vec<String>,
    /// The action names allowed in the current workspace (the guards' own map).
    pub permissions: Vec<String>,
    pub modules: Vec<ModuleDto>,
}

impl From<Me> for MeResponse {
    fn from(me: Me) -> Self {
        let role = match me.actor.workspace {
            Workspace::Org { role, .. } => Some(role),
            Workspace::Personal => None,
        };
        MeResponse {
            user_id: me.user.id.as_uuid(),
            email: me.user.email.as_str().to_owned(),
            username: me.user.username.map(|u| u.as_str().to_owned()),
            first_name: me.user.first_name,
            last_name: me.user.last_name,
            is_platform_admin: me.user.is_platform_admin,
            session_id: me.session_id.map(|s| s.as_uuid()),
            current_organization_id: me.organization.as_ref().map(|o| o.id.as_uuid()),
            current_organization_name: me.organization.as_ref().map(|o| o.name.as_str().to_owned()),
            current_organization_slug: me.organization.as_ref().map(|o| o.slug.as_str().to_owned()),
            current_organization_role: role.map(|r| r.as_str().to_owned()),
            assignable_roles: role
                .map(inventiv_domain::assignable)
                .unwrap_or_default()
                .iter()
                .map(|r| r.as_str().to_owned())
                .collect(),
            permissions: me.permissions.iter().map(|p| p.name().to_owned()).collect(),
            modules: me
                .modules
                .iter()
                .map(|m| ModuleDto {
                    id: m.id.as_str(),
                    access: m.access.as_str(),
                })
                .collect(),
        }
    }
}

/// A new access token (also set as the `inventiv_session` cookie).
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl From<&IssuedToken> for TokenResponse {
    fn from(t: &IssuedToken) -> Self {
        TokenResponse {
            access_token: t.token.clone(),
            expires_at: t.expires_at,
        }
    }
}

/// Me plus a new token (after a workspace switch).
#[derive(Serialize, ToSchema)]
pub struct MeWithToken {
    #[serde(flatten)]
    pub me: MeResponse,
    #[serde(flatten)]
    pub token: TokenResponse,
}

/// For PATCH-like bodies: distinguishes an absent field (`None`) from an explicit `null`
/// (`Some(None)`). Use with `#[serde(default, deserialize_with = "double_option")]`.
pub fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A user account as clients see it (never the password hash).
#[derive(Serialize, ToSchema)]
pub struct UserDto {
    pub id: Uuid,
    pub email: String,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub is_platform_admin: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<User> for UserDto {
    fn from(user: User) -> Self {
        UserDto {
            id: user.id.as_uuid(),
            email: user.email.as_str().to_owned(),
            username: user.username.map(|u| u.as_str().to_owned()),
            first_name: user.first_name,
            last_name: user.last_name,
            is_platform_admin: user.is_platform_admin,
            created_at: user.created_at,
        }
    }
}

/// `?limit=&cursor=` of every list.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1..200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn request(&self) -> inventiv_service::paging::PageRequest {
        inventiv_service::paging::PageRequest {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
    }
}

/// A service page mapped to its DTO.
pub fn page<T, D>(page: inventiv_service::paging::Page<T>, map: impl Fn(T) -> D) -> Page<D> {
    Page {
        items: page.items.into_iter().map(map).collect(),
        next_cursor: page.next_cursor,
    }
}

/// The JSON of `value` (a cached answer's rendering; see `inventiv_service::cache::Rendered`).
/// Our response types always serialize; were one not to, the body says so rather than panic.
pub fn to_json<T: Serialize>(value: &T) -> bytes::Bytes {
    serde_json::to_vec(value)
        .map(bytes::Bytes::from)
        .unwrap_or_else(|_| bytes::Bytes::from_static(b"{\"error\":\"internal_error\"}"))
}

/// A 200 answer of a cached value's JSON (see `inventiv_service::cache::Rendered`): gzipped
/// when the client accepts gzip and the body is worth it. The gzip is made once per cached
/// value and kept beside its JSON, so a hit costs no compression; the page's bytes, copied
/// three times on the way to the client, were most of a cached `GET /instances` (issue 18).
/// Neither body holds a secret (no token, no CSRF value), so compressing them beside
/// attacker-chosen text (a name) leaks nothing: the BREACH condition does not arise.
pub fn cached_json<T>(
    req: &actix_web::HttpRequest,
    rendered: &Rendered<T>,
    render: impl FnOnce(&T) -> bytes::Bytes,
) -> actix_web::HttpResponse {
    use actix_web::http::header::{self, ContentEncoding, ContentType};
    let mut answer = actix_web::HttpResponse::Ok();
    answer
        .content_type(ContentType::json())
        // Either body can be sent for this address, so shared caches must key on the header.
        .insert_header((
            header::VARY,
            header::HeaderValue::from_static("accept-encoding"),
        ));
    let body = rendered.body(render);
    if body.len() < GZIP_FROM || !accepts_gzip(req) {
        return answer.body(body);
    }
    let gzipped = rendered.encoded(|| gzip(&body));
    if gzipped.is_empty() {
        return answer.body(body);
    }
    answer.insert_header(ContentEncoding::Gzip).body(gzipped)
}

/// Bodies shorter than this are sent as they are: they fit one packet already.
const GZIP_FROM: usize = 1024;

/// Whether the client's `Accept-Encoding` ranks gzip as acceptable, and first among what we
/// can send (gzip or nothing).
fn accepts_gzip(req: &actix_web::HttpRequest) -> bool {
    use actix_web::http::header::{AcceptEncoding, Encoding, Header};
    if !req
        .headers()
        .contains_key(actix_web::http::header::ACCEPT_ENCODING)
    {
        return false;
    }
    AcceptEncoding::parse(req).is_ok_and(|accepted| {
        accepted.negotiate([Encoding::gzip(), Encoding::identity()].iter())
            == Some(Encoding::gzip())
    })
}

/// The gzip of `body` (the default level: made once per cached value, sent many times), or
/// nothing should it fail (writing into a Vec cannot).
fn gzip(body: &bytes::Bytes) -> bytes::Bytes {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::default(),
    );
    // Writing into a Vec cannot fail.
    match encoder.write_all(body).and_then(|()| encoder.finish()) {
        Ok(gzipped) => bytes::Bytes::from(gzipped),
        Err(_) => bytes::Bytes::new(),
    }
}
