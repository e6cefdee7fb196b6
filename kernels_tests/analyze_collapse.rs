//! The collapse section's GPU path (`wgrec::analyze::collapse::gram`): Grams `EᵀE` through the GEMM
//! against the f64 host reference, and planted spectra through it.

use wgrec::analyze::collapse::gram::{
    gram_gpu, gram_gpu_in_launches, gram_magnitude, gram_reference, CHUNK_ROWS,
};
use wgrec::analyze::collapse::spectrum::Spectrum;
use wgrec::rng::Rng;

use crate::common::{gpu, Tolerance};

/// Each f32 sum on the GPU has at most CHUNK_ROWS products (the chunks are summed in f64): the
/// classic bound γ_n ≤ n·ε on a sequential sum of n rounded products gives (CHUNK_ROWS + 1)·ε₃₂
/// times Σ|E_pi E_pj|, whatever the order the shader sums in.
fn tolerance() -> Tolerance {
    Tolerance {
        relative: (CHUNK_ROWS as f64 + 1.0) * f32::EPSILON as f64,
        absolute: 0.0,
    }
}

fn random(rows: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..rows * dim).map(|_| rng.uniform(-1.0, 1.0)).collect()
}

#[test]
fn collapse_gram_matches_reference_at_awkward_sizes() {
    let gpu = gpu();
    for (i, &(rows, dim)) in [
        (1, 12),
        (7, 12),
        (1000, 12),
        (1, 48),
        (7, 48),
        (1000, 48),
        (257, 4),
    ]
    .iter()
    .enumerate()
    {
        let e = random(rows, dim, 100 + i as u64);
        // A second matrix of the same shape in the same batch: a different scale, so a mix-up of
        // the two shows.
        let w: Vec<f32> = e.iter().map(|x| 0.25 * x).collect();
        let grams = gram_gpu(gpu, &[&e, &w], rows, dim).expect("gram");
        for (g, m) in grams.iter().zip([&e, &w]) {
            let (want, mag) = (gram_reference(m, rows, dim), gram_magnitude(m, rows, dim));
            assert_eq!(g.len(), dim * dim);
            for k in 0..dim * dim {
                let what = format!("gram {rows}×{dim}");
                tolerance().check(&what, k, g[k] as f32, want[k], mag[k]);
                // The f64 sum of f32 chunk results: also finite (NaN-poisoned output unwritten).
                assert!(g[k].is_finite());
            }
        }
    }
}

#[test]
fn collapse_gram_of_no_rows_is_zero_and_a_bad_shape_is_an_error() {
    let gpu = gpu();
    let grams = gram_gpu(gpu, &[&[]], 0, 12).expect("empty");
    assert_eq!(grams, vec![vec![0.0; 144]]);
    let err = gram_gpu(gpu, &[&[1.0; 10]], 3, 4).expect_err("10 floats are not 3 × 4");
    assert!(err.to_string().contains("3 × 4"), "{err}");
}

#[test]
fn collapse_gram_split_over_launches_matches_one_launch() {
    let gpu = gpu();
    // 1000 rows are 4 chunks; two matrices make 8 GEMM tables, and 3 per launch puts a launch
    // across the two matrices. The same chunk sums in the same f64 order: identical bits.
    let e = random(1000, 12, 9);
    let w: Vec<f32> = e.iter().map(|x| x * x).collect();
    let whole = gram_gpu(gpu, &[&e, &w], 1000, 12).expect("gram");
    for per_launch in [1, 3, 8] {
        let split = gram_gpu_in_launches(gpu, &[&e, &w], 1000, 12, per_launch).expect("gram");
        assert_eq!(split, whole, "{per_launch} chunks per launch");
    }
}

#[test]
fn collapse_gram_is_bitwise_deterministic() {
    let gpu = gpu();
    let e = random(700, 48, 7);
    let a = gram_gpu(gpu, &[&e], 700, 48).expect("gram");
    let b = gram_gpu(gpu, &[&e], 700, 48).expect("gram");
    let bits = |g: &[f64]| g.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&a[0]), bits(&b[0]));
}

/// `E = U diag(s) Vᵀ` (`n × d`) from seeded random orthonormal columns (Gram–Schmidt in f64).
fn planted(n: usize, d: usize, s: &[f64], seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut basis = |len: usize| -> Vec<Vec<f64>> {
        let mut q: Vec<Vec<f64>> = Vec::new();
        while q.len() < s.len() {
            let mut v: Vec<f64> = (0..len).map(|_| rng.uniform(-1.0, 1.0) as f64).collect();
            for _ in 0..2 {
                for u in &q {
                    let dot: f64 = u.iter().zip(&v).map(|(a, b)| a * b).sum();
                    v.iter_mut().zip(u).for_each(|(x, a)| *x -= dot * a);
                }
            }
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            q.push(v.into_iter().map(|x| x / norm).collect());
        }
        q
    };
    let (u, v) = (basis(n), basis(d));
    (0..n * d)
        .map(|i| {
            (0..s.len())
                .map(|k| u[k][i / d] * s[k] * v[k][i % d])
                .sum::<f64>() as f32
        })
        .collect()
}

#[test]
fn collapse_planted_rank_survives_the_gpu_gram() {
    let gpu = gpu();
    // Squaring into an f32 Gram leaves a noise floor near √(CHUNK_ROWS·ε₃₂)·σ₁ ≈ 4e-3·σ₁ for the
    // planted zeros (the module docs' resolution); the planted values sit far above it.
    let floor = (CHUNK_ROWS as f64 * f32::EPSILON as f64).sqrt();
    for (n, d, s) in [
        (1000, 48, vec![1.0]),
        (1000, 48, vec![2.0, 1.0, 0.25]),
        (7, 12, vec![1.0, 0.5, 0.5]),
        (300, 12, (0..12).map(|k| 0.8f64.powi(k)).collect::<Vec<_>>()),
    ] {
        let e = planted(n, d, &s, n as u64 + d as u64);
        let g = gram_gpu(gpu, &[&e], n, d).expect("gram");
        let sp = Spectrum::from_gram(&g[0], d, n, "planted").expect("spectrum");
        let above = sp.sigma.iter().filter(|&&x| x > floor * s[0]).count();
        assert_eq!(above, s.len(), "{n}×{d}: {:?}", sp.sigma);
        for (k, want) in s.iter().enumerate() {
            // λ errs by ≲ floor²·σ₁², so σ_k by ≲ floor²·σ₁²/(2σ_k): well under 1e-3 relative here.
            assert!(
                (sp.sigma[k] - want).abs() <= 1e-3 * want,
                "σ_{k} {} vs {want}",
                sp.sigma[k]
            );
        }
        let ia = s.iter().sum::<f64>() / s[0];
        // At most d − r noise values each under the floor.
        let bound = (d - s.len()) as f64 * floor + 1e-3 * ia;
        assert!((sp.ia - ia).abs() <= bound, "{n}×{d}: IA {} vs {ia}", sp.ia);
    }
}
