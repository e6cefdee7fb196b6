//! The columnar batch a sample table is read into: one typed column per schema column, multi-valued
//! columns in CSR form ([`Ragged`]), and the parsing of one field into its column.

use super::schema::ColumnKind;
use crate::kernels::loss::MISSING_LABEL;

/// The value of an empty numeric field. A `NaN` in a numeric column means only this: the text
/// `NaN` (or `inf`) in a file is an error.
pub const MISSING: f64 = f64::NAN;

/// Strings stored end to end: token `i` is `text[ends[i-1]..ends[i]]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tokens {
    text: String,
    ends: Vec<usize>,
}

impl Tokens {
    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// No tokens.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Token `i` (panics past the end, like slice indexing).
    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    /// The tokens in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    fn push(&mut self, token: &str) {
        self.text.push_str(token);
        self.ends.push(self.text.len());
    }

    fn truncate(&mut self, len: usize) {
        self.ends.truncate(len);
        self.text.truncate(self.ends.last().copied().unwrap_or(0));
    }
}

/// Several values per row (CSR): row `r` holds `values[offsets[r]..offsets[r + 1]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ragged<V> {
    /// `rows + 1` offsets, starting at 0.
    pub offsets: Vec<usize>,
    /// The values of all rows, end to end.
    pub values: V,
}

impl<V: Default> Default for Ragged<V> {
    fn default() -> Self {
        Ragged {
            offsets: vec![0],
            values: V::default(),
        }
    }
}

impl<V> Ragged<V> {
    /// The value range of row `r`.
    pub fn range(&self, r: usize) -> std::ops::Range<usize> {
        self.offsets[r]..self.offsets[r + 1]
    }
}

impl Ragged<Tokens> {
    /// The tokens of row `r`.
    pub fn row(&self, r: usize) -> impl Iterator<Item = &str> + '_ {
        self.range(r).map(|i| self.values.get(i))
    }
}

impl Ragged<Vec<f64>> {
    /// The values of row `r`.
    pub fn row(&self, r: usize) -> &[f64] {
        &self.values[self.range(r)]
    }
}

/// One column of a batch, typed by its schema column.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    /// 0 or 1, or [`MISSING_LABEL`] (−1) where the field was empty: the row has no label for
    /// the task(s) reading this column (the loss gives it weight 0 there, the metrics skip it).
    Label(Vec<f32>),
    /// The raw id strings.
    Categorical(Tokens),
    /// Values; [`MISSING`] where the field was empty.
    Numeric(Vec<f64>),
    /// Ids per row (an empty field is an empty bag).
    MultiHot(Ragged<Tokens>),
    /// Integer timestamps.
    Timestamp(Vec<i64>),
    /// Finite weights ≥ 0.
    Weight(Vec<f32>),
    /// Behaviour ids per row, oldest first.
    Sequence(Ragged<Tokens>),
    /// Timestamps per row, as many as the row's sequence has ids.
    SequenceTimes(Ragged<Vec<f64>>),
    /// A skipped column (nothing stored).
    Skip,
}

impl ColumnData {
    /// The schema type name of the column (`"label"`, `"multi_hot"`, …).
    pub fn type_name(&self) -> &'static str {
        match self {
            ColumnData::Label(_) => "label",
            ColumnData::Categorical(_) => "categorical",
            ColumnData::Numeric(_) => "numeric",
            ColumnData::MultiHot(_) => "multi_hot",
            ColumnData::Timestamp(_) => "timestamp",
            ColumnData::Weight(_) => "weight",
            ColumnData::Sequence(_) => "sequence",
            ColumnData::SequenceTimes(_) => "sequence_times",
            ColumnData::Skip => "skip",
        }
    }

    pub(crate) fn new(kind: &ColumnKind) -> Self {
        match kind {
            ColumnKind::Label => ColumnData::Label(Vec::new()),
            ColumnKind::Categorical => ColumnData::Categorical(Tokens::default()),
            ColumnKind::Numeric => ColumnData::Numeric(Vec::new()),
            ColumnKind::MultiHot { .. } => ColumnData::MultiHot(Ragged::default()),
            ColumnKind::Timestamp => ColumnData::Timestamp(Vec::new()),
            ColumnKind::Weight => ColumnData::Weight(Vec::new()),
            ColumnKind::Sequence { .. } => ColumnData::Sequence(Ragged::default()),
            ColumnKind::SequenceTimes { .. } => ColumnData::SequenceTimes(Ragged::default()),
            ColumnKind::Skip => ColumnData::Skip,
        }
    }

    /// Drops rows past `rows` (undoes a row that failed half way).
    pub(crate) fn truncate(&mut self, rows: usize) {
        fn ragged_tokens(r: &mut Ragged<Tokens>, rows: usize) {
            r.offsets.truncate(rows + 1);
            r.values.truncate(r.offsets[rows]);
        }
        match self {
            ColumnData::Label(v) | ColumnData::Weight(v) => v.truncate(rows),
            ColumnData::Numeric(v) => v.truncate(rows),
            ColumnData::Timestamp(v) => v.truncate(rows),
            ColumnData::Categorical(t) => t.truncate(rows),
            ColumnData::MultiHot(r) | ColumnData::Sequence(r) => ragged_tokens(r, rows),
            ColumnData::SequenceTimes(r) => {
                r.offsets.truncate(rows + 1);
                r.values.truncate(r.offsets[rows]);
            }
            ColumnData::Skip => {}
        }
    }

    /// Entries of the last row of a sequence or sequence-times column.
    pub(crate) fn last_row_len(&self) -> usize {
        match self {
            ColumnData::Sequence(r) => r.range(r.offsets.len() - 2).len(),
            ColumnData::SequenceTimes(r) => r.range(r.offsets.len() - 2).len(),
            _ => 0,
        }
    }
}

/// Up to `batch_rows` rows, one [`ColumnData`] per schema column (in schema order).
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Rows in the batch.
    pub rows: usize,
    /// The file line on which each row starts (for messages about a row later on).
    pub lines: Vec<u64>,
    /// One per schema column.
    pub columns: Vec<ColumnData>,
}

/// A finite number (surrounding ASCII spaces allowed); `what` names the type in messages.
fn finite(text: &str, what: &str) -> std::result::Result<f64, String> {
    let trimmed = text.trim_matches(|c: char| c == ' ' || c == '\t');
    let value: f64 = trimmed
        .parse()
        .map_err(|_| format!("{what} {text:?} is not a number"))?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(format!(
            "{what} {text:?} is not finite (NaN and inf are not allowed)"
        ))
    }
}

/// An empty field (ASCII spaces and tabs only count as empty): a missing number or label.
fn is_blank(text: &str) -> bool {
    text.trim_matches(|c: char| c == ' ' || c == '\t')
        .is_empty()
}

/// Splits a multi-valued field; an empty field has no values, an empty value inside is an error.
fn split_values<'a>(
    text: &'a str,
    separator: &'a str,
) -> impl Iterator<Item = std::result::Result<&'a str, String>> + 'a {
    let parts = if text.is_empty() {
        None
    } else {
        Some(text.split(separator))
    };
    parts.into_iter().flatten().enumerate().map(move |(i, v)| {
        if v.is_empty() {
            Err(format!(
                "value {} of {text:?} is empty (separator {separator:?})",
                i + 1
            ))
        } else {
            Ok(v)
        }
    })
}

pub(crate) fn parse_field(
    kind: &ColumnKind,
    text: &str,
    data: &mut ColumnData,
) -> std::result::Result<(), String> {
    match (kind, data) {
        (ColumnKind::Label, ColumnData::Label(v)) => {
            if is_blank(text) {
                v.push(MISSING_LABEL);
                return Ok(());
            }
            let x = finite(text, "label")?;
            if x != 0.0 && x != 1.0 {
                return Err(format!("label {text:?} is not 0 or 1"));
            }
            v.push(x as f32);
        }
        (ColumnKind::Weight, ColumnData::Weight(v)) => {
            let x = finite(text, "weight")?;
            if x < 0.0 || x > f32::MAX as f64 {
                return Err(format!("weight {text:?} is negative or too large for f32"));
            }
            v.push(x as f32);
        }
        (ColumnKind::Numeric, ColumnData::Numeric(v)) => {
            if is_blank(text) {
                v.push(MISSING);
            } else {
                v.push(finite(text, "number")?);
            }
        }
        (ColumnKind::Timestamp, ColumnData::Timestamp(v)) => {
            let t = text
                .trim_matches(|c: char| c == ' ' || c == '\t')
                .parse::<i64>()
                .map_err(|_| format!("timestamp {text:?} is not an integer"))?;
            v.push(t);
        }
        (ColumnKind::Categorical, ColumnData::Categorical(t)) => t.push(text),
        (ColumnKind::MultiHot { separator }, ColumnData::MultiHot(r))
        | (ColumnKind::Sequence { separator }, ColumnData::Sequence(r)) => {
            for value in split_values(text, separator) {
                r.values.push(value?);
            }
            r.offsets.push(r.values.len());
        }
        (ColumnKind::SequenceTimes { separator, .. }, ColumnData::SequenceTimes(r)) => {
            for value in split_values(text, separator) {
                r.values.push(finite(value?, "sequence time")?);
            }
            r.offsets.push(r.values.len());
        }
        (kind, _) => unreachable!("batch column built from schema column {}", kind.name()),
    }
    Ok(())
}
