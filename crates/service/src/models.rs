//! Models (SPEC §4.3): the public catalogue (`organization_id` NULL, written by platform admins
//! from the personal workspace) and org-private models (written by owner/admin). An org sees
//! the public catalogue plus its own; Personal sees the public catalogue.

use crate::Ctx;
use crate::audit::AuditEntry;
use crate::paging::{Page, PageRequest, page_of};
use crate::{Deps, ServiceError};
use inventiv_domain::ErrorCode;
use inventiv_domain::{
    Action, Activation, ActivationError, DisplayName, Flag, ModelId, OrgId, Scope, UserId,
    Workspace, authorize,
};
use inventiv_persistence::repo::models::{self, ModelFields, ModelRecord};
use inventiv_persistence::repo::namespaces::namespace_of;
use inventiv_persistence::{Constraint, StoreError, Tx};
use serde_json::json;
use time::OffsetDateTime;

/// A model of the public catalogue (no org) or of an org's own catalogue.
#[derive(Debug, Clone)]
pub struct Model {
    pub id: ModelId,
    /// None: the public catalogue.
    pub organization_id: Option<OrgId>,
    pub organization_name: Option<String>,
    pub name: String,
    /// e.g. a Hugging Face repo id.
    pub model_id: String,
    pub required_vram_gb: i32,
    pub context_length: i32,
    pub is_active: bool,
    /// An org model's two approvals (a public model has none and needs none).
    pub activation: Activation,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Model {
    /// The public catalogue needs no approval; an org model needs both (SPEC §1 v2).
    pub fn is_public(&self) -> bool {
        self.organization_id.is_none()
    }
}

impl From<ModelRecord> for Model {
    fn from(m: ModelRecord) -> Self {
        Model {
            id: m.id,
            organization_id: m.organization_id,
            organization_name: m.organization_name,
            name: m.name,
            model_id: m.model_id,
            required_vram_gb: m.required_vram_gb,
            context_length: m.context_length,
            is_active: m.is_active,
            activation: m.activation,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// `GET /models`.
pub async fn list(deps: &Deps, ctx: &Ctx, page: &PageRequest) -> Result<Page<Model>, ServiceError> {
    let actor = ctx.actor();
    authorize(&actor, Action::ViewModels)?;
    let (limit, after) = page.parse::<ModelId>()?;
    let rows = models::list(&deps.db, actor.scope(), after, limit + 1)
        .await?
        .into_iter()
        .map(Model::from)
        .collect();
    Ok(page_of(rows, limit, |m| m.id))
}

/// `GET /models/{id}`.
pub async fn get(deps: &Deps, ctx: &Ctx, id: ModelId) -> Result<Model, ServiceError> {
    let actor = ctx.actor();
    authorize(&actor, Action::ViewModels)?;
    models::find(&deps.db, actor.scope(), id)
        .await?
        .map(Model::from)
        .ok_or_else(|| ServiceError::not_found("model"))
}

/// `POST`/`PUT /models` input (validated into [`ModelFields`]). On create only `model_id` is
/// required; the others default ([`DEFAULT_CONTEXT_LENGTH`], see [`validate`]). A `PUT`
/// replaces the model and sends them all.
#[derive(Debug, Clone, Default)]
pub struct ModelInput {
    pub name: Option<String>,
    pub model_id: Option<String>,
    pub required_vram_gb: Option<i64>,
    pub context_length: Option<i64>,
    pub is_active: Option<bool>,
}

/// The context length a model gets when none is given: a common, conservative window. It
/// bounds a request's input and output at the proxy; set the model's real one to allow more.
pub const DEFAULT_CONTEXT_LENGTH: i64 = 4096;

/// Checks `input` and fills in the defaults (SPEC §4.3 v2): `name` = the `model_id` (its
/// first 100 characters), `required_vram_gb` = 0 (not stated), `context_length` =
/// [`DEFAULT_CONTEXT_LENGTH`], `is_active` = true.
fn validate(input: ModelInput) -> Result<ModelFields, ServiceError> {
    let Some(given_model_id) = input.model_id else {
        return Err(ServiceError::invalid(
            "model_id",
            "required: the model's id at the upstream server, e.g. meta-llama/Llama-3.1-8B \
             (name, required_vram_gb and context_length have defaults)",
        ));
    };
    // The bound is on what was sent (the schema's maxLength), then on what is kept.
    let model_id = given_model_id.trim().to_owned();
    if model_id.is_empty()
        || given_model_id.chars().count() > 200
        || !model_id.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(ServiceError::invalid(
            "model_id",
            "1 to 200 visible ASCII characters, e.g. meta-llama/Llama-3.1-8B",
        ));
    }
    let name = match input.name {
        Some(name) => DisplayName::parse("name", &name)?.into_inner(),
        None => {
            let default: String = model_id.chars().take(100).collect();
            DisplayName::parse("name", &default)?.into_inner()
        }
    };
    let required_vram_gb = i32::try_from(input.required_vram_gb.unwrap_or(0))
        .ok()
        .filter(|v| (0..=4096).contains(v))
        .ok_or_else(|| ServiceError::invalid("required_vram_gb", "0 to 4096"))?;
    let context_length = i32::try_from(input.context_length.unwrap_or(DEFAULT_CONTEXT_LENGTH))
        .ok()
        .filter(|v| (1..=100_000_000).contains(v))
        .ok_or_else(|| ServiceError::invalid("context_length", "1 to 100000000"))?;
    Ok(ModelFields {
        name,
        model_id,
        required_vram_gb,
        context_length,
        is_active: input.is_active.unwrap_or(true),
    })
}

/// The catalogue a writer writes to: its org, or (platform admin in Personal) the public one.
fn catalogue(scope: Scope) -> Option<OrgId> {
    match scope {
        Scope::Org(org) => Some(org),
        Scope::Personal(_) => None,
    }
}

fn namespace_taken(namespace: &str) -> ServiceError {
    ServiceError::Conflict {
        code: ErrorCode::NamespaceTaken,
        message: format!(
            "The namespace {namespace:?} belongs to an organization or is reserved; public models cannot use it."
        ),
    }
}

/// A public model's namespace must not be reserved (SPEC §5.1); whether an org owns it is
/// decided by the claim inside the write ([`models::insert`], [`models::update`]).
fn check_reserved(
    deps: &Deps,
    owner: Option<OrgId>,
    fields: &ModelFields,
) -> Result<(), ServiceError> {
    match (owner, namespace_of(&fields.model_id)) {
        (None, Some(namespace)) if deps.is_reserved_slug(&namespace) => {
            Err(namespace_taken(&namespace))
        }
        _ => Ok(()),
    }
}

fn taken(err: StoreError, fields: &ModelFields) -> ServiceError {
    match err {
        StoreError::Conflict(Constraint::ModelNamespace) => {
            namespace_taken(&namespace_of(&fields.model_id).unwrap_or_default())
        }
        StoreError::Conflict(Constraint::ModelOrgModelId | Constraint::ModelPublicModelId) => {
            ServiceError::Conflict {
                code: ErrorCode::ModelIdTaken,
                message: "This catalogue already has a model with this model_id.".to_owned(),
            }
        }
        other => other.into(),
    }
}

fn model_json(f: &ModelFields) -> serde_json::Value {
    json!({"name": f.name, "model_id": f.model_id, "required_vram_gb": f.required_vram_gb,
           "context_length": f.context_length, "is_active": f.is_active})
}

pub async fn create(deps: &Deps, ctx: &Ctx, input: ModelInput) -> Result<Model, ServiceError> {
    let actor = ctx.actor();
    authorize(&actor, Action::CreateModel)?;
    let fields = validate(input)?;
    let owner = catalogue(actor.scope());
    check_reserved(deps, owner, &fields)?;
    let id = ModelId::new();
    let now = ctx.now;
    let tx = ctx.begin_in_workspace(deps).await?;
    models::insert(&tx, actor.scope(), id, &fields, now)
        .await
        .map_err(|e| taken(e, &fields))?;
    ctx.record(
        &tx,
        AuditEntry {
            action: "model.created",
            organization: owner,
            target_type: "model",
            target_id: id.to_string(),
            before: None,
            after: Some(model_json(&fields)),
        },
    )
    .await?;
    let model = models::find(&tx, actor.scope(), id)
        .await?
        .ok_or_else(|| ServiceError::not_found("model"))?;
    tx.commit().await?;
    Ok(model.into())
}

/// The model, if the caller may see it, and whether it belongs to the caller's catalogue
/// (a public model seen from an org is readable but not writable: 403).
async fn writable(
    deps: &Deps,
    ctx: &Ctx,
    id: ModelId,
    action: Action,
) -> Result<(Scope, ModelRecord), ServiceError> {
    let actor = ctx.actor();
    authorize(&actor, Action::ViewModels)?;
    let scope = actor.scope();
    let model = models::find(&deps.db, scope, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("model"))?;
    authorize(&actor, action)?;
    if model.organization_id != catalogue(scope) {
        return Err(ServiceError::Forbidden {
            code: ErrorCode::Forbidden,
            message: "Public catalogue models are managed by platform admins.".to_owned(),
        });
    }
    Ok((scope, model))
}

pub async fn update(
    deps: &Deps,
    ctx: &Ctx,
    id: ModelId,
    input: ModelInput,
) -> Result<Model, ServiceError> {
    let (scope, _) = writable(deps, ctx, id, Action::UpdateModel).await?;
    let fields = validate(input)?;
    let now = ctx.now;
    let tx = deps.db.begin_write().await?;
    // Under the row's lock: the namespace check and the audited "before" are about the model
    // as this edit replaces it, not as a concurrent edit found it.
    let before = models::find_for_update(&tx, scope, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("model"))?;
    // A public model already in a reserved namespace (it predates the setting) stays editable;
    // only moving into one is refused.
    if namespace_of(&before.model_id) != namespace_of(&fields.model_id) {
        check_reserved(deps, catalogue(scope), &fields)?;
    }
    // What an offering publishes is this model: consumers accepted terms for it, and a share
    // is re-accepted when its offering's model changes (SPEC §4.4). Serving another model
    // under the same offering would bypass that: refused while the model is offered.
    if before.model_id != fields.model_id {
        let offered = models::offerings_of(&tx, id).await?;
        if offered > 0 {
            return Err(ServiceError::Conflict {
                code: ErrorCode::ModelInUse,
                message: format!(
                    "{offered} offering(s) publish this model; withdraw them, or add the other \
                     model to the catalogue and offer it instead."
                ),
            });
        }
    }
    if !models::update(&tx, scope, id, &fields, now)
        .await
        .map_err(|e| taken(e, &fields))?
    {
        return Err(ServiceError::not_found("model"));
    }
    ctx.record(&tx, AuditEntry {
            action: "model.updated",
            organization: catalogue(scope),
            target_type: "model",
            target_id: id.to_string(),
            before: Some(json!({"name": before.name, "model_id": before.model_id, "is_active": before.is_active})),
            after: Some(model_json(&fields)),
        },
    )
    .await?;
    let model = models::find(&tx, scope, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("model"))?;
    tx.commit().await?;
    Ok(model.into())
}

/// 409 `model_in_use` while any instance (live or in the cost history) or offering references it:
/// deactivate it instead (`is_active: false`).
pub async fn delete(deps: &Deps, ctx: &Ctx, id: ModelId) -> Result<(), ServiceError> {
    let (scope, _) = writable(deps, ctx, id, Action::DeleteModel).await?;
    let tx = deps.db.begin_write().await?;
    let before = models::find_for_update(&tx, scope, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("model"))?;
    let (live, total) = models::usage(&tx, scope, id).await?;
    if total > 0 {
        let message = if live > 0 {
            format!("{live} live instance(s) use this model; terminate them first.")
        } else {
            "Terminated instances reference this model in the cost history; deactivate it instead."
                .to_owned()
        };
        return Err(ServiceError::Conflict {
            code: ErrorCode::ModelInUse,
            message,
        });
    }
    // Offerings are not counted above: their RESTRICT foreign key refuses the DELETE, which is
    // also what catches an instance or offering created concurrently with this check.
    match models::delete(&tx, scope, id).await {
        Ok(true) => {}
        Ok(false) => return Err(ServiceError::not_found("model")),
        Err(StoreError::Conflict(Constraint::ModelInUse)) => {
            return Err(ServiceError::Conflict {
                code: ErrorCode::ModelInUse,
                message: "An offering or an instance uses this model; delete or terminate it \
                          first, or deactivate the model instead."
                    .to_owned(),
            });
        }
        Err(other) => return Err(other.into()),
    }
    ctx.record(
        &tx,
        AuditEntry {
            action: "model.deleted",
            organization: catalogue(scope),
            target_type: "model",
            target_id: id.to_string(),
            before: Some(json!({"name": before.name, "model_id": before.model_id})),
            after: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// `POST /models/{id}/activation` (SPEC §4.3 v2): tech by owner/admin, eco by owner/manager,
/// on a model of the current org; with the org's `require_distinct_activators`, one user may
/// not hold both flags (409). A public model needs no approval (409
/// `activation_not_applicable`); one seen from Personal likewise.
pub async fn set_activation(
    deps: &Deps,
    ctx: &Ctx,
    id: ModelId,
    flag: Flag,
    active: bool,
) -> Result<Model, ServiceError> {
    let actor = ctx.actor();
    // Visibility first: an out-of-scope id is 404 whatever the role.
    authorize(&actor, Action::ViewModels)?;
    let model = models::find(&deps.db, actor.scope(), id)
        .await?
        .ok_or_else(|| ServiceError::not_found("model"))?;
    let Workspace::Org { org, .. } = actor.workspace else {
        authorize(&actor, Action::SetActivation { flag })?;
        return Err(crate::activation::error(ActivationError::NotApplicable));
    };
    if model.organization_id.is_none() {
        authorize(&actor, Action::SetActivation { flag })?;
        return Err(crate::activation::error(ActivationError::NotApplicable));
    }
    crate::activation::set::<ModelRecord>(deps, ctx, org, id, flag, active)
        .await
        .map(Model::from)
}

impl crate::activation::Activatable for ModelRecord {
    type Id = ModelId;
    const KIND: &'static str = "model";
    const EVENT: &'static str = "model.activation_changed";
    const AUDITS_BEFORE: bool = true;

    async fn find(tx: &Tx, org: OrgId, id: ModelId) -> Result<Option<Self>, StoreError> {
        // An org scope sees the public catalogue too: only the org's own model is approved.
        Ok(models::find_for_update(tx, Scope::Org(org), id)
            .await?
            .filter(|m| m.organization_id == Some(org)))
    }

    fn activation(&self) -> &Activation {
        &self.activation
    }

    async fn set_flag(
        tx: &Tx,
        org: OrgId,
        id: ModelId,
        flag: Flag,
        by: Option<UserId>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        models::set_flag(tx, org, id, flag, by, now).await
    }
}
