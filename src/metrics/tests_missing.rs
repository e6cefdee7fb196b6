//! Missing labels in the metrics: a row whose label of a task is −1 is left out of that task's
//! metrics only. Against scikit-learn (the fixture cases with unlabelled rows mixed in) and against
//! the same rows with the unlabelled ones dropped.

use super::tests::{check_task, f32s, fixture};
use super::*;
use crate::kernels::loss::MISSING_LABEL;
use crate::rng::Rng;

#[test]
fn unlabelled_rows_mixed_into_the_fixtures_leave_scikit_learns_metrics_unchanged() {
    for case in fixture().cases {
        let (p, y) = (f32s(&case.predictions), f32s(&case.labels));
        let w = case.weights.as_deref().map(f32s);
        let tasks = case.tasks;
        // Before about one row in three, a row without any label, with its own score, weight and
        // user (an existing user half the time, so GAUC's users see it and must skip it).
        let mut rng = Rng::new(case.rows as u64);
        let (mut pm, mut ym, mut wm, mut um) = (vec![], vec![], vec![], vec![]);
        for i in 0..case.rows {
            if rng.unit() < 0.3 {
                pm.extend((0..tasks).map(|_| rng.unit() as f32));
                ym.extend(std::iter::repeat_n(MISSING_LABEL, tasks));
                wm.push(rng.uniform(0.0, 5.0));
                let users = case.users.as_deref().unwrap_or(&[0]);
                um.push(users[rng.below(users.len() as u64) as usize]);
            }
            pm.extend_from_slice(&p[i * tasks..(i + 1) * tasks]);
            ym.extend_from_slice(&y[i * tasks..(i + 1) * tasks]);
            wm.push(w.as_ref().map_or(1.0, |w| w[i]));
            um.push(case.users.as_ref().map_or(0, |u| u[i]));
        }
        let rows = wm.len();
        assert!(rows > case.rows, "{}: rows were mixed in", case.name);
        let mut acc = MetricsAccumulator::new(tasks);
        for start in (0..rows).step_by(337) {
            let end = (start + 337).min(rows);
            acc.push(&Batch {
                predictions: &pm[start * tasks..end * tasks],
                labels: &ym[start * tasks..end * tasks],
                weights: w.is_some().then(|| &wm[start..end]),
                users: case.users.is_some().then(|| UserIds::U64(&um[start..end])),
            })
            .unwrap();
        }
        assert_eq!(acc.rows(), rows, "every row is pushed");
        for (task, got) in acc.finish().iter().enumerate() {
            check_task(&case, task, got);
        }
    }
}

/// Random scores, labels (missing with probability `missing[t]`), weights and users.
fn random_batch(
    rows: usize,
    missing: &[f64],
    seed: u64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<u64>) {
    let mut rng = Rng::new(seed);
    let tasks = missing.len();
    let p: Vec<f32> = (0..rows * tasks).map(|_| rng.unit() as f32).collect();
    let y = (0..rows * tasks)
        .map(|k| {
            if rng.unit() < missing[k % tasks] {
                MISSING_LABEL
            } else {
                (rng.unit() < 0.3 + 0.4 * p[k] as f64) as u8 as f32
            }
        })
        .collect();
    let w = (0..rows).map(|_| rng.uniform(0.1, 3.0)).collect();
    let u = (0..rows).map(|_| rng.below(40)).collect();
    (p, y, w, u)
}

#[test]
fn each_task_skips_only_its_own_unlabelled_rows() {
    let (rows, missing) = (1001, [0.2, 0.6, 0.0]);
    let (p, y, w, u) = random_batch(rows, &missing, 71);
    for weighted in [false, true] {
        let batch = Batch {
            predictions: &p,
            labels: &y,
            weights: weighted.then_some(&w[..]),
            users: Some(UserIds::U64(&u)),
        };
        let all = evaluate(&batch, 3).unwrap();
        for (t, got) in all.iter().enumerate() {
            // Task t alone, its unlabelled rows dropped by hand: the same metrics, bit for bit.
            let kept: Vec<usize> = (0..rows).filter(|&i| y[i * 3 + t] >= 0.0).collect();
            let pick = |v: &[f32], stride: usize, off: usize| -> Vec<f32> {
                kept.iter().map(|&i| v[i * stride + off]).collect()
            };
            let (pk, yk, wk) = (pick(&p, 3, t), pick(&y, 3, t), pick(&w, 1, 0));
            let uk: Vec<u64> = kept.iter().map(|&i| u[i]).collect();
            let want = evaluate(
                &Batch {
                    predictions: &pk,
                    labels: &yk,
                    weights: weighted.then_some(&wk[..]),
                    users: Some(UserIds::U64(&uk)),
                },
                1,
            )
            .unwrap();
            assert_eq!(got, &want[0], "task {t} weighted {weighted}");
            assert_eq!(got.rows, kept.len());
            // The one-shot forms skip the same rows.
            let yt: Vec<f32> = (0..rows).map(|i| y[i * 3 + t]).collect();
            let pt: Vec<f32> = (0..rows).map(|i| p[i * 3 + t]).collect();
            let wo = weighted.then_some(&w[..]);
            assert_eq!(auc(&pt, &yt, wo).unwrap(), want[0].auc);
            assert_eq!(logloss(&pt, &yt, wo).unwrap(), want[0].logloss);
            assert_eq!(calibration(&pt, &yt, wo).unwrap(), want[0].calibration);
            let g = gauc(&pt, &yt, UserIds::U64(&u), wo).unwrap();
            assert_eq!(g, want[0].gauc);
        }
    }
}

#[test]
fn a_task_without_a_labelled_row_reports_none_metrics() {
    let (p, mut y, _, u) = random_batch(64, &[0.1, 0.0], 72);
    for i in 0..64 {
        y[i * 2 + 1] = MISSING_LABEL;
    }
    let m = evaluate(
        &Batch {
            predictions: &p,
            labels: &y,
            weights: None,
            users: Some(UserIds::U64(&u)),
        },
        2,
    )
    .unwrap();
    assert!(m[0].rows > 0 && m[0].auc.is_some(), "{:?}", m[0]);
    let none = TaskMetrics {
        rows: 0,
        positives: 0,
        auc: None,
        gauc: None,
        logloss: None,
        mean_prediction: None,
        positive_rate: None,
        calibration: None,
    };
    assert_eq!(m[1], none);
    let missing = [MISSING_LABEL; 3];
    assert_eq!(auc(&[0.1, 0.5, 0.9], &missing, None).unwrap(), None);
    assert_eq!(logloss(&[0.1, 0.5, 0.9], &missing, None).unwrap(), None);
}

#[test]
fn only_minus_one_means_missing_other_labels_stay_errors_naming_row_and_task() {
    for bad in [-0.5f32, -2.0, 2.0, f32::NAN] {
        let mut acc = MetricsAccumulator::new(2);
        let e = acc
            .push(&Batch {
                predictions: &[0.5; 4],
                labels: &[0.0, MISSING_LABEL, 1.0, bad],
                weights: None,
                users: None,
            })
            .unwrap_err()
            .to_string();
        assert!(e.contains("label for row 1 (task 1)"), "{bad}: {e}");
        assert_eq!(acc.rows(), 0);
    }
}
