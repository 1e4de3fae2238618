//! JS-facing object types and their conversions to and from engine types.

use candela_engine::encoder::Pooling;
use candela_engine::llm::{ChatMessage, GenerationEvent, GenerationResult, SamplingParams};
use candela_engine::{EngineError, ModelInfo, ModelStatus};
use napi::bindgen_prelude::*;
use napi_derive::napi;

/// A stable engine error code in the place of napi's status: napi-rs puts an
/// error's status in the JS error's `code` property, so `MODEL_NOT_FOUND`
/// arrives as `err.code === 'MODEL_NOT_FOUND'`, with the message untouched.
#[derive(Debug, Clone, Copy)]
pub struct Code(pub &'static str);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0
    }
}

/// The result of a synchronous binding function: errors carry their engine code.
pub type JsResult<T> = std::result::Result<T, Error<Code>>;

/// Engine error → napi error whose JS `code` is the engine's stable code.
pub fn to_napi(e: EngineError) -> Error<Code> {
    Error::new(Code(e.code().as_str()), e.to_string())
}

/// napi's own failures (thread-safe function set-up, conversions) as `INTERNAL`.
pub fn internal(e: Error) -> Error<Code> {
    Error::new(Code("INTERNAL"), e.reason.clone())
}

/// For promises (which napi rejects with `Error<Status>`): a JS `Error` built
/// on the JS thread with `code` set, handed to napi by reference so the
/// rejection is that very object.
pub fn coded_js_error(env: &Env, code: &'static str, message: &str) -> Error {
    let built = env.create_error(Error::new(Status::GenericFailure, message.to_string())).and_then(|mut obj| {
        obj.set_named_property("code", code)?;
        Ok(obj)
    });
    match built {
        Ok(obj) => Error::from(obj.to_unknown()),
        Err(e) => e,
    }
}

#[napi(object)]
pub struct JsLoadSpec {
    pub name: String,
    /// "llm" | "embedder" | "reranker"
    pub role: String,
    pub path: String,
    /// "auto" | "cpu" | "cuda" | "cuda:N"
    pub device: Option<String>,
    pub max_batch: Option<u32>,
    pub max_queue: Option<u32>,
    pub prefill_chunk: Option<u32>,
    /// MiB of finished sequences' K/V kept for prompt reuse (0: off).
    pub prefix_cache_mb: Option<u32>,
    /// "cls" | "mean" (embedders)
    pub pooling: Option<String>,
}

#[napi(object, js_name = "ModelInfo")]
pub struct JsModelInfo {
    pub name: String,
    pub role: String,
    /// "loading" | "ready" | "failed"
    pub status: String,
    pub failure: Option<String>,
    pub path: String,
    pub architecture: Option<String>,
    pub quantization: Option<String>,
    pub parameter_count: Option<f64>,
    pub context_length: Option<u32>,
    pub dimensions: Option<u32>,
    pub vocab_size: Option<u32>,
    pub bytes_on_disk: f64,
    pub bytes_in_memory: Option<f64>,
    pub device: Option<String>,
    pub load_ms: Option<f64>,
    pub tokenizer: Option<String>,
    pub chat_template: Option<String>,
    pub pooling: Option<String>,
}

pub fn info_to_js(i: ModelInfo) -> JsModelInfo {
    let failure = match &i.status {
        ModelStatus::Failed(r) => Some(r.clone()),
        _ => None,
    };
    JsModelInfo {
        name: i.name,
        role: i.role.as_str().to_string(),
        status: i.status.as_str().to_string(),
        failure,
        path: i.path,
        architecture: i.architecture,
        quantization: i.quantization,
        parameter_count: i.parameter_count.map(|v| v as f64),
        context_length: i.context_length.map(|v| v as u32),
        dimensions: i.dimensions.map(|v| v as u32),
        vocab_size: i.vocab_size.map(|v| v as u32),
        bytes_on_disk: i.bytes_on_disk as f64,
        bytes_in_memory: i.bytes_in_memory.map(|v| v as f64),
        device: i.device,
        load_ms: i.load_ms,
        tokenizer: i.tokenizer,
        chat_template: i.chat_template,
        pooling: i.pooling,
    }
}

#[napi(object, js_name = "ChatMessage")]
pub struct JsChatMessage {
    pub role: String,
    pub content: String,
}

pub fn messages_from_js(m: Vec<JsChatMessage>) -> Vec<ChatMessage> {
    m.into_iter().map(|m| ChatMessage { role: m.role, content: m.content }).collect()
}

#[napi(object, js_name = "SamplingParams")]
#[derive(Default)]
pub struct JsSamplingParams {
    pub temperature: Option<f64>,
    pub top_k: Option<u32>,
    pub top_p: Option<f64>,
    pub repetition_penalty: Option<f64>,
    pub repeat_last_n: Option<u32>,
    /// Integer seed (up to 2^53).
    pub seed: Option<f64>,
    pub max_tokens: Option<u32>,
    pub stop: Option<Vec<String>>,
    pub ignore_eos: Option<bool>,
    /// Reuse a cached prompt prefix's K/V (default true; outputs are the same).
    pub cache_prompt: Option<bool>,
}

pub fn params_from_js(p: JsSamplingParams) -> JsResult<SamplingParams> {
    let d = SamplingParams::default();
    let seed = match p.seed {
        Some(s) if s.is_finite() && s >= 0.0 && s.fract() == 0.0 && s <= 9_007_199_254_740_991.0 => Some(s as u64),
        Some(_) => return Err(to_napi(EngineError::InvalidInput("seed must be a non-negative integer".into()))),
        None => None,
    };
    Ok(SamplingParams {
        temperature: p.temperature.map(|v| v as f32).unwrap_or(d.temperature),
        top_k: p.top_k.map(|v| v as usize).unwrap_or(d.top_k),
        top_p: p.top_p.map(|v| v as f32).unwrap_or(d.top_p),
        repetition_penalty: p.repetition_penalty.map(|v| v as f32).unwrap_or(d.repetition_penalty),
        repeat_last_n: p.repeat_last_n.map(|v| v as usize).unwrap_or(d.repeat_last_n),
        seed,
        max_tokens: p.max_tokens.map(|v| v as usize).unwrap_or(d.max_tokens),
        stop: p.stop.unwrap_or_default(),
        ignore_eos: p.ignore_eos.unwrap_or(false),
        cache_prompt: p.cache_prompt.unwrap_or(d.cache_prompt),
    })
}

#[napi(object, js_name = "GenerateRequest")]
pub struct JsGenerateRequest {
    /// Raw prompt text (no chat template).
    pub prompt: Option<String>,
    /// Chat messages, rendered through the model's template.
    pub messages: Option<Vec<JsChatMessage>>,
    /// Prompt token ids.
    pub tokens: Option<Vec<u32>>,
    pub params: Option<JsSamplingParams>,
}

#[napi(object, js_name = "Usage")]
pub struct JsUsage {
    pub prompt_tokens: u32,
    /// Prompt tokens whose K/V were reused from the prefix cache.
    pub cached_prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
}

#[napi(object, js_name = "Timings")]
pub struct JsTimings {
    pub queue_ms: f64,
    pub prefill_ms: f64,
    pub ttft_ms: f64,
    pub decode_ms: f64,
    pub total_ms: f64,
    pub tokens_per_sec: f64,
    pub prefill_tokens_per_sec: f64,
    pub decode_tokens_per_sec: f64,
}

#[napi(object, js_name = "GenerationResult")]
pub struct JsGenerationResult {
    pub id: f64,
    pub text: String,
    /// "stop" | "length" | "cancelled" | "error"
    pub finish_reason: String,
    pub usage: JsUsage,
    pub timings: JsTimings,
    pub seed: f64,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

#[napi(object, js_name = "GenerationEvent")]
pub struct JsGenerationEvent {
    /// "token" | "done"
    pub kind: String,
    pub text: Option<String>,
    pub token_ids: Option<Vec<u32>>,
    pub result: Option<JsGenerationResult>,
}

fn result_to_js(r: GenerationResult) -> JsGenerationResult {
    let t = r.timings;
    let (error_code, error_message) = match r.error {
        Some((c, m)) => (Some(c), Some(m)),
        None => (None, None),
    };
    JsGenerationResult {
        id: r.id as f64,
        text: r.text,
        finish_reason: r.finish_reason.as_str().to_string(),
        usage: JsUsage {
            prompt_tokens: r.usage.prompt_tokens as u32,
            cached_prompt_tokens: r.usage.cached_prompt_tokens as u32,
            completion_tokens: r.usage.completion_tokens as u32,
            total_tokens: r.usage.total_tokens as u32,
        },
        timings: JsTimings {
            queue_ms: t.queue_ms,
            prefill_ms: t.prefill_ms,
            ttft_ms: t.ttft_ms,
            decode_ms: t.decode_ms,
            total_ms: t.total_ms,
            tokens_per_sec: t.tokens_per_sec,
            prefill_tokens_per_sec: t.prefill_tokens_per_sec,
            decode_tokens_per_sec: t.decode_tokens_per_sec,
        },
        seed: r.seed as f64,
        error_code,
        error_message,
    }
}

/// The final event of a generation whose scheduler stopped without finishing it.
pub fn stranded_event() -> JsGenerationEvent {
    let zero = JsTimings {
        queue_ms: 0.0,
        prefill_ms: 0.0,
        ttft_ms: 0.0,
        decode_ms: 0.0,
        total_ms: 0.0,
        tokens_per_sec: 0.0,
        prefill_tokens_per_sec: 0.0,
        decode_tokens_per_sec: 0.0,
    };
    let usage = JsUsage { prompt_tokens: 0, cached_prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
    let result = JsGenerationResult {
        id: 0.0,
        text: String::new(),
        finish_reason: "error".into(),
        usage,
        timings: zero,
        seed: 0.0,
        error_code: Some("INTERNAL".into()),
        error_message: Some("the model's scheduler stopped before finishing this generation".into()),
    };
    JsGenerationEvent { kind: "done".into(), text: None, token_ids: None, result: Some(result) }
}

pub fn event_to_js(e: GenerationEvent) -> JsGenerationEvent {
    match e {
        GenerationEvent::Token { text, token_ids } => {
            JsGenerationEvent { kind: "token".into(), text: Some(text), token_ids: Some(token_ids), result: None }
        }
        GenerationEvent::Done(r) => {
            JsGenerationEvent { kind: "done".into(), text: None, token_ids: None, result: Some(result_to_js(r)) }
        }
    }
}

#[napi(object, js_name = "SchedulerStats")]
pub struct JsSchedulerStats {
    pub waiting: u32,
    pub running: u32,
    pub completed: f64,
    pub prompt_tokens: f64,
    pub generated_tokens: f64,
    /// Prompt tokens looked up in the prefix cache, and those found there.
    pub prefix_cache_queries: f64,
    pub prefix_cache_hits: f64,
    pub prefix_cache_bytes: f64,
    pub max_batch: u32,
    pub max_queue: u32,
}

#[napi(object, js_name = "KernelInfo")]
pub struct JsKernelInfo {
    /// Threads of the engine's worker pool (the calling thread included).
    pub threads: u32,
    /// Instruction set of the CPU kernels: "avx2" or "scalar".
    pub isa: String,
}

#[napi(object, js_name = "MemoryInfo")]
pub struct JsMemoryInfo {
    pub device: String,
    pub process_rss_bytes: f64,
    pub device_used_bytes: Option<f64>,
    pub device_total_bytes: Option<f64>,
    pub cpu_features: Vec<String>,
    pub cuda_compiled: bool,
}

pub fn parse_pooling(p: &str) -> JsResult<Pooling> {
    match p {
        "cls" => Ok(Pooling::Cls),
        "mean" => Ok(Pooling::Mean),
        o => Err(to_napi(EngineError::InvalidInput(format!("unknown pooling '{o}' (cls, mean)")))),
    }
}
