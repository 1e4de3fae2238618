//! f32 vector helpers for attention and normalization, AVX2 where the CPU
//! has it (same runtime choice as the matmul kernels).
//!
//! Each function's summation order is fixed by the vector length alone, so
//! a result never depends on what else runs in the same step.

use super::Isa;

/// `Σ a[i] · b[i]`.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if Isa::detect().simd() {
        // SAFETY: AVX2 and FMA were detected at run time.
        return unsafe { avx2::dot(a, b) };
    }
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `y[i] += alpha · x[i]`.
#[inline]
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    debug_assert_eq!(x.len(), y.len());
    #[cfg(target_arch = "x86_64")]
    if Isa::detect().simd() {
        // SAFETY: AVX2 and FMA were detected at run time.
        return unsafe { avx2::axpy(alpha, x, y) };
    }
    for (o, v) in y.iter_mut().zip(x) {
        *o += alpha * v;
    }
}

/// `gate[i] = silu(gate[i]) · up[i]` (SiLU-gated MLP), in place.
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    debug_assert_eq!(gate.len(), up.len());
    #[cfg(target_arch = "x86_64")]
    if Isa::detect().simd() {
        // SAFETY: AVX2 and FMA were detected at run time.
        return unsafe { avx2::silu_mul(gate, up) };
    }
    for (g, u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

/// erf(x) by Abramowitz & Stegun 7.1.26 (absolute error ≤ 1.5e-7).
#[inline]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let p = t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152 + t * 1.061_405_4))));
    let y = 1.0 - p * (-a * a).exp();
    if x < 0.0 {
        -y
    } else {
        y
    }
}

/// `x = gelu(x)` with the exact (erf) form BERT uses, in place.
pub fn gelu_erf(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if Isa::detect().simd() {
        // SAFETY: AVX2 and FMA were detected at run time.
        return unsafe { avx2::gelu_erf(x) };
    }
    for v in x.iter_mut() {
        *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// Layer normalization of each row of `x` (`w.len()` values), in place.
pub fn layer_norm(x: &mut [f32], w: &[f32], b: &[f32], eps: f32) {
    let dim = w.len();
    for row in x.chunks_exact_mut(dim) {
        let mean = row.iter().sum::<f32>() / dim as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / dim as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(w).zip(b) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use std::arch::x86_64::*;

    /// e^x to about 2 ulp for x in [−87, 88] (clamped outside): 2^n · p(r)
    /// with x = n·ln2 + r, |r| ≤ ln2/2, p of degree 6 (Cephes' expf).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn exp(x: __m256) -> __m256 {
        let x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0)), _mm256_set1_ps(88.0));
        let n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        // r = x − n·ln2 in two parts (Cody–Waite), keeping r exact.
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
        let mut p = _mm256_set1_ps(1.987_569_1e-4);
        // (Cephes' last coefficient, 5.0000001201e-1, is 0.5 in f32.)
        for c in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
        }
        let p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0));
        // 2^n in two halves, so n up to 128 stays a normal float.
        let n1 = _mm256_cvtps_epi32(_mm256_mul_ps(n, _mm256_set1_ps(0.5)));
        let n2 = _mm256_sub_epi32(_mm256_cvtps_epi32(n), n1);
        let pow = |e: __m256i| _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(127)), 23));
        _mm256_mul_ps(_mm256_mul_ps(p, pow(n1)), pow(n2))
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn gelu_erf(x: &mut [f32]) {
        let n = x.len();
        let full = n / 8 * 8;
        let p = x.as_mut_ptr();
        let sign = _mm256_set1_ps(-0.0);
        let c = |v: f32| _mm256_set1_ps(v);
        let mut i = 0;
        while i < full {
            let v = _mm256_loadu_ps(p.add(i));
            let z = _mm256_mul_ps(v, c(std::f32::consts::FRAC_1_SQRT_2));
            let a = _mm256_andnot_ps(sign, z);
            let t = _mm256_div_ps(c(1.0), _mm256_fmadd_ps(c(0.327_591_1), a, c(1.0)));
            let mut q = c(1.061_405_4);
            for k in [-1.453_152, 1.421_413_7, -0.284_496_74, 0.254_829_6] {
                q = _mm256_fmadd_ps(q, t, c(k));
            }
            let q = _mm256_mul_ps(q, t);
            let e = exp(_mm256_xor_ps(_mm256_mul_ps(a, a), sign));
            let y = _mm256_fnmadd_ps(q, e, c(1.0)); // erf(|z|)
            let y = _mm256_or_ps(y, _mm256_and_ps(z, sign)); // erf is odd
            _mm256_storeu_ps(p.add(i), _mm256_mul_ps(_mm256_mul_ps(c(0.5), v), _mm256_add_ps(c(1.0), y)));
            i += 8;
        }
        for v in &mut x[full..] {
            *v = 0.5 * *v * (1.0 + super::erf(*v * std::f32::consts::FRAC_1_SQRT_2));
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn silu_mul(gate: &mut [f32], up: &[f32]) {
        let n = gate.len().min(up.len());
        let full = n / 8 * 8;
        let (g, u) = (gate.as_mut_ptr(), up.as_ptr());
        let one = _mm256_set1_ps(1.0);
        let neg = _mm256_set1_ps(-0.0);
        let mut i = 0;
        while i < full {
            let x = _mm256_loadu_ps(g.add(i));
            let e = exp(_mm256_xor_ps(x, neg));
            let s = _mm256_div_ps(x, _mm256_add_ps(one, e));
            _mm256_storeu_ps(g.add(i), _mm256_mul_ps(s, _mm256_loadu_ps(u.add(i))));
            i += 8;
        }
        for t in full..n {
            gate[t] = gate[t] / (1.0 + (-gate[t]).exp()) * up[t];
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let full = n / 16 * 16;
        let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut i = 0;
        while i < full {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 8)), _mm256_loadu_ps(pb.add(i + 8)), s1);
            i += 16;
        }
        let s = _mm256_add_ps(s0, s1);
        let h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
        let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        let h = _mm_add_ss(h, _mm_movehdup_ps(h));
        let mut total = _mm_cvtss_f32(h);
        for t in full..n {
            total += a[t] * b[t];
        }
        total
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
        let n = x.len().min(y.len());
        let full = n / 8 * 8;
        let av = _mm256_set1_ps(alpha);
        let (px, py) = (x.as_ptr(), y.as_mut_ptr());
        let mut i = 0;
        while i < full {
            _mm256_storeu_ps(py.add(i), _mm256_fmadd_ps(av, _mm256_loadu_ps(px.add(i)), _mm256_loadu_ps(py.add(i))));
            i += 8;
        }
        for t in full..n {
            y[t] += alpha * x[t];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silu_matches_libm_closely() {
        let xs: Vec<f32> = (-2000..2000).map(|i| i as f32 * 0.05).chain([-120.0, -88.5, 87.9, 100.0]).collect();
        let up: Vec<f32> = xs.iter().map(|x| 1.0 + x.abs() * 0.01).collect();
        let mut got = xs.clone();
        silu_mul(&mut got, &up);
        for ((x, u), g) in xs.iter().zip(&up).zip(&got) {
            let want = (*x as f64 / (1.0 + (-*x as f64).exp()) * *u as f64) as f32;
            assert!((g - want).abs() <= 4e-7 * want.abs().max(1e-30) + 1e-30, "silu({x}) = {g}, want {want}");
        }
    }

    #[test]
    fn gelu_matches_the_erf_form() {
        let xs: Vec<f32> = (-1200..1200).map(|i| i as f32 * 0.01).collect();
        let mut got = xs.clone();
        gelu_erf(&mut got);
        for (x, g) in xs.iter().zip(&got) {
            let z = *x as f64 / std::f64::consts::SQRT_2;
            // erf via its series-free complement is not in std; compare with a fine numeric integral.
            let steps = 4000;
            let erf: f64 = (0..steps).map(|k| { let u = z * (k as f64 + 0.5) / steps as f64; (-u * u).exp() }).sum::<f64>() * z / steps as f64 * 2.0 / std::f64::consts::PI.sqrt();
            let want = 0.5 * *x as f64 * (1.0 + erf);
            assert!((*g as f64 - want).abs() < 3e-6 * (1.0 + x.abs() as f64), "gelu({x}) = {g}, want {want}");
        }
    }

    #[test]
    fn dot_and_axpy_match_scalar() {
        let a: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..37).map(|i| (i as f32 * 0.11).cos()).collect();
        let want: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        assert!((dot(&a, &b) as f64 - want).abs() < 1e-5);
        let mut y = b.clone();
        axpy(0.5, &a, &mut y);
        for i in 0..37 {
            assert!((y[i] - (b[i] + 0.5 * a[i])).abs() < 1e-6);
        }
    }
}
