//! The f32 GEMM for prompt rows: weights dequantized (exactly) a K-slice at
//! a time and interleaved k-major in groups of 16 rows (output columns),
//! activations broadcast straight from their rows, and a 6 × 16
//! register-blocked FMA microkernel whose results are plain vector stores
//! into the output rows.
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

use super::{formats, Isa, QMatrix};

/// K-slice length (a multiple of every block length).
pub const KC: usize = 256;
/// Output columns (weight rows) per microkernel call: two vectors of 8.
pub const NR: usize = 16;
/// Activation rows per microkernel call.
const MR: usize = 6;
/// Activation rows per L2-resident chunk (96 rows of a K-slice: 96 KiB).
const MC: usize = 96;

/// Weight rows per group of the prompt GEMM (a task's first row is a multiple of it).
pub const GROUP_ROWS: usize = NR;

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
        // SAFETY: a SIMD set is chosen only when the CPU has AVX2, FMA and F16C; the row holds these blocks.
        Isa::Avx2 | Isa::AvxVnni | Isa::Avx512Vnni => unsafe { super::avx2_dense::dequantize(w.format, w.row(r), b0, n, out) },
        _ => {
            let bb = w.format.block_bytes();
            formats::dequantize_row(w.format, &w.row(r)[b0 * bb..(b0 + n) * bb], &mut out[..len]);
        }
    }
}

/// f32 rows in the GEMM's weight layout: for each group of [`NR`] rows (the
/// last zero-padded), K-slices of [`KC`] one after another, each `[k][NR]`.
pub fn pack_f32(rows: usize, cols: usize, values: &[f32]) -> Vec<f32> {
    let groups = rows.div_ceil(NR);
    let mut out = vec![0f32; groups * NR * cols];
    for r in 0..rows {
        let (g, j) = (r / NR, r % NR);
        let base = g * NR * cols;
        for (kk, v) in values[r * cols..(r + 1) * cols].iter().enumerate() {
            // Slice c0 = kk / KC · KC starts at base + c0 · NR; within it, [kk - c0][j].
            let c0 = kk / KC * KC;
            out[base + c0 * NR + (kk - c0) * NR + j] = *v;
        }
    }
    out
}

/// One microkernel call: `RM` activation rows (slices of this K-slice)
/// against one weight group slice (`[kc][16]`), written (`add`: added) to
/// the output rows' 16 columns (`cols` of them valid).
fn kernel<const RM: usize>(isa: Isa, kc: usize, a: [&[f32]; RM], w: &[f32], out: [*mut f32; RM], cols: usize, add: bool) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2/FMA detected; each `a` row holds kc values, `w` kc · 16, and each
        // output row 16 writable columns (or `cols` of them, handled by the kernel).
        Isa::Avx2 | Isa::AvxVnni | Isa::Avx512Vnni => unsafe { super::avx2_dense::kernel_rx16::<RM>(kc, a.map(|r| r.as_ptr()), w.as_ptr(), out, cols, add) },
        _ => {
            for (i, row) in a.iter().enumerate() {
                for j in 0..cols {
                    let v = (0..kc).fold(0f32, |acc, kk| w[kk * NR + j].mul_add(row[kk], acc));
                    // SAFETY: column j < cols of an output row this task owns.
                    unsafe {
                        let cell = out[i].add(j);
                        *cell = if add { *cell + v } else { v };
                    }
                }
            }
        }
    }
}

/// Runs of up to six rows of `rows` through the microkernel against one
/// weight group: row `i`'s slice is `x[i·k + c0 ..][..kc]`, its output
/// `out + i·ldo`.
#[allow(clippy::too_many_arguments)]
fn sweep(isa: Isa, kc: usize, rows: &[usize], x: &[f32], k: usize, c0: usize, out: *mut f32, ldo: usize, wg: &[f32], cols: usize, add: bool) {
    let a = |row: usize| &x[row * k + c0..row * k + c0 + kc];
    // SAFETY: callers pass an output pointer whose rows (at ldo apart) hold these columns.
    let o = |row: usize| unsafe { out.add(row * ldo) };
    let mut rest = rows;
    while !rest.is_empty() {
        let take = rest.len().min(MR);
        let (g, tail) = rest.split_at(take);
        match take {
            6 => kernel::<6>(isa, kc, std::array::from_fn(|i| a(g[i])), wg, std::array::from_fn(|i| o(g[i])), cols, add),
            5 => kernel::<5>(isa, kc, std::array::from_fn(|i| a(g[i])), wg, std::array::from_fn(|i| o(g[i])), cols, add),
            4 => kernel::<4>(isa, kc, std::array::from_fn(|i| a(g[i])), wg, std::array::from_fn(|i| o(g[i])), cols, add),
            3 => kernel::<3>(isa, kc, std::array::from_fn(|i| a(g[i])), wg, std::array::from_fn(|i| o(g[i])), cols, add),
            2 => kernel::<2>(isa, kc, std::array::from_fn(|i| a(g[i])), wg, std::array::from_fn(|i| o(g[i])), cols, add),
            _ => kernel::<1>(isa, kc, [a(g[0])], wg, [o(g[0])], cols, add),
        }
        rest = tail;
    }
}

/// `out[row][r] = x[row] · w[r]` for every row in `rows` and weight rows
/// `r0..r1` (`out` is `[m, w.rows]`, `x` `[m, k]`). `wbuf` is scratch.
///
/// Per K-slice, the task's weight rows are dequantized once into groups of
/// 16 (kept in L2, a group's slice in L1); activation rows go by chunks
/// that stay in L2 while every group meets them, six rows per call.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_task(isa: Isa, w: &QMatrix, r0: usize, r1: usize, x: &[f32], rows: &[usize], out: Out, wbuf: &mut Vec<f32>) {
    let k = w.cols;
    let groups = (r1 - r0).div_ceil(NR);
    let packed = w.packed();
    assert!(r0.is_multiple_of(NR), "a task must start on a row group");
    if packed.is_none() {
        wbuf.clear();
        wbuf.resize(groups * NR * KC, 0.0);
    }
    let mut c0 = 0;
    while c0 < k {
        let kc = KC.min(k - c0);
        if packed.is_none() {
            let mut row = [0f32; KC];
            for r in r0..r1 {
                dequantize(isa, w, r, c0, kc, &mut row[..kc]);
                let (g, j) = ((r - r0) / NR, (r - r0) % NR);
                let dst = &mut wbuf[g * NR * KC..(g + 1) * NR * KC];
                for (kk, v) in row[..kc].iter().enumerate() {
                    dst[kk * NR + j] = *v;
                }
            }
        }
        for chunk in rows.chunks(MC) {
            for g in 0..groups {
                let first = r0 + g * NR;
                let wg = match packed {
                    Some(pk) => &pk[(first / NR) * NR * k + c0 * NR..(first / NR) * NR * k + (c0 + kc) * NR],
                    None => &wbuf[g * NR * KC..g * NR * KC + kc * NR],
                };
                // SAFETY: columns first.. of every output row belong to this task.
                let o = unsafe { out.0.add(first) };
                sweep(isa, kc, chunk, x, k, c0, o, w.rows, wg, NR.min(r1 - first), c0 > 0);
            }
        }
        c0 += kc;
    }
}
