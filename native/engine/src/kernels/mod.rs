//! CPU matrix products on GGUF weights as stored in the file.
//!
//! - [`formats`]: the block layouts and their scalar dequantization.
//! - [`act`]: activations quantized once per matmul input (int8 blocks).
//! - [`scalar`]: a reference dot product per format; [`avx2`]: the SIMD
//!   kernels, tested against it.
//! - [`pool`]: the persistent worker pool every product runs on.
//!
//! - [`dense`]: the f32 GEMM that prompt rows take (weights dequantized
//!   exactly, a tile at a time); with AVX-512 VNNI, the 32-block formats'
//!   prompt rows take an int8 GEMM instead (`avx512_gemm`). See [`prompt_path`].
//!
//! A product `out[m, n] = x[m, k] · Wᵀ` runs as one parallel job: the output
//! columns (weight rows) are split into tasks over the pool. Inside a task,
//! prompt rows go through the f32 GEMM (for the formats where it is faster)
//! and decode rows through the integer kernels, which unpack each weight
//! block once per group of up to eight activation rows. Which path a row
//! takes depends only on its role, never on what it is batched with, and
//! both paths are batch-invariant: a row's result is bit-identical whatever
//! shares its step.
//!
//! The instruction set is chosen once, at first use, from what the CPU
//! reports at run time (AVX-512 VNNI or AVX-VNNI on top of AVX2+FMA+F16C,
//! else AVX2 alone, else the scalar reference), never from the build machine.

pub mod act;
pub mod attention;
#[cfg(target_arch = "x86_64")]
pub mod avx2;
#[cfg(target_arch = "x86_64")]
pub mod avx2_dense;
#[cfg(target_arch = "x86_64")]
pub mod avx512_gemm;
pub mod dense;
pub mod formats;
mod matmul;
pub mod pool;
pub mod scalar;
pub mod vecops;

pub use act::QuantizedActs;
pub use formats::{ActKind, WeightFormat};
pub use pool::ThreadPool;

use std::sync::OnceLock;

/// The instruction set the kernels use.
///
/// AVX2 + FMA + F16C is the baseline the build targets (`x86-64-v3`). Where
/// the CPU also has an int8 dot-product instruction (`vpdpbusd`: AVX-512
/// VNNI with VL, or the VEX-encoded AVX-VNNI), the integer kernels use it in
/// place of AVX2's `maddubs` + `madd` pair. Both compute the same exact
/// integer sums, so every set gives bit-identical results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    Scalar,
    Avx2,
    /// AVX2 plus the VEX-encoded `vpdpbusd` (AVX-VNNI: Alder Lake, Zen 5 and later).
    AvxVnni,
    /// AVX2 plus the EVEX-encoded 256-bit `vpdpbusd` (AVX-512 VNNI + VL + BW: Ice Lake, Zen 4 and later).
    Avx512Vnni,
}

impl Isa {
    /// The best set this CPU supports (detected once).
    pub fn detect() -> Isa {
        static ISA: OnceLock<Isa> = OnceLock::new();
        *ISA.get_or_init(|| *Self::available().last().unwrap_or(&Isa::Scalar))
    }

    /// Every set this CPU can run, worst to best, for tests that compare them.
    pub fn available() -> Vec<Isa> {
        #[allow(unused_mut)]
        let mut v = vec![Isa::Scalar];
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") && std::is_x86_feature_detected!("f16c") {
            v.push(Isa::Avx2);
            if std::is_x86_feature_detected!("avxvnni") {
                v.push(Isa::AvxVnni);
            }
            if std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512vl")
                && std::is_x86_feature_detected!("avx512vnni")
            {
                v.push(Isa::Avx512Vnni);
            }
        }
        v
    }

    /// Whether the AVX2 + FMA + F16C baseline is there (every set but the scalar reference).
    pub fn simd(self) -> bool {
        self != Isa::Scalar
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::AvxVnni => "avx2+avx-vnni",
            Isa::Avx512Vnni => "avx2+avx512-vnni",
        }
    }
}

/// A weight matrix `[rows, cols]` (rows = output features) in its file format.
pub struct QMatrix {
    pub format: WeightFormat,
    pub rows: usize,
    pub cols: usize,
    row_bytes: usize,
    data: Vec<u8>,
    /// f32 weights laid out for the prompt GEMM instead of row by row
    /// (see [`QMatrix::packed_f32`]); only prompt rows can use them.
    packed: Option<Vec<f32>>,
}

impl QMatrix {
    /// Wraps `data` (the tensor's bytes as stored, row after row).
    pub fn new(format: WeightFormat, rows: usize, cols: usize, data: Vec<u8>) -> Result<Self, String> {
        if !cols.is_multiple_of(format.block_len()) {
            return Err(format!("{} rows of {cols} values are not whole blocks", format.name()));
        }
        if format.act_kind() != ActKind::F32 && !cols.is_multiple_of(32) {
            return Err(format!("quantized rows of {cols} values are not a multiple of 32"));
        }
        let row_bytes = format.row_bytes(cols);
        if data.len() != rows * row_bytes {
            return Err(format!("{} [{rows}, {cols}] needs {} bytes, got {}", format.name(), rows * row_bytes, data.len()));
        }
        Ok(Self { format, rows, cols, row_bytes, data, packed: None })
    }

    /// f32 weights (`rows · cols`, row-major) stored already in the prompt
    /// GEMM's layout (groups of 16 rows interleaved k-major per K-slice),
    /// so products never repack them. Same size as row-major (the last group
    /// zero-padded); for models whose every row is a prompt row (the encoders).
    pub fn packed_f32(rows: usize, cols: usize, values: &[f32]) -> Result<Self, String> {
        if values.len() != rows * cols {
            return Err(format!("F32 [{rows}, {cols}] needs {} values, got {}", rows * cols, values.len()));
        }
        let packed = dense::pack_f32(rows, cols, values);
        Ok(Self { format: WeightFormat::F32, rows, cols, row_bytes: 4 * cols, data: Vec::new(), packed: Some(packed) })
    }

    /// The prompt-GEMM layout, for packed matrices.
    pub(crate) fn packed(&self) -> Option<&[f32]> {
        self.packed.as_deref()
    }

    /// Bytes held (the file's size of this tensor).
    pub fn bytes(&self) -> usize {
        self.data.len() + self.packed.as_ref().map_or(0, |p| 4 * p.len())
    }

    /// Row `r` as stored. Packed matrices have no rows (they serve prompt rows only).
    #[inline]
    pub fn row(&self, r: usize) -> &[u8] {
        assert!(self.packed.is_none(), "a packed matrix has no row-major rows");
        &self.data[r * self.row_bytes..(r + 1) * self.row_bytes]
    }

    /// Row `r` as f32 (embedding lookup).
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        formats::dequantize_row(self.format, self.row(r), &mut out[..self.cols]);
    }
}

/// How the prompt rows of a product are computed (decode rows always take
/// the integer kernels). Depends only on the instruction set and the format,
/// never on the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptPath {
    /// Weights dequantized exactly to f32, FMA GEMM: exact in the activations.
    F32Gemm,
    /// Activations as int8 blocks, weights unpacked to u8, `vpdpbusd` GEMM
    /// (AVX-512 VNNI, 32-block formats): four times the multiply-adds per slot.
    Int8Gemm,
    /// The decode rows' integer kernels, eight rows per weight sweep (K-quants:
    /// as fast as the f32 GEMM, and llama.cpp's numerics).
    Integer,
}

/// The path prompt rows of `format` take on `isa`; chosen by measurement
/// (`examples/kernel_bench.rs`).
pub fn prompt_path(isa: Isa, format: WeightFormat) -> PromptPath {
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512Vnni && avx512_gemm::handles(format) {
        return PromptPath::Int8Gemm;
    }
    let _ = isa;
    if matches!(format, WeightFormat::Q4K | WeightFormat::Q5K | WeightFormat::Q6K) {
        PromptPath::Integer
    } else {
        PromptPath::F32Gemm
    }
}

pub use matmul::{matmul, products, ActBuffers, MatInput, Product, RowSplit};

/// Quantizes `values` (`rows · cols`, row-major f32) into `format` with
/// candle's reference quantizers. For tests, benchmarks and fixtures.
pub fn quantize_matrix(format: WeightFormat, values: &[f32], rows: usize, cols: usize) -> candle_core::Result<QMatrix> {
    let t = candle_core::Tensor::from_slice(values, (rows, cols), &candle_core::Device::Cpu)?;
    let q = candle_core::quantized::QTensor::quantize(&t, format.to_ggml())?;
    let data = q.data()?.into_owned();
    QMatrix::new(format, rows, cols, data).map_err(candle_core::Error::Msg)
}
