//! `instances`, always read and written through a [`Scope`]: an org sees its own rows; the
//! personal workspace sees the caller's rows with `organization_id` NULL (legacy rows stay
//! reachable by their owner). There is no unscoped lookup by id. Across tenants on purpose,
//! for the lifecycle workers only and never on a request path: the scans [`in_flight`] and
//! [`unleased`], and the lease bookkeeping ([`claim_lease`], [`renew_leases`],
//! [`release_lease`]), which writes only `worker_id` and `lease_expires_at`.

use crate::repo::sql::{Page, Params, owned_by, push_page};
use crate::repo::{corrupt, exec_sql, query_all_sql, query_one_sql, row_lock};
use crate::{Store, StoreError, Tag, Tx};
use inventiv_domain::{
    Activation, Flag, InstanceId, InstanceStatus, ModelId, OrgId, Scope, UserId,
};
use sea_orm::QueryResult;
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct InstanceRecord {
    pub id: InstanceId,
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
    pub updated_at: OffsetDateTime,
}

impl InstanceRecord {
    /// The scope the row belongs to.
    pub fn scope(&self) -> Option<Scope> {
        match (self.organization_id, self.owner_user_id) {
            (Some(org), _) => Some(Scope::Org(org)),
            (None, Some(user)) => Some(Scope::Personal(user)),
            (None, None) => None,
        }
    }
}

const SELECT: &str = "SELECT i.id, i.organization_id, o.name AS organization_name, i.owner_user_id, i.model_id, \
     m.name AS model_name, i.provider, i.zone, i.instance_type, i.status, i.failure_reason, i.endpoint_url, \
     i.hourly_cost_micros, i.tech_activated_by, i.tech_activated_at, i.eco_activated_by, i.eco_activated_at, \
     i.created_at, i.ready_at, i.terminated_at, i.updated_at \
     FROM instances i JOIN models m ON m.id = i.model_id LEFT JOIN organizations o ON o.id = i.organization_id";

fn uuid_opt(row: &QueryResult, col: &str) -> Result<Option<uuid::Uuid>, StoreError> {
    Ok(row.try_get::<Option<uuid::Uuid>>("", col)?)
}

fn record(row: QueryResult) -> Result<InstanceRecord, StoreError> {
    let status: String = row.try_get("", "status")?;
    Ok(InstanceRecord {
        id: InstanceId::from_uuid(row.try_get("", "id")?),
        organization_id: uuid_opt(&row, "organization_id")?.map(OrgId::from_uuid),
        organization_name: row.try_get("", "organization_name")?,
        owner_user_id: uuid_opt(&row, "owner_user_id")?.map(UserId::from_uuid),
        model_id: ModelId::from_uuid(row.try_get("", "model_id")?),
        model_name: row.try_get("", "model_name")?,
        provider: row.try_get("", "provider")?,
        zone: row.try_get("", "zone")?,
        instance_type: row.try_get("", "instance_type")?,
        status: status.parse().map_err(|e| corrupt("instances.status", e))?,
        failure_reason: row.try_get("", "failure_reason")?,
        endpoint_url: row.try_get("", "endpoint_url")?,
        hourly_cost_micros: row.try_get("", "hourly_cost_micros")?,
        activation: Activation {
            tech_by: uuid_opt(&row, "tech_activated_by")?.map(UserId::from_uuid),
            eco_by: uuid_opt(&row, "eco_activated_by")?.map(UserId::from_uuid),
        },
        tech_activated_at: row.try_get("", "tech_activated_at")?,
        eco_activated_at: row.try_get("", "eco_activated_at")?,
        created_at: row.try_get("", "created_at")?,
        ready_at: row.try_get("", "ready_at")?,
        terminated_at: row.try_get("", "terminated_at")?,
        updated_at: row.try_get("", "updated_at")?,
    })
}

/// The tenant filter of `scope` over columns prefixed by `alias` (`i.` in selects, empty in
/// updates).
fn in_scope(scope: Scope, alias: &str, p: &mut Params) -> String {
    owned_by(
        scope,
        &format!("{alias}organization_id"),
        &format!("{alias}owner_user_id"),
        p,
    )
}

/// Listing filters.
#[derive(Debug, Clone, Copy, Default)]
pub struct InstanceFilter {
    /// Only operational (or only non-operational) instances: ready, with both approvals
    /// (personal instances need no approval).
    pub operational: Option<bool>,
}

/// Instances of `scope`, ordered by id, after `after`.
pub async fn list<S: Store>(
    s: &S,
    scope: Scope,
    filter: InstanceFilter,
    after: Option<InstanceId>,
    limit: u64,
) -> Result<Vec<InstanceRecord>, StoreError> {
    let mut p = Params::new();
    let mut sql = format!("{SELECT} WHERE {}", in_scope(scope, "i.", &mut p));
    // Operational = serving (ready) with both approvals; personal instances need no approval.
    let operational = match scope {
        Scope::Personal(_) => "i.status = 'ready'",
        Scope::Org(_) => {
            "(i.status = 'ready' AND i.tech_activated_by IS NOT NULL AND i.eco_activated_by IS NOT NULL)"
        }
    };
    match filter.operational {
        None => {}
        Some(true) => sql.push_str(&format!(" AND {operational}")),
        Some(false) => sql.push_str(&format!(" AND NOT {operational}")),
    }
    let after = after.map(|id| id.as_uuid());
    push_page(&mut sql, &mut p, "i.id", Page::After(after), limit);
    query_all_sql(s, &sql, p.into_values())
        .await?
        .into_iter()
        .map(record)
        .collect()
}

/// One instance of `scope`.
pub async fn find<S: Store>(
    s: &S,
    scope: Scope,
    id: InstanceId,
) -> Result<Option<InstanceRecord>, StoreError> {
    find_locked(s, scope, id, "").await
}

/// [`find`], locking the instance's row until `tx` ends with the lock its update takes anyway
/// (`FOR NO KEY UPDATE`): a change decides from the row as it stays until it writes.
pub async fn find_for_update(
    tx: &crate::Tx,
    scope: Scope,
    id: InstanceId,
) -> Result<Option<InstanceRecord>, StoreError> {
    find_locked(tx, scope, id, row_lock(tx, " FOR NO KEY UPDATE OF i")).await
}

async fn find_locked<S: Store>(
    s: &S,
    scope: Scope,
    id: InstanceId,
    lock: &str,
) -> Result<Option<InstanceRecord>, StoreError> {
    let mut p = Params::new();
    let sql = format!(
        "{SELECT} WHERE {} AND i.id = {}{lock}",
        in_scope(scope, "i.", &mut p),
        p.bind(id.as_uuid())
    );
    query_one_sql(s, &sql, p.into_values())
        .await?
        .map(record)
        .transpose()
}

/// What a deployment stores (the scope comes separately).
pub struct NewInstance<'a> {
    pub id: InstanceId,
    pub owner: UserId,
    pub model: ModelId,
    pub provider: &'a str,
    pub zone: Option<&'a str>,
    pub instance_type: Option<&'a str>,
    pub endpoint_url: Option<&'a str>,
    pub hourly_cost_micros: i64,
    pub now: OffsetDateTime,
}

/// Stores a new instance of `scope` in `provisioning`.
pub async fn insert(tx: &Tx, scope: Scope, new: NewInstance<'_>) -> Result<(), StoreError> {
    tx.mark(Tag::Routes);
    tx.mark(Tag::Instances(scope));
    let org = match scope {
        Scope::Org(org) => Some(org.as_uuid()),
        Scope::Personal(_) => None,
    };
    exec_sql(
        tx,
        "INSERT INTO instances (id, organization_id, owner_user_id, model_id, provider, zone, instance_type, status, \
             endpoint_url, hourly_cost_micros, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'provisioning', $8, $9, $10, $10)",
        vec![
            new.id.as_uuid().into(),
            org.into(),
            new.owner.as_uuid().into(),
            new.model.as_uuid().into(),
            new.provider.into(),
            new.zone.map(str::to_owned).into(),
            new.instance_type.map(str::to_owned).into(),
            new.endpoint_url.map(str::to_owned).into(),
            new.hourly_cost_micros.into(),
            new.now.into(),
        ],
    )
    .await?;
    Ok(())
}

/// A lifecycle step.
#[derive(Debug, Clone)]
pub struct Transition<'a> {
    pub from: &'a [InstanceStatus],
    pub to: InstanceStatus,
    pub endpoint_url: Option<&'a str>,
    pub failure_reason: Option<&'a str>,
    pub now: OffsetDateTime,
}

/// Moves an instance of `scope` to `to` if it is in one of `from` (compare-and-set, so a
/// concurrent terminate and a provider callback cannot both win). Sets `ready_at` on the first
/// `ready`, `terminated_at` on `terminated`. Returns whether it moved.
pub async fn transition(
    tx: &Tx,
    scope: Scope,
    id: InstanceId,
    t: Transition<'_>,
) -> Result<bool, StoreError> {
    tx.mark(Tag::Routes);
    tx.mark(Tag::Instances(scope));
    let mut p = Params::new();
    let (to, now) = (p.bind(t.to.as_str()), p.bind(t.now));
    let (endpoint_url, failure_reason) = (
        p.bind(t.endpoint_url.map(str::to_owned)),
        p.bind(t.failure_reason.map(str::to_owned)),
    );
    let ready_at = if t.to == InstanceStatus::Ready {
        format!("COALESCE(ready_at, {now})")
    } else {
        "ready_at".to_owned()
    };
    let terminated_at = if t.to == InstanceStatus::Terminated {
        now.clone()
    } else {
        "terminated_at".to_owned()
    };
    let from: Vec<String> = t.from.iter().map(|f| format!("'{}'", f.as_str())).collect();
    let sql = format!(
        "UPDATE instances SET status = {to}, updated_at = {now}, endpoint_url = COALESCE({endpoint_url}, endpoint_url), \
             failure_reason = {failure_reason}, ready_at = {ready_at}, terminated_at = {terminated_at} \
         WHERE {scope_sql} AND id = {id} AND status IN ({from})",
        scope_sql = in_scope(scope, "", &mut p),
        id = p.bind(id.as_uuid()),
        from = from.join(", ")
    );
    Ok(exec_sql(tx, &sql, p.into_values()).await? == 1)
}

/// Sets or clears one activation flag of an instance of `scope`.
pub async fn set_flag(
    tx: &Tx,
    scope: Scope,
    id: InstanceId,
    flag: Flag,
    by: Option<UserId>,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    tx.mark(Tag::Routes);
    tx.mark(Tag::Instances(scope));
    let mut p = Params::new();
    let condition = format!(
        "{} AND id = {}",
        in_scope(scope, "", &mut p),
        p.bind(id.as_uuid())
    );
    crate::repo::set_activation_flag(tx, "instances", &condition, p, flag, by, now).await
}

/// How many instances of `scope` are not terminated.
pub async fn count_live<S: Store>(s: &S, scope: Scope) -> Result<i64, StoreError> {
    let mut p = Params::new();
    let sql = format!(
        "SELECT COUNT(*) AS n FROM instances WHERE {} AND status <> 'terminated'",
        in_scope(scope, "", &mut p)
    );
    let row = query_one_sql(s, &sql, p.into_values())
        .await?
        .ok_or_else(|| corrupt("instances", "count returned no row"))?;
    Ok(row.try_get("", "n")?)
}

/// Removes the terminated instances of `scope` (when the org itself is deleted).
pub async fn delete_terminated(tx: &Tx, scope: Scope) -> Result<u64, StoreError> {
    tx.mark(Tag::Routes);
    tx.mark(Tag::Instances(scope));
    let mut p = Params::new();
    let sql = format!(
        "DELETE FROM instances WHERE {} AND status = 'terminated'",
        in_scope(scope, "", &mut p)
    );
    exec_sql(tx, &sql, p.into_values()).await
}

/// Every instance not yet settled (provisioning, booting, ready, terminating) across all
/// tenants — for the lifecycle reconciler and health checker only, never for a request.
pub async fn in_flight<S: Store>(s: &S) -> Result<Vec<InstanceRecord>, StoreError> {
    query_all_sql(
        s,
        &format!("{SELECT} WHERE i.status IN ('provisioning', 'booting', 'ready', 'terminating') ORDER BY i.id"),
        vec![],
    )
    .await?
    .into_iter()
    .map(record)
    .collect()
}

/// What cost accounting needs of an instance.
#[derive(Debug, Clone)]
pub struct CostRow {
    pub id: InstanceId,
    pub model_id: ModelId,
    pub model_name: String,
    pub hourly_cost_micros: i64,
    pub ready_at: OffsetDateTime,
    pub terminated_at: Option<OffsetDateTime>,
}

/// Instances of `scope` that ran at some point in `[from, to)` (ready before `to`, not
/// terminated before `from`).
pub async fn cost_rows<S: Store>(
    s: &S,
    scope: Scope,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<CostRow>, StoreError> {
    let mut p = Params::new();
    let filter = in_scope(scope, "i.", &mut p);
    let to_p = crate::repo::ts(s.backend(), &p.bind(to));
    let from_p = crate::repo::ts(s.backend(), &p.bind(from));
    let (ready, terminated) = (
        crate::repo::ts(s.backend(), "i.ready_at"),
        crate::repo::ts(s.backend(), "i.terminated_at"),
    );
    let sql = format!(
        "SELECT i.id, i.model_id, m.name AS model_name, i.hourly_cost_micros, i.ready_at, i.terminated_at \
         FROM instances i JOIN models m ON m.id = i.model_id \
         WHERE {filter} AND i.ready_at IS NOT NULL AND {ready} < {to_p} \
           AND (i.terminated_at IS NULL OR {terminated} > {from_p}) ORDER BY i.id"
    );
    query_all_sql(s, &sql, p.into_values())
        .await?
        .into_iter()
        .map(|row| {
            Ok(CostRow {
                id: InstanceId::from_uuid(row.try_get("", "id")?),
                model_id: ModelId::from_uuid(row.try_get("", "model_id")?),
                model_name: row.try_get("", "model_name")?,
                hourly_cost_micros: row.try_get("", "hourly_cost_micros")?,
                ready_at: row.try_get("", "ready_at")?,
                terminated_at: row.try_get("", "terminated_at")?,
            })
        })
        .collect()
}

/// The hourly prices of the instances of `scope` that are running now (ready once, not
/// terminated).
pub async fn running_costs<S: Store>(s: &S, scope: Scope) -> Result<Vec<i64>, StoreError> {
    let mut p = Params::new();
    let sql = format!(
        "SELECT i.hourly_cost_micros FROM instances i WHERE {} AND i.ready_at IS NOT NULL AND i.terminated_at IS NULL",
        in_scope(scope, "i.", &mut p)
    );
    query_all_sql(s, &sql, p.into_values())
        .await?
        .into_iter()
        .map(|row| Ok(row.try_get("", "hourly_cost_micros")?))
        .collect()
}

/// Where a request for `model` may go in `scope`: ready instances with an endpoint that are
/// operational (personal ones by definition; org ones with both approvals): (id, endpoint,
/// provider).
pub async fn routable<S: Store>(
    s: &S,
    scope: Scope,
    model: ModelId,
) -> Result<Vec<(InstanceId, String, String)>, StoreError> {
    let mut p = Params::new();
    let operational = match scope {
        Scope::Org(_) => " AND i.tech_activated_by IS NOT NULL AND i.eco_activated_by IS NOT NULL",
        Scope::Personal(_) => "",
    };
    let sql = format!(
        "SELECT i.id, i.endpoint_url, i.provider FROM instances i WHERE {} AND i.model_id = {} AND i.status = 'ready' \
         AND i.endpoint_url IS NOT NULL{operational}",
        in_scope(scope, "i.", &mut p),
        p.bind(model.as_uuid())
    );
    query_all_sql(s, &sql, p.into_values())
        .await?
        .into_iter()
        .map(|row| {
            Ok((
                InstanceId::from_uuid(row.try_get("", "id")?),
                row.try_get("", "endpoint_url")?,
                row.try_get("", "provider")?,
            ))
        })
        .collect()
}

/// The statuses a replica drives an instance through (a bring-up or a tear-down), under a lease.
const DRIVEN: &str = "('provisioning', 'booting', 'terminating')";

/// What a lease is for; `instances.worker_id` is `<process id>:<job>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeaseJob {
    /// provisioning/booting → ready or failed.
    BringUp,
    /// terminating → terminated. A terminate supersedes a bring-up in progress, so a tear-down
    /// takes a bring-up's lease even while it is live.
    TearDown,
}

impl LeaseJob {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseJob::BringUp => "up",
            LeaseJob::TearDown => "down",
        }
    }
}

/// `worker_id` of `worker` doing `job`.
pub fn lease_holder(worker: &str, job: LeaseJob) -> String {
    format!("{worker}:{}", job.as_str())
}

/// Takes the lease of instance `id` for `worker` doing `job` until `expires_at`, if the
/// instance still needs that job and nobody else holds a live lease on it (never claimed,
/// released, already `worker`'s, lapsed at `now` — or, for a tear-down, a bring-up's). A
/// compare-and-set: of two replicas claiming at once, one wins.
pub async fn claim_lease<S: Store>(
    s: &S,
    id: InstanceId,
    worker: &str,
    job: LeaseJob,
    now: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let lease = crate::repo::ts(s.backend(), "lease_expires_at");
    let now_p = crate::repo::ts(s.backend(), "$4");
    let (statuses, steal) = match job {
        LeaseJob::BringUp => ("('provisioning', 'booting')", ""),
        LeaseJob::TearDown => ("('terminating')", " OR worker_id LIKE '%:up'"),
    };
    let changed = exec_sql(
        s,
        &format!(
            "UPDATE instances SET worker_id = $2, lease_expires_at = $3 \
             WHERE id = $1 AND status IN {statuses} \
               AND (worker_id IS NULL OR worker_id = $2 OR lease_expires_at IS NULL \
                    OR {lease} < {now_p}{steal})"
        ),
        vec![
            id.as_uuid().into(),
            lease_holder(worker, job).into(),
            expires_at.into(),
            now.into(),
        ],
    )
    .await?;
    Ok(changed == 1)
}

/// Pushes forward the leases `worker` holds for `job` on `ids` (what it is driving right now).
pub async fn renew_leases<S: Store>(
    s: &S,
    ids: &[InstanceId],
    worker: &str,
    job: LeaseJob,
    expires_at: OffsetDateTime,
) -> Result<u64, StoreError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let mut p = Params::new();
    let sql = format!(
        "UPDATE instances SET lease_expires_at = {} WHERE worker_id = {} AND id IN ({})",
        p.bind(expires_at),
        p.bind(lease_holder(worker, job)),
        p.bind_all(ids.iter().map(|id| id.as_uuid()))
    );
    exec_sql(s, &sql, p.into_values()).await
}

/// Gives up `worker`'s lease for `job` on `id` (its work is done, or stopped short: then the
/// next takeover scan resumes it).
pub async fn release_lease<S: Store>(
    s: &S,
    id: InstanceId,
    worker: &str,
    job: LeaseJob,
) -> Result<(), StoreError> {
    exec_sql(
        s,
        "UPDATE instances SET worker_id = NULL, lease_expires_at = NULL WHERE id = $1 AND worker_id = $2",
        vec![id.as_uuid().into(), lease_holder(worker, job).into()],
    )
    .await?;
    Ok(())
}

/// Every tenant's instances that need driving and that no live lease of the right job covers
/// at `now`: a replica died mid-way (its lease lapsed), nobody claimed them yet, or a
/// bring-up still holds one that was terminated since. A `booting` instance that was ready
/// once is the health check's, not a bring-up's.
pub async fn unleased<S: Store>(
    s: &S,
    now: OffsetDateTime,
) -> Result<Vec<InstanceRecord>, StoreError> {
    let lease = crate::repo::ts(s.backend(), "i.lease_expires_at");
    let now_p = crate::repo::ts(s.backend(), "$1");
    query_all_sql(
        s,
        &format!(
            "{SELECT} WHERE i.status IN {DRIVEN} \
               AND NOT (i.status = 'booting' AND i.ready_at IS NOT NULL) \
               AND (i.worker_id IS NULL OR i.lease_expires_at IS NULL OR {lease} < {now_p} \
                    OR (i.status = 'terminating' AND i.worker_id LIKE '%:up')) \
             ORDER BY i.id LIMIT 100"
        ),
        vec![now.into()],
    )
    .await?
    .into_iter()
    .map(record)
    .collect()
}
