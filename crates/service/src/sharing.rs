//! Model sharing (SPEC §4.4): offerings (an org publishes a model under `<org_slug>/<code>`)
//! and shares (provider → consumer contracts with per-token prices). Both use the one
//! activation mechanism; a price change clears the economic approval.

use crate::audit::{AuditEntry, record};
use crate::auth::Principal;
use crate::organizations::{actor_of, current_org};
use crate::paging::{Page, PageRequest, page_of};
use crate::{Deps, RequestMeta, ServiceError};
use inventiv_domain::{
    Action, Flag, ModelId, OfferingId, OrgId, Scope, ShareId, ShareStatus, Slug, authorize,
};
use inventiv_persistence::repo::offerings::{self, OfferingFields, OfferingRecord};
use inventiv_persistence::repo::shares::{self, NewShare, ShareRecord, Side};
use inventiv_persistence::repo::{models, organizations};
use inventiv_persistence::{Constraint, StoreError};
use serde_json::json;
use time::OffsetDateTime;

pub use offerings::OfferingRecord as Offering;
pub use shares::{ShareRecord as Share, Side as ShareSide};

fn price(field: &str, value: i64) -> Result<i64, ServiceError> {
    if (0..=1_000_000_000).contains(&value) {
        Ok(value)
    } else {
        Err(ServiceError::invalid(
            field,
            "0 to 10^9 micro-EUR per 1k tokens",
        ))
    }
}

/// Who acts, for the audit events of this module.
struct Ctx<'a> {
    deps: &'a Deps,
    principal: &'a Principal,
    meta: &'a RequestMeta,
}

async fn audit(
    tx: &inventiv_persistence::Tx,
    ctx: &Ctx<'_>,
    org: OrgId,
    action: &'static str,
    target: (&'static str, String),
    after: serde_json::Value,
) -> Result<(), ServiceError> {
    let entry = AuditEntry {
        action,
        organization: Some(org),
        target_type: target.0,
        target_id: target.1,
        before: None,
        after: Some(after),
    };
    record(
        tx,
        ctx.deps.clock.now(),
        actor_of(ctx.principal),
        ctx.meta,
        entry,
    )
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Offerings

pub async fn list_offerings(
    deps: &Deps,
    principal: &Principal,
    page: &PageRequest,
) -> Result<Page<OfferingRecord>, ServiceError> {
    let (org, _) = current_org(principal, Action::ViewOfferings)?;
    let (limit, after) = page.parse::<OfferingId>()?;
    Ok(page_of(
        offerings::list(&deps.db, org, after, limit + 1).await?,
        limit,
        |o| o.id,
    ))
}

/// `POST …/offerings` input.
#[derive(Debug, Clone)]
pub struct NewOffering {
    pub model_id: ModelId,
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    pub visibility: Option<String>,
}

fn fields(
    code: &str,
    name: &str,
    description: Option<String>,
    visibility: Option<String>,
    is_active: bool,
) -> Result<OfferingFields, ServiceError> {
    let code = Slug::parse(code).map_err(|e| ServiceError::invalid("code", e.reason))?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ServiceError::invalid("name", "1 to 100 characters"));
    }
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 1000)
    {
        return Err(ServiceError::invalid(
            "description",
            "at most 1000 characters",
        ));
    }
    let visibility = visibility.unwrap_or_else(|| "private".to_owned());
    if !matches!(visibility.as_str(), "private" | "public") {
        return Err(ServiceError::invalid("visibility", "private or public"));
    }
    Ok(OfferingFields {
        code: code.as_str().to_owned(),
        name: name.to_owned(),
        description,
        visibility,
        is_active,
    })
}

fn code_taken(err: StoreError) -> ServiceError {
    match err {
        StoreError::Conflict(Constraint::OfferingCode) => ServiceError::Conflict {
            code: "code_taken",
            message: "This organization already has an offering with this code.".to_owned(),
        },
        other => other.into(),
    }
}

/// Owner/admin. Starts unpublished, priced 0, and non-operational.
pub async fn create_offering(
    deps: &Deps,
    principal: &Principal,
    input: NewOffering,
    meta: &RequestMeta,
) -> Result<OfferingRecord, ServiceError> {
    let (org, _) = current_org(principal, Action::ManageOffering)?;
    let f = fields(
        &input.code,
        &input.name,
        input.description,
        input.visibility,
        false,
    )?;
    models::find(&deps.db, Scope::Org(org), input.model_id)
        .await?
        .ok_or_else(|| {
            ServiceError::invalid("model_id", "no model with this id in this workspace")
        })?;
    let id = OfferingId::new();
    let tx = deps.db.begin_write().await?;
    offerings::insert(&tx, org, id, input.model_id, &f, (0, 0), deps.clock.now())
        .await
        .map_err(code_taken)?;
    audit(
        &tx,
        &Ctx {
            deps,
            principal,
            meta,
        },
        org,
        "offering.created",
        ("offering", id.to_string()),
        json!({"code": f.code, "name": f.name}),
    )
    .await?;
    let offering = offerings::find(&tx, org, id)
        .await?
        .ok_or(ServiceError::NotFound("offering"))?;
    tx.commit().await?;
    Ok(offering)
}

/// `PATCH …/offerings/{id}` input: fields (owner/admin) and prices (owner/manager).
#[derive(Debug, Clone, Default)]
pub struct OfferingChange {
    pub code: Option<String>,
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub visibility: Option<String>,
    /// Publish (true) or unpublish (false).
    pub is_active: Option<bool>,
    pub prices: Option<(i64, i64)>,
}

pub async fn update_offering(
    deps: &Deps,
    principal: &Principal,
    id: OfferingId,
    change: OfferingChange,
    meta: &RequestMeta,
) -> Result<OfferingRecord, ServiceError> {
    let (org, _) = current_org(principal, Action::ViewOfferings)?;
    let before = offerings::find(&deps.db, org, id)
        .await?
        .ok_or(ServiceError::NotFound("offering"))?;
    let touches_fields = change.code.is_some()
        || change.name.is_some()
        || change.description.is_some()
        || change.visibility.is_some()
        || change.is_active.is_some();
    if touches_fields {
        authorize(&principal.actor(), Action::ManageOffering)?;
    }
    let prices = match change.prices {
        Some((input, output)) => {
            authorize(&principal.actor(), Action::SetPrice)?;
            Some((
                price("price_input_micros_per_1k", input)?,
                price("price_output_micros_per_1k", output)?,
            ))
        }
        None => None,
    };
    let f = fields(
        change.code.as_deref().unwrap_or(&before.code),
        change.name.as_deref().unwrap_or(&before.name),
        change.description.unwrap_or(before.description.clone()),
        Some(change.visibility.unwrap_or(before.visibility.clone())),
        change.is_active.unwrap_or(before.is_active),
    )?;
    let now = deps.clock.now();
    let tx = deps.db.begin_write().await?;
    if touches_fields {
        offerings::update_fields(&tx, org, id, &f, now)
            .await
            .map_err(code_taken)?;
        let action = match change.is_active {
            Some(true) if !before.is_active => "offering.published",
            Some(false) if before.is_active => "offering.unpublished",
            _ => "offering.updated",
        };
        audit(
            &tx,
            &Ctx {
                deps,
                principal,
                meta,
            },
            org,
            action,
            ("offering", id.to_string()),
            json!({"code": f.code, "is_active": f.is_active}),
        )
        .await?;
    }
    if let Some(prices) = prices {
        // A new price needs a new economic approval.
        offerings::set_prices(&tx, org, id, prices, now).await?;
        let after = json!({"price_input_micros_per_1k": prices.0, "price_output_micros_per_1k": prices.1, "eco_cleared": true});
        audit(
            &tx,
            &Ctx {
                deps,
                principal,
                meta,
            },
            org,
            "offering.price_changed",
            ("offering", id.to_string()),
            after,
        )
        .await?;
    }
    let offering = offerings::find(&tx, org, id)
        .await?
        .ok_or(ServiceError::NotFound("offering"))?;
    tx.commit().await?;
    Ok(offering)
}

pub async fn set_offering_activation(
    deps: &Deps,
    principal: &Principal,
    id: OfferingId,
    flag: Flag,
    active: bool,
    meta: &RequestMeta,
) -> Result<OfferingRecord, ServiceError> {
    let (org, _) = current_org(principal, Action::ViewOfferings)?;
    offerings::find(&deps.db, org, id)
        .await?
        .ok_or(ServiceError::NotFound("offering"))?;
    let distinct = crate::activation::distinct_required(deps, org).await?;
    let now = deps.clock.now();
    let tx = deps.db.begin_write().await?;
    let current = offerings::find(&tx, org, id)
        .await?
        .ok_or(ServiceError::NotFound("offering"))?;
    let after =
        crate::activation::next_state(principal, &current.activation, flag, active, distinct)?;
    offerings::set_flag(&tx, org, id, flag, after.holder(flag), now).await?;
    let state =
        json!({"flag": flag.as_str(), "active": active, "operational": after.operational(false)});
    audit(
        &tx,
        &Ctx {
            deps,
            principal,
            meta,
        },
        org,
        "offering.activation_changed",
        ("offering", id.to_string()),
        state,
    )
    .await?;
    let offering = offerings::find(&tx, org, id)
        .await?
        .ok_or(ServiceError::NotFound("offering"))?;
    tx.commit().await?;
    Ok(offering)
}

// ---------------------------------------------------------------------------------------------
// Shares

/// `GET …/shares?side=`: the shares this org gives (provider) or receives (consumer).
pub async fn list_shares(
    deps: &Deps,
    principal: &Principal,
    side: Side,
    page: &PageRequest,
) -> Result<Page<ShareRecord>, ServiceError> {
    let (org, _) = current_org(principal, Action::ViewShares)?;
    let (limit, before) = page.parse::<ShareId>()?;
    Ok(page_of(
        shares::list(&deps.db, org, side, before, limit + 1).await?,
        limit,
        |s| s.id,
    ))
}

/// `POST …/shares` input.
#[derive(Debug, Clone)]
pub struct NewGrant {
    pub offering_id: OfferingId,
    pub consumer_slug: String,
    pub prices: (i64, i64),
    pub ends_at: Option<OffsetDateTime>,
}

/// Grant an offering to another org (owner/admin of the provider).
pub async fn grant(
    deps: &Deps,
    principal: &Principal,
    input: NewGrant,
    meta: &RequestMeta,
) -> Result<ShareRecord, ServiceError> {
    let (provider, _) = current_org(principal, Action::ManageShare)?;
    let prices = (
        price("price_input_micros_per_1k", input.prices.0)?,
        price("price_output_micros_per_1k", input.prices.1)?,
    );
    let now = deps.clock.now();
    if input.ends_at.is_some_and(|end| end <= now) {
        return Err(ServiceError::invalid("ends_at", "must be in the future"));
    }
    offerings::find(&deps.db, provider, input.offering_id)
        .await?
        .ok_or_else(|| {
            ServiceError::invalid(
                "offering_id",
                "no offering with this id in this organization",
            )
        })?;
    let slug = Slug::parse(&input.consumer_slug)
        .map_err(|e| ServiceError::invalid("consumer_organization_slug", e.reason))?;
    let consumer = organizations::find_by_slug(&deps.db, &slug)
        .await?
        .ok_or_else(|| {
            ServiceError::invalid(
                "consumer_organization_slug",
                "no organization with this slug",
            )
        })?;
    if consumer.id == provider {
        return Err(ServiceError::invalid(
            "consumer_organization_slug",
            "an organization cannot share with itself",
        ));
    }
    let id = ShareId::new();
    let tx = deps.db.begin_write().await?;
    let new = NewShare {
        id,
        provider,
        consumer: consumer.id,
        offering: input.offering_id,
        prices,
        starts_at: now,
        ends_at: input.ends_at,
        now,
    };
    match shares::insert(&tx, new).await {
        Ok(()) => {}
        Err(StoreError::Conflict(Constraint::ShareLive)) => {
            return Err(ServiceError::Conflict {
                code: "share_exists",
                message: "A live share of this offering with this organization exists; pause, resume or revoke it.".to_owned(),
            });
        }
        Err(other) => return Err(other.into()),
    }
    let after = json!({"consumer": consumer.slug.as_str(), "offering_id": input.offering_id.to_string(),
                       "price_input_micros_per_1k": prices.0, "price_output_micros_per_1k": prices.1});
    audit(
        &tx,
        &Ctx {
            deps,
            principal,
            meta,
        },
        provider,
        "share.granted",
        ("share", id.to_string()),
        after.clone(),
    )
    .await?;
    audit(
        &tx,
        &Ctx {
            deps,
            principal,
            meta,
        },
        consumer.id,
        "share.received",
        ("share", id.to_string()),
        after,
    )
    .await?;
    let share = shares::find(&tx, provider, Side::Provider, id)
        .await?
        .ok_or(ServiceError::NotFound("share"))?;
    tx.commit().await?;
    Ok(share)
}

/// What a share status request asks.
#[derive(Debug, Clone, Copy)]
pub enum ShareTransition {
    Pause,
    Resume,
    Revoke,
}

/// Provider side: a share of the current org (404 if it is not the provider).
async fn provided(
    deps: &Deps,
    principal: &Principal,
    id: ShareId,
    action: Action,
) -> Result<(OrgId, ShareRecord), ServiceError> {
    let (org, _) = current_org(principal, Action::ViewShares)?;
    let share = shares::find(&deps.db, org, Side::Provider, id)
        .await?
        .ok_or(ServiceError::NotFound("share"))?;
    authorize(&principal.actor(), action)?;
    Ok((org, share))
}

pub async fn transition(
    deps: &Deps,
    principal: &Principal,
    id: ShareId,
    change: ShareTransition,
    meta: &RequestMeta,
) -> Result<ShareRecord, ServiceError> {
    let (org, share) = provided(deps, principal, id, Action::ManageShare).await?;
    let now = deps.clock.now();
    let from = share.status.effective(share.ends_at, now);
    let (to, action) = match change {
        ShareTransition::Pause => (from.pause(), "share.paused"),
        ShareTransition::Resume => (from.resume(), "share.resumed"),
        ShareTransition::Revoke => (from.revoke(), "share.revoked"),
    };
    let to = to.map_err(|e| ServiceError::Conflict {
        code: "invalid_state",
        message: format!("{e}."),
    })?;
    let tx = deps.db.begin_write().await?;
    if !shares::set_status(&tx, org, id, share.status, to, now).await? {
        return Err(ServiceError::Conflict {
            code: "invalid_state",
            message: "The share changed meanwhile; reload.".to_owned(),
        });
    }
    let after = json!({"from": from.as_str(), "to": to.as_str()});
    audit(
        &tx,
        &Ctx {
            deps,
            principal,
            meta,
        },
        org,
        action,
        ("share", id.to_string()),
        after.clone(),
    )
    .await?;
    audit(
        &tx,
        &Ctx {
            deps,
            principal,
            meta,
        },
        share.consumer_organization_id,
        action,
        ("share", id.to_string()),
        after,
    )
    .await?;
    let updated = shares::find(&tx, org, Side::Provider, id)
        .await?
        .ok_or(ServiceError::NotFound("share"))?;
    tx.commit().await?;
    Ok(updated)
}

/// `PATCH …/shares/{id}`: new prices (owner/manager of the provider); clears the eco flag.
pub async fn set_share_prices(
    deps: &Deps,
    principal: &Principal,
    id: ShareId,
    prices: (i64, i64),
    meta: &RequestMeta,
) -> Result<ShareRecord, ServiceError> {
    let (org, _) = provided(deps, principal, id, Action::SetPrice).await?;
    let prices = (
        price("price_input_micros_per_1k", prices.0)?,
        price("price_output_micros_per_1k", prices.1)?,
    );
    let tx = deps.db.begin_write().await?;
    shares::set_prices(&tx, org, id, prices, deps.clock.now()).await?;
    let after = json!({"price_input_micros_per_1k": prices.0, "price_output_micros_per_1k": prices.1, "eco_cleared": true});
    audit(
        &tx,
        &Ctx {
            deps,
            principal,
            meta,
        },
        org,
        "share.price_changed",
        ("share", id.to_string()),
        after,
    )
    .await?;
    let updated = shares::find(&tx, org, Side::Provider, id)
        .await?
        .ok_or(ServiceError::NotFound("share"))?;
    tx.commit().await?;
    Ok(updated)
}

pub async fn set_share_activation(
    deps: &Deps,
    principal: &Principal,
    id: ShareId,
    flag: Flag,
    active: bool,
    meta: &RequestMeta,
) -> Result<ShareRecord, ServiceError> {
    let (org, _) = current_org(principal, Action::ViewShares)?;
    shares::find(&deps.db, org, Side::Provider, id)
        .await?
        .ok_or(ServiceError::NotFound("share"))?;
    let distinct = crate::activation::distinct_required(deps, org).await?;
    let now = deps.clock.now();
    let tx = deps.db.begin_write().await?;
    let current = shares::find(&tx, org, Side::Provider, id)
        .await?
        .ok_or(ServiceError::NotFound("share"))?;
    let after =
        crate::activation::next_state(principal, &current.activation, flag, active, distinct)?;
    shares::set_flag(&tx, org, id, flag, after.holder(flag), now).await?;
    let state =
        json!({"flag": flag.as_str(), "active": active, "operational": after.operational(false)});
    audit(
        &tx,
        &Ctx {
            deps,
            principal,
            meta,
        },
        org,
        "share.activation_changed",
        ("share", id.to_string()),
        state,
    )
    .await?;
    let updated = shares::find(&tx, org, Side::Provider, id)
        .await?
        .ok_or(ServiceError::NotFound("share"))?;
    tx.commit().await?;
    Ok(updated)
}

/// The effective status of a share now (expiry computed on read).
pub fn effective_status(share: &ShareRecord, now: OffsetDateTime) -> ShareStatus {
    share.status.effective(share.ends_at, now)
}
