//! From read batches to model inputs: every id becomes a table row, every number its MNS value,
//! every behaviour sequence a [`TimBatch`], with the labels, weights and GAUC groups beside them.
//!
//! An [`Encoder`] resolves the columns a [`ModelConfig`] reads from a [`Schema`] ([`Encoder::new`]),
//! is fitted on the training split only ([`Encoder::fit`] per batch, then
//! [`Encoder::finish_fit`]; or [`Encoder::fit_file`]), and then turns any [`Batch`] into a
//! [`ModelBatch`] ([`Encoder::encode`]). It is saved beside a checkpoint ([`Encoder::save`],
//! [`Encoder::load`]).
//!
//! # What each feature becomes
//! - **categorical**: one row per sample from a [`Vocabulary`] (counted with the feature's
//!   `min_count`, or hashed into `hash_rows` rows).
//! - **bag**: the rows of the sample's ids (CSR; an empty bag is allowed), one vocabulary.
//! - **numeric** (MNS, METHODS.md §1.2): `min` = the smallest value in training; a value `x` is
//!   `v = 1 + ⌊(x − min)/step⌋`, a missing value (an empty field) is `v = 0`, its own value. At
//!   encode time `v` is clamped to `1..=v_max`, `v_max` being the largest value seen in training (a
//!   feature with no value in training encodes everything as 0). Each radix `r` gets the fewest
//!   digits `d ≥ 1` with `r^d > v_max` ([`Encoder::mns`]); the GPU kernel turns `v` into digit rows.
//! - **sequence**: a [`TimBatch`]. Targets: the item feature's row of the sample's item, then each
//!   side feature's row of the sample's own column (a bag's first id; [`OOV_ROW`] for an empty bag).
//!   Behaviours: the sequence column's ids through the item feature's vocabulary, each side column's
//!   ids through its side feature's vocabulary, oldest first, the most recent `max_len` kept.
//!   Buckets from [`TemporalBuckets`]: by position, or by log time delta between the `timestamp`
//!   column (default: the schema's only one) and the `times` column (default: the sequence_times
//!   column linked to the sequence column, or else to one of its side columns).
//!
//! # Errors
//! Columns that do not exist or have the wrong type are [`Error::Config`] naming the model key
//! (`feature[3].side_columns[0]`, `train.group`); rows that cannot be encoded are [`Error::Data`]
//! naming the file, line and column (a behaviour after its target, a side column whose length
//! differs from the sequence's, a non-integer behaviour time, a negative exposure count).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::batch::{Batch, ColumnData, Ragged, Tokens};
use super::numeric::{NumericTransform, SpanTooWide};
use super::schema::{ColumnKind, Schema};
use super::table::{BadRows, ReadOptions, TableReader};
use super::vocab::{stable_hash, Vocabulary, VocabularyCounter, OOV_ROW};
use crate::checkpoint::write_atomically;
use crate::config::{FeatureKind, ModelConfig, TimeBucket};
use crate::error::{Error, Result};
use crate::kernels::embedding::MnsBase;
use crate::kernels::loss::{ExposureWeight, WeightRule};
use crate::kernels::tim::{TemporalBuckets, TimBatch};

/// One batch encoded for the model: every id already a table row.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelBatch {
    /// Samples in the batch.
    pub rows: usize,
    /// The file line of each row (for messages).
    pub lines: Vec<u64>,
    /// One per config feature, in config order.
    pub features: Vec<FeatureInput>,
    /// `[rows, tasks]` row-major, in the task order of the config.
    pub labels: Vec<f32>,
    /// `[rows]` per-sample loss weights, when `[train.weights]` is set.
    pub weights: Option<Vec<f32>>,
    /// `[rows]` GAUC group key, when `[train] group` is set: [`stable_hash`] of a categorical
    /// token, the bits of a number (`f64::to_bits`, −0 as +0), or a timestamp as `u64`.
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

/// A feature with its columns resolved to schema indices.
#[derive(Debug, Clone)]
enum Input {
    Categorical {
        column: usize,
        min_count: u32,
        hash_rows: Option<u64>,
    },
    Bag {
        column: usize,
        min_count: u32,
    },
    Numeric {
        column: usize,
        radices: Vec<u32>,
        step: f64,
        transform: NumericTransform,
    },
    Sequence(SequenceInput),
}

#[derive(Debug, Clone)]
struct SequenceInput {
    column: usize,
    /// Feature index of the item feature.
    item: usize,
    /// Feature indices of the side features.
    side: Vec<usize>,
    /// Sequence columns of the side features' behaviour ids.
    side_columns: Vec<usize>,
    /// The behaviours' times (needed by log-delta buckets).
    times: Option<usize>,
    /// The target's timestamp (needed by log-delta buckets).
    timestamp: Option<usize>,
    max_len: u32,
    buckets: TemporalBuckets,
}

/// What [`resolve`] finds: each feature's columns, the labels, the group and the weights.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    inputs: Vec<Input>,
    labels: Vec<usize>,
    group: Option<usize>,
    weights: Option<(Option<usize>, WeightRule)>,
}

fn config_error(file: &str, key: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Config {
        file: file.to_string(),
        key: key.into(),
        message: message.into(),
    }
}

/// Resolves every column `model` reads in `schema` (`file` names the schema in errors).
pub(crate) fn resolve(model: &ModelConfig, schema: &Schema, file: &str) -> Result<Resolved> {
    schema.check_feature_columns(model, file)?;
    let column_of = |f: &str| schema.index(f).expect("checked by check_feature_columns");
    let feature_index = |name: &str| {
        model
            .features
            .iter()
            .position(|g| g.name == name)
            .expect("checked by ModelConfig::validate")
    };
    let mut inputs = Vec::with_capacity(model.features.len());
    for (i, feature) in model.features.iter().enumerate() {
        let key = |k: &str| format!("feature[{i}].{k}");
        let column = column_of(feature.column());
        inputs.push(match &feature.kind {
            FeatureKind::Categorical {
                min_count,
                hash_rows,
            } => Input::Categorical {
                column,
                min_count: *min_count,
                hash_rows: *hash_rows,
            },
            FeatureKind::Bag { min_count, .. } => Input::Bag {
                column,
                min_count: *min_count,
            },
            FeatureKind::Numeric {
                radices,
                step,
                transform,
            } => Input::Numeric {
                column,
                radices: radices.clone(),
                step: *step,
                transform: *transform,
            },
            FeatureKind::Sequence {
                item,
                side,
                max_len,
                buckets,
                time,
                side_columns,
                times,
                timestamp,
            } => {
                let mut sides = Vec::with_capacity(side_columns.len());
                for (j, name) in side_columns.iter().enumerate() {
                    match schema.index(name).map(|c| (c, &schema.columns[c].kind)) {
                        Some((c, ColumnKind::Sequence { .. })) => sides.push(c),
                        Some((_, other)) => {
                            return Err(config_error(
                                file,
                                key(&format!("side_columns[{j}]")),
                                format!("column {name:?} is {}, not sequence", other.name()),
                            ))
                        }
                        None => {
                            return Err(config_error(
                                file,
                                key(&format!("side_columns[{j}]")),
                                format!("no column {name:?} in the schema"),
                            ))
                        }
                    }
                }
                let needs_times = matches!(time, TimeBucket::LogDelta { .. });
                let times = match times {
                    Some(name) => match schema.index(name).map(|c| (c, &schema.columns[c].kind)) {
                        Some((c, ColumnKind::SequenceTimes { .. })) => Some(c),
                        Some((_, other)) => {
                            return Err(config_error(
                                file,
                                key("times"),
                                format!("column {name:?} is {}, not sequence_times", other.name()),
                            ))
                        }
                        None => {
                            return Err(config_error(
                                file,
                                key("times"),
                                format!("no column {name:?} in the schema"),
                            ))
                        }
                    },
                    None => {
                        // Linked to the sequence column, or else to one of its side columns
                        // (as long as the sequence: the ml-100k and synthetic schemas link
                        // `hist_time` to the nearest sequence before it, a side column).
                        let linked_to = |owners: &[usize]| -> Vec<usize> {
                            (0..schema.columns.len())
                                .filter(|&c| {
                                    matches!(schema.columns[c].kind,
                                        ColumnKind::SequenceTimes { sequence, .. }
                                            if owners.contains(&sequence))
                                })
                                .collect()
                        };
                        let mut linked = linked_to(&[column]);
                        if linked.is_empty() {
                            linked = linked_to(&sides);
                        }
                        match linked.as_slice() {
                            [c] => Some(*c),
                            [] if needs_times => {
                                return Err(config_error(
                                    file,
                                    key("times"),
                                    format!(
                                        "log-delta buckets need the behaviours' times: no \
                                         sequence_times column of {:?} in the schema",
                                        feature.column()
                                    ),
                                ))
                            }
                            [] => None,
                            several => {
                                return Err(config_error(
                                    file,
                                    key("times"),
                                    format!(
                                        "{} sequence_times columns belong to {:?}: name one",
                                        several.len(),
                                        feature.column()
                                    ),
                                ))
                            }
                        }
                    }
                };
                let timestamp = match timestamp {
                    Some(name) => match schema.index(name).map(|c| (c, &schema.columns[c].kind)) {
                        Some((c, ColumnKind::Timestamp)) => Some(c),
                        Some((_, other)) => {
                            return Err(config_error(
                                file,
                                key("timestamp"),
                                format!("column {name:?} is {}, not timestamp", other.name()),
                            ))
                        }
                        None => {
                            return Err(config_error(
                                file,
                                key("timestamp"),
                                format!("no column {name:?} in the schema"),
                            ))
                        }
                    },
                    None => {
                        let all: Vec<usize> = (0..schema.columns.len())
                            .filter(|&c| schema.columns[c].kind == ColumnKind::Timestamp)
                            .collect();
                        match all.as_slice() {
                            [c] => Some(*c),
                            [] if needs_times => {
                                return Err(config_error(
                                    file,
                                    key("timestamp"),
                                    "log-delta buckets need the target's time: no timestamp \
                                     column in the schema",
                                ))
                            }
                            [] => None,
                            several if needs_times => {
                                return Err(config_error(
                                    file,
                                    key("timestamp"),
                                    format!(
                                        "{} timestamp columns in the schema: name one",
                                        several.len()
                                    ),
                                ))
                            }
                            _ => None,
                        }
                    }
                };
                let buckets = match *time {
                    TimeBucket::Position => TemporalBuckets::Position { buckets: *buckets },
                    TimeBucket::LogDelta { unit_seconds } => TemporalBuckets::LogTime {
                        buckets: *buckets,
                        unit: unit_seconds,
                    },
                };
                Input::Sequence(SequenceInput {
                    column,
                    item: feature_index(item),
                    side: side.iter().map(|s| feature_index(s)).collect(),
                    side_columns: sides,
                    times: if needs_times { times } else { None },
                    timestamp: if needs_times { timestamp } else { None },
                    max_len: *max_len,
                    buckets,
                })
            }
        });
    }
    let labels = model
        .tasks
        .iter()
        .map(|t| column_of(t.label.as_deref().unwrap_or(&t.name)))
        .collect();
    let group = match &model.train.group {
        None => None,
        Some(name) => {
            // A column of that name, or else the column of the feature of that name.
            let found = schema.index(name).or_else(|| {
                model
                    .features
                    .iter()
                    .find(|f| &f.name == name)
                    .and_then(|f| schema.index(f.column()))
            });
            match found.map(|c| (c, &schema.columns[c].kind)) {
                Some((
                    c,
                    ColumnKind::Categorical | ColumnKind::Numeric | ColumnKind::Timestamp,
                )) => Some(c),
                Some((_, other)) => {
                    return Err(config_error(
                        file,
                        "train.group",
                        format!(
                            "column {name:?} is {}; groups come from a categorical, numeric or \
                             timestamp column",
                            other.name()
                        ),
                    ))
                }
                None => {
                    return Err(config_error(
                        file,
                        "train.group",
                        format!("no column {name:?} in the schema"),
                    ))
                }
            }
        }
    };
    let weights = match &model.train.weights {
        None => None,
        Some(w) => {
            let column = match &w.column {
                None => None,
                Some(name) => match schema.index(name).map(|c| (c, &schema.columns[c].kind)) {
                    Some((c, ColumnKind::Numeric | ColumnKind::Weight)) => Some(c),
                    Some((_, other)) => {
                        return Err(config_error(
                            file,
                            "train.weights.column",
                            format!(
                                "column {name:?} is {}; exposure counts come from a numeric or \
                                 weight column",
                                other.name()
                            ),
                        ))
                    }
                    None => {
                        return Err(config_error(
                            file,
                            "train.weights.column",
                            format!("no column {name:?} in the schema"),
                        ))
                    }
                },
            };
            let rule = WeightRule {
                exposure: if column.is_some() {
                    ExposureWeight::Power { gamma: w.gamma }
                } else {
                    ExposureWeight::None
                },
                positive: w.positive,
                negative: w.negative,
            };
            rule.validate()
                .map_err(|e| config_error(file, "train.weights", e.to_string()))?;
            Some((column, rule))
        }
    };
    Ok(Resolved {
        inputs,
        labels,
        group,
        weights,
    })
}

/// The numeric fit of one feature: the smallest and largest finite value seen in training.
#[derive(Debug, Clone, PartialEq)]
struct NumericFit {
    min: f64,
    max: f64,
    /// The data lines of `min` and `max` (0 when unknown), to name a corrupt extreme.
    min_line: u64,
    max_line: u64,
    /// `v_max`, the largest value (set by `finish_fit`).
    top: u32,
    bases: Vec<MnsBase>,
}

impl NumericFit {
    fn new() -> Self {
        NumericFit {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            min_line: 0,
            max_line: 0,
            top: 0,
            bases: Vec::new(),
        }
    }

    fn seen(&self) -> bool {
        self.min <= self.max
    }

    /// Sets `top` and the digits per radix from `min` and `max`.
    fn finish(&mut self, radices: &[u32], step: f64) -> std::result::Result<(), SpanTooWide> {
        self.top = if self.seen() {
            let span = ((self.max - self.min) / step).floor();
            if span >= f64::from(u32::MAX - 1) {
                return Err(self.span_too_wide(span, step));
            }
            1 + span as u32
        } else {
            0
        };
        self.bases = radices
            .iter()
            .map(|&radix| {
                let mut digits = 1;
                while u64::from(radix).saturating_pow(digits) <= u64::from(self.top) {
                    digits += 1;
                }
                MnsBase { radix, digits }
            })
            .collect();
        Ok(())
    }

    fn span_too_wide(&self, span: f64, step: f64) -> SpanTooWide {
        let ((x, line), (other, other_line)) = if self.max.abs() >= self.min.abs() {
            ((self.max, self.max_line), (self.min, self.min_line))
        } else {
            ((self.min, self.min_line), (self.max, self.max_line))
        };
        SpanTooWide {
            line,
            message: format!(
                "value {x:e} is {span:e} steps of {step} from the other end of the training range \
                 ({other:e}, line {other_line}); at most {} steps fit: fix the value, or raise the \
                 feature's step or give it transform = \"log\"",
                u32::MAX - 2
            ),
        }
    }

    /// Widens the range to `x` (not NaN), read on data line `line`.
    fn see(&mut self, x: f64, line: u64) {
        if x < self.min {
            self.min_line = line;
        }
        if x > self.max {
            self.max_line = line;
        }
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }

    /// The value of `x` (see the module docs).
    fn value(&self, x: f64, step: f64) -> u32 {
        if x.is_nan() || self.top == 0 {
            return 0;
        }
        let v = 1.0 + ((x - self.min) / step).floor();
        v.clamp(1.0, f64::from(self.top)) as u32
    }
}

/// What a feature learns from the training split.
#[derive(Debug, Clone)]
enum State {
    Ids {
        counter: VocabularyCounter,
        vocab: Option<Vocabulary>,
    },
    Numeric(NumericFit),
    Sequence,
}

/// Turns read batches into [`ModelBatch`]es (see the module docs).
#[derive(Debug, Clone)]
pub struct Encoder {
    schema: Schema,
    schema_file: String,
    names: Vec<String>,
    resolved: Resolved,
    states: Vec<State>,
    fitted: bool,
}

impl Encoder {
    /// Resolves every column `config` reads in `schema` (`schema_file` names it in errors): each
    /// feature's column, the task labels, the side, times and timestamp columns of sequence
    /// features, the GAUC group column and the weight column. An unfitted encoder: fit it next.
    pub fn new(config: &ModelConfig, schema: &Schema, schema_file: &str) -> Result<Self> {
        let resolved = resolve(config, schema, schema_file)?;
        let mut states = Vec::with_capacity(resolved.inputs.len());
        for (i, input) in resolved.inputs.iter().enumerate() {
            states.push(match input {
                Input::Categorical { hash_rows, .. } => State::Ids {
                    counter: VocabularyCounter::new(),
                    vocab: match hash_rows {
                        Some(rows) => Some(Vocabulary::hashed(*rows).map_err(|e| {
                            config_error(
                                schema_file,
                                format!("feature[{i}].hash_rows"),
                                e.to_string(),
                            )
                        })?),
                        None => None,
                    },
                },
                Input::Bag { .. } => State::Ids {
                    counter: VocabularyCounter::new(),
                    vocab: None,
                },
                Input::Numeric { .. } => State::Numeric(NumericFit::new()),
                Input::Sequence(_) => State::Sequence,
            });
        }
        Ok(Encoder {
            schema: schema.clone(),
            schema_file: schema_file.to_string(),
            names: config.features.iter().map(|f| f.name.clone()).collect(),
            resolved,
            states,
            fitted: false,
        })
    }

    /// Fits a new encoder on a whole training file, streamed with `options` (with
    /// `skip_bad_rows`, rows the reader or the encoder rejects are left out of the fit).
    pub fn fit_file(
        config: &ModelConfig,
        schema: &Schema,
        schema_file: &str,
        path: &Path,
        options: ReadOptions,
    ) -> Result<Encoder> {
        let mut encoder = Encoder::new(config, schema, schema_file)?;
        let file = path.display().to_string();
        let skip = options.skip_bad_rows;
        let mut reader = TableReader::open(path, schema, options)?;
        for batch in reader.by_ref() {
            let batch = batch?;
            if skip {
                let good: Vec<usize> = (0..batch.rows)
                    .filter(|&r| encoder.check_row(&batch, &file, r).is_ok())
                    .collect();
                if !encoder.fitted {
                    encoder.fit_rows(&batch, &good);
                }
            } else {
                for r in 0..batch.rows {
                    encoder.check_row(&batch, &file, r)?;
                }
                encoder.fit(&batch);
            }
        }
        encoder.finish_fit_of(Some(&file))?;
        Ok(encoder)
    }

    /// Counts the ids and numeric ranges of one training batch (read with this encoder's schema).
    /// Fitting is one pass: once [`Self::finish_fit`] has run (or the encoder was loaded), further
    /// batches are ignored.
    pub fn fit(&mut self, batch: &Batch) {
        if self.fitted {
            return;
        }
        let all: Vec<usize> = (0..batch.rows).collect();
        self.fit_rows(batch, &all);
    }

    fn fit_rows(&mut self, batch: &Batch, rows: &[usize]) {
        for (input, state) in self.resolved.inputs.iter().zip(&mut self.states) {
            match (input, state) {
                (
                    Input::Categorical { column, .. },
                    State::Ids {
                        counter,
                        vocab: None,
                    },
                ) => {
                    if let ColumnData::Categorical(tokens) = &batch.columns[*column] {
                        rows.iter().for_each(|&r| counter.add(tokens.get(r)));
                    }
                }
                (Input::Bag { column, .. }, State::Ids { counter, .. }) => {
                    if let ColumnData::MultiHot(bags) = &batch.columns[*column] {
                        for &r in rows {
                            bags.row(r).for_each(|t| counter.add(t));
                        }
                    }
                }
                (
                    Input::Numeric {
                        column, transform, ..
                    },
                    State::Numeric(fit),
                ) => {
                    if let ColumnData::Numeric(x) = &batch.columns[*column] {
                        for &r in rows {
                            let x = transform.apply(x[r]);
                            if !x.is_nan() {
                                fit.see(x, batch.lines.get(r).copied().unwrap_or(0));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Builds the vocabularies and the numeric fits from what [`Self::fit`] counted. A numeric
    /// feature whose training values span more than 2^32 − 3 steps is an error naming its `step`.
    pub fn finish_fit(&mut self) -> Result<()> {
        self.finish_fit_of(None)
    }

    /// [`Self::finish_fit`]; with the training file's name a numeric range too wide for its step is
    /// an [`Error::Data`] naming the file, line and column of the offending value.
    fn finish_fit_of(&mut self, data_file: Option<&str>) -> Result<()> {
        if self.fitted {
            return Ok(());
        }
        for (i, (input, state)) in self
            .resolved
            .inputs
            .iter()
            .zip(&mut self.states)
            .enumerate()
        {
            match (input, state) {
                (Input::Categorical { min_count, .. }, State::Ids { counter, vocab })
                | (Input::Bag { min_count, .. }, State::Ids { counter, vocab }) => {
                    if !vocab.as_ref().is_some_and(Vocabulary::is_hashed) {
                        *vocab = Some(Vocabulary::counted(counter, u64::from(*min_count))?);
                    }
                    *counter = VocabularyCounter::new();
                }
                (
                    Input::Numeric {
                        radices,
                        step,
                        column,
                        ..
                    },
                    State::Numeric(fit),
                ) => {
                    fit.finish(radices, *step).map_err(|e| match data_file {
                        Some(file) => Error::Data {
                            file: file.to_string(),
                            line: Some(e.line),
                            column: Some(format!(
                                "{} {:?}",
                                column + 1,
                                self.schema.columns[*column].name
                            )),
                            message: e.message,
                        },
                        None => config_error(
                            &self.schema_file,
                            format!("feature[{i}].step"),
                            format!("line {}: {}", e.line, e.message),
                        ),
                    })?;
                }
                _ => {}
            }
        }
        self.fitted = true;
        Ok(())
    }

    /// Whether the encoder is fitted (or loaded) and can encode.
    pub fn is_fitted(&self) -> bool {
        self.fitted
    }

    /// The schema the encoder reads.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Rows of feature `feature`'s table: the vocabulary's rows (OOV row included) for categorical
    /// and bag features, [`MnsBase::rows`] for numeric ones, 0 for sequences (they read other
    /// features' tables) and for an unfitted encoder. Panics if `feature` is past the features.
    pub fn table_rows(&self, feature: usize) -> u32 {
        match &self.states[feature] {
            State::Ids {
                vocab: Some(vocab), ..
            } if self.fitted => vocab.rows(),
            State::Numeric(fit) if self.fitted => MnsBase::rows(&fit.bases),
            _ => 0,
        }
    }

    /// The MNS bases of numeric feature `feature` (empty for other features and before fitting).
    pub fn mns(&self, feature: usize) -> Vec<MnsBase> {
        match &self.states[feature] {
            State::Numeric(fit) if self.fitted => fit.bases.clone(),
            _ => Vec::new(),
        }
    }

    /// The vocabulary of categorical or bag feature `feature` once fitted.
    pub fn vocabulary(&self, feature: usize) -> Option<&Vocabulary> {
        match &self.states[feature] {
            State::Ids { vocab, .. } if self.fitted => vocab.as_ref(),
            _ => None,
        }
    }

    /// Tasks (label columns per row of [`ModelBatch::labels`]).
    pub fn tasks(&self) -> usize {
        self.resolved.labels.len()
    }

    /// The logit offset prediction subtracts, `log(positive / negative)` of `[train.weights]`
    /// (0 without weights).
    pub fn logit_correction(&self) -> f64 {
        self.resolved
            .weights
            .as_ref()
            .map_or(0.0, |(_, rule)| rule.logit_correction())
    }

    fn data_error(&self, file: &str, line: u64, column: usize, message: String) -> Error {
        Error::Data {
            file: file.to_string(),
            line: Some(line),
            column: Some(format!(
                "{} {:?}",
                column + 1,
                self.schema.columns[column].name
            )),
            message,
        }
    }

    /// `Err` unless `batch` has this encoder's schema's columns and row `r` (if any) exists.
    fn check_batch(&self, batch: &Batch, file: &str, r: Option<usize>) -> Result<()> {
        let same = batch.columns.len() == self.schema.columns.len()
            && batch
                .columns
                .iter()
                .zip(&self.schema.columns)
                .all(|(data, column)| data.type_name() == column.kind.name());
        if !same || batch.lines.len() != batch.rows {
            return Err(Error::data(
                file,
                "the batch was not read with the encoder's schema",
            ));
        }
        if let Some(r) = r.filter(|&r| r >= batch.rows) {
            return Err(Error::data(
                file,
                format!("row {r} of a batch of {} rows", batch.rows),
            ));
        }
        Ok(())
    }

    /// Checks that row `r` of `batch` can be encoded (`file` names it in errors): sequence side
    /// and times columns as long as the sequence, integer behaviour times not after the target,
    /// exposure counts ≥ 0 (and that `batch` was read with the encoder's schema and has row `r`).
    /// [`Self::encode`] runs this on every row.
    pub fn check_row(&self, batch: &Batch, file: &str, r: usize) -> Result<()> {
        self.check_batch(batch, file, Some(r))?;
        let line = batch.lines[r];
        for input in &self.resolved.inputs {
            let Input::Sequence(s) = input else { continue };
            let n = sequence(batch, s.column).range(r).len();
            for &c in &s.side_columns {
                let m = sequence(batch, c).range(r).len();
                if m != n {
                    return Err(self.data_error(
                        file,
                        line,
                        c,
                        format!(
                            "{m} ids where sequence column {:?} has {n}",
                            self.schema.columns[s.column].name
                        ),
                    ));
                }
            }
            if let (Some(tc), Some(sc)) = (s.times, s.timestamp) {
                let times = sequence_times(batch, tc).row(r);
                if times.len() != n {
                    return Err(self.data_error(
                        file,
                        line,
                        tc,
                        format!(
                            "{} times where sequence column {:?} has {n} ids",
                            times.len(),
                            self.schema.columns[s.column].name
                        ),
                    ));
                }
                let target = timestamps(batch, sc)[r];
                for (i, &t) in times.iter().enumerate() {
                    let Some(t) = integer_time(t) else {
                        return Err(self.data_error(
                            file,
                            line,
                            tc,
                            format!("behaviour {} has time {t}, not an integer", i + 1),
                        ));
                    };
                    if t > target {
                        return Err(self.data_error(
                            file,
                            line,
                            tc,
                            format!(
                                "behaviour {} at time {t} is after its target at {target} \
                                 (column {:?})",
                                i + 1,
                                self.schema.columns[sc].name
                            ),
                        ));
                    }
                }
            }
        }
        if let Some((Some(c), _)) = &self.resolved.weights {
            if let ColumnData::Numeric(x) = &batch.columns[*c] {
                if x[r] < 0.0 {
                    return Err(self.data_error(
                        file,
                        line,
                        *c,
                        format!("exposure count {} is negative", x[r]),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Encodes every row of `batch` (read with this encoder's schema; `file` names it in errors).
    /// The first row [`Self::check_row`] rejects is the error.
    pub fn encode(&self, batch: &Batch, file: &str) -> Result<ModelBatch> {
        for r in 0..batch.rows {
            self.check_row(batch, file, r)?;
        }
        let all: Vec<usize> = (0..batch.rows).collect();
        self.encode_checked(batch, file, &all)
    }

    /// Encodes the rows `rows` of `batch`, in that order (a row [`Self::check_row`] rejects is an
    /// error).
    pub fn encode_rows(&self, batch: &Batch, file: &str, rows: &[usize]) -> Result<ModelBatch> {
        for &r in rows {
            self.check_row(batch, file, r)?;
        }
        self.encode_checked(batch, file, rows)
    }

    /// [`Self::encode_rows`] for rows that passed [`Self::check_row`].
    pub(crate) fn encode_checked(
        &self,
        batch: &Batch,
        file: &str,
        rows: &[usize],
    ) -> Result<ModelBatch> {
        if !self.fitted {
            return Err(Error::data(
                file,
                "the encoder is not fitted: fit it on the training split (or load it) first",
            ));
        }
        self.check_batch(batch, file, None)?;
        let features = self
            .resolved
            .inputs
            .iter()
            .enumerate()
            .map(|(f, input)| self.encode_feature(f, input, batch, file, rows))
            .collect::<Result<Vec<_>>>()?;
        let tasks = self.resolved.labels.len();
        let mut labels = Vec::with_capacity(rows.len() * tasks);
        for &r in rows {
            for &c in &self.resolved.labels {
                labels.push(match &batch.columns[c] {
                    ColumnData::Label(y) => y[r],
                    _ => unreachable!("label columns resolved"),
                });
            }
        }
        let weights = self.resolved.weights.as_ref().map(|(column, rule)| {
            rows.iter()
                .enumerate()
                .map(|(k, &r)| {
                    let count = match column.map(|c| &batch.columns[c]) {
                        Some(ColumnData::Numeric(x)) => x[r],
                        Some(ColumnData::Weight(x)) => f64::from(x[r]),
                        _ => 1.0,
                    };
                    // The class weight follows the first task's label.
                    rule.weight(count, f64::from(labels[k * tasks])) as f32
                })
                .collect()
        });
        let groups = self.resolved.group.map(|c| {
            rows.iter()
                .map(|&r| match &batch.columns[c] {
                    ColumnData::Categorical(t) => stable_hash(t.get(r)),
                    ColumnData::Numeric(x) => {
                        if x[r] == 0.0 {
                            0.0f64.to_bits()
                        } else {
                            x[r].to_bits()
                        }
                    }
                    ColumnData::Timestamp(t) => t[r] as u64,
                    _ => unreachable!("group column resolved"),
                })
                .collect()
        });
        Ok(ModelBatch {
            rows: rows.len(),
            lines: rows.iter().map(|&r| batch.lines[r]).collect(),
            features,
            labels,
            weights,
            groups,
        })
    }

    fn vocab(&self, feature: usize) -> &Vocabulary {
        match &self.states[feature] {
            State::Ids {
                vocab: Some(vocab), ..
            } => vocab,
            _ => unreachable!("fitted id feature"),
        }
    }

    fn encode_feature(
        &self,
        f: usize,
        input: &Input,
        batch: &Batch,
        file: &str,
        rows: &[usize],
    ) -> Result<FeatureInput> {
        let too_many = || {
            Error::data(
                file,
                format!(
                    "feature {:?}: more than 2^32 ids in one batch",
                    self.names[f]
                ),
            )
        };
        Ok(match input {
            Input::Categorical { column, .. } => {
                let tokens = tokens(batch, *column);
                let vocab = self.vocab(f);
                FeatureInput::Ids {
                    offsets: (0..=rows.len() as u32).collect(),
                    rows: rows.iter().map(|&r| vocab.row(tokens.get(r))).collect(),
                }
            }
            Input::Bag { column, .. } => {
                let ColumnData::MultiHot(bags) = &batch.columns[*column] else {
                    unreachable!("bag column resolved")
                };
                let vocab = self.vocab(f);
                let mut offsets = Vec::with_capacity(rows.len() + 1);
                let mut ids = Vec::new();
                offsets.push(0);
                for &r in rows {
                    ids.extend(bags.row(r).map(|t| vocab.row(t)));
                    offsets.push(u32::try_from(ids.len()).map_err(|_| too_many())?);
                }
                FeatureInput::Ids { offsets, rows: ids }
            }
            Input::Numeric {
                column,
                step,
                transform,
                ..
            } => {
                let State::Numeric(fit) = &self.states[f] else {
                    unreachable!("numeric state")
                };
                let ColumnData::Numeric(x) = &batch.columns[*column] else {
                    unreachable!("numeric column resolved")
                };
                FeatureInput::Ids {
                    offsets: (0..=rows.len() as u32).collect(),
                    rows: rows
                        .iter()
                        .map(|&r| fit.value(transform.apply(x[r]), *step))
                        .collect(),
                }
            }
            Input::Sequence(s) => {
                FeatureInput::Sequence(self.encode_sequence(s, batch, file, rows)?)
            }
        })
    }

    /// The target's semantic id of side feature `g` in row `r`.
    fn side_target(&self, g: usize, batch: &Batch, r: usize) -> u32 {
        let vocab = self.vocab(g);
        match (&self.resolved.inputs[g], &self.states[g]) {
            (Input::Categorical { column, .. }, _) => vocab.row(tokens(batch, *column).get(r)),
            (Input::Bag { column, .. }, _) => match &batch.columns[*column] {
                ColumnData::MultiHot(bags) => bags.row(r).next().map_or(OOV_ROW, |t| vocab.row(t)),
                _ => unreachable!("bag column resolved"),
            },
            _ => unreachable!("side features are categorical or bags (ModelConfig::validate)"),
        }
    }

    fn encode_sequence(
        &self,
        s: &SequenceInput,
        batch: &Batch,
        file: &str,
        rows: &[usize],
    ) -> Result<TimBatch> {
        let seq = sequence(batch, s.column);
        let sides: Vec<&Ragged<Tokens>> =
            s.side_columns.iter().map(|&c| sequence(batch, c)).collect();
        let width = 1 + s.side.len();
        let item_vocab = self.vocab(s.item);
        let Input::Categorical {
            column: item_column,
            ..
        } = self.resolved.inputs[s.item]
        else {
            unreachable!("the item feature is categorical (ModelConfig::validate)")
        };
        let items = tokens(batch, item_column);
        let mut out = TimBatch {
            lengths: Vec::with_capacity(rows.len()),
            target: Vec::with_capacity(rows.len() * width),
            behaviours: Vec::new(),
            buckets: Vec::new(),
        };
        let mut times = Vec::new();
        for &r in rows {
            out.target.push(item_vocab.row(items.get(r)));
            for &g in &s.side {
                out.target.push(self.side_target(g, batch, r));
            }
            let range = seq.range(r);
            let n = range.len();
            let keep = n.saturating_sub(s.max_len as usize)..n;
            out.lengths.push(keep.len() as u32);
            for i in keep.clone() {
                out.behaviours
                    .push(item_vocab.row(seq.values.get(range.start + i)));
                for (side, &g) in sides.iter().zip(&s.side) {
                    let start = side.offsets[r];
                    out.behaviours
                        .push(self.vocab(g).row(side.values.get(start + i)));
                }
            }
            let target = match (s.times, s.timestamp) {
                (Some(tc), Some(sc)) => {
                    times.clear();
                    times.extend(
                        sequence_times(batch, tc).row(r)[keep.clone()]
                            .iter()
                            .map(|&t| integer_time(t).expect("checked by check_row")),
                    );
                    timestamps(batch, sc)[r]
                }
                _ => {
                    times.clear();
                    times.resize(keep.len(), 0);
                    0
                }
            };
            let buckets = s.buckets.assign(target, &times).map_err(|e| Error::Data {
                file: file.to_string(),
                line: Some(batch.lines[r]),
                column: None,
                message: e.to_string(),
            })?;
            out.buckets.extend(buckets);
        }
        Ok(out)
    }
}

/// A behaviour time as an integer timestamp (`None` if it has a fraction or is out of range).
fn integer_time(t: f64) -> Option<i64> {
    (t.fract() == 0.0 && t >= i64::MIN as f64 && t < i64::MAX as f64).then_some(t as i64)
}

fn tokens(batch: &Batch, c: usize) -> &Tokens {
    match &batch.columns[c] {
        ColumnData::Categorical(t) => t,
        other => unreachable!(
            "column {c} resolved as categorical is {}",
            other.type_name()
        ),
    }
}

fn sequence(batch: &Batch, c: usize) -> &Ragged<Tokens> {
    match &batch.columns[c] {
        ColumnData::Sequence(s) => s,
        other => unreachable!("column {c} resolved as sequence is {}", other.type_name()),
    }
}

fn sequence_times(batch: &Batch, c: usize) -> &Ragged<Vec<f64>> {
    match &batch.columns[c] {
        ColumnData::SequenceTimes(s) => s,
        other => unreachable!(
            "column {c} resolved as sequence_times is {}",
            other.type_name()
        ),
    }
}

fn timestamps(batch: &Batch, c: usize) -> &[i64] {
    match &batch.columns[c] {
        ColumnData::Timestamp(t) => t,
        other => unreachable!("column {c} resolved as timestamp is {}", other.type_name()),
    }
}

const FORMAT: &str = "wgrec-encoder";
const FILE: &str = "encoder.json";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedEncoder {
    format: String,
    version: u32,
    features: Vec<SavedFeature>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedFeature {
    name: String,
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    vocabulary: Option<String>,
    /// Numeric: the smallest and largest training value (absent when none was seen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    step: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    radices: Option<Vec<u32>>,
}

fn kind_name(input: &Input) -> &'static str {
    match input {
        Input::Categorical { .. } => "categorical",
        Input::Bag { .. } => "bag",
        Input::Numeric { .. } => "numeric",
        Input::Sequence(_) => "sequence",
    }
}

impl Encoder {
    /// Writes the fitted encoder into `dir` (created if needed): `encoder.json` (each feature's
    /// name and kind, the numeric fits) and `vocab-<i>.json` per categorical or bag feature `i`
    /// ([`Vocabulary::save`]), every file atomically, `encoder.json` last.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let file = dir.join(FILE);
        if !self.fitted {
            return Err(Error::checkpoint(&file, None, "the encoder is not fitted"));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::checkpoint(dir, None, format!("cannot create: {e}")))?;
        let mut features = Vec::with_capacity(self.names.len());
        for (i, (input, state)) in self.resolved.inputs.iter().zip(&self.states).enumerate() {
            let mut saved = SavedFeature {
                name: self.names[i].clone(),
                kind: kind_name(input).into(),
                vocabulary: None,
                min: None,
                max: None,
                step: None,
                radices: None,
            };
            match (input, state) {
                (_, State::Ids { vocab: Some(v), .. }) => {
                    let name = format!("vocab-{i}.json");
                    v.save(&dir.join(&name))?;
                    saved.vocabulary = Some(name);
                }
                (Input::Numeric { radices, step, .. }, State::Numeric(fit)) => {
                    if fit.seen() {
                        saved.min = Some(fit.min);
                        saved.max = Some(fit.max);
                    }
                    saved.step = Some(*step);
                    saved.radices = Some(radices.clone());
                }
                _ => {}
            }
            features.push(saved);
        }
        let json = serde_json::to_vec_pretty(&SavedEncoder {
            format: FORMAT.into(),
            version: 1,
            features,
        })
        .map_err(|e| Error::checkpoint(&file, None, e))?;
        write_atomically(&file, |temporary| {
            std::fs::write(temporary, &json)
                .map_err(|e| Error::checkpoint(temporary, None, format!("cannot write: {e}")))
        })
    }

    /// Reads an encoder written by [`Self::save`] for `config` and `schema`: the features must have
    /// the names and kinds the file records, numeric features the same step and radices.
    pub fn load(
        dir: &Path,
        config: &ModelConfig,
        schema: &Schema,
        schema_file: &str,
    ) -> Result<Encoder> {
        let mut encoder = Encoder::new(config, schema, schema_file)?;
        let file = dir.join(FILE);
        let text = std::fs::read(&file)
            .map_err(|e| Error::checkpoint(&file, None, format!("cannot read: {e}")))?;
        let saved: SavedEncoder = serde_json::from_slice(&text)
            .map_err(|e| Error::checkpoint(&file, None, format!("not an encoder file: {e}")))?;
        if saved.format != FORMAT || saved.version != 1 {
            return Err(Error::checkpoint(
                &file,
                Some("format"),
                format!(
                    "{:?} version {} (expected {FORMAT:?} version 1)",
                    saved.format, saved.version
                ),
            ));
        }
        if saved.features.len() != encoder.names.len() {
            return Err(Error::checkpoint(
                &file,
                Some("features"),
                format!(
                    "{} features saved, the model has {}",
                    saved.features.len(),
                    encoder.names.len()
                ),
            ));
        }
        let mut states = Vec::with_capacity(saved.features.len());
        for (i, s) in saved.features.iter().enumerate() {
            let input = &encoder.resolved.inputs[i];
            let key = format!("features[{i}]");
            if s.name != encoder.names[i] || s.kind != kind_name(input) {
                return Err(Error::checkpoint(
                    &file,
                    Some(&key),
                    format!(
                        "saved {} feature {:?}, the model has {} feature {:?}",
                        s.kind,
                        s.name,
                        kind_name(input),
                        encoder.names[i]
                    ),
                ));
            }
            states.push(match input {
                Input::Categorical { hash_rows, .. } => {
                    let v = load_vocab(dir, &file, &key, s)?;
                    if v.is_hashed() != hash_rows.is_some()
                        || hash_rows.is_some_and(|n| u64::from(v.rows()) != n)
                    {
                        return Err(Error::checkpoint(
                            &file,
                            Some(&key),
                            format!(
                                "feature {:?}: the saved vocabulary ({} rows, {}) does not match \
                                 the model's hash_rows {hash_rows:?}",
                                s.name,
                                v.rows(),
                                if v.is_hashed() { "hashed" } else { "counted" }
                            ),
                        ));
                    }
                    State::Ids {
                        counter: VocabularyCounter::new(),
                        vocab: Some(v),
                    }
                }
                Input::Bag { .. } => State::Ids {
                    counter: VocabularyCounter::new(),
                    vocab: Some(load_vocab(dir, &file, &key, s)?),
                },
                Input::Numeric { radices, step, .. } => {
                    if s.step != Some(*step) || s.radices.as_ref() != Some(radices) {
                        return Err(Error::checkpoint(
                            &file,
                            Some(&key),
                            format!(
                                "feature {:?}: saved step {:?} and radices {:?}, the model has \
                                 {step} and {radices:?}",
                                s.name, s.step, s.radices
                            ),
                        ));
                    }
                    let mut fit = NumericFit::new();
                    match (s.min, s.max) {
                        (Some(min), Some(max))
                            if min.is_finite() && max.is_finite() && min <= max =>
                        {
                            fit.min = min;
                            fit.max = max;
                        }
                        (None, None) => {}
                        _ => {
                            return Err(Error::checkpoint(
                                &file,
                                Some(&key),
                                format!(
                                    "feature {:?}: min {:?} and max {:?}",
                                    s.name, s.min, s.max
                                ),
                            ))
                        }
                    }
                    fit.finish(radices, *step)
                        .map_err(|m| Error::checkpoint(&file, Some(&key), m.message))?;
                    State::Numeric(fit)
                }
                Input::Sequence(_) => State::Sequence,
            });
        }
        encoder.states = states;
        encoder.fitted = true;
        Ok(encoder)
    }
}

fn load_vocab(dir: &Path, file: &Path, key: &str, s: &SavedFeature) -> Result<Vocabulary> {
    let Some(name) = &s.vocabulary else {
        return Err(Error::checkpoint(
            file,
            Some(key),
            format!("feature {:?} has no vocabulary file", s.name),
        ));
    };
    if name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(Error::checkpoint(
            file,
            Some(key),
            format!("vocabulary {name:?} is not a file name in the encoder's folder"),
        ));
    }
    Vocabulary::load(&dir.join(name))
}

/// Merges the reader's and the encoder's skipped rows, by line, keeping at most `kept` reasons.
pub(crate) fn merge_bad_rows(a: BadRows, b: BadRows, kept: usize) -> BadRows {
    let line = |e: &Error| match e {
        Error::Data { line, .. } => line.unwrap_or(0),
        _ => 0,
    };
    let mut first: BTreeMap<(u64, usize), Error> = BTreeMap::new();
    for (k, e) in a.first.into_iter().chain(b.first).enumerate() {
        first.insert((line(&e), k), e);
    }
    BadRows {
        count: a.count + b.count,
        rows_read: a.rows_read + b.rows_read,
        first: first.into_values().take(kept).collect(),
    }
}

#[cfg(test)]
#[path = "encode_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "numeric_tests.rs"]
mod numeric_tests;
