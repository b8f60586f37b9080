use crate::StoreError;
use crate::connect_url;
use crate::listener;
use crate::tags::{self, Tag};
use crate::versions::{Stamp, Versions};
use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The advisory lock key migrations take turns on (any constant the application owns).
const MIGRATION_LOCK: i64 = 0x1a7e_4711_0001;

/// Which database engine is behind a [`Db`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Pool settings (from `[database]` in the configuration).
#[derive(Debug, Clone)]
pub struct DbOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// How long a SQLite writer waits for the write lock before giving up (then: 503).
    pub sqlite_busy_timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            sqlite_busy_timeout: Duration::from_secs(10),
        }
    }
}

/// The connection pool. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    conn: DatabaseConnection,
    backend: Backend,
    /// How this pool was opened, to open another like it ([`Db::dedicated`]).
    url: Arc<str>,
    options: DbOptions,
    /// What changed when, by tag (see [`crate::versions`]): caches built from the database
    /// compare it to know whether they may still be trusted.
    versions: Arc<Versions>,
}

/// Not derived: the URL may hold the database password.
impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .field("max_connections", &self.options.max_connections)
            .finish_non_exhaustive()
    }
}

/// An open write transaction. Dropping it without [`Tx::commit`] rolls back.
pub struct Tx {
    inner: DatabaseTransaction,
    backend: Backend,
    versions: Arc<Versions>,
    /// What the transaction changed, as caches see it: published by [`Tx::commit`].
    changed: Mutex<Changes>,
}

/// The tags a transaction marked so far.
#[derive(Debug, Default)]
struct Changes {
    tags: Vec<Tag>,
    /// An unparsed statement ran: anything may have changed.
    everything: bool,
}

/// Something repositories can run statements on: the pool ([`Db`]) or a transaction ([`Tx`]).
/// The associated type keeps sea-orm out of the signatures callers write.
pub trait Store: Send + Sync {
    #[doc(hidden)]
    type Conn: ConnectionTrait;
    #[doc(hidden)]
    fn conn(&self) -> &Self::Conn;
    /// The engine, for the few statements that differ (row locks).
    fn backend(&self) -> Backend;
}

impl Store for Db {
    type Conn = DatabaseConnection;
    fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }
    fn backend(&self) -> Backend {
        self.backend
    }
}

impl Store for Tx {
    type Conn = DatabaseTransaction;
    fn conn(&self) -> &DatabaseTransaction {
        &self.inner
    }
    fn backend(&self) -> Backend {
        self.backend
    }
}

impl Tx {
    /// Runs one SQL statement with no parameters inside the transaction. For tests and
    /// operator commands only (e.g. holding a lock); never with user input. Nothing is known
    /// about what it changed, so the commit invalidates every cache entry.
    pub async fn execute_unprepared(&self, sql: &str) -> Result<u64, StoreError> {
        self.mark_everything();
        Ok(self.inner.execute_unprepared(sql).await?.rows_affected())
    }

    /// Records that this transaction may change anything cached (bulk statements).
    pub(crate) fn mark_everything(&self) {
        if let Ok(mut changed) = self.changed.lock() {
            changed.everything = true;
        }
    }

    /// Records that this transaction changes the cached fact `tag` (see [`crate::tags`]).
    /// Repositories call it for every row they change that a cache is built from.
    pub(crate) fn mark(&self, tag: Tag) {
        // A poisoned lock (a panic while marking) makes the commit invalidate everything.
        if let Ok(mut changed) = self.changed.lock()
            && !changed.tags.contains(&tag)
        {
            changed.tags.push(tag);
        }
    }

    /// Commits. If the transaction marked tags, the commit bumps them in this process (see
    /// [`Db::stamp`]) and, on PostgreSQL, notifies the other replicas of them (the
    /// notification is sent inside the transaction: delivered with the commit, never without
    /// it). A transaction that marked nothing (usage rows, audit events, instances'
    /// leases…) invalidates nothing.
    ///
    /// The tags are bumped here even when the commit reports an error: a connection lost
    /// while PostgreSQL acknowledged the commit leaves it unknown whether the rows changed,
    /// and the other replicas then hear the notification while this one skips its own echo.
    /// A needless bump costs a few cache misses; a missing one would leave this replica
    /// serving what the commit changed (a revoked session) until something else bumped it.
    pub async fn commit(self) -> Result<(), StoreError> {
        let changed = self.changed.into_inner().unwrap_or_else(|poisoned| {
            let mut changed = poisoned.into_inner();
            changed.everything = true;
            changed
        });
        let nothing = changed.tags.is_empty() && !changed.everything;
        if self.backend == Backend::Postgres && !nothing {
            let payload = if changed.everything {
                tags::EVERYTHING.to_owned()
            } else {
                tags::encode(&changed.tags)
            };
            let payload = tags::from_writer(self.versions.writer, &payload);
            self.inner
                .execute_raw(sea_orm::Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT pg_notify($1, $2)",
                    vec![listener::CHANNEL.into(), payload.into()],
                ))
                .await?;
        }
        let committed = self.inner.commit().await.map_err(StoreError::from);
        if changed.everything {
            self.versions.bump_all();
        } else if !nothing {
            self.versions.bump(&changed.tags);
        }
        committed
    }
}

impl Db {
    /// Connects by URL (`sqlite://…` or `postgres://…`). For a SQLite file, creates its
    /// directory, and turns on WAL, foreign keys and a busy timeout on every connection.
    pub async fn connect(url: &str, options: &DbOptions) -> Result<Db, StoreError> {
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::Unavailable(format!(
                "unsupported database URL scheme (expected sqlite: or postgres:): {}",
                url.split(':').next().unwrap_or_default()
            )));
        };
        if backend == Backend::Sqlite {
            create_sqlite_parent_dir(url)?;
        }
        let url = connect_url::completed(url);
        Ok(Db {
            conn: open(&url, options, false).await?,
            backend,
            url: url.into(),
            options: options.clone(),
            // SQLite has no other writer to hear about; PostgreSQL must listen first.
            versions: Arc::new(Versions::new(backend == Backend::Sqlite)),
        })
    }

    /// A pool of its own, of at most `max_connections`, on the same database and sharing the
    /// tag versions, for a background task. Its connections are opened lazily, by that task:
    /// on PostgreSQL a connection's socket belongs to the runtime that opened it, so a task
    /// on the main runtime borrowing a connection an HTTP worker opened depends on that
    /// worker's thread (and fails once the workers stop, at shutdown). An in-memory SQLite
    /// database cannot be opened twice: its pool is shared instead.
    pub async fn dedicated(&self, max_connections: u32) -> Result<Db, StoreError> {
        if self.url.contains(":memory:") || self.url.contains("mode=memory") {
            return Ok(self.clone());
        }
        let options = DbOptions {
            max_connections,
            ..self.options.clone()
        };
        Ok(Db {
            conn: open(&self.url, &options, true).await?,
            options,
            url: self.url.clone(),
            backend: self.backend,
            versions: self.versions.clone(),
        })
    }

    /// Follows the writes of other processes, forever (spawn it), on a connection of its own
    /// to this pool's database. On PostgreSQL, until this runs and is connected,
    /// [`Db::stamp`] gives nothing, so no cache entry is used; on SQLite it returns at once.
    pub async fn follow_other_writers(&self) {
        if self.backend == Backend::Postgres {
            listener::follow_other_writers(&self.versions, &self.url).await;
        }
    }

    /// Applies every pending migration. On PostgreSQL, replicas starting at the same instant
    /// take turns: the first applies what is pending while holding an advisory lock, and the
    /// others then find nothing left to do. (A transaction on a connection of its own holds
    /// the lock while the migrations run on the pool.) A SQLite file has one server.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let turn = match self.backend {
            Backend::Postgres => {
                let locker = self.dedicated(1).await?;
                let tx = locker.conn.begin().await?;
                tx.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
                    .await?;
                Some((locker, tx))
            }
            Backend::Sqlite => None,
        };
        Migrator::up(&self.conn, None).await?;
        if let Some((locker, tx)) = turn {
            tx.commit().await?;
            locker.close().await?;
        }
        Ok(())
    }

    /// Applies only the first `steps` pending migrations: for tests that build a database as
    /// an older release left it and then migrate it (never used by the server).
    pub async fn migrate_steps(&self, steps: u32) -> Result<(), StoreError> {
        Migrator::up(&self.conn, Some(steps)).await?;
        Ok(())
    }

    /// The first column of the first row of a query without parameters, as an integer. For
    /// tests and operators only; never with user input.
    pub async fn query_i64(&self, sql: &str) -> Result<i64, StoreError> {
        let row = self
            .conn
            .query_one_raw(sea_orm::Statement::from_string(
                db_backend(self.backend),
                sql.to_owned(),
            ))
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("no row from {sql}")))?;
        Ok(row.try_get_by_index::<i64>(0)?)
    }

    /// Readiness: the database answers and no migration is pending.
    pub async fn ready(&self) -> Result<bool, StoreError> {
        self.conn.execute_unprepared("SELECT 1").await?;
        Ok(Migrator::get_pending_migrations(&self.conn)
            .await?
            .is_empty())
    }

    /// Opens a write transaction. On SQLite it is `BEGIN IMMEDIATE`, so writers queue on the
    /// busy timeout at the start instead of failing with "database is locked" halfway through;
    /// on PostgreSQL, callers take row locks (`FOR UPDATE`) where an invariant needs them.
    pub async fn begin_write(&self) -> Result<Tx, StoreError> {
        let inner = match self.backend {
            Backend::Sqlite => {
                self.conn
                    .begin_with_options(TransactionOptions {
                        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                        ..Default::default()
                    })
                    .await?
            }
            Backend::Postgres => self.conn.begin().await?,
        };
        Ok(Tx {
            inner,
            backend: self.backend,
            versions: self.versions.clone(),
            changed: Mutex::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Now, for a cache lookup about to read the database; None while caches cannot be
    /// trusted (see [`Db::caches_usable`]). An answer stored with it stays valid while
    /// [`Db::unchanged_since`] says so for the tags of the rows it was read from.
    pub fn stamp(&self) -> Option<Stamp> {
        self.versions.stamp()
    }

    /// Whether no write of any of `tags` was committed by this process — nor, on PostgreSQL,
    /// notified by another one — since `stamp` (see [`crate::versions`]; [`crate::listener`]
    /// for the bound on other replicas), and caches can be trusted now.
    pub fn unchanged_since(&self, stamp: Stamp, tags: &[Tag]) -> bool {
        self.versions.unchanged_since(stamp, tags)
    }

    /// Whether caches can currently be relied on: always on SQLite; on PostgreSQL while
    /// [`Db::follow_other_writers`] is connected.
    pub fn caches_usable(&self) -> bool {
        self.versions.is_trusted()
    }

    /// Closes the pool (graceful shutdown).
    pub async fn close(self) -> Result<(), StoreError> {
        self.conn.close().await?;
        Ok(())
    }

    /// The plan lines of an `EXPLAIN` (PostgreSQL) or `EXPLAIN QUERY PLAN` (SQLite) statement.
    /// On PostgreSQL sequential scans are disabled for the statement, so the answer says which
    /// index the planner *can* use even on a tiny table. For tests and operators only.
    pub async fn explain(&self, sql: &str) -> Result<Vec<String>, StoreError> {
        let tx = self.conn.begin().await?;
        let column = match self.backend {
            Backend::Postgres => {
                tx.execute_unprepared("SET LOCAL enable_seqscan = off")
                    .await?;
                "QUERY PLAN"
            }
            Backend::Sqlite => "detail",
        };
        let rows = tx
            .query_all_raw(sea_orm::Statement::from_string(
                db_backend(self.backend),
                sql.to_owned(),
            ))
            .await?;
        let lines = rows
            .iter()
            .map(|r| r.try_get::<String>("", column))
            .collect::<Result<_, _>>()?;
        tx.rollback().await?;
        Ok(lines)
    }

    /// Runs one SQL statement with no parameters. For tests and operator commands only
    /// (e.g. simulating tampering); never with user input. Nothing is known about what it
    /// changed: every cache entry, here and (PostgreSQL) in the other replicas, is invalidated.
    pub async fn execute_unprepared(&self, sql: &str) -> Result<u64, StoreError> {
        let executed = self.conn.execute_unprepared(sql).await;
        // Bumped whatever the outcome (a failed statement may have changed rows before it
        // failed, outside a transaction), and before the notification can fail.
        self.versions.bump_all();
        let affected = executed?.rows_affected();
        if self.backend == Backend::Postgres {
            self.conn
                .execute_unprepared(&format!(
                    "NOTIFY {}, '{}'",
                    listener::CHANNEL,
                    tags::from_writer(self.versions.writer, tags::EVERYTHING)
                ))
                .await?;
        }
        Ok(affected)
    }
}

pub(crate) fn db_backend(backend: Backend) -> DbBackend {
    match backend {
        Backend::Sqlite => DbBackend::Sqlite,
        Backend::Postgres => DbBackend::Postgres,
    }
}

/// A pooled connection idle this long is pinged before it is handed out; a busier one is not.
///
/// sqlx's default pings on every checkout, on top of the ping it always sends when a
/// connection goes back to the pool: a round trip (and, on this host, two context switches)
/// per checkout, which was a quarter of a sign-in's round trips on PostgreSQL. A connection
/// used less than this long ago passed that release ping less than this long ago, so it can
/// only be dead if PostgreSQL restarted within the interval; one idle longer (what a restart,
/// a proxy or a firewall leaves behind) is still tested, and replaced when the ping fails
/// (docs/decisions.md).
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

/// Opens a pool (`lazy`: without connecting until a connection is first needed).
async fn open(
    url: &str,
    options: &DbOptions,
    lazy: bool,
) -> Result<DatabaseConnection, StoreError> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(options.max_connections)
        .min_connections(0)
        .acquire_timeout(options.acquire_timeout)
        .connect_timeout(options.acquire_timeout)
        .connect_lazy(lazy)
        .test_before_acquire_if_idle_for(PING_WHEN_IDLE_FOR)
        .sqlx_logging(false);
    let busy = options.sqlite_busy_timeout;
    opts.map_sqlx_sqlite_opts(move |o: SqliteConnectOptions| {
        o.journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(busy)
    });
    Ok(Database::connect(opts).await?)
}

fn create_sqlite_parent_dir(url: &str) -> Result<(), StoreError> {
    let path = url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| {
            StoreError::Unavailable(format!("cannot create {}: {e}", parent.display()))
        })?;
    }
    Ok(())
}
