//! `simhash` (content.wgsl, METHODS.md §1.3) against its f64 reference.
//!
//! A code bit is a sign test, so the comparison is exact except where the f32 dot product can
//! legitimately land on the other side of zero: sequential f32 summation of D products has error
//! at most γ_D·Σ|x_i w_i| with γ_D = D·u/(1 − D·u), u = 2⁻²⁴ (Higham, Accuracy and Stability,
//! §3.1); the band used is |dot| ≤ D·2⁻²³·Σ|x_i w_i|, twice that, which also covers a fused
//! multiply-add or any summation order the driver picks. Every bit outside the band must match;
//! bits inside are counted and bounded.

use std::mem::size_of;

use wgrec::kernels::content::{hyperplanes, simhash_reference, SimHash, SimHashParams};
use wgrec::rng::Rng;
use wgrec::shaders;

use crate::common::{gpu, random_f32};
use crate::registry::{assert_layout, offsets};

/// Whether bit `j` of the code of `x` is allowed to differ from the reference (inside the band).
fn in_band(x: &[f32], plane: &[f32]) -> bool {
    let dot: f64 = x
        .iter()
        .zip(plane)
        .map(|(&a, &b)| a as f64 * b as f64)
        .sum();
    let mag: f64 = x
        .iter()
        .zip(plane)
        .map(|(&a, &b)| (a as f64 * b as f64).abs())
        .sum();
    dot.abs() <= x.len() as f64 * 2f64.powi(-23) * mag
}

/// Compares `got` with the reference bit by bit; returns how many bits fell inside the band.
fn compare(vectors: &[f32], dim: usize, planes: &[f32], bits: u32, got: &[u32]) -> usize {
    let want = simhash_reference(vectors, dim, planes, bits);
    assert_eq!(got.len(), want.len(), "one code per vector");
    let mut banded = 0;
    for (r, x) in vectors.chunks_exact(dim).enumerate() {
        if bits < 32 {
            assert!(
                got[r] < 1 << bits,
                "code {r} = {:#x}: unwritten or stray bits",
                got[r]
            );
        }
        for j in 0..bits as usize {
            let (g, w) = ((got[r] >> j) & 1, (want[r] >> j) & 1);
            if in_band(x, &planes[j * dim..(j + 1) * dim]) {
                banded += usize::from(g != w);
            } else {
                assert_eq!(g, w, "vector {r} bit {j}: gpu {g} vs reference {w}");
            }
        }
    }
    banded
}

fn run(n: usize, dim: usize, bits: u32, chunk_rows: u32, seed: u64) {
    let gpu = gpu();
    let mut rng = Rng::new(seed);
    let mut vectors = random_f32(&mut rng, n * dim);
    // Hot rows: every seventh vector is a copy of vector 0, so many inputs share one code.
    for r in (7..n).step_by(7) {
        let (head, tail) = vectors.split_at_mut(r * dim);
        tail[..dim].copy_from_slice(&head[..dim]);
    }
    let planes = hyperplanes(seed + 1, bits, dim);
    let mut hash = SimHash::new(gpu, dim, bits, &planes).expect("simhash");
    hash.set_chunk_rows(chunk_rows);
    let got = hash.codes(gpu, &vectors).expect("codes");
    assert_eq!(
        hash.codes(gpu, &vectors).expect("codes"),
        got,
        "same input, same codes"
    );
    let banded = compare(&vectors, dim, &planes, bits, &got);
    // Random inputs put a dot within ~D·2⁻²³ relative of 0 with probability ~1e-5 per bit.
    assert!(
        banded <= 2,
        "{banded} bits differ inside the band: too many"
    );
    for r in (7..n).step_by(7) {
        assert_eq!(got[r], got[0], "hot copy {r} of vector 0");
    }
}

#[test]
fn simhash_matches_reference_across_chunks_with_awkward_sizes() {
    run(1_001, 37, 32, 257, 1);
    run(130, 5, 13, 64, 2);
    run(65, 128, 1, 1_000, 3);
}

#[test]
fn simhash_of_a_zero_vector_sets_every_bit() {
    // w·0 = 0 exactly in any arithmetic, and h = 1[dot ≥ 0].
    let dim = 9;
    let planes = hyperplanes(4, 20, dim);
    let hash = SimHash::new(gpu(), dim, 20, &planes).expect("simhash");
    let got = hash.codes(gpu(), &vec![0.0; 3 * dim]).expect("codes");
    assert_eq!(got, vec![(1 << 20) - 1; 3]);
}

#[test]
fn simhash_of_no_vectors_is_empty() {
    let planes = hyperplanes(5, 8, 4);
    let hash = SimHash::new(gpu(), 4, 8, &planes).expect("simhash");
    assert!(hash.codes(gpu(), &[]).expect("codes").is_empty());
}

#[test]
fn hyperplanes_are_deterministic_and_standard_normal() {
    let a = hyperplanes(11, 32, 301);
    let b = hyperplanes(11, 32, 301);
    assert_eq!(
        a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    assert_ne!(a, hyperplanes(12, 32, 301));
    let n = a.len() as f64;
    let mean = a.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = a.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    // n = 9,632 draws: the mean's σ is 1/√n ≈ 0.010, the variance's √(2/n) ≈ 0.014; 5σ each.
    assert!(mean.abs() < 0.051, "mean {mean}");
    assert!((var - 1.0).abs() < 0.072, "variance {var}");
}

/// A unit vector at angle `theta` from unit `x`: cos θ·x + sin θ·x⊥, x⊥ a random direction
/// orthogonalised against x (in f64).
fn at_angle(rng: &mut Rng, x: &[f64], theta: f64) -> Vec<f64> {
    let r: Vec<f64> = random_f32(rng, x.len()).iter().map(|&v| v as f64).collect();
    let along: f64 = r.iter().zip(x).map(|(a, b)| a * b).sum();
    let perp: Vec<f64> = r.iter().zip(x).map(|(a, b)| a - along * b).collect();
    let norm = perp.iter().map(|v| v * v).sum::<f64>().sqrt();
    x.iter()
        .zip(&perp)
        .map(|(a, p)| theta.cos() * a + theta.sin() * p / norm)
        .collect()
}

#[test]
fn hamming_distance_estimates_the_angle() {
    // Goemans–Williamson: P(h_j(x) ≠ h_j(y)) = θ/π for a Gaussian hyperplane. Over n = pairs ×
    // bits comparisons the differing fraction is binomial; 5σ with σ = √(p(1−p)/n). Each θ uses
    // fresh planes, so pairs and planes are independent draws.
    let (dim, bits, pairs) = (24, 32u32, 400);
    let mut rng = Rng::new(21);
    for (k, theta) in [0.2f64, 0.9, 1.6, 2.5, 3.0].into_iter().enumerate() {
        let planes = hyperplanes(100 + k as u64, bits, dim);
        let hash = SimHash::new(gpu(), dim, bits, &planes).expect("simhash");
        let mut vectors = Vec::with_capacity(2 * pairs * dim);
        for _ in 0..pairs {
            let x: Vec<f64> = random_f32(&mut rng, dim)
                .iter()
                .map(|&v| v as f64)
                .collect();
            let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt();
            let x: Vec<f64> = x.iter().map(|v| v / norm).collect();
            let y = at_angle(&mut rng, &x, theta);
            vectors.extend(x.iter().chain(&y).map(|&v| v as f32));
        }
        let codes = hash.codes(gpu(), &vectors).expect("codes");
        let differ: u32 = codes.chunks(2).map(|c| (c[0] ^ c[1]).count_ones()).sum();
        let n = (pairs as u32 * bits) as f64;
        let (p, got) = (theta / std::f64::consts::PI, differ as f64 / n);
        let sigma = (p * (1.0 - p) / n).sqrt();
        assert!(
            (got - p).abs() <= 5.0 * sigma,
            "θ = {theta}: fraction {got} vs θ/π = {p} (5σ = {})",
            5.0 * sigma
        );
    }
}

#[test]
fn simhash_rejects_bad_inputs_with_the_reason() {
    let gpu = gpu();
    let planes = hyperplanes(1, 4, 3);
    for bits in [0, 33] {
        let err = SimHash::new(gpu, 3, bits, &planes)
            .map(|_| ())
            .expect_err("bad bits");
        assert!(err.to_string().contains("1..=32"), "{err}");
    }
    let err = SimHash::new(gpu, 3, 5, &planes)
        .map(|_| ())
        .expect_err("planes for 4 bits");
    assert!(err.to_string().contains("for 5 bits"), "{err}");
    let hash = SimHash::new(gpu, 3, 4, &planes).expect("simhash");
    let err = hash.codes(gpu, &[0.5; 4]).map(|_| ()).expect_err("ragged");
    assert!(err.to_string().contains("whole rows of 3"), "{err}");
    let err = hash
        .codes(gpu, &[0.5, 0.5, 0.5, 0.5, f32::NAN, 0.5])
        .map(|_| ())
        .expect_err("NaN");
    assert!(err.to_string().contains("row 1 column 1"), "{err}");
}

#[test]
fn simhash_params_match_their_wgsl_layout() {
    assert_layout(
        &shaders::CONTENT,
        "SimHashParams",
        size_of::<SimHashParams>(),
        offsets!(SimHashParams: rows, dim, bits),
    );
}
