//! What an uncertainty head says about one batch: per (row, output) a belief over the logit —
//! K bootstrap logits, or a Gaussian `N(μ, s²)` — read back beside the probabilities.
//!
//! Everything here is in logit space, where the heads are trained: the mean and spread of the
//! belief ([`Belief::mean_logit`], [`Belief::sd_logit`]) and one posterior draw
//! ([`Belief::sample_logit`]). A policy turns logits into probabilities with the sigmoid at the
//! end, so a UCB or Thompson score is `σ(·)` of a logit, comparable with the point model's `p`.

use crate::config::Uncertainty;

/// The range `log s²` is clamped to before `s = exp(½ log s²)`, on the GPU and here alike: `s`
/// in [e⁻⁸, e⁴] ≈ [3·10⁻⁴, 55] logits, wide enough for any belief a click model needs and far
/// from `exp` overflow.
pub const LOG_VAR_RANGE: (f32, f32) = (-16.0, 8.0);

/// One posterior draw's randomness for one (request, ad): the bootstrap head (the same for every
/// ad of a request) and a standard normal (fresh per ad) for the Gaussian head.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Draw {
    /// Bootstrap head index, `< heads`.
    pub head: usize,
    /// A standard normal ε.
    pub normal: f64,
}

/// The uncertainty heads' outputs for a batch (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Belief {
    /// The head's kind.
    pub kind: Uncertainty,
    /// Outputs (tasks, or tasks in scenarios) per row.
    pub outputs: usize,
    /// Values per (row, output): K logits, or μ and log s².
    pub width: usize,
    /// Per output: whether its task has the head (the others' values are meaningless).
    pub active: Vec<bool>,
    /// `[rows, outputs, width]` row-major.
    pub values: Vec<f32>,
}

impl Belief {
    /// Rows of the batch.
    pub fn rows(&self) -> usize {
        self.values.len() / (self.outputs * self.width).max(1)
    }

    /// The `width` values of (row, output).
    pub fn raw(&self, row: usize, output: usize) -> &[f32] {
        let at = (row * self.outputs + output) * self.width;
        &self.values[at..at + self.width]
    }

    /// The belief's mean logit: the heads' mean, or μ.
    pub fn mean_logit(&self, row: usize, output: usize) -> f64 {
        let v = self.raw(row, output);
        match self.kind {
            Uncertainty::Bootstrap { .. } => mean(v),
            Uncertainty::Gaussian => v[0] as f64,
        }
    }

    /// The belief's standard deviation in logits: the heads' sample deviation (n − 1), or s.
    pub fn sd_logit(&self, row: usize, output: usize) -> f64 {
        let v = self.raw(row, output);
        match self.kind {
            Uncertainty::Bootstrap { .. } => {
                let m = mean(v);
                let ss: f64 = v.iter().map(|&x| (x as f64 - m).powi(2)).sum();
                (ss / (v.len() - 1) as f64).sqrt()
            }
            Uncertainty::Gaussian => gaussian_sd(v[1]),
        }
    }

    /// One posterior draw of the logit: head `draw.head`'s logit, or `μ + s·draw.normal`.
    pub fn sample_logit(&self, row: usize, output: usize, draw: Draw) -> f64 {
        let v = self.raw(row, output);
        match self.kind {
            Uncertainty::Bootstrap { .. } => v[draw.head] as f64,
            Uncertainty::Gaussian => v[0] as f64 + gaussian_sd(v[1]) * draw.normal,
        }
    }

    /// Bootstrap heads K (1 for the Gaussian head, whose draws need no head).
    pub fn heads(&self) -> usize {
        match self.kind {
            Uncertainty::Bootstrap { heads, .. } => heads as usize,
            Uncertainty::Gaussian => 1,
        }
    }
}

fn mean(v: &[f32]) -> f64 {
    v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64
}

/// `s = exp(½ · clamp(log s²))`.
pub fn gaussian_sd(log_var: f32) -> f64 {
    let (lo, hi) = LOG_VAR_RANGE;
    (0.5 * log_var.clamp(lo, hi) as f64).exp()
}

/// The logistic sigmoid in f64.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}
