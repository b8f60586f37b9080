use super::unauthorized;
use crate::Ctx;
use crate::audit::{AuditActor, AuditEntry, record};
use crate::cache::Rendered;
use crate::organizations::Organization;
use crate::users::User;
use crate::{Deps, ServiceError};
use inventiv_domain::ErrorCode;
use inventiv_domain::{
    Actor, Module, OrgId, Password, Permission, PersonName, UserId, Username, Workspace, modules,
    permissions,
};
use inventiv_persistence::Tag;
use inventiv_persistence::repo::organizations;
use inventiv_persistence::repo::users::{self, ProfileChange};
use inventiv_persistence::repo::{reset_tokens, sessions};
use inventiv_persistence::{Constraint, StoreError};
use serde_json::json;
use std::sync::Arc;

/// `GET /auth/me`: who I am, where this session acts, and what I may do there — computed by
/// the domain from the same permission map the guards use.
#[derive(Debug, Clone)]
pub struct Me {
    pub user: User,
    pub session_id: Option<inventiv_domain::SessionId>,
    pub organization: Option<Organization>,
    pub permissions: Vec<Permission>,
    pub modules: Vec<Module>,
    /// The caller it was built for, acting in the workspace shown: the facts of the principal
    /// it shows (workspace, role, platform flag), which come from the session checked before
    /// the answer was built.
    pub actor: Actor,
}

/// `GET /auth/me`. A session's answer is cached (with its rendering) until the session, its
/// account, or its membership or org changes; the principal it is built from was checked
/// against the live session a moment before, so a revoked session never gets here.
pub async fn me(deps: &Deps, ctx: &Ctx) -> Result<Arc<Rendered<Me>>, ServiceError> {
    let Some(sid) = ctx.principal.session_id() else {
        // An API key: nothing to key the entry by; built each time.
        return Ok(Arc::new(Rendered::new(
            me_in(deps, ctx, ctx.principal.workspace).await?,
        )));
    };
    let cache = &deps.caches.me;
    // An entry is served only to the principal it was built for. The principal was read
    // before the entry's stamp was taken, so a role or workspace change that committed in
    // between is not among the changes the stamp watches for: such an entry shows the role
    // before the change while the session now says the one after. It is replaced.
    if let Some(me) = cache.get(&deps.db, &sid)
        && me.value().actor == ctx.actor()
    {
        return Ok(me);
    }
    let stamp = cache.stamp(&deps.db);
    let me = Arc::new(Rendered::new(
        me_in(deps, ctx, ctx.principal.workspace).await?,
    ));
    let user = ctx.user_id();
    let mut tags = vec![Tag::Session(sid), Tag::User(user)];
    if let Workspace::Org { org, .. } = ctx.principal.workspace {
        tags.extend([Tag::Membership(org, user), Tag::Org(org)]);
    }
    cache.put(sid, stamp, tags, me.clone());
    Ok(me)
}

/// The Me of `principal` as if acting in `workspace` (after a switch).
pub(crate) async fn me_in(
    deps: &Deps,
    ctx: &Ctx,
    workspace: Workspace,
) -> Result<Me, ServiceError> {
    let user = account(deps, ctx.user_id()).await?;
    let organization = match workspace {
        Workspace::Org { org, .. } => organization(deps, org).await?,
        Workspace::Personal => None,
    };
    let actor = Actor {
        workspace,
        ..ctx.actor()
    };
    Ok(Me {
        user,
        session_id: ctx.principal.session_id(),
        organization,
        permissions: permissions(&actor),
        modules: modules(&actor),
        actor,
    })
}

/// The account `id` as `/auth/me` shows it: cached until the account changes.
async fn account(deps: &Deps, id: UserId) -> Result<User, ServiceError> {
    let cache = &deps.caches.users;
    if let Some(user) = cache.get(&deps.db, &id) {
        return Ok(user);
    }
    let stamp = cache.stamp(&deps.db);
    let user = User::from(
        users::find_by_id(&deps.db, id)
            .await?
            .ok_or_else(|| unauthorized("The account no longer exists."))?,
    );
    cache.put(id, stamp, vec![Tag::User(id)], user.clone());
    Ok(user)
}

/// The org `id` as `/auth/me` shows it (None: gone): cached until the org changes.
async fn organization(deps: &Deps, id: OrgId) -> Result<Option<Organization>, ServiceError> {
    let cache = &deps.caches.orgs;
    if let Some(org) = cache.get(&deps.db, &id) {
        return Ok(Some(org));
    }
    let stamp = cache.stamp(&deps.db);
    let Some(org) = organizations::find_by_id(&deps.db, id).await? else {
        return Ok(None);
    };
    let org = Organization::from(org);
    cache.put(id, stamp, vec![Tag::Org(id)], org.clone());
    Ok(Some(org))
}

/// `PUT /auth/me` fields: absent = unchanged, `null` or "" = cleared.
#[derive(Debug, Default, Clone)]
pub struct ProfileInput {
    pub username: Option<Option<String>>,
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
}

impl ProfileInput {
    /// Parses the fields (absent: unchanged; null or blank: cleared). Shared by `PUT /auth/me`
    /// and `PUT /users/{id}`.
    pub(crate) fn parse(self) -> Result<ProfileChange, ServiceError> {
        let blank = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let name = |field: &'static str, v: Option<Option<String>>| {
            v.map(|v| {
                blank(v)
                    .map(|v| PersonName::parse(field, &v).map(|n| n.as_str().to_owned()))
                    .transpose()
            })
            .transpose()
        };
        Ok(ProfileChange {
            username: self
                .username
                .map(|u| blank(u).map(|u| Username::parse(&u)).transpose())
                .transpose()?,
            first_name: name("first_name", self.first_name)?,
            last_name: name("last_name", self.last_name)?,
        })
    }
}

pub async fn update_profile(
    deps: &Deps,
    ctx: &Ctx,
    input: ProfileInput,
) -> Result<Me, ServiceError> {
    // A session's change (as in `users::update`); the http layer refuses key writes first.
    ctx.session()?;
    let change = input.parse()?;
    let now = ctx.now;
    let tx = deps.db.begin_write().await?;
    let updated = match users::update_profile(&tx, ctx.user_id(), change, now).await {
        Ok(Some(user)) => user,
        Ok(None) => return Err(unauthorized("The account no longer exists.")),
        Err(StoreError::Conflict(Constraint::UserUsername)) => {
            return Err(ServiceError::Conflict {
                code: ErrorCode::UsernameTaken,
                message: "This username is already taken.".to_owned(),
            });
        }
        Err(other) => return Err(other.into()),
    };
    ctx.record(
        &tx,
        AuditEntry {
            action: "user.profile_updated",
            organization: None,
            target_type: "user",
            target_id: ctx.user_id().to_string(),
            before: None,
            after: Some(json!({
                "username": updated.username.as_ref().map(|u| u.as_str().to_owned()),
                "first_name": updated.first_name,
                "last_name": updated.last_name,
            })),
        },
    )
    .await?;
    tx.commit().await?;
    me_in(deps, ctx, ctx.principal.workspace).await
}

/// `PUT /auth/me/password`: requires the current password; revokes every OTHER session of the
/// user and keeps this one.
pub async fn change_password(
    deps: &Deps,
    ctx: &Ctx,
    current: &str,
    new: &str,
) -> Result<(), ServiceError> {
    let new = Password::parse(new).map_err(|e| ServiceError::invalid("new_password", e.reason))?;
    let user = users::find_by_id(&deps.db, ctx.user_id())
        .await?
        .ok_or_else(|| unauthorized("The account no longer exists."))?;
    let current_ok = match Password::parse(current) {
        Ok(pw) => {
            deps.passwords
                .verify(&pw, Some(&user.password_hash))
                .await?
        }
        Err(_) => false,
    };
    let wrong_current = || ServiceError::Forbidden {
        code: ErrorCode::InvalidCurrentPassword,
        message: "The current password is incorrect.".to_owned(),
    };
    if !current_ok {
        return Err(wrong_current());
    }
    let hash = deps.passwords.hash(&new).await?;
    let now = ctx.now;
    let tx = deps.db.begin_write().await?;
    // Only over the hash just verified: a change or reset that landed while this one was
    // hashing made `current` stale, and must not be overwritten by someone who knew only the
    // old password (nor its revocation of their session undone).
    if !users::set_password_hash(&tx, user.id, &hash, now, Some(&user.password_hash)).await? {
        return Err(wrong_current());
    }
    // A reset link sent before (a forwarded mail, a shared mailbox) would otherwise still set
    // a password over this one, and revoke this session with it.
    reset_tokens::void_unused(&tx, user.id, now).await?;
    let revoked = sessions::revoke_all_for_user(
        &tx,
        user.id,
        Some(ctx.session()?.id),
        "password_changed",
        now,
    )
    .await?;
    record(
        &tx,
        now,
        AuditActor {
            user: Some(user.id),
            session: ctx.principal.session_id(),
        },
        &ctx.meta,
        AuditEntry {
            action: "user.password_changed",
            organization: None,
            target_type: "user",
            target_id: user.id.to_string(),
            before: None,
            after: Some(json!({"other_sessions_revoked": revoked})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
