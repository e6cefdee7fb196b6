//! Exact AUC and GAUC by sorting: O(n log n), ties counted as half a correctly ordered pair. GAUC
//! sorts by user id, then score, and takes each user's AUC from its run of rows.
//!
//! AUC is the weighted Mann–Whitney statistic
//! `Σ_{i pos, j neg} w_i w_j ([s_i > s_j] + ½[s_i = s_j]) / (W_pos · W_neg)`, which is exactly the
//! trapezoidal area under the ROC curve that scikit-learn's `roc_auc_score` computes. Sorting by score
//! and walking blocks of equal scores gives it in one pass: a block with positive weight `p` and
//! negative weight `n`, above negative weight `below`, adds `p · (below + n / 2)`.
//!
//! Unweighted, every sum is an integer held in an f64 (the numerator is kept doubled), so the result
//! is exact up to the final division for fewer than ~10^8 rows. Weighted, sums are compensated
//! (Neumaier), so the error is a few ulps whatever the row count.

use super::probability::Sum;
use super::samples::Samples;

/// Positive and negative weight of a set of rows and the (doubled) weight of its correctly ordered
/// positive–negative pairs.
#[derive(Debug, Default)]
struct PairCounts {
    positive: Sum,
    negative: Sum,
    doubled_pairs: Sum,
}

impl PairCounts {
    /// Counts over rows already sorted by ascending score.
    fn from_sorted(rows: &[Ranked]) -> Self {
        let mut counts = PairCounts::default();
        let mut start = 0;
        while start < rows.len() {
            let score = rows[start].score;
            let (mut block_pos, mut block_neg) = (Sum::default(), Sum::default());
            let mut end = start;
            while end < rows.len() && rows[end].score == score {
                let row = &rows[end];
                if row.positive {
                    block_pos.add(row.weight);
                } else {
                    block_neg.add(row.weight);
                }
                end += 1;
            }
            let (p, n) = (block_pos.value(), block_neg.value());
            counts
                .doubled_pairs
                .add(p * (2.0 * counts.negative.value() + n));
            counts.positive.add(p);
            counts.negative.add(n);
            start = end;
        }
        counts
    }

    /// The AUC, or `None` when either class has no weight.
    fn auc(&self) -> Option<f64> {
        let (p, n) = (self.positive.value(), self.negative.value());
        (p > 0.0 && n > 0.0).then(|| self.doubled_pairs.value() / (2.0 * p * n))
    }
}

/// One row as the sort sees it.
#[derive(Debug, Clone, Copy)]
struct Ranked {
    user: u64,
    score: f32,
    positive: bool,
    weight: f64,
}

fn ranked(samples: &Samples, users: Option<&[u64]>) -> Vec<Ranked> {
    (0..samples.len())
        .map(|i| Ranked {
            user: users.map_or(0, |ids| ids[i]),
            // Adding 0.0 turns -0.0 into +0.0 so that the two zeros sort as one tie.
            score: samples.scores[i] + 0.0,
            positive: samples.labels[i],
            weight: samples.weight(i),
        })
        .collect()
}

/// Exact AUC of validated samples; `None` when a class is absent (or has zero weight).
pub(crate) fn auc_of(samples: &Samples) -> Option<f64> {
    let mut rows = ranked(samples, None);
    rows.sort_unstable_by(|a, b| a.score.total_cmp(&b.score));
    PairCounts::from_sorted(&rows).auc()
}

/// GAUC (group AUC, named for its users): the mean of per-user AUCs over the users that have both
/// labels, each weighted by its size (its number of rows, or its total weight when samples are
/// weighted).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gauc {
    /// The weighted mean of per-user AUCs.
    pub value: f64,
    /// Users that had both labels and entered the mean.
    pub users_used: usize,
    /// Users skipped because they had a single class (or zero weight in one class).
    pub users_skipped: usize,
}

/// GAUC of validated samples whose rows belong to `users` (one id per row); `None` when no user
/// has both labels.
pub(crate) fn gauc_of(samples: &Samples, users: &[u64]) -> Option<Gauc> {
    let mut rows = ranked(samples, Some(users));
    rows.sort_unstable_by(|a, b| a.user.cmp(&b.user).then(a.score.total_cmp(&b.score)));
    let (mut weighted, mut total) = (Sum::default(), Sum::default());
    let (mut used, mut skipped) = (0, 0);
    for user in rows.chunk_by(|a, b| a.user == b.user) {
        let counts = PairCounts::from_sorted(user);
        match counts.auc() {
            Some(auc) => {
                let size = counts.positive.value() + counts.negative.value();
                weighted.add(size * auc);
                total.add(size);
                used += 1;
            }
            None => skipped += 1,
        }
    }
    (used > 0).then(|| Gauc {
        value: weighted.value() / total.value(),
        users_used: used,
        users_skipped: skipped,
    })
}
