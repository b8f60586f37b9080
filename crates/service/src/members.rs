//! Memberships (SPEC §2.1, §2.2): list, change role, remove, leave.
//!
//! Every change that could remove an owner runs in one write transaction that first locks the
//! org's owner rows, then re-reads the *actor's* membership (it may have changed since the
//! request began), asks the domain whether the change is allowed, checks the last-owner rule
//! against the locked count, writes, and records the audit event.

use crate::Ctx;
use crate::api_keys::{OwnedKeys, revoke_with_owner};
use crate::audit::AuditEntry;
use crate::paging::{Page, PageRequest, page_of};
use crate::{Deps, ServiceError};
use inventiv_domain::ErrorCode;
use inventiv_domain::{
    Action, Actor, Denied, DenyReason, OrgId, Permission, Role, UserId, Workspace, authorize,
    ensure_owner_remains, may_hold_org_api_keys, permissions, removes_owner,
};
use inventiv_persistence::Tx;
use inventiv_persistence::repo::memberships::{self, MemberRow};
use serde_json::json;
use time::OffsetDateTime;

/// A member of the current org, with their account's public fields.
#[derive(Debug, Clone)]
pub struct Member {
    pub user_id: UserId,
    pub email: String,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub role: Role,
    pub joined_at: OffsetDateTime,
    /// Live org API keys this member created here: what removing them, or demoting them below
    /// owner/admin, revokes.
    pub org_api_keys: i64,
}

impl From<MemberRow> for Member {
    fn from(m: MemberRow) -> Self {
        Member {
            user_id: m.user_id,
            email: m.email,
            username: m.username,
            first_name: m.first_name,
            last_name: m.last_name,
            role: m.role,
            joined_at: m.joined_at,
            org_api_keys: m.org_api_keys,
        }
    }
}

/// `GET /organizations/current/members`.
pub async fn list(
    deps: &Deps,
    ctx: &Ctx,
    page: &PageRequest,
) -> Result<Page<Member>, ServiceError> {
    let (org, _) = ctx.current_org(Action::ViewMembers)?;
    let (limit, after) = page.parse::<UserId>()?;
    let rows = memberships::list(&deps.db, org, after, limit + 1)
        .await?
        .into_iter()
        .map(Member::from)
        .collect();
    Ok(page_of(rows, limit, |m| m.user_id))
}

fn denied(reason: DenyReason) -> ServiceError {
    Denied { reason }.into()
}

fn last_owner() -> ServiceError {
    ServiceError::Conflict {
        code: ErrorCode::LastOwner,
        message: "An organization must keep at least one owner; promote another member first."
            .to_owned(),
    }
}

/// The caller's membership is gone (removed, or left, since their session was read).
pub(crate) fn no_longer_member() -> ServiceError {
    ServiceError::Forbidden {
        code: ErrorCode::NotAMember,
        message: "You are no longer a member of this organization.".to_owned(),
    }
}

/// Opens the transaction, locks the owners and returns the actor as they are *now*.
async fn begin(deps: &Deps, ctx: &Ctx, org: OrgId) -> Result<(Tx, Actor, u64), ServiceError> {
    let tx = deps.db.begin_write().await?;
    let owners = memberships::lock_owners(&tx, org).await?.len() as u64;
    let role = memberships::find(&tx, org, ctx.user_id())
        .await?
        .map(|m| m.role)
        .ok_or_else(no_longer_member)?;
    let actor = Actor {
        workspace: Workspace::Org { org, role },
        ..ctx.actor()
    };
    Ok((tx, actor, owners))
}

/// The target member, or 404 — but 403 first if the actor could not act on members at all
/// (a `user` learns nothing from probing ids).
async fn target(
    tx: &Tx,
    actor: &Actor,
    org: OrgId,
    user: UserId,
    needed: Permission,
) -> Result<MemberRow, ServiceError> {
    match memberships::find_row(tx, org, user).await? {
        Some(row) => Ok(row),
        None if permissions(actor).contains(&needed) => Err(ServiceError::not_found("member")),
        None => Err(denied(DenyReason::NotAllowed)),
    }
}

/// `PUT /organizations/current/members/{user_id}`: per §2.1; 409 `last_owner`.
pub async fn change_role(
    deps: &Deps,
    ctx: &Ctx,
    user: UserId,
    to: Role,
) -> Result<Member, ServiceError> {
    let (org, _) = ctx.current_org(Action::ViewMembers)?;
    let (tx, actor, owners) = begin(deps, ctx, org).await?;
    let member = target(&tx, &actor, org, user, Permission::MembersChangeRole).await?;
    let from = member.role;
    if from == to {
        // Idempotent: a no-op for an actor who could assign this role at all.
        authorize(&actor, Action::KeepRole { role: to })?;
        return Ok(member.into());
    }
    authorize(&actor, Action::ChangeRole { from, to })?;
    if removes_owner(from, Some(to)) {
        ensure_owner_remains(owners, 1).map_err(|_| last_owner())?;
    }
    memberships::set_role(&tx, org, user, to).await?;
    let now = ctx.now;
    let keys_revoked = if may_hold_org_api_keys(from) && !may_hold_org_api_keys(to) {
        revoke_with_owner(
            &tx,
            now,
            ctx.audit_actor(),
            &ctx.meta,
            OwnedKeys::InOrg { org, user },
            "role_changed",
            &[],
        )
        .await?
    } else {
        0
    };
    ctx.record(
        &tx,
        AuditEntry {
            action: "member.role_changed",
            organization: Some(org),
            target_type: "user",
            target_id: user.to_string(),
            before: Some(json!({"role": from.as_str()})),
            after: Some(json!({"role": to.as_str(), "api_keys_revoked": keys_revoked})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Member {
        role: to,
        org_api_keys: member.org_api_keys - keys_revoked as i64,
        ..member.into()
    })
}

/// `DELETE /organizations/current/members/{user_id}`: per §2.1 (yourself = leave); 409
/// `last_owner`. The removed user's sessions in this org fall back to Personal at once, and
/// the org keys they created are revoked in the same transaction (SPEC §6 v2).
pub async fn remove(deps: &Deps, ctx: &Ctx, user: UserId) -> Result<(), ServiceError> {
    if user == ctx.user_id() {
        return leave(deps, ctx).await;
    }
    let (org, _) = ctx.current_org(Action::ViewMembers)?;
    let (tx, actor, owners) = begin(deps, ctx, org).await?;
    let member = target(&tx, &actor, org, user, Permission::MembersRemove).await?;
    authorize(&actor, Action::RemoveMember { role: member.role })?;
    if removes_owner(member.role, None) {
        ensure_owner_remains(owners, 1).map_err(|_| last_owner())?;
    }
    memberships::delete(&tx, org, user).await?;
    let now = ctx.now;
    let keys_revoked = revoke_with_owner(
        &tx,
        now,
        ctx.audit_actor(),
        &ctx.meta,
        OwnedKeys::InOrg { org, user },
        "member_removed",
        &[],
    )
    .await?;
    ctx.record(
        &tx,
        AuditEntry {
            action: "member.removed",
            organization: Some(org),
            target_type: "user",
            target_id: user.to_string(),
            before: Some(json!({"role": member.role.as_str(), "email": member.email})),
            after: Some(json!({"api_keys_revoked": keys_revoked})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// `POST /organizations/current/leave`: always allowed, except for the last owner.
pub async fn leave(deps: &Deps, ctx: &Ctx) -> Result<(), ServiceError> {
    let (org, _) = ctx.current_org(Action::LeaveOrg)?;
    let (tx, actor, owners) = begin(deps, ctx, org).await?;
    authorize(&actor, Action::LeaveOrg)?;
    let role = actor.org_role().unwrap_or(Role::User);
    if removes_owner(role, None) {
        ensure_owner_remains(owners, 1).map_err(|_| last_owner())?;
    }
    memberships::delete(&tx, org, ctx.user_id()).await?;
    let now = ctx.now;
    let keys_revoked = revoke_with_owner(
        &tx,
        now,
        ctx.audit_actor(),
        &ctx.meta,
        OwnedKeys::InOrg {
            org,
            user: ctx.user_id(),
        },
        "member_left",
        &[],
    )
    .await?;
    ctx.record(
        &tx,
        AuditEntry {
            action: "member.left",
            organization: Some(org),
            target_type: "user",
            target_id: ctx.user_id().to_string(),
            before: Some(json!({"role": role.as_str()})),
            after: Some(json!({"api_keys_revoked": keys_revoked})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
