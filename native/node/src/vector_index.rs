//! The scoped vector index (`candela_engine::index`) as a JS class, used by
//! the semantic cache and the document index. `search` runs on the calling
//! (JS) thread and reads the query in place: right for small scopes, where a
//! hop to another thread would cost more than the scan. `searchAsync` runs
//! the scan on libuv's thread pool so that a large scope (100k vectors take
//! several milliseconds) never stalls the event loop; writers wait for
//! in-flight scans through the lock.

use crate::convert::{coded_js_error, to_napi, Code};
use candela_engine::error::panic_message;
use candela_engine::{index, EngineError};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// One search result: an entry id and its cosine similarity to the query.
#[napi(object)]
pub struct IndexHit {
    pub id: String,
    pub score: f64,
}

/// Nearest-neighbour index over L2-normalised vectors, partitioned by scope.
#[napi]
pub struct VectorIndex {
    inner: Arc<RwLock<index::VectorIndex>>,
}

// A panic under the lock cannot leave the index half-updated in a way later
// calls trip over, so a poisoned lock is simply taken over.
fn read_lock(lock: &RwLock<index::VectorIndex>) -> RwLockReadGuard<'_, index::VectorIndex> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// A search on libuv's thread pool; rejects with the engine's error code.
pub struct SearchTask {
    index: Arc<RwLock<index::VectorIndex>>,
    scope: String,
    query: Vec<f32>,
    k: usize,
    min_score: Option<f32>,
    /// The engine code of a failed search, for `reject`.
    failed: Option<&'static str>,
}

impl Task for SearchTask {
    type Output = Vec<(String, f32)>;
    type JsValue = Vec<IndexHit>;

    fn compute(&mut self) -> Result<Self::Output> {
        let run = || read_lock(&self.index).search(&self.scope, &self.query, self.k, self.min_score);
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
            .unwrap_or_else(|p| Err(EngineError::Internal(format!("panic in the index: {}", panic_message(p.as_ref())))));
        out.map_err(|e| {
            self.failed = Some(e.code().as_str());
            Error::new(Status::GenericFailure, e.to_string())
        })
    }

    fn resolve(&mut self, _env: Env, hits: Self::Output) -> Result<Self::JsValue> {
        Ok(hits.into_iter().map(|(id, score)| IndexHit { id, score: score as f64 }).collect())
    }

    fn reject(&mut self, env: Env, err: Error) -> Result<Self::JsValue> {
        Err(coded_js_error(&env, self.failed.unwrap_or("INTERNAL"), &err.reason))
    }
}

#[napi]
impl VectorIndex {
    /// `scanThreads` bounds the threads a large scope's scan uses (default:
    /// available cores, at most 4; 1 = single-threaded).
    #[napi(constructor)]
    pub fn new(dim: u32, scan_threads: Option<u32>) -> Result<Self, Code> {
        let mut inner = index::VectorIndex::new(dim as usize).map_err(to_napi)?;
        inner.set_scan_threads(scan_threads.unwrap_or(0) as usize);
        Ok(Self { inner: Arc::new(RwLock::new(inner)) })
    }

    fn read(&self) -> RwLockReadGuard<'_, index::VectorIndex> {
        read_lock(&self.inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, index::VectorIndex> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    #[napi(getter)]
    pub fn dim(&self) -> u32 {
        self.read().dim() as u32
    }

    /// Entries in all scopes.
    #[napi(getter)]
    pub fn size(&self) -> u32 {
        self.read().len() as u32
    }

    /// Inserts or replaces `id` (moving it if it lives in another scope).
    #[napi(ts_args_type = "scope: string, id: string, vector: Float32Array")]
    pub fn upsert(&self, scope: String, id: String, vector: Float32ArraySlice) -> Result<(), Code> {
        self.write().upsert(&scope, &id, &vector).map_err(to_napi)
    }

    /// Removes `id` from whichever scope holds it. False if unknown.
    #[napi]
    pub fn remove(&self, id: String) -> bool {
        self.write().remove(&id)
    }

    /// Removes every entry of `scope`; returns how many there were.
    #[napi]
    pub fn remove_scope(&self, scope: String) -> u32 {
        self.write().remove_scope(&scope) as u32
    }

    /// Entries in `scope` (0 if unknown).
    #[napi]
    pub fn scope_size(&self, scope: String) -> u32 {
        self.read().scope_len(&scope) as u32
    }

    #[napi]
    pub fn clear(&self) {
        self.write().clear();
    }

    /// Approximate heap bytes held by the index.
    #[napi]
    pub fn memory_bytes(&self) -> f64 {
        self.read().memory_bytes() as f64
    }

    /// The `k` (1..=1000) entries of `scope` most similar to `vector`, best
    /// first, with score >= `minScore` when given.
    #[napi(ts_args_type = "scope: string, vector: Float32Array, k: number, minScore?: number | undefined | null")]
    pub fn search(&self, scope: String, vector: Float32ArraySlice, k: u32, min_score: Option<f64>) -> Result<Vec<IndexHit>, Code> {
        let hits = self.read().search(&scope, &vector, k as usize, min_score.map(|m| m as f32)).map_err(to_napi)?;
        Ok(hits.into_iter().map(|(id, score)| IndexHit { id, score: score as f64 }).collect())
    }

    /// `search` on libuv's thread pool (the query is copied): resolves with
    /// the same hits, rejects with the same error codes.
    #[napi(
        ts_args_type = "scope: string, vector: Float32Array, k: number, minScore?: number | undefined | null",
        ts_return_type = "Promise<Array<IndexHit>>"
    )]
    pub fn search_async(&self, scope: String, vector: Float32ArraySlice, k: u32, min_score: Option<f64>) -> AsyncTask<SearchTask> {
        AsyncTask::new(SearchTask {
            index: self.inner.clone(),
            scope,
            query: vector.to_vec(),
            k: k as usize,
            min_score: min_score.map(|m| m as f32),
            failed: None,
        })
    }
}
