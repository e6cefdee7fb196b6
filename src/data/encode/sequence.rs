//! Sequence features: a behaviour sequence encoded as a [`TimBatch`] (see the module docs of
//! [`crate::data::encode`] and `docs/tim.md`). Nothing is fitted: the ids go through the item and
//! side features' vocabularies. The side, times and timestamp columns are looked up by
//! `sequence_columns.rs` once every feature's own column is known; rows are checked before
//! encoding (side columns as long as the sequence, integer behaviour times not after the target).

use super::columns::{data_error, Lookup};
use super::sequence_columns::{LinkedColumns, Names};
use super::{FeatureEncoder, FeatureInput};
use crate::config::{Feature, FeatureKind, TimeBucket};
use crate::data::batch::{Batch, ColumnData, Ragged, Tokens};
use crate::data::schema::{ColumnKind, Schema};
use crate::error::{Error, Result};
use crate::kernels::tim::{TemporalBuckets, TimBatch};

/// The encoder of one sequence feature.
#[derive(Debug, Clone)]
pub struct Sequence {
    column: usize,
    /// Feature index of the item feature.
    item: usize,
    /// Feature indices of the side features.
    side: Vec<usize>,
    max_len: u32,
    buckets: TemporalBuckets,
    /// The config's names of the other columns, until `link` resolves them.
    names: Names,
    /// The other columns, once linked.
    linked: LinkedColumns,
}

impl Sequence {
    /// Looks up the feature's column, which must be a sequence.
    pub fn new(lookup: &Lookup, index: usize, feature: &Feature) -> Result<Self> {
        let FeatureKind::Sequence {
            ref item,
            ref side,
            max_len,
            buckets,
            time,
            ..
        } = feature.kind
        else {
            unreachable!("a sequence feature")
        };
        let column = lookup.feature_column(index, feature, |k| {
            Ok(matches!(k, ColumnKind::Sequence { .. }))
        })?;
        Ok(Sequence {
            column,
            item: lookup.feature_index(item),
            side: side.iter().map(|s| lookup.feature_index(s)).collect(),
            max_len,
            buckets: match time {
                TimeBucket::Position => TemporalBuckets::Position { buckets },
                TimeBucket::LogDelta { unit_seconds } => TemporalBuckets::LogTime {
                    buckets,
                    unit: unit_seconds,
                },
            },
            names: Names::new(index, feature),
            linked: LinkedColumns::default(),
        })
    }

    /// `Err` unless each side column of row `r` has as many ids as the sequence (`n`).
    fn check_sides(&self, at: &Rows, r: usize, n: usize) -> Result<()> {
        for &c in &self.linked.side_columns {
            let m = sequence(at.batch, c).range(r).len();
            if m != n {
                let message = format!(
                    "{m} ids where sequence column {:?} has {n}",
                    at.schema.columns[self.column].name
                );
                return Err(at.error(r, c, message));
            }
        }
        Ok(())
    }

    /// `Err` unless row `r` has `n` integer behaviour times, none after the target's timestamp.
    fn check_times(&self, at: &Rows, r: usize, n: usize) -> Result<()> {
        let (Some(tc), Some(sc)) = (self.linked.times, self.linked.timestamp) else {
            return Ok(());
        };
        let times = sequence_times(at.batch, tc).row(r);
        if times.len() != n {
            let message = format!(
                "{} times where sequence column {:?} has {n} ids",
                times.len(),
                at.schema.columns[self.column].name
            );
            return Err(at.error(r, tc, message));
        }
        let target = timestamps(at.batch, sc)[r];
        for (i, &t) in times.iter().enumerate() {
            let Some(t) = integer_time(t) else {
                let message = format!("behaviour {} has time {t}, not an integer", i + 1);
                return Err(at.error(r, tc, message));
            };
            if t > target {
                let message = format!(
                    "behaviour {} at time {t} is after its target at {target} (column {:?})",
                    i + 1,
                    at.schema.columns[sc].name
                );
                return Err(at.error(r, tc, message));
            }
        }
        Ok(())
    }

    /// The behaviours' times and the target's time of row `r`, the `keep` behaviours only (all
    /// 0 when the buckets do not need times).
    fn times_of(
        &self,
        batch: &Batch,
        r: usize,
        keep: std::ops::Range<usize>,
        times: &mut Vec<i64>,
    ) -> i64 {
        times.clear();
        match (self.linked.times, self.linked.timestamp) {
            (Some(tc), Some(sc)) => {
                times.extend(
                    sequence_times(batch, tc).row(r)[keep]
                        .iter()
                        .map(|&t| integer_time(t).expect("checked by check_row")),
                );
                timestamps(batch, sc)[r]
            }
            _ => {
                times.resize(keep.len(), 0);
                0
            }
        }
    }
}

impl FeatureEncoder for Sequence {
    fn kind(&self) -> &'static str {
        "sequence"
    }

    fn link(&mut self, lookup: &Lookup) -> Result<()> {
        self.linked = self.names.link(lookup, self.column)?;
        Ok(())
    }

    fn check_row(&self, schema: &Schema, batch: &Batch, file: &str, r: usize) -> Result<()> {
        let n = sequence(batch, self.column).range(r).len();
        let at = Rows {
            schema,
            batch,
            file,
        };
        self.check_sides(&at, r, n)?;
        self.check_times(&at, r, n)
    }

    fn encode(
        &self,
        batch: &Batch,
        file: &str,
        rows: &[usize],
        features: &[Box<dyn FeatureEncoder>],
    ) -> Result<FeatureInput> {
        let seq = sequence(batch, self.column);
        let sides: Vec<&Ragged<Tokens>> = (self.linked.side_columns.iter())
            .map(|&c| sequence(batch, c))
            .collect();
        let vocab = |f: usize| {
            features[f]
                .vocabulary()
                .expect("the item and side features are fitted id features")
        };
        let item_vocab = vocab(self.item);
        let side_vocabs: Vec<_> = self.side.iter().map(|&g| vocab(g)).collect();
        let target = |f: usize, r: usize| {
            features[f].target_row(batch, r).expect(
                "the item and side features are categorical or bags (ModelConfig::validate)",
            )
        };
        let width = 1 + self.side.len();
        let mut out = TimBatch {
            lengths: Vec::with_capacity(rows.len()),
            target: Vec::with_capacity(rows.len() * width),
            behaviours: Vec::new(),
            buckets: Vec::new(),
        };
        let mut times = Vec::new();
        for &r in rows {
            out.target.push(target(self.item, r));
            out.target.extend(self.side.iter().map(|&g| target(g, r)));
            let range = seq.range(r);
            let n = range.len();
            let keep = n.saturating_sub(self.max_len as usize)..n;
            out.lengths.push(keep.len() as u32);
            for i in keep.clone() {
                out.behaviours
                    .push(item_vocab.row(seq.values.get(range.start + i)));
                for (side, side_vocab) in sides.iter().zip(&side_vocabs) {
                    let start = side.offsets[r];
                    out.behaviours
                        .push(side_vocab.row(side.values.get(start + i)));
                }
            }
            let target_time = self.times_of(batch, r, keep, &mut times);
            let buckets = (self.buckets.assign(target_time, &times)).map_err(|e| Error::Data {
                file: file.to_string(),
                line: Some(batch.lines[r]),
                column: None,
                message: e.to_string(),
            })?;
            out.buckets.extend(buckets);
        }
        Ok(FeatureInput::Sequence(out))
    }

    fn boxed_clone(&self) -> Box<dyn FeatureEncoder> {
        Box::new(self.clone())
    }
}

/// The batch whose rows are checked, for errors.
struct Rows<'a> {
    schema: &'a Schema,
    batch: &'a Batch,
    file: &'a str,
}

impl Rows<'_> {
    /// An error at row `r`, column `c`.
    fn error(&self, r: usize, c: usize, message: String) -> Error {
        data_error(self.schema, self.file, self.batch.lines[r], c, message)
    }
}

/// A behaviour time as an integer timestamp (`None` if it has a fraction or is out of range).
fn integer_time(t: f64) -> Option<i64> {
    (t.fract() == 0.0 && t >= i64::MIN as f64 && t < i64::MAX as f64).then_some(t as i64)
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
