//! GGUF weight formats as stored in the file, and their scalar dequantization.
//!
//! Each quantized format packs a row into blocks; the layouts below are
//! GGML's (little-endian, no padding), so a row's bytes are used exactly as
//! read from the file.
//!
//! | format | elements | bytes | layout |
//! |---|---|---|---|
//! | Q4_0 | 32 | 18 | d: f16, qs[16] (element j: low nibble of qs[j], j+16: high nibble), value d·(q−8) |
//! | Q4_1 | 32 | 20 | d, m: f16, qs[16], value d·q + m |
//! | Q5_0 | 32 | 22 | d, qh: u32 (bit j = 5th bit of element j), qs[16], value d·(q−16) |
//! | Q5_1 | 32 | 24 | d, m, qh, qs[16], value d·q + m |
//! | Q8_0 | 32 | 34 | d, qs: i8[32], value d·q |
//! | Q4_K | 256 | 144 | d, dmin: f16, scales[12] (8 × 6-bit scale, 8 × 6-bit min), qs[128]; value d·sc·q − dmin·m per 32 |
//! | Q5_K | 256 | 176 | d, dmin, scales[12], qh[32], qs[128] |
//! | Q6_K | 256 | 210 | ql[128], qh[64], scales: i8[16] (one per 16), d; value d·sc·(q−32) |

use candle_core::quantized::GgmlDType;
use half::f16;

/// A weight matrix's storage format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WeightFormat {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q4K,
    Q5K,
    Q6K,
}

/// How a matmul's activations are prepared for a weight format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActKind {
    /// f32 as they are (float weights).
    F32,
    /// int8 in blocks of 32 with an f32 scale and the block's scaled sum.
    Q8B32,
    /// int8 in blocks of 256 with an f32 scale and integer sums per 16.
    Q8K,
}

impl WeightFormat {
    /// Every format, for tests and dispatch tables.
    pub const ALL: [WeightFormat; 10] = [
        Self::F32,
        Self::F16,
        Self::Q4_0,
        Self::Q4_1,
        Self::Q5_0,
        Self::Q5_1,
        Self::Q8_0,
        Self::Q4K,
        Self::Q5K,
        Self::Q6K,
    ];

    pub fn from_ggml(dtype: GgmlDType) -> Option<Self> {
        Some(match dtype {
            GgmlDType::F32 => Self::F32,
            GgmlDType::F16 => Self::F16,
            GgmlDType::Q4_0 => Self::Q4_0,
            GgmlDType::Q4_1 => Self::Q4_1,
            GgmlDType::Q5_0 => Self::Q5_0,
            GgmlDType::Q5_1 => Self::Q5_1,
            GgmlDType::Q8_0 => Self::Q8_0,
            GgmlDType::Q4K => Self::Q4K,
            GgmlDType::Q5K => Self::Q5K,
            GgmlDType::Q6K => Self::Q6K,
            _ => return None,
        })
    }

    pub fn to_ggml(self) -> GgmlDType {
        match self {
            Self::F32 => GgmlDType::F32,
            Self::F16 => GgmlDType::F16,
            Self::Q4_0 => GgmlDType::Q4_0,
            Self::Q4_1 => GgmlDType::Q4_1,
            Self::Q5_0 => GgmlDType::Q5_0,
            Self::Q5_1 => GgmlDType::Q5_1,
            Self::Q8_0 => GgmlDType::Q8_0,
            Self::Q4K => GgmlDType::Q4K,
            Self::Q5K => GgmlDType::Q5K,
            Self::Q6K => GgmlDType::Q6K,
        }
    }

    /// Elements per block.
    pub fn block_len(self) -> usize {
        match self {
            Self::F32 | Self::F16 => 1,
            Self::Q4_0 | Self::Q4_1 | Self::Q5_0 | Self::Q5_1 | Self::Q8_0 => 32,
            Self::Q4K | Self::Q5K | Self::Q6K => 256,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 => 2,
            Self::Q4_0 => 18,
            Self::Q4_1 => 20,
            Self::Q5_0 => 22,
            Self::Q5_1 => 24,
            Self::Q8_0 => 34,
            Self::Q4K => 144,
            Self::Q5K => 176,
            Self::Q6K => 210,
        }
    }

    pub fn act_kind(self) -> ActKind {
        match self {
            Self::F32 | Self::F16 => ActKind::F32,
            Self::Q4_0 | Self::Q4_1 | Self::Q5_0 | Self::Q5_1 | Self::Q8_0 => ActKind::Q8B32,
            Self::Q4K | Self::Q5K | Self::Q6K => ActKind::Q8K,
        }
    }

    /// Bytes of one row of `cols` elements; `cols` must be a multiple of the block length.
    pub fn row_bytes(self, cols: usize) -> usize {
        cols / self.block_len() * self.block_bytes()
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "F32",
            Self::F16 => "F16",
            Self::Q4_0 => "Q4_0",
            Self::Q4_1 => "Q4_1",
            Self::Q5_0 => "Q5_0",
            Self::Q5_1 => "Q5_1",
            Self::Q8_0 => "Q8_0",
            Self::Q4K => "Q4_K",
            Self::Q5K => "Q5_K",
            Self::Q6K => "Q6_K",
        }
    }
}

#[inline]
pub(crate) fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

/// The 6-bit scale and min of sub-block `j` (0..8) of a Q4_K/Q5_K block.
#[inline]
pub(crate) fn k4_scale_min(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        ((s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4))
    }
}

/// Unsigned 4/5/6-bit value of element `i` of a block, before offset and scale;
/// the reference that both dequantization and the dot products read.
pub(crate) fn quant_value(format: WeightFormat, b: &[u8], i: usize) -> i32 {
    match format {
        WeightFormat::Q4_0 | WeightFormat::Q4_1 => {
            let qs = &b[if format == WeightFormat::Q4_0 { 2 } else { 4 }..];
            (if i < 16 { qs[i] & 0x0F } else { qs[i - 16] >> 4 }) as i32
        }
        WeightFormat::Q5_0 | WeightFormat::Q5_1 => {
            let o = if format == WeightFormat::Q5_0 { 2 } else { 4 };
            let qh = u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
            let qs = &b[o + 4..];
            let low = if i < 16 { qs[i] & 0x0F } else { qs[i - 16] >> 4 } as u32;
            (low | (((qh >> i) & 1) << 4)) as i32
        }
        WeightFormat::Q8_0 => b[2 + i] as i8 as i32,
        WeightFormat::Q4K => {
            let (chunk, l) = (i / 64, i % 64);
            let q = b[16 + chunk * 32 + l % 32];
            (if l < 32 { q & 0x0F } else { q >> 4 }) as i32
        }
        WeightFormat::Q5K => {
            let (chunk, l) = (i / 64, i % 64);
            let q = b[48 + chunk * 32 + l % 32];
            let low = if l < 32 { q & 0x0F } else { q >> 4 };
            let bit = (b[16 + l % 32] >> (2 * chunk + usize::from(l >= 32))) & 1;
            (low | (bit << 4)) as i32
        }
        WeightFormat::Q6K => {
            // Halves of 128; within a half, four runs of 32.
            let (half, r) = (i / 128, i % 128);
            let (run, l) = (r / 32, r % 32);
            let ql = &b[half * 64..];
            let qh = b[128 + half * 32 + l];
            let low = match run {
                0 => ql[l] & 0x0F,
                1 => ql[l + 32] & 0x0F,
                2 => ql[l] >> 4,
                _ => ql[l + 32] >> 4,
            };
            (low | (((qh >> (2 * run)) & 3) << 4)) as i32
        }
        WeightFormat::F32 | WeightFormat::F16 => unreachable!("float formats have no quantized values"),
    }
}

/// Scalar dequantization of one block into `out` (`block_len` values).
pub fn dequantize_block(format: WeightFormat, b: &[u8], out: &mut [f32]) {
    use WeightFormat::*;
    match format {
        F32 => out[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        F16 => out[0] = f16_at(b, 0),
        Q4_0 | Q5_0 | Q8_0 => {
            let d = f16_at(b, 0);
            let offset = match format {
                Q4_0 => 8,
                Q5_0 => 16,
                _ => 0,
            };
            for (i, o) in out.iter_mut().enumerate().take(32) {
                *o = d * (quant_value(format, b, i) - offset) as f32;
            }
        }
        Q4_1 | Q5_1 => {
            let (d, m) = (f16_at(b, 0), f16_at(b, 2));
            for (i, o) in out.iter_mut().enumerate().take(32) {
                *o = d * quant_value(format, b, i) as f32 + m;
            }
        }
        Q4K | Q5K => {
            let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
            for (i, o) in out.iter_mut().enumerate().take(256) {
                let (sc, m) = k4_scale_min(i / 32, &b[4..16]);
                *o = d * sc as f32 * quant_value(format, b, i) as f32 - dmin * m as f32;
            }
        }
        Q6K => {
            let d = f16_at(b, 208);
            for (i, o) in out.iter_mut().enumerate().take(256) {
                let sc = b[192 + q6k_scale_index(i)] as i8;
                *o = d * sc as f32 * (quant_value(format, b, i) - 32) as f32;
            }
        }
    }
}

/// Which of a Q6_K block's 16 scales covers element `i`.
#[inline]
pub(crate) fn q6k_scale_index(i: usize) -> usize {
    let (half, r) = (i / 128, i % 128);
    let (run, l) = (r / 32, r % 32);
    half * 8 + run * 2 + l / 16
}

/// Scalar dequantization of a whole row (`out.len()` elements).
pub fn dequantize_row(format: WeightFormat, row: &[u8], out: &mut [f32]) {
    let (bl, bb) = (format.block_len(), format.block_bytes());
    for (o, b) in out.chunks_mut(bl).zip(row.chunks(bb)) {
        dequantize_block(format, b, o);
    }
}
