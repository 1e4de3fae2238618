//! Integration tests on the real default models (pulled by `candela models
//! pull`): sensible greedy answers, agreement with candle's own reference
//! model code, concurrency, embeddings quality, tokenizer golden ids.
//! Skipped with a note when the models are absent, unless
//! CANDELA_REQUIRE_MODELS=1 (the test script sets it).

mod common;

use candela_engine::encoder::Embedder;
use candela_engine::llm::*;
use candela_engine::{LoadSpec, ModelRole, ModelStatus, Registry};
use candle_core::{Device, IndexOp, Tensor};
use common::*;
use std::sync::Arc;

const QWEN: &str = "qwen2.5-coder-0.5b-instruct";
const SMOL: &str = "smollm2-135m-instruct";
const MINILM: &str = "all-minilm-l6-v2";

fn load_llm(dir: &std::path::Path) -> Llm {
    Llm::load(&LlmFiles::resolve(dir).unwrap(), &Device::Cpu).unwrap()
}

fn chat(q: &str) -> PromptInput {
    PromptInput::Chat(vec![ChatMessage { role: "user".into(), content: q.into() }])
}

fn greedy(max_tokens: usize) -> SamplingParams {
    SamplingParams { max_tokens, ..Default::default() }
}

#[test]
fn qwen_answers_a_capital_city_question_deterministically() {
    let Some(dir) = real_model(QWEN) else { return };
    let h = LlmHandle::start(QWEN, load_llm(&dir), SchedulerConfig::default()).unwrap();
    let ask = || {
        h.generate_blocking(GenerateRequest { input: chat("What is the capital of France? Answer in one short sentence."), params: greedy(24) })
            .unwrap()
    };
    let a = ask();
    let b = ask();
    assert!(a.text.contains("Paris"), "answer: {:?}", a.text);
    assert_eq!(a.text, b.text, "greedy decoding must be deterministic");
    assert_eq!(a.finish_reason, FinishReason::Stop, "the model should end its turn with <|im_end|>");
}

#[test]
fn smollm_completes_a_capital_city_prompt() {
    let Some(dir) = real_model(SMOL) else { return };
    let h = LlmHandle::start(SMOL, load_llm(&dir), SchedulerConfig::default()).unwrap();
    let r = h
        .generate_blocking(GenerateRequest { input: PromptInput::Text("The capital of France is".into()), params: greedy(8) })
        .unwrap();
    assert!(r.text.contains("Paris"), "completion: {:?}", r.text);
}

/// Logits of the last position of `tokens` fed at position `pos`.
type Reference = Box<dyn FnMut(&[u32], usize) -> Vec<f32>>;

/// candle-transformers' own quantized model code on the same file.
fn candle_reference(dir: &std::path::Path, arch: Architecture) -> Reference {
    let files = LlmFiles::resolve(dir).unwrap();
    let mut f = std::fs::File::open(&files.gguf).unwrap();
    let ct = candle_core::quantized::gguf_file::Content::read(&mut f).unwrap();
    let last_row = |l: Tensor| {
        let row = if l.rank() == 3 { l.i((0, l.dim(1).unwrap() - 1)).unwrap() } else { l.i(0).unwrap() };
        row.to_vec1::<f32>().unwrap()
    };
    let input = |t: &[u32]| Tensor::new(t, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    match arch {
        Architecture::Llama => {
            let mut m = candle_transformers::models::quantized_llama::ModelWeights::from_gguf(ct, &mut f, &Device::Cpu).unwrap();
            Box::new(move |t, p| last_row(m.forward(&input(t), p).unwrap()))
        }
        Architecture::Qwen2 => {
            let mut m = candle_transformers::models::quantized_qwen2::ModelWeights::from_gguf(ct, &mut f, &Device::Cpu).unwrap();
            Box::new(move |t, p| last_row(m.forward(&input(t), p).unwrap()))
        }
    }
}

/// Logit gap below which two tokens are a tie within the kernels' rounding:
/// on SmolLM2 candle's quantized kernels are up to 0.88 off the exact
/// product (Candela's 0.60; see `llama_logits_track_the_exact_model_closer_than_candle`).
const NEAR_TIE: f32 = 0.5;

/// Greedy decoding by Candela's decoder and by candle-transformers' own
/// quantized model code, on the same GGUF and prompt, teacher-forced on
/// candle's tokens: every step must pick candle's token, or one that candle's
/// own logits put within a near-tie of it.
fn compare_with_candle_reference(dir: &std::path::Path, arch: Architecture) {
    // Candela's own kernels on the file's blocks, against candle's kernels on the same blocks.
    let llm = load_llm(dir);
    let prompt = llm.template.render(&[ChatMessage { role: "user".into(), content: "Name three primary colours.".into() }], true).unwrap();
    let toks = llm.tokenize(&prompt, false).unwrap();
    let steps = 16;
    let mut reference = candle_reference(dir, arch);

    let mut cache = llm.model.new_cache();
    let mut ours = llm.model.forward_logits(&mut [model::StepInput { tokens: &toks, cache: &mut cache }]).unwrap();
    let mut theirs = reference(&toks, 0);
    let (mut forced, mut ties) = (Vec::new(), 0);
    for pos in toks.len()..toks.len() + steps {
        let mine = sampler::argmax(&ours);
        let top = sampler::argmax(&theirs);
        if mine != top {
            let gap = theirs[top as usize] - theirs[mine as usize];
            assert!(
                gap < NEAR_TIE,
                "step {}: ours {mine} {:?}, candle {top} {:?} (candle's gap {gap}); so far {:?}",
                forced.len(),
                llm.detokenize(&[mine], false),
                llm.detokenize(&[top], false),
                llm.detokenize(&forced, false)
            );
            eprintln!("step {}: near-tie, ours {mine} vs candle {top}, candle's gap {gap:.3}", forced.len());
            ties += 1;
        }
        forced.push(top);
        ours = llm.model.forward_logits(&mut [model::StepInput { tokens: &[top], cache: &mut cache }]).unwrap();
        theirs = reference(&[top], pos);
    }
    // SmolLM2-135M's distributions are flat: 3 of these 16 steps are near-ties.
    assert!(ties <= steps / 4, "{ties} of {steps} steps differed (near-ties only, but too many)");
}

/// Logits of SmolLM2's quantized file against the exact product of the same
/// weights (dequantized to f32, f32 activations): Candela's int8 kernels stay
/// closer than candle's.
#[test]
fn llama_logits_track_the_exact_model_closer_than_candle() {
    let Some(dir) = real_model(SMOL) else { return };
    use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
    let files = LlmFiles::resolve(&dir).unwrap();
    let exact_path = scratch().join("smollm2-f32.gguf");
    {
        let mut f = std::fs::File::open(&files.gguf).unwrap();
        let ct = gguf_file::Content::read(&mut f).unwrap();
        let tensors: Vec<(String, QTensor)> = ct
            .tensor_infos
            .keys()
            .map(|name| {
                let t = ct.tensor(&mut f, name, &Device::Cpu).unwrap().dequantize(&Device::Cpu).unwrap();
                (name.clone(), QTensor::quantize(&t, GgmlDType::F32).unwrap())
            })
            .collect();
        let md: Vec<(&str, &gguf_file::Value)> = ct.metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let tr: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
        gguf_file::write(&mut std::fs::File::create(&exact_path).unwrap(), &md, &tr).unwrap();
    }
    let llm = load_llm(&dir);
    let exact = load_llm(&exact_path);
    let mut reference = candle_reference(&dir, Architecture::Llama);
    let prompt = llm.template.render(&[ChatMessage { role: "user".into(), content: "Name three primary colours.".into() }], true).unwrap();
    let toks = llm.tokenize(&prompt, false).unwrap();
    let run = |m: &Llm| m.model.forward_logits(&mut [model::StepInput { tokens: &toks, cache: &mut m.model.new_cache() }]).unwrap();
    let (ours, truth, theirs) = (run(&llm), run(&exact), reference(&toks, 0));
    let mean = |a: &[f32]| a.iter().zip(&truth).map(|(x, y)| (x - y).abs() as f64).sum::<f64>() / truth.len() as f64;
    let (e_ours, e_candle) = (mean(&ours), mean(&theirs));
    eprintln!("mean |logit error| vs exact: candela {e_ours:.4}, candle {e_candle:.4}; max candela {}", max_abs_diff(&ours, &truth));
    assert!(e_ours < e_candle, "candela {e_ours} vs candle {e_candle}");
    assert!(max_abs_diff(&ours, &truth) < 1.0);
    assert_eq!(sampler::argmax(&ours), sampler::argmax(&truth));
    std::fs::remove_file(&exact_path).ok();
}

#[test]
fn qwen_decoder_agrees_with_candle_reference_model() {
    let Some(dir) = real_model(QWEN) else { return };
    compare_with_candle_reference(&dir, Architecture::Qwen2);
}

#[test]
fn llama_decoder_agrees_with_candle_reference_model() {
    let Some(dir) = real_model(SMOL) else { return };
    compare_with_candle_reference(&dir, Architecture::Llama);
}

#[test]
fn concurrent_generations_finish_with_their_solo_text() {
    let Some(dir) = real_model(SMOL) else { return };
    let h = LlmHandle::start(SMOL, load_llm(&dir), SchedulerConfig::default()).unwrap();
    let prompts = ["The capital of France is", "Water boils at", "The largest planet is", "Once upon a time"];
    let solo: Vec<String> = prompts
        .iter()
        .map(|p| h.generate_blocking(GenerateRequest { input: PromptInput::Text((*p).into()), params: greedy(12) }).unwrap().text)
        .collect();
    let rxs: Vec<_> = prompts
        .iter()
        .map(|p| {
            let (sink, rx) = channel_sink();
            h.submit(GenerateRequest { input: PromptInput::Text((*p).into()), params: greedy(12) }, Box::new(sink)).unwrap();
            rx
        })
        .collect();
    for (i, rx) in rxs.into_iter().enumerate() {
        let r = rx.iter().find_map(|e| if let GenerationEvent::Done(r) = e { Some(r) } else { None }).unwrap();
        assert_eq!(r.text, solo[i], "prompt {:?}", prompts[i]);
    }
}

#[test]
fn related_sentences_embed_closer_than_unrelated() {
    let Some(dir) = real_model(MINILM) else { return };
    let e = Embedder::load(&dir, &Device::Cpu, None).unwrap();
    assert_eq!(e.pooling, candela_engine::encoder::Pooling::Mean, "MiniLM uses mean pooling");
    let texts: Vec<String> = ["A cat sits on the mat.", "A kitten is resting on a rug.", "Quarterly revenue grew by eight percent."]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let v = e.embed(&texts, true).unwrap();
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    for x in &v {
        assert!((dot(x, x) - 1.0).abs() < 1e-4, "embeddings are L2-normalised");
    }
    let related = dot(&v[0], &v[1]);
    let unrelated = dot(&v[0], &v[2]);
    assert!(related > unrelated + 0.3, "related {related} vs unrelated {unrelated}");
    // Batched equals one at a time.
    for (i, t) in texts.iter().enumerate() {
        let single = e.embed(std::slice::from_ref(t), true).unwrap();
        assert!(max_abs_diff(&single[0], &v[i]) < 1e-5, "text {i}");
    }
    // Over-long input: an error unless truncation is asked for.
    let long = vec!["word ".repeat(600)];
    assert!(e.embed(&long, false).is_err());
    assert_eq!(e.embed(&long, true).unwrap()[0].len(), 384);
}

#[test]
fn qwen_tokenizer_from_gguf_matches_tokenizer_json() {
    let Some(dir) = real_model(QWEN) else { return };
    let files = LlmFiles::resolve(&dir).unwrap();
    let json = tokenizers::Tokenizer::from_file(files.tokenizer_json.as_ref().expect("tokenizer.json is pulled")).unwrap();
    let mut f = std::fs::File::open(&files.gguf).unwrap();
    let ct = candle_core::quantized::gguf_file::Content::read(&mut f).unwrap();
    let from_gguf = tokenizer::tokenizer_from_gguf(&ct).unwrap();
    for text in golden_texts() {
        let a = json.encode(text.as_str(), false).unwrap().get_ids().to_vec();
        let b = from_gguf.encode(text.as_str(), false).unwrap().get_ids().to_vec();
        assert_eq!(a, b, "text {text:?}");
    }
    // Two fixed points, from the published Qwen2.5 vocabulary.
    assert_eq!(json.encode("Hello world", false).unwrap().get_ids(), &[9707, 1879]);
    assert_eq!(from_gguf.token_to_id("<|im_end|>"), Some(151645));
}

fn golden() -> Option<serde_json::Value> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden_tokens.json");
    std::fs::read_to_string(p).ok().map(|s| serde_json::from_str(&s).unwrap())
}

fn golden_texts() -> Vec<String> {
    golden()
        .map(|g| g["models"][QWEN].as_array().unwrap().iter().map(|e| e["text"].as_str().unwrap().to_string()).collect())
        .unwrap_or_else(|| vec!["Hello world".into(), "héllo wörld 1234567".into()])
}

/// Token ids recorded from llama.cpp's tokenizer on the same GGUF files.
#[test]
fn tokenizers_match_llama_cpp_golden_ids() {
    let Some(g) = golden() else { panic!("tests/fixtures/golden_tokens.json is missing") };
    for name in [QWEN, SMOL] {
        let Some(dir) = real_model(name) else { return };
        let llm = load_llm(&dir);
        for e in g["models"][name].as_array().unwrap() {
            let text = e["text"].as_str().unwrap();
            assert_eq!(llm.tokenize(text, false).unwrap(), u32s(&e["ids"]), "{name}: {text:?}");
        }
    }
}

#[test]
fn registry_loads_lists_and_unloads_without_racing() {
    let Some(dir) = real_model(SMOL) else { return };
    let reg = Arc::new(Registry::new());
    // Two loads of one name at once: both succeed with the same model, loaded once.
    let loads: Vec<_> = (0..2)
        .map(|_| {
            let (reg, dir) = (reg.clone(), dir.clone());
            std::thread::spawn(move || reg.load(LoadSpec::new("smol", ModelRole::Llm, dir)).unwrap())
        })
        .collect();
    let infos: Vec<_> = loads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(infos[0].load_ms, infos[1].load_ms, "the second load waited for the first");
    let info = reg.info("smol").unwrap();
    assert_eq!(info.status, ModelStatus::Ready);
    assert_eq!(info.architecture.as_deref(), Some("llama"));
    assert_eq!(info.context_length, Some(8192));
    assert!(info.bytes_in_memory.unwrap() > 50_000_000 && info.bytes_on_disk > 90_000_000);
    assert_eq!(reg.list().len(), 1);
    // Wrong role, unknown name, failed load.
    assert_eq!(reg.embedder("smol").err().unwrap().code(), candela_engine::ErrorCode::WrongModelRole);
    assert_eq!(reg.llm("nope").err().unwrap().code(), candela_engine::ErrorCode::ModelNotFound);
    let bad = reg.load(LoadSpec::new("bad", ModelRole::Llm, "/nonexistent/model.gguf"));
    assert_eq!(bad.unwrap_err().code(), candela_engine::ErrorCode::LoadFailed);
    assert!(matches!(reg.info("bad").unwrap().status, ModelStatus::Failed(_)));
    assert!(reg.unload("smol"));
    assert!(!reg.unload("smol"));
    assert_eq!(reg.llm("smol").err().unwrap().code(), candela_engine::ErrorCode::ModelNotFound);
}

#[test]
fn streamed_text_is_utf8_safe_for_multibyte_output() {
    let Some(dir) = real_model(QWEN) else { return };
    let h = LlmHandle::start(QWEN, load_llm(&dir), SchedulerConfig::default()).unwrap();
    let (sink, rx) = channel_sink();
    let req = GenerateRequest {
        input: chat("Write the Japanese word for 'thank you' in hiragana, then three emoji. Nothing else."),
        params: greedy(32),
    };
    h.submit(req, Box::new(sink)).unwrap();
    let mut pieces = Vec::new();
    let mut ids = Vec::new();
    let mut done = None;
    for e in rx.iter() {
        match e {
            GenerationEvent::Token { text, token_ids } => {
                pieces.push(text);
                ids.extend(token_ids);
            }
            GenerationEvent::Done(r) => done = Some(r),
        }
    }
    let r = done.unwrap();
    let joined: String = pieces.concat();
    assert!(!joined.is_ascii(), "expected multi-byte output, got {joined:?}");
    assert!(pieces.iter().all(|p| !p.contains('\u{FFFD}')), "a piece split a character: {pieces:?}");
    assert_eq!(joined, r.text);
    assert_eq!(joined, h.llm.detokenize(&ids, true).unwrap(), "streaming equals decoding all ids at once");
}

#[test]
fn qwen_stops_on_control_markers_only() {
    let Some(dir) = real_model(QWEN) else { return };
    let llm = load_llm(&dir);
    let mut stops = llm.stop_ids.clone();
    stops.sort();
    // <|endoftext|>, <|im_end|>; Qwen's `</s>` (128247) is an ordinary token.
    assert_eq!(stops, vec![151643, 151645]);
}

/// A request larger than one forward pass's token budget runs as several
/// passes; every text's embedding equals the one it gets alone, bit for bit
/// (the CPU forward is padding-free and batch-invariant).
#[test]
fn large_embedding_batches_split_by_tokens_and_match_single_texts() {
    let Some(dir) = real_model(MINILM) else { return };
    let e = Embedder::load(&dir, &Device::Cpu, None).unwrap();
    let texts: Vec<String> = (0..40).map(|i| format!("passage {i}: ") + &"the engine splits large batches by tokens ".repeat(30 + i % 7)).collect();
    let total: usize = e.count_tokens(&texts).unwrap().iter().map(|&n| n.min(256)).sum();
    assert!(total > candela_engine::encoder::MAX_BATCH_TOKENS, "the request must exceed one pass: {total} tokens");
    let all = e.embed(&texts, true).unwrap();
    for i in [0, 17, 39] {
        assert_eq!(all[i], e.embed(&texts[i..i + 1], true).unwrap()[0], "text {i}");
    }
}

/// Streams `ids` through the incremental decoder: the text, and the most tokens
/// pushed in a row with no text coming out.
fn stream_ids(tok: &tokenizers::Tokenizer, ids: &[u32]) -> (String, usize) {
    let mut d = text::IncrementalDecoder::new();
    let (mut out, mut silent, mut longest) = (String::new(), 0, 0);
    for &id in ids {
        let piece = d.push(tok, id).unwrap();
        silent = if piece.is_empty() { silent + 1 } else { 0 };
        longest = longest.max(silent);
        out.push_str(&piece);
    }
    out.push_str(&d.flush(tok).unwrap());
    (out, longest)
}

/// What a model sampling at a high temperature may produce: random tokens, half
/// of them pieces of UTF-8 characters (tokens that decode to U+FFFD alone),
/// streamed through the real Qwen and SmolLM vocabularies. The text streams
/// with bounded holds and equals decoding all ids at once.
#[test]
fn random_tokens_stream_as_decoded_at_once_with_bounded_holds() {
    for name in [QWEN, SMOL] {
        let Some(dir) = real_model(name) else { return };
        let files = LlmFiles::resolve(&dir).unwrap();
        let tok = match &files.tokenizer_json {
            Some(path) => tokenizers::Tokenizer::from_file(path).unwrap(),
            None => {
                let mut f = std::fs::File::open(&files.gguf).unwrap();
                tokenizer::tokenizer_from_gguf(&candle_core::quantized::gguf_file::Content::read(&mut f).unwrap()).unwrap()
            }
        };
        let added: std::collections::HashSet<u32> = tok.get_added_tokens_decoder().into_keys().collect();
        let normal: Vec<u32> = (0..tok.get_vocab_size(false) as u32).filter(|id| !added.contains(id)).collect();
        let partial: Vec<u32> = normal.iter().copied().filter(|&id| tok.decode(&[id], false).unwrap().contains('\u{FFFD}')).collect();
        assert!(partial.len() > 100, "{name}: {} partial-character tokens", partial.len());
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let (mut worst, mut total) = (0, std::time::Duration::ZERO);
        for _ in 0..40 {
            let ids: Vec<u32> =
                (0..300).map(|_| if next(2) == 0 { partial[next(partial.len())] } else { normal[next(normal.len())] }).collect();
            let started = std::time::Instant::now();
            let (streamed, longest) = stream_ids(&tok, &ids);
            total += started.elapsed();
            worst = worst.max(longest);
            assert_eq!(streamed, tok.decode(&ids, false).unwrap(), "{name}: {ids:?}");
        }
        eprintln!("{name}: {} partial-character tokens; longest hold {worst} tokens; 12000 tokens streamed in {total:?}", partial.len());
        assert!(worst <= 3, "{name}: held {worst} tokens in a row");
    }
}
