//! An organization's offerings (SPEC §4.4): a model it publishes as `<org_slug>/<code>`, with
//! default prices and the two approvals.
//!
//! Contract:
//! - Everyone in the org may see its offerings; owner/admin create, edit, publish and delete
//!   them, owner/manager set their prices (a new price clears the economic approval).
//! - Every write records one event in the org's own chain.
//! - Deleting an offering is refused while one of its shares is proposed or active; due expiries
//!   are stored first ([`crate::shares`]), and its ended shares go with it.
//! - Prices are bounded by [`MAX_PRICE_MICROS_PER_1K`], here and in a share's terms.

use crate::Ctx;
use crate::audit::AuditEntry;
use crate::paging::{Page, PageRequest, page_of};
use crate::{Deps, ServiceError};
use inventiv_domain::ErrorCode;
use inventiv_domain::offering::Visibility;
use inventiv_domain::{
    Action, Activation, DisplayName, Flag, ModelId, OfferingId, OrgId, Scope, Slug, UserId,
    authorize,
};
use inventiv_persistence::repo::audit as audit_repo;
use inventiv_persistence::repo::offerings::{self, OfferingFields, OfferingRecord};
use inventiv_persistence::repo::{models, shares};
use inventiv_persistence::{Constraint, StoreError, Tx};
use serde_json::json;
use time::OffsetDateTime;

/// An offering: a model an org publishes as `<org_slug>/<code>`, with its default prices.
#[derive(Debug, Clone)]
pub struct Offering {
    pub id: OfferingId,
    pub organization_id: OrgId,
    pub organization_slug: String,
    pub model_id: ModelId,
    /// The underlying model's id at the upstream (e.g. a Hugging Face repo id).
    pub upstream_model: String,
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    pub visibility: String,
    /// Published.
    pub is_active: bool,
    pub default_price_input_micros_per_1k: i64,
    pub default_price_output_micros_per_1k: i64,
    pub activation: Activation,
    /// Whether the underlying model may serve traffic (an org model needs its own two
    /// approvals; a public model always may).
    pub model_operational: bool,
    pub created_at: OffsetDateTime,
}

impl Offering {
    /// Its own two approvals, and its org model's (SPEC §1 v2).
    pub fn operational(&self) -> bool {
        self.activation.operational(false) && self.model_operational
    }

    /// What it lacks to be operational: `tech`, `eco`, and `model` while its org model is
    /// not operational.
    pub fn missing_activation(&self) -> Vec<&'static str> {
        let mut missing: Vec<&'static str> = self
            .activation
            .missing(false)
            .iter()
            .map(|f| f.as_str())
            .collect();
        if !self.model_operational {
            missing.push("model");
        }
        missing
    }
}

impl From<OfferingRecord> for Offering {
    fn from(o: OfferingRecord) -> Self {
        let model_operational = o.model_operational();
        Offering {
            id: o.id,
            organization_id: o.organization_id,
            organization_slug: o.organization_slug,
            model_id: o.model_id,
            upstream_model: o.upstream_model,
            code: o.code,
            name: o.name,
            description: o.description,
            visibility: o.visibility,
            is_active: o.is_active,
            default_price_input_micros_per_1k: o.default_price_input_micros_per_1k,
            default_price_output_micros_per_1k: o.default_price_output_micros_per_1k,
            activation: o.activation,
            model_operational,
            created_at: o.created_at,
        }
    }
}

/// Highest price accepted, in micro-EUR per 1k tokens: 10 € per 1k tokens (10,000 € per
/// million), several times the dearest public model, so a slipped digit is refused instead of
/// billed. See docs/decisions.md.
pub const MAX_PRICE_MICROS_PER_1K: i64 = 10_000_000;

/// `value` as the price in `field`, if within the bound.
pub(crate) fn price(field: &str, value: i64) -> Result<i64, ServiceError> {
    if (0..=MAX_PRICE_MICROS_PER_1K).contains(&value) {
        Ok(value)
    } else {
        Err(ServiceError::invalid(
            field,
            "0 to 10^7 micro-EUR (10 EUR) per 1k tokens",
        ))
    }
}

/// The locks every change of offering `id` takes first, in this order: `org`'s audit chain
/// head, as every share write does (a delete may cascade to ended share rows, and a share
/// write holding the head must not wait on those rows the other way round), then the
/// offering's row. Changes of one offering then decide one after the other, each from what
/// the previous one wrote.
async fn lock_for_change(tx: &Tx, org: OrgId, id: OfferingId) -> Result<(), StoreError> {
    audit_repo::lock_heads(tx, &[org]).await?;
    offerings::lock(tx, org, id).await
}

/// Records `action` on offering `id` in `org`'s chain.
async fn audit(
    tx: &Tx,
    ctx: &Ctx,
    org: OrgId,
    id: OfferingId,
    action: &'static str,
    after: serde_json::Value,
) -> Result<(), ServiceError> {
    let entry = AuditEntry {
        action,
        organization: Some(org),
        target_type: "offering",
        target_id: id.to_string(),
        before: None,
        after: Some(after),
    };
    ctx.record(tx, entry).await?;
    Ok(())
}

/// Reads offering `id` back inside `tx`, as written, for the answer; then commits.
async fn commit(tx: Tx, org: OrgId, id: OfferingId) -> Result<Offering, ServiceError> {
    let offering = offerings::find(&tx, org, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("offering"))?;
    tx.commit().await?;
    Ok(offering.into())
}

/// `GET …/offerings`: this org's offerings, a page at a time.
pub async fn list(
    deps: &Deps,
    ctx: &Ctx,
    page: &PageRequest,
) -> Result<Page<Offering>, ServiceError> {
    let (org, _) = ctx.current_org(Action::ViewOfferings)?;
    let (limit, after) = page.parse::<OfferingId>()?;
    let rows = offerings::list(&deps.db, org, after, limit + 1)
        .await?
        .into_iter()
        .map(Offering::from)
        .collect();
    Ok(page_of(rows, limit, |o| o.id))
}

/// `POST …/offerings` input.
#[derive(Debug, Clone)]
pub struct NewOffering {
    pub model_id: ModelId,
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    pub visibility: Option<String>,
    /// Default prices (input, output) in micro-EUR per 1k tokens; 0 when absent.
    pub default_prices: (Option<i64>, Option<i64>),
}

fn fields(
    code: &str,
    name: &str,
    description: Option<String>,
    visibility: Option<String>,
    is_active: bool,
) -> Result<OfferingFields, ServiceError> {
    let code = Slug::parse(code).map_err(|e| ServiceError::invalid("code", e.reason))?;
    let name = DisplayName::parse("name", name)?.into_inner();
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 1000)
    {
        return Err(ServiceError::invalid(
            "description",
            "at most 1000 characters",
        ));
    }
    let visibility: Visibility = visibility
        .as_deref()
        .map(str::parse)
        .transpose()?
        .unwrap_or_default();
    Ok(OfferingFields {
        code: code.as_str().to_owned(),
        name,
        description,
        visibility: visibility.as_str().to_owned(),
        is_active,
    })
}

fn code_taken(err: StoreError) -> ServiceError {
    match err {
        StoreError::Conflict(Constraint::OfferingCode) => ServiceError::Conflict {
            code: ErrorCode::CodeTaken,
            message: "This organization already has an offering with this code.".to_owned(),
        },
        other => other.into(),
    }
}

/// Owner/admin. Starts unpublished and non-operational, at the given default prices (0 when
/// absent).
pub async fn create(deps: &Deps, ctx: &Ctx, input: NewOffering) -> Result<Offering, ServiceError> {
    let (org, _) = ctx.current_org(Action::ManageOffering)?;
    let f = fields(
        &input.code,
        &input.name,
        input.description,
        input.visibility,
        false,
    )?;
    let prices = (
        price(
            "default_price_input_micros_per_1k",
            input.default_prices.0.unwrap_or(0),
        )?,
        price(
            "default_price_output_micros_per_1k",
            input.default_prices.1.unwrap_or(0),
        )?,
    );
    models::find(&deps.db, Scope::Org(org), input.model_id)
        .await?
        .ok_or_else(|| {
            ServiceError::invalid("model_id", "no model with this id in this workspace")
        })?;
    let id = OfferingId::new();
    let tx = ctx.begin_in_workspace(deps).await?;
    offerings::insert(&tx, org, id, input.model_id, &f, prices, ctx.now)
        .await
        .map_err(code_taken)?;
    let after = json!({"code": f.code, "name": f.name, "default_price_input_micros_per_1k": prices.0, "default_price_output_micros_per_1k": prices.1});
    audit(&tx, ctx, org, id, "offering.created", after).await?;
    commit(tx, org, id).await
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

/// `PATCH …/offerings/{id}`: each part of the change is authorized on its own (fields,
/// prices) and audited as its own event.
pub async fn update(
    deps: &Deps,
    ctx: &Ctx,
    id: OfferingId,
    change: OfferingChange,
) -> Result<Offering, ServiceError> {
    let (org, _) = ctx.current_org(Action::ViewOfferings)?;
    let tx = deps.db.begin_write().await?;
    // Read under the locks: a field the change leaves alone is written back as it is now,
    // not as it was before a concurrent change (which could re-publish what was withdrawn).
    lock_for_change(&tx, org, id).await?;
    let before = offerings::find(&tx, org, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("offering"))?;
    let touches_fields = change.code.is_some()
        || change.name.is_some()
        || change.description.is_some()
        || change.visibility.is_some()
        || change.is_active.is_some();
    if touches_fields {
        authorize(&ctx.actor(), Action::ManageOffering)?;
    }
    let prices = match change.prices {
        Some((input, output)) => {
            authorize(&ctx.actor(), Action::SetPrice)?;
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
    if touches_fields {
        write_fields(&tx, ctx, &before, &f).await?;
    }
    if let Some(prices) = prices {
        write_prices(&tx, ctx, org, id, prices).await?;
    }
    commit(tx, org, id).await
}

/// Stores the offering's new fields `f`: a publication, an unpublication or an edit.
async fn write_fields(
    tx: &Tx,
    ctx: &Ctx,
    before: &OfferingRecord,
    f: &OfferingFields,
) -> Result<(), ServiceError> {
    let (org, id) = (before.organization_id, before.id);
    offerings::update_fields(tx, org, id, f, ctx.now)
        .await
        .map_err(code_taken)?;
    let action = match (before.is_active, f.is_active) {
        (false, true) => "offering.published",
        (true, false) => "offering.unpublished",
        _ => "offering.updated",
    };
    let after = json!({"code": f.code, "is_active": f.is_active});
    audit(tx, ctx, org, id, action, after).await
}

/// Stores new prices; a new price needs a new economic approval.
async fn write_prices(
    tx: &Tx,
    ctx: &Ctx,
    org: OrgId,
    id: OfferingId,
    prices: (i64, i64),
) -> Result<(), ServiceError> {
    offerings::set_prices(tx, org, id, prices, ctx.now).await?;
    let after = json!({"price_input_micros_per_1k": prices.0, "price_output_micros_per_1k": prices.1, "eco_cleared": true});
    audit(tx, ctx, org, id, "offering.price_changed", after).await
}

/// Owner/admin: delete an offering. Refused (409 `offering_in_use`) while one of its shares
/// is proposed or active; its ended shares go with it.
pub async fn delete(deps: &Deps, ctx: &Ctx, id: OfferingId) -> Result<(), ServiceError> {
    let (org, _) = ctx.current_org(Action::ViewOfferings)?;
    let offering = offerings::find(&deps.db, org, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("offering"))?;
    authorize(&ctx.actor(), Action::ManageOffering)?;
    let now = ctx.now;
    for due in shares::live_of_offering(&deps.db, org, id)
        .await?
        .into_iter()
        .filter(|s| s.state.due_to_expire(now))
    {
        crate::shares::settle_expiry(deps, due).await?;
    }
    let tx = deps.db.begin_write().await?;
    // Locking the offering row (PostgreSQL) before looking at its shares: a proposal being
    // inserted meanwhile holds a key-share lock on it, so it is either seen below or waits
    // for this delete and then fails on the foreign key, never silently cascaded away.
    lock_for_change(&tx, org, id).await?;
    let live = shares::live_of_offering(&tx, org, id).await?;
    if !live.is_empty() {
        return Err(ServiceError::Conflict {
            code: ErrorCode::OfferingInUse,
            message: format!(
                "{} share(s) of this offering are proposed or active; revoke them first.",
                live.len()
            ),
        });
    }
    if !offerings::delete(&tx, org, id).await? {
        return Err(ServiceError::not_found("offering"));
    }
    let after = json!({"code": offering.code});
    audit(&tx, ctx, org, id, "offering.deleted", after).await?;
    tx.commit().await?;
    Ok(())
}

/// `POST …/offerings/{id}/activation`: tech by owner/admin, eco by owner/manager; with the
/// org's `require_distinct_activators`, one user may not hold both flags (409).
pub async fn set_activation(
    deps: &Deps,
    ctx: &Ctx,
    id: OfferingId,
    flag: Flag,
    active: bool,
) -> Result<Offering, ServiceError> {
    let (org, _) = ctx.current_org(Action::ViewOfferings)?;
    offerings::find(&deps.db, org, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("offering"))?;
    crate::activation::set::<OfferingRecord>(deps, ctx, org, id, flag, active)
        .await
        .map(Offering::from)
}

impl crate::activation::Activatable for OfferingRecord {
    type Id = OfferingId;
    const KIND: &'static str = "offering";
    const EVENT: &'static str = "offering.activation_changed";
    const AUDITS_BEFORE: bool = false;

    async fn lock(tx: &Tx, org: OrgId, id: OfferingId) -> Result<(), StoreError> {
        lock_for_change(tx, org, id).await
    }

    async fn find(tx: &Tx, org: OrgId, id: OfferingId) -> Result<Option<Self>, StoreError> {
        offerings::find(tx, org, id).await
    }

    fn activation(&self) -> &Activation {
        &self.activation
    }

    async fn set_flag(
        tx: &Tx,
        org: OrgId,
        id: OfferingId,
        flag: Flag,
        by: Option<UserId>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        offerings::set_flag(tx, org, id, flag, by, now).await
    }
}
