//! Causal attention of new rows against a sequence's KV cache, on the CPU.
//!
//! Work comes in (sequence, KV head, rows) tasks; the query heads that share
//! a KV head (GQA) run together, so each key and value is loaded once for
//! all of them (the building blocks are in `kernels::attention`).
//!
//! A row's result depends only on its query and its sequence's cache (keys
//! in fixed blocks from position 0, heads in fixed groups): batch-invariant.

use super::kv::KvCache;
use crate::kernels::attention::{scores, simd, softmax, weighted_values, KEY_BLOCK};

/// What one task needs: a sequence's cache and where its rows are.
pub struct Seq<'a> {
    pub cache: &'a KvCache,
    /// First row of this sequence in `q`/`out`, and its first position.
    pub row0: usize,
    pub pos0: usize,
}

/// The output rows (`[rows, heads · head_dim]`), shared by tasks that each
/// write only their own (row, head) slices.
#[derive(Clone, Copy)]
pub struct OutRows {
    ptr: *mut f32,
    len: usize,
}
// SAFETY: tasks write disjoint slices (see `heads`); the pool joins them before the buffer is read.
unsafe impl Send for OutRows {}
unsafe impl Sync for OutRows {}

impl OutRows {
    pub fn new(out: &mut [f32]) -> Self {
        Self { ptr: out.as_mut_ptr(), len: out.len() }
    }

    /// The slice `at .. at + n` of the buffer.
    ///
    /// # Safety
    /// No other live reference may overlap it: each task asks only for its own
    /// (row, head) ranges.
    unsafe fn slice(self, at: usize, n: usize) -> &'static mut [f32] {
        assert!(at + n <= self.len);
        std::slice::from_raw_parts_mut(self.ptr.add(at), n)
    }
}

/// Shapes shared by every task of a step.
#[derive(Clone, Copy)]
pub struct Dims {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub layer: usize,
}

/// Attention for `rows` (relative to the sequence) and KV head `g`.
/// `q` rows are `heads · head_dim`; `out` rows likewise (only this task's
/// heads are written). `scratch` is reused between calls.
pub fn run(dims: Dims, seq: &Seq<'_>, g: usize, rows: std::ops::Range<usize>, q: &[f32], out: OutRows, scratch: &mut Vec<f32>) {
    let Dims { heads, kv_heads, head_dim: hd, layer } = dims;
    let n_rep = heads / kv_heads;
    let q_dim = heads * hd;
    let scale = 1.0 / (hd as f32).sqrt();
    let cache = seq.cache;
    let kv_w = cache.width();
    let (kt, cap) = cache.keys_t(layer);
    let values = cache.values(layer);
    let simd = simd() && hd % 8 == 0;
    for r in rows {
        let row = seq.row0 + r;
        let t_len = seq.pos0 + r + 1; // causal: positions 0..=pos
        let t_pad = t_len.next_multiple_of(KEY_BLOCK);
        debug_assert!(t_pad <= cap);
        scratch.resize(n_rep * t_pad, 0.0);
        let mut i0 = 0;
        while i0 < n_rep {
            let nq = (n_rep - i0).min(3);
            let heads_here: Vec<usize> = (i0..i0 + nq).map(|i| g * n_rep + i).collect();
            let qs: Vec<&[f32]> = heads_here.iter().map(|&h| &q[row * q_dim + h * hd..row * q_dim + (h + 1) * hd]).collect();
            let sc = &mut scratch[i0 * t_pad..(i0 + nq) * t_pad];
            scores(simd, &qs, &kt[g * hd * cap..(g + 1) * hd * cap], cap, hd, t_pad, scale, sc);
            i0 += nq;
        }
        for i in 0..n_rep {
            softmax(simd, &mut scratch[i * t_pad..i * t_pad + t_len]);
        }
        let mut i0 = 0;
        while i0 < n_rep {
            let nq = (n_rep - i0).min(2);
            let ps: Vec<&[f32]> = (i0..i0 + nq).map(|i| &scratch[i * t_pad..i * t_pad + t_len]).collect();
            // Heads g·n_rep + i0 .. are adjacent in the output row.
            let first = row * q_dim + (g * n_rep + i0) * hd;
            // SAFETY: this task alone writes heads g·n_rep .. (g+1)·n_rep of its rows.
            let mut outs: Vec<&mut [f32]> = (0..nq).map(|i| unsafe { out.slice(first + i * hd, hd) }).collect();
            weighted_values(simd, &ps, values, kv_w, g * hd, hd, &mut outs);
            i0 += nq;
        }
    }
}

