//! The LLM scheduler on tiny generated models: determinism, batched ==
//! single, cancellation within one step, back-pressure limits, context
//! overflow, stop handling and usage accounting.

mod common;

use candela_testkit::fixtures::{TinyArch, TinyDtype};
use candela_engine::llm::model::StepInput;
use candela_engine::llm::*;
use candela_engine::ErrorCode;
use candle_core::IndexOp;
use common::*;
use std::time::Duration;

fn req(prompt: &str, params: SamplingParams) -> GenerateRequest {
    GenerateRequest { input: PromptInput::Text(prompt.to_string()), params }
}

fn greedy(max_tokens: usize) -> SamplingParams {
    SamplingParams { max_tokens, ignore_eos: true, ..Default::default() }
}

#[test]
fn greedy_generation_is_deterministic() {
    let h = tiny_handle(TinyArch::Qwen2, TinyDtype::Q8_0, SchedulerConfig::default());
    let a = h.generate_blocking(req("hello there", greedy(24))).unwrap();
    let b = h.generate_blocking(req("hello there", greedy(24))).unwrap();
    assert_eq!(a.usage.completion_tokens, 24);
    assert_eq!(a.finish_reason, FinishReason::Length);
    assert_eq!(a.text, b.text);
    assert!(!a.text.is_empty());
}

#[test]
fn seeded_sampling_is_reproducible_and_seed_dependent() {
    let h = tiny_handle(TinyArch::Llama, TinyDtype::Q8_0, SchedulerConfig::default());
    let p = |seed| SamplingParams { temperature: 1.5, top_k: 50, top_p: 0.95, seed: Some(seed), ..greedy(32) };
    let a = h.generate_blocking(req("the cat", p(11))).unwrap();
    let b = h.generate_blocking(req("the cat", p(11))).unwrap();
    let c = h.generate_blocking(req("the cat", p(12))).unwrap();
    assert_eq!(a.text, b.text);
    assert_eq!(a.seed, 11);
    assert_ne!(a.text, c.text, "different seeds should give different samples");
}

#[test]
fn batched_decode_equals_single_decode() {
    let llm = tiny_llm(TinyArch::Qwen2, TinyDtype::F32);
    let m = &llm.model;
    let prompts: [&[u32]; 3] = [&[1, 2, 3, 4, 5], &[40, 41], &[7, 8, 9, 10, 11, 12, 13]];
    // Single: each sequence alone.
    let mut single = Vec::new();
    for p in prompts {
        let mut c = m.new_cache();
        m.forward(&mut [StepInput { tokens: p, cache: &mut c }]).unwrap();
        let l = m.forward(&mut [StepInput { tokens: &[99], cache: &mut c }]).unwrap();
        single.push(l.i(0).unwrap().to_vec1::<f32>().unwrap());
    }
    // Batched: prefill of different lengths in one ragged step, then a batched decode.
    let mut caches: Vec<_> = prompts.iter().map(|_| m.new_cache()).collect();
    {
        let mut inputs: Vec<StepInput> = prompts.iter().zip(caches.iter_mut()).map(|(p, c)| StepInput { tokens: p, cache: c }).collect();
        m.forward(&mut inputs).unwrap();
    }
    let mut inputs: Vec<StepInput> = caches.iter_mut().map(|c| StepInput { tokens: &[99], cache: c }).collect();
    let batched = m.forward(&mut inputs).unwrap().to_vec2::<f32>().unwrap();
    for i in 0..3 {
        let d = max_abs_diff(&single[i], &batched[i]);
        assert!(d < 1e-4, "sequence {i}: batched differs from single by {d}");
    }
}

#[test]
fn concurrent_generations_match_their_solo_runs() {
    let h = tiny_handle(TinyArch::Llama, TinyDtype::Q8_0, SchedulerConfig { max_batch: 4, ..Default::default() });
    let prompts = ["alpha", "a much longer prompt than the others", "x", "hello world", "the end"];
    let solo: Vec<String> = prompts.iter().map(|p| h.generate_blocking(req(p, greedy(16))).unwrap().text).collect();
    let rxs: Vec<_> = prompts
        .iter()
        .map(|p| {
            let (sink, rx) = channel_sink();
            h.submit(req(p, greedy(16)), Box::new(sink)).unwrap();
            rx
        })
        .collect();
    for (i, rx) in rxs.into_iter().enumerate() {
        let done = rx.iter().find_map(|e| match e {
            GenerationEvent::Done(r) => Some(r),
            _ => None,
        });
        assert_eq!(done.unwrap().text, solo[i], "prompt {i}");
    }
}

#[test]
fn cancel_stops_within_one_step() {
    let h = tiny_handle(TinyArch::Qwen2, TinyDtype::Q8_0, SchedulerConfig::default());
    let (sink, rx) = channel_sink();
    let g = h.submit(req("go on forever", greedy(100_000 - 200)), Box::new(sink)).unwrap_err();
    // 100k tokens do not fit the 128-token context: that is an error, not truncation.
    assert_eq!(g.code(), ErrorCode::ContextOverflow);
    drop(rx);

    let (sink, rx) = channel_sink();
    let g = h.submit(req("go on", greedy(120)), Box::new(sink)).unwrap();
    let mut before_cancel = 0;
    for ev in rx.iter() {
        if let GenerationEvent::Token { token_ids, .. } = ev {
            before_cancel += token_ids.len();
            if before_cancel >= 3 {
                break;
            }
        }
    }
    g.cancel();
    let mut after = 0;
    let mut result = None;
    for ev in rx.iter() {
        match ev {
            GenerationEvent::Token { token_ids, .. } => after += token_ids.len(),
            GenerationEvent::Done(r) => result = Some(r),
        }
    }
    let r = result.expect("a done event after cancel");
    assert_eq!(r.finish_reason, FinishReason::Cancelled);
    // Tokens already queued to us plus at most the one step in flight when the flag was set.
    let backlog_bound = candela_engine::llm::sink::HIGH_WATER + 1;
    assert!(after <= backlog_bound, "{after} tokens arrived after cancel");
    assert!(r.usage.completion_tokens < 120, "the generation must not run to the end");
}

#[test]
fn cancel_is_prompt_for_a_waiting_consumer() {
    // A consumer that reads every token: after cancel it sees at most one more step.
    let h = tiny_handle(TinyArch::Qwen2, TinyDtype::Q8_0, SchedulerConfig::default());
    let (sink, rx) = channel_sink();
    let g = h.submit(req("go on", greedy(120)), Box::new(sink)).unwrap();
    let first = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(matches!(first, GenerationEvent::Token { .. }));
    g.cancel();
    let before = h.stats.generated_tokens.load(std::sync::atomic::Ordering::Relaxed);
    let r = rx.iter().find_map(|e| if let GenerationEvent::Done(r) = e { Some(r) } else { None }).unwrap();
    assert_eq!(r.finish_reason, FinishReason::Cancelled);
    let after = h.stats.generated_tokens.load(std::sync::atomic::Ordering::Relaxed);
    assert!(after - before <= 1, "engine produced {} tokens after cancel", after - before);
}

#[test]
fn prompt_over_the_context_is_an_error_never_truncated() {
    let h = tiny_handle(TinyArch::Llama, TinyDtype::Q8_0, SchedulerConfig::default());
    let long = "word ".repeat(200); // > 128 tokens
    let (sink, _rx) = channel_sink();
    let e = h.submit(req(&long, greedy(1)), Box::new(sink)).unwrap_err();
    assert_eq!(e.code(), ErrorCode::ContextOverflow);
    assert!(e.to_string().contains("context window is 128"), "{e}");
}

#[test]
fn full_queue_is_overloaded() {
    let h = tiny_handle(TinyArch::Qwen2, TinyDtype::Q8_0, SchedulerConfig { max_batch: 1, max_queue: 2, ..Default::default() });
    let mut errors = 0;
    let mut rxs = Vec::new();
    for _ in 0..20 {
        let (sink, rx) = channel_sink();
        match h.submit(req("hi", greedy(60)), Box::new(sink)) {
            Ok(_) => rxs.push(rx),
            Err(e) => {
                assert_eq!(e.code(), ErrorCode::Overloaded);
                errors += 1;
            }
        }
    }
    assert!(errors > 0, "a queue of 2 must overflow with 20 submissions");
    // Every accepted request still completes.
    for rx in rxs {
        assert!(rx.iter().any(|e| matches!(e, GenerationEvent::Done(r) if r.finish_reason == FinishReason::Length)));
    }
}

#[test]
fn stop_sequence_ends_output_before_it() {
    let h = tiny_handle(TinyArch::Qwen2, TinyDtype::Q8_0, SchedulerConfig::default());
    let full = h.generate_blocking(req("abc", greedy(30))).unwrap().text;
    // Pick a stop string from the middle of the greedy output.
    let chars: Vec<char> = full.chars().collect();
    assert!(chars.len() > 6, "need some output: {full:?}");
    let stop: String = chars[3..5].iter().collect();
    let cut = full.find(&stop).unwrap();
    let r = h.generate_blocking(req("abc", SamplingParams { stop: vec![stop.clone()], ..greedy(30) })).unwrap();
    assert_eq!(r.finish_reason, FinishReason::Stop);
    assert_eq!(r.text, full[..cut], "output must end right before {stop:?}");
}

#[test]
fn eos_token_finishes_with_stop_and_usage_is_counted() {
    let h = tiny_handle(TinyArch::Qwen2, TinyDtype::Q8_0, SchedulerConfig::default());
    // With ignore_eos off the model may stop early on <|im_end|>/<|endoftext|>; either way accounting holds.
    let r = h.generate_blocking(req("hello", SamplingParams { max_tokens: 40, ..Default::default() })).unwrap();
    assert!(matches!(r.finish_reason, FinishReason::Stop | FinishReason::Length));
    assert_eq!(r.usage.prompt_tokens, h.llm.tokenize("hello", true).unwrap().len());
    assert_eq!(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
    assert!(r.timings.total_ms >= r.timings.ttft_ms && r.timings.ttft_ms >= r.timings.queue_ms);
    assert!(r.timings.tokens_per_sec > 0.0);
}

#[test]
fn streamed_pieces_concatenate_to_the_final_text() {
    let h = tiny_handle(TinyArch::Llama, TinyDtype::Q8_0, SchedulerConfig::default());
    let (sink, rx) = channel_sink();
    h.submit(req("stream me", greedy(40)), Box::new(sink)).unwrap();
    let mut text = String::new();
    let mut ids = 0;
    let mut done = None;
    for e in rx.iter() {
        match e {
            GenerationEvent::Token { text: t, token_ids } => {
                text.push_str(&t);
                ids += token_ids.len();
            }
            GenerationEvent::Done(r) => done = Some(r),
        }
    }
    let r = done.unwrap();
    assert_eq!(text, r.text);
    assert_eq!(ids, r.usage.completion_tokens);
}

#[test]
fn chat_template_from_gguf_renders_chatml() {
    let llm = tiny_llm(TinyArch::Qwen2, TinyDtype::Q8_0);
    let msgs = vec![ChatMessage { role: "user".into(), content: "hi".into() }];
    let s = llm.template.render(&msgs, true).unwrap();
    assert!(s.contains("<|im_start|>user\nhi<|im_end|>"), "{s}");
    assert!(s.ends_with("<|im_start|>assistant\n"), "{s}");
    let bad = vec![ChatMessage { role: "wizard".into(), content: "hi".into() }];
    assert_eq!(llm.template.render(&bad, true).unwrap_err().code(), ErrorCode::InvalidInput);
}

#[test]
fn unloaded_model_finishes_in_flight_work_and_refuses_new() {
    let h = tiny_handle(TinyArch::Qwen2, TinyDtype::Q8_0, SchedulerConfig::default());
    let (sink, rx) = channel_sink();
    h.submit(req("keep going", greedy(30)), Box::new(sink)).unwrap();
    h.drain();
    let (sink2, _rx2) = channel_sink();
    assert_eq!(h.submit(req("new", greedy(3)), Box::new(sink2)).unwrap_err().code(), ErrorCode::ModelNotFound);
    let r = rx.iter().find_map(|e| if let GenerationEvent::Done(r) = e { Some(r) } else { None }).unwrap();
    assert_eq!(r.finish_reason, FinishReason::Length);
    assert_eq!(r.usage.completion_tokens, 30);
    h.join();
}

/// Batched rows are bit-identical to the same rows computed alone (the CPU
/// kernels are batch-invariant), on a quantized model too.
#[test]
fn batched_logits_are_bit_identical_to_single() {
    let llm = tiny_llm(TinyArch::Llama, TinyDtype::Q4_0);
    let m = &llm.model;
    let prompts: [&[u32]; 3] = [&[1, 2, 3, 4, 5, 6, 7, 8, 9], &[40, 41], &[7, 8, 9, 10, 11, 12, 13]];
    let solo: Vec<Vec<f32>> = prompts
        .iter()
        .map(|p| m.forward_logits(&mut [StepInput { tokens: p, cache: &mut m.new_cache() }]).unwrap())
        .collect();
    let mut caches: Vec<_> = prompts.iter().map(|_| m.new_cache()).collect();
    let mut batch: Vec<StepInput<'_>> = prompts.iter().zip(caches.iter_mut()).map(|(p, c)| StepInput { tokens: p, cache: c }).collect();
    let together = m.forward_logits(&mut batch).unwrap();
    let vocab = m.config.vocab_size;
    for (i, s) in solo.iter().enumerate() {
        assert_eq!(&together[i * vocab..(i + 1) * vocab], &s[..], "sequence {i}");
    }
}

/// A prompt that starts like an earlier one reuses its K/V: fewer tokens
/// computed, the same text, and the reuse shows in usage and stats.
#[test]
fn prompt_prefix_reuse_changes_nothing_but_the_work() {
    let prefix = "the system prompt says hello there and hello again, then some more words to pass the minimum";
    let first = format!("{prefix} first question");
    let second = format!("{prefix} second question");
    let run = |cfg: SchedulerConfig, cache_prompt: bool| {
        let h = tiny_handle(TinyArch::Qwen2, TinyDtype::Q8_0, cfg);
        let p = SamplingParams { cache_prompt, ..greedy(12) };
        let a = h.generate_blocking(req(&first, p.clone())).unwrap();
        let b = h.generate_blocking(req(&second, p.clone())).unwrap();
        let c = h.generate_blocking(req(&second, p)).unwrap();
        (a, b, c, h.stats.prefix_cache_hits.load(std::sync::atomic::Ordering::Relaxed))
    };
    let (a0, b0, c0, hits0) = run(SchedulerConfig::default(), false);
    let (a1, b1, c1, hits1) = run(SchedulerConfig::default(), true);
    assert_eq!(hits0, 0);
    assert_eq!((a0.usage.cached_prompt_tokens, b0.usage.cached_prompt_tokens), (0, 0));
    assert_eq!(a1.usage.cached_prompt_tokens, 0, "nothing cached yet");
    assert!(b1.usage.cached_prompt_tokens >= 16, "second prompt shares the prefix: {:?}", b1.usage);
    assert!(b1.usage.cached_prompt_tokens < b1.usage.prompt_tokens);
    // The same prompt again: all but its last token come from the cache.
    assert_eq!(c1.usage.cached_prompt_tokens, c1.usage.prompt_tokens - 1);
    assert_eq!(hits1 as usize, b1.usage.cached_prompt_tokens + c1.usage.cached_prompt_tokens);
    assert_eq!((&a0.text, &b0.text, &c0.text), (&a1.text, &b1.text, &c1.text), "reuse must not change outputs");
    // Turned off in the config: no reuse at all.
    let (_, b2, _, hits2) = run(SchedulerConfig { prefix_cache_bytes: 0, ..Default::default() }, true);
    assert_eq!((b2.usage.cached_prompt_tokens, hits2), (0, 0));
}

/// Logits after a reused prefix equal those of a full recompute, bit for bit.
#[test]
fn reused_prefix_logits_equal_a_recompute() {
    let llm = tiny_llm(TinyArch::Llama, TinyDtype::Q4_0);
    let m = &llm.model;
    let tokens: Vec<u32> = (0..40).map(|i| (i * 7 + 3) % 250).collect();
    let full = m.forward_logits(&mut [StepInput { tokens: &tokens, cache: &mut m.new_cache() }]).unwrap();
    let mut donor = m.new_cache();
    m.forward_logits(&mut [StepInput { tokens: &tokens[..30], cache: &mut donor }]).unwrap();
    let mut reused = donor.prefix(25).expect("CPU caches can be copied");
    assert_eq!(reused.len(), 25);
    let rest = m.forward_logits(&mut [StepInput { tokens: &tokens[25..], cache: &mut reused }]).unwrap();
    assert_eq!(full, rest);
}

/// The prefix cache keeps to its byte budget, evicting the least recently used.
#[test]
fn prefix_cache_is_bounded_and_least_recently_used_goes_first() {
    use candela_engine::llm::prefix_cache::PrefixCache;
    let llm = tiny_llm(TinyArch::Qwen2, TinyDtype::Q8_0);
    let m = &llm.model;
    let seq = |seed: u32| -> (Vec<u32>, model::SequenceCache) {
        let t: Vec<u32> = (0..20).map(|i| (seed * 31 + i * 7) % 250).collect();
        let mut c = m.new_cache();
        m.forward_logits(&mut [StepInput { tokens: &t, cache: &mut c }]).unwrap();
        (t, c)
    };
    // What one stored entry takes: a tight copy of its 20 prompt tokens.
    let one = seq(1).1.prefix(20).unwrap().bytes();
    let mut pc = PrefixCache::new(2 * one);
    let (a, b, c) = (seq(1), seq(2), seq(3));
    pc.insert(a.0.clone(), a.1);
    pc.insert(b.0.clone(), b.1);
    let mut probe = a.0.clone();
    probe.push(1);
    assert!(pc.lookup(&probe).is_some(), "a is cached"); // a is now the most recent
    pc.insert(c.0.clone(), c.1);
    assert_eq!(pc.len(), 2);
    assert!(pc.bytes() <= 2 * one);
    let mut probe_b = b.0.clone();
    probe_b.push(1);
    assert!(pc.lookup(&probe_b).is_none(), "b was the least recently used");
    assert!(pc.lookup(&probe).is_some());
}
