//! The password hash threads (issue 18): at most `threads` argon2 computations at once, each
//! thread reusing one working buffer for its whole life, and at most `queue` more waiting.
//!
//! Contract:
//! - A job runs on one of these dedicated threads, never on the async executor nor on tokio's
//!   blocking pool (whose up to 512 threads would each take a fresh 19 MiB buffer per hash:
//!   64 logins at once halved the throughput and took gigabytes).
//! - A job needs a [`Place`], taken by [`HashWorkers::reserve`] and given back when the job is
//!   done (or the place is dropped unused). Beyond `threads + queue` places, `reserve` fails at
//!   once with [`ServiceError::Busy`] (503 `server_busy` + `Retry-After`) instead of queueing
//!   more: a longer queue would only make every login slower than the client's patience. A
//!   login reserves first, so that a refusal costs no database round trip.
//! - A job whose caller has gone (the client hung up) is skipped when its turn comes.
//! - The threads end when the last handle (a [`HashWorkers`] or a [`Place`]) is dropped.

use super::argon::Memory;
use crate::ServiceError;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Queued jobs per thread when `hash_queue` is 0: with a standard hash at ~15 ms, the last one
/// in the queue waits about 0.1 s, whatever the number of cores.
const QUEUE_PER_THREAD: usize = 8;

/// What a busy server asks the client to wait, in seconds.
const RETRY_AFTER_SECS: u64 = 1;

/// How many hash threads, and how many jobs may wait for them (`[auth] hash_threads` and
/// `hash_queue`; 0 = the default of each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolSize {
    /// 0 = one per core (`std::thread::available_parallelism`).
    pub threads: usize,
    /// 0 = 8 per thread.
    pub queue: usize,
}

impl PoolSize {
    /// The sizes with the defaults applied: (threads, queue).
    pub fn resolve(self) -> (usize, usize) {
        let threads = match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let queue = match self.queue {
            0 => QUEUE_PER_THREAD * threads,
            n => n,
        };
        (threads, queue)
    }
}

type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// A handle on the hash threads. Cheap to clone.
#[derive(Clone)]
pub struct HashWorkers {
    jobs: Sender<Job>,
    /// Places taken: jobs running, waiting, or about to be submitted.
    taken: Arc<AtomicUsize>,
    threads: usize,
    queue: usize,
}

impl std::fmt::Debug for HashWorkers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashWorkers")
            .field("threads", &self.threads)
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}

/// The right to run one job: one of the `threads + queue` places, given back on drop.
pub struct Place {
    jobs: Sender<Job>,
    taken: Arc<AtomicUsize>,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.taken.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HashWorkers {
    /// Starts the threads. Their buffers are allocated by their first job.
    pub fn start(size: PoolSize) -> Result<Self, ServiceError> {
        let (threads, queue) = size.resolve();
        let (jobs, waiting) = channel::<Job>();
        let waiting = Arc::new(Mutex::new(waiting));
        for i in 0..threads {
            let waiting = waiting.clone();
            std::thread::Builder::new()
                .name(format!("password-hash-{i}"))
                .spawn(move || work(&waiting))
                .map_err(ServiceError::internal)?;
        }
        Ok(Self {
            jobs,
            taken: Arc::new(AtomicUsize::new(0)),
            threads,
            queue,
        })
    }

    /// Takes a place for one job; `ServiceError::Busy` when all `threads + queue` are taken.
    pub fn reserve(&self) -> Result<Place, ServiceError> {
        let places = self.threads + self.queue;
        self.taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
                (taken < places).then_some(taken + 1)
            })
            .map_err(|_| ServiceError::Busy {
                retry_after_secs: RETRY_AFTER_SECS,
            })?;
        Ok(Place {
            jobs: self.jobs.clone(),
            taken: self.taken.clone(),
        })
    }
}

impl Place {
    /// Runs `job` on a hash thread with that thread's memory, and waits for its result. The
    /// place is given back once the job is done.
    pub async fn run<T: Send + 'static>(
        self,
        job: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Result<T, ServiceError> {
        let (reply, answer) = oneshot::channel();
        let jobs = self.jobs.clone();
        let place = self;
        let job: Job = Box::new(move |memory| {
            let result = (!reply.is_closed()).then(|| job(memory));
            // Given back before the answer, so the caller's next `reserve` finds it.
            drop(place);
            if let Some(result) = result {
                let _ = reply.send(result);
            }
        });
        jobs.send(job).map_err(|_| {
            ServiceError::internal(anyhow::anyhow!("the password hash threads have stopped"))
        })?;
        answer
            .await
            .map_err(|_| ServiceError::internal(anyhow::anyhow!("a password hash job panicked")))
    }
}

/// A hash thread: takes the next job, runs it with this thread's memory, until every handle
/// is dropped.
fn work(waiting: &Mutex<Receiver<Job>>) {
    let mut memory = Memory::default();
    loop {
        // One idle thread waits on the channel while holding the lock, the others on the lock;
        // the lock is released before the job runs.
        let next = match waiting.lock() {
            Ok(jobs) => jobs.recv(),
            Err(_) => return,
        };
        let Ok(job) = next else {
            return;
        };
        // A panicking job must not take a thread away for good; its caller gets a 500 and its
        // place is given back. The memory it left half-written is overwritten by the next hash.
        if catch_unwind(AssertUnwindSafe(|| job(&mut memory))).is_err() {
            tracing::error!("a password hash job panicked");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn zero_means_the_defaults() {
        let cores = std::thread::available_parallelism().unwrap().get();
        let size = PoolSize {
            threads: 0,
            queue: 0,
        };
        assert_eq!(size.resolve(), (cores, 8 * cores));
        let size = PoolSize {
            threads: 3,
            queue: 5,
        };
        assert_eq!(size.resolve(), (3, 5));
    }

    fn one_thread_one_waiting() -> HashWorkers {
        HashWorkers::start(PoolSize {
            threads: 1,
            queue: 1,
        })
        .unwrap()
    }

    fn is_busy(reserved: Result<Place, ServiceError>) -> bool {
        matches!(
            reserved,
            Err(ServiceError::Busy {
                retry_after_secs: 1
            })
        )
    }

    /// One thread and one waiting place: two places, a third is refused at once; a place
    /// comes back when it is dropped unused, or when its job is done.
    #[tokio::test]
    async fn places_are_bounded_and_come_back() {
        let workers = one_thread_one_waiting();
        let first = workers.reserve().unwrap();
        let second = workers.reserve().unwrap();
        assert!(is_busy(workers.reserve()));
        drop(second);
        let second = workers.reserve().unwrap();
        assert!(is_busy(workers.reserve()));
        assert_eq!(first.run(|_| 1).await.unwrap(), 1);
        assert_eq!(second.run(|_| 2).await.unwrap(), 2);
        let (a, b) = (workers.reserve().unwrap(), workers.reserve().unwrap());
        assert!(is_busy(workers.reserve()));
        drop((a, b));
    }

    /// A job holds its place until it is done, not until its caller stops waiting.
    #[tokio::test]
    async fn a_running_job_holds_its_place() {
        let workers = one_thread_one_waiting();
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let started = Arc::new(AtomicUsize::new(0));
        let job = {
            let started = started.clone();
            move |_: &mut Memory| {
                started.fetch_add(1, Ordering::SeqCst);
                gate.recv().unwrap();
            }
        };
        let place = workers.reserve().unwrap();
        let running = tokio::spawn(place.run(job));
        while started.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        running.abort();
        let waiting = workers.reserve().unwrap();
        assert!(is_busy(workers.reserve()), "the running job's place");
        release.send(()).unwrap();
        assert_eq!(waiting.run(|_| 3).await.unwrap(), 3);
        drop((workers.reserve().unwrap(), workers.reserve().unwrap()));
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone_and_the_thread_stays() {
        let workers = one_thread_one_waiting();
        let failed = workers
            .reserve()
            .unwrap()
            .run(|_| -> u8 { panic!("boom") })
            .await;
        assert!(
            matches!(failed, Err(ServiceError::Internal(_))),
            "{failed:?}"
        );
        assert_eq!(workers.reserve().unwrap().run(|_| 7).await.unwrap(), 7);
        drop((workers.reserve().unwrap(), workers.reserve().unwrap()));
    }
}
