//! One owner per model address (issue 15; SPEC §5.1, §4.6 `organizations.reserved_slugs`): an
//! org slug and a public catalogue namespace never share a name, so no tenant can capture
//! calls meant for the catalogue (or for another tenant).

use crate::helpers::upstream::Upstream;
use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, assert_error, json_with_status, spawn_app, spawn_app_with,
};
use crate::instances::{PW, Team, deploy, public_model, wait_for_status};
use crate::proxy::chat;
use futures_util::future::join_all;
use inventiv_persistence::Store;
use inventiv_persistence::repo::namespaces::{self, NamespaceOwner};
use inventiv_service::{ManualClock, SystemClock};
use migration::{Migrator, MigratorTrait};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use time::OffsetDateTime;

/// The body of a 2xx response (asserting it).
async fn ok(res: reqwest::Response) -> Value {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    assert!((200..300).contains(&status), "{status}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// An app whose mock instances answer at a real upstream.
async fn app_with_upstream() -> (TestApp, Upstream) {
    let upstream = Upstream::start().await;
    let url = upstream.url.clone();
    let app = spawn_app_with(
        move |s| {
            s.providers.mock.endpoint_url = url;
            s.proxy.upstream_timeout_secs = 2;
        },
        Arc::new(SystemClock),
    )
    .await;
    (app, upstream)
}

/// A ready, operational instance of `model` (a model row id) in `team`'s org.
async fn serve(app: &TestApp, team: &Team, model: &str) {
    let instance = deploy(app, &team.admin, json!({"model_id": model})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for_status(app, &team.admin, &instance, "ready").await;
    for (token, flag) in [(&team.admin, "tech"), (&team.manager, "eco")] {
        ok(app
            .post_as(
                token,
                &format!("/instances/{instance}/activation"),
                json!({"flag": flag, "active": true}),
            )
            .await)
        .await;
    }
}

async fn api_key(app: &TestApp, team: &Team) -> String {
    team.org_key_secret(app, "calls").await
}

async fn admin(app: &TestApp) -> String {
    app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.token
}

/// A signed-in account of its own (Personal workspace).
async fn someone(app: &TestApp, email: &str) -> String {
    app.create_user(email, PW).await;
    app.login(email, PW).await.token
}

fn model_body(model_id: &str) -> Value {
    json!({"name": format!("Model {model_id}"), "model_id": model_id, "required_vram_gb": 16, "context_length": 8192})
}

/// `squatter`'s org publishes an offering `code` on a private model of its own (served by a
/// ready instance) and shares it, fully approved, with the org `victim_slug`.
async fn squat_offering(app: &TestApp, squatter: &Team, code: &str, victim_slug: &str) {
    let body = json!({"name": "Evil", "model_id": "evil/model", "required_vram_gb": 1, "context_length": 8192});
    let model = ok(app.post_as(&squatter.admin, "/models", body).await).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    serve(app, squatter, &model).await;
    let offering = ok(app
        .post_as(
            &squatter.admin,
            "/organizations/current/offerings",
            json!({"model_id": model, "code": code, "name": "Totally Gemma"}),
        )
        .await)
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/organizations/current/offerings/{offering}");
    ok(app
        .as_bearer(Method::PATCH, &path, &squatter.admin)
        .json(&json!({"is_active": true}))
        .send()
        .await
        .unwrap())
    .await;
    for (token, flag) in [(&squatter.admin, "tech"), (&squatter.manager, "eco")] {
        ok(app
            .post_as(
                token,
                &format!("{path}/activation"),
                json!({"flag": flag, "active": true}),
            )
            .await)
        .await;
    }
    let grant = json!({"offering_id": offering, "consumer_organization_slug": victim_slug, "price_input_micros_per_1k": 1_000_000, "price_output_micros_per_1k": 1_000_000});
    let share = ok(app
        .post_as(&squatter.admin, "/organizations/current/shares", grant)
        .await)
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (token, flag) in [(&squatter.admin, "tech"), (&squatter.manager, "eco")] {
        ok(app
            .post_as(
                token,
                &format!("/organizations/current/shares/{share}/activation"),
                json!({"flag": flag, "active": true}),
            )
            .await)
        .await;
    }
}

/// The capture of issue 15, replayed: the public `google/gemma-2b` exists; an attacker tries
/// to create the org `google` (by slug, and by a name deriving it) and is refused, and the
/// victim's calls still reach the public model.
#[tokio::test]
async fn a_public_namespace_cannot_be_taken_as_an_org_slug() {
    let (app, upstream) = app_with_upstream().await;
    let model = public_model(&app, "google/gemma-2b").await;
    let victim = Team::new(&app, "victim").await;
    serve(&app, &victim, &model).await;
    let key = api_key(&app, &victim).await;

    let attacker = someone(&app, "mallory@evil.test").await;
    for body in [
        json!({"name": "Google", "slug": "google"}),
        json!({"name": "Google"}),
        json!({"name": "GOOGLE", "set_as_current": false}),
    ] {
        assert_error(
            app.post_as(&attacker, "/organizations", body).await,
            409,
            "slug_taken",
        )
        .await;
    }
    // Nothing was left half-created by the refused attempts.
    let mine = json_with_status(app.get_as(&attacker, "/organizations").await, 200).await;
    assert_eq!(mine["items"], json!([]), "{mine}");

    let res = chat(&app, &key, "google/gemma-2b").await;
    json_with_status(res, 200).await;
    assert_eq!(upstream.last_request()["model"], "google/gemma-2b");
    // Another name in the namespace is still the catalogue's, never an offering's.
    assert_error(
        chat(&app, &key, "google/other").await,
        404,
        "model_not_found",
    )
    .await;
    app.assert_audit_verifies().await;
}

/// Data that predates the rule (an org whose slug equals a public namespace the catalogue
/// owns): calls are resolved by the namespace's owner, so a share from the squatter does not
/// divert the victim's traffic; and the other way round, a public model inside an org's
/// namespace is not reachable by name.
#[tokio::test]
async fn resolution_follows_the_namespace_owner_even_with_colliding_legacy_data() {
    let (app, upstream) = app_with_upstream().await;
    let model = public_model(&app, "google/gemma-2b").await;
    let victim = Team::new(&app, "victim").await;
    serve(&app, &victim, &model).await;
    let key = api_key(&app, &victim).await;

    // Legacy data: an org renamed into the catalogue's namespace behind the API's back.
    let squatter = Team::new(&app, "squat").await;
    app.db
        .execute_unprepared("UPDATE organizations SET slug = 'google' WHERE slug = 'squat'")
        .await
        .unwrap();
    squat_offering(&app, &squatter, "gemma-2b", "victim").await;

    json_with_status(chat(&app, &key, "google/gemma-2b").await, 200).await;
    assert_eq!(
        upstream.last_request()["model"],
        "google/gemma-2b",
        "the call went to the squatter's offering"
    );
    let listed = json_with_status(app.get_as(&key, "/v1/models").await, 200).await;
    let gemma: Vec<&Value> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["id"] == "google/gemma-2b")
        .collect();
    assert_eq!(gemma.len(), 1, "{listed}");
    assert_eq!(gemma[0]["owned_by"], "public", "{listed}");

    // The other direction: a public model moved into the org namespace `victim`.
    let stray = public_model(&app, "stray/model").await;
    serve(&app, &victim, &stray).await;
    json_with_status(chat(&app, &key, "stray/model").await, 200).await;
    app.db
        .execute_unprepared(
            "UPDATE models SET model_id = 'victim/model' WHERE model_id = 'stray/model'",
        )
        .await
        .unwrap();
    assert_error(
        chat(&app, &key, "victim/model").await,
        404,
        "model_not_found",
    )
    .await;
}

/// An org's slug is its namespace: the platform admin cannot create a public model in it, nor
/// rename one into it, whatever the case.
#[tokio::test]
async fn an_org_slug_cannot_be_taken_as_a_public_namespace() {
    let app = spawn_app().await;
    let acme = Team::new(&app, "acme").await;
    let admin = admin(&app).await;
    for model_id in ["acme/x", "ACME/x", "Acme/other/deeper"] {
        assert_error(
            app.post_as(&admin, "/models", model_body(model_id)).await,
            409,
            "namespace_taken",
        )
        .await;
    }
    // Several public models share a public namespace; ids without `/` need none.
    let moved = public_model(&app, "meta/x").await;
    public_model(&app, "meta/y").await;
    public_model(&app, "acme").await;
    assert_error(
        app.put_as(&admin, &format!("/models/{moved}"), model_body("ACME/x"))
            .await,
        409,
        "namespace_taken",
    )
    .await;
    let kept = json_with_status(app.get_as(&admin, &format!("/models/{moved}")).await, 200).await;
    assert_eq!(kept["model_id"], "meta/x");
    let renamed = json_with_status(
        app.put_as(&admin, &format!("/models/{moved}"), model_body("fresh/x"))
            .await,
        200,
    )
    .await;
    assert_eq!(renamed["model_id"], "fresh/x");
    // Org models are never called by name, so they claim no namespace.
    json_with_status(
        app.post_as(&acme.admin, "/models", model_body("meta/private"))
            .await,
        201,
    )
    .await;
    // And the namespaces the catalogue now holds cannot become org slugs.
    let user = someone(&app, "eve@example.test").await;
    for slug in ["meta", "fresh"] {
        assert_error(
            app.post_as(&user, "/organizations", json!({"name": "X", "slug": slug}))
                .await,
            409,
            "slug_taken",
        )
        .await;
    }
    app.assert_audit_verifies().await;
}

/// A deleted org's slug stays taken forever (an old `<slug>/<code>` must never land on a
/// newcomer), and reserved names are refused everywhere.
#[tokio::test]
async fn deleted_and_reserved_slugs_are_never_issued() {
    let app = spawn_app().await;
    let owner = someone(&app, "olivia@example.test").await;
    let created = json_with_status(
        app.post_as(
            &owner,
            "/organizations",
            json!({"name": "Gone Corp", "slug": "gone"}),
        )
        .await,
        201,
    )
    .await;
    let org_token = created["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.delete_as(&org_token, "/organizations/current")
            .await
            .status(),
        204
    );
    assert_eq!(
        namespaces::find(&app.db, "gone").await.unwrap(),
        Some(NamespaceOwner::Org(None))
    );
    let newcomer = someone(&app, "nick@example.test").await;
    for body in [
        json!({"name": "Gone", "slug": "gone"}),
        json!({"name": "Gone"}),
    ] {
        assert_error(
            app.post_as(&newcomer, "/organizations", body).await,
            409,
            "slug_taken",
        )
        .await;
    }
    let admin = admin(&app).await;
    assert_error(
        app.post_as(&admin, "/models", model_body("gone/x")).await,
        409,
        "namespace_taken",
    )
    .await;

    // The default reserved names (config/default.toml), any case.
    for body in [
        json!({"name": "Admin"}),
        json!({"name": "X", "slug": "openai"}),
        json!({"name": "Inventiv"}),
        json!({"name": "V1"}),
    ] {
        assert_error(
            app.post_as(&newcomer, "/organizations", body).await,
            409,
            "slug_taken",
        )
        .await;
    }
    for model_id in ["openai/gpt-4o", "Platform/x"] {
        assert_error(
            app.post_as(&admin, "/models", model_body(model_id)).await,
            409,
            "namespace_taken",
        )
        .await;
    }
    // Reserved names are no namespace claim: nothing was written for them.
    assert_eq!(namespaces::find(&app.db, "openai").await.unwrap(), None);
}

/// `organizations.reserved_slugs` is the operator's list: it replaces the default, trimmed and
/// compared in lowercase.
#[tokio::test]
async fn the_reserved_list_comes_from_the_settings() {
    let app = spawn_app_with(
        |s| s.organizations.reserved_slugs = vec![" Acme-Corp ".to_owned()],
        Arc::new(SystemClock),
    )
    .await;
    let user = someone(&app, "ursula@example.test").await;
    assert_error(
        app.post_as(&user, "/organizations", json!({"name": "Acme Corp"}))
            .await,
        409,
        "slug_taken",
    )
    .await;
    let admin_org = json_with_status(
        app.post_as(
            &user,
            "/organizations",
            json!({"name": "Admin", "set_as_current": false}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(admin_org["slug"], "admin");
    let admin = admin(&app).await;
    assert_error(
        app.post_as(&admin, "/models", model_body("ACME-CORP/m"))
            .await,
        409,
        "namespace_taken",
    )
    .await;
}

/// Twenty concurrent creates of one slug: exactly one wins, the others get slug_taken (never a
/// 500); then org creates racing public-model creates on one name: exactly one wins each time.
#[tokio::test]
async fn concurrent_claims_of_one_name_have_exactly_one_winner() {
    let app = spawn_app().await;
    let user = someone(&app, "racer@example.test").await;
    let attempts = (0..20).map(|i| {
        app.post_as(
            &user,
            "/organizations",
            json!({"name": format!("Racer {i}"), "slug": "contested", "set_as_current": false}),
        )
    });
    let mut created = 0;
    for res in join_all(attempts).await {
        match res.status().as_u16() {
            201 => created += 1,
            _ => {
                assert_error(res, 409, "slug_taken").await;
            }
        }
    }
    assert_eq!(created, 1);

    let admin = admin(&app).await;
    for round in 0..8 {
        let name = format!("race-{round}");
        let (org, model) = tokio::join!(
            app.post_as(
                &user,
                "/organizations",
                // One name a round: a second org of one name is refused (org_name_taken).
                json!({"name": format!("Racer round {round}"), "slug": name, "set_as_current": false}),
            ),
            app.post_as(&admin, "/models", model_body(&format!("{name}/model"))),
        );
        match (org.status().as_u16(), model.status().as_u16()) {
            (201, _) => {
                assert_error(model, 409, "namespace_taken").await;
                assert!(matches!(
                    namespaces::find(&app.db, &name).await.unwrap(),
                    Some(NamespaceOwner::Org(Some(_)))
                ));
            }
            (_, 201) => {
                assert_error(org, 409, "slug_taken").await;
                assert_eq!(
                    namespaces::find(&app.db, &name).await.unwrap(),
                    Some(NamespaceOwner::Public)
                );
            }
            (a, b) => panic!("round {round}: org {a}, model {b}: no winner"),
        }
    }
    app.assert_audit_verifies().await;
}

/// The migration's backfill: where existing data collides, the earlier-created owner keeps the
/// namespace (docs/decisions.md).
#[tokio::test]
async fn the_backfill_gives_a_colliding_name_to_its_earliest_owner() {
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let app = spawn_app_with(|_| {}, clock.clone()).await;
    let step = || clock.advance(time::Duration::minutes(1));
    // "early": the org first, the public model later. "late": the other way round.
    let early = Team::new(&app, "early").await;
    step();
    let tmp = public_model(&app, "tmp-early/m").await;
    step();
    public_model(&app, "late/m").await;
    step();
    Team::new(&app, "tmp-late").await;
    step();
    public_model(&app, "plain/m").await;
    // Undo this one migration (whatever came after it), make the data collide as it could
    // before the rule, and let the migrator apply it again.
    for sql in [
        "DROP TABLE model_namespaces",
        "DELETE FROM seaql_migrations WHERE version = 'm20261130_000001_create_model_namespaces'",
        "UPDATE models SET model_id = 'Early/m' WHERE model_id = 'tmp-early/m'",
        "UPDATE organizations SET slug = 'late' WHERE slug = 'tmp-late'",
    ] {
        app.db.execute_unprepared(sql).await.unwrap();
    }
    Migrator::up(app.db.conn(), None).await.unwrap();
    let owner = |name: &'static str| namespaces::find(&app.db, name);
    assert_eq!(
        owner("early").await.unwrap(),
        Some(NamespaceOwner::Org(Some(early.org)))
    );
    assert_eq!(owner("late").await.unwrap(), Some(NamespaceOwner::Public));
    assert_eq!(owner("plain").await.unwrap(), Some(NamespaceOwner::Public));
    assert_eq!(owner("tmp-early").await.unwrap(), None);
    assert_eq!(owner("tmp-late").await.unwrap(), None);
    // The losers keep existing; they just cannot be reached by that name.
    let admin = admin(&app).await;
    json_with_status(app.get_as(&admin, &format!("/models/{tmp}")).await, 200).await;
}

/// Bootstrap and demo seeding create orgs and public models too: they claim their names like
/// the API does, and bootstrap refuses a slug the catalogue already holds.
#[tokio::test]
async fn bootstrap_and_demo_seeding_claim_their_names() {
    use inventiv_domain::{Email, ErrorCode, OrgName, Slug};
    use inventiv_persistence::repo::organizations;
    use inventiv_service::{ServiceError, bootstrap, demo};

    let app = spawn_app().await;
    let slug = Slug::parse("inventiv-it").unwrap();
    let org = organizations::find_by_slug(&app.db, &slug)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        namespaces::find(&app.db, "inventiv-it").await.unwrap(),
        Some(NamespaceOwner::Org(Some(org.id)))
    );

    demo::seed(&app.deps).await.unwrap();
    for slug in ["acme", "globex"] {
        let org = organizations::find_by_slug(&app.db, &Slug::parse(slug).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            namespaces::find(&app.db, slug).await.unwrap(),
            Some(NamespaceOwner::Org(Some(org.id)))
        );
    }
    for public in ["meta-llama", "mistralai"] {
        assert_eq!(
            namespaces::find(&app.db, public).await.unwrap(),
            Some(NamespaceOwner::Public)
        );
    }

    public_model(&app, "second-org/model").await;
    let refused = bootstrap::run(
        &app.deps,
        &bootstrap::BootstrapSettings {
            admin_email: Email::parse(ADMIN_EMAIL).unwrap(),
            admin_password: None,
            org_name: OrgName::parse("Second Org").unwrap(),
            org_slug: Slug::parse("second-org").unwrap(),
        },
    )
    .await;
    assert!(
        matches!(
            refused,
            Err(ServiceError::Conflict {
                code: ErrorCode::SlugTaken,
                ..
            })
        ),
        "{refused:?}"
    );
}
