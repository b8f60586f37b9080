//! The write epoch: a counter that changes whenever the database may have changed, so that
//! read caches (in the service crate) can tell whether an entry is still trustworthy.
//!
//! - Every write transaction committed by *this* process bumps it ([`crate::Tx::commit`]).
//! - On PostgreSQL, every such commit also sends `NOTIFY inventiv_writes`, and
//!   [`follow_other_writers`] listens on a connection of its own and bumps the epoch on each
//!   notification: a write committed by *another* replica invalidates this replica's caches
//!   as soon as the notification arrives (milliseconds on a LAN).
//! - While that listener is not connected, nothing can be known about other writers: the
//!   epoch is then *untrusted* and every read returns a value never returned before, so no
//!   cache entry ever matches. A silently dead connection is found by a ping every
//!   [`PING_EVERY`] answered within [`PING_TIMEOUT`]: a write of another replica is seen, at
//!   worst, `PING_EVERY + PING_TIMEOUT` (750 ms) after its commit — the bound stated in
//!   docs/operations.md.
//! - On SQLite (one process, embedded) the epoch is trusted from the start.

use sea_orm::sqlx::{self, postgres::PgListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The PostgreSQL channel written to by every committed write transaction.
pub(crate) const CHANNEL: &str = "inventiv_writes";

/// How long the listener waits for a notification before checking its connection.
pub const PING_EVERY: Duration = Duration::from_millis(250);
/// How long the connection check may take before the listener is declared dead.
pub const PING_TIMEOUT: Duration = Duration::from_millis(500);
/// Pause between reconnection attempts while PostgreSQL is unreachable.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

#[derive(Debug)]
pub(crate) struct WriteEpoch {
    value: AtomicU64,
    /// Whether every write that can matter bumps `value` (see the module documentation).
    trusted: AtomicBool,
}

impl WriteEpoch {
    pub(crate) fn new(trusted: bool) -> Self {
        Self {
            value: AtomicU64::new(0),
            trusted: AtomicBool::new(trusted),
        }
    }

    pub(crate) fn bump(&self) {
        self.value.fetch_add(1, Ordering::SeqCst);
    }

    /// The current epoch, or — while untrusted — a fresh value that no entry can match.
    pub(crate) fn read(&self) -> u64 {
        if self.trusted.load(Ordering::SeqCst) {
            self.value.load(Ordering::SeqCst)
        } else {
            self.value.fetch_add(1, Ordering::SeqCst) + 1
        }
    }

    pub(crate) fn is_trusted(&self) -> bool {
        self.trusted.load(Ordering::SeqCst)
    }

    fn set_trusted(&self, trusted: bool) {
        // Bump first: an entry stored with an "untrusted" value must not match once trusted.
        self.bump();
        self.trusted.store(trusted, Ordering::SeqCst);
    }
}

/// Listens for the writes of other processes until the program ends (PostgreSQL only; the
/// caller spawns it). Reconnects by itself; the epoch is untrusted while disconnected.
pub(crate) async fn follow_other_writers(epoch: &WriteEpoch, url: &str) {
    loop {
        match listen(url).await {
            Ok(mut listener) => {
                epoch.set_trusted(true);
                tracing::debug!("following the writes of other replicas");
                let why = relay(&mut listener, epoch).await;
                epoch.set_trusted(false);
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
    // through this function, so the epoch goes through untrusted.
    listener.ignore_pool_close_event(true);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Bumps the epoch on every notification; returns why it stopped.
async fn relay(listener: &mut PgListener, epoch: &WriteEpoch) -> String {
    loop {
        // `try_recv` is cancel-safe: a timeout here loses nothing.
        match tokio::time::timeout(PING_EVERY, listener.try_recv()).await {
            Ok(Ok(Some(_))) => epoch.bump(),
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

#[cfg(test)]
mod tests {
    use super::WriteEpoch;

    #[test]
    fn an_untrusted_epoch_never_repeats_and_trusting_moves_it_on() {
        let epoch = WriteEpoch::new(false);
        let a = epoch.read();
        assert_ne!(a, epoch.read());
        let last = epoch.read();
        epoch.set_trusted(true);
        let now = epoch.read();
        assert_ne!(now, last, "a value read while untrusted is never current");
        assert_eq!(
            now,
            epoch.read(),
            "stable while trusted and nothing is written"
        );
        epoch.bump();
        assert_ne!(now, epoch.read());
    }
}
