//! Hyper-parameters of a decoder-only LLM, read from GGUF metadata.

use crate::{EngineError, Result};
use candle_core::quantized::gguf_file::{Content, Value};

/// Architectures the decoder implements. Both share the llama.cpp tensor
/// layout; they differ in RoPE layout and in Qwen2's QKV bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    Llama,
    Qwen2,
}

impl Architecture {
    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Qwen2 => "qwen2",
        }
    }

    /// llama.cpp's converter permutes Llama's Q/K rows so RoPE rotates
    /// interleaved pairs; Qwen2 keeps the NeoX half-split layout.
    pub fn interleaved_rope(self) -> bool {
        matches!(self, Architecture::Llama)
    }
}

/// Model hyper-parameters.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    pub architecture: Architecture,
    pub name: Option<String>,
    pub context_length: usize,
    pub hidden_size: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub ffn_size: usize,
    pub rope_theta: f32,
    pub rms_eps: f64,
    pub vocab_size: usize,
}

pub(crate) fn md<'a>(ct: &'a Content, key: &str) -> Option<&'a Value> {
    ct.metadata.get(key)
}

pub(crate) fn md_u32(ct: &Content, key: &str) -> Result<usize> {
    md(ct, key)
        .ok_or_else(|| EngineError::invalid(format!("GGUF metadata lacks '{key}'")))?
        .to_u32()
        .map(|v| v as usize)
        .or_else(|_| md(ct, key).unwrap().to_u64().map(|v| v as usize))
        .map_err(Into::into)
}

pub(crate) fn md_str(ct: &Content, key: &str) -> Option<String> {
    md(ct, key).and_then(|v| v.to_string().ok()).cloned()
}

impl LlmConfig {
    /// Reads the configuration of a `llama` or `qwen2` GGUF.
    pub fn from_gguf(ct: &Content) -> Result<Self> {
        let arch_name = md_str(ct, "general.architecture")
            .ok_or_else(|| EngineError::invalid("GGUF lacks general.architecture"))?;
        let architecture = match arch_name.as_str() {
            "llama" => Architecture::Llama,
            "qwen2" => Architecture::Qwen2,
            other => {
                return Err(EngineError::invalid(format!(
                    "unsupported GGUF architecture '{other}' (supported: llama, qwen2)"
                )))
            }
        };
        let a = architecture.as_str();
        let hidden_size = md_u32(ct, &format!("{a}.embedding_length"))?;
        let n_heads = md_u32(ct, &format!("{a}.attention.head_count"))?;
        let n_kv_heads = md_u32(ct, &format!("{a}.attention.head_count_kv")).unwrap_or(n_heads);
        let head_dim = md_u32(ct, &format!("{a}.attention.key_length")).unwrap_or(hidden_size / n_heads);
        let rope_theta = md(ct, &format!("{a}.rope.freq_base"))
            .and_then(|v| v.to_f32().ok())
            .unwrap_or(10_000.0);
        let rms_eps = md(ct, &format!("{a}.attention.layer_norm_rms_epsilon"))
            .and_then(|v| v.to_f32().ok())
            .unwrap_or(1e-6) as f64;
        let vocab_size = ct
            .tensor_infos
            .get("token_embd.weight")
            .map(|t| t.shape.dims()[0])
            .ok_or_else(|| EngineError::invalid("GGUF lacks token_embd.weight"))?;
        if n_heads == 0 || n_kv_heads == 0 || n_heads % n_kv_heads != 0 {
            return Err(EngineError::invalid(format!("bad head counts {n_heads}/{n_kv_heads}")));
        }
        Ok(Self {
            architecture,
            name: md_str(ct, "general.name"),
            context_length: md_u32(ct, &format!("{a}.context_length"))?,
            hidden_size,
            n_layers: md_u32(ct, &format!("{a}.block_count"))?,
            n_heads,
            n_kv_heads,
            head_dim,
            ffn_size: md_u32(ct, &format!("{a}.feed_forward_length"))?,
            rope_theta,
            rms_eps,
            vocab_size,
        })
    }
}
