//! Missing labels in the losses (`loss.wgsl`): a label below 0 ([`MISSING_LABEL`]) gives its row
//! weight 0 in that task only. Checked against the f64 reference of `loss.rs` (which applies the
//! same rule) on seeded batches with some, all and all but one label of a task missing, against
//! the same batch with the unlabelled rows dropped, and for the class-weight rule.

use wgrec::kernels::loss::{ExposureWeight, LossKind, WeightRule, MISSING_LABEL, STATS_PER_TASK};
use wgrec::rng::Rng;

use crate::common::check_gradient;
use crate::loss::{check, random_problem, reference, run_loss, tol, Problem, LIST, PAIR};

/// Marks each label of task `t` missing with probability `p[t]` (seeded).
fn drop_labels(problem: &mut Problem, p: &[f64], seed: u64) {
    let mut rng = Rng::new(seed);
    let tasks = problem.kinds.len();
    for (k, y) in problem.y.iter_mut().enumerate() {
        if rng.unit() < p[k % tasks] {
            *y = MISSING_LABEL;
        }
    }
}

#[test]
fn reference_gradients_with_missing_labels_match_finite_differences() {
    for (c, kind) in [LossKind::Bce, PAIR, LIST].into_iter().enumerate() {
        for weighted in [false, true] {
            let mut p = random_problem(vec![kind], 17, 17, &[0.4], weighted, 1100 + c as u64);
            drop_labels(&mut p, &[0.3], 1110 + c as u64);
            let (z, y, w) = p.column(0);
            assert!(y.iter().any(|&v| v < 0.0), "some label missing");
            let r = reference(kind, &z, &y, &w);
            let what = format!("{kind:?} weighted {weighted} missing");
            check_gradient(&what, &z, &r.grad, |z| reference(kind, z, &y, &w).loss);
            for i in (0..17).filter(|&i| y[i] < 0.0) {
                assert_eq!(r.grad[i], 0.0, "{what}: a missing row has no gradient");
            }
        }
    }
}

#[test]
fn gpu_matches_reference_with_some_labels_missing_on_awkward_batches() {
    for (c, rows) in [1usize, 2, 37, 1000, 4097].into_iter().enumerate() {
        let seed = 1200 + 10 * c as u64;
        for weighted in [true, false] {
            let mut p = random_problem(
                vec![LossKind::Bce, PAIR, LIST],
                rows + c,
                rows,
                &[0.3, 0.5, 0.2],
                weighted,
                seed,
            );
            drop_labels(&mut p, &[0.25, 0.5, 0.1], seed + 1);
            let out = check(&p, &format!("missing weighted {weighted}"));
            for i in 0..rows * 3 {
                if p.y[i] < 0.0 {
                    assert_eq!(out.dz[i], 0.0, "rows {rows}: dz[{i}] of a missing label");
                }
            }
        }
    }
}

#[test]
fn a_task_with_every_label_missing_has_loss_zero_and_dz_zero() {
    // Task 1 has no label at all, task 2 one (a hot positive): the others are unaffected.
    let mut p = random_problem(vec![PAIR, LIST, PAIR], 300, 257, &[0.3; 3], true, 1300);
    for i in 0..300 {
        p.y[i * 3 + 1] = MISSING_LABEL;
        p.y[i * 3 + 2] = if i == 100 { 1.0 } else { MISSING_LABEL };
    }
    let out = check(&p, "a task without labels");
    assert_eq!(out.loss[1], 0.0);
    assert!((0..257).all(|i| out.dz[i * 3 + 1] == 0.0), "task 1 dz");
    assert!(out.loss.iter().all(|l| l.is_finite()), "{:?}", out.loss);
    // One labelled row has one class: task 2 falls back to BCE on that row alone.
    assert_eq!(out.stats[2 * STATS_PER_TASK + 5], 0.0);
    let stats = &out.stats[STATS_PER_TASK..2 * STATS_PER_TASK];
    assert_eq!(&stats[..3], &[0.0; 3], "Σw, W⁺, W⁻ of task 1");
    // Every label missing in every task, unweighted: all zero, nothing NaN.
    let mut p = random_problem(
        vec![LossKind::Bce, PAIR, LIST],
        40,
        33,
        &[0.3; 3],
        false,
        1301,
    );
    p.y = vec![MISSING_LABEL; 120];
    let out = check(&p, "no labels");
    assert_eq!(out.loss, vec![0.0; 3]);
    assert!(out.dz[..99].iter().all(|&v| v == 0.0));
}

#[test]
fn missing_labels_weigh_exactly_as_dropped_rows() {
    // One task: its rows with a missing label against the batch without them, on the device.
    for (c, kind) in [LossKind::Bce, PAIR, LIST].into_iter().enumerate() {
        let mut p = random_problem(vec![kind], 500, 500, &[0.3], true, 1400 + c as u64);
        drop_labels(&mut p, &[0.4], 1410 + c as u64);
        let kept: Vec<usize> = (0..500).filter(|&i| p.y[i] >= 0.0).collect();
        let w = p.w.as_ref().expect("weighted");
        let dropped = Problem {
            rows_cap: kept.len(),
            rows: kept.len(),
            kinds: vec![kind],
            z: kept.iter().map(|&i| p.z[i]).collect(),
            y: kept.iter().map(|&i| p.y[i]).collect(),
            w: Some(kept.iter().map(|&i| w[i]).collect()),
        };
        let (with, without) = (run_loss(&p), run_loss(&dropped));
        // Same terms, but the strided sums group them differently: f32 rounding of 500 terms.
        let tol = tol(500);
        let (z, y, w) = dropped.column(0);
        let r = reference(kind, &z, &y, &w);
        let name = format!("{kind:?} missing vs dropped");
        tol.check(&name, 0, with.loss[0], without.loss[0] as f64, r.loss_mag);
        for (k, &i) in kept.iter().enumerate() {
            tol.check(&name, i, with.dz[i], without.dz[k] as f64, r.grad_mag[k]);
        }
    }
}

#[test]
fn a_missing_label_takes_class_weight_one() {
    // The class weight follows task 0's label; a row without one is neither class: only its
    // exposure part remains.
    let rule = WeightRule {
        exposure: ExposureWeight::Power { gamma: 0.5 },
        positive: 3.0,
        negative: 0.25,
    };
    let w = rule
        .weights(
            &[4.0, 4.0, 4.0, 9.0],
            &[1.0, 0.0, MISSING_LABEL, MISSING_LABEL],
        )
        .expect("weights");
    assert_eq!(w, vec![1.5, 0.125, 0.5, 1.0 / 3.0]);
    assert_eq!(rule.weight(1.0, -0.5), 1.0, "any label below 0 is missing");
}
