//! napi-rs glue over `candela-engine`: #[napi] types and functions only.
//!
//! Threading: nothing here runs model work on the JS thread. Loads run on a
//! thread of their own, encoder batches on the model's worker thread,
//! generation on the model's scheduler thread; results come back through
//! deferred promises and thread-safe functions. Errors cross as JS errors
//! whose `code` property is the engine's stable code (`MODEL_NOT_FOUND`…),
//! which `src/engine/` turns into typed errors; panics on the threads started
//! here become `INTERNAL` errors.

#![deny(clippy::all)]

mod convert;
mod vector_index;

use candela_engine::device::{self, DevicePreference};
use candela_engine::llm::{self, EventSink, GenerateRequest, GenerationEvent, PromptInput};
use candela_engine::{EngineError, LoadSpec, ModelRole, Registry};
use convert::*;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The engine: one model registry per instance.
#[napi]
pub struct Engine {
    registry: Arc<Registry>,
}

/// A running generation. Events arrive through the callback given to `generate`.
#[napi]
pub struct Generation {
    handle: llm::GenerationHandle,
    /// Events delivered and not yet consumed by JS (shared with the sink).
    backlog: Arc<AtomicUsize>,
}

#[napi]
impl Generation {
    /// Engine-wide generation id.
    #[napi(getter)]
    pub fn id(&self) -> f64 {
        self.handle.id as f64
    }

    /// Tokens in the prompt after templating.
    #[napi(getter)]
    pub fn prompt_tokens(&self) -> u32 {
        self.handle.prompt_tokens as u32
    }

    /// Stops the generation within one scheduler step; the final event then
    /// has finish reason `cancelled`.
    #[napi]
    pub fn cancel(&self) {
        self.handle.cancel();
    }

    /// Tells the engine that JS has consumed `n` events. Until it does, the
    /// events count as backlog, and a generation whose backlog reaches the
    /// high-water mark is paused by the scheduler (back-pressure from the
    /// final consumer, e.g. a socket that stopped draining).
    #[napi]
    pub fn consumed(&self, n: u32) {
        let n = n as usize;
        // Saturating: a late or duplicate acknowledgement never wraps around.
        let _ = self.backlog.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| Some(b.saturating_sub(n)));
    }
}

type EventFn = ThreadsafeFunction<JsGenerationEvent, (), JsGenerationEvent, Status, false>;

/// Delivers events to JS through a thread-safe function; the backlog is the
/// number of events delivered and not yet acknowledged by JS through
/// [`Generation::consumed`] (queued for the JS thread, or buffered there).
struct JsSink {
    tsfn: EventFn,
    backlog: Arc<AtomicUsize>,
    /// Whether the final event went out; a sink dropped without it (the
    /// scheduler thread died) sends an `INTERNAL` error instead, so JS never
    /// waits forever.
    done: bool,
}

impl Drop for JsSink {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.tsfn.call(stranded_event(), ThreadsafeFunctionCallMode::NonBlocking);
        }
    }
}

impl EventSink for JsSink {
    fn deliver(&mut self, event: GenerationEvent) -> bool {
        self.done |= matches!(event, GenerationEvent::Done(_));
        self.backlog.fetch_add(1, Ordering::Relaxed);
        let status = self.tsfn.call(event_to_js(event), ThreadsafeFunctionCallMode::NonBlocking);
        status == Status::Ok
    }
    fn backlog(&self) -> usize {
        self.backlog.load(Ordering::Relaxed)
    }
}

/// Rejects a promise with a JS error whose `code` is `e`'s stable code.
fn reject_coded<T: ToNapiValue + 'static>(deferred: napi::JsDeferred<T, Box<dyn FnOnce(Env) -> Result<T> + Send>>, e: EngineError) {
    let (code, message) = (e.code().as_str(), e.to_string());
    deferred.resolve(Box::new(move |env| Err(coded_js_error(&env, code, &message))));
}

fn spawn_promise<T, F>(env: &Env, work: F) -> JsResult<Object<'_>>
where
    T: ToNapiValue + Send + 'static,
    F: FnOnce() -> std::result::Result<T, EngineError> + Send + 'static,
{
    let (deferred, promise) = env.create_deferred::<T, Box<dyn FnOnce(Env) -> Result<T> + Send>>().map_err(internal)?;
    std::thread::Builder::new()
        .name("candela-load".into())
        .spawn(move || {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|p| {
                Err(EngineError::Internal(format!("panic in the engine: {}", candela_engine::error::panic_message(p.as_ref()))))
            });
            match out {
                Ok(v) => deferred.resolve(Box::new(move |_| Ok(v))),
                Err(e) => reject_coded(deferred, e),
            }
        })
        .map_err(|e| to_napi(EngineError::Internal(e.to_string())))?;
    Ok(promise)
}

#[napi]
impl Engine {
    #[napi(constructor)]
    pub fn new() -> Self {
        Self { registry: Arc::new(Registry::new()) }
    }

    /// Loads a model on a background thread; resolves with its info.
    #[napi(ts_return_type = "Promise<ModelInfo>")]
    pub fn load_model<'e>(&self, env: &'e Env, spec: JsLoadSpec) -> Result<Object<'e>, Code> {
        let role = ModelRole::parse(&spec.role).map_err(to_napi)?;
        let mut s = LoadSpec::new(&spec.name, role, &spec.path);
        s.device = DevicePreference::parse(spec.device.as_deref().unwrap_or("auto")).map_err(to_napi)?;
        if let Some(v) = spec.max_batch {
            s.scheduler.max_batch = v.max(1) as usize;
        }
        if let Some(v) = spec.max_queue {
            s.scheduler.max_queue = v as usize;
            s.encoder_queue = v.max(1) as usize;
        }
        if let Some(v) = spec.prefill_chunk {
            s.scheduler.prefill_chunk = v.max(1) as usize;
        }
        if let Some(v) = spec.prefix_cache_mb {
            s.scheduler.prefix_cache_bytes = (v as usize) << 20;
        }
        if let Some(p) = spec.pooling.as_deref() {
            s.pooling = Some(parse_pooling(p)?);
        }
        let registry = self.registry.clone();
        spawn_promise(env, move || registry.load(s).map(info_to_js))
    }

    /// Removes a model; in-flight work on it finishes. False if unknown.
    #[napi]
    pub fn unload_model(&self, name: String) -> bool {
        self.registry.unload(&name)
    }

    /// Every registered model (any status).
    #[napi]
    pub fn list_models(&self) -> Vec<JsModelInfo> {
        self.registry.list().into_iter().map(info_to_js).collect()
    }

    /// One model's info; `MODEL_NOT_FOUND` if unknown.
    #[napi]
    pub fn model_info(&self, name: String) -> Result<JsModelInfo, Code> {
        self.registry.info(&name).map(info_to_js).map_err(to_napi)
    }

    /// Token ids of `text` for an LLM (special-token text is recognised).
    #[napi]
    pub fn tokenize(&self, model: String, text: String, add_bos: Option<bool>) -> Result<Vec<u32>, Code> {
        let h = self.registry.llm(&model).map_err(to_napi)?;
        h.llm.tokenize(&text, add_bos.unwrap_or(false)).map_err(to_napi)
    }

    /// Text of token ids for an LLM.
    #[napi]
    pub fn detokenize(&self, model: String, ids: Vec<u32>, skip_special: Option<bool>) -> Result<String, Code> {
        let h = self.registry.llm(&model).map_err(to_napi)?;
        h.llm.detokenize(&ids, skip_special.unwrap_or(false)).map_err(to_napi)
    }

    /// Renders messages through the model's chat template (assistant turn opened).
    #[napi]
    pub fn apply_chat_template(&self, model: String, messages: Vec<JsChatMessage>) -> Result<String, Code> {
        let h = self.registry.llm(&model).map_err(to_napi)?;
        h.llm.template.render(&messages_from_js(messages), true).map_err(to_napi)
    }

    /// Submits a generation. `onEvent` receives `token` events, then exactly
    /// one `done` event. Fails synchronously on invalid input, context
    /// overflow or a full queue.
    #[napi(ts_args_type = "model: string, request: GenerateRequest, onEvent: (event: GenerationEvent) => void")]
    pub fn generate(&self, model: String, request: JsGenerateRequest, on_event: Function<'_, JsGenerationEvent, ()>) -> Result<Generation, Code> {
        let h = self.registry.llm(&model).map_err(to_napi)?;
        let input = match (request.prompt, request.messages, request.tokens) {
            (Some(p), None, None) => PromptInput::Text(p),
            (None, Some(m), None) => PromptInput::Chat(messages_from_js(m)),
            (None, None, Some(t)) => PromptInput::Tokens(t),
            _ => return Err(to_napi(EngineError::invalid("give exactly one of prompt, messages or tokens"))),
        };
        let params = params_from_js(request.params.unwrap_or_default())?;
        let backlog = Arc::new(AtomicUsize::new(0));
        let tsfn: EventFn = on_event
            .build_threadsafe_function::<JsGenerationEvent>()
            .callee_handled::<false>()
            .build_callback(|ctx| Ok(ctx.value))
            .map_err(internal)?;
        let sink = JsSink { tsfn, backlog: backlog.clone(), done: false };
        let handle = h.submit(GenerateRequest { input, params }, Box::new(sink)).map_err(to_napi)?;
        Ok(Generation { handle, backlog })
    }

    /// Scheduler counters of an LLM.
    #[napi]
    pub fn scheduler_stats(&self, model: String) -> Result<JsSchedulerStats, Code> {
        let h = self.registry.llm(&model).map_err(to_napi)?;
        let s = &h.stats;
        Ok(JsSchedulerStats {
            waiting: s.waiting.load(Ordering::Relaxed) as u32,
            running: s.running.load(Ordering::Relaxed) as u32,
            completed: s.completed.load(Ordering::Relaxed) as f64,
            prompt_tokens: s.prompt_tokens.load(Ordering::Relaxed) as f64,
            generated_tokens: s.generated_tokens.load(Ordering::Relaxed) as f64,
            prefix_cache_queries: s.prefix_cache_queries.load(Ordering::Relaxed) as f64,
            prefix_cache_hits: s.prefix_cache_hits.load(Ordering::Relaxed) as f64,
            prefix_cache_bytes: s.prefix_cache_bytes.load(Ordering::Relaxed) as f64,
            max_batch: h.scheduler.max_batch as u32,
            max_queue: h.scheduler.max_queue as u32,
        })
    }

    /// L2-normalised embeddings, computed on the model's worker thread.
    #[napi(ts_return_type = "Promise<Float32Array[]>")]
    pub fn embed<'e>(&self, env: &'e Env, model: String, texts: Vec<String>, truncate: bool) -> Result<Object<'e>, Code> {
        let w = self.registry.embedder(&model).map_err(to_napi)?;
        let (deferred, promise) =
            env.create_deferred::<Vec<Float32Array>, Box<dyn FnOnce(Env) -> Result<Vec<Float32Array>> + Send>>().map_err(internal)?;
        w.submit(
            move |m| m.embed(&texts, truncate),
            move |r| match r {
                Ok(v) => deferred.resolve(Box::new(move |_| Ok(v.into_iter().map(Float32Array::new).collect()))),
                Err(e) => reject_coded(deferred, e),
            },
        )
        .map_err(to_napi)?;
        Ok(promise)
    }

    /// Token counts of texts for an embedder (before truncation).
    #[napi]
    pub fn count_embedding_tokens(&self, model: String, texts: Vec<String>) -> Result<Vec<u32>, Code> {
        let w = self.registry.embedder(&model).map_err(to_napi)?;
        Ok(w.model.count_tokens(&texts).map_err(to_napi)?.into_iter().map(|n| n as u32).collect())
    }

    /// Raw cross-encoder logits of (query, document) pairs, in document order.
    #[napi(ts_return_type = "Promise<number[]>")]
    pub fn rerank<'e>(&self, env: &'e Env, model: String, query: String, documents: Vec<String>, truncate: bool) -> Result<Object<'e>, Code> {
        let w = self.registry.reranker(&model).map_err(to_napi)?;
        let (deferred, promise) = env.create_deferred::<Vec<f64>, Box<dyn FnOnce(Env) -> Result<Vec<f64>> + Send>>().map_err(internal)?;
        w.submit(
            move |m| m.score(&query, &documents, truncate),
            move |r| match r {
                Ok(v) => deferred.resolve(Box::new(move |_| Ok(v.into_iter().map(f64::from).collect()))),
                Err(e) => reject_coded(deferred, e),
            },
        )
        .map_err(to_napi)?;
        Ok(promise)
    }
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

/// Sizes the engine's CPU worker pool (0: one thread per physical core).
/// Call before the first model loads; later calls may only confirm the size.
#[napi]
pub fn configure_kernels(threads: u32) -> Result<JsKernelInfo, Code> {
    candela_engine::kernels::pool::configure(threads as usize).map_err(|e| to_napi(EngineError::InvalidInput(e)))?;
    Ok(kernel_info())
}

/// The CPU kernels in use: pool threads and instruction set.
#[napi]
pub fn kernel_info() -> JsKernelInfo {
    JsKernelInfo {
        threads: candela_engine::kernels::pool::global().threads() as u32,
        isa: candela_engine::kernels::Isa::detect().name().to_string(),
    }
}

/// Device and process memory figures.
#[napi]
pub fn memory_info() -> JsMemoryInfo {
    let m = device::memory_info();
    JsMemoryInfo {
        device: m.device,
        process_rss_bytes: m.process_rss_bytes as f64,
        device_used_bytes: m.device_used_bytes.map(|b| b as f64),
        device_total_bytes: m.device_total_bytes.map(|b| b as f64),
        cpu_features: m.cpu_features.into_iter().map(String::from).collect(),
        cuda_compiled: cfg!(feature = "cuda"),
    }
}
