//! The decoder forward pass on the CPU, on Candela's own kernels: weights
//! stay in their GGUF blocks (no dequantized copies, embeddings included),
//! every projection is one tiled GEMM over all rows of the step on the
//! engine's worker pool, and attention runs in parallel over (sequence,
//! head) pairs.
//!
//! Every row is computed the same way whatever else is in the step (the
//! kernels are batch-invariant and attention reads only its own sequence),
//! so batched equals single and a reused prompt prefix equals a recompute,
//! bit for bit.
//!
//! Thread-safety: the model is read-only after load; `forward` takes a lock
//! on its scratch buffers, so concurrent callers serialize.

mod attention;
pub mod kv;
mod ops;

use super::config::LlmConfig;
use crate::kernels::{self, ActBuffers, Isa, Product, QMatrix, RowSplit, ThreadPool, WeightFormat};
use crate::{EngineError, Result};
use candle_core::quantized::gguf_file;
use kv::KvCache;
use parking_lot::Mutex;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

struct Layer {
    attn_norm: Vec<f32>,
    wq: QMatrix,
    wk: QMatrix,
    wv: QMatrix,
    bq: Option<Vec<f32>>,
    bk: Option<Vec<f32>>,
    bv: Option<Vec<f32>>,
    wo: QMatrix,
    ffn_norm: Vec<f32>,
    w_gate: QMatrix,
    w_up: QMatrix,
    w_down: QMatrix,
}

/// A decoder's weights in their file formats.
pub struct CpuDecoder {
    pub config: LlmConfig,
    embed: QMatrix,
    layers: Vec<Layer>,
    norm: Vec<f32>,
    /// `None`: tied to the embeddings.
    output: Option<QMatrix>,
    /// RoPE inverse frequencies (`head_dim / 2`).
    inv_freq: Vec<f32>,
    pool: Arc<ThreadPool>,
    isa: Isa,
    scratch: Mutex<Scratch>,
    pub weight_bytes: u64,
}

/// One sequence's part of a step.
pub struct CpuStep<'a> {
    pub tokens: &'a [u32],
    pub cache: &'a mut KvCache,
}

#[derive(Default)]
struct Scratch {
    x: Vec<f32>,
    h: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    att: Vec<f32>,
    o: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    acts: ActBuffers,
}

fn grow(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if v.len() < n {
        v.resize(n, 0.0);
    }
    &mut v[..n]
}

/// Reads one tensor's bytes as stored, checking its format and shape.
fn read_matrix<R: Read + Seek>(ct: &gguf_file::Content, r: &mut R, name: &str) -> Result<QMatrix> {
    let info = ct
        .tensor_infos
        .get(name)
        .ok_or_else(|| EngineError::invalid(format!("GGUF lacks tensor '{name}'")))?;
    let format = WeightFormat::from_ggml(info.ggml_dtype)
        .ok_or_else(|| EngineError::invalid(format!("tensor '{name}': format {:?} is not supported", info.ggml_dtype)))?;
    let dims = info.shape.dims();
    if dims.len() != 2 {
        return Err(EngineError::invalid(format!("tensor '{name}' is not a matrix ({dims:?})")));
    }
    let (rows, cols) = (dims[0], dims[1]);
    let mut data = vec![0u8; rows * format.row_bytes(cols)];
    r.seek(SeekFrom::Start(ct.tensor_data_offset + info.offset))?;
    r.read_exact(&mut data)?;
    QMatrix::new(format, rows, cols, data).map_err(|e| EngineError::invalid(format!("tensor '{name}': {e}")))
}

fn read_vector<R: Read + Seek>(ct: &gguf_file::Content, r: &mut R, name: &str, len: usize) -> Result<Vec<f32>> {
    let t = ct
        .tensor(r, name, &candle_core::Device::Cpu)
        .map_err(|e| EngineError::invalid(format!("GGUF tensor '{name}': {}", crate::error::strip_backtrace(e))))?;
    let v = t.dequantize(&candle_core::Device::Cpu)?.flatten_all()?.to_vec1::<f32>()?;
    if v.len() != len {
        return Err(EngineError::invalid(format!("tensor '{name}' has {} values, expected {len}", v.len())));
    }
    Ok(v)
}

impl CpuDecoder {
    /// Loads the weights of an open GGUF, as stored.
    pub fn from_gguf<R: Read + Seek>(ct: &gguf_file::Content, reader: &mut R, config: LlmConfig, pool: Arc<ThreadPool>) -> Result<Self> {
        let cfg = &config;
        let has = |name: &str| ct.tensor_infos.contains_key(name);
        let (hidden, q_dim, kv_dim) = (cfg.hidden_size, cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim);
        let expect = |m: &QMatrix, rows: usize, cols: usize, name: &str| -> Result<()> {
            if m.rows != rows || m.cols != cols {
                return Err(EngineError::invalid(format!("tensor '{name}' is [{}, {}], expected [{rows}, {cols}]", m.rows, m.cols)));
            }
            Ok(())
        };
        let embed = read_matrix(ct, reader, "token_embd.weight")?;
        expect(&embed, cfg.vocab_size, hidden, "token_embd.weight")?;
        let output = if has("output.weight") {
            let o = read_matrix(ct, reader, "output.weight")?;
            expect(&o, cfg.vocab_size, hidden, "output.weight")?;
            Some(o)
        } else {
            None
        };
        let norm = read_vector(ct, reader, "output_norm.weight", hidden)?;
        let mut layers = Vec::with_capacity(cfg.n_layers);
        for i in 0..cfg.n_layers {
            let p = format!("blk.{i}");
            let mut mat = |n: &str, rows: usize, cols: usize| -> Result<QMatrix> {
                let name = format!("{p}.{n}.weight");
                let m = read_matrix(ct, reader, &name)?;
                expect(&m, rows, cols, &name)?;
                Ok(m)
            };
            let wq = mat("attn_q", q_dim, hidden)?;
            let wk = mat("attn_k", kv_dim, hidden)?;
            let wv = mat("attn_v", kv_dim, hidden)?;
            let wo = mat("attn_output", hidden, q_dim)?;
            let w_gate = mat("ffn_gate", cfg.ffn_size, hidden)?;
            let w_up = mat("ffn_up", cfg.ffn_size, hidden)?;
            let w_down = mat("ffn_down", hidden, cfg.ffn_size)?;
            let mut bias = |n: &str, len: usize| -> Result<Option<Vec<f32>>> {
                let name = format!("{p}.{n}.bias");
                if has(&name) {
                    Ok(Some(read_vector(ct, reader, &name, len)?))
                } else {
                    Ok(None)
                }
            };
            let (bq, bk, bv) = (bias("attn_q", q_dim)?, bias("attn_k", kv_dim)?, bias("attn_v", kv_dim)?);
            if cfg.architecture == super::Architecture::Qwen2 && (bq.is_none() || bk.is_none() || bv.is_none()) {
                return Err(EngineError::invalid(format!("qwen2 layer {i} lacks its QKV bias")));
            }
            layers.push(Layer {
                attn_norm: read_vector(ct, reader, &format!("{p}.attn_norm.weight"), hidden)?,
                ffn_norm: read_vector(ct, reader, &format!("{p}.ffn_norm.weight"), hidden)?,
                wq,
                wk,
                wv,
                bq,
                bk,
                bv,
                wo,
                w_gate,
                w_up,
                w_down,
            });
        }
        let inv_freq = (0..cfg.head_dim)
            .step_by(2)
            .map(|i| 1f32 / cfg.rope_theta.powf(i as f32 / cfg.head_dim as f32))
            .collect();
        let mut weight_bytes = (embed.bytes() + output.as_ref().map_or(0, |o| o.bytes()) + 4 * norm.len()) as u64;
        for l in &layers {
            let ms = [&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down];
            weight_bytes += ms.iter().map(|m| m.bytes() as u64).sum::<u64>();
            weight_bytes += 4 * (l.attn_norm.len() + l.ffn_norm.len()) as u64;
            weight_bytes += 4 * [&l.bq, &l.bk, &l.bv].iter().map(|b| b.as_ref().map_or(0, |b| b.len())).sum::<usize>() as u64;
        }
        Ok(Self {
            config,
            embed,
            layers,
            norm,
            output,
            inv_freq,
            pool,
            isa: Isa::detect(),
            scratch: Mutex::new(Scratch::default()),
            weight_bytes,
        })
    }

    /// A fresh, empty cache for a new sequence.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.config.n_layers, self.config.n_kv_heads, self.config.head_dim)
    }

    /// Formats of the matrices, for reporting.
    pub fn formats(&self) -> Vec<WeightFormat> {
        let mut v = vec![self.embed.format];
        v.extend(self.output.as_ref().map(|o| o.format));
        for l in &self.layers {
            v.extend([l.wq.format, l.wk.format, l.wv.format, l.wo.format, l.w_gate.format, l.w_up.format, l.w_down.format]);
        }
        v
    }

    /// Runs one step over a ragged batch; returns the logits of the last new
    /// token of every sequence, `[batch · vocab]`.
    pub fn forward(&self, batch: &mut [CpuStep<'_>]) -> Result<Vec<f32>> {
        let cfg = &self.config;
        let (hidden, hd) = (cfg.hidden_size, cfg.head_dim);
        let (q_dim, kv_dim) = (cfg.n_heads * hd, cfg.n_kv_heads * hd);
        let mut spans = Vec::with_capacity(batch.len()); // (first row, rows, first position)
        let mut n = 0;
        for item in batch.iter() {
            let start = item.cache.len();
            if item.tokens.is_empty() {
                return Err(EngineError::Internal("sequence with no new tokens in forward".into()));
            }
            if start + item.tokens.len() > cfg.context_length {
                return Err(EngineError::ContextOverflow {
                    prompt_tokens: start + item.tokens.len(),
                    max_tokens: 0,
                    needed: start + item.tokens.len(),
                    context: cfg.context_length,
                });
            }
            if let Some(bad) = item.tokens.iter().find(|&&t| t as usize >= cfg.vocab_size) {
                return Err(EngineError::invalid(format!("token id {bad} is outside the vocabulary")));
            }
            spans.push((n, item.tokens.len(), start));
            n += item.tokens.len();
        }
        let mut guard = self.scratch.lock();
        let s = &mut *guard;
        let (pool, isa) = (&*self.pool, self.isa);

        let x = grow(&mut s.x, n * hidden);
        for (row, &t) in batch.iter().flat_map(|b| b.tokens.iter()).enumerate() {
            self.embed.dequantize_row(t as usize, &mut x[row * hidden..(row + 1) * hidden]);
        }
        let positions: Vec<usize> = spans.iter().flat_map(|&(_, len, start)| start..start + len).collect();
        // A row's role (prompt or decode) is its sequence's phase, never the batch's shape.
        let prompt: Vec<bool> = batch.iter().flat_map(|b| std::iter::repeat_n(!b.cache.is_decoding(), b.tokens.len())).collect();
        let rows = RowSplit::new(&prompt);

        for (li, layer) in self.layers.iter().enumerate() {
            // Attention block.
            let h = grow(&mut s.h, n * hidden);
            ops::rms_norm(&s.x[..n * hidden], &layer.attn_norm, cfg.rms_eps as f32, h);
            let (q, k, v) = (grow(&mut s.q, n * q_dim), grow(&mut s.k, n * kv_dim), grow(&mut s.v, n * kv_dim));
            {
                let input = s.acts.prepare(isa, &s.h[..n * hidden], &rows, hidden, &[&layer.wq, &layer.wk, &layer.wv]);
                let mut jobs = [
                    Product::new(&layer.wq, &mut *q).bias(layer.bq.as_deref()),
                    Product::new(&layer.wk, &mut *k).bias(layer.bk.as_deref()),
                    Product::new(&layer.wv, &mut *v).bias(layer.bv.as_deref()),
                ];
                kernels::products(pool, isa, &input, &mut jobs);
            }
            let interleaved = cfg.architecture.interleaved_rope();
            for (row, &pos) in positions.iter().enumerate() {
                ops::rope(&mut q[row * q_dim..(row + 1) * q_dim], hd, pos, &self.inv_freq, interleaved);
                ops::rope(&mut k[row * kv_dim..(row + 1) * kv_dim], hd, pos, &self.inv_freq, interleaved);
            }
            for (item, &(off, len, _)) in batch.iter_mut().zip(&spans) {
                item.cache.append(li, &k[off * kv_dim..(off + len) * kv_dim], &v[off * kv_dim..(off + len) * kv_dim]);
            }
            let att = grow(&mut s.att, n * q_dim);
            let caches: Vec<&KvCache> = batch.iter().map(|b| &*b.cache).collect();
            ops::attention(pool, cfg, li, &caches, &spans, &s.q[..n * q_dim], att);
            let o = grow(&mut s.o, n * hidden);
            {
                let input = s.acts.prepare(isa, &s.att[..n * q_dim], &rows, q_dim, &[&layer.wo]);
                kernels::matmul(pool, isa, &input, &mut [(&layer.wo, &mut *o)]);
            }
            s.x[..n * hidden].iter_mut().zip(o.iter()).for_each(|(x, o)| *x += o);

            // MLP block.
            let h = grow(&mut s.h, n * hidden);
            ops::rms_norm(&s.x[..n * hidden], &layer.ffn_norm, cfg.rms_eps as f32, h);
            let ffn = cfg.ffn_size;
            let (gate, up) = (grow(&mut s.gate, n * ffn), grow(&mut s.up, n * ffn));
            {
                let input = s.acts.prepare(isa, &s.h[..n * hidden], &rows, hidden, &[&layer.w_gate, &layer.w_up]);
                kernels::matmul(pool, isa, &input, &mut [(&layer.w_gate, &mut *gate), (&layer.w_up, &mut *up)]);
            }
            ops::silu_mul(gate, up);
            let o = grow(&mut s.o, n * hidden);
            {
                let input = s.acts.prepare(isa, &s.gate[..n * ffn], &rows, ffn, &[&layer.w_down]);
                kernels::matmul(pool, isa, &input, &mut [(&layer.w_down, &mut *o)]);
            }
            s.x[..n * hidden].iter_mut().zip(o.iter()).for_each(|(x, o)| *x += o);
        }

        // Only the last new row of each sequence needs logits.
        let b = spans.len();
        let h = grow(&mut s.h, b * hidden);
        for (i, &(off, len, _)) in spans.iter().enumerate() {
            let row = off + len - 1;
            ops::rms_norm(&s.x[row * hidden..(row + 1) * hidden], &self.norm, cfg.rms_eps as f32, &mut h[i * hidden..(i + 1) * hidden]);
        }
        let out_w = self.output.as_ref().unwrap_or(&self.embed);
        let mut logits = vec![0f32; b * cfg.vocab_size];
        // Always the integer kernels: a step needs few logit rows, and the
        // vocabulary matrix is the largest (dequantizing it would cost more than the product).
        let last_rows = RowSplit::decode(b);
        let input = s.acts.prepare(isa, &s.h[..b * hidden], &last_rows, hidden, &[out_w]);
        kernels::matmul(pool, isa, &input, &mut [(out_w, &mut logits)]);
        Ok(logits)
    }
}
