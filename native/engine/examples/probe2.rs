use candela_engine::llm::{model::StepInput, Llm, LlmFiles};
use candle_core::{Device, Tensor, IndexOp};
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let files = LlmFiles::resolve(std::path::Path::new(&path)).unwrap();
    let llm = Llm::load(&files, &Device::Cpu).unwrap();
    let prompt = llm.template.render(&[candela_engine::llm::ChatMessage{role:"user".into(), content:"What is the capital of France?".into()}], true).unwrap();
    let toks = llm.tokenize(&prompt, false).unwrap();
    // ours
    let mut cache = llm.model.new_cache();
    let mut ours = vec![];
    let mut l = llm.model.forward(&mut [StepInput { tokens: &toks, cache: &mut cache }]).unwrap();
    for _ in 0..12 { let t = candela_engine::llm::sampler::argmax(&l.i(0).unwrap().to_vec1::<f32>().unwrap()); ours.push(t); l = llm.model.forward(&mut [StepInput { tokens: &[t], cache: &mut cache }]).unwrap(); }
    // candle reference
    let mut f = std::fs::File::open(&files.gguf).unwrap();
    let ct = candle_core::quantized::gguf_file::Content::read(&mut f).unwrap();
    let mut m = candle_transformers::models::quantized_llama::ModelWeights::from_gguf(ct, &mut f, &Device::Cpu).unwrap();
    let mut theirs = vec![];
    let x = Tensor::new(toks.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let mut l = m.forward(&x, 0).unwrap();
    let mut pos = toks.len();
    for _ in 0..12 { let t = candela_engine::llm::sampler::argmax(&l.i(0).unwrap().to_vec1::<f32>().unwrap()); theirs.push(t); let x = Tensor::new(&[t], &Device::Cpu).unwrap().unsqueeze(0).unwrap(); l = m.forward(&x, pos).unwrap(); pos += 1; }
    println!("ours   {:?} {:?}", ours, llm.detokenize(&ours, false).unwrap());
    println!("candle {:?} {:?}", theirs, llm.detokenize(&theirs, false).unwrap());
}
