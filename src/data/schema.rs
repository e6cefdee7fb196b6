//! The schema of a sample table (`schema.toml` beside the data): the delimiter, whether a header
//! line names the columns, and each column's name and type, in file order. Two forms: a
//! `[[column]]` table per column, or the compact `columns = "type:names, …"` string for wide files
//! (see the module docs of [`crate::data`]). Errors are [`Error::Config`] naming the key.

use std::path::Path;

use serde::Deserialize;

use super::schema_columns::{expand_compact, resolve_columns};
use crate::config::{FeatureKind, ModelConfig};
use crate::error::{Error, Result};

/// What a column holds, and so how the reader parses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnKind {
    /// A 0/1 label (f32).
    Label,
    /// One id, kept as its raw string.
    Categorical,
    /// A number (f64); an empty field is [`crate::data::MISSING`].
    Numeric,
    /// Several ids in one field, split on `separator`.
    MultiHot {
        /// Separator between ids.
        separator: String,
    },
    /// An integer timestamp (i64, any unit; seconds for the protocol's time features).
    Timestamp,
    /// A per-sample loss weight (finite, ≥ 0; f32).
    Weight,
    /// A pre-built behaviour sequence of ids, oldest first, split on `separator`.
    Sequence {
        /// Separator between ids.
        separator: String,
    },
    /// The timestamps of a sequence column, one per id (f64), split on `separator`.
    SequenceTimes {
        /// Separator between timestamps.
        separator: String,
        /// Index of the sequence column these times belong to.
        sequence: usize,
    },
    /// Read past and not stored.
    Skip,
}

impl ColumnKind {
    /// The type's name in the schema file.
    pub fn name(&self) -> &'static str {
        match self {
            ColumnKind::Label => "label",
            ColumnKind::Categorical => "categorical",
            ColumnKind::Numeric => "numeric",
            ColumnKind::MultiHot { .. } => "multi_hot",
            ColumnKind::Timestamp => "timestamp",
            ColumnKind::Weight => "weight",
            ColumnKind::Sequence { .. } => "sequence",
            ColumnKind::SequenceTimes { .. } => "sequence_times",
            ColumnKind::Skip => "skip",
        }
    }
}

/// One column of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Its name (unique in the schema; matched against the header line when there is one).
    pub name: String,
    /// Its type.
    pub kind: ColumnKind,
}

/// A validated schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    /// Field delimiter (one ASCII byte).
    pub delimiter: u8,
    /// Quote byte of RFC-4180 quoted fields; `None` when quoting is off (`quote = ""`).
    pub quote: Option<u8>,
    /// The first line of the file names the columns.
    pub header: bool,
    /// The columns, in file order.
    pub columns: Vec<Column>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchema {
    #[serde(default = "tab")]
    delimiter: String,
    #[serde(default = "double_quote")]
    quote: String,
    #[serde(default = "yes")]
    header: bool,
    #[serde(default)]
    columns: Option<String>,
    #[serde(rename = "column", default)]
    column: Vec<RawColumn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawColumn {
    pub(super) name: String,
    #[serde(rename = "type")]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) separator: Option<String>,
    #[serde(default)]
    pub(super) sequence: Option<String>,
}

fn tab() -> String {
    "\t".into()
}
fn double_quote() -> String {
    "\"".into()
}
fn yes() -> bool {
    true
}

pub(super) fn bad(file: &str, key: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Config {
        file: file.to_string(),
        key: key.into(),
        message: message.into(),
    }
}

/// A single ASCII byte that can separate or quote fields.
fn one_byte(file: &str, key: &str, s: &str) -> Result<u8> {
    match s.as_bytes() {
        [b] if b.is_ascii() && *b != b'\n' && *b != b'\r' => Ok(*b),
        _ => Err(bad(
            file,
            key,
            format!("must be one ASCII character other than a line break, not {s:?}"),
        )),
    }
}

impl Schema {
    /// Reads and validates a schema file.
    pub fn load(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| bad(&name, "", e.to_string()))?;
        Self::parse(&text, &name)
    }

    /// Parses and validates TOML text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self> {
        let raw: RawSchema =
            toml::from_str(text).map_err(|e| bad(file, "", e.to_string().trim_end()))?;
        let delimiter = one_byte(file, "delimiter", &raw.delimiter)?;
        let quote = match raw.quote.as_str() {
            "" => None,
            q => Some(one_byte(file, "quote", q)?),
        };
        if quote == Some(delimiter) {
            return Err(bad(file, "quote", "must differ from the delimiter"));
        }
        let raw_columns = match (raw.columns, raw.column.is_empty()) {
            (Some(_), false) => {
                return Err(bad(
                    file,
                    "columns",
                    "give either `columns = \"…\"` or [[column]] tables, not both",
                ))
            }
            (Some(compact), true) => expand_compact(file, &compact)?,
            (None, false) => raw.column,
            (None, true) => {
                return Err(bad(
                    file,
                    "column",
                    "no columns: add [[column]] tables or `columns = \"…\"`",
                ))
            }
        };
        let columns = resolve_columns(file, raw_columns)?;
        Ok(Schema {
            delimiter,
            quote,
            header: raw.header,
            columns,
        })
    }

    /// Index of the column called `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Checks that every feature and task of `model` reads a column of a fitting type: categorical
    /// features a categorical column, bags a multi-hot column with the same separator, numeric
    /// features a numeric column, sequence features a sequence column (their `side_columns`
    /// sequence columns, `times` a sequence_times column and `timestamp` a timestamp column, found
    /// by default when log-delta buckets need them), task labels a label column, `train.group` a
    /// categorical, numeric or timestamp column, `train.weights.column` a numeric or weight column.
    /// `file` (the schema's) names it in errors; the key is the model file's.
    pub fn check_model(&self, model: &ModelConfig, file: &str) -> Result<()> {
        super::encode::resolve(model, self, file).map(|_| ())
    }

    /// The per-feature and per-task part of [`Self::check_model`].
    pub(crate) fn check_feature_columns(&self, model: &ModelConfig, file: &str) -> Result<()> {
        for (i, feature) in model.features.iter().enumerate() {
            let key = format!("feature[{i}].column");
            let wanted = feature.column();
            let Some(c) = self.index(wanted) else {
                return Err(bad(
                    file,
                    key,
                    format!("no column {wanted:?} in the schema"),
                ));
            };
            let kind = &self.columns[c].kind;
            let fits = match (&feature.kind, kind) {
                (FeatureKind::Categorical { .. }, ColumnKind::Categorical) => true,
                (FeatureKind::Numeric { .. }, ColumnKind::Numeric) => true,
                (FeatureKind::Sequence { .. }, ColumnKind::Sequence { .. }) => true,
                (FeatureKind::Bag { separator, .. }, ColumnKind::MultiHot { separator: s }) => {
                    if separator != s {
                        return Err(bad(
                            file,
                            key,
                            format!(
                                "feature {:?} splits on {separator:?} but column {wanted:?} on {s:?}",
                                feature.name
                            ),
                        ));
                    }
                    true
                }
                _ => false,
            };
            if !fits {
                return Err(bad(
                    file,
                    key,
                    format!(
                        "feature {:?} cannot read column {wanted:?} of type {}",
                        feature.name,
                        kind.name()
                    ),
                ));
            }
        }
        for (i, task) in model.tasks.iter().enumerate() {
            let wanted = task.label.as_deref().unwrap_or(&task.name);
            match self.index(wanted).map(|c| &self.columns[c].kind) {
                Some(ColumnKind::Label) => {}
                Some(other) => {
                    return Err(bad(
                        file,
                        format!("task[{i}].label"),
                        format!("column {wanted:?} is {}, not label", other.name()),
                    ))
                }
                None => {
                    return Err(bad(
                        file,
                        format!("task[{i}].label"),
                        format!("no label column {wanted:?} in the schema"),
                    ))
                }
            }
        }
        Ok(())
    }
}
