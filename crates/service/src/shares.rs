//! Shares (SPEC §4.4 v2): two-party contracts by which a provider org lets a consumer org call
//! one of its offerings at per-token prices.
//!
//! Contract:
//! - The transitions (propose, accept, decline, pause, resume, revoke, new terms, expiry) are
//!   decided by `inventiv_domain::ShareState` and written as compare-and-sets: a write that
//!   lost a race answers 409 instead of overwriting.
//! - Every change of the contract records its event in BOTH parties' chains (`audit_both`),
//!   after locking both chain heads in one order (`lock_parties`), and is decided from the
//!   share as re-read under those locks; the other side sees which org acted, never who. The
//!   provider's own approvals ([`set_activation`]) are recorded in its chain only.
//! - A due expiry (its end passed, or 30 days unanswered) is stored before a share is read for
//!   a change or a list, so what is answered is what is stored.
//! - The consumer's figures (cap, this month's spend) are in the consumer's view only.

use crate::Ctx;
use crate::audit::{AuditActor, AuditEntry, record};
use crate::offerings::price;
use crate::paging::{Page, PageRequest, page_of};
use crate::{Deps, RequestMeta, ServiceError};
use inventiv_domain::ErrorCode;
use inventiv_domain::{
    Action, Activation, Flag, OfferingId, OrgId, ShareError, ShareId, ShareParty, ShareState,
    ShareStatus, Slug, UserId, authorize,
};
use inventiv_persistence::repo::audit as audit_repo;
use inventiv_persistence::repo::organizations::OrgRecord;
use inventiv_persistence::repo::shares::{self, NewShare, ShareRecord};
use inventiv_persistence::repo::{offerings, organizations};
use inventiv_persistence::{Constraint, StoreError, Tx};
use serde_json::json;
use time::OffsetDateTime;

/// A share as either party sees it. The consumer's figures (`monthly_cap_micros`, this
/// month's spend and reservations) are for the consumer's view only.
#[derive(Debug, Clone)]
pub struct Share {
    pub id: ShareId,
    pub provider_organization_id: OrgId,
    pub provider_slug: String,
    pub provider_name: String,
    pub consumer_organization_id: OrgId,
    pub consumer_slug: String,
    pub consumer_name: String,
    pub offering_id: OfferingId,
    pub offering_code: String,
    /// The offering is published, and its own two approvals.
    pub offering_published: bool,
    pub offering_activation: Activation,
    /// The offering's model may serve traffic (an org model needs its own approvals).
    pub offering_model_operational: bool,
    /// Status (as stored; `ShareState::effective` for a due expiry), versions, pauses, dates.
    pub state: ShareState,
    pub price_input_micros_per_1k: i64,
    pub price_output_micros_per_1k: i64,
    pub monthly_cap_micros: Option<i64>,
    pub spent_this_month_micros: i64,
    pub reserved_micros: i64,
    /// The provider's two approvals.
    pub activation: Activation,
}

impl From<ShareRecord> for Share {
    fn from(s: ShareRecord) -> Self {
        Share {
            id: s.id,
            provider_organization_id: s.provider_organization_id,
            provider_slug: s.provider_slug,
            provider_name: s.provider_name,
            consumer_organization_id: s.consumer_organization_id,
            consumer_slug: s.consumer_slug,
            consumer_name: s.consumer_name,
            offering_id: s.offering_id,
            offering_code: s.offering_code,
            offering_published: s.offering_published,
            offering_activation: s.offering_activation,
            offering_model_operational: s.offering_model_operational,
            state: s.state,
            price_input_micros_per_1k: s.price_input_micros_per_1k,
            price_output_micros_per_1k: s.price_output_micros_per_1k,
            monthly_cap_micros: s.monthly_cap_micros,
            spent_this_month_micros: s.spent_this_month_micros,
            reserved_micros: s.reserved_micros,
            activation: s.activation,
        }
    }
}

impl Share {
    /// SPEC §4.4: accepted at the current version, in validity, paused by neither side, both
    /// provider approvals, and the offering published and operational (its org model's
    /// approvals included, SPEC §1 v2).
    pub fn operational(&self, now: OffsetDateTime) -> bool {
        self.state.carries_traffic(now)
            && self.activation.operational(false)
            && self.offering_published
            && self.offering_activation.operational(false)
            && self.offering_model_operational
    }

    /// What the share lacks to be operational (SPEC §4.4): the provider's `tech` and `eco`
    /// approvals, and `consumer_acceptance` of the current contract version.
    pub fn missing_activation(&self, now: OffsetDateTime) -> Vec<&'static str> {
        self.state.missing_activation(&self.activation, now)
    }
}

/// The other org's view of who acted: the org, never a user, session or IP.
fn org_ref(id: OrgId, slug: &str) -> serde_json::Value {
    json!({"id": id.to_string(), "slug": slug})
}

fn party_org(share: &ShareRecord, side: ShareParty) -> (OrgId, &str) {
    match side {
        ShareParty::Provider => (share.provider_organization_id, &share.provider_slug),
        ShareParty::Consumer => (share.consumer_organization_id, &share.consumer_slug),
    }
}

/// Records `action` in both orgs' chains (the caller locked both heads first, see
/// [`lock_parties`]). The acting side's event names the user, session and IP as every event
/// does; the other side's names only the acting org. `after` is what both may see;
/// `own_extra` is merged into the acting side's event only (e.g. the consumer's cap).
async fn audit_both(
    tx: &Tx,
    deps: &Deps,
    actor: Option<(&Ctx, ShareParty)>,
    share: &ShareRecord,
    action: &'static str,
    after: serde_json::Value,
    own_extra: Option<serde_json::Value>,
) -> Result<(), ServiceError> {
    let now = deps.clock.now();
    let by = actor.map(|(_, side)| {
        let (id, slug) = party_org(share, side);
        org_ref(id, slug)
    });
    for side in [ShareParty::Provider, ShareParty::Consumer] {
        let (chain, _) = party_org(share, side);
        let mut doc = after.clone();
        if let Some(map) = doc.as_object_mut() {
            map.insert("side".to_owned(), json!(side.as_str()));
            map.insert(
                "by_organization".to_owned(),
                by.clone().unwrap_or(json!(null)),
            );
        }
        let (who, meta) = match actor {
            Some((ctx, acting)) if acting == side => {
                if let (Some(map), Some(extra)) = (
                    doc.as_object_mut(),
                    own_extra.as_ref().and_then(|e| e.as_object()),
                ) {
                    map.extend(extra.clone());
                }
                (ctx.audit_actor(), ctx.meta.clone())
            }
            // The counterparty (or the system): no person, no session, no address. The
            // request id stays: it is ours, not theirs, and links the two events.
            Some((ctx, _)) => (
                AuditActor::default(),
                RequestMeta {
                    request_id: ctx.meta.request_id.clone(),
                    ip: None,
                    user_agent: None,
                },
            ),
            None => (AuditActor::default(), RequestMeta::default()),
        };
        let entry = AuditEntry {
            action,
            organization: Some(chain),
            target_type: "share",
            target_id: share.id.to_string(),
            before: None,
            after: Some(doc),
        };
        record(tx, now, who, &meta, entry).await?;
    }
    Ok(())
}

/// Records `action`, done by the request `by` (its context, its side), in both chains (see
/// [`audit_both`]); commits; returns `share`, as read back after the write.
async fn commit(
    tx: Tx,
    deps: &Deps,
    by: (&Ctx, ShareParty),
    share: ShareRecord,
    action: &'static str,
    after: serde_json::Value,
) -> Result<ShareRecord, ServiceError> {
    audit_both(&tx, deps, Some(by), &share, action, after, None).await?;
    tx.commit().await?;
    Ok(share)
}

/// Opens a write transaction, locks both parties' chain heads (always in the same order), and
/// re-reads the share under them. Every write of a share holds those locks, so the share
/// returned is the share as it stays until commit: the caller decides and audits from it, not
/// from what it read before a concurrent change landed.
async fn lock_parties(deps: &Deps, share: &ShareRecord) -> Result<(Tx, ShareRecord), ServiceError> {
    let tx = deps.db.begin_write().await?;
    audit_repo::lock_heads(
        &tx,
        &[
            share.provider_organization_id,
            share.consumer_organization_id,
        ],
    )
    .await?;
    let fresh = shares::find_either(&tx, share.provider_organization_id, share.id)
        .await?
        .ok_or_else(|| ServiceError::not_found("share"))?;
    Ok((tx, fresh))
}

/// Stores `expired` on a live share that is due (its end, or 30 days unanswered), with the
/// event in both chains. Returns the share as it now is.
pub(crate) async fn settle_expiry(
    deps: &Deps,
    share: ShareRecord,
) -> Result<ShareRecord, ServiceError> {
    let now = deps.clock.now();
    if !share.state.due_to_expire(now) {
        return Ok(share);
    }
    let (tx, share) = lock_parties(deps, &share).await?;
    if !share.state.due_to_expire(now) {
        // New terms (a new deadline) or another settlement landed meanwhile.
        return Ok(share);
    }
    let (org, _) = party_org(&share, ShareParty::Provider);
    if shares::set_status(
        &tx,
        org,
        share.id,
        share.state.status,
        ShareStatus::Expired,
        now,
    )
    .await?
    {
        let reason = if share.state.ends_at.is_some_and(|end| now >= end) {
            "ended"
        } else {
            "unanswered"
        };
        audit_both(
            &tx,
            deps,
            None,
            &share,
            "share.expired",
            json!({"from": share.state.status.as_str(), "reason": reason}),
            None,
        )
        .await?;
    }
    let fresh = shares::find_either(&tx, org, share.id)
        .await?
        .ok_or_else(|| ServiceError::not_found("share"))?;
    tx.commit().await?;
    Ok(fresh)
}

/// `GET …/shares?side=`: the shares this org gives (provider) or receives (consumer). Due
/// expiries of this org's shares are stored first, so what is listed is what is stored.
pub async fn list(
    deps: &Deps,
    ctx: &Ctx,
    side: ShareParty,
    page: &PageRequest,
) -> Result<Page<Share>, ServiceError> {
    let (org, _) = ctx.current_org(Action::ViewShares)?;
    let (limit, before) = page.parse::<ShareId>()?;
    let now = ctx.now;
    for due in shares::live_of(&deps.db, org)
        .await?
        .into_iter()
        .filter(|s| s.state.due_to_expire(now))
    {
        settle_expiry(deps, due).await?;
    }
    let mut listed = shares::list(&deps.db, org, side, before, limit + 1).await?;
    let month = inventiv_persistence::repo::spend::month_of(now);
    shares::with_spend(&deps.db, org, &mut listed, month).await?;
    let listed = listed.into_iter().map(Share::from).collect();
    Ok(page_of(listed, limit, |s| s.id))
}

/// `POST …/shares` input.
#[derive(Debug, Clone)]
pub struct NewGrant {
    pub offering_id: OfferingId,
    pub consumer_slug: String,
    pub prices: (i64, i64),
    pub ends_at: Option<OffsetDateTime>,
}

/// What a share event states of the terms: the prices, and the event's own `fields`.
fn terms_json<const N: usize>(
    prices: (i64, i64),
    fields: [(&str, serde_json::Value); N],
) -> serde_json::Value {
    let mut doc =
        json!({"price_input_micros_per_1k": prices.0, "price_output_micros_per_1k": prices.1});
    if let Some(map) = doc.as_object_mut() {
        map.extend(fields.map(|(key, value)| (key.to_owned(), value)));
    }
    doc
}

/// Propose an offering to another org (owner/admin of the provider): status `proposed`, until
/// the consumer accepts.
pub async fn grant(deps: &Deps, ctx: &Ctx, input: NewGrant) -> Result<Share, ServiceError> {
    let (provider, _) = ctx.current_org(Action::ManageShare)?;
    let prices = (
        price("price_input_micros_per_1k", input.prices.0)?,
        price("price_output_micros_per_1k", input.prices.1)?,
    );
    let now = ctx.now;
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
    let consumer = consumer(deps, provider, &input.consumer_slug).await?;
    // A live share that is due must not block a new proposal: store its expiry first.
    if let Some(live) = shares::live_for(&deps.db, provider, consumer.id, input.offering_id).await?
    {
        settle_expiry(deps, live).await?;
    }
    let tx = ctx.begin_in_workspace(deps).await?;
    // The consumer org is held too: deleted meanwhile, it is answered as an unknown slug.
    if !organizations::hold(&tx, consumer.id).await? {
        return Err(unknown_consumer());
    }
    audit_repo::lock_heads(&tx, &[provider, consumer.id]).await?;
    let proposal = Proposal {
        provider,
        consumer: &consumer,
        offering: input.offering_id,
        prices,
        ends_at: input.ends_at,
    };
    let share = propose_in(&tx, deps, ctx, proposal).await?;
    tx.commit().await?;
    Ok(Share::from(share))
}

/// What [`propose_in`] proposes: validated prices, an end in the future (or none).
pub(crate) struct Proposal<'a> {
    pub provider: OrgId,
    pub consumer: &'a OrgRecord,
    pub offering: OfferingId,
    pub prices: (i64, i64),
    pub ends_at: Option<OffsetDateTime>,
}

/// The share-proposal use case inside the caller's transaction `tx`, which has locked both
/// parties' chain heads ([`audit_repo::lock_heads`]): stores the proposal (status `proposed`,
/// version 1) and records `share.proposed` in both chains, as done by `ctx` for the provider.
/// Used by [`grant`] and by the approval of an access request ([`crate::access_requests`]).
pub(crate) async fn propose_in(
    tx: &Tx,
    deps: &Deps,
    ctx: &Ctx,
    p: Proposal<'_>,
) -> Result<ShareRecord, ServiceError> {
    let now = ctx.now;
    let id = ShareId::new();
    let state = ShareState::proposed(now, p.ends_at);
    let new = NewShare {
        id,
        consumer: p.consumer.id,
        offering: p.offering,
        prices: p.prices,
        starts_at: now,
        ends_at: p.ends_at,
        proposal_expires_at: state.proposal_expires_at,
        now,
    };
    shares::insert(tx, p.provider, new)
        .await
        .map_err(share_exists)?;
    let share = shares::find(tx, p.provider, ShareParty::Provider, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("share"))?;
    let after = terms_json(
        p.prices,
        [
            ("offering_id", json!(p.offering.to_string())),
            ("consumer", org_ref(p.consumer.id, p.consumer.slug.as_str())),
            ("contract_version", json!(1)),
            ("ends_at", json!(p.ends_at.map(crate::audit::timestamp))),
        ],
    );
    let by = Some((ctx, ShareParty::Provider));
    audit_both(tx, deps, by, &share, "share.proposed", after, None).await?;
    Ok(share)
}

/// The org a proposal is for, by its slug: another org than the provider.
async fn consumer(deps: &Deps, provider: OrgId, slug: &str) -> Result<OrgRecord, ServiceError> {
    let slug = Slug::parse(slug)
        .map_err(|e| ServiceError::invalid("consumer_organization_slug", e.reason))?;
    let consumer = organizations::find_by_slug(&deps.db, &slug)
        .await?
        .ok_or_else(unknown_consumer)?;
    if consumer.id == provider {
        return Err(ServiceError::invalid(
            "consumer_organization_slug",
            "an organization cannot share with itself",
        ));
    }
    Ok(consumer)
}

fn unknown_consumer() -> ServiceError {
    ServiceError::invalid(
        "consumer_organization_slug",
        "no organization with this slug",
    )
}

fn share_exists(err: StoreError) -> ServiceError {
    match err {
        StoreError::Conflict(Constraint::ShareLive) => ServiceError::Conflict {
            code: ErrorCode::ShareExists,
            message: "A live (proposed or active) share of this offering with this organization exists; change its terms or revoke it.".to_owned(),
        },
        other => other.into(),
    }
}

/// The share `id` as seen by the current org, which side the org is on, with any due expiry
/// stored. 404 for an org that is not a party.
async fn party_share(
    deps: &Deps,
    ctx: &Ctx,
    id: ShareId,
) -> Result<(OrgId, ShareParty, ShareRecord), ServiceError> {
    let (org, _) = ctx.current_org(Action::ViewShares)?;
    let share = shares::find_either(&deps.db, org, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("share"))?;
    let side = if share.provider_organization_id == org {
        ShareParty::Provider
    } else {
        ShareParty::Consumer
    };
    let share = settle_expiry(deps, share).await?;
    Ok((org, side, share))
}

fn only(side: ShareParty, wanted: ShareParty, what: &str) -> Result<(), ServiceError> {
    if side == wanted {
        return Ok(());
    }
    let code = match wanted {
        ShareParty::Provider => ErrorCode::ProviderOnly,
        ShareParty::Consumer => ErrorCode::ConsumerOnly,
    };
    Err(ServiceError::Forbidden {
        code,
        message: format!("Only the {} of a share may {what}.", wanted.as_str()),
    })
}

fn share_error(e: ShareError) -> ServiceError {
    match e {
        ShareError::InvalidState { .. } => ServiceError::Conflict {
            code: ErrorCode::InvalidState,
            message: format!("{e}."),
        },
        ShareError::ContractChanged { current, .. } => ServiceError::Conflict {
            code: ErrorCode::ContractChanged,
            message: format!(
                "The terms changed: the contract is now at version {current}; review it and accept that version."
            ),
        },
    }
}

fn changed_meanwhile() -> ServiceError {
    ServiceError::Conflict {
        code: ErrorCode::InvalidState,
        message: "The share changed meanwhile; reload.".to_owned(),
    }
}

/// Re-reads the share inside `tx` (after the write) for the response, with the consumer's
/// spend when `org` is the consumer.
async fn reload(
    deps: &Deps,
    tx: &Tx,
    org: OrgId,
    id: ShareId,
) -> Result<ShareRecord, ServiceError> {
    let mut share = shares::find_either(tx, org, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("share"))?;
    let month = inventiv_persistence::repo::spend::month_of(deps.clock.now());
    shares::with_spend(tx, org, std::slice::from_mut(&mut share), month).await?;
    Ok(share)
}

/// Consumer owner/manager: accept the current terms. `contract_version`, when given, must be
/// the current one (else 409 `contract_changed`); the write is a compare-and-set on it, so an
/// acceptance racing a change of terms fails instead of accepting terms nobody read.
pub async fn accept(
    deps: &Deps,
    ctx: &Ctx,
    id: ShareId,
    contract_version: Option<i64>,
) -> Result<Share, ServiceError> {
    let (org, side, share) = party_share(deps, ctx, id).await?;
    only(side, ShareParty::Consumer, "accept it")?;
    authorize(&ctx.actor(), Action::AcceptShare)?;
    let now = ctx.now;
    let (tx, share) = lock_parties(deps, &share).await?;
    let version = share
        .state
        .accept(contract_version, now)
        .map_err(share_error)?;
    if !shares::accept(&tx, org, id, version, ctx.user_id(), now).await? {
        // Lost a race: tell the consumer precisely why, from what is stored now.
        let current = reload(deps, &tx, org, id).await?;
        return Err(match current.state.accept(Some(version), now) {
            Err(e) => share_error(e),
            Ok(_) => changed_meanwhile(),
        });
    }
    let updated = reload(deps, &tx, org, id).await?;
    let prices = (
        updated.price_input_micros_per_1k,
        updated.price_output_micros_per_1k,
    );
    let after = terms_json(prices, [("contract_version", json!(version))]);
    let by = (ctx, ShareParty::Consumer);
    commit(tx, deps, by, updated, "share.accepted", after)
        .await
        .map(Share::from)
}

/// Consumer owner/manager: decline a proposal (terminal).
pub async fn decline(deps: &Deps, ctx: &Ctx, id: ShareId) -> Result<Share, ServiceError> {
    let (org, side, share) = party_share(deps, ctx, id).await?;
    only(side, ShareParty::Consumer, "decline it")?;
    authorize(&ctx.actor(), Action::AcceptShare)?;
    let now = ctx.now;
    let (tx, share) = lock_parties(deps, &share).await?;
    let to = share.state.decline(now).map_err(share_error)?;
    if !shares::set_status(&tx, org, id, share.state.status, to, now).await? {
        return Err(changed_meanwhile());
    }
    let updated = reload(deps, &tx, org, id).await?;
    let after = json!({"from": share.state.status.as_str(), "contract_version": share.state.contract_version});
    commit(tx, deps, (ctx, side), updated, "share.declined", after)
        .await
        .map(Share::from)
}

/// What a share status request asks.
#[derive(Debug, Clone, Copy)]
pub enum ShareTransition {
    Pause,
    Resume,
    Revoke,
}

/// Pause, resume (each side its own flag) or revoke (either side, terminal). Provider:
/// owner/admin; consumer: owner/admin/manager.
pub async fn transition(
    deps: &Deps,
    ctx: &Ctx,
    id: ShareId,
    change: ShareTransition,
) -> Result<Share, ServiceError> {
    let (org, side, share) = party_share(deps, ctx, id).await?;
    let action = match side {
        ShareParty::Provider => Action::ManageShare,
        ShareParty::Consumer => Action::ControlReceivedShare,
    };
    authorize(&ctx.actor(), action)?;
    let now = ctx.now;
    let (tx, share) = lock_parties(deps, &share).await?;
    let (event, after) = match change {
        ShareTransition::Pause | ShareTransition::Resume => {
            let paused = matches!(change, ShareTransition::Pause);
            share
                .state
                .set_paused(side, paused, now)
                .map_err(share_error)?;
            if !shares::set_paused(&tx, org, side, id, paused, now).await? {
                return Err(changed_meanwhile());
            }
            let event = if paused {
                "share.paused"
            } else {
                "share.resumed"
            };
            (
                event,
                json!({"flag": format!("{}_paused", side.as_str()), "paused": paused}),
            )
        }
        ShareTransition::Revoke => {
            let to = share.state.revoke(now).map_err(share_error)?;
            if !shares::set_status(&tx, org, id, share.state.status, to, now).await? {
                return Err(changed_meanwhile());
            }
            (
                "share.revoked",
                json!({"from": share.state.status.as_str(), "to": to.as_str()}),
            )
        }
    };
    let updated = reload(deps, &tx, org, id).await?;
    commit(tx, deps, (ctx, side), updated, event, after)
        .await
        .map(Share::from)
}

/// `PATCH …/shares/{id}` input. Provider: prices and `ends_at`; consumer: its monthly cap.
#[derive(Debug, Clone, Default)]
pub struct ShareChange {
    pub price_input: Option<i64>,
    pub price_output: Option<i64>,
    /// `Some(None)` removes the end.
    pub ends_at: Option<Option<OffsetDateTime>>,
    /// `Some(None)` removes the cap.
    pub monthly_cap_micros: Option<Option<i64>>,
}

/// Largest monthly cap accepted: 10^15 µ€ (one billion euros). Far above any real budget, and
/// sums of a month's charges stay far from `i64::MAX`.
pub const MAX_CAP_MICROS: i64 = 1_000_000_000_000_000;

/// `PATCH …/shares/{id}`: the provider changes the terms, the consumer its cap; each side
/// only its own part.
pub async fn update(
    deps: &Deps,
    ctx: &Ctx,
    id: ShareId,
    change: ShareChange,
) -> Result<Share, ServiceError> {
    let (org, side, share) = party_share(deps, ctx, id).await?;
    let terms =
        change.price_input.is_some() || change.price_output.is_some() || change.ends_at.is_some();
    if terms {
        only(side, ShareParty::Provider, "change its prices or end")?;
    }
    if change.monthly_cap_micros.is_some() {
        only(side, ShareParty::Consumer, "set its spend cap")?;
    }
    if !terms && change.monthly_cap_micros.is_none() {
        return Err(ServiceError::invalid(
            "body",
            "nothing to change: prices or ends_at (provider), monthly_cap_micros (consumer)",
        ));
    }
    match side {
        ShareParty::Provider => set_terms(deps, ctx, org, share, change).await,
        ShareParty::Consumer => {
            set_cap(deps, ctx, org, share, change.monthly_cap_micros.flatten()).await
        }
    }
    .map(Share::from)
}

/// Provider owner/manager: new prices or end → next contract version, back to `proposed`,
/// economic approval cleared.
async fn set_terms(
    deps: &Deps,
    ctx: &Ctx,
    org: OrgId,
    share: ShareRecord,
    change: ShareChange,
) -> Result<ShareRecord, ServiceError> {
    authorize(&ctx.actor(), Action::SetPrice)?;
    let now = ctx.now;
    let (tx, share) = lock_parties(deps, &share).await?;
    let (prices, ends_at) = asked_terms(&share, &change, now)?;
    let current = (
        share.price_input_micros_per_1k,
        share.price_output_micros_per_1k,
    );
    if prices == current && ends_at == share.state.ends_at {
        // Same terms: no new version for the consumer to accept.
        return Ok(share);
    }
    let next = share.state.new_terms(ends_at, now).map_err(share_error)?;
    if !shares::set_terms(
        &tx,
        org,
        share.id,
        share.state.contract_version,
        prices,
        &next,
        now,
    )
    .await?
    {
        return Err(changed_meanwhile());
    }
    let updated = reload(deps, &tx, org, share.id).await?;
    let after = terms_json(
        prices,
        [
            ("contract_version", json!(next.contract_version)),
            ("ends_at", json!(ends_at.map(crate::audit::timestamp))),
            ("from_status", json!(share.state.status.as_str())),
            ("eco_cleared", json!(true)),
        ],
    );
    let event = if prices == current {
        "share.terms_changed"
    } else {
        "share.price_changed"
    };
    commit(tx, deps, (ctx, ShareParty::Provider), updated, event, after).await
}

/// The prices and end `change` asks for, the share's own where it names none.
fn asked_terms(
    share: &ShareRecord,
    change: &ShareChange,
    now: OffsetDateTime,
) -> Result<((i64, i64), Option<OffsetDateTime>), ServiceError> {
    let input = change
        .price_input
        .unwrap_or(share.price_input_micros_per_1k);
    let output = change
        .price_output
        .unwrap_or(share.price_output_micros_per_1k);
    let prices = (
        price("price_input_micros_per_1k", input)?,
        price("price_output_micros_per_1k", output)?,
    );
    let ends_at = change.ends_at.unwrap_or(share.state.ends_at);
    if change.ends_at.is_some() && ends_at.is_some_and(|end| end <= now) {
        return Err(ServiceError::invalid("ends_at", "must be in the future"));
    }
    Ok((prices, ends_at))
}

/// Consumer owner/manager: the monthly cap. The provider's chain records that the cap changed,
/// never its amount (only the consumer sees it).
async fn set_cap(
    deps: &Deps,
    ctx: &Ctx,
    org: OrgId,
    share: ShareRecord,
    cap: Option<i64>,
) -> Result<ShareRecord, ServiceError> {
    authorize(&ctx.actor(), Action::AcceptShare)?;
    if cap.is_some_and(|c| !(0..=MAX_CAP_MICROS).contains(&c)) {
        return Err(ServiceError::invalid(
            "monthly_cap_micros",
            "null or 0 to 10^15 micro-EUR",
        ));
    }
    let now = ctx.now;
    let (tx, share) = lock_parties(deps, &share).await?;
    if !shares::set_cap(&tx, org, share.id, cap, now).await? {
        return Err(ServiceError::not_found("share"));
    }
    let updated = reload(deps, &tx, org, share.id).await?;
    audit_both(
        &tx,
        deps,
        Some((ctx, ShareParty::Consumer)),
        &updated,
        "share.cap_changed",
        json!({}),
        Some(json!({"monthly_cap_micros": cap, "previous_monthly_cap_micros": share.monthly_cap_micros})),
    )
    .await?;
    tx.commit().await?;
    Ok(updated)
}

/// `POST …/shares/{id}/activation`, provider side only (a consumer gets 404): tech by
/// owner/admin, eco by owner/manager; with the org's `require_distinct_activators`, one user
/// may not hold both flags (409).
pub async fn set_activation(
    deps: &Deps,
    ctx: &Ctx,
    id: ShareId,
    flag: Flag,
    active: bool,
) -> Result<Share, ServiceError> {
    let (org, _) = ctx.current_org(Action::ViewShares)?;
    shares::find(&deps.db, org, ShareParty::Provider, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("share"))?;
    crate::activation::set::<ShareRecord>(deps, ctx, org, id, flag, active)
        .await
        .map(Share::from)
}

/// The provider's two approvals of a share.
impl crate::activation::Activatable for ShareRecord {
    type Id = ShareId;
    const KIND: &'static str = "share";
    const EVENT: &'static str = "share.activation_changed";
    const AUDITS_BEFORE: bool = false;

    /// The chain head before the share row, the order every two-party share write takes.
    async fn lock(tx: &Tx, org: OrgId, _id: ShareId) -> Result<(), StoreError> {
        // Every write of a share takes its orgs' audit heads first (`lock_parties`).
        audit_repo::lock_heads(tx, &[org]).await
    }

    async fn find(tx: &Tx, org: OrgId, id: ShareId) -> Result<Option<Self>, StoreError> {
        shares::find(tx, org, ShareParty::Provider, id).await
    }

    fn activation(&self) -> &Activation {
        &self.activation
    }

    async fn set_flag(
        tx: &Tx,
        org: OrgId,
        id: ShareId,
        flag: Flag,
        by: Option<UserId>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        shares::set_flag(tx, org, id, flag, by, now).await
    }
}
