//! Micro-benchmark of the CPU matmul kernels on the default models' shapes.
//!
//! `cargo run --release --example kernel_bench [-- THREADS [FORMAT M ITERS [prompt|decode] [ISA]]]`
//! Prints, per format and batch size, the time per product, multiply-adds
//! per second and weight bytes read per second. With FORMAT, M and ITERS it
//! runs that one case a fixed number of times (for paired A/B timing of
//! two builds or two instruction sets with farm-bench); ISA is a name from
//! `Isa::name` (default: the best this CPU has).

use candela_engine::kernels::{self, ActBuffers, Isa, QMatrix, RowSplit, ThreadPool, WeightFormat};
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::time::Instant;

fn matrix(rng: &mut StdRng, format: WeightFormat, rows: usize, cols: usize) -> QMatrix {
    let vals: Vec<f32> = (0..rows * cols).map(|_| rng.random::<f32>() - 0.5).collect();
    kernels::quantize_matrix(format, &vals, rows, cols).unwrap()
}

fn main() {
    let threads: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2);
    let pool = ThreadPool::new(threads);
    let isa = Isa::detect();
    let mut rng = StdRng::seed_from_u64(0);
    let args: Vec<String> = std::env::args().collect();
    if args.len() >= 5 {
        let isa = match args.get(6) {
            Some(name) => Isa::available().into_iter().find(|i| i.name() == name).expect("an instruction set this CPU has"),
            None => isa,
        };
        let format = WeightFormat::ALL.into_iter().find(|f| f.name() == args[2]).expect("format name, e.g. Q5_0");
        let (m, iters): (usize, usize) = (args[3].parse().unwrap(), args[4].parse().unwrap());
        let (rows, cols) = if format.block_len() == 256 { (896, 4864) } else { (4864, 896) };
        let w = matrix(&mut rng, format, rows, cols);
        let x: Vec<f32> = (0..m * cols).map(|_| rng.random::<f32>() - 0.5).collect();
        let mut bufs = ActBuffers::default();
        let mut out = vec![0f32; m * rows];
        let split = if args.get(5).is_some_and(|a| a == "prompt") { RowSplit::new(&vec![true; m]) } else { RowSplit::decode(m) };
        let start = Instant::now();
        for _ in 0..iters {
            let input = bufs.prepare(isa, &x, &split, cols, &[&w]);
            kernels::matmul(&pool, isa, &input, &mut [(&w, &mut out)]);
        }
        let secs = start.elapsed().as_secs_f64();
        println!("{} {} m={m}: {:.1} GMAC/s", format.name(), isa.name(), (iters * m * rows * cols) as f64 / secs / 1e9);
        return;
    }
    println!("isa {} threads {threads}", isa.name());
    println!("{:<6} {:>6} {:>6} {:>4} {:>10} {:>9} {:>8}", "format", "rows", "cols", "m", "ms/prod", "GMAC/s", "GB/s");
    let shapes = [
        (WeightFormat::Q5_0, 4864, 896),
        (WeightFormat::Q5_0, 896, 896),
        (WeightFormat::Q4K, 896, 4864),
        (WeightFormat::Q6K, 896, 4864),
        (WeightFormat::Q8_0, 4864, 896),
        (WeightFormat::Q4_1, 1536, 576),
        (WeightFormat::Q4_0, 4864, 896),
        (WeightFormat::Q5_1, 4864, 896),
        (WeightFormat::Q5K, 896, 4864),
        (WeightFormat::F16, 896, 896),
    ];
    for (format, rows, cols) in shapes {
        let w = matrix(&mut rng, format, rows, cols);
        for m in [1usize, 8, 256] {
            let x: Vec<f32> = (0..m * cols).map(|_| rng.random::<f32>() - 0.5).collect();
            let mut bufs = ActBuffers::default();
            let mut out = vec![0f32; m * rows];
            let split = RowSplit::decode(m);
            let mut iters = 0usize;
            let start = Instant::now();
            let mut prep = 0f64;
            while start.elapsed().as_secs_f64() < 0.5 || iters < 3 {
                let t = Instant::now();
                let input = bufs.prepare(isa, &x, &split, cols, &[&w]);
                prep += t.elapsed().as_secs_f64();
                kernels::matmul(&pool, isa, &input, &mut [(&w, &mut out)]);
                iters += 1;
            }
            let secs = start.elapsed().as_secs_f64() / iters as f64;
            let macs = (m * rows * cols) as f64;
            println!(
                "{:<6} {:>6} {:>6} {:>4} {:>10.3} {:>9.1} {:>8.1}   (quantize {:.1}%)",
                format.name(),
                rows,
                cols,
                m,
                secs * 1e3,
                macs / secs / 1e9,
                w.bytes() as f64 / secs / 1e9,
                prep / iters as f64 / secs * 100.0
            );
        }
    }
}
