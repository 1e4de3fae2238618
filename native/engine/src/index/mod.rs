//! A scoped nearest-neighbour index for the semantic cache: cosine
//! similarity (dot product of L2-normalised vectors) over entries that each
//! have an id, a scope and a vector. A search only ever looks inside one
//! scope, so scopes isolate cache entries (model, parameters, tenant...).
//!
//! Search is a brute-force scan, exact where it matters: every vector is
//! also kept as int8 codes (per-vector symmetric scale, max|x| / 127), the
//! scan ranks a scope's codes by an i32 dot product with the quantised
//! query (4x less memory traffic than f32, vectorised by LLVM), and the best
//! `max(4k, 32)` candidates are rescored in f32 against the original
//! vectors. Results therefore equal brute force unless the true best falls
//! outside the candidate pool, which int8 error (under 2e-3 on a score at
//! dim 384) makes vanishingly rare. Large scopes split the scan across
//! threads.
//!
//! Writes take `&mut self`; the binding wraps the index in an `RwLock` so
//! that searches share it.

use crate::{EngineError, Result};
use std::cmp::Ordering;
use std::collections::HashMap;
use std::mem::size_of;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::Arc;

/// Largest `k` a search accepts.
pub const MAX_K: usize = 1000;
/// Largest dimension: keeps the i32 accumulator (127² per term) from overflowing.
pub const MAX_DIM: usize = 65_536;
/// Smallest candidate pool rescored in f32.
const MIN_CANDIDATES: usize = 32;
/// Scopes at least this large are scanned on several threads. On 2 idle
/// cores two threads are 1.6x faster at 20,000 vectors and 1.8x at 100,000
/// (break-even near 5,000); when the other core is busy they are no faster
/// and add up to a time slice to the tail, so smaller scans stay on one.
const PARALLEL_MIN: usize = 20_000;
/// Slots a scan worker claims at a time (768 KiB of codes at dim 384).
const SCAN_BLOCK: usize = 2_048;
/// Upper bound on scan threads.
const MAX_SCAN_THREADS: usize = 4;

/// One scope's entries, stored by slot; removal swaps the last slot in.
/// Ids are shared (`Arc<str>`) with `slots` and the index's `scope_of`.
#[derive(Default)]
struct Partition {
    ids: Vec<Arc<str>>,
    /// id → slot.
    slots: HashMap<Arc<str>, usize>,
    /// int8 codes, `dim` per slot.
    codes: Vec<i8>,
    /// Per-slot dequantisation scale (max|x| / 127).
    scales: Vec<f32>,
    /// The original vectors, `dim` per slot, for exact rescoring.
    vectors: Vec<f32>,
}

impl Partition {
    fn len(&self) -> usize {
        self.ids.len()
    }

    fn push(&mut self, id: Arc<str>, vector: &[f32], dim: usize) {
        let slot = self.ids.len();
        if slot == self.scales.capacity() {
            // Grow by an eighth: Vec's doubling can leave 190 MB unused at
            // 100k vectors. Large buffers grow in place (mremap), so this
            // costs little.
            let extra = (slot / 8).max(16);
            self.ids.reserve_exact(extra);
            self.scales.reserve_exact(extra);
            self.codes.reserve_exact(extra * dim);
            self.vectors.reserve_exact(extra * dim);
        }
        self.codes.resize((slot + 1) * dim, 0);
        let scale = quantize(vector, &mut self.codes[slot * dim..]);
        self.scales.push(scale);
        self.vectors.extend_from_slice(vector);
        self.slots.insert(id.clone(), slot);
        self.ids.push(id);
    }

    fn overwrite(&mut self, slot: usize, vector: &[f32], dim: usize) {
        let range = slot * dim..(slot + 1) * dim;
        self.scales[slot] = quantize(vector, &mut self.codes[range.clone()]);
        self.vectors[range].copy_from_slice(vector);
    }

    /// Removes `id` by moving the last slot into its place.
    fn swap_remove(&mut self, id: &str, dim: usize) -> bool {
        let Some(slot) = self.slots.remove(id) else { return false };
        let last = self.ids.len() - 1;
        if slot != last {
            self.codes.copy_within(last * dim..(last + 1) * dim, slot * dim);
            self.vectors.copy_within(last * dim..(last + 1) * dim, slot * dim);
            self.slots.insert(self.ids[last].clone(), slot);
        }
        self.ids.swap_remove(slot);
        self.scales.swap_remove(slot);
        self.codes.truncate(last * dim);
        self.vectors.truncate(last * dim);
        // Give memory back once a scope has shrunk to a quarter of its peak.
        if self.scales.capacity() > 64 && self.scales.len() * 4 < self.scales.capacity() {
            let keep = self.scales.len() * 2;
            self.ids.shrink_to(keep);
            self.scales.shrink_to(keep);
            self.codes.shrink_to(keep * dim);
            self.vectors.shrink_to(keep * dim);
            self.slots.shrink_to(keep);
        }
        true
    }

    fn memory_bytes(&self) -> usize {
        self.codes.capacity()
            + self.scales.capacity() * size_of::<f32>()
            + self.vectors.capacity() * size_of::<f32>()
            + self.ids.capacity() * size_of::<Arc<str>>()
            + self.ids.iter().map(|id| id.len() + 2 * size_of::<usize>()).sum::<usize>() // shared id strings
            + map_bytes(&self.slots)
    }
}

/// A scoped vector index (see the module docs).
pub struct VectorIndex {
    dim: usize,
    partitions: HashMap<Arc<str>, Partition>,
    /// id → scope of every entry.
    scope_of: HashMap<Arc<str>, Arc<str>>,
    scan_threads: usize,
}

impl VectorIndex {
    /// An empty index of `dim`-dimensional vectors.
    pub fn new(dim: usize) -> Result<Self> {
        if dim == 0 || dim > MAX_DIM {
            return Err(EngineError::invalid(format!("vector dimension must be 1..={MAX_DIM}, got {dim}")));
        }
        Ok(Self { dim, partitions: HashMap::new(), scope_of: HashMap::new(), scan_threads: default_scan_threads() })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Threads a large scope's scan may use; 0 picks the default (the
    /// available parallelism, at most 4). 1 keeps every scan on the caller.
    pub fn set_scan_threads(&mut self, threads: usize) {
        self.scan_threads = if threads == 0 { default_scan_threads() } else { threads.min(64) };
    }

    pub fn scan_threads(&self) -> usize {
        self.scan_threads
    }

    /// Inserts or replaces `id`; an id that lives in another scope moves.
    pub fn upsert(&mut self, scope: &str, id: &str, vector: &[f32]) -> Result<()> {
        if id.is_empty() {
            return Err(EngineError::invalid("entry id must not be empty"));
        }
        self.check_vector(vector, "vector")?;
        let dim = self.dim;
        match self.scope_of.get(id) {
            Some(current) if &**current == scope => {
                let p = self.partitions.get_mut(scope).expect("scope of a known id exists");
                let slot = p.slots[id];
                p.overwrite(slot, vector, dim);
                return Ok(());
            }
            Some(_) => {
                self.remove(id);
            }
            None => {}
        }
        let scope: Arc<str> = match self.partitions.get_key_value(scope) {
            Some((key, _)) => key.clone(),
            None => scope.into(),
        };
        let id: Arc<str> = id.into();
        self.partitions.entry(scope.clone()).or_default().push(id.clone(), vector, dim);
        self.scope_of.insert(id, scope);
        Ok(())
    }

    /// Removes `id` from whichever scope holds it. False if unknown.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(scope) = self.scope_of.remove(id) else { return false };
        let p = self.partitions.get_mut(&scope).expect("scope of a known id exists");
        p.swap_remove(id, self.dim);
        if p.len() == 0 {
            self.partitions.remove(&scope);
        }
        true
    }

    /// Removes every entry of `scope`; returns how many there were.
    pub fn remove_scope(&mut self, scope: &str) -> usize {
        let Some(p) = self.partitions.remove(scope) else { return 0 };
        for id in &p.ids {
            self.scope_of.remove(&**id);
        }
        p.len()
    }

    pub fn clear(&mut self) {
        self.partitions.clear();
        self.scope_of.clear();
    }

    /// Entries in all scopes.
    pub fn len(&self) -> usize {
        self.scope_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scope_of.is_empty()
    }

    /// Entries in `scope` (0 if unknown).
    pub fn scope_len(&self, scope: &str) -> usize {
        self.partitions.get(scope).map_or(0, Partition::len)
    }

    /// Heap bytes held (vectors, codes, ids and maps; map overhead estimated).
    pub fn memory_bytes(&self) -> usize {
        let scopes: usize = self.partitions.iter().map(|(s, p)| s.len() + p.memory_bytes()).sum();
        scopes + map_bytes(&self.partitions) + map_bytes(&self.scope_of)
    }

    /// The `k` entries of `scope` most similar to `query` (dot product),
    /// best first, keeping only scores >= `min_score`. An unknown scope has
    /// no entries.
    pub fn search(&self, scope: &str, query: &[f32], k: usize, min_score: Option<f32>) -> Result<Vec<(String, f32)>> {
        if k == 0 || k > MAX_K {
            return Err(EngineError::invalid(format!("k must be 1..={MAX_K}, got {k}")));
        }
        self.check_vector(query, "query vector")?;
        if min_score.is_some_and(f32::is_nan) {
            return Err(EngineError::invalid("min_score must be a number"));
        }
        let Some(p) = self.partitions.get(scope) else { return Ok(Vec::new()) };
        let dim = self.dim;
        let n = p.len();
        let pool = (4 * k).max(MIN_CANDIDATES);

        // Small scopes are scored exactly; larger ones pick candidates from the int8 scan.
        let candidates: Vec<u32> = if n <= pool {
            (0..n as u32).collect()
        } else {
            let mut q = vec![0i8; dim];
            quantize(query, &mut q);
            let threads = if n >= PARALLEL_MIN { self.scan_threads.min(n.div_ceil(SCAN_BLOCK)) } else { 1 };
            scan(p, &q, dim, pool, threads)
        };

        let mut scored: Vec<(f32, u32)> = candidates
            .into_iter()
            .map(|slot| {
                let s = slot as usize;
                (dot_f32(query, &p.vectors[s * dim..(s + 1) * dim]), slot)
            })
            .filter(|(score, _)| min_score.is_none_or(|m| *score >= m))
            .collect();
        scored.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then_with(|| p.ids[a.1 as usize].cmp(&p.ids[b.1 as usize])));
        scored.truncate(k);
        Ok(scored.into_iter().map(|(score, slot)| (p.ids[slot as usize].to_string(), score)).collect())
    }

    fn check_vector(&self, v: &[f32], what: &str) -> Result<()> {
        if v.len() != self.dim {
            return Err(EngineError::invalid(format!("{what} has {} dimensions; the index has {}", v.len(), self.dim)));
        }
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(EngineError::invalid(format!("{what} has a non-finite value ({}) at {i}", v[i])));
        }
        Ok(())
    }
}

fn default_scan_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_SCAN_THREADS)
}

/// Rough heap size of a hash map's table (entries plus a control byte each).
fn map_bytes<K, V>(m: &HashMap<K, V>) -> usize {
    m.capacity() * (size_of::<(K, V)>() + 1)
}

/// Writes `v`'s int8 codes into `out` and returns the scale that maps them back.
fn quantize(v: &[f32], out: &mut [i8]) -> f32 {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    let inv = 127.0 / max;
    if max == 0.0 || !inv.is_finite() {
        out.fill(0);
        return 0.0;
    }
    for (o, &x) in out.iter_mut().zip(v) {
        *o = (x * inv).round().clamp(-127.0, 127.0) as i8;
    }
    max / 127.0
}

/// i8 dot product. The i16 products summed into i32 compile to
/// vpmovsxbw + vpmaddwd under AVX2.
#[inline]
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(&x, &y)| (x as i16 * y as i16) as i32).sum()
}

/// f32 dot product with eight independent accumulators, so it vectorises
/// without reassociating a single running sum.
#[inline]
fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    let mut acc = [0f32; 8];
    for (x, y) in ca.zip(cb) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The best `pool` slots of `p` by approximate score, over up to `threads`
/// threads (the caller among them). Each worker owns a contiguous range,
/// which it claims block by block from a counter of its own, then helps with
/// the others' ranges. So a worker usually rescans the same slots query after
/// query (warm caches), and a helper that the OS schedules late costs little:
/// the caller takes over its blocks.
fn scan(p: &Partition, q: &[i8], dim: usize, pool: usize, threads: usize) -> Vec<u32> {
    let n = p.len();
    let mut top = TopN::new(pool);
    if threads <= 1 {
        scan_range(&mut top, p, q, dim, 0, n);
        return top.into_slots();
    }
    let chunk = n.div_ceil(threads);
    let next: Vec<AtomicUsize> = (0..threads).map(|t| AtomicUsize::new(t * chunk)).collect();
    let work = |home: usize, mut top: TopN| {
        for range in (0..threads).map(|i| (home + i) % threads) {
            let end = ((range + 1) * chunk).min(n);
            loop {
                let lo = next[range].fetch_add(SCAN_BLOCK, AtomicOrdering::Relaxed);
                if lo >= end {
                    break;
                }
                scan_range(&mut top, p, q, dim, lo, (lo + SCAN_BLOCK).min(end));
            }
        }
        top
    };
    std::thread::scope(|s| {
        let helpers: Vec<_> = (1..threads).map(|t| s.spawn(move || work(t, TopN::new(pool)))).collect();
        let mut top = work(0, top);
        for h in helpers {
            for (score, slot) in h.join().expect("index scan thread panicked").items {
                top.offer(score, slot);
            }
        }
        top.into_slots()
    })
}

/// Offers slots `lo..hi` to `top` by approximate score.
fn scan_range(top: &mut TopN, p: &Partition, q: &[i8], dim: usize, lo: usize, hi: usize) {
    let codes = p.codes[lo * dim..hi * dim].chunks_exact(dim);
    for ((slot, code), &scale) in (lo..hi).zip(codes).zip(&p.scales[lo..hi]) {
        // The query's own scale is common to every slot, so it is left out.
        top.offer(dot_i8(q, code) as f32 * scale, slot as u32);
    }
}

/// Keeps the `cap` highest-scoring slots seen: offers below the current
/// cut-off are dropped at once; the buffer is cut back to `cap` whenever it
/// reaches `2 * cap`, so an offer costs O(1) amortised.
struct TopN {
    cap: usize,
    items: Vec<(f32, u32)>,
    threshold: f32,
}

impl TopN {
    fn new(cap: usize) -> Self {
        Self { cap, items: Vec::with_capacity(2 * cap), threshold: f32::NEG_INFINITY }
    }

    #[inline]
    fn offer(&mut self, score: f32, slot: u32) {
        if score > self.threshold || self.items.len() < self.cap {
            self.items.push((score, slot));
            if self.items.len() == 2 * self.cap {
                self.prune();
            }
        }
    }

    fn prune(&mut self) {
        if self.items.len() > self.cap {
            self.items.select_nth_unstable_by(self.cap - 1, |a, b| desc(a.0, b.0));
            self.items.truncate(self.cap);
            self.threshold = self.items[self.cap - 1].0;
        }
    }

    fn into_slots(mut self) -> Vec<u32> {
        self.prune();
        self.items.into_iter().map(|(_, slot)| slot).collect()
    }
}

fn desc(a: f32, b: f32) -> Ordering {
    b.total_cmp(&a)
}
