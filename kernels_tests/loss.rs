//! Losses (`loss.wgsl`): BCE, combined-pair and combined-list against f64 references (whose
//! gradients are checked by finite differences) and PyTorch; the inference correction and the
//! repeated-exposure weight rule against their f64 formulas.

use std::mem::size_of;

use wgrec::kernels::loss::{
    class_weight_correction, downsampled_probability, ExposureWeight, Loss, LossBuffers, LossKind,
    LossParams, Predict, TaskLoss, WeightRule, STATS_PER_TASK,
};
use wgrec::rng::Rng;
use wgrec::shaders;
use wgrec::Gpu;

use crate::common::{check_gradient, download, gpu, private_gpu, upload, Tolerance};
use crate::dense_norm::run;
use crate::fixtures::Fixture;
use crate::registry::{assert_layout, offsets};

/// Unit roundoff of f32.
const U: f64 = f32::EPSILON as f64 / 2.0;

/// GPU against the f64 reference, on magnitudes that are the Σ|terms| of each value. The longest
/// chain of f32 additions behind any value is a pair row's walk over the batch (`rows` terms), then
/// the strided and tree sums of the reduction (≤ rows/256 + 8 terms) and the Σw / W⁺W⁻ normaliser
/// sums: the classical worst-case bound is (number of terms)·u per value, (rows + 64)·u; exp and
/// log add a few ULP per term (1e-6 ≈ 16 ULP); the absolute part covers log1p(exp(−|z|)) terms that
/// underflow towards 0. Observed errors are ~10× below this bound (random-walk rounding).
pub(crate) fn tol(rows: usize) -> Tolerance {
    Tolerance {
        relative: (rows as f64 + 64.0) * U + 1e-6,
        absolute: 1e-7,
    }
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        x.exp() / (1.0 + x.exp())
    }
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// The f64 reference of one task: loss and gradient with the Σ|terms| magnitudes of each.
pub(crate) struct Reference {
    pub(crate) loss: f64,
    pub(crate) loss_mag: f64,
    pub(crate) grad: Vec<f64>,
    pub(crate) grad_mag: Vec<f64>,
    pub(crate) rank_used: bool,
}

/// A label below 0 is missing: the row's weight in this task is 0 (its `w` is not used).
pub(crate) fn reference(kind: LossKind, z: &[f64], y: &[f64], w: &[f64]) -> Reference {
    let n = z.len();
    let w: Vec<f64> = (0..n)
        .map(|i| if y[i] >= 0.0 { w[i] } else { 0.0 })
        .collect();
    let pos: Vec<bool> = y.iter().map(|&v| v > 0.5).collect();
    let sw: f64 = w.iter().sum();
    let wp: f64 = (0..n).filter(|&i| pos[i]).map(|i| w[i]).sum();
    let wn: f64 = (0..n).filter(|&i| !pos[i]).map(|i| w[i]).sum();
    let mut loss_bce = 0.0;
    let mut grad_bce = vec![0.0; n];
    let mut mag_bce = vec![0.0; n];
    if sw > 0.0 {
        for i in 0..n {
            loss_bce += w[i] * (z[i].max(0.0) - z[i] * y[i] + (-z[i].abs()).exp().ln_1p()) / sw;
            grad_bce[i] = w[i] * (sigmoid(z[i]) - y[i]) / sw;
            mag_bce[i] = w[i] * (sigmoid(z[i]) + y[i].abs()) / sw;
        }
    }
    let (alpha, list) = match kind {
        LossKind::Bce => (1.0, false),
        LossKind::CombinedPair { alpha } => (alpha as f64, false),
        LossKind::CombinedList { alpha } => (alpha as f64, true),
    };
    let rank_used = kind != LossKind::Bce && wp > 0.0 && wn > 0.0;
    if !rank_used {
        return Reference {
            loss: loss_bce,
            loss_mag: loss_bce,
            grad: grad_bce,
            grad_mag: mag_bce,
            rank_used,
        };
    }
    let mut loss_rank = 0.0;
    let mut mag_rank = 0.0;
    let mut grad_rank = vec![0.0; n];
    let mut gmag_rank = vec![0.0; n];
    if !list {
        let norm = wp * wn;
        for i in (0..n).filter(|&i| pos[i]) {
            for j in (0..n).filter(|&j| !pos[j]) {
                let pw = w[i] * w[j] / norm;
                loss_rank += pw * softplus(z[j] - z[i]);
                let s = pw * sigmoid(z[j] - z[i]);
                grad_rank[i] -= s;
                grad_rank[j] += s;
                gmag_rank[i] += s;
                gmag_rank[j] += s;
            }
        }
        mag_rank = loss_rank;
    } else {
        let m = (0..n)
            .filter(|&k| w[k] > 0.0)
            .map(|k| z[k])
            .fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = (0..n)
            .filter(|&k| w[k] > 0.0)
            .map(|k| w[k] * (z[k] - m).exp())
            .sum();
        for k in 0..n {
            let soft = if w[k] > 0.0 {
                w[k] * (z[k] - m).exp() / s
            } else {
                0.0
            };
            grad_rank[k] = soft;
            gmag_rank[k] = soft;
            if pos[k] {
                loss_rank -= w[k] * (z[k] - m - s.ln()) / wp;
                mag_rank += w[k] * (z[k].abs() + m.abs() + s.ln().abs()) / wp;
                grad_rank[k] -= w[k] / wp;
                gmag_rank[k] += w[k] / wp;
            }
        }
    }
    Reference {
        loss: alpha * loss_bce + (1.0 - alpha) * loss_rank,
        loss_mag: alpha * loss_bce + (1.0 - alpha) * mag_rank,
        grad: (0..n)
            .map(|i| alpha * grad_bce[i] + (1.0 - alpha) * grad_rank[i])
            .collect(),
        grad_mag: (0..n)
            .map(|i| alpha * mag_bce[i] + (1.0 - alpha) * gmag_rank[i])
            .collect(),
        rank_used,
    }
}

/// One problem: `rows` live rows of `[rows_cap, tasks]`, weights `[rows_cap]` or none.
pub(crate) struct Problem {
    pub(crate) rows_cap: usize,
    pub(crate) rows: usize,
    pub(crate) kinds: Vec<LossKind>,
    pub(crate) z: Vec<f32>,
    pub(crate) y: Vec<f32>,
    pub(crate) w: Option<Vec<f32>>,
}

impl Problem {
    fn tasks(&self) -> usize {
        self.kinds.len()
    }

    /// Task `t`'s live column as f64 (weights all ones when absent).
    pub(crate) fn column(&self, t: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let k = self.tasks();
        let z = (0..self.rows).map(|i| self.z[i * k + t] as f64).collect();
        let y = (0..self.rows).map(|i| self.y[i * k + t] as f64).collect();
        let w = match &self.w {
            Some(w) => w[..self.rows].iter().map(|&v| v as f64).collect(),
            None => vec![1.0; self.rows],
        };
        (z, y, w)
    }
}

/// Random logits in [−4, 4), labels positive with probability `p_pos[t]`, weights in [0, 2) with
/// about one in ten exactly 0 (when weighted).
pub(crate) fn random_problem(
    kinds: Vec<LossKind>,
    rows_cap: usize,
    rows: usize,
    p_pos: &[f64],
    weighted: bool,
    seed: u64,
) -> Problem {
    let mut rng = Rng::new(seed);
    let tasks = kinds.len();
    let z = (0..rows_cap * tasks)
        .map(|_| rng.uniform(-4.0, 4.0))
        .collect();
    let y = (0..rows_cap * tasks)
        .map(|i| (rng.unit() < p_pos[i % tasks]) as u8 as f32)
        .collect();
    let w = weighted.then(|| {
        (0..rows_cap)
            .map(|_| {
                if rng.unit() < 0.1 {
                    0.0
                } else {
                    rng.uniform(0.0, 2.0)
                }
            })
            .collect()
    });
    Problem {
        rows_cap,
        rows,
        kinds,
        z,
        y,
        w,
    }
}

/// GPU outputs: loss [tasks], dz [rows_cap, tasks], stats [tasks, 8]; loss and dz poisoned first.
pub(crate) struct Output {
    pub(crate) loss: Vec<f32>,
    pub(crate) dz: Vec<f32>,
    pub(crate) stats: Vec<f32>,
    /// The variant the loss compiled (`"default"` unless one is forced on the device).
    pub(crate) variant: &'static str,
}

pub(crate) fn run_loss_on(gpu: &Gpu, p: &Problem) -> Output {
    let tasks = p.tasks();
    let n = p.rows_cap * tasks;
    let (zb, yb) = (upload(gpu, "z", &p.z), upload(gpu, "y", &p.y));
    let wb = p.w.as_ref().map(|w| upload(gpu, "w", w));
    let loss = upload(gpu, "loss", &vec![f32::NAN; tasks]);
    let dz = upload(gpu, "dz", &vec![f32::NAN; n.max(1)]);
    let bufs = LossBuffers {
        logits: &zb,
        labels: &yb,
        weights: wb.as_ref(),
        loss: &loss,
        grad_logits: &dz,
    };
    let mut op = Loss::new(gpu, &p.kinds, p.rows_cap as u32, &bufs).expect("loss");
    op.set_rows(gpu, p.rows as u32).expect("rows");
    run(gpu, |pass| op.record(gpu, pass));
    Output {
        loss: download(gpu, &loss, tasks),
        dz: download(gpu, &dz, n),
        stats: download(gpu, op.stats(), tasks * STATS_PER_TASK),
        variant: op.variant(),
    }
}

pub(crate) fn run_loss(p: &Problem) -> Output {
    run_loss_on(gpu(), p)
}

/// Compares every task of `p` with the reference; rows past `rows` must still hold the poison.
pub(crate) fn check(p: &Problem, what: &str) -> Output {
    check_on(gpu(), p, what)
}

/// [`check`] on a device of the caller's (one with a forced variant).
pub(crate) fn check_on(gpu: &Gpu, p: &Problem, what: &str) -> Output {
    let out = run_loss_on(gpu, p);
    let tol = tol(p.rows);
    let tasks = p.tasks();
    for (t, &kind) in p.kinds.iter().enumerate() {
        let (z, y, w) = p.column(t);
        let r = reference(kind, &z, &y, &w);
        let name = format!("{what} task {t} {kind:?} rows {}", p.rows);
        tol.check(&format!("{name} loss"), t, out.loss[t], r.loss, r.loss_mag);
        assert_eq!(
            out.stats[t * STATS_PER_TASK + 5] != 0.0,
            r.rank_used,
            "{name}: ranking term used"
        );
        for i in 0..p.rows {
            tol.check(
                &format!("{name} dz"),
                i,
                out.dz[i * tasks + t],
                r.grad[i],
                r.grad_mag[i],
            );
        }
    }
    for i in p.rows * tasks..p.rows_cap * tasks {
        assert!(out.dz[i].is_nan(), "{what}: dz[{i}] written past the batch");
    }
    out
}

pub(crate) const PAIR: LossKind = LossKind::CombinedPair { alpha: 0.6 };
pub(crate) const LIST: LossKind = LossKind::CombinedList { alpha: 0.9 };

#[test]
fn reference_gradients_match_finite_differences() {
    let kinds = [
        LossKind::Bce,
        PAIR,
        LIST,
        LossKind::CombinedPair { alpha: 0.0 },
        LossKind::CombinedList { alpha: 0.0 },
    ];
    for (c, kind) in kinds.into_iter().enumerate() {
        for weighted in [false, true] {
            // 13 rows: mixed labels; then all positive and all negative (the BCE fallback).
            for p_pos in [0.4, 1.0, 0.0] {
                let p = random_problem(vec![kind], 13, 13, &[p_pos], weighted, 100 + c as u64);
                let (z, y, w) = p.column(0);
                let r = reference(kind, &z, &y, &w);
                let what = format!("{kind:?} weighted {weighted} p {p_pos}");
                check_gradient(&what, &z, &r.grad, |z| reference(kind, z, &y, &w).loss);
            }
        }
    }
}

/// Direct transcriptions of METHODS.md §4.1 (unit weights).
fn paper_pair(z: &[f64], y: &[f64]) -> f64 {
    let (mut s, mut pairs) = (0.0, 0.0);
    for i in (0..z.len()).filter(|&i| y[i] > 0.5) {
        for j in (0..z.len()).filter(|&j| y[j] <= 0.5) {
            s -= sigmoid(z[i] - z[j]).ln();
            pairs += 1.0;
        }
    }
    s / pairs
}

fn paper_list(z: &[f64], y: &[f64]) -> f64 {
    let sum: f64 = z.iter().map(|v| v.exp()).sum();
    let p: Vec<usize> = (0..z.len()).filter(|&i| y[i] > 0.5).collect();
    -p.iter().map(|&i| (z[i].exp() / sum).ln()).sum::<f64>() / p.len() as f64
}

#[test]
fn reference_is_the_paper_with_unit_weights_and_weights_count_as_copies() {
    let p = random_problem(vec![LossKind::Bce], 23, 23, &[0.3], false, 7);
    let (z, y, ones) = p.column(0);
    let rank_only = |kind| reference(kind, &z, &y, &ones).loss;
    let pair = rank_only(LossKind::CombinedPair { alpha: 0.0 });
    let list = rank_only(LossKind::CombinedList { alpha: 0.0 });
    assert!((pair - paper_pair(&z, &y)).abs() < 1e-12, "{pair}");
    assert!((list - paper_list(&z, &y)).abs() < 1e-12, "{list}");
    // Integer weights: the weighted losses equal the unit-weight losses of the batch with sample
    // i repeated w_i times (w_i = 0 drops it), for BCE, pairs and the list alike.
    let mut rng = Rng::new(8);
    let w: Vec<f64> = (0..z.len()).map(|_| rng.below(4) as f64).collect();
    let (mut zr, mut yr) = (vec![], vec![]);
    for i in 0..z.len() {
        for _ in 0..w[i] as usize {
            zr.push(z[i]);
            yr.push(y[i]);
        }
    }
    for kind in [LossKind::Bce, PAIR, LIST] {
        let weighted = reference(kind, &z, &y, &w).loss;
        let repeated = reference(kind, &zr, &yr, &vec![1.0; zr.len()]).loss;
        assert!(
            (weighted - repeated).abs() < 1e-12,
            "{kind:?}: {weighted} vs {repeated}"
        );
    }
}

#[test]
fn gpu_weights_count_as_copies() {
    // The same property on the device: integer weights against the repeated batch.
    let mut rng = Rng::new(9);
    let base = random_problem(
        vec![LossKind::Bce, PAIR, LIST],
        41,
        41,
        &[0.3; 3],
        false,
        10,
    );
    let w: Vec<f32> = (0..41).map(|_| rng.below(4) as f32).collect();
    let (mut zr, mut yr) = (vec![], vec![]);
    for i in 0..41 {
        for _ in 0..w[i] as usize {
            zr.extend_from_slice(&base.z[i * 3..i * 3 + 3]);
            yr.extend_from_slice(&base.y[i * 3..i * 3 + 3]);
        }
    }
    let rows = zr.len() / 3;
    let weighted = run_loss(&Problem {
        w: Some(w),
        ..base.clone()
    });
    let repeated = run_loss(&Problem {
        rows_cap: rows,
        rows,
        kinds: base.kinds.clone(),
        z: zr,
        y: yr,
        w: None,
    });
    let tol = tol(rows);
    for t in 0..3 {
        let r = repeated.loss[t] as f64;
        tol.check("weighted vs repeated loss", t, weighted.loss[t], r, r.abs());
    }
}

impl Clone for Problem {
    fn clone(&self) -> Self {
        Problem {
            rows_cap: self.rows_cap,
            rows: self.rows,
            kinds: self.kinds.clone(),
            z: self.z.clone(),
            y: self.y.clone(),
            w: self.w.clone(),
        }
    }
}

#[test]
fn gpu_matches_reference_on_awkward_batches() {
    for (c, rows) in [1usize, 2, 37, 1000, 4097].into_iter().enumerate() {
        let seed = 200 + 10 * c as u64;
        // Three heads, one of each loss, weighted, a few spare rows of capacity.
        let p = random_problem(
            vec![LossKind::Bce, PAIR, LIST],
            rows + c,
            rows,
            &[0.3, 0.5, 0.05],
            true,
            seed,
        );
        check(&p, "3 tasks weighted");
        // One head, unweighted, each ranking loss.
        for (k, kind) in [PAIR, LIST].into_iter().enumerate() {
            let p = random_problem(vec![kind], rows, rows, &[0.2], false, seed + 1 + k as u64);
            check(&p, "1 task");
        }
    }
}

#[test]
fn gpu_matches_reference_on_a_hot_batch_and_extreme_logits() {
    // One positive among 4096.
    for kind in [PAIR, LIST] {
        let mut p = random_problem(vec![kind], 4096, 4096, &[0.0], false, 300);
        p.y[1234] = 1.0;
        let out = check(&p, "hot");
        assert_eq!(out.stats[5], 1.0);
    }
    // Logits of ±60 and ±90: exp(|z|) overflows f32, the stable forms do not.
    let mut p = random_problem(
        vec![LossKind::Bce, PAIR, LIST],
        64,
        61,
        &[0.5; 3],
        true,
        301,
    );
    for (i, v) in p.z.iter_mut().enumerate() {
        *v *= [15.0, 22.5][i % 2];
    }
    check(&p, "extreme logits");
    // A zero-weight row with a huge logit: the list's max-shift is over weighted rows only, or every
    // exp(z − m) of the weighted rows would underflow to 0.
    let mut p = random_problem(vec![LIST], 40, 40, &[0.3], true, 302);
    p.z[7] = 150.0;
    p.w.as_mut().unwrap()[7] = 0.0;
    check(&p, "zero-weight outlier");
}

#[test]
fn batch_without_positives_or_negatives_falls_back_to_bce_bit_for_bit() {
    let mut cases = vec![];
    for (c, p_pos) in [1.0, 0.0].into_iter().enumerate() {
        cases.push(random_problem(
            vec![PAIR, LIST, PAIR],
            300,
            257,
            &[p_pos; 3],
            true,
            400 + c as u64,
        ));
    }
    // Positives present but all of weight 0: W⁺ = 0 falls back too.
    let mut zero_pos = random_problem(vec![PAIR, LIST, PAIR], 40, 40, &[0.3; 3], true, 402);
    let w = zero_pos.w.as_mut().unwrap();
    for i in 0..40 {
        if zero_pos.y[i * 3] > 0.5 || zero_pos.y[i * 3 + 1] > 0.5 || zero_pos.y[i * 3 + 2] > 0.5 {
            w[i] = 0.0;
        }
    }
    cases.push(zero_pos);
    for (c, p) in cases.iter().enumerate() {
        let ranked = check(p, "fallback");
        let bce = run_loss(&Problem {
            kinds: vec![LossKind::Bce; 3],
            ..p.clone()
        });
        for t in 0..3 {
            assert_eq!(
                ranked.stats[t * STATS_PER_TASK + 5],
                0.0,
                "case {c} task {t}"
            );
            assert_eq!(ranked.loss[t].to_bits(), bce.loss[t].to_bits(), "case {c}");
        }
        let live = p.rows * 3;
        let bits = |v: &[f32]| v[..live].iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&ranked.dz), bits(&bce.dz), "case {c} dz");
    }
}

#[test]
fn zero_rows_give_zero_loss_and_write_no_gradient() {
    let p = random_problem(vec![LossKind::Bce, PAIR, LIST], 50, 0, &[0.3; 3], true, 500);
    let out = run_loss(&p);
    assert_eq!(out.loss, vec![0.0; 3]);
    assert!(
        out.dz.iter().all(|v| v.is_nan()),
        "dz written with rows = 0"
    );
    assert!(out.stats.iter().all(|&v| v == 0.0), "{:?}", out.stats);
    // All weights zero: loss 0 and dz 0 on the live rows.
    let mut p = random_problem(
        vec![LossKind::Bce, PAIR, LIST],
        50,
        20,
        &[0.3; 3],
        true,
        501,
    );
    p.w = Some(vec![0.0; 50]);
    let out = check(&p, "zero weights");
    assert_eq!(out.loss, vec![0.0; 3]);
    assert!(out.dz[..60].iter().all(|&v| v == 0.0));
}

#[test]
fn loss_is_bitwise_deterministic() {
    let p = random_problem(
        vec![PAIR, LIST, LossKind::Bce],
        1000,
        1000,
        &[0.3; 3],
        true,
        600,
    );
    let bits = || {
        let o = run_loss(&p);
        o.loss
            .into_iter()
            .chain(o.dz)
            .chain(o.stats)
            .map(f32::to_bits)
            .collect::<Vec<_>>()
    };
    assert_eq!(bits(), bits());
}

#[test]
fn one_prepared_loss_runs_a_full_then_a_short_batch() {
    let gpu = gpu();
    let full = random_problem(vec![PAIR, LIST], 300, 300, &[0.3; 2], true, 700);
    let (zb, yb) = (upload(gpu, "z", &full.z), upload(gpu, "y", &full.y));
    let wb = upload(gpu, "w", full.w.as_ref().unwrap());
    let loss = upload(gpu, "loss", &[f32::NAN; 2]);
    let dz = upload(gpu, "dz", &vec![f32::NAN; 600]);
    let bufs = LossBuffers {
        logits: &zb,
        labels: &yb,
        weights: Some(&wb),
        loss: &loss,
        grad_logits: &dz,
    };
    let mut op = Loss::new(gpu, &full.kinds, 300, &bufs).expect("loss");
    for rows in [300usize, 77] {
        op.set_rows(gpu, rows as u32).expect("rows");
        gpu.queue
            .write_buffer(&dz, 0, bytemuck::cast_slice(&vec![f32::NAN; 600]));
        run(gpu, |pass| op.record(gpu, pass));
        let (l, d) = (download(gpu, &loss, 2), download(gpu, &dz, 600));
        let p = Problem {
            rows,
            ..full.clone()
        };
        for t in 0..2 {
            let (z, y, w) = p.column(t);
            let r = reference(p.kinds[t], &z, &y, &w);
            tol(rows).check("loss", t, l[t], r.loss, r.loss_mag);
            for i in 0..rows {
                tol(rows).check("dz", i, d[i * 2 + t], r.grad[i], r.grad_mag[i]);
            }
        }
        assert!(d[rows * 2..].iter().all(|v| v.is_nan()));
    }
}

#[test]
fn loss_records_three_dispatches_whatever_the_batch_and_tasks() {
    let gpu = private_gpu();
    for tasks in [1usize, 5] {
        let p = random_problem(vec![PAIR; tasks], 4097, 4097, &[0.3; 5], true, 800);
        let (zb, yb) = (upload(&gpu, "z", &p.z), upload(&gpu, "y", &p.y));
        let wb = upload(&gpu, "w", p.w.as_ref().unwrap());
        let loss = upload(&gpu, "loss", &vec![0.0; tasks]);
        let dz = upload(&gpu, "dz", &p.z);
        let bufs = LossBuffers {
            logits: &zb,
            labels: &yb,
            weights: Some(&wb),
            loss: &loss,
            grad_logits: &dz,
        };
        let mut op = Loss::new(&gpu, &p.kinds, 4097, &bufs).expect("loss");
        for rows in [4097u32, 1, 0] {
            op.set_rows(&gpu, rows).expect("rows");
            let before = gpu.dispatches();
            run(&gpu, |pass| op.record(&gpu, pass));
            assert_eq!(gpu.dispatches() - before, 3, "tasks {tasks} rows {rows}");
            assert_eq!(op.dispatches(), 3);
        }
    }
}

#[test]
fn loss_rejects_bad_specs_short_buffers_and_too_many_rows() {
    let gpu = gpu();
    let b = |n: usize| upload(gpu, "b", &vec![0.5; n]);
    let (z, y, w, loss, dz) = (b(30), b(30), b(10), b(3), b(30));
    let bufs = LossBuffers {
        logits: &z,
        labels: &y,
        weights: Some(&w),
        loss: &loss,
        grad_logits: &dz,
    };
    let kinds = [LossKind::Bce, PAIR, LIST];
    let mut op = Loss::new(gpu, &kinds, 10, &bufs).expect("fits");
    assert!(op.set_rows(gpu, 11).is_err());
    let err = |r: wgrec::Result<Loss>| r.err().expect("an error").to_string();
    let e = err(Loss::new(gpu, &kinds, 11, &bufs));
    assert!(e.contains("132"), "{e}"); // 33 f32 needed
    let e = err(Loss::new(gpu, &[], 10, &bufs));
    assert!(e.contains("tasks 0"), "{e}");
    let e = err(Loss::new(
        gpu,
        &[LossKind::CombinedList { alpha: 1.5 }],
        10,
        &bufs,
    ));
    assert!(e.contains("1.5"), "{e}");
    let short = b(9);
    let e = err(Loss::new(
        gpu,
        &kinds,
        10,
        &LossBuffers {
            weights: Some(&short),
            ..bufs
        },
    ));
    assert!(e.contains("weights"), "{e}");
}

#[test]
fn loss_params_match_wgsl_layout() {
    assert_layout(
        &shaders::LOSS,
        "LossParams",
        size_of::<LossParams>(),
        offsets!(LossParams: rows, rows_cap, tasks, weighted),
    );
    assert_layout(
        &shaders::LOSS,
        "TaskLoss",
        size_of::<TaskLoss>(),
        offsets!(TaskLoss: kind, alpha),
    );
}

#[test]
fn losses_match_pytorch() {
    let fx = Fixture::load("loss");
    let cases = ["bce", "pair", "pair_paper", "list", "list_paper"];
    let missing = ["bce_missing", "pair_missing", "list_missing"];
    for case in cases.into_iter().chain(missing) {
        let key = |k: &str| format!("{case}.{k}");
        let alpha = fx.f32(&key("alpha"));
        let kinds: Vec<LossKind> = alpha
            .iter()
            .map(|&alpha| match case {
                "bce" | "bce_missing" => LossKind::Bce,
                "pair" | "pair_paper" | "pair_missing" => LossKind::CombinedPair { alpha },
                _ => LossKind::CombinedList { alpha },
            })
            .collect();
        let rows = fx.shape(&key("z"))[0];
        let weighted = !case.ends_with("paper");
        let p = Problem {
            rows_cap: rows,
            rows,
            kinds,
            z: fx.f32(&key("z")),
            y: fx.f32(&key("y")),
            w: weighted.then(|| fx.f32(&key("w"))),
        };
        let out = run_loss(&p);
        let (loss, dz) = (fx.f64(&key("loss")), fx.f64(&key("dz")));
        // Magnitudes from our reference (torch gives values only); the fixture pins the values.
        let tol = tol(rows);
        for t in 0..3 {
            let (z, y, w) = p.column(t);
            let r = reference(p.kinds[t], &z, &y, &w);
            tol.check(&format!("{case} loss"), t, out.loss[t], loss[t], r.loss_mag);
            for i in 0..rows {
                let g = i * 3 + t;
                tol.check(&format!("{case} dz"), g, out.dz[g], dz[g], r.grad_mag[i]);
                // And the f64 reference agrees with torch to f64 precision.
                assert!(
                    (r.grad[i] - dz[g]).abs() < 1e-12,
                    "{case} reference dz[{g}]: {} vs torch {}",
                    r.grad[i],
                    dz[g]
                );
            }
            assert!(
                (r.loss - loss[t]).abs() < 1e-12,
                "{case} reference loss[{t}]"
            );
        }
    }
}

#[test]
fn predict_applies_the_class_weight_correction() {
    let gpu = gpu();
    let (rows_cap, rows, tasks) = (300usize, 257usize, 3usize);
    let mut rng = Rng::new(900);
    let z: Vec<f32> = (0..rows_cap * tasks)
        .map(|_| rng.uniform(-30.0, 30.0))
        .collect();
    let zb = upload(gpu, "z", &z);
    let probs = upload(gpu, "p", &vec![f32::NAN; rows_cap * tasks]);
    let rule = WeightRule {
        negative: 0.1,
        ..WeightRule::default()
    };
    let c0 = rule.logit_correction() as f32;
    let mut op = Predict::new(gpu, rows_cap as u32, &[c0, 0.0, -1.5], &zb, &probs).expect("op");
    op.set_rows(gpu, rows as u32).expect("rows");
    for correction in [[c0, 0.0, -1.5], [0.25, 2.0, 0.0]] {
        op.set_correction(gpu, &correction).expect("correction");
        run(gpu, |pass| op.record(gpu, pass));
        let p = download(gpu, &probs, rows_cap * tasks);
        // σ in f32: one exp (a few ULP) and one division, 1e-6 relative; z − c rounds once
        // (≤ u·(|z| + |c|) absolute in the logit, moving σ by σ(1−σ) times that).
        for i in 0..rows * tasks {
            let c = correction[i % tasks] as f64;
            let zc = z[i] as f64 - c;
            let want = sigmoid(zc);
            let shift = want * (1.0 - want) * ((z[i] as f64).abs() + c.abs()) * U;
            let tol = Tolerance {
                relative: 1e-6,
                absolute: shift,
            };
            tol.check("p", i, p[i], want, want);
        }
        assert!(p[rows * tasks..].iter().all(|v| v.is_nan()));
    }
    assert!(op.set_correction(gpu, &[0.0; 2]).is_err());
    assert!(op.set_correction(gpu, &[f32::NAN, 0.0, 0.0]).is_err());
    assert!(op.set_rows(gpu, 301).is_err());
}

#[test]
fn class_weight_correction_is_the_weighted_bce_optimum() {
    // A constant logit over n₊ positives weighted w₊ and n₋ negatives weighted w₋: Newton on the
    // weighted BCE in f64 lands on logit(p) + log(w₊/w₋), p = n₊/(n₊ + n₋).
    for (np, nn, wp, wn) in [
        (3.0, 97.0, 1.0, 0.1),
        (40.0, 60.0, 2.5, 1.0),
        (1.0, 9.0, 1.0, 1.0),
    ] {
        let mut zc = 0.0f64;
        for _ in 0..100 {
            let s = sigmoid(zc);
            let grad = wp * np * (s - 1.0) + wn * nn * s;
            let hess = (wp * np + wn * nn) * s * (1.0 - s);
            zc -= grad / hess;
        }
        let p: f64 = np / (np + nn);
        let want = (p / (1.0 - p)).ln() + class_weight_correction(wp, wn);
        assert!((zc - want).abs() < 1e-12, "{zc} vs {want}");
        // Serving z − correction recovers the unweighted rate.
        assert!((sigmoid(zc - class_weight_correction(wp, wn)) - p).abs() < 1e-12);
    }
    // Negative down-sampling at keep rate r is w₋ = r.
    for r in [0.01, 0.1, 0.5, 1.0] {
        for q in [0.001f64, 0.2, 0.5, 0.97] {
            let via_logit = sigmoid((q / (1.0 - q)).ln() - class_weight_correction(1.0, r));
            let direct = downsampled_probability(q, r);
            assert!((via_logit - direct).abs() < 1e-14, "r {r} q {q}");
            let want = r * q / (1.0 - q + r * q);
            assert_eq!(direct, want);
        }
    }
}

#[test]
fn weight_rule_follows_its_formulas() {
    let power = WeightRule {
        exposure: ExposureWeight::Power { gamma: 0.5 },
        positive: 2.0,
        negative: 0.5,
    };
    let w = power
        .weights(&[1.0, 4.0, 9.0, 0.0, f32::NAN], &[1.0, 0.0, 1.0, 0.0, 1.0])
        .expect("weights");
    let want = [2.0, 0.25, 2.0 / 3.0, 0.5, 2.0];
    for (g, e) in w.iter().zip(want) {
        assert!((*g as f64 - e).abs() <= e * 1e-7, "{w:?}");
    }
    assert!((power.logit_correction() - 4f64.ln()).abs() < 1e-15);
    let buckets = WeightRule {
        exposure: ExposureWeight::Buckets {
            uppers: vec![2.0, 5.0],
            weights: vec![1.0, 0.5, 0.2],
        },
        ..WeightRule::default()
    };
    let counts = [0.0, 1.0, 1.99, 2.0, 4.0, 5.0, 100.0];
    let w = buckets.weights(&counts, &[0.0; 7]).expect("weights");
    assert_eq!(w, vec![1.0, 1.0, 1.0, 0.5, 0.5, 0.2, 0.2]);
    assert_eq!(buckets.logit_correction(), 0.0);
    assert_eq!(
        WeightRule::default().weights(&[7.0], &[1.0]).unwrap(),
        [1.0]
    );
    // Bad rules are errors naming the field.
    let bad = [
        WeightRule {
            exposure: ExposureWeight::Power { gamma: -1.0 },
            ..WeightRule::default()
        },
        WeightRule {
            exposure: ExposureWeight::Buckets {
                uppers: vec![3.0, 3.0],
                weights: vec![1.0; 3],
            },
            ..WeightRule::default()
        },
        WeightRule {
            exposure: ExposureWeight::Buckets {
                uppers: vec![3.0],
                weights: vec![1.0],
            },
            ..WeightRule::default()
        },
        WeightRule {
            negative: 0.0,
            ..WeightRule::default()
        },
    ];
    for (rule, word) in bad
        .iter()
        .zip(["gamma", "uppers[1]", "weights", "negative"])
    {
        let e = rule.validate().expect_err("invalid").to_string();
        assert!(e.contains(word), "{e}");
    }
    assert!(power.weights(&[1.0], &[1.0, 0.0]).is_err());
}

#[test]
fn weights_from_a_rule_drive_the_gpu_loss() {
    // Exposure counts as a data column → weights → the weighted losses, against the reference.
    let mut p = random_problem(
        vec![LossKind::Bce, PAIR, LIST],
        200,
        190,
        &[0.2; 3],
        false,
        950,
    );
    let mut rng = Rng::new(951);
    let counts: Vec<f32> = (0..200).map(|_| 1.0 + rng.below(12) as f32).collect();
    let main: Vec<f32> = (0..200).map(|i| p.y[i * 3]).collect();
    let rule = WeightRule {
        exposure: ExposureWeight::Power { gamma: 0.7 },
        positive: 1.0,
        negative: 0.3,
    };
    p.w = Some(rule.weights(&counts, &main).expect("weights"));
    check(&p, "rule weights");
}
