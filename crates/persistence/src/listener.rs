//! Following the writes of other replicas (PostgreSQL): every write transaction that marked
//! tags sends them, as the payload of `NOTIFY inventiv_writes`, inside the transaction (so the
//! notification is delivered with the commit, never without it), and [`follow_other_writers`]
//! listens on a connection of its own and bumps those tags here as each notification arrives
//! (milliseconds on a LAN).
//!
//! While that listener is not connected, nothing can be known about other writers: the
//! versions are then *untrusted* and no cache entry is valid (see [`crate::versions`]). A
//! silently dead connection is found by a ping every [`PING_EVERY`] answered within
//! [`PING_TIMEOUT`]: a write of another replica is seen, at worst, `PING_EVERY + PING_TIMEOUT`
//! (750 ms) after its commit — the bound stated in docs/operations.md. On SQLite (one
//! process, embedded) there is nothing to follow.

use crate::tags::{self, Changed};
use crate::versions::Versions;
use sea_orm::sqlx::{self, postgres::PgListener};
use std::time::Duration;

/// The PostgreSQL channel written to by every committed write transaction.
pub(crate) const CHANNEL: &str = "inventiv_writes";

/// How long the listener waits for a notification before checking its connection.
pub const PING_EVERY: Duration = Duration::from_millis(250);
/// How long the connection check may take before the listener is declared dead.
pub const PING_TIMEOUT: Duration = Duration::from_millis(500);
/// Pause between reconnection attempts while PostgreSQL is unreachable.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

/// Listens for the writes of other processes until the program ends (PostgreSQL only; the
/// caller spawns it). Reconnects by itself; the versions are untrusted while disconnected.
pub(crate) async fn follow_other_writers(versions: &Versions, url: &str) {
    loop {
        match listen(url).await {
            Ok(mut listener) => {
                versions.set_trusted(true);
                tracing::debug!("following the writes of other replicas");
                let why = relay(&mut listener, versions).await;
                versions.set_trusted(false);
                tracing::warn!(%why, "lost the write notifications; caches bypassed until reconnected");
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot listen for write notifications yet");
            }
        }
        tokio::time::sleep(RECONNECT_PAUSE).await;
    }
}

async fn listen(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    // Notifications lost while disconnected cannot be replayed: reconnect explicitly here,
    // through this function, so the versions go through untrusted.
    listener.ignore_pool_close_event(true);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Bumps the tags of every notification; returns why it stopped.
async fn relay(listener: &mut PgListener, versions: &Versions) -> String {
    loop {
        // `try_recv` is cancel-safe: a timeout here loses nothing.
        match tokio::time::timeout(PING_EVERY, listener.try_recv()).await {
            Ok(Ok(Some(notification))) => {
                // This process's own writes were bumped at their commit: skip their echo.
                match tags::decode_from_others(notification.payload(), versions.writer) {
                    Some(Changed::Tags(tags)) => versions.bump(&tags),
                    Some(Changed::Everything) => versions.bump_all(),
                    None => {}
                }
            }
            Ok(Ok(None)) => return "connection closed".to_owned(),
            Ok(Err(e)) => return e.to_string(),
            Err(_) => {
                let ping = sqlx::query("SELECT 1").execute(&mut *listener);
                match tokio::time::timeout(PING_TIMEOUT, ping).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return e.to_string(),
                    Err(_) => return "connection check timed out".to_owned(),
                }
            }
        }
    }
}
