//! Progressive validation: every batch is scored before it is trained on, and those scores are the
//! model's honest out-of-sample record. [`RollingMetrics`] takes them batch by batch and reports,
//! per task, over tumbling windows of `window` stream rows (rows `[k·window, (k+1)·window)` form
//! window `k`; a batch may straddle two windows), and a running total since the stream's start.
//!
//! A window's AUC, logloss, calibration, mean prediction and observed rate come from
//! [`crate::metrics::evaluate`], the code offline evaluation runs, so the numbers agree with
//! `wgrec eval` on the same rows. Rows without a label for a task (`MISSING_LABEL`) count as
//! stream rows but are left out of that task's metrics. The running total keeps compensated sums
//! only (memory does not grow with the stream), so it has logloss and the rates but no AUC (exact
//! AUC needs every score); its sums are the ones `crate::metrics` makes, in the same order, so the
//! total's logloss equals [`crate::metrics::logloss`] over all rows so far.
//!
//! The whole state, the partial window's scores and labels included, is serde and stores floats
//! as their bit patterns, so a checkpoint restores it exactly and a resumed run emits the windows
//! an uninterrupted one would have. See [`crate::online::log`] for the line a [`WindowReport`]
//! becomes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::kernels::loss::MISSING_LABEL;
use crate::metrics::{evaluate, Batch as MetricsBatch};
use crate::{Error, Result};

/// One task's metrics over one window. `None` where a metric is undefined (AUC with one class,
/// everything without labelled rows, calibration without positives).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowMetrics {
    /// Exact AUC (ties count half).
    pub auc: Option<f64>,
    /// Mean binary cross-entropy.
    pub logloss: Option<f64>,
    /// `mean_p / observed_rate`; 1 is calibrated.
    pub calibration: Option<f64>,
    /// Mean predicted probability.
    pub mean_p: Option<f64>,
    /// Fraction of positives.
    pub observed_rate: Option<f64>,
    /// Rows with a label for this task.
    pub labelled: u64,
}

/// One task's metrics since the stream's start (no AUC: see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TotalMetrics {
    /// Mean binary cross-entropy.
    pub logloss: Option<f64>,
    /// `mean_p / observed_rate`.
    pub calibration: Option<f64>,
    /// Mean predicted probability.
    pub mean_p: Option<f64>,
    /// Fraction of positives.
    pub observed_rate: Option<f64>,
    /// Rows with a label for this task.
    pub labelled: u64,
}

/// A window's report; serializes to one JSON object tagged `"event":"window"` (the log's line
/// format, [`crate::online::log`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename = "window")]
pub struct WindowReport {
    /// The window's index, from 0.
    pub window: u64,
    /// Its first and last stream row (0-based, inclusive; rows as scored, bad rows not counted).
    pub rows: [u64; 2],
    /// Per task (by name) over the window.
    pub tasks: BTreeMap<String, WindowMetrics>,
    /// Per task since the stream's start, through the window's last row.
    pub total: BTreeMap<String, TotalMetrics>,
}

impl WindowReport {
    /// The report as one line of JSON, without the line break.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("a window report is plain data")
    }
}

/// A compensated (Neumaier) sum, as `crate::metrics` sums: the same additions in the same order
/// give the same bits. Stored as bit patterns.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct ExactSum {
    sum: u64,
    compensation: u64,
}

impl ExactSum {
    fn add(&mut self, x: f64) {
        let (sum, mut compensation) = (f64::from_bits(self.sum), f64::from_bits(self.compensation));
        let t = sum + x;
        if sum.abs() >= x.abs() {
            compensation += (sum - t) + x;
        } else {
            compensation += (x - t) + sum;
        }
        (self.sum, self.compensation) = (t.to_bits(), compensation.to_bits());
    }

    fn value(&self) -> f64 {
        f64::from_bits(self.sum) + f64::from_bits(self.compensation)
    }
}

/// One task's running sums.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct RunningTotal {
    labelled: u64,
    positives: u64,
    loss: ExactSum,
    predicted: ExactSum,
    count: ExactSum,
}

impl RunningTotal {
    fn add(&mut self, p: f32, positive: bool) {
        let p = f64::from(p);
        let q = if positive { p } else { 1.0 - p };
        // Weight 1, as `metrics::probability` weighs unweighted rows: `-1 · ln`, `1 · p`.
        self.loss
            .add(-q.clamp(f64::EPSILON, 1.0 - f64::EPSILON).ln());
        self.predicted.add(p);
        self.count.add(1.0);
        self.labelled += 1;
        self.positives += u64::from(positive);
    }

    fn report(&self) -> TotalMetrics {
        let n = self.count.value();
        let rate = |x: f64| (self.labelled > 0).then(|| x / n);
        let (mean_p, observed_rate) = (rate(self.predicted.value()), rate(self.positives as f64));
        TotalMetrics {
            logloss: rate(self.loss.value()),
            calibration: mean_p
                .zip(observed_rate.filter(|&o| o > 0.0))
                .map(|(m, o)| m / o),
            mean_p,
            observed_rate,
            labelled: self.labelled,
        }
    }
}

/// The rolling progressive-validation state; see the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollingMetrics {
    tasks: Vec<String>,
    window: u64,
    /// Rows pushed since the stream's start.
    rows: u64,
    /// Windows reported.
    windows: u64,
    /// The partial window, per task: score and label bit patterns.
    scores: Vec<Vec<u32>>,
    labels: Vec<Vec<u32>>,
    totals: Vec<RunningTotal>,
}

impl RollingMetrics {
    /// A fresh state for `tasks` (names, in the score columns' order) and windows of `window` rows.
    pub fn new(tasks: Vec<String>, window: u64) -> Result<Self> {
        if window == 0 || tasks.is_empty() {
            return Err(Error::Metrics(format!(
                "rolling metrics need a window of at least 1 row and a task (window {window}, {} tasks)",
                tasks.len()
            )));
        }
        let n = tasks.len();
        Ok(RollingMetrics {
            tasks,
            window,
            rows: 0,
            windows: 0,
            scores: vec![Vec::new(); n],
            labels: vec![Vec::new(); n],
            totals: vec![RunningTotal::default(); n],
        })
    }

    /// Rows pushed since the stream's start.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Takes one scored batch (`scores` and `labels` row-major `[rows × tasks]`, labels 0, 1 or
    /// `MISSING_LABEL`) and returns the windows it completed. A bad input (lengths, a score
    /// outside [0, 1], a bad label) is an error naming the stream row and task, and leaves the
    /// state as it was.
    pub fn push(
        &mut self,
        scores: &[f32],
        labels: &[f32],
        rows: usize,
    ) -> Result<Vec<WindowReport>> {
        self.check(scores, labels, rows)?;
        let n = self.tasks.len();
        let mut reports = Vec::new();
        for r in 0..rows {
            for t in 0..n {
                let (p, y) = (scores[r * n + t], labels[r * n + t]);
                self.scores[t].push(p.to_bits());
                self.labels[t].push(y.to_bits());
                if y != MISSING_LABEL {
                    self.totals[t].add(p, y == 1.0);
                }
            }
            self.rows += 1;
            if self.scores[0].len() as u64 == self.window {
                reports.push(self.report()?);
                self.windows += 1;
                self.scores.iter_mut().for_each(Vec::clear);
                self.labels.iter_mut().for_each(Vec::clear);
            }
        }
        Ok(reports)
    }

    /// The report of the rows of the window not yet complete (`None` when it has none), e.g. at
    /// the end of a stream; the state is unchanged.
    pub fn partial(&self) -> Result<Option<WindowReport>> {
        if self.scores.first().is_none_or(Vec::is_empty) {
            return Ok(None);
        }
        self.report().map(Some)
    }

    fn check(&self, scores: &[f32], labels: &[f32], rows: usize) -> Result<()> {
        let n = self.tasks.len();
        let shapes_fit = n > 0
            && self.scores.len() == n
            && self.labels.len() == n
            && self.totals.len() == n
            && self
                .labels
                .iter()
                .chain(&self.scores[1..])
                .all(|v| v.len() == self.scores[0].len());
        if !shapes_fit {
            return Err(Error::Metrics(
                "rolling metrics: the stored state is inconsistent".into(),
            ));
        }
        let want = rows.saturating_mul(n);
        if scores.len() != want || labels.len() != want {
            return Err(Error::Metrics(format!(
                "rolling metrics: {} scores and {} labels for {rows} rows × {n} tasks",
                scores.len(),
                labels.len()
            )));
        }
        for (i, (&p, &y)) in scores.iter().zip(labels).enumerate() {
            let problem = if !(0.0..=1.0).contains(&p) {
                format!("score {p} is not a probability")
            } else if y != 0.0 && y != 1.0 && y != MISSING_LABEL {
                format!("label {y} is not 0, 1 or missing")
            } else {
                continue;
            };
            return Err(Error::Metrics(format!(
                "rolling metrics: stream row {}, task {:?}: {problem}",
                self.rows + (i / n) as u64,
                self.tasks[i % n]
            )));
        }
        Ok(())
    }

    /// The report of the rows in the window so far.
    fn report(&self) -> Result<WindowReport> {
        let mut tasks = BTreeMap::new();
        let mut total = BTreeMap::new();
        for (t, name) in self.tasks.iter().enumerate() {
            let scores: Vec<f32> = self.scores[t].iter().map(|&b| f32::from_bits(b)).collect();
            let labels: Vec<f32> = self.labels[t].iter().map(|&b| f32::from_bits(b)).collect();
            let batch = MetricsBatch {
                predictions: &scores,
                labels: &labels,
                weights: None,
                users: None,
            };
            let m = evaluate(&batch, 1)?.remove(0);
            let window = WindowMetrics {
                auc: m.auc,
                logloss: m.logloss,
                calibration: m.calibration,
                mean_p: m.mean_prediction,
                observed_rate: m.positive_rate,
                labelled: m.rows as u64,
            };
            tasks.insert(name.clone(), window);
            total.insert(name.clone(), self.totals[t].report());
        }
        let first = self.windows * self.window;
        Ok(WindowReport {
            window: self.windows,
            rows: [first, self.rows - 1],
            tasks,
            total,
        })
    }
}

#[cfg(test)]
#[path = "rolling_tests.rs"]
mod tests;
