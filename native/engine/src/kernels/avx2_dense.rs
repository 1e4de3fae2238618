//! AVX2 + FMA pieces of the f32 GEMM for prompt rows: dequantization of a
//! run of blocks to f32 (the same values, bit for bit, as the scalar
//! reference in `formats`), and the 16 × 6 register-blocked microkernel.
//!
//! Every function here requires AVX2, FMA and F16C; callers check once.

#![allow(clippy::missing_safety_doc)]

use super::formats::{k4_scale_min, WeightFormat};
use std::arch::x86_64::*;

#[inline(always)]
unsafe fn f16(p: *const u8) -> f32 {
    _mm256_cvtss_f32(_mm256_cvtph_ps(_mm_set1_epi16(std::ptr::read_unaligned(p as *const i16))))
}

/// 16 packed nibble bytes → 32 bytes: low nibbles first, then high nibbles.
#[inline(always)]
unsafe fn nibbles(p: *const u8) -> __m256i {
    let q = _mm_loadu_si128(p as *const __m128i);
    let m = _mm_set1_epi8(0x0F);
    _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m), _mm_and_si128(q, m))
}

/// Bit i of the little-endian u32 at `p` as 0x10 in byte i.
#[inline(always)]
unsafe fn fifth_bits(p: *const u8) -> __m256i {
    let x = std::ptr::read_unaligned(p as *const u32);
    let v = _mm256_set1_epi32(x as i32);
    let shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    let set = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(v, shuf), bit), bit);
    _mm256_and_si256(set, _mm256_set1_epi8(0x10))
}

/// 8 bytes (signed or not) → 8 f32, times `d`, plus `m` unless `m` is None.
#[inline(always)]
unsafe fn store8(q: __m128i, signed: bool, d: __m256, m: Option<__m256>, out: *mut f32) {
    let i = if signed { _mm256_cvtepi8_epi32(q) } else { _mm256_cvtepu8_epi32(q) };
    let mut v = _mm256_mul_ps(_mm256_cvtepi32_ps(i), d);
    if let Some(m) = m {
        v = _mm256_add_ps(v, m);
    }
    _mm256_storeu_ps(out, v);
}

/// 32 bytes → 32 f32 (`d · q [+ m]`).
#[inline(always)]
unsafe fn store32(q: __m256i, signed: bool, d: __m256, m: Option<__m256>, out: *mut f32) {
    let lo = _mm256_castsi256_si128(q);
    let hi = _mm256_extracti128_si256(q, 1);
    store8(lo, signed, d, m, out);
    store8(_mm_srli_si128(lo, 8), signed, d, m, out.add(8));
    store8(hi, signed, d, m, out.add(16));
    store8(_mm_srli_si128(hi, 8), signed, d, m, out.add(24));
}

/// Dequantizes blocks `b0 .. b0 + n` of a row into `out` (`n · block_len` values).
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dequantize(format: WeightFormat, row: &[u8], b0: usize, n: usize, out: &mut [f32]) {
    let (bl, bb) = (format.block_len(), format.block_bytes());
    debug_assert!(row.len() >= (b0 + n) * bb && out.len() >= n * bl);
    let o = out.as_mut_ptr();
    let base = row.as_ptr().add(b0 * bb);
    use WeightFormat::*;
    match format {
        F32 => std::ptr::copy_nonoverlapping(base as *const f32, o, n),
        F16 => {
            let full = n / 8 * 8;
            for i in (0..full).step_by(8) {
                _mm256_storeu_ps(o.add(i), _mm256_cvtph_ps(_mm_loadu_si128(base.add(2 * i) as *const __m128i)));
            }
            for i in full..n {
                *o.add(i) = f16(base.add(2 * i));
            }
        }
        Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 => {
            for b in 0..n {
                let p = base.add(b * bb);
                let d = _mm256_set1_ps(f16(p));
                let out = o.add(32 * b);
                match format {
                    Q4_0 => store32(_mm256_sub_epi8(nibbles(p.add(2)), _mm256_set1_epi8(8)), true, d, None, out),
                    Q5_0 => {
                        let q = _mm256_or_si256(nibbles(p.add(6)), fifth_bits(p.add(2)));
                        store32(_mm256_sub_epi8(q, _mm256_set1_epi8(16)), true, d, None, out)
                    }
                    Q8_0 => store32(_mm256_loadu_si256(p.add(2) as *const __m256i), true, d, None, out),
                    Q4_1 => store32(nibbles(p.add(4)), false, d, Some(_mm256_set1_ps(f16(p.add(2)))), out),
                    _ => {
                        let q = _mm256_or_si256(nibbles(p.add(8)), fifth_bits(p.add(4)));
                        store32(q, false, d, Some(_mm256_set1_ps(f16(p.add(2)))), out)
                    }
                }
            }
        }
        Q4K | Q5K => {
            let fifth = format == Q5K;
            let m4 = _mm256_set1_epi8(0x0F);
            for b in 0..n {
                let p = base.add(b * bb);
                let (d, dmin) = (f16(p), f16(p.add(2)));
                let scales = std::slice::from_raw_parts(p.add(4), 12);
                let qs = p.add(if fifth { 48 } else { 16 });
                let mut hb = if fifth { _mm256_loadu_si256(p.add(16) as *const __m256i) } else { _mm256_setzero_si256() };
                for c in 0..4 {
                    let q = _mm256_loadu_si256(qs.add(32 * c) as *const __m256i);
                    let mut lo = _mm256_and_si256(q, m4);
                    let mut hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
                    if fifth {
                        lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hb, _mm256_set1_epi8(1)), 4));
                        hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(hb, _mm256_set1_epi8(2)), 3));
                        hb = _mm256_srli_epi16(hb, 2);
                    }
                    for (half, v) in [(0usize, lo), (1, hi)] {
                        let (sc, m) = k4_scale_min(2 * c + half, scales);
                        // (d·sc)·q − dmin·m, as the scalar reference rounds it.
                        let d1 = _mm256_set1_ps(d * sc as f32);
                        let m1 = _mm256_set1_ps(-(dmin * m as f32));
                        store32(v, false, d1, Some(m1), o.add(256 * b + 64 * c + 32 * half));
                    }
                }
            }
        }
        Q6K => {
            let m4 = _mm256_set1_epi8(0x0F);
            let m30 = _mm256_set1_epi8(0x30);
            let off = _mm256_set1_epi8(32);
            for b in 0..n {
                let p = base.add(b * bb);
                let d = f16(p.add(208));
                let sc = std::slice::from_raw_parts(p.add(192) as *const i8, 16);
                for h in 0..2 {
                    let ql0 = _mm256_loadu_si256(p.add(64 * h) as *const __m256i);
                    let ql1 = _mm256_loadu_si256(p.add(64 * h + 32) as *const __m256i);
                    let qh = _mm256_loadu_si256(p.add(128 + 32 * h) as *const __m256i);
                    let runs = [
                        _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30)),
                        _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30)),
                        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m30)),
                        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30)),
                    ];
                    for (run, q) in runs.iter().enumerate() {
                        let q = _mm256_sub_epi8(*q, off);
                        let out = o.add(256 * b + 128 * h + 32 * run);
                        let g = 8 * h + 2 * run; // scales of elements 16g.. and 16(g+1)..
                        let (lo, hi) = (_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
                        let d0 = _mm256_set1_ps(d * sc[g] as f32);
                        let d1 = _mm256_set1_ps(d * sc[g + 1] as f32);
                        store8(lo, true, d0, None, out);
                        store8(_mm_srli_si128(lo, 8), true, d0, None, out.add(8));
                        store8(hi, true, d1, None, out.add(16));
                        store8(_mm_srli_si128(hi, 8), true, d1, None, out.add(24));
                    }
                }
            }
        }
    }
}

/// `out[i][j] (+)= Σ_k a[i][k] · w[k][j]` for `RM` activation rows (read
/// along k, broadcast) and 16 output columns (`w` k-major, 16 values per k),
/// over `k` values; `cols` (≤ 16) of the columns are written. Each output is
/// one lane accumulated in order of k: the result does not depend on which
/// rows share the call.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn kernel_rx16<const RM: usize>(k: usize, a: [*const f32; RM], w: *const f32, out: [*mut f32; RM], cols: usize, add: bool) {
    let mut acc = [[_mm256_setzero_ps(); 2]; RM];
    for kk in 0..k {
        let w0 = _mm256_loadu_ps(w.add(kk * 16));
        let w1 = _mm256_loadu_ps(w.add(kk * 16 + 8));
        for (i, acc) in acc.iter_mut().enumerate() {
            let av = _mm256_broadcast_ss(&*a[i].add(kk));
            acc[0] = _mm256_fmadd_ps(av, w0, acc[0]);
            acc[1] = _mm256_fmadd_ps(av, w1, acc[1]);
        }
    }
    for (i, acc) in acc.iter().enumerate() {
        let o = out[i];
        if cols == 16 {
            let (mut v0, mut v1) = (acc[0], acc[1]);
            if add {
                v0 = _mm256_add_ps(_mm256_loadu_ps(o), v0);
                v1 = _mm256_add_ps(_mm256_loadu_ps(o.add(8)), v1);
            }
            _mm256_storeu_ps(o, v0);
            _mm256_storeu_ps(o.add(8), v1);
        } else {
            let mut tmp = [0f32; 16];
            _mm256_storeu_ps(tmp.as_mut_ptr(), acc[0]);
            _mm256_storeu_ps(tmp.as_mut_ptr().add(8), acc[1]);
            for (j, t) in tmp.iter().take(cols).enumerate() {
                *o.add(j) = if add { *o.add(j) + t } else { *t };
            }
        }
    }
}
