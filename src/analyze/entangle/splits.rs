//! Comparable samples (the STEM paper, Su, Pan et al. AAAI 2024, §"comparable samples"; METHODS.md
//! §3): split the test samples by how their user's positive feedback divides between the tasks,
//! and score each task on each split. Under interest entanglement a shared embedding follows the
//! task with more positives, so the task a user rarely converts on loses most where its share is
//! smallest; separate embeddings (STEM) should narrow that gap.
//!
//! A user is a value of the `train.group` column. Over the TRAINING split, each user's positives
//! per task `pos_t` (rows labelled 1; missing labels count nowhere) give the ratio
//! `ρ_u = pos_0 / Σ_t pos_t`: the share of the first task among all the tasks' positives (with two
//! tasks exactly `pos_0 / (pos_0 + pos_1)`). Test samples whose user has no training positive (or
//! never appears in training) form the bin `none`; the others are ranked by `ρ` (ties kept
//! together, file order inside) and cut into [`QUANTILES`] bins of as equal size as the ties allow:
//! a sample goes to bin `⌊Q · r / n⌋`, `r` the rank of the first sample with its `ρ`. Each bin
//! reports its `ρ` range, users, samples, and per task the exact AUC ([`crate::metrics::auc`], null
//! with one class) and positives.

use std::collections::HashMap;

use serde::Serialize;

use crate::error::{Error, Result};

/// Quantile bins of the ratio.
pub const QUANTILES: usize = 5;

/// Each user's positives per task in the training split.
#[derive(Debug, Clone, Default)]
pub struct PositiveCounts {
    tasks: usize,
    by_user: HashMap<u64, Vec<u64>>,
}

impl PositiveCounts {
    /// No users yet, `tasks` label columns.
    pub fn new(tasks: usize) -> Self {
        PositiveCounts {
            tasks,
            by_user: HashMap::new(),
        }
    }

    /// Counts one batch: `users` `[rows]`, `labels` `[rows, tasks]` (1 counts; 0 and −1 do not).
    pub fn push(&mut self, users: &[u64], labels: &[f32]) -> Result<()> {
        check_rows("training labels", labels.len(), users.len(), self.tasks)?;
        for (b, &user) in users.iter().enumerate() {
            let counts = (self.by_user)
                .entry(user)
                .or_insert_with(|| vec![0; self.tasks]);
            for (t, &y) in labels[b * self.tasks..][..self.tasks].iter().enumerate() {
                counts[t] += u64::from(y == 1.0);
            }
        }
        Ok(())
    }

    /// `ρ_u` (module docs); `None` for a user without training positives.
    pub fn ratio(&self, user: u64) -> Option<f64> {
        let counts = self.by_user.get(&user)?;
        let total: u64 = counts.iter().sum();
        (total > 0).then(|| counts[0] as f64 / total as f64)
    }
}

/// One split of the test samples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Split {
    /// `q1` … `q5` (ascending ρ), `none` (no training positives) or `all`.
    pub bin: String,
    /// Smallest and largest ρ in the bin; null for `none`, `all` and an empty bin.
    pub range: Option<[f64; 2]>,
    /// Distinct users.
    pub users: usize,
    /// Test samples.
    pub rows: usize,
    /// Per task: exact AUC, null with one class (or no labelled sample).
    pub auc: Vec<Option<f64>>,
    /// Per task: samples labelled 1.
    pub positives: Vec<usize>,
}

/// The test samples to split: `users` `[rows]`, `labels` and `predictions` `[rows, tasks]`.
#[derive(Debug, Clone, Copy)]
pub struct Scored<'a> {
    /// Label columns (tasks or outputs).
    pub tasks: usize,
    /// Each sample's user.
    pub users: &'a [u64],
    /// 0, 1, or −1 (missing).
    pub labels: &'a [f32],
    /// Probabilities.
    pub predictions: &'a [f32],
}

/// The [`QUANTILES`] ratio bins, then `none`, then `all` (every test sample).
pub fn comparable_splits(counts: &PositiveCounts, test: Scored) -> Result<Vec<Split>> {
    check_rows(
        "test labels",
        test.labels.len(),
        test.users.len(),
        test.tasks,
    )?;
    check_rows(
        "predictions",
        test.predictions.len(),
        test.users.len(),
        test.tasks,
    )?;
    let ratios: Vec<Option<f64>> = test.users.iter().map(|&u| counts.ratio(u)).collect();
    let bins = assign_bins(&ratios, QUANTILES);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); QUANTILES + 1];
    for (i, bin) in bins.iter().enumerate() {
        members[bin.unwrap_or(QUANTILES)].push(i);
    }
    members.push((0..test.users.len()).collect());
    let mut splits = Vec::with_capacity(members.len());
    for (k, rows) in members.iter().enumerate() {
        let bin = match k {
            k if k < QUANTILES => format!("q{}", k + 1),
            k if k == QUANTILES => "none".into(),
            _ => "all".into(),
        };
        let range = (k < QUANTILES)
            .then(|| ratio_range(rows.iter().filter_map(|&i| ratios[i])))
            .flatten();
        splits.push(score(bin, range, rows, test)?);
    }
    Ok(splits)
}

/// Each ratio's bin `⌊q · r / n⌋` (`r` the rank of the first equal ratio, `n` the ratios
/// present); `None` stays `None`. A NaN ratio cannot occur (counts are integers).
pub fn assign_bins(ratios: &[Option<f64>], q: usize) -> Vec<Option<usize>> {
    let mut order: Vec<(f64, usize)> = (ratios.iter().enumerate())
        .filter_map(|(i, r)| r.map(|r| (r, i)))
        .collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let n = order.len();
    let mut bins = vec![None; ratios.len()];
    let mut first = 0;
    for (rank, &(r, i)) in order.iter().enumerate() {
        if r != order[first].0 {
            first = rank;
        }
        bins[i] = Some(q * first / n);
    }
    bins
}

fn ratio_range(ratios: impl Iterator<Item = f64>) -> Option<[f64; 2]> {
    ratios.fold(None, |acc, r| match acc {
        None => Some([r, r]),
        Some([lo, hi]) => Some([lo.min(r), hi.max(r)]),
    })
}

/// One split's users, rows, and per-task AUC and positives over the samples `rows`.
fn score(bin: String, range: Option<[f64; 2]>, rows: &[usize], test: Scored) -> Result<Split> {
    let t_n = test.tasks;
    let mut users: Vec<u64> = rows.iter().map(|&i| test.users[i]).collect();
    users.sort_unstable();
    users.dedup();
    let mut auc = Vec::with_capacity(t_n);
    let mut positives = Vec::with_capacity(t_n);
    for t in 0..t_n {
        let labels: Vec<f32> = rows.iter().map(|&i| test.labels[i * t_n + t]).collect();
        let scores: Vec<f32> = rows
            .iter()
            .map(|&i| test.predictions[i * t_n + t])
            .collect();
        positives.push(labels.iter().filter(|&&y| y == 1.0).count());
        auc.push(crate::metrics::auc(&scores, &labels, None)?);
    }
    Ok(Split {
        bin,
        range,
        users: users.len(),
        rows: rows.len(),
        auc,
        positives,
    })
}

fn check_rows(what: &str, len: usize, rows: usize, tasks: usize) -> Result<()> {
    if len == rows * tasks {
        return Ok(());
    }
    Err(Error::Metrics(format!(
        "{what} hold {len} values, rows {rows} × tasks {tasks} expected"
    )))
}
