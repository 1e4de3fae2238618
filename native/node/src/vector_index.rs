//! The semantic cache's scoped vector index (`candela_engine::index`) as a JS
//! class. Methods are synchronous: a search over 100k vectors takes a few
//! milliseconds, less than handing it to another thread and back would add.
//! Query vectors are read in place from the caller's Float32Array.

use crate::convert::{to_napi, Code};
use candela_engine::index;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// One search result: an entry id and its cosine similarity to the query.
#[napi(object)]
pub struct IndexHit {
    pub id: String,
    pub score: f64,
}

/// Nearest-neighbour index over L2-normalised vectors, partitioned by scope.
#[napi]
pub struct VectorIndex {
    inner: RwLock<index::VectorIndex>,
}

#[napi]
impl VectorIndex {
    /// `scanThreads` bounds the threads a large scope's scan uses (default:
    /// available cores, at most 4; 1 = single-threaded).
    #[napi(constructor)]
    pub fn new(dim: u32, scan_threads: Option<u32>) -> Result<Self, Code> {
        let mut inner = index::VectorIndex::new(dim as usize).map_err(to_napi)?;
        inner.set_scan_threads(scan_threads.unwrap_or(0) as usize);
        Ok(Self { inner: RwLock::new(inner) })
    }

    // A panic under the lock cannot leave the index half-updated in a way
    // later calls trip over, so a poisoned lock is simply taken over.
    fn read(&self) -> RwLockReadGuard<'_, index::VectorIndex> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
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
}
