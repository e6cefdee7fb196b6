//! Per-sample training weights and the logit correction they call for (METHODS.md §4.2): the
//! repeated-exposure rule ([`WeightRule`], [`ExposureWeight`]) and the class-weight correction the
//! inference head ([`Predict`](super::Predict)) subtracts.

use crate::error::{Error, Result};

/// The logit offset that undoes class-dependent training weights (METHODS.md §4.2): with positives
/// weighted `w_pos` and negatives `w_neg`, the weighted-BCE optimum is `logit(p) + log(w_pos/w_neg)`,
/// so serve `σ(z − class_weight_correction(w_pos, w_neg))`.
pub fn class_weight_correction(w_pos: f64, w_neg: f64) -> f64 {
    (w_pos / w_neg).ln()
}

/// The calibrated probability of a model trained on negatives down-sampled at keep rate `r`
/// (`w₋ = r`): `p = r·q / (1 − q + r·q)`, equal to `σ(logit(q) − class_weight_correction(1, r))`.
pub fn downsampled_probability(q: f64, r: f64) -> f64 {
    r * q / (1.0 - q + r * q)
}

/// How the exposure count of a sample's (user, ad) pair sets its weight.
#[derive(Debug, Clone, PartialEq)]
pub enum ExposureWeight {
    /// Every sample weighs 1.
    None,
    /// `w = max(count, 1)^(−γ)`: γ = 0 is no weighting, γ = 1 gives each pair's repeats one unit
    /// of weight in all.
    Power {
        /// The exponent γ ≥ 0.
        gamma: f64,
    },
    /// A table by count bucket: `weights[k]` for `uppers[k−1] ≤ count < uppers[k]` (`uppers`
    /// strictly increasing; `weights.len() = uppers.len() + 1`, the last for `count ≥` the last
    /// upper bound).
    Buckets {
        /// Exclusive upper bounds of the buckets but the last.
        uppers: Vec<f64>,
        /// One weight per bucket, each > 0.
        weights: Vec<f64>,
    },
}

/// Per-sample training weights from a data column (METHODS.md §4.2): an exposure-count rule times
/// a class weight: `positive` for label > 0.5, `negative` for a label in [0, 0.5], and 1 for a
/// missing label (below 0, [`MISSING_LABEL`](super::MISSING_LABEL)): that row is neither positive
/// nor negative, and the loss of the task whose label it lacks gives it weight 0 anyway, so only
/// the exposure part reaches the other tasks. Weights applied alike to a
/// segment's positives and negatives leave its calibration unbiased; unequal class weights bias
/// the logit by exactly [`WeightRule::logit_correction`], which [`Predict`](super::Predict) subtracts at inference.
/// With several tasks the weights are per row: the class weights follow one task's label, and the
/// correction is exact for that task.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightRule {
    /// The exposure-count part.
    pub exposure: ExposureWeight,
    /// Weight factor of positives (> 0).
    pub positive: f64,
    /// Weight factor of negatives (> 0; a negative down-sampling keep rate r is `negative = r`).
    pub negative: f64,
}

impl Default for WeightRule {
    fn default() -> Self {
        WeightRule {
            exposure: ExposureWeight::None,
            positive: 1.0,
            negative: 1.0,
        }
    }
}

impl WeightRule {
    /// `Err` naming the bad field unless the rule is well formed.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::kernel("weight_rule", msg));
        for (what, v) in [("positive", self.positive), ("negative", self.negative)] {
            if !(v.is_finite() && v > 0.0) {
                return bad(format!("{what} = {v}: need a finite weight > 0"));
            }
        }
        match &self.exposure {
            ExposureWeight::None => {}
            ExposureWeight::Power { gamma } => {
                if !(gamma.is_finite() && *gamma >= 0.0) {
                    return bad(format!("gamma = {gamma}: need a finite γ ≥ 0"));
                }
            }
            ExposureWeight::Buckets { uppers, weights } => {
                if weights.len() != uppers.len() + 1 {
                    return bad(format!(
                        "{} weights for {} upper bounds: need one more weight than bounds",
                        weights.len(),
                        uppers.len()
                    ));
                }
                if let Some(v) = uppers.iter().find(|v| !v.is_finite()) {
                    return bad(format!("upper bound {v} is not finite"));
                }
                if let Some(k) = (1..uppers.len()).find(|&k| uppers[k] <= uppers[k - 1]) {
                    return bad(format!(
                        "uppers[{k}] = {} does not exceed uppers[{}] = {}",
                        uppers[k],
                        k - 1,
                        uppers[k - 1]
                    ));
                }
                if let Some((k, v)) = weights
                    .iter()
                    .enumerate()
                    .find(|(_, v)| !(v.is_finite() && **v > 0.0))
                {
                    return bad(format!("weights[{k}] = {v}: need a finite weight > 0"));
                }
            }
        }
        Ok(())
    }

    /// The exposure part of the weight for `count` exposures (NaN counts are treated as 1).
    pub fn exposure_weight(&self, count: f64) -> f64 {
        match &self.exposure {
            ExposureWeight::None => 1.0,
            ExposureWeight::Power { gamma } => {
                let c = if count >= 1.0 { count } else { 1.0 };
                c.powf(-gamma)
            }
            ExposureWeight::Buckets { uppers, weights } => {
                let c = if count.is_nan() { 1.0 } else { count };
                weights[uppers.partition_point(|&u| u <= c)]
            }
        }
    }

    /// The weight of one sample: exposure part × class weight of `label` (1 when the label is
    /// missing, below 0).
    pub fn weight(&self, count: f64, label: f64) -> f64 {
        let class = if label > 0.5 {
            self.positive
        } else if label >= 0.0 {
            self.negative
        } else {
            1.0
        };
        self.exposure_weight(count) * class
    }

    /// Weights for a batch: `counts[i]` and `labels[i]` (the label of the task that drives the
    /// class weights) → `w[i]` as f32, ready to upload as [`LossBuffers::weights`](super::LossBuffers::weights).
    pub fn weights(&self, counts: &[f32], labels: &[f32]) -> Result<Vec<f32>> {
        self.validate()?;
        if counts.len() != labels.len() {
            return Err(Error::kernel(
                "weight_rule",
                format!("{} counts for {} labels", counts.len(), labels.len()),
            ));
        }
        Ok(counts
            .iter()
            .zip(labels)
            .map(|(&c, &y)| self.weight(c as f64, y as f64) as f32)
            .collect())
    }

    /// The logit correction to serve with: `log(positive / negative)`.
    pub fn logit_correction(&self) -> f64 {
        class_weight_correction(self.positive, self.negative)
    }
}
