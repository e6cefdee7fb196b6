//! The `[[feature]]` section: the input features and their kinds, and the checks on them. Reading a
//! feature table (with its line and column in errors) is `feature_file`'s.

use std::collections::HashSet;

use serde::Deserialize;

use super::{bad, feature_file, Dtype};
use crate::error::Result;

/// One input feature.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "feature_file::RawFeature")]
pub struct Feature {
    /// Unique name (also the default data column).
    pub name: String,
    /// The data column it reads (defaults to `name`).
    pub column: Option<String>,
    /// What it is.
    pub kind: FeatureKind,
    /// L2 weight decay of this feature's tables, overriding `train.sparse_weight_decay`.
    pub embedding_l2: Option<f32>,
    /// The element type of this feature's tables, overriding `model.dtype`.
    pub dtype: Option<Dtype>,
}

impl Feature {
    /// The data column it reads.
    pub fn column(&self) -> &str {
        self.column.as_deref().unwrap_or(&self.name)
    }
}

/// The kinds of input features.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureKind {
    /// One id per sample.
    Categorical {
        /// Ids seen fewer times in training share the out-of-vocabulary row.
        min_count: u32,
        /// Hash into this many rows instead of building a vocabulary.
        hash_rows: Option<u64>,
        /// Online learning: a dynamic id map of this many rows (plus the OOV row) that admits new
        /// ids while training runs ([`crate::data::IdMap`]).
        capacity: Option<u32>,
        /// Sightings before a new id gets a row (needs `capacity`; default 1).
        admit_after: Option<u32>,
        /// Steps unseen after which an id's row is freed (needs `capacity`; default 0, never).
        expire_after: Option<u64>,
    },
    /// Several ids per sample (multi-hot), pooled.
    Bag {
        /// Separator inside the field.
        separator: String,
        /// Pooling of the bag's rows.
        pooling: BagPooling,
        /// As for categorical features.
        min_count: u32,
    },
    /// A number, encoded by MNS digits (METHODS.md §1.2).
    Numeric {
        /// Radices of the numeral systems, e.g. `[2, 3, 10]`.
        radices: Vec<u32>,
        /// Quantisation step before encoding: the value is `1 + ⌊(x − min)/step⌋` with `min` from
        /// training, 0 when missing (see `wgrec::data::encode`).
        step: f64,
        /// Applied to the value before quantising (`"linear"`, the default, or `"log"`).
        transform: crate::data::numeric::NumericTransform,
    },
    /// A behaviour sequence read by TIM (METHODS.md §1.1), or mean-pooled (the ablation).
    Sequence {
        /// The feature whose table holds the behaviour ids (e.g. `item_id`).
        item: String,
        /// Side features summed into each behaviour (e.g. `genre`).
        side: Vec<String>,
        /// Longest history kept (most recent last).
        max_len: u32,
        /// How the behaviours become the feature's field: TIM (the default) or their mean.
        pooling: SequencePooling,
        /// Temporal buckets `N_T` (bucket 0 is the target). With [`SequencePooling::Mean`] the file
        /// may not set it and it is 2, the least that validates: no temporal table exists.
        buckets: u32,
        /// Bucketing of a behaviour's time relative to the target. With [`SequencePooling::Mean`]
        /// the file may not set it and it is [`TimeBucket::Position`], which reads no times, so
        /// the encoder needs no times column for a model that never uses them.
        time: TimeBucket,
        /// Per side feature, the sequence column holding each behaviour's side id (e.g.
        /// `hist_genre`); as long as `side`.
        side_columns: Vec<String>,
        /// The `sequence_times` column of the behaviours (default: the one the schema links to
        /// this feature's column).
        times: Option<String>,
        /// The target's `timestamp` column (default: the schema's only timestamp column).
        timestamp: Option<String>,
    },
    /// HashID (METHODS.md §1.3): the SimHash code of the id's content vector, plus 1, as an MNS
    /// value (0: the id has no vector). Its column is the id column (`column`, default `name`).
    HashId {
        /// The embedding file of content vectors, relative to the model file's folder.
        embeddings: String,
        /// Bits of the code, 1..=31 (the value code + 1 must fit a u32).
        bits: u32,
        /// MNS radices (default `[2, 3, 10]`).
        radices: Vec<u32>,
        /// Seed of the random hyperplanes (default 1).
        seed: u64,
    },
    /// The bucketed similarity of pre-trained user and item embeddings (METHODS.md §1.4), as an
    /// MNS value: 0 when either id has no vector, else 1 + the quantile bucket fitted on the
    /// training split.
    Similarity {
        /// The column of the user-side id.
        user: String,
        /// The column of the item-side id.
        item: String,
        /// The user embedding file, relative to the model file's folder.
        user_embeddings: String,
        /// The item embedding file (may be the user one).
        item_embeddings: String,
        /// Cosine (the default) or dot.
        measure: crate::kernels::content::Measure,
        /// Quantile buckets fitted on training (≥ 2): at most `buckets − 1` boundaries.
        buckets: u32,
        /// MNS radices (default `[2, 3, 10]`).
        radices: Vec<u32>,
    },
}

/// Pooling of a bag feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BagPooling {
    /// Sum of the rows.
    Sum,
    /// Mean of the rows (empty bag: zeros).
    #[default]
    Mean,
}

/// How a sequence feature's behaviours are pooled into its field (docs/tim.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SequencePooling {
    /// TIM: target-aware attention over semantic + temporal rows, times the target (§1.1).
    #[default]
    Tim,
    /// The ablation: u = (1/n) Σ_i Σ_k T_k[id_k(i)] over the semantic tables (item and side
    /// rows) of the n behaviours; no temporal table, no attention, no target; n = 0 gives u = 0.
    Mean,
}

impl SequencePooling {
    /// The keys a mean-pooled sequence may not set: they describe TIM's temporal table and the
    /// behaviour times it reads, which a mean-pooled model does not have.
    pub const TIM_ONLY_KEYS: [&'static str; 4] = ["buckets", "time", "times", "timestamp"];
}

/// Temporal bucketing for TIM.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case", deny_unknown_fields)]
pub enum TimeBucket {
    /// Reverse position (most recent = 1), as the official TIN code.
    Position,
    /// `min(N_T − 1, 1 + ⌊log2(1 + Δt / unit)⌋)` (DATA.md §1).
    LogDelta {
        /// Seconds per unit of Δt.
        #[serde(default = "hour")]
        unit_seconds: f64,
    },
}

impl Default for TimeBucket {
    fn default() -> Self {
        TimeBucket::LogDelta {
            unit_seconds: hour(),
        }
    }
}

// The file's defaults of a feature's keys (serde's `default = "…"` takes a function).
pub(super) fn one() -> u32 {
    1
}
pub(super) fn fifty() -> u32 {
    50
}
pub(super) fn sixty_four() -> u32 {
    64
}
pub(super) fn one_u64() -> u64 {
    1
}
pub(super) fn buckets_1024() -> u32 {
    1024
}
fn hour() -> f64 {
    3600.0
}
pub(super) fn bar() -> String {
    "|".into()
}
pub(super) fn default_radices() -> Vec<u32> {
    vec![2, 3, 10]
}

/// There is at least one feature, names are unique, and each feature's keys make that feature.
pub(super) fn validate_features(features: &[Feature], file: &str) -> Result<()> {
    if features.is_empty() {
        return Err(bad(
            file,
            "feature",
            "no [[feature]]: a model needs at least one",
        ));
    }
    let mut seen = HashSet::new();
    for (i, f) in features.iter().enumerate() {
        if !seen.insert(f.name.as_str()) {
            return Err(bad(
                file,
                format!("feature[{i}].name"),
                format!("{:?} is used twice", f.name),
            ));
        }
        f.validate(file, i, features)?;
    }
    Ok(())
}

impl Feature {
    /// The keys of `feature[i]` make a feature of its kind; `all` are every feature, which a
    /// sequence's item and side features must be among.
    fn validate(&self, file: &str, i: usize, all: &[Feature]) -> Result<()> {
        let key = |k: &str| format!("feature[{i}].{k}");
        match &self.kind {
            FeatureKind::Categorical { .. } => ids::validate_categorical(file, i, &self.kind)?,
            FeatureKind::Bag { separator, .. } => {
                if separator.is_empty() {
                    return Err(bad(file, key("separator"), "empty"));
                }
            }
            FeatureKind::Numeric { radices, step, .. } => {
                if radices.is_empty() || radices.iter().any(|&r| r < 2) {
                    return Err(bad(
                        file,
                        key("radices"),
                        format!("{radices:?}: at least one radix, each ≥ 2"),
                    ));
                }
                if !(step.is_finite() && *step > 0.0) {
                    return Err(bad(file, key("step"), format!("{step}: must be > 0")));
                }
            }
            FeatureKind::Sequence { .. } => validate_sequence(file, i, &self.kind, all)?,
            FeatureKind::HashId { bits, radices, .. } => {
                check_radices(file, &key("radices"), radices)?;
                if !(1..=31).contains(bits) {
                    return Err(bad(
                        file,
                        key("bits"),
                        format!("{bits}: 1 to 31 (the value, code + 1, must fit 32 bits)"),
                    ));
                }
            }
            FeatureKind::Similarity {
                buckets, radices, ..
            } => {
                check_radices(file, &key("radices"), radices)?;
                if !(2..=1 << 20).contains(buckets) {
                    return Err(bad(file, key("buckets"), format!("{buckets}: 2 to 2^20")));
                }
            }
        }
        Ok(())
    }
}

/// At least one radix, each ≥ 2.
fn check_radices(file: &str, key: &str, radices: &[u32]) -> Result<()> {
    if radices.is_empty() || radices.iter().any(|&r| r < 2) {
        return Err(bad(
            file,
            key,
            format!("{radices:?}: at least one radix, each ≥ 2"),
        ));
    }
    Ok(())
}

/// A sequence feature reads id tables that exist, names a column per side feature, and keeps a
/// history and buckets TIM can hold.
fn validate_sequence(file: &str, i: usize, kind: &FeatureKind, all: &[Feature]) -> Result<()> {
    let FeatureKind::Sequence {
        item,
        side,
        max_len,
        buckets,
        time,
        side_columns,
        ..
    } = kind
    else {
        // Only `Feature::validate`'s sequence arm calls this.
        return Ok(());
    };
    let key = |k: &str| format!("feature[{i}].{k}");
    for (k, target) in std::iter::once(("item", item)).chain(side.iter().map(|s| ("side", s))) {
        // A behaviour reads one row of the item's table and one of each side feature's table:
        // categorical ones, or a bag's (e.g. an item's first genre).
        match all.iter().find(|g| &g.name == target).map(|g| &g.kind) {
            Some(FeatureKind::Categorical { .. }) => {}
            Some(FeatureKind::Bag { .. }) if k == "side" => {}
            Some(_) => {
                return Err(bad(
                    file,
                    key(k),
                    format!("{target:?} has no id table a behaviour can read"),
                ))
            }
            None => return Err(bad(file, key(k), format!("no feature named {target:?}"))),
        }
    }
    if side_columns.len() != side.len() {
        return Err(bad(
            file,
            key("side_columns"),
            format!(
                "{} columns for {} side features: name the sequence column of each side \
                 feature, in order",
                side_columns.len(),
                side.len()
            ),
        ));
    }
    if *max_len == 0 || *max_len > 1000 {
        return Err(bad(file, key("max_len"), format!("{max_len}: 1 to 1000")));
    }
    if *buckets < 2 {
        return Err(bad(
            file,
            key("buckets"),
            format!("{buckets}: bucket 0 is the target, so at least 2"),
        ));
    }
    if let TimeBucket::LogDelta { unit_seconds } = time {
        if !(unit_seconds.is_finite() && *unit_seconds > 0.0) {
            return Err(bad(
                file,
                key("time.unit_seconds"),
                format!("{unit_seconds}: must be > 0"),
            ));
        }
    }
    Ok(())
}

mod ids;
#[cfg(test)]
mod tests_dynamic_ids;
#[cfg(test)]
mod tests_sequence_pooling;
