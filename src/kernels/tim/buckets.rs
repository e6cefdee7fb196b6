//! Temporal buckets of TIM (METHODS.md §1.1, DATA.md §1): the row of the temporal table each
//! behaviour reads, relative to the target. Bucket 0 is the target itself; behaviours get 1.. .

use crate::error::{Error, Result};

const KERNEL: &str = "tim_buckets";

/// How a behaviour's time relative to the target becomes a temporal-table row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TemporalBuckets {
    /// The official TIN code: reverse position, the most recent behaviour 1, the one before 2, …,
    /// clamped to `buckets − 1`.
    Position {
        /// N_T, rows of the temporal table (TIN uses 431).
        buckets: u32,
    },
    /// Log time delta: `min(N_T − 1, 1 + ⌊log2(1 + Δt / unit)⌋)` with Δt = target − behaviour time.
    LogTime {
        /// N_T, rows of the temporal table (DATA.md §1 uses 64).
        buckets: u32,
        /// Time unit, in the timestamps' unit (DATA.md §1: 3600 s).
        unit: f64,
    },
}

impl TemporalBuckets {
    /// Rows the temporal table needs (N_T).
    pub fn buckets(&self) -> u32 {
        match *self {
            TemporalBuckets::Position { buckets } | TemporalBuckets::LogTime { buckets, .. } => {
                buckets
            }
        }
    }

    /// `Err` unless N_T ≥ 2 (the target's row and at least one behaviour row) and the unit is a
    /// positive finite number.
    pub fn validate(&self) -> Result<()> {
        if self.buckets() < 2 {
            return Err(Error::kernel(
                KERNEL,
                format!("{} temporal buckets; at least 2 needed", self.buckets()),
            ));
        }
        if let TemporalBuckets::LogTime { unit, .. } = *self {
            if !(unit.is_finite() && unit > 0.0) {
                return Err(Error::kernel(
                    KERNEL,
                    format!("time unit {unit} must be positive"),
                ));
            }
        }
        Ok(())
    }

    /// The temporal ids of a sequence ordered oldest first (most recent last), for a target at
    /// `target_time`. Position bucketing ignores the times but not their number. A behaviour after
    /// its target is an error (the sequence must hold the past only).
    pub fn assign(&self, target_time: i64, times: &[i64]) -> Result<Vec<u32>> {
        self.validate()?;
        let last = self.buckets() - 1;
        let n = times.len();
        match *self {
            TemporalBuckets::Position { .. } => {
                Ok((0..n).map(|i| (n - i).min(last as usize) as u32).collect())
            }
            TemporalBuckets::LogTime { unit, .. } => times
                .iter()
                .enumerate()
                .map(|(i, &t)| {
                    let dt = target_time as i128 - t as i128;
                    if dt < 0 {
                        return Err(Error::kernel(
                            KERNEL,
                            format!(
                                "behaviour {i} at time {t} is after its target at {target_time}"
                            ),
                        ));
                    }
                    Ok(floor_log2(1.0 + dt as f64 / unit)
                        .saturating_add(1)
                        .min(last))
                })
                .collect(),
        }
    }
}

/// ⌊log2 x⌋ for x ≥ 1, exact: the binary exponent (`f64::log2` can round up just below a power of 2).
fn floor_log2(x: f64) -> u32 {
    if !x.is_finite() {
        return u32::MAX;
    }
    (((x.to_bits() >> 52) & 0x7ff) as u32).saturating_sub(1023)
}
