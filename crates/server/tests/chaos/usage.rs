//! SIGKILL of a server under proxy load (issue 15; SPEC §5.3 v2): every call that got a 200
//! has its usage row once the process has restarted — the rows still queued when it died are
//! in its journal, which the restarted process replays.

use crate::helpers::upstream::Upstream;
use crate::helpers::{TestDatabase, json_with_status};
use crate::process::{ServerProcess, admin_in_bootstrap_org};
use inventiv_domain::UsageId;
use inventiv_persistence::repo::usage;
use inventiv_persistence::{Db, DbOptions};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Clients calling the proxy at once.
const CLIENTS: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_under_proxy_load_loses_no_usage_row() {
    let upstream = Upstream::start().await;
    let database = TestDatabase::create().await;
    let (url, dir) = (database.url(), database.data_dir());
    // A long linger keeps many rows queued in memory when the kill comes.
    let env = [
        (
            "INVENTIV__PROVIDERS__MOCK__ENDPOINT_URL",
            upstream.url.as_str(),
        ),
        ("INVENTIV__PROXY__METER_LINGER_MS", "1000"),
    ];
    let mut server = ServerProcess::start(&url, &dir, &env).await;
    let client = reqwest::Client::new();
    // The platform admin's first session is in Personal: there it adds a public model.
    let login = client
        .post(server.url("/auth/login"))
        .json(&json!({"email": crate::helpers::ADMIN_EMAIL, "password": crate::helpers::ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    let personal = json_with_status(login, 200).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let model = json!({"name": "Chaos", "model_id": "chaos/llm", "required_vram_gb": 16, "context_length": 4096});
    let model = client
        .post(server.url("/models"))
        .bearer_auth(&personal)
        .json(&model)
        .send()
        .await
        .unwrap();
    let model = json_with_status(model, 201).await;
    let (token, _org) = admin_in_bootstrap_org(&server).await;
    let post = |path: &str, body: serde_json::Value| {
        client
            .post(server.url(path))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let instance = post("/deployments", json!({"model_id": model["id"]}))
        .await
        .unwrap();
    let instance = json_with_status(instance, 201).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for flag in ["tech", "eco"] {
        let path = format!("/instances/{instance}/activation");
        json_with_status(
            post(&path, json!({"flag": flag, "active": true}))
                .await
                .unwrap(),
            200,
        )
        .await;
    }
    let key = json_with_status(
        post("/api_keys", json!({"name": "load"})).await.unwrap(),
        201,
    )
    .await;
    // An org key authenticates once both approvals are on (SPEC §4.3 v2).
    for flag in ["tech", "eco"] {
        let path = format!(
            "/api_keys/{}/activation",
            key["key"]["id"].as_str().unwrap()
        );
        json_with_status(
            post(&path, json!({"flag": flag, "active": true}))
                .await
                .unwrap(),
            200,
        )
        .await;
    }
    let key = key["secret"].as_str().unwrap().to_owned();
    // The instance gets ready after the mock provider's delays.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let res = client
            .post(server.url("/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&json!({"model": "chaos/llm", "messages": []}))
            .send()
            .await
            .unwrap();
        if res.status() == 200 {
            break;
        }
        let (status, text) = (res.status(), res.text().await.unwrap_or_default());
        assert!(
            Instant::now() < deadline,
            "the instance never served: {status} {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (client, stop, key) = (client.clone(), stop.clone(), key.clone());
            let endpoint = server.url("/v1/chat/completions");
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let res = client
                        .post(&endpoint)
                        .bearer_auth(&key)
                        .json(&json!({"model": "chaos/llm", "messages": [{"role": "user", "content": "Hi"}]}))
                        .send()
                        .await;
                    match res {
                        Ok(res) if res.status() == 200 => {
                            let id = res.headers()["x-inventiv-usage-id"].to_str().unwrap().to_owned();
                            acknowledged.push(UsageId::from_uuid(id.parse().unwrap()));
                        }
                        Ok(res) => panic!("the server answered {}", res.status()),
                        // Connections cut by the kill.
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
                acknowledged
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    server.kill9();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    for worker in workers {
        acknowledged.extend(worker.await.unwrap());
    }
    assert!(
        acknowledged.len() > 100,
        "too little load: {}",
        acknowledged.len()
    );

    let db = Db::connect(&url, &DbOptions::default()).await.unwrap();
    let before_restart = usage::reconciliation::count_stored(&db, &acknowledged)
        .await
        .unwrap();
    let restarted = server.restart().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let stored = loop {
        let stored = usage::reconciliation::count_stored(&db, &acknowledged)
            .await
            .unwrap();
        if stored == acknowledged.len() as i64 || Instant::now() > deadline {
            break stored;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "proxy calls acknowledged with 200: {}; usage rows stored at the kill: {before_restart}; after the restart: {stored}; lost: {}",
        acknowledged.len(),
        acknowledged.len() as i64 - stored
    );
    assert!(
        before_restart < acknowledged.len() as i64,
        "the kill left no row queued: the test proves nothing (raise the linger)"
    );
    assert_eq!(
        stored,
        acknowledged.len() as i64,
        "usage rows lost; see {}",
        restarted.log.display()
    );
    // The replayed journal is gone (the restarted process holds only its own).
    let (orphans, _) =
        inventiv_service::proxy::journal::orphans(&dir.join("usage-journal")).unwrap();
    assert!(
        orphans.is_empty(),
        "{} journaled rows left behind",
        orphans.len()
    );
    drop(restarted);
}
