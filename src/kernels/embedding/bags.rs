//! A batch of bags on the host: CSR offsets over feature-major bags, the looked-up ids (or raw MNS
//! values), and optional per-lookup weights. Validated before it reaches the GPU, so the kernels
//! only ever see ids inside their tables.

use super::features::{FeatureSet, MnsBase, Pooling};
use super::layout::StorageLayout;
use crate::error::{Error, Result};

const KERNEL: &str = "tbe_forward";

/// One batch of lookups for every feature of a [`FeatureSet`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bags {
    /// Samples in the batch (B).
    pub batch_size: u32,
    /// `F · B + 1` offsets; bag `f · B + b` is `indices[offsets[i]..offsets[i + 1]]`.
    pub offsets: Vec<u32>,
    /// Row ids (raw values for MNS features).
    pub indices: Vec<u32>,
    /// Optional weight per lookup.
    pub weights: Option<Vec<f32>>,
}

impl Bags {
    /// The bag index range of feature `f`.
    pub fn feature_lookups(&self, f: usize) -> std::ops::Range<usize> {
        let b = self.batch_size as usize;
        self.offsets[f * b] as usize..self.offsets[(f + 1) * b] as usize
    }

    /// Checks shapes and that every id is inside its table; errors name the feature and position.
    pub fn validate(&self, features: &FeatureSet, layout: &StorageLayout) -> Result<()> {
        let (b, n_features) = (self.batch_size as usize, features.len());
        if self.batch_size > features.max_batch {
            return Err(Error::kernel(
                KERNEL,
                format!(
                    "batch of {b} samples exceeds the maximum {}",
                    features.max_batch
                ),
            ));
        }
        if self.offsets.len() != n_features * b + 1 {
            return Err(Error::kernel(
                KERNEL,
                format!(
                    "{} offsets for {n_features} features × {b} samples (need {})",
                    self.offsets.len(),
                    n_features * b + 1
                ),
            ));
        }
        if self.offsets[0] != 0 || self.offsets.windows(2).any(|w| w[0] > w[1]) {
            return Err(Error::kernel(
                KERNEL,
                "offsets must start at 0 and never decrease",
            ));
        }
        if *self.offsets.last().unwrap_or(&0) as usize != self.indices.len() {
            return Err(Error::kernel(
                KERNEL,
                format!(
                    "last offset {} but {} indices",
                    self.offsets.last().unwrap_or(&0),
                    self.indices.len()
                ),
            ));
        }
        if let Some(w) = &self.weights {
            if w.len() != self.indices.len() {
                return Err(Error::kernel(
                    KERNEL,
                    format!("{} weights for {} indices", w.len(), self.indices.len()),
                ));
            }
            if let Some(l) = w.iter().position(|x| !x.is_finite()) {
                return Err(Error::kernel(
                    KERNEL,
                    format!("weight of lookup {l} is {}", w[l]),
                ));
            }
        }
        for (f, spec) in features.features.iter().enumerate() {
            let lookups = self.feature_lookups(f);
            if spec.pooling == Pooling::None && lookups.len() > spec.max_lookups as usize {
                return Err(Error::kernel(
                    KERNEL,
                    format!(
                        "feature {f} has {} lookups; its unpooled output holds {}",
                        lookups.len(),
                        spec.max_lookups
                    ),
                ));
            }
            let limit = if spec.mns.is_empty() {
                layout.tables[spec.table].whole_rows as u64
            } else {
                MnsBase::limit(&spec.mns)
            };
            if let Some(l) = lookups.clone().find(|&l| self.indices[l] as u64 >= limit) {
                let what = if spec.mns.is_empty() {
                    "row id"
                } else {
                    "MNS value"
                };
                return Err(Error::kernel(
                    KERNEL,
                    format!(
                        "feature {f}, lookup {l}: {what} {} is out of range (limit {limit})",
                        self.indices[l]
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The words of the batch buffer: offsets, indices, weight bits; and where each section starts.
    pub(crate) fn words(&self) -> (Vec<u32>, [u32; 3]) {
        let mut words = Vec::with_capacity(self.offsets.len() + 2 * self.indices.len());
        words.extend_from_slice(&self.offsets);
        let indices_at = words.len() as u32;
        words.extend_from_slice(&self.indices);
        let weights_at = match &self.weights {
            Some(w) => {
                let at = words.len() as u32;
                words.extend(w.iter().map(|x| x.to_bits()));
                at
            }
            None => u32::MAX,
        };
        (words, [0, indices_at, weights_at])
    }

    /// Words the batch buffer needs at most for `lookups` lookups.
    pub fn capacity_words(features: usize, max_batch: u32, lookups: u64) -> u64 {
        features as u64 * max_batch as u64 + 1 + 2 * lookups
    }
}
