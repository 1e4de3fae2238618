//! The BERT forward pass on the CPU, on Candela's kernels: every sequence at
//! its own length (no padding, so a batch costs the sum of its lengths, not
//! longest × count), every projection one f32 GEMM over all tokens of the
//! batch on the engine's worker pool, attention per (sequence, head) in
//! parallel, GELU and layer norm vectorized.
//!
//! A sequence's output does not depend on the others in its batch.
//! Thread-safety: read-only after load; `forward` may be called from several
//! threads (each brings its own buffers).

use crate::kernels::{self, attention as att, pool::ThreadPool, vecops, ActBuffers, Isa, Product, QMatrix, RowSplit};
use crate::{EngineError, Result};
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Shapes and constants of a BERT model.
#[derive(Debug, Clone, Copy)]
pub struct Dims {
    pub hidden: usize,
    pub heads: usize,
    pub layers: usize,
    pub intermediate: usize,
    pub max_positions: usize,
    pub type_vocab: usize,
    pub vocab: usize,
    pub eps: f32,
}

struct Linear {
    w: QMatrix,
    b: Vec<f32>,
}

struct Norm {
    w: Vec<f32>,
    b: Vec<f32>,
}

struct Layer {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ln1: Norm,
    up: Linear,
    down: Linear,
    ln2: Norm,
}

/// A BERT encoder's weights (f32, as stored).
pub struct CpuBert {
    pub dims: Dims,
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    emb_ln: Norm,
    layers: Vec<Layer>,
    pool: Arc<ThreadPool>,
    isa: Isa,
}

/// Tensors of a safetensors file by name, with the prefixes BERT checkpoints use.
struct Weights {
    tensors: HashMap<String, Tensor>,
    prefix: String,
}

impl Weights {
    fn open(file: &Path, model_type: Option<&str>) -> Result<Self> {
        let tensors = candle_core::safetensors::load(file, &Device::Cpu)?;
        let prefix = ["", "bert.", model_type.map(|m| format!("{m}.")).unwrap_or_default().as_str()]
            .iter()
            .find(|p| tensors.contains_key(&format!("{p}embeddings.word_embeddings.weight")))
            .map(|p| p.to_string())
            .ok_or_else(|| EngineError::invalid("no BERT embeddings in the weights file"))?;
        Ok(Self { tensors, prefix })
    }

    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let key = format!("{}{name}", self.prefix);
        let t = self.tensors.get(&key).ok_or_else(|| EngineError::invalid(format!("weights lack '{key}'")))?;
        if t.dims() != shape {
            return Err(EngineError::invalid(format!("'{key}' is {:?}, expected {shape:?}", t.dims())));
        }
        Ok(t.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
    }

    fn linear(&self, name: &str, out: usize, inp: usize) -> Result<Linear> {
        let w = self.get(&format!("{name}.weight"), &[out, inp])?;
        // Every encoder row is a prompt row: store the weights in the GEMM's layout once.
        Ok(Linear { w: QMatrix::packed_f32(out, inp, &w).map_err(EngineError::invalid)?, b: self.get(&format!("{name}.bias"), &[out])? })
    }

    /// LayerNorm parameters, named weight/bias or (older checkpoints) gamma/beta.
    fn norm(&self, name: &str, dim: usize) -> Result<Norm> {
        let has = |n: &str| self.tensors.contains_key(&format!("{}{name}.{n}", self.prefix));
        let (w, b) = if has("weight") { ("weight", "bias") } else { ("gamma", "beta") };
        Ok(Norm { w: self.get(&format!("{name}.{w}"), &[dim])?, b: self.get(&format!("{name}.{b}"), &[dim])? })
    }
}

impl CpuBert {
    pub fn load(file: &Path, dims: Dims, model_type: Option<&str>, pool: Arc<ThreadPool>) -> Result<Self> {
        let w = Weights::open(file, model_type)?;
        let (h, i) = (dims.hidden, dims.intermediate);
        if dims.heads == 0 || h % dims.heads != 0 {
            return Err(EngineError::invalid(format!("hidden size {h} is not a multiple of {} heads", dims.heads)));
        }
        let mut layers = Vec::with_capacity(dims.layers);
        for l in 0..dims.layers {
            let p = format!("encoder.layer.{l}");
            layers.push(Layer {
                q: w.linear(&format!("{p}.attention.self.query"), h, h)?,
                k: w.linear(&format!("{p}.attention.self.key"), h, h)?,
                v: w.linear(&format!("{p}.attention.self.value"), h, h)?,
                o: w.linear(&format!("{p}.attention.output.dense"), h, h)?,
                ln1: w.norm(&format!("{p}.attention.output.LayerNorm"), h)?,
                up: w.linear(&format!("{p}.intermediate.dense"), i, h)?,
                down: w.linear(&format!("{p}.output.dense"), h, i)?,
                ln2: w.norm(&format!("{p}.output.LayerNorm"), h)?,
            });
        }
        Ok(Self {
            dims,
            word: w.get("embeddings.word_embeddings.weight", &[dims.vocab, h])?,
            position: w.get("embeddings.position_embeddings.weight", &[dims.max_positions, h])?,
            token_type: w.get("embeddings.token_type_embeddings.weight", &[dims.type_vocab, h])?,
            emb_ln: w.norm("embeddings.LayerNorm", h)?,
            layers,
            pool,
            isa: Isa::detect(),
        })
    }

    /// Hidden states of every token of every sequence, concatenated in order
    /// (`[Σ lengths, hidden]`). `seqs` are (token ids, token type ids).
    pub fn forward(&self, seqs: &[(&[u32], &[u32])]) -> Result<Vec<f32>> {
        let d = self.dims;
        let h = d.hidden;
        let mut spans = Vec::with_capacity(seqs.len());
        let mut n = 0;
        for (ids, types) in seqs {
            if ids.is_empty() || ids.len() != types.len() || ids.len() > d.max_positions {
                return Err(EngineError::invalid(format!("a sequence of {} tokens does not fit this encoder", ids.len())));
            }
            if ids.iter().any(|&t| t as usize >= d.vocab) || types.iter().any(|&t| t as usize >= d.type_vocab) {
                return Err(EngineError::invalid("token id outside the encoder's vocabulary"));
            }
            spans.push((n, ids.len()));
            n += ids.len();
        }
        // Embeddings: word + position + token type, then layer norm.
        let mut x = vec![0f32; n * h];
        for ((ids, types), &(off, len)) in seqs.iter().zip(&spans) {
            for t in 0..len {
                let row = &mut x[(off + t) * h..(off + t + 1) * h];
                let (wi, ti) = (ids[t] as usize, types[t] as usize);
                for (c, v) in row.iter_mut().enumerate() {
                    *v = self.word[wi * h + c] + self.position[t * h + c] + self.token_type[ti * h + c];
                }
            }
        }
        vecops::layer_norm(&mut x, &self.emb_ln.w, &self.emb_ln.b, d.eps);

        let rows = RowSplit::new(&vec![true; n]);
        let mut bufs = ActBuffers::default();
        let (mut q, mut k, mut v) = (vec![0f32; n * h], vec![0f32; n * h], vec![0f32; n * h]);
        let mut ctx = vec![0f32; n * h];
        let mut o = vec![0f32; n * h];
        let mut up = vec![0f32; n * d.intermediate];
        let pool = &*self.pool;
        let isa = self.isa;
        for l in &self.layers {
            {
                let input = bufs.prepare(isa, &x, &rows, h, &[&l.q.w, &l.k.w, &l.v.w]);
                let mut jobs = [
                    Product::new(&l.q.w, &mut q).bias(Some(&l.q.b)),
                    Product::new(&l.k.w, &mut k).bias(Some(&l.k.b)),
                    Product::new(&l.v.w, &mut v).bias(Some(&l.v.b)),
                ];
                kernels::products(pool, isa, &input, &mut jobs);
            }
            self.attention(&spans, &q, &k, &v, &mut ctx);
            {
                let input = bufs.prepare(isa, &ctx, &rows, h, &[&l.o.w]);
                kernels::products(pool, isa, &input, &mut [Product::new(&l.o.w, &mut o).bias(Some(&l.o.b))]);
            }
            add_norm(pool, &mut x, &o, &l.ln1, d.eps);
            {
                let input = bufs.prepare(isa, &x, &rows, h, &[&l.up.w]);
                kernels::products(pool, isa, &input, &mut [Product::new(&l.up.w, &mut up).bias(Some(&l.up.b)).gelu()]);
            }
            {
                let input = bufs.prepare(isa, &up, &rows, d.intermediate, &[&l.down.w]);
                kernels::products(pool, isa, &input, &mut [Product::new(&l.down.w, &mut o).bias(Some(&l.down.b))]);
            }
            add_norm(pool, &mut x, &o, &l.ln2, d.eps);
        }
        Ok(x)
    }

    /// Bidirectional attention within each sequence, parallel over (sequence, head).
    fn attention(&self, spans: &[(usize, usize)], q: &[f32], k: &[f32], v: &[f32], out: &mut [f32]) {
        let d = self.dims;
        let (h, heads) = (d.hidden, d.heads);
        let hd = h / heads;
        let scale = 1.0 / (hd as f32).sqrt();
        let simd = att::simd() && hd % 8 == 0;
        let tasks: Vec<(usize, usize)> = (0..spans.len()).flat_map(|s| (0..heads).map(move |hh| (s, hh))).collect();
        let dst = OutCols(out.as_mut_ptr(), out.len());
        let run = |t: usize| {
            let (s, hh) = tasks[t];
            let (off, len) = spans[s];
            let pad = len.next_multiple_of(att::KEY_BLOCK);
            // This head's keys, transposed: [hd][pad].
            let mut kt = vec![0f32; hd * pad];
            for tok in 0..len {
                for c in 0..hd {
                    kt[c * pad + tok] = k[(off + tok) * h + hh * hd + c];
                }
            }
            let vals = &v[off * h..(off + len) * h];
            let mut scores = vec![0f32; 3 * pad];
            let mut r = 0;
            while r < len {
                let nq = (len - r).min(2);
                let qs: Vec<&[f32]> = (r..r + nq).map(|i| &q[(off + i) * h + hh * hd..(off + i) * h + (hh + 1) * hd]).collect();
                att::scores(simd, &qs, &kt, pad, hd, pad, scale, &mut scores[..nq * pad]);
                for i in 0..nq {
                    att::softmax(simd, &mut scores[i * pad..i * pad + len]);
                }
                let ps: Vec<&[f32]> = (0..nq).map(|i| &scores[i * pad..i * pad + len]).collect();
                // SAFETY: this task alone writes head hh of its sequence's rows.
                let mut outs: Vec<&mut [f32]> = (r..r + nq).map(|i| unsafe { dst.slice((off + i) * h + hh * hd, hd) }).collect();
                att::weighted_values(simd, &ps, vals, h, hh * hd, hd, &mut outs);
                r += nq;
            }
        };
        self.pool.run(tasks.len(), &run);
    }
}

/// `x = layer_norm(x + o)` row by row, rows split over the pool.
fn add_norm(pool: &ThreadPool, x: &mut [f32], o: &[f32], norm: &Norm, eps: f32) {
    let h = norm.w.len();
    let rows = x.len() / h;
    const CHUNK: usize = 16;
    let dst = OutCols(x.as_mut_ptr(), x.len());
    let run = |t: usize| {
        let (r0, r1) = (t * CHUNK, ((t + 1) * CHUNK).min(rows));
        // SAFETY: each task owns rows r0..r1.
        let xs = unsafe { dst.slice(r0 * h, (r1 - r0) * h) };
        xs.iter_mut().zip(&o[r0 * h..r1 * h]).for_each(|(x, o)| *x += o);
        vecops::layer_norm(xs, &norm.w, &norm.b, eps);
    };
    pool.run(rows.div_ceil(CHUNK), &run);
}

/// Output rows shared by tasks that each write their own (row, head) slices.
#[derive(Clone, Copy)]
struct OutCols(*mut f32, usize);
// SAFETY: tasks write disjoint slices; the pool joins them before the buffer is read.
unsafe impl Send for OutCols {}
unsafe impl Sync for OutCols {}

impl OutCols {
    /// # Safety
    /// The range must not overlap any other live reference.
    unsafe fn slice(self, at: usize, n: usize) -> &'static mut [f32] {
        assert!(at + n <= self.1);
        std::slice::from_raw_parts_mut(self.0.add(at), n)
    }
}
