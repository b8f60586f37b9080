//! The idempotent start-up bootstrap: a platform admin owning the organization "Inventiv IT".
//!
//! Runs on every start (and on `inventiv-server bootstrap`). It creates what is missing and
//! nothing twice: a second run — or a second replica racing the first — finds the rows and
//! does nothing. A generated admin password is returned exactly once, when the account is
//! created; only its hash is stored.

use crate::audit::{self, AuditActor, AuditEntry};
use crate::{Deps, RequestMeta, ServiceError};
use inventiv_domain::ErrorCode;
use inventiv_domain::{Email, OrgId, OrgName, Password, Role, Slug, UserId};
use inventiv_persistence::repo::{memberships, organizations, users};
use inventiv_persistence::{Constraint, StoreError};
use serde_json::json;

/// `[bootstrap]` settings.
#[derive(Debug, Clone)]
pub struct BootstrapSettings {
    pub admin_email: Email,
    /// `None`: generate one (printed once by the server).
    pub admin_password: Option<Password>,
    pub org_name: OrgName,
    pub org_slug: Slug,
}

/// What this run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapOutcome {
    pub admin_email: String,
    pub admin_created: bool,
    /// Set only when the admin was created now with a generated password.
    pub generated_password: Option<String>,
    pub org_created: bool,
}

/// Ensures the platform admin and the bootstrap organization exist.
pub async fn run(
    deps: &Deps,
    settings: &BootstrapSettings,
) -> Result<BootstrapOutcome, ServiceError> {
    // A concurrent replica may win the race between our read and our insert: the unique
    // constraint refuses our row, and the second attempt finds theirs.
    match attempt(deps, settings).await {
        Err(ServiceError::Internal(err)) if is_race(&err) => attempt(deps, settings).await,
        other => other,
    }
}

fn is_race(err: &anyhow::Error) -> bool {
    matches!(
        err.downcast_ref::<StoreError>(),
        Some(StoreError::Conflict(
            Constraint::UserEmail | Constraint::OrganizationSlug | Constraint::MembershipPrimaryKey
        ))
    )
}

async fn attempt(
    deps: &Deps,
    settings: &BootstrapSettings,
) -> Result<BootstrapOutcome, ServiceError> {
    let existing = users::find_by_email(&deps.db, &settings.admin_email).await?;
    // Hash before the transaction: argon2 is slow and must not hold the write lock.
    let (generated_password, new_hash) = match (&existing, &settings.admin_password) {
        (Some(_), _) => (None, None),
        (None, Some(pw)) => (None, Some(deps.passwords.hash(pw).await?)),
        (None, None) => {
            let pw = Password::parse(&crate::tokens::random_password(20))?;
            let hash = deps.passwords.hash(&pw).await?;
            (Some(pw.as_str().to_owned()), Some(hash))
        }
    };

    let now = deps.clock.now();
    let meta = RequestMeta::default();
    let system = AuditActor::default();
    let tx = deps.db.begin_write().await?;

    let (admin_id, admin_created) = match users::find_by_email(&tx, &settings.admin_email).await? {
        Some(user) => {
            if !user.is_platform_admin {
                tracing::warn!(
                    "bootstrap admin account exists but is not a platform admin; leaving it unchanged"
                );
            }
            (user.id, false)
        }
        None => {
            let hash = new_hash.ok_or_else(|| {
                ServiceError::internal(anyhow::anyhow!(
                    "admin appeared and vanished during bootstrap"
                ))
            })?;
            let new = users::NewUser {
                id: UserId::new(),
                email: &settings.admin_email,
                username: None,
                first_name: Some("Platform"),
                last_name: Some("Admin"),
                password_hash: &hash,
                is_platform_admin: true,
                now,
            };
            let after = json!({"email": settings.admin_email.as_str(), "is_platform_admin": true, "via": "bootstrap"});
            // Another replica bootstrapping at the same instant took the email first: a lost
            // race, which `bootstrap` answers by running the attempt again (see `is_race`).
            let user = crate::accounts::create_in(&tx, new, system, &meta, after)
                .await?
                .map_err(|_| internal_store(StoreError::Conflict(Constraint::UserEmail)))?;
            (user.id, true)
        }
    };

    let org_created = match organizations::find_by_slug(&tx, &settings.org_slug).await? {
        Some(_) => false,
        None => {
            let org = organizations::insert(
                &tx,
                organizations::NewOrg {
                    id: OrgId::new(),
                    name: &settings.org_name,
                    slug: &settings.org_slug,
                    created_by: Some(admin_id),
                    now,
                },
            )
            .await
            .map_err(|err| match err {
                // The insert claims the slug as a model namespace (SPEC §5.1): a public
                // catalogue namespace or a deleted org's slug refuses it.
                StoreError::Conflict(Constraint::ModelNamespace) => ServiceError::Conflict {
                    code: ErrorCode::SlugTaken,
                    message: format!(
                        "bootstrap.org_slug {:?} is taken (a public model namespace or a deleted organization's slug); choose another.",
                        settings.org_slug.as_str()
                    ),
                },
                other => internal_store(other),
            })?;
            memberships::insert(&tx, org.id, admin_id, Role::Owner, now)
                .await
                .map_err(internal_store)?;
            let actor = AuditActor {
                user: Some(admin_id),
                session: None,
            };
            audit::record(
                &tx,
                now,
                actor,
                &meta,
                AuditEntry {
                    action: "org.created",
                    organization: Some(org.id),
                    target_type: "organization",
                    target_id: org.id.to_string(),
                    before: None,
                    after: Some(json!({"name": org.name.as_str(), "slug": org.slug.as_str(), "via": "bootstrap"})),
                },
            )
            .await?;
            audit::record(
                &tx,
                now,
                actor,
                &meta,
                AuditEntry {
                    action: "member.added",
                    organization: Some(org.id),
                    target_type: "user",
                    target_id: admin_id.to_string(),
                    before: None,
                    after: Some(json!({"role": Role::Owner.as_str()})),
                },
            )
            .await?;
            true
        }
    };
    tx.commit().await?;

    Ok(BootstrapOutcome {
        admin_email: settings.admin_email.as_str().to_owned(),
        admin_created,
        generated_password: if admin_created {
            generated_password
        } else {
            None
        },
        org_created,
    })
}

/// Keeps the store error (so [`is_race`] can see a lost race) instead of flattening it.
fn internal_store(err: StoreError) -> ServiceError {
    match err {
        StoreError::Unavailable(msg) => ServiceError::DatabaseUnavailable(msg),
        other => ServiceError::Internal(anyhow::Error::new(other)),
    }
}
