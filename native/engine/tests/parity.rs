//! Candela's model code against reference outputs computed once by Hugging
//! Face transformers (PyTorch, float32) on the same generated weights.
//! See tests/reference/make_reference.py.

mod common;

use candela_engine::encoder::{CrossEncoder, Embedder, Pooling};
use candela_testkit::fixtures::{TinyArch, TinyBert, TinyDtype};
use common::*;

fn check_llm(arch: TinyArch, key: &str) {
    let reference = reference();
    let llm = tiny_llm(arch, TinyDtype::F32);
    for (pi, prompt) in reference["llm"][key]["prompts"].as_array().unwrap().iter().enumerate() {
        let ids = u32s(&prompt["input_ids"]);
        // Prefill half the prompt, then decode token by token: exercises the KV cache.
        let ours = llm.model.logits_incremental(&ids, ids.len() / 2).unwrap();
        for (pos, expected) in prompt["logits"].as_array().unwrap().iter().enumerate() {
            let expected = f32s(expected);
            let diff = max_abs_diff(&ours[pos], &expected);
            assert!(diff < 2e-4, "{key} prompt {pi} position {pos}: max |diff| {diff}");
        }
        let argmax: Vec<u32> = ours.iter().map(|l| candela_engine::llm::sampler::argmax(l)).collect();
        assert_eq!(argmax, u32s(&prompt["argmax"]), "{key} prompt {pi} argmax");
    }
}

#[test]
fn qwen2_logits_match_transformers() {
    check_llm(TinyArch::Qwen2, "qwen2");
}

#[test]
fn llama_logits_match_transformers() {
    check_llm(TinyArch::Llama, "llama");
}

#[test]
fn quantized_llm_stays_close_to_f32() {
    // Q8_0 is lossy; its logits should still track the f32 model closely.
    let reference = reference();
    let llm = tiny_llm(TinyArch::Qwen2, TinyDtype::Q8_0);
    let prompt = &reference["llm"]["qwen2"]["prompts"][0];
    let ids = u32s(&prompt["input_ids"]);
    let ours = llm.model.logits_incremental(&ids, ids.len()).unwrap();
    let expected = f32s(prompt["logits"].as_array().unwrap().last().unwrap());
    let diff = max_abs_diff(ours.last().unwrap(), &expected);
    // Q8_0 also quantizes activations in the matmul: a small drift, same decision.
    assert!(diff < 0.15, "q8_0 drifted: {diff}");
    let want = *u32s(&prompt["argmax"]).last().unwrap();
    assert_eq!(candela_engine::llm::sampler::argmax(ours.last().unwrap()), want);
    assert!(diff > 0.0, "q8_0 weights should not be bit-identical to f32");
}

#[test]
fn bert_embeddings_match_sentence_transformers_pooling() {
    let reference = reference();
    let r = &reference["bert"]["embedder"];
    let sentences: Vec<String> = r["sentences"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
    for (kind, pooling, key) in [
        (TinyBert::EmbedderCls, Pooling::Cls, "cls_normalized"),
        (TinyBert::EmbedderMean, Pooling::Mean, "mean_normalized"),
    ] {
        let e = Embedder::load(&tiny_bert_dir(kind), &candle_core::Device::Cpu, None).unwrap();
        assert_eq!(e.pooling, pooling, "pooling read from 1_Pooling/config.json");
        let ours = e.embed(&sentences, false).unwrap();
        for (i, expected) in r[key].as_array().unwrap().iter().enumerate() {
            let diff = max_abs_diff(&ours[i], &f32s(expected));
            assert!(diff < 1e-5, "{key} sentence {i}: {diff}");
        }
    }
}

#[test]
fn cross_encoder_logits_match_transformers() {
    let reference = reference();
    let r = &reference["bert"]["cross_encoder"];
    let c = CrossEncoder::load(&tiny_bert_dir(TinyBert::CrossEncoder), &candle_core::Device::Cpu).unwrap();
    let expected = f32s(&r["logits"]);
    for (i, pair) in r["pairs"].as_array().unwrap().iter().enumerate() {
        let q = pair[0].as_str().unwrap();
        let d = pair[1].as_str().unwrap().to_string();
        let ours = c.score(q, &[d], false).unwrap();
        assert!((ours[0] - expected[i]).abs() < 1e-5, "pair {i}: {} vs {}", ours[0], expected[i]);
    }
}
