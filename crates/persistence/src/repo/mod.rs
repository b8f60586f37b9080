//! Repositories: one module per table (or small group), functions taking a [`crate::Store`].

pub mod audit;
pub mod invitations;
pub mod memberships;
pub mod organizations;
pub mod reset_tokens;
pub mod sessions;
pub mod users;

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

pub(crate) fn corrupt(what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {err}"))
}
