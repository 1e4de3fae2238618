//! BERT encoders: a sentence embedder (CLS or mean pooling, L2-normalised)
//! and a cross-encoder reranker (pooler + classifier, raw logits), both
//! batched with padding masks and explicit truncation.

pub mod cpu;
pub mod worker;

use crate::{EngineError, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{Linear, Module, VarBuilder};
use candle_transformers::models::bert::{BertModel, Config as BertConfig, HiddenAct, PositionEmbeddingType};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use tokenizers::{PaddingParams, Tokenizer};

/// Tokens one CPU forward pass takes at most (a request with more runs as
/// several passes; each sequence's result is the same either way).
pub const MAX_BATCH_TOKENS: usize = 8192;

/// How token states become one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    Cls,
    Mean,
}

impl Pooling {
    pub fn as_str(self) -> &'static str {
        match self {
            Pooling::Cls => "cls",
            Pooling::Mean => "mean",
        }
    }
}

#[derive(Deserialize, Default)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
}

#[derive(Deserialize)]
struct StConfig {
    max_seq_length: Option<usize>,
}

/// Where the forward pass runs: Candela's kernels on the CPU; candle on a
/// GPU (and for BERT variants the CPU path does not cover).
enum Backend {
    Cpu(cpu::CpuBert),
    Candle(BertModel),
}

/// Shared parts of both encoders.
struct Encoder {
    backend: Backend,
    tokenizer: Tokenizer,
    /// The same tokenizer, truncating to `max_len`.
    truncating: Tokenizer,
    config: BertConfig,
    device: Device,
    max_len: usize,
    weight_bytes: u64,
    parameter_count: u64,
}

/// Facts about a loaded encoder, for the registry.
#[derive(Debug, Clone)]
pub struct EncoderInfo {
    pub hidden_size: usize,
    pub max_length: usize,
    pub vocab_size: usize,
    pub weight_bytes: u64,
    pub parameter_count: u64,
    pub pooling: Option<Pooling>,
}

fn weights_file(dir: &Path) -> Result<PathBuf> {
    let st = dir.join("model.safetensors");
    if st.exists() {
        Ok(st)
    } else {
        Err(EngineError::invalid(format!("no model.safetensors in {}", dir.display())))
    }
}

impl Encoder {
    fn load(dir: &Path, device: &Device) -> Result<Self> {
        let config: BertConfig = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json"))?)?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json")).map_err(EngineError::tokenizer)?;
        let file = weights_file(dir)?;
        let weight_bytes = std::fs::metadata(&file)?.len();
        let cpu_supported = matches!(config.hidden_act, HiddenAct::Gelu) && matches!(config.position_embedding_type, PositionEmbeddingType::Absolute);
        let backend = if device.is_cpu() && cpu_supported {
            let dims = cpu::Dims {
                hidden: config.hidden_size,
                heads: config.num_attention_heads,
                layers: config.num_hidden_layers,
                intermediate: config.intermediate_size,
                max_positions: config.max_position_embeddings,
                type_vocab: config.type_vocab_size,
                vocab: config.vocab_size,
                eps: config.layer_norm_eps as f32,
            };
            Backend::Cpu(cpu::CpuBert::load(&file, dims, config.model_type.as_deref(), crate::kernels::pool::global())?)
        } else {
            // SAFETY: the file is memory-mapped read-only; Candela's model files are
            // written once by the fetch command and never modified while loaded.
            let vb = unsafe { VarBuilder::from_mmaped_safetensors(std::slice::from_ref(&file), DType::F32, device)? };
            Backend::Candle(BertModel::load(vb, &config)?)
        };
        let st_max = std::fs::read_to_string(dir.join("sentence_bert_config.json"))
            .ok()
            .and_then(|s| serde_json::from_str::<StConfig>(&s).ok())
            .and_then(|c| c.max_seq_length);
        let max_len = st_max.unwrap_or(config.max_position_embeddings).min(config.max_position_embeddings);
        // We pad ourselves per batch and truncate explicitly.
        tokenizer.with_truncation(None).map_err(EngineError::tokenizer)?;
        tokenizer.with_padding(None);
        let mut truncating = tokenizer.clone();
        truncating
            .with_truncation(Some(tokenizers::TruncationParams { max_length: max_len, ..Default::default() }))
            .map_err(EngineError::tokenizer)?;
        let parameter_count = count_params(&file)?;
        Ok(Self { backend, tokenizer, truncating, config, device: device.clone(), max_len, weight_bytes, parameter_count })
    }

    /// Tokenizes inputs. Over-long inputs are truncated (longest part first,
    /// as sentence-transformers does) when `truncate`, an error otherwise.
    fn tokenize(&self, inputs: Vec<tokenizers::EncodeInput<'_>>, truncate: bool) -> Result<Vec<tokenizers::Encoding>> {
        if inputs.is_empty() {
            return Err(EngineError::invalid("no inputs"));
        }
        let tok = if truncate { &self.truncating } else { &self.tokenizer };
        let encs = tok.encode_batch(inputs, true).map_err(EngineError::tokenizer)?;
        if let Some((i, e)) = encs.iter().enumerate().find(|(_, e)| e.len() > self.max_len) {
            return Err(EngineError::invalid(format!(
                "input {i} has {} tokens, more than the model's maximum of {}; pass truncate to cut it",
                e.len(),
                self.max_len
            )));
        }
        Ok(encs)
    }

    /// Hidden states of all inputs, one `[len, hidden]` block after another,
    /// and each input's token count.
    fn hidden(&self, inputs: Vec<tokenizers::EncodeInput<'_>>, truncate: bool) -> Result<(Vec<f32>, Vec<usize>)> {
        let mut encs = self.tokenize(inputs, truncate)?;
        match &self.backend {
            Backend::Cpu(m) => {
                // Every sequence at its own length: no padding. Forward passes
                // take at most MAX_BATCH_TOKENS tokens (as TEI's max_batch_tokens),
                // so a large request costs bounded memory, not a bigger batch.
                let seqs: Vec<(&[u32], &[u32])> = encs.iter().map(|e| (e.get_ids(), e.get_type_ids())).collect();
                let lens: Vec<usize> = encs.iter().map(|e| e.len()).collect();
                let mut out = Vec::with_capacity(lens.iter().sum::<usize>() * self.config.hidden_size);
                let mut start = 0;
                while start < seqs.len() {
                    let mut end = start;
                    let mut tokens = 0;
                    while end < seqs.len() && (end == start || tokens + lens[end] <= MAX_BATCH_TOKENS) {
                        tokens += lens[end];
                        end += 1;
                    }
                    out.extend(m.forward(&seqs[start..end])?);
                    start = end;
                }
                Ok((out, lens))
            }
            Backend::Candle(bert) => {
                let lens: Vec<usize> = encs.iter().map(|e| e.len()).collect();
                let pad = PaddingParams { pad_id: self.config.pad_token_id as u32, ..Default::default() };
                tokenizers::pad_encodings(&mut encs, &pad).map_err(EngineError::tokenizer)?;
                let n = encs.len();
                let len = encs[0].len();
                let flat = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> { encs.iter().flat_map(|e| f(e).to_vec()).collect() };
                let ids = Tensor::from_vec(flat(&|e| e.get_ids()), (n, len), &self.device)?;
                let types = Tensor::from_vec(flat(&|e| e.get_type_ids()), (n, len), &self.device)?;
                let mask = Tensor::from_vec(flat(&|e| e.get_attention_mask()), (n, len), &self.device)?;
                let hidden = bert.forward(&ids, &types, Some(&mask))?.to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
                let mut out = Vec::with_capacity(lens.iter().sum::<usize>() * self.config.hidden_size);
                for (i, &l) in lens.iter().enumerate() {
                    out.extend(hidden.get(i)?.narrow(0, 0, l)?.flatten_all()?.to_vec1::<f32>()?);
                }
                Ok((out, lens))
            }
        }
    }

    fn info(&self, pooling: Option<Pooling>) -> EncoderInfo {
        EncoderInfo {
            hidden_size: self.config.hidden_size,
            max_length: self.max_len,
            vocab_size: self.config.vocab_size,
            weight_bytes: self.weight_bytes,
            parameter_count: self.parameter_count,
            pooling,
        }
    }
}

/// Parameter count from the safetensors header alone (no tensor data read).
fn count_params(file: &Path) -> Result<u64> {
    use std::io::Read;
    let mut f = std::fs::File::open(file)?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len)?;
    let n = u64::from_le_bytes(len);
    if n > 100 << 20 {
        return Err(EngineError::invalid("safetensors header is implausibly large"));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header)?;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&header)?;
    Ok(header
        .iter()
        .filter(|(k, _)| k.as_str() != "__metadata__")
        .filter_map(|(_, v)| v.get("shape")?.as_array().map(|s| s.iter().filter_map(|d| d.as_u64()).product::<u64>()))
        .sum())
}

/// A sentence embedder.
pub struct Embedder {
    enc: Encoder,
    pub pooling: Pooling,
}

impl Embedder {
    /// Loads a sentence-transformers directory (config.json, model.safetensors,
    /// tokenizer.json, 1_Pooling/config.json). `pooling` overrides the config.
    pub fn load(dir: &Path, device: &Device, pooling: Option<Pooling>) -> Result<Self> {
        let enc = Encoder::load(dir, device)?;
        let pooling = match pooling {
            Some(p) => p,
            None => {
                let cfg: PoolingConfig = std::fs::read_to_string(dir.join("1_Pooling/config.json"))
                    .ok()
                    .and_then(|s| serde_json::from_str(&s).ok())
                    .unwrap_or_default();
                if cfg.pooling_mode_mean_tokens && !cfg.pooling_mode_cls_token {
                    Pooling::Mean
                } else {
                    Pooling::Cls
                }
            }
        };
        Ok(Self { enc, pooling })
    }

    pub fn info(&self) -> EncoderInfo {
        self.enc.info(Some(self.pooling))
    }

    /// Token counts of `texts` (before truncation).
    pub fn count_tokens(&self, texts: &[String]) -> Result<Vec<usize>> {
        texts
            .iter()
            .map(|t| Ok(self.enc.tokenizer.encode(t.as_str(), true).map_err(EngineError::tokenizer)?.len()))
            .collect()
    }

    /// L2-normalised embeddings, one per text, in order.
    pub fn embed(&self, texts: &[String], truncate: bool) -> Result<Vec<Vec<f32>>> {
        if texts.iter().any(|t| t.is_empty()) {
            return Err(EngineError::invalid("texts must not be empty strings"));
        }
        let inputs = texts.iter().map(|t| tokenizers::EncodeInput::Single(t.as_str().into())).collect();
        let (hidden, lens) = self.enc.hidden(inputs, truncate)?;
        let h = self.enc.config.hidden_size;
        let mut start = 0;
        Ok(lens
            .iter()
            .map(|&len| {
                let states = &hidden[start * h..(start + len) * h];
                start += len;
                let mut v: Vec<f32> = match self.pooling {
                    Pooling::Cls => states[..h].to_vec(),
                    Pooling::Mean => {
                        let mut sum = vec![0f32; h];
                        for row in states.chunks_exact(h).take(len) {
                            sum.iter_mut().zip(row).for_each(|(s, x)| *s += x);
                        }
                        sum.iter_mut().for_each(|s| *s /= len as f32);
                        sum
                    }
                };
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                v.iter_mut().for_each(|x| *x /= norm);
                v
            })
            .collect())
    }
}

/// A cross-encoder reranker (BertForSequenceClassification with one label).
pub struct CrossEncoder {
    enc: Encoder,
    pooler: Linear,
    classifier: Linear,
}

impl CrossEncoder {
    /// Loads a Hugging Face BertForSequenceClassification directory.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let enc = Encoder::load(dir, device)?;
        let file = weights_file(dir)?;
        // SAFETY: as in `Encoder::load`: a read-only mapping of a file not modified while loaded.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[file], DType::F32, device)? };
        let h = enc.config.hidden_size;
        let base = if vb.contains_tensor("bert.pooler.dense.weight") { vb.pp("bert") } else { vb.clone() };
        let pooler = candle_nn::linear(h, h, base.pp("pooler").pp("dense"))?;
        let classifier = candle_nn::linear(h, 1, vb.pp("classifier"))
            .map_err(|e| EngineError::invalid(format!("not a single-label cross-encoder: {}", crate::error::strip_backtrace(e))))?;
        Ok(Self { enc, pooler, classifier })
    }

    pub fn info(&self) -> EncoderInfo {
        self.enc.info(None)
    }

    /// Raw relevance logits of `(query, document)` pairs, in document order.
    pub fn score(&self, query: &str, documents: &[String], truncate: bool) -> Result<Vec<f32>> {
        if query.is_empty() || documents.iter().any(|d| d.is_empty()) {
            return Err(EngineError::invalid("query and documents must not be empty strings"));
        }
        let inputs = documents
            .iter()
            .map(|d| tokenizers::EncodeInput::Dual(query.into(), d.as_str().into()))
            .collect();
        let (hidden, lens) = self.enc.hidden(inputs, truncate)?;
        let h = self.enc.config.hidden_size;
        let mut cls = Vec::with_capacity(lens.len() * h);
        let mut off = 0;
        for &l in &lens {
            cls.extend_from_slice(&hidden[off * h..(off + 1) * h]);
            off += l;
        }
        let cls = Tensor::from_vec(cls, (lens.len(), h), &Device::Cpu)?.to_device(&self.enc.device)?;
        let pooled = self.pooler.forward(&cls)?.tanh()?;
        let logits = self.classifier.forward(&pooled)?.squeeze(1)?;
        Ok(logits.to_vec1::<f32>()?)
    }
}
