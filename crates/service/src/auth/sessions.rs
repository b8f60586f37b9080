use super::{IssuedToken, issue_token, unauthorized};
use crate::Ctx;
use crate::audit::AuditEntry;
use crate::organizations::Organization;
use crate::{Deps, RequestMeta, ServiceError};
use inventiv_domain::ErrorCode;
use inventiv_domain::{OrgId, Role, SessionId, UserId, Workspace};
use inventiv_persistence::repo::memberships;
use inventiv_persistence::repo::organizations::{self, OrgRecord};
use inventiv_persistence::repo::sessions::{self, NewSession, SessionRecord};
use serde_json::json;
use std::collections::HashMap;
use time::OffsetDateTime;

/// Opens a session for `user` in `workspace` (None: Personal), in `s` (the pool, or the
/// transaction of a use case that opens it with other changes), and issues its first access
/// token. The token is signed, not stored: a caller whose transaction then fails to commit
/// returns an error, and the token is never seen. A sign-in passes the password hash it
/// verified: if the account's has changed since (or the account was disabled), no session
/// is opened and the answer is 401 `invalid_credentials`.
pub(crate) async fn open_in<S: inventiv_persistence::Store>(
    s: &S,
    deps: &Deps,
    user: UserId,
    workspace: Option<(OrgId, Role)>,
    meta: &RequestMeta,
    now: OffsetDateTime,
    verified_password_hash: Option<&str>,
) -> Result<(SessionRecord, IssuedToken), ServiceError> {
    let session = sessions::insert(
        s,
        NewSession {
            id: SessionId::new(),
            user_id: user,
            organization: workspace,
            ip: meta.ip.as_deref(),
            user_agent: meta.user_agent.as_deref(),
            now,
            idle_expires_at: now + deps.auth.session_idle,
            expires_at: now + deps.auth.session_absolute,
            verified_password_hash,
        },
    )
    .await?
    // The password changed, or the account was disabled, while the password was verified:
    // the one presented is no longer the account's.
    .ok_or_else(super::login::invalid_credentials)?;
    let token = issue_token(
        deps,
        user,
        session.id,
        session.token_generation,
        workspace,
        session.expires_at,
    )?;
    Ok((session, token))
}

/// A lost race on the generation (a concurrent switch/refresh of the same session).
fn superseded() -> ServiceError {
    unauthorized("The access token was superseded by a newer one.")
}

/// `PUT /organizations/current`: moves THIS session to `target` (None = Personal), bumps its
/// generation (the previous token stops working) and returns a new token. Other sessions of
/// the same user keep their own workspace.
pub async fn switch_workspace(
    deps: &Deps,
    ctx: &Ctx,
    target: Option<OrgId>,
) -> Result<(super::Me, IssuedToken), ServiceError> {
    let session = ctx.session()?;
    let now = ctx.now;
    let tx = deps.db.begin_write().await?;
    let workspace = match target {
        None => None,
        Some(org) => match memberships::find(&tx, org, ctx.user_id()).await? {
            Some(m) => Some((org, m.role)),
            None => {
                return Err(ServiceError::Forbidden {
                    code: ErrorCode::NotAMember,
                    message: "You are not a member of this organization.".to_owned(),
                });
            }
        },
    };
    let generation =
        sessions::set_workspace(&tx, session.id, session.token_generation, workspace, now)
            .await?
            .ok_or_else(superseded)?;
    let before = match ctx.principal.workspace {
        Workspace::Personal => None,
        Workspace::Org { org, .. } => Some(org.to_string()),
    };
    ctx.record(
        &tx,
        AuditEntry {
            action: "session.workspace_switched",
            organization: None,
            target_type: "session",
            target_id: session.id.to_string(),
            before: Some(json!({"organization_id": before})),
            after: Some(json!({"organization_id": workspace.map(|(o, _)| o.to_string())})),
        },
    )
    .await?;
    tx.commit().await?;
    let token = issue_token(
        deps,
        ctx.user_id(),
        session.id,
        generation,
        workspace,
        session.expires_at,
    )?;
    let workspace = workspace.map_or(Workspace::Personal, |(org, role)| Workspace::Org {
        org,
        role,
    });
    let me = super::account::me_in(deps, ctx, workspace).await?;
    Ok((me, token))
}

/// `POST /auth/refresh`: a new token for the same session; the presented one stops working.
///
/// Rotation is a compare-and-set on the generation. A superseded generation (SPEC §6 v2) is
/// judged by [`superseded_refresh`]: the token rotated just before (within
/// `auth.refresh_reuse_grace_seconds`) gets the current token — two tabs refreshing at once —
/// anything else revokes the session, since a stolen and a legitimate copy cannot both live.
pub async fn refresh(deps: &Deps, ctx: &Ctx) -> Result<IssuedToken, ServiceError> {
    let session = ctx.session()?;
    if session.presented_generation == session.token_generation {
        let now = ctx.now;
        let tx = deps.db.begin_write().await?;
        let rotated =
            sessions::bump_generation(&tx, session.id, session.token_generation, now).await?;
        tx.commit().await?;
        if let Some(generation) = rotated {
            let workspace = match ctx.principal.workspace {
                Workspace::Org { org, role } => Some((org, role)),
                Workspace::Personal => None,
            };
            return issue_token(
                deps,
                ctx.user_id(),
                session.id,
                generation,
                workspace,
                session.expires_at,
            );
        }
        // Lost the compare-and-set to a concurrent rotation: the presented token is now
        // superseded, and judged as such against the row as it is now.
    }
    superseded_refresh(deps, ctx, session).await
}

/// A refresh with a superseded generation: the current token within the grace (without
/// rotating again, or two tabs would keep superseding each other), else `reuse_detected`.
async fn superseded_refresh(
    deps: &Deps,
    ctx: &Ctx,
    session: super::SessionRef,
) -> Result<IssuedToken, ServiceError> {
    let now = ctx.now;
    let current = sessions::load_auth(&deps.db, session.id)
        .await?
        .ok_or_else(|| unauthorized("The session does not exist."))?;
    if current.revoked {
        return Err(unauthorized("The session has been revoked."));
    }
    let just_rotated = current
        .rotated_at
        .is_some_and(|at| now - at <= deps.auth.refresh_reuse_grace);
    if session.presented_generation.checked_add(1) == Some(current.token_generation) && just_rotated
    {
        let workspace = current.current_organization_id.zip(current.member_role);
        return issue_token(
            deps,
            ctx.user_id(),
            session.id,
            current.token_generation,
            workspace,
            current.expires_at,
        );
    }
    let tx = deps.db.begin_write().await?;
    // Only the request that actually revokes records the event (two replayed copies at once
    // give one event).
    if let Some(generation) = sessions::revoke_by_id(&tx, session.id, "reuse_detected", now).await?
    {
        ctx.record(
            &tx,
            AuditEntry {
                action: "session.reuse_detected",
                organization: None,
                target_type: "session",
                target_id: session.id.to_string(),
                before: Some(json!({"token_generation": generation})),
                after: Some(json!({
                    "reason": "reuse_detected",
                    "presented_generation": session.presented_generation,
                })),
            },
        )
        .await?;
        tx.commit().await?;
    }
    Err(ServiceError::Unauthenticated {
        code: ErrorCode::RefreshReuseDetected,
        message: "This token was already refreshed: the session has been revoked; sign in again."
            .to_owned(),
    })
}

/// `POST /auth/logout`: revokes the calling session.
pub async fn logout(deps: &Deps, ctx: &Ctx) -> Result<(), ServiceError> {
    let session = ctx.session()?;
    revoke_in_tx(deps, ctx, session.id, "logout", "session.logout").await?;
    Ok(())
}

/// `DELETE /auth/sessions/{id}`: revokes one of the caller's own live sessions (404 otherwise).
pub async fn revoke_session(deps: &Deps, ctx: &Ctx, id: SessionId) -> Result<(), ServiceError> {
    ctx.session()?;
    if revoke_in_tx(deps, ctx, id, "revoked_by_user", "session.revoked").await? {
        Ok(())
    } else {
        Err(ServiceError::not_found("session"))
    }
}

async fn revoke_in_tx(
    deps: &Deps,
    ctx: &Ctx,
    id: SessionId,
    reason: &str,
    action: &'static str,
) -> Result<bool, ServiceError> {
    let now = ctx.now;
    let tx = deps.db.begin_write().await?;
    if !sessions::revoke(&tx, ctx.user_id(), id, reason, now).await? {
        return Ok(false);
    }
    ctx.record(
        &tx,
        AuditEntry {
            action,
            organization: None,
            target_type: "session",
            target_id: id.to_string(),
            before: None,
            after: Some(json!({"reason": reason})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// `POST /auth/sessions/revoke-others`: revokes every other live session of the caller.
pub async fn revoke_others(deps: &Deps, ctx: &Ctx) -> Result<u64, ServiceError> {
    let session = ctx.session()?;
    let now = ctx.now;
    let tx = deps.db.begin_write().await?;
    let revoked =
        sessions::revoke_all_for_user(&tx, ctx.user_id(), Some(session.id), "revoked_by_user", now)
            .await?;
    ctx.record(
        &tx,
        AuditEntry {
            action: "session.revoked_others",
            organization: None,
            target_type: "user",
            target_id: ctx.user_id().to_string(),
            before: None,
            after: Some(json!({"revoked": revoked})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(revoked)
}

/// A session as its user sees it.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: SessionId,
    /// The workspace it acts in (None: Personal), with the role it started there.
    pub current_organization_id: Option<OrgId>,
    pub organization_role: Option<Role>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: OffsetDateTime,
    pub last_used_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

impl From<SessionRecord> for Session {
    fn from(s: SessionRecord) -> Self {
        Session {
            id: s.id,
            current_organization_id: s.current_organization_id,
            organization_role: s.organization_role,
            ip: s.ip,
            user_agent: s.user_agent,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
        }
    }
}

/// One of the caller's sessions, with its workspace's name.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub session: Session,
    pub organization: Option<Organization>,
    pub is_current: bool,
}

/// Where a page of `GET /auth/sessions` ends: the last session's `(last_used_at, id)`, the
/// list's order (most recently used first, then by id). Written `<unix nanos>.<id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct SessionCursor {
    last_used_nanos: i128,
    id: uuid::Uuid,
}

impl SessionCursor {
    fn of(session: &Session) -> SessionCursor {
        SessionCursor {
            last_used_nanos: session.last_used_at.unix_timestamp_nanos(),
            id: session.id.as_uuid(),
        }
    }
}

impl std::fmt::Display for SessionCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.last_used_nanos, self.id.simple())
    }
}

impl std::str::FromStr for SessionCursor {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let (nanos, id) = s.split_once('.').ok_or(())?;
        Ok(SessionCursor {
            last_used_nanos: nanos.parse().map_err(|_| ())?,
            id: uuid::Uuid::try_parse(id).map_err(|_| ())?,
        })
    }
}

/// `GET /auth/sessions`: the caller's live sessions, most recently used first, a page at a
/// time (SPEC §4.3 v2: every list honours `limit`/`cursor`). A user has few live sessions:
/// they are read whole and paged here, after the session of the cursor in the list's order.
/// A session used meanwhile moves to the top: a later page does not show it again.
pub async fn list_sessions(
    deps: &Deps,
    ctx: &Ctx,
    page: &crate::paging::PageRequest,
) -> Result<crate::paging::Page<SessionView>, ServiceError> {
    let current = ctx.session()?;
    let (limit, after) = page.parse::<SessionCursor>()?;
    let mut live: Vec<Session> = sessions::list_live(&deps.db, ctx.user_id(), ctx.now)
        .await?
        .into_iter()
        .map(Session::from)
        .collect();
    // Newest first: the reverse of the cursor's order.
    live.sort_by_key(|s| std::cmp::Reverse(SessionCursor::of(s)));
    let live: Vec<Session> = live
        .into_iter()
        .filter(|s| after.is_none_or(|after| SessionCursor::of(s) < after))
        .take(
            usize::try_from(limit)
                .unwrap_or(usize::MAX)
                .saturating_add(1),
        )
        .collect();
    let mut orgs: HashMap<OrgId, Option<OrgRecord>> = HashMap::new();
    let mut views = Vec::with_capacity(live.len());
    for session in live {
        let organization = match session.current_organization_id {
            Some(id) => match orgs.get(&id) {
                Some(known) => known.clone(),
                None => {
                    let found = organizations::find_by_id(&deps.db, id).await?;
                    orgs.insert(id, found.clone());
                    found
                }
            },
            None => None,
        };
        let is_current = session.id == current.id;
        views.push(SessionView {
            session,
            organization: organization.map(Organization::from),
            is_current,
        });
    }
    Ok(crate::paging::page_of(views, limit, |v| {
        SessionCursor::of(&v.session)
    }))
}
