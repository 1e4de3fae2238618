//! Embedding throughput of a sentence-transformers directory on the CPU.
//!
//! `cargo run --release --example embed_bench -- MODEL_DIR [WORDS_PER_TEXT] [BATCHES] [THREADS]`
//! Prints texts/s for batches of 32 texts of roughly the given length.

use candela_engine::encoder::Embedder;
use candle_core::Device;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .get(1)
        .expect("usage: embed_bench MODEL_DIR [TOKENS] [BATCHES]");
    let words: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(12);
    let batches: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(20);
    let threads: usize = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(0);
    candela_engine::kernels::pool::configure(threads).unwrap();
    let e = Embedder::load(std::path::Path::new(dir), &Device::Cpu, None).unwrap();
    let vocab = [
        "retrieval",
        "cache",
        "server",
        "token",
        "stream",
        "model",
        "answer",
        "query",
        "vector",
        "index",
        "batch",
        "kernel",
    ];
    let texts: Vec<Vec<String>> = (0..batches)
        .map(|b| {
            (0..32)
                .map(|i| {
                    (0..words)
                        .map(|w| vocab[(b * 7 + i * 3 + w * 5) % vocab.len()])
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect()
        })
        .collect();
    let tokens = e.count_tokens(&texts[0]).unwrap();
    e.embed(&texts[0], true).unwrap();
    let t = Instant::now();
    for b in &texts {
        e.embed(b, true).unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{} tokens per text: {:.1} texts/s",
        tokens[0],
        (batches * 32) as f64 / secs
    );
}
