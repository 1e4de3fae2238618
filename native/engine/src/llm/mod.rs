//! Decoder-only LLMs from GGUF: loading, tokenization, chat templates,
//! sampling and the per-model scheduler thread.

pub mod candle_decoder;
pub mod config;
pub mod cpu;
pub mod model;
pub mod prefix_cache;
pub mod sampler;
pub mod scheduler;
pub mod sink;
pub mod template;
pub mod text;
pub mod tokenizer;
pub mod types;

pub use config::{Architecture, LlmConfig};
pub use model::DecoderModel;
pub use sampler::SamplingParams;
pub use scheduler::{SchedulerConfig, SchedulerStats};
pub use sink::{channel_sink, ChannelSink, EventSink};
pub use template::{ChatMessage, ChatTemplate};
pub use tokenizer::TokenizerSource;
pub use types::*;

use crate::{EngineError, Result};
use candle_core::quantized::gguf_file;
use candle_core::Device;
use crossbeam_channel::Sender;
use scheduler::{Command, Pending};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;
use tokenizers::Tokenizer;

/// Everything needed to run one LLM; shared read-only with its scheduler.
pub struct Llm {
    pub model: DecoderModel,
    pub tokenizer: Tokenizer,
    pub tokenizer_source: TokenizerSource,
    pub template: ChatTemplate,
    /// Tokens that end a turn.
    pub stop_ids: Vec<u32>,
    /// Prepend BOS when tokenizing prompts (`tokenizer.ggml.add_bos_token`).
    pub bos_id: Option<u32>,
}

/// Where an LLM's files are.
#[derive(Debug, Clone)]
pub struct LlmFiles {
    pub gguf: PathBuf,
    /// Optional `tokenizer.json`; the GGUF's own vocabulary otherwise.
    pub tokenizer_json: Option<PathBuf>,
}

impl LlmFiles {
    /// Resolves a model path: a `.gguf` file, or a directory holding exactly
    /// one `.gguf` and optionally a `tokenizer.json`.
    pub fn resolve(path: &Path) -> Result<Self> {
        let (gguf, dir) = if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "gguf"))
                .collect();
            found.sort();
            match found.len() {
                1 => (found.remove(0), path.to_path_buf()),
                0 => return Err(EngineError::invalid(format!("no .gguf file in {}", path.display()))),
                _ => return Err(EngineError::invalid(format!("several .gguf files in {}; name one", path.display()))),
            }
        } else if path.is_file() {
            (path.to_path_buf(), path.parent().map(Path::to_path_buf).unwrap_or_default())
        } else {
            return Err(EngineError::invalid(format!("model path {} does not exist", path.display())));
        };
        let tj = dir.join("tokenizer.json");
        Ok(Self { gguf, tokenizer_json: tj.exists().then_some(tj) })
    }
}

impl Llm {
    /// Loads an LLM from its files onto `device`; weights stay in the file's
    /// formats (see `model::DecoderModel::from_gguf`).
    pub fn load(files: &LlmFiles, device: &Device) -> Result<Self> {
        let mut f = std::fs::File::open(&files.gguf)?;
        let ct = gguf_file::Content::read(&mut f)
            .map_err(|e| EngineError::invalid(format!("{} is not a readable GGUF: {}", files.gguf.display(), crate::error::strip_backtrace(e))))?;
        let model = DecoderModel::from_gguf(&ct, &mut f, device)?;
        let (tokenizer, tokenizer_source) = tokenizer::load_llm_tokenizer(&ct, files.tokenizer_json.as_deref())?;
        let stop_ids = tokenizer::stop_token_ids(&ct, &tokenizer);
        let tok_str = |key: &str| {
            config::md(&ct, key)
                .and_then(|v| v.to_u32().ok())
                .and_then(|id| tokenizer.id_to_token(id))
                .unwrap_or_default()
        };
        let template = ChatTemplate::new(
            config::md_str(&ct, "tokenizer.chat_template"),
            tok_str("tokenizer.ggml.bos_token_id"),
            tok_str("tokenizer.ggml.eos_token_id"),
        )?;
        let add_bos = config::md(&ct, "tokenizer.ggml.add_bos_token").and_then(|v| v.to_bool().ok()).unwrap_or(false);
        let bos_id = if add_bos { config::md(&ct, "tokenizer.ggml.bos_token_id").and_then(|v| v.to_u32().ok()) } else { None };
        Ok(Self { model, tokenizer, tokenizer_source, template, stop_ids, bos_id })
    }

    /// Token ids of `text`. Special-token text such as `<|im_start|>` is
    /// recognised (chat prompts rely on it).
    pub fn tokenize(&self, text: &str, add_bos: bool) -> Result<Vec<u32>> {
        let enc = self.tokenizer.encode(text, false).map_err(EngineError::tokenizer)?;
        let mut ids = Vec::with_capacity(enc.len() + 1);
        if add_bos {
            if let Some(b) = self.bos_id {
                ids.push(b);
            }
        }
        ids.extend_from_slice(enc.get_ids());
        Ok(ids)
    }

    /// Text of `ids`.
    pub fn detokenize(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.check_ids(ids)?;
        self.tokenizer.decode(ids, skip_special).map_err(EngineError::tokenizer)
    }

    /// Rejects ids outside the model's vocabulary.
    fn check_ids(&self, ids: &[u32]) -> Result<()> {
        let vocab = self.model.config.vocab_size as u32;
        match ids.iter().find(|&&i| i >= vocab) {
            Some(bad) => Err(EngineError::invalid(format!("token id {bad} is outside the vocabulary (size {vocab})"))),
            None => Ok(()),
        }
    }

    /// The prompt token ids a request stands for.
    pub fn prompt_tokens(&self, input: &PromptInput) -> Result<Vec<u32>> {
        let ids = match input {
            PromptInput::Text(t) => self.tokenize(t, true)?,
            PromptInput::Chat(m) => self.tokenize(&self.template.render(m, true)?, false)?,
            PromptInput::Tokens(t) => {
                self.check_ids(t)?;
                t.clone()
            }
        };
        if ids.is_empty() {
            return Err(EngineError::invalid("the prompt is empty"));
        }
        Ok(ids)
    }
}

/// A running LLM: its shared state and the channel to its scheduler thread.
pub struct LlmHandle {
    pub llm: Arc<Llm>,
    pub stats: Arc<SchedulerStats>,
    pub scheduler: SchedulerConfig,
    name: String,
    tx: Sender<Command>,
    next_id: AtomicU64,
    accepting: AtomicBool,
    thread: parking_lot::Mutex<Option<JoinHandle<()>>>,
}

/// A submitted generation: its id and the means to cancel it. Events arrive
/// through the sink given at submission.
#[derive(Clone, Debug)]
pub struct GenerationHandle {
    pub id: u64,
    pub prompt_tokens: usize,
    cancel: Arc<AtomicBool>,
}

impl GenerationHandle {
    /// Asks the scheduler to stop this generation; it ends within one step
    /// with finish reason `cancelled`.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

impl LlmHandle {
    /// Starts the scheduler thread for a loaded model.
    pub fn start(name: &str, llm: Llm, scheduler: SchedulerConfig) -> Result<Self> {
        let llm = Arc::new(llm);
        let stats = Arc::new(SchedulerStats::default());
        let (tx, rx) = crossbeam_channel::unbounded();
        let thread = {
            let (llm, stats) = (llm.clone(), stats.clone());
            std::thread::Builder::new()
                .name(format!("candela-llm-{name}"))
                .spawn(move || {
                    // The scheduler thread runs kernels too (it joins every product).
                    crate::kernels::pool::lower_priority();
                    scheduler::run(llm, rx, scheduler, stats)
                })?
        };
        Ok(Self {
            llm,
            stats,
            scheduler,
            name: name.to_string(),
            tx,
            next_id: AtomicU64::new(1),
            accepting: AtomicBool::new(true),
            thread: parking_lot::Mutex::new(Some(thread)),
        })
    }

    /// Validates and queues a generation. Fails fast with `CONTEXT_OVERFLOW`
    /// (the prompt plus `max_tokens` does not fit), `OVERLOADED` (queue full)
    /// or `INVALID_INPUT`; tokenization happens on the caller's thread.
    pub fn submit(&self, req: GenerateRequest, sink: Box<dyn EventSink>) -> Result<GenerationHandle> {
        if !self.accepting.load(Ordering::Acquire) {
            return Err(EngineError::ModelNotFound(self.name.clone()));
        }
        req.params.validate()?;
        let prompt = self.llm.prompt_tokens(&req.input)?;
        let context = self.llm.model.config.context_length;
        let needed = prompt.len() + req.params.max_tokens;
        if needed > context {
            return Err(EngineError::ContextOverflow {
                prompt_tokens: prompt.len(),
                max_tokens: req.params.max_tokens,
                needed,
                context,
            });
        }
        let waiting = self.stats.waiting.load(Ordering::Relaxed) + self.tx.len();
        if waiting >= self.scheduler.max_queue {
            return Err(EngineError::Overloaded { model: self.name.clone(), waiting, limit: self.scheduler.max_queue });
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let cancel = Arc::new(AtomicBool::new(false));
        let handle = GenerationHandle { id, prompt_tokens: prompt.len(), cancel: cancel.clone() };
        let pending = Pending { id, prompt, params: req.params, sink, cancel, submitted: Instant::now() };
        self.tx
            .send(Command::Submit(pending))
            .map_err(|_| EngineError::ModelNotFound(self.name.clone()))?;
        Ok(handle)
    }

    /// Convenience for Rust callers: submit and collect the whole result.
    pub fn generate_blocking(&self, req: GenerateRequest) -> Result<GenerationResult> {
        let (sink, rx) = channel_sink();
        self.submit(req, Box::new(sink))?;
        for ev in rx.iter() {
            if let GenerationEvent::Done(r) = ev {
                return Ok(r);
            }
        }
        Err(EngineError::Internal("scheduler ended without a result".into()))
    }

    /// Stops accepting work; queued and running generations finish, then the
    /// thread exits. Returns at once; [`LlmHandle::join`] waits.
    pub fn drain(&self) {
        self.accepting.store(false, Ordering::Release);
        let _ = self.tx.send(Command::Drain);
    }

    /// Waits for the scheduler thread after [`LlmHandle::drain`].
    pub fn join(&self) {
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

impl Drop for LlmHandle {
    fn drop(&mut self) {
        self.drain();
    }
}
