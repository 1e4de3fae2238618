//! The int8 GEMM for prompt rows of the 32-block formats (Q4_0, Q4_1, Q5_0,
//! Q5_1, Q8_0) on CPUs with AVX-512 VNNI.
//!
//! One `vpdpbusd` on a 512-bit register does 64 multiply-adds (16 output
//! columns × 4 values), four times what an f32 FMA does in the same slot, so
//! for many rows at once this beats dequantizing to f32 (the path of
//! [`super::dense`] on other CPUs). Weights are unpacked per task and K-slice
//! into their raw unsigned values (u8), four consecutive values of a column
//! side by side and 16 columns per 64 bytes, with the blocks' scales (and
//! mins) as f32 vectors; activations are the rows' int8 blocks (Q8B32), read
//! four values at a time and broadcast.
//!
//! Per block of 32 values and output: `d_w · d_x · (Σ u·q − off · Σq)` for
//! the symmetric formats (`u = w + off`), `d_w · d_x · Σ u·q + m_w · s_x` for
//! the formats with a min (`s_x`: the activations' f16 block sum, as in the
//! integer kernels). Integer sums are exact; each output accumulates its
//! blocks in order, so a row's result never depends on the rows beside it.
//!
//! Everything here requires AVX-512 F/BW/VL/VNNI and AVX2/FMA/F16C; the
//! caller chooses this path only for [`super::Isa::Avx512Vnni`].

#![allow(clippy::missing_safety_doc)]
#![allow(clippy::needless_range_loop)]

use super::act::QuantizedActs;
use super::avx2::{fifth_bits, nibbles};
use super::dense::{Out, KC};
use super::formats::f16_at;
use super::{QMatrix, WeightFormat};
use std::arch::x86_64::*;

/// Output columns per microkernel call (one 512-bit register of i32/f32).
pub const NR: usize = 16;
/// Activation rows per microkernel call.
const MR: usize = 8;
/// Activation rows per chunk (their K-slice stays in L2 while every column group meets it).
const MC: usize = 128;
/// Blocks of 32 per K-slice.
const BLOCKS: usize = KC / 32;

/// What the symmetric formats' unsigned values carry above the signed ones
/// (0: a format with a min).
fn offset(format: WeightFormat) -> i32 {
    match format {
        WeightFormat::Q4_0 => 8,
        WeightFormat::Q5_0 => 16,
        WeightFormat::Q8_0 => 128,
        _ => 0,
    }
}

/// Whether `format` takes this GEMM.
pub fn handles(format: WeightFormat) -> bool {
    matches!(format, WeightFormat::Q4_0 | WeightFormat::Q4_1 | WeightFormat::Q5_0 | WeightFormat::Q5_1 | WeightFormat::Q8_0)
}

/// A task's weights for one K-slice, in the microkernel's layout.
#[derive(Default)]
pub(crate) struct Packed {
    /// Per column group, per block, per quad: 16 columns × 4 u8.
    q: Vec<u8>,
    /// Per column group, per block: 16 scales.
    d: Vec<f32>,
    /// Per column group, per block: 16 mins (formats with a min).
    m: Vec<f32>,
}

/// The 32 raw unsigned values of a block (`w + offset`, or the stored values of a format with a min).
#[inline(always)]
unsafe fn raw_values(format: WeightFormat, p: *const u8) -> __m256i {
    match format {
        WeightFormat::Q4_0 => nibbles(p.add(2)),
        WeightFormat::Q4_1 => nibbles(p.add(4)),
        WeightFormat::Q5_0 => _mm256_or_si256(nibbles(p.add(6)), fifth_bits(p.add(2))),
        WeightFormat::Q5_1 => _mm256_or_si256(nibbles(p.add(8)), fifth_bits(p.add(4))),
        // Q8_0: i8 + 128 is the byte with its top bit flipped.
        _ => _mm256_xor_si256(_mm256_loadu_si256(p.add(2) as *const __m256i), _mm256_set1_epi8(-128)),
    }
}

/// Unpacks blocks `b0 .. b0 + nb` of weight rows `r0..r1` into `pk`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn pack(w: &QMatrix, r0: usize, r1: usize, b0: usize, nb: usize, pk: &mut Packed) {
    let groups = (r1 - r0).div_ceil(NR);
    let bb = w.format.block_bytes();
    let min = offset(w.format) == 0;
    pk.q.clear();
    pk.q.resize(groups * nb * 8 * 64, 0);
    pk.d.clear();
    pk.d.resize(groups * nb * NR, 0.0);
    if min {
        pk.m.clear();
        pk.m.resize(groups * nb * NR, 0.0);
    }
    for r in r0..r1 {
        let (g, j) = ((r - r0) / NR, (r - r0) % NR);
        let row = w.row(r);
        for bi in 0..nb {
            let block = &row[(b0 + bi) * bb..(b0 + bi + 1) * bb];
            let mut vals = [0u32; 8];
            _mm256_storeu_si256(vals.as_mut_ptr() as *mut __m256i, raw_values(w.format, block.as_ptr()));
            let base = (g * nb + bi) * 8 * 64 + 4 * j;
            for (quad, v) in vals.iter().enumerate() {
                std::ptr::write_unaligned(pk.q.as_mut_ptr().add(base + quad * 64) as *mut u32, *v);
            }
            pk.d[(g * nb + bi) * NR + j] = f16_at(block, 0);
            if min {
                pk.m[(g * nb + bi) * NR + j] = f16_at(block, 2);
            }
        }
    }
}

/// One activation row's pointers at a K-slice: int8 values, block scales,
/// and the blocks' integer sums (symmetric formats) or f16 sums (formats with a min).
#[derive(Clone, Copy)]
struct ActRow {
    q: *const i8,
    d: *const f32,
    isum: *const i32,
    s: *const f32,
}

/// `RM` rows against one column group over `nb` blocks; results written (or
/// added) to the rows' `cols` (≤ 16) output columns.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn kernel<const RM: usize, const MIN: bool>(nb: usize, a: [ActRow; RM], wq: *const u8, wd: *const f32, wm: *const f32, off: i32, out: [*mut f32; RM], cols: usize, add: bool) {
    let mut acc = [_mm512_setzero_ps(); RM];
    for b in 0..nb {
        let mut isum = [_mm512_setzero_si512(); RM];
        for quad in 0..8 {
            let wv = _mm512_loadu_si512(wq.add((b * 8 + quad) * 64) as *const _);
            for i in 0..RM {
                let av = _mm512_set1_epi32(std::ptr::read_unaligned(a[i].q.add(32 * b + 4 * quad) as *const i32));
                isum[i] = _mm512_dpbusd_epi32(isum[i], wv, av);
            }
        }
        let dw = _mm512_loadu_ps(wd.add(b * NR));
        let mw = if MIN { _mm512_loadu_ps(wm.add(b * NR)) } else { _mm512_setzero_ps() };
        for i in 0..RM {
            let mut v = isum[i];
            if !MIN {
                v = _mm512_sub_epi32(v, _mm512_set1_epi32(off * *a[i].isum.add(b)));
            }
            let scale = _mm512_mul_ps(dw, _mm512_set1_ps(*a[i].d.add(b)));
            acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v), scale, acc[i]);
            if MIN {
                acc[i] = _mm512_fmadd_ps(mw, _mm512_set1_ps(*a[i].s.add(b)), acc[i]);
            }
        }
    }
    let mask: __mmask16 = if cols >= NR { 0xFFFF } else { (1u16 << cols) - 1 };
    for i in 0..RM {
        let mut v = acc[i];
        if add {
            v = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, out[i]), v);
        }
        _mm512_mask_storeu_ps(out[i], mask, v);
    }
}

/// `out[row][r] = x[row] · w[r]` for the prompt rows `rows` and weight rows
/// `r0..r1` (`r0` a multiple of 16), from the rows' int8 blocks in `acts`.
///
/// # Safety
/// The CPU must have AVX-512 F/BW/VL/VNNI and AVX2/FMA/F16C; `acts` must hold
/// Q8B32 blocks of every row in `rows` for `w.cols`; `out` must be `[m, w.rows]`
/// with columns `r0..r1` of those rows owned by the caller.
pub(crate) unsafe fn run_task(w: &QMatrix, r0: usize, r1: usize, acts: &QuantizedActs, rows: &[usize], out: Out, pk: &mut Packed) {
    let k = w.cols;
    debug_assert!(handles(w.format) && r0.is_multiple_of(NR));
    debug_assert!(acts.k == k);
    let (off, min) = (offset(w.format), offset(w.format) == 0);
    let nbk = k / 32;
    let groups = (r1 - r0).div_ceil(NR);
    let mut c0 = 0;
    while c0 < k {
        let kc = KC.min(k - c0);
        let (b0, nb) = (c0 / 32, kc / 32);
        debug_assert!(nb <= BLOCKS);
        pack(w, r0, r1, b0, nb, pk);
        for chunk in rows.chunks(MC) {
            for g in 0..groups {
                let first = r0 + g * NR;
                let cols = NR.min(r1 - first);
                let wq = pk.q.as_ptr().add(g * nb * 8 * 64);
                let wd = pk.d.as_ptr().add(g * nb * NR);
                let wm = if min { pk.m.as_ptr().add(g * nb * NR) } else { std::ptr::null() };
                let act = |row: usize| ActRow {
                    q: acts.qs.as_ptr().add(row * k + c0),
                    d: acts.d.as_ptr().add(row * nbk + b0),
                    isum: acts.sums.as_ptr().add(row * nbk + b0),
                    s: acts.s.as_ptr().add(row * nbk + b0),
                };
                let o = |row: usize| out.0.add(row * w.rows + first);
                let mut rest = chunk;
                while !rest.is_empty() {
                    let take = rest.len().min(MR);
                    let (sel, tail) = rest.split_at(take);
                    macro_rules! call {
                        ($n:literal) => {{
                            let a: [ActRow; $n] = std::array::from_fn(|i| act(sel[i]));
                            let outs: [*mut f32; $n] = std::array::from_fn(|i| o(sel[i]));
                            if min {
                                kernel::<$n, true>(nb, a, wq, wd, wm, off, outs, cols, c0 > 0)
                            } else {
                                kernel::<$n, false>(nb, a, wq, wd, wm, off, outs, cols, c0 > 0)
                            }
                        }};
                    }
                    match take {
                        8 => call!(8),
                        7 => call!(7),
                        6 => call!(6),
                        5 => call!(5),
                        4 => call!(4),
                        3 => call!(3),
                        2 => call!(2),
                        _ => call!(1),
                    }
                    rest = tail;
                }
            }
        }
        c0 += kc;
    }
}
