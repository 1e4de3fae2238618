//! The engine thread of one LLM.
//!
//! Threading contract: every model computation for an LLM happens on its own
//! scheduler thread. Callers (any thread) send [`Command`]s through a channel
//! and receive events through an [`EventSink`]; they never touch the model or
//! a KV cache. The thread runs continuous batching: each step it admits
//! waiting requests up to `max_batch`, runs at most `prefill_chunk` prompt
//! tokens plus one decode token for every other running sequence in a single
//! ragged forward pass, samples, and delivers text. Cancellation is a flag
//! checked before every step, so a cancelled sequence stops within one step.

use super::model::{SequenceCache, StepInput};
use super::prefix_cache::{common_prefix, PrefixCache, MIN_REUSE};
use super::sampler::Sampler;
use super::sink::{EventSink, HIGH_WATER};
use super::text::{IncrementalDecoder, StopMatcher, StopOutcome};
use super::types::*;
use super::Llm;
use crate::EngineError;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Scheduler limits.
#[derive(Debug, Clone, Copy)]
pub struct SchedulerConfig {
    /// Sequences decoded together in one step.
    pub max_batch: usize,
    /// Requests allowed to wait for a batch slot; beyond it, `OVERLOADED`.
    pub max_queue: usize,
    /// Prompt tokens processed per step (long prompts are chunked so running
    /// sequences keep producing tokens).
    pub prefill_chunk: usize,
    /// Bytes of finished sequences' K/V kept for prompt reuse (0: off).
    pub prefix_cache_bytes: usize,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self { max_batch: 16, max_queue: 256, prefill_chunk: 512, prefix_cache_bytes: 256 << 20 }
    }
}

/// Live counters, readable from any thread (metrics, health).
#[derive(Debug, Default)]
pub struct SchedulerStats {
    pub waiting: AtomicUsize,
    pub running: AtomicUsize,
    pub completed: AtomicU64,
    pub prompt_tokens: AtomicU64,
    pub generated_tokens: AtomicU64,
    /// Prompt tokens of admitted requests that asked for prefix reuse.
    pub prefix_cache_queries: AtomicU64,
    /// Of those, tokens whose K/V were reused.
    pub prefix_cache_hits: AtomicU64,
    /// Bytes the prefix cache holds now.
    pub prefix_cache_bytes: AtomicU64,
}

pub(crate) struct Pending {
    pub id: u64,
    pub prompt: Vec<u32>,
    pub params: super::sampler::SamplingParams,
    pub sink: Box<dyn EventSink>,
    pub cancel: Arc<AtomicBool>,
    pub submitted: Instant,
}

pub(crate) enum Command {
    Submit(Pending),
    /// Finish what is queued and running, accept nothing new, then exit.
    Drain,
}

struct Sequence {
    p: Pending,
    cache: SequenceCache,
    sampler: Sampler,
    decoder: IncrementalDecoder,
    stop: StopMatcher,
    /// Prompt tokens already in the cache.
    prefilled: usize,
    /// Of those, tokens reused from another sequence's cache.
    cached: usize,
    /// Generated token ids (the last one not yet fed to the model).
    generated: Vec<u32>,
    text: String,
    /// Ids sampled since the last delivered text.
    unsent_ids: Vec<u32>,
    admitted: Instant,
    first_token: Option<Instant>,
    /// A stop sequence ended the output: nothing after it may be released.
    hit_stop_sequence: bool,
}

impl Sequence {
    fn prefilling(&self) -> bool {
        self.prefilled < self.p.prompt.len()
    }
}

pub(crate) fn run(llm: Arc<Llm>, rx: Receiver<Command>, cfg: SchedulerConfig, stats: Arc<SchedulerStats>) {
    let mut waiting: VecDeque<Pending> = VecDeque::new();
    let mut running: Vec<Sequence> = Vec::new();
    let mut prefixes = PrefixCache::new(cfg.prefix_cache_bytes);
    let mut draining = false;
    loop {
        // 1. Commands: block only when there is nothing to do.
        let idle = running.is_empty() && waiting.is_empty();
        if idle && draining {
            break;
        }
        let mut next = if idle {
            match rx.recv() {
                Ok(c) => Some(c),
                Err(_) => break,
            }
        } else {
            rx.try_recv().ok()
        };
        while let Some(cmd) = next.take() {
            match cmd {
                Command::Submit(p) => waiting.push_back(p),
                Command::Drain => draining = true,
            }
            next = rx.try_recv().ok();
        }

        // 2. Drop cancelled requests that never started.
        waiting.retain_mut(|p| {
            if p.cancel.load(Ordering::Relaxed) {
                let now = Instant::now();
                let result = finished(p, "", 0, FinishReason::Cancelled, None, 0, now, now, None);
                p.sink.deliver(GenerationEvent::Done(result));
                false
            } else {
                true
            }
        });

        // 3. Admit.
        while running.len() < cfg.max_batch {
            let Some(p) = waiting.pop_front() else { break };
            let sampler = Sampler::new(p.params.clone());
            let stop = StopMatcher::new(p.params.stop.clone());
            let (cached, cache) = if p.params.cache_prompt {
                stats.prefix_cache_queries.fetch_add(p.prompt.len() as u64, Ordering::Relaxed);
                reuse_prefix(&llm, &mut prefixes, &running, &p.prompt)
            } else {
                (0, llm.model.new_cache())
            };
            stats.prefix_cache_hits.fetch_add(cached as u64, Ordering::Relaxed);
            running.push(Sequence {
                cache,
                sampler,
                decoder: IncrementalDecoder::new(),
                stop,
                prefilled: cached,
                cached,
                generated: Vec::new(),
                text: String::new(),
                unsent_ids: Vec::new(),
                admitted: Instant::now(),
                first_token: None,
                hit_stop_sequence: false,
                p,
            });
        }
        stats.waiting.store(waiting.len(), Ordering::Relaxed);
        stats.running.store(running.len(), Ordering::Relaxed);

        // 4. Finish cancelled sequences (checked before every step).
        let mut i = 0;
        while i < running.len() {
            if running[i].p.cancel.load(Ordering::Relaxed) {
                let seq = running.swap_remove(i);
                finish(&llm, seq, FinishReason::Cancelled, None, &stats, &mut prefixes);
            } else {
                i += 1;
            }
        }
        stats.running.store(running.len(), Ordering::Relaxed);
        if running.is_empty() {
            continue;
        }

        // 5. Build one ragged step: prompt chunks within the budget, one token per decoding sequence.
        let mut budget = cfg.prefill_chunk;
        let mut plan: Vec<(usize, usize, usize)> = Vec::new(); // (seq index, start, len) into its feed
        for (idx, s) in running.iter().enumerate() {
            if s.p.sink.backlog() >= HIGH_WATER {
                continue; // consumer is behind: pause this sequence
            }
            if s.prefilling() {
                if budget == 0 {
                    continue;
                }
                let len = (s.p.prompt.len() - s.prefilled).min(budget);
                budget -= len;
                plan.push((idx, s.prefilled, len));
            } else {
                plan.push((idx, 0, 1));
            }
        }
        if plan.is_empty() {
            // Everyone is paused by back-pressure: wait briefly for commands or consumers.
            match rx.recv_timeout(Duration::from_millis(2)) {
                Ok(Command::Submit(p)) => waiting.push_back(p),
                Ok(Command::Drain) => draining = true,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => draining = true,
            }
            continue;
        }

        // 6. Forward.
        let outcome = {
            let mut inputs: Vec<StepInput<'_>> = Vec::with_capacity(plan.len());
            // Split borrows: each planned sequence contributes its cache and token slice.
            let mut slots: Vec<Option<&mut Sequence>> = running.iter_mut().map(Some).collect();
            for &(idx, start, len) in &plan {
                let s = slots[idx].take().expect("a sequence is planned once");
                let tokens: &[u32] = if s.prefilling() {
                    &s.p.prompt[start..start + len]
                } else {
                    std::slice::from_ref(s.generated.last().expect("decoding sequence has a token"))
                };
                inputs.push(StepInput { tokens, cache: &mut s.cache });
            }
            // A panic inside candle must not kill the thread and strand every
            // consumer: it fails this step's sequences like any other error.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| llm.model.forward_logits(&mut inputs)))
            .unwrap_or_else(|_| Err(EngineError::Internal("panic in the model's forward pass".into())))
        };
        let vocab = llm.model.config.vocab_size;
        let mut logits = match outcome {
            Ok(l) => l,
            Err(e) => {
                // A failed step fails every sequence in it; the thread lives on.
                let planned: Vec<usize> = plan.iter().map(|p| p.0).collect();
                let mut idxs = planned;
                idxs.sort_unstable_by(|a, b| b.cmp(a));
                for idx in idxs {
                    let seq = running.swap_remove(idx);
                    finish(&llm, seq, FinishReason::Error, Some(&e), &stats, &mut prefixes);
                }
                stats.running.store(running.len(), Ordering::Relaxed);
                continue;
            }
        };

        // 7. Sample and deliver.
        let mut done: Vec<(usize, FinishReason)> = Vec::new();
        for (row, &(idx, _start, len)) in plan.iter().enumerate() {
            let s = &mut running[idx];
            if s.prefilling() {
                s.prefilled += len;
                if s.prefilling() {
                    continue; // more prompt chunks to go: these logits are not needed
                }
                s.cache.start_decoding();
            }
            let row_logits = &mut logits[row * vocab..(row + 1) * vocab];
            let tok = s.sampler.sample_after(row_logits, &s.p.prompt, &s.generated);
            if s.first_token.is_none() {
                s.first_token = Some(Instant::now());
            }
            s.generated.push(tok);
            stats.generated_tokens.fetch_add(1, Ordering::Relaxed);
            let is_eos = !s.p.params.ignore_eos && llm.stop_ids.contains(&tok);
            if is_eos {
                s.generated.pop(); // EOS is not part of the completion's text
                done.push((idx, FinishReason::Stop));
                continue;
            }
            s.unsent_ids.push(tok);
            let piece = s.decoder.push(&llm.tokenizer, tok).unwrap_or_default();
            let mut reason = None;
            let out = match s.stop.feed(&piece) {
                StopOutcome::Continue(t) => t,
                StopOutcome::Stop(t) => {
                    reason = Some(FinishReason::Stop);
                    s.hit_stop_sequence = true;
                    t
                }
            };
            if !out.is_empty() {
                s.text.push_str(&out);
                let ids = std::mem::take(&mut s.unsent_ids);
                if !s.p.sink.deliver(GenerationEvent::Token { text: out, token_ids: ids }) {
                    s.p.cancel.store(true, Ordering::Relaxed); // consumer gone
                }
            }
            if reason.is_none() && s.generated.len() >= s.p.params.max_tokens {
                reason = Some(FinishReason::Length);
            }
            if reason.is_none() && s.p.prompt.len() + s.generated.len() >= llm.model.config.context_length {
                reason = Some(FinishReason::Length);
            }
            if let Some(r) = reason {
                done.push((idx, r));
            }
        }
        done.sort_unstable_by_key(|d| std::cmp::Reverse(d.0));
        for (idx, reason) in done {
            let seq = running.swap_remove(idx);
            finish(&llm, seq, reason, None, &stats, &mut prefixes);
        }
        stats.running.store(running.len(), Ordering::Relaxed);
    }
    stats.running.store(0, Ordering::Relaxed);
    stats.waiting.store(0, Ordering::Relaxed);
}

/// The cache a new sequence starts from: a copy of the longest prefix of its
/// prompt held by the prefix cache or by a running sequence's prompt (a
/// burst of requests sharing a system prompt), else an empty one.
fn reuse_prefix(llm: &Llm, prefixes: &mut PrefixCache, running: &[Sequence], prompt: &[u32]) -> (usize, SequenceCache) {
    let limit = prompt.len().saturating_sub(1);
    let live = running
        .iter()
        .map(|s| (common_prefix(&s.p.prompt[..s.prefilled.min(s.p.prompt.len())], &prompt[..limit]), s))
        .max_by_key(|(n, _)| *n)
        .filter(|(n, _)| *n >= MIN_REUSE);
    let stored = prefixes.lookup(prompt);
    match (live, stored) {
        (Some((n, s)), stored) if stored.as_ref().is_none_or(|(m, _)| n > *m) => match s.cache.prefix(n) {
            Some(c) => (n, c),
            None => stored.unwrap_or_else(|| (0, llm.model.new_cache())),
        },
        (_, Some(found)) => found,
        _ => (0, llm.model.new_cache()),
    }
}

fn finish(llm: &Llm, mut s: Sequence, reason: FinishReason, err: Option<&EngineError>, stats: &SchedulerStats, prefixes: &mut PrefixCache) {
    // Release text held back for stop matching or an incomplete character,
    // unless a stop sequence ended the output.
    if !s.hit_stop_sequence {
        let mut tail = s.decoder.flush(&llm.tokenizer).unwrap_or_default();
        let (StopOutcome::Continue(t) | StopOutcome::Stop(t)) = s.stop.feed(&tail);
        tail = t;
        tail.push_str(&s.stop.flush());
        if !tail.is_empty() && reason != FinishReason::Cancelled {
            s.text.push_str(&tail);
            let ids = std::mem::take(&mut s.unsent_ids);
            s.p.sink.deliver(GenerationEvent::Token { text: tail, token_ids: ids });
        }
    }
    let now = Instant::now();
    let error = err.map(|e| (e.code().as_str().to_string(), e.to_string()));
    stats.completed.fetch_add(1, Ordering::Relaxed);
    stats.prompt_tokens.fetch_add(s.p.prompt.len() as u64, Ordering::Relaxed);
    let mut result = finished(&s.p, &s.text, s.generated.len(), reason, error, s.sampler.seed, s.admitted, now, s.first_token);
    result.usage.cached_prompt_tokens = s.cached;
    s.p.sink.deliver(GenerationEvent::Done(result));
    // Keep the K/V for later prompts that start the same way (a failed step's may be partial).
    if reason != FinishReason::Error && s.p.params.cache_prompt {
        let mut tokens = std::mem::take(&mut s.p.prompt);
        tokens.extend_from_slice(&s.generated);
        prefixes.insert(tokens, s.cache);
        stats.prefix_cache_bytes.store(prefixes.bytes() as u64, Ordering::Relaxed);
    }
}

#[allow(clippy::too_many_arguments)]
fn finished(
    p: &Pending,
    text: &str,
    completion_tokens: usize,
    reason: FinishReason,
    error: Option<(String, String)>,
    seed: u64,
    admitted: Instant,
    end: Instant,
    first_token: Option<Instant>,
) -> GenerationResult {
    let ms = |a: Instant, b: Instant| b.saturating_duration_since(a).as_secs_f64() * 1e3;
    let first = first_token.unwrap_or(end);
    let queue_ms = ms(p.submitted, admitted);
    let prefill_ms = ms(admitted, first);
    let decode_ms = ms(first, end);
    let active_ms = ms(admitted, end);
    let per_sec = |n: f64, t: f64| if t > 0.0 { n * 1e3 / t } else { 0.0 };
    GenerationResult {
        id: p.id,
        text: text.to_string(),
        finish_reason: reason,
        usage: Usage {
            prompt_tokens: p.prompt.len(),
            cached_prompt_tokens: 0,
            completion_tokens,
            total_tokens: p.prompt.len() + completion_tokens,
        },
        timings: Timings {
            queue_ms,
            prefill_ms,
            ttft_ms: if first_token.is_some() { ms(p.submitted, first) } else { 0.0 },
            decode_ms,
            total_ms: ms(p.submitted, end),
            tokens_per_sec: per_sec(completion_tokens as f64, active_ms),
            prefill_tokens_per_sec: per_sec(p.prompt.len() as f64, prefill_ms),
            decode_tokens_per_sec: per_sec(completion_tokens.saturating_sub(1) as f64, decode_ms),
        },
        seed,
        error,
    }
}
