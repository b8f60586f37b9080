//! SIGKILL of a replica during a write load (issue 9).

use crate::helpers::{TestDatabase, json_with_status};
use crate::load::{Load, Op, Outcome, Workload, summary};
use crate::process::{ServerProcess, admin_in_bootstrap_org, all_pages};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Ids of the changes of kind `op` that were acknowledged (2xx).
fn acknowledged(outcomes: &[Outcome], op: Op) -> BTreeSet<String> {
    outcomes
        .iter()
        .filter(|o| o.op == op)
        .filter_map(Outcome::id)
        .collect()
}

/// The `target_id`s of the audit events named `action`.
async fn audited(server: &ServerProcess, token: &str, action: &str) -> Vec<String> {
    all_pages(
        server,
        token,
        &format!("/organizations/current/audit?action={action}"),
    )
    .await
    .iter()
    .map(|e| e["target_id"].as_str().unwrap().to_owned())
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_during_a_write_load_loses_no_acknowledged_change() {
    let database = TestDatabase::create().await;
    let (url, dir) = (database.url(), database.data_dir());
    // Short instance leases (1 s): the victim's bring-ups are taken over soon after its death.
    let lease = [("INVENTIV__PROVIDERS__LEASE_SECONDS", "1")];
    let survivor = ServerProcess::start(&url, &dir, &lease).await;
    let mut victim = ServerProcess::start(&url, &dir, &lease).await;
    let (token, _org) = admin_in_bootstrap_org(&survivor).await;
    let client = reqwest::Client::new();

    let mut members = Vec::new();
    for i in 0..8 {
        let res = client
            .post(survivor.url("/users"))
            .bearer_auth(&token)
            .json(&json!({"email": format!("member-{i}@chaos.test"), "role": "user"}))
            .send()
            .await
            .unwrap();
        members.push(
            json_with_status(res, 201).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let res = client
        .post(survivor.url("/models"))
        .bearer_auth(&token)
        .json(&json!({"name": "Chaos model", "model_id": "chaos/llm", "required_vram_gb": 16, "context_length": 4096}))
        .send()
        .await
        .unwrap();
    let model = json_with_status(res, 201).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let work = Workload {
        token: token.clone(),
        members,
        model,
        ops: vec![Op::Invite, Op::ChangeRole, Op::Deploy],
    };
    let load = Load::start(&[survivor.base.clone(), victim.base.clone()], 6, &work);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let killed_at = Instant::now();
    victim.kill9();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let outcomes = load.stop().await;
    println!("{}", summary(&outcomes));

    // The survivor answered everything, before and after the kill.
    for o in outcomes.iter().filter(|o| o.target == 0) {
        assert!(o.ok(), "the survivor failed: {o:?}");
    }
    let after_kill = outcomes
        .iter()
        .filter(|o| o.target == 0 && o.sent > killed_at)
        .count();
    assert!(after_kill > 0, "the survivor served nothing after the kill");
    // The victim answered 2xx until it died; then connections were cut — never an error.
    let victim_ok = outcomes.iter().filter(|o| o.target == 1 && o.ok()).count();
    assert!(victim_ok > 0, "the victim served nothing before the kill");
    for o in outcomes.iter().filter(|o| o.target == 1) {
        assert!(o.ok() || o.result.is_err(), "the victim answered {o:?}");
    }

    // Every acknowledged change is there, with its audit event, and nothing is half-written:
    // each row has exactly one creation event and each creation event its row.
    let invitations: BTreeSet<String> =
        all_pages(&survivor, &token, "/organizations/current/invitations")
            .await
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect();
    let instances: BTreeSet<String> = all_pages(&survivor, &token, "/instances")
        .await
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    for (kind, rows, action, op) in [
        ("invitation", &invitations, "invitation.created", Op::Invite),
        ("instance", &instances, "instance.created", Op::Deploy),
    ] {
        let acked = acknowledged(&outcomes, op);
        assert!(acked.is_subset(rows), "an acknowledged {kind} is missing");
        let events = audited(&survivor, &token, action).await;
        let unique: BTreeSet<String> = events.iter().cloned().collect();
        assert_eq!(unique.len(), events.len(), "one {action} event per {kind}");
        assert_eq!(
            &unique, rows,
            "{kind} rows and {action} events match one to one"
        );
        println!(
            "{kind}s: {} acknowledged, {} stored",
            acked.len(),
            rows.len()
        );
    }
    // Role changes: per member, the `member.role_changed` events chain (each one's `before`
    // is the previous one's `after`, from `user`) and the last one names the current role.
    // (A change to the role a member already has is a no-op, acknowledged without an event.)
    let mut events = all_pages(
        &survivor,
        &token,
        "/organizations/current/audit?action=member.role_changed",
    )
    .await;
    events.sort_by_key(|e| e["id"].as_i64().unwrap());
    let members = all_pages(&survivor, &token, "/organizations/current/members").await;
    for member in &work.members {
        let mut role = "user".to_owned();
        for e in events.iter().filter(|e| e["target_id"] == member.as_str()) {
            assert_eq!(e["before"]["role"], role.as_str(), "{e}");
            role = e["after"]["role"].as_str().unwrap().to_owned();
        }
        let current = members
            .iter()
            .find(|m| m["user_id"] == member.as_str())
            .unwrap();
        assert_eq!(current["role"], role.as_str(), "member {member}");
    }
    let changes = outcomes.iter().filter(|o| o.op == Op::ChangeRole && o.ok());
    println!(
        "role changes: {} acknowledged, {} audited",
        changes.count(),
        events.len()
    );

    // The audit chain verifies, read by the operator command on the same database.
    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_inventiv-server"))
        .arg("audit-verify")
        .env("INVENTIV_ENV", "test")
        .env("INVENTIV_CONFIG_DIR", crate::helpers::config_dir())
        .env("INVENTIV__DATABASE__URL", &url)
        .env("INVENTIV__SERVER__DATA_DIR", &dir)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "audit-verify: {}",
        String::from_utf8_lossy(&verify.stdout)
    );

    // The deployments the victim left mid-way all end ready: the survivor takes their lapsed
    // leases over (see takeover.rs); the restarted victim serves the same state.
    let restarted = victim.restart().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = all_pages(&restarted, &token, "/instances").await;
        let stuck: Vec<_> = listed
            .iter()
            .filter(|i| i["status"] != "ready")
            .map(|i| format!("{} {}", i["id"], i["status"]))
            .collect();
        if stuck.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "instances never got ready: {stuck:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
