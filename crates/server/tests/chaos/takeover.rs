//! A replica killed with SIGKILL in the middle of bring-ups (issue 16 item 10): a surviving
//! replica takes its instances over once their leases lapse and finishes them — with no
//! restart of anything.

use crate::helpers::{TestDatabase, json_with_status};
use crate::process::{ServerProcess, admin_in_bootstrap_org, all_pages};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Both replicas renew their leases every third of a second and let them lapse after 1 s.
const LEASE: (&str, &str) = ("INVENTIV__PROVIDERS__LEASE_SECONDS", "1");

async fn statuses(server: &ServerProcess, token: &str) -> BTreeMap<String, String> {
    all_pages(server, token, "/instances")
        .await
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_owned(),
                i["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_survivor_finishes_the_bring_ups_of_a_killed_replica_without_a_restart() {
    let database = TestDatabase::create().await;
    let (url, dir) = (database.url(), database.data_dir());
    // The survivor's mock provider is quick (test.toml: 20 ms); the victim's takes 6 s per
    // step, so its instances are mid-bring-up when it dies.
    let survivor = ServerProcess::start(&url, &dir, &[LEASE]).await;
    let mut victim = ServerProcess::start(
        &url,
        &dir,
        &[
            LEASE,
            ("INVENTIV__PROVIDERS__MOCK__BOOT_DELAY_MS", "6000"),
            ("INVENTIV__PROVIDERS__MOCK__READY_DELAY_MS", "6000"),
        ],
    )
    .await;
    let (token, _org) = admin_in_bootstrap_org(&survivor).await;
    let client = reqwest::Client::new();
    let res = client
        .post(victim.url("/models"))
        .bearer_auth(&token)
        .json(&json!({"name": "Takeover model", "model_id": "chaos/takeover", "required_vram_gb": 16, "context_length": 4096}))
        .send()
        .await
        .unwrap();
    let model = json_with_status(res, 201).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut deployed = Vec::new();
    for _ in 0..4 {
        let res = client
            .post(victim.url("/deployments"))
            .bearer_auth(&token)
            .json(&json!({"model_id": model}))
            .send()
            .await
            .unwrap();
        let instance: Value = json_with_status(res, 201).await;
        deployed.push(instance["id"].as_str().unwrap().to_owned());
    }

    // While the victim lives, its renewed leases keep the survivor off: after 3 lease
    // lengths the instances are still provisioning (the survivor would have had them ready
    // in 40 ms).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = statuses(&survivor, &token).await;
    for id in &deployed {
        assert_eq!(before[id], "provisioning", "{id}: {before:?}");
    }

    victim.kill9();
    let killed = Instant::now();
    let deadline = killed + Duration::from_secs(15);
    loop {
        let now = statuses(&survivor, &token).await;
        if deployed.iter().all(|id| now[id] == "ready") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the survivor did not finish the victim's bring-ups: {now:?}; see {}",
            survivor.log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "{} instances of the killed replica ready {:?} after the kill, no restart",
        deployed.len(),
        killed.elapsed()
    );

    // Each step happened once: provisioning → booting → ready, two audit events per instance.
    let events = all_pages(
        &survivor,
        &token,
        "/organizations/current/audit?action=instance.status_changed",
    )
    .await;
    for id in &deployed {
        let mut steps: Vec<(i64, String)> = events
            .iter()
            .filter(|e| e["target_id"] == id.as_str())
            .map(|e| {
                (
                    e["id"].as_i64().unwrap(),
                    e["after"]["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        steps.sort();
        let steps: Vec<String> = steps.into_iter().map(|(_, s)| s).collect();
        assert_eq!(steps, ["booting", "ready"], "{id}");
    }
}
