//! Tiny random-weight models that tests generate themselves (nothing is committed but
//! the reference outputs in `native/engine/tests/fixtures/reference.json`).
//!
//! * [`write_tiny_llm`] writes a GGUF file laid out exactly as llama.cpp's
//!   `convert_hf_to_gguf.py` would produce it from a Hugging Face `Qwen2ForCausalLM`
//!   (tied embeddings, q/k/v biases) or `LlamaForCausalLM` (untied, no biases).
//! * [`write_tiny_bert`] writes a Hugging Face / sentence-transformers directory
//!   (`config.json`, `model.safetensors`, `tokenizer.json`, ...) for a `BertModel`
//!   embedder (CLS or mean pooling) or a `BertForSequenceClassification` cross-encoder.
//!
//! # Weight generation rules (re-implemented bit-for-bit in `tests/reference/make_reference.py`)
//!
//! Every tensor is generated from its **Hugging Face name** (as `transformers` saves it,
//! e.g. `model.layers.0.self_attn.q_proj.weight`, `bert.pooler.dense.weight`) and its
//! **Hugging Face shape** (Linear weights are `[out, in]`), then transformed for the file
//! format (renamed / permuted for GGUF; stored as-is in safetensors).
//!
//! 1. `seed = fnv1a64(utf8(hf_name)) ^ BASE_SEED` with `BASE_SEED = 0x9E3779B97F4A7C15`;
//!    FNV-1a 64: offset basis `0xcbf29ce484222325`, prime `0x100000001b3`, per byte
//!    `h ^= b; h *= prime` (wrapping).
//! 2. splitmix64 stream: `state += 0x9E3779B97F4A7C15; z = state;
//!    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
//!    out = z ^ (z >> 31)` (all wrapping u64). The first output is used for element 0.
//! 3. Per element, in row-major order of the HF shape: `u = (next() >> 40) as f64 / 16777216.0`
//!    (in `[0, 1)`), `r = 2.0 * u - 1.0` (f64), then the value (computed in f64, rounded
//!    to f32 at the end) is chosen by the tensor's kind. Let `module` be the name's
//!    second-to-last dot-separated segment (`...<module>.weight`):
//!    * `module` contains `norm` (case-insensitive; RMSNorm and LayerNorm):
//!      `.weight` -> `1.0 + r * 0.1`, `.bias` -> `r * 0.05`;
//!    * else `module` contains `embed` (`embed_tokens`, `word_embeddings`,
//!      `position_embeddings`, `token_type_embeddings`): `r * 0.5`;
//!    * else `.bias`: `r * 0.1`;
//!    * else (2-D Linear weight `[out, in]`): `r * (1.0 / sqrt(in as f64))`.
//!
//! # GGUF transforms
//! Names map as llama.cpp does (`model.embed_tokens` -> `token_embd`, `input_layernorm` ->
//! `attn_norm`, `self_attn.{q,k,v,o}_proj` -> `attn_{q,k,v,output}`,
//! `post_attention_layernorm` -> `ffn_norm`, `mlp.{gate,up,down}_proj` -> `ffn_{gate,up,down}`,
//! `model.norm` -> `output_norm`, `lm_head` -> `output`). candle's GGUF writer takes candle
//! dims (= HF dims, `[out, in]`) and stores them reversed (ggml `ne`), exactly like the
//! converter, so no transpose is needed. For Llama only, `q_proj.weight` and
//! `k_proj.weight` get the converter's permutation
//! `w.reshape(n_head, 2, out/n_head/2, in).swapaxes(1, 2).reshape(out, in)` with
//! `n_head = head_count` for Q and `head_count_kv` for K. Qwen2 is not permuted.
//! With [`TinyDtype::Q8_0`] / [`TinyDtype::Q4_0`] every 2-D tensor is quantized with
//! `QTensor::quantize`; 1-D tensors (norms, biases) stay F32 as llama.cpp keeps them.
//!
//! # GGUF tokenizer (byte-level BPE, `tokenizer.ggml.model = "gpt2"`)
//! ids 0..=255: byte `b` as its GPT-2 `bytes_to_unicode` character (id = byte value);
//! ids 256..272: the merged tokens of [`LLM_MERGES`] in order (`Ġt`, `he`, ...);
//! 272 `<|endoftext|>`, 273 `<|im_start|>`, 274 `<|im_end|>` (token_type 3, control);
//! 275..288 `<|extra_0|>`..`<|extra_12|>` (token_type 4, user-defined); all others type 1.
//! Qwen2: bos = pad = `<|endoftext|>`, eos = `<|im_end|>`, pre = `qwen2`.
//! Llama: bos = eos = pad = `<|endoftext|>`, pre = `smollm`. Both `add_bos_token = false`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Error, Result, Tensor};
use serde_json::{json, Value as Json};

/// Base seed xor-ed into every per-tensor FNV-1a hash.
pub const BASE_SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// LLM architecture of a tiny GGUF fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TinyArch {
    /// `qwen2`: tied embeddings (no `output.weight`), q/k/v biases, NEOX rope.
    Qwen2,
    /// `llama`: untied `output.weight`, no biases, Q/K permuted for interleaved rope.
    Llama,
}

impl TinyArch {
    /// `general.architecture` value (`"qwen2"` / `"llama"`).
    pub fn gguf_arch(self) -> &'static str {
        match self {
            TinyArch::Qwen2 => "qwen2",
            TinyArch::Llama => "llama",
        }
    }
    /// Whether the HF model ties `lm_head` to `embed_tokens`.
    pub fn tied(self) -> bool {
        matches!(self, TinyArch::Qwen2)
    }
}

/// Storage type of the 2-D tensors of a tiny GGUF fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TinyDtype {
    F32,
    Q8_0,
    Q4_0,
}

impl TinyDtype {
    fn ggml(self) -> GgmlDType {
        match self {
            TinyDtype::F32 => GgmlDType::F32,
            TinyDtype::Q8_0 => GgmlDType::Q8_0,
            TinyDtype::Q4_0 => GgmlDType::Q4_0,
        }
    }
    /// llama.cpp `general.file_type` (LLAMA_FTYPE_ALL_F32 = 0, MOSTLY_Q4_0 = 2, MOSTLY_Q8_0 = 7).
    pub fn file_type(self) -> u32 {
        match self {
            TinyDtype::F32 => 0,
            TinyDtype::Q4_0 => 2,
            TinyDtype::Q8_0 => 7,
        }
    }
    fn suffix(self) -> &'static str {
        match self {
            TinyDtype::F32 => "f32",
            TinyDtype::Q8_0 => "q8_0",
            TinyDtype::Q4_0 => "q4_0",
        }
    }
}

/// Which tiny BERT directory to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TinyBert {
    /// `BertModel`, sentence-transformers CLS pooling + Normalize.
    EmbedderCls,
    /// `BertModel`, sentence-transformers mean pooling + Normalize.
    EmbedderMean,
    /// `BertForSequenceClassification` with `num_labels = 1` (tensors under `bert.`).
    CrossEncoder,
}

impl TinyBert {
    /// Directory name created under the `dir` given to [`write_tiny_bert`].
    pub fn dir_name(self) -> &'static str {
        match self {
            TinyBert::EmbedderCls => "tiny-bert-cls",
            TinyBert::EmbedderMean => "tiny-bert-mean",
            TinyBert::CrossEncoder => "tiny-bert-cross-encoder",
        }
    }
}

/// Dimensions of the tiny LLM fixtures (both architectures).
#[derive(Debug, Clone, Copy)]
pub struct TinyLlmDims {
    pub vocab: usize,
    pub hidden: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub context: usize,
    pub rope_theta: f32,
    pub rms_eps: f32,
}

pub const TINY_LLM: TinyLlmDims = TinyLlmDims {
    vocab: 288,
    hidden: 64,
    intermediate: 128,
    layers: 2,
    heads: 4,
    kv_heads: 2,
    head_dim: 16,
    context: 128,
    rope_theta: 10000.0,
    rms_eps: 1e-6,
};

/// Dimensions of the tiny BERT fixtures (vocab size is [`bert_vocab`]`().len()`).
#[derive(Debug, Clone, Copy)]
pub struct TinyBertDims {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub max_position: usize,
    pub type_vocab: usize,
    pub layer_norm_eps: f64,
}

pub const TINY_BERT: TinyBertDims = TinyBertDims {
    hidden: 32,
    layers: 2,
    heads: 4,
    intermediate: 64,
    max_position: 64,
    type_vocab: 2,
    layer_norm_eps: 1e-12,
};

/// BPE merges of the tiny LLM tokenizer, in rank order; the merged tokens take ids
/// 256.. in the same order.
pub const LLM_MERGES: &[(&str, &str)] = &[
    ("Ġ", "t"),
    ("h", "e"),
    ("Ġ", "a"),
    ("i", "n"),
    ("Ġt", "he"),
    ("e", "r"),
    ("o", "n"),
    ("Ġ", "w"),
    ("r", "e"),
    ("l", "l"),
    ("Ġ", "s"),
    ("o", "r"),
    ("e", "n"),
    ("Ġ", "i"),
    ("Ġ", "o"),
    ("l", "o"),
];

/// Id of `<|endoftext|>` in the tiny LLM vocab.
pub const LLM_ENDOFTEXT: u32 = 272;
/// Id of `<|im_start|>` in the tiny LLM vocab.
pub const LLM_IM_START: u32 = 273;
/// Id of `<|im_end|>` in the tiny LLM vocab.
pub const LLM_IM_END: u32 = 274;

/// ChatML template as in Qwen2.5 (tool handling dropped).
pub const QWEN2_CHAT_TEMPLATE: &str = r#"{%- if messages[0]['role'] == 'system' %}
    {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
{%- else %}
    {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
{%- endif %}
{%- for message in messages %}
    {%- if not (message.role == 'system' and loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"#;

/// ChatML template as in SmolLM2-Instruct.
pub const SMOLLM_CHAT_TEMPLATE: &str = r#"{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system
You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>
' }}{% endif %}{{'<|im_start|>' + message['role'] + '
' + message['content'] + '<|im_end|>' + '
'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant
' }}{% endif %}"#;

// ---------------------------------------------------------------------------
// Deterministic generator
// ---------------------------------------------------------------------------

/// FNV-1a 64-bit hash.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// splitmix64 pseudo-random generator.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Values of the HF tensor `hf_name` with HF shape `shape`, row-major (see module docs).
pub fn tensor_values(hf_name: &str, shape: &[usize]) -> Vec<f32> {
    let mut parts = hf_name.rsplit('.');
    let last = parts.next().unwrap_or("");
    let module = parts.next().unwrap_or("").to_ascii_lowercase();
    let is_bias = last == "bias";
    // (offset, scale): value = offset + r * scale
    let (offset, scale): (f64, f64) = if module.contains("norm") {
        if is_bias {
            (0.0, 0.05)
        } else {
            (1.0, 0.1)
        }
    } else if module.contains("embed") {
        (0.0, 0.5)
    } else if is_bias {
        (0.0, 0.1)
    } else {
        assert!(
            shape.len() == 2,
            "{hf_name}: only 2-D Linear weights are expected here, got {shape:?}"
        );
        (0.0, 1.0 / (shape[1] as f64).sqrt())
    };
    let n: usize = shape.iter().product();
    let mut rng = SplitMix64(fnv1a64(hf_name.as_bytes()) ^ BASE_SEED);
    (0..n)
        .map(|_| {
            let u = (rng.next_u64() >> 40) as f64 / 16777216.0;
            let r = 2.0 * u - 1.0;
            let v = if offset == 0.0 {
                r * scale
            } else {
                offset + r * scale
            };
            v as f32
        })
        .collect()
}

fn make_tensor(hf_name: &str, shape: &[usize]) -> Result<Tensor> {
    Tensor::from_vec(tensor_values(hf_name, shape), shape, &Device::Cpu)
}

// ---------------------------------------------------------------------------
// LLM
// ---------------------------------------------------------------------------

/// HF tensor names and shapes of the tiny LLM (what `model.safetensors` would hold).
pub fn llm_hf_tensors(arch: TinyArch) -> Vec<(String, Vec<usize>)> {
    let d = TINY_LLM;
    let kv = d.kv_heads * d.head_dim;
    let mut v = vec![(
        "model.embed_tokens.weight".to_string(),
        vec![d.vocab, d.hidden],
    )];
    for l in 0..d.layers {
        let p = format!("model.layers.{l}");
        v.push((format!("{p}.input_layernorm.weight"), vec![d.hidden]));
        v.push((
            format!("{p}.self_attn.q_proj.weight"),
            vec![d.hidden, d.hidden],
        ));
        v.push((format!("{p}.self_attn.k_proj.weight"), vec![kv, d.hidden]));
        v.push((format!("{p}.self_attn.v_proj.weight"), vec![kv, d.hidden]));
        if arch == TinyArch::Qwen2 {
            v.push((format!("{p}.self_attn.q_proj.bias"), vec![d.hidden]));
            v.push((format!("{p}.self_attn.k_proj.bias"), vec![kv]));
            v.push((format!("{p}.self_attn.v_proj.bias"), vec![kv]));
        }
        v.push((
            format!("{p}.self_attn.o_proj.weight"),
            vec![d.hidden, d.hidden],
        ));
        v.push((
            format!("{p}.post_attention_layernorm.weight"),
            vec![d.hidden],
        ));
        v.push((
            format!("{p}.mlp.gate_proj.weight"),
            vec![d.intermediate, d.hidden],
        ));
        v.push((
            format!("{p}.mlp.up_proj.weight"),
            vec![d.intermediate, d.hidden],
        ));
        v.push((
            format!("{p}.mlp.down_proj.weight"),
            vec![d.hidden, d.intermediate],
        ));
    }
    v.push(("model.norm.weight".to_string(), vec![d.hidden]));
    if !arch.tied() {
        v.push(("lm_head.weight".to_string(), vec![d.vocab, d.hidden]));
    }
    v
}

/// llama.cpp GGUF name of an HF LLM tensor name.
pub fn gguf_tensor_name(hf_name: &str) -> String {
    match hf_name {
        "model.embed_tokens.weight" => return "token_embd.weight".into(),
        "model.norm.weight" => return "output_norm.weight".into(),
        "lm_head.weight" => return "output.weight".into(),
        _ => {}
    }
    let rest = hf_name
        .strip_prefix("model.layers.")
        .unwrap_or_else(|| panic!("unexpected tensor {hf_name}"));
    let (layer, rest) = rest.split_once('.').expect("layer index");
    let (module, suffix) = rest.rsplit_once('.').expect("suffix");
    let g = match module {
        "input_layernorm" => "attn_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "post_attention_layernorm" => "ffn_norm",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        m => panic!("unexpected module {m}"),
    };
    format!("blk.{layer}.{g}.{suffix}")
}

/// llama.cpp `convert_hf_to_gguf.py` `LlamaModel.permute` on a row-major `[out, in]` matrix.
pub fn llama_permute(w: &[f32], out: usize, inp: usize, n_head: usize) -> Vec<f32> {
    let half = out / n_head / 2;
    let mut r = vec![0f32; w.len()];
    // new row (h, j, t) <- old row (h, t, j); h < n_head, j < half, t < 2
    for h in 0..n_head {
        for j in 0..half {
            for t in 0..2 {
                let new_row = h * 2 * half + j * 2 + t;
                let old_row = h * 2 * half + t * half + j;
                r[new_row * inp..(new_row + 1) * inp]
                    .copy_from_slice(&w[old_row * inp..(old_row + 1) * inp]);
            }
        }
    }
    r
}

/// GPT-2 `bytes_to_unicode`: the character that stands for byte `b`.
pub fn byte_to_unicode(b: u8) -> char {
    let printable =
        |c: u32| (33..=126).contains(&c) || (161..=172).contains(&c) || (174..=255).contains(&c);
    let b = b as u32;
    if printable(b) {
        return char::from_u32(b).unwrap();
    }
    let n = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + n).unwrap()
}

/// `tokenizer.ggml.tokens` of the tiny LLM (length [`TINY_LLM`]`.vocab`).
pub fn llm_tokens() -> Vec<String> {
    let mut t: Vec<String> = (0..=255u8)
        .map(|b| byte_to_unicode(b).to_string())
        .collect();
    for (a, b) in LLM_MERGES {
        t.push(format!("{a}{b}"));
    }
    assert_eq!(t.len(), LLM_ENDOFTEXT as usize);
    t.push("<|endoftext|>".into());
    t.push("<|im_start|>".into());
    t.push("<|im_end|>".into());
    let mut n = 0;
    while t.len() < TINY_LLM.vocab {
        t.push(format!("<|extra_{n}|>"));
        n += 1;
    }
    t
}

/// `tokenizer.ggml.token_type` of the tiny LLM (1 normal, 3 control, 4 user-defined).
pub fn llm_token_types() -> Vec<i32> {
    (0..TINY_LLM.vocab as u32)
        .map(|i| {
            if i < LLM_ENDOFTEXT {
                1
            } else if i <= LLM_IM_END {
                3
            } else {
                4
            }
        })
        .collect()
}

/// File name (without directory) written by [`write_tiny_llm`].
pub fn tiny_llm_file_name(arch: TinyArch, dtype: TinyDtype) -> String {
    format!("tiny-{}-{}.gguf", arch.gguf_arch(), dtype.suffix())
}

/// Writes `dir/tiny-<arch>-<dtype>.gguf` and returns its path.
pub fn write_tiny_llm(dir: &Path, arch: TinyArch, dtype: TinyDtype) -> Result<PathBuf> {
    write_tiny_llm_with_context(dir, arch, dtype, TINY_LLM.context)
}

/// [`write_tiny_llm`] with another `context_length` in the metadata (same
/// weights; RoPE works at any position). For tests whose prompts, such as a
/// RAG prompt with sources, do not fit 128 tokens. The file name gets a
/// `-ctx<N>` suffix when `context` differs from the default.
pub fn write_tiny_llm_with_context(dir: &Path, arch: TinyArch, dtype: TinyDtype, context: usize) -> Result<PathBuf> {
    use gguf_file::Value as V;
    let d = TinyLlmDims { context, ..TINY_LLM };
    let a = arch.gguf_arch();
    std::fs::create_dir_all(dir)?;
    let path = if context == TINY_LLM.context {
        dir.join(tiny_llm_file_name(arch, dtype))
    } else {
        dir.join(tiny_llm_file_name(arch, dtype).replace(".gguf", &format!("-ctx{context}.gguf")))
    };

    let mut md: Vec<(String, V)> = vec![
        ("general.architecture".into(), V::String(a.into())),
        ("general.name".into(), V::String(format!("tiny-{a}"))),
        (format!("{a}.context_length"), V::U32(d.context as u32)),
        (format!("{a}.embedding_length"), V::U32(d.hidden as u32)),
        (format!("{a}.block_count"), V::U32(d.layers as u32)),
        (
            format!("{a}.feed_forward_length"),
            V::U32(d.intermediate as u32),
        ),
        (format!("{a}.attention.head_count"), V::U32(d.heads as u32)),
        (
            format!("{a}.attention.head_count_kv"),
            V::U32(d.kv_heads as u32),
        ),
        (format!("{a}.rope.freq_base"), V::F32(d.rope_theta)),
        (
            format!("{a}.attention.layer_norm_rms_epsilon"),
            V::F32(d.rms_eps),
        ),
    ];
    if arch == TinyArch::Llama {
        // LlamaModel.set_gguf_parameters adds these two.
        md.push((format!("{a}.vocab_size"), V::U32(d.vocab as u32)));
        md.push((
            format!("{a}.rope.dimension_count"),
            V::U32(d.head_dim as u32),
        ));
    }
    md.push(("general.file_type".into(), V::U32(dtype.file_type())));
    if dtype != TinyDtype::F32 {
        md.push(("general.quantization_version".into(), V::U32(2)));
    }
    let (pre, bos, eos, template) = match arch {
        TinyArch::Qwen2 => ("qwen2", LLM_ENDOFTEXT, LLM_IM_END, QWEN2_CHAT_TEMPLATE),
        TinyArch::Llama => ("smollm", LLM_ENDOFTEXT, LLM_ENDOFTEXT, SMOLLM_CHAT_TEMPLATE),
    };
    md.push(("tokenizer.ggml.model".into(), V::String("gpt2".into())));
    md.push(("tokenizer.ggml.pre".into(), V::String(pre.into())));
    md.push((
        "tokenizer.ggml.tokens".into(),
        V::Array(llm_tokens().into_iter().map(V::String).collect()),
    ));
    md.push((
        "tokenizer.ggml.token_type".into(),
        V::Array(llm_token_types().into_iter().map(V::I32).collect()),
    ));
    md.push((
        "tokenizer.ggml.merges".into(),
        V::Array(
            LLM_MERGES
                .iter()
                .map(|(a, b)| V::String(format!("{a} {b}")))
                .collect(),
        ),
    ));
    md.push(("tokenizer.ggml.bos_token_id".into(), V::U32(bos)));
    md.push(("tokenizer.ggml.eos_token_id".into(), V::U32(eos)));
    md.push((
        "tokenizer.ggml.padding_token_id".into(),
        V::U32(LLM_ENDOFTEXT),
    ));
    md.push(("tokenizer.ggml.add_bos_token".into(), V::Bool(false)));
    md.push(("tokenizer.chat_template".into(), V::String(template.into())));

    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    for (hf_name, shape) in llm_hf_tensors(arch) {
        let mut values = tensor_values(&hf_name, &shape);
        if arch == TinyArch::Llama {
            if hf_name.ends_with("self_attn.q_proj.weight") {
                values = llama_permute(&values, shape[0], shape[1], d.heads);
            } else if hf_name.ends_with("self_attn.k_proj.weight") {
                values = llama_permute(&values, shape[0], shape[1], d.kv_heads);
            }
        }
        let t = Tensor::from_vec(values, shape.as_slice(), &Device::Cpu)?;
        let q = if shape.len() == 2 {
            QTensor::quantize(&t, dtype.ggml())?
        } else {
            QTensor::quantize(&t, GgmlDType::F32)?
        };
        tensors.push((gguf_tensor_name(&hf_name), q));
    }

    let md_refs: Vec<(&str, &V)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
    gguf_file::write(&mut f, &md_refs, &t_refs)?;
    std::io::Write::flush(&mut f)?;
    Ok(path)
}

// ---------------------------------------------------------------------------
// BERT
// ---------------------------------------------------------------------------

/// Whole-word entries of the BERT vocab (after specials, punctuation and letters).
pub const BERT_WORDS: &[&str] = &[
    "the", "and", "of", "to", "in", "is", "it", "on", "for", "with", "what", "where", "who", "how",
    "cat", "dog", "sat", "mat", "hello", "world", "quick", "brown", "fox", "jumps", "over", "lazy",
    "capital", "france", "paris", "city", "rust", "fast", "model", "text", "search", "query",
    "good", "this", "that", "sleeps",
];

/// Punctuation entries of the BERT vocab.
pub const BERT_PUNCT: &[&str] = &[".", ",", "?", "!", "'", "\"", "-", ":", ";", "(", ")"];

/// The WordPiece vocab, in id order: `[PAD] [UNK] [CLS] [SEP] [MASK]`, [`BERT_PUNCT`],
/// `a`..`z`, `##a`..`##z`, [`BERT_WORDS`], `##s ##ing ##ed`.
pub fn bert_vocab() -> Vec<String> {
    let mut v: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.extend(BERT_PUNCT.iter().map(|s| s.to_string()));
    v.extend((b'a'..=b'z').map(|c| (c as char).to_string()));
    v.extend((b'a'..=b'z').map(|c| format!("##{}", c as char)));
    v.extend(BERT_WORDS.iter().map(|s| s.to_string()));
    v.extend(["##s", "##ing", "##ed"].iter().map(|s| s.to_string()));
    v
}

/// HF tensor names and shapes of the tiny BERT (with `bert.` prefix and classifier for
/// the cross-encoder, as transformers saves `BertForSequenceClassification`).
pub fn bert_hf_tensors(kind: TinyBert) -> Vec<(String, Vec<usize>)> {
    let d = TINY_BERT;
    let h = d.hidden;
    let p = if kind == TinyBert::CrossEncoder {
        "bert."
    } else {
        ""
    };
    let mut v = vec![
        (
            format!("{p}embeddings.word_embeddings.weight"),
            vec![bert_vocab().len(), h],
        ),
        (
            format!("{p}embeddings.position_embeddings.weight"),
            vec![d.max_position, h],
        ),
        (
            format!("{p}embeddings.token_type_embeddings.weight"),
            vec![d.type_vocab, h],
        ),
        (format!("{p}embeddings.LayerNorm.weight"), vec![h]),
        (format!("{p}embeddings.LayerNorm.bias"), vec![h]),
    ];
    for l in 0..d.layers {
        let q = format!("{p}encoder.layer.{l}");
        for m in [
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "attention.output.dense",
        ] {
            v.push((format!("{q}.{m}.weight"), vec![h, h]));
            v.push((format!("{q}.{m}.bias"), vec![h]));
        }
        v.push((format!("{q}.attention.output.LayerNorm.weight"), vec![h]));
        v.push((format!("{q}.attention.output.LayerNorm.bias"), vec![h]));
        v.push((
            format!("{q}.intermediate.dense.weight"),
            vec![d.intermediate, h],
        ));
        v.push((format!("{q}.intermediate.dense.bias"), vec![d.intermediate]));
        v.push((format!("{q}.output.dense.weight"), vec![h, d.intermediate]));
        v.push((format!("{q}.output.dense.bias"), vec![h]));
        v.push((format!("{q}.output.LayerNorm.weight"), vec![h]));
        v.push((format!("{q}.output.LayerNorm.bias"), vec![h]));
    }
    v.push((format!("{p}pooler.dense.weight"), vec![h, h]));
    v.push((format!("{p}pooler.dense.bias"), vec![h]));
    if kind == TinyBert::CrossEncoder {
        v.push(("classifier.weight".into(), vec![1, h]));
        v.push(("classifier.bias".into(), vec![1]));
    }
    v
}

/// The `tokenizer.json` (Hugging Face `tokenizers` format) of the tiny BERT.
pub fn bert_tokenizer_json() -> Json {
    let vocab = bert_vocab();
    let id = |s: &str| vocab.iter().position(|v| v == s).unwrap() as u32;
    let mut vmap = serde_json::Map::new();
    for (i, t) in vocab.iter().enumerate() {
        vmap.insert(t.clone(), json!(i));
    }
    let added: Vec<Json> = vocab[..5]
        .iter()
        .enumerate()
        .map(|(i, t)| {
            json!({"id": i, "content": t, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let (cls, sep) = (id("[CLS]"), id("[SEP]"));
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                       "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [
                {"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "[SEP]", "type_id": 0}}
            ],
            "pair": [
                {"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                {"Sequence": {"id": "B", "type_id": 1}},
                {"SpecialToken": {"id": "[SEP]", "type_id": 1}}
            ],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [cls], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [sep], "tokens": ["[SEP]"]}
            }
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": Json::Object(vmap)}
    })
}

/// The `config.json` of the tiny BERT.
pub fn bert_config_json(kind: TinyBert) -> Json {
    let d = TINY_BERT;
    let mut c = json!({
        "architectures": [if kind == TinyBert::CrossEncoder { "BertForSequenceClassification" } else { "BertModel" }],
        "model_type": "bert",
        "vocab_size": bert_vocab().len(),
        "hidden_size": d.hidden,
        "num_hidden_layers": d.layers,
        "num_attention_heads": d.heads,
        "intermediate_size": d.intermediate,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": d.max_position,
        "type_vocab_size": d.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": d.layer_norm_eps,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "use_cache": true,
        "classifier_dropout": null,
        "torch_dtype": "float32"
    });
    if kind == TinyBert::CrossEncoder {
        c["id2label"] = json!({"0": "LABEL_0"});
        c["label2id"] = json!({"LABEL_0": 0});
    }
    c
}

fn write_json(path: &Path, v: &Json) -> Result<()> {
    let s = serde_json::to_string_pretty(v).map_err(Error::wrap)?;
    std::fs::write(path, s)?;
    Ok(())
}

/// Writes `dir/<kind.dir_name()>/` (HF + sentence-transformers layout) and returns it.
pub fn write_tiny_bert(dir: &Path, kind: TinyBert) -> Result<PathBuf> {
    let out = dir.join(kind.dir_name());
    std::fs::create_dir_all(&out)?;
    write_json(&out.join("config.json"), &bert_config_json(kind))?;
    write_json(&out.join("tokenizer.json"), &bert_tokenizer_json())?;
    std::fs::write(out.join("vocab.txt"), bert_vocab().join("\n") + "\n")?;
    write_json(
        &out.join("tokenizer_config.json"),
        &json!({"tokenizer_class": "BertTokenizer", "do_lower_case": true,
                "model_max_length": TINY_BERT.max_position, "cls_token": "[CLS]",
                "sep_token": "[SEP]", "pad_token": "[PAD]", "unk_token": "[UNK]",
                "mask_token": "[MASK]"}),
    )?;
    write_json(
        &out.join("special_tokens_map.json"),
        &json!({"cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                "unk_token": "[UNK]", "mask_token": "[MASK]"}),
    )?;

    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    for (name, shape) in bert_hf_tensors(kind) {
        let t = make_tensor(&name, &shape)?;
        tensors.insert(name, t);
    }
    candle_core::safetensors::save(&tensors, out.join("model.safetensors"))?;

    if kind != TinyBert::CrossEncoder {
        let cls = kind == TinyBert::EmbedderCls;
        std::fs::create_dir_all(out.join("1_Pooling"))?;
        write_json(
            &out.join("1_Pooling").join("config.json"),
            &json!({"word_embedding_dimension": TINY_BERT.hidden,
                    "pooling_mode_cls_token": cls,
                    "pooling_mode_mean_tokens": !cls,
                    "pooling_mode_max_tokens": false,
                    "pooling_mode_mean_sqrt_len_tokens": false,
                    "pooling_mode_weightedmean_tokens": false,
                    "pooling_mode_lasttoken": false,
                    "include_prompt": true}),
        )?;
        write_json(
            &out.join("modules.json"),
            &json!([
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
            ]),
        )?;
        write_json(
            &out.join("sentence_bert_config.json"),
            &json!({"max_seq_length": TINY_BERT.max_position, "do_lower_case": false}),
        )?;
    }
    Ok(out)
}

/// Writes every fixture (all LLM arch x dtype combinations and the three BERT kinds)
/// under `dir`; used by `make_reference.py`'s regeneration step.
pub fn write_all(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for arch in [TinyArch::Qwen2, TinyArch::Llama] {
        for dtype in [TinyDtype::F32, TinyDtype::Q8_0, TinyDtype::Q4_0] {
            out.push(write_tiny_llm(dir, arch, dtype)?);
        }
    }
    for kind in [
        TinyBert::EmbedderCls,
        TinyBert::EmbedderMean,
        TinyBert::CrossEncoder,
    ] {
        out.push(write_tiny_bert(dir, kind)?);
    }
    Ok(out)
}
