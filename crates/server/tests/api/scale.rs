//! The scale seeder (`inventiv-server seed-scale`, used by `make bench`): set-based, incremental,
//! and its rows are ordinary tenant data (scoped like any other).

use crate::helpers::{json_with_status, spawn_app};
use inventiv_domain::{Role, Slug};
use inventiv_persistence::now_utc_micros;
use inventiv_persistence::repo::{organizations, scale};
use scale::Seeded;

#[tokio::test]
async fn seeding_is_incremental_and_the_rows_are_scoped_like_any_others() {
    let app = spawn_app().await;
    let now = now_utc_micros();
    let seeded = |organizations, instances| Seeded {
        organizations,
        instances,
    };
    assert_eq!(
        scale::seed(&app.db, 3, 5, now).await.unwrap(),
        seeded(3, 15)
    );
    assert_eq!(scale::seed(&app.db, 4, 5, now).await.unwrap(), seeded(1, 5));
    assert_eq!(scale::seed(&app.db, 4, 5, now).await.unwrap(), seeded(0, 0));
    assert_eq!(scale::count_instances(&app.db).await.unwrap(), 20);

    // The command line does the same.
    let out = crate::bootstrap::run_binary(&app.database, &["seed-scale", "6", "2"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Added 2 organizations and 4 instances"),
        "{stdout}"
    );
    let bad = crate::bootstrap::run_binary(&app.database, &["seed-scale", "many"]);
    assert!(!bad.status.success());

    // A member of scale-2 sees exactly the 5 instances of scale-2.
    let user = app
        .create_user("member@scale.test", "a-good-password")
        .await;
    let org = organizations::find_by_slug(&app.db, &Slug::parse(&scale::slug(2)).unwrap())
        .await
        .unwrap()
        .unwrap();
    app.add_member(org.id, user, Role::User).await;
    let token = app
        .login("member@scale.test", "a-good-password")
        .await
        .token;
    let token = app.switch(&token, Some(org.id)).await;
    let listed = json_with_status(app.get_as(&token, "/instances").await, 200).await;
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 5, "{listed}");
    for item in items {
        assert_eq!(item["organization_id"], org.id.to_string());
        assert_eq!(item["status"], "terminated");
    }
}
