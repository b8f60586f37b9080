//! `migration` CLI for operators: `cargo run -p migration -- up|down|status` against
//! `DATABASE_URL`. The server applies pending migrations by itself at start-up (and
//! `inventiv-server migrate` does only that); this tool also knows how to roll back.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::Database;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("DATABASE_URL is not set");
        return ExitCode::from(2);
    };
    let command = std::env::args().nth(1).unwrap_or_else(|| "up".to_owned());
    let result = async {
        let db = Database::connect(&url).await?;
        match command.as_str() {
            "up" => migration::Migrator::up(&db, None).await,
            "down" => migration::Migrator::down(&db, Some(1)).await,
            "status" => migration::Migrator::status(&db).await,
            other => Err(DbErr::Custom(format!(
                "unknown command {other:?}: up|down|status"
            ))),
        }
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("migration failed: {err}");
            ExitCode::FAILURE
        }
    }
}
