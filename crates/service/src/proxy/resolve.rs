//! Model resolution (SPEC §5): `"<org_slug>/<code>"` names an offering — usable by its own org,
//! or through an active, in-date, operational share; anything else names a public catalogue
//! model served by an instance of the caller's scope. Discovery (`/v1/models`) is built from
//! the very same checks, so nothing listed is refused and nothing refused is listed.

use crate::Ctx;
use crate::{Deps, ServiceError};
use inventiv_domain::ErrorCode;
use inventiv_domain::{
    Action, InstanceId, ModelId, OfferingId, OrgId, Scope, ShareId, Workspace, authorize,
};
use inventiv_persistence::Tag;
use inventiv_persistence::repo::namespaces::{self, NamespaceOwner};
use inventiv_persistence::repo::offerings::{self, OfferingRecord};
use inventiv_persistence::repo::{instances, models, shares};
use std::sync::Arc;

use super::forward::Endpoint;

/// Where a request goes and how it is billed.
#[derive(Debug, Clone)]
pub struct Target {
    /// The name the client used.
    pub requested: String,
    /// The name the upstream serves (the underlying model's `model_id`).
    pub upstream_model: String,
    pub model_id: ModelId,
    pub consumer: Option<OrgId>,
    pub provider: Option<OrgId>,
    pub offering: Option<OfferingId>,
    pub share: Option<ShareId>,
    /// micro-EUR per 1k input and output tokens.
    pub prices: (i64, i64),
    /// The underlying model's context length: the bound of a request's input and output.
    pub context_length: u64,
    /// The consumer's monthly cap on the share (None: none, or not a share).
    pub share_cap: Option<i64>,
    /// Ready, operational instances serving it.
    pub instances: Vec<Upstream>,
}

/// A ready instance, with its endpoint's URLs parsed once (when the route is resolved) rather
/// than on every request.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub id: InstanceId,
    /// The endpoint is the operator's (a `mock` instance), not a tenant's: connections to it
    /// are not checked against the allowed networks (see `super::client`).
    pub operator: bool,
    /// By [`Endpoint`], in the order of [`Endpoint::ALL`].
    uris: [http::Uri; 3],
}

impl Upstream {
    /// `None` (and a warning) for an endpoint that is not a valid `http://` base URL.
    fn new(id: InstanceId, base: &str, operator: bool) -> Option<Upstream> {
        let parse = |endpoint: Endpoint| {
            format!("{}{}", base.trim_end_matches('/'), endpoint.path())
                .parse::<http::Uri>()
                .ok()
                .filter(|uri| {
                    uri.scheme() == Some(&http::uri::Scheme::HTTP) && uri.host().is_some()
                })
        };
        match Endpoint::ALL.map(parse) {
            [Some(a), Some(b), Some(c)] => Some(Upstream {
                id,
                operator,
                uris: [a, b, c],
            }),
            _ => {
                tracing::warn!(instance = %id, endpoint = base, "instance endpoint is not a valid http:// URL; not routed to");
                None
            }
        }
    }

    pub fn uri(&self, endpoint: Endpoint) -> &http::Uri {
        &self.uris[endpoint as usize]
    }
}

/// The ready, operational instances of `model` in `scope`.
async fn upstreams(
    deps: &Deps,
    scope: Scope,
    model: ModelId,
) -> Result<Vec<Upstream>, ServiceError> {
    Ok(instances::routable(&deps.db, scope, model)
        .await?
        .into_iter()
        .filter_map(|(id, base, provider)| Upstream::new(id, &base, provider == "mock"))
        .collect())
}

pub(crate) fn not_found(requested: &str) -> ServiceError {
    ServiceError::NotFound {
        code: ErrorCode::ModelNotFound,
        message: format!("The model {requested:?} does not exist or is not available to you."),
    }
}

fn not_operational(requested: &str) -> ServiceError {
    ServiceError::Forbidden {
        code: ErrorCode::ModelNotOperational,
        message: format!(
            "The model {requested:?} is not operational yet (waiting for its technical or economic approval)."
        ),
    }
}

fn caller_org(ctx: &Ctx) -> Option<OrgId> {
    match ctx.actor().workspace {
        Workspace::Org { org, .. } => Some(org),
        Workspace::Personal => None,
    }
}

/// How the caller reaches an offering.
struct Access {
    share: Option<ShareId>,
    prices: (i64, i64),
    /// The share's end: the route holds until then.
    ends_at: Option<time::OffsetDateTime>,
    share_cap: Option<i64>,
}

/// How an offering is reached by the caller (before instances are looked up).
async fn offering_access(
    deps: &Deps,
    ctx: &Ctx,
    offering: &OfferingRecord,
    requested: &str,
) -> Result<Access, ServiceError> {
    let Some(org) = caller_org(ctx) else {
        return Err(not_found(requested));
    };
    if !offering.is_active {
        return Err(not_found(requested));
    }
    if org == offering.organization_id {
        // Own offering: metered, not charged (the org pays for its instances already).
        // `operational` counts the org model's approvals too (SPEC §1 v2).
        return if offering.operational() {
            Ok(Access {
                share: None,
                prices: (0, 0),
                ends_at: None,
                share_cap: None,
            })
        } else {
            Err(not_operational(requested))
        };
    }
    let now = ctx.now;
    // Only a contract the consumer accepted at its current version, in validity and paused by
    // neither side carries traffic; a `proposed` share is answered like no share at all.
    let share = shares::live_for(&deps.db, offering.organization_id, org, offering.id)
        .await?
        .filter(|s| s.state.carries_traffic(now))
        .ok_or_else(|| not_found(requested))?;
    if !(offering.operational() && share.activation.operational(false)) {
        return Err(not_operational(requested));
    }
    let prices = (
        share.price_input_micros_per_1k,
        share.price_output_micros_per_1k,
    );
    Ok(Access {
        share: Some(share.id),
        prices,
        ends_at: share.state.ends_at,
        share_cap: share.monthly_cap_micros,
    })
}

fn allowed_by_key(ctx: &Ctx, requested: &str) -> bool {
    ctx.principal
        .api_key()
        .and_then(|k| k.allowed_models.as_ref())
        .is_none_or(|allowed| allowed.iter().any(|m| m == requested))
}

/// Resolves `requested` for `principal`, or says precisely why not. The target is shared with
/// the routing cache (a hit costs a reference count, not a copy).
pub async fn resolve(deps: &Deps, ctx: &Ctx, requested: &str) -> Result<Arc<Target>, ServiceError> {
    let actor = ctx.actor();
    authorize(&actor, Action::UseInference)?;
    check_requested(ctx, requested)?;
    let now = ctx.now;
    let stamp = deps.proxy.routes.stamp(&deps.db);
    let cache_key = (actor.scope(), requested.to_owned());
    if let Some(hit) = deps.proxy.routes.get(&deps.db, &cache_key)
        && hit.valid_until.is_none_or(|end| now < end)
    {
        return Ok(hit.target);
    }
    let (target, valid_until) = match named_offering(deps, requested).await? {
        Some(offering) => offering_target(deps, ctx, &offering, requested).await?,
        None => (
            public_target(deps, ctx, actor.scope(), requested).await?,
            None,
        ),
    };
    if target.instances.is_empty() {
        return Err(ServiceError::Unavailable {
            code: ErrorCode::NoReadyInstance,
            message: format!("No ready, operational instance serves {requested:?} right now."),
        });
    }
    let target = Arc::new(target);
    deps.proxy.routes.put(
        cache_key,
        stamp,
        vec![Tag::Routes],
        CachedTarget {
            target: target.clone(),
            valid_until,
        },
    );
    Ok(target)
}

/// Refuses a name no model can have, or one the caller's API key may not call.
fn check_requested(ctx: &Ctx, requested: &str) -> Result<(), ServiceError> {
    if requested.is_empty() || requested.len() > 256 {
        return Err(ServiceError::invalid("model", "1 to 256 characters"));
    }
    if !allowed_by_key(ctx, requested) {
        return Err(ServiceError::Forbidden {
            code: ErrorCode::ModelNotAllowed,
            message: format!("This API key may not call {requested:?}."),
        });
    }
    Ok(())
}

/// The offering `requested` names, if it names one.
///
/// SPEC §5.1: the namespace's owner decides which side a name is looked up on — an org's
/// namespace names only its offerings (no fallback to the catalogue), any other name only
/// the public catalogue — so one name can never reach both.
async fn named_offering(
    deps: &Deps,
    requested: &str,
) -> Result<Option<OfferingRecord>, ServiceError> {
    let Some((slug, code)) = requested.split_once('/') else {
        return Ok(None);
    };
    match namespaces::find(&deps.db, slug).await? {
        Some(NamespaceOwner::Org(owner)) => Ok(Some(
            offerings::find_by_name(&deps.db, slug, code)
                .await?
                .filter(|o| owner == Some(o.organization_id))
                .ok_or_else(|| not_found(requested))?,
        )),
        Some(NamespaceOwner::Public) | None => Ok(None),
    }
}

/// The target of a call of `offering`, and until when the route holds by date (the end of the
/// share it goes through).
async fn offering_target(
    deps: &Deps,
    ctx: &Ctx,
    offering: &OfferingRecord,
    requested: &str,
) -> Result<(Target, Option<time::OffsetDateTime>), ServiceError> {
    let access = offering_access(deps, ctx, offering, requested).await?;
    let model = models::find(
        &deps.db,
        Scope::Org(offering.organization_id),
        offering.model_id,
    )
    .await?
    .ok_or_else(|| not_found(requested))?;
    let target = Target {
        requested: requested.to_owned(),
        upstream_model: offering.upstream_model.clone(),
        model_id: offering.model_id,
        consumer: caller_org(ctx),
        provider: Some(offering.organization_id),
        offering: Some(offering.id),
        share: access.share,
        prices: access.prices,
        context_length: context_of(model.context_length),
        share_cap: access.share_cap,
        instances: upstreams(
            deps,
            Scope::Org(offering.organization_id),
            offering.model_id,
        )
        .await?,
    };
    Ok((target, access.ends_at))
}

/// The target of a call of the public catalogue model `requested`, served by the instances
/// of the caller's `scope`.
async fn public_target(
    deps: &Deps,
    ctx: &Ctx,
    scope: Scope,
    requested: &str,
) -> Result<Target, ServiceError> {
    let model = models::find_public_by_name(&deps.db, requested)
        .await?
        .ok_or_else(|| not_found(requested))?;
    Ok(Target {
        requested: requested.to_owned(),
        upstream_model: model.model_id.clone(),
        model_id: model.id,
        consumer: caller_org(ctx),
        provider: caller_org(ctx),
        offering: None,
        share: None,
        prices: (0, 0),
        context_length: context_of(model.context_length),
        share_cap: None,
        instances: upstreams(deps, scope, model.id).await?,
    })
}

/// A model's context length as a token bound (a stored value below 1 bounds nothing: 1).
fn context_of(stored: i32) -> u64 {
    u64::try_from(stored).unwrap_or(0).max(1)
}

/// A resolved route and until when it holds by date (a share's `ends_at`).
#[derive(Debug, Clone)]
pub struct CachedTarget {
    target: Arc<Target>,
    valid_until: Option<time::OffsetDateTime>,
}

/// One entry of `GET /v1/models`.
#[derive(Debug, Clone)]
pub struct ListedModel {
    pub id: String,
    pub owned_by: String,
}

/// Exactly the names [`resolve`] would accept now.
pub async fn available(deps: &Deps, ctx: &Ctx) -> Result<Vec<ListedModel>, ServiceError> {
    authorize(&ctx.actor(), Action::UseInference)?;
    let mut names: Vec<(String, String)> = Vec::new();
    for model in models::active_public(&deps.db).await? {
        names.push((model.model_id.clone(), "public".to_owned()));
    }
    if let Some(org) = caller_org(ctx) {
        for offering in offerings::list(&deps.db, org, None, 10_000).await? {
            names.push((
                format!("{}/{}", offering.organization_slug, offering.code),
                offering.organization_slug.clone(),
            ));
        }
        for share in shares::live_received(&deps.db, org).await? {
            names.push((
                format!("{}/{}", share.provider_slug, share.offering_code),
                share.provider_slug.clone(),
            ));
        }
    }
    let mut listed = Vec::new();
    for (name, owner) in names {
        if resolve(deps, ctx, &name).await.is_ok()
            && !listed.iter().any(|m: &ListedModel| m.id == name)
        {
            listed.push(ListedModel {
                id: name,
                owned_by: owner,
            });
        }
    }
    Ok(listed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{Endpoint, Upstream};
    use inventiv_domain::InstanceId;

    #[test]
    fn an_instance_is_routed_to_only_with_a_valid_http_endpoint() {
        let up = Upstream::new(InstanceId::new(), "http://10.0.0.7:8000/", false).unwrap();
        assert_eq!(
            up.uri(Endpoint::ChatCompletions).to_string(),
            "http://10.0.0.7:8000/v1/chat/completions"
        );
        assert_eq!(
            up.uri(Endpoint::Embeddings).to_string(),
            "http://10.0.0.7:8000/v1/embeddings"
        );
        let behind = Upstream::new(InstanceId::new(), "http://gpu-1.internal/vllm", false).unwrap();
        assert_eq!(
            behind.uri(Endpoint::Completions).to_string(),
            "http://gpu-1.internal/vllm/v1/completions"
        );
        for bad in ["https://tls.example", "ftp://x", "not a url", "http://", ""] {
            assert!(
                Upstream::new(InstanceId::new(), bad, false).is_none(),
                "{bad}"
            );
        }
    }
}
