//! Requests, events and results of generation.

use super::sampler::SamplingParams;
use super::template::ChatMessage;
use serde::Serialize;

/// What to generate from.
#[derive(Debug, Clone)]
pub enum PromptInput {
    /// Raw text, tokenized as is (no chat template).
    Text(String),
    /// A conversation rendered through the model's chat template.
    Chat(Vec<ChatMessage>),
    /// Token ids.
    Tokens(Vec<u32>),
}

/// A generation request.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    pub input: PromptInput,
    pub params: SamplingParams,
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An end-of-sequence token or a stop sequence.
    Stop,
    /// `max_tokens` reached.
    Length,
    Cancelled,
    Error,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Cancelled => "cancelled",
            FinishReason::Error => "error",
        }
    }
}

/// Token counts.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Usage {
    pub prompt_tokens: usize,
    /// Prompt tokens whose K/V came from the prefix cache instead of being computed.
    pub cached_prompt_tokens: usize,
    pub completion_tokens: usize,
    pub total_tokens: usize,
}

/// Where the time went, in milliseconds from submission.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Timings {
    /// Submitted → admitted to the running batch.
    pub queue_ms: f64,
    /// Admitted → first token sampled (prompt processing).
    pub prefill_ms: f64,
    /// Submitted → first token (includes queueing, as vLLM measures it).
    pub ttft_ms: f64,
    /// First token → finish.
    pub decode_ms: f64,
    /// Submitted → finish.
    pub total_ms: f64,
    /// Completion tokens per second after admission.
    pub tokens_per_sec: f64,
    /// Prompt tokens per second during prefill.
    pub prefill_tokens_per_sec: f64,
    /// Tokens per second after the first one.
    pub decode_tokens_per_sec: f64,
}

/// The final record of one generation.
#[derive(Debug, Clone, Serialize)]
pub struct GenerationResult {
    pub id: u64,
    pub text: String,
    pub finish_reason: FinishReason,
    pub usage: Usage,
    pub timings: Timings,
    /// The seed actually used (random when none was given).
    pub seed: u64,
    /// Set when `finish_reason` is `error`: (code, message).
    pub error: Option<(String, String)>,
}

/// What a generation sends to its consumer, in order: tokens, then one `Done`.
#[derive(Debug, Clone)]
pub enum GenerationEvent {
    /// New text and the token ids that produced it.
    Token { text: String, token_ids: Vec<u32> },
    Done(GenerationResult),
}
