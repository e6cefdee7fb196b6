//! The calibration of an uncertainty head (issue 18): is the model's error larger where it says
//! it is unsure? Rows are bucketed by the belief's spread (its standard deviation in logits,
//! [`Belief::sd_logit`]) into equal-count buckets, and each bucket reports the spread it predicted
//! beside the error it made.
//!
//! The error of a bucket is `|ȳ − p̄|`: the gap between its click rate and its mean predicted
//! probability (the point model's `p`), with the binomial standard error `√(Σ p(1 − p)) / n` that
//! a calibrated model's gap would show by chance. One click per row cannot tell a row's own
//! error (a Bernoulli label has variance `p(1 − p)` whatever the belief), so the comparison is by
//! bucket: a useful spread puts the large gaps in the wide buckets. The predicted spread is also
//! given in probability units, `σ(m)(1 − σ(m))·sd` (the delta method), to set beside the gap.
//! With a planted truth (the simulation) the error can be measured per row instead.

use serde::Serialize;

use crate::explore::{sigmoid, Belief};

/// One bucket of rows of similar spread.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpreadBucket {
    /// Rows.
    pub rows: usize,
    /// Smallest and largest spread (logits) in the bucket.
    pub sd_range: (f64, f64),
    /// Mean spread in logits.
    pub mean_sd: f64,
    /// Mean spread in probability (delta method).
    pub mean_sd_probability: f64,
    /// Mean predicted probability (the point model).
    pub mean_p: f64,
    /// Click rate.
    pub positive_rate: f64,
    /// `|positive_rate − mean_p|`.
    pub error: f64,
    /// `√mean((y − p)²)`: with labels the Brier score's root, mostly the labels' own noise; with
    /// a planted truth as `y` (the simulation) each row's own error, to set beside its spread.
    pub rmse: f64,
    /// The binomial standard error of that gap under calibration.
    pub standard_error: f64,
}

/// One output's buckets, narrowest spread first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpreadReport {
    /// The output's metric name.
    pub output: String,
    /// The buckets.
    pub buckets: Vec<SpreadBucket>,
}

/// Collects (spread, p, label) per output over an evaluation.
#[derive(Debug, Clone)]
pub struct SpreadAccumulator {
    names: Vec<String>,
    rows: Vec<Vec<Row>>,
}

/// One labelled row: spread in logits and in probability, the point model's p, the label.
#[derive(Debug, Clone, Copy)]
struct Row {
    sd: f64,
    sd_p: f64,
    p: f64,
    y: f64,
}

impl SpreadAccumulator {
    /// For outputs named `names` (those without a head are skipped at the end).
    pub fn new(names: Vec<String>) -> Self {
        let rows = vec![Vec::new(); names.len()];
        SpreadAccumulator { names, rows }
    }

    /// One batch: the point model's `probs` and `labels` `[rows, outputs]` and the belief.
    /// Missing labels (< 0) are skipped. A planted truth's click probabilities may stand in for
    /// the labels: every field then measures against the truth.
    pub fn push(&mut self, probs: &[f32], labels: &[f32], belief: &Belief) {
        let outputs = self.names.len();
        for r in 0..belief.rows() {
            for u in (0..outputs).filter(|&u| belief.active[u]) {
                let y = labels[r * outputs + u];
                if y < 0.0 {
                    continue;
                }
                let (sd, m) = (belief.sd_logit(r, u), belief.mean_logit(r, u));
                let q = sigmoid(m);
                let row = Row {
                    sd,
                    sd_p: q * (1.0 - q) * sd,
                    p: probs[r * outputs + u] as f64,
                    y: y as f64,
                };
                self.rows[u].push(row);
            }
        }
    }

    /// Each output with rows, in `buckets` equal-count buckets by spread (fewer with fewer rows).
    pub fn finish(mut self, buckets: usize) -> Vec<SpreadReport> {
        let mut out = Vec::new();
        for (name, mut rows) in self.names.drain(..).zip(self.rows.drain(..)) {
            if rows.is_empty() {
                continue;
            }
            rows.sort_by(|a, b| a.sd.total_cmp(&b.sd));
            let k = buckets.clamp(1, rows.len());
            let buckets = (0..k)
                .map(|i| bucket(&rows[i * rows.len() / k..(i + 1) * rows.len() / k]))
                .collect();
            out.push(SpreadReport {
                output: name,
                buckets,
            });
        }
        out
    }
}

fn bucket(rows: &[Row]) -> SpreadBucket {
    let n = rows.len() as f64;
    let mean = |f: &dyn Fn(&Row) -> f64| rows.iter().map(f).sum::<f64>() / n;
    let (mean_p, rate) = (mean(&|r| r.p), mean(&|r| r.y));
    let variance: f64 = rows.iter().map(|r| r.p * (1.0 - r.p)).sum();
    SpreadBucket {
        rows: rows.len(),
        sd_range: (rows[0].sd, rows[rows.len() - 1].sd),
        mean_sd: mean(&|r| r.sd),
        mean_sd_probability: mean(&|r| r.sd_p),
        mean_p,
        positive_rate: rate,
        error: (rate - mean_p).abs(),
        rmse: mean(&|r| (r.y - r.p).powi(2)).sqrt(),
        standard_error: variance.sqrt() / n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BootstrapMask, Uncertainty};

    #[test]
    fn buckets_split_by_spread_and_report_the_gap() {
        // Two heads per row: spread |a − b| / √2; rows 0..4 narrow, 4..8 wide.
        let kind = Uncertainty::Bootstrap {
            heads: 2,
            mask: BootstrapMask::Poisson,
        };
        let mut values = Vec::new();
        for r in 0..8 {
            let d = if r < 4 { 0.1 } else { 2.0 };
            values.extend([-d, d]);
        }
        let belief = Belief {
            kind,
            outputs: 1,
            width: 2,
            active: vec![true],
            values,
        };
        let probs = [0.5f32; 8];
        let labels = [0.0, 1.0, 0.0, 1.0, 1.0, -1.0, 1.0, 1.0];
        let mut acc = SpreadAccumulator::new(vec!["click".into()]);
        acc.push(&probs, &labels, &belief);
        let report = acc.finish(2);
        let b = &report[0].buckets;
        // 7 labelled rows (row 5's label is missing): the 4 narrow ones, then 3 of the wide.
        assert_eq!((b[0].rows, b[1].rows), (3, 4), "split 3 / 4 by count");
        assert!((b[0].mean_sd - 0.2 / 2f64.sqrt()).abs() < 1e-6);
        let mixed = (0.2 + 3.0 * 4.0) / 2f64.sqrt() / 4.0;
        assert!((b[1].mean_sd - mixed).abs() < 1e-6);
        assert_eq!(b[1].sd_range.1 as f32, (4.0 / 2f64.sqrt()) as f32);
        // Narrow rows 0, 1, 2 (labels 0, 1, 0): rate 1/3; then rows 3, 4, 6, 7 (all 1).
        assert!((b[0].error - (0.5 - 1.0 / 3.0)).abs() < 1e-12);
        assert!((b[1].error - 0.5).abs() < 1e-12);
        assert!(
            (b[0].rmse - 0.5).abs() < 1e-12,
            "every label is 0.5 from p = 0.5"
        );
        assert!((b[1].standard_error - (4.0f64 * 0.25).sqrt() / 4.0).abs() < 1e-12);
        assert!((b[1].mean_sd_probability - 0.25 * mixed).abs() < 1e-6);
    }
}
