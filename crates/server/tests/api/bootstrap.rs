//! The idempotent bootstrap: a platform admin owning "Inventiv IT", created once.

use crate::helpers::{ADMIN_EMAIL, TestDatabase, config_dir, spawn_app};
use inventiv_domain::{Email, OrgName, Password, Role, Slug};
use inventiv_persistence::repo::{memberships, organizations, users};
use inventiv_service::bootstrap::{self, BootstrapSettings};
use std::process::Output;

/// Runs the real binary against `database` in the test environment.
pub fn run_binary(database: &TestDatabase, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_inventiv-server"))
        .args(args)
        .env("INVENTIV_ENV", "test")
        .env("INVENTIV_CONFIG_DIR", config_dir())
        .env("INVENTIV__DATABASE__URL", database.url())
        .env("INVENTIV__SERVER__DATA_DIR", database.data_dir())
        .env_remove("INVENTIV__BOOTSTRAP__ADMIN_PASSWORD")
        .output()
        .expect("run inventiv-server")
}

fn settings() -> BootstrapSettings {
    BootstrapSettings {
        admin_email: Email::parse(ADMIN_EMAIL).unwrap(),
        admin_password: Some(Password::parse("another-password").unwrap()),
        org_name: OrgName::parse("Inventiv IT").unwrap(),
        org_slug: Slug::parse("inventiv-it").unwrap(),
    }
}

#[tokio::test]
async fn start_up_creates_the_platform_admin_owning_the_bootstrap_org() {
    let app = spawn_app().await;
    let admin = users::find_by_email(&app.db, &Email::parse(ADMIN_EMAIL).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(admin.is_platform_admin);
    assert!(
        admin.password_hash.starts_with("$argon2id$"),
        "only a hash is stored"
    );
    let org = organizations::find_by_slug(&app.db, &Slug::parse("inventiv-it").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(org.name.as_str(), "Inventiv IT");
    let membership = memberships::find(&app.db, org.id, admin.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(membership.role, Role::Owner);
}

#[tokio::test]
async fn bootstrap_is_idempotent_even_when_run_concurrently() {
    let app = spawn_app().await;
    let (_, deps) = inventiv_server::build_deps(
        &app.settings,
        std::sync::Arc::new(inventiv_service::SystemClock),
    )
    .await
    .unwrap();
    let runs = futures_join(&deps).await;
    for outcome in runs {
        assert!(
            !outcome.admin_created && !outcome.org_created && outcome.generated_password.is_none()
        );
    }
    assert_eq!(users::count(&app.db).await.unwrap(), 1);
    assert_eq!(organizations::count(&app.db).await.unwrap(), 1);
}

async fn futures_join(deps: &inventiv_service::Deps) -> Vec<bootstrap::BootstrapOutcome> {
    let mut handles = Vec::new();
    for _ in 0..5 {
        let deps = deps.clone();
        handles.push(tokio::spawn(async move {
            bootstrap::run(&deps, &settings()).await.unwrap()
        }));
    }
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn racing_first_bootstraps_create_everything_exactly_once() {
    let database = TestDatabase::create().await;
    let smtp = crate::helpers::SmtpSink::start().await;
    let settings_ = crate::helpers::test_settings(&database, smtp.port());
    let (db, deps) = inventiv_server::build_deps(
        &settings_,
        std::sync::Arc::new(inventiv_service::SystemClock),
    )
    .await
    .unwrap();
    db.migrate().await.unwrap();
    let runs = futures_join(&deps).await;
    assert_eq!(
        runs.iter().filter(|o| o.admin_created).count(),
        1,
        "{runs:?}"
    );
    assert_eq!(runs.iter().filter(|o| o.org_created).count(), 1, "{runs:?}");
    assert_eq!(users::count(&db).await.unwrap(), 1);
    assert_eq!(organizations::count(&db).await.unwrap(), 1);
    assert_eq!(
        inventiv_service::audit::verify(&db).await.unwrap().broken,
        None
    );
}

#[tokio::test]
async fn generated_admin_password_is_printed_once_and_never_again() {
    let database = TestDatabase::create().await;
    let first = run_binary(&database, &["bootstrap"]);
    let stdout = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(
        first.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        stdout.contains("password:") && stdout.contains(ADMIN_EMAIL),
        "{stdout}"
    );
    let password = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("password:"))
        .unwrap()
        .trim()
        .to_owned();
    assert!(password.len() >= 16);

    let second = run_binary(&database, &["bootstrap"]);
    let stdout2 = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success());
    assert!(
        !stdout2.contains(&password) && !stdout2.contains("password:"),
        "{stdout2}"
    );
    assert!(stdout2.contains("nothing to do"), "{stdout2}");
}

#[tokio::test]
async fn seed_demo_fills_two_orgs_once_and_prints_the_logins() {
    let database = TestDatabase::create().await;
    let first = run_binary(&database, &["seed-demo"]);
    let stdout = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(
        first.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    for login in [
        "alice@acme.demo",
        "maya@acme.demo",
        "uma@globex.demo",
        "pat@demo.inventiv.local",
        "inventiv-demo",
    ] {
        assert!(stdout.contains(login), "{login} missing from:\n{stdout}");
    }
    let second = run_binary(&database, &["seed-demo"]);
    assert!(String::from_utf8_lossy(&second.stdout).contains("already present"));

    let smtp = crate::helpers::SmtpSink::start().await;
    let settings = crate::helpers::test_settings(&database, smtp.port());
    let (db, _deps) = inventiv_server::build_deps(
        &settings,
        std::sync::Arc::new(inventiv_service::SystemClock),
    )
    .await
    .unwrap();
    assert_eq!(organizations::count(&db).await.unwrap(), 2);
    assert_eq!(users::count(&db).await.unwrap(), 9);
    let acme = organizations::find_by_slug(&db, &Slug::parse("acme").unwrap())
        .await
        .unwrap()
        .unwrap();
    let instances = inventiv_persistence::repo::instances::list(
        &db,
        inventiv_domain::Scope::Org(acme.id),
        Default::default(),
        None,
        50,
    )
    .await
    .unwrap();
    assert_eq!(instances.len(), 2);
    assert_eq!(
        instances
            .iter()
            .filter(|i| i.activation.operational(false))
            .count(),
        1,
        "one operational, one waiting"
    );
    assert_eq!(
        inventiv_service::audit::verify(&db).await.unwrap().broken,
        None
    );
}

/// The operator commands leave the usage journal directory to the servers: they neither add a
/// journal of their own (it would be left behind when they exit) nor replay the journal a dead
/// server left (the next server to start does, with its usage writer running).
#[tokio::test]
async fn operator_commands_leave_the_usage_journal_to_the_servers() {
    let app = spawn_app().await;
    let dir = app.database.data_dir().join("usage-journal");
    std::fs::create_dir_all(&dir).unwrap();
    // A dead server's journal, with a row it never stored.
    let orphan = dir.join("usage-0123456789abcdef-0.jsonl");
    std::fs::write(&orphan, "{\"not\":\"stored\"}\n").unwrap();
    let listing = || {
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let before = listing();
    let commands: [&[&str]; 5] = [
        &["migrate"],
        &["bootstrap"],
        &["audit-verify"],
        &["seed-demo"],
        &["seed-scale", "1", "1"],
    ];
    for args in commands {
        let out = run_binary(&app.database, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(listing(), before, "{args:?} changed the journal directory");
        assert_eq!(
            std::fs::read_to_string(&orphan).unwrap(),
            "{\"not\":\"stored\"}\n",
            "{args:?}"
        );
    }
}
