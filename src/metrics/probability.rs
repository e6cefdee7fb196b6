//! Metrics of the predicted probabilities themselves: logloss and calibration.
//!
//! Logloss matches scikit-learn's `log_loss` (checked against 1.9): probabilities are widened to f64,
//! `1 − p` is formed before clipping, and both are clipped to `[ε, 1 − ε]` with ε = `f64::EPSILON`
//! (2.2e-16, scikit-learn's `np.finfo(float64).eps` since it dropped the fixed `eps=1e-15` argument in
//! 1.5), so a confident wrong prediction costs −ln ε ≈ 36.04. The mean is weighted by the sample
//! weights when there are any.

use super::samples::Samples;

/// A compensated (Neumaier) sum: the error stays a few ulps of the result whatever the row count,
/// which is what lets metrics over millions of rows agree with NumPy's pairwise sums to 1e-12.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Sum {
    sum: f64,
    compensation: f64,
}

impl Sum {
    /// Adds `x`.
    pub(crate) fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.compensation += (self.sum - t) + x;
        } else {
            self.compensation += (x - t) + self.sum;
        }
        self.sum = t;
    }

    /// The sum so far.
    pub(crate) fn value(&self) -> f64 {
        self.sum + self.compensation
    }
}

/// Weighted mean binary cross-entropy of probabilities; `None` when there is no weight at all.
pub(crate) fn logloss_of(samples: &Samples) -> Option<f64> {
    let (mut loss, mut total) = (Sum::default(), Sum::default());
    for i in 0..samples.len() {
        let p = f64::from(samples.scores[i]);
        let q = if samples.labels[i] { p } else { 1.0 - p };
        let w = samples.weight(i);
        loss.add(-w * q.clamp(f64::EPSILON, 1.0 - f64::EPSILON).ln());
        total.add(w);
    }
    (total.value() > 0.0).then(|| loss.value() / total.value())
}

/// Weighted mean prediction and weighted observed positive rate; `None` when there is no weight.
pub(crate) fn rates_of(samples: &Samples) -> Option<(f64, f64)> {
    let (mut predicted, mut observed, mut total) = (Sum::default(), Sum::default(), Sum::default());
    for i in 0..samples.len() {
        let w = samples.weight(i);
        predicted.add(w * f64::from(samples.scores[i]));
        if samples.labels[i] {
            observed.add(w);
        }
        total.add(w);
    }
    let total = total.value();
    (total > 0.0).then(|| (predicted.value() / total, observed.value() / total))
}

/// Weighted mean prediction over weighted positive rate; `None` without positive weight.
pub(crate) fn calibration_of(samples: &Samples) -> Option<f64> {
    rates_of(samples)
        .and_then(|(predicted, observed)| (observed > 0.0).then_some(predicted / observed))
}
