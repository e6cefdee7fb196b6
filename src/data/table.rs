//! The streaming sample-table reader: delimited text typed by a [`Schema`], read through a
//! `BufRead` and handed out as columnar [`Batch`]es of up to `batch_rows` rows, so a file of any
//! size is read in bounded memory. A malformed row is an [`Error::Data`] naming the file, the line
//! where the row starts and the schema column; with [`ReadOptions::skip_bad_rows`] it is counted in
//! [`BadRows`] instead (the first few reasons kept) and the reader goes on.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::record::{RecordSplitter, Syntax};
use super::schema::{ColumnKind, Schema};
use crate::error::{Error, Result};

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
    /// 0 or 1.
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

    fn new(kind: &ColumnKind) -> Self {
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
    fn truncate(&mut self, rows: usize) {
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
    fn last_row_len(&self) -> usize {
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

/// How a [`TableReader`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// Rows per batch (at least 1). Default 4096.
    pub batch_rows: usize,
    /// Count malformed rows and go on instead of failing on the first. Default false.
    pub skip_bad_rows: bool,
    /// How many skipped rows' reasons [`BadRows::first`] keeps. Default 10.
    pub kept_reasons: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            batch_rows: 4096,
            skip_bad_rows: false,
            kept_reasons: 10,
        }
    }
}

/// The rows skipped under [`ReadOptions::skip_bad_rows`].
#[derive(Debug, Default)]
pub struct BadRows {
    /// How many.
    pub count: u64,
    /// The first few errors (file, line, column, reason).
    pub first: Vec<Error>,
}

impl std::fmt::Display for BadRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bad rows skipped", self.count)?;
        for e in &self.first {
            write!(f, "\n  {e}")?;
        }
        if self.count > self.first.len() as u64 {
            write!(f, "\n  …")?;
        }
        Ok(())
    }
}

/// Reads a sample table in batches; an iterator of `Result<Batch>` that stops after an error.
pub struct TableReader<R> {
    file: String,
    schema: Schema,
    options: ReadOptions,
    splitter: RecordSplitter<R>,
    good_rows: u64,
    bad: BadRows,
    done: bool,
}

impl TableReader<BufReader<File>> {
    /// Opens `path` (a missing file is an error naming it) and checks its header.
    pub fn open(path: &Path, schema: &Schema, options: ReadOptions) -> Result<Self> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| Error::data(&name, format!("cannot open: {e}")))?;
        Self::new(
            BufReader::with_capacity(1 << 16, file),
            &name,
            schema,
            options,
        )
    }
}

impl<R: BufRead> TableReader<R> {
    /// Reads from `input`; `file` names it in errors. With a header, the first line must name the
    /// schema's columns in order.
    pub fn new(input: R, file: &str, schema: &Schema, options: ReadOptions) -> Result<Self> {
        if options.batch_rows == 0 {
            return Err(Error::data(file, "batch_rows must be at least 1"));
        }
        let mut reader = TableReader {
            file: file.to_string(),
            schema: schema.clone(),
            options,
            splitter: RecordSplitter::new(input, schema.delimiter, schema.quote),
            good_rows: 0,
            bad: BadRows::default(),
            done: false,
        };
        if schema.header {
            reader.check_header()?;
        }
        Ok(reader)
    }

    /// Rows read into batches so far.
    pub fn rows(&self) -> u64 {
        self.good_rows
    }

    /// The rows skipped so far (all of them once the reader is exhausted).
    pub fn bad_rows(&self) -> &BadRows {
        &self.bad
    }

    /// Ends reading and hands over the skipped rows (call after the last batch to report them).
    pub fn into_bad_rows(self) -> BadRows {
        self.bad
    }

    fn error(&self, line: u64, column: Option<usize>, message: impl Into<String>) -> Error {
        Error::Data {
            file: self.file.clone(),
            line: Some(line),
            column: column.map(|c| format!("{} {:?}", c + 1, self.schema.columns[c].name)),
            message: message.into(),
        }
    }

    fn io_error(&self, e: std::io::Error) -> Error {
        let line = self.splitter.lines() + 1;
        self.error(line, None, format!("read failed: {e}"))
    }

    fn check_header(&mut self) -> Result<()> {
        let record = match self.splitter.next_record() {
            Ok(Some(r)) => r,
            Ok(None) => return Err(Error::data(&self.file, "empty file: no header line")),
            Err(e) => return Err(self.io_error(e)),
        };
        if let Some(message) = syntax_message(&record.syntax) {
            return Err(self.error(record.line, None, format!("header: {message}")));
        }
        let fields = self.splitter.fields();
        let want = self.schema.columns.len();
        if fields.len() != want {
            return Err(self.error(
                record.line,
                None,
                format!("header has {} columns, the schema {want}", fields.len()),
            ));
        }
        for (c, column) in self.schema.columns.iter().enumerate() {
            let got = String::from_utf8_lossy(fields.get(c));
            if got != column.name {
                return Err(self.error(
                    record.line,
                    Some(c),
                    format!(
                        "header names {got:?} where the schema has {:?}",
                        column.name
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The next batch; `None` once the file is exhausted. A file with no rows at all (after the
    /// header, if any) is an error: an empty training file is almost always a mistake.
    pub fn next_batch(&mut self) -> Result<Option<Batch>> {
        if self.done {
            return Ok(None);
        }
        let mut batch = Batch {
            rows: 0,
            lines: Vec::new(),
            columns: self
                .schema
                .columns
                .iter()
                .map(|c| ColumnData::new(&c.kind))
                .collect(),
        };
        while batch.rows < self.options.batch_rows {
            let record = match self.splitter.next_record() {
                Ok(Some(r)) => r,
                Ok(None) => {
                    self.done = true;
                    break;
                }
                Err(e) => {
                    self.done = true;
                    return Err(self.io_error(e));
                }
            };
            match self.parse_row(record.line, &record.syntax, &mut batch) {
                Ok(()) => {
                    batch.rows += 1;
                    batch.lines.push(record.line);
                    self.good_rows += 1;
                }
                Err(e) => {
                    for column in &mut batch.columns {
                        column.truncate(batch.rows);
                    }
                    if !self.options.skip_bad_rows {
                        self.done = true;
                        return Err(e);
                    }
                    self.bad.count += 1;
                    if self.bad.first.len() < self.options.kept_reasons {
                        self.bad.first.push(e);
                    }
                }
            }
        }
        if self.done && self.good_rows == 0 && self.bad.count == 0 {
            let what = if self.schema.header {
                "no rows after the header"
            } else {
                "no rows"
            };
            return Err(Error::data(&self.file, format!("empty file: {what}")));
        }
        Ok((batch.rows > 0).then_some(batch))
    }
}

impl<R: BufRead> Iterator for TableReader<R> {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().transpose()
    }
}

fn syntax_message(syntax: &Syntax) -> Option<String> {
    match syntax {
        Syntax::Ok => None,
        Syntax::Unclosed => Some("a quoted field is not closed before the end of the file".into()),
        Syntax::AfterClosingQuote { field } => Some(format!(
            "field {}: a closing quote must be followed by the delimiter or the end of the line",
            field + 1
        )),
    }
}

impl<R: BufRead> TableReader<R> {
    /// Appends one record to `batch` (each column may hold a partial row on error: the caller
    /// truncates).
    fn parse_row(&self, line: u64, syntax: &Syntax, batch: &mut Batch) -> Result<()> {
        if let Some(message) = syntax_message(syntax) {
            return Err(self.error(line, None, message));
        }
        let fields = self.splitter.fields();
        let want = self.schema.columns.len();
        if fields.len() != want {
            return Err(self.error(
                line,
                None,
                format!(
                    "{} fields where the schema has {want} columns",
                    fields.len()
                ),
            ));
        }
        for (c, column) in self.schema.columns.iter().enumerate() {
            if matches!(column.kind, ColumnKind::Skip) {
                continue;
            }
            let text = std::str::from_utf8(fields.get(c))
                .map_err(|e| self.error(line, Some(c), format!("not valid UTF-8: {e}")))?;
            parse_field(&column.kind, text, &mut batch.columns[c])
                .map_err(|message| self.error(line, Some(c), message))?;
        }
        for (c, column) in self.schema.columns.iter().enumerate() {
            if let ColumnKind::SequenceTimes { sequence, .. } = column.kind {
                let (times, ids) = (
                    batch.columns[c].last_row_len(),
                    batch.columns[sequence].last_row_len(),
                );
                if times != ids {
                    return Err(self.error(
                        line,
                        Some(c),
                        format!(
                            "{times} times for the {ids} ids of sequence column {:?}",
                            self.schema.columns[sequence].name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
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

fn parse_field(
    kind: &ColumnKind,
    text: &str,
    data: &mut ColumnData,
) -> std::result::Result<(), String> {
    match (kind, data) {
        (ColumnKind::Label, ColumnData::Label(v)) => {
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
            if text
                .trim_matches(|c: char| c == ' ' || c == '\t')
                .is_empty()
            {
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
