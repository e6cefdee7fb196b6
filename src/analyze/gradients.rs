//! Where the loss gradient goes: the mean magnitude of ∂L/∂z on negatives and on positives, under
//! the BCE and under the combined ranking losses (METHODS.md §4.1).
//!
//! The ranking-loss paper's diagnosis is that with sparse positives BCE leaves negatives almost no
//! gradient (`p_j / N` each), and that the combined-pair loss adds `(1−α)/(N⁺N⁻) Σ_{i∈P} σ(z_j − z_i)`
//! to each negative. This section measures that on the trained model: it walks the training split
//! in the trainer's batches (the model's `batch_size` rows, file order — the order of a run without
//! `shuffle_window`), scores each batch with the model in evaluation mode (no dropout, BatchNorm's
//! running statistics), and computes in f64 on the host, per output, the gradient every loss would
//! give each logit: BCE, combined-pair and combined-list with the task's `alpha` (0.6 for pair and
//! 0.9 for list where the task trains with another loss, the paper's values). The formulas, the
//! per-sample weights (`[train.weights]`) and the missing-label rule are the loss kernel's
//! (`crate::kernels::loss`, tested against it in `kernels_tests/analyze_gradients.rs`).
//!
//! It is the gradient at the analysed checkpoint, not along the training trajectory: it compares
//! the losses on one model, and two models trained with different losses on their own losses.
//!
//! The logits are recovered from the served probabilities, `z = logit(p) + c` (`c` the class-weight
//! correction the serving path subtracts): exact to f32 rounding of `p`, which only matters for
//! `p` within ~1e-7 of 0 or 1.

use std::path::Path;

use serde::Serialize;

use super::Subject;
use crate::config::Loss;
use crate::error::Result;
use crate::gpu::Gpu;

/// The losses whose gradient is measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Which {
    /// Binary cross-entropy: `Σ w ℓ / Σ w`.
    Bce,
    /// `α·BCE + (1−α)·L_pair`.
    Pair(f64),
    /// `α·BCE + (1−α)·L_list`.
    List(f64),
}

/// Mean |∂L/∂z| of one loss on one output, over the training batches.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Magnitude {
    /// `"bce"`, `"pair"` or `"list"`.
    pub loss: String,
    /// The BCE weight α of a combined loss (1 for BCE).
    pub alpha: f64,
    /// Mean |∂L/∂z_j| over the negatives of every batch.
    pub negative: f64,
    /// Mean |∂L/∂z_i| over the positives of every batch.
    pub positive: f64,
    /// `negative × rows of the batch`, averaged: the per-negative gradient with the 1/N of the
    /// batch mean taken out, comparable across batch sizes.
    pub negative_scaled: f64,
}

/// The gradients of one output.
#[derive(Debug, Clone, Serialize)]
pub struct OutputGradients {
    /// The output (task or `task@scenario`).
    pub output: String,
    /// The loss the model trained this output with.
    pub trained_with: String,
    /// Labelled rows, positives, negatives seen.
    pub rows: u64,
    /// Positives.
    pub positives: u64,
    /// BCE, combined-pair, combined-list, in that order.
    pub losses: Vec<Magnitude>,
}

/// The section's result: one entry per output.
#[derive(Debug, Clone, Serialize)]
pub struct Gradients {
    /// The split walked (`train`).
    pub split: String,
    /// Batches of `batch_size` rows.
    pub batch_size: u32,
    /// Per output.
    pub outputs: Vec<OutputGradients>,
}

/// Per-sample gradients ∂L/∂z of `which` for one task of one batch (`z`, `y` and `w` of the batch's
/// rows; a label below 0 is missing: weight 0), exactly the loss kernel's definitions.
pub fn loss_gradients(which: Which, z: &[f64], y: &[f64], w: &[f64]) -> Vec<f64> {
    let w: Vec<f64> = w
        .iter()
        .zip(y)
        .map(|(&w, &y)| if y < 0.0 { 0.0 } else { w })
        .collect();
    let pos = |i: usize| y[i] > 0.5 && w[i] > 0.0;
    let neg = |i: usize| y[i] <= 0.5 && y[i] >= 0.0 && w[i] > 0.0;
    let total: f64 = w.iter().sum();
    if total == 0.0 {
        return vec![0.0; z.len()];
    }
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    let bce: Vec<f64> = (0..z.len())
        .map(|i| w[i] * (sigmoid(z[i]) - y[i].max(0.0)) / total)
        .collect();
    let wp: f64 = (0..z.len()).filter(|&i| pos(i)).map(|i| w[i]).sum();
    let wn: f64 = (0..z.len()).filter(|&i| neg(i)).map(|i| w[i]).sum();
    let (alpha, rank) = match which {
        Which::Bce => return bce,
        _ if wp == 0.0 || wn == 0.0 => return bce,
        Which::Pair(a) => (a, pair_gradients(z, &w, &pos, &neg, wp * wn)),
        Which::List(a) => (a, list_gradients(z, &w, &pos, wp)),
    };
    bce.iter()
        .zip(&rank)
        .map(|(b, r)| alpha * b + (1.0 - alpha) * r)
        .collect()
}

/// ∂L_pair/∂z: pairs (i ∈ P, j ∈ N) weigh `w_i w_j`, normalised by `W⁺W⁻`.
fn pair_gradients(
    z: &[f64],
    w: &[f64],
    pos: &dyn Fn(usize) -> bool,
    neg: &dyn Fn(usize) -> bool,
    norm: f64,
) -> Vec<f64> {
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    (0..z.len())
        .map(|k| {
            let other = |is: &dyn Fn(usize) -> bool| {
                (0..z.len())
                    .filter(|&m| is(m))
                    .map(|m| w[m] * sigmoid(if pos(k) { z[m] - z[k] } else { z[k] - z[m] }))
                    .sum::<f64>()
            };
            if pos(k) {
                -w[k] * other(neg) / norm
            } else if neg(k) {
                w[k] * other(pos) / norm
            } else {
                0.0
            }
        })
        .collect()
}

/// ∂L_list/∂z with `L_list = −Σ_{i∈P} w_i log(e^{z_i} / Σ_k w_k e^{z_k}) / W⁺`.
fn list_gradients(z: &[f64], w: &[f64], pos: &dyn Fn(usize) -> bool, wp: f64) -> Vec<f64> {
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let s: f64 = z.iter().zip(w).map(|(z, w)| w * (z - m).exp()).sum();
    (0..z.len())
        .map(|k| {
            let soft = w[k] * (z[k] - m).exp() / s;
            let own = if pos(k) { w[k] / wp } else { 0.0 };
            soft - own
        })
        .collect()
}

/// Walks the training split and measures every output's gradients.
pub fn analyze(gpu: &Gpu, subject: &mut Subject, _out: &Path) -> Result<Gradients> {
    let outputs = subject.config().outputs();
    let tasks = subject.config().tasks.clone();
    let c = subject.encoder().logit_correction();
    let batch_size = subject.predictor.max_batch();
    let mut acc: Vec<Accumulator> = outputs
        .iter()
        .map(|o| Accumulator::new(&tasks[o.task].loss, tasks[o.task].alpha as f64))
        .collect();
    for batch in subject.batches("train")? {
        let batch = batch?;
        let p = subject.predictor.predict(gpu, &batch)?;
        let u = outputs.len();
        let ones = vec![1.0f32; batch.rows];
        let w: Vec<f64> = batch
            .weights
            .as_ref()
            .unwrap_or(&ones)
            .iter()
            .map(|&v| v as f64)
            .collect();
        for (o, a) in acc.iter_mut().enumerate() {
            let z: Vec<f64> = (0..batch.rows)
                .map(|r| logit(p[r * u + o] as f64) + c)
                .collect();
            let y: Vec<f64> = (0..batch.rows)
                .map(|r| batch.labels[r * u + o] as f64)
                .collect();
            a.push(&z, &y, &w);
        }
    }
    Ok(Gradients {
        split: "train".into(),
        batch_size,
        outputs: outputs
            .iter()
            .zip(acc)
            .map(|(o, a)| a.finish(o.name.clone()))
            .collect(),
    })
}

fn logit(p: f64) -> f64 {
    let p = p.clamp(f64::MIN_POSITIVE, 1.0 - f64::EPSILON / 2.0);
    (p / (1.0 - p)).ln()
}

/// Sums of |gradient| per loss over a split's batches.
struct Accumulator {
    trained_with: String,
    losses: Vec<(Which, &'static str)>,
    /// Per loss: (Σ|g| negatives, Σ|g| positives, Σ|g|·rows negatives).
    sums: Vec<[f64; 3]>,
    rows: u64,
    positives: u64,
    negatives: u64,
}

impl Accumulator {
    fn new(loss: &Loss, alpha: f64) -> Self {
        let (pair, list) = match loss {
            Loss::Pair => (alpha, 0.9),
            Loss::List => (0.6, alpha),
            Loss::Bce => (0.6, 0.9),
        };
        let trained_with = match loss {
            Loss::Bce => "bce",
            Loss::Pair => "pair",
            Loss::List => "list",
        };
        let losses = vec![
            (Which::Bce, "bce"),
            (Which::Pair(pair), "pair"),
            (Which::List(list), "list"),
        ];
        Accumulator {
            trained_with: trained_with.into(),
            sums: vec![[0.0; 3]; losses.len()],
            losses,
            rows: 0,
            positives: 0,
            negatives: 0,
        }
    }

    fn push(&mut self, z: &[f64], y: &[f64], w: &[f64]) {
        let n = z.len() as f64;
        for (k, (which, _)) in self.losses.iter().enumerate() {
            let g = loss_gradients(*which, z, y, w);
            for (i, g) in g.iter().enumerate() {
                if y[i] > 0.5 {
                    self.sums[k][1] += g.abs();
                } else if y[i] >= 0.0 {
                    self.sums[k][0] += g.abs();
                    self.sums[k][2] += g.abs() * n;
                }
            }
        }
        // A label below 0 (`MISSING_LABEL`) is no label for this output.
        let rows = y.iter().filter(|&&y| y >= 0.0).count() as u64;
        let pos = y.iter().filter(|&&y| y > 0.5).count() as u64;
        self.rows += rows;
        self.positives += pos;
        self.negatives += rows - pos;
    }

    fn finish(self, output: String) -> OutputGradients {
        let per = |s: f64, n: u64| if n == 0 { 0.0 } else { s / n as f64 };
        OutputGradients {
            output,
            trained_with: self.trained_with,
            rows: self.rows,
            positives: self.positives,
            losses: self
                .losses
                .iter()
                .zip(&self.sums)
                .map(|((which, name), s)| Magnitude {
                    loss: (*name).into(),
                    alpha: match which {
                        Which::Bce => 1.0,
                        Which::Pair(a) | Which::List(a) => *a,
                    },
                    negative: per(s[0], self.negatives),
                    positive: per(s[1], self.positives),
                    negative_scaled: per(s[2], self.negatives),
                })
                .collect(),
        }
    }
}

impl Gradients {
    /// This section of `report.md`.
    pub fn markdown(&self) -> String {
        let mut md = format!(
            "## Loss gradients on negatives and positives\n\nMean |∂L/∂z| over the {} split in \
             batches of {} rows (file order), at this checkpoint, for each loss on the same logits \
             (METHODS.md §4.1). `× N`: the per-negative gradient times the batch's rows.\n\n\
             | output | trained with | rows | positives | loss | α | negatives | negatives × N | positives |\n\
             |---|---|---|---|---|---|---|---|---|\n",
            self.split, self.batch_size
        );
        for o in &self.outputs {
            for m in &o.losses {
                md.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} | {:.4e} | {:.4} | {:.4e} |\n",
                    o.output,
                    o.trained_with,
                    o.rows,
                    o.positives,
                    m.loss,
                    m.alpha,
                    m.negative,
                    m.negative_scaled,
                    m.positive
                ));
            }
        }
        md.push('\n');
        md
    }
}
