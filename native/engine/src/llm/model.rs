//! A loaded decoder-only LLM (`llama` and `qwen2` GGUF architectures), with
//! KV caches owned by the caller.
//!
//! Two backends behind one interface: on the CPU, Candela's own kernels on
//! the file's quantized blocks ([`super::cpu`]); on a GPU, candle's tensors
//! and kernels ([`super::candle_decoder`]). Weights are immutable after load,
//! so one model serves every sequence; each sequence brings its own
//! [`SequenceCache`]. A forward call takes a *ragged batch*: any number of
//! sequences, each contributing one or more new tokens.
//!
//! Thread-safety: a model is `Send + Sync` and may be shared; a forward call
//! mutates only the caches passed to it.

use super::candle_decoder::{CandleCache, CandleDecoder, CandleStep};
use super::config::LlmConfig;
use super::cpu::{kv::KvCache, CpuDecoder, CpuStep};
use crate::{kernels, EngineError, Result};
use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};

enum Backend {
    Cpu(Box<CpuDecoder>),
    Candle(Box<CandleDecoder>),
}

enum CacheInner {
    Cpu(KvCache),
    Candle(CandleCache),
}

/// One sequence's attention state.
pub struct SequenceCache(CacheInner);

impl SequenceCache {
    /// Tokens already in the cache (the position of the next token).
    pub fn len(&self) -> usize {
        match &self.0 {
            CacheInner::Cpu(c) => c.len(),
            CacheInner::Candle(c) => c.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A new cache holding the first `n` tokens of this one (prompt reuse).
    /// `None` where the backend cannot share (candle's caches).
    pub fn prefix(&self, n: usize) -> Option<SequenceCache> {
        match &self.0 {
            CacheInner::Cpu(c) => Some(SequenceCache(CacheInner::Cpu(c.prefix(n)))),
            CacheInner::Candle(_) => None,
        }
    }

    /// Keeps the first `n` tokens; false where the backend cannot.
    pub fn truncate(&mut self, n: usize) -> bool {
        match &mut self.0 {
            CacheInner::Cpu(c) => {
                c.truncate(n);
                true
            }
            CacheInner::Candle(_) => false,
        }
    }

    /// Marks the end of the prompt: later rows are decode rows (on the CPU,
    /// the integer kernels instead of the prompt GEMM).
    pub fn start_decoding(&mut self) {
        if let CacheInner::Cpu(c) = &mut self.0 {
            c.start_decoding();
        }
    }

    /// Leading tokens whose K/V were computed as prompt rows: the part another
    /// prompt may reuse with outputs unchanged.
    pub fn prompt_len(&self) -> usize {
        match &self.0 {
            CacheInner::Cpu(c) => c.prompt_len(),
            CacheInner::Candle(_) => 0,
        }
    }

    /// Bytes of keys and values held.
    pub fn bytes(&self) -> usize {
        match &self.0 {
            CacheInner::Cpu(c) => c.bytes(),
            CacheInner::Candle(_) => 0,
        }
    }
}

/// One sequence's part of a forward step.
pub struct StepInput<'a> {
    /// New tokens for this sequence, in order.
    pub tokens: &'a [u32],
    pub cache: &'a mut SequenceCache,
}

/// A loaded decoder-only model.
pub struct DecoderModel {
    pub config: LlmConfig,
    backend: Backend,
    device: Device,
    /// Bytes of weights held in memory (quantized size for quantized tensors).
    pub weight_bytes: u64,
    /// Quantization of the bulk of the weights (e.g. "Q4_K"), by count of tensors.
    pub quantization: String,
    /// Number of parameters (elements over all tensors).
    pub parameter_count: u64,
}

impl DecoderModel {
    /// Loads weights from an open GGUF: on the CPU as stored, for Candela's
    /// kernels; elsewhere into candle's quantized tensors on `device`.
    pub fn from_gguf<R: std::io::Read + std::io::Seek>(ct: &gguf_file::Content, reader: &mut R, device: &Device) -> Result<Self> {
        let config = LlmConfig::from_gguf(ct)?;
        let mut dtype_counts: std::collections::BTreeMap<String, usize> = Default::default();
        let mut parameter_count = 0u64;
        for info in ct.tensor_infos.values() {
            parameter_count += info.shape.elem_count() as u64;
            if info.shape.rank() == 2 {
                *dtype_counts.entry(format!("{:?}", info.ggml_dtype)).or_default() += 1;
            }
        }
        let quantization = dtype_counts.into_iter().max_by_key(|(_, n)| *n).map(|(k, _)| k).unwrap_or_else(|| "unknown".into());
        let (backend, weight_bytes) = if device.is_cpu() {
            let m = CpuDecoder::from_gguf(ct, reader, config.clone(), kernels::pool::global())?;
            let b = m.weight_bytes;
            (Backend::Cpu(Box::new(m)), b)
        } else {
            let m = CandleDecoder::from_gguf(ct, reader, config.clone(), device)?;
            let b = m.weight_bytes;
            (Backend::Candle(Box::new(m)), b)
        };
        Ok(Self { config, backend, device: device.clone(), weight_bytes, quantization, parameter_count })
    }

    /// A fresh, empty cache for a new sequence.
    pub fn new_cache(&self) -> SequenceCache {
        SequenceCache(match &self.backend {
            Backend::Cpu(m) => CacheInner::Cpu(m.new_cache()),
            Backend::Candle(m) => CacheInner::Candle(m.new_cache()),
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Which backend runs the model: `cpu-<isa>` or `candle`.
    pub fn backend_name(&self) -> String {
        match &self.backend {
            Backend::Cpu(_) => format!("candela-cpu-{}", kernels::Isa::detect().name()),
            Backend::Candle(_) => "candle".into(),
        }
    }

    /// Runs one step over a ragged batch and returns the logits of the last
    /// new token of every sequence, `[batch · vocab]` row after row.
    pub fn forward_logits(&self, batch: &mut [StepInput<'_>]) -> Result<Vec<f32>> {
        if batch.is_empty() {
            return Err(EngineError::Internal("empty forward batch".into()));
        }
        let mismatch = || EngineError::Internal("a sequence cache from another backend".into());
        match &self.backend {
            Backend::Cpu(m) => {
                let mut steps = Vec::with_capacity(batch.len());
                for b in batch.iter_mut() {
                    let CacheInner::Cpu(c) = &mut b.cache.0 else { return Err(mismatch()) };
                    steps.push(CpuStep { tokens: b.tokens, cache: c });
                }
                m.forward(&mut steps)
            }
            Backend::Candle(m) => {
                let mut steps = Vec::with_capacity(batch.len());
                for b in batch.iter_mut() {
                    let CacheInner::Candle(c) = &mut b.cache.0 else { return Err(mismatch()) };
                    steps.push(CandleStep { tokens: b.tokens, cache: c });
                }
                Ok(m.forward(&mut steps)?.flatten_all()?.to_vec1::<f32>()?)
            }
        }
    }

    /// [`DecoderModel::forward_logits`] as a `[batch, vocab]` tensor.
    pub fn forward(&self, batch: &mut [StepInput<'_>]) -> Result<Tensor> {
        let b = batch.len();
        let logits = self.forward_logits(batch)?;
        Ok(Tensor::from_vec(logits, (b, self.config.vocab_size), &Device::Cpu)?)
    }

    /// Logits for every position of `tokens` run one at a time through a fresh
    /// cache after a prefill of `prefill` tokens. Used by parity tests.
    pub fn logits_incremental(&self, tokens: &[u32], prefill: usize) -> Result<Vec<Vec<f32>>> {
        let mut cache = self.new_cache();
        let mut out = Vec::new();
        let prefill = prefill.clamp(1, tokens.len());
        // Prefill returns only the last row, so run prefixes to get each position.
        for end in 1..=prefill {
            let mut c = self.new_cache();
            out.push(self.forward_logits(&mut [StepInput { tokens: &tokens[..end], cache: &mut c }])?);
        }
        self.forward_logits(&mut [StepInput { tokens: &tokens[..prefill], cache: &mut cache }])?;
        for t in &tokens[prefill..] {
            out.push(self.forward_logits(&mut [StepInput { tokens: std::slice::from_ref(t), cache: &mut cache }])?);
        }
        Ok(out)
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<DecoderModel>();
}
