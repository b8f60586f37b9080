//! The password hash threads (issue 18): at most `threads` argon2 computations at once, each
//! thread reusing one working buffer for its whole life, fed by a bounded queue.
//!
//! Contract:
//! - A job runs on one of these dedicated threads, never on the async executor nor on tokio's
//!   blocking pool (whose up to 512 threads would each take a fresh 19 MiB buffer per hash:
//!   64 logins at once halved the throughput and took gigabytes).
//! - When `queue` jobs already wait, [`HashWorkers::run`] fails at once with
//!   [`ServiceError::Busy`] (503 `server_busy` + `Retry-After`) instead of queueing more: a
//!   longer queue would only make every login slower than the client's patience.
//! - A job whose caller has gone (the client hung up) is skipped when its turn comes.
//! - The threads end when the last [`HashWorkers`] handle is dropped.

use super::argon::Memory;
use crate::ServiceError;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Queued jobs per thread when `hash_queue` is 0: with a standard hash at ~20 ms, the last one
/// in the queue waits about 0.2 s, whatever the number of cores.
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
    jobs: SyncSender<Job>,
    threads: usize,
    queue: usize,
}

impl std::fmt::Debug for HashWorkers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashWorkers")
            .field("threads", &self.threads)
            .field("queue", &self.queue)
            .finish()
    }
}

impl HashWorkers {
    /// Starts the threads. Their buffers are allocated by their first job.
    pub fn start(size: PoolSize) -> Result<Self, ServiceError> {
        let (threads, queue) = size.resolve();
        let (jobs, waiting) = sync_channel::<Job>(queue);
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
            threads,
            queue,
        })
    }

    /// Runs `job` on a hash thread with that thread's memory, and waits for its result.
    /// `ServiceError::Busy` when the queue is full.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Result<T, ServiceError> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            if !reply.is_closed() {
                let _ = reply.send(job(memory));
            }
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(ServiceError::Busy {
                    retry_after_secs: RETRY_AFTER_SECS,
                });
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(ServiceError::internal(anyhow::anyhow!(
                    "the password hash threads have stopped"
                )));
            }
        }
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
        // A panicking job must not take a thread away for good; its caller gets a 500. The
        // memory it left half-written is overwritten by the next hash.
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

    /// One thread, a queue of one: while a job runs and another waits, a third is refused
    /// at once; once they are done, jobs are accepted again.
    #[tokio::test]
    async fn a_full_queue_refuses_at_once_then_accepts_again() {
        let workers = HashWorkers::start(PoolSize {
            threads: 1,
            queue: 1,
        })
        .unwrap();
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let started = Arc::new(AtomicUsize::new(0));
        let blocking = |n: usize| {
            let (gate, started) = (gate.clone(), started.clone());
            move |_: &mut Memory| {
                started.fetch_add(1, Ordering::SeqCst);
                gate.lock().unwrap().recv().unwrap();
                n
            }
        };
        let first = tokio::spawn({
            let workers = workers.clone();
            let job = blocking(1);
            async move { workers.run(job).await }
        });
        while started.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let second = tokio::spawn({
            let workers = workers.clone();
            let job = blocking(2);
            async move { workers.run(job).await }
        });
        // (A current-thread runtime: the sleep lets the second task queue its job.)
        tokio::time::sleep(Duration::from_millis(20)).await;
        let third = tokio::time::timeout(Duration::from_secs(5), workers.run(|_| 3)).await;
        assert!(
            matches!(
                third,
                Ok(Err(ServiceError::Busy {
                    retry_after_secs: 1
                }))
            ),
            "{third:?}"
        );
        release.send(()).unwrap();
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), 1);
        assert_eq!(second.await.unwrap().unwrap(), 2);
        assert_eq!(workers.run(|_| 4).await.unwrap(), 4);
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone_and_the_thread_stays() {
        let workers = HashWorkers::start(PoolSize {
            threads: 1,
            queue: 1,
        })
        .unwrap();
        let failed = workers.run(|_| -> u8 { panic!("boom") }).await;
        assert!(
            matches!(failed, Err(ServiceError::Internal(_))),
            "{failed:?}"
        );
        assert_eq!(workers.run(|_| 7).await.unwrap(), 7);
    }
}
