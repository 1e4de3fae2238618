//! The model registry: models by name, with their status and metadata.
//!
//! Thread-safety: every method takes `&self` and may be called from any
//! thread. A load runs on the calling thread (callers put it on a thread of
//! their own) with no registry lock held; a second load of a name that is
//! loading waits for the first and returns its outcome, so two loads never
//! race. Unloading removes the name at once (new requests get
//! `MODEL_NOT_FOUND`); work already queued or running on the model finishes,
//! and its memory is freed when the last of it ends.

use crate::device::{self, DevicePreference};
use crate::encoder::worker::Worker;
use crate::encoder::{CrossEncoder, Embedder, Pooling};
use crate::llm::{Llm, LlmFiles, LlmHandle, SchedulerConfig};
use crate::{EngineError, Result};
use parking_lot::{Condvar, Mutex, RwLock};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// What a model is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelRole {
    Llm,
    Embedder,
    Reranker,
}

impl ModelRole {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "llm" => Ok(Self::Llm),
            "embedder" => Ok(Self::Embedder),
            "reranker" => Ok(Self::Reranker),
            o => Err(EngineError::invalid(format!("unknown role '{o}' (llm, embedder, reranker)"))),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Llm => "llm",
            Self::Embedder => "embedder",
            Self::Reranker => "reranker",
        }
    }
}

/// How to load one model.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub name: String,
    pub role: ModelRole,
    /// A `.gguf` file or a model directory.
    pub path: PathBuf,
    pub device: DevicePreference,
    pub scheduler: SchedulerConfig,
    /// Embedders: override the pooling from the model's config.
    pub pooling: Option<Pooling>,
    /// Encoders: jobs allowed to wait before `OVERLOADED`.
    pub encoder_queue: usize,
}

impl LoadSpec {
    pub fn new(name: &str, role: ModelRole, path: impl Into<PathBuf>) -> Self {
        Self {
            name: name.to_string(),
            role,
            path: path.into(),
            device: DevicePreference::Auto,
            scheduler: SchedulerConfig::default(),
            pooling: None,
            encoder_queue: 64,
        }
    }
}

/// Load status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum ModelStatus {
    Loading,
    Ready,
    Failed(String),
}

impl ModelStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Loading => "loading",
            Self::Ready => "ready",
            Self::Failed(_) => "failed",
        }
    }
}

/// Metadata of a model, whatever its status.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub name: String,
    pub role: ModelRole,
    pub status: ModelStatus,
    pub path: String,
    pub architecture: Option<String>,
    pub quantization: Option<String>,
    pub parameter_count: Option<u64>,
    /// Context window (LLM) or maximum input tokens (encoders).
    pub context_length: Option<usize>,
    /// Embedding width (embedders) or hidden size.
    pub dimensions: Option<usize>,
    pub vocab_size: Option<usize>,
    pub bytes_on_disk: u64,
    pub bytes_in_memory: Option<u64>,
    pub device: Option<String>,
    pub load_ms: Option<f64>,
    pub tokenizer: Option<String>,
    pub chat_template: Option<String>,
    pub pooling: Option<String>,
}

/// A loaded model.
#[derive(Clone)]
pub enum Loaded {
    Llm(Arc<LlmHandle>),
    Embedder(Arc<Worker<Embedder>>),
    Reranker(Arc<Worker<CrossEncoder>>),
}

struct Slot {
    info: Mutex<ModelInfo>,
    model: Mutex<Option<Loaded>>,
    done: Condvar,
}

/// Models by name.
#[derive(Default)]
pub struct Registry {
    slots: RwLock<HashMap<String, Arc<Slot>>>,
}

fn bytes_on_disk(path: &Path) -> u64 {
    if path.is_file() {
        return std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    }
    std::fs::read_dir(path)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| bytes_on_disk(&e.path())).sum())
        .unwrap_or(0)
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads a model under `spec.name` and returns its info. Loading a name
    /// that is already ready returns its info unchanged; a name that is
    /// loading is waited for; a failed one is retried.
    pub fn load(&self, spec: LoadSpec) -> Result<ModelInfo> {
        let slot = {
            let mut slots = self.slots.write();
            if let Some(slot) = slots.get(&spec.name).cloned() {
                let mut info = slot.info.lock();
                match &info.status {
                    ModelStatus::Ready => return Ok(info.clone()),
                    ModelStatus::Loading => {
                        drop(slots);
                        while info.status == ModelStatus::Loading {
                            slot.done.wait(&mut info);
                        }
                        return match &info.status {
                            ModelStatus::Failed(r) => Err(EngineError::LoadFailed { name: spec.name, reason: r.clone() }),
                            _ => Ok(info.clone()),
                        };
                    }
                    ModelStatus::Failed(_) => {}
                }
            }
            let info = ModelInfo {
                name: spec.name.clone(),
                role: spec.role,
                status: ModelStatus::Loading,
                path: spec.path.display().to_string(),
                architecture: None,
                quantization: None,
                parameter_count: None,
                context_length: None,
                dimensions: None,
                vocab_size: None,
                bytes_on_disk: bytes_on_disk(&spec.path),
                bytes_in_memory: None,
                device: None,
                load_ms: None,
                tokenizer: None,
                chat_template: None,
                pooling: None,
            };
            let slot = Arc::new(Slot { info: Mutex::new(info), model: Mutex::new(None), done: Condvar::new() });
            slots.insert(spec.name.clone(), slot.clone());
            slot
        };
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| load_model(&spec)))
            .unwrap_or_else(|p| Err(EngineError::Internal(panic_message(p))));
        let mut info = slot.info.lock();
        let result = match outcome {
            Ok((model, fill)) => {
                fill(&mut info);
                info.load_ms = Some(started.elapsed().as_secs_f64() * 1e3);
                info.status = ModelStatus::Ready;
                *slot.model.lock() = Some(model);
                Ok(info.clone())
            }
            Err(e) => {
                let reason = e.to_string();
                info.status = ModelStatus::Failed(reason.clone());
                Err(EngineError::LoadFailed { name: spec.name.clone(), reason })
            }
        };
        slot.done.notify_all();
        result
    }

    /// Removes a model. Returns false when no such name was registered.
    pub fn unload(&self, name: &str) -> bool {
        let Some(slot) = self.slots.write().remove(name) else { return false };
        if let Some(Loaded::Llm(h)) = slot.model.lock().take() {
            h.drain(); // running and queued generations finish; then the thread exits
        }
        true
    }

    /// Info on every registered model, sorted by name.
    pub fn list(&self) -> Vec<ModelInfo> {
        let mut v: Vec<ModelInfo> = self.slots.read().values().map(|s| s.info.lock().clone()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Info on one model.
    pub fn info(&self, name: &str) -> Result<ModelInfo> {
        self.slots
            .read()
            .get(name)
            .map(|s| s.info.lock().clone())
            .ok_or_else(|| EngineError::ModelNotFound(name.to_string()))
    }

    /// The ready model behind `name`.
    pub fn get(&self, name: &str) -> Result<Loaded> {
        let slot = self.slots.read().get(name).cloned().ok_or_else(|| EngineError::ModelNotFound(name.to_string()))?;
        let model = slot.model.lock().clone();
        model.ok_or_else(|| EngineError::ModelNotReady {
            name: name.to_string(),
            status: slot.info.lock().status.as_str().to_string(),
        })
    }

    fn role_error(name: &str, actual: &Loaded, expected: ModelRole) -> EngineError {
        let actual = match actual {
            Loaded::Llm(_) => "llm",
            Loaded::Embedder(_) => "embedder",
            Loaded::Reranker(_) => "reranker",
        };
        EngineError::WrongModelRole { name: name.into(), actual: actual.into(), expected: expected.as_str().into() }
    }

    pub fn llm(&self, name: &str) -> Result<Arc<LlmHandle>> {
        match self.get(name)? {
            Loaded::Llm(h) => Ok(h),
            other => Err(Self::role_error(name, &other, ModelRole::Llm)),
        }
    }

    pub fn embedder(&self, name: &str) -> Result<Arc<Worker<Embedder>>> {
        match self.get(name)? {
            Loaded::Embedder(h) => Ok(h),
            other => Err(Self::role_error(name, &other, ModelRole::Embedder)),
        }
    }

    pub fn reranker(&self, name: &str) -> Result<Arc<Worker<CrossEncoder>>> {
        match self.get(name)? {
            Loaded::Reranker(h) => Ok(h),
            other => Err(Self::role_error(name, &other, ModelRole::Reranker)),
        }
    }
}

type Fill = Box<dyn FnOnce(&mut ModelInfo)>;

fn load_model(spec: &LoadSpec) -> Result<(Loaded, Fill)> {
    let dev = device::select(spec.device)?;
    let dev_name = device::device_name(&dev);
    match spec.role {
        ModelRole::Llm => {
            let files = LlmFiles::resolve(&spec.path)?;
            let llm = Llm::load(&files, &dev)?;
            let cfg = llm.model.config.clone();
            let (bytes, quant, params) = (llm.model.weight_bytes, llm.model.quantization.clone(), llm.model.parameter_count);
            let tok = llm.tokenizer_source.as_str().to_string();
            let tmpl = if llm.template.is_fallback { "chatml (fallback)" } else { "gguf" }.to_string();
            let handle = LlmHandle::start(&spec.name, llm, spec.scheduler)?;
            Ok((
                Loaded::Llm(Arc::new(handle)),
                Box::new(move |i: &mut ModelInfo| {
                    i.architecture = Some(cfg.architecture.as_str().into());
                    i.quantization = Some(quant);
                    i.parameter_count = Some(params);
                    i.context_length = Some(cfg.context_length);
                    i.dimensions = Some(cfg.hidden_size);
                    i.vocab_size = Some(cfg.vocab_size);
                    i.bytes_in_memory = Some(bytes);
                    i.device = Some(dev_name);
                    i.tokenizer = Some(tok);
                    i.chat_template = Some(tmpl);
                }),
            ))
        }
        ModelRole::Embedder | ModelRole::Reranker => {
            let (loaded, info) = if spec.role == ModelRole::Embedder {
                let e = Embedder::load(&spec.path, &dev, spec.pooling)?;
                let info = e.info();
                (Loaded::Embedder(Arc::new(Worker::start(&spec.name, e, spec.encoder_queue)?)), info)
            } else {
                let c = CrossEncoder::load(&spec.path, &dev)?;
                let info = c.info();
                (Loaded::Reranker(Arc::new(Worker::start(&spec.name, c, spec.encoder_queue)?)), info)
            };
            Ok((
                loaded,
                Box::new(move |i: &mut ModelInfo| {
                    i.architecture = Some("bert".into());
                    i.quantization = Some("F32".into());
                    i.parameter_count = Some(info.parameter_count);
                    i.context_length = Some(info.max_length);
                    i.dimensions = Some(info.hidden_size);
                    i.vocab_size = Some(info.vocab_size);
                    i.bytes_in_memory = Some(info.weight_bytes);
                    i.device = Some(dev_name);
                    i.tokenizer = Some("tokenizer.json".into());
                    i.pooling = info.pooling.map(|p| p.as_str().into());
                }),
            ))
        }
    }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic while loading".into())
}
