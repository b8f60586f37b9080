//! `model_namespaces` (SPEC §5.1): who owns the text before the first `/` of a model address —
//! one org (its slug: `<slug>/<code>` names its offerings) or the public catalogue
//! (`meta-llama/…`), never both. Claims are plain inserts on the primary key, so concurrent
//! claimants cannot both win: there is no check-then-insert to race through.

use crate::repo::{exec_sql, query_one_sql};
use crate::{Constraint, Store, StoreError, Tag, Tx};
use inventiv_domain::{OrgId, Slug};
use time::OffsetDateTime;

/// The owner of a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceOwner {
    /// An org's slug; `None` once that org was deleted (the name stays taken forever).
    Org(Option<OrgId>),
    /// A namespace of the public catalogue (shared by all the public models in it).
    Public,
}

/// The namespace of a model address or catalogue `model_id`: the lowercase text before the
/// first `/`. `None` for names without one (or with nothing before it), which can never be
/// mistaken for `<slug>/<code>` since slugs are at least two characters.
#[must_use]
pub fn namespace_of(name: &str) -> Option<String> {
    name.split_once('/')
        .map(|(ns, _)| ns)
        .filter(|ns| !ns.is_empty())
        .map(str::to_ascii_lowercase)
}

/// Claims `slug` for a new org. Taken (by anyone, ever) is `Conflict(ModelNamespace)`.
pub async fn claim_for_org(
    tx: &Tx,
    slug: &Slug,
    org: OrgId,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    tx.mark(Tag::Routes);
    exec_sql(
        tx,
        "INSERT INTO model_namespaces (name, kind, organization_id, created_at) VALUES ($1, 'org', $2, $3)",
        vec![
            slug.as_str().to_ascii_lowercase().into(),
            org.as_uuid().into(),
            now.into(),
        ],
    )
    .await?;
    Ok(())
}

/// Claims `namespace` (already lowercase, see [`namespace_of`]) for the public catalogue:
/// idempotent while it is public; `Conflict(ModelNamespace)` when an org (or a deleted org)
/// holds it. On PostgreSQL `ON CONFLICT DO NOTHING` waits for a concurrent uncommitted claim of
/// the same name and then the read sees its outcome, so the answer is never stale.
pub async fn claim_public(tx: &Tx, namespace: &str, now: OffsetDateTime) -> Result<(), StoreError> {
    tx.mark(Tag::Routes);
    exec_sql(
        tx,
        "INSERT INTO model_namespaces (name, kind, organization_id, created_at) VALUES ($1, 'public', NULL, $2) \
         ON CONFLICT (name) DO NOTHING",
        vec![namespace.into(), now.into()],
    )
    .await?;
    match find(tx, namespace).await? {
        Some(NamespaceOwner::Public) => Ok(()),
        _ => Err(StoreError::Conflict(Constraint::ModelNamespace)),
    }
}

/// Who owns `namespace` (compared in lowercase); `None` if nobody claimed it.
pub async fn find<S: Store>(s: &S, namespace: &str) -> Result<Option<NamespaceOwner>, StoreError> {
    let Some(row) = query_one_sql(
        s,
        "SELECT kind, organization_id FROM model_namespaces WHERE name = $1",
        vec![namespace.to_ascii_lowercase().into()],
    )
    .await?
    else {
        return Ok(None);
    };
    let kind: String = row.try_get("", "kind")?;
    let org: Option<uuid::Uuid> = row.try_get("", "organization_id")?;
    match kind.as_str() {
        "org" => Ok(Some(NamespaceOwner::Org(org.map(OrgId::from_uuid)))),
        "public" => Ok(Some(NamespaceOwner::Public)),
        other => Err(crate::repo::corrupt("model_namespaces.kind", other)),
    }
}
