//! What TIM reads: the table sets (one per embedding table of a multi-embedding model) and a batch
//! of behaviour sequences, turned into the pooling-none [`Bags`] the gather and update kernels know.
//!
//! Layout: set m and component k (its semantic tables in order, then its temporal table) form
//! feature `m·K + k` of a [`FeatureSet`] with [`Pooling::None`]; sample b's bag of that feature is
//! `[target id, behaviour ids…]` (for the temporal component `[0, buckets…]`). Mean pooling (sets
//! without a temporal table, the TIM ablation) has K = S and bags of the behaviour ids only: the
//! target is not read, so its rows get no update at all. The pooling-none
//! output layout of that feature set is where TIM's backward writes one gradient row per lookup, so
//! [`SparseUpdatePlan::build`](crate::kernels::embedding::SparseUpdatePlan::build) over the same bags
//! reduces and applies them.

use crate::error::{Error, Result};
use crate::kernels::embedding::{Bags, FeatureSet, Pooling, StorageLayout};

pub(super) const KERNEL: &str = "tim_forward";
/// Longest behaviour sequence (scores live in workgroup memory; `MAX_LEN` in `tim.wgsl`).
pub const MAX_LEN: u32 = 1024;
/// Widest embedding, in floats (`MAX_WIDTH4` in `tim.wgsl`).
pub const MAX_DIM: u32 = 256;
/// Sets × components at most (`MAX_FEATURES` in `tim.wgsl`).
pub const MAX_FEATURES: usize = 32;

/// The tables of one TIM: e~ = Σ semantic rows + temporal row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimSet {
    /// Semantic tables (item, then side tables such as category), indices into the storage's tables.
    pub semantic: Vec<usize>,
    /// The temporal table (N_T rows; row 0 is the target's bucket); `None` for mean pooling, which
    /// has none (see [`TimPooling`]).
    pub temporal: Option<usize>,
}

impl TimSet {
    /// Its tables in component order: the semantic ones, then the temporal one if any.
    pub fn tables(&self) -> impl Iterator<Item = usize> + '_ {
        self.semantic.iter().copied().chain(self.temporal)
    }
}

/// What a [`TimSpec`] computes; chosen by whether its sets have temporal tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimPooling {
    /// Target-aware attention over semantic + temporal rows, times the target (METHODS.md §1.1).
    Attention,
    /// u = (1/n) Σ_i e_i over the semantic rows only (n = 0: u = 0); the target is not read.
    Mean,
}

/// M table sets over one embedding storage, all of one width D, sharing the ids of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimSpec {
    /// One TIM per set, computed in one dispatch.
    pub sets: Vec<TimSet>,
    /// Samples per batch at most (the rows_cap of u and dL/du).
    pub max_batch: u32,
    /// Behaviours per sequence at most (≤ [`MAX_LEN`]).
    pub max_len: u32,
}

impl TimSpec {
    /// Attention when the (first) set has a temporal table, else mean pooling.
    pub fn pooling(&self) -> TimPooling {
        match self.sets.first().map(|s| s.temporal) {
            Some(None) => TimPooling::Mean,
            _ => TimPooling::Attention,
        }
    }

    /// Components per set: semantic tables, plus the temporal table under attention.
    pub fn components(&self) -> usize {
        self.sets.first().map_or(0, |s| s.tables().count())
    }

    /// Lookups per bag before the behaviours: the target under attention, none under mean pooling.
    pub fn target_lookups(&self) -> u32 {
        match self.pooling() {
            TimPooling::Attention => 1,
            TimPooling::Mean => 0,
        }
    }

    /// Validates the spec against `layout` and returns the common width D.
    pub fn validate(&self, layout: &StorageLayout) -> Result<u32> {
        let s = self.sets.first().map_or(0, |s| s.semantic.len());
        let same =
            |x: &TimSet| x.semantic.len() == s && x.temporal.is_some() == self.has_temporal();
        if self.sets.is_empty() || s == 0 || !self.sets.iter().all(same) {
            return Err(Error::kernel(
                KERNEL,
                "every set needs the same number (≥ 1) of semantic tables, and all or none a \
                 temporal table",
            ));
        }
        let k = self.components();
        if self.sets.len() * k > MAX_FEATURES {
            return Err(Error::kernel(
                KERNEL,
                format!(
                    "{} sets × {k} tables exceed {MAX_FEATURES} lookups per behaviour",
                    self.sets.len()
                ),
            ));
        }
        if self.max_len > MAX_LEN {
            return Err(Error::kernel(
                KERNEL,
                format!("max length {} exceeds {MAX_LEN}", self.max_len),
            ));
        }
        let mut width = None;
        for (m, set) in self.sets.iter().enumerate() {
            for t in set.tables() {
                let placed = layout.tables.get(t).ok_or_else(|| {
                    Error::kernel(KERNEL, format!("set {m}: table {t} does not exist"))
                })?;
                let w = placed.width4 * 4;
                if *width.get_or_insert(w) != w || w > MAX_DIM {
                    return Err(Error::kernel(
                        KERNEL,
                        format!(
                            "set {m}: table {t} has width {w}; all TIM tables need one width ≤ \
                             {MAX_DIM}"
                        ),
                    ));
                }
            }
        }
        Ok(width.unwrap_or(0))
    }

    fn has_temporal(&self) -> bool {
        self.pooling() == TimPooling::Attention
    }

    /// The pooling-none feature set whose output layout holds TIM's per-lookup gradients:
    /// feature m·K + k is `[max_batch · (target_lookups + max_len), D]`, features back to back.
    pub fn features(&self, layout: &StorageLayout) -> Result<FeatureSet> {
        self.validate(layout)?;
        let list: Vec<_> = (self.sets.iter())
            .flat_map(TimSet::tables)
            .map(|t| (t, Pooling::None, vec![]))
            .collect();
        let per_feature =
            self.max_batch as u64 * (self.target_lookups() as u64 + self.max_len as u64);
        let per_feature = u32::try_from(per_feature)
            .map_err(|_| Error::kernel(KERNEL, "lookups per feature past 2^32"))?;
        FeatureSet::concatenated(layout, &list, self.max_batch, per_feature)
    }
}

/// One batch of behaviour sequences, ids shared by every set (each set reads its own tables).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimBatch {
    /// Behaviours of each sample (B = `lengths.len()`); 0 is allowed and gives u = 0.
    pub lengths: Vec<u32>,
    /// `[B, S]` semantic ids of each target (S = semantic tables per set); not read by mean pooling.
    pub target: Vec<u32>,
    /// `[Σ L, S]` semantic ids of the behaviours, samples in order, each sequence oldest first.
    pub behaviours: Vec<u32>,
    /// `[Σ L]` temporal ids (≥ 1; see [`TemporalBuckets`](super::TemporalBuckets)); not read by
    /// mean pooling.
    pub buckets: Vec<u32>,
}

impl TimBatch {
    /// Samples in the batch.
    pub fn batch_size(&self) -> u32 {
        self.lengths.len() as u32
    }

    /// The feature-major pooling-none bags of `spec` (ids are range-checked on upload).
    pub fn bags(&self, spec: &TimSpec) -> Result<Bags> {
        self.check(spec)?;
        let s = spec.sets.first().map_or(0, |x| x.semantic.len());
        let with_target = spec.pooling() == TimPooling::Attention;
        let (b, k) = (self.lengths.len(), spec.components());
        let total: usize = self.lengths.iter().map(|&l| l as usize).sum();
        let per_feature = spec.target_lookups() as usize * b + total;
        let features = spec.sets.len() * k;
        let mut bags = Bags {
            batch_size: b as u32,
            offsets: Vec::with_capacity(features * b + 1),
            indices: Vec::with_capacity(features * per_feature),
            weights: None,
        };
        for _set in &spec.sets {
            for k in 0..k {
                let mut first = 0;
                for (sample, &len) in self.lengths.iter().enumerate() {
                    bags.offsets.push(bags.indices.len() as u32);
                    let seq = first..first + len as usize;
                    if k < s {
                        if with_target {
                            bags.indices.push(self.target[sample * s + k]);
                        }
                        bags.indices.extend(seq.map(|i| self.behaviours[i * s + k]));
                    } else {
                        bags.indices.push(0);
                        bags.indices.extend_from_slice(&self.buckets[seq]);
                    }
                    first += len as usize;
                }
            }
        }
        bags.offsets.push(bags.indices.len() as u32);
        Ok(bags)
    }

    /// The batch fits `spec` and holds the ids its pooling reads (targets and buckets: attention).
    fn check(&self, spec: &TimSpec) -> Result<()> {
        let s = spec.sets.first().map_or(0, |x| x.semantic.len());
        let b = self.lengths.len();
        let total: usize = self.lengths.iter().map(|&l| l as usize).sum();
        if b > spec.max_batch as usize {
            return Err(Error::kernel(
                KERNEL,
                format!(
                    "batch of {b} samples exceeds the maximum {}",
                    spec.max_batch
                ),
            ));
        }
        if let Some(i) = self.lengths.iter().position(|&l| l > spec.max_len) {
            return Err(Error::kernel(
                KERNEL,
                format!(
                    "sample {i} has {} behaviours; the maximum is {}",
                    self.lengths[i], spec.max_len
                ),
            ));
        }
        let attention = spec.pooling() == TimPooling::Attention;
        if (attention && (self.target.len() != b * s || self.buckets.len() != total))
            || self.behaviours.len() != total * s
        {
            return Err(Error::kernel(
                KERNEL,
                format!(
                    "{} target ids, {} behaviour ids, {} buckets for {b} samples, {total} \
                     behaviours and {s} semantic tables",
                    self.target.len(),
                    self.behaviours.len(),
                    self.buckets.len()
                ),
            ));
        }
        if let Some(i) = self
            .buckets
            .iter()
            .position(|&t| t == 0)
            .filter(|_| attention)
        {
            return Err(Error::kernel(
                KERNEL,
                format!("behaviour {i} has temporal bucket 0, the target's"),
            ));
        }
        Ok(())
    }
}
