use super::jwt::Claims;
use super::unauthorized;
use crate::{Deps, ServiceError};
use inventiv_domain::ErrorCode;
use inventiv_domain::{Actor, Credential, Email, SessionId, UserId, Workspace};
use inventiv_persistence::Tag;
use inventiv_persistence::repo::sessions::{self, SessionAuth};
use time::Duration;

/// Who is calling, as decided by the database on this request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: UserId,
    pub email: Email,
    pub is_platform_admin: bool,
    pub workspace: Workspace,
    /// What the caller authenticated with: exactly one of a session or an API key.
    pub via: Via,
}

/// The credential behind a request. One enum, so "a session and a key at once" or "neither"
/// cannot be written.
#[derive(Debug, Clone)]
pub enum Via {
    Session(SessionRef),
    ApiKey(ApiKeyRef),
}

/// The live session behind a request.
#[derive(Debug, Clone, Copy)]
pub struct SessionRef {
    pub id: SessionId,
    pub token_generation: i32,
    /// The generation the presented token carries: equal to `token_generation` except on
    /// `POST /auth/refresh`, which judges a superseded token itself (reuse or two tabs).
    pub presented_generation: i32,
    pub expires_at: time::OffsetDateTime,
}

/// The API key behind a request.
#[derive(Debug, Clone)]
pub struct ApiKeyRef {
    pub id: inventiv_domain::ApiKeyId,
    /// The models/offerings this key may call (None: any its scope allows).
    pub allowed_models: Option<Vec<String>>,
    /// The key's monthly spend cap (None: none): the proxy admits its calls against it.
    pub monthly_cap_micros: Option<i64>,
}

impl Principal {
    /// The session, for operations that only a signed-in session may perform (403
    /// `api_key_not_allowed` with an API key).
    pub fn session(&self) -> Result<SessionRef, ServiceError> {
        match &self.via {
            Via::Session(session) => Ok(*session),
            Via::ApiKey(_) => Err(ServiceError::Forbidden {
                code: ErrorCode::ApiKeyNotAllowed,
                message: "This requires a signed-in session, not an API key.".to_owned(),
            }),
        }
    }

    /// The session id, if any (audit events).
    pub fn session_id(&self) -> Option<SessionId> {
        match &self.via {
            Via::Session(session) => Some(session.id),
            Via::ApiKey(_) => None,
        }
    }

    /// The API key, if the caller authenticated with one.
    pub fn api_key(&self) -> Option<&ApiKeyRef> {
        match &self.via {
            Via::ApiKey(key) => Some(key),
            Via::Session(_) => None,
        }
    }

    /// The kind of credential, as the domain policy sees it.
    pub fn credential(&self) -> Credential {
        match self.via {
            Via::Session(_) => Credential::Session,
            Via::ApiKey(_) => Credential::ApiKey,
        }
    }

    /// The actor the domain policy judges.
    pub fn actor(&self) -> Actor {
        Actor {
            user: self.user_id,
            is_platform_admin: self.is_platform_admin,
            workspace: self.workspace,
            credential: self.credential(),
        }
    }
}

/// `last_used_at` is written at most this often per session (not on every request).
const TOUCH_EVERY: Duration = Duration::minutes(1);

/// Verifies `token` and loads the live session behind it (SPEC §6).
pub async fn authenticate(deps: &Deps, token: &str) -> Result<Principal, ServiceError> {
    let claims = deps
        .auth
        .jwt
        .verify(token)
        .ok_or_else(|| unauthorized("The access token is invalid."))?;
    if claims.exp <= deps.clock.now().unix_timestamp() {
        return Err(ServiceError::Unauthenticated {
            code: ErrorCode::TokenExpired,
            message: "The access token has expired; sign in again.".to_owned(),
        });
    }
    load(deps, &claims, false).await
}

/// Like [`authenticate`] but accepts a token past its `exp`, and a superseded one: `POST
/// /auth/refresh` is authorized by the live session row, and decides itself what a superseded
/// generation means (see `sessions::refresh`: the current token within the grace, otherwise
/// the session is revoked as stolen).
pub async fn authenticate_for_refresh(deps: &Deps, token: &str) -> Result<Principal, ServiceError> {
    let claims = deps
        .auth
        .jwt
        .verify(token)
        .ok_or_else(|| unauthorized("The access token is invalid."))?;
    load(deps, &claims, true).await
}

/// [`authenticate`] answered from memory alone, when it can be: a token that verified before,
/// not expired, whose session's cached copy accepts it, in a workspace whose membership is
/// known, with no `last_used_at` touch due. `None` whenever anything would have to be read or
/// written — or refused: the caller then takes [`authenticate`], which judges again and gives
/// the reason. The checks are the same functions as [`authenticate`]'s; what this saves is the
/// asynchronous machinery around them (issue 18: the boxed future of the whole database path
/// was allocated and moved on every cached read).
pub fn authenticate_cached(deps: &Deps, token: &str) -> Option<Principal> {
    let claims = deps.auth.jwt.verify(token)?;
    let now = deps.clock.now();
    if claims.exp <= now.unix_timestamp() {
        return None;
    }
    let sid: SessionId = claims.sid.parse().ok()?;
    let (session, presented) = cached(deps, &claims, sid, now, false)?;
    let workspace = match (session.current_organization_id, session.member_role) {
        (Some(org), Some(role)) => Workspace::Org { org, role },
        (Some(_), None) => return None,
        (None, _) => Workspace::Personal,
    };
    if now - session.last_used_at >= TOUCH_EVERY {
        return None;
    }
    Some(principal(session, sid, presented, workspace))
}

/// The cached copy of session `sid`, if it accepts `claims` at `now`, with the presented
/// generation. The cache may only say yes: a copy that refuses (revoked, expired, another
/// generation) is judged again on the row itself, so a cached copy older than the database —
/// another replica's touch or refresh not yet seen — never turns a valid token away.
fn cached(
    deps: &Deps,
    claims: &Claims,
    sid: SessionId,
    now: time::OffsetDateTime,
    superseded_allowed: bool,
) -> Option<(SessionAuth, i32)> {
    let session = deps.caches.sessions.get(&deps.db, &sid)?;
    let presented = judge(&session, claims, now, superseded_allowed).ok()?;
    Some((session, presented))
}

fn principal(
    session: SessionAuth,
    sid: SessionId,
    presented: i32,
    workspace: Workspace,
) -> Principal {
    Principal {
        user_id: session.user_id,
        email: session.email,
        is_platform_admin: session.is_platform_admin,
        workspace,
        via: Via::Session(SessionRef {
            id: sid,
            token_generation: session.token_generation,
            presented_generation: presented,
            expires_at: session.expires_at,
        }),
    }
}

async fn load(
    deps: &Deps,
    claims: &Claims,
    superseded_allowed: bool,
) -> Result<Principal, ServiceError> {
    let sid: SessionId = claims
        .sid
        .parse()
        .map_err(|_| unauthorized("The access token is invalid."))?;
    let now = deps.clock.now();
    let (session, presented) = match cached(deps, claims, sid, now, superseded_allowed) {
        Some(found) => found,
        None => {
            let session = fetch(deps, sid).await?;
            let presented = judge(&session, claims, now, superseded_allowed)?;
            (session, presented)
        }
    };
    let workspace = match (session.current_organization_id, session.member_role) {
        (Some(org), Some(role)) => Workspace::Org { org, role },
        (Some(_), None) => {
            // The membership is gone: this session falls back to the personal workspace.
            let tx = deps.db.begin_write().await?;
            sessions::fall_back_to_personal(&tx, sid).await?;
            tx.commit().await?;
            Workspace::Personal
        }
        (None, _) => Workspace::Personal,
    };
    if now - session.last_used_at >= TOUCH_EVERY {
        let idle_expires_at = now + deps.auth.session_idle;
        sessions::touch(&deps.db, sid, now, idle_expires_at).await?;
        // The touch is not a transaction (it invalidates nothing): refresh the cached copy.
        deps.caches.sessions.update(&sid, |cached| {
            cached.last_used_at = now;
            cached.idle_expires_at = idle_expires_at;
        });
    }
    Ok(principal(session, sid, presented, workspace))
}

/// Reads the session row (with its user and current membership) and caches it, valid until
/// the session, its user, that membership or that org changes.
async fn fetch(deps: &Deps, sid: SessionId) -> Result<SessionAuth, ServiceError> {
    let cache = &deps.caches.sessions;
    let stamp = cache.stamp(&deps.db);
    let session = sessions::load_auth(&deps.db, sid)
        .await?
        .ok_or_else(|| unauthorized("The session does not exist."))?;
    let mut tags = vec![Tag::Session(sid), Tag::User(session.user_id)];
    if let Some(org) = session.current_organization_id {
        tags.extend([Tag::Membership(org, session.user_id), Tag::Org(org)]);
    }
    cache.put(sid, stamp, tags, session.clone());
    Ok(session)
}

/// Whether `session` accepts a token with `claims` at `now` (SPEC §6): the same user, not
/// revoked, neither idle- nor absolute-expired, a generation the server issued (the current
/// one unless `superseded_allowed`), an account not disabled. Returns the presented
/// generation.
fn judge(
    session: &SessionAuth,
    claims: &Claims,
    now: time::OffsetDateTime,
    superseded_allowed: bool,
) -> Result<i32, ServiceError> {
    // The exact spelling the token was issued with, written on the stack (no allocation on
    // the hot path).
    let mut user = uuid::Uuid::encode_buffer();
    if *session
        .user_id
        .as_uuid()
        .hyphenated()
        .encode_lower(&mut user)
        != *claims.sub
    {
        return Err(unauthorized("The access token is invalid."));
    }
    if session.revoked {
        return Err(unauthorized("The session has been revoked."));
    }
    if now >= session.expires_at || now >= session.idle_expires_at {
        return Err(unauthorized("The session has expired; sign in again."));
    }
    let current = i64::from(session.token_generation);
    // A generation the server never issued is a forgery (or a bug): never "superseded".
    let presented = i32::try_from(claims.generation)
        .ok()
        .filter(|g| *g >= 0 && i64::from(*g) <= current)
        .ok_or_else(|| unauthorized("The access token is invalid."))?;
    if i64::from(presented) != current && !superseded_allowed {
        return Err(unauthorized(
            "The access token was superseded by a newer one.",
        ));
    }
    if session.user_disabled {
        return Err(unauthorized("The account is disabled."));
    }
    Ok(presented)
}
