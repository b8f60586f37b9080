//! The OpenAI-compatible proxy (SPEC §5): resolve the model, pick a ready operational instance,
//! forward (streaming SSE through as it arrives), and meter the usage into `inference_usage`.

mod body;
pub mod budget;
mod client;
mod forward;
pub mod journal;
pub mod meter;
mod metering;
mod relay;
pub mod resolve;

pub use budget::Budgets;
pub use forward::{Endpoint, ProxyBody, ProxyResponse, forward};
pub use meter::Meter;
pub use resolve::{ListedModel, Target, available};

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The proxy's upstream clients (pooled keep-alive connections, TCP_NODELAY) and its meter.
#[derive(Clone, Debug)]
pub struct Proxy {
    pub(crate) settings: ProxySettings,
    /// Tells this proxy's clients from another's in [`CLIENT`] (tests run several servers).
    id: u64,
    pub meter: Meter,
    /// Streams whose clients are gone, still read for their usage.
    drains: relay::Drains,
    /// Spend-cap admission: the budget leases this process holds.
    pub budgets: std::sync::Arc<Budgets>,
    /// Resolved routes by (scope, model name) (see [`crate::cache`]).
    pub routes: std::sync::Arc<
        crate::cache::TagCache<(inventiv_domain::Scope, String), resolve::CachedTarget>,
    >,
}

/// `[proxy]` settings.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    pub upstream_timeout: Duration,
    pub connect_timeout: Duration,
    pub pool_idle_per_host: usize,
    /// How long the usage writer waits to batch rows.
    pub meter_linger: Duration,
    /// Usage rows queued at most (see [`Meter`]).
    pub meter_queue: usize,
    /// Whether the routing cache is on (off with several replicas; see `crate::cache`).
    pub cache: bool,
    /// How long a spend lease outlives its holder's last renewal.
    pub reservation_ttl: Duration,
    /// The largest non-streamed answer read from a model server.
    pub max_response_bytes: usize,
    /// Where usage rows are journaled (None: not journaled).
    pub journal_dir: Option<std::path::PathBuf>,
    /// `providers.external.allowed_networks`: where tenants' endpoints may be (see
    /// [`crate::outbound`]).
    pub allowed_networks: std::sync::Arc<crate::network::AllowedNetworks>,
}

thread_local! {
    /// This thread's upstream client, with the id of the [`Proxy`] it belongs to.
    ///
    /// One client (one connection pool) per thread, not one shared: a pooled connection is
    /// driven by a task on the thread that opened it, so a shared pool hands most requests
    /// from the thread serving them to another one and back (two wake-ups, two context
    /// switches). With a pool per thread, an HTTP worker's requests go out and come back on
    /// connections its own thread drives.
    static CLIENT: RefCell<Option<(u64, client::Http)>> = const { RefCell::new(None) };
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

impl Proxy {
    /// Starts the usage writer (which first replays orphaned journals) and the lease keeper.
    pub fn new(
        settings: &ProxySettings,
        db: inventiv_persistence::Db,
        clock: std::sync::Arc<dyn crate::Clock>,
    ) -> std::io::Result<Proxy> {
        let journal = match &settings.journal_dir {
            Some(dir) => Some(std::sync::Arc::new(journal::Journal::open(dir)?)),
            None => None,
        };
        let budgets = Budgets::new(db.clone(), settings.reservation_ttl, clock);
        tokio::spawn(Budgets::maintain(std::sync::Arc::downgrade(&budgets)));
        Ok(Proxy {
            settings: settings.clone(),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            meter: Meter::start(
                db,
                settings.meter_linger,
                settings.meter_queue,
                journal,
                settings.journal_dir.clone(),
            ),
            drains: relay::Drains::new(),
            budgets,
            routes: std::sync::Arc::new(crate::cache::TagCache::new(settings.cache)),
        })
    }

    /// Clean shutdown, once the HTTP server has stopped: meters the streams still being
    /// drained (from what they relayed), stores every queued usage row, gives back the spend
    /// leases, and removes this process's journal.
    pub async fn shut_down(&self) {
        self.drains.stop().await;
        self.meter.flush().await;
        self.budgets.release_idle(true).await;
        self.meter.close();
    }

    /// The calling thread's upstream client (built on its first use there).
    fn client(&self) -> client::Http {
        CLIENT.with_borrow_mut(|slot| match slot {
            Some((id, client)) if *id == self.id => client.clone(),
            _ => {
                let client = client::build(&self.settings);
                *slot = Some((self.id, client.clone()));
                client
            }
        })
    }
}
