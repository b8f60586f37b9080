//! Issue 18: the cached answers (`GET /instances`, `GET /auth/me`) are sent gzipped to a client
//! whose `Accept-Encoding` ranks gzip acceptable, as the same JSON, with `Vary:
//! Accept-Encoding` on both forms. The gzip is kept beside the cached JSON: these tests try to
//! get a stale, foreign or unwanted one out of it.

use crate::helpers::{TestApp, json_with_status, spawn_app};
use crate::instances::{Team, deploy, public_model, wait_for_status};
use reqwest::header::{ACCEPT_ENCODING, CONTENT_ENCODING, VARY};
use serde_json::{Value, json};
use std::io::Read;
use std::time::{Duration, Instant};

/// What today's browsers send.
const BROWSER: &str = "gzip, deflate, br, zstd";

/// `GET path` with `accept_encoding` (None: no header); returns (Content-Encoding, the JSON,
/// the body's length on the wire). Asserts a 200 with `Vary: accept-encoding`.
async fn read(
    app: &TestApp,
    token: &str,
    path: &str,
    accept_encoding: Option<&str>,
) -> (Option<String>, Value, usize) {
    let mut req = app.as_bearer(reqwest::Method::GET, path, token);
    if let Some(accepted) = accept_encoding {
        req = req.header(ACCEPT_ENCODING, accepted);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 200);
    let header = |name| {
        res.headers()
            .get(name)
            .map(|v: &reqwest::header::HeaderValue| v.to_str().unwrap().to_owned())
    };
    assert_eq!(header(VARY).as_deref(), Some("accept-encoding"), "{path}");
    let encoding = header(CONTENT_ENCODING);
    let wire = res.bytes().await.unwrap();
    let json = match encoding.as_deref() {
        Some("gzip") => {
            let mut text = String::new();
            flate2::read::GzDecoder::new(&wire[..])
                .read_to_string(&mut text)
                .expect("a valid gzip stream");
            serde_json::from_str(&text).unwrap()
        }
        None => serde_json::from_slice(&wire).unwrap(),
        Some(other) => panic!("unexpected Content-Encoding {other}"),
    };
    (encoding, json, wire.len())
}

/// The ids of a page of instances.
fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

/// An org whose first page of instances is several KiB, all of them ready (so no background
/// status change moves a page between two reads).
async fn org_with_instances(app: &TestApp, slug: &str, model: &str, count: usize) -> Team {
    let team = Team::new(app, slug).await;
    for _ in 0..count {
        let id = deploy(app, &team.owner, json!({"model_id": model})).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        wait_for_status(app, &team.owner, &id, "ready").await;
    }
    team
}

#[tokio::test]
async fn a_browser_gets_the_same_page_gzipped_and_a_plain_client_gets_json() {
    let app = spawn_app().await;
    let model = public_model(&app, "org/gz").await;
    let team = org_with_instances(&app, "gz", &model, 6).await;

    let (plain_encoding, plain, plain_len) = read(&app, &team.owner, "/instances", None).await;
    assert_eq!(plain_encoding, None);
    assert_eq!(ids(&plain).len(), 6);
    // Twice: the second answer comes from the gzip kept in the cache.
    for _ in 0..2 {
        let (encoding, gzipped, gzip_len) =
            read(&app, &team.owner, "/instances", Some(BROWSER)).await;
        assert_eq!(encoding.as_deref(), Some("gzip"));
        assert_eq!(gzipped, plain, "the gzip holds the same JSON");
        assert!(gzip_len * 3 < plain_len, "{gzip_len} vs {plain_len} bytes");
    }
    // And the plain form is still plain after the gzip was made.
    assert_eq!(read(&app, &team.owner, "/instances", None).await.0, None);

    // `/auth/me` (1.6 KB) likewise.
    let (encoding, me, _) = read(&app, &team.owner, "/auth/me", Some("gzip")).await;
    assert_eq!(encoding.as_deref(), Some("gzip"));
    assert_eq!(me, read(&app, &team.owner, "/auth/me", None).await.1);
}

#[tokio::test]
async fn gzip_is_sent_only_where_the_client_ranks_it_acceptable() {
    let app = spawn_app().await;
    let model = public_model(&app, "org/gz").await;
    let team = org_with_instances(&app, "gz", &model, 4).await;
    for (accepted, gzip) in [
        ("gzip", true),
        ("GZIP", true),
        ("br;q=1.0, gzip;q=0.8", true),
        ("identity;q=0.5, gzip", true),
        ("gzip;q=0", false),
        ("gzip;q=0, identity", false),
        ("br, zstd", false),
        ("identity", false),
        ("", false),
        ("*", false),
        ("gzip;q=nonsense", false),
        (",,;;===", false),
    ] {
        let (encoding, page, _) = read(&app, &team.owner, "/instances", Some(accepted)).await;
        assert_eq!(encoding.as_deref() == Some("gzip"), gzip, "{accepted:?}");
        assert_eq!(ids(&page).len(), 4, "{accepted:?}");
    }
    // A body under 1 KiB is sent as it is, whatever the client accepts.
    let empty = Team::new(&app, "empty").await;
    let (encoding, page, _) = read(&app, &empty.owner, "/instances", Some(BROWSER)).await;
    assert_eq!(encoding, None);
    assert_eq!(ids(&page).len(), 0);
}

#[tokio::test]
async fn a_write_flushes_the_gzip_with_the_page_and_each_org_gets_its_own() {
    let app = spawn_app().await;
    let model = public_model(&app, "org/gz").await;
    let a = org_with_instances(&app, "gz-a", &model, 3).await;
    let b = org_with_instances(&app, "gz-b", &model, 3).await;

    // Each org's gzip holds its own instances, never the other's (the pages share one cache).
    let (_, page_a, _) = read(&app, &a.owner, "/instances", Some(BROWSER)).await;
    let (_, page_b, _) = read(&app, &b.owner, "/instances", Some(BROWSER)).await;
    let (in_a, in_b) = (ids(&page_a), ids(&page_b));
    assert_eq!((in_a.len(), in_b.len()), (3, 3));
    assert!(in_a.iter().all(|id| !in_b.contains(id)));

    // A deployment in A shows in A's very next gzipped page, and B's is unchanged.
    let new = deploy(&app, &a.owner, json!({"model_id": model})).await;
    let (encoding, page, _) = read(&app, &a.owner, "/instances", Some(BROWSER)).await;
    assert_eq!(encoding.as_deref(), Some("gzip"));
    assert!(ids(&page).contains(&new["id"].as_str().unwrap().to_owned()));
    let new = new["id"].as_str().unwrap();
    wait_for_status(&app, &a.owner, new, "ready").await;
    assert_eq!(
        ids(&read(&app, &b.owner, "/instances", Some(BROWSER)).await.1),
        in_b
    );

    // `/auth/me`: a profile change shows in the next gzipped answer.
    let (_, me, _) = read(&app, &a.owner, "/auth/me", Some(BROWSER)).await;
    assert_ne!(me["first_name"], "Renamed");
    let res = app
        .put_as(&a.owner, "/auth/me", json!({"first_name": "Renamed"}))
        .await;
    json_with_status(res, 200).await;
    let (encoding, me, _) = read(&app, &a.owner, "/auth/me", Some(BROWSER)).await;
    assert_eq!(encoding.as_deref(), Some("gzip"));
    assert_eq!(me["first_name"], "Renamed");
}

/// On PostgreSQL, a write through one replica flushes the gzip the other keeps (SQLite runs
/// one process: the other replica has no caches there, and the check is of the uncached path).
#[tokio::test]
async fn a_write_through_another_replica_flushes_the_gzip_here_within_the_bound() {
    let a = spawn_app().await;
    let caches = a.database.is_postgres();
    let b = a.spawn_replica(|s| s.cache.enabled = caches).await;
    let model = public_model(&a, "org/gz").await;
    let team = org_with_instances(&a, "gz", &model, 3).await;
    // B keeps the gzip of the page (read twice: the second is a hit when caches are on).
    let hits = b.deps.caches.instance_pages.hits();
    for _ in 0..2 {
        assert_eq!(
            ids(&read(&b, &team.owner, "/instances", Some(BROWSER)).await.1).len(),
            3
        );
    }
    assert_eq!(b.deps.caches.instance_pages.hits() > hits, caches);

    let new = deploy(&a, &team.owner, json!({"model_id": model})).await;
    let new = new["id"].as_str().unwrap().to_owned();
    let started = Instant::now();
    loop {
        let (encoding, page, _) = read(&b, &team.owner, "/instances", Some(BROWSER)).await;
        assert_eq!(encoding.as_deref(), Some("gzip"));
        if ids(&page).contains(&new) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "replica B still sends the stale gzip after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
