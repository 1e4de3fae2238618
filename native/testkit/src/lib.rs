//! Test fixtures for Candela, kept out of the production crates: the engine
//! uses them as a dev-dependency, the JS tests through the `candela-fixtures`
//! command. See [`fixtures`] for how the tiny models are generated.

pub mod fixtures;

use fixtures::{TinyArch, TinyBert, TinyDtype};
use std::path::{Path, PathBuf};

/// Writes the tiny model `kind` (`qwen2`, `llama`, `bert-cls`, `bert-mean`,
/// `cross-encoder`) into `dir`; LLMs in `dtype` (`f32`, `q8_0`, `q4_0`) with
/// `context` positions. Returns the model's path (a `.gguf` file or a directory).
pub fn write_named(dir: &Path, kind: &str, dtype: &str, context: Option<usize>) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let dtype = match dtype {
        "f32" => TinyDtype::F32,
        "q8_0" => TinyDtype::Q8_0,
        "q4_0" => TinyDtype::Q4_0,
        o => return Err(format!("unknown fixture dtype '{o}' (f32, q8_0, q4_0)")),
    };
    let written = match kind {
        "qwen2" | "llama" => {
            let arch = if kind == "qwen2" { TinyArch::Qwen2 } else { TinyArch::Llama };
            let context = context.unwrap_or(fixtures::TINY_LLM.context);
            if !(16..=32_768).contains(&context) {
                return Err(format!("fixture context length {context} is outside 16..=32768"));
            }
            fixtures::write_tiny_llm_with_context(dir, arch, dtype, context)
        }
        "bert-cls" => fixtures::write_tiny_bert(dir, TinyBert::EmbedderCls),
        "bert-mean" => fixtures::write_tiny_bert(dir, TinyBert::EmbedderMean),
        "cross-encoder" => fixtures::write_tiny_bert(dir, TinyBert::CrossEncoder),
        o => return Err(format!("unknown fixture kind '{o}' (qwen2, llama, bert-cls, bert-mean, cross-encoder)")),
    };
    written.map_err(|e| e.to_string())
}
