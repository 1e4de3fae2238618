//! Prefill and decode speed of one GGUF, measured the way llama-bench does
//! (pp: one prompt of N tokens; tg: N tokens generated one at a time).
//!
//! `cargo run --release --example llm_bench -- MODEL_DIR_OR_GGUF [PP] [TG] [THREADS] [REPS]`

use candela_engine::kernels;
use candela_engine::llm::{model::StepInput, Llm, LlmFiles};
use candle_core::Device;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).expect("usage: llm_bench MODEL [PP] [TG] [THREADS] [REPS]");
    let pp: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(256);
    let tg: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(64);
    let threads: usize = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(0);
    let reps: usize = args.get(5).and_then(|a| a.parse().ok()).unwrap_or(3);
    kernels::pool::configure(threads).unwrap();
    let t0 = Instant::now();
    let llm = Llm::load(&LlmFiles::resolve(std::path::Path::new(path)).unwrap(), &Device::Cpu).unwrap();
    eprintln!(
        "loaded in {:.0} ms: {} ({}), {} MB of weights, {} threads, {}",
        t0.elapsed().as_secs_f64() * 1e3,
        path,
        llm.model.quantization,
        llm.model.weight_bytes / 1_000_000,
        kernels::pool::global().threads(),
        llm.model.backend_name()
    );
    let vocab = llm.model.config.vocab_size as u32;
    let tokens: Vec<u32> = (0..pp as u32).map(|i| (i * 7919 + 13) % vocab).collect();
    let (mut pp_rates, mut tg_rates) = (Vec::new(), Vec::new());
    for rep in 0..reps + 1 {
        let mut cache = llm.model.new_cache();
        let t = Instant::now();
        llm.model.forward_logits(&mut [StepInput { tokens: &tokens, cache: &mut cache }]).unwrap();
        let pp_s = t.elapsed().as_secs_f64();
        let mut cache = llm.model.new_cache();
        llm.model.forward_logits(&mut [StepInput { tokens: &tokens[..1], cache: &mut cache }]).unwrap();
        cache.start_decoding();
        let t = Instant::now();
        for i in 0..tg {
            let tok = [tokens[(i + 1) % tokens.len()]];
            llm.model.forward_logits(&mut [StepInput { tokens: &tok, cache: &mut cache }]).unwrap();
        }
        let tg_s = t.elapsed().as_secs_f64();
        if rep > 0 {
            pp_rates.push(pp as f64 / pp_s);
            tg_rates.push(tg as f64 / tg_s);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!("pp{pp}: {:.1} tok/s   tg{tg}: {:.1} tok/s   (mean of {reps})", mean(&pp_rates), mean(&tg_rates));
}
