//! Repositories: one module per table (or small group), functions taking a [`crate::Store`].

pub mod access_requests;
pub mod api_keys;
pub mod audit;
pub mod endpoint_claims;
pub mod instances;
pub mod invitations;
pub mod marketplace;
pub mod memberships;
pub mod models;
pub mod namespaces;
pub mod offerings;
pub mod organizations;
pub mod rate_limits;
pub mod reset_tokens;
pub mod scale;
pub mod sessions;
pub mod shares;
pub mod spend;
mod sql;
pub mod usage;
pub mod users;
pub mod workbench;

use crate::{Store, StoreError, db::db_backend};
use sea_orm::{ConnectionTrait, QueryResult, Statement, Value};

/// Runs a raw statement (`$1`-style placeholders work on both backends).
pub(crate) async fn exec_sql<S: Store>(
    s: &S,
    sql: &str,
    values: Vec<Value>,
) -> Result<u64, StoreError> {
    let stmt = Statement::from_sql_and_values(db_backend(s.backend()), sql, values);
    Ok(s.conn().execute_raw(stmt).await?.rows_affected())
}

/// Runs a raw query expected to return at most one row.
pub(crate) async fn query_one_sql<S: Store>(
    s: &S,
    sql: &str,
    values: Vec<Value>,
) -> Result<Option<QueryResult>, StoreError> {
    let stmt = Statement::from_sql_and_values(db_backend(s.backend()), sql, values);
    Ok(s.conn().query_one_raw(stmt).await?)
}

/// Runs a raw query returning any number of rows.
pub(crate) async fn query_all_sql<S: Store>(
    s: &S,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<QueryResult>, StoreError> {
    let stmt = Statement::from_sql_and_values(db_backend(s.backend()), sql, values);
    Ok(s.conn().query_all_raw(stmt).await?)
}

/// `clause`, a row-lock clause (`" FOR NO KEY UPDATE OF k"`), on PostgreSQL; nothing on SQLite,
/// where a write transaction (`BEGIN IMMEDIATE`) holds the database's write lock already, and
/// a single statement outside one is atomic.
pub(crate) fn row_lock<S: Store>(s: &S, clause: &'static str) -> &'static str {
    match s.backend() {
        crate::Backend::Postgres => clause,
        crate::Backend::Sqlite => "",
    }
}

/// A timestamp expression that compares correctly on this backend. PostgreSQL compares
/// `timestamptz` natively. SQLite stores RFC 3339 text whose fraction is written without
/// trailing zeros (`…04.5Z` vs `…04.000001Z`), which text comparison gets wrong within a second,
/// so comparisons go through `julianday()` there (millisecond resolution).
pub(crate) fn ts(backend: crate::Backend, expr: &str) -> String {
    match backend {
        crate::Backend::Postgres => expr.to_owned(),
        crate::Backend::Sqlite => format!("julianday({expr})"),
    }
}

/// Sets (`by` = Some) or clears (None) one approval flag — the `tech_activated_by/at` or
/// `eco_activated_by/at` columns every activatable table has — on the row of `table` matching
/// `condition`, whose placeholders are bound in `p` (the flag's own values are bound after
/// them). Returns whether a row matched.
pub(crate) async fn set_activation_flag<S: Store>(
    s: &S,
    table: &str,
    condition: &str,
    mut p: sql::Params,
    flag: inventiv_domain::Flag,
    by: Option<inventiv_domain::UserId>,
    now: time::OffsetDateTime,
) -> Result<bool, StoreError> {
    let column = match flag {
        inventiv_domain::Flag::Tech => "tech",
        inventiv_domain::Flag::Eco => "eco",
    };
    let at: Option<time::OffsetDateTime> = by.map(|_| now);
    let sql = format!(
        "UPDATE {table} SET {column}_activated_by = {}, {column}_activated_at = {}, updated_at = {} WHERE {condition}",
        p.bind(by.map(|u| u.as_uuid())),
        p.bind(at),
        p.bind(now)
    );
    Ok(exec_sql(s, &sql, p.into_values()).await? == 1)
}

pub(crate) fn corrupt(what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {err}"))
}
