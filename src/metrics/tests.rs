//! Metrics against scikit-learn (tests/fixtures/metrics.json, written by
//! tests/fixtures/make_metrics_fixtures.py), against an O(n²) pair count, and their invariants.

use super::*;
use crate::rng::Rng;
use proptest::prelude::*;
use serde::Deserialize;

#[derive(Deserialize)]
pub(super) struct Fixture {
    pub(super) cases: Vec<Case>,
}

#[derive(Deserialize)]
pub(super) struct Case {
    pub(super) name: String,
    pub(super) rows: usize,
    pub(super) tasks: usize,
    pub(super) predictions: Vec<f64>,
    pub(super) labels: Vec<f64>,
    pub(super) weights: Option<Vec<f64>>,
    /// Each row's user id for GAUC (the fixture's key is `groups`, sklearn-side wording).
    #[serde(rename = "groups")]
    pub(super) users: Option<Vec<u64>>,
    pub(super) expected: Vec<Expected>,
}

#[derive(Deserialize)]
pub(super) struct Expected {
    auc: Option<f64>,
    gauc: Option<f64>,
    #[serde(rename = "gauc_groups_used")]
    gauc_users_used: Option<usize>,
    #[serde(rename = "gauc_groups_skipped")]
    gauc_users_skipped: Option<usize>,
    logloss: Option<f64>,
    calibration: Option<f64>,
}

pub(super) fn fixture() -> Fixture {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/metrics.json");
    let text = std::fs::read_to_string(path).expect("fixture written by make_metrics_fixtures.py");
    serde_json::from_str(&text).expect("fixture parses")
}

pub(super) fn f32s(values: &[f64]) -> Vec<f32> {
    // The fixture's values are float32s widened to float64: narrowing them back is exact.
    values.iter().map(|&v| v as f32).collect()
}

/// Within 1e-12 relative to max(1, |expected|): scikit-learn sums with NumPy's pairwise sums and
/// integrates the ROC curve by trapezoids, we sum compensated pairs; both are a few ulps from exact.
fn assert_close(case: &str, what: &str, got: Option<f64>, expected: Option<f64>) {
    match (got, expected) {
        (Some(g), Some(e)) => assert!(
            (g - e).abs() <= 1e-12 * e.abs().max(1.0),
            "{case}: {what} = {g:.17}, scikit-learn {e:.17} (diff {:e})",
            g - e
        ),
        (None, None) => {}
        _ => panic!("{case}: {what} = {got:?}, scikit-learn {expected:?}"),
    }
}

pub(super) fn check_task(case: &Case, task: usize, got: &TaskMetrics) {
    let e = &case.expected[task];
    let name = format!("{} task {task}", case.name);
    assert_eq!(got.rows, case.rows, "{name}: rows");
    assert_close(&name, "auc", got.auc, e.auc);
    assert_close(&name, "logloss", got.logloss, e.logloss);
    assert_close(&name, "calibration", got.calibration, e.calibration);
    if case.users.is_some() {
        assert_close(&name, "gauc", got.gauc.map(|g| g.value), e.gauc);
        if let Some(g) = got.gauc {
            assert_eq!(Some(g.users_used), e.gauc_users_used, "{name}: users used");
            assert_eq!(
                Some(g.users_skipped),
                e.gauc_users_skipped,
                "{name}: users skipped"
            );
        }
    }
}

#[test]
fn accumulator_matches_scikit_learn_over_uneven_batches() {
    for case in fixture().cases {
        let (p, y) = (f32s(&case.predictions), f32s(&case.labels));
        let w = case.weights.as_deref().map(f32s);
        let narrow: Option<Vec<u32>> = case
            .users
            .as_ref()
            .and_then(|g| g.iter().map(|&id| u32::try_from(id).ok()).collect());
        let mut acc = MetricsAccumulator::new(case.tasks);
        // 337 rows per batch: not a divisor of any case's row count, so the last batch is short.
        let batch_rows = 337;
        for start in (0..case.rows).step_by(batch_rows) {
            let end = (start + batch_rows).min(case.rows);
            let (a, b) = (start * case.tasks, end * case.tasks);
            let users = match (&narrow, &case.users) {
                (Some(g32), _) => Some(UserIds::U32(&g32[start..end])),
                (None, Some(g64)) => Some(UserIds::U64(&g64[start..end])),
                (None, None) => None,
            };
            acc.push(&Batch {
                predictions: &p[a..b],
                labels: &y[a..b],
                weights: w.as_deref().map(|w| &w[start..end]),
                users,
            })
            .unwrap();
        }
        assert_eq!(acc.rows(), case.rows);
        for (task, got) in acc.finish().iter().enumerate() {
            check_task(&case, task, got);
        }
    }
}

#[test]
fn one_shot_functions_match_scikit_learn() {
    for case in fixture().cases.into_iter().filter(|c| c.tasks == 1) {
        let (p, y) = (f32s(&case.predictions), f32s(&case.labels));
        let w = case.weights.as_deref().map(f32s);
        let (w, e, name) = (w.as_deref(), &case.expected[0], case.name.as_str());
        assert_close(name, "auc", auc(&p, &y, w).unwrap(), e.auc);
        assert_close(name, "logloss", logloss(&p, &y, w).unwrap(), e.logloss);
        assert_close(
            name,
            "calibration",
            calibration(&p, &y, w).unwrap(),
            e.calibration,
        );
        if let Some(ids) = &case.users {
            let got = gauc(&p, &y, UserIds::U64(ids), w).unwrap();
            assert_close(name, "gauc", got.map(|g| g.value), e.gauc);
        }
    }
}

#[test]
fn auc_counts_ties_as_half_and_merges_signed_zeros() {
    // scikit-learn's documented example: 0.75.
    let y = [0.0, 0.0, 1.0, 1.0];
    assert_eq!(auc(&[0.1, 0.4, 0.35, 0.8], &y, None).unwrap(), Some(0.75));
    assert_eq!(auc(&[0.5, 0.5], &[1.0, 0.0], None).unwrap(), Some(0.5));
    assert_eq!(auc(&[-0.0, 0.0], &[1.0, 0.0], None).unwrap(), Some(0.5));
    assert_eq!(auc(&[0.0, -0.0], &[1.0, 0.0], None).unwrap(), Some(0.5));
    // Infinite scores are ordinary (extreme) scores for AUC.
    let inf = f32::INFINITY;
    assert_eq!(auc(&[-inf, inf], &[0.0, 1.0], None).unwrap(), Some(1.0));
}

#[test]
fn logloss_clips_like_scikit_learn_at_float64_epsilon() {
    // A certain and wrong prediction costs -ln(2^-52), not -ln(1e-15).
    let got = logloss(&[1.0, 0.0], &[0.0, 1.0], None).unwrap().unwrap();
    assert_eq!(got, -f64::EPSILON.ln());
    let got = logloss(&[1.0, 0.0], &[1.0, 0.0], None).unwrap().unwrap();
    assert_eq!(got, -(1.0 - f64::EPSILON).ln());
}

#[test]
fn empty_and_single_class_inputs_give_none_not_panics() {
    let acc = MetricsAccumulator::new(2);
    for m in acc.finish() {
        assert_eq!(m.rows, 0);
        assert_eq!(
            (m.auc, m.gauc, m.logloss, m.calibration),
            (None, None, None, None)
        );
        assert_eq!((m.mean_prediction, m.positive_rate), (None, None));
    }
    let mut acc = MetricsAccumulator::new(1);
    acc.push(&Batch {
        predictions: &[],
        labels: &[],
        weights: None,
        users: None,
    })
    .unwrap();
    assert_eq!(acc.finish()[0].rows, 0);
    assert_eq!(auc(&[], &[], None).unwrap(), None);
    assert_eq!(gauc(&[], &[], UserIds::U32(&[]), None).unwrap(), None);
    assert_eq!(logloss(&[], &[], None).unwrap(), None);
    let ones = [1.0; 5];
    assert_eq!(auc(&[0.1, 0.2, 0.3, 0.4, 0.5], &ones, None).unwrap(), None);
    assert_eq!(calibration(&[0.1; 5], &[0.0; 5], None).unwrap(), None);
    // Positives with zero weight are no positives.
    let w = [0.0, 1.0];
    assert_eq!(auc(&[0.9, 0.1], &[1.0, 0.0], Some(&w)).unwrap(), None);
    assert_eq!(logloss(&[0.5], &[1.0], Some(&[0.0])).unwrap(), None);
}

fn message(result: Result<()>) -> String {
    result.expect_err("input must be rejected").to_string()
}

#[test]
fn a_nan_prediction_is_an_error_naming_its_row_and_task() {
    let mut acc = MetricsAccumulator::new(2);
    let ok = Batch {
        predictions: &[0.5; 10],
        labels: &[0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0],
        weights: None,
        users: None,
    };
    acc.push(&ok).unwrap();
    let mut p = [0.5f32; 6];
    p[3] = f32::NAN; // row 1 of this batch, task 1: row 6 of the stream.
    let err = message(acc.push(&Batch {
        predictions: &p,
        labels: &[0.0; 6],
        ..ok
    }));
    assert!(err.contains("row 6 (task 1) is NaN"), "{err}");
    assert_eq!(acc.rows(), 5, "a rejected batch appends nothing");
    let err = auc(&[0.1, f32::NAN], &[0.0, 1.0], None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("row 1 is NaN"), "{err}");
}

#[test]
fn bad_labels_weights_shapes_and_probabilities_are_errors() {
    let e = logloss(&[0.5, 1.5], &[0.0, 1.0], None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("row 1 is 1.5"), "{e}");
    let e = auc(&[0.5, 0.5], &[0.0, 0.5], None).unwrap_err().to_string();
    assert!(e.contains("label for row 1 is 0.5"), "{e}");
    let e = auc(&[0.5, 0.5], &[0.0, 1.0], Some(&[1.0, -1.0])).unwrap_err();
    assert!(e.to_string().contains("weight for row 1 is -1"), "{e}");
    let e = auc(&[0.5], &[0.0, 1.0], None).unwrap_err().to_string();
    assert!(e.contains("labels has 2 values, expected 1"), "{e}");
    let mut acc = MetricsAccumulator::new(3);
    let e = message(acc.push(&Batch {
        predictions: &[0.5; 7],
        labels: &[0.0; 7],
        weights: None,
        users: None,
    }));
    assert!(e.contains("predictions has 7 values, expected 6"), "{e}");
    let mut acc = MetricsAccumulator::new(1);
    let first = Batch {
        predictions: &[0.5, 0.2],
        labels: &[0.0, 1.0],
        weights: Some(&[1.0, 2.0]),
        users: None,
    };
    acc.push(&first).unwrap();
    let e = message(acc.push(&Batch {
        weights: None,
        ..first
    }));
    assert!(e.contains("row 2 changes whether weights or groups"), "{e}");
    let e = MetricsAccumulator::new(0)
        .push(&first)
        .unwrap_err()
        .to_string();
    assert!(e.contains("at least one task"), "{e}");
}

/// Σ over positive–negative pairs, O(n²): the definition AUC is checked against.
fn brute_force_auc(scores: &[f32], labels: &[bool], weights: &[f32]) -> Option<f64> {
    let (mut pairs, mut pos, mut neg) = (0.0, 0.0, 0.0);
    for i in 0..scores.len() {
        let wi = f64::from(weights[i]);
        if labels[i] {
            pos += wi;
        } else {
            neg += wi;
        }
        for j in 0..scores.len() {
            if labels[i] && !labels[j] {
                let order = match scores[i].partial_cmp(&scores[j]).unwrap() {
                    std::cmp::Ordering::Greater => 1.0,
                    std::cmp::Ordering::Equal => 0.5,
                    std::cmp::Ordering::Less => 0.0,
                };
                pairs += wi * f64::from(weights[j]) * order;
            }
        }
    }
    (pos > 0.0 && neg > 0.0).then(|| pairs / (pos * neg))
}

fn as_f32(labels: &[bool]) -> Vec<f32> {
    labels.iter().map(|&y| if y { 1.0 } else { 0.0 }).collect()
}

proptest! {
    #[test]
    fn auc_equals_the_pair_count(
        rows in prop::collection::vec((0u8..12, any::<bool>(), 0u8..4), 0..60),
    ) {
        let scores: Vec<f32> = rows.iter().map(|r| f32::from(r.0) / 8.0).collect();
        let labels: Vec<bool> = rows.iter().map(|r| r.1).collect();
        let weights: Vec<f32> = rows.iter().map(|r| f32::from(r.2) * 0.75).collect();
        let got = auc(&scores, &as_f32(&labels), Some(&weights)).unwrap();
        let want = brute_force_auc(&scores, &labels, &weights);
        prop_assert_eq!(got.is_some(), want.is_some());
        if let (Some(g), Some(w)) = (got, want) {
            prop_assert!((g - w).abs() < 1e-12, "{} vs {}", g, w);
        }
    }

    #[test]
    fn auc_is_invariant_under_monotone_transforms(
        rows in prop::collection::vec((0u16..40, any::<bool>()), 0..200),
    ) {
        let labels: Vec<f32> = as_f32(&rows.iter().map(|r| r.1).collect::<Vec<_>>());
        let raw: Vec<f32> = rows.iter().map(|r| f32::from(r.0)).collect();
        // Strictly increasing on 0..40 and injective in f32 (values far apart), ties kept.
        let squashed: Vec<f32> = raw.iter().map(|&k| (f64::from(k) / 9.0).tanh() as f32).collect();
        let cubed: Vec<f32> = raw.iter().map(|&k| (f64::from(k) - 20.0).powi(3) as f32).collect();
        let base = auc(&raw, &labels, None).unwrap();
        prop_assert_eq!(auc(&squashed, &labels, None).unwrap(), base);
        prop_assert_eq!(auc(&cubed, &labels, None).unwrap(), base);
    }

    #[test]
    fn auc_of_one_minus_p_is_one_minus_auc(
        rows in prop::collection::vec((0u8..=64, any::<bool>(), 1u8..5), 0..200),
        weighted in any::<bool>(),
    ) {
        // k / 64 and 1 − k / 64 are exact in f32, so the complement reverses the order exactly.
        let p: Vec<f32> = rows.iter().map(|r| f32::from(r.0) / 64.0).collect();
        let q: Vec<f32> = p.iter().map(|&p| 1.0 - p).collect();
        let labels = as_f32(&rows.iter().map(|r| r.1).collect::<Vec<_>>());
        let w: Vec<f32> = rows.iter().map(|r| f32::from(r.2) * 0.3).collect();
        let w = weighted.then_some(w.as_slice());
        match (auc(&p, &labels, w).unwrap(), auc(&q, &labels, w).unwrap()) {
            (Some(a), Some(b)) => prop_assert!((a + b - 1.0).abs() < 1e-12, "{} + {}", a, b),
            (a, b) => prop_assert_eq!(a, b),
        }
    }
}

#[test]
fn gauc_of_one_user_is_its_auc_and_u32_ids_equal_u64_ids() {
    let mut rng = Rng::new(5);
    let n = 777;
    let p: Vec<f32> = (0..n).map(|_| rng.uniform(0.0, 1.0)).collect();
    let y: Vec<f32> = (0..n).map(|_| (rng.below(3) == 0) as u8 as f32).collect();
    let g32: Vec<u32> = (0..n).map(|_| rng.below(30) as u32).collect();
    let g64: Vec<u64> = g32.iter().map(|&g| u64::from(g)).collect();
    let one = gauc(&p, &y, UserIds::U32(&vec![7; n]), None)
        .unwrap()
        .unwrap();
    assert_eq!(Some(one.value), auc(&p, &y, None).unwrap());
    assert_eq!((one.users_used, one.users_skipped), (1, 0));
    let a = gauc(&p, &y, UserIds::U32(&g32), None).unwrap();
    let b = gauc(&p, &y, UserIds::U64(&g64), None).unwrap();
    assert_eq!(a, b);
}
