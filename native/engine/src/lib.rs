//! Candela's model runtime on candle: a thread-safe model registry, GGUF
//! decoder LLMs (llama, qwen2) served by a scheduler thread per model, BERT
//! encoders (embeddings, cross-encoder reranking), and the semantic cache's
//! scoped vector index. No napi here, so `cargo test` exercises everything;
//! `native/node` is the thin binding.

pub mod device;
pub mod encoder;
pub mod error;
pub mod index;
pub mod kernels;
pub mod llm;
pub mod registry;

pub use error::{EngineError, ErrorCode, Result};
pub use index::VectorIndex;
pub use registry::{Loaded, LoadSpec, ModelInfo, ModelRole, ModelStatus, Registry};
