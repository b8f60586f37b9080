//! A fresh database per test: a SQLite file in a temporary directory, or — when
//! `INVENTIV_TEST_DATABASE_URL` names a PostgreSQL server — a new database with a random name,
//! dropped afterwards. If that variable is set and the server cannot be reached, the test
//! FAILS: a suite asked to run on PostgreSQL must never pass by skipping it.

use inventiv_persistence::{Db, DbOptions};
use std::path::PathBuf;

pub struct TestDatabase {
    dir: PathBuf,
    url: String,
    postgres: Option<PostgresDb>,
}

struct PostgresDb {
    admin_url: String,
    name: String,
}

impl TestDatabase {
    pub async fn create() -> TestDatabase {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("inventiv-test-{id}"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        match std::env::var("INVENTIV_TEST_DATABASE_URL") {
            Ok(admin_url) if !admin_url.is_empty() => {
                let name = format!("inventiv_test_{id}");
                let admin = Db::connect(
                    &admin_url,
                    &DbOptions {
                        max_connections: 1,
                        ..DbOptions::default()
                    },
                )
                .await
                .unwrap_or_else(|e| {
                    panic!("INVENTIV_TEST_DATABASE_URL is set but PostgreSQL is unreachable: {e}")
                });
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
                admin.close().await.ok();
                let url = with_database(&admin_url, &name);
                TestDatabase {
                    dir,
                    url,
                    postgres: Some(PostgresDb { admin_url, name }),
                }
            }
            _ => {
                let url = format!("sqlite://{}?mode=rwc", dir.join("inventiv.db").display());
                TestDatabase {
                    dir,
                    url,
                    postgres: None,
                }
            }
        }
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.clone()
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }
}

/// `postgres://u@h:p/db?x` with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let prefix_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[prefix_end..].find('/') {
        Some(slash) => &base[..prefix_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(pg) = self.postgres.take() {
            // Drop runs inside the test's runtime: do the async work on a thread of its own.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async {
                    if let Ok(admin) = Db::connect(
                        &pg.admin_url,
                        &DbOptions {
                            max_connections: 1,
                            ..DbOptions::default()
                        },
                    )
                    .await
                    {
                        let _ = admin
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                                pg.name
                            ))
                            .await;
                        let _ = admin.close().await;
                    }
                });
            })
            .join();
        }
    }
}

#[test]
fn database_name_is_replaced() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgres://h:5432", "x"),
        "postgres://h:5432/x"
    );
    assert_eq!(
        with_database("postgres://h/db?sslmode=disable", "x"),
        "postgres://h/x?sslmode=disable"
    );
}
