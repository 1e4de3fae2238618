//! The scoped vector index against brute-force f32 search: recall and
//! exact scores on random normalised vectors, min_score, scope isolation,
//! upsert/remove/remove_scope/clear bookkeeping (swap_remove included),
//! multi-threaded scans and input validation.

use candela_engine::index::{VectorIndex, MAX_K};
use candela_engine::ErrorCode;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashSet;

const DIM: usize = 384;

fn unit(rng: &mut StdRng, dim: usize) -> Vec<f32> {
    // Sum of uniforms is close enough to Gaussian for direction sampling.
    let v: Vec<f32> = (0..dim).map(|_| (0..4).map(|_| rng.random::<f32>() - 0.5).sum()).collect();
    normalise(v)
}

fn normalise(v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

/// `base` plus noise of relative size `eps`, renormalised: a near-duplicate.
fn near(rng: &mut StdRng, base: &[f32], eps: f32) -> Vec<f32> {
    let noise = unit(rng, base.len());
    normalise(base.iter().zip(noise).map(|(b, n)| b + eps * n).collect())
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum::<f64>() as f32
}

fn brute_force(entries: &[(String, Vec<f32>)], q: &[f32], k: usize) -> Vec<(String, f32)> {
    let mut all: Vec<(String, f32)> = entries.iter().map(|(id, v)| (id.clone(), dot(v, q))).collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1));
    all.truncate(k);
    all
}

fn filled(scope: &str, n: usize, seed: u64) -> (VectorIndex, Vec<(String, Vec<f32>)>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut index = VectorIndex::new(DIM).unwrap();
    let entries: Vec<(String, Vec<f32>)> = (0..n).map(|i| (format!("e{i}"), unit(&mut rng, DIM))).collect();
    for (id, v) in &entries {
        index.upsert(scope, id, v).unwrap();
    }
    (index, entries)
}

fn ids(hits: &[(String, f32)]) -> Vec<&str> {
    hits.iter().map(|(id, _)| id.as_str()).collect()
}

fn code<T>(r: candela_engine::Result<T>) -> ErrorCode {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.code(),
    }
}

/// Recall@k of the index against brute force, checking every returned score.
fn recall(index: &VectorIndex, entries: &[(String, Vec<f32>)], queries: &[Vec<f32>], k: usize) -> f64 {
    let mut found = 0;
    for q in queries {
        let hits = index.search("s", q, k, None).unwrap();
        assert_eq!(hits.len(), k.min(entries.len()));
        assert!(hits.windows(2).all(|w| w[0].1 >= w[1].1), "hits are sorted by score");
        let truth: HashSet<String> = brute_force(entries, q, k).into_iter().map(|(id, _)| id).collect();
        for (id, score) in &hits {
            let v = &entries.iter().find(|(e, _)| e == id).unwrap().1;
            assert!((score - dot(v, q)).abs() < 1e-5, "{id}: {score} vs exact {}", dot(v, q));
            found += truth.contains(id) as usize;
        }
    }
    found as f64 / (queries.len() * k) as f64
}

#[test]
fn matches_brute_force_on_random_vectors() {
    let (index, entries) = filled("s", 5_000, 1);
    let mut rng = StdRng::seed_from_u64(2);
    // Random directions: near-ties everywhere, the hardest case for int8 ranking.
    let random: Vec<Vec<f32>> = (0..200).map(|_| unit(&mut rng, DIM)).collect();
    let r = recall(&index, &entries, &random, 10);
    assert!(r >= 0.99, "recall@10 on random queries {r}");
    // Near-duplicates, the semantic cache's real case: the top-1 is exact.
    for i in (0..entries.len()).step_by(50) {
        let q = near(&mut rng, &entries[i].1, 0.2);
        let hits = index.search("s", &q, 1, None).unwrap();
        assert_eq!(hits[0].0, entries[i].0);
        assert_eq!(ids(&hits), ids(&brute_force(&entries, &q, 1)));
    }
    // An exact stored vector finds itself with score ~1.
    let hits = index.search("s", &entries[123].1, 3, None).unwrap();
    assert_eq!(hits[0].0, "e123");
    assert!((hits[0].1 - 1.0).abs() < 1e-5);
}

#[test]
fn multi_threaded_scan_equals_single_threaded() {
    let (mut index, entries) = filled("s", 45_000, 3);
    let mut rng = StdRng::seed_from_u64(4);
    let queries: Vec<Vec<f32>> = (0..30).map(|_| unit(&mut rng, DIM)).collect();
    index.set_scan_threads(1);
    let single: Vec<_> = queries.iter().map(|q| index.search("s", q, 10, None).unwrap()).collect();
    index.set_scan_threads(3);
    let multi: Vec<_> = queries.iter().map(|q| index.search("s", q, 10, None).unwrap()).collect();
    assert_eq!(single, multi);
    let r = recall(&index, &entries, &queries, 10);
    assert!(r >= 0.99, "recall@10 {r}");
}

#[test]
fn small_scopes_are_exact() {
    let (index, entries) = filled("s", 20, 5);
    let mut rng = StdRng::seed_from_u64(6);
    for _ in 0..20 {
        let q = unit(&mut rng, DIM);
        let hits = index.search("s", &q, 50, None).unwrap();
        assert_eq!(hits.len(), 20);
        assert_eq!(ids(&hits), ids(&brute_force(&entries, &q, 50)));
    }
}

#[test]
fn min_score_filters() {
    let (mut index, _) = filled("s", 1_000, 7);
    let mut rng = StdRng::seed_from_u64(8);
    let base = unit(&mut rng, DIM);
    let close = near(&mut rng, &base, 0.1);
    let far = near(&mut rng, &base, 0.6);
    index.upsert("s", "close", &close).unwrap();
    index.upsert("s", "far", &far).unwrap();
    let (s_close, s_far) = (dot(&base, &close), dot(&base, &far));
    assert!(s_close > 0.95 && s_far < 0.9 && s_far > 0.5, "{s_close} {s_far}");

    let hits = index.search("s", &base, 5, Some(0.9)).unwrap();
    assert_eq!(ids(&hits), ["close"]);
    let hits = index.search("s", &base, 5, Some(0.5)).unwrap();
    assert_eq!(ids(&hits), ["close", "far"]);
    assert!(index.search("s", &base, 5, Some(0.999)).unwrap().is_empty());
    // The bound is inclusive.
    let hits = index.search("s", &base, 1, Some(hits[0].1)).unwrap();
    assert_eq!(ids(&hits), ["close"]);
}

#[test]
fn scopes_are_isolated() {
    let mut index = VectorIndex::new(DIM).unwrap();
    let mut rng = StdRng::seed_from_u64(9);
    let v = unit(&mut rng, DIM);
    index.upsert("a", "x", &v).unwrap();
    for i in 0..100 {
        index.upsert("b", &format!("b{i}"), &unit(&mut rng, DIM)).unwrap();
    }
    assert_eq!(ids(&index.search("a", &v, 10, None).unwrap()), ["x"]);
    let hits = index.search("b", &v, 100, None).unwrap();
    assert_eq!(hits.len(), 100);
    assert!(hits.iter().all(|(id, _)| id.starts_with('b')));
    assert!(index.search("c", &v, 10, None).unwrap().is_empty());
    assert!(index.search("", &v, 10, None).unwrap().is_empty());
    assert_eq!((index.len(), index.scope_len("a"), index.scope_len("b"), index.scope_len("c")), (101, 1, 100, 0));
}

#[test]
fn upsert_replaces_in_place_and_across_scopes() {
    let mut index = VectorIndex::new(DIM).unwrap();
    let mut rng = StdRng::seed_from_u64(10);
    let (v1, v2) = (unit(&mut rng, DIM), unit(&mut rng, DIM));
    for i in 0..50 {
        index.upsert("a", &format!("a{i}"), &unit(&mut rng, DIM)).unwrap();
    }
    index.upsert("a", "x", &v1).unwrap();
    index.upsert("a", "x", &v2).unwrap();
    assert_eq!(index.len(), 51);
    let hits = index.search("a", &v2, 1, None).unwrap();
    assert_eq!(hits[0].0, "x");
    assert!((hits[0].1 - 1.0).abs() < 1e-5);
    assert!(index.search("a", &v1, 51, None).unwrap().iter().all(|(id, s)| id != "x" || (*s - dot(&v1, &v2)).abs() < 1e-5));

    // Moving scope: gone from "a", present in "b".
    index.upsert("b", "x", &v1).unwrap();
    assert_eq!((index.len(), index.scope_len("a"), index.scope_len("b")), (51, 50, 1));
    assert!(index.search("a", &v1, 51, None).unwrap().iter().all(|(id, _)| id != "x"));
    assert_eq!(ids(&index.search("b", &v1, 5, None).unwrap()), ["x"]);
    // Moving the last entry out of a scope drops the scope.
    index.upsert("c", "x", &v1).unwrap();
    assert_eq!((index.scope_len("b"), index.scope_len("c"), index.len()), (0, 1, 51));
}

#[test]
fn remove_keeps_search_consistent() {
    let (mut index, entries) = filled("s", 300, 11);
    let mut rng = StdRng::seed_from_u64(12);
    // Removing a middle entry moves the last one (e299) into its slot.
    assert!(index.remove("e10"));
    assert!(!index.remove("e10"));
    assert!(!index.remove("nope"));
    assert_eq!(index.len(), 299);
    assert!(index.search("s", &entries[10].1, 100, None).unwrap().iter().all(|(id, _)| id != "e10"));
    let hits = index.search("s", &entries[299].1, 1, None).unwrap();
    assert_eq!(hits[0].0, "e299");
    assert!((hits[0].1 - 1.0).abs() < 1e-5);
    // Removing the entry in the last slot (e298) moves nothing.
    assert!(index.remove("e298"));
    assert_eq!(index.search("s", &entries[299].1, 1, None).unwrap()[0].0, "e299");
    // The moved entry can still be replaced and removed by id; its removal moves e297.
    let v = unit(&mut rng, DIM);
    index.upsert("s", "e299", &v).unwrap();
    assert_eq!(index.search("s", &v, 1, None).unwrap()[0].0, "e299");
    assert!(index.remove("e299"));
    assert_eq!(index.search("s", &entries[297].1, 1, None).unwrap()[0].0, "e297");

    // Remove four in five of the rest (the buffers shrink); the survivors still match brute force.
    let full = index.memory_bytes();
    let mut rest: Vec<(String, Vec<f32>)> = entries.into_iter().filter(|(id, _)| !["e10", "e298", "e299"].contains(&id.as_str())).collect();
    for (i, (id, _)) in rest.iter().enumerate() {
        if i % 5 != 0 {
            assert!(index.remove(id));
        }
    }
    rest = rest.into_iter().step_by(5).collect();
    assert_eq!(index.scope_len("s"), rest.len());
    assert!(index.memory_bytes() < full * 2 / 3, "{} bytes after removals, {full} before", index.memory_bytes());
    for _ in 0..20 {
        let q = unit(&mut rng, DIM);
        assert_eq!(ids(&index.search("s", &q, 10, None).unwrap()), ids(&brute_force(&rest, &q, 10)));
    }
    for (id, v) in &rest {
        assert_eq!(index.search("s", v, 1, None).unwrap()[0].0, *id);
    }
}

#[test]
fn remove_scope_and_clear() {
    let mut index = VectorIndex::new(DIM).unwrap();
    let mut rng = StdRng::seed_from_u64(13);
    let v = unit(&mut rng, DIM);
    for i in 0..40 {
        index.upsert("a", &format!("a{i}"), &unit(&mut rng, DIM)).unwrap();
        index.upsert("b", &format!("b{i}"), &unit(&mut rng, DIM)).unwrap();
    }
    let empty = VectorIndex::new(DIM).unwrap().memory_bytes();
    let full = index.memory_bytes();
    assert!(full >= empty + 80 * DIM * 5, "{full} bytes for 80 vectors");
    assert_eq!(index.remove_scope("a"), 40);
    assert_eq!(index.remove_scope("a"), 0);
    assert_eq!((index.len(), index.scope_len("a"), index.scope_len("b")), (40, 0, 40));
    assert!(index.search("a", &v, 10, None).unwrap().is_empty());
    assert!(!index.remove("a3"));
    // Ids of a removed scope can come back, in any scope.
    index.upsert("b", "a3", &v).unwrap();
    assert_eq!(index.search("b", &v, 1, None).unwrap()[0].0, "a3");
    assert_eq!(index.len(), 41);

    index.clear();
    assert!(index.is_empty());
    assert_eq!(index.scope_len("b"), 0);
    assert!(index.search("b", &v, 10, None).unwrap().is_empty());
    index.upsert("b", "b1", &v).unwrap();
    assert_eq!(ids(&index.search("b", &v, 10, None).unwrap()), ["b1"]);
}

#[test]
fn rejects_bad_input() {
    assert_eq!(code(VectorIndex::new(0)), ErrorCode::InvalidInput);
    let mut index = VectorIndex::new(4).unwrap();
    let ok = [0.5f32, 0.5, 0.5, 0.5];
    let e = index.upsert("s", "x", &[1.0, 0.0, 0.0]).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidInput);
    assert!(e.to_string().contains("3 dimensions; the index has 4"), "{e}");
    let e = index.upsert("s", "x", &[1.0, f32::NAN, 0.0, 0.0]).unwrap_err();
    assert!(e.to_string().contains("non-finite"), "{e}");
    assert_eq!(code(index.upsert("s", "x", &[f32::INFINITY, 0.0, 0.0, 0.0])), ErrorCode::InvalidInput);
    let e = index.upsert("s", "", &ok).unwrap_err();
    assert!(e.to_string().contains("id must not be empty"), "{e}");
    assert!(index.is_empty(), "failed upserts store nothing");

    index.upsert("s", "x", &ok).unwrap();
    for k in [0, MAX_K + 1] {
        let e = index.search("s", &ok, k, None).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidInput);
        assert!(e.to_string().contains("k must be"), "{e}");
    }
    assert_eq!(index.search("s", &ok, MAX_K, None).unwrap().len(), 1);
    assert_eq!(code(index.search("s", &ok[..3], 1, None)), ErrorCode::InvalidInput);
    assert_eq!(code(index.search("s", &[0.0, 0.0, f32::NEG_INFINITY, 0.0], 1, None)), ErrorCode::InvalidInput);
    assert_eq!(code(index.search("s", &ok, 1, Some(f32::NAN))), ErrorCode::InvalidInput);
    // Validation applies to unknown scopes too.
    assert_eq!(code(index.search("none", &ok[..2], 1, None)), ErrorCode::InvalidInput);
}

#[test]
fn zero_and_tiny_vectors_are_harmless() {
    let mut index = VectorIndex::new(DIM).unwrap();
    let mut rng = StdRng::seed_from_u64(14);
    for i in 0..100 {
        index.upsert("s", &format!("e{i}"), &unit(&mut rng, DIM)).unwrap();
    }
    index.upsert("s", "zero", &vec![0.0; DIM]).unwrap();
    index.upsert("s", "tiny", &vec![f32::MIN_POSITIVE / 1e3; DIM]).unwrap();
    let q = unit(&mut rng, DIM);
    let hits = index.search("s", &q, 102, None).unwrap();
    assert_eq!(hits.len(), 102);
    assert!(hits.iter().all(|(_, s)| s.is_finite()));
    assert!(index.search("s", &vec![0.0; DIM], 5, None).unwrap().iter().all(|(_, s)| *s == 0.0));
}

/// Search latency by scope size and scan threads (not a pass/fail test):
/// `cargo test --release -p candela-engine --test index -- --ignored --nocapture`
/// (`BENCH_SIZES=10000,100000` picks the sizes).
#[test]
#[ignore]
fn bench_search_latency() {
    use std::time::Instant;
    let mut rng = StdRng::seed_from_u64(15);
    let queries: Vec<Vec<f32>> = (0..300).map(|_| unit(&mut rng, DIM)).collect();
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES").map_or(vec![1_000, 10_000, 20_000, 50_000, 100_000], |s| {
        s.split(',').map(|n| n.parse().unwrap()).collect()
    });
    for n in sizes {
        let (mut index, _) = filled("s", n, 16);
        for threads in [1, 2, 4] {
            index.set_scan_threads(threads);
            let mut ms: Vec<f64> = queries
                .iter()
                .map(|q| {
                    let t = Instant::now();
                    std::hint::black_box(index.search("s", q, 1, None).unwrap());
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            ms.sort_by(f64::total_cmp);
            let pct = |p: f64| ms[((ms.len() as f64 * p) as usize).min(ms.len() - 1)];
            eprintln!("n={n:>6} threads={threads}: p50 {:.3} ms  p99 {:.3} ms  min {:.3} ms", pct(0.5), pct(0.99), ms[0]);
        }
        eprintln!("n={n:>6} memory {:.1} MiB", index.memory_bytes() as f64 / (1 << 20) as f64);
    }
}
