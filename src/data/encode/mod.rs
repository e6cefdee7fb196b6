//! From read batches to model inputs: every id becomes a table row, every number its MNS value,
//! every behaviour sequence a [`TimBatch`], with the labels, weights and GAUC keys beside
//! them.
//!
//! An [`Encoder`] resolves the columns a [`ModelConfig`] reads from a [`Schema`] ([`Encoder::new`]),
//! is fitted on the training split only ([`Encoder::fit`] per batch, then
//! [`Encoder::finish_fit`]; or [`Encoder::fit_file`]), and then turns any [`Batch`] into a
//! [`ModelBatch`] ([`Encoder::encode`]). It is saved beside a checkpoint ([`Encoder::save`],
//! [`Encoder::load`]).
//!
//! # What each feature becomes
//! - **categorical** ([`categorical`]): one row per sample from a [`Vocabulary`] (counted with the
//!   feature's `min_count`, hashed into `hash_rows` rows, or, with `capacity`, a dynamic id map
//!   that admits new ids during online learning: [`Encoder::observe`], `online.rs`).
//! - **bag** ([`bag`]): the rows of the sample's ids (CSR; an empty bag is allowed), one
//!   vocabulary.
//! - **numeric** ([`numeric`]; MNS, METHODS.md §1.2): `min` = the smallest value in training; a
//!   value `x` is `v = 1 + ⌊(x − min)/step⌋`, a missing value (an empty field) is `v = 0`, its own
//!   value. At encode time `v` is clamped to `1..=v_max`, `v_max` being the largest value seen in
//!   training (a feature with no value in training encodes everything as 0). Each radix `r` gets
//!   the fewest digits `d ≥ 1` with `r^d > v_max` ([`Encoder::mns`]); the GPU kernel turns `v`
//!   into digit rows.
//! - **sequence** ([`sequence`]): a [`TimBatch`]. Targets: the item feature's row of the sample's
//!   item, then each side feature's row of the sample's own column (a bag's first id; [`OOV_ROW`]
//!   for an empty bag). Behaviours: the sequence column's ids through the item feature's
//!   vocabulary, each side column's ids through its side feature's vocabulary, oldest first, the
//!   most recent `max_len` kept. Buckets from [`TemporalBuckets`]: by position, or by log time
//!   delta between the `timestamp` column (default: the schema's only one) and the `times` column
//!   (default: the sequence_times column linked to the sequence column, or else to one of its
//!   side columns).
//! - **hashid** ([`hashid`]; METHODS.md §1.3): the id's SimHash code + 1 as an MNS value (0: no
//!   content vector); the codes come from the GPU kernel through a [`ContentTables`] the caller
//!   builds ([`content`] says why that is the seam).
//! - **similarity** ([`similarity`]; §1.4): the cosine (or dot) of the user's and the item's
//!   pre-trained vectors, bucketed by quantiles of the training split, as an MNS value (0: either
//!   id has no vector).
//!
//! Labels, loss weights and GAUC keys are not features: [`samples`] resolves and encodes
//! them.
//!
//! # How the parts fit
//! Each feature kind is one file implementing [`FeatureEncoder`]: it fits on the training split's
//! values ([`FeatureEncoder::fit`], [`FeatureEncoder::finish`]), encodes a batch's column into a
//! [`FeatureInput`] ([`FeatureEncoder::encode`]) and saves and loads what it fitted
//! ([`FeatureEncoder::save`], [`FeatureEncoder::load`]). [`columns`] looks columns up (config
//! feature → schema column, the error naming the model key) for every kind; `resolve.rs` builds
//! every feature's encoder in config order; [`Encoder`] (`encoder.rs`) walks the features;
//! [`saved`] writes and reads `encoder.json`. A sequence's other columns are looked up in
//! `sequence_columns.rs`.
//!
//! # Adding a feature kind
//! A new kind (a hashed id, the similarity of pre-trained embeddings, …) is one new file here with
//! a type implementing [`FeatureEncoder`] and a `new(&Lookup, index, &Feature) -> Result<Self>`
//! that finds its column with [`Lookup::feature_column`], plus one line in [`feature_encoder`]
//! mapping its `FeatureKind` to it (and the config variant itself, in `crate::config`). What it
//! fits it saves in `encoder.json` fields or its own file beside it; what it encodes is a
//! [`FeatureInput`] the graph already reads (or a new variant of it, with its graph op).
//!
//! # Errors
//! Columns that do not exist or have the wrong type are [`Error::Config`] naming the model key
//! (`feature[3].side_columns[0]`, `train.group`); rows that cannot be encoded are [`Error::Data`]
//! naming the file, line and column (a behaviour after its target, a side column whose length
//! differs from the sequence's, a non-integer behaviour time, a negative exposure count).
//!
//! [`ModelConfig`]: crate::config::ModelConfig
//! [`Schema`]: crate::data::Schema
//! [`Batch`]: crate::data::Batch
//! [`Vocabulary`]: crate::data::Vocabulary
//! [`OOV_ROW`]: crate::data::OOV_ROW
//! [`TemporalBuckets`]: crate::kernels::tim::TemporalBuckets
//! [`Error::Config`]: crate::Error::Config
//! [`Error::Data`]: crate::Error::Data

use std::fmt;
use std::path::Path;

use super::batch::Batch;
use super::idmap::IdMap;
use super::schema::Schema;
use super::vocab::Vocabulary;
use crate::config::{Feature, FeatureKind};
use crate::error::Result;
use crate::kernels::embedding::MnsBase;
use crate::kernels::tim::TimBatch;

pub mod bag;
pub mod categorical;
pub mod columns;
pub mod content;
mod encoder;
pub mod hashid;
pub mod numeric;
mod online;
mod resolve;
pub mod samples;
pub mod saved;
pub mod scenario;
pub mod sequence;
mod sequence_columns;
pub mod similarity;

#[cfg(test)]
pub(crate) mod tests;

pub use columns::{Lookup, Place};
pub use content::{ContentTables, MissingIds};
pub(crate) use encoder::merge_bad_rows;
pub use encoder::Encoder;
pub use online::{FreshRows, IdMapStats};
pub use saved::SavedFeature;

/// One batch encoded for the model: every id already a table row.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelBatch {
    /// Samples in the batch.
    pub rows: usize,
    /// The file line of each row (for messages).
    pub lines: Vec<u64>,
    /// One per config feature, in config order.
    pub features: Vec<FeatureInput>,
    /// `[rows, tasks]` row-major, in the task order of the config: 0, 1, or
    /// [`MISSING_LABEL`](crate::kernels::loss::MISSING_LABEL) (−1) where the row has no label for
    /// the task (an empty field); the loss gives that row weight 0 in that task only and the
    /// metrics skip it there.
    pub labels: Vec<f32>,
    /// `[rows]` per-sample loss weights, when `[train.weights]` is set.
    pub weights: Option<Vec<f32>>,
    /// `[rows]` GAUC key, when `[train] group` is set: [`stable_hash`] of a categorical
    /// token, the bits of a number (`f64::to_bits`, −0 as +0), or a timestamp as `u64`.
    ///
    /// [`stable_hash`]: crate::data::stable_hash
    pub groups: Option<Vec<u64>>,
}

/// The input of one feature for one batch.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureInput {
    /// categorical: `offsets = 0..=rows` (one row id per sample); bag: CSR table rows per sample
    /// (empty bag allowed); numeric: one quantised MNS value per sample (0 = missing), which the
    /// GPU kernel turns into digit rows.
    Ids {
        /// `rows + 1` offsets into `rows`, starting at 0.
        offsets: Vec<u32>,
        /// Table rows (or MNS values for a numeric feature).
        rows: Vec<u32>,
    },
    /// A sequence feature (see [`TimBatch`] and `docs/tim.md`): `S = 1 + side.len()` semantic ids
    /// per target and per behaviour.
    Sequence(TimBatch),
}

/// One feature kind's encoder: the columns it reads (resolved when it is built), what it fits on
/// the training split, and how it turns a batch's column into a [`FeatureInput`]. The
/// [`Encoder`] calls these in order: [`Self::link`] once every feature's own column resolved,
/// [`Self::start_fit`], [`Self::fit`] per training batch, [`Self::finish`]; then
/// [`Self::check_row`] and [`Self::encode`] per batch, or [`Self::save`] and [`Self::load`].
pub trait FeatureEncoder: fmt::Debug + Send + Sync {
    /// The kind's name in `encoder.json` (`"categorical"`, …), checked on load.
    fn kind(&self) -> &'static str;

    /// Resolves the columns the feature reads besides its own (a sequence's side, times and
    /// timestamp columns); runs after every feature's own column and the task labels resolved.
    fn link(&mut self, _lookup: &Lookup) -> Result<()> {
        Ok(())
    }

    /// Readies the fit (a hashed vocabulary needs no counting); `place` names the feature.
    fn start_fit(&mut self, _place: &Place) -> Result<()> {
        Ok(())
    }

    /// Takes what the feature needs from outside the data layer (HashID codes, pre-trained
    /// tables; see [`content`]) before the fit.
    fn attach_content(&mut self, _place: &Place, _content: &ContentTables) -> Result<()> {
        Ok(())
    }

    /// A content feature's training ids with no vector (`None` for other kinds).
    fn missing_ids(&self) -> Option<MissingIds> {
        None
    }

    /// Counts the values of rows `rows` of a training batch.
    fn fit(&mut self, _batch: &Batch, _rows: &[usize]) {}

    /// Turns what [`Self::fit`] counted into the fitted state; `data_file`, when known, names the
    /// training file in errors about its values.
    fn finish(&mut self, _place: &Place, _data_file: Option<&str>) -> Result<()> {
        Ok(())
    }

    /// `Err` unless row `r` of `batch` can be encoded (`file` names it in errors, `schema` its
    /// columns).
    fn check_row(&self, _schema: &Schema, _batch: &Batch, _file: &str, _r: usize) -> Result<()> {
        Ok(())
    }

    /// Encodes rows `rows` of `batch` (checked by [`Self::check_row`]); `features` are all the
    /// model's features, fitted, for kinds that read others' vocabularies.
    fn encode(
        &self,
        batch: &Batch,
        file: &str,
        rows: &[usize],
        features: &[Box<dyn FeatureEncoder>],
    ) -> Result<FeatureInput>;

    /// Writes what the feature fitted into `saved` (and files of its own into `dir`).
    fn save(&self, _dir: &Path, _index: usize, _saved: &mut SavedFeature) -> Result<()> {
        Ok(())
    }

    /// Reads back what [`Self::save`] wrote; `file` and `key` name `encoder.json` and the
    /// feature's entry in errors.
    fn load(&mut self, _dir: &Path, _file: &Path, _key: &str, _saved: &SavedFeature) -> Result<()> {
        Ok(())
    }

    /// The fitted vocabulary of an id feature.
    fn vocabulary(&self) -> Option<&Vocabulary> {
        None
    }

    /// The dynamic id map of a categorical feature with `capacity`, to restore a saved state.
    fn id_map_mut(&mut self) -> Option<&mut IdMap> {
        None
    }

    /// Online learning, for a feature with a dynamic id map: expires the map at `step`, then
    /// records the id of rows `rows` of `batch` (in that order) at `step`, and returns the rows
    /// that got a new owner, in admission order (empty for other features). `file` names the
    /// batch in errors (a step before the map's latest).
    fn observe(
        &mut self,
        _batch: &Batch,
        _file: &str,
        _rows: &[usize],
        _step: u64,
    ) -> Result<Vec<u32>> {
        Ok(Vec::new())
    }

    /// Rows of the feature's table once fitted (0 for features that read others' tables).
    fn table_rows(&self) -> u32 {
        self.vocabulary().map_or(0, Vocabulary::rows)
    }

    /// The MNS bases of a numeric feature once fitted (empty for others).
    fn mns(&self) -> Vec<MnsBase> {
        Vec::new()
    }

    /// The row of row `r`'s own id, when the feature can be a sequence's item or side feature.
    fn target_row(&self, _batch: &Batch, _r: usize) -> Option<u32> {
        None
    }

    /// A boxed copy (an [`Encoder`] is `Clone`).
    fn boxed_clone(&self) -> Box<dyn FeatureEncoder>;
}

impl Clone for Box<dyn FeatureEncoder> {
    fn clone(&self) -> Self {
        self.boxed_clone()
    }
}

/// The encoder of feature `index` of the model, its own column looked up: one line per kind.
pub fn feature_encoder(
    lookup: &Lookup,
    index: usize,
    feature: &Feature,
) -> Result<Box<dyn FeatureEncoder>> {
    let (l, i, f) = (lookup, index, feature);
    Ok(match &feature.kind {
        FeatureKind::Categorical { .. } => Box::new(categorical::Categorical::new(l, i, f)?),
        FeatureKind::Bag { .. } => Box::new(bag::Bag::new(l, i, f)?),
        FeatureKind::Numeric { .. } => Box::new(numeric::Numeric::new(l, i, f)?),
        FeatureKind::Sequence { .. } => Box::new(sequence::Sequence::new(l, i, f)?),
        FeatureKind::HashId { .. } => Box::new(hashid::HashId::new(l, i, f)?),
        FeatureKind::Similarity { .. } => Box::new(similarity::Similarity::new(l, i, f)?),
    })
}
