//! Readiness (SPEC §4.5): whether this replica can take requests — the database answers and
//! every migration is applied. Never an error: what fails is reported, and logged.

use crate::Deps;

/// What `GET /readyz` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// The database answered.
    pub database: bool,
    /// Every migration is applied.
    pub migrations: bool,
}

impl Readiness {
    /// Ready to serve: both hold.
    pub fn ready(&self) -> bool {
        self.database && self.migrations
    }
}

/// Asks the database whether it answers and has every migration applied.
pub async fn readiness(deps: &Deps) -> Readiness {
    match deps.db.ready().await {
        Ok(migrations) => Readiness {
            database: true,
            migrations,
        },
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            Readiness {
                database: false,
                migrations: false,
            }
        }
    }
}
