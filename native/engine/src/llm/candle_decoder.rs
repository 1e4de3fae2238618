//! The decoder forward pass on candle tensors and candle's quantized
//! kernels: the backend for GPUs (CUDA), where candle's kernels run. The
//! CPU uses Candela's own kernels instead (`super::cpu`).
//!
//! A forward call takes a *ragged batch*: any number of sequences, each
//! contributing one or more new tokens. Projections and the MLP run once over
//! all rows; attention runs per sequence, against that sequence's cache.
//!
//! Thread-safety: a model is `Send + Sync` and may be shared; a forward call
//! mutates only the caches passed to it.

use super::config::{Architecture, LlmConfig};
use crate::{EngineError, Result};
use candle_core::quantized::{gguf_file, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::kv_cache::KvCache;
use std::sync::Arc;

/// Granularity (tokens) by which a sequence's KV cache grows.
const KV_CHUNK: usize = 256;

struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::rms_norm(x, &self.weight, self.eps)
    }
}

struct Layer {
    attn_norm: RmsNorm,
    wq: QMatMul,
    wk: QMatMul,
    wv: QMatMul,
    bq: Option<Tensor>,
    bk: Option<Tensor>,
    bv: Option<Tensor>,
    wo: QMatMul,
    ffn_norm: RmsNorm,
    w_gate: QMatMul,
    w_up: QMatMul,
    w_down: QMatMul,
}

/// One sequence's attention state: a growing K/V cache per layer.
#[derive(Clone)]
pub struct CandleCache {
    layers: Vec<KvCache>,
}

impl CandleCache {
    /// Tokens already in the cache (the position of the next token).
    pub fn len(&self) -> usize {
        self.layers.first().map(|c| c.current_seq_len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One sequence's part of a forward step.
pub struct CandleStep<'a> {
    /// New tokens for this sequence, in order.
    pub tokens: &'a [u32],
    pub cache: &'a mut CandleCache,
}

/// A loaded decoder-only model on candle tensors.
pub struct CandleDecoder {
    pub config: LlmConfig,
    embeddings: Tensor,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: QMatMul,
    cos: Tensor,
    sin: Tensor,
    device: Device,
    /// Bytes of weights held in memory (quantized size for quantized tensors).
    pub weight_bytes: u64,
}

impl CandleDecoder {
    /// Loads weights from an open GGUF onto `device`.
    pub fn from_gguf<R: std::io::Read + std::io::Seek>(
        ct: &gguf_file::Content,
        reader: &mut R,
        config: LlmConfig,
        device: &Device,
    ) -> Result<Self> {
        let mut weight_bytes = 0u64;
        let mut get = |name: &str| -> Result<QTensor> {
            let t = ct
                .tensor(reader, name, device)
                .map_err(|e| EngineError::invalid(format!("GGUF tensor '{name}': {}", crate::error::strip_backtrace(e))))?;
            weight_bytes += t.storage_size_in_bytes() as u64;
            Ok(t)
        };
        let norm = |t: QTensor, eps: f64| -> Result<RmsNorm> {
            Ok(RmsNorm { weight: t.dequantize(device)?, eps: eps as f32 })
        };
        let has = |name: &str| ct.tensor_infos.contains_key(name);

        let embd_q = Arc::new(get("token_embd.weight")?);
        let embeddings = embd_q.dequantize(device)?;
        let output = if has("output.weight") {
            QMatMul::from_qtensor(get("output.weight")?)?
        } else {
            // Tied embeddings: the output projection reuses the quantized embedding matrix.
            QMatMul::from_arc(embd_q.clone())?
        };
        let norm_out = norm(get("output_norm.weight")?, config.rms_eps)?;

        let mut layers = Vec::with_capacity(config.n_layers);
        for i in 0..config.n_layers {
            let p = format!("blk.{i}");
            let bias = |get: &mut dyn FnMut(&str) -> Result<QTensor>, n: &str| -> Result<Option<Tensor>> {
                let name = format!("{p}.{n}.bias");
                if has(&name) {
                    Ok(Some(get(&name)?.dequantize(device)?))
                } else {
                    Ok(None)
                }
            };
            let bq = bias(&mut get, "attn_q")?;
            let bk = bias(&mut get, "attn_k")?;
            let bv = bias(&mut get, "attn_v")?;
            if config.architecture == Architecture::Qwen2 && (bq.is_none() || bk.is_none() || bv.is_none()) {
                return Err(EngineError::invalid(format!("qwen2 layer {i} lacks its QKV bias")));
            }
            layers.push(Layer {
                attn_norm: norm(get(&format!("{p}.attn_norm.weight"))?, config.rms_eps)?,
                wq: QMatMul::from_qtensor(get(&format!("{p}.attn_q.weight"))?)?,
                wk: QMatMul::from_qtensor(get(&format!("{p}.attn_k.weight"))?)?,
                wv: QMatMul::from_qtensor(get(&format!("{p}.attn_v.weight"))?)?,
                bq,
                bk,
                bv,
                wo: QMatMul::from_qtensor(get(&format!("{p}.attn_output.weight"))?)?,
                ffn_norm: norm(get(&format!("{p}.ffn_norm.weight"))?, config.rms_eps)?,
                w_gate: QMatMul::from_qtensor(get(&format!("{p}.ffn_gate.weight"))?)?,
                w_up: QMatMul::from_qtensor(get(&format!("{p}.ffn_up.weight"))?)?,
                w_down: QMatMul::from_qtensor(get(&format!("{p}.ffn_down.weight"))?)?,
            });
        }
        let (cos, sin) = rope_tables(config.head_dim, config.rope_theta, config.context_length, device)?;
        Ok(Self {
            config,
            embeddings,
            layers,
            norm: norm_out,
            output,
            cos,
            sin,
            device: device.clone(),
            weight_bytes,
        })
    }

    /// A fresh, empty cache for a new sequence.
    pub fn new_cache(&self) -> CandleCache {
        CandleCache { layers: (0..self.config.n_layers).map(|_| KvCache::new(2, KV_CHUNK)).collect() }
    }

    /// Runs one step over a ragged batch and returns the logits of the last
    /// new token of every sequence, shape `[batch, vocab]` (f32).
    pub fn forward(&self, batch: &mut [CandleStep<'_>]) -> Result<Tensor> {
        if batch.is_empty() {
            return Err(EngineError::Internal("empty forward batch".into()));
        }
        let mut all_tokens = Vec::new();
        let mut positions = Vec::new();
        let mut spans = Vec::with_capacity(batch.len());
        for item in batch.iter() {
            if item.tokens.is_empty() {
                return Err(EngineError::Internal("sequence with no new tokens in forward".into()));
            }
            let start = item.cache.len();
            if start + item.tokens.len() > self.config.context_length {
                return Err(EngineError::ContextOverflow {
                    prompt_tokens: start + item.tokens.len(),
                    max_tokens: 0,
                    needed: start + item.tokens.len(),
                    context: self.config.context_length,
                });
            }
            spans.push((all_tokens.len(), item.tokens.len()));
            all_tokens.extend_from_slice(item.tokens);
            positions.extend((start..start + item.tokens.len()).map(|p| p as u32));
        }
        let n = all_tokens.len();
        let cfg = &self.config;
        let ids = Tensor::new(all_tokens.as_slice(), &self.device)?;
        let pos = Tensor::new(positions.as_slice(), &self.device)?;
        let cos = self.cos.index_select(&pos, 0)?;
        let sin = self.sin.index_select(&pos, 0)?;
        // Rows are tokens of every sequence: [1, n, hidden].
        let mut x = self.embeddings.index_select(&ids, 0)?.unsqueeze(0)?;
        for (li, layer) in self.layers.iter().enumerate() {
            let residual = &x;
            let h = layer.attn_norm.forward(&x)?;
            let mut q = layer.wq.forward(&h)?;
            let mut k = layer.wk.forward(&h)?;
            let mut v = layer.wv.forward(&h)?;
            if let (Some(bq), Some(bk), Some(bv)) = (&layer.bq, &layer.bk, &layer.bv) {
                q = q.broadcast_add(bq)?;
                k = k.broadcast_add(bk)?;
                v = v.broadcast_add(bv)?;
            }
            let q = q.reshape((1, n, cfg.n_heads, cfg.head_dim))?.transpose(1, 2)?.contiguous()?;
            let k = k.reshape((1, n, cfg.n_kv_heads, cfg.head_dim))?.transpose(1, 2)?.contiguous()?;
            let v = v.reshape((1, n, cfg.n_kv_heads, cfg.head_dim))?.transpose(1, 2)?.contiguous()?;
            let (q, k) = if cfg.architecture.interleaved_rope() {
                (candle_nn::rotary_emb::rope_i(&q, &cos, &sin)?, candle_nn::rotary_emb::rope_i(&k, &cos, &sin)?)
            } else {
                (candle_nn::rotary_emb::rope(&q, &cos, &sin)?, candle_nn::rotary_emb::rope(&k, &cos, &sin)?)
            };
            let mut outs = Vec::with_capacity(batch.len());
            for (item, &(off, len)) in batch.iter_mut().zip(spans.iter()) {
                let qi = q.narrow(2, off, len)?;
                let ki = k.narrow(2, off, len)?.contiguous()?;
                let vi = v.narrow(2, off, len)?.contiguous()?;
                let (kc, vc) = item.cache.layers[li].append(&ki, &vi)?;
                outs.push(self.attention(&qi, &kc, &vc, len)?);
            }
            let y = if outs.len() == 1 { outs.pop().unwrap() } else { Tensor::cat(&outs, 1)? };
            let y = layer.wo.forward(&y)?;
            let x1 = (residual + y)?;
            let h = layer.ffn_norm.forward(&x1)?;
            let gate = candle_nn::ops::silu(&layer.w_gate.forward(&h)?)?;
            let up = layer.w_up.forward(&h)?;
            let mlp = layer.w_down.forward(&(gate * up)?)?;
            x = (x1 + mlp)?;
        }
        // Only the last new row of each sequence needs logits.
        let last: Vec<u32> = spans.iter().map(|&(off, len)| (off + len - 1) as u32).collect();
        let last = Tensor::new(last.as_slice(), &self.device)?;
        let x = x.squeeze(0)?.index_select(&last, 0)?;
        let x = self.norm.forward(&x)?;
        let logits = self.output.forward(&x)?;
        Ok(logits.to_dtype(DType::F32)?)
    }

    /// Causal attention of `len` new queries against a sequence's cache.
    /// Query heads sharing a KV head (GQA) are stacked as rows of one matrix,
    /// so the K/V cache is never copied per query head. Returns `[1, len, hidden]`.
    fn attention(&self, q: &Tensor, k: &Tensor, v: &Tensor, len: usize) -> Result<Tensor> {
        let cfg = &self.config;
        let (n_kv, hd) = (cfg.n_kv_heads, cfg.head_dim);
        let n_rep = cfg.n_heads / n_kv;
        let total = k.dim(2)?;
        // Query head h reads KV head h / n_rep: [n_kv, n_rep * len, hd].
        let q = q.contiguous()?.reshape((n_kv, n_rep * len, hd))?;
        let k = k.contiguous()?.reshape((n_kv, total, hd))?;
        let v = v.contiguous()?.reshape((n_kv, total, hd))?;
        let scale = 1.0 / (hd as f64).sqrt();
        let mut att = (q.matmul(&k.t()?)? * scale)?;
        if len > 1 {
            let past = total - len;
            let mask: Vec<f32> = (0..len)
                .flat_map(|i| (0..total).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 }))
                .collect();
            let mask = Tensor::from_slice(&mask, (len, total), &self.device)?;
            att = att.reshape((n_kv, n_rep, len, total))?.broadcast_add(&mask)?.reshape((n_kv, n_rep * len, total))?;
        }
        let att = candle_nn::ops::softmax_last_dim(&att)?;
        let y = att.matmul(&v)?; // [n_kv, n_rep * len, hd] == [heads, len, hd]
        Ok(y.reshape((1, cfg.n_heads, len, hd))?.transpose(1, 2)?.reshape((1, len, cfg.n_heads * hd))?)
    }
}

/// cos/sin tables `[context, head_dim / 2]` for RoPE.
fn rope_tables(head_dim: usize, theta: f32, context: usize, device: &Device) -> Result<(Tensor, Tensor)> {
    let inv: Vec<f32> = (0..head_dim)
        .step_by(2)
        .map(|i| 1f32 / theta.powf(i as f32 / head_dim as f32))
        .collect();
    let inv = Tensor::from_vec(inv, (1, head_dim / 2), device)?;
    let t = Tensor::arange(0u32, context as u32, device)?.to_dtype(DType::F32)?.reshape((context, 1))?;
    let freqs = t.matmul(&inv)?;
    Ok((freqs.cos()?, freqs.sin()?))
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<CandleDecoder>();
}

