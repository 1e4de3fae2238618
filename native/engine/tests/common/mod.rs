//! Shared helpers for the engine's integration tests.
#![allow(dead_code)]

use candela_testkit::fixtures::{self, TinyArch, TinyBert, TinyDtype};
use candela_engine::llm::{Llm, LlmFiles, LlmHandle, SchedulerConfig};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A per-process scratch directory for generated fixtures.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("candela-engine-tests-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

/// Writes (once per process and kind) a tiny GGUF and returns its path.
pub fn tiny_llm_path(arch: TinyArch, dtype: TinyDtype) -> PathBuf {
    // Tests run on parallel threads: one writes while the others wait, so
    // none reads a half-written file.
    static WRITING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = WRITING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch().join(format!("{arch:?}-{dtype:?}"));
    let name = fixtures::tiny_llm_file_name(arch, dtype);
    let path = dir.join(&name);
    if !path.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        fixtures::write_tiny_llm(&dir, arch, dtype).unwrap();
    }
    path
}

pub fn tiny_llm(arch: TinyArch, dtype: TinyDtype) -> Llm {
    let files = LlmFiles::resolve(&tiny_llm_path(arch, dtype)).unwrap();
    Llm::load(&files, &candle_core::Device::Cpu).unwrap()
}

pub fn tiny_handle(arch: TinyArch, dtype: TinyDtype, cfg: SchedulerConfig) -> LlmHandle {
    LlmHandle::start("tiny", tiny_llm(arch, dtype), cfg).unwrap()
}

/// Writes (once per process) a tiny BERT directory.
pub fn tiny_bert_dir(kind: TinyBert) -> PathBuf {
    static WRITING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = WRITING.lock().unwrap_or_else(|e| e.into_inner());
    let path = scratch().join(kind.dir_name());
    if !path.join("config.json").exists() {
        fixtures::write_tiny_bert(scratch(), kind).unwrap();
    }
    path
}

/// The committed reference outputs.
pub fn reference() -> serde_json::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

pub fn f32s(v: &serde_json::Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

pub fn u32s(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// Largest absolute difference.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Directory of the real models (`CANDELA_MODELS_DIR`, default `<repo>/models`).
pub fn models_dir() -> PathBuf {
    std::env::var_os("CANDELA_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"))
}

/// A real model's directory, or None (with a note) when it is not downloaded.
/// With `CANDELA_REQUIRE_MODELS=1` (the test script sets it) a missing model fails.
pub fn real_model(name: &str) -> Option<PathBuf> {
    let dir = models_dir().join(name);
    if dir.exists() {
        return Some(dir);
    }
    if std::env::var("CANDELA_REQUIRE_MODELS").as_deref() == Ok("1") {
        panic!("model {name} is missing from {}; run `candela models pull`", models_dir().display());
    }
    eprintln!("skipping: model {name} not in {}", models_dir().display());
    None
}
