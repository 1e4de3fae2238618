//! A model-owning worker thread fed by a bounded job queue.
//!
//! Threading contract: encoder batches run only on the model's worker thread,
//! one at a time (candle parallelises inside a batch), never on the caller's
//! thread; a full queue is an `OVERLOADED` error, not a wait. Dropping the
//! worker lets queued jobs finish, then the thread exits (detached: nobody waits).
//! A job that panics is caught on the worker thread itself: its caller gets an
//! `INTERNAL` error and the thread goes on with the next job.

use crate::error::panic_message;
use crate::{EngineError, Result};
use crossbeam_channel::{Sender, TrySendError};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;

type Job<T> = Box<dyn FnOnce(&T) + Send>;

/// Runs jobs against a model of type `T` on a dedicated thread.
pub struct Worker<T: Send + Sync + 'static> {
    pub model: Arc<T>,
    name: String,
    tx: Option<Sender<Job<T>>>,
    queue_limit: usize,
    thread: Option<JoinHandle<()>>,
}

impl<T: Send + Sync + 'static> Worker<T> {
    /// Starts the worker thread.
    pub fn start(name: &str, model: T, queue_limit: usize) -> Result<Self> {
        let model = Arc::new(model);
        let (tx, rx) = crossbeam_channel::bounded::<Job<T>>(queue_limit);
        let m = model.clone();
        let thread = std::thread::Builder::new()
            .name(format!("candela-enc-{name}"))
            .spawn(move || {
                crate::kernels::pool::lower_priority();
                for job in rx.iter() {
                    // `submit` already turns a panic of the work into an error for its
                    // caller; this guard keeps the thread alive if the reply itself panics.
                    let _ = catch_unwind(AssertUnwindSafe(|| job(&m)));
                }
            })?;
        Ok(Self { model, name: name.to_string(), tx: Some(tx), queue_limit, thread: Some(thread) })
    }

    /// Queues `f`; `done` receives its result on the worker thread (an
    /// `INTERNAL` error if `f` panicked).
    pub fn submit<R: Send + 'static>(
        &self,
        f: impl FnOnce(&T) -> Result<R> + Send + 'static,
        done: impl FnOnce(Result<R>) + Send + 'static,
    ) -> Result<()> {
        let name = self.name.clone();
        let job: Job<T> = Box::new(move |m| {
            let r = catch_unwind(AssertUnwindSafe(|| f(m))).unwrap_or_else(|p| {
                Err(EngineError::Internal(format!("panic in encoder '{name}': {}", panic_message(p.as_ref()))))
            });
            done(r)
        });
        let tx = self.tx.as_ref().ok_or_else(|| EngineError::ModelNotFound(self.name.clone()))?;
        tx.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => EngineError::Overloaded {
                model: self.name.clone(),
                waiting: self.queue_limit,
                limit: self.queue_limit,
            },
            TrySendError::Disconnected(_) => EngineError::ModelNotFound(self.name.clone()),
        })
    }

    /// Runs `f` on the worker and waits for its result.
    pub fn run_blocking<R: Send + 'static>(&self, f: impl FnOnce(&T) -> Result<R> + Send + 'static) -> Result<R> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.submit(f, move |r| {
            let _ = tx.send(r);
        })?;
        rx.recv().map_err(|_| EngineError::Internal("encoder worker stopped".into()))?
    }
}

impl<T: Send + Sync + 'static> Drop for Worker<T> {
    fn drop(&mut self) {
        // Closing the queue ends the thread once queued jobs are done; the
        // thread is detached so an unload never waits for them.
        self.tx.take();
        self.thread.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_job_is_an_internal_error_and_the_worker_lives_on() {
        let w = Worker::start("t", 41u32, 4).unwrap();
        let e = w.run_blocking(|_| -> Result<u32> { panic!("boom") }).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::Internal);
        assert!(e.to_string().contains("boom"), "{e}");
        assert_eq!(w.run_blocking(|m| Ok(*m + 1)).unwrap(), 42);
    }
}
