//! A busy pool hands out its PostgreSQL connections without pinging them first
//! (`PING_WHEN_IDLE_FOR` in `crates/persistence/src/db.rs`, issue 18): sqlx's default tested
//! every checkout with a round trip, on top of the ping it sends whenever a connection goes
//! back. A connection idle for a second or more is still tested, and a dead one replaced.
//!
//! The round trips are counted on the wire: the pool connects through a forwarder on loopback
//! that reads the client's side of the protocol and counts the messages that end a round trip
//! (`Sync` of the extended protocol, `Query` of the simple one). PostgreSQL only.
//!
//! The same forwarder can cut a connection right after passing a `COMMIT` on: a commit whose
//! acknowledgement is lost still invalidates, in this process, what it changed.

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestDatabase, json_with_status, spawn_app_with};
use inventiv_domain::Slug;
use inventiv_persistence::repo::organizations;
use inventiv_persistence::{Db, DbOptions};
use inventiv_server::settings::Secret;
use inventiv_service::SystemClock;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Forwards connections from a loopback port to `upstream`, counting the round trips the
/// clients ask for. Returns the port, the counter, and a switch: once set, the next `COMMIT`
/// is passed on to the server and its connection cut before the answer comes back (a commit
/// whose acknowledgement is lost).
async fn counting_forwarder(upstream: String) -> (u16, Arc<AtomicUsize>, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let round_trips = Arc::new(AtomicUsize::new(0));
    let cut_next_commit = Arc::new(AtomicBool::new(false));
    let (counter, cut) = (round_trips.clone(), cut_next_commit.clone());
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = TcpStream::connect(&upstream).await.unwrap();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let answers = tokio::spawn(async move {
                let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
            });
            let (counter, cut) = (counter.clone(), cut.clone());
            tokio::spawn(async move {
                let mut messages = Messages::default();
                // The change listener's connection (it sent LISTEN) pings on a timer of its
                // own: not a request's round trips, so not counted.
                let mut listening = false;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match client_read.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let (mut ended, mut commit) = (0, false);
                    for (kind, body) in messages.feed(&buf[..n]) {
                        listening |= body.windows(7).any(|w| w == b"LISTEN ");
                        commit |= body.starts_with(b"COMMIT");
                        ended += usize::from(kind == b'S' || kind == b'Q');
                    }
                    if !listening {
                        counter.fetch_add(ended, Ordering::SeqCst);
                    }
                    if server_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    if commit && cut.swap(false, Ordering::SeqCst) {
                        // The server reads the COMMIT before the end of the stream, and
                        // commits; its answer never reaches the client.
                        answers.abort();
                        break;
                    }
                }
            });
        }
    });
    (port, round_trips, cut_next_commit)
}

/// The client's side of the PostgreSQL protocol, cut into messages: the startup message
/// (length-prefixed, no type), then `type byte + length` messages.
#[derive(Default)]
struct Messages {
    pending: Vec<u8>,
    started: bool,
}

impl Messages {
    /// Takes more bytes and yields the type and body of each message they complete.
    fn feed(&mut self, bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        self.pending.extend_from_slice(bytes);
        let mut complete = Vec::new();
        loop {
            let header = if self.started { 5 } else { 4 };
            let Some(len) = self.pending.get(header - 4..header) else {
                break;
            };
            let len = u32::from_be_bytes(len.try_into().unwrap()) as usize;
            let total = header - 4 + len;
            if self.pending.len() < total {
                break;
            }
            let message: Vec<u8> = self.pending.drain(..total).collect();
            if self.started {
                complete.push((message[0], message[header..].to_vec()));
            }
            self.started = true;
        }
        complete
    }
}

/// Where `host:port` sits in `url` (after the credentials, before the path or the query).
fn authority(url: &str) -> std::ops::Range<usize> {
    let start = url
        .find('@')
        .map_or_else(|| url.find("://").unwrap() + 3, |at| at + 1);
    start..start + url[start..].find(['/', '?']).unwrap_or(url.len() - start)
}

/// `url` with its `host:port` replaced by the forwarder's loopback `port`.
fn through(url: &str, port: u16) -> String {
    let at = authority(url);
    format!("{}127.0.0.1:{port}{}", &url[..at.start], &url[at.end..])
}

/// A pool of one connection on `url`: every checkout gets the same connection.
async fn one_connection(url: &str) -> Db {
    let options = DbOptions {
        max_connections: 1,
        ..DbOptions::default()
    };
    Db::connect(url, &options).await.unwrap()
}

/// Round trips the clients of `counter` asked for while `work` ran, once the connection's
/// release (and its ping, sent from a task of its own) has settled.
async fn counted<F: std::future::Future<Output = ()>>(counter: &AtomicUsize, work: F) -> usize {
    let before = counter.load(Ordering::SeqCst);
    work.await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    counter.load(Ordering::SeqCst) - before
}

#[tokio::test]
async fn a_busy_connection_is_handed_out_without_a_ping_and_an_idle_one_is_tested() {
    let database = TestDatabase::create().await;
    if !database.is_postgres() {
        return;
    }
    let url = database.url();
    let (port, round_trips, _) = counting_forwarder(url[authority(&url)].to_owned()).await;
    let db = one_connection(&through(&url, port)).await;
    // The connection is opened, and the statement prepared, before counting.
    assert_eq!(db.query_i64("SELECT 1::bigint").await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(200)).await;

    const QUERIES: usize = 10;
    let busy = counted(&round_trips, async {
        for _ in 0..QUERIES {
            assert_eq!(db.query_i64("SELECT 1::bigint").await.unwrap(), 1);
        }
    })
    .await;
    // Each checkout: the statement, then sqlx's ping on release. A ping on checkout too
    // would make it three.
    assert_eq!(
        busy,
        2 * QUERIES,
        "round trips for {QUERIES} back-to-back statements"
    );

    // Idle past the threshold: the checkout pings first.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let idle = counted(&round_trips, async {
        assert_eq!(db.query_i64("SELECT 1::bigint").await.unwrap(), 1);
    })
    .await;
    assert_eq!(idle, 3, "an idle connection is tested before use");
    db.close().await.unwrap();
}

/// The test the threshold keeps: a pooled connection that died while idle (terminated by the
/// server, as a restart or a proxy would) is replaced on checkout, not handed out.
#[tokio::test]
async fn a_connection_that_died_while_idle_is_replaced_on_checkout() {
    let database = TestDatabase::create().await;
    if !database.is_postgres() {
        return;
    }
    let url = database.url();
    let db = one_connection(&url).await;
    let pid = db
        .query_i64("SELECT pg_backend_pid()::bigint")
        .await
        .unwrap();
    let admin = Db::connect(&url, &DbOptions::default()).await.unwrap();
    let terminated = admin
        .query_i64(&format!(
            "SELECT count(*) FROM (SELECT pg_terminate_backend({pid})) AS t"
        ))
        .await
        .unwrap();
    assert_eq!(terminated, 1);
    admin.close().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let now = db
        .query_i64("SELECT pg_backend_pid()::bigint")
        .await
        .unwrap();
    assert_ne!(now, pid, "a new connection replaced the dead one");
    db.close().await.unwrap();
}

/// The fewest round trips `work` took over three tries, after four to warm up (sqlx prepares a
/// statement on each pooled connection the first time it runs there). Background tasks of
/// the app only ever add to a count, so the fewest is the request's own.
async fn fewest<F, Fut>(counter: &AtomicUsize, work: F) -> usize
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..4 {
        work().await;
    }
    let mut fewest = usize::MAX;
    for _ in 0..3 {
        fewest = fewest.min(counted(counter, work()).await);
    }
    fewest
}

/// What the hot requests cost in round trips to PostgreSQL, counted on the wire. A change
/// that adds one fails here; one that removes one updates the figure (and docs/benchmarks.md).
#[tokio::test]
async fn round_trips_of_a_sign_in_a_cached_read_and_an_audited_write() {
    if !TestDatabase::create().await.is_postgres() {
        return;
    }
    let env = std::env::var("INVENTIV_TEST_DATABASE_URL").unwrap();
    let (port, round_trips, _) = counting_forwarder(env[authority(&env)].to_owned()).await;
    let app = spawn_app_with(
        move |settings| {
            let proxied = through(settings.database.url.expose(), port);
            settings.database.url = Secret::new(proxied);
            // One connection: every statement is prepared on it during the warm-up, whatever
            // order background tasks take it in (a statement new to a connection costs a
            // round trip more, once).
            settings.database.max_connections = 1;
        },
        Arc::new(SystemClock),
    )
    .await;

    // The rate limits (one call for both), the account, the workspace to resume, the new
    // session: four statements, each followed by sqlx's release ping.
    let sign_in = fewest(&round_trips, || async {
        app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    })
    .await;
    assert_eq!(sign_in, 8, "round trips of a sign-in");

    let org = organizations::find_by_slug(&app.db, &Slug::parse("inventiv-it").unwrap())
        .await
        .unwrap()
        .unwrap();
    let session = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let token = app.switch(&session.token, Some(org.id)).await;
    let read = fewest(&round_trips, || async {
        app.me(&token).await;
    })
    .await;
    assert_eq!(read, 0, "a cached read reads nothing");

    let res = app
        .post_as(&token, "/api_keys", serde_json::json!({"name": "counted"}))
        .await;
    let id = json_with_status(res, 201).await["key"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let renames = AtomicUsize::new(0);
    // BEGIN, the key under its row lock, the update, the chain head, the event with the
    // head's move, the key's spend, the notification, COMMIT: eight statements on one
    // checkout, and its release ping.
    let write = fewest(&round_trips, || async {
        let name = format!("renamed-{}", renames.fetch_add(1, Ordering::SeqCst));
        let res = app
            .put_as(
                &token,
                &format!("/api_keys/{id}"),
                serde_json::json!({"name": name}),
            )
            .await;
        json_with_status(res, 200).await;
    })
    .await;
    assert_eq!(write, 9, "round trips of an audited rename");
}

/// A commit whose acknowledgement is lost: PostgreSQL committed and notified the other
/// replicas, but the client only saw its connection drop. This process must still count what
/// the transaction marked as changed (it skips its own notification's echo): else it would
/// serve the old rows (a revoked session) until something else changed them.
#[tokio::test]
async fn a_commit_whose_answer_is_lost_still_invalidates_what_it_changed() {
    let database = TestDatabase::create().await;
    if !database.is_postgres() {
        return;
    }
    let url = database.url();
    let (port, _, cut_next_commit) = counting_forwarder(url[authority(&url)].to_owned()).await;
    let db = one_connection(&through(&url, port)).await;
    db.migrate().await.unwrap();
    let follower = tokio::spawn({
        let db = db.clone();
        async move { db.follow_other_writers().await }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !db.caches_usable() {
        assert!(std::time::Instant::now() < deadline, "caches never usable");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let org = inventiv_domain::OrgId::new();
    let stamp = db.stamp().unwrap();
    let tx = db.begin_write().await.unwrap();
    // A statement the persistence layer knows nothing about marks everything.
    tx.execute_unprepared("CREATE TABLE committed_unanswered (id bigint)")
        .await
        .unwrap();
    cut_next_commit.store(true, Ordering::SeqCst);
    assert!(tx.commit().await.is_err(), "the commit's answer was cut");
    let direct = Db::connect(&url, &DbOptions::default()).await.unwrap();
    assert_eq!(
        direct
            .query_i64("SELECT count(*) FROM committed_unanswered")
            .await
            .unwrap(),
        0,
        "the server committed"
    );
    assert!(
        !db.unchanged_since(stamp, &[inventiv_persistence::Tag::Org(org)]),
        "what the commit marked counts as changed here"
    );
    follower.abort();
    direct.close().await.unwrap();
}
