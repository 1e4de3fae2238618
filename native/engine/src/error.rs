//! The engine's one error type. Every variant carries a stable code that
//! crosses the napi boundary unchanged and is mapped to an HTTP status once,
//! in the server.

use std::fmt;

/// Stable machine-readable error codes (see [`EngineError::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    ModelNotFound,
    ModelNotReady,
    ContextOverflow,
    Overloaded,
    Cancelled,
    InvalidInput,
    LoadFailed,
    WrongModelRole,
    Internal,
}

impl ErrorCode {
    /// The code as it appears to JavaScript and in HTTP error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ModelNotFound => "MODEL_NOT_FOUND",
            ErrorCode::ModelNotReady => "MODEL_NOT_READY",
            ErrorCode::ContextOverflow => "CONTEXT_OVERFLOW",
            ErrorCode::Overloaded => "OVERLOADED",
            ErrorCode::Cancelled => "CANCELLED",
            ErrorCode::InvalidInput => "INVALID_INPUT",
            ErrorCode::LoadFailed => "LOAD_FAILED",
            ErrorCode::WrongModelRole => "WRONG_MODEL_ROLE",
            ErrorCode::Internal => "INTERNAL",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors raised by the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("model '{0}' is not loaded")]
    ModelNotFound(String),
    #[error("model '{name}' is not ready (status: {status})")]
    ModelNotReady { name: String, status: String },
    #[error("prompt has {prompt_tokens} tokens; with max_tokens {max_tokens} it needs {needed} but the context window is {context} tokens")]
    ContextOverflow { prompt_tokens: usize, max_tokens: usize, needed: usize, context: usize },
    #[error("model '{model}' is overloaded: {waiting} requests already waiting (limit {limit})")]
    Overloaded { model: String, waiting: usize, limit: usize },
    #[error("the request was cancelled")]
    Cancelled,
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("failed to load model '{name}': {reason}")]
    LoadFailed { name: String, reason: String },
    #[error("model '{name}' is a {actual}, not a {expected}")]
    WrongModelRole { name: String, actual: String, expected: String },
    #[error("candle: {0}")]
    Candle(candle_core::Error),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("chat template: {0}")]
    Template(#[from] minijinja::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("internal: {0}")]
    Internal(String),
}

impl EngineError {
    /// The stable code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            EngineError::ModelNotFound(_) => ErrorCode::ModelNotFound,
            EngineError::ModelNotReady { .. } => ErrorCode::ModelNotReady,
            EngineError::ContextOverflow { .. } => ErrorCode::ContextOverflow,
            EngineError::Overloaded { .. } => ErrorCode::Overloaded,
            EngineError::Cancelled => ErrorCode::Cancelled,
            EngineError::InvalidInput(_) | EngineError::Template(_) => ErrorCode::InvalidInput,
            EngineError::LoadFailed { .. } => ErrorCode::LoadFailed,
            EngineError::WrongModelRole { .. } => ErrorCode::WrongModelRole,
            EngineError::Candle(_)
            | EngineError::Tokenizer(_)
            | EngineError::Io(_)
            | EngineError::Json(_)
            | EngineError::Internal(_) => ErrorCode::Internal,
        }
    }

    pub fn tokenizer(e: impl fmt::Display) -> Self {
        EngineError::Tokenizer(e.to_string())
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        EngineError::InvalidInput(msg.into())
    }
}

/// candle attaches a backtrace to its errors when RUST_BACKTRACE is set; a
/// message that reaches a user carries only the error itself.
pub fn strip_backtrace(e: candle_core::Error) -> candle_core::Error {
    match e {
        candle_core::Error::WithBacktrace { inner, .. } => strip_backtrace(*inner),
        other => other,
    }
}

impl From<candle_core::Error> for EngineError {
    fn from(e: candle_core::Error) -> Self {
        EngineError::Candle(strip_backtrace(e))
    }
}

/// The message of a caught panic (`panic!` with a string or a format), for an
/// `INTERNAL` error that says what went wrong.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Result alias used throughout the engine.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
