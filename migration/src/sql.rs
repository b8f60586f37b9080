//! Backend-neutral DDL templates.
//!
//! A template names portable types as placeholders; [`render`] substitutes the backend's own:
//!
//! | placeholder | PostgreSQL | SQLite (what sqlx stores) |
//! |---|---|---|
//! | `{uuid}` | `uuid` | `BLOB` (16 bytes) |
//! | `{ts}` | `timestamptz` | `TEXT` (UTC, fixed format) |
//! | `{json}` | `jsonb` | `TEXT` |
//! | `{bool}` | `boolean` | `INTEGER` |
//! | `{serial_pk}` | `BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY` | `INTEGER PRIMARY KEY AUTOINCREMENT` |
//!
//! Everything else (CHECK, REFERENCES … ON DELETE, partial indexes with WHERE) is written once:
//! both backends accept the same syntax for it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// Substitutes the type placeholders of `template` for `backend`.
pub fn render(backend: DbBackend, template: &str) -> String {
    let pairs: [(&str, &str); 5] = match backend {
        DbBackend::Postgres => [
            ("{uuid}", "uuid"),
            ("{ts}", "timestamptz"),
            ("{json}", "jsonb"),
            ("{bool}", "boolean"),
            (
                "{serial_pk}",
                "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
            ),
        ],
        _ => [
            ("{uuid}", "BLOB"),
            ("{ts}", "TEXT"),
            ("{json}", "TEXT"),
            ("{bool}", "INTEGER"),
            ("{serial_pk}", "INTEGER PRIMARY KEY AUTOINCREMENT"),
        ],
    };
    pairs
        .iter()
        .fold(template.to_owned(), |sql, (from, to)| sql.replace(from, to))
}

/// Runs each `;`-separated statement of a rendered template (trigger bodies must not use this:
/// see [`exec_raw`]).
pub async fn exec(manager: &SchemaManager<'_>, template: &str) -> Result<(), DbErr> {
    let sql = render(manager.get_database_backend(), template);
    for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        manager
            .get_connection()
            .execute_unprepared(statement)
            .await?;
    }
    Ok(())
}

/// Runs one statement exactly as given (for trigger and function bodies that contain `;`).
pub async fn exec_raw(manager: &SchemaManager<'_>, statement: &str) -> Result<(), DbErr> {
    manager
        .get_connection()
        .execute_unprepared(statement)
        .await
        .map(|_| ())
}

/// Drops the given tables, children first.
pub async fn drop_tables(manager: &SchemaManager<'_>, tables: &[&str]) -> Result<(), DbErr> {
    for table in tables {
        exec_raw(manager, &format!("DROP TABLE IF EXISTS {table}")).await?;
    }
    Ok(())
}
