//! Spend caps (SPEC §5.2): `spend_counters` (spent and leased per capped subject and month) and
//! `spend_leases` (the slices of budget replicas hold). See `docs/spend-caps.md` for the
//! algorithm and why `spent + leased` never passes a cap.
//!
//! These writes mark no tag (see `crate::tags`): no cache is built from them.

use crate::repo::sql::Params;
use crate::repo::{exec_sql, query_all_sql, query_one_sql, row_lock};
use crate::{Db, Store, StoreError};
use sea_orm::Value;
use time::OffsetDateTime;

/// What a cap is set on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum SubjectKind {
    Share,
    ApiKey,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Share => "share",
            SubjectKind::ApiKey => "api_key",
        }
    }

    /// The table and column holding this subject's `monthly_cap_micros`.
    fn cap_table(self) -> &'static str {
        match self {
            SubjectKind::Share => "organization_model_shares",
            SubjectKind::ApiKey => "api_keys",
        }
    }
}

/// A capped thing: a received share or an API key.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Subject {
    pub kind: SubjectKind,
    pub id: uuid::Uuid,
}

/// A calendar month in UTC as `yyyymm` (e.g. 202611).
pub fn month_of(t: OffsetDateTime) -> i32 {
    let t = crate::timefmt::to_utc(t);
    t.year() * 100 + i32::from(u8::from(t.month()))
}

/// A granted slice of budget.
#[derive(Debug, Clone, Copy)]
pub struct Lease {
    pub id: uuid::Uuid,
    pub granted: i64,
}

/// Makes sure the counter row of (`subject`, `month`) exists.
async fn ensure_counter<S: Store>(s: &S, subject: Subject, month: i32) -> Result<(), StoreError> {
    exec_sql(
        s,
        "INSERT INTO spend_counters (subject_kind, subject_id, month) VALUES ($1, $2, $3) \
         ON CONFLICT (subject_kind, subject_id, month) DO NOTHING",
        vec![
            subject.kind.as_str().into(),
            subject.id.into(),
            month.into(),
        ],
    )
    .await?;
    Ok(())
}

/// Grants `holder` a lease on `subject`'s budget for `month`: as much of `want` as the cap
/// leaves, if that is at least `need`; `None` when even `need` does not fit (the request is
/// refused). The cap is read in the same transaction, with the counter row locked, so the
/// check and the grant are one step: `spent + leased` stays within the cap whatever other
/// replicas do meanwhile. A subject whose cap was removed gets `want`.
pub async fn grant(
    db: &Db,
    subject: Subject,
    month: i32,
    holder: &str,
    (need, want): (i64, i64),
    now: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<Option<Lease>, StoreError> {
    let tx = db.begin_write().await?;
    ensure_counter(&tx, subject, month).await?;
    let lock = row_lock(&tx, " FOR UPDATE OF c");
    let row = query_one_sql(
        &tx,
        &format!(
            "SELECT c.spent_micros, c.leased_micros, t.monthly_cap_micros \
             FROM spend_counters c LEFT JOIN {table} t ON t.id = c.subject_id \
             WHERE c.subject_kind = $1 AND c.subject_id = $2 AND c.month = $3{lock}",
            table = subject.kind.cap_table()
        ),
        vec![
            subject.kind.as_str().into(),
            subject.id.into(),
            month.into(),
        ],
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt("spend counter vanished".to_owned()))?;
    let spent: i64 = row.try_get("", "spent_micros")?;
    let leased: i64 = row.try_get("", "leased_micros")?;
    let cap: Option<i64> = row.try_get("", "monthly_cap_micros")?;
    let granted = match cap {
        None => want,
        Some(cap) => {
            let left = cap.saturating_sub(spent).saturating_sub(leased.max(0));
            if left < need {
                return Ok(None);
            }
            want.min(left)
        }
    };
    exec_sql(
        &tx,
        "UPDATE spend_counters SET leased_micros = leased_micros + $4 \
         WHERE subject_kind = $1 AND subject_id = $2 AND month = $3",
        vec![
            subject.kind.as_str().into(),
            subject.id.into(),
            month.into(),
            granted.into(),
        ],
    )
    .await?;
    let id = uuid::Uuid::now_v7();
    exec_sql(
        &tx,
        "INSERT INTO spend_leases (id, subject_kind, subject_id, month, holder, granted_micros, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        vec![
            id.into(),
            subject.kind.as_str().into(),
            subject.id.into(),
            month.into(),
            holder.into(),
            granted.into(),
            now.into(),
            expires_at.into(),
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(Some(Lease { id, granted }))
}

/// Its holder gives back the unspent part of a lease: `returned` = granted minus what the holder
/// charged under it (charges still on their way to the database move from leased to spent when
/// they land). Does nothing to a lease already released (e.g. lapsed).
pub async fn release(
    db: &Db,
    lease: uuid::Uuid,
    subject: Subject,
    month: i32,
    returned: i64,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let tx = db.begin_write().await?;
    let changed = exec_sql(
        &tx,
        "UPDATE spend_leases SET released_at = $2, returned_micros = $3 \
         WHERE id = $1 AND released_at IS NULL",
        vec![lease.into(), now.into(), returned.into()],
    )
    .await?;
    if changed == 1 {
        move_leased(&tx, subject, month, -returned).await?;
    }
    tx.commit().await?;
    Ok(changed == 1)
}

async fn move_leased<S: Store>(
    s: &S,
    subject: Subject,
    month: i32,
    delta: i64,
) -> Result<(), StoreError> {
    exec_sql(
        s,
        "UPDATE spend_counters SET leased_micros = leased_micros + $4 \
         WHERE subject_kind = $1 AND subject_id = $2 AND month = $3",
        vec![
            subject.kind.as_str().into(),
            subject.id.into(),
            month.into(),
            delta.into(),
        ],
    )
    .await?;
    Ok(())
}

/// Extends the leases `holder` still holds (a live replica renews them; a dead one cannot).
pub async fn renew(db: &Db, holder: &str, expires_at: OffsetDateTime) -> Result<u64, StoreError> {
    exec_sql(
        db,
        "UPDATE spend_leases SET expires_at = $2 WHERE holder = $1 AND released_at IS NULL",
        vec![holder.into(), expires_at.into()],
    )
    .await
}

/// Releases the leases whose holder stopped renewing them (a replica that died): each returns
/// what was not charged under it as far as the database knows. A charge of that lease stored
/// later (a crash journal replayed) is still recorded, flagged `late`. Returns how many lapsed.
pub async fn sweep_lapsed(db: &Db, now: OffsetDateTime) -> Result<u64, StoreError> {
    let at = crate::repo::ts(db.backend(), "expires_at");
    let now_p = crate::repo::ts(db.backend(), "$1");
    let found = query_all_sql(
        db,
        &format!(
            "SELECT id, subject_kind, subject_id, month FROM spend_leases \
             WHERE released_at IS NULL AND {at} < {now_p} LIMIT 100"
        ),
        vec![now.into()],
    )
    .await?;
    let mut lapsed = 0;
    for row in found {
        let id: uuid::Uuid = row.try_get("", "id")?;
        let subject = Subject {
            kind: kind_of(&row.try_get::<String>("", "subject_kind")?)?,
            id: row.try_get("", "subject_id")?,
        };
        let month: i32 = row.try_get("", "month")?;
        let tx = db.begin_write().await?;
        // The condition is re-checked under the row lock: a concurrent release or a charge
        // being stored (which locks the lease) is seen, never overwritten.
        let returned = query_one_sql(
            &tx,
            "UPDATE spend_leases SET released_at = $2, lapsed = TRUE, \
                    returned_micros = granted_micros - consumed_micros \
             WHERE id = $1 AND released_at IS NULL RETURNING returned_micros",
            vec![id.into(), now.into()],
        )
        .await?;
        if let Some(row) = returned {
            let returned: i64 = row.try_get("", "returned_micros")?;
            move_leased(&tx, subject, month, -returned).await?;
            lapsed += 1;
        }
        tx.commit().await?;
    }
    Ok(lapsed)
}

fn kind_of(text: &str) -> Result<SubjectKind, StoreError> {
    match text {
        "share" => Ok(SubjectKind::Share),
        "api_key" => Ok(SubjectKind::ApiKey),
        other => Err(StoreError::Corrupt(format!("spend subject kind {other:?}"))),
    }
}

/// (spent, leased) of `subject` in `month` (0, 0 when nothing was recorded).
pub async fn counter<S: Store>(
    s: &S,
    subject: Subject,
    month: i32,
) -> Result<(i64, i64), StoreError> {
    let row = query_one_sql(
        s,
        "SELECT spent_micros, leased_micros FROM spend_counters \
         WHERE subject_kind = $1 AND subject_id = $2 AND month = $3",
        vec![
            subject.kind.as_str().into(),
            subject.id.into(),
            month.into(),
        ],
    )
    .await?;
    match row {
        Some(row) => Ok((
            row.try_get("", "spent_micros")?,
            row.try_get("", "leased_micros")?,
        )),
        None => Ok((0, 0)),
    }
}

/// (spent, leased) of `month` for each of `ids` that has a counter.
pub async fn counters_of<S: Store>(
    s: &S,
    kind: SubjectKind,
    ids: &[uuid::Uuid],
    month: i32,
) -> Result<std::collections::HashMap<uuid::Uuid, (i64, i64)>, StoreError> {
    let mut found = std::collections::HashMap::new();
    for chunk in ids.chunks(200) {
        let mut p = Params::new();
        let sql = format!(
            "SELECT subject_id, spent_micros, leased_micros FROM spend_counters \
             WHERE subject_kind = {} AND month = {} AND subject_id IN ({})",
            p.bind(kind.as_str()),
            p.bind(month),
            p.bind_all(chunk.iter().copied())
        );
        let rows = query_all_sql(s, &sql, p.into_values()).await?;
        for row in rows {
            found.insert(
                row.try_get("", "subject_id")?,
                (
                    row.try_get("", "spent_micros")?,
                    row.try_get("", "leased_micros")?,
                ),
            );
        }
    }
    Ok(found)
}

/// One charge to book against a subject's counter when its usage row is stored.
#[derive(Debug, Clone, Copy)]
pub struct Booking {
    pub subject: Subject,
    pub month: i32,
    pub charged: i64,
    /// The lease it was reserved under (a capped subject), if any.
    pub lease: Option<uuid::Uuid>,
}

/// Books the charges of newly stored usage rows, in the transaction that stored them: each adds
/// to its counter's `spent`; one reserved under a lease moves from `leased` to `spent` and adds
/// to the lease's `consumed` — unless the lease had lapsed, in which case its unspent part was
/// already given back and the charge is an overshoot: returned in the set of late leases.
pub(crate) async fn book<S: Store>(
    s: &S,
    bookings: &[Booking],
) -> Result<std::collections::BTreeSet<uuid::Uuid>, StoreError> {
    use std::collections::{BTreeMap, BTreeSet};
    // Per lease, then per counter, in key order (two writers lock rows in the same order).
    let mut per_lease: BTreeMap<uuid::Uuid, i64> = BTreeMap::new();
    for b in bookings {
        if let Some(lease) = b.lease {
            *per_lease.entry(lease).or_default() += b.charged;
        }
    }
    let mut late = BTreeSet::new();
    for (lease, charged) in &per_lease {
        let booked = exec_sql(
            s,
            "UPDATE spend_leases SET consumed_micros = consumed_micros + $2 \
             WHERE id = $1 AND NOT lapsed",
            vec![(*lease).into(), (*charged).into()],
        )
        .await?;
        if booked == 0 {
            late.insert(*lease);
        }
    }
    let mut per_counter: BTreeMap<(Subject, i32), (i64, i64)> = BTreeMap::new();
    for b in bookings {
        let entry = per_counter.entry((b.subject, b.month)).or_default();
        entry.0 = entry.0.saturating_add(b.charged);
        if b.lease.is_some_and(|lease| !late.contains(&lease)) {
            entry.1 = entry.1.saturating_sub(b.charged);
        }
    }
    if per_counter.is_empty() {
        return Ok(late);
    }
    let mut sql = String::from(
        "INSERT INTO spend_counters (subject_kind, subject_id, month, spent_micros, leased_micros) VALUES ",
    );
    let mut p = Params::new();
    for (i, ((subject, month), (spent, leased))) in per_counter.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        let row: [Value; 5] = [
            subject.kind.as_str().into(),
            subject.id.into(),
            (*month).into(),
            (*spent).into(),
            (*leased).into(),
        ];
        sql.push_str(&format!("({})", p.bind_all(row)));
    }
    sql.push_str(
        " ON CONFLICT (subject_kind, subject_id, month) DO UPDATE SET \
         spent_micros = spend_counters.spent_micros + excluded.spent_micros, \
         leased_micros = spend_counters.leased_micros + excluded.leased_micros",
    );
    exec_sql(s, &sql, p.into_values()).await?;
    Ok(late)
}
