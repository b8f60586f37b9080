//! The usage writer: proxied requests hand their usage row to a channel; one background task
//! inserts them in batches (idempotent by `request_id`), off the request path. `flush` drains
//! everything received so far — called on graceful shutdown, so no completed request is left
//! unmetered.

use inventiv_persistence::Db;
use inventiv_persistence::repo::usage::{self, UsageRecord};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

enum Message {
    Usage(Box<UsageRecord>),
    Flush(oneshot::Sender<()>),
}

/// Cheap to clone; all clones feed the same writer.
#[derive(Clone, Debug)]
pub struct Meter {
    tx: mpsc::UnboundedSender<Message>,
}

const BATCH: usize = 500;

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Message")
    }
}

impl Meter {
    /// Starts the writer on the current runtime. `linger`: how long a first row waits for
    /// company before a batch is written.
    pub fn start(db: Db, linger: Duration) -> Meter {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(db, rx, linger));
        Meter { tx }
    }

    /// Queues one row (never blocks the request).
    pub fn record(&self, row: UsageRecord) {
        if self.tx.send(Message::Usage(Box::new(row))).is_err() {
            tracing::error!("usage writer is gone; a usage row was dropped");
        }
    }

    /// Waits until every row queued before this call is stored.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

async fn run(db: Db, mut rx: mpsc::UnboundedReceiver<Message>, linger: Duration) {
    let mut pending: Vec<UsageRecord> = Vec::new();
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = rx.recv().await {
        collect(first, &mut pending, &mut waiters);
        // Linger briefly so a burst becomes one insert.
        let deadline = tokio::time::Instant::now() + linger;
        while pending.len() < BATCH && waiters.is_empty() {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(message)) => collect(message, &mut pending, &mut waiters),
                Ok(None) | Err(_) => break,
            }
        }
        while !pending.is_empty() {
            let now = inventiv_persistence::now_utc_micros();
            let take = pending.len().min(BATCH);
            match usage::insert_batch(&db, &pending[..take], now).await {
                Ok(_) => {
                    pending.drain(..take);
                }
                Err(err) => {
                    // Keep the rows and retry: losing billing data is worse than waiting.
                    tracing::error!(error = %err, rows = pending.len(), "storing usage failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        for waiter in waiters.drain(..) {
            let _ = waiter.send(());
        }
    }
}

fn collect(
    message: Message,
    pending: &mut Vec<UsageRecord>,
    waiters: &mut Vec<oneshot::Sender<()>>,
) {
    match message {
        Message::Usage(row) => pending.push(*row),
        Message::Flush(done) => waiters.push(done),
    }
}
