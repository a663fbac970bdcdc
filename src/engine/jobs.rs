//! The job runner: CPU-heavy derived results (archetypes, patterns, mentoring plans,
//! team composition) run on a fixed pool of worker threads off the async runtime, behind
//! a bounded queue. A full queue refuses new work at once (`Error::Overloaded`) instead
//! of growing without bound; a job carries the caller's tracing span and a `Cancel` flag
//! it polls between steps; shutdown cancels everything queued or running.
//! Must never depend on tonic.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// Niceness of background computations when the operator asks for it (`--job-nice`):
/// the scheduler then gives request handling, the writer and health checks the CPU
/// first, and the jobs what is left (a nice-10 thread gets about a tenth of a core
/// against a busy nice-0 one, including other processes', so it is not the default: on
/// a shared machine a long computation could then outlast its callers' deadlines).
pub const RECOMMENDED_JOB_NICE: i32 = 10;

/// Sets the calling thread's niceness (Linux schedules threads, not processes, so this
/// affects this thread only); 0 leaves it as it is. A failure is logged, not fatal.
pub fn lower_priority(nice: i32) {
    if nice == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), nice) {
        tracing::debug!(error = %e, nice, "could not lower a background thread's priority");
    }
}

tokio::task_local! {
    /// Set (by the caches) around a refresh that no caller waits for: its jobs queue
    /// behind every job a caller waits for, and never take the last free worker.
    pub static BACKGROUND: bool;
}

/// How long a refused caller is told to wait before retrying.
const RETRY_AFTER: Duration = Duration::from_millis(500);

/// A flag a job polls between steps; set when no one needs its result any more.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag that is not set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the job to stop at its next check.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether the job was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// The flag itself, for pure code that polls an `AtomicBool`.
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }

    /// `Err(Error::Cancelled)` once the job was asked to stop.
    pub fn check(&self) -> Result<()> {
        match self.is_cancelled() {
            true => Err(Error::Cancelled),
            false => Ok(()),
        }
    }
}

/// Work waiting for a worker.
struct Task {
    run: Box<dyn FnOnce() + Send>,
    cancel: Cancel,
    /// A refresh no caller waits for (`BACKGROUND`).
    background: bool,
}

#[derive(Default)]
struct Queue {
    /// Jobs callers wait for, first come first served.
    tasks: VecDeque<Task>,
    /// Background refreshes: taken only when no caller's job waits, and by at most
    /// `Shared::background_limit` workers at a time.
    background: VecDeque<Task>,
    /// Background refreshes running now.
    background_running: usize,
    /// Flags of the jobs running now, so that shutdown can cancel them.
    running: Vec<Cancel>,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    capacity: usize,
    busy: AtomicUsize,
    /// Most background refreshes running at once: one worker fewer than the pool (at
    /// least one), so a caller's job always finds a worker soon.
    background_limit: usize,
}

impl Queue {
    /// The next task a worker may take: a caller's job first, else a background one if
    /// fewer than `limit` run.
    fn next(&mut self, limit: usize) -> Option<Task> {
        if let Some(task) = self.tasks.pop_front() {
            return Some(task);
        }
        if self.background_running < limit {
            let task = self.background.pop_front()?;
            self.background_running += 1;
            return Some(task);
        }
        None
    }

    fn queued(&self) -> usize {
        self.tasks.len() + self.background.len()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Tasks run outside the lock (and panics are caught), so a poisoned lock only
        // means a panic between two plain field updates: the queue is still coherent.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Load of the runner, for metrics and the overload benchmark.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunnerLoad {
    /// Jobs waiting for a worker.
    pub queued: usize,
    /// Jobs running.
    pub running: usize,
}

/// A fixed pool of worker threads with a bounded queue per class (callers' jobs,
/// background refreshes).
pub struct JobRunner {
    shared: Arc<Shared>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl JobRunner {
    /// Starts `workers` threads (at least one) that take jobs from a queue holding at most
    /// `capacity` waiting jobs, each at `nice` (see `lower_priority`).
    pub fn new(workers: usize, capacity: usize, nice: i32) -> Result<Self> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            capacity,
            busy: AtomicUsize::new(0),
            background_limit: workers.max(2) - 1,
        });
        let handles = (0..workers.max(1))
            .map(|i| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("capsight-job-{i}"))
                    .spawn(move || {
                        lower_priority(nice);
                        work(&shared)
                    })
                    .map_err(|e| Error::Internal(format!("cannot start job worker: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            shared,
            workers: Mutex::new(handles),
        })
    }

    /// A runner with one worker per core and a queue of eight jobs per worker, its
    /// workers and rayon's (which they use) at `nice`.
    pub fn with_core_count(nice: i32) -> Result<Self> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // Rayon's pool is global and built once per process; a later engine (tests) finds
        // it built and keeps it.
        let _ = rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("capsight-rayon-{i}"))
            .start_handler(move |_| lower_priority(nice))
            .build_global();
        Self::new(cores, cores * 8, nice)
    }

    /// Queues `job`; the receiver gets its result. Refused at once with
    /// `Error::Overloaded` when the queue is full, `Error::ShuttingDown` after shutdown.
    /// The job runs in the caller's tracing span; a panic in it becomes `Error::Internal`.
    pub fn submit<T: Send + 'static>(
        &self,
        cancel: Cancel,
        job: impl FnOnce(&Cancel) -> Result<T> + Send + 'static,
    ) -> Result<oneshot::Receiver<Result<T>>> {
        let (reply, result) = oneshot::channel();
        let span = tracing::Span::current();
        let flag = cancel.clone();
        let run = Box::new(move || {
            let _entered = span.enter();
            let outcome = match flag.check() {
                Err(e) => Err(e),
                Ok(()) => std::panic::catch_unwind(AssertUnwindSafe(|| job(&flag)))
                    .unwrap_or_else(|_| Err(Error::Internal("a job panicked".into()))),
            };
            // The caller may have left; the result is then dropped (caches keep theirs).
            let _ = reply.send(outcome);
        });
        let background = BACKGROUND.try_with(|b| *b).unwrap_or(false);
        let mut queue = self.shared.lock();
        if queue.closed {
            return Err(Error::ShuttingDown);
        }
        // Each class has its own bound: refreshes piling up never refuse a caller's job.
        let waiting = match background {
            true => queue.background.len(),
            false => queue.tasks.len(),
        };
        if waiting >= self.shared.capacity {
            return Err(Error::Overloaded {
                retry_after: RETRY_AFTER,
            });
        }
        let task = Task {
            run,
            cancel,
            background,
        };
        match background {
            true => queue.background.push_back(task),
            false => queue.tasks.push_back(task),
        }
        drop(queue);
        self.shared.ready.notify_one();
        Ok(result)
    }

    /// Queues `job` and waits for its result.
    pub async fn run<T: Send + 'static>(
        &self,
        cancel: Cancel,
        job: impl FnOnce(&Cancel) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.submit(cancel, job)?
            .await
            .map_err(|_| Error::ShuttingDown)?
    }

    /// How many jobs wait and run now.
    pub fn load(&self) -> RunnerLoad {
        RunnerLoad {
            queued: self.shared.lock().queued(),
            running: self.shared.busy.load(Ordering::Relaxed),
        }
    }

    /// Refuses new jobs, cancels every queued and running one, and lets the workers
    /// exit once their current job has seen its flag. Does not wait for them.
    pub fn shutdown(&self) {
        let mut queue = self.shared.lock();
        queue.closed = true;
        let q = &mut *queue;
        let queued: Vec<Task> = q.tasks.drain(..).chain(q.background.drain(..)).collect();
        for task in queued {
            task.cancel.cancel();
            // Running the cancelled task answers its caller with `Cancelled` at once.
            (task.run)();
        }
        for flag in &queue.running {
            flag.cancel();
        }
        drop(queue);
        self.shared.ready.notify_all();
        // Workers are detached: a job that ignores its flag must not hold up the exit.
        self.workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

impl Drop for JobRunner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A worker's loop: take a task, run it outside the lock, until the queue closes.
fn work(shared: &Shared) {
    loop {
        let mut queue = shared.lock();
        let task = loop {
            if let Some(task) = queue.next(shared.background_limit) {
                break task;
            }
            if queue.closed {
                return;
            }
            queue = shared.ready.wait(queue).unwrap_or_else(|e| e.into_inner());
        };
        queue.running.push(task.cancel.clone());
        metrics::gauge!("capsight_jobs_queued").set(queue.queued() as f64);
        drop(queue);
        shared.busy.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        (task.run)();
        metrics::histogram!("capsight_job_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        shared.busy.fetch_sub(1, Ordering::Relaxed);
        let mut queue = shared.lock();
        if let Some(at) = queue
            .running
            .iter()
            .position(|c| Arc::ptr_eq(&c.0, &task.cancel.0))
        {
            queue.running.swap_remove(at);
        }
        if task.background {
            queue.background_running -= 1;
            // A worker may be waiting for this slot.
            drop(queue);
            shared.ready.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[tokio::test]
    async fn background_refreshes_leave_a_worker_to_callers_and_queue_behind_them() {
        let runner = Arc::new(JobRunner::new(2, 16, 0).unwrap());
        let (release, hold) = mpsc::channel::<()>();
        let hold = Arc::new(Mutex::new(hold));
        let order = Arc::new(Mutex::new(Vec::new()));
        // Three background refreshes: one runs, two wait (one worker stays free).
        let mut background = Vec::new();
        for i in 0..3 {
            let (hold, order) = (Arc::clone(&hold), Arc::clone(&order));
            let rx = BACKGROUND
                .scope(true, async {
                    runner.submit(Cancel::new(), move |_| {
                        order.lock().unwrap().push(format!("background {i}"));
                        hold.lock().unwrap().recv().unwrap();
                        Ok(())
                    })
                })
                .await
                .unwrap();
            background.push(rx);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(runner.load().running, 1, "one background refresh at a time");
        // A caller's job runs at once on the free worker.
        let order2 = Arc::clone(&order);
        let answer = runner
            .run(Cancel::new(), move |_| {
                order2.lock().unwrap().push("caller".into());
                Ok(7)
            })
            .await
            .unwrap();
        assert_eq!(answer, 7);
        assert_eq!(
            order.lock().unwrap().as_slice(),
            ["background 0", "caller"],
            "the caller did not wait for the refreshes"
        );
        for _ in 0..3 {
            release.send(()).unwrap();
        }
        for rx in background {
            rx.await.unwrap().unwrap();
        }
        assert_eq!(
            order.lock().unwrap().len(),
            4,
            "every refresh ran in the end"
        );
    }

    #[tokio::test]
    async fn refreshes_piling_up_never_refuse_a_callers_job() {
        let runner = JobRunner::new(1, 2, 0).unwrap();
        let (release, hold) = mpsc::channel::<()>();
        let hold = Arc::new(Mutex::new(hold));
        // One refresh runs, two wait: the background queue is full.
        let mut background = Vec::new();
        for i in 0..3 {
            if i == 1 {
                // The first is taken by the worker before the others queue.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let hold = Arc::clone(&hold);
            background.push(
                BACKGROUND
                    .scope(true, async {
                        runner.submit(Cancel::new(), move |_| {
                            hold.lock().unwrap().recv().unwrap();
                            Ok(())
                        })
                    })
                    .await,
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let refused = BACKGROUND
            .scope(true, async { runner.submit(Cancel::new(), |_| Ok(())) })
            .await;
        assert!(
            matches!(refused, Err(Error::Overloaded { .. })),
            "{:?}",
            runner.load()
        );
        // A caller's job is still taken (and runs once the worker is free).
        let caller = runner.submit(Cancel::new(), |_| Ok(5)).unwrap();
        for _ in 0..3 {
            release.send(()).unwrap();
        }
        assert_eq!(caller.await.unwrap().unwrap(), 5);
        for b in background {
            b.unwrap().await.unwrap().unwrap();
        }
    }

    #[tokio::test]
    async fn a_job_runs_and_answers() {
        let runner = JobRunner::new(1, 1, 0).unwrap();
        assert_eq!(runner.run(Cancel::new(), |_| Ok(6 * 7)).await.unwrap(), 42);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_a_panic_is_an_error() {
        let runner = JobRunner::new(1, 1, 0).unwrap();
        let (release, hold) = mpsc::channel::<()>();
        let (started, running) = mpsc::channel::<()>();
        let first = runner
            .submit(Cancel::new(), move |_| {
                started.send(()).unwrap();
                hold.recv().unwrap();
                Ok(1)
            })
            .unwrap();
        running.recv().unwrap();
        let queued = runner.submit(Cancel::new(), |_| -> Result<i32> { panic!("boom") });
        let refused = runner.submit(Cancel::new(), |_| Ok(3));
        assert!(
            matches!(refused, Err(Error::Overloaded { .. })),
            "{:?}",
            runner.load()
        );
        assert_eq!(
            runner.load(),
            RunnerLoad {
                queued: 1,
                running: 1
            }
        );
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), 1);
        assert!(matches!(
            queued.unwrap().await.unwrap(),
            Err(Error::Internal(_))
        ));
    }

    #[tokio::test]
    async fn shutdown_cancels_running_and_queued_jobs() {
        let runner = JobRunner::new(1, 4, 0).unwrap();
        let (started, running) = mpsc::channel::<()>();
        let spinning = runner
            .submit(Cancel::new(), move |cancel| {
                started.send(()).unwrap();
                while !cancel.is_cancelled() {
                    std::thread::sleep(Duration::from_millis(1));
                }
                cancel.check().map(|()| 0)
            })
            .unwrap();
        let queued = runner.submit(Cancel::new(), |_| Ok(2)).unwrap();
        running.recv().unwrap();
        runner.shutdown();
        assert!(matches!(queued.await.unwrap(), Err(Error::Cancelled)));
        assert!(matches!(spinning.await.unwrap(), Err(Error::Cancelled)));
        assert!(matches!(
            runner.submit(Cancel::new(), |_| Ok(3)),
            Err(Error::ShuttingDown)
        ));
    }
}
