//! `inference_usage`: one row per metered request, inserted in batches, idempotent by its id
//! (whose text is the `request_id`); read per consumer or provider org (or a personal user)
//! over a time range.

use crate::repo::spend::{self, Booking, Subject, SubjectKind};
use crate::repo::sql::{Params, owned_by};
use crate::repo::{exec_sql, query_all_sql, ts};
use crate::{Backend, Db, Store, StoreError};
use inventiv_domain::{
    ApiKeyId, InstanceId, ModelId, OfferingId, OrgId, Scope, ShareId, UsageId, UserId,
};
use sea_orm::Value;
use time::OffsetDateTime;

/// Where a row's token counts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UsageSource {
    /// The upstream's own `usage`.
    Upstream,
    /// The upstream reported none: counted from what was relayed.
    Estimated,
}

impl UsageSource {
    pub fn as_str(self) -> &'static str {
        match self {
            UsageSource::Upstream => "upstream",
            UsageSource::Estimated => "estimated",
        }
    }
}

/// One metered request. Serializable: the proxy journals it locally before the answer's last
/// byte leaves, and a restarted process replays the journal.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct UsageRecord {
    pub id: UsageId,
    pub request_id: String,
    pub occurred_at: OffsetDateTime,
    pub api_key_id: Option<ApiKeyId>,
    pub user_id: Option<UserId>,
    pub consumer_organization_id: Option<OrgId>,
    pub provider_organization_id: Option<OrgId>,
    pub offering_id: Option<OfferingId>,
    pub share_id: Option<ShareId>,
    pub model_id: ModelId,
    pub instance_id: InstanceId,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub price_input_micros_per_1k: i64,
    pub price_output_micros_per_1k: i64,
    pub charged_micros: i64,
    pub usage_source: UsageSource,
    /// The upstream reported more than was reserved; the charge was clamped to the reservation.
    pub clamped: bool,
    /// The calendar month (UTC, `yyyymm`) of the request's admission: the month it spends in.
    pub month: i32,
    /// The spend leases its reservation was taken from (share cap, key cap).
    pub share_lease: Option<uuid::Uuid>,
    pub key_lease: Option<uuid::Uuid>,
}

impl UsageRecord {
    /// The charges this row books against spend counters once stored.
    fn bookings(&self) -> impl Iterator<Item = Booking> + '_ {
        let share = self
            .share_id
            .map(|id| (SubjectKind::Share, id.as_uuid(), self.share_lease));
        let key = self
            .api_key_id
            .map(|id| (SubjectKind::ApiKey, id.as_uuid(), self.key_lease));
        [share, key]
            .into_iter()
            .flatten()
            .filter(|_| self.charged_micros > 0)
            .map(|(kind, id, lease)| Booking {
                subject: Subject { kind, id },
                month: self.month,
                charged: self.charged_micros,
                lease,
            })
    }
}

const COLUMNS: &str = "INSERT INTO inference_usage (id, request_id, occurred_at, api_key_id, user_id, \
     consumer_organization_id, provider_organization_id, organization_model_id, share_id, model_id, \
     instance_id, input_tokens, output_tokens, price_input_micros_per_1k, price_output_micros_per_1k, \
     charged_micros, usage_source, clamped, created_at) VALUES ";
const PER_ROW: usize = 19;

fn values_of(r: &UsageRecord, now: OffsetDateTime) -> [Value; PER_ROW] {
    [
        r.id.as_uuid().into(),
        r.request_id.clone().into(),
        r.occurred_at.into(),
        r.api_key_id.map(|v| v.as_uuid()).into(),
        r.user_id.map(|v| v.as_uuid()).into(),
        r.consumer_organization_id.map(|v| v.as_uuid()).into(),
        r.provider_organization_id.map(|v| v.as_uuid()).into(),
        r.offering_id.map(|v| v.as_uuid()).into(),
        r.share_id.map(|v| v.as_uuid()).into(),
        r.model_id.as_uuid().into(),
        r.instance_id.as_uuid().into(),
        r.input_tokens.into(),
        r.output_tokens.into(),
        r.price_input_micros_per_1k.into(),
        r.price_output_micros_per_1k.into(),
        r.charged_micros.into(),
        r.usage_source.as_str().into(),
        r.clamped.into(),
        now.into(),
    ]
}

/// The placeholders of the row starting at argument `first`: `($k+1, …, $k+19)` on
/// PostgreSQL, anonymous `(?, …, ?)` on SQLite. sqlx's SQLite driver asks SQLite for each
/// argument's name, a linear scan of the statement's named parameters, so named ones make
/// binding grow with the square of the row count (`perf` of `make bench-proxy` once found 44 %
/// of the server's CPU there); anonymous ones have no name to scan.
fn placeholders(sql: &mut String, backend: Backend, first: usize) {
    sql.push('(');
    for k in 1..=PER_ROW {
        if k > 1 {
            sql.push_str(", ");
        }
        match backend {
            Backend::Postgres => {
                sql.push('$');
                sql.push_str(&(first + k).to_string());
            }
            Backend::Sqlite => sql.push('?'),
        }
    }
    sql.push(')');
}

/// Rows per statement on SQLite (see [`insert_batch`]).
const SQLITE_ROWS_PER_STATEMENT: usize = 32;

/// Inserts a batch; rows already stored (same `id`, whose text is the `request_id`) are
/// skipped, so a batch retried after a partial failure — or a crash journal replayed — stores
/// each row once. In the same transaction, the charges of the rows actually stored are booked
/// against their spend counters and leases ([`spend`]), and rows whose lease had lapsed are
/// flagged `late`. Returns how many were new. The write marks no tag: no cache is built from
/// usage rows.
///
/// PostgreSQL gets the whole batch as one JSON parameter of one statement whose text never
/// changes, so it is parsed and planned once per connection, and binding costs one value
/// rather than 19 per row. SQLite gets statements of at most 32 rows (one commit, one write of
/// each touched page): full chunks reuse one prepared statement.
pub async fn insert_batch(
    db: &Db,
    rows: &[UsageRecord],
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let tx = db.begin_write().await?;
    let mut stored = std::collections::HashSet::new();
    if db.backend() == Backend::Postgres {
        stored.extend(insert_json(&tx, rows, now).await?);
    } else {
        for chunk in rows.chunks(SQLITE_ROWS_PER_STATEMENT) {
            stored.extend(insert_rows(&tx, chunk, now).await?);
        }
    }
    let new: Vec<&UsageRecord> = rows
        .iter()
        .filter(|r| stored.contains(&r.id.as_uuid()))
        .collect();
    let bookings: Vec<Booking> = new.iter().flat_map(|r| r.bookings()).collect();
    if !bookings.is_empty() {
        let late = spend::book(&tx, &bookings).await?;
        let late_rows: Vec<uuid::Uuid> = new
            .iter()
            .filter(|r| {
                [r.share_lease, r.key_lease]
                    .iter()
                    .flatten()
                    .any(|l| late.contains(l))
            })
            .map(|r| r.id.as_uuid())
            .collect();
        for id in &late_rows {
            exec_sql(
                &tx,
                "UPDATE inference_usage SET late = TRUE WHERE id = $1",
                vec![(*id).into()],
            )
            .await?;
        }
        if !late_rows.is_empty() {
            tracing::warn!(
                rows = late_rows.len(),
                "usage stored after its spend lease lapsed (a crash replay): flagged late"
            );
        }
    }
    tx.commit().await?;
    Ok(new.len() as u64)
}

/// A usage row as `insert_json` reads it (the time in microseconds since the epoch: exact,
/// where a text or floating-point time would need parsing or round).
#[derive(serde::Serialize)]
struct JsonRow<'a> {
    id: uuid::Uuid,
    request_id: &'a str,
    occurred_us: i128,
    api_key_id: Option<uuid::Uuid>,
    user_id: Option<uuid::Uuid>,
    consumer_organization_id: Option<uuid::Uuid>,
    provider_organization_id: Option<uuid::Uuid>,
    organization_model_id: Option<uuid::Uuid>,
    share_id: Option<uuid::Uuid>,
    model_id: uuid::Uuid,
    instance_id: uuid::Uuid,
    input_tokens: i64,
    output_tokens: i64,
    price_input_micros_per_1k: i64,
    price_output_micros_per_1k: i64,
    charged_micros: i64,
    usage_source: &'static str,
    clamped: bool,
}

const INSERT_JSON: &str = "INSERT INTO inference_usage (id, request_id, occurred_at, api_key_id, user_id, \
     consumer_organization_id, provider_organization_id, organization_model_id, share_id, model_id, \
     instance_id, input_tokens, output_tokens, price_input_micros_per_1k, price_output_micros_per_1k, \
     charged_micros, usage_source, clamped, created_at) \
     SELECT id, request_id, 'epoch'::timestamptz + occurred_us * interval '1 microsecond', api_key_id, user_id, \
     consumer_organization_id, provider_organization_id, organization_model_id, share_id, model_id, \
     instance_id, input_tokens, output_tokens, price_input_micros_per_1k, price_output_micros_per_1k, \
     charged_micros, usage_source, clamped, $2 \
     FROM json_to_recordset($1::json) AS r(id uuid, request_id text, occurred_us bigint, api_key_id uuid, \
     user_id uuid, consumer_organization_id uuid, provider_organization_id uuid, organization_model_id uuid, \
     share_id uuid, model_id uuid, instance_id uuid, input_tokens bigint, output_tokens bigint, \
     price_input_micros_per_1k bigint, price_output_micros_per_1k bigint, charged_micros bigint, \
     usage_source text, clamped boolean) \
     ON CONFLICT (id) DO NOTHING RETURNING id";

/// The PostgreSQL batch: every row in one JSON array. Returns the ids that were new.
async fn insert_json<S: Store>(
    s: &S,
    rows: &[UsageRecord],
    now: OffsetDateTime,
) -> Result<Vec<uuid::Uuid>, StoreError> {
    let json: Vec<JsonRow<'_>> = rows
        .iter()
        .map(|r| JsonRow {
            id: r.id.as_uuid(),
            request_id: &r.request_id,
            occurred_us: r.occurred_at.unix_timestamp_nanos() / 1000,
            api_key_id: r.api_key_id.map(|v| v.as_uuid()),
            user_id: r.user_id.map(|v| v.as_uuid()),
            consumer_organization_id: r.consumer_organization_id.map(|v| v.as_uuid()),
            provider_organization_id: r.provider_organization_id.map(|v| v.as_uuid()),
            organization_model_id: r.offering_id.map(|v| v.as_uuid()),
            share_id: r.share_id.map(|v| v.as_uuid()),
            model_id: r.model_id.as_uuid(),
            instance_id: r.instance_id.as_uuid(),
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            price_input_micros_per_1k: r.price_input_micros_per_1k,
            price_output_micros_per_1k: r.price_output_micros_per_1k,
            charged_micros: r.charged_micros,
            usage_source: r.usage_source.as_str(),
            clamped: r.clamped,
        })
        .collect();
    let json = serde_json::to_string(&json).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    returned_ids(s, INSERT_JSON, vec![json.into(), now.into()]).await
}

async fn returned_ids<S: Store>(
    s: &S,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<uuid::Uuid>, StoreError> {
    query_all_sql(s, sql, values)
        .await?
        .into_iter()
        .map(|row| Ok(row.try_get("", "id")?))
        .collect()
}

/// One multi-row `INSERT … ON CONFLICT (id) DO NOTHING RETURNING id`.
async fn insert_rows<S: Store>(
    s: &S,
    rows: &[UsageRecord],
    now: OffsetDateTime,
) -> Result<Vec<uuid::Uuid>, StoreError> {
    let mut sql = String::with_capacity(COLUMNS.len() + rows.len() * PER_ROW * 5 + 32);
    sql.push_str(COLUMNS);
    let mut values: Vec<Value> = Vec::with_capacity(rows.len() * PER_ROW);
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        placeholders(&mut sql, s.backend(), i * PER_ROW);
        values.extend(values_of(r, now));
    }
    sql.push_str(" ON CONFLICT (id) DO NOTHING RETURNING id");
    returned_ids(s, &sql, values).await
}

/// A usage row with the names a dashboard shows.
#[derive(Debug, Clone)]
pub struct UsageRow {
    pub occurred_at: OffsetDateTime,
    pub api_key_id: Option<ApiKeyId>,
    pub consumer_organization_id: Option<OrgId>,
    pub provider_organization_id: Option<OrgId>,
    pub offering_id: Option<OfferingId>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub charged_micros: i64,
}

/// Hands `each` what `scope` consumed in `[from, to)` (its spend): an org's calls, or a user's
/// personal calls (no consumer org).
pub async fn each_consumed(
    db: &Db,
    scope: Scope,
    from: OffsetDateTime,
    to: OffsetDateTime,
    each: impl FnMut(UsageRow),
) -> Result<(), StoreError> {
    let mut p = Params::new();
    let filter = owned_by(scope, "consumer_organization_id", "user_id", &mut p);
    each_where(db, &filter, p, (from, to), each).await
}

/// Hands `each` what others consumed of `provider`'s offerings in `[from, to)` (its revenue).
pub async fn each_provided(
    db: &Db,
    provider: OrgId,
    from: OffsetDateTime,
    to: OffsetDateTime,
    each: impl FnMut(UsageRow),
) -> Result<(), StoreError> {
    let mut p = Params::new();
    let filter = format!("provider_organization_id = {}", p.bind(provider.as_uuid()));
    each_where(db, &filter, p, (from, to), each).await
}

/// Hands `each` the usage rows matching `filter` (bound in `p`) in `[from, to)`, oldest first,
/// one at a time as they come from the database. A year of a busy org's usage is millions of
/// rows: read into one `Vec`, a few concurrent reports took gigabytes; folded as they stream,
/// a report holds only its groups.
async fn each_where(
    db: &Db,
    filter: &str,
    mut p: Params,
    (from, to): (OffsetDateTime, OffsetDateTime),
    mut each: impl FnMut(UsageRow),
) -> Result<(), StoreError> {
    use futures_util::StreamExt;
    use sea_orm::StreamTrait;
    let at = ts(db.backend(), "occurred_at");
    let (from_p, to_p) = (
        ts(db.backend(), &p.bind(from)),
        ts(db.backend(), &p.bind(to)),
    );
    let sql = format!(
        "SELECT occurred_at, api_key_id, consumer_organization_id, provider_organization_id, organization_model_id, \
                input_tokens, output_tokens, charged_micros \
         FROM inference_usage WHERE {filter} AND {at} >= {from_p} AND {at} < {to_p} ORDER BY occurred_at"
    );
    let statement = sea_orm::Statement::from_sql_and_values(
        crate::db::db_backend(db.backend()),
        &sql,
        p.into_values(),
    );
    let mut rows = db.conn().stream_raw(statement).await?;
    while let Some(row) = rows.next().await {
        each(usage_row(&row?)?);
    }
    Ok(())
}

fn usage_row(row: &sea_orm::QueryResult) -> Result<UsageRow, StoreError> {
    let uuid_opt = |col: &str| row.try_get::<Option<uuid::Uuid>>("", col);
    Ok(UsageRow {
        occurred_at: row.try_get("", "occurred_at")?,
        api_key_id: uuid_opt("api_key_id")?.map(ApiKeyId::from_uuid),
        consumer_organization_id: uuid_opt("consumer_organization_id")?.map(OrgId::from_uuid),
        provider_organization_id: uuid_opt("provider_organization_id")?.map(OrgId::from_uuid),
        offering_id: uuid_opt("organization_model_id")?.map(OfferingId::from_uuid),
        input_tokens: row.try_get("", "input_tokens")?,
        output_tokens: row.try_get("", "output_tokens")?,
        charged_micros: row.try_get("", "charged_micros")?,
    })
}

/// Reading stored usage back by request or row id, across tenants on purpose: operators,
/// benchmarks and tests reconcile what clients were told with what was stored (after a crash,
/// a replayed journal, a load run). No request path reads usage this way.
pub mod reconciliation {
    use crate::repo::sql::Params;
    use crate::repo::{query_all_sql, query_one_sql};
    use crate::{Store, StoreError};
    use inventiv_domain::{ApiKeyId, ShareId, UsageId};

    /// How many usage rows carry this request id (tests and reconciliation).
    pub async fn count_request<S: Store>(s: &S, request_id: &str) -> Result<i64, StoreError> {
        // The request id is the row id's text: look it up by the primary key.
        let Ok(id) = request_id.parse::<uuid::Uuid>() else {
            return Ok(0);
        };
        let rows = query_all_sql(
            s,
            "SELECT COUNT(*) AS n FROM inference_usage WHERE id = $1",
            vec![id.into()],
        )
        .await?;
        Ok(rows
            .first()
            .map(|r| r.try_get::<i64>("", "n"))
            .transpose()?
            .unwrap_or(0))
    }

    /// How many usage rows are stored in all (benchmarks and operators reconcile with it).
    pub async fn count_all<S: Store>(s: &S) -> Result<i64, StoreError> {
        let rows = query_all_sql(s, "SELECT COUNT(*) AS n FROM inference_usage", vec![]).await?;
        Ok(rows
            .first()
            .map(|r| r.try_get::<i64>("", "n"))
            .transpose()?
            .unwrap_or(0))
    }

    /// A stored usage row as reconciliation reads it.
    #[derive(Debug, Clone)]
    pub struct StoredUsage {
        pub input_tokens: i64,
        pub output_tokens: i64,
        pub charged_micros: i64,
        pub usage_source: String,
        pub late: bool,
        pub clamped: bool,
        pub api_key_id: Option<ApiKeyId>,
        pub share_id: Option<ShareId>,
    }

    /// The usage row with this id (the `X-Inventiv-Usage-Id` of a proxied answer).
    pub async fn find<S: Store>(s: &S, id: UsageId) -> Result<Option<StoredUsage>, StoreError> {
        let row = query_one_sql(
            s,
            "SELECT input_tokens, output_tokens, charged_micros, usage_source, late, clamped, api_key_id, share_id \
             FROM inference_usage WHERE id = $1",
            vec![id.as_uuid().into()],
        )
        .await?;
        row.map(|row| {
            Ok(StoredUsage {
                input_tokens: row.try_get("", "input_tokens")?,
                output_tokens: row.try_get("", "output_tokens")?,
                charged_micros: row.try_get("", "charged_micros")?,
                usage_source: row.try_get("", "usage_source")?,
                late: row.try_get("", "late")?,
                clamped: row.try_get("", "clamped")?,
                api_key_id: row
                    .try_get::<Option<uuid::Uuid>>("", "api_key_id")?
                    .map(ApiKeyId::from_uuid),
                share_id: row
                    .try_get::<Option<uuid::Uuid>>("", "share_id")?
                    .map(ShareId::from_uuid),
            })
        })
        .transpose()
    }

    /// The sum of the charges stored for an API key (all time), for reconciliation.
    pub async fn charged_to_key<S: Store>(s: &S, key: ApiKeyId) -> Result<i64, StoreError> {
        let rows = query_all_sql(
            s,
            "SELECT CAST(COALESCE(SUM(charged_micros), 0) AS BIGINT) AS total FROM inference_usage WHERE api_key_id = $1",
            vec![key.as_uuid().into()],
        )
        .await?;
        Ok(rows
            .first()
            .map(|r| r.try_get::<i64>("", "total"))
            .transpose()?
            .unwrap_or(0))
    }

    /// How many of these usage ids are stored (reconciliation after a crash).
    pub async fn count_stored<S: Store>(s: &S, ids: &[UsageId]) -> Result<i64, StoreError> {
        let mut found = 0;
        for chunk in ids.chunks(500) {
            let mut p = Params::new();
            let sql = format!(
                "SELECT COUNT(*) AS n FROM inference_usage WHERE id IN ({})",
                p.bind_all(chunk.iter().map(|id| id.as_uuid()))
            );
            let rows = query_all_sql(s, &sql, p.into_values()).await?;
            found += rows
                .first()
                .map(|r| r.try_get::<i64>("", "n"))
                .transpose()?
                .unwrap_or(0);
        }
        Ok(found)
    }
}
