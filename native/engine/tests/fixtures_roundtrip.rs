//! Checks the tiny-fixture writers of `candela_testkit::fixtures` (not the model code):
//! GGUF metadata and tensor shapes read back with candle's reader, the BERT
//! tokenizer reproduces the token ids recorded in `tests/fixtures/reference.json`,
//! safetensors load, and the generator matches the Python re-implementation's samples.
//!
//! Regenerating the reference: see `tests/reference/make_reference.py`; its first step is
//! `CANDELA_FIXTURES_OUT=/tmp/candela-fixtures cargo test --release -p candela-engine \
//!   --test fixtures_roundtrip -- --ignored write_fixtures`.

use std::path::{Path, PathBuf};

use candela_testkit::fixtures::{self, TinyArch, TinyBert, TinyDtype, TINY_LLM};
use candle_core::quantized::{gguf_file, GgmlDType};
use candle_core::Device;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "candela-fixtures-{name}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn reference() -> serde_json::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn md_u32(ct: &gguf_file::Content, k: &str) -> u32 {
    ct.metadata
        .get(k)
        .unwrap_or_else(|| panic!("missing {k}"))
        .to_u32()
        .unwrap()
}

#[test]
fn gguf_roundtrip_all_variants() {
    let dir = scratch("gguf");
    for arch in [TinyArch::Qwen2, TinyArch::Llama] {
        for dtype in [TinyDtype::F32, TinyDtype::Q8_0, TinyDtype::Q4_0] {
            let path = fixtures::write_tiny_llm(&dir, arch, dtype).unwrap();
            let mut f = std::fs::File::open(&path).unwrap();
            let ct = gguf_file::Content::read(&mut f).unwrap();
            let a = arch.gguf_arch();
            assert_eq!(ct.metadata["general.architecture"].to_string().unwrap(), a);
            assert_eq!(md_u32(&ct, &format!("{a}.context_length")), 128);
            assert_eq!(md_u32(&ct, &format!("{a}.embedding_length")), 64);
            assert_eq!(md_u32(&ct, &format!("{a}.block_count")), 2);
            assert_eq!(md_u32(&ct, &format!("{a}.feed_forward_length")), 128);
            assert_eq!(md_u32(&ct, &format!("{a}.attention.head_count")), 4);
            assert_eq!(md_u32(&ct, &format!("{a}.attention.head_count_kv")), 2);
            assert_eq!(md_u32(&ct, "general.file_type"), dtype.file_type());
            let theta = ct.metadata[&format!("{a}.rope.freq_base")]
                .to_f32()
                .unwrap();
            assert_eq!(theta, 10000.0);
            let eps = ct.metadata[&format!("{a}.attention.layer_norm_rms_epsilon")]
                .to_f32()
                .unwrap();
            assert_eq!(eps, 1e-6);
            let tokens = ct.metadata["tokenizer.ggml.tokens"].to_vec().unwrap();
            assert_eq!(tokens.len(), TINY_LLM.vocab);
            assert_eq!(tokens[32].to_string().unwrap(), "Ġ");
            assert_eq!(tokens[10].to_string().unwrap(), "Ċ");
            assert_eq!(tokens[72].to_string().unwrap(), "H");
            assert_eq!(tokens[260].to_string().unwrap(), "Ġthe");
            assert_eq!(tokens[274].to_string().unwrap(), "<|im_end|>");
            let eos = md_u32(&ct, "tokenizer.ggml.eos_token_id");
            assert_eq!(eos, if arch == TinyArch::Qwen2 { 274 } else { 272 });
            let tmpl = ct.metadata["tokenizer.chat_template"].to_string().unwrap();
            assert!(tmpl.contains("<|im_start|>"));

            let n_tensors = 1 + 2 * 9 + 1 + if arch == TinyArch::Qwen2 { 2 * 3 } else { 1 };
            assert_eq!(ct.tensor_infos.len(), n_tensors, "{arch:?} {dtype:?}");
            assert_eq!(ct.tensor_infos.contains_key("output.weight"), !arch.tied());
            let expect = [
                ("token_embd.weight", vec![288, 64]),
                ("blk.1.attn_q.weight", vec![64, 64]),
                ("blk.1.attn_k.weight", vec![32, 64]),
                ("blk.0.ffn_gate.weight", vec![128, 64]),
                ("blk.0.ffn_down.weight", vec![64, 128]),
                ("blk.0.attn_norm.weight", vec![64]),
                ("output_norm.weight", vec![64]),
            ];
            for (name, shape) in expect {
                let ti = &ct.tensor_infos[name];
                assert_eq!(ti.shape.dims(), shape.as_slice(), "{name}");
                let want = if shape.len() == 2 {
                    match dtype {
                        TinyDtype::F32 => GgmlDType::F32,
                        TinyDtype::Q8_0 => GgmlDType::Q8_0,
                        TinyDtype::Q4_0 => GgmlDType::Q4_0,
                    }
                } else {
                    GgmlDType::F32
                };
                assert_eq!(ti.ggml_dtype, want, "{name}");
            }
            if arch == TinyArch::Qwen2 {
                assert_eq!(ct.tensor_infos["blk.0.attn_k.bias"].shape.dims(), &[32]);
            }

            // F32 data: equal to the generator (after the converter's permutation for llama).
            if dtype == TinyDtype::F32 {
                let q = ct
                    .tensor(&mut f, "blk.0.attn_k.weight", &Device::Cpu)
                    .unwrap();
                let got: Vec<f32> = q
                    .dequantize(&Device::Cpu)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap();
                let raw =
                    fixtures::tensor_values("model.layers.0.self_attn.k_proj.weight", &[32, 64]);
                let want = if arch == TinyArch::Llama {
                    fixtures::llama_permute(&raw, 32, 64, 2)
                } else {
                    raw
                };
                assert_eq!(got, want);
            }
            // Quantized: dequantizes close to the generator.
            if dtype == TinyDtype::Q8_0 {
                let q = ct
                    .tensor(&mut f, "blk.0.ffn_up.weight", &Device::Cpu)
                    .unwrap();
                let got: Vec<f32> = q
                    .dequantize(&Device::Cpu)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap();
                let want = fixtures::tensor_values("model.layers.0.mlp.up_proj.weight", &[128, 64]);
                let max = got
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(max < 0.01, "q8_0 error {max}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn llama_permute_matches_converter_formula() {
    // w.reshape(n_head, 2, out/n_head/2, in).swapaxes(1, 2).reshape(out, in), out=8, in=1, n_head=2
    let w: Vec<f32> = (0..8).map(|i| i as f32).collect();
    assert_eq!(
        fixtures::llama_permute(&w, 8, 1, 2),
        vec![0., 2., 1., 3., 4., 6., 5., 7.]
    );
}

#[test]
fn generator_matches_python_samples() {
    let r = reference();
    let samples = r["weight_samples"].as_object().expect("weight_samples");
    assert!(!samples.is_empty());
    for (name, s) in samples {
        let shape: Vec<usize> = s["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let vals = fixtures::tensor_values(name, &shape);
        let first: Vec<f32> = s["first"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(&vals[..first.len()], first.as_slice(), "{name}");
        let sum: f64 = vals.iter().map(|&v| v as f64).sum();
        let want = s["sum_f64"].as_f64().unwrap();
        assert!(
            (sum - want).abs() < 1e-9 * (1.0 + want.abs()),
            "{name}: {sum} vs {want}"
        );
    }
}

#[test]
fn bert_dirs_load_and_tokenize_like_reference() {
    let dir = scratch("bert");
    let r = reference();
    for kind in [
        TinyBert::EmbedderCls,
        TinyBert::EmbedderMean,
        TinyBert::CrossEncoder,
    ] {
        let out = fixtures::write_tiny_bert(&dir, kind).unwrap();
        for f in [
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            "vocab.txt",
        ] {
            assert!(out.join(f).exists(), "{f}");
        }
        let cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap())
                .unwrap();
        assert_eq!(
            cfg["vocab_size"].as_u64().unwrap() as usize,
            fixtures::bert_vocab().len()
        );

        let st =
            candle_core::safetensors::load(out.join("model.safetensors"), &Device::Cpu).unwrap();
        let expected = fixtures::bert_hf_tensors(kind);
        assert_eq!(st.len(), expected.len());
        for (name, shape) in &expected {
            let t = st.get(name).unwrap_or_else(|| panic!("missing {name}"));
            assert_eq!(t.dims(), shape.as_slice(), "{name}");
        }
        let p = if kind == TinyBert::CrossEncoder {
            "bert."
        } else {
            ""
        };
        let name = format!("{p}encoder.layer.1.intermediate.dense.weight");
        let got: Vec<f32> = st[&name].flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(got, fixtures::tensor_values(&name, &[64, 32]));

        match kind {
            TinyBert::CrossEncoder => {
                assert!(!out.join("modules.json").exists());
                assert!(st.contains_key("classifier.weight"));
            }
            _ => {
                let pool: serde_json::Value = serde_json::from_str(
                    &std::fs::read_to_string(out.join("1_Pooling/config.json")).unwrap(),
                )
                .unwrap();
                let cls = kind == TinyBert::EmbedderCls;
                assert_eq!(pool["pooling_mode_cls_token"], cls);
                assert_eq!(pool["pooling_mode_mean_tokens"], !cls);
                assert!(out.join("modules.json").exists());
            }
        }

        let tok = tokenizers::Tokenizer::from_file(out.join("tokenizer.json")).unwrap();
        if kind == TinyBert::CrossEncoder {
            let ce = &r["bert"]["cross_encoder"];
            for (i, pair) in ce["pairs"].as_array().unwrap().iter().enumerate() {
                let (a, b) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
                let enc = tok.encode((a, b), true).unwrap();
                let ids: Vec<u32> = ce["input_ids"][i]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap() as u32)
                    .collect();
                let tt: Vec<u32> = ce["token_type_ids"][i]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap() as u32)
                    .collect();
                assert_eq!(enc.get_ids(), ids.as_slice(), "pair {i}");
                assert_eq!(enc.get_type_ids(), tt.as_slice(), "pair {i}");
            }
        } else {
            let em = &r["bert"]["embedder"];
            for (i, s) in em["sentences"].as_array().unwrap().iter().enumerate() {
                let enc = tok.encode(s.as_str().unwrap(), true).unwrap();
                let ids: Vec<u32> = em["input_ids"][i]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap() as u32)
                    .collect();
                assert_eq!(enc.get_ids(), ids.as_slice(), "sentence {i}");
                assert!(enc.get_type_ids().iter().all(|&t| t == 0));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes every fixture to `$CANDELA_FIXTURES_OUT` (for `make_reference.py`).
#[test]
#[ignore]
fn write_fixtures() {
    let out =
        std::env::var("CANDELA_FIXTURES_OUT").unwrap_or_else(|_| "/tmp/candela-fixtures".into());
    for p in fixtures::write_all(Path::new(&out)).unwrap() {
        println!("wrote {}", p.display());
    }
}
