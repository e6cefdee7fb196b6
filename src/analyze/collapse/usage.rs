//! Which embedding rows the training data uses, how often, and the field matrices built from them
//! (see the parent module's docs for the choices).

use std::collections::HashMap;
use std::path::Path;

use crate::analyze::Subject;
use crate::config::{FeatureKind, SequencePooling};
use crate::data::encode::FeatureInput;
use crate::error::{Error, Result};
use crate::kernels::embedding::MnsBase;

/// How a field's vectors come out of its checkpoint tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldSource {
    /// One table row per id (categorical, bag): the key is the row.
    Rows,
    /// A numeric feature: the key is the quantised value, its vector the sum of its MNS digit rows.
    Numeric(Vec<MnsBase>),
    /// A sequence feature's temporal table: the key is the bucket (0 = the target's).
    Time,
}

impl FieldSource {
    /// `categorical`, `bag`, `numeric` or `time` (JSON and report).
    pub fn kind(&self, bag: bool) -> &'static str {
        match self {
            FieldSource::Rows if bag => "bag",
            FieldSource::Rows => "categorical",
            FieldSource::Numeric(_) => "numeric",
            FieldSource::Time => "time",
        }
    }
}

/// One analysed field: its name, its tensor suffix, its kind and how often each key is used.
#[derive(Debug, Clone)]
pub struct FieldUsage {
    /// The field's name (`<sequence>.time` for a temporal table).
    pub name: String,
    /// `categorical`, `bag`, `numeric` or `time`.
    pub kind: &'static str,
    /// How the vectors are built.
    pub source: FieldSource,
    /// Uses per key, keys ascending; only keys used at least once.
    pub counts: Vec<(u32, u64)>,
}

impl FieldUsage {
    /// Total uses (the weights' denominator).
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.1).sum()
    }
}

/// Counts, over `subject`'s training split, the uses of every key of every analysed field, in
/// config order (a TIM-pooled sequence feature's temporal table where the feature stands; a
/// mean-pooled one has none).
pub fn count_usage(subject: &Subject) -> Result<Vec<FieldUsage>> {
    let config = subject.config();
    let mut fields: Vec<(usize, FieldUsage)> = Vec::new();
    for (f, feature) in config.features.iter().enumerate() {
        let (name, bag, source) = match &feature.kind {
            // A mean-pooled sequence has no temporal table (and reads its item's table).
            FeatureKind::Sequence {
                pooling: SequencePooling::Mean,
                ..
            } => continue,
            FeatureKind::Sequence { .. } => {
                (format!("{}.time", feature.name), false, FieldSource::Time)
            }
            FeatureKind::Numeric { .. } => {
                let bases = subject.encoder().mns(f);
                (feature.name.clone(), false, FieldSource::Numeric(bases))
            }
            FeatureKind::Bag { .. } => (feature.name.clone(), true, FieldSource::Rows),
            _ => (feature.name.clone(), false, FieldSource::Rows),
        };
        let kind = source.kind(bag);
        fields.push((
            f,
            FieldUsage {
                name,
                kind,
                source,
                counts: Vec::new(),
            },
        ));
    }
    let mut maps: Vec<HashMap<u32, u64>> = vec![HashMap::new(); fields.len()];
    for batch in subject.batches("train")? {
        let batch = batch?;
        for ((f, _), map) in fields.iter().zip(maps.iter_mut()) {
            match batch.features.get(*f) {
                Some(FeatureInput::Ids { rows, .. }) => {
                    for &r in rows {
                        *map.entry(r).or_insert(0) += 1;
                    }
                }
                Some(FeatureInput::Sequence(seq)) => {
                    // Every target reads bucket 0, every behaviour its own bucket.
                    *map.entry(0).or_insert(0) += seq.lengths.len() as u64;
                    for &b in &seq.buckets {
                        *map.entry(b).or_insert(0) += 1;
                    }
                }
                None => {
                    return Err(Error::Graph(format!(
                        "the encoded batch has no feature {f} ({} features)",
                        batch.features.len()
                    )))
                }
            }
        }
    }
    Ok(fields
        .into_iter()
        .zip(maps)
        .map(|((_, mut field), map)| {
            let mut counts: Vec<(u32, u64)> = map.into_iter().collect();
            counts.sort_unstable();
            field.counts = counts;
            field
        })
        .collect())
}

/// The field matrix of `usage` from a checkpoint tensor `[rows, width]` (`data`; `(checkpoint
/// file, tensor name)` for errors): one vector per used key in key order, plain, and frequency-weighted (scaled by
/// √(count / total), so its Gram is the frequency-weighted Gram). A key past the tensor, or a
/// non-finite value in a row used, is an error.
pub fn field_matrix(
    usage: &FieldUsage,
    data: &[f32],
    [rows, width]: [usize; 2],
    (file, tensor): (&Path, &str),
) -> Result<(Vec<f32>, Vec<f32>)> {
    let bad = |message: String| Error::Checkpoint {
        file: file.to_path_buf(),
        key: Some(tensor.to_string()),
        message,
    };
    let row = |r: u32| -> Result<&[f32]> {
        let r = r as usize;
        data.get(r * width..(r + 1) * width)
            .filter(|_| r < rows)
            .ok_or_else(|| {
                bad(format!(
                    "the training data uses row {r} of a table of {rows} rows"
                ))
            })
    };
    let n = usage.counts.len();
    let (mut plain, mut weighted) = (Vec::with_capacity(n * width), Vec::with_capacity(n * width));
    let total = usage.total().max(1) as f64;
    let mut sum = vec![0.0f64; width];
    for &(key, count) in &usage.counts {
        sum.iter_mut().for_each(|s| *s = 0.0);
        match &usage.source {
            FieldSource::Numeric(bases) => {
                for r in MnsBase::digit_rows(bases, key) {
                    sum.iter_mut()
                        .zip(row(r)?)
                        .for_each(|(s, &x)| *s += x as f64);
                }
            }
            FieldSource::Rows | FieldSource::Time => {
                sum.iter_mut()
                    .zip(row(key)?)
                    .for_each(|(s, &x)| *s = x as f64);
            }
        }
        if sum.iter().any(|s| !s.is_finite()) {
            return Err(bad(format!(
                "the row(s) of key {key} hold non-finite values"
            )));
        }
        let scale = (count as f64 / total).sqrt();
        plain.extend(sum.iter().map(|&s| s as f32));
        weighted.extend(sum.iter().map(|&s| (s * scale) as f32));
    }
    Ok((plain, weighted))
}
