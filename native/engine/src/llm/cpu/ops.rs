//! Row-wise operations of the decoder step: RMS norm, RoPE, SiLU gating and
//! causal attention over each sequence's KV cache.

use super::attention;
use super::kv::KvCache;
use crate::kernels::{vecops, ThreadPool};
use crate::llm::config::LlmConfig;

/// `out = x / rms(x) · w`, row by row (`w.len()` values per row).
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let dim = w.len();
    for (xr, or) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        let sum2 = vecops::dot(xr, xr);
        let m = (sum2 / dim as f32 + eps).sqrt();
        for ((o, &v), &g) in or.iter_mut().zip(xr).zip(w) {
            *o = v / m * g;
        }
    }
}

/// Rotates every head of one row (`heads · head_dim` values) to position `pos`.
/// Interleaved: pairs (2i, 2i+1) (llama.cpp's permuted Llama); otherwise the
/// NeoX halves (i, i + head_dim/2) (Qwen2).
pub fn rope(row: &mut [f32], head_dim: usize, pos: usize, inv_freq: &[f32], interleaved: bool) {
    let half = head_dim / 2;
    let mut cs = [(0f32, 0f32); 256];
    for (i, f) in inv_freq.iter().enumerate().take(half) {
        let a = pos as f32 * f;
        cs[i] = (a.cos(), a.sin());
    }
    for head in row.chunks_exact_mut(head_dim) {
        for (i, &(c, s)) in cs.iter().enumerate().take(half) {
            let (a, b) = if interleaved { (2 * i, 2 * i + 1) } else { (i, i + half) };
            let (x0, x1) = (head[a], head[b]);
            head[a] = x0 * c - x1 * s;
            head[b] = x0 * s + x1 * c;
        }
    }
}

/// `gate = silu(gate) · up`, in place.
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    vecops::silu_mul(gate, up);
}

/// Causal attention for every new row of every sequence, on the pool.
///
/// `spans[i] = (first row, rows, first position)` of sequence `i` in `q`
/// (`[rows, heads · head_dim]`); its keys and values (new rows included)
/// are in `caches[i]`. Writes `out` (`[rows, heads · head_dim]`).
pub fn attention(pool: &ThreadPool, cfg: &LlmConfig, layer: usize, caches: &[&KvCache], spans: &[(usize, usize, usize)], q: &[f32], out: &mut [f32]) {
    let dims = attention::Dims { heads: cfg.n_heads, kv_heads: cfg.n_kv_heads, head_dim: cfg.head_dim, layer };
    // Tasks: (sequence, KV head, first row, end row); long prompts split by rows,
    // so later rows (more keys) do not all land in one task.
    const ROWS: usize = 8;
    let mut tasks = Vec::new();
    for (si, &(_, len, _)) in spans.iter().enumerate() {
        for g in 0..cfg.n_kv_heads {
            let mut r = 0;
            while r < len {
                tasks.push((si, g, r, (r + ROWS).min(len)));
                r += ROWS;
            }
        }
    }
    let dst = attention::OutRows::new(out);
    let run = |t: usize| {
        let (si, g, r0, r1) = tasks[t];
        let (row0, _, pos0) = spans[si];
        let seq = attention::Seq { cache: caches[si], row0, pos0 };
        let mut scratch = Vec::new();
        attention::run(dims, &seq, g, r0..r1, q, dst, &mut scratch);
    };
    pool.run(tasks.len(), &run);
}
