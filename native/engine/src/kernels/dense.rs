//! The f32 GEMM for prompt rows: weights dequantized (exactly) a K-slice at
//! a time and interleaved k-major in groups of six rows, activations packed
//! once per product into k-major panels of 16 rows, and a 16 × 6
//! register-blocked FMA microkernel.
//!
//! On AVX2 cores integer multiplies and FMAs share two pipes, and a
//! quantized-activation dot product spends four of those per 32 products
//! (two integer multiplies, the scales' multiply and the FMA) where this
//! GEMM spends 1/8 of one per product: for many rows at once it is the
//! faster path, and the exact one (no activation rounding). Decode rows (a
//! handful per step) stay on the integer kernels, where the weights are
//! read once and not expanded.
//!
//! Summation order per output: K-slices of [`KC`] in order, each one lane
//! accumulated in k order, so a row's result depends only on its own inputs.

use super::{formats, Isa, QMatrix, WeightFormat};

/// K-slice length (a multiple of every block length).
pub const KC: usize = 256;
/// Weight rows per microkernel call.
const NR: usize = 6;
/// Activation rows per panel.
pub const PANEL: usize = 16;

/// Activation rows packed for the GEMM: `[panel][k][16]`, zero-padded.
#[derive(Default)]
pub struct Panels {
    pub k: usize,
    /// Original row index of each packed row, in order.
    pub rows: Vec<usize>,
    data: Vec<f32>,
}

impl Panels {
    /// Packs rows `rows` of `x` (`k` values per row).
    pub fn pack(&mut self, x: &[f32], k: usize, rows: &[usize]) {
        self.k = k;
        self.rows.clear();
        self.rows.extend_from_slice(rows);
        let n = rows.len().div_ceil(PANEL);
        self.data.clear();
        self.data.resize(n * k * PANEL, 0.0);
        for (i, &r) in rows.iter().enumerate() {
            let (p, lane) = (i / PANEL, i % PANEL);
            let src = &x[r * k..(r + 1) * k];
            let dst = &mut self.data[p * k * PANEL..(p + 1) * k * PANEL];
            for (kk, v) in src.iter().enumerate() {
                dst[kk * PANEL + lane] = *v;
            }
        }
    }

    pub fn count(&self) -> usize {
        self.rows.len().div_ceil(PANEL)
    }

    fn panel(&self, p: usize) -> &[f32] {
        &self.data[p * self.k * PANEL..(p + 1) * self.k * PANEL]
    }
}

/// Raw output pointer shared by tasks that write disjoint columns.
#[derive(Clone, Copy)]
pub(crate) struct Out(pub *mut f32);
// SAFETY: each task writes only its own columns; the pool joins every task first.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

/// Dequantizes columns `c0 .. c0 + len` of row `r` into `out`.
fn dequantize(isa: Isa, w: &QMatrix, r: usize, c0: usize, len: usize, out: &mut [f32]) {
    let bl = w.format.block_len();
    let (b0, n) = (c0 / bl, len / bl);
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: Isa::Avx2 is chosen only when the CPU has AVX2, FMA and F16C; the row holds these blocks.
        Isa::Avx2 => unsafe { super::avx2_dense::dequantize(w.format, w.row(r), b0, n, out) },
        _ => {
            let bb = w.format.block_bytes();
            formats::dequantize_row(w.format, &w.row(r)[b0 * bb..(b0 + n) * bb], &mut out[..len]);
        }
    }
}

fn kernel(isa: Isa, k: usize, panel: &[f32], wbuf: &[f32], tile: &mut [[f32; PANEL]; NR]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above; `panel` holds k · 16 values and `wbuf` k · 6.
        Isa::Avx2 => unsafe { super::avx2_dense::kernel_16x6(k, panel.as_ptr(), wbuf.as_ptr(), tile) },
        _ => {
            for (j, t) in tile.iter_mut().enumerate() {
                for (i, v) in t.iter_mut().enumerate() {
                    *v = (0..k).fold(0f32, |acc, kk| wbuf[kk * NR + j].mul_add(panel[kk * PANEL + i], acc));
                }
            }
        }
    }
}

/// `out[row][r] = x[row] · w[r]` for every packed row and weight rows `r0..r1`
/// (`out` is `[m, w.rows]`). `wbuf` is this thread's scratch.
///
/// Per K-slice, the task's weight rows are dequantized once (kept in L2),
/// then each panel (kept in L1) meets every group of six of them.
pub(crate) fn run_task(isa: Isa, w: &QMatrix, r0: usize, r1: usize, panels: &Panels, out: Out, wbuf: &mut Vec<f32>) {
    let k = w.cols;
    let groups = (r1 - r0).div_ceil(NR);
    wbuf.clear();
    wbuf.resize(groups * NR * KC, 0.0);
    let mut tile = [[0f32; PANEL]; NR];
    let mut c0 = 0;
    while c0 < k {
        let kc = KC.min(k - c0);
        // Dequantize, then interleave each group of six rows k-major
        // ([k][6]), so the microkernel's broadcasts read one stream.
        let mut row = [0f32; KC];
        for r in r0..r1 {
            dequantize(isa, w, r, c0, kc, &mut row[..kc]);
            let (g, j) = ((r - r0) / NR, (r - r0) % NR);
            let dst = &mut wbuf[g * NR * KC..(g + 1) * NR * KC];
            for (kk, v) in row[..kc].iter().enumerate() {
                dst[kk * NR + j] = *v;
            }
        }
        for p in 0..panels.count() {
            let panel = &panels.panel(p)[c0 * PANEL..(c0 + kc) * PANEL];
            let rows = &panels.rows[p * PANEL..((p + 1) * PANEL).min(panels.rows.len())];
            for g in 0..groups {
                let first = r0 + g * NR;
                let gr = NR.min(r1 - first);
                kernel(isa, kc, panel, &wbuf[g * NR * KC..(g + 1) * NR * KC], &mut tile);
                for (i, &row) in rows.iter().enumerate() {
                    for (j, t) in tile.iter().take(gr).enumerate() {
                        // SAFETY: column first + j lies in this task's r0..r1; row < m.
                        let cell = unsafe { &mut *out.0.add(row * w.rows + first + j) };
                        *cell = if c0 == 0 { t[i] } else { *cell + t[i] };
                    }
                }
            }
        }
        c0 += kc;
    }
}

/// Formats whose prompt rows take this GEMM (the others: the integer kernels
/// are as fast, and they keep llama.cpp's numerics). Chosen by measurement,
/// see `examples/kernel_bench.rs`.
pub fn prompt_rows_dense(format: WeightFormat) -> bool {
    !matches!(format, WeightFormat::Q4K | WeightFormat::Q5K | WeightFormat::Q6K)
}
