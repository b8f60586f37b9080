//! The audit trail: append-only at the database level, hash-chained, verifiable.

use crate::helpers::{TestApp, org_events, spawn_app};
use inventiv_persistence::Backend;
use inventiv_service::RequestMeta;
use inventiv_service::audit::{self, AuditActor, AuditEntry};

async fn drop_append_only_triggers(app: &TestApp) {
    match app.db.backend() {
        Backend::Postgres => {
            app.db
                .execute_unprepared("DROP TRIGGER audit_events_no_change ON audit_events")
                .await
                .unwrap();
        }
        Backend::Sqlite => {
            app.db
                .execute_unprepared("DROP TRIGGER audit_events_no_update")
                .await
                .unwrap();
            app.db
                .execute_unprepared("DROP TRIGGER audit_events_no_delete")
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn update_and_delete_on_audit_events_are_refused_by_the_database() {
    let app = spawn_app().await;
    let update = app
        .db
        .execute_unprepared("UPDATE audit_events SET action = 'forged'")
        .await;
    assert!(update.is_err(), "UPDATE must fail");
    assert!(format!("{:?}", update.unwrap_err()).contains("append-only"));
    let delete = app.db.execute_unprepared("DELETE FROM audit_events").await;
    assert!(delete.is_err(), "DELETE must fail");
    let report = audit::verify(&app.db).await.unwrap();
    assert_eq!(report.broken, None);
    assert!(report.events >= 3, "bootstrap wrote events: {report:?}");
}

#[tokio::test]
async fn verify_names_the_first_row_altered_behind_the_triggers_back() {
    let app = spawn_app().await;
    drop_append_only_triggers(&app).await;
    // The bootstrap org's chain holds org.created (seq 1) then member.added (seq 2).
    app.db
        .execute_unprepared(
            "UPDATE audit_events SET after_state = NULL WHERE action = 'member.added'",
        )
        .await
        .unwrap();
    let report = audit::verify(&app.db).await.unwrap();
    let broken = report.broken.expect("tampering detected");
    assert_eq!(broken.chain_seq, 2);
    assert!(broken.reason.contains("hash"), "{broken:?}");
}

#[tokio::test]
async fn verify_detects_a_deleted_event_and_a_deleted_tail() {
    let app = spawn_app().await;
    drop_append_only_triggers(&app).await;
    app.db
        .execute_unprepared("DELETE FROM audit_events WHERE action = 'org.created'")
        .await
        .unwrap();
    let broken = audit::verify(&app.db)
        .await
        .unwrap()
        .broken
        .expect("gap detected");
    assert!(broken.reason.contains("missing"), "{broken:?}");

    let app = spawn_app().await;
    drop_append_only_triggers(&app).await;
    app.db
        .execute_unprepared("DELETE FROM audit_events WHERE action = 'member.added'")
        .await
        .unwrap();
    let broken = audit::verify(&app.db)
        .await
        .unwrap()
        .broken
        .expect("tail deletion detected");
    assert!(broken.reason.contains("head"), "{broken:?}");
}

/// An event inserted with a sequence number outside its chain (the append-only triggers let
/// inserts through) is in no link the walk follows, yet the audit lists show it: it breaks the
/// chain. It used to verify.
#[tokio::test]
async fn verify_detects_an_event_inserted_outside_the_sequence() {
    for seq in ["0", "99"] {
        let app = spawn_app().await;
        app.db
            .execute_unprepared(&format!(
                "INSERT INTO audit_events (chain_key, chain_seq, organization_id, actor_user_id, \
                   actor_session_id, action, target_type, target_id, before_state, after_state, \
                   request_id, ip, occurred_at, prev_hash, hash) \
                 SELECT chain_key, {seq}, organization_id, actor_user_id, actor_session_id, \
                   'member.removed', target_type, target_id, before_state, after_state, \
                   request_id, ip, occurred_at, prev_hash, hash \
                 FROM audit_events WHERE action = 'member.added'"
            ))
            .await
            .unwrap();
        let broken = audit::verify(&app.db)
            .await
            .unwrap()
            .broken
            .expect("a forged event detected");
        assert_eq!(broken.chain_seq.to_string(), seq, "{broken:?}");
        assert!(broken.reason.contains("outside"), "{broken:?}");
    }
}

/// Appends `n` events to `org`'s chain from `n` transactions at once, then checks the chain
/// verifies and holds them all, numbered 1.. after the `before` events it had.
async fn append_in_parallel(app: &TestApp, org: inventiv_domain::OrgId, n: usize, before: i64) {
    let mut tasks = Vec::new();
    for i in 0..n {
        let db = app.db.clone();
        tasks.push(tokio::spawn(async move {
            let tx = db.begin_write().await.unwrap();
            audit::record(
                &tx,
                inventiv_persistence::now_utc_micros(),
                AuditActor::default(),
                &RequestMeta::default(),
                AuditEntry {
                    action: "test.parallel",
                    organization: Some(org),
                    target_type: "test",
                    target_id: i.to_string(),
                    before: None,
                    after: Some(serde_json::json!({"i": i})),
                },
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let report = audit::verify(&app.db).await.unwrap();
    assert_eq!(report.broken, None, "{report:?}");
    let seqs: Vec<i64> = org_events(app, org, "test.parallel")
        .await
        .iter()
        .map(|e| e.chain_seq)
        .collect();
    assert_eq!(seqs, (before + 1..=before + n as i64).collect::<Vec<_>>());
}

#[tokio::test]
async fn concurrent_appends_to_one_chain_never_fork_it() {
    let app = spawn_app().await;
    let org = inventiv_persistence::repo::organizations::find_by_slug(
        &app.db,
        &inventiv_domain::Slug::parse("inventiv-it").unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    let before = inventiv_persistence::repo::audit::list(&app.db, org.id, Default::default(), 100)
        .await
        .unwrap()
        .len() as i64;
    assert!(before > 0, "the seeded org's chain exists already");
    append_in_parallel(&app, org.id, 25, before).await;
}

/// The first events of a chain race to create its head: one creates it, the others wait for
/// its lock, and none forks the chain or fails.
#[tokio::test]
async fn concurrent_first_appends_create_one_chain_head() {
    let app = spawn_app().await;
    let org = inventiv_domain::OrgId::new();
    let tx = app.db.begin_write().await.unwrap();
    inventiv_persistence::repo::organizations::insert(
        &tx,
        inventiv_persistence::repo::organizations::NewOrg {
            id: org,
            name: &inventiv_domain::OrgName::parse("No chain yet").unwrap(),
            slug: &inventiv_domain::Slug::parse("no-chain-yet").unwrap(),
            created_by: None,
            now: inventiv_persistence::now_utc_micros(),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    append_in_parallel(&app, org, 25, 0).await;
}

#[tokio::test]
async fn audit_verify_command_exits_1_and_names_the_broken_link() {
    let app = spawn_app().await;
    let ok = crate::bootstrap::run_binary(&app.database, &["audit-verify"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("audit trail OK"));

    drop_append_only_triggers(&app).await;
    app.db
        .execute_unprepared(
            "UPDATE audit_events SET action = 'org.forged' WHERE action = 'org.created'",
        )
        .await
        .unwrap();
    let out = crate::bootstrap::run_binary(&app.database, &["audit-verify"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("BROKEN") && stdout.contains("event #1"),
        "{stdout}"
    );
}
