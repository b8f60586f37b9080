//! Request extractors: [`Caller`], the service's request context ([`Ctx`]: the authenticated
//! principal, built once per request by the service from the live session or key, with the
//! request's facts), the CSRF origin rule for cookie-authenticated writes, and [`Meta`]
//! (request id, client IP, user agent) for the routes that have no caller yet.

use crate::{ApiError, AppState};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpRequest, ResponseError, web};
use futures_util::future::{Either, LocalBoxFuture};
use inventiv_domain::{ErrorCode, OrgId, Workspace};
use inventiv_service::auth::{self, Principal};
use inventiv_service::{Ctx, RequestMeta};
use std::borrow::Cow;
use std::future::{Ready, ready};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "inventiv_session";

/// An authenticated request: the service's [`Ctx`] (principal, request facts, clock reading),
/// which every authenticated use case takes. Derefs to [`Ctx`], so a handler passes `&ctx`.
pub struct Caller(Ctx);

/// Like [`Caller`] but accepting a token past its `exp` (`POST /auth/refresh` only).
pub struct ForRefresh(Ctx);

impl std::ops::Deref for Caller {
    type Target = Ctx;
    fn deref(&self) -> &Ctx {
        &self.0
    }
}

impl std::ops::Deref for ForRefresh {
    type Target = Ctx;
    fn deref(&self) -> &Ctx {
        &self.0
    }
}

/// Where the credential came from: cookie-borne writes must pass the CSRF origin check.
enum Source {
    Bearer,
    Cookie,
    ApiKey,
}

/// The `X-API-Key` header (an alternative to `Authorization: Bearer sk-inv-…`).
const API_KEY_HEADER: &str = "x-api-key";

/// The credential presented, borrowed from its header where it can be (a cookie's value is
/// owned: actix parses cookies into owned values).
fn credential(req: &HttpRequest) -> Result<(Cow<'_, str>, Source), ApiError> {
    if let Some(value) = req.headers().get(API_KEY_HEADER) {
        let key = value.to_str().unwrap_or_default().trim();
        return Ok((Cow::Borrowed(key), Source::ApiKey));
    }
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        // Bytes, then UTF-8 (checked a word at a time), rather than `HeaderValue::to_str`, whose
        // byte-by-byte scan of a ~400-byte token was a visible share of a cached read's CPU
        // (issue 18). A token with bytes `to_str` would refuse cannot verify either: 401 both.
        let token = bearer_token(value.as_bytes())
            .and_then(|token| std::str::from_utf8(token).ok())
            .ok_or_else(|| unauthorized("The Authorization header must be `Bearer <token>`."))?;
        let source = if token.starts_with(inventiv_service::api_keys::KEY_PREFIX) {
            Source::ApiKey
        } else {
            Source::Bearer
        };
        return Ok((Cow::Borrowed(token), source));
    }
    match req.cookie(SESSION_COOKIE) {
        Some(cookie) if !cookie.value().is_empty() => {
            Ok((Cow::Owned(cookie.value().to_owned()), Source::Cookie))
        }
        _ => Err(unauthorized(
            "Sign in first: no session cookie or bearer token.",
        )),
    }
}

/// The token of an `Authorization` value `Bearer <token>` (the scheme in any case), without
/// the ASCII whitespace around it; None if the value is not of that form or the token is
/// empty. The one reading of the header that [`credential`] and [`carries_api_key`] share: when
/// each had its own, a byte the guard's reading refused (`\xC2\xA0` after a key) hid a key
/// from the guard that the extractor still authenticated, and a key changed its own cap.
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, token) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = token.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Whether the request presents an API key (valid or not), by the same rules as
/// [`credential`]: an `X-API-Key` header, or a bearer token with the key prefix, in any of
/// the `Authorization` headers (whatever its bytes).
fn carries_api_key(req: &ServiceRequest) -> bool {
    if req.headers().contains_key(API_KEY_HEADER) {
        return true;
    }
    req.headers()
        .get_all(header::AUTHORIZATION)
        .filter_map(|v| bearer_token(v.as_bytes()))
        .any(|token| token.starts_with(inventiv_service::api_keys::KEY_PREFIX.as_bytes()))
}

/// SPEC §6 (v2): API keys are read-only outside `/v1/*`. Any request that could change state
/// (every method but GET, HEAD and OPTIONS) and carries a key is refused with 403
/// `api_key_not_allowed` here, before routing, extractors, body parsing or any lookup: no
/// handler can forget it, and public routes (login, invitation accept, password reset) cannot
/// be made to act as the key's user either. Nothing about the key is looked up, so a refusal
/// says nothing about whether it is valid.
pub async fn read_only_keys(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && !crate::error::is_openai_path(req.path()) && carries_api_key(&req) {
        let refusal = ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::ApiKeyNotAllowed,
            "API keys may only read outside /v1; sign in to change anything.",
        );
        return Ok(req.into_response(refusal.error_response()));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
}

/// SPEC §6: a state-changing request authenticated by cookie must come from an allowed origin:
/// one of `auth.allowed_origins` (default: `server.public_url`), or this server itself as the
/// browser addressed it (the Origin's host and port are the request's `Host`), so the console
/// works whether it was opened as 127.0.0.1 or localhost. A cross-site page cannot pass the
/// second test: its Origin names its own host, and a page on another host (DNS rebinding
/// included) never holds this host's cookie.
fn check_csrf(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(|o| o.trim_end_matches('/'));
    let allowed = origin.is_some_and(|origin| {
        state.cookies.allowed_origins.iter().any(|o| o == origin) || same_origin(req, origin)
    });
    if allowed {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::CsrfOrigin,
            "A cookie-authenticated change must come from an allowed Origin.",
        ))
    }
}

/// Whether `origin` (`scheme://host[:port]`) names the host the request was sent to.
fn same_origin(req: &HttpRequest, origin: &str) -> bool {
    let Some(authority) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    req.headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|host| !host.is_empty() && host.eq_ignore_ascii_case(authority))
}

fn extract(
    req: &HttpRequest,
    for_refresh: bool,
) -> LocalBoxFuture<'static, Result<Principal, ApiError>> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let credential = credential(req).and_then(|(token, source)| {
        let state = state
            .as_ref()
            .ok_or_else(|| ApiError::from_status(StatusCode::INTERNAL_SERVER_ERROR))?;
        if matches!(source, Source::Cookie) {
            check_csrf(req, state)?;
        }
        Ok((token.into_owned(), source))
    });
    Box::pin(async move {
        let (token, source) = credential?;
        let state =
            state.ok_or_else(|| ApiError::from_status(StatusCode::INTERNAL_SERVER_ERROR))?;
        let principal = match source {
            Source::ApiKey => inventiv_service::api_keys::authenticate(&state.deps, &token).await,
            Source::Bearer | Source::Cookie if for_refresh => {
                auth::authenticate_for_refresh(&state.deps, &token).await
            }
            Source::Bearer | Source::Cookie => auth::authenticate(&state.deps, &token).await,
        };
        principal.map_err(ApiError::from)
    })
}

/// The workspace precondition header (SPEC §4 v2): `<org id>` or `personal`.
const WORKSPACE_HEADER: &str = "x-inventiv-workspace";

/// What the request says its workspace is, when it says so: `Some(None)` for `personal`,
/// `Some(Some(org))` for an org id.
fn expected_workspace(req: &HttpRequest) -> Result<Option<Option<OrgId>>, ApiError> {
    let Some(value) = req.headers().get(WORKSPACE_HEADER) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "X-Inventiv-Workspace must be an organization id or `personal`.",
        )
    };
    let value = value.to_str().map_err(|_| bad())?.trim();
    if value.is_empty() {
        // Present but empty: no claim about the workspace (as when absent).
        return Ok(None);
    }
    if value == "personal" {
        return Ok(Some(None));
    }
    // Only the hyphenated form (36 characters), as documented: one spelling per value.
    if value.len() != 36 {
        return Err(bad());
    }
    value
        .parse::<uuid::Uuid>()
        .map(|id| Some(Some(OrgId::from_uuid(id))))
        .map_err(|_| bad())
}

/// Refuses the request (409 `workspace_changed`, before any handler runs, so nothing changes)
/// when it names a workspace the session is no longer in: another tab switched it, or the
/// membership is gone. The principal's workspace is the session's live one.
fn check_workspace(expected: Option<Option<OrgId>>, principal: &Principal) -> Result<(), ApiError> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let current = match principal.workspace {
        Workspace::Personal => None,
        Workspace::Org { org, .. } => Some(org),
    };
    if current == expected {
        return Ok(());
    }
    let now = match current {
        Some(org) => format!("organization {org}"),
        None => "Personal".to_owned(),
    };
    Err(ApiError::new(
        StatusCode::CONFLICT,
        ErrorCode::WorkspaceChanged,
        format!(
            "This session's workspace changed (it is now {now}); nothing was done. Reload to see the current workspace."
        ),
    ))
}

/// An extractor's answer: at once when memory had all it needed, else a future.
type Answer<T> = Either<Ready<Result<T, ApiError>>, LocalBoxFuture<'static, Result<T, ApiError>>>;

/// Authenticates the request, checks the workspace precondition, then wraps the principal
/// with the request's facts.
fn context(req: &HttpRequest, for_refresh: bool) -> Answer<Ctx> {
    if !for_refresh && let Some(answer) = context_from_memory(req) {
        return Either::Left(ready(answer));
    }
    let principal = extract(req, for_refresh);
    let meta = request_meta(req);
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let expected = expected_workspace(req);
    Either::Right(Box::pin(async move {
        let principal = principal.await?;
        check_workspace(expected?, &principal)?;
        let state =
            state.ok_or_else(|| ApiError::from_status(StatusCode::INTERNAL_SERVER_ERROR))?;
        Ok(Ctx::new(&state.deps, principal, meta))
    }))
}

/// [`context`] for a session whose token and entry are in memory
/// ([`auth::authenticate_cached`]), answered without a future; `None` for anything else (an
/// API key, a miss, a refusal), which takes the full path and its error. The same checks in
/// the same order: the credential, the CSRF origin of a cookie, the session, the workspace.
fn context_from_memory(req: &HttpRequest) -> Option<Result<Ctx, ApiError>> {
    let state = req.app_data::<web::Data<AppState>>()?;
    let (token, source) = credential(req).ok()?;
    if matches!(source, Source::ApiKey)
        || (matches!(source, Source::Cookie) && check_csrf(req, state).is_err())
    {
        return None;
    }
    let principal = auth::authenticate_cached(&state.deps, &token)?;
    Some(
        expected_workspace(req)
            .and_then(|expected| check_workspace(expected, &principal))
            .map(|()| Ctx::new(&state.deps, principal, request_meta(req))),
    )
}

/// `answer` with its value wrapped by `wrap`, still without a future when it had none.
fn map_answer<T, U: 'static>(answer: Answer<T>, wrap: fn(T) -> U) -> Answer<U>
where
    T: 'static,
{
    match answer {
        Either::Left(done) => Either::Left(ready(done.into_inner().map(wrap))),
        Either::Right(pending) => Either::Right(Box::pin(async move { pending.await.map(wrap) })),
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Answer<Self>;

    #[tracing::instrument(skip_all)]
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        map_answer(context(req, false), Caller)
    }
}

impl FromRequest for ForRefresh {
    type Error = ApiError;
    type Future = Answer<Self>;

    #[tracing::instrument(skip_all)]
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        map_answer(context(req, true), ForRefresh)
    }
}

/// An optional session: `None` without credentials; credentials that are present must be
/// valid (401 otherwise) — a bad token is never silently treated as anonymous.
pub struct MaybeAuthenticated(pub Option<Principal>);

impl FromRequest for MaybeAuthenticated {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    #[tracing::instrument(skip_all)]
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let present = req.headers().contains_key(header::AUTHORIZATION)
            || req.headers().contains_key(API_KEY_HEADER)
            || req
                .cookie(SESSION_COOKIE)
                .is_some_and(|c| !c.value().is_empty());
        if !present {
            return Box::pin(async { Ok(MaybeAuthenticated(None)) });
        }
        let fut = extract(req, false);
        Box::pin(async move { fut.await.map(|p| MaybeAuthenticated(Some(p))) })
    }
}

/// Request facts for sessions and audit events.
pub struct Meta(pub RequestMeta);

impl FromRequest for Meta {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Meta(request_meta(req))))
    }
}

fn request_meta(req: &HttpRequest) -> RequestMeta {
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(512).collect());
    let trusted = req
        .app_data::<web::Data<TrustedProxies>>()
        .map_or(&[][..], |t| t.0.as_slice());
    RequestMeta {
        request_id: crate::request_context::current_request_id(),
        ip: req
            .peer_addr()
            .map(|a| client_ip(a.ip(), req.headers(), trusted).to_string()),
        user_agent,
    }
}

/// The reverse proxies (`server.trusted_proxies`) whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Vec<inventiv_service::network::Cidr>);

/// The client's address: the TCP `peer`, unless the peer is a trusted proxy; then the last
/// `X-Forwarded-For` address that is not itself a trusted proxy (each proxy appends the
/// address it got the request from, so the addresses left of that one are the client's word
/// and can be forged). An entry that is not an address stops the walk at the last trusted
/// hop. Behind a load balancer, the peer of every request is the balancer: without this, the
/// per-address sign-in limit was one budget for all clients together.
pub fn client_ip(
    peer: std::net::IpAddr,
    headers: &actix_web::http::header::HeaderMap,
    trusted: &[inventiv_service::network::Cidr],
) -> std::net::IpAddr {
    let is_trusted = |ip: std::net::IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for entry in forwarded.iter().rev() {
        match entry.parse::<std::net::IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

/// A JSON request body that must be an object: `web::Json` with the same limit, content type
/// and errors (the app's `JsonConfig`), except that a JSON array is refused. serde's derived
/// `Deserialize` also accepts a struct written as an array of its field values in order, so
/// `[null, null]` would otherwise "clear" the first two fields of a PATCH-like body.
/// (Named `Json` so that utoipa still documents the body from the handler's signature.)
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: serde::de::DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = web::Json::<JsonObject<T>>::from_request(req, payload);
        Box::pin(async move { body.await.map(|b| Json(b.into_inner().0)) })
    }
}

/// Deserializes `T` from a JSON object only.
struct JsonObject<T>(T);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for JsonObject<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(std::marker::PhantomData<T>);

        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for ObjectVisitor<T> {
            type Value = T;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }

        deserializer
            .deserialize_map(ObjectVisitor(std::marker::PhantomData))
            .map(JsonObject)
    }
}
