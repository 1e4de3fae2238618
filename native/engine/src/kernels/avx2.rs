//! AVX2 + FMA kernels: one weight row (as stored) against `RN` activation
//! rows at once, so each weight block is loaded and unpacked once for all of
//! them. Integer products use `maddubs` (u8 × i8 → i16 pairs) and `madd`
//! (i16 pairs → i32); no value range here can saturate them (at most
//! 2 · 128 · 127 per i16 lane). Where the CPU has VNNI, the 32-block formats
//! take `vpdpbusd` instead, which computes the same sums in one instruction.
//!
//! Batch invariance: the arithmetic for one (weight row, activation row)
//! pair is the same whatever `RN` is and whichever other rows share the
//! call, so a row's result never depends on what it was batched with.
//!
//! Every function here requires AVX2, FMA and F16C (the VNNI wrappers also
//! their extension); callers check once (see [`super::Isa`]).

#![allow(clippy::missing_safety_doc)]
// Index loops over the register tile (`acc[j]`, `isum[j]`) mirror the
// hardware layout and unroll to straight-line code.
#![allow(clippy::needless_range_loop)]

use super::act::{block_scale, QuantizedActs};
use super::formats::k4_scale_min;
use std::arch::x86_64::*;

/// Horizontal sum of 8 floats, in a fixed order.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// Quantizes one block of 32 or 256 floats to int8 (same bytes as the scalar
/// reference); returns the scale.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn quantize_block(x: &[f32], qs: &mut [i8]) -> f32 {
    debug_assert!(x.len().is_multiple_of(32) && qs.len() == x.len());
    let sign = _mm256_set1_ps(-0.0);
    let mut m = _mm256_setzero_ps();
    for c in x.chunks_exact(8) {
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(c.as_ptr())));
    }
    let m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    let m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    let m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    let (d, id) = block_scale(_mm_cvtss_f32(m4));
    let idv = _mm256_set1_ps(id);
    let lim = _mm256_set1_ps(127.0);
    let nlim = _mm256_set1_ps(-127.0);
    let perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (c, q) in x.chunks_exact(32).zip(qs.chunks_exact_mut(32)) {
        let conv = |o: usize| {
            let v = _mm256_mul_ps(_mm256_loadu_ps(c.as_ptr().add(o)), idv);
            let v = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            _mm256_cvtps_epi32(_mm256_max_ps(nlim, _mm256_min_ps(lim, v)))
        };
        let (a, b, cc, dd) = (conv(0), conv(8), conv(16), conv(24));
        let ab = _mm256_packs_epi32(a, b);
        let cd = _mm256_packs_epi32(cc, dd);
        let abcd = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd), perm);
        _mm256_storeu_si256(q.as_mut_ptr() as *mut __m256i, abcd);
    }
    d
}

/// 32 bytes: byte i is 0xFF where bit i of `x` is set.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn bytes_from_bits(x: u32) -> __m256i {
    let v = _mm256_set1_epi32(x as i32);
    let shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    let bytes = _mm256_shuffle_epi8(v, shuf);
    let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit)
}

/// 16 packed nibble bytes → 32 bytes: low nibbles first, then high nibbles.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn nibbles(p: *const u8) -> __m256i {
    let q = _mm_loadu_si128(p as *const __m128i);
    let m = _mm_set1_epi8(0x0F);
    _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m), _mm_and_si128(q, m))
}

#[inline]
unsafe fn load(p: *const i8) -> __m256i {
    _mm256_loadu_si256(p as *const __m256i)
}

/// Pointers to the activation rows one call works on, computed once per
/// group of rows and reused for every weight row.
pub struct Rows<const RN: usize> {
    qs: [*const i8; RN],
    d: [*const f32; RN],
    /// Q8B32: GGML's f16 block sums `d·Σq`.
    extra: [*const f32; RN],
    bsums: [*const i16; RN],
    x: [*const f32; RN],
    k: usize,
}

impl<const RN: usize> Rows<RN> {
    /// Rows `rows` of `a` (quantized) and `x` (f32, `k` per row); unused layouts may be empty.
    pub fn new(a: &QuantizedActs, x: &[f32], k: usize, rows: [usize; RN], block_len: usize) -> Self {
        let nb = k / block_len;
        let q = !a.qs.is_empty() && a.k == k;
        // A pointer to row r of an array with `per` values per row, checked to hold the row.
        let at = |v: &Vec<f32>, per: usize, r: usize| -> *const f32 {
            if q && v.len() >= (r + 1) * per {
                v[r * per..].as_ptr()
            } else {
                std::ptr::null()
            }
        };
        Self {
            qs: rows.map(|r| if q && a.qs.len() >= (r + 1) * k { a.qs[r * k..].as_ptr() } else { std::ptr::null() }),
            d: rows.map(|r| at(&a.d, nb, r)),
            extra: rows.map(|r| at(&a.s, nb, r)),
            bsums: rows.map(|r| {
                if q && a.bsums.len() >= (r + 1) * (k / 16) {
                    a.bsums[r * (k / 16)..].as_ptr()
                } else {
                    std::ptr::null()
                }
            }),
            x: rows.map(|r| if x.len() >= (r + 1) * k { x[r * k..].as_ptr() } else { std::ptr::null() }),
            k,
        }
    }
}

/// A format with blocks of 32 and one f16 scale per block (at byte 0; the
/// min, where there is one, at byte 2).
///
/// Symmetric formats (Q4_0, Q5_0, Q8_0) use the sign trick, `|w| · sign(y, w)`,
/// so a block's integer dot is exact. Formats with a min (Q4_1, Q5_1) dot the
/// stored unsigned values and add `m · (dx · Σy)` from the activations' block
/// sums, eight blocks at a time after the main loop.
trait Block32 {
    const BYTES: usize;
    const SIGNED: bool;
    /// The block's 32 values (signed for symmetric formats).
    unsafe fn values(b: *const u8) -> __m256i;
}

struct Q4_0;
struct Q4_1;
struct Q5_0;
struct Q5_1;
struct Q8_0;

/// The f16 at `p`, broadcast to 8 f32 lanes. A broadcast writes the whole
/// register; a scalar conversion compiles to an insert into whatever register
/// is free, often a live accumulator, which chains every block to the
/// previous one and serializes the loop.
#[inline(always)]
unsafe fn f16x8(p: *const u8) -> __m256 {
    _mm256_cvtph_ps(_mm_set1_epi16(std::ptr::read_unaligned(p as *const i16)))
}

#[inline(always)]
unsafe fn f16p(p: *const u8) -> f32 {
    _mm256_cvtss_f32(f16x8(p))
}

impl Block32 for Q4_0 {
    const BYTES: usize = 18;
    const SIGNED: bool = true;
    #[inline(always)]
    unsafe fn values(b: *const u8) -> __m256i {
        _mm256_sub_epi8(nibbles(b.add(2)), _mm256_set1_epi8(8))
    }
}

impl Block32 for Q4_1 {
    const BYTES: usize = 20;
    const SIGNED: bool = false;
    #[inline(always)]
    unsafe fn values(b: *const u8) -> __m256i {
        nibbles(b.add(4))
    }
}

#[inline(always)]
pub(crate) unsafe fn fifth_bits(p: *const u8) -> __m256i {
    let qh = u32::from_le_bytes(std::ptr::read_unaligned(p as *const [u8; 4]));
    _mm256_and_si256(bytes_from_bits(qh), _mm256_set1_epi8(0x10))
}

impl Block32 for Q5_0 {
    const BYTES: usize = 22;
    const SIGNED: bool = true;
    #[inline(always)]
    unsafe fn values(b: *const u8) -> __m256i {
        _mm256_sub_epi8(_mm256_or_si256(nibbles(b.add(6)), fifth_bits(b.add(2))), _mm256_set1_epi8(16))
    }
}

impl Block32 for Q5_1 {
    const BYTES: usize = 24;
    const SIGNED: bool = false;
    #[inline(always)]
    unsafe fn values(b: *const u8) -> __m256i {
        _mm256_or_si256(nibbles(b.add(8)), fifth_bits(b.add(4)))
    }
}

impl Block32 for Q8_0 {
    const BYTES: usize = 34;
    const SIGNED: bool = true;
    #[inline(always)]
    unsafe fn values(b: *const u8) -> __m256i {
        load(b.add(2) as *const i8)
    }
}

/// Four adjacent u8 × i8 products summed into each i32 lane. Every
/// implementation gives the same exact sums for the value ranges here.
trait IntDot {
    unsafe fn dot(u: __m256i, s: __m256i) -> __m256i;
}

/// AVX2: `maddubs` (pairs into i16) then `madd` with ones (pairs into i32).
struct Maddubs;
/// AVX-512 VNNI (EVEX, 256-bit): one `vpdpbusd`.
struct DpbusdEvex;
/// AVX-VNNI (VEX): one `vpdpbusd`.
struct DpbusdVex;

impl IntDot for Maddubs {
    #[inline(always)]
    unsafe fn dot(u: __m256i, s: __m256i) -> __m256i {
        _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
    }
}

impl IntDot for DpbusdEvex {
    #[inline(always)]
    unsafe fn dot(u: __m256i, s: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s)
    }
}

impl IntDot for DpbusdVex {
    #[inline(always)]
    unsafe fn dot(u: __m256i, s: __m256i) -> __m256i {
        _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, s)
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_block32<W: Block32, const RN: usize>(w: &[u8], r: &Rows<RN>) -> [f32; RN] {
    block32::<W, Maddubs, RN>(w, r)
}

#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn tile_block32_evex<W: Block32, const RN: usize>(w: &[u8], r: &Rows<RN>) -> [f32; RN] {
    block32::<W, DpbusdEvex, RN>(w, r)
}

#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
unsafe fn tile_block32_vex<W: Block32, const RN: usize>(w: &[u8], r: &Rows<RN>) -> [f32; RN] {
    block32::<W, DpbusdVex, RN>(w, r)
}

/// One weight row of a 32-block format against `RN` activation rows; inlined
/// into a wrapper per instruction set.
#[inline(always)]
unsafe fn block32<W: Block32, D: IntDot, const RN: usize>(w: &[u8], r: &Rows<RN>) -> [f32; RN] {
    let nb = r.k / 32;
    debug_assert!(w.len() >= nb * W::BYTES);
    let mut acc = [_mm256_setzero_ps(); RN];
    let mut offset = [_mm256_setzero_ps(); RN];
    let wp = w.as_ptr();
    for b in 0..nb {
        let wb = wp.add(b * W::BYTES);
        let q = W::values(wb);
        let d = f16x8(wb);
        let uq = if W::SIGNED { _mm256_sign_epi8(q, q) } else { q };
        for j in 0..RN {
            let mut y = load(r.qs[j].add(32 * b));
            if W::SIGNED {
                y = _mm256_sign_epi8(y, q);
            }
            let p = D::dot(uq, y);
            let s = _mm256_mul_ps(d, _mm256_broadcast_ss(&*r.d[j].add(b)));
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), s, acc[j]);
        }
    }
    if !W::SIGNED {
        // The mins' term, Σ_b m_b · (dx · Σy)_b: eight blocks per vector (the
        // mins, f16 at byte 2 of each block, collected into one register).
        let mut g = 0;
        while g < nb {
            let n = (nb - g).min(8);
            let mut h = [0u16; 8]; // blocks past the row's end: 0, so they add nothing
            for (t, v) in h.iter_mut().take(n).enumerate() {
                *v = std::ptr::read_unaligned(wp.add((g + t) * W::BYTES + 2) as *const u16);
            }
            let mins = _mm256_cvtph_ps(_mm_loadu_si128(h.as_ptr() as *const __m128i));
            for j in 0..RN {
                // The activations' sums are padded, so this load stays in bounds.
                offset[j] = _mm256_fmadd_ps(mins, _mm256_loadu_ps(r.extra[j].add(g)), offset[j]);
            }
            g += 8;
        }
    }
    let mut out = [0f32; RN];
    for j in 0..RN {
        out[j] = hsum(acc[j]) + if W::SIGNED { 0.0 } else { hsum(offset[j]) };
    }
    out
}

/// The 8 six-bit scales and mins of a Q4_K/Q5_K block: scales as bytes, mins
/// widened to 16 lanes (each twice, to pair with the activations' sums per 16).
#[inline(always)]
unsafe fn k4_scales(b: *const u8) -> ([u8; 8], __m256i) {
    let s = std::slice::from_raw_parts(b.add(4), 12);
    let mut sc = [0u8; 8];
    let mut mn = [0i16; 16];
    for j in 0..8 {
        let (a, m) = k4_scale_min(j, s);
        sc[j] = a;
        mn[2 * j] = m as i16;
        mn[2 * j + 1] = m as i16;
    }
    (sc, _mm256_loadu_si256(mn.as_ptr() as *const __m256i))
}

/// Q4_K (`FIFTH = false`) and Q5_K (`FIFTH = true`).
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_k4<const FIFTH: bool, const RN: usize>(w: &[u8], r: &Rows<RN>) -> [f32; RN] {
    let bytes = if FIFTH { 176 } else { 144 };
    let nb = r.k / 256;
    debug_assert!(w.len() >= nb * bytes);
    let m4 = _mm256_set1_epi8(0x0F);
    let (one, two) = (_mm256_set1_epi8(1), _mm256_set1_epi8(2));
    let mut acc = [_mm256_setzero_ps(); RN];
    let wp = w.as_ptr();
    for b in 0..nb {
        let wb = wp.add(b * bytes);
        let (d, dmin) = (f16x8(wb), f16x8(wb.add(2)));
        let (sc, mins) = k4_scales(wb);
        let qs = wb.add(if FIFTH { 48 } else { 16 });
        let mut hb = if FIFTH { _mm256_loadu_si256(wb.add(16) as *const __m256i) } else { _mm256_setzero_si256() };
        let mut isum = [_mm256_setzero_si256(); RN];
        for c in 0..4 {
            let q = _mm256_loadu_si256(qs.add(32 * c) as *const __m256i);
            let mut lo = _mm256_and_si256(q, m4);
            let mut hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            if FIFTH {
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hb, one), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(hb, two), 3));
                hb = _mm256_srli_epi16(hb, 2);
            }
            let sl = _mm256_set1_epi16(sc[2 * c] as i16);
            let sh = _mm256_set1_epi16(sc[2 * c + 1] as i16);
            for j in 0..RN {
                let y = r.qs[j].add(256 * b + 64 * c);
                let pl = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load(y)), sl);
                let ph = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load(y.add(32))), sh);
                isum[j] = _mm256_add_epi32(isum[j], _mm256_add_epi32(pl, ph));
            }
        }
        for j in 0..RN {
            let dx = _mm256_broadcast_ss(&*r.d[j].add(b));
            let bs = _mm256_loadu_si256(r.bsums[j].add(16 * b) as *const __m256i);
            let msum = _mm256_madd_epi16(mins, bs);
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[j]), _mm256_mul_ps(d, dx), acc[j]);
            acc[j] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_mul_ps(dmin, dx), acc[j]);
        }
    }
    let mut out = [0f32; RN];
    for j in 0..RN {
        out[j] = hsum(acc[j]);
    }
    out
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_q6k<const RN: usize>(w: &[u8], r: &Rows<RN>) -> [f32; RN] {
    let nb = r.k / 256;
    debug_assert!(w.len() >= nb * 210);
    let m4 = _mm256_set1_epi8(0x0F);
    let m30 = _mm256_set1_epi8(0x30);
    let mut acc = [_mm256_setzero_ps(); RN];
    let wp = w.as_ptr();
    for b in 0..nb {
        let wb = wp.add(b * 210);
        let d = f16x8(wb.add(208));
        let sc = std::slice::from_raw_parts(wb.add(192) as *const i8, 16);
        let sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(wb.add(192) as *const __m128i));
        // Scales of each run of 32: [sc[2k] × 8 lanes, sc[2k+1] × 8 lanes].
        let mut scv = [_mm256_setzero_si256(); 8];
        for (k, v) in scv.iter_mut().enumerate() {
            *v = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1] as i16), _mm_set1_epi16(sc[2 * k] as i16));
        }
        let mut isum = [_mm256_setzero_si256(); RN];
        for h in 0..2 {
            let ql0 = _mm256_loadu_si256(wb.add(64 * h) as *const __m256i);
            let ql1 = _mm256_loadu_si256(wb.add(64 * h + 32) as *const __m256i);
            let qh = _mm256_loadu_si256(wb.add(128 + 32 * h) as *const __m256i);
            let q = [
                _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30)),
                _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m30)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30)),
            ];
            for j in 0..RN {
                let y = r.qs[j].add(256 * b + 128 * h);
                let mut s = _mm256_setzero_si256();
                for (run, qv) in q.iter().enumerate() {
                    let p = _mm256_maddubs_epi16(*qv, load(y.add(32 * run)));
                    s = _mm256_add_epi32(s, _mm256_madd_epi16(p, scv[4 * h + run]));
                }
                isum[j] = _mm256_add_epi32(isum[j], s);
            }
        }
        for j in 0..RN {
            // Values are stored +32: subtract 32 · Σ sc · (sum of 16 activations).
            let bs = _mm256_loadu_si256(r.bsums[j].add(16 * b) as *const __m256i);
            let off = _mm256_slli_epi32(_mm256_madd_epi16(sc16, bs), 5);
            let dx = _mm256_broadcast_ss(&*r.d[j].add(b));
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(isum[j], off)), _mm256_mul_ps(d, dx), acc[j]);
        }
    }
    let mut out = [0f32; RN];
    for j in 0..RN {
        out[j] = hsum(acc[j]);
    }
    out
}

/// Float weights (F32 or F16) against f32 activation rows `x[r * k ..]`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_float<const HALF: bool, const RN: usize>(w: &[u8], r: &Rows<RN>) -> [f32; RN] {
    let (xs, k) = (r.x, r.k);
    let mut acc = [_mm256_setzero_ps(); RN];
    let full = k / 8 * 8;
    let wp = w.as_ptr();
    let wv = |i: usize| -> f32 {
        if HALF {
            f16p(wp.add(2 * i))
        } else {
            std::ptr::read_unaligned(wp.add(4 * i) as *const f32)
        }
    };
    let mut i = 0;
    while i < full {
        let wvec = if HALF {
            _mm256_cvtph_ps(_mm_loadu_si128(wp.add(2 * i) as *const __m128i))
        } else {
            _mm256_loadu_ps(wp.add(4 * i) as *const f32)
        };
        for j in 0..RN {
            acc[j] = _mm256_fmadd_ps(wvec, _mm256_loadu_ps(xs[j].add(i)), acc[j]);
        }
        i += 8;
    }
    let mut out = [0f32; RN];
    for j in 0..RN {
        let mut s = hsum(acc[j]);
        for t in full..k {
            s += wv(t) * *xs[j].add(t);
        }
        out[j] = s;
    }
    out
}

/// A 32-block format's kernel for `isa`.
#[inline(always)]
unsafe fn block32_for<W: Block32, const RN: usize>(isa: super::Isa, w: &[u8], rows: &Rows<RN>) -> [f32; RN] {
    match isa {
        super::Isa::Avx512Vnni => tile_block32_evex::<W, RN>(w, rows),
        super::Isa::AvxVnni => tile_block32_vex::<W, RN>(w, rows),
        _ => tile_block32::<W, RN>(w, rows),
    }
}

/// Dot products of one weight row against `RN` activation rows.
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C, and `isa`'s extensions; `w` must hold a full row of `format`
/// for the rows' `k`, and `rows` must have been made from activations of the
/// format's kind (f32 rows for float formats).
#[inline]
pub unsafe fn tile<const RN: usize>(isa: super::Isa, format: super::WeightFormat, w: &[u8], rows: &Rows<RN>) -> [f32; RN] {
    use super::WeightFormat as F;
    // 32-block formats spend most of their work in the integer dot, which a
    // VNNI instruction does in one step; the K-quants multiply by their
    // sub-block scales in that same `madd`, so they gain nothing from it.
    match format {
        F::F32 => tile_float::<false, RN>(w, rows),
        F::F16 => tile_float::<true, RN>(w, rows),
        F::Q4_0 => block32_for::<Q4_0, RN>(isa, w, rows),
        F::Q4_1 => block32_for::<Q4_1, RN>(isa, w, rows),
        F::Q5_0 => block32_for::<Q5_0, RN>(isa, w, rows),
        F::Q5_1 => block32_for::<Q5_1, RN>(isa, w, rows),
        F::Q8_0 => block32_for::<Q8_0, RN>(isa, w, rows),
        F::Q4K => tile_k4::<false, RN>(w, rows),
        F::Q5K => tile_k4::<true, RN>(w, rows),
        F::Q6K => tile_q6k::<RN>(w, rows),
    }
}
