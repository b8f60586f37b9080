//! Users (SPEC §4.3): in an org workspace, its members (owner/admin/manager list; owner/admin
//! create an account + membership with a role they may assign); in Personal, platform admins
//! manage every account. Deleting a user is refused while they are the last owner of an org;
//! disabling a user revokes their sessions and API keys at once.

use crate::Ctx;
use crate::api_keys::{OwnedKeys, revoke_with_owner};
use crate::audit::{AuditEntry, record};
use crate::auth::token_hash;
use crate::mailer::{OutgoingEmail, send_in_background};
use crate::paging::{Page, PageRequest, page_of};
use crate::{Deps, ServiceError};
use inventiv_domain::ErrorCode;
use inventiv_domain::{
    Action, Email, OrgId, Password, PersonName, Role, UserId, Username, Workspace, authorize,
    ensure_owner_remains, locks_self_out, user_edit,
};
use inventiv_persistence::repo::users::{self, NewUser, UserRecord};
use inventiv_persistence::repo::{memberships, reset_tokens, sessions};
use inventiv_persistence::{Constraint, StoreError};
use serde_json::json;
use time::{Duration, OffsetDateTime};

/// How long the set-password link of a created account works.
const WELCOME_LINK_TTL: Duration = Duration::hours(72);

/// An account as use cases show it (never its password hash).
#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub username: Option<Username>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub is_platform_admin: bool,
    pub disabled_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

impl From<UserRecord> for User {
    fn from(u: UserRecord) -> Self {
        User {
            id: u.id,
            email: u.email,
            username: u.username,
            first_name: u.first_name,
            last_name: u.last_name,
            is_platform_admin: u.is_platform_admin,
            disabled_at: u.disabled_at,
            created_at: u.created_at,
        }
    }
}

/// A user as listed: in an org workspace with their role there.
#[derive(Debug, Clone)]
pub struct UserView {
    pub user: User,
    pub role: Option<Role>,
}

fn org_of(workspace: Workspace) -> Option<OrgId> {
    match workspace {
        Workspace::Org { org, .. } => Some(org),
        Workspace::Personal => None,
    }
}

/// `GET /users`.
pub async fn list(
    deps: &Deps,
    ctx: &Ctx,
    page: &PageRequest,
) -> Result<Page<UserView>, ServiceError> {
    let actor = ctx.actor();
    authorize(&actor, Action::ListUsers)?;
    let (limit, after) = page.parse::<UserId>()?;
    let views = match org_of(actor.workspace) {
        Some(org) => {
            let members = memberships::list(&deps.db, org, after, limit + 1).await?;
            let mut views = Vec::with_capacity(members.len());
            for m in members {
                if let Some(user) = users::find_by_id(&deps.db, m.user_id).await? {
                    views.push(UserView {
                        user: user.into(),
                        role: Some(m.role),
                    });
                }
            }
            views
        }
        None => users::list(&deps.db, after, limit + 1)
            .await?
            .into_iter()
            .map(|user| UserView {
                user: user.into(),
                role: None,
            })
            .collect(),
    };
    Ok(page_of(views, limit, |v| v.user.id))
}

/// `GET /users/{id}`: a member of the org (org workspace) or any account (platform admin).
pub async fn get(deps: &Deps, ctx: &Ctx, id: UserId) -> Result<UserView, ServiceError> {
    let actor = ctx.actor();
    authorize(&actor, Action::ListUsers)?;
    let role = match org_of(actor.workspace) {
        Some(org) => Some(
            memberships::find(&deps.db, org, id)
                .await?
                .ok_or_else(|| ServiceError::not_found("user"))?
                .role,
        ),
        None => None,
    };
    let user = users::find_by_id(&deps.db, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("user"))?;
    Ok(UserView {
        user: user.into(),
        role,
    })
}

/// `POST /users` input.
#[derive(Clone, Default)]
pub struct NewUserInput {
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub role: Option<Role>,
}

/// Creates an account (+ a membership in the current org) and emails its owner a one-time
/// set-password link (the reset mechanism): the creator never chooses nor knows the password,
/// so they cannot sign in as the new user (SPEC §6 v2). 409 `email_taken`.
pub async fn create(deps: &Deps, ctx: &Ctx, input: NewUserInput) -> Result<UserView, ServiceError> {
    let actor = ctx.actor();
    let org = org_of(actor.workspace);
    let role = match org {
        Some(_) => Some(input.role.unwrap_or(Role::User)),
        None => input.role,
    };
    authorize(&actor, Action::CreateUser { role })?;
    let email = Email::parse(&input.email)?;
    let (first, last) =
        crate::accounts::names(input.first_name.as_deref(), input.last_name.as_deref())?;
    // Nobody knows this one: the account is usable once its owner sets a password.
    let password = Password::parse(&crate::tokens::random_password(32))?;
    let hash = deps.passwords.hash(&password).await?;
    let now = ctx.now;
    let id = UserId::new();
    let link_token = crate::tokens::random_token(32);

    let tx = ctx.begin_in_workspace(deps).await?;
    if let Some(org) = org {
        // Org chains before the platform chain, in every transaction that appends to both.
        inventiv_persistence::repo::audit::lock_heads(&tx, &[org]).await?;
    }
    let new = NewUser {
        id,
        email: &email,
        username: None,
        first_name: first.as_ref().map(PersonName::as_str),
        last_name: last.as_ref().map(PersonName::as_str),
        password_hash: &hash,
        is_platform_admin: false,
        now,
    };
    let actor_audit = ctx.audit_actor();
    let after = json!({"email": email.as_str(), "organization_id": org.map(|o| o.to_string())});
    let Ok(user) = crate::accounts::create_in(&tx, new, actor_audit, &ctx.meta, after).await?
    else {
        return Err(ServiceError::Conflict {
            code: ErrorCode::EmailTaken,
            message: "An account with this email exists; invite it to the organization instead."
                .to_owned(),
        });
    };
    if let (Some(org), Some(role)) = (org, role) {
        memberships::insert(&tx, org, id, role, now).await?;
        record(
            &tx,
            now,
            actor_audit,
            &ctx.meta,
            AuditEntry {
                action: "member.added",
                organization: Some(org),
                target_type: "user",
                target_id: id.to_string(),
                before: None,
                after: Some(json!({"role": role.as_str(), "via": "users.create"})),
            },
        )
        .await?;
    }
    reset_tokens::replace(
        &tx,
        id,
        &token_hash(&link_token),
        now,
        now + WELCOME_LINK_TTL,
    )
    .await?;
    tx.commit().await?;
    let link = format!("{}/reset-password?token={link_token}", deps.public_url);
    send_in_background(
        deps.mailer.clone(),
        OutgoingEmail {
            to: email,
            subject: "Your Inventiv account: choose a password".to_owned(),
            text: format!(
                "{} created an Inventiv account for you.\n\nChoose your password here (the link works once, for 72 hours):\n{link}\n",
                ctx.principal.email
            ),
        },
    );
    Ok(UserView {
        user: user.into(),
        role,
    })
}

/// `PUT /users/{id}` input: profile fields (self or platform admin), flags (platform admin).
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub username: Option<Option<String>>,
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub is_platform_admin: Option<bool>,
    pub disabled: Option<bool>,
}

pub async fn update(
    deps: &Deps,
    ctx: &Ctx,
    id: UserId,
    input: UserUpdate,
) -> Result<UserView, ServiceError> {
    let actor = ctx.actor();
    let edit = user_edit(&actor, id)?;
    if !edit.may_set_flags() && (input.is_platform_admin.is_some() || input.disabled.is_some()) {
        return Err(ServiceError::Forbidden {
            code: ErrorCode::Forbidden,
            message: "Only platform admins change these.".to_owned(),
        });
    }
    if locks_self_out(&actor, id, input.disabled, input.is_platform_admin) {
        return Err(ServiceError::Conflict {
            code: ErrorCode::CannotChangeSelf,
            message: "You cannot disable yourself or drop your own platform-admin flag.".to_owned(),
        });
    }
    let profile = crate::auth::ProfileInput {
        username: input.username,
        first_name: input.first_name,
        last_name: input.last_name,
    };
    let change = profile.parse()?;
    let now = ctx.now;
    let tx = deps.db.begin_write().await?;
    // Under the row's lock: whether this change disables the account (and so revokes its
    // sessions and keys) is decided from the account as it is, not as a concurrent change
    // left it a moment before.
    let before = users::find_for_update(&tx, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("user"))?;
    match users::update_profile(&tx, id, change, now).await {
        Ok(_) => {}
        Err(StoreError::Conflict(Constraint::UserUsername)) => {
            return Err(ServiceError::Conflict {
                code: ErrorCode::UsernameTaken,
                message: "This username is already taken.".to_owned(),
            });
        }
        Err(other) => return Err(other.into()),
    }
    let disabled_at = input.disabled.map(|d| d.then_some(now));
    users::set_flags(&tx, id, disabled_at, input.is_platform_admin, now).await?;
    let mut revoked = (0, 0);
    if input.disabled == Some(true) && before.disabled_at.is_none() {
        // Disabling takes effect at once: every session and key of the account dies now.
        revoked = (
            sessions::revoke_all_for_user(&tx, id, None, "user_disabled", now).await?,
            revoke_with_owner(
                &tx,
                now,
                ctx.audit_actor(),
                &ctx.meta,
                OwnedKeys::All(id),
                "account_disabled",
                &[],
            )
            .await?,
        );
    }
    let action = match input.disabled {
        Some(true) if before.disabled_at.is_none() => "user.disabled",
        Some(false) if before.disabled_at.is_some() => "user.enabled",
        _ => "user.updated",
    };
    let after = users::find_by_id(&tx, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("user"))?;
    ctx.record(&tx, AuditEntry {
            action,
            organization: None,
            target_type: "user",
            target_id: id.to_string(),
            before: Some(json!({"is_platform_admin": before.is_platform_admin, "disabled": before.disabled_at.is_some()})),
            after: Some(json!({"is_platform_admin": after.is_platform_admin, "disabled": after.disabled_at.is_some(),
                               "sessions_revoked": revoked.0, "api_keys_revoked": revoked.1})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(UserView {
        user: after.into(),
        role: None,
    })
}

/// `DELETE /users/{id}` (platform admin): 409 `last_owner` if the user is the last owner of any
/// org; otherwise the account, its memberships, sessions and API keys go in one transaction.
pub async fn delete(deps: &Deps, ctx: &Ctx, id: UserId) -> Result<(), ServiceError> {
    authorize(&ctx.actor(), Action::DeleteUser)?;
    if id == ctx.user_id() {
        return Err(ServiceError::Conflict {
            code: ErrorCode::CannotChangeSelf,
            message: "You cannot delete your own account here.".to_owned(),
        });
    }
    let now = ctx.now;
    let tx = deps.db.begin_write().await?;
    // The account's row first, against everything: a membership being added meanwhile (an
    // org created, an invitation accepted) waits for this deletion and then fails, instead of
    // being cascaded away unchecked and unaudited.
    let user = users::find_for_delete(&tx, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("user"))?;
    let orgs = memberships::orgs_of(&tx, id).await?;
    for org in &orgs {
        // Same lock as every other owner-reducing change, taken in org-id order: the owners
        // are read under it, so a promotion to owner that committed after the memberships
        // were listed is seen here, and no other owner can leave before this commits.
        let owners = memberships::lock_owners(&tx, *org).await?;
        if owners.contains(&id) {
            ensure_owner_remains(owners.len() as u64, 1).map_err(|_| ServiceError::Conflict {
                code: ErrorCode::LastOwner,
                message:
                    "This user is the last owner of an organization; transfer ownership first."
                        .to_owned(),
            })?;
        }
    }
    // The keys go with the account (ON DELETE CASCADE); revoking them first leaves one
    // `api_key.revoked` event per key in the trail. Their rows are locked before any chain
    // head (as a key's own changes do), then every org chain this deletion appends to.
    revoke_with_owner(
        &tx,
        now,
        ctx.audit_actor(),
        &ctx.meta,
        OwnedKeys::All(id),
        "account_deleted",
        &orgs,
    )
    .await?;
    for org in orgs {
        ctx.record(
            &tx,
            AuditEntry {
                action: "member.removed",
                organization: Some(org),
                target_type: "user",
                target_id: id.to_string(),
                before: Some(json!({"email": user.email.as_str(), "reason": "account deleted"})),
                after: None,
            },
        )
        .await?;
    }
    users::delete(&tx, id).await?;
    ctx.record(
        &tx,
        AuditEntry {
            action: "user.deleted",
            organization: None,
            target_type: "user",
            target_id: id.to_string(),
            before: Some(json!({"email": user.email.as_str()})),
            after: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
