//! `audit_events`: the append-only, hash-chained trail.
//!
//! One chain per organization (`chain_key` = the org id) plus the platform chain (events with
//! no org). Each event stores `prev_hash` and `hash = sha256(prev_hash ‖ canonical JSON)`, where
//! the canonical JSON holds every column but `id` and `hash`, keys sorted, no whitespace.
//! An append locks its chain's head row in `audit_chain_heads` inside the caller's transaction,
//! so concurrent writers queue instead of forking the chain (row lock on PostgreSQL; the
//! `BEGIN IMMEDIATE` write lock on SQLite). The triggers of the migration refuse UPDATE and
//! DELETE; [`verify`] detects what was changed behind their back.

use crate::db::db_backend;
use crate::entities::audit_events::{ActiveModel, Column, Entity, Model};
use crate::repo::sql::{Page, Params, push_page};
use crate::repo::{exec_sql, query_one_sql, row_lock, ts};
use crate::{Backend, Db, Store, StoreError, Tx, rfc3339_micros, truncate_micros};
use inventiv_domain::{OrgId, SessionId, UserId};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
    Set,
};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// `prev_hash` of the first event of every chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const PLATFORM_CHAIN: &str = "platform";

/// What a service records; the chain fields are computed here.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    pub organization_id: Option<OrgId>,
    pub actor_user_id: Option<UserId>,
    pub actor_session_id: Option<SessionId>,
    /// Dotted lowercase name, e.g. `org.created`.
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub before: Option<Json>,
    pub after: Option<Json>,
    pub request_id: Option<String>,
    pub ip: Option<String>,
    pub occurred_at: OffsetDateTime,
}

/// A stored event.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub id: i64,
    pub chain_seq: i64,
    pub organization_id: Option<OrgId>,
    pub actor_user_id: Option<UserId>,
    pub actor_session_id: Option<SessionId>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub before: Option<Json>,
    pub after: Option<Json>,
    pub request_id: Option<String>,
    pub ip: Option<String>,
    pub occurred_at: OffsetDateTime,
    pub prev_hash: String,
    pub hash: String,
}

fn chain_key(org: Option<OrgId>) -> String {
    org.map_or_else(|| PLATFORM_CHAIN.to_owned(), |o| o.to_string())
}

fn record(m: Model) -> AuditRecord {
    AuditRecord {
        id: m.id,
        chain_seq: m.chain_seq,
        organization_id: m.organization_id.map(OrgId::from_uuid),
        actor_user_id: m.actor_user_id.map(UserId::from_uuid),
        actor_session_id: m.actor_session_id.map(SessionId::from_uuid),
        action: m.action,
        target_type: m.target_type,
        target_id: m.target_id,
        before: m.before_state,
        after: m.after_state,
        request_id: m.request_id,
        ip: m.ip,
        occurred_at: m.occurred_at,
        prev_hash: m.prev_hash,
        hash: m.hash,
    }
}

/// Locks the chain heads of `orgs` in one fixed order (ascending org id) before a write that
/// appends to several chains: two transactions touching the same two orgs, whatever their
/// direction, then queue on the first head instead of each holding one and waiting for the
/// other (a deadlock on PostgreSQL). On SQLite `BEGIN IMMEDIATE` already serializes writers.
pub async fn lock_heads(tx: &Tx, orgs: &[OrgId]) -> Result<(), StoreError> {
    let mut keys: Vec<OrgId> = orgs.to_vec();
    keys.sort();
    keys.dedup();
    for org in keys {
        lock_head(tx, &chain_key(Some(org))).await?;
    }
    Ok(())
}

/// Locks the head of chain `key` for this transaction (creating it on the chain's first
/// event) and returns its `(last_seq, last_hash)`. One round trip once the chain exists: the
/// locking read is tried first, and the insert only runs when it finds no head.
async fn lock_head(tx: &Tx, key: &str) -> Result<(i64, String), StoreError> {
    let lock = row_lock(tx, " FOR UPDATE");
    let read =
        format!("SELECT last_seq, last_hash FROM audit_chain_heads WHERE chain_key = $1{lock}");
    let mut head = query_one_sql(tx, &read, vec![key.into()]).await?;
    if head.is_none() {
        // A concurrent first append may insert it between our read and this insert: then
        // ours does nothing, and the read below waits for that transaction's lock.
        exec_sql(
            tx,
            "INSERT INTO audit_chain_heads (chain_key, last_seq, last_hash) VALUES ($1, 0, $2) \
             ON CONFLICT (chain_key) DO NOTHING",
            vec![key.into(), GENESIS_HASH.into()],
        )
        .await?;
        head = query_one_sql(tx, &read, vec![key.into()]).await?;
    }
    let head =
        head.ok_or_else(|| StoreError::Corrupt(format!("audit chain head {key} vanished")))?;
    Ok((
        head.try_get("", "last_seq")?,
        head.try_get("", "last_hash")?,
    ))
}

/// Appends an event to its chain. Takes a [`Tx`] on purpose: an audit event is written in the
/// same transaction as the change it records, never on its own.
pub async fn append(tx: &Tx, event: NewAuditEvent) -> Result<AuditRecord, StoreError> {
    let key = chain_key(event.organization_id);
    let (last_seq, prev_hash) = lock_head(tx, &key).await?;

    let occurred_at = truncate_micros(event.occurred_at);
    let seq = last_seq + 1;
    let mut row = Model {
        id: 0,
        chain_key: key.clone(),
        chain_seq: seq,
        organization_id: event.organization_id.map(|o| o.as_uuid()),
        actor_user_id: event.actor_user_id.map(|u| u.as_uuid()),
        actor_session_id: event.actor_session_id.map(|s| s.as_uuid()),
        action: event.action,
        target_type: event.target_type,
        target_id: event.target_id,
        before_state: event.before,
        after_state: event.after,
        request_id: event.request_id,
        ip: event.ip,
        occurred_at,
        prev_hash: prev_hash.trim().to_owned(),
        hash: String::new(),
    };
    row.hash = hash_of(&row);
    let mut insert = Entity::insert(ActiveModel {
        id: sea_orm::ActiveValue::NotSet,
        chain_key: Set(row.chain_key.clone()),
        chain_seq: Set(row.chain_seq),
        organization_id: Set(row.organization_id),
        actor_user_id: Set(row.actor_user_id),
        actor_session_id: Set(row.actor_session_id),
        action: Set(row.action.clone()),
        target_type: Set(row.target_type.clone()),
        target_id: Set(row.target_id.clone()),
        before_state: Set(row.before_state.clone()),
        after_state: Set(row.after_state.clone()),
        request_id: Set(row.request_id.clone()),
        ip: Set(row.ip.clone()),
        occurred_at: Set(row.occurred_at),
        prev_hash: Set(row.prev_hash.clone()),
        hash: Set(row.hash.clone()),
    })
    .into_query();
    insert.returning_col(Column::Id);
    let mut stmt = db_backend(tx.backend()).build(&insert);
    // Moves the head to this event, with placeholders from `$first` on.
    let advance = |first: usize| {
        format!(
            "UPDATE audit_chain_heads SET last_seq = ${first}, last_hash = ${} WHERE chain_key = ${}",
            first + 1,
            first + 2
        )
    };
    let advance_values = vec![seq.into(), row.hash.clone().into(), key.into()];
    let inserted = match tx.backend() {
        // The head moves in the same statement as the insert (a data-modifying CTE): one
        // round trip where two statements would take two.
        Backend::Postgres => {
            let mut values = stmt.values.take().map(|v| v.0).unwrap_or_default();
            stmt.sql = format!(
                "WITH advanced AS ({}) {}",
                advance(values.len() + 1),
                stmt.sql
            );
            values.extend(advance_values);
            stmt.values = Some(sea_orm::Values(values));
            tx.conn().query_one_raw(stmt).await?
        }
        // In-process: two statements cost no round trip.
        Backend::Sqlite => {
            let inserted = tx.conn().query_one_raw(stmt).await?;
            exec_sql(tx, &advance(1), advance_values).await?;
            inserted
        }
    };
    row.id = inserted
        .ok_or_else(|| StoreError::Corrupt("audit event insert returned no id".to_owned()))?
        .try_get("", "id")?;
    Ok(record(row))
}

/// Which events of a chain to list, newest first: `action` filters exactly, `since` keeps
/// events at or after it, `before_id` pages backwards.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventFilter<'a> {
    pub action: Option<&'a str>,
    pub since: Option<OffsetDateTime>,
    pub before_id: Option<i64>,
}

/// Events of `org`'s chain, newest first.
pub async fn list<S: Store>(
    s: &S,
    org: OrgId,
    filter: EventFilter<'_>,
    limit: u64,
) -> Result<Vec<AuditRecord>, StoreError> {
    list_chain(s, chain_key(Some(org)), filter, limit).await
}

/// Events of the platform chain (no org: every account's own events), newest first — across
/// tenants on purpose, for operators and tests; no request reads it.
pub async fn list_platform<S: Store>(
    s: &S,
    filter: EventFilter<'_>,
    limit: u64,
) -> Result<Vec<AuditRecord>, StoreError> {
    list_chain(s, chain_key(None), filter, limit).await
}

async fn list_chain<S: Store>(
    s: &S,
    key: String,
    filter: EventFilter<'_>,
    limit: u64,
) -> Result<Vec<AuditRecord>, StoreError> {
    let mut p = Params::new();
    let mut sql = format!(
        "SELECT * FROM audit_events WHERE chain_key = {}",
        p.bind(key)
    );
    if let Some(action) = filter.action {
        sql.push_str(&format!(" AND action = {}", p.bind(action)));
    }
    if let Some(since) = filter.since {
        // Compared through ts() (see repo::ts): text comparison is wrong within a second on SQLite.
        let (column, value) = (
            ts(s.backend(), "occurred_at"),
            ts(s.backend(), &p.bind(truncate_micros(since))),
        );
        sql.push_str(&format!(" AND {column} >= {value}"));
    }
    push_page(
        &mut sql,
        &mut p,
        "id",
        Page::Before(filter.before_id),
        limit,
    );
    let statement =
        sea_orm::Statement::from_sql_and_values(db_backend(s.backend()), sql, p.into_values());
    let rows = Entity::find().from_raw_sql(statement).all(s.conn()).await?;
    Ok(rows.into_iter().map(record).collect())
}

/// The first place where a chain does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    pub chain_key: String,
    pub chain_seq: i64,
    pub event_id: Option<i64>,
    pub reason: String,
}

/// Outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub chains: u64,
    pub events: u64,
    pub broken: Option<BrokenLink>,
}

/// Recomputes every chain from its first event: sequence without gaps, each `prev_hash`
/// equal to the previous `hash`, each `hash` recomputed from the row, and the head table
/// pointing at the last event (which catches a deleted tail), and no event of the chain
/// outside its sequence (an insert the triggers let through). Stops at the first broken link.
///
/// Safe while writers append: an event and its head move in one transaction, so the events
/// up to a head read earlier are all committed. Each chain is therefore checked up to the head
/// as first read, and events appended since are left for the next run. Chain keys are read
/// from the events *before* the heads, so a chain created meanwhile is not taken for one
/// without a head.
pub async fn verify(db: &Db) -> Result<VerifyReport, StoreError> {
    const PAGE: u64 = 1000;
    let event_chains: Vec<String> =
        crate::repo::query_all_sql(db, "SELECT DISTINCT chain_key FROM audit_events", vec![])
            .await?
            .into_iter()
            .map(|row| row.try_get::<String>("", "chain_key"))
            .collect::<Result<_, _>>()?;
    let heads = crate::repo::query_all_sql(
        db,
        "SELECT chain_key, last_seq, last_hash FROM audit_chain_heads ORDER BY chain_key",
        vec![],
    )
    .await?;
    let mut report = VerifyReport {
        chains: 0,
        events: 0,
        broken: None,
    };
    let mut keys: Vec<(String, i64, String)> = Vec::with_capacity(heads.len());
    for head in heads {
        let last_hash: String = head.try_get("", "last_hash")?;
        keys.push((
            head.try_get("", "chain_key")?,
            head.try_get("", "last_seq")?,
            last_hash.trim().to_owned(),
        ));
    }
    // Chains that have events but no head row are broken too.
    let headless: Vec<String> = event_chains
        .into_iter()
        .filter(|c| !keys.iter().any(|k| &k.0 == c))
        .collect();
    let orphan = if headless.is_empty() {
        None
    } else {
        Entity::find()
            .filter(Column::ChainKey.is_in(headless))
            .order_by_asc(Column::Id)
            .one(db.conn())
            .await?
    };
    if let Some(row) = orphan {
        report.broken = Some(BrokenLink {
            chain_key: row.chain_key,
            chain_seq: row.chain_seq,
            event_id: Some(row.id),
            reason: "chain has no head row".to_owned(),
        });
        return Ok(report);
    }
    for (key, last_seq, last_hash) in keys {
        report.chains += 1;
        let mut expected_seq = 1_i64;
        let mut prev = GENESIS_HASH.to_owned();
        loop {
            let rows = Entity::find()
                .filter(Column::ChainKey.eq(key.clone()))
                .filter(Column::ChainSeq.gte(expected_seq))
                .filter(Column::ChainSeq.lte(last_seq))
                .order_by_asc(Column::ChainSeq)
                .limit(PAGE)
                .all(db.conn())
                .await?;
            let fetched = rows.len() as u64;
            for row in rows {
                let broken = |reason: String| BrokenLink {
                    chain_key: key.clone(),
                    chain_seq: row.chain_seq,
                    event_id: Some(row.id),
                    reason,
                };
                if row.chain_seq != expected_seq {
                    report.broken = Some(broken(format!(
                        "sequence jumps from {} to {} (events missing)",
                        expected_seq - 1,
                        row.chain_seq
                    )));
                    return Ok(report);
                }
                if row.prev_hash.trim() != prev {
                    report.broken = Some(broken(
                        "prev_hash does not match the previous event".to_owned(),
                    ));
                    return Ok(report);
                }
                let recomputed = hash_of(&row);
                if row.hash.trim() != recomputed {
                    report.broken =
                        Some(broken("hash does not match the row's content".to_owned()));
                    return Ok(report);
                }
                prev = recomputed;
                expected_seq += 1;
                report.events += 1;
            }
            if fetched < PAGE {
                break;
            }
        }
        if expected_seq - 1 != last_seq || prev != last_hash {
            report.broken = Some(BrokenLink {
                chain_key: key.clone(),
                chain_seq: expected_seq,
                event_id: None,
                reason: format!(
                    "chain ends at event {} but its head records event {last_seq} (events missing)",
                    expected_seq - 1
                ),
            });
            return Ok(report);
        }
        // An event inserted outside the sequence (the append-only triggers allow inserts) is
        // in no link the walk above follows, yet lists show it: it breaks the chain too.
        // Events past the head as first read may be appends committed since. An event and its
        // head move in one transaction, so the head read *after* them covers every such
        // append: they are measured against it.
        let outside = Entity::find()
            .filter(Column::ChainKey.eq(key.clone()))
            .filter(
                sea_orm::Condition::any()
                    .add(Column::ChainSeq.lt(1))
                    .add(Column::ChainSeq.gt(last_seq)),
            )
            .order_by_asc(Column::Id)
            .all(db.conn())
            .await?;
        let head_now: i64 = if outside.is_empty() {
            last_seq
        } else {
            crate::repo::query_one_sql(
                db,
                "SELECT last_seq FROM audit_chain_heads WHERE chain_key = $1",
                vec![key.clone().into()],
            )
            .await?
            .map(|row| row.try_get("", "last_seq"))
            .transpose()?
            .unwrap_or(last_seq)
        };
        let stray = outside
            .into_iter()
            .find(|row| row.chain_seq < 1 || row.chain_seq > head_now);
        if let Some(row) = stray {
            report.broken = Some(BrokenLink {
                chain_key: key.clone(),
                chain_seq: row.chain_seq,
                event_id: Some(row.id),
                reason: format!(
                    "event outside the chain (its head records events 1 to {last_seq})"
                ),
            });
            return Ok(report);
        }
    }
    Ok(report)
}

/// `sha256(prev_hash ‖ canonical JSON of the row)`, hex.
fn hash_of(row: &Model) -> String {
    let content = serde_json::json!({
        "chain_key": row.chain_key,
        "chain_seq": row.chain_seq,
        "organization_id": row.organization_id.map(|u| u.to_string()),
        "actor_user_id": row.actor_user_id.map(|u| u.to_string()),
        "actor_session_id": row.actor_session_id.map(|u| u.to_string()),
        "action": row.action,
        "target_type": row.target_type,
        "target_id": row.target_id,
        "before": row.before_state,
        "after": row.after_state,
        "request_id": row.request_id,
        "ip": row.ip,
        "occurred_at": rfc3339_micros(row.occurred_at),
        "prev_hash": row.prev_hash.trim(),
    });
    let mut hasher = Sha256::new();
    hasher.update(row.prev_hash.trim().as_bytes());
    hasher.update(canonical_json(&content).as_bytes());
    hex::encode(hasher.finalize())
}

/// JSON with object keys sorted at every depth and no insignificant whitespace, so the same
/// value always yields the same bytes whatever map order a library keeps.
pub fn canonical_json(value: &Json) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Json, out: &mut String) {
    match value {
        Json::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Json::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Json::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::canonical_json;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let a = serde_json::json!({"b": 1, "a": {"y": [1, {"d": 2, "c": 3}], "x": null}});
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"x":null,"y":[1,{"c":3,"d":2}]},"b":1}"#
        );
    }
}
