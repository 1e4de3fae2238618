//! A persistent worker pool for data-parallel loops (`for i in 0..n`), with
//! the calling thread taking part.
//!
//! Threading contract: one job runs at a time. [`ThreadPool::run`] publishes
//! the job, claims task indices from a shared counter alongside the workers,
//! and returns only when every claimed task has finished and no worker can
//! still read the job. A caller that finds the pool busy (another model's
//! engine thread) runs its tasks alone rather than waiting. Workers spin
//! briefly between jobs (a forward pass issues hundreds of short jobs), then
//! yield, then sleep on a condition variable, so an idle engine costs no CPU.
//! A panic in a task is caught, the job is finished, and the panic resumes on
//! the calling thread.

use parking_lot::{Condvar, Mutex};
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle worker polls before it yields, and before it sleeps.
const SPIN: Duration = Duration::from_micros(50);
const YIELD: Duration = Duration::from_micros(500);

type Task<'a> = dyn Fn(usize) + Sync + 'a;

struct Shared {
    /// The current job, valid while `open`; a `&'static Task` only in name (see `run`).
    job: Mutex<Option<&'static Task<'static>>>,
    generation: AtomicU64,
    open: AtomicBool,
    next: AtomicUsize,
    tasks: AtomicUsize,
    /// Workers currently inside a job.
    inside: AtomicUsize,
    sleeping: Mutex<usize>,
    wake: Condvar,
    shutdown: AtomicBool,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

/// Niceness of the engine's compute threads: one step below the server's
/// event loop, so a probe or a new request is scheduled at once even while
/// every core runs kernels (CFS gives a nice-0 thread about 1.25× the
/// share of a nice-1 one per step of niceness; with nothing else runnable
/// the compute threads lose nothing).
pub const COMPUTE_NICE: i32 = 2;

/// Lowers the calling thread's scheduling priority to [`COMPUTE_NICE`]
/// (Linux: niceness is per thread). Best effort: failure changes nothing else.
pub fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority have no memory effects; a failure only leaves the priority as it was.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, COMPUTE_NICE);
    }
}

/// A fixed set of worker threads plus the caller.
pub struct ThreadPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    busy: Mutex<()>,
    threads: usize,
}

impl ThreadPool {
    /// A pool that runs jobs on `threads` threads in all: the caller and `threads - 1` workers.
    pub fn new(threads: usize) -> Self {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            job: Mutex::new(None),
            generation: AtomicU64::new(0),
            open: AtomicBool::new(false),
            next: AtomicUsize::new(0),
            tasks: AtomicUsize::new(0),
            inside: AtomicUsize::new(0),
            sleeping: Mutex::new(0),
            wake: Condvar::new(),
            shutdown: AtomicBool::new(false),
            panic: Mutex::new(None),
        });
        let workers = (1..threads)
            .map(|i| {
                let s = shared.clone();
                std::thread::Builder::new()
                    .name(format!("candela-kernel-{i}"))
                    .spawn(move || {
                        lower_priority();
                        worker(&s)
                    })
                    .expect("spawn kernel worker")
            })
            .collect();
        Self { shared, workers, busy: Mutex::new(()), threads }
    }

    /// Threads a job runs on (caller included).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f(i)` for every `i` in `0..n`, in parallel; returns when all are done.
    pub fn run(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        if n == 0 {
            return;
        }
        let guard = if self.threads > 1 && n > 1 { self.busy.try_lock() } else { None };
        let Some(_guard) = guard else {
            (0..n).for_each(f);
            return;
        };
        let s = &*self.shared;
        // SAFETY: the reference is erased to 'static only while it is published.
        // Workers read it only between incrementing `inside` and seeing `open`,
        // and this function does not return before `open` is false and `inside`
        // is zero, so no worker can use it after `f` goes out of scope.
        let job: &'static Task<'static> = unsafe { std::mem::transmute::<&Task<'_>, &'static Task<'static>>(f) };
        *s.job.lock() = Some(job);
        s.tasks.store(n, SeqCst);
        s.next.store(0, SeqCst);
        s.open.store(true, SeqCst);
        s.generation.fetch_add(1, SeqCst);
        if *s.sleeping.lock() > 0 {
            s.wake.notify_all();
        }
        let mine = catch_unwind(AssertUnwindSafe(|| claim(s, f)));
        s.open.store(false, SeqCst);
        while s.inside.load(SeqCst) != 0 {
            std::hint::spin_loop();
        }
        *s.job.lock() = None;
        if let Err(p) = mine {
            std::panic::resume_unwind(p);
        }
        if let Some(p) = s.panic.lock().take() {
            std::panic::resume_unwind(p);
        }
    }
}

static THREADS: AtomicUsize = AtomicUsize::new(0);
static GLOBAL: std::sync::OnceLock<Arc<ThreadPool>> = std::sync::OnceLock::new();

/// Sets how many threads the engine's pool runs (0: the default, see
/// [`default_threads`]). Must be called before the first model loads; once the
/// pool exists, asking for a different size is an error.
pub fn configure(threads: usize) -> Result<(), String> {
    let want = if threads == 0 { default_threads() } else { threads };
    if let Some(p) = GLOBAL.get() {
        return if p.threads() == want { Ok(()) } else { Err(format!("the kernel pool already runs {} threads", p.threads())) };
    }
    THREADS.store(want, SeqCst);
    Ok(())
}

/// The engine's one pool, shared by every model (created on first use).
pub fn global() -> Arc<ThreadPool> {
    GLOBAL
        .get_or_init(|| {
            let n = match THREADS.load(SeqCst) {
                0 => default_threads(),
                n => n,
            };
            Arc::new(ThreadPool::new(n))
        })
        .clone()
}

/// Physical cores this process may use: the CPUs it may run on, divided by
/// the hardware threads per core (a second hyper-thread adds little to
/// integer SIMD work and costs the event loop its core).
pub fn default_threads() -> usize {
    let logical = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut cores = std::collections::HashSet::new();
    let mut cpus = 0usize;
    if let Ok(dir) = std::fs::read_dir("/sys/devices/system/cpu") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !name.starts_with("cpu") || !name[3..].chars().all(|c| c.is_ascii_digit()) || name.len() == 3 {
                continue;
            }
            let read = |f: &str| std::fs::read_to_string(e.path().join("topology").join(f)).ok().map(|s| s.trim().to_string());
            if let (Some(pkg), Some(core)) = (read("physical_package_id"), read("core_id")) {
                cores.insert((pkg, core));
                cpus += 1;
            }
        }
    }
    let per_core = if cores.is_empty() { 1 } else { (cpus / cores.len()).max(1) };
    (logical / per_core).max(1)
}

fn claim(s: &Shared, f: &Task<'_>) {
    let n = s.tasks.load(SeqCst);
    loop {
        let i = s.next.fetch_add(1, SeqCst);
        if i >= n {
            break;
        }
        f(i);
    }
}

fn worker(s: &Shared) {
    let mut seen = 0u64;
    loop {
        // Wait for a new generation: spin, then yield, then sleep. The clock
        // is read every 64 polls, not on each (a clock read costs more than a poll).
        let idle_since = Instant::now();
        let mut polls = 0u32;
        let mut idle = Duration::ZERO;
        loop {
            if s.shutdown.load(Acquire) {
                return;
            }
            if s.generation.load(Acquire) != seen {
                break;
            }
            polls = polls.wrapping_add(1);
            if polls.is_multiple_of(64) {
                idle = idle_since.elapsed();
            }
            if idle < SPIN {
                std::hint::spin_loop();
            } else if idle < YIELD {
                std::thread::yield_now();
            } else {
                let mut sleeping = s.sleeping.lock();
                *sleeping += 1;
                while s.generation.load(Acquire) == seen && !s.shutdown.load(Acquire) {
                    s.wake.wait_for(&mut sleeping, Duration::from_millis(100));
                }
                *sleeping -= 1;
            }
        }
        seen = s.generation.load(Acquire);
        s.inside.fetch_add(1, SeqCst);
        if s.open.load(SeqCst) {
            let job = *s.job.lock();
            if let Some(job) = job {
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| claim(s, job))) {
                    // Stop handing out tasks; the caller re-raises the panic.
                    s.next.store(usize::MAX / 2, SeqCst);
                    *s.panic.lock() = Some(p);
                }
            }
        }
        s.inside.fetch_sub(1, SeqCst);
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Release);
        self.shared.wake.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_once() {
        let pool = ThreadPool::new(3);
        for n in [1usize, 2, 7, 100, 1000] {
            let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            pool.run(n, &|i| {
                hits[i].fetch_add(1, Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Relaxed) == 1), "n = {n}");
        }
    }

    #[test]
    fn a_panicking_task_reaches_the_caller_and_the_pool_lives_on() {
        let pool = ThreadPool::new(2);
        let r = catch_unwind(AssertUnwindSafe(|| pool.run(64, &|i| assert!(i != 40, "task 40 fails"))));
        assert!(r.is_err());
        let count = AtomicUsize::new(0);
        pool.run(10, &|_| {
            count.fetch_add(1, Relaxed);
        });
        assert_eq!(count.load(Relaxed), 10);
    }

    #[test]
    fn concurrent_callers_both_finish() {
        let pool = Arc::new(ThreadPool::new(2));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    let sum = AtomicUsize::new(0);
                    for _ in 0..200 {
                        pool.run(16, &|i| {
                            sum.fetch_add(i, Relaxed);
                        });
                    }
                    sum.load(Relaxed)
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), 200 * 120);
        }
    }

    #[test]
    fn sleeping_workers_wake_for_new_jobs() {
        let pool = ThreadPool::new(2);
        std::thread::sleep(Duration::from_millis(5));
        let count = AtomicUsize::new(0);
        pool.run(8, &|_| {
            count.fetch_add(1, Relaxed);
        });
        assert_eq!(count.load(Relaxed), 8);
    }
}
