//! Spend-cap admission (SPEC §5.2): before a capped call is forwarded, its worst-case charge is
//! reserved; when it ends, the reservation shrinks to the metered charge.
//!
//! Reservations are taken from *leases*: slices of a subject's monthly budget that this process
//! obtained from the database with one atomic grant (`repo::spend::grant`: granted only while
//! `spent + leased + grant ≤ cap`). Within a lease, admission is an in-memory subtraction: no
//! database round trip per request. What a lease does not use goes back to the database when
//! the lease has been idle for [`IDLE`] (or the process stops); a lease whose holder died lapses
//! after `proxy.reservation_ttl_seconds` and another replica returns its unspent part. So the
//! budget a replica holds is never lost for good, and never spent twice: see
//! `docs/spend-caps.md` for the argument.

use crate::{Clock, ServiceError};
use inventiv_domain::ErrorCode;
use inventiv_persistence::Db;
use inventiv_persistence::repo::spend::{self, Subject};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// A lease unused this long goes back to the database.
const IDLE: Duration = Duration::from_secs(2);
/// A lease is at most this many worst-case reservations (so one replica cannot hold a large
/// share of a cap another replica could use) …
const SLICE_RESERVATIONS: i64 = 1024;
/// … and at most this fraction of the cap.
const SLICE_OF_CAP: i64 = 10;

/// One lease held by this process.
#[derive(Debug, Clone)]
struct Held {
    id: uuid::Uuid,
    granted: i64,
    /// Reserved by calls in flight plus charged by calls that ended.
    committed: i64,
    /// Charged by calls that ended.
    consumed: i64,
    in_flight: u32,
    /// A newer lease replaced it: it is released as soon as nothing is in flight.
    retired: bool,
    last_used: Instant,
}

impl Held {
    fn free(&self) -> i64 {
        self.granted - self.committed
    }
}

type Key = (Subject, i32);

/// This process's leases, by (subject, month).
#[derive(Debug)]
pub struct Budgets {
    db: Db,
    /// Who holds the leases in the database: this process (a fresh id per start).
    holder: String,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    held: Mutex<HashMap<Key, Vec<Held>>>,
    /// Leases whose return failed (the database was away): tried again on every pass of
    /// [`Budgets::release_idle`]. Not left to lapse: this process keeps renewing every lease
    /// it holds in the database, so one it forgot would hold its budget until a restart.
    unreturned: Mutex<Vec<(Key, Held)>>,
}

/// A cap that applies to one call.
#[derive(Debug, Clone, Copy)]
pub struct Capped {
    pub subject: Subject,
    /// The cap as last read (it decides the lease size; the database re-reads it to grant).
    pub cap: i64,
}

/// What one call reserved, per capped subject. Settled with [`Reservation::settle`]; dropped
/// unsettled (the call failed, or its client went away before an answer), it reserves nothing
/// any more.
#[derive(Debug)]
pub struct Reservation {
    budgets: Option<Arc<Budgets>>,
    month: i32,
    amount: i64,
    parts: Vec<(Subject, uuid::Uuid)>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock leaves plain numbers behind, still consistent enough to
    // go on with; refusing every capped call from then on would be worse.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Budgets {
    pub fn new(db: Db, ttl: Duration, clock: Arc<dyn Clock>) -> Arc<Budgets> {
        Arc::new(Budgets {
            db,
            holder: format!("{}", uuid::Uuid::now_v7().simple()),
            ttl,
            clock,
            held: Mutex::new(HashMap::new()),
            unreturned: Mutex::new(Vec::new()),
        })
    }

    /// The month a call admitted now spends in.
    pub fn month(&self) -> i32 {
        spend::month_of(self.clock.now())
    }

    /// Reserves `amount` against every cap in `caps` (all or none): 402 `spend_cap_reached`
    /// when one of them cannot take it.
    pub async fn admit(
        self: &Arc<Self>,
        caps: &[Capped],
        amount: i64,
    ) -> Result<Reservation, ServiceError> {
        let month = self.month();
        let mut reservation = Reservation {
            budgets: Some(self.clone()),
            month,
            amount,
            parts: Vec::with_capacity(caps.len()),
        };
        for capped in caps {
            let lease = match self.take_local(capped.subject, month, amount) {
                Some(lease) => lease,
                None => self.take_new(*capped, month, amount).await?,
            };
            reservation.parts.push((capped.subject, lease));
        }
        Ok(reservation)
    }

    /// Reserves from a lease already held, if one has room.
    fn take_local(&self, subject: Subject, month: i32, amount: i64) -> Option<uuid::Uuid> {
        let mut held = lock(&self.held);
        let lease = held
            .get_mut(&(subject, month))?
            .iter_mut()
            .find(|l| !l.retired && l.free() >= amount)?;
        lease.committed += amount;
        lease.in_flight += 1;
        lease.last_used = Instant::now();
        Some(lease.id)
    }

    /// Obtains a new lease with room for `amount` (402 when the cap has none left).
    async fn take_new(
        &self,
        capped: Capped,
        month: i32,
        amount: i64,
    ) -> Result<uuid::Uuid, ServiceError> {
        let want = amount
            .saturating_mul(SLICE_RESERVATIONS)
            .min(capped.cap / SLICE_OF_CAP)
            .max(amount);
        let mut granted = self.grant(capped.subject, month, amount, want).await?;
        // Refused: this process's own idle leftovers may be what is missing. Give them back
        // and ask once more, rather than refuse a call the cap can still take.
        if granted.is_none() && self.release_unused(capped.subject, month).await {
            granted = self.grant(capped.subject, month, amount, want).await?;
        }
        let Some(lease) = granted else {
            return Err(ServiceError::PaymentRequired {
                code: ErrorCode::SpendCapReached,
                message: "This call could cost more than what is left of a monthly spend cap \
                          (of the share or of the API key). Lower max_tokens, or raise the cap."
                    .to_owned(),
            });
        };
        let mut held = lock(&self.held);
        let leases = held.entry((capped.subject, month)).or_default();
        // Older leases with less room than this call needed make way: released once idle.
        for old in leases.iter_mut() {
            if old.free() < amount {
                old.retired = true;
            }
        }
        leases.push(Held {
            id: lease.id,
            granted: lease.granted,
            committed: amount,
            consumed: 0,
            in_flight: 1,
            retired: false,
            last_used: Instant::now(),
        });
        Ok(lease.id)
    }

    async fn grant(
        &self,
        subject: Subject,
        month: i32,
        need: i64,
        want: i64,
    ) -> Result<Option<spend::Lease>, ServiceError> {
        let now = self.clock.now();
        Ok(spend::grant(
            &self.db,
            subject,
            month,
            &self.holder,
            (need, want),
            now,
            now + self.ttl,
        )
        .await?)
    }

    /// Returns the leases of (`subject`, `month`) with nothing in flight; whether there were any.
    async fn release_unused(&self, subject: Subject, month: i32) -> bool {
        let unused: Vec<Held> = {
            let mut held = lock(&self.held);
            let Some(leases) = held.get_mut(&(subject, month)) else {
                return false;
            };
            let (unused, busy): (Vec<Held>, Vec<Held>) =
                leases.drain(..).partition(|l| l.in_flight == 0);
            *leases = busy;
            unused
        };
        let any = !unused.is_empty();
        for lease in unused {
            self.give_back(subject, month, &lease).await;
        }
        any
    }

    async fn give_back(&self, subject: Subject, month: i32, lease: &Held) {
        let returned = lease.granted - lease.consumed;
        if let Err(err) = spend::release(
            &self.db,
            lease.id,
            subject,
            month,
            returned,
            self.clock.now(),
        )
        .await
        {
            // Tried again on the next pass (a release is conditional: never returned twice).
            tracing::warn!(error = %err, "returning a spend lease failed; trying again");
            lock(&self.unreturned).push(((subject, month), lease.clone()));
        }
    }

    /// Ends one call's reservation on `lease`: `charged` (≤ the reservation) stays committed.
    fn settle_part(
        &self,
        subject: Subject,
        month: i32,
        lease: uuid::Uuid,
        reserved: i64,
        charged: i64,
    ) {
        let mut held = lock(&self.held);
        if let Some(held) = held
            .get_mut(&(subject, month))
            .and_then(|leases| leases.iter_mut().find(|l| l.id == lease))
        {
            held.committed -= reserved - charged;
            held.consumed += charged;
            held.in_flight = held.in_flight.saturating_sub(1);
            held.last_used = Instant::now();
        }
    }

    /// Gives back the leases that are idle (or retired and drained), or all of them when
    /// `everything` (shutdown: after the last usage row was handed to the writer).
    pub async fn release_idle(&self, everything: bool) {
        let retry = std::mem::take(&mut *lock(&self.unreturned));
        for ((subject, month), lease) in retry {
            self.give_back(subject, month, &lease).await;
        }
        let done: Vec<(Key, Held)> = {
            let mut held = lock(&self.held);
            let mut done = Vec::new();
            for (key, leases) in held.iter_mut() {
                let mut i = 0;
                while i < leases.len() {
                    let l = &leases[i];
                    let idle = l.in_flight == 0 && (l.retired || l.last_used.elapsed() >= IDLE);
                    if everything || idle {
                        done.push((*key, leases.swap_remove(i)));
                    } else {
                        i += 1;
                    }
                }
            }
            held.retain(|_, leases| !leases.is_empty());
            done
        };
        for ((subject, month), lease) in done {
            self.give_back(subject, month, &lease).await;
        }
    }

    /// Renews this process's leases and returns those of dead replicas, until `budgets` is gone.
    pub async fn maintain(budgets: Weak<Budgets>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_renewal = Instant::now();
        loop {
            tick.tick().await;
            let Some(b) = budgets.upgrade() else { return };
            b.release_idle(false).await;
            if last_renewal.elapsed() >= b.ttl / 4 {
                last_renewal = Instant::now();
                let now = b.clock.now();
                if let Err(err) = spend::renew(&b.db, &b.holder, now + b.ttl).await {
                    tracing::warn!(error = %err, "renewing spend leases failed");
                }
                match spend::sweep_lapsed(&b.db, now).await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(
                        leases = n,
                        "returned the budget of lapsed spend leases (a replica died)"
                    ),
                    Err(err) => tracing::warn!(error = %err, "sweeping lapsed spend leases failed"),
                }
            }
        }
    }
}

impl Reservation {
    /// No cap applies to the call.
    pub fn none() -> Reservation {
        Reservation {
            budgets: None,
            month: 0,
            amount: 0,
            parts: Vec::new(),
        }
    }

    /// The month the call spends in (its admission's).
    pub fn month(&self) -> Option<i32> {
        self.budgets.as_ref().map(|_| self.month)
    }

    /// The most the call may be charged (None: uncapped).
    pub fn limit(&self) -> Option<i64> {
        self.budgets.as_ref().map(|_| self.amount)
    }

    /// The lease the reservation against `subject` came from.
    pub fn lease_of(&self, subject: Subject) -> Option<uuid::Uuid> {
        self.parts
            .iter()
            .find(|(s, _)| *s == subject)
            .map(|(_, l)| *l)
    }

    /// The call ended charging `charged` (clamped to the reservation by the caller).
    pub fn settle(mut self, charged: i64) {
        self.finish(charged.clamp(0, self.amount));
    }

    fn finish(&mut self, charged: i64) {
        if let Some(budgets) = self.budgets.take() {
            for (subject, lease) in self.parts.drain(..) {
                budgets.settle_part(subject, self.month, lease, self.amount, charged);
            }
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.finish(0);
    }
}
