//! Organizations (SPEC §4.2): list mine, create (creator = owner), update and delete the
//! current one.

use crate::Ctx;
use crate::audit::{AuditEntry, record};
use crate::auth::{IssuedToken, issue_token};
use crate::paging::{Page, PageRequest, page_of};
use crate::{Deps, ServiceError};
use inventiv_domain::ErrorCode;
use inventiv_domain::{
    Action, Actor, OrgId, OrgName, Role, Scope, Slug, UserId, Workspace, authorize,
};
use inventiv_persistence::repo::organizations::{self, MyOrg, NewOrg, OrgRecord};
use inventiv_persistence::repo::{instances, memberships, sessions};
use inventiv_persistence::{Constraint, StoreError, Tx};
use serde_json::json;
use time::OffsetDateTime;

/// An organization as use cases show it.
#[derive(Debug, Clone)]
pub struct Organization {
    pub id: OrgId,
    pub name: OrgName,
    pub slug: Slug,
    pub require_distinct_activators: bool,
    pub created_at: OffsetDateTime,
}

impl From<OrgRecord> for Organization {
    fn from(o: OrgRecord) -> Self {
        Organization {
            id: o.id,
            name: o.name,
            slug: o.slug,
            require_distinct_activators: o.require_distinct_activators,
            created_at: o.created_at,
        }
    }
}

/// One of the caller's organizations, with their role and the member count.
#[derive(Debug, Clone)]
pub struct MyOrganization {
    pub org: Organization,
    pub role: Role,
    pub member_count: i64,
}

impl From<MyOrg> for MyOrganization {
    fn from(m: MyOrg) -> Self {
        MyOrganization {
            org: m.org.into(),
            role: m.role,
            member_count: m.member_count,
        }
    }
}

fn org_json(org: &OrgRecord) -> serde_json::Value {
    json!({
        "name": org.name.as_str(),
        "slug": org.slug.as_str(),
        "require_distinct_activators": org.require_distinct_activators,
    })
}

/// `GET /organizations`: the caller's organizations with their role.
pub async fn list_mine(
    deps: &Deps,
    ctx: &Ctx,
    page: &PageRequest,
) -> Result<Page<MyOrganization>, ServiceError> {
    // A person's orgs, across workspaces: an API key reads only its own scope (SPEC §4), and
    // an org key's creator's other orgs are not in it.
    ctx.session()?;
    let (limit, after) = page.parse::<OrgId>()?;
    let rows = organizations::list_for_user(&deps.db, ctx.user_id(), after, limit + 1).await?;
    let rows = rows.into_iter().map(MyOrganization::from).collect();
    Ok(page_of(rows, limit, |o| o.org.id))
}

/// `POST /organizations` input.
#[derive(Debug, Clone)]
pub struct NewOrganization {
    pub name: String,
    pub slug: Option<String>,
    pub set_as_current: bool,
}

/// Creates an org owned by the caller; with `set_as_current` this session switches to it and
/// a new token is returned.
pub async fn create(
    deps: &Deps,
    ctx: &Ctx,
    input: NewOrganization,
) -> Result<(Organization, Option<IssuedToken>), ServiceError> {
    authorize(&ctx.actor(), Action::CreateOrganization)?;
    let name = OrgName::parse(&input.name)?;
    let slug = match input.slug.as_deref() {
        Some(slug) => Slug::parse(slug)?,
        None => Slug::from_name(name.as_str()).ok_or_else(|| {
            ServiceError::invalid("slug", "cannot derive a slug from this name; give one")
        })?,
    };
    let taken = || ServiceError::Conflict {
        code: ErrorCode::SlugTaken,
        message: format!("The slug {:?} is already taken.", slug.as_str()),
    };
    if deps.is_reserved_slug(slug.as_str()) {
        return Err(taken());
    }
    let now = ctx.now;
    let tx = deps.db.begin_write().await?;
    refuse_a_name_in_use(&tx, ctx.user_id(), &name, None).await?;
    // The insert claims the slug as a model namespace in this transaction (SPEC §5.1): a live
    // org, a deleted org's slug or a public catalogue namespace all answer slug_taken, decided
    // by the primary key under concurrency.
    let org = match organizations::insert(
        &tx,
        NewOrg {
            id: OrgId::new(),
            name: &name,
            slug: &slug,
            created_by: Some(ctx.user_id()),
            now,
        },
    )
    .await
    {
        Ok(org) => org,
        Err(StoreError::Conflict(Constraint::OrganizationSlug | Constraint::ModelNamespace)) => {
            return Err(taken());
        }
        Err(other) => return Err(other.into()),
    };
    memberships::insert(&tx, org.id, ctx.user_id(), Role::Owner, now).await?;
    let actor = ctx.audit_actor();
    let entry = |action, target_type, target_id: String, after| AuditEntry {
        action,
        organization: Some(org.id),
        target_type,
        target_id,
        before: None,
        after: Some(after),
    };
    record(
        &tx,
        now,
        actor,
        &ctx.meta,
        entry(
            "org.created",
            "organization",
            org.id.to_string(),
            org_json(&org),
        ),
    )
    .await?;
    record(
        &tx,
        now,
        actor,
        &ctx.meta,
        entry(
            "member.added",
            "user",
            ctx.user_id().to_string(),
            json!({"role": "owner"}),
        ),
    )
    .await?;
    let switched = match (input.set_as_current, ctx.session().ok()) {
        (true, Some(session)) => {
            let generation = sessions::set_workspace(
                &tx,
                session.id,
                session.token_generation,
                Some((org.id, Role::Owner)),
                now,
            )
            .await?
            .ok_or_else(|| {
                crate::auth::unauthorized("The access token was superseded by a newer one.")
            })?;
            Some((session, generation))
        }
        _ => None,
    };
    tx.commit().await?;
    let token = match switched {
        Some((session, generation)) => Some(issue_token(
            deps,
            ctx.user_id(),
            session.id,
            generation,
            Some((org.id, Role::Owner)),
            session.expires_at,
        )?),
        None => None,
    };
    Ok((org.into(), token))
}

/// 409 `org_name_taken` when another org the caller belongs to has this name (any case): two
/// orgs of the same name in one switcher are a mistake waiting to happen (created twice by a
/// double click, or a rename). Names of orgs the caller is not in are never compared: that
/// would tell them which names other tenants use.
async fn refuse_a_name_in_use(
    tx: &Tx,
    user: UserId,
    name: &OrgName,
    except: Option<OrgId>,
) -> Result<(), ServiceError> {
    match organizations::same_name_for_member(tx, user, name, except).await? {
        Some(slug) => Err(ServiceError::Conflict {
            code: ErrorCode::OrgNameTaken,
            message: format!(
                "You already belong to an organization named {:?} (slug {slug:?}); choose another name.",
                name.as_str()
            ),
        }),
        None => Ok(()),
    }
}

/// `PATCH /organizations/current` input.
#[derive(Debug, Clone, Default)]
pub struct OrganizationChange {
    pub name: Option<String>,
    pub require_distinct_activators: Option<bool>,
}

/// Owner only.
pub async fn update_current(
    deps: &Deps,
    ctx: &Ctx,
    change: OrganizationChange,
) -> Result<Organization, ServiceError> {
    let (org, _) = ctx.current_org(Action::UpdateOrg)?;
    let name = change.name.as_deref().map(OrgName::parse).transpose()?;
    let now = ctx.now;
    let tx = deps.db.begin_write().await?;
    // Locked: two concurrent changes each audit what the other left (a plain read in READ
    // COMMITTED let both record the same "before").
    let before = organizations::find_by_id_for_update(&tx, org)
        .await?
        .ok_or_else(|| ServiceError::not_found("organization"))?;
    if let Some(name) = &name {
        refuse_a_name_in_use(&tx, ctx.user_id(), name, Some(org)).await?;
    }
    let after = organizations::update(
        &tx,
        org,
        name.as_ref(),
        change.require_distinct_activators,
        now,
    )
    .await?
    .ok_or_else(|| ServiceError::not_found("organization"))?;
    ctx.record(
        &tx,
        AuditEntry {
            action: "org.updated",
            organization: Some(org),
            target_type: "organization",
            target_id: org.to_string(),
            before: Some(org_json(&before)),
            after: Some(org_json(&after)),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(after.into())
}

/// Owner only. 409 `org_has_instances` while any instance is not terminated. Sessions in the
/// org fall back to Personal.
pub async fn delete_current(deps: &Deps, ctx: &Ctx) -> Result<(), ServiceError> {
    let (org, _) = ctx.current_org(Action::DeleteOrg)?;
    let tx = deps.db.begin_write().await?;
    // The org's row first, as every membership change takes it (so before the chain head):
    // the caller's role and the live instances are read with nothing about to change them.
    let before = organizations::find_for_delete(&tx, org)
        .await?
        .ok_or_else(|| ServiceError::not_found("organization"))?;
    let role = memberships::find(&tx, org, ctx.user_id())
        .await?
        .map(|m| m.role)
        .ok_or_else(crate::members::no_longer_member)?;
    authorize(
        &Actor {
            workspace: Workspace::Org { org, role },
            ..ctx.actor()
        },
        Action::DeleteOrg,
    )?;
    let live = instances::count_live(&tx, Scope::Org(org)).await?;
    if live > 0 {
        return Err(ServiceError::Conflict {
            code: ErrorCode::OrgHasInstances,
            message: format!("{live} instance(s) are not terminated yet; terminate them first."),
        });
    }
    // Terminated instances go with the org (the audit trail keeps their history).
    instances::delete_terminated(&tx, Scope::Org(org)).await?;
    // The org goes before its event is appended: the delete waits for the rows it cascades to
    // that a change in flight holds, and such a change takes the org's chain head after its
    // row, so this must not hold the head meanwhile (a deadlock, answered 503). The chain
    // outlives the org (audit rows carry no foreign key).
    organizations::delete(&tx, org).await?;
    ctx.record(
        &tx,
        AuditEntry {
            action: "org.deleted",
            organization: Some(org),
            target_type: "organization",
            target_id: org.to_string(),
            before: Some(org_json(&before)),
            after: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
