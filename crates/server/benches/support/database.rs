//! The bench's own database: a fresh PostgreSQL database on the server named by
//! `INVENTIV_BENCH_DATABASE_URL` (dropped at the end), or else a SQLite file.

use inventiv_persistence::{Db, DbOptions};

/// The bench's own database: a new PostgreSQL database, or a SQLite file in `dir`.
pub struct BenchDatabase {
    pub url: String,
    pub backend: &'static str,
    /// (server URL, database name) to drop at the end.
    postgres: Option<(String, String)>,
}

impl BenchDatabase {
    pub async fn create(dir: &std::path::Path) -> BenchDatabase {
        match std::env::var("INVENTIV_BENCH_DATABASE_URL") {
            Ok(server) if server.starts_with("postgres") => {
                let name = format!("inventiv_bench_{}", uuid::Uuid::new_v4().simple());
                let admin = Db::connect(&server, &DbOptions::default()).await.unwrap();
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .unwrap();
                admin.close().await.unwrap();
                let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
                BenchDatabase {
                    url: format!("{base}/{name}"),
                    backend: "PostgreSQL",
                    postgres: Some((server.clone(), name)),
                }
            }
            _ => BenchDatabase {
                url: format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()),
                backend: "SQLite",
                postgres: None,
            },
        }
    }

    pub async fn drop(self) {
        if let Some((server, name)) = self.postgres {
            let admin = Db::connect(&server, &DbOptions::default()).await.unwrap();
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
        }
    }
}
