//! The streaming evaluator: push batches of `[rows, tasks]` predictions and labels (with optional
//! per-row weights and user ids for GAUC) as they come off the device, then `finish()` for every task's
//! metrics. Exact AUC needs every score, so the accumulator keeps them (4 bytes of score and 1 of
//! label per row and task, plus 4 of weight and 8 of user id per row); `finish` sorts copies.
//!
//! Missing labels: a row whose label of task `t` is missing is kept (the other tasks may have
//! theirs) and `finish` leaves it out of task `t`'s metrics, counts included: each task sees its
//! labelled rows only, in stream order, so a stream without missing labels gives the metrics it
//! gave before labels could be missing.

use super::probability::{calibration_of, logloss_of, rates_of};
use super::ranking::{auc_of, gauc_of};
use super::samples::{
    check_labels, check_len, check_scores, check_weights, Labelled, RowContext, Samples,
};
use super::{Batch, TaskMetrics};
use crate::{Error, Result};

/// Collects evaluation rows batch by batch for `tasks` tasks.
#[derive(Debug, Clone)]
pub struct MetricsAccumulator {
    tasks: usize,
    rows: usize,
    predictions: Vec<Vec<f32>>,
    /// `None` where the row's label of the task is missing.
    labels: Vec<Vec<Option<bool>>>,
    weights: Option<Vec<f32>>,
    users: Option<Vec<u64>>,
}

impl MetricsAccumulator {
    /// An empty accumulator for `tasks` tasks (predictions and labels have `tasks` columns).
    pub fn new(tasks: usize) -> Self {
        MetricsAccumulator {
            tasks,
            rows: 0,
            predictions: vec![Vec::new(); tasks],
            labels: vec![Vec::new(); tasks],
            weights: None,
            users: None,
        }
    }

    /// Rows pushed so far (with a label or not).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Validates a batch and appends it. On error nothing is appended. Weights and user ids must be
    /// given in every batch or in none (decided by the first non-empty batch).
    pub fn push(&mut self, batch: &Batch) -> Result<()> {
        let rows = self.check_batch(batch)?;
        let mut columns = Vec::with_capacity(self.tasks);
        for task in 0..self.tasks {
            let at = RowContext {
                first_row: self.rows,
                task: (self.tasks > 1).then_some(task),
            };
            let scores: Vec<f32> = column(batch.predictions, self.tasks, task);
            check_scores(&scores, true, at)?;
            let labels = check_labels(&column(batch.labels, self.tasks, task), at)?;
            columns.push((scores, labels));
        }
        if let Some(w) = batch.weights {
            let at = RowContext {
                first_row: self.rows,
                task: None,
            };
            check_weights(w, at)?;
        }
        if rows == 0 {
            return Ok(());
        }
        for (task, (scores, labels)) in columns.into_iter().enumerate() {
            self.predictions[task].extend(scores);
            self.labels[task].extend(labels);
        }
        if let Some(w) = batch.weights {
            self.weights
                .get_or_insert_with(Vec::new)
                .extend_from_slice(w);
        }
        if let Some(ids) = &batch.users {
            let all = self.users.get_or_insert_with(Vec::new);
            all.extend((0..rows).map(|i| ids.get(i)));
        }
        self.rows += rows;
        Ok(())
    }

    /// Checks shapes and that weights and user ids are given consistently; returns the batch's
    /// rows. (Two messages keep the old word "groups" for user ids: behaviour is unchanged.)
    fn check_batch(&self, batch: &Batch) -> Result<usize> {
        if self.tasks == 0 {
            return Err(Error::Metrics(
                "an accumulator needs at least one task".into(),
            ));
        }
        let rows = batch.predictions.len() / self.tasks;
        check_len("predictions", batch.predictions.len(), rows * self.tasks)?;
        check_len("labels", batch.labels.len(), rows * self.tasks)?;
        if let Some(w) = batch.weights {
            check_len("weights", w.len(), rows)?;
        }
        if let Some(ids) = &batch.users {
            check_len("groups", ids.len(), rows)?;
        }
        if self.rows > 0 && rows > 0 {
            let consistent = (batch.weights.is_some() == self.weights.is_some())
                && (batch.users.is_some() == self.users.is_some());
            if !consistent {
                return Err(Error::Metrics(format!(
                    "batch starting at row {} changes whether weights or groups are given",
                    self.rows
                )));
            }
        }
        Ok(rows)
    }

    /// Every task's metrics over its labelled rows pushed so far. A task without a labelled row
    /// (or empty input) gives rows = 0 and `None` metrics, never an error.
    pub fn finish(&self) -> Vec<TaskMetrics> {
        (0..self.tasks).map(|task| self.pooled(&[task])).collect()
    }

    /// Metrics over the labelled rows of several columns together, one result per pool: a task
    /// over all its scenarios, where each row is labelled in its own scenario's column only, so
    /// the pool scores every row once with its own scenario's prediction. Weights and user ids
    /// follow their rows.
    pub fn finish_pooled(&self, pools: &[Vec<usize>]) -> Vec<TaskMetrics> {
        pools.iter().map(|columns| self.pooled(columns)).collect()
    }

    fn pooled(&self, columns: &[usize]) -> TaskMetrics {
        let (weights, users) = (self.weights.as_deref(), self.users.as_deref());
        let labelled = match columns {
            [c] => Labelled::keep(&self.predictions[*c], &self.labels[*c], weights, users),
            _ => {
                let scores: Vec<f32> = columns
                    .iter()
                    .flat_map(|&c| self.predictions[c].clone())
                    .collect();
                let labels: Vec<Option<bool>> = columns
                    .iter()
                    .flat_map(|&c| self.labels[c].clone())
                    .collect();
                let weights: Option<Vec<f32>> = weights.map(|v| repeat(v, columns.len()));
                let users: Option<Vec<u64>> = users.map(|v| repeat(v, columns.len()));
                Labelled::keep(&scores, &labels, weights.as_deref(), users.as_deref())
            }
        };
        task_metrics(&labelled.samples(), labelled.users())
    }
}

/// `v` repeated `n` times.
fn repeat<T: Copy>(v: &[T], n: usize) -> Vec<T> {
    (0..n).flat_map(|_| v.iter().copied()).collect()
}

/// Column `task` of a row-major `[rows, tasks]` matrix.
fn column(matrix: &[f32], tasks: usize, task: usize) -> Vec<f32> {
    matrix.iter().skip(task).step_by(tasks).copied().collect()
}

/// One task's metrics over validated samples (GAUC when `users` holds each row's user id).
pub(crate) fn task_metrics(samples: &Samples, users: Option<&[u64]>) -> TaskMetrics {
    let rates = rates_of(samples);
    TaskMetrics {
        rows: samples.len(),
        positives: samples.labels.iter().filter(|&&y| y).count(),
        auc: auc_of(samples),
        gauc: users.and_then(|ids| gauc_of(samples, ids)),
        logloss: logloss_of(samples),
        mean_prediction: rates.map(|r| r.0),
        positive_rate: rates.map(|r| r.1),
        calibration: calibration_of(samples),
    }
}
