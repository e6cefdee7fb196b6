//! How a numeric feature's values are transformed before quantisation, and the error when the
//! training values span more quantisation steps than an MNS value can hold.

use serde::Deserialize;

/// The transform applied to a numeric value before `1 + ⌊(t(x) − min)/step⌋` (`transform` in a
/// numeric feature of model.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NumericTransform {
    /// `t(x) = x`, the default, so existing models quantise exactly as before.
    #[default]
    Linear,
    /// `t(x) = sign(x)·log2(1 + |x|)`: for counts (x ≥ 0) the usual Criteo preprocessing
    /// log2(1 + x). Negative values are mirrored rather than refused, so the transform is defined
    /// and monotone on every finite number and a stray negative count cannot fail a run.
    Log,
}

impl NumericTransform {
    /// `t(x)`; NaN (a missing value) stays NaN.
    pub fn apply(self, x: f64) -> f64 {
        match self {
            NumericTransform::Linear => x,
            NumericTransform::Log => x.signum() * x.abs().ln_1p() / std::f64::consts::LN_2,
        }
    }
}

/// Training values too far apart for their `step`: the value farther from zero is named, since a
/// corrupt extreme (±1e300) is far more common than a real range of four billion steps.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SpanTooWide {
    /// The data line of the offending value (0 when the batch carried no lines).
    pub(crate) line: u64,
    /// What is wrong, naming both ends of the range.
    pub(crate) message: String,
}
