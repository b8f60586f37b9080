//! Access requests (SPEC §4.7 v2): a consumer org asks the provider of a public offering for a
//! share of it; the provider approves (a share is *proposed* at the offering's default prices,
//! which the consumer then accepts like any proposal) or rejects.
//!
//! Contract:
//! - Consumer owner/manager request; provider owner/admin decide; owner/admin/manager of
//!   either side list. A third org gets 404 for every request id, the consumer 403
//!   `provider_only` when it tries to decide.
//! - One pending request per (consumer, offering): checked under both chain heads' locks for a
//!   clear answer, and enforced by a partial unique index whatever the concurrency. A rejected
//!   request is renewed by a new one, not before [`RENEWAL_DELAY`].
//! - A request is refused (409 `already_shared`) while a share of the offering with the
//!   consumer is proposed or active; due expiries are stored first.
//! - The approval runs the share-proposal use case ([`crate::shares::propose_in`]) in its own
//!   transaction: the share and the decision commit together or not at all.
//! - Every change records its event in both orgs' chains; the other side sees which org
//!   acted, never who (as for shares).
//!
//! [`RENEWAL_DELAY`]: inventiv_domain::access_request::RENEWAL_DELAY

use crate::audit::{AuditActor, AuditEntry, record};
use crate::paging::{Page, PageRequest, page_of};
use crate::shares::{Proposal, propose_in, settle_expiry};
use crate::{Ctx, Deps, RequestMeta, ServiceError};
use inventiv_domain::access_request::{
    LatestRequest, MAX_MESSAGE_CHARS, decide, is_priced, may_request, renewable_at,
};
use inventiv_domain::{
    AccessRequestError, AccessRequestId, AccessRequestStatus, Action, ErrorCode, OfferingId, OrgId,
    ShareId, ShareParty, authorize, optional_text,
};
use inventiv_persistence::repo::access_requests::{
    self as requests, AccessRequestRecord, NewAccessRequest,
};
use inventiv_persistence::repo::audit as audit_repo;
use inventiv_persistence::repo::{marketplace, offerings, organizations, shares};
use inventiv_persistence::{Constraint, StoreError, Tx};
use serde_json::json;
use time::OffsetDateTime;

/// An access request as either party sees it (no user of the other org is ever named).
#[derive(Debug, Clone)]
pub struct AccessRequest {
    pub id: AccessRequestId,
    pub provider_organization_id: OrgId,
    pub provider_slug: String,
    pub provider_name: String,
    pub consumer_organization_id: OrgId,
    pub consumer_slug: String,
    pub consumer_name: String,
    pub offering_id: OfferingId,
    pub offering_code: String,
    pub offering_name: String,
    pub status: AccessRequestStatus,
    pub message: Option<String>,
    pub decided_at: Option<OffsetDateTime>,
    /// The share the approval proposed.
    pub share_id: Option<ShareId>,
    pub created_at: OffsetDateTime,
}

impl AccessRequest {
    /// `<provider_slug>/<code>`.
    pub fn address(&self) -> String {
        format!("{}/{}", self.provider_slug, self.offering_code)
    }

    /// For a rejected request: when the consumer may ask again.
    pub fn renewable_at(&self) -> Option<OffsetDateTime> {
        match self.status {
            AccessRequestStatus::Rejected => self.decided_at.map(renewable_at),
            AccessRequestStatus::Pending | AccessRequestStatus::Approved => None,
        }
    }
}

impl From<AccessRequestRecord> for AccessRequest {
    fn from(r: AccessRequestRecord) -> Self {
        AccessRequest {
            id: r.id,
            provider_organization_id: r.provider_organization_id,
            provider_slug: r.provider_slug,
            provider_name: r.provider_name,
            consumer_organization_id: r.consumer_organization_id,
            consumer_slug: r.consumer_slug,
            consumer_name: r.consumer_name,
            offering_id: r.offering_id,
            offering_code: r.offering_code,
            offering_name: r.offering_name,
            status: r.status,
            message: r.message,
            decided_at: r.decided_at,
            share_id: r.share_id,
            created_at: r.created_at,
        }
    }
}

fn party_org(r: &AccessRequestRecord, side: ShareParty) -> (OrgId, &str) {
    match side {
        ShareParty::Provider => (r.provider_organization_id, &r.provider_slug),
        ShareParty::Consumer => (r.consumer_organization_id, &r.consumer_slug),
    }
}

/// Records `action`, done by `ctx` on side `acting`, in both orgs' chains (the caller locked
/// both heads). The acting side's event names the user, session and IP; the other side's only
/// the acting org (and the request id, which links the two events).
async fn audit_both(
    tx: &Tx,
    ctx: &Ctx,
    acting: ShareParty,
    request: &AccessRequestRecord,
    action: &'static str,
    after: serde_json::Value,
) -> Result<(), ServiceError> {
    let (by_id, by_slug) = party_org(request, acting);
    let by = json!({"id": by_id.to_string(), "slug": by_slug});
    for side in [ShareParty::Provider, ShareParty::Consumer] {
        let (chain, _) = party_org(request, side);
        let mut doc = after.clone();
        if let Some(map) = doc.as_object_mut() {
            map.insert("side".to_owned(), json!(side.as_str()));
            map.insert("by_organization".to_owned(), by.clone());
        }
        let (who, meta) = if side == acting {
            (ctx.audit_actor(), ctx.meta.clone())
        } else {
            (
                AuditActor::default(),
                RequestMeta {
                    request_id: ctx.meta.request_id.clone(),
                    ip: None,
                    user_agent: None,
                },
            )
        };
        let entry = AuditEntry {
            action,
            organization: Some(chain),
            target_type: "access_request",
            target_id: request.id.to_string(),
            before: None,
            after: Some(doc),
        };
        record(tx, ctx.now, who, &meta, entry).await?;
    }
    Ok(())
}

fn request_error(e: AccessRequestError) -> ServiceError {
    match e {
        AccessRequestError::AlreadyPending => pending_exists(),
        AccessRequestError::RejectedRecently { renewable_at } => ServiceError::Conflict {
            code: ErrorCode::AccessRequestRejectedRecently,
            message: format!(
                "The last request for this offering was rejected; a new one may be sent from {}.",
                crate::audit::timestamp(renewable_at)
            ),
        },
        AccessRequestError::NotPending { status } => ServiceError::Conflict {
            code: ErrorCode::AccessRequestNotPending,
            message: format!("The request is {status}; only a pending request can be decided."),
        },
    }
}

fn pending_exists() -> ServiceError {
    ServiceError::Conflict {
        code: ErrorCode::AccessRequestPending,
        message: "This organization already has a pending request for this offering.".to_owned(),
    }
}

fn already_shared() -> ServiceError {
    ServiceError::Conflict {
        code: ErrorCode::AlreadyShared,
        message: "A share of this offering with this organization is already proposed or active."
            .to_owned(),
    }
}

/// Stores the expiry of a due live share of the pair, so that it does not count as live.
async fn live_share(
    deps: &Deps,
    provider: OrgId,
    consumer: OrgId,
    offering: OfferingId,
) -> Result<(), ServiceError> {
    if let Some(live) = shares::live_for(&deps.db, provider, consumer, offering).await? {
        settle_expiry(deps, live).await?;
    }
    Ok(())
}

/// `POST /marketplace/offerings/{id}/access-requests` (consumer owner/manager): a pending
/// request for a published public offering of another org (404 for any other id).
pub async fn create(
    deps: &Deps,
    ctx: &Ctx,
    offering: OfferingId,
    message: Option<String>,
) -> Result<AccessRequest, ServiceError> {
    let (consumer, _) = ctx.current_org(Action::RequestAccess)?;
    let message = optional_text("message", message.as_deref(), MAX_MESSAGE_CHARS)?;
    let listing = marketplace::find(&deps.db, consumer, offering)
        .await?
        .ok_or_else(|| ServiceError::not_found("offering"))?;
    let provider = listing.provider_organization_id;
    live_share(deps, provider, consumer, offering).await?;
    let now = ctx.now;
    let tx = ctx.begin_in_workspace(deps).await?;
    // The provider org is held too: deleted meanwhile, its offering is gone with it.
    if !organizations::hold(&tx, provider).await? {
        return Err(ServiceError::not_found("offering"));
    }
    audit_repo::lock_heads(&tx, &[provider, consumer]).await?;
    // Under the locks: a share proposed or a request sent meanwhile is seen here.
    if shares::live_for(&tx, provider, consumer, offering)
        .await?
        .is_some()
    {
        return Err(already_shared());
    }
    let latest = requests::latest(&tx, consumer, offering)
        .await?
        .map(|r| LatestRequest {
            status: r.status,
            decided_at: r.decided_at,
        });
    may_request(latest, now).map_err(request_error)?;
    let id = AccessRequestId::new();
    let new = NewAccessRequest {
        id,
        provider,
        offering,
        message: message.clone(),
        requested_by: ctx.user_id(),
        now,
    };
    requests::insert(&tx, consumer, new)
        .await
        .map_err(|e| match e {
            // The database's own guarantee, should two requests pass the check at once.
            StoreError::Conflict(Constraint::AccessRequestPending) => pending_exists(),
            other => other.into(),
        })?;
    let created = requests::find_either(&tx, consumer, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("access request"))?;
    let after = json!({
        "offering_id": offering.to_string(),
        "address": format!("{}/{}", listing.provider_slug, listing.code),
        "message": message,
    });
    audit_both(
        &tx,
        ctx,
        ShareParty::Consumer,
        &created,
        "access_request.created",
        after,
    )
    .await?;
    tx.commit().await?;
    Ok(created.into())
}

/// `GET /organizations/current/access-requests?side=`: the requests this org received
/// (provider) or sent (consumer), newest first.
pub async fn list(
    deps: &Deps,
    ctx: &Ctx,
    side: ShareParty,
    page: &PageRequest,
) -> Result<Page<AccessRequest>, ServiceError> {
    let (org, _) = ctx.current_org(Action::ViewAccessRequests)?;
    let (limit, before) = page.parse::<AccessRequestId>()?;
    let rows = requests::list(&deps.db, org, side, before, limit + 1)
        .await?
        .into_iter()
        .map(AccessRequest::from)
        .collect();
    Ok(page_of(rows, limit, |r| r.id))
}

/// The request `id` of the current org's offerings, for a decision by the provider's
/// owner/admin: 404 for a third org, 403 `provider_only` for the consumer, 409 unless pending.
async fn to_decide(
    deps: &Deps,
    ctx: &Ctx,
    id: AccessRequestId,
) -> Result<(OrgId, AccessRequestRecord), ServiceError> {
    let (org, _) = ctx.current_org(Action::ViewAccessRequests)?;
    let request = requests::find_either(&deps.db, org, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("access request"))?;
    if request.provider_organization_id != org {
        return Err(ServiceError::Forbidden {
            code: ErrorCode::ProviderOnly,
            message: "Only the provider of the offering may decide an access request.".to_owned(),
        });
    }
    authorize(&ctx.actor(), Action::DecideAccessRequest)?;
    decide(request.status).map_err(request_error)?;
    Ok((org, request))
}

/// The answer when the compare-and-set on `pending` matched nothing: decided meanwhile.
fn decided_meanwhile() -> ServiceError {
    ServiceError::Conflict {
        code: ErrorCode::AccessRequestNotPending,
        message: "The request was decided meanwhile; reload.".to_owned(),
    }
}

/// Provider owner/admin: approve. Proposes a share of the offering to the consumer at the
/// offering's default prices (409 `offering_unpriced` without them), in the same
/// transaction; the provider's eco approval and the consumer's acceptance follow as for any
/// proposal.
pub async fn approve(
    deps: &Deps,
    ctx: &Ctx,
    id: AccessRequestId,
) -> Result<AccessRequest, ServiceError> {
    let (provider, request) = to_decide(deps, ctx, id).await?;
    let offering = offerings::find(&deps.db, provider, request.offering_id)
        .await?
        .ok_or_else(|| ServiceError::not_found("offering"))?;
    let prices = (
        offering.default_price_input_micros_per_1k,
        offering.default_price_output_micros_per_1k,
    );
    if !is_priced(prices.0, prices.1) {
        return Err(ServiceError::Conflict {
            code: ErrorCode::OfferingUnpriced,
            message:
                "The offering has no default prices; set them (owner/manager) before approving."
                    .to_owned(),
        });
    }
    let consumer = organizations::find_by_id(&deps.db, request.consumer_organization_id)
        .await?
        .ok_or_else(|| ServiceError::not_found("access request"))?;
    live_share(deps, provider, consumer.id, offering.id).await?;
    let tx = deps.db.begin_write().await?;
    audit_repo::lock_heads(&tx, &[provider, consumer.id]).await?;
    // Under the locks: a decision taken meanwhile is answered as such, before anything else.
    let current = requests::find_either(&tx, provider, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("access request"))?;
    decide(current.status).map_err(request_error)?;
    if shares::live_for(&tx, provider, consumer.id, offering.id)
        .await?
        .is_some()
    {
        return Err(already_shared());
    }
    let proposal = Proposal {
        provider,
        consumer: &consumer,
        offering: offering.id,
        prices,
        ends_at: None,
    };
    let share = propose_in(&tx, deps, ctx, proposal).await?;
    let approved = AccessRequestStatus::Approved;
    if !requests::decide(
        &tx,
        provider,
        id,
        approved,
        ctx.user_id(),
        Some(share.id),
        ctx.now,
    )
    .await?
    {
        return Err(decided_meanwhile());
    }
    let decided = requests::find_either(&tx, provider, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("access request"))?;
    let after = json!({
        "share_id": share.id.to_string(),
        "price_input_micros_per_1k": prices.0,
        "price_output_micros_per_1k": prices.1,
    });
    audit_both(
        &tx,
        ctx,
        ShareParty::Provider,
        &decided,
        "access_request.approved",
        after,
    )
    .await?;
    tx.commit().await?;
    Ok(decided.into())
}

/// Provider owner/admin: reject. The consumer may ask again after the renewal delay.
pub async fn reject(
    deps: &Deps,
    ctx: &Ctx,
    id: AccessRequestId,
) -> Result<AccessRequest, ServiceError> {
    let (provider, request) = to_decide(deps, ctx, id).await?;
    let tx = deps.db.begin_write().await?;
    audit_repo::lock_heads(&tx, &[provider, request.consumer_organization_id]).await?;
    let rejected = AccessRequestStatus::Rejected;
    if !requests::decide(&tx, provider, id, rejected, ctx.user_id(), None, ctx.now).await? {
        return Err(decided_meanwhile());
    }
    let decided = requests::find_either(&tx, provider, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("access request"))?;
    let after = json!({
        "offering_id": decided.offering_id.to_string(),
        "renewable_at": crate::audit::timestamp(renewable_at(ctx.now)),
    });
    audit_both(
        &tx,
        ctx,
        ShareParty::Provider,
        &decided,
        "access_request.rejected",
        after,
    )
    .await?;
    tx.commit().await?;
    Ok(decided.into())
}
