//! The spectrum and IA against planted spectra (f64 host Gram), the field matrices, the report.
//! The GPU Gram against the host reference is in `kernels_tests/analyze_collapse.rs`.

use std::path::Path;

use super::gram::gram_reference;
use super::spectrum::Spectrum;
use super::usage::{field_matrix, FieldSource, FieldUsage};
use super::*;
use crate::kernels::embedding::MnsBase;
use crate::rng::Rng;

/// `cols` orthonormal columns of length `n` (row-major `n × cols`): Gram–Schmidt in f64 of seeded
/// uniform vectors (twice, so the columns are orthonormal to rounding).
fn orthonormal(n: usize, cols: usize, rng: &mut Rng) -> Vec<f64> {
    let mut q: Vec<Vec<f64>> = Vec::new();
    while q.len() < cols {
        let mut v: Vec<f64> = (0..n).map(|_| rng.uniform(-1.0, 1.0) as f64).collect();
        for _ in 0..2 {
            for u in &q {
                let dot: f64 = u.iter().zip(&v).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(u).for_each(|(x, a)| *x -= dot * a);
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        q.push(v);
    }
    (0..n * cols).map(|i| q[i % cols][i / cols]).collect()
}

/// `E = U diag(s) Vᵀ` (`n × d`, f32) with seeded orthonormal `U`, `V`: singular values `s`.
fn planted(n: usize, d: usize, s: &[f64], seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let (r, u, v) = (
        s.len(),
        orthonormal(n, s.len(), &mut rng),
        orthonormal(d, s.len(), &mut rng),
    );
    (0..n * d)
        .map(|i| {
            let (row, col) = (i / d, i % d);
            (0..r)
                .map(|k| u[row * r + k] * s[k] * v[col * r + k])
                .sum::<f64>() as f32
        })
        .collect()
}

fn spectrum_of(e: &[f32], n: usize, d: usize) -> Spectrum {
    Spectrum::from_gram(&gram_reference(e, n, d), d, n, "test").expect("spectrum")
}

/// Storing E in f32 perturbs it by ‖δE‖ ≤ ε₃₂‖E‖_F ≈ 1e-7‖E‖_F, which moves each σ by at most that
/// and lifts each planted zero to about that (the f64 Gram resolves it); 1e-5 · σ₁ leaves two
/// orders of margin, and IA (a sum of up to 48 such) is within 48 · 1e-5 < 1e-3.
const ZERO: f64 = 1e-5;

fn check_planted(n: usize, d: usize, s: &[f64], seed: u64) {
    let sp = spectrum_of(&planted(n, d, s, seed), n, d);
    assert_eq!(sp.sigma.len(), d);
    for (k, (&got, &want)) in sp.sigma.iter().zip(s).enumerate() {
        assert!(
            (got - want).abs() <= ZERO * s[0],
            "σ_{k}: {got} vs planted {want}"
        );
    }
    let above = sp.sigma.iter().filter(|&&x| x > ZERO * s[0]).count();
    assert_eq!(above, s.len(), "{n}×{d}: {:?}", sp.sigma);
    let ia = s.iter().sum::<f64>() / s[0];
    assert!((sp.ia - ia).abs() < 1e-3, "IA {} vs planted {ia}", sp.ia);
    assert!(!sp.all_zero);
}

#[test]
fn planted_rank_one_gives_one_singular_value_and_ia_one() {
    check_planted(200, 48, &[3.0], 1);
    check_planted(7, 12, &[0.5], 2);
}

#[test]
fn planted_rank_three_gives_three_singular_values_and_their_ia() {
    check_planted(1000, 48, &[2.0, 1.0, 0.25], 3);
    check_planted(13, 12, &[1.0, 0.9, 0.8], 4);
}

#[test]
fn planted_full_rank_gives_every_singular_value() {
    let s: Vec<f64> = (1..=12).map(|k| 1.0 / k as f64).collect();
    check_planted(40, 12, &s, 5);
    let s: Vec<f64> = (0..48).map(|k| 0.9f64.powi(k)).collect();
    check_planted(300, 48, &s, 6);
}

#[test]
fn an_identity_has_ia_equal_to_its_width() {
    for d in [1, 4, 12, 48] {
        let e: Vec<f32> = (0..d * d).map(|i| (i / d == i % d) as u8 as f32).collect();
        let sp = spectrum_of(&e, d, d);
        assert!((sp.ia - d as f64).abs() < 1e-12, "d {d}: IA {}", sp.ia);
        assert_eq!(sp.normalised(), vec![1.0; d]);
    }
}

#[test]
fn fewer_rows_than_width_caps_the_rank() {
    let mut rng = Rng::new(7);
    let e: Vec<f32> = (0..3 * 12).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let sp = spectrum_of(&e, 3, 12);
    assert_eq!(
        sp.sigma.iter().filter(|&&s| s > 0.0).count(),
        3,
        "{:?}",
        sp.sigma
    );
    assert!(sp.ia > 1.0 && sp.ia <= 3.0, "IA {}", sp.ia);
    let one = spectrum_of(&e[..12], 1, 12);
    assert_eq!(
        (one.ia, one.sigma.iter().filter(|&&s| s > 0.0).count()),
        (1.0, 1)
    );
}

#[test]
fn an_all_zero_or_empty_matrix_is_flagged_with_ia_zero() {
    let zero = spectrum_of(&[0.0; 5 * 8], 5, 8);
    assert!(zero.all_zero && zero.ia == 0.0);
    assert_eq!(zero.normalised(), vec![0.0; 8]);
    let empty = spectrum_of(&[], 0, 8);
    assert!(empty.all_zero && empty.ia == 0.0 && empty.sigma == vec![0.0; 8]);
}

#[test]
fn a_non_finite_gram_is_an_error_not_a_panic() {
    let mut g = gram_reference(&planted(10, 4, &[1.0, 0.5], 8), 10, 4);
    g[5] = f64::NAN;
    let err = Spectrum::from_gram(&g, 4, 10, "emb.0.x").expect_err("NaN");
    assert!(err.to_string().contains("emb.0.x"), "{err}");
    assert!(Spectrum::from_gram(&g[..15], 4, 10, "emb.0.x").is_err());
}

#[test]
fn the_spectrum_is_deterministic() {
    let e = planted(100, 48, &[1.0, 0.7, 0.3, 0.1], 9);
    let bits = |s: Spectrum| s.sigma.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(spectrum_of(&e, 100, 48)),
        bits(spectrum_of(&e, 100, 48))
    );
}

fn usage(source: FieldSource, counts: Vec<(u32, u64)>) -> FieldUsage {
    FieldUsage {
        name: "f".into(),
        kind: "numeric",
        source,
        counts,
    }
}

#[test]
fn a_numeric_field_sums_its_digit_rows_and_weights_by_frequency() {
    let bases = vec![
        MnsBase {
            radix: 2,
            digits: 3,
        },
        MnsBase {
            radix: 3,
            digits: 2,
        },
    ];
    let rows = MnsBase::rows(&bases) as usize;
    let mut rng = Rng::new(11);
    let table: Vec<f32> = (0..rows * 4).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let u = usage(FieldSource::Numeric(bases.clone()), vec![(0, 1), (5, 3)]);
    let at = (Path::new("ckpt"), "emb.0.f");
    let (plain, weighted) = field_matrix(&u, &table, [rows, 4], at).expect("matrix");
    assert_eq!(plain.len(), 2 * 4);
    for (i, &(v, count)) in u.counts.iter().enumerate() {
        for c in 0..4 {
            let want: f64 = MnsBase::digit_rows(&bases, v)
                .map(|r| table[r as usize * 4 + c] as f64)
                .sum();
            assert!((plain[i * 4 + c] as f64 - want).abs() < 1e-6);
            let w = want * (count as f64 / 4.0).sqrt();
            assert!((weighted[i * 4 + c] as f64 - w).abs() < 1e-6);
        }
    }
    let past = usage(FieldSource::Rows, vec![(rows as u32, 1)]);
    let err = field_matrix(&past, &table, [rows, 4], at).expect_err("row past the table");
    assert!(err.to_string().contains("emb.0.f"), "{err}");
    let mut nan = table.clone();
    nan[1] = f32::NAN;
    assert!(field_matrix(&usage(FieldSource::Rows, vec![(0, 1)]), &nan, [rows, 4], at).is_err());
}

#[test]
fn the_report_holds_every_number_of_the_json() {
    let field = |name: &str, ia: [f64; 2], all_zero: bool| FieldCollapse {
        name: name.into(),
        kind: "categorical".into(),
        rows_used: 17,
        uses: 4242,
        tables: ia
            .iter()
            .map(|&ia| FieldTable {
                ia,
                ia_weighted: ia * 0.5,
                all_zero,
                spectrum: vec![1.0, 0.25, 0.0],
            })
            .collect(),
        concat: FieldTable {
            ia: ia[0] + ia[1] + 0.125,
            ia_weighted: 1.0625,
            all_zero,
            spectrum: vec![1.0, 0.5],
        },
    };
    let c = summarise(
        vec![field("a", [2.5, 3.0], false), field("b", [0.0, 0.0], true)],
        &[12, 48],
    );
    assert_eq!((c.tables[0].mean_ia, c.tables[1].mean_ia), (2.5, 3.0));
    assert_eq!((c.mean_ia, c.mean_ia_weighted), (2.75, 1.375));
    // The side-by-side means leave the all-zero field out too.
    assert_eq!(
        (c.mean_ia_concat, c.mean_ia_concat_weighted),
        (5.625, 1.0625)
    );
    let md = c.markdown();
    for needle in [
        "2.5000 / 1.2500",
        "3.0000 / 1.5000",
        "(all-zero)",
        "width 12",
        "width 48",
        "2.7500",
        "1.3750",
        "| 17 | 4242 |",
        "5.6250 / 1.0625",
        "width 60",
        "1.0000e0 2.5000e-1 0.0000e0",
        "train",
    ] {
        assert!(md.contains(needle), "{needle:?} missing from\n{md}");
    }
}

#[test]
fn tables_side_by_side_keep_each_key_on_its_row() {
    // Two tables of widths 2 and 3 over three keys: row r of the concatenation is key r's row of
    // table 0 followed by its row of table 1, in both the plain and the weighted matrix.
    let t0: Vec<f32> = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let t1: Vec<f32> = (10..19).map(|v| v as f32).collect();
    let w0: Vec<f32> = t0.iter().map(|v| -v).collect();
    let w1: Vec<f32> = t1.iter().map(|v| -v).collect();
    let (plain, weighted, width) = super::concatenate(&[(t0, w0, 2), (t1, w1, 3)], 3);
    assert_eq!(width, 5);
    assert_eq!(
        plain,
        vec![1.0, 2.0, 10.0, 11.0, 12.0, 3.0, 4.0, 13.0, 14.0, 15.0, 5.0, 6.0, 16.0, 17.0, 18.0]
    );
    assert_eq!(weighted, plain.iter().map(|v| -v).collect::<Vec<f32>>());
}
