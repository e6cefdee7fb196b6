//! Percentile bootstrap intervals of the estimators: B resamples of the rounds with replacement
//! (indices drawn by [`crate::rng::Rng`] from the seed, so a seed gives the same interval bits),
//! each estimator recomputed on every resample from the per-round terms, and the α/2 and
//! 1 − α/2 quantiles of the B values taken with linear interpolation (NumPy's default, which
//! `obp.utils.estimate_confidence_interval_by_bootstrap` uses).

use super::sum::ExactSum;
use super::{Estimate, RoundTerms};
use crate::rng::Rng;
use crate::{Error, Result};

/// Bootstrap settings.
#[derive(Debug, Clone, PartialEq)]
pub struct BootstrapOptions {
    /// Resamples B (at least 1).
    pub resamples: usize,
    /// The interval covers 1 − α; in (0, 1).
    pub alpha: f64,
    /// Seed of the resampling.
    pub seed: u64,
}

impl Default for BootstrapOptions {
    fn default() -> Self {
        BootstrapOptions {
            resamples: 1000,
            alpha: 0.05,
            seed: 1,
        }
    }
}

/// The q-quantile of `sorted` (ascending, non-empty) with linear interpolation between order
/// statistics at h = (m − 1)·q.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Sums of one resample (or of the whole log): rounds, Σr, Σw, Σwr, Σdr.
#[derive(Default)]
struct Sums {
    rounds: f64,
    reward: ExactSum,
    weight: ExactSum,
    weighted_reward: ExactSum,
    doubly_robust: ExactSum,
}

impl Sums {
    fn add(&mut self, t: &RoundTerms, i: usize) {
        self.rounds += 1.0;
        self.reward.add(t.reward[i]);
        self.weight.add(t.weight[i]);
        self.weighted_reward.add(t.weighted_reward[i]);
        if let Some(dr) = &t.doubly_robust {
            self.doubly_robust.add(dr[i]);
        }
    }

    /// on-policy, IPS, SNIPS (None when Σw = 0), DR.
    fn estimates(&self) -> [Option<f64>; 4] {
        let w = self.weight.value();
        let wr = self.weighted_reward.value();
        [
            Some(self.reward.value() / self.rounds),
            Some(wr / self.rounds),
            (w > 0.0).then(|| wr / w),
            Some(self.doubly_robust.value() / self.rounds),
        ]
    }
}

const NAMES: [&str; 4] = ["on-policy", "ips", "snips", "dr"];

/// The point estimates on all rounds with their percentile intervals over `options.resamples`
/// resamples: on-policy, IPS, SNIPS and (when the terms have it) DR.
pub fn bootstrap(terms: &RoundTerms, options: &BootstrapOptions) -> Result<Vec<Estimate>> {
    if options.resamples == 0 || !(options.alpha > 0.0 && options.alpha < 1.0) {
        return Err(Error::data(
            "bootstrap",
            format!(
                "need at least 1 resample and α in (0, 1), got {} and {}",
                options.resamples, options.alpha
            ),
        ));
    }
    let n = terms.reward.len();
    let mut whole = Sums::default();
    (0..n).for_each(|i| whole.add(terms, i));
    let point = whole.estimates();
    if point[2].is_none() {
        return Err(Error::data(
            "policy",
            "SNIPS is undefined: the target policy gives probability 0 to every logged action",
        ));
    }
    let mut rng = Rng::new(options.seed);
    let mut draws: [Vec<f64>; 4] = Default::default();
    for _ in 0..options.resamples {
        let mut sums = Sums::default();
        for _ in 0..n {
            sums.add(terms, rng.below(n as u64) as usize);
        }
        for (d, e) in draws.iter_mut().zip(sums.estimates()) {
            d.extend(e);
        }
    }
    let kept = if terms.doubly_robust.is_some() { 4 } else { 3 };
    Ok((0..kept)
        .map(|k| {
            let d = &mut draws[k];
            d.sort_by(f64::total_cmp);
            let (lower, upper) = match d.is_empty() {
                true => (f64::NAN, f64::NAN),
                false => (
                    percentile(d, options.alpha / 2.0),
                    percentile(d, 1.0 - options.alpha / 2.0),
                ),
            };
            Estimate {
                estimator: NAMES[k],
                estimate: point[k].expect("checked above for SNIPS; the others are always defined"),
                lower,
                upper,
                resamples: d.len(),
            }
        })
        .collect())
}
