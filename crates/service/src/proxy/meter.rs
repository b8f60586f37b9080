//! The usage writer: proxied requests hand their usage row to a channel; one background task
//! inserts them in batches (idempotent by `request_id`), off the request path. `flush` drains
//! everything received so far — called on graceful shutdown, so no completed request is left
//! unmetered.
//!
//! The writer wakes once per batch, not once per row: after the first row of a batch it sleeps
//! for the linger time (cut short by a flush) and then takes whatever arrived meanwhile. While
//! it sleeps it is not waiting on the channel, so sending a row wakes no thread: the request
//! path pays for a queue push, not for a context switch.
//!
//! The queue is bounded (`[proxy] meter_queue` rows, 100,000 by default: a few seconds of the
//! proxy's full speed on this machine, or minutes of a busy production load): when the
//! database cannot keep up, or is away, requests wait for room before they answer instead of
//! the process growing without bound. A billing row is never dropped to make room.
//!
//! Each row is first appended to this process's [`Journal`] (so a process killed with rows still
//! queued loses none of them: the next start replays the journal), and marked stored there once
//! its batch is committed.
//!
//! The writer has a connection pool of its own ([`Db::dedicated`]), so request handlers never
//! wait for it and it never borrows a connection an HTTP worker opened (on PostgreSQL those
//! stop working when the workers stop, which is exactly when the final flush runs).

use super::journal::{self, Journal, Mark};
use inventiv_persistence::Db;
use inventiv_persistence::repo::usage::{self, UsageRecord};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};

enum Message {
    Usage(Box<UsageRecord>, Option<Mark>),
    Flush(oneshot::Sender<()>),
}

/// Cheap to clone; all clones feed the same writer.
#[derive(Clone, Debug)]
pub struct Meter {
    tx: mpsc::Sender<Message>,
    /// Cuts the writer's linger short (a flush is waiting).
    hurry: Arc<Notify>,
    journal: Option<Arc<Journal>>,
}

/// Rows per insert.
const BATCH: usize = 1000;

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Message")
    }
}

impl Meter {
    /// Starts the writer on the current runtime. `linger`: how long a first row waits for
    /// company before a batch is written; `capacity`: rows queued at most (at least 1).
    /// `journal`: where rows are journaled (None: not at all, e.g. in benchmarks of the
    /// journal's own cost); orphaned journals found in its directory are replayed first.
    pub fn start(
        db: Db,
        linger: Duration,
        capacity: usize,
        journal: Option<Arc<Journal>>,
        journal_dir: Option<std::path::PathBuf>,
    ) -> Meter {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let hurry = Arc::new(Notify::new());
        let hurried = hurry.clone();
        let marks = journal.clone();
        tokio::spawn(async move {
            let db = match db.dedicated(1).await {
                Ok(own) => own,
                Err(err) => {
                    tracing::warn!(error = %err, "usage writer: no pool of its own; sharing the main one");
                    db
                }
            };
            if let Some(dir) = journal_dir {
                replay(&db, &dir).await;
            }
            run(db, rx, linger, hurried, marks).await;
        });
        Meter { tx, hurry, journal }
    }

    /// Journals one row, then queues it; waits only while the queue is full (see the module's
    /// notes). Once this returns, the row survives the death of the process.
    pub async fn record(&self, row: UsageRecord) {
        let mark = self.journal.as_ref().and_then(|j| match j.append(&row) {
            Ok(mark) => Some(mark),
            Err(err) => {
                tracing::error!(error = %err, "journaling a usage row failed; it is only queued");
                None
            }
        });
        if self
            .tx
            .send(Message::Usage(Box::new(row), mark))
            .await
            .is_err()
        {
            tracing::error!("usage writer is gone; a usage row was dropped");
        }
    }

    /// Stops journaling (clean shutdown): call after [`Meter::flush`].
    pub fn close(&self) {
        if let Some(journal) = &self.journal {
            journal.close();
        }
    }

    /// Waits until every row queued before this call is stored.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).await.is_ok() {
            self.hurry.notify_one();
            let _ = wait.await;
        }
    }
}

/// Stores the rows journaled by processes that died, then deletes their journals. Retries
/// until the database takes them: they are billing records.
async fn replay(db: &Db, dir: &std::path::Path) {
    let (rows, files) = match journal::orphans(dir) {
        Ok(found) => found,
        Err(err) => {
            tracing::error!(error = %err, dir = %dir.display(), "reading orphaned usage journals failed");
            return;
        }
    };
    if files.is_empty() {
        return;
    }
    loop {
        let mut stored = 0;
        let mut failed = None;
        for chunk in rows.chunks(BATCH) {
            match usage::insert_batch(db, chunk, inventiv_persistence::now_utc_micros()).await {
                Ok(n) => stored += n,
                Err(err) => {
                    failed = Some(err);
                    break;
                }
            }
        }
        match failed {
            None => {
                tracing::warn!(
                    rows = rows.len(),
                    new = stored,
                    "replayed the usage journal of a process that stopped without storing it"
                );
                break;
            }
            Some(err) => {
                tracing::error!(error = %err, "replaying usage journals failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    for (path, _locked) in files {
        if let Err(err) = std::fs::remove_file(&path) {
            tracing::warn!(error = %err, file = %path.display(), "could not delete a replayed usage journal");
        }
    }
}

async fn run(
    db: Db,
    mut rx: mpsc::Receiver<Message>,
    linger: Duration,
    hurry: Arc<Notify>,
    journal: Option<Arc<Journal>>,
) {
    let mut pending: Vec<UsageRecord> = Vec::new();
    let mut marks: Vec<Mark> = Vec::new();
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = rx.recv().await {
        collect(first, &mut pending, &mut marks, &mut waiters);
        // Linger so a burst becomes one batch, unless a flush is waiting.
        if waiters.is_empty() {
            tokio::select! {
                () = tokio::time::sleep(linger) => {}
                () = hurry.notified() => {}
            }
        }
        while let Ok(message) = rx.try_recv() {
            collect(message, &mut pending, &mut marks, &mut waiters);
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
        if let Some(journal) = &journal {
            journal.stored(marks.drain(..));
        }
        for waiter in waiters.drain(..) {
            let _ = waiter.send(());
        }
    }
}

fn collect(
    message: Message,
    pending: &mut Vec<UsageRecord>,
    marks: &mut Vec<Mark>,
    waiters: &mut Vec<oneshot::Sender<()>>,
) {
    match message {
        Message::Usage(row, mark) => {
            pending.push(*row);
            marks.extend(mark);
        }
        Message::Flush(done) => waiters.push(done),
    }
}
