//! Bulk seeding for scale measurements (`inventiv-server seed-scale`, `make bench`): many
//! organizations, each with many instances, written by set-based `INSERT … SELECT` over a
//! generated series (a handful of statements whatever the size), not row by row.
//!
//! The rows are synthetic and recognisable: organizations `scale-<n>` ("Scale org <n>"),
//! instances of the public model `scale/model`, all already `terminated` (cost history): a
//! settled instance is never touched by the lifecycle loops, so a seeded database measures
//! the request paths only. Seeding is incremental: organizations that already exist are kept,
//! and only organizations without instances receive theirs.

use super::{exec_sql, query_one_sql};
use crate::{Backend, Db, StoreError};
use sea_orm::Value;
use time::OffsetDateTime;

/// What one run added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seeded {
    pub organizations: u64,
    pub instances: u64,
}

/// The slug of the `n`th seeded organization (from 1).
pub fn slug(n: u32) -> String {
    format!("scale-{n}")
}

/// Ensures organizations `scale-1..=orgs` exist, each with `instances_per_org` instances
/// (added only to seeded organizations that have none). One transaction.
pub async fn seed(
    db: &Db,
    orgs: u32,
    instances_per_org: u32,
    now: OffsetDateTime,
) -> Result<Seeded, StoreError> {
    let new_id = match db.backend() {
        Backend::Postgres => "gen_random_uuid()",
        Backend::Sqlite => "randomblob(16)",
    };
    // `WITH RECURSIVE` counts on both engines (SQLite has no generate_series by default).
    let series = |bound: &str| {
        format!("WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {bound})")
    };
    if orgs == 0 {
        return Ok(Seeded {
            organizations: 0,
            instances: 0,
        });
    }
    let tx = db.begin_write().await?;
    // Set-based inserts into models, namespaces, orgs and instances (of orgs that may already
    // exist): too many tags to name.
    tx.mark_everything();
    exec_sql(
        &tx,
        &format!(
            "INSERT INTO models (id, organization_id, name, model_id, required_vram_gb, \
             context_length, is_active, created_at, updated_at) \
             SELECT {new_id}, NULL, 'Scale model', 'scale/model', 16, 4096, TRUE, $1, $1 \
             WHERE NOT EXISTS (SELECT 1 FROM models WHERE model_id = 'scale/model' \
             AND organization_id IS NULL)"
        ),
        vec![Value::from(now)],
    )
    .await?;
    let organizations = exec_sql(
        &tx,
        &format!(
            "{} INSERT INTO organizations (id, name, slug, created_by_user_id, \
             require_distinct_activators, created_at, updated_at) \
             SELECT {new_id}, 'Scale org ' || n, 'scale-' || n, NULL, FALSE, $2, $2 FROM g \
             WHERE NOT EXISTS (SELECT 1 FROM organizations o WHERE o.slug = 'scale-' || g.n)",
            series("$1")
        ),
        vec![Value::from(i64::from(orgs)), Value::from(now)],
    )
    .await?;
    // The namespaces the repositories would have claimed (SPEC §5.1): the public `scale/…`
    // one and every seeded org's slug.
    exec_sql(
        &tx,
        "INSERT INTO model_namespaces (name, kind, organization_id, created_at) \
         SELECT 'scale', 'public', NULL, $1 \
         WHERE NOT EXISTS (SELECT 1 FROM model_namespaces WHERE name = 'scale')",
        vec![Value::from(now)],
    )
    .await?;
    exec_sql(
        &tx,
        "INSERT INTO model_namespaces (name, kind, organization_id, created_at) \
         SELECT o.slug, 'org', o.id, o.created_at FROM organizations o \
         WHERE o.slug LIKE 'scale-%' \
         AND NOT EXISTS (SELECT 1 FROM model_namespaces n WHERE n.name = o.slug)",
        vec![],
    )
    .await?;
    let instances = if instances_per_org == 0 {
        0
    } else {
        exec_sql(
            &tx,
            &format!(
                "{} INSERT INTO instances (id, organization_id, owner_user_id, model_id, provider, \
             status, hourly_cost_micros, created_at, ready_at, terminated_at, updated_at) \
             SELECT {new_id}, o.id, NULL, m.id, 'mock', 'terminated', 1000000, $2, $2, $2, $2 \
             FROM organizations o \
             JOIN models m ON m.model_id = 'scale/model' AND m.organization_id IS NULL \
             CROSS JOIN g \
             WHERE o.slug LIKE 'scale-%' \
             AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.organization_id = o.id)",
                series("$1")
            ),
            vec![Value::from(i64::from(instances_per_org)), Value::from(now)],
        )
        .await?
    };
    tx.commit().await?;
    if db.backend() == Backend::Postgres {
        // Fresh statistics, as autovacuum would eventually compute: plans for the new sizes.
        exec_sql(db, "ANALYZE organizations, instances", vec![]).await?;
    }
    Ok(Seeded {
        organizations,
        instances,
    })
}

/// How many instances the database holds in all (for reports).
pub async fn count_instances(db: &Db) -> Result<i64, StoreError> {
    let row = query_one_sql(db, "SELECT COUNT(*) AS n FROM instances", vec![]).await?;
    Ok(match row {
        Some(row) => row.try_get::<i64>("", "n")?,
        None => 0,
    })
}
