//! Validated evaluation rows: every score is a number, every label is 0 or 1 (or the missing-label
//! sentinel, whose rows [`Labelled`] leaves out per task), every weight is finite and
//! non-negative. The metrics below this module trust these and never check again.

use crate::kernels::loss::MISSING_LABEL;
use crate::{Error, Result};

/// Scores, binary labels and optional weights of one task, already validated.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Samples<'a> {
    pub(crate) scores: &'a [f32],
    pub(crate) labels: &'a [bool],
    pub(crate) weights: Option<&'a [f32]>,
}

impl Samples<'_> {
    pub(crate) fn len(&self) -> usize {
        self.scores.len()
    }

    pub(crate) fn weight(&self, i: usize) -> f64 {
        self.weights.map_or(1.0, |w| f64::from(w[i]))
    }
}

/// One task's labelled rows, copied out of a stream that may miss labels: the scores, labels,
/// weights and user ids of the rows whose label is not missing, in their order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Labelled {
    scores: Vec<f32>,
    labels: Vec<bool>,
    weights: Option<Vec<f32>>,
    users: Option<Vec<u64>>,
}

impl Labelled {
    /// Keeps row `i` of the inputs when `labels[i]` is `Some` (all slices have the same length).
    pub(crate) fn keep(
        scores: &[f32],
        labels: &[Option<bool>],
        weights: Option<&[f32]>,
        users: Option<&[u64]>,
    ) -> Self {
        let kept: Vec<usize> = (0..labels.len()).filter(|&i| labels[i].is_some()).collect();
        Labelled {
            scores: kept.iter().map(|&i| scores[i]).collect(),
            labels: labels.iter().flatten().copied().collect(),
            weights: weights.map(|w| kept.iter().map(|&i| w[i]).collect()),
            users: users.map(|u| kept.iter().map(|&i| u[i]).collect()),
        }
    }

    /// The kept rows as [`Samples`].
    pub(crate) fn samples(&self) -> Samples<'_> {
        Samples {
            scores: &self.scores,
            labels: &self.labels,
            weights: self.weights.as_deref(),
        }
    }

    /// The kept rows' user ids (when given).
    pub(crate) fn users(&self) -> Option<&[u64]> {
        self.users.as_deref()
    }
}

/// Where a row sits, for error messages: its index in the whole stream and its task.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowContext {
    /// Rows already seen before this slice (0 for a one-shot call).
    pub(crate) first_row: usize,
    /// The task, when there is more than one.
    pub(crate) task: Option<usize>,
}

impl RowContext {
    fn row(&self, i: usize) -> String {
        match self.task {
            Some(t) => format!("row {} (task {t})", self.first_row + i),
            None => format!("row {}", self.first_row + i),
        }
    }
}

/// Rejects a NaN score (and, when `probabilities`, one outside [0, 1]) naming the row.
pub(crate) fn check_scores(scores: &[f32], probabilities: bool, at: RowContext) -> Result<()> {
    for (i, &s) in scores.iter().enumerate() {
        if s.is_nan() {
            return Err(Error::Metrics(format!(
                "prediction for {} is NaN",
                at.row(i)
            )));
        }
        if probabilities && !(0.0..=1.0).contains(&s) {
            return Err(Error::Metrics(format!(
                "prediction for {} is {s}, not a probability in [0, 1]",
                at.row(i)
            )));
        }
    }
    Ok(())
}

/// Labels as booleans, `None` for a missing one (exactly [`MISSING_LABEL`], −1); anything else
/// but exactly 0 or 1 is an error naming the row.
pub(crate) fn check_labels(labels: &[f32], at: RowContext) -> Result<Vec<Option<bool>>> {
    labels
        .iter()
        .enumerate()
        .map(|(i, &y)| match y {
            0.0 => Ok(Some(false)),
            1.0 => Ok(Some(true)),
            MISSING_LABEL => Ok(None),
            _ => Err(Error::Metrics(format!(
                "label for {} is {y}; labels must be 0 or 1 (or {MISSING_LABEL}: missing)",
                at.row(i)
            ))),
        })
        .collect()
}

/// Rejects a negative, infinite or NaN weight naming the row.
pub(crate) fn check_weights(weights: &[f32], at: RowContext) -> Result<()> {
    match weights.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
        Some(i) => Err(Error::Metrics(format!(
            "weight for {} is {}; weights must be finite and ≥ 0",
            at.row(i),
            weights[i]
        ))),
        None => Ok(()),
    }
}

/// Rejects a slice whose length is not `expected`.
pub(crate) fn check_len(what: &str, len: usize, expected: usize) -> Result<()> {
    if len == expected {
        Ok(())
    } else {
        Err(Error::Metrics(format!(
            "{what} has {len} values, expected {expected}"
        )))
    }
}
