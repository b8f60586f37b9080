//! API keys (SPEC §4.3, §6): personal keys (Personal workspace, owned by the caller) and org keys
//! (owner/admin). `sk-inv-` + 256 random bits; only the SHA-256 is stored; the secret is returned
//! once. A key acts as a `user` of its org (or as its owner in Personal) and may only read and
//! call models — never manage anything. An org key works only while its creator is a member
//! whose role may hold org keys (owner/admin): removal, demotion, leaving, disabling or
//! deleting the account revokes it in the same transaction (see [`revoke_with_owner`]).

use crate::Ctx;
use crate::audit::{AuditActor, AuditEntry, record};
use crate::auth::{ApiKeyRef, Principal, Via};
use crate::paging::{Page, PageRequest, page_of};
use crate::{Deps, RequestMeta, ServiceError};
use inventiv_domain::ErrorCode;
use inventiv_domain::{
    Action, Activation, ActivationError, ApiKeyId, DisplayName, Email, Flag, OrgId, Role, Scope,
    UserId, Workspace, authorize, may_hold_org_api_keys,
};
use inventiv_persistence::repo::api_keys::{self, ApiKeyRecord, KeyAuth, NewApiKey};
use inventiv_persistence::{StoreError, Tag, Tx};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

/// A key as its scope sees it: metadata and spend, never the secret nor its hash.
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: ApiKeyId,
    /// None: a personal key.
    pub organization_id: Option<OrgId>,
    pub organization_name: Option<String>,
    pub owner_user_id: UserId,
    pub name: String,
    pub key_prefix: String,
    /// Offering/model names this key may call (None: any the scope allows).
    pub allowed_models: Option<Vec<String>>,
    pub expires_at: Option<OffsetDateTime>,
    pub last_used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    /// The monthly spend ceiling in micro-EUR (None: none), this month's spend, and the budget
    /// held for calls in flight.
    pub monthly_cap_micros: Option<i64>,
    pub spent_this_month_micros: i64,
    pub reserved_micros: i64,
    /// An org key's two approvals (a personal key has none and needs none).
    pub activation: Activation,
}

impl From<ApiKeyRecord> for ApiKey {
    fn from(k: ApiKeyRecord) -> Self {
        ApiKey {
            id: k.id,
            organization_id: k.organization_id,
            organization_name: k.organization_name,
            owner_user_id: k.owner_user_id,
            name: k.name,
            key_prefix: k.key_prefix,
            allowed_models: k.allowed_models,
            expires_at: k.expires_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
            created_at: k.created_at,
            monthly_cap_micros: k.monthly_cap_micros,
            spent_this_month_micros: k.spent_this_month_micros,
            reserved_micros: k.reserved_micros,
            activation: k.activation,
        }
    }
}

/// Every key starts with this, so leaked keys are easy to recognize (and to scan for).
pub const KEY_PREFIX: &str = "sk-inv-";

/// `last_used_at` is written at most this often per key.
const TOUCH_EVERY: Duration = Duration::minutes(1);

fn key_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new key: its secret (shown once), the prefix kept to recognise it, and the hash stored.
pub(crate) struct NewSecret {
    pub(crate) secret: String,
    pub(crate) prefix: String,
    pub(crate) hash: String,
}

pub(crate) fn new_secret() -> NewSecret {
    let secret = format!("{KEY_PREFIX}{}", crate::tokens::random_token(32));
    NewSecret {
        prefix: secret.chars().take(KEY_PREFIX.len() + 6).collect(),
        hash: key_hash(&secret),
        secret,
    }
}

fn scope_org(scope: Scope) -> Option<inventiv_domain::OrgId> {
    match scope {
        Scope::Org(org) => Some(org),
        Scope::Personal(_) => None,
    }
}

/// `GET /api_keys`: the org's keys, or my personal keys (metadata only, never a secret).
pub async fn list(
    deps: &Deps,
    ctx: &Ctx,
    page: &PageRequest,
) -> Result<Page<ApiKey>, ServiceError> {
    let actor = ctx.actor();
    authorize(&actor, Action::ViewApiKeys)?;
    let (limit, before) = page.parse::<ApiKeyId>()?;
    let mut keys = api_keys::list(&deps.db, actor.scope(), before, limit + 1).await?;
    api_keys::with_spend(&deps.db, &mut keys, this_month(deps)).await?;
    let keys = keys.into_iter().map(ApiKey::from).collect();
    Ok(page_of(keys, limit, |k| k.id))
}

fn this_month(deps: &Deps) -> i32 {
    inventiv_persistence::repo::spend::month_of(deps.clock.now())
}

/// A monthly cap as given: an amount of micro-EUR ≥ 0. Who may set one: for an org key the
/// economic side (owner/manager), for a personal key its owner.
fn cap(ctx: &Ctx, cap: Option<i64>) -> Result<Option<i64>, ServiceError> {
    let actor = ctx.actor();
    if matches!(actor.workspace, Workspace::Org { .. }) {
        authorize(&actor, Action::SetPrice)?;
    }
    match cap {
        Some(c) if c < 0 => Err(ServiceError::invalid(
            "monthly_cap_micros",
            "an amount of micro-EUR ≥ 0, or null for no cap",
        )),
        other => Ok(other),
    }
}

/// `POST /api_keys` input.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    pub name: String,
    pub expires_at: Option<OffsetDateTime>,
    pub allowed_models: Option<Vec<String>>,
    /// micro-EUR per calendar month (UTC); None: no cap.
    pub monthly_cap_micros: Option<i64>,
}

fn valid_name(name: &str) -> Result<String, ServiceError> {
    Ok(DisplayName::parse("name", name)?.into_inner())
}

/// Creates a key; returns it with its secret — the only time the secret is shown.
pub async fn create(
    deps: &Deps,
    ctx: &Ctx,
    input: NewKey,
) -> Result<(ApiKey, String), ServiceError> {
    let actor = ctx.actor();
    authorize(&actor, Action::CreateApiKey)?;
    let scope = actor.scope();
    let name = valid_name(&input.name)?;
    let monthly_cap_micros = match input.monthly_cap_micros {
        Some(c) => cap(ctx, Some(c))?,
        None => None,
    };
    let now = ctx.now;
    if input.expires_at.is_some_and(|t| t <= now) {
        return Err(ServiceError::invalid("expires_at", "must be in the future"));
    }
    if let Some(models) = &input.allowed_models
        && (models.is_empty()
            || models.len() > 100
            || models
                .iter()
                .any(|m| m.is_empty() || m.len() > 200 || !m.chars().all(|c| c.is_ascii_graphic())))
    {
        return Err(ServiceError::invalid(
            "allowed_models",
            "1 to 100 model names of 1 to 200 visible characters",
        ));
    }
    let NewSecret {
        secret,
        prefix,
        hash,
    } = new_secret();
    let id = ApiKeyId::new();
    let tx = ctx.begin_in_workspace(deps).await?;
    api_keys::insert(
        &tx,
        scope,
        NewApiKey {
            id,
            owner: ctx.user_id(),
            name: &name,
            key_prefix: &prefix,
            key_hash: &hash,
            allowed_models: input.allowed_models.as_deref(),
            expires_at: input.expires_at,
            monthly_cap_micros,
            now,
        },
    )
    .await?;
    ctx.record(
        &tx,
        AuditEntry {
            action: "api_key.created",
            organization: scope_org(scope),
            target_type: "api_key",
            target_id: id.to_string(),
            before: None,
            after: Some(
                json!({"name": name, "prefix": prefix, "allowed_models": input.allowed_models,
                               "expires_at": input.expires_at.map(crate::audit::timestamp),
                               "monthly_cap_micros": monthly_cap_micros}),
            ),
        },
    )
    .await?;
    let key = api_keys::find(&tx, scope, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("api key"))?;
    tx.commit().await?;
    Ok((key.into(), secret))
}

/// Loads a key of the caller's scope for a change (view first: out of scope is 404).
/// The key `id` of the caller's scope (404 outside it), once `action` is allowed.
async fn changeable(
    deps: &Deps,
    ctx: &Ctx,
    id: ApiKeyId,
    action: Option<Action>,
) -> Result<(Scope, ApiKeyRecord), ServiceError> {
    let actor = ctx.actor();
    authorize(&actor, Action::ViewApiKeys)?;
    let key = api_keys::find(&deps.db, actor.scope(), id)
        .await?
        .ok_or_else(|| ServiceError::not_found("api key"))?;
    if let Some(action) = action {
        authorize(&actor, action)?;
    }
    Ok((actor.scope(), key))
}

/// `PUT /api_keys/{id}`: what changes (absent fields keep their value).
#[derive(Debug, Clone, Default)]
pub struct KeyChange {
    pub name: Option<String>,
    /// Some(None) removes the cap.
    pub monthly_cap_micros: Option<Option<i64>>,
}

pub async fn update(
    deps: &Deps,
    ctx: &Ctx,
    id: ApiKeyId,
    change: KeyChange,
) -> Result<ApiKey, ServiceError> {
    // A session's change: a key never changes keys, its own cap least of all (the http
    // layer refuses key writes before routing; this holds without it).
    ctx.session()?;
    let actor = ctx.actor();
    authorize(&actor, Action::ViewApiKeys)?;
    let scope = actor.scope();
    // The key is read in the transaction that changes it, its row locked: two concurrent
    // renames each audit the name the other left, not the one both saw before.
    let tx = deps.db.begin_write().await?;
    let mut key = api_keys::find_for_update(&tx, scope, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("api key"))?;
    // Renaming is key management (owner/admin); the cap is the economic side's (see `cap`).
    if change.name.is_some() {
        authorize(&actor, Action::RevokeApiKey)?;
    }
    let name = change.name.as_deref().map(valid_name).transpose()?;
    let new_cap = change.monthly_cap_micros.map(|c| cap(ctx, c)).transpose()?;
    if let Some(name) = name {
        api_keys::rename(&tx, scope, id, &name).await?;
        audit_key_change(
            &tx,
            ctx,
            scope,
            id,
            "api_key.renamed",
            json!({"name": key.name}),
            json!({"name": name}),
        )
        .await?;
        key.name = name;
    }
    if let Some(cap) = new_cap {
        api_keys::set_cap(&tx, scope, id, cap).await?;
        audit_key_change(
            &tx,
            ctx,
            scope,
            id,
            "api_key.cap_changed",
            json!({"monthly_cap_micros": key.monthly_cap_micros}),
            json!({"monthly_cap_micros": cap}),
        )
        .await?;
        key.monthly_cap_micros = cap;
    }
    api_keys::with_spend(&tx, std::slice::from_mut(&mut key), this_month(deps)).await?;
    tx.commit().await?;
    Ok(key.into())
}

async fn audit_key_change(
    tx: &inventiv_persistence::Tx,
    ctx: &Ctx,
    scope: Scope,
    id: ApiKeyId,
    action: &'static str,
    before: serde_json::Value,
    after: serde_json::Value,
) -> Result<(), ServiceError> {
    ctx.record(
        tx,
        AuditEntry {
            action,
            organization: scope_org(scope),
            target_type: "api_key",
            target_id: id.to_string(),
            before: Some(before),
            after: Some(after),
        },
    )
    .await?;
    Ok(())
}

pub async fn revoke(deps: &Deps, ctx: &Ctx, id: ApiKeyId) -> Result<(), ServiceError> {
    let (scope, key) = changeable(deps, ctx, id, Some(Action::RevokeApiKey)).await?;
    let now = ctx.now;
    let tx = deps.db.begin_write().await?;
    if !api_keys::revoke(&tx, scope, id, now).await? {
        return Err(ServiceError::Conflict {
            code: ErrorCode::AlreadyRevoked,
            message: "This key is already revoked.".to_owned(),
        });
    }
    ctx.record(
        &tx,
        AuditEntry {
            action: "api_key.revoked",
            organization: scope_org(scope),
            target_type: "api_key",
            target_id: id.to_string(),
            before: Some(json!({"name": key.name, "prefix": key.key_prefix})),
            after: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Whose live keys [`revoke_with_owner`] revokes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum OwnedKeys {
    /// The org keys `user` created in `org` (membership removed, or role lowered).
    InOrg { org: OrgId, user: UserId },
    /// Every key of `user`, personal and org (account disabled or deleted).
    All(UserId),
}

/// Revokes the live keys `which` designates in `tx` — the transaction that removes, demotes,
/// disables or deletes their owner — with one `api_key.revoked` event per key giving `reason`
/// (`member_removed`, `member_left`, `role_changed`, `account_disabled`, `account_deleted`).
/// Returns how many keys went.
///
/// Lock order: the keys' rows first (as a key's own changes take them), then the chain heads
/// of their orgs together with those of `heads` — the other org chains the caller's
/// transaction appends to — in one ascending pass, and the platform chain last.
pub(crate) async fn revoke_with_owner(
    tx: &inventiv_persistence::Tx,
    now: OffsetDateTime,
    actor: AuditActor,
    meta: &RequestMeta,
    which: OwnedKeys,
    reason: &'static str,
    heads: &[OrgId],
) -> Result<u64, ServiceError> {
    let revoked = match which {
        OwnedKeys::InOrg { org, user } => {
            api_keys::revoke_created_by(tx, Scope::Org(org), user, now).await?
        }
        OwnedKeys::All(user) => api_keys::revoke_all_of_account(tx, user, now).await?,
    };
    let orgs: Vec<OrgId> = revoked
        .iter()
        .filter_map(|k| k.organization_id)
        .chain(heads.iter().copied())
        .collect();
    inventiv_persistence::repo::audit::lock_heads(tx, &orgs).await?;
    for key in &revoked {
        record(
            tx,
            now,
            actor,
            meta,
            AuditEntry {
                action: "api_key.revoked",
                organization: key.organization_id,
                target_type: "api_key",
                target_id: key.id.to_string(),
                before: Some(json!({"name": key.name, "prefix": key.key_prefix})),
                after: Some(json!({"reason": reason})),
            },
        )
        .await?;
    }
    Ok(revoked.len() as u64)
}

/// Reads the key with this hash (with its owner and their membership of the key's org) and
/// caches it, valid until the key, its owner, that membership or that org changes.
async fn fetch(deps: &Deps, hash: &str) -> Result<KeyAuth, ServiceError> {
    let cache = &deps.caches.keys;
    let stamp = cache.stamp(&deps.db);
    let found = api_keys::find_by_hash(&deps.db, hash)
        .await?
        .ok_or_else(invalid_key)?;
    let key = &found.key;
    let mut tags = vec![Tag::ApiKey(key.id), Tag::User(key.owner_user_id)];
    if let Some(org) = key.organization_id {
        tags.extend([Tag::Membership(org, key.owner_user_id), Tag::Org(org)]);
    }
    cache.put(hash.to_owned(), stamp, tags, found.clone());
    Ok(found)
}

fn invalid_key() -> ServiceError {
    ServiceError::Unauthenticated {
        code: ErrorCode::InvalidApiKey,
        message: "The API key is invalid, revoked or expired.".to_owned(),
    }
}

/// Authenticates a request by API key (revocation and expiry checked on every request).
pub async fn authenticate(deps: &Deps, secret: &str) -> Result<Principal, ServiceError> {
    if !secret.starts_with(KEY_PREFIX) || secret.len() > 200 {
        return Err(invalid_key());
    }
    let hash = key_hash(secret);
    let found = match deps.caches.keys.get(&deps.db, &hash) {
        Some(cached) => cached,
        None => fetch(deps, &hash).await?,
    };
    // The lookup was by hash; compare again in constant time so no path depends on timing.
    if !bool::from(found.key_hash.trim().as_bytes().ct_eq(hash.as_bytes())) {
        return Err(invalid_key());
    }
    let now = deps.clock.now();
    let key = found.key.clone();
    if key.revoked_at.is_some() || key.expires_at.is_some_and(|t| now >= t) || found.user_disabled {
        return Err(invalid_key());
    }
    // Defence in depth (SPEC §6 v2): removal and demotion revoke the creator's org keys in
    // their own transaction; an org key whose creator is not, now, a member who may hold org
    // keys is refused here too, whatever path changed the membership. The lookup joins the
    // membership, and the cache entry dies with the write that changed it (its tag).
    if key.organization_id.is_some() && !found.creator_role.is_some_and(may_hold_org_api_keys) {
        return Err(invalid_key());
    }
    // SPEC §4.3 v2: an org key works only once both approvals are on (a valid key, refused:
    // 403, so its holder knows to ask for the approvals rather than for a new key).
    if !key.operational() {
        return Err(ServiceError::Forbidden {
            code: ErrorCode::ApiKeyNotOperational,
            message: format!(
                "This organization API key is not operational yet: it still needs the {} approval(s).",
                key.activation
                    .missing(false)
                    .iter()
                    .map(|f| f.as_str())
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        });
    }
    if key.last_used_at.is_none_or(|t| now - t >= TOUCH_EVERY) {
        api_keys::touch(&deps.db, key.scope(), key.id, now).await?;
        // The touch is not a transaction (it invalidates nothing): refresh the cached copy.
        deps.caches
            .keys
            .update(&hash, |cached| cached.key.last_used_at = Some(now));
    }
    let workspace = match key.organization_id {
        // A key acts as a `user` of its org, whatever its creator's role.
        Some(org) => Workspace::Org {
            org,
            role: Role::User,
        },
        None => Workspace::Personal,
    };
    Ok(Principal {
        user_id: key.owner_user_id,
        email: Email::parse(&found.email)?,
        is_platform_admin: false,
        workspace,
        via: Via::ApiKey(ApiKeyRef {
            id: key.id,
            allowed_models: key.allowed_models,
            monthly_cap_micros: key.monthly_cap_micros,
        }),
    })
}

/// `POST /api_keys/{id}/activation` (SPEC §4.3 v2): tech by owner/admin, eco by owner/manager,
/// on a key of the current org; with the org's `require_distinct_activators`, one user may not
/// hold both flags (409). Personal keys need no approval (from Personal: 403
/// `organization_required`, as for a personal instance).
/// The key's tag is marked in the write, so the next request sees the change.
pub async fn set_activation(
    deps: &Deps,
    ctx: &Ctx,
    id: ApiKeyId,
    flag: Flag,
    active: bool,
) -> Result<ApiKey, ServiceError> {
    let actor = ctx.actor();
    // Visibility first: an out-of-scope id is 404 whatever the role.
    authorize(&actor, Action::ViewApiKeys)?;
    api_keys::find(&deps.db, actor.scope(), id)
        .await?
        .ok_or_else(|| ServiceError::not_found("api key"))?;
    let Workspace::Org { org, .. } = actor.workspace else {
        authorize(&actor, Action::SetActivation { flag })?;
        return Err(crate::activation::error(ActivationError::NotApplicable));
    };
    let mut key = crate::activation::set::<ApiKeyRecord>(deps, ctx, org, id, flag, active).await?;
    api_keys::with_spend(&deps.db, std::slice::from_mut(&mut key), this_month(deps)).await?;
    Ok(key.into())
}

impl crate::activation::Activatable for ApiKeyRecord {
    type Id = ApiKeyId;
    const KIND: &'static str = "api_key";
    const EVENT: &'static str = "api_key.activation_changed";
    const AUDITS_BEFORE: bool = true;

    async fn find(tx: &Tx, org: OrgId, id: ApiKeyId) -> Result<Option<Self>, StoreError> {
        api_keys::find_for_update(tx, Scope::Org(org), id).await
    }

    fn activation(&self) -> &Activation {
        &self.activation
    }

    async fn set_flag(
        tx: &Tx,
        org: OrgId,
        id: ApiKeyId,
        flag: Flag,
        by: Option<UserId>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        api_keys::set_flag(tx, org, id, flag, by, now).await
    }
}
