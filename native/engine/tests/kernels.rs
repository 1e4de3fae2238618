//! The CPU kernels against their references, for every weight format:
//! - our dequantization equals candle's (the GGML layouts are read right);
//! - every SIMD path equals the scalar reference within float rounding,
//!   and the VNNI sets equal AVX2 bit for bit;
//! - both stay within the exact error bound of activation quantization
//!   from dequantize + f32 matmul;
//! - a row's result does not depend on the rows batched with it;
//! - SIMD activation quantization produces the scalar bytes.
//!
//! Shapes include odd row counts, odd batch sizes and non-power-of-two widths.

use candela_engine::kernels::{self, act, formats, ActBuffers, ActKind, Isa, PromptPath, QMatrix, RowSplit, ThreadPool, WeightFormat};
use half::f16;
use rand::{rngs::StdRng, Rng, SeedableRng};

fn random_values(rng: &mut StdRng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| (rng.random::<f32>() * 2.0 - 1.0) * scale).collect()
}

/// A matrix whose blocks are random bytes (every bit pattern of qs/qh/scales),
/// with sane f16 scales so values stay finite.
fn random_block_matrix(rng: &mut StdRng, format: WeightFormat, rows: usize, cols: usize) -> QMatrix {
    let bb = format.block_bytes();
    let n_blocks = rows * cols / format.block_len();
    let mut data = vec![0u8; n_blocks * bb];
    rng.fill(&mut data[..]);
    let f16b = |v: f32| f16::from_f32(v).to_le_bytes();
    for b in data.chunks_mut(bb) {
        use WeightFormat::*;
        let mut put = |at: usize, v: f32| b[at..at + 2].copy_from_slice(&f16b(v));
        match format {
            F32 => b.copy_from_slice(&(rng.random::<f32>() - 0.5).to_le_bytes()),
            F16 => put(0, rng.random::<f32>() - 0.5),
            Q4_0 | Q5_0 | Q8_0 => put(0, rng.random::<f32>() * 0.02),
            Q4_1 | Q5_1 | Q4K | Q5K => {
                put(0, rng.random::<f32>() * 0.02);
                put(2, rng.random::<f32>() * 0.02);
            }
            Q6K => put(208, rng.random::<f32>() * 0.002),
        }
    }
    QMatrix::new(format, rows, cols, data).unwrap()
}

fn widths(format: WeightFormat) -> Vec<usize> {
    match format.block_len() {
        1 => vec![13, 64, 96],
        32 => vec![32, 224, 896],
        _ => vec![256, 768],
    }
}

fn dequantized(w: &QMatrix) -> Vec<f32> {
    let mut out = vec![0f32; w.rows * w.cols];
    for r in 0..w.rows {
        w.dequantize_row(r, &mut out[r * w.cols..(r + 1) * w.cols]);
    }
    out
}

fn run(pool: &ThreadPool, isa: Isa, w: &QMatrix, x: &[f32], m: usize) -> Vec<f32> {
    run_rows(pool, isa, w, x, &RowSplit::decode(m))
}

fn run_rows(pool: &ThreadPool, isa: Isa, w: &QMatrix, x: &[f32], rows: &RowSplit) -> Vec<f32> {
    let m = rows.len();
    let mut bufs = ActBuffers::default();
    let input = bufs.prepare(isa, x, rows, w.cols, &[w]);
    let mut out = vec![0f32; m * w.rows];
    kernels::matmul(pool, isa, &input, &mut [(w, &mut out)]);
    out
}

#[test]
fn dequantization_matches_candle() {
    let mut rng = StdRng::seed_from_u64(1);
    for format in WeightFormat::ALL {
        let cols = widths(format)[1];
        let w = random_block_matrix(&mut rng, format, 3, cols);
        let ours = dequantized(&w);
        let mut bytes = Vec::new();
        for r in 0..w.rows {
            bytes.extend_from_slice(w.row(r));
        }
        let storage = candle_core::quantized::QStorage::from_data(bytes.into(), &candle_core::Device::Cpu, format.to_ggml()).unwrap();
        let q = candle_core::quantized::QTensor::new(storage, (3, cols)).unwrap();
        let theirs: Vec<f32> = q.dequantize(&candle_core::Device::Cpu).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{}: element {i}: ours {a}, candle {b}", format.name());
        }
    }
}

#[test]
fn simd_activation_quantization_gives_the_scalar_bytes() {
    if !Isa::available().contains(&Isa::Avx2) {
        eprintln!("no AVX2 on this CPU: nothing to compare");
        return;
    }
    let mut rng = StdRng::seed_from_u64(2);
    for kind in [ActKind::Q8B32, ActKind::Q8K] {
        let (m, k) = (5, 768);
        let mut x = random_values(&mut rng, m * k, 3.0);
        x[7] = 0.0;
        x[256..512].iter_mut().for_each(|v| *v = 0.0); // an all-zero block
        let mut a = act::QuantizedActs::default();
        let mut b = act::QuantizedActs::default();
        a.quantize(kind, &x, m, k, false);
        b.quantize(kind, &x, m, k, true);
        assert_eq!(a.qs, b.qs, "{kind:?} int8 values");
        assert_eq!(a.d, b.d, "{kind:?} scales");
        assert_eq!(a.s, b.s);
        assert_eq!(a.bsums, b.bsums);
    }
}

/// Every ISA equals the scalar reference; all are within the activation-quantization
/// error bound of the f32 product with the dequantized weights.
#[test]
fn every_path_matches_the_references_on_every_format() {
    let pool = ThreadPool::new(3);
    let mut rng = StdRng::seed_from_u64(3);
    for format in WeightFormat::ALL {
        for cols in widths(format) {
            for (rows, m) in [(1usize, 1usize), (37, 1), (19, 3), (33, 5), (16, 8), (7, 17)] {
                let w = if rows % 2 == 0 {
                    let vals = random_values(&mut rng, rows * cols, 0.5);
                    kernels::quantize_matrix(format, &vals, rows, cols).unwrap()
                } else {
                    random_block_matrix(&mut rng, format, rows, cols)
                };
                let x = random_values(&mut rng, m * cols, 2.0);
                let wf = dequantized(&w);
                let reference = run(&pool, Isa::Scalar, &w, &x, m);
                // Exact bound of the activation rounding: |Σ w (x − x̂)| ≤ Σ |w| · d/2 per block.
                let mut qa = act::QuantizedActs::default();
                let kind = format.act_kind();
                if kind != ActKind::F32 {
                    qa.quantize(kind, &x, m, cols, false);
                }
                for isa in Isa::available() {
                    let got = run(&pool, isa, &w, &x, m);
                    for j in 0..m {
                        for r in 0..rows {
                            let (wr, xr) = (&wf[r * cols..(r + 1) * cols], &x[j * cols..(j + 1) * cols]);
                            let exact: f64 = wr.iter().zip(xr).map(|(a, b)| *a as f64 * *b as f64).sum();
                            let mag: f64 = wr.iter().zip(xr).map(|(a, b)| (*a as f64 * *b as f64).abs()).sum();
                            let bound = if kind == ActKind::F32 {
                                0.0
                            } else {
                                let bl = act::QuantizedActs::block_len(kind);
                                (0..cols).map(|i| wr[i].abs() as f64 * qa.d[(j * cols + i) / bl] as f64 / 2.0).sum::<f64>()
                            };
                            let g = got[j * rows + r] as f64;
                            let e = reference[j * rows + r] as f64;
                            let slack = 1e-5 * mag + 1e-6;
                            let what = format!("{} {} [{rows}x{cols}] m={m} row {j} col {r}", format.name(), isa.name());
                            assert!((g - e).abs() <= slack, "{what}: {g} vs scalar {e}");
                            assert!((g - exact).abs() <= bound * 1.0001 + slack, "{what}: {g} vs f32 {exact}, bound {bound}");
                        }
                    }
                }
            }
        }
    }
}

/// VNNI's `vpdpbusd` computes the same exact integer sums as AVX2's
/// `maddubs` + `madd`, so every VNNI set equals AVX2 bit for bit, also at the
/// extremes (every activation at ±127, weights of every bit pattern).
#[test]
fn vnni_sets_equal_avx2_bit_for_bit() {
    let available = Isa::available();
    let vnni: Vec<Isa> = available.iter().copied().filter(|i| matches!(i, Isa::AvxVnni | Isa::Avx512Vnni)).collect();
    if vnni.is_empty() {
        eprintln!("this CPU has no VNNI: nothing to compare ({:?})", available);
        return;
    }
    let pool = ThreadPool::new(2);
    let mut rng = StdRng::seed_from_u64(6);
    for format in WeightFormat::ALL {
        let cols = *widths(format).last().unwrap();
        let w = random_block_matrix(&mut rng, format, 19, cols);
        let m = 9;
        let mut x = random_values(&mut rng, m * cols, 1.0);
        // Row 0: every value at the block's maximum magnitude, so each int8 is ±127.
        for (i, v) in x[..cols].iter_mut().enumerate() {
            *v = if i % 3 == 0 { -1.0 } else { 1.0 };
        }
        let base = run(&pool, Isa::Avx2, &w, &x, m);
        for &isa in &vnni {
            assert_eq!(run(&pool, isa, &w, &x, m), base, "{} {}", format.name(), isa.name());
        }
    }
}

/// A row's output is bit-identical alone and inside any batch, on every path.
#[test]
fn results_do_not_depend_on_the_batch() {
    let pool = ThreadPool::new(2);
    let mut rng = StdRng::seed_from_u64(4);
    for format in WeightFormat::ALL {
        let cols = *widths(format).last().unwrap();
        let w = random_block_matrix(&mut rng, format, 21, cols);
        let m = 11;
        let x = random_values(&mut rng, m * cols, 1.0);
        for isa in Isa::available() {
            let batched = run(&pool, isa, &w, &x, m);
            for j in [0, 3, 10] {
                let single = run(&pool, isa, &w, &x[j * cols..(j + 1) * cols], 1);
                assert_eq!(&batched[j * w.rows..(j + 1) * w.rows], &single[..], "{} {} row {j}", format.name(), isa.name());
            }
        }
    }
}

/// Several weights sharing one input run as one job with the results of separate ones.
#[test]
fn fused_products_equal_separate_ones() {
    let pool = ThreadPool::new(2);
    let mut rng = StdRng::seed_from_u64(5);
    let cols = 256;
    let a = random_block_matrix(&mut rng, WeightFormat::Q5_0, 40, cols);
    let b = random_block_matrix(&mut rng, WeightFormat::Q4K, 24, cols);
    let c = random_block_matrix(&mut rng, WeightFormat::Q8_0, 8, cols);
    let m = 6;
    let x = random_values(&mut rng, m * cols, 1.0);
    let isa = Isa::detect();
    let mut bufs = ActBuffers::default();
    let split = RowSplit::new(&[true, false, true, true, false, false]);
    let input = bufs.prepare(isa, &x, &split, cols, &[&a, &b, &c]);
    let (mut oa, mut ob, mut oc) = (vec![0f32; m * 40], vec![0f32; m * 24], vec![0f32; m * 8]);
    kernels::matmul(&pool, isa, &input, &mut [(&a, &mut oa), (&b, &mut ob), (&c, &mut oc)]);
    assert_eq!(oa, run_rows(&pool, isa, &a, &x, &split));
    assert_eq!(ob, run_rows(&pool, isa, &b, &x, &split));
    assert_eq!(oc, run_rows(&pool, isa, &c, &x, &split));
}

#[test]
fn rejects_rows_that_are_not_whole_blocks() {
    assert!(QMatrix::new(WeightFormat::Q4K, 2, 896, vec![0; 2 * 504]).is_err());
    assert!(QMatrix::new(WeightFormat::Q8_0, 2, 64, vec![0; 3]).is_err());
    assert_eq!(formats::WeightFormat::Q5_0.row_bytes(896), 28 * 22);
}

/// The AVX2 dequantization (the f32 GEMM's weights) gives the scalar reference's values exactly.
#[test]
fn simd_dequantization_gives_the_scalar_values() {
    if !Isa::available().contains(&Isa::Avx2) {
        return;
    }
    let mut rng = StdRng::seed_from_u64(6);
    for format in WeightFormat::ALL {
        let cols = *widths(format).last().unwrap();
        let w = random_block_matrix(&mut rng, format, 2, cols);
        let mut reference = vec![0f32; cols];
        formats::dequantize_row(format, w.row(1), &mut reference);
        let bl = format.block_len();
        // A slice from the second block on, as the GEMM takes K-slices.
        let (b0, n) = (1usize, cols / bl - 1);
        let mut got = vec![0f32; n * bl];
        // SAFETY: AVX2 is available (checked above); the row holds these blocks.
        unsafe { kernels::avx2_dense::dequantize(format, w.row(1), b0, n, &mut got) };
        assert_eq!(&got[..], &reference[b0 * bl..], "{}", format.name());
    }
}

/// Prompt rows are independent of the other rows (prompt or decode) in the
/// product; where they take the f32 GEMM they are exact up to f32 rounding
/// against the dequantized weights and the same on every such ISA.
#[test]
fn prompt_rows_are_exact_and_batch_invariant() {
    let pool = ThreadPool::new(3);
    let mut rng = StdRng::seed_from_u64(7);
    for format in WeightFormat::ALL {
        let cols = *widths(format).last().unwrap();
        let rows = 23;
        let w = random_block_matrix(&mut rng, format, rows, cols);
        let wf = dequantized(&w);
        let m = 21;
        let x = random_values(&mut rng, m * cols, 1.0);
        let flags: Vec<bool> = (0..m).map(|i| i % 3 != 1).collect();
        let split = RowSplit::new(&flags);
        let mut results = Vec::new();
        for isa in Isa::available() {
            let got = run_rows(&pool, isa, &w, &x, &split);
            for j in split.prompt.iter().copied() {
                // Alone, as one prompt row.
                let alone = run_rows(&pool, isa, &w, &x[j * cols..(j + 1) * cols], &RowSplit::new(&[true]));
                assert_eq!(&got[j * rows..(j + 1) * rows], &alone[..], "{} {} row {j}", format.name(), isa.name());
                if kernels::prompt_path(isa, format) == PromptPath::F32Gemm {
                    for r in 0..rows {
                        let (wr, xr) = (&wf[r * cols..(r + 1) * cols], &x[j * cols..(j + 1) * cols]);
                        let exact: f64 = wr.iter().zip(xr).map(|(a, b)| *a as f64 * *b as f64).sum();
                        let mag: f64 = wr.iter().zip(xr).map(|(a, b)| (*a as f64 * *b as f64).abs()).sum();
                        let g = got[j * rows + r] as f64;
                        assert!((g - exact).abs() <= 1e-5 * mag + 1e-6, "{} {} row {j} col {r}: {g} vs {exact}", format.name(), isa.name());
                    }
                }
            }
            // Decode rows equal the integer path alone.
            for j in split.decode.iter().copied() {
                let alone = run(&pool, isa, &w, &x[j * cols..(j + 1) * cols], 1);
                assert_eq!(&got[j * rows..(j + 1) * rows], &alone[..], "{} {} decode row {j}", format.name(), isa.name());
            }
            results.push(got);
        }
        // Every set whose prompt rows take the f32 GEMM gives the scalar GEMM's bits.
        let f32_sets: Vec<usize> = Isa::available().iter().enumerate().filter(|(_, i)| kernels::prompt_path(**i, format) == PromptPath::F32Gemm).map(|(n, _)| n).collect();
        if f32_sets.len() > 1 {
            for j in split.prompt.iter().copied() {
                for &n in &f32_sets[1..] {
                    assert_eq!(&results[0][j * rows..(j + 1) * rows], &results[n][j * rows..(j + 1) * rows], "{}: scalar vs SIMD prompt row {j}", format.name());
                }
            }
        }
    }
}

/// Where prompt rows take the int8 GEMM (AVX-512 VNNI, 32-block formats),
/// each equals the same row on the integer kernels within float rounding,
/// stays within the activation-rounding bound of the f32 product, and does
/// not depend on the other rows (odd shapes: column tails, partial K-slices,
/// row counts that are not multiples of the tile).
#[test]
fn int8_gemm_prompt_rows_match_the_integer_kernels() {
    let sets: Vec<Isa> = Isa::available().into_iter().filter(|i| WeightFormat::ALL.iter().any(|f| kernels::prompt_path(*i, *f) == PromptPath::Int8Gemm)).collect();
    if sets.is_empty() {
        eprintln!("no instruction set here takes the int8 GEMM: nothing to compare");
        return;
    }
    let pool = ThreadPool::new(3);
    let mut rng = StdRng::seed_from_u64(8);
    for isa in sets {
        for format in WeightFormat::ALL.into_iter().filter(|f| kernels::prompt_path(isa, *f) == PromptPath::Int8Gemm) {
            for (rows, cols, m) in [(23usize, 896usize, 19usize), (16, 32, 1), (40, 224, 9), (7, 512, 3)] {
                let w = random_block_matrix(&mut rng, format, rows, cols);
                let wf = dequantized(&w);
                let x = random_values(&mut rng, m * cols, 1.5);
                let got = run_rows(&pool, isa, &w, &x, &RowSplit::new(&vec![true; m]));
                let mut qa = act::QuantizedActs::default();
                qa.quantize(format.act_kind(), &x, m, cols, false);
                for j in 0..m {
                    let xr = &x[j * cols..(j + 1) * cols];
                    let decode = run(&pool, isa, &w, xr, 1);
                    let alone = run_rows(&pool, isa, &w, xr, &RowSplit::new(&[true]));
                    assert_eq!(&got[j * rows..(j + 1) * rows], &alone[..], "{} {} [{rows}x{cols}] row {j} alone", format.name(), isa.name());
                    for r in 0..rows {
                        let wr = &wf[r * cols..(r + 1) * cols];
                        let exact: f64 = wr.iter().zip(xr).map(|(a, b)| *a as f64 * *b as f64).sum();
                        let mag: f64 = wr.iter().zip(xr).map(|(a, b)| (*a as f64 * *b as f64).abs()).sum();
                        let bound: f64 = (0..cols).map(|i| wr[i].abs() as f64 * qa.d[(j * cols + i) / 32] as f64 / 2.0).sum();
                        let g = got[j * rows + r] as f64;
                        let slack = 1e-5 * mag + 1e-6;
                        let what = format!("{} {} [{rows}x{cols}] row {j} col {r}", format.name(), isa.name());
                        assert!((g - decode[r] as f64).abs() <= slack, "{what}: {g} vs integer kernels {}", decode[r]);
                        assert!((g - exact).abs() <= bound * 1.0001 + slack, "{what}: {g} vs f32 {exact}, bound {bound}");
                    }
                }
            }
        }
    }
}

/// f32 weights stored in the GEMM's layout give the prompt rows of the row-major matrix, bit for bit.
#[test]
fn packed_f32_weights_equal_row_major_ones() {
    let pool = ThreadPool::new(2);
    let mut rng = StdRng::seed_from_u64(8);
    for (rows, cols) in [(7usize, 40usize), (50, 300), (96, 512)] {
        let vals = random_values(&mut rng, rows * cols, 0.5);
        let plain = QMatrix::new(WeightFormat::F32, rows, cols, vals.iter().flat_map(|v| v.to_le_bytes()).collect()).unwrap();
        let packed = QMatrix::packed_f32(rows, cols, &vals).unwrap();
        assert_eq!(packed.bytes() / 4, rows.div_ceil(16) * 16 * cols);
        let m = 19;
        let x = random_values(&mut rng, m * cols, 1.0);
        let split = RowSplit::new(&vec![true; m]);
        for isa in Isa::available() {
            assert_eq!(run_rows(&pool, isa, &packed, &x, &split), run_rows(&pool, isa, &plain, &x, &split), "[{rows}, {cols}] {}", isa.name());
        }
    }
}
