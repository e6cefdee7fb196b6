//! The `[[feature]]` tables, parsed one at a time so that an error names the feature and its line.
//!
//! A feature's keys depend on its `kind`. Parsed as one internally tagged enum, serde buffers the
//! table before choosing the variant and the `toml` crate loses every position: an unknown key in
//! the fifth feature was reported at the first `[[feature]]` header, with no name. So the file is
//! read with each feature kept as a raw table (with its header's position); each table is then
//! read as the struct of its kind, and on error that struct is read once more from the table's own
//! text, which gives the line and column of the bad key or value.

use std::ops::Range;

use serde::Deserialize;

use super::feature::{bar, default_radices, fifty, one, sixty_four};
use super::feature_content::{HashIdFile, SimilarityFile};
use super::{bad, unit, BagPooling, Dtype, Feature, FeatureKind, SequencePooling, TimeBucket};
use crate::error::{Error, Result};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CategoricalFile {
    name: String,
    /// The `kind` key, which chose this struct (serde's tagged path removes it before).
    #[serde(default, rename = "kind")]
    _kind: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    column: Option<String>,
    /// This feature's embedding weight decay (overrides `train.sparse_weight_decay`).
    #[serde(default)]
    embedding_l2: Option<f32>,
    /// This feature's table element type (overrides `model.dtype`).
    #[serde(default)]
    dtype: Option<Dtype>,
    #[serde(default = "one")]
    min_count: u32,
    #[serde(default)]
    hash_rows: Option<u64>,
    #[serde(default)]
    capacity: Option<u32>,
    #[serde(default)]
    admit_after: Option<u32>,
    #[serde(default)]
    expire_after: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BagFile {
    name: String,
    /// The `kind` key, which chose this struct (serde's tagged path removes it before).
    #[serde(default, rename = "kind")]
    _kind: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    column: Option<String>,
    /// This feature's embedding weight decay (overrides `train.sparse_weight_decay`).
    #[serde(default)]
    embedding_l2: Option<f32>,
    /// This feature's table element type (overrides `model.dtype`).
    #[serde(default)]
    dtype: Option<Dtype>,
    #[serde(default = "bar")]
    separator: String,
    #[serde(default)]
    pooling: BagPooling,
    #[serde(default = "one")]
    min_count: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NumericFile {
    name: String,
    /// The `kind` key, which chose this struct (serde's tagged path removes it before).
    #[serde(default, rename = "kind")]
    _kind: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    column: Option<String>,
    /// This feature's embedding weight decay (overrides `train.sparse_weight_decay`).
    #[serde(default)]
    embedding_l2: Option<f32>,
    /// This feature's table element type (overrides `model.dtype`).
    #[serde(default)]
    dtype: Option<Dtype>,
    #[serde(default = "default_radices")]
    radices: Vec<u32>,
    #[serde(default = "unit")]
    step: f64,
    #[serde(default)]
    transform: crate::data::numeric::NumericTransform,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SequenceFile {
    name: String,
    /// The `kind` key, which chose this struct (serde's tagged path removes it before).
    #[serde(default, rename = "kind")]
    _kind: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    column: Option<String>,
    /// This feature's embedding weight decay (overrides `train.sparse_weight_decay`).
    #[serde(default)]
    embedding_l2: Option<f32>,
    /// This feature's table element type (overrides `model.dtype`).
    #[serde(default)]
    dtype: Option<Dtype>,
    item: String,
    #[serde(default)]
    side: Vec<String>,
    #[serde(default = "fifty")]
    max_len: u32,
    #[serde(default)]
    pooling: SequencePooling,
    /// `None` when the file leaves it out (64; an error with `pooling = "mean"`).
    #[serde(default)]
    buckets: Option<u32>,
    /// `None` when the file leaves it out (log delta; an error with `pooling = "mean"`).
    #[serde(default)]
    time: Option<TimeBucket>,
    #[serde(default)]
    side_columns: Vec<String>,
    #[serde(default)]
    times: Option<String>,
    #[serde(default)]
    timestamp: Option<String>,
}

/// The file's form of a feature: `kind` selects the variant (serde's path, kept so that a
/// [`Feature`] still deserializes on its own; [`parse_features`] is the path with positions).
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub(super) enum RawFeature {
    Categorical(CategoricalFile),
    Bag(BagFile),
    Numeric(NumericFile),
    Sequence(SequenceFile),
    #[serde(rename = "hashid")]
    HashId(HashIdFile),
    Similarity(SimilarityFile),
}

impl From<RawFeature> for Feature {
    fn from(raw: RawFeature) -> Self {
        let (name, column, (embedding_l2, dtype), kind) = match raw {
            RawFeature::Categorical(f) => (
                f.name,
                f.column,
                (f.embedding_l2, f.dtype),
                FeatureKind::Categorical {
                    min_count: f.min_count,
                    hash_rows: f.hash_rows,
                    capacity: f.capacity,
                    admit_after: f.admit_after,
                    expire_after: f.expire_after,
                },
            ),
            RawFeature::Bag(f) => (
                f.name,
                f.column,
                (f.embedding_l2, f.dtype),
                FeatureKind::Bag {
                    separator: f.separator,
                    pooling: f.pooling,
                    min_count: f.min_count,
                },
            ),
            RawFeature::Numeric(f) => (
                f.name,
                f.column,
                (f.embedding_l2, f.dtype),
                FeatureKind::Numeric {
                    radices: f.radices,
                    step: f.step,
                    transform: f.transform,
                },
            ),
            RawFeature::Sequence(f) => (
                f.name,
                f.column,
                (f.embedding_l2, f.dtype),
                FeatureKind::Sequence {
                    item: f.item,
                    side: f.side,
                    max_len: f.max_len,
                    pooling: f.pooling,
                    buckets: f.buckets.unwrap_or(match f.pooling {
                        SequencePooling::Tim => sixty_four(),
                        SequencePooling::Mean => 2,
                    }),
                    time: f.time.unwrap_or(match f.pooling {
                        SequencePooling::Tim => TimeBucket::default(),
                        SequencePooling::Mean => TimeBucket::Position,
                    }),
                    side_columns: f.side_columns,
                    times: f.times,
                    timestamp: f.timestamp,
                },
            ),
            RawFeature::HashId(f) => return f.into(),
            RawFeature::Similarity(f) => return f.into(),
        };
        Feature {
            name,
            column,
            kind,
            embedding_l2,
            dtype,
        }
    }
}

/// One `[[feature]]` table as the file holds it, with the span of its header.
pub(super) type FeatureTable = toml::Spanned<toml::Table>;

/// Reads every feature table as the struct of its kind; an error names `feature[i]`, the
/// feature's name, and the line and column of the bad key (`text` is the whole file).
pub(super) fn parse_features(
    text: &str,
    file: &str,
    tables: Vec<FeatureTable>,
) -> Result<Vec<Feature>> {
    let headers: Vec<usize> = tables.iter().map(|t| t.span().start).collect();
    tables
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let header = t.span();
            let table = t.into_inner();
            from_table(&table).map_err(|message| {
                let body = body_span(text, header.clone(), &headers);
                let at = locate(text, &table, body).unwrap_or(header.start);
                feature_error(file, i, &table, text, at, message)
            })
        })
        .collect()
}

/// The kinds a `[[feature]]` may have, for messages.
const KINDS: &str =
    "\"categorical\", \"bag\", \"numeric\", \"sequence\", \"hashid\" or \"similarity\"";

/// The feature in `table`, or the error's message.
fn from_table(table: &toml::Table) -> std::result::Result<Feature, String> {
    let value = toml::Value::Table(table.clone());
    let raw = match table.get("kind").and_then(toml::Value::as_str) {
        Some("categorical") => CategoricalFile::deserialize(value).map(RawFeature::Categorical),
        Some("bag") => BagFile::deserialize(value).map(RawFeature::Bag),
        Some("numeric") => NumericFile::deserialize(value).map(RawFeature::Numeric),
        Some("sequence") => SequenceFile::deserialize(value).map(RawFeature::Sequence),
        Some("hashid") => HashIdFile::deserialize(value).map(RawFeature::HashId),
        Some("similarity") => SimilarityFile::deserialize(value).map(RawFeature::Similarity),
        Some(other) => return Err(format!("unknown kind {other:?}: one of {KINDS}")),
        None => return Err(format!("missing key `kind` ({KINDS})")),
    };
    let feature = raw
        .map(Feature::from)
        .map_err(|e| e.message().to_string())?;
    if let Some(key) = tim_only_key(table) {
        return Err(format!(
            "`{key}` means nothing with pooling = \"mean\": a mean-pooled sequence has no \
             temporal table and reads no behaviour times; remove the key"
        ));
    }
    Ok(feature)
}

/// The first TIM-only key a mean-pooled sequence's table sets (`None` for any other table).
fn tim_only_key(table: &toml::Table) -> Option<&'static str> {
    let is = |key: &str, value: &str| table.get(key).and_then(toml::Value::as_str) == Some(value);
    if !(is("kind", "sequence") && is("pooling", "mean")) {
        return None;
    }
    (SequencePooling::TIM_ONLY_KEYS.into_iter()).find(|k| table.contains_key(*k))
}

/// Where the error of `table` sits: the table's own text (`body`) is read again as the struct of
/// its kind, now with positions. `None` when the text alone does not reproduce an error.
fn locate(text: &str, table: &toml::Table, body: Range<usize>) -> Option<usize> {
    let slice = text.get(body.clone())?;
    let span = match table.get("kind").and_then(toml::Value::as_str) {
        Some("categorical") => toml::from_str::<CategoricalFile>(slice).err()?.span(),
        Some("bag") => toml::from_str::<BagFile>(slice).err()?.span(),
        Some("numeric") => toml::from_str::<NumericFile>(slice).err()?.span(),
        Some("hashid") => toml::from_str::<HashIdFile>(slice).err()?.span(),
        Some("similarity") => toml::from_str::<SimilarityFile>(slice).err()?.span(),
        Some("sequence") => match toml::from_str::<SequenceFile>(slice) {
            Err(e) => e.span(),
            Ok(_) => table_key_span(slice, tim_only_key(table)?),
        },
        _ => table_key_span(slice, "kind"),
    }?;
    Some(body.start + span.start)
}

/// The span of `key = …` in `slice`, found by its line (for a bad `kind`).
fn table_key_span(slice: &str, key: &str) -> Option<Range<usize>> {
    let mut at = 0;
    for line in slice.split_inclusive('\n') {
        let t = line.trim_start();
        if t.strip_prefix(key)
            .is_some_and(|r| r.trim_start().starts_with('='))
        {
            let start = at + (line.len() - t.len());
            return Some(start..start + key.len());
        }
        at += line.len();
    }
    None
}

/// The text of a feature's table: from the end of its header line to the next line that opens
/// a table (`[` first) or the next feature's header. A sub-table header (`[feature.time]`) ends it
/// early; then [`locate`] finds nothing and the header's line is reported.
fn body_span(text: &str, header: Range<usize>, headers: &[usize]) -> Range<usize> {
    let start = text[header.end..]
        .find('\n')
        .map_or(text.len(), |n| header.end + n + 1);
    let mut end = headers
        .iter()
        .copied()
        .filter(|&h| h > header.start)
        .min()
        .unwrap_or(text.len());
    let mut at = start;
    for line in text[start..end].split_inclusive('\n') {
        if line.trim_start().starts_with('[') {
            end = at;
            break;
        }
        at += line.len();
    }
    start..end
}

/// `file: feature[i]: "name", line L, column C: message`.
fn feature_error(
    file: &str,
    i: usize,
    table: &toml::Table,
    text: &str,
    at: usize,
    message: String,
) -> Error {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before[before.rfind('\n').map_or(0, |n| n + 1)..]
        .chars()
        .count()
        + 1;
    let name = match table.get("name").and_then(toml::Value::as_str) {
        Some(n) => format!("{n:?}, "),
        None => String::new(),
    };
    bad(
        file,
        format!("feature[{i}]"),
        format!("{name}line {line}, column {column}: {message}"),
    )
}
