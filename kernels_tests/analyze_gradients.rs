//! `wgrec analyze`'s loss gradients (`wgrec::analyze::gradients::loss_gradients`) against the loss
//! kernel's `dz`: the host formulas the analysis uses are the ones training runs, for BCE,
//! combined-pair and combined-list, with per-sample weights, missing labels, and batches with no
//! positive (BCE alone).

use wgrec::analyze::gradients::{loss_gradients, Which};
use wgrec::kernels::loss::{LossKind, MISSING_LABEL};

use crate::loss::{random_problem, run_loss, tol};

fn which(kind: LossKind) -> Which {
    match kind {
        LossKind::Bce => Which::Bce,
        LossKind::CombinedPair { alpha } => Which::Pair(alpha as f64),
        LossKind::CombinedList { alpha } => Which::List(alpha as f64),
    }
}

/// Every task of a random problem: the kernel's `dz` (poisoned with NaN before the run) equals the
/// analysis' gradients within the loss tests' tolerance (the bound of `loss::tol`, which is about
/// the kernel's f32 sums; the host side is f64).
fn compare(rows: usize, p_pos: &[f64], weighted: bool, missing: bool, seed: u64) {
    let kinds = vec![
        LossKind::Bce,
        LossKind::CombinedPair { alpha: 0.6 },
        LossKind::CombinedList { alpha: 0.9 },
    ];
    let mut p = random_problem(kinds.clone(), rows + 3, rows, p_pos, weighted, seed);
    if missing {
        for (i, y) in p.y.iter_mut().enumerate() {
            if i % 7 == 3 {
                *y = MISSING_LABEL;
            }
        }
    }
    let out = run_loss(&p);
    for (t, &kind) in kinds.iter().enumerate() {
        let (z, y, w) = p.column(t);
        let g = loss_gradients(which(kind), &z, &y, &w);
        assert_eq!(g.len(), rows);
        let mag: f64 = g.iter().map(|v| v.abs()).fold(0.0, f64::max);
        for (i, &want) in g.iter().enumerate() {
            tol(rows).check(
                &format!("{kind:?} rows {rows} seed {seed} dz"),
                i,
                out.dz[i * kinds.len() + t],
                want,
                mag,
            );
        }
    }
}

#[test]
fn analysis_gradients_are_the_loss_kernels() {
    compare(1, &[0.5, 0.5, 0.5], false, false, 1);
    compare(37, &[0.3, 0.2, 0.4], false, false, 2);
    compare(300, &[0.05, 0.1, 0.2], true, false, 3);
    compare(511, &[0.25, 0.25, 0.25], true, true, 4);
}

#[test]
fn a_batch_without_positives_gets_bce_alone() {
    compare(64, &[0.0, 0.0, 0.0], true, false, 5);
    let z = [0.3, -1.0, 2.0];
    let (y, w) = ([0.0, 0.0, 0.0], [1.0, 1.0, 1.0]);
    assert_eq!(
        loss_gradients(Which::Pair(0.6), &z, &y, &w),
        loss_gradients(Which::Bce, &z, &y, &w)
    );
}

#[test]
fn the_pair_loss_raises_the_negatives_gradient_by_its_formula() {
    // One positive at z = 0, one negative at z = 0, weights 1: BCE gives the negative
    // σ(0)/2 = 0.25; the pair term adds σ(0 − 0)/(1·1) = 0.5, so α = 0.6 gives
    // 0.6·0.25 + 0.4·0.5 = 0.35, and the positive −0.35.
    let g = loss_gradients(Which::Pair(0.6), &[0.0, 0.0], &[1.0, 0.0], &[1.0, 1.0]);
    assert!(
        (g[1] - 0.35).abs() < 1e-15 && (g[0] + 0.35).abs() < 1e-15,
        "{g:?}"
    );
}
