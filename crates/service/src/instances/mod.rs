//! Instances (SPEC §4.3): scoped to the caller's workspace — an org's rows, or in Personal the
//! caller's own rows with no org (legacy rows stay reachable by their owner). Writes stamp the
//! workspace. Out-of-scope ids are 404.

pub mod lifecycle;
pub mod providers;

use crate::Ctx;
use crate::audit::AuditEntry;
use crate::cache::Rendered;
use crate::outbound::Refusal;
use crate::paging::{Page, PageRequest, page_of};
use crate::{Deps, ServiceError};
use inventiv_domain::ErrorCode;
use inventiv_domain::{
    Action, Activation, ActivationError, Flag, InstanceId, InstanceStatus, ModelId, OrgId, Scope,
    UserId, Workspace, authorize, ensure_applicable, optional_text,
};
use inventiv_persistence::repo::instances::{self, InstanceFilter, InstanceRecord, NewInstance};
use inventiv_persistence::repo::{endpoint_claims, models};
use inventiv_persistence::{StoreError, Tag, Tx};
use serde_json::json;
use std::sync::Arc;
use time::OffsetDateTime;

/// An instance with its workspace and activation state.
#[derive(Debug, Clone)]
pub struct Instance {
    pub id: InstanceId,
    /// None: a personal instance, owned by `owner_user_id`.
    pub organization_id: Option<OrgId>,
    pub organization_name: Option<String>,
    pub owner_user_id: Option<UserId>,
    pub model_id: ModelId,
    pub model_name: String,
    pub provider: String,
    pub zone: Option<String>,
    pub instance_type: Option<String>,
    pub status: InstanceStatus,
    pub failure_reason: Option<String>,
    pub endpoint_url: Option<String>,
    pub hourly_cost_micros: i64,
    pub activation: Activation,
    pub tech_activated_at: Option<OffsetDateTime>,
    pub eco_activated_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub ready_at: Option<OffsetDateTime>,
    pub terminated_at: Option<OffsetDateTime>,
}

impl Instance {
    /// Serving now with its approvals (personal instances need none): what the proxy routes
    /// to, and what `operational` says.
    #[must_use]
    pub fn operational(&self) -> bool {
        self.status.is_serving() && self.activation.operational(self.organization_id.is_none())
    }
}

impl From<InstanceRecord> for Instance {
    fn from(i: InstanceRecord) -> Self {
        Instance {
            id: i.id,
            organization_id: i.organization_id,
            organization_name: i.organization_name,
            owner_user_id: i.owner_user_id,
            model_id: i.model_id,
            model_name: i.model_name,
            provider: i.provider,
            zone: i.zone,
            instance_type: i.instance_type,
            status: i.status,
            failure_reason: i.failure_reason,
            endpoint_url: i.endpoint_url,
            hourly_cost_micros: i.hourly_cost_micros,
            activation: i.activation,
            tech_activated_at: i.tech_activated_at,
            eco_activated_at: i.eco_activated_at,
            created_at: i.created_at,
            ready_at: i.ready_at,
            terminated_at: i.terminated_at,
        }
    }
}

/// `GET /instances` filters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter {
    /// Only operational (or only non-operational) instances. Personal instances are
    /// operational by definition.
    pub operational: Option<bool>,
}

/// `GET /instances`.
pub async fn list(
    deps: &Deps,
    ctx: &Ctx,
    filter: Filter,
    page: &PageRequest,
) -> Result<Arc<Rendered<Page<Instance>>>, ServiceError> {
    let actor = ctx.actor();
    authorize(&actor, Action::ViewInstances)?;
    let (limit, after) = page.parse::<InstanceId>()?;
    cached_page(deps, actor.scope(), filter, after, limit).await
}

/// The page of `scope` after `after` (at most `limit` rows), cached until one of the scope's
/// instances, a model (their names are shown) or the scope's owner changes.
async fn cached_page(
    deps: &Deps,
    scope: Scope,
    filter: Filter,
    after: Option<InstanceId>,
    limit: u64,
) -> Result<Arc<Rendered<Page<Instance>>>, ServiceError> {
    let cache = &deps.caches.instance_pages;
    let key = (scope, filter.operational, after, limit);
    if let Some(page) = cache.get(&deps.db, &key) {
        return Ok(page);
    }
    let stamp = cache.stamp(&deps.db);
    let filter = InstanceFilter {
        operational: filter.operational,
    };
    // One row more than the page: it only says whether there is a next page.
    let rows: Vec<Instance> = instances::list(&deps.db, scope, filter, after, limit + 1)
        .await?
        .into_iter()
        .map(Instance::from)
        .collect();
    let page = Arc::new(Rendered::new(page_of(rows, limit, |i| i.id)));
    let owner = match scope {
        Scope::Org(org) => Tag::Org(org),
        Scope::Personal(user) => Tag::User(user),
    };
    let tags = vec![Tag::Instances(scope), Tag::Models, owner];
    cache.put(key, stamp, tags, page.clone());
    Ok(page)
}

/// `GET /instances/{id}`.
pub async fn get(deps: &Deps, ctx: &Ctx, id: InstanceId) -> Result<Instance, ServiceError> {
    let actor = ctx.actor();
    authorize(&actor, Action::ViewInstances)?;
    instances::find(&deps.db, actor.scope(), id)
        .await?
        .map(Instance::from)
        .ok_or_else(|| ServiceError::not_found("instance"))
}

/// `POST /deployments` input.
#[derive(Debug, Clone)]
pub struct Deploy {
    pub model_id: ModelId,
    pub provider: Option<String>,
    pub zone: Option<String>,
    pub instance_type: Option<String>,
    pub endpoint_url: Option<String>,
    pub hourly_cost_micros: Option<i64>,
}

/// Deploys a model in the caller's workspace (owner/admin in an org; anyone for themselves in
/// Personal). 201 with the instance in `provisioning`; the provider takes it from there.
pub async fn deploy(deps: &Deps, ctx: &Ctx, input: Deploy) -> Result<Instance, ServiceError> {
    let actor = ctx.actor();
    authorize(&actor, Action::Deploy)?;
    let scope = actor.scope();
    let provider_name = input.provider.unwrap_or_else(|| "mock".to_owned());
    let provider = deps.providers.get(&provider_name).ok_or_else(|| {
        ServiceError::invalid(
            "provider",
            format!("one of: {}", deps.providers.names().join(", ")),
        )
    })?;
    let endpoint = provider
        .initial_endpoint(input.endpoint_url.as_deref())
        .map_err(|reason| ServiceError::invalid("endpoint_url", reason))?;
    let claim = match endpoint.as_deref() {
        Some(url) => provider.admit(url).await.map_err(refused)?,
        None => None,
    };
    let zone = optional_text("zone", input.zone.as_deref(), 64)?;
    let instance_type = optional_text("instance_type", input.instance_type.as_deref(), 64)?;
    let cost = input
        .hourly_cost_micros
        .unwrap_or_else(|| provider.default_hourly_cost_micros());
    if !(0..=1_000_000_000_000).contains(&cost) {
        return Err(ServiceError::invalid(
            "hourly_cost_micros",
            "0 to 10^12 micro-EUR",
        ));
    }
    let model = models::find(&deps.db, scope, input.model_id)
        .await?
        .filter(|m| m.is_active)
        .ok_or_else(|| {
            ServiceError::invalid("model_id", "no active model with this id in this workspace")
        })?;

    let id = InstanceId::new();
    let now = ctx.now;
    let tx = ctx.begin_in_workspace(deps).await?;
    if let Some(key) = claim.as_deref() {
        take_claim(&tx, key, scope, now).await?;
    }
    instances::insert(
        &tx,
        scope,
        NewInstance {
            id,
            owner: ctx.user_id(),
            model: model.id,
            provider: provider.name(),
            zone: zone.as_deref(),
            instance_type: instance_type.as_deref(),
            endpoint_url: endpoint.as_deref(),
            hourly_cost_micros: cost,
            now,
        },
    )
    .await?;
    let org = match scope {
        Scope::Org(org) => Some(org),
        Scope::Personal(_) => None,
    };
    ctx.record(&tx, AuditEntry {
            action: "instance.created",
            organization: org,
            target_type: "instance",
            target_id: id.to_string(),
            before: None,
            after: Some({
                let mut after = json!({
                    "model_id": model.id.to_string(), "provider": provider.name(), "status": "provisioning",
                    "hourly_cost_micros": cost,
                });
                if let Some(key) = &claim {
                    after["endpoint_claim"] = json!(key);
                }
                after
            }),
        },
    )
    .await?;
    let instance = instances::find(&tx, scope, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("instance"))?;
    tx.commit().await?;
    lifecycle::spawn_bring_up(deps.clone(), instance.clone());
    Ok(instance.into())
}

fn refused(refusal: Refusal) -> ServiceError {
    match refusal {
        Refusal::Invalid => ServiceError::invalid(
            "endpoint_url",
            "must be an http:// base URL without query, e.g. http://10.0.0.5:8000",
        ),
        Refusal::NotAllowed => ServiceError::BadRequest {
            code: ErrorCode::EndpointNotAllowed,
            message: "endpoint_url must resolve only to addresses this server may call (public \
                      addresses, and the networks the operator allows)."
                .to_owned(),
        },
    }
}

/// Claims endpoint `key` for `scope` in `tx`, or answers 409 `endpoint_taken` when another
/// owner holds it. A claim is freed when its holder has no instance at the endpoint but
/// terminated ones: the next owner to register it takes it over. The claim row is locked
/// until `tx` ends, so neither a concurrent registration by the holder nor a second takeover
/// can interleave.
async fn take_claim(
    tx: &inventiv_persistence::Tx,
    key: &str,
    scope: Scope,
    now: time::OffsetDateTime,
) -> Result<(), ServiceError> {
    let holder = endpoint_claims::claim_or_holder(tx, scope, key, now).await?;
    if holder == scope {
        return Ok(());
    }
    let in_use = endpoint_claims::live_external_endpoints(tx, holder)
        .await?
        .iter()
        .filter_map(|url| url.parse::<http::Uri>().ok())
        .any(|uri| crate::outbound::endpoint_key(&uri).as_deref() == Some(key));
    if !in_use && endpoint_claims::transfer(tx, holder, key, scope, now).await? {
        tracing::info!(
            endpoint = key,
            "endpoint claim taken over from an owner with no live instance there"
        );
        return Ok(());
    }
    Err(ServiceError::Conflict {
        code: ErrorCode::EndpointTaken,
        message: "This endpoint is registered by another organization or user.".to_owned(),
    })
}

fn invalid_state(err: inventiv_domain::InvalidTransition) -> ServiceError {
    ServiceError::Conflict {
        code: ErrorCode::InvalidState,
        message: format!("{err}."),
    }
}

/// `POST /instances/{id}/terminate` (202): → terminating, then terminated in the background.
pub async fn terminate(deps: &Deps, ctx: &Ctx, id: InstanceId) -> Result<Instance, ServiceError> {
    change(deps, ctx, id, Action::Terminate, InstanceStatus::terminate).await
}

/// `POST /instances/{id}/reinstall` (202): a ready or failed instance → provisioning again.
pub async fn reinstall(deps: &Deps, ctx: &Ctx, id: InstanceId) -> Result<Instance, ServiceError> {
    change(deps, ctx, id, Action::Reinstall, InstanceStatus::reinstall).await
}

async fn change(
    deps: &Deps,
    ctx: &Ctx,
    id: InstanceId,
    action: Action,
    next: fn(InstanceStatus) -> Result<InstanceStatus, inventiv_domain::InvalidTransition>,
) -> Result<Instance, ServiceError> {
    let actor = ctx.actor();
    // Visibility first: an out-of-scope id is 404 whatever the role; then the role.
    authorize(&actor, Action::ViewInstances)?;
    let scope = actor.scope();
    let mut attempts = 0;
    let to = loop {
        let instance = instances::find(&deps.db, scope, id)
            .await?
            .ok_or_else(|| ServiceError::not_found("instance"))?;
        authorize(&actor, action)?;
        let to = next(instance.status).map_err(invalid_state)?;
        let change = lifecycle::Step {
            from: &[instance.status],
            to,
            endpoint_url: None,
            failure_reason: None,
        };
        if lifecycle::step(deps, &instance, change, ctx.audit_actor(), &ctx.meta).await? {
            break to;
        }
        // The bring-up moved it on meanwhile (provisioning → booting → ready): judge the
        // request again on the new state, a few times, rather than refuse a terminate that
        // every one of those states allows.
        attempts += 1;
        if attempts == 3 {
            return Err(ServiceError::Conflict {
                code: ErrorCode::InvalidState,
                message: "The instance changed state meanwhile; reload and retry.".to_owned(),
            });
        }
    };
    let moved = instances::find(&deps.db, scope, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("instance"))?;
    match to {
        InstanceStatus::Terminating => lifecycle::spawn_tear_down(deps.clone(), moved.clone()),
        _ => lifecycle::spawn_bring_up(deps.clone(), moved.clone()),
    }
    Ok(moved.into())
}

/// `POST /instances/{id}/activation`: tech by owner/admin, eco by owner/manager; with the org's
/// `require_distinct_activators`, one user may not hold both flags (409). Personal instances
/// are operational by definition (409 `activation_not_applicable`).
pub async fn set_activation(
    deps: &Deps,
    ctx: &Ctx,
    id: InstanceId,
    flag: Flag,
    active: bool,
) -> Result<Instance, ServiceError> {
    let actor = ctx.actor();
    // Visibility first: an out-of-scope id is 404 whatever the role.
    authorize(&actor, Action::ViewInstances)?;
    let scope = actor.scope();
    let instance = instances::find(&deps.db, scope, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("instance"))?;
    let Workspace::Org { org, .. } = actor.workspace else {
        authorize(&actor, Action::SetActivation { flag })?;
        return Err(crate::activation::error(ActivationError::NotApplicable));
    };
    ensure_applicable(instance.organization_id.is_none()).map_err(crate::activation::error)?;
    crate::activation::set::<InstanceRecord>(deps, ctx, org, id, flag, active)
        .await
        .map(Instance::from)
}

impl crate::activation::Activatable for InstanceRecord {
    type Id = InstanceId;
    const KIND: &'static str = "instance";
    const EVENT: &'static str = "instance.activation_changed";
    const AUDITS_BEFORE: bool = true;

    async fn find(tx: &Tx, org: OrgId, id: InstanceId) -> Result<Option<Self>, StoreError> {
        instances::find_for_update(tx, Scope::Org(org), id).await
    }

    fn activation(&self) -> &Activation {
        &self.activation
    }

    async fn set_flag(
        tx: &Tx,
        org: OrgId,
        id: InstanceId,
        flag: Flag,
        by: Option<UserId>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        instances::set_flag(tx, Scope::Org(org), id, flag, by, now).await
    }
}
