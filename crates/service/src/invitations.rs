//! Invitations (SPEC §2.1, §4.2): the token goes only into the email; the accept flow can
//! create the account; acceptance is single-use under concurrency (a conditional UPDATE).

use crate::Ctx;
use crate::audit::{AuditActor, AuditEntry, record};
use crate::auth::sessions;
use crate::auth::{IssuedToken, Principal, enforce_limits, token_hash};
use crate::mailer::{OutgoingEmail, send_in_background};
use crate::organizations::Organization;
use crate::paging::{Page, PageRequest, page_of};
use crate::rate_limit::shared;
use crate::{Deps, RequestMeta, ServiceError};
use inventiv_domain::ErrorCode;
use inventiv_domain::{
    Action, Email, ExpiresInDays, InvitationError, InvitationId, InvitationStatus, OrgId, Password,
    PersonName, Role, SessionId, UserId, authorize,
};
use inventiv_persistence::repo::invitations::{self, InvitationRecord, NewInvitation};
use inventiv_persistence::repo::organizations::{self, OrgRecord};
use inventiv_persistence::repo::{audit as audit_repo, memberships, users};
use inventiv_persistence::{Constraint, StoreError, Tx};
use serde_json::json;
use time::OffsetDateTime;

/// An invitation as its org's managers see it (the token never leaves the email).
#[derive(Debug, Clone)]
pub struct Invitation {
    pub id: InvitationId,
    pub email: Email,
    pub role: Role,
    /// As stored; [`inventiv_domain::effective_status`] at a given time also depends on `expires_at`.
    pub status: InvitationStatus,
    /// The inviter's email, if the account still exists.
    pub invited_by_email: Option<String>,
    pub expires_at: OffsetDateTime,
    pub accepted_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

impl From<InvitationRecord> for Invitation {
    fn from(i: InvitationRecord) -> Self {
        Invitation {
            id: i.id,
            email: i.email,
            role: i.role,
            status: i.status,
            invited_by_email: i.invited_by_email,
            expires_at: i.expires_at,
            accepted_at: i.accepted_at,
            created_at: i.created_at,
        }
    }
}

fn conflict(code: ErrorCode, message: &str) -> ServiceError {
    ServiceError::Conflict {
        code,
        message: message.to_owned(),
    }
}

/// Why a link can no longer be accepted (the domain's [`inventiv_domain::accept`] refusal): 410.
fn gone(why: InvitationError) -> ServiceError {
    let why = match why {
        InvitationError::AlreadyAccepted => "has already been used",
        InvitationError::Revoked => "has been revoked",
        InvitationError::Expired | InvitationError::NotPending => "has expired",
    };
    ServiceError::Gone {
        code: ErrorCode::InvitationGone,
        message: format!("This invitation {why}."),
    }
}

/// Why a revoke or a resend does not apply (the domain's refusal): 409 `invitation_not_pending`.
fn not_pending(why: InvitationError) -> ServiceError {
    let message = match why {
        InvitationError::AlreadyAccepted => "An accepted invitation cannot be resent.",
        InvitationError::Revoked => "A revoked invitation cannot be resent.",
        InvitationError::Expired | InvitationError::NotPending => {
            "Only a pending invitation can be revoked."
        }
    };
    conflict(ErrorCode::InvitationNotPending, message)
}

/// `POST /organizations/current/invitations` input.
#[derive(Debug, Clone)]
pub struct NewInvite {
    pub email: String,
    pub role: Option<Role>,
    pub expires_in_days: Option<i64>,
}

/// Invites `email` with a role the caller may assign (§2.1). The token is emailed, never
/// returned. 409 `already_member` / `invitation_pending`.
pub async fn invite(deps: &Deps, ctx: &Ctx, input: NewInvite) -> Result<Invitation, ServiceError> {
    let role = input.role.unwrap_or(Role::User);
    let (org, _) = ctx.current_org(Action::Invite { role })?;
    let email = Email::parse(&input.email)?;
    let days = ExpiresInDays::parse(input.expires_in_days)?;
    let token = crate::tokens::random_token(32);
    let now = ctx.now;
    let expires_at = now + days.duration();
    let id = InvitationId::new();

    let tx = ctx.begin_in_workspace(deps).await?;
    if let Some(user) = users::find_by_email(&tx, &email).await?
        && memberships::find(&tx, org, user.id).await?.is_some()
    {
        return Err(conflict(
            ErrorCode::AlreadyMember,
            "This person is already a member of the organization.",
        ));
    }
    invitations::expire_stale(&tx, org, &email, now).await?;
    let stored = NewInvitation {
        id,
        email: &email,
        role,
        token_hash: &token_hash(&token),
        invited_by: ctx.user_id(),
        expires_at,
        now,
    };
    match invitations::insert(&tx, org, stored).await {
        Ok(()) => {}
        Err(StoreError::Conflict(Constraint::InvitationPendingEmail)) => {
            return Err(conflict(
                ErrorCode::InvitationPending,
                "A pending invitation for this address already exists.",
            ));
        }
        Err(other) => return Err(other.into()),
    }
    ctx.record(&tx, AuditEntry {
            action: "invitation.created",
            organization: Some(org),
            target_type: "invitation",
            target_id: id.to_string(),
            before: None,
            after: Some(json!({"email": email.as_str(), "role": role.as_str(), "expires_at": crate::audit::timestamp(expires_at)})),
        },
    )
    .await?;
    let invitation = invitations::find(&tx, org, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("invitation"))?;
    let org_record = organizations::find_by_id(&tx, org)
        .await?
        .ok_or_else(|| ServiceError::not_found("organization"))?;
    tx.commit().await?;
    send_invitation(deps, &org_record, &invitation, &token, &ctx.principal.email);
    Ok(invitation.into())
}

fn send_invitation(
    deps: &Deps,
    org: &OrgRecord,
    invitation: &InvitationRecord,
    token: &str,
    inviter: &Email,
) {
    let link = format!("{}/invitations/{token}", deps.public_url);
    let mail = OutgoingEmail {
        to: invitation.email.clone(),
        subject: format!("You are invited to join {} on Inventiv", org.name.as_str()),
        text: format!(
            "{inviter} invites you to join the organization \"{}\" on Inventiv as {}.\n\n\
             Accept the invitation here (it creates your account if you have none):\n{link}\n\n\
             The invitation expires on {} (UTC). If you did not expect it, ignore this email.\n",
            org.name.as_str(),
            invitation.role.as_str(),
            crate::audit::timestamp(invitation.expires_at),
        ),
    };
    send_in_background(deps.mailer.clone(), mail);
}

/// `GET /organizations/current/invitations?status=`.
pub async fn list(
    deps: &Deps,
    ctx: &Ctx,
    status: Option<InvitationStatus>,
    page: &PageRequest,
) -> Result<Page<Invitation>, ServiceError> {
    let (org, _) = ctx.current_org(Action::ListInvitations)?;
    let (limit, before) = page.parse::<InvitationId>()?;
    let rows = invitations::list(&deps.db, org, status, ctx.now, before, limit + 1)
        .await?
        .into_iter()
        .map(Invitation::from)
        .collect();
    Ok(page_of(rows, limit, |i| i.id))
}

/// Loads an invitation of the caller's org for revoke/resend, with the §2.1 check on its role.
async fn manageable(
    deps: &Deps,
    ctx: &Ctx,
    id: InvitationId,
    action: fn(Role) -> Action,
) -> Result<(OrgId, InvitationRecord), ServiceError> {
    let (org, _) = ctx.current_org(Action::ListInvitations)?;
    let invitation = invitations::find(&deps.db, org, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("invitation"))?;
    authorize(&ctx.actor(), action(invitation.role))?;
    Ok((org, invitation))
}

/// `DELETE /organizations/current/invitations/{id}`: only a pending one (409 otherwise).
pub async fn revoke(deps: &Deps, ctx: &Ctx, id: InvitationId) -> Result<(), ServiceError> {
    let (org, invitation) =
        manageable(deps, ctx, id, |role| Action::RevokeInvitation { role }).await?;
    let now = ctx.now;
    inventiv_domain::revoke(invitation.status, invitation.expires_at, now).map_err(not_pending)?;
    let tx = deps.db.begin_write().await?;
    if !invitations::mark_revoked(&tx, org, id, now).await? {
        return Err(conflict(
            ErrorCode::InvitationNotPending,
            "Only a pending invitation can be revoked.",
        ));
    }
    ctx.record(
        &tx,
        AuditEntry {
            action: "invitation.revoked",
            organization: Some(org),
            target_type: "invitation",
            target_id: id.to_string(),
            before: Some(json!({"status": "pending"})),
            after: Some(json!({"status": "revoked", "email": invitation.email.as_str()})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// `POST /organizations/current/invitations/{id}/resend`: a new token and expiry, emailed;
/// the old link stops working. For a pending or expired invitation.
pub async fn resend(
    deps: &Deps,
    ctx: &Ctx,
    id: InvitationId,
    expires_in_days: Option<i64>,
) -> Result<Invitation, ServiceError> {
    let (org, _) = manageable(deps, ctx, id, |role| Action::ResendInvitation { role }).await?;
    let now = ctx.now;
    let days = ExpiresInDays::parse(expires_in_days)?;
    let token = crate::tokens::random_token(32);
    let expires_at = now + days.duration();
    let tx = deps.db.begin_write().await?;
    // Under the row's lock: two resends at once then supersede one link each, in turn, and
    // each audits the expiry it actually replaced.
    let invitation = invitations::find_for_update(&tx, org, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("invitation"))?;
    inventiv_domain::resend(invitation.status, invitation.expires_at, now).map_err(not_pending)?;
    match invitations::renew(&tx, org, id, &token_hash(&token), expires_at, now).await {
        Ok(true) => {}
        Ok(false) => {
            return Err(conflict(
                ErrorCode::InvitationNotPending,
                "An accepted or revoked invitation cannot be resent.",
            ));
        }
        Err(StoreError::Conflict(Constraint::InvitationPendingEmail)) => {
            return Err(conflict(
                ErrorCode::InvitationPending,
                "A newer pending invitation for this address exists.",
            ));
        }
        Err(other) => return Err(other.into()),
    }
    ctx.record(
        &tx,
        AuditEntry {
            action: "invitation.resent",
            organization: Some(org),
            target_type: "invitation",
            target_id: id.to_string(),
            before: Some(json!({"expires_at": crate::audit::timestamp(invitation.expires_at)})),
            after: Some(json!({"expires_at": crate::audit::timestamp(expires_at)})),
        },
    )
    .await?;
    let renewed = invitations::find(&tx, org, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("invitation"))?;
    let org_record = organizations::find_by_id(&tx, org)
        .await?
        .ok_or_else(|| ServiceError::not_found("organization"))?;
    tx.commit().await?;
    send_invitation(deps, &org_record, &renewed, &token, &ctx.principal.email);
    Ok(renewed.into())
}

/// What the public accept page shows.
#[derive(Debug, Clone)]
pub struct InvitationPreview {
    pub organization: Organization,
    pub invitation: Invitation,
    pub account_exists: bool,
}

/// A pending invitation by its token: 404 unknown, 410 expired/revoked/used.
async fn pending_by_token(
    deps: &Deps,
    token: &str,
    now: OffsetDateTime,
) -> Result<InvitationRecord, ServiceError> {
    if token.is_empty() || token.len() > 256 {
        return Err(ServiceError::not_found("invitation"));
    }
    let hash = token_hash(token);
    let Some(invitation) = invitations::find_by_token_hash(&deps.db, &hash).await? else {
        if invitations::is_superseded(&deps.db, &hash).await? {
            return Err(ServiceError::Gone {
                code: ErrorCode::InvitationSuperseded,
                message: "A newer invitation link was sent to this address: use the link of the most recent email.".into(),
            });
        }
        return Err(ServiceError::not_found("invitation"));
    };
    inventiv_domain::accept(invitation.status, invitation.expires_at, now).map_err(gone)?;
    Ok(invitation)
}

/// `GET /organizations/invitations/{token}` (public).
pub async fn preview(deps: &Deps, token: &str) -> Result<InvitationPreview, ServiceError> {
    let invitation = pending_by_token(deps, token, deps.clock.now()).await?;
    let organization = organizations::find_by_id(&deps.db, invitation.organization_id)
        .await?
        .ok_or_else(|| ServiceError::not_found("invitation"))?;
    let account_exists = users::find_by_email(&deps.db, &invitation.email)
        .await?
        .is_some();
    Ok(InvitationPreview {
        organization: organization.into(),
        invitation: invitation.into(),
        account_exists,
    })
}

/// The account fields an anonymous accept supplies.
#[derive(Clone, Default)]
pub struct NewAccount {
    pub password: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// What accepting produced.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub organization: Organization,
    pub role: Role,
    pub user_id: UserId,
    /// Set when the account was created now: a session already switched to the org.
    pub session: Option<(SessionId, IssuedToken)>,
}

/// A pending invitation sent to the caller, with the org that sent it.
#[derive(Debug, Clone)]
pub struct MyInvitation {
    pub invitation: Invitation,
    pub organization_id: OrgId,
    pub organization_name: String,
    pub organization_slug: String,
}

/// `GET /auth/invitations`: the pending invitations sent to my email, by any org — so a
/// signed-in user finds them without the email (issue 20).
pub async fn mine(
    deps: &Deps,
    ctx: &Ctx,
    page: &PageRequest,
) -> Result<Page<MyInvitation>, ServiceError> {
    // A person's invitations, from any org: not in an API key's scope (SPEC §4).
    ctx.session()?;
    let (limit, after) = page.parse::<InvitationId>()?;
    let rows =
        invitations::pending_for_email(&deps.db, &ctx.principal.email, ctx.now, after, limit + 1)
            .await?
            .into_iter()
            .map(|a| MyInvitation {
                organization_id: a.invitation.organization_id,
                invitation: a.invitation.into(),
                organization_name: a.organization_name,
                organization_slug: a.organization_slug,
            })
            .collect();
    Ok(page_of(rows, limit, |m| m.invitation.id))
}

/// `POST /auth/invitations/{id}/accept`: a signed-in user accepts an invitation sent to their
/// own email without its link. The account's email is proven (it came from an invitation link
/// or a set-password link, and nobody changes their own email), which is what the link's token
/// proves; an invitation to another address is 404, like any id that is not the caller's.
pub async fn accept_mine(
    deps: &Deps,
    ctx: &Ctx,
    id: InvitationId,
) -> Result<Accepted, ServiceError> {
    let Some(session) = ctx.principal.session_id() else {
        return Err(ServiceError::Forbidden {
            code: ErrorCode::Forbidden,
            message: "Sign in to accept an invitation.".to_owned(),
        });
    };
    let invitation = invitations::find_for_email(&deps.db, &ctx.principal.email, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("invitation"))?;
    inventiv_domain::accept(invitation.status, invitation.expires_at, ctx.now).map_err(gone)?;
    let acceptor = Acceptor::SignedIn {
        user: ctx.user_id(),
        session: Some(session),
    };
    let tx = deps.db.begin_write().await?;
    let user_id = join(&tx, &invitation, &acceptor, &ctx.meta, ctx.now).await?;
    let organization = organizations::find_by_id(&tx, invitation.organization_id)
        .await?
        .ok_or_else(|| ServiceError::not_found("invitation"))?;
    tx.commit().await?;
    Ok(Accepted {
        organization: organization.into(),
        role: invitation.role,
        user_id,
        session: None,
    })
}

/// `POST /organizations/invitations/{token}/accept`, per SPEC §4.2.
pub async fn accept(
    deps: &Deps,
    token: &str,
    principal: Option<&Principal>,
    account: NewAccount,
    meta: &RequestMeta,
) -> Result<Accepted, ServiceError> {
    throttle(
        deps,
        &deps.auth.accept_by_ip,
        "ip",
        &crate::rate_limit::address_key(meta.ip.as_deref()),
        meta,
    )
    .await?;
    let now = deps.clock.now();
    let invitation = pending_by_token(deps, token, now).await?;
    let account_key = format!("account:{}", invitation.email.as_str());
    throttle(
        deps,
        &deps.auth.accept_by_account,
        "account",
        &account_key,
        meta,
    )
    .await?;
    let acceptor = acceptor(deps, principal, &invitation, account).await?;
    let (org, role) = (invitation.organization_id, invitation.role);

    let tx = deps.db.begin_write().await?;
    let user_id = join(&tx, &invitation, &acceptor, meta, now).await?;
    // A newcomer has no session yet: the accept signs them in, in the org they joined.
    let session = match acceptor {
        Acceptor::Newcomer { .. } => {
            let (session, token) =
                sessions::open_in(&tx, deps, user_id, Some((org, role)), meta, now, None).await?;
            Some((session.id, token))
        }
        Acceptor::SignedIn { .. } => None,
    };
    let organization = organizations::find_by_id(&tx, org)
        .await?
        .ok_or_else(|| ServiceError::not_found("invitation"))?;
    tx.commit().await?;
    Ok(Accepted {
        organization: organization.into(),
        role,
        user_id,
        session,
    })
}

/// One of the accept's rate limits (per address, per invited account).
async fn throttle(
    deps: &Deps,
    limiter: &crate::rate_limit::RateLimiter,
    kind: &'static str,
    key: &str,
    meta: &RequestMeta,
) -> Result<(), ServiceError> {
    let limit = shared::Limit {
        limiter,
        scope: "accept",
        key,
        kind,
    };
    enforce_limits(deps, &[limit], "auth.accept_rate_limited", meta).await
}

/// Who accepts an invitation.
enum Acceptor {
    /// A signed-in user whose email is the invited one.
    SignedIn {
        user: UserId,
        session: Option<SessionId>,
    },
    /// Nobody has this email yet: an account is created with the accept.
    Newcomer {
        id: UserId,
        password_hash: String,
        first_name: Option<PersonName>,
        last_name: Option<PersonName>,
    },
}

impl Acceptor {
    fn user(&self) -> UserId {
        match self {
            Acceptor::SignedIn { user, .. } => *user,
            Acceptor::Newcomer { id, .. } => *id,
        }
    }

    /// The session the accept comes from (a newcomer has none yet).
    fn session(&self) -> Option<SessionId> {
        match self {
            Acceptor::SignedIn { session, .. } => *session,
            Acceptor::Newcomer { .. } => None,
        }
    }
}

/// Decides who accepts, before any write: the signed-in user (their email must be the invited
/// one), or a newcomer whose password is hashed now (outside the transaction). An existing
/// account must sign in first (401 `login_required`).
async fn acceptor(
    deps: &Deps,
    principal: Option<&Principal>,
    invitation: &InvitationRecord,
    account: NewAccount,
) -> Result<Acceptor, ServiceError> {
    if let Some(p) = principal {
        if p.email != invitation.email {
            return Err(ServiceError::Forbidden {
                code: ErrorCode::EmailMismatch,
                message: "This invitation was sent to another email address.".to_owned(),
            });
        }
        return Ok(Acceptor::SignedIn {
            user: p.user_id,
            session: p.session_id(),
        });
    }
    if users::find_by_email(&deps.db, &invitation.email)
        .await?
        .is_some()
    {
        return Err(login_required());
    }
    let password = Password::parse(account.password.as_deref().unwrap_or_default())
        .map_err(|e| ServiceError::invalid("password", e.reason))?;
    let (first_name, last_name) =
        crate::accounts::names(account.first_name.as_deref(), account.last_name.as_deref())?;
    Ok(Acceptor::Newcomer {
        id: UserId::new(),
        password_hash: deps.passwords.hash(&password).await?,
        first_name,
        last_name,
    })
}

/// In `tx`: creates the newcomer's account, uses the invitation (exactly one concurrent accept
/// gets through), adds the membership and records both events in the org's chain. Returns the
/// member's user id.
async fn join(
    tx: &Tx,
    invitation: &InvitationRecord,
    acceptor: &Acceptor,
    meta: &RequestMeta,
    now: OffsetDateTime,
) -> Result<UserId, ServiceError> {
    let (org, role) = (invitation.organization_id, invitation.role);
    let user_id = acceptor.user();
    let actor = AuditActor {
        user: Some(user_id),
        session: acceptor.session(),
    };
    // Lock order: the org (held, as the org's deletion takes it first: deleted meanwhile, the
    // invitation went with it), the invitation's row (as its revocation and resend take it),
    // the org's chain head, then the platform chain (a newcomer's `user.created`). The
    // conditional update below still decides whether the invitation can be used.
    if !organizations::hold(tx, org).await? {
        return Err(ServiceError::not_found("invitation"));
    }
    invitations::find_for_update(tx, org, invitation.id).await?;
    audit_repo::lock_heads(tx, &[org]).await?;
    if let Acceptor::Newcomer {
        password_hash,
        first_name,
        last_name,
        ..
    } = acceptor
    {
        let new = users::NewUser {
            id: user_id,
            email: &invitation.email,
            username: None,
            first_name: first_name.as_ref().map(PersonName::as_str),
            last_name: last_name.as_ref().map(PersonName::as_str),
            password_hash,
            is_platform_admin: false,
            now,
        };
        let after = json!({"email": invitation.email.as_str(), "via": "invitation"});
        crate::accounts::create_in(tx, new, actor, meta, after)
            .await?
            .map_err(|_| login_required())?;
    }
    // After the account exists (accepted_by_user_id references it); the conditional UPDATE
    // lets exactly one concurrent accept through.
    if !invitations::mark_accepted(tx, org, invitation.id, user_id, now).await? {
        // Someone else used it first (or it expired this instant).
        return Err(gone(InvitationError::AlreadyAccepted));
    }
    match memberships::insert(tx, org, user_id, role, now).await {
        Ok(_) => {}
        Err(StoreError::Conflict(Constraint::MembershipPrimaryKey)) => {
            // The role of an existing member is never changed by an invitation.
            return Err(conflict(
                ErrorCode::AlreadyMember,
                "You are already a member of this organization.",
            ));
        }
        Err(other) => return Err(other.into()),
    }
    for (action, target_type, target_id, after) in [
        (
            "invitation.accepted",
            "invitation",
            invitation.id.to_string(),
            json!({"status": "accepted"}),
        ),
        (
            "member.added",
            "user",
            user_id.to_string(),
            json!({"role": role.as_str(), "via": "invitation"}),
        ),
    ] {
        let entry = AuditEntry {
            action,
            organization: Some(org),
            target_type,
            target_id,
            before: None,
            after: Some(after),
        };
        record(tx, now, actor, meta, entry).await?;
    }
    Ok(user_id)
}

fn login_required() -> ServiceError {
    ServiceError::Unauthenticated {
        code: ErrorCode::LoginRequired,
        message: "An account exists for this email: sign in, then accept the invitation."
            .to_owned(),
    }
}
