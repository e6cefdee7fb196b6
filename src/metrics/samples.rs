//! Validated evaluation rows: every score is a number, every label is 0 or 1, every weight is finite
//! and non-negative. The metrics below this module trust these and never check again.

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

/// Labels as booleans; anything but exactly 0 or 1 is an error naming the row.
pub(crate) fn check_labels(labels: &[f32], at: RowContext) -> Result<Vec<bool>> {
    labels
        .iter()
        .enumerate()
        .map(|(i, &y)| match y {
            0.0 => Ok(false),
            1.0 => Ok(true),
            _ => Err(Error::Metrics(format!(
                "label for {} is {y}; labels must be 0 or 1",
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
