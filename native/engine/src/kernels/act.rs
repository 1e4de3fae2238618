//! Activations quantized once per matmul input, for integer dot products.
//!
//! Two layouts, both struct-of-arrays so the int8 values of a row are
//! contiguous and 32-byte loads need no gathering:
//! - [`ActKind::Q8B32`] (for Q4_0 … Q8_0 weights): per 32 values a scale
//!   `d = max|x| / 127` and `s = d · Σq` (the block sum that Q4_1/Q5_1's
//!   offset term needs), both rounded to f16 as in GGML's Q8_0/Q8_1 blocks.
//! - [`ActKind::Q8K`] (for K-quants): per 256 values an f32 scale and the
//!   integer sum of every 16 values (for the K-quants' min and offset terms).
//!
//! Rounding is to nearest, ties to even, in scalar and SIMD code alike, so
//! both produce the same bytes.

use super::formats::ActKind;
use half::f16;

/// One input matrix `[rows, k]` in a quantized layout, reusable across steps
/// (buffers grow, never shrink).
#[derive(Debug, Default)]
pub struct QuantizedActs {
    pub rows: usize,
    pub k: usize,
    /// `rows · k` int8 values.
    pub qs: Vec<i8>,
    /// Per block: the scale; for Q8B32, then 8 zeros of padding (kernels read
    /// scales and sums eight blocks at a time, past a row's end on its last group).
    pub d: Vec<f32>,
    /// Q8B32 only: per block of 32, `d · Σq` rounded to f16 (GGML's Q8_1 sum), padded likewise.
    pub s: Vec<f32>,
    /// Q8B32 only: per block of 32, `Σq` (the int8 GEMM's offset term), padded likewise.
    pub sums: Vec<i32>,
    /// Q8K only: per 16 values, `Σq`.
    pub bsums: Vec<i16>,
}

impl QuantizedActs {
    pub fn block_len(kind: ActKind) -> usize {
        match kind {
            ActKind::Q8K => 256,
            _ => 32,
        }
    }

    fn resize(&mut self, kind: ActKind, rows: usize, k: usize) {
        let bl = Self::block_len(kind);
        assert!(k.is_multiple_of(bl), "activation length {k} is not a multiple of {bl}");
        self.rows = rows;
        self.k = k;
        self.qs.resize(rows * k, 0);
        if kind == ActKind::Q8B32 {
            let n = rows * k / 32;
            self.d.clear();
            self.d.resize(n + 8, 0.0);
            self.s.clear();
            self.s.resize(n + 8, 0.0);
            self.sums.clear();
            self.sums.resize(n + 8, 0);
        } else {
            self.d.resize(rows * k / bl, 0.0);
            self.bsums.resize(rows * k / 16, 0);
        }
    }

    /// Quantizes `x` (`rows · k` values, row-major) into this buffer.
    pub fn quantize(&mut self, kind: ActKind, x: &[f32], rows: usize, k: usize, simd: bool) {
        assert_eq!(x.len(), rows * k);
        self.resize(kind, rows, k);
        let bl = Self::block_len(kind);
        let blocks = rows * k / bl;
        for b in 0..blocks {
            let src = &x[b * bl..(b + 1) * bl];
            let qs = &mut self.qs[b * bl..(b + 1) * bl];
            #[cfg(target_arch = "x86_64")]
            let d = if simd {
                // SAFETY: `simd` is only set when the CPU has AVX2 (checked once by the dispatcher).
                unsafe { super::avx2::quantize_block(src, qs) }
            } else {
                quantize_block_scalar(src, qs)
            };
            #[cfg(not(target_arch = "x86_64"))]
            let d = {
                let _ = simd;
                quantize_block_scalar(src, qs)
            };
            match kind {
                ActKind::Q8B32 => {
                    // GGML's Q8_0/Q8_1 blocks keep d and d·Σq as f16: so do we, so
                    // products round as llama.cpp's (and candle's) do.
                    let sum = qs.iter().map(|&q| q as i32).sum::<i32>();
                    let d = f16::from_f32(d).to_f32();
                    self.d[b] = d;
                    self.s[b] = f16::from_f32(d * sum as f32).to_f32();
                    self.sums[b] = sum;
                }
                _ => {
                    self.d[b] = d;
                    for (g, sum) in self.bsums[b * 16..(b + 1) * 16].iter_mut().enumerate() {
                        *sum = qs[g * 16..(g + 1) * 16].iter().map(|&q| q as i16).sum();
                    }
                }
            }
        }
    }

    /// Int8 values of row `r`.
    #[inline]
    pub fn row_qs(&self, r: usize) -> &[i8] {
        &self.qs[r * self.k..(r + 1) * self.k]
    }
}

/// Scale of a block: `max|x| / 127`, and the reciprocal used to quantize (0 for an all-zero block).
#[inline]
pub(crate) fn block_scale(amax: f32) -> (f32, f32) {
    let d = amax / 127.0;
    let id = if d > 0.0 { 1.0 / d } else { 0.0 };
    (d, id)
}

/// Quantizes one block to int8, returns its scale.
pub fn quantize_block_scalar(x: &[f32], qs: &mut [i8]) -> f32 {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let (d, id) = block_scale(amax);
    for (q, &v) in qs.iter_mut().zip(x) {
        *q = (v * id).round_ties_even().clamp(-127.0, 127.0) as i8;
    }
    d
}
