//! `similarity` (content.wgsl, METHODS.md §1.4) against its f64 reference.
//!
//! A value is a bucket index, exact unless the f32 similarity lands on the other side of a
//! boundary from the f64 one. Bounds on |s_f32 − s| (u = 2⁻²⁴, γ_D = D·u/(1 − D·u), Higham §3.1):
//! the dot is off by at most γ_D·Σ|u_i v_i|; for cosine, the two squared norms carry γ_D relative
//! each, the square roots, product and division 3u more, and Σ|u_i v_i| ≤ |u||v|, so
//! |Δcos| ≤ 2γ_D + 3u. The bands used are twice those: (D + 2)·2⁻²² for cosine and
//! (D + 1)·2⁻²³·Σ|u_i v_i| for dot. A value may differ only for a sample with a boundary inside
//! its band, and then only to a bucket reachable inside the band; such samples are counted and
//! bounded.

use std::mem::size_of;

use wgrec::kernels::content::{
    similarity_reference, similarity_value_f64, Measure, SimilarityOp, SimilarityParams, MISSING,
};
use wgrec::rng::Rng;
use wgrec::shaders;

use crate::common::{gpu, random_f32};
use crate::registry::{assert_layout, offsets};

const POISON: u32 = u32::MAX;

struct Tables {
    users: Vec<f32>,
    items: Vec<f32>,
    dim: usize,
}

/// 50 users and 70 items of width 19, user 3 and item 5 zero vectors.
fn tables(seed: u64) -> Tables {
    let dim = 19;
    let mut rng = Rng::new(seed);
    let mut users = random_f32(&mut rng, 50 * dim);
    let mut items = random_f32(&mut rng, 70 * dim);
    users[3 * dim..4 * dim].fill(0.0);
    items[5 * dim..6 * dim].fill(0.0);
    Tables { users, items, dim }
}

/// `n` pairs: about half hit user 7 (a hot row), every 11th has a missing side, the zero vectors
/// appear.
fn pairs(rng: &mut Rng, n: usize) -> Vec<[u32; 2]> {
    (0..n)
        .map(|b| {
            let u = if b % 2 == 0 { 7 } else { rng.below(50) as u32 };
            let i = rng.below(70) as u32;
            match b % 11 {
                4 => [MISSING, i],
                9 => [u, MISSING],
                6 => [3, 5],
                _ => [u, i],
            }
        })
        .collect()
}

/// K sorted distinct boundaries spread over `[lo, hi)`.
fn boundaries(rng: &mut Rng, k: usize, lo: f32, hi: f32) -> Vec<f32> {
    let mut b: Vec<f32> = (0..k).map(|_| rng.uniform(lo, hi)).collect();
    b.sort_by(f32::total_cmp);
    b.dedup();
    b
}

/// The band of sample `[u, i]`: how far its f32 similarity may be from the f64 one.
fn band(t: &Tables, [u, i]: [u32; 2], measure: Measure) -> f64 {
    let d = t.dim;
    let (a, b) = (
        &t.users[u as usize * d..(u as usize + 1) * d],
        &t.items[i as usize * d..(i as usize + 1) * d],
    );
    match measure {
        Measure::Cosine => (d as f64 + 2.0) * 2f64.powi(-22),
        Measure::Dot => {
            let mag: f64 = a
                .iter()
                .zip(b)
                .map(|(&x, &y)| (x as f64 * y as f64).abs())
                .sum();
            (d as f64 + 1.0) * 2f64.powi(-23) * mag
        }
    }
}

/// Runs one batch with copies at `starts` into a poisoned target of `words`; checks every copy
/// against the reference (outside the band) and every other word still poisoned. Returns the
/// samples that differed inside their band.
fn run(t: &Tables, measure: Measure, bounds: &[f32], batch: &[[u32; 2]], starts: &[u32]) -> usize {
    let gpu = gpu();
    let words = starts
        .iter()
        .map(|&s| s as usize + batch.len())
        .max()
        .unwrap_or(0)
        + 13;
    let target = gpu.storage_from("similarity target", &vec![POISON; words]);
    let max_batch = batch.len().max(1) as u32;
    let op = SimilarityOp::new(
        gpu, &t.users, &t.items, t.dim, measure, bounds, max_batch, &target, 4,
    )
    .expect("similarity op");
    op.set_batch(gpu, batch, starts).expect("batch");
    wgrec::kernels::run_once(gpu, |pass| op.record(gpu, pass));
    let got: Vec<u32> = gpu.read(&target, 0, words as u64).expect("readback");
    let want = similarity_reference(&t.users, &t.items, t.dim, batch, measure, bounds);
    let mut expected = vec![POISON; words];
    for &s in starts {
        expected[s as usize..s as usize + batch.len()].copy_from_slice(&want);
    }
    let mut banded = 0;
    for (w, (&g, &e)) in got.iter().zip(&expected).enumerate() {
        let copy = starts
            .iter()
            .find(|&&s| (s as usize..s as usize + batch.len()).contains(&w));
        let Some(&s) = copy.filter(|_| g != e) else {
            assert_eq!(g, e, "word {w}: gpu {g} vs expected {e}");
            continue;
        };
        let pair = batch[w - s as usize];
        assert!(
            pair[0] != MISSING && pair[1] != MISSING,
            "word {w}: missing gives 0"
        );
        let d = t.dim;
        let sim = similarity_value_f64(
            &t.users[pair[0] as usize * d..][..d],
            &t.items[pair[1] as usize * d..][..d],
            measure,
        );
        let r = band(t, pair, measure);
        let reach = |v: f64| 1 + bounds.iter().filter(|&&b| v >= b as f64).count() as u32;
        assert!(
            (reach(sim - r)..=reach(sim + r)).contains(&g),
            "word {w}: gpu bucket {g} vs {e}, similarity {sim} ± {r}"
        );
        banded += 1;
    }
    banded
}

#[test]
fn cosine_buckets_match_reference_in_awkward_copies() {
    let t = tables(1);
    let mut rng = Rng::new(2);
    let bounds = boundaries(&mut rng, 15, -0.9, 0.9);
    for n in [1usize, 63, 257] {
        let batch = pairs(&mut rng, n);
        let starts = [5, n as u32 + 17, 2 * n as u32 + 31];
        let banded = run(&t, Measure::Cosine, &bounds, &batch, &starts);
        // Random boundaries fall inside a ~5e-6 band with probability ~1e-4 per sample.
        assert!(
            banded <= 1,
            "batch {n}: {banded} samples differ inside the band"
        );
    }
}

#[test]
fn dot_buckets_match_reference_with_one_boundary_and_many() {
    let t = tables(3);
    let mut rng = Rng::new(4);
    for k in [1, 1023] {
        let bounds = boundaries(&mut rng, k, -3.0, 3.0);
        let batch = pairs(&mut rng, 257);
        let banded = run(&t, Measure::Dot, &bounds, &batch, &[0, 300]);
        assert!(
            banded <= 2,
            "k {k}: {banded} samples differ inside the band"
        );
    }
}

#[test]
fn zero_vectors_and_missing_rows_get_their_documented_values() {
    // A zero vector has cosine 0, so its bucket is 1 + #{b ≤ 0}; a missing side gives 0.
    let t = tables(5);
    let bounds = [-0.5, -0.25, 0.0, 0.25];
    let batch = [
        [3, 5],
        [3, 0],
        [0, 5],
        [MISSING, 0],
        [0, MISSING],
        [MISSING, MISSING],
    ];
    let gpu = gpu();
    let target = gpu.storage_from("similarity target", &[POISON; 8]);
    let op = SimilarityOp::new(
        gpu,
        &t.users,
        &t.items,
        t.dim,
        Measure::Cosine,
        &bounds,
        8,
        &target,
        1,
    )
    .expect("op");
    op.set_batch(gpu, &batch, &[1]).expect("batch");
    wgrec::kernels::run_once(gpu, |pass| op.record(gpu, pass));
    let got: Vec<u32> = gpu.read(&target, 0, 8).expect("readback");
    assert_eq!(got, vec![POISON, 4, 4, 4, 0, 0, 0, POISON]);
}

#[test]
fn an_empty_batch_writes_nothing() {
    let t = tables(6);
    let gpu = gpu();
    let target = gpu.storage_from("similarity target", &[POISON; 40]);
    let op = SimilarityOp::new(
        gpu,
        &t.users,
        &t.items,
        t.dim,
        Measure::Cosine,
        &[0.0],
        32,
        &target,
        2,
    )
    .expect("op");
    op.set_batch(gpu, &pairs(&mut Rng::new(7), 32), &[0])
        .expect("batch");
    op.set_batch(gpu, &[], &[0, 3]).expect("empty batch");
    wgrec::kernels::run_once(gpu, |pass| op.record(gpu, pass));
    let got: Vec<u32> = gpu.read(&target, 0, 40).expect("readback");
    assert!(got.iter().all(|&w| w == POISON), "an empty batch wrote");
}

#[test]
fn similarity_rejects_bad_inputs_with_the_reason() {
    let t = tables(8);
    let gpu = gpu();
    let target = gpu.storage_from("similarity target", &[POISON; 10]);
    let new = |bounds: &[f32]| {
        SimilarityOp::new(
            gpu,
            &t.users,
            &t.items,
            t.dim,
            Measure::Dot,
            bounds,
            8,
            &target,
            2,
        )
    };
    for bad in [&[][..], &[0.5, 0.1][..], &[0.1, 0.1][..], &[f32::NAN][..]] {
        let err = new(bad).map(|_| ()).expect_err("bad boundaries");
        assert!(err.to_string().contains("strictly ascending"), "{err}");
    }
    let op = new(&[0.0]).expect("op");
    let err = op
        .set_batch(gpu, &[[50, 0]], &[0])
        .map(|_| ())
        .expect_err("user out of range");
    assert!(err.to_string().contains("sample 0: rows (50, 0)"), "{err}");
    let err = op
        .set_batch(gpu, &[[0, 0]; 3], &[8])
        .map(|_| ())
        .expect_err("overrun");
    assert!(
        err.to_string().contains("overruns the 10-word target"),
        "{err}"
    );
    let err = op
        .set_batch(gpu, &[[0, 0]; 9], &[0])
        .map(|_| ())
        .expect_err("too many");
    assert!(err.to_string().contains("exceed"), "{err}");
    let mut bad = t.users.clone();
    bad[2 * t.dim + 4] = f32::INFINITY;
    let err = SimilarityOp::new(
        gpu,
        &bad,
        &t.items,
        t.dim,
        Measure::Dot,
        &[0.0],
        8,
        &target,
        1,
    )
    .map(|_| ())
    .expect_err("infinite user value");
    assert!(err.to_string().contains("users: row 2 column 4"), "{err}");
}

#[test]
fn similarity_params_match_their_wgsl_layout() {
    assert_layout(
        &shaders::CONTENT,
        "SimilarityParams",
        size_of::<SimilarityParams>(),
        offsets!(SimilarityParams: batch, dim, copies, k, measure, users, items),
    );
}
