//! The product driver: prepares an input once for the weights that share
//! it, splits the output columns into tasks over the pool, and runs each
//! row group on its path (f32 GEMM for prompt rows, integer kernels for
//! decode rows).

use super::act::QuantizedActs;
use super::dense;
use super::{prompt_path, scalar, ActKind, Isa, PromptPath, QMatrix, ThreadPool};

/// Which rows of an input are prompt rows (computed once per prompt token,
/// many per step) and which are decode rows (one per running sequence).
#[derive(Debug, Default, Clone)]
pub struct RowSplit {
    pub prompt: Vec<usize>,
    pub decode: Vec<usize>,
    pub all: Vec<usize>,
}

impl RowSplit {
    /// From one flag per row (true: prompt row).
    pub fn new(prompt: &[bool]) -> Self {
        let mut s = Self::default();
        for (i, &p) in prompt.iter().enumerate() {
            if p { s.prompt.push(i) } else { s.decode.push(i) }
            s.all.push(i);
        }
        s
    }

    /// Every row a decode row.
    pub fn decode(m: usize) -> Self {
        Self::new(&vec![false; m])
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }
}

/// The input of one or more products that share it: f32 rows (prompt rows
/// read them as they are) and their int8 forms (for decode rows).
pub struct MatInput<'a> {
    pub x: &'a [f32],
    pub m: usize,
    pub k: usize,
    pub q8: &'a QuantizedActs,
    pub q8k: &'a QuantizedActs,
    pub rows: &'a RowSplit,
}

/// Reusable buffers for an input's prepared forms.
#[derive(Default)]
pub struct ActBuffers {
    pub q8: QuantizedActs,
    pub q8k: QuantizedActs,
}

impl ActBuffers {
    /// Prepares `x` (`m · k`) for `weights`: int8 blocks for the kinds the
    /// rows on the integer kernels need.
    pub fn prepare<'a>(&'a mut self, isa: Isa, x: &'a [f32], rows: &'a RowSplit, k: usize, weights: &[&QMatrix]) -> MatInput<'a> {
        let m = rows.len();
        assert_eq!(x.len(), m * k, "input is not {m} rows of {k}");
        // Prompt rows need int8 blocks unless they take the f32 GEMM.
        let int_prompt = |w: &&QMatrix| !rows.prompt.is_empty() && prompt_path(isa, w.format) != PromptPath::F32Gemm;
        let integer_rows = |w: &&QMatrix| !rows.decode.is_empty() || int_prompt(w);
        let needs = |kind| weights.iter().any(|w| w.format.act_kind() == kind && integer_rows(w));
        let simd = isa.simd();
        if needs(ActKind::Q8B32) {
            self.q8.quantize(ActKind::Q8B32, x, m, k, simd);
        }
        if needs(ActKind::Q8K) {
            self.q8k.quantize(ActKind::Q8K, x, m, k, simd);
        }
        MatInput { x, m, k, q8: &self.q8, q8k: &self.q8k, rows }
    }
}

/// Raw output pointer shared by tasks that write disjoint columns.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: tasks write disjoint (row, column) cells; the pool joins them before the buffer is used.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// One product of a job: `out = input · wᵀ (+ bias) (then GELU)`, `out` `[m, w.rows]`.
pub struct Product<'a> {
    pub w: &'a QMatrix,
    pub out: &'a mut [f32],
    /// Added to every row (one value per output column).
    pub bias: Option<&'a [f32]>,
    /// Apply GELU (erf form) after the bias.
    pub gelu: bool,
}

impl<'a> Product<'a> {
    pub fn new(w: &'a QMatrix, out: &'a mut [f32]) -> Self {
        Self { w, out, bias: None, gelu: false }
    }

    pub fn bias(mut self, b: Option<&'a [f32]>) -> Self {
        self.bias = b;
        self
    }

    pub fn gelu(mut self) -> Self {
        self.gelu = true;
        self
    }
}

/// `outs[i] = input · weights[i]ᵀ` for every `(weight, out)` pair; see [`products`].
pub fn matmul(pool: &ThreadPool, isa: Isa, input: &MatInput<'_>, jobs: &mut [(&QMatrix, &mut [f32])]) {
    let mut ps: Vec<Product<'_>> = jobs.iter_mut().map(|(w, o)| Product::new(w, o)).collect();
    products(pool, isa, input, &mut ps);
}

/// Every product of `jobs` on one input, as one parallel job over all their
/// output columns, bias and activation applied by the task that computed
/// the columns (no serial pass over the output).
///
/// A task owns a run of weight rows (kept in L2). Prompt rows of formats that
/// take the f32 GEMM go through it; the other rows sweep the run once per
/// group of up to eight activation rows (kept in L1), so each weight block is
/// unpacked once per group.
pub fn products(pool: &ThreadPool, isa: Isa, input: &MatInput<'_>, jobs: &mut [Product<'_>]) {
    let (m, k) = (input.m, input.k);
    for p in jobs.iter() {
        assert_eq!(p.w.cols, k, "weight has {} columns, input {k}", p.w.cols);
        assert_eq!(p.out.len(), m * p.w.rows, "output buffer size");
        assert!(p.bias.is_none_or(|b| b.len() == p.w.rows), "bias length");
    }
    // Tile width: enough tasks to balance the threads, whole cache lines of output.
    let total: usize = jobs.iter().map(|p| p.w.rows).sum();
    let want_tasks = pool.threads() * 8;
    // Multiples of 16: whole cache lines of output and whole row groups of the prompt GEMM.
    let tile = (total.div_ceil(want_tasks)).next_multiple_of(dense::GROUP_ROWS).max(dense::GROUP_ROWS);
    let mut tasks: Vec<(usize, usize, usize)> = Vec::new(); // (job, first row, end row)
    for (ji, p) in jobs.iter().enumerate() {
        let mut r = 0;
        while r < p.w.rows {
            tasks.push((ji, r, (r + tile).min(p.w.rows)));
            r += tile;
        }
    }
    let outs: Vec<OutPtr> = jobs.iter_mut().map(|p| OutPtr(p.out.as_mut_ptr())).collect();
    let weights: Vec<&QMatrix> = jobs.iter().map(|p| p.w).collect();
    let epilogues: Vec<(Option<&[f32]>, bool)> = jobs.iter().map(|p| (p.bias, p.gelu)).collect();
    let run = |t: usize| {
        let (ji, r0, r1) = tasks[t];
        let w = weights[ji];
        let out = outs[ji];
        compute(isa, input, w, r0, r1, out);
        let (bias, gelu) = epilogues[ji];
        if bias.is_some() || gelu {
            for row in 0..m {
                // SAFETY: columns r0..r1 of every row belong to this task alone.
                let cells = unsafe { std::slice::from_raw_parts_mut(out.0.add(row * w.rows + r0), r1 - r0) };
                if let Some(b) = bias {
                    cells.iter_mut().zip(&b[r0..r1]).for_each(|(v, b)| *v += b);
                }
                if gelu {
                    super::vecops::gelu_erf(cells);
                }
            }
        }
    };
    pool.run(tasks.len(), &run);
}

/// Columns `r0..r1` of one product, for every row of the input.
fn compute(isa: Isa, input: &MatInput<'_>, w: &QMatrix, r0: usize, r1: usize, out: OutPtr) {
    let (m, k) = (input.m, input.k);
    let path = if input.rows.prompt.is_empty() { PromptPath::Integer } else { prompt_path(isa, w.format) };
    let integer_rows: &[usize] = if path == PromptPath::Integer { &input.rows.all } else { &input.rows.decode };
    assert!(w.packed().is_none() || integer_rows.is_empty(), "a packed matrix serves prompt rows only");
    match path {
        PromptPath::F32Gemm => {
            let mut wbuf = Vec::new();
            dense::run_task(isa, w, r0, r1, input.x, &input.rows.prompt, dense::Out(out.0), &mut wbuf);
        }
        #[cfg(target_arch = "x86_64")]
        PromptPath::Int8Gemm => {
            assert!(input.q8.k == k && input.q8.rows >= m, "activations not prepared for {}", w.format.name());
            let mut packed = super::avx512_gemm::Packed::default();
            // SAFETY: this path is only chosen for Isa::Avx512Vnni, which the CPU reported; the
            // input's Q8B32 blocks cover every row (checked above); columns r0..r1 are this task's.
            unsafe { super::avx512_gemm::run_task(w, r0, r1, input.q8, &input.rows.prompt, dense::Out(out.0), &mut packed) };
        }
        _ => {}
    }
    if integer_rows.is_empty() {
        return;
    }
    let kind = w.format.act_kind();
    let acts = if kind == ActKind::Q8K { input.q8k } else { input.q8 };
    assert!(kind == ActKind::F32 || (acts.k == k && acts.rows >= m), "activations not prepared for {}", w.format.name());
    let s = Sweep { isa, w, r0, r1, acts, x: input.x, k, out };
    // Groups of eight rows (the unpacking of weight blocks is amortized over
    // them), then the tail in fours and less.
    let wide = matches!(kind, ActKind::Q8B32 | ActKind::Q8K);
    let mut rest = integer_rows;
    while !rest.is_empty() {
        let take = if wide && rest.len() >= 8 { 8 } else { rest.len().min(4) };
        let (g, tail) = rest.split_at(take);
        match take {
            8 => s.run::<8>(g.try_into().unwrap()),
            4 => s.run::<4>(g.try_into().unwrap()),
            3 => s.run::<3>(g.try_into().unwrap()),
            2 => s.run::<2>(g.try_into().unwrap()),
            _ => s.run::<1>([g[0]]),
        }
        rest = tail;
    }
}

/// One task's weight rows against one group of activation rows.
struct Sweep<'a> {
    isa: Isa,
    w: &'a QMatrix,
    r0: usize,
    r1: usize,
    acts: &'a QuantizedActs,
    x: &'a [f32],
    k: usize,
    out: OutPtr,
}

impl Sweep<'_> {
    fn run<const RN: usize>(&self, rows: [usize; RN]) {
        let w = self.w;
        let store = |r: usize, vals: [f32; RN]| {
            for (t, v) in vals.iter().enumerate() {
                // SAFETY: cell (rows[t], r) lies in this task's columns r0..r1 only.
                unsafe { *self.out.0.add(rows[t] * w.rows + r) = *v };
            }
        };
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::AvxVnni | Isa::Avx512Vnni => {
                let bl = match w.format.act_kind() {
                    ActKind::F32 => 1,
                    kind => QuantizedActs::block_len(kind),
                };
                let ptrs = super::avx2::Rows::new(self.acts, self.x, self.k, rows, bl);
                for r in self.r0..self.r1 {
                    // SAFETY: a SIMD set is only chosen when the CPU reports it (AVX2, FMA and F16C
                    // included); the rows were made from activations of this format's kind and width.
                    store(r, unsafe { super::avx2::tile::<RN>(self.isa, w.format, w.row(r), &ptrs) });
                }
            }
            _ => {
                for r in self.r0..self.r1 {
                    let row = w.row(r);
                    store(
                        r,
                        rows.map(|j| {
                            if w.format.act_kind() == ActKind::F32 {
                                scalar::dot_float(w.format, row, &self.x[j * self.k..(j + 1) * self.k])
                            } else {
                                scalar::dot_quantized(w.format, row, self.acts, j)
                            }
                        }),
                    );
                }
            }
        }
    }
}
