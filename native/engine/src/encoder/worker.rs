//! A model-owning worker thread fed by a bounded job queue.
//!
//! Threading contract: encoder batches run only on the model's worker thread,
//! one at a time (candle parallelises inside a batch), never on the caller's
//! thread; a full queue is an `OVERLOADED` error, not a wait. Dropping the
//! worker lets queued jobs finish, then the thread exits (detached: nobody waits).

use crate::{EngineError, Result};
use crossbeam_channel::{Sender, TrySendError};
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
                    job(&m);
                }
            })?;
        Ok(Self { model, name: name.to_string(), tx: Some(tx), queue_limit, thread: Some(thread) })
    }

    /// Queues `f`; `done` receives its result on the worker thread.
    pub fn submit<R: Send + 'static>(
        &self,
        f: impl FnOnce(&T) -> R + Send + 'static,
        done: impl FnOnce(R) + Send + 'static,
    ) -> Result<()> {
        let job: Job<T> = Box::new(move |m| done(f(m)));
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
    pub fn run_blocking<R: Send + 'static>(&self, f: impl FnOnce(&T) -> R + Send + 'static) -> Result<R> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.submit(f, move |r| {
            let _ = tx.send(r);
        })?;
        rx.recv().map_err(|_| EngineError::Internal("encoder worker stopped".into()))
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
