//! The columns of a schema: what a column holds ([`ColumnKind`], [`Column`]), and the column
//! list: expanding the compact `columns = "type:names, …"` string into raw columns, then resolving
//! each into a typed [`Column`]. Both are linear in the number of
//! columns and bounded by [`MAX_COLUMNS`], so a hostile schema fails fast instead of allocating
//! without limit or checking names pairwise.

use std::collections::HashMap;

use serde::Deserialize;

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

/// A config error in the schema `file` at `key`.
pub(super) fn bad(file: &str, key: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Config {
        file: file.to_string(),
        key: key.into(),
        message: message.into(),
    }
}

/// The most columns a schema may have. Wide enough for any real sample table (Criteo has 40,
/// feature-store exports a few thousand), small enough that a typo such as `I1-I1099511627776`
/// is refused before anything is allocated.
pub const MAX_COLUMNS: u64 = 100_000;

/// `"label:click, numeric:I1-I13, categorical:C1-C26"` → one raw column per name. A
/// `sequence_times` item may name its sequence after `@` (`sequence_times:hist_time@hist_item`).
pub(super) fn expand_compact(file: &str, compact: &str) -> Result<Vec<RawColumn>> {
    let mut out = Vec::new();
    for (n, item) in compact.split(',').enumerate() {
        let item = item.trim();
        let Some((kind, names)) = item.split_once(':') else {
            return Err(bad(
                file,
                "columns",
                format!("item {} {item:?} is not `type:name` or `type:A1-A9`", n + 1),
            ));
        };
        let (names, sequence) = match names.split_once('@') {
            Some((names, sequence)) => (names.trim(), Some(sequence.trim().to_string())),
            None => (names.trim(), None),
        };
        let range = expand_range(names);
        let total = out.len() as u64 + range.count();
        if total > MAX_COLUMNS {
            return Err(bad(
                file,
                "columns",
                format!(
                    "item {} {item:?} brings the schema to {total} columns, over the limit of \
                     {MAX_COLUMNS}",
                    n + 1
                ),
            ));
        }
        for name in range.names() {
            out.push(RawColumn {
                name,
                kind: kind.trim().to_string(),
                separator: None,
                sequence: sequence.clone(),
            });
        }
    }
    Ok(out)
}

/// A compact item's names: `I1-I13` (same prefix, decimal bounds, first ≤ last) or one literal.
enum NameRange {
    Numbered {
        prefix: String,
        first: u64,
        last: u64,
    },
    One(String),
}

impl NameRange {
    fn count(&self) -> u64 {
        match self {
            NameRange::Numbered { first, last, .. } => last - first + 1,
            NameRange::One(_) => 1,
        }
    }

    fn names(self) -> Box<dyn Iterator<Item = String>> {
        match self {
            NameRange::Numbered {
                prefix,
                first,
                last,
            } => Box::new((first..=last).map(move |i| format!("{prefix}{i}"))),
            NameRange::One(name) => Box::new(std::iter::once(name)),
        }
    }
}

fn expand_range(names: &str) -> NameRange {
    let split_number = |s: &str| {
        let digits = s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let (prefix, number) = s.split_at(s.len() - digits);
        number.parse::<u64>().ok().map(|n| (prefix.to_string(), n))
    };
    if let Some((a, b)) = names.split_once('-') {
        if let (Some((pa, first)), Some((pb, last))) = (split_number(a), split_number(b)) {
            if pa == pb && first <= last {
                return NameRange::Numbered {
                    prefix: pa,
                    first,
                    last,
                };
            }
        }
    }
    NameRange::One(names.to_string())
}

/// Types each raw column, checking names are unique (one hash lookup per column) and linking each
/// sequence_times column to its sequence.
pub(super) fn resolve_columns(file: &str, raw: Vec<RawColumn>) -> Result<Vec<Column>> {
    if raw.len() as u64 > MAX_COLUMNS {
        return Err(bad(
            file,
            "column",
            format!("{} columns, over the limit of {MAX_COLUMNS}", raw.len()),
        ));
    }
    let mut columns: Vec<Column> = Vec::with_capacity(raw.len());
    let mut index: HashMap<String, usize> = HashMap::with_capacity(raw.len());
    let mut sequences: Vec<usize> = Vec::new();
    for (i, c) in raw.into_iter().enumerate() {
        let key = |k: &str| format!("column[{i}].{k}");
        if c.name.is_empty() {
            return Err(bad(file, key("name"), "is empty"));
        }
        if index.contains_key(&c.name) {
            return Err(bad(
                file,
                key("name"),
                format!("{:?} appears twice", c.name),
            ));
        }
        let kind = column_kind(file, i, &c, &columns, &index, &sequences)?;
        if matches!(kind, ColumnKind::Sequence { .. }) {
            sequences.push(i);
        }
        index.insert(c.name.clone(), i);
        columns.push(Column { name: c.name, kind });
    }
    Ok(columns)
}

fn column_kind(
    file: &str,
    i: usize,
    c: &RawColumn,
    columns: &[Column],
    index: &HashMap<String, usize>,
    sequences: &[usize],
) -> Result<ColumnKind> {
    let key = |k: &str| format!("column[{i}].{k}");
    let separator = match &c.separator {
        Some(s) if s.is_empty() => return Err(bad(file, key("separator"), "is empty")),
        Some(s) => s.clone(),
        None => "|".to_string(),
    };
    let takes_separator = matches!(c.kind.as_str(), "multi_hot" | "sequence" | "sequence_times");
    if !takes_separator && separator != "|" {
        return Err(bad(
            file,
            key("separator"),
            format!("a {} column has none", c.kind),
        ));
    }
    if c.sequence.is_some() && c.kind != "sequence_times" {
        return Err(bad(
            file,
            key("sequence"),
            "only sequence_times columns name a sequence",
        ));
    }
    Ok(match c.kind.as_str() {
        "label" => ColumnKind::Label,
        "categorical" => ColumnKind::Categorical,
        "numeric" => ColumnKind::Numeric,
        "multi_hot" => ColumnKind::MultiHot { separator },
        "timestamp" => ColumnKind::Timestamp,
        "weight" => ColumnKind::Weight,
        "sequence" => ColumnKind::Sequence { separator },
        "skip" => ColumnKind::Skip,
        "sequence_times" => ColumnKind::SequenceTimes {
            separator,
            sequence: linked_sequence(file, i, c, columns, index, sequences)?,
        },
        other => {
            return Err(bad(
                file,
                key("type"),
                format!(
                    "unknown type {other:?} (label, categorical, numeric, multi_hot, \
                     timestamp, weight, sequence, sequence_times, skip)"
                ),
            ))
        }
    })
}

/// The sequence a sequence_times column belongs to: the one it names, or the only sequence column
/// before it. With several before and none named the link is ambiguous (guessing the nearest one
/// once tied item times to a side sequence), so it is an error.
fn linked_sequence(
    file: &str,
    i: usize,
    c: &RawColumn,
    columns: &[Column],
    index: &HashMap<String, usize>,
    sequences: &[usize],
) -> Result<usize> {
    let key = |k: &str| format!("column[{i}].{k}");
    if let Some(name) = &c.sequence {
        return match index.get(name) {
            Some(&s) if matches!(columns[s].kind, ColumnKind::Sequence { .. }) => Ok(s),
            _ => Err(bad(
                file,
                key("sequence"),
                format!("{name:?} is not an earlier sequence column"),
            )),
        };
    }
    match sequences {
        [] => Err(bad(
            file,
            key("type"),
            "sequence_times needs a sequence column before it",
        )),
        [only] => Ok(*only),
        several => {
            let names: Vec<&str> = several.iter().map(|&s| columns[s].name.as_str()).collect();
            Err(bad(
                file,
                key("sequence"),
                format!(
                    "sequence_times column {:?} follows {} sequence columns ({}): name its \
                     sequence with `sequence = \"…\"` or `sequence_times:{}@SEQUENCE`",
                    c.name,
                    several.len(),
                    names.join(", "),
                    c.name
                ),
            ))
        }
    }
}
