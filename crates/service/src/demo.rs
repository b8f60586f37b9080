//! `inventiv-server seed-demo`: two organizations with a member of every role, public and
//! private models and instances (one operational, one waiting for the economic approval), plus
//! a personal user with a legacy instance — a realistic system to look at in a minute.
//! Idempotent: a second run finds the demo orgs and creates nothing.

use crate::audit::{AuditActor, AuditEntry, record};
use crate::{Deps, RequestMeta, ServiceError};
use inventiv_domain::{
    ApiKeyId, Email, Flag, InstanceId, ModelId, OrgId, OrgName, Password, Role, Scope, Slug, UserId,
};
use inventiv_persistence::Tx;
use inventiv_persistence::repo::api_keys::{self, NewApiKey};
use inventiv_persistence::repo::instances::{self, NewInstance};
use inventiv_persistence::repo::models::{self, ModelFields};
use inventiv_persistence::repo::{memberships, organizations, users};
use serde_json::json;

/// Every demo account's password (demo data only: never seed a production database).
pub const DEMO_PASSWORD: &str = "inventiv-demo";

/// A demo login to print.
#[derive(Debug, Clone)]
pub struct DemoLogin {
    pub email: String,
    pub description: String,
}

#[derive(Debug, Clone)]
pub struct DemoOutcome {
    pub created: bool,
    pub logins: Vec<DemoLogin>,
    /// Created this run only (its secret is never stored): an approved key of the first
    /// org, and the model it can call there (served by the mock provider).
    pub try_it: Option<DemoCall>,
}

/// What `make demo` prints to call the proxy.
#[derive(Debug, Clone)]
pub struct DemoCall {
    pub api_key: String,
    pub model: &'static str,
}

struct DemoOrg {
    name: &'static str,
    slug: &'static str,
    domain: &'static str,
    people: [(&'static str, Role); 4],
    private_model: (&'static str, &'static str),
}

const ORGS: [DemoOrg; 2] = [
    DemoOrg {
        name: "Acme AI",
        slug: "acme",
        domain: "acme.demo",
        people: [
            ("alice", Role::Owner),
            ("adam", Role::Admin),
            ("maya", Role::Manager),
            ("ursula", Role::User),
        ],
        private_model: ("Acme Support Bot", "acme/support-bot-v2"),
    },
    DemoOrg {
        name: "Globex Labs",
        slug: "globex",
        domain: "globex.demo",
        people: [
            ("gary", Role::Owner),
            ("gina", Role::Admin),
            ("mona", Role::Manager),
            ("uma", Role::User),
        ],
        private_model: ("Globex Legal 13B", "globex/legal-13b"),
    },
];

const PUBLIC_MODELS: [(&str, &str, i32, i32); 2] = [
    (
        "Llama 3.1 8B Instruct",
        "meta-llama/Llama-3.1-8B-Instruct",
        16,
        131_072,
    ),
    (
        "Mistral 7B Instruct",
        "mistralai/Mistral-7B-Instruct-v0.3",
        16,
        32_768,
    ),
];

const PERSONAL_USER: &str = "pat@demo.inventiv.local";

fn logins() -> Vec<DemoLogin> {
    let mut out: Vec<DemoLogin> = ORGS
        .iter()
        .flat_map(|org| {
            org.people.iter().map(move |(name, role)| DemoLogin {
                email: format!("{name}@{}", org.domain),
                description: format!("{} of {}", role.as_str(), org.name),
            })
        })
        .collect();
    out.push(DemoLogin {
        email: PERSONAL_USER.to_owned(),
        description: "no organization; a personal instance".to_owned(),
    });
    out
}

async fn event(
    tx: &Tx,
    deps: &Deps,
    org: Option<OrgId>,
    action: &'static str,
    target: (&'static str, String),
    after: serde_json::Value,
) -> Result<(), ServiceError> {
    let entry = AuditEntry {
        action,
        organization: org,
        target_type: target.0,
        target_id: target.1,
        before: None,
        after: Some(json!({"via": "seed-demo", "data": after})),
    };
    record(
        tx,
        deps.clock.now(),
        AuditActor::default(),
        &RequestMeta::default(),
        entry,
    )
    .await?;
    Ok(())
}

async fn user(tx: &Tx, deps: &Deps, email: &str, hash: &str) -> Result<UserId, ServiceError> {
    let email = Email::parse(email)?;
    if let Some(existing) = users::find_by_email(tx, &email).await? {
        return Ok(existing.id);
    }
    let (first, _) = email
        .as_str()
        .split_once('@')
        .unwrap_or((email.as_str(), ""));
    let mut first = first.to_owned();
    if let Some(c) = first.get_mut(0..1) {
        c.make_ascii_uppercase();
    }
    let new = users::NewUser {
        id: UserId::new(),
        email: &email,
        username: None,
        first_name: Some(&first),
        last_name: Some("Demo"),
        password_hash: hash,
        is_platform_admin: false,
        now: deps.clock.now(),
    };
    let after = json!({"via": "seed-demo", "data": {"email": email.as_str()}});
    let created = crate::accounts::create_in(
        tx,
        new,
        AuditActor::default(),
        &RequestMeta::default(),
        after,
    )
    .await?
    .map_err(|_| ServiceError::internal(anyhow::anyhow!("{email} appeared mid-seed")))?;
    Ok(created.id)
}

async fn model(
    tx: &Tx,
    deps: &Deps,
    owner: Option<OrgId>,
    name: &str,
    model_id: &str,
    vram: i32,
    context: i32,
) -> Result<ModelId, ServiceError> {
    let scope = owner.map_or(
        Scope::Personal(UserId::from_uuid(uuid::Uuid::nil())),
        Scope::Org,
    );
    let existing = models::list(tx, scope, None, 1000).await?;
    if let Some(found) = existing
        .into_iter()
        .find(|m| m.model_id == model_id && m.organization_id == owner)
    {
        return Ok(found.id);
    }
    let id = ModelId::new();
    let fields = ModelFields {
        name: name.to_owned(),
        model_id: model_id.to_owned(),
        required_vram_gb: vram,
        context_length: context,
        is_active: true,
    };
    models::insert(tx, scope, id, &fields, deps.clock.now()).await?;
    event(
        tx,
        deps,
        owner,
        "model.created",
        ("model", id.to_string()),
        json!({"model_id": model_id}),
    )
    .await?;
    Ok(id)
}

async fn instance(
    tx: &Tx,
    deps: &Deps,
    scope: Scope,
    owner: UserId,
    model: ModelId,
    approvals: (Option<UserId>, Option<UserId>),
) -> Result<(), ServiceError> {
    let id = InstanceId::new();
    let now = deps.clock.now();
    let cost = deps
        .providers
        .get("mock")
        .map_or(0, |p| p.default_hourly_cost_micros());
    instances::insert(
        tx,
        scope,
        NewInstance {
            id,
            owner,
            model,
            provider: "mock",
            zone: Some("eu-west-1"),
            instance_type: Some("gpu-l4-24gb"),
            endpoint_url: None,
            hourly_cost_micros: cost,
            now,
        },
    )
    .await?;
    let org = match scope {
        Scope::Org(org) => Some(org),
        Scope::Personal(_) => None,
    };
    event(
        tx,
        deps,
        org,
        "instance.created",
        ("instance", id.to_string()),
        json!({"provider": "mock"}),
    )
    .await?;
    for (flag, by) in [(Flag::Tech, approvals.0), (Flag::Eco, approvals.1)] {
        if let Some(by) = by {
            instances::set_flag(tx, scope, id, flag, Some(by), now).await?;
        }
    }
    Ok(())
}

/// Seeds the demo data (once).
pub async fn seed(deps: &Deps) -> Result<DemoOutcome, ServiceError> {
    let first = Slug::parse(ORGS[0].slug)?;
    if organizations::find_by_slug(&deps.db, &first)
        .await?
        .is_some()
    {
        return Ok(DemoOutcome {
            created: false,
            logins: logins(),
            try_it: None,
        });
    }
    let hash = deps
        .passwords
        .hash(&Password::parse(DEMO_PASSWORD)?)
        .await?;
    let tx = deps.db.begin_write().await?;
    let mut try_it = None;
    let mut public = Vec::new();
    for (name, model_id, vram, context) in PUBLIC_MODELS {
        public.push(model(&tx, deps, None, name, model_id, vram, context).await?);
    }
    for demo in &ORGS {
        let mut members = Vec::new();
        for (name, role) in demo.people {
            members.push((
                user(&tx, deps, &format!("{name}@{}", demo.domain), &hash).await?,
                role,
            ));
        }
        let org = organizations::insert(
            &tx,
            organizations::NewOrg {
                id: OrgId::new(),
                name: &OrgName::parse(demo.name)?,
                slug: &Slug::parse(demo.slug)?,
                created_by: members.first().map(|m| m.0),
                now: deps.clock.now(),
            },
        )
        .await?;
        event(
            &tx,
            deps,
            Some(org.id),
            "org.created",
            ("organization", org.id.to_string()),
            json!({"name": demo.name}),
        )
        .await?;
        for (user_id, role) in &members {
            memberships::insert(&tx, org.id, *user_id, *role, deps.clock.now()).await?;
            event(
                &tx,
                deps,
                Some(org.id),
                "member.added",
                ("user", user_id.to_string()),
                json!({"role": role.as_str()}),
            )
            .await?;
        }
        let private = model(
            &tx,
            deps,
            Some(org.id),
            demo.private_model.0,
            demo.private_model.1,
            24,
            8192,
        )
        .await?;
        let (owner, admin, manager) = (members[0].0, members[1].0, members[2].0);
        // The org model is approved (tech by the admin, eco by the manager): its offerings
        // can carry traffic.
        for (flag, by) in [(Flag::Tech, admin), (Flag::Eco, manager)] {
            models::set_flag(&tx, org.id, private, flag, Some(by), deps.clock.now()).await?;
            event(
                &tx,
                deps,
                Some(org.id),
                "model.activation_changed",
                ("model", private.to_string()),
                json!({"flag": flag.as_str(), "active": true}),
            )
            .await?;
        }
        // One operational instance (both approvals), one waiting for the economic approval.
        instance(
            &tx,
            deps,
            Scope::Org(org.id),
            admin,
            public[0],
            (Some(admin), Some(manager)),
        )
        .await?;
        instance(
            &tx,
            deps,
            Scope::Org(org.id),
            owner,
            private,
            (Some(admin), None),
        )
        .await?;
        if try_it.is_none() {
            try_it = Some(DemoCall {
                api_key: demo_key(&tx, deps, org.id, admin, manager).await?,
                model: PUBLIC_MODELS[0].1,
            });
        }
    }
    let pat = user(&tx, deps, PERSONAL_USER, &hash).await?;
    instance(
        &tx,
        deps,
        Scope::Personal(pat),
        pat,
        public[1],
        (None, None),
    )
    .await?;
    tx.commit().await?;
    Ok(DemoOutcome {
        created: true,
        logins: logins(),
        try_it,
    })
}

/// An org key of `org`, created by its admin and approved (tech: admin, eco: manager), so
/// the first call through the proxy works at once. Returns its secret.
async fn demo_key(
    tx: &Tx,
    deps: &Deps,
    org: OrgId,
    admin: UserId,
    manager: UserId,
) -> Result<String, ServiceError> {
    let id = ApiKeyId::new();
    let now = deps.clock.now();
    let key = crate::api_keys::new_secret();
    api_keys::insert(
        tx,
        Scope::Org(org),
        NewApiKey {
            id,
            owner: admin,
            name: "Demo key",
            key_prefix: &key.prefix,
            key_hash: &key.hash,
            allowed_models: None,
            expires_at: None,
            monthly_cap_micros: None,
            now,
        },
    )
    .await?;
    event(
        tx,
        deps,
        Some(org),
        "api_key.created",
        ("api_key", id.to_string()),
        json!({"name": "Demo key"}),
    )
    .await?;
    for (flag, by) in [(Flag::Tech, admin), (Flag::Eco, manager)] {
        api_keys::set_flag(tx, org, id, flag, Some(by), now).await?;
        event(
            tx,
            deps,
            Some(org),
            "api_key.activation_changed",
            ("api_key", id.to_string()),
            json!({"flag": flag.as_str(), "active": true}),
        )
        .await?;
    }
    Ok(key.secret)
}
