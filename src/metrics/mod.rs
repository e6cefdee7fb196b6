//! Offline evaluation metrics, per task: exact AUC (ties count half), GAUC, logloss and calibration
//! (METHODS.md §5). Host-side f64 code over predictions read back from the device.
//!
//! Words: GAUC is the AUC of each *user*, averaged. A user here is the set of rows that share one
//! id of the column `train.group` names (usually a user id; any id such as a query's works the
//! same); [`UserIds`] carries those ids. "Group" is kept for expert groups elsewhere in wgrec, so
//! this module does not use it for users, except in GAUC's name and in two unchanged error
//! messages (`groups has N values`, `changes whether weights or groups are given`).
//!
//! Conventions shared by every function here:
//! - predictions are `f32` probabilities in [0, 1] (AUC alone accepts any non-NaN score); labels are
//!   `f32` and must be exactly 0 or 1, or [`MISSING_LABEL`](crate::kernels::loss::MISSING_LABEL)
//!   (−1): that row has no label for that task, and every metric of the task leaves it out (its
//!   `rows` and `positives` too; the other tasks still see the row); weights, when given, are
//!   finite and ≥ 0 and weight every metric (AUC pairs by `w_i · w_j`, GAUC users by their total
//!   weight, logloss and calibration as weighted means);
//! - a NaN prediction, a label other than 0/1 or a bad weight is an [`Error::Metrics`](crate::Error)
//!   that names the row (and the task);
//! - a metric that is undefined on the input is `None`, never a panic: AUC with one class (or no
//!   rows), GAUC when no user has both labels, logloss and rates on empty input (a task whose
//!   labels are all missing included), calibration without positives.
//!
//! [`MetricsAccumulator`] is the streaming form used by evaluation loops; [`auc`], [`gauc`],
//! [`logloss`] and [`calibration`] are one-shot forms over one task.

mod accumulator;
mod probability;
mod ranking;
mod samples;
mod spread;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_missing;

pub use accumulator::MetricsAccumulator;
pub use ranking::Gauc;
pub use spread::{SpreadAccumulator, SpreadBucket, SpreadReport};

use crate::Result;
use samples::{check_labels, check_len, check_scores, check_weights, Labelled, RowContext};

/// The user id of each row of a batch, for GAUC (a user id, a query id…: the `train.group` column).
#[derive(Debug, Clone, Copy)]
pub enum UserIds<'a> {
    /// 32-bit ids.
    U32(&'a [u32]),
    /// 64-bit ids.
    U64(&'a [u64]),
}

impl UserIds<'_> {
    /// Number of ids.
    pub fn len(&self) -> usize {
        match self {
            UserIds::U32(ids) => ids.len(),
            UserIds::U64(ids) => ids.len(),
        }
    }

    /// Whether there are no ids.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, i: usize) -> u64 {
        match self {
            UserIds::U32(ids) => u64::from(ids[i]),
            UserIds::U64(ids) => ids[i],
        }
    }

    fn to_u64(self) -> Vec<u64> {
        (0..self.len()).map(|i| self.get(i)).collect()
    }
}

/// One batch of evaluation rows.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// Predicted probabilities, row-major `[rows, tasks]`.
    pub predictions: &'a [f32],
    /// Labels (0 or 1, or −1 where missing), row-major `[rows, tasks]`.
    pub labels: &'a [f32],
    /// Per-row sample weights (shared by all tasks), or `None` for weight 1.
    pub weights: Option<&'a [f32]>,
    /// Per-row user ids for GAUC, or `None` to skip GAUC.
    pub users: Option<UserIds<'a>>,
}

/// One task's metrics. Each `Option` is `None` where the metric is undefined on the input.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskMetrics {
    /// Rows evaluated: those with a label for this task.
    pub rows: usize,
    /// Rows with label 1.
    pub positives: usize,
    /// Exact AUC; `None` with a single class.
    pub auc: Option<f64>,
    /// GAUC; `None` without user ids or when no user has both labels.
    pub gauc: Option<Gauc>,
    /// Mean binary cross-entropy; `None` without rows (or without weight).
    pub logloss: Option<f64>,
    /// (Weighted) mean prediction.
    pub mean_prediction: Option<f64>,
    /// (Weighted) fraction of positives.
    pub positive_rate: Option<f64>,
    /// `mean_prediction / positive_rate`; 1 is calibrated; `None` without positives.
    pub calibration: Option<f64>,
}

/// Every task's metrics over one batch: the accumulator pushed once and finished.
pub fn evaluate(batch: &Batch, tasks: usize) -> Result<Vec<TaskMetrics>> {
    let mut accumulator = MetricsAccumulator::new(tasks);
    accumulator.push(batch)?;
    Ok(accumulator.finish())
}

const ONE_SHOT: RowContext = RowContext {
    first_row: 0,
    task: None,
};

/// Validates one task's inputs and returns its labels (`None` where missing); `probabilities`
/// also requires scores in [0, 1].
fn validated(
    scores: &[f32],
    labels: &[f32],
    weights: Option<&[f32]>,
    probabilities: bool,
) -> Result<Vec<Option<bool>>> {
    check_len("labels", labels.len(), scores.len())?;
    if let Some(w) = weights {
        check_len("weights", w.len(), scores.len())?;
        check_weights(w, ONE_SHOT)?;
    }
    check_scores(scores, probabilities, ONE_SHOT)?;
    check_labels(labels, ONE_SHOT)
}

/// Exact AUC of `scores` (any non-NaN values) against 0/1 `labels` (rows whose label is missing
/// left out); `None` with a single class.
pub fn auc(scores: &[f32], labels: &[f32], weights: Option<&[f32]>) -> Result<Option<f64>> {
    let labels = validated(scores, labels, weights, false)?;
    let labelled = Labelled::keep(scores, &labels, weights, None);
    Ok(ranking::auc_of(&labelled.samples()))
}

/// GAUC: per-user AUC over the users with both labels, averaged weighted by each user's rows (or
/// total weight when weighted); `None` when no user has both labels.
pub fn gauc(
    scores: &[f32],
    labels: &[f32],
    users: UserIds,
    weights: Option<&[f32]>,
) -> Result<Option<Gauc>> {
    let labels = validated(scores, labels, weights, false)?;
    // The message keeps its old word (behaviour is unchanged by the issue 13 renames).
    check_len("groups", users.len(), scores.len())?;
    let ids = users.to_u64();
    let labelled = Labelled::keep(scores, &labels, weights, Some(&ids));
    let ids = labelled.users().expect("users were given");
    Ok(ranking::gauc_of(&labelled.samples(), ids))
}

/// Mean binary cross-entropy of probabilities, clipped as scikit-learn clips them (see
/// `probability`); `None` on empty input.
pub fn logloss(
    probabilities: &[f32],
    labels: &[f32],
    weights: Option<&[f32]>,
) -> Result<Option<f64>> {
    let labels = validated(probabilities, labels, weights, true)?;
    let labelled = Labelled::keep(probabilities, &labels, weights, None);
    Ok(probability::logloss_of(&labelled.samples()))
}

/// Mean prediction over observed positive rate; `None` without positives.
pub fn calibration(
    probabilities: &[f32],
    labels: &[f32],
    weights: Option<&[f32]>,
) -> Result<Option<f64>> {
    let labels = validated(probabilities, labels, weights, true)?;
    let labelled = Labelled::keep(probabilities, &labels, weights, None);
    Ok(probability::calibration_of(&labelled.samples()))
}
