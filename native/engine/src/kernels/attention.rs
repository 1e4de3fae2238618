//! Attention building blocks on f32: scores of a few queries against
//! transposed keys (eight keys per vector), an in-place softmax with a
//! vectorized `exp`, and the weighted sum of token-major values, 32
//! dimensions at a time. Used by the decoder (causal, over its KV cache)
//! and the encoders (bidirectional, over a sequence).
//!
//! Summation orders depend only on the shapes, not on the other work in a
//! step.

/// Keys per score block: key buffers hold a multiple of it.
pub const KEY_BLOCK: usize = 32;

/// Whether the SIMD paths run on this CPU.
pub fn simd() -> bool {
    crate::kernels::Isa::detect().simd()
}

/// `out[i][t] = scale · q_i · K[t]` for `t < t_pad` (a multiple of [`KEY_BLOCK`]);
/// `kt` is `[dim][cap]` (keys transposed), `out` is `[qs.len()][t_pad]`.
#[allow(clippy::too_many_arguments)]
pub fn scores(simd: bool, qs: &[&[f32]], kt: &[f32], cap: usize, hd: usize, t_pad: usize, scale: f32, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if simd {
        for t0 in (0..t_pad).step_by(KEY_BLOCK) {
            // SAFETY: AVX2/FMA detected; kt holds hd rows of cap ≥ t_pad keys; out holds qs.len() rows of t_pad.
            unsafe {
                match qs.len() {
                    3 => avx2::scores::<3>([qs[0], qs[1], qs[2]], kt, cap, hd, t0, scale, out, t_pad),
                    2 => avx2::scores::<2>([qs[0], qs[1]], kt, cap, hd, t0, scale, out, t_pad),
                    _ => avx2::scores::<1>([qs[0]], kt, cap, hd, t0, scale, out, t_pad),
                }
            }
        }
        return;
    }
    let _ = simd;
    for (i, q) in qs.iter().enumerate() {
        for t in 0..t_pad {
            let s: f32 = (0..hd).map(|d| q[d] * kt[d * cap + t]).sum();
            out[i * t_pad + t] = s * scale;
        }
    }
}

/// In place: `x = exp(x - max) / Σ`.
pub fn softmax(simd: bool, x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    #[cfg(target_arch = "x86_64")]
    if simd {
        // SAFETY: AVX2/FMA detected.
        unsafe { avx2::softmax(x, max) };
        return;
    }
    let _ = simd;
    let mut sum = 0f32;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    x.iter_mut().for_each(|v| *v *= inv);
}

/// `outs[i][d] = Σ_t ps[i][t] · V[t][off + d]`, V token-major with rows of `stride`.
pub fn weighted_values(simd: bool, ps: &[&[f32]], v: &[f32], stride: usize, off: usize, hd: usize, outs: &mut [&mut [f32]]) {
    #[cfg(target_arch = "x86_64")]
    if simd {
        let mut d0 = 0;
        while d0 < hd {
            let vecs = ((hd - d0) / 8).min(4);
            // SAFETY: AVX2/FMA detected; V holds ps[i].len() rows; hd is a multiple of 8.
            unsafe {
                match (ps.len(), vecs) {
                    (2, 4) => avx2::weighted::<2, 4>(ps, v, stride, off + d0, d0, outs),
                    (2, 2) | (2, 3) => avx2::weighted::<2, 2>(ps, v, stride, off + d0, d0, outs),
                    (2, _) => avx2::weighted::<2, 1>(ps, v, stride, off + d0, d0, outs),
                    (_, 4) => avx2::weighted::<1, 4>(ps, v, stride, off + d0, d0, outs),
                    (_, 2) | (_, 3) => avx2::weighted::<1, 2>(ps, v, stride, off + d0, d0, outs),
                    _ => avx2::weighted::<1, 1>(ps, v, stride, off + d0, d0, outs),
                }
            }
            d0 += match vecs {
                4 => 32,
                2 | 3 => 16,
                _ => 8,
            };
        }
        return;
    }
    let _ = simd;
    for (p, o) in ps.iter().zip(outs.iter_mut()) {
        o.fill(0.0);
        for (t, &w) in p.iter().enumerate() {
            for d in 0..hd {
                o[d] += w * v[t * stride + off + d];
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
// Index loops over the register tile mirror the hardware layout and unroll.
#[allow(clippy::needless_range_loop)]
mod avx2 {
    use crate::kernels::vecops::avx2::exp;
    use std::arch::x86_64::*;

    /// Scores of `NQ` queries against keys `t0 .. t0 + 32` (4 vectors of 8).
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn scores<const NQ: usize>(qs: [&[f32]; NQ], kt: &[f32], cap: usize, hd: usize, t0: usize, scale: f32, out: &mut [f32], t_pad: usize) {
        let mut acc = [[_mm256_setzero_ps(); 4]; NQ];
        let k = kt.as_ptr().add(t0);
        for d in 0..hd {
            let row = k.add(d * cap);
            let kv = [_mm256_loadu_ps(row), _mm256_loadu_ps(row.add(8)), _mm256_loadu_ps(row.add(16)), _mm256_loadu_ps(row.add(24))];
            for i in 0..NQ {
                let qb = _mm256_broadcast_ss(&qs[i][d]);
                for c in 0..4 {
                    acc[i][c] = _mm256_fmadd_ps(qb, kv[c], acc[i][c]);
                }
            }
        }
        let s = _mm256_set1_ps(scale);
        for i in 0..NQ {
            for c in 0..4 {
                _mm256_storeu_ps(out.as_mut_ptr().add(i * t_pad + t0 + 8 * c), _mm256_mul_ps(acc[i][c], s));
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn softmax(x: &mut [f32], max: f32) {
        let n = x.len();
        let full = n / 8 * 8;
        let m = _mm256_set1_ps(max);
        let mut sum = _mm256_setzero_ps();
        let p = x.as_mut_ptr();
        for i in (0..full).step_by(8) {
            let e = exp(_mm256_sub_ps(_mm256_loadu_ps(p.add(i)), m));
            _mm256_storeu_ps(p.add(i), e);
            sum = _mm256_add_ps(sum, e);
        }
        let mut tail = [f32::NEG_INFINITY; 8];
        tail[..n - full].copy_from_slice(&x[full..]);
        let e = exp(_mm256_sub_ps(_mm256_loadu_ps(tail.as_ptr()), m));
        // Lanes past the end hold e^(−87 − max) ≈ 0: mask them out exactly.
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let keep = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((n - full) as i32), lanes));
        let e = _mm256_and_ps(e, keep);
        sum = _mm256_add_ps(sum, e);
        _mm256_storeu_ps(tail.as_mut_ptr(), e);
        x[full..].copy_from_slice(&tail[..n - full]);
        let h = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
        let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        let total = _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
        let inv = _mm256_set1_ps(1.0 / total);
        for i in (0..full).step_by(8) {
            _mm256_storeu_ps(p.add(i), _mm256_mul_ps(_mm256_loadu_ps(p.add(i)), inv));
        }
        for v in &mut x[full..] {
            *v *= 1.0 / total;
        }
    }

    /// `outs[i][d0 + d] = Σ_t ps[i][t] · V[t][col + d]` for `d < 8 · DV`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn weighted<const NQ: usize, const DV: usize>(ps: &[&[f32]], v: &[f32], stride: usize, col: usize, d0: usize, outs: &mut [&mut [f32]]) {
        let mut acc = [[_mm256_setzero_ps(); DV]; NQ];
        let t_len = ps[0].len();
        let vp = v.as_ptr().add(col);
        for t in 0..t_len {
            let row = vp.add(t * stride);
            let mut vv = [_mm256_setzero_ps(); DV];
            for (c, x) in vv.iter_mut().enumerate() {
                *x = _mm256_loadu_ps(row.add(8 * c));
            }
            for i in 0..NQ {
                let p = _mm256_broadcast_ss(&ps[i][t]);
                for c in 0..DV {
                    acc[i][c] = _mm256_fmadd_ps(p, vv[c], acc[i][c]);
                }
            }
        }
        for i in 0..NQ {
            for c in 0..DV {
                _mm256_storeu_ps(outs[i].as_mut_ptr().add(d0 + 8 * c), acc[i][c]);
            }
        }
    }
}
