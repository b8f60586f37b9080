//! A pool's connections to a PostgreSQL on this host carry no TLS unless the URL asks for it
//! (`crates/persistence/src/connect_url.rs`, issue 18): on loopback TLS protected nothing and
//! cost every round trip an encryption on both sides. PostgreSQL only (SQLite has no socket).

use crate::helpers::TestDatabase;
use inventiv_persistence::{Db, DbOptions};

/// One integer from a fresh pool on `url` (closed afterwards).
async fn scalar(url: &str, sql: &str) -> i64 {
    let db = Db::connect(url, &DbOptions::default()).await.unwrap();
    let value = db.query_i64(sql).await.unwrap();
    db.close().await.unwrap();
    value
}

/// Whether this pool's connection is encrypted, as PostgreSQL sees it.
async fn encrypted(url: &str) -> bool {
    let sql = "SELECT (CASE WHEN ssl THEN 1 ELSE 0 END)::bigint FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    scalar(url, sql).await == 1
}

#[tokio::test]
async fn loopback_connections_skip_tls_unless_the_url_asks_for_it() {
    let database = TestDatabase::create().await;
    if !database.is_postgres() {
        return;
    }
    let url = database.url();
    assert!(
        url.contains("127.0.0.1") || url.contains("localhost") || url.contains("[::1]"),
        "this test needs a PostgreSQL on this host: {url}"
    );
    assert!(!encrypted(&url).await, "TLS on loopback by default");

    // The server offers TLS (Debian's default): the URL's own choice still gets it, so the
    // assertion above is about our default, not about a server without TLS.
    let offers_tls = scalar(
        &url,
        "SELECT (CASE WHEN current_setting('ssl') = 'on' THEN 1 ELSE 0 END)::bigint",
    )
    .await
        == 1;
    let separator = if url.contains('?') { '&' } else { '?' };
    let asked = format!("{url}{separator}sslmode=require");
    if offers_tls {
        assert!(encrypted(&asked).await, "sslmode=require was not honoured");
    } else {
        eprintln!("this PostgreSQL offers no TLS: only the default was checked");
    }
}
