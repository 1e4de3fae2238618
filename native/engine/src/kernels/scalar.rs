//! Scalar reference dot products: one weight row (as stored) against one
//! activation row. Every SIMD kernel is tested against these. Integer sums
//! are exact; only the per-block float scaling rounds.

use super::act::QuantizedActs;
use super::formats::{f16_at, k4_scale_min, q6k_scale_index, quant_value, WeightFormat};

/// `w_row · x` for float formats.
pub fn dot_float(format: WeightFormat, w_row: &[u8], x: &[f32]) -> f32 {
    match format {
        WeightFormat::F32 => x
            .iter()
            .enumerate()
            .map(|(i, v)| f32::from_le_bytes(w_row[4 * i..4 * i + 4].try_into().unwrap()) * v)
            .sum(),
        WeightFormat::F16 => x.iter().enumerate().map(|(i, v)| f16_at(w_row, 2 * i) * v).sum(),
        _ => unreachable!("{format:?} is not a float format"),
    }
}

/// `w_row · x_r` for quantized formats, `x` quantized to the format's [`super::ActKind`].
pub fn dot_quantized(format: WeightFormat, w_row: &[u8], x: &QuantizedActs, r: usize) -> f32 {
    use WeightFormat::*;
    let (bl, bb) = (format.block_len(), format.block_bytes());
    let nb = x.k / bl;
    let qs = x.row_qs(r);
    let mut sum = 0f32;
    for b in 0..nb {
        let w = &w_row[b * bb..(b + 1) * bb];
        let y = &qs[b * bl..(b + 1) * bl];
        let int_dot = |offset: i32, range: std::ops::Range<usize>| -> i32 {
            range.map(|i| (quant_value(format, w, i) - offset) * y[i] as i32).sum()
        };
        match format {
            Q4_0 | Q5_0 | Q8_0 => {
                let offset = match format {
                    Q4_0 => 8,
                    Q5_0 => 16,
                    _ => 0,
                };
                let d = f16_at(w, 0) * x.d[r * nb + b];
                sum += d * int_dot(offset, 0..32) as f32;
            }
            Q4_1 | Q5_1 => {
                let (d, m) = (f16_at(w, 0), f16_at(w, 2));
                sum += d * x.d[r * nb + b] * int_dot(0, 0..32) as f32 + m * x.s[r * nb + b];
            }
            Q4K | Q5K => {
                let (d, dmin) = (f16_at(w, 0), f16_at(w, 2));
                let bsums = &x.bsums[(r * nb + b) * 16..(r * nb + b + 1) * 16];
                let (mut isum, mut msum) = (0i32, 0i32);
                for j in 0..8 {
                    let (sc, m) = k4_scale_min(j, &w[4..16]);
                    isum += sc as i32 * int_dot(0, j * 32..(j + 1) * 32);
                    msum += m as i32 * (bsums[2 * j] as i32 + bsums[2 * j + 1] as i32);
                }
                let dx = x.d[r * nb + b];
                sum += d * dx * isum as f32 - dmin * dx * msum as f32;
            }
            Q6K => {
                let d = f16_at(w, 208);
                let mut parts = [0i32; 16];
                for (i, &yi) in y.iter().enumerate() {
                    parts[q6k_scale_index(i)] += (quant_value(format, w, i) - 32) * yi as i32;
                }
                let isum: i32 = parts.iter().enumerate().map(|(g, p)| (w[192 + g] as i8) as i32 * p).sum();
                sum += d * x.d[r * nb + b] * isum as f32;
            }
            F32 | F16 => unreachable!("float formats use dot_float"),
        }
    }
    sum
}
