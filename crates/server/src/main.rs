//! `inventiv-server [serve|migrate|bootstrap|audit-verify|seed-demo|seed-scale|openapi]` — `serve` is the default.

use inventiv_server::{Application, Settings, bootstrap_settings, build_deps, connect, telemetry};
use inventiv_service::SystemClock;
use inventiv_service::bootstrap::BootstrapOutcome;
use std::process::ExitCode;
use std::sync::Arc;

const USAGE: &str =
    "usage: inventiv-server [serve|migrate|bootstrap|audit-verify|seed-demo|seed-scale|openapi]

  serve         migrate, bootstrap, then serve HTTP (default)
  migrate       apply pending database migrations and exit
  bootstrap     migrate and ensure the platform admin and its organization exist, then exit
  audit-verify  recompute every audit chain; exit 1 and name the first broken link if any
  seed-demo     migrate, then fill two demo organizations (every role, models, instances) and
                print their logins (idempotent)
  seed-scale ORGS INSTANCES_PER_ORG
                migrate, then bulk-insert synthetic organizations scale-1..ORGS with
                INSTANCES_PER_ORG settled instances each (for scale measurements; incremental)
  openapi       print the OpenAPI document (the same as GET /openapi.json) and exit

Settings: config/default.toml, config/$INVENTIV_ENV.toml (built in; the same files in ./config or
$INVENTIV_CONFIG_DIR override them when present), then INVENTIV__SECTION__KEY variables.";

#[tokio::main]
async fn main() -> ExitCode {
    let command = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "serve".to_owned());
    match command.as_str() {
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        "openapi" => {
            return match inventiv_http::openapi().to_pretty_json() {
                Ok(json) => {
                    println!("{json}");
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("cannot render the OpenAPI document: {err}");
                    ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(err) => {
            eprintln!("configuration error: {err:#}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings);
    let result = match command.as_str() {
        "serve" => serve(settings).await,
        "migrate" => migrate(settings).await,
        "bootstrap" => bootstrap(settings).await,
        "audit-verify" => audit_verify(settings).await,
        "seed-demo" => seed_demo(settings).await,
        "seed-scale" => seed_scale(settings).await,
        other => {
            eprintln!("unknown command {other:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "fatal");
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<ExitCode> {
    let app = Application::build(settings.clone()).await?;
    print_bootstrap(app.bootstrap_outcome());
    tracing::info!(
        address = format!("{}:{}", settings.server.host, app.port()),
        environment = settings.environment.as_str(),
        "listening"
    );
    app.run_until_stopped().await?;
    Ok(ExitCode::SUCCESS)
}

async fn migrate(settings: Settings) -> anyhow::Result<ExitCode> {
    let db = connect(&settings).await?;
    db.migrate().await?;
    println!("migrations applied");
    Ok(ExitCode::SUCCESS)
}

async fn bootstrap(settings: Settings) -> anyhow::Result<ExitCode> {
    let (db, deps) = build_deps(&settings, Arc::new(SystemClock)).await?;
    db.migrate().await?;
    let parsed = bootstrap_settings(&settings)?;
    let outcome = inventiv_service::bootstrap::run(&deps, &parsed)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    print_bootstrap(&outcome);
    if !outcome.admin_created && !outcome.org_created {
        println!("bootstrap: nothing to do (admin and organization exist)");
    }
    Ok(ExitCode::SUCCESS)
}

async fn audit_verify(settings: Settings) -> anyhow::Result<ExitCode> {
    let db = connect(&settings).await?;
    let report = inventiv_service::audit::verify(&db)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    match report.broken {
        None => {
            println!(
                "audit trail OK: {} chain(s), {} event(s) verified",
                report.chains, report.events
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(link) => {
            println!(
                "audit trail BROKEN in chain {} at event #{} (id {}): {}",
                link.chain_key,
                link.chain_seq,
                link.event_id
                    .map_or_else(|| "-".to_owned(), |id| id.to_string()),
                link.reason
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn seed_demo(settings: Settings) -> anyhow::Result<ExitCode> {
    let (db, deps) = build_deps(&settings, Arc::new(SystemClock)).await?;
    db.migrate().await?;
    let outcome = inventiv_service::demo::seed(&deps)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if outcome.created {
        println!("Demo data created (instances become ready once the server runs).");
    } else {
        println!("Demo data already present; nothing created.");
    }
    println!(
        "Demo logins (password for all: {}):",
        inventiv_service::demo::DEMO_PASSWORD
    );
    for login in outcome.logins {
        println!("  {:<28} {}", login.email, login.description);
    }
    if let Some(call) = outcome.try_it {
        // The key's secret is shown this once (only its hash is stored).
        println!(
            "\nA call through the proxy, once the server runs (the demo instances are ready a few \
             seconds after it starts; the built-in mock model answers):\n  curl -s {}/v1/chat/completions \\\n    \
             -H 'Authorization: Bearer {}' -H 'content-type: application/json' \\\n    \
             -d '{{\"model\": \"{}\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello\"}}]}}'\n\
             Then see it in FinOps (usage) as alice@acme.demo.",
            settings.server.public_url.trim_end_matches('/'),
            call.api_key,
            call.model
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn seed_scale(settings: Settings) -> anyhow::Result<ExitCode> {
    let numbers: Vec<u32> = std::env::args()
        .skip(2)
        .map(|a| a.parse::<u32>())
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("seed-scale ORGS INSTANCES_PER_ORG: {e}"))?;
    let [orgs, per_org] = numbers[..] else {
        anyhow::bail!("seed-scale ORGS INSTANCES_PER_ORG: two numbers expected");
    };
    let db = connect(&settings).await?;
    db.migrate().await?;
    let started = std::time::Instant::now();
    let seeded = inventiv_persistence::repo::scale::seed(
        &db,
        orgs,
        per_org,
        inventiv_persistence::now_utc_micros(),
    )
    .await?;
    println!(
        "Added {} organizations and {} instances in {:.1} s.",
        seeded.organizations,
        seeded.instances,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// Prints the generated admin password — once, on the run that created the account.
fn print_bootstrap(outcome: &BootstrapOutcome) {
    if let Some(password) = &outcome.generated_password {
        println!(
            "\n==================================================================\n \
             Platform admin created (shown once, only its hash is stored):\n   \
             email:    {}\n   password: {}\n\
             ==================================================================\n",
            outcome.admin_email, password
        );
    } else if outcome.admin_created {
        println!(
            "Platform admin {} created with the configured password.",
            outcome.admin_email
        );
    }
}
