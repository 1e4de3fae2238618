//! One sequence's keys and values on the CPU, per layer: keys transposed
//! (`[kv_head][dim][capacity]`, so attention scores eight keys per vector)
//! and values token-major (`[capacity][kv_heads · head_dim]`). Capacity
//! doubles as the sequence grows (a multiple of the attention key block),
//! so a short request holds little memory.
//!
//! f32 (not f16) so a cached prefix gives exactly the values a recompute
//! would: prompt reuse must not change outputs.
//!
//! A cache is in its prompt phase until [`KvCache::start_decoding`]: rows
//! appended in that phase are prompt rows (computed by the f32 GEMM), later
//! ones decode rows (the integer kernels). Only prompt rows are reused.

/// Capacity granule: the attention key block.
const GRANULE: usize = crate::kernels::attention::KEY_BLOCK;
/// Smallest capacity a cache starts with.
const FIRST: usize = 64;

#[derive(Clone, Default)]
pub struct LayerKv {
    /// `[kv_head · head_dim][cap]`.
    k: Vec<f32>,
    /// `[cap][kv_heads · head_dim]` (only `len` rows are valid).
    v: Vec<f32>,
}

/// A sequence's K/V cache.
#[derive(Clone)]
pub struct KvCache {
    layers: Vec<LayerKv>,
    /// Tokens held.
    len: usize,
    /// Tokens each layer has room for.
    cap: usize,
    kv_heads: usize,
    head_dim: usize,
    /// Tokens appended in the prompt phase.
    prompt_len: usize,
    decoding: bool,
}

impl KvCache {
    pub fn new(n_layers: usize, kv_heads: usize, head_dim: usize) -> Self {
        Self { layers: vec![LayerKv::default(); n_layers], len: 0, cap: 0, kv_heads, head_dim, prompt_len: 0, decoding: false }
    }

    /// Later rows are decode rows.
    pub fn start_decoding(&mut self) {
        self.decoding = true;
    }

    pub fn is_decoding(&self) -> bool {
        self.decoding
    }

    /// Tokens whose rows were computed as prompt rows (a prefix of the cache).
    pub fn prompt_len(&self) -> usize {
        self.prompt_len
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Floats per token per layer (kv_heads · head_dim).
    pub fn width(&self) -> usize {
        self.kv_heads * self.head_dim
    }

    /// Makes room for `need` tokens, moving every key row to the new stride.
    fn reserve(&mut self, need: usize) {
        if need <= self.cap {
            return;
        }
        let cap = need.max(2 * self.cap).max(FIRST).next_multiple_of(GRANULE);
        let (rows, w) = (self.width(), self.width());
        for l in &mut self.layers {
            let mut k = vec![0f32; rows * cap];
            for r in 0..rows {
                k[r * cap..r * cap + self.len].copy_from_slice(&l.k[r * self.cap..r * self.cap + self.len]);
            }
            l.k = k;
            l.v.resize(cap * w, 0.0);
        }
        self.cap = cap;
    }

    /// Appends `k`/`v` rows (`tokens · width` each, token-major) to `layer`.
    /// Every layer receives the same tokens per step; the last one commits them.
    pub fn append(&mut self, layer: usize, k: &[f32], v: &[f32]) {
        let w = self.width();
        debug_assert!(k.len() == v.len() && k.len().is_multiple_of(w));
        let n = k.len() / w;
        self.reserve(self.len + n);
        let (cap, len) = (self.cap, self.len);
        let l = &mut self.layers[layer];
        for t in 0..n {
            for (r, &x) in k[t * w..(t + 1) * w].iter().enumerate() {
                l.k[r * cap + len + t] = x;
            }
        }
        l.v[len * w..(len + n) * w].copy_from_slice(v);
        if layer + 1 == self.layers.len() {
            self.len += n;
            if !self.decoding {
                self.prompt_len = self.len;
            }
        }
    }

    /// Transposed keys of `layer` and their row stride (capacity). Row
    /// `kv_head · head_dim + d` holds dimension `d` of every token; positions
    /// past the appended tokens hold finite filler.
    #[inline]
    pub fn keys_t(&self, layer: usize) -> (&[f32], usize) {
        (&self.layers[layer].k, self.cap)
    }

    /// Values of `layer`, token-major, for the tokens appended so far in this
    /// step's layer (rows beyond [`KvCache::len`] are valid once appended).
    #[inline]
    pub fn values(&self, layer: usize) -> &[f32] {
        &self.layers[layer].v
    }

    /// Keeps the first `n` tokens.
    pub fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n);
        self.prompt_len = self.prompt_len.min(n);
    }

    /// A new cache holding a copy of the first `n` tokens.
    pub fn prefix(&self, n: usize) -> Self {
        let n = n.min(self.len);
        let mut c = Self::new(self.layers.len(), self.kv_heads, self.head_dim);
        // Room for exactly these tokens and the next (a copy kept by the prefix cache stays small).
        c.cap = (n + 1).next_multiple_of(GRANULE);
        let size = c.width() * c.cap;
        for l in &mut c.layers {
            l.k = vec![0f32; size];
            l.v = vec![0f32; size];
        }
        let (w, cap) = (self.width(), c.cap);
        for (dst, src) in c.layers.iter_mut().zip(&self.layers) {
            for r in 0..w {
                dst.k[r * cap..r * cap + n].copy_from_slice(&src.k[r * self.cap..r * self.cap + n]);
            }
            dst.v[..n * w].copy_from_slice(&src.v[..n * w]);
        }
        c.len = n;
        c.prompt_len = n.min(self.prompt_len);
        c
    }

    /// Bytes of K/V memory held (capacity, not just the tokens in use).
    pub fn bytes(&self) -> usize {
        self.cap * self.width() * 2 * 4 * self.layers.len()
    }
}
