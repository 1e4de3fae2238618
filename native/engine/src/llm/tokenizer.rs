//! LLM tokenizer: `tokenizer.json` beside the GGUF when present, otherwise
//! one rebuilt from the GGUF's own `tokenizer.ggml.*` metadata.

use super::config::{md, md_str};
use crate::{EngineError, Result};
use candle_core::quantized::gguf_file::Content;
use serde_json::{json, Value};
use std::path::Path;
use tokenizers::Tokenizer;

/// Qwen2's pre-tokenizer split (as its tokenizer.json and llama.cpp's `qwen2` pre-type use).
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Llama 3's split (llama.cpp pre-type `llama-bpe`).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Where the tokenizer came from, reported in model info.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenizerSource {
    TokenizerJson,
    GgufMetadata,
}

impl TokenizerSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenizerSource::TokenizerJson => "tokenizer.json",
            TokenizerSource::GgufMetadata => "gguf",
        }
    }
}

/// Loads `tokenizer_json` if given and present, else builds from GGUF metadata.
pub fn load_llm_tokenizer(ct: &Content, tokenizer_json: Option<&Path>) -> Result<(Tokenizer, TokenizerSource)> {
    if let Some(path) = tokenizer_json.filter(|p| p.exists()) {
        let tok = Tokenizer::from_file(path).map_err(EngineError::tokenizer)?;
        return Ok((tok, TokenizerSource::TokenizerJson));
    }
    Ok((tokenizer_from_gguf(ct)?, TokenizerSource::GgufMetadata))
}

/// Rebuilds a byte-level BPE tokenizer (`tokenizer.ggml.model == "gpt2"`)
/// from GGUF metadata, choosing the pre-tokenizer from `tokenizer.ggml.pre`.
pub fn tokenizer_from_gguf(ct: &Content) -> Result<Tokenizer> {
    let model = md_str(ct, "tokenizer.ggml.model").unwrap_or_default();
    if model != "gpt2" {
        return Err(EngineError::invalid(format!(
            "GGUF tokenizer model '{model}' is not supported without a tokenizer.json (supported: gpt2 byte-level BPE)"
        )));
    }
    let tokens = md(ct, "tokenizer.ggml.tokens")
        .ok_or_else(|| EngineError::invalid("GGUF lacks tokenizer.ggml.tokens"))?
        .to_vec()?;
    let types: Vec<i32> = match md(ct, "tokenizer.ggml.token_type") {
        Some(v) => v.to_vec()?.iter().map(|t| t.to_i32().unwrap_or(1)).collect(),
        None => vec![1; tokens.len()],
    };
    let merges: Vec<String> = match md(ct, "tokenizer.ggml.merges") {
        Some(v) => v.to_vec()?.iter().filter_map(|m| m.to_string().ok().cloned()).collect(),
        None => Vec::new(),
    };
    let mut vocab = serde_json::Map::new();
    let mut added = Vec::new();
    for (id, tok) in tokens.iter().enumerate() {
        let s = tok.to_string()?.clone();
        // Types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
        let ty = types.get(id).copied().unwrap_or(1);
        if ty == 3 || ty == 4 {
            added.push(json!({
                "id": id, "content": s, "single_word": false, "lstrip": false, "rstrip": false,
                "normalized": false, "special": ty == 3
            }));
        }
        vocab.insert(s, json!(id));
    }
    let pre = md_str(ct, "tokenizer.ggml.pre").unwrap_or_else(|| "default".into());
    let byte_level = |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": use_regex});
    let split = |pattern: &str| json!({"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false});
    let pre_tokenizer = match pre.as_str() {
        "qwen2" => json!({"type": "Sequence", "pretokenizers": [split(QWEN2_SPLIT), byte_level(false)]}),
        "llama-bpe" | "llama3" => json!({"type": "Sequence", "pretokenizers": [split(LLAMA3_SPLIT), byte_level(false)]}),
        "smollm" | "starcoder" | "refact" => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level(true)]}),
        _ => byte_level(true),
    };
    let normalizer = if pre == "qwen2" { json!({"type": "NFC"}) } else { Value::Null };
    let spec = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": normalizer,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
        "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": merges
        }
    });
    spec.to_string().parse::<Tokenizer>().map_err(EngineError::tokenizer)
}

/// Token ids the model uses to end a turn: the GGUF's EOS, plus the chat
/// end markers the vocabulary marks as control tokens (Qwen: `<|im_end|>` and
/// `<|endoftext|>`). A marker that is an ordinary token (Qwen's `</s>` is)
/// is text, not a stop.
pub fn stop_token_ids(ct: &Content, tok: &Tokenizer) -> Vec<u32> {
    let mut ids = Vec::new();
    if let Some(eos) = md(ct, "tokenizer.ggml.eos_token_id").and_then(|v| v.to_u32().ok()) {
        ids.push(eos);
    }
    let types = md(ct, "tokenizer.ggml.token_type").and_then(|v| v.to_vec().ok());
    let is_control = |id: u32| {
        types
            .and_then(|t| t.get(id as usize))
            .and_then(|v| v.to_i32().ok())
            .is_some_and(|t| t == 3)
    };
    for marker in ["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "</s>"] {
        if let Some(id) = tok.token_to_id(marker) {
            if is_control(id) && !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    ids
}
