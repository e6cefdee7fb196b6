//! The streaming sample-table reader: delimited text typed by a [`Schema`], read through a
//! `BufRead` and handed out as columnar [`Batch`]es of up to `batch_rows` rows, so a file of any
//! size is read in bounded memory. A malformed row is an [`Error::Data`] naming the file, the line
//! where the row starts and the schema column; with [`ReadOptions::skip_bad_rows`] it is counted in
//! [`BadRows`] instead (the first few reasons kept) and the reader goes on.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::batch::{parse_field, Batch, ColumnData};
use super::record::{RecordSplitter, Syntax};
use super::schema::{ColumnKind, Schema};
use crate::error::{Error, Result};

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
    /// Rows read from the file, the bad ones included (set when the reader hands over its bad
    /// rows), so a report can say how many of a split's rows were used.
    pub rows_read: u64,
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

    /// Reads from `input`, which continues a file after its first `lines` lines (the header, if
    /// any, among them): no header check, and error lines go on from `lines`.
    pub(crate) fn continuing(
        input: R,
        file: &str,
        schema: &Schema,
        options: ReadOptions,
        lines: u64,
    ) -> Result<Self> {
        let headerless = Schema {
            header: false,
            ..schema.clone()
        };
        let mut reader = Self::new(input, file, &headerless, options)?;
        reader.schema.header = schema.header;
        reader.splitter.continue_after(lines);
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
    pub fn into_bad_rows(mut self) -> BadRows {
        self.bad.rows_read = self.good_rows + self.bad.count;
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
        if let Some((column, message)) = syntax_problem(&record.syntax, self.schema.columns.len()) {
            return Err(self.error(record.line, column, format!("header: {message}")));
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
        let mut batch = empty_batch(&self.schema);
        while batch.rows < self.options.batch_rows {
            match self.next_row(&mut batch) {
                Ok(RowRead::End) => {
                    self.done = true;
                    break;
                }
                Ok(RowRead::Good) => {}
                Ok(RowRead::Bad(e)) => {
                    if !self.options.skip_bad_rows {
                        self.done = true;
                        return Err(e);
                    }
                    self.bad.count += 1;
                    if self.bad.first.len() < self.options.kept_reasons {
                        self.bad.first.push(e);
                    }
                }
                Err(e) => {
                    self.done = true;
                    return Err(e);
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

    /// Reads one record into `batch`: appended when good (`rows` and `lines` too), left out when
    /// bad (the error is handed back, not counted: the caller decides), `End` when the input has
    /// no record now. The streaming reader (`online::source`) cuts its own batches with this.
    pub(crate) fn next_row(&mut self, batch: &mut Batch) -> Result<RowRead> {
        let record = match self.splitter.next_record() {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(RowRead::End),
            Err(e) => return Err(self.io_error(e)),
        };
        match self.parse_row(record.line, &record.syntax, batch) {
            Ok(()) => {
                batch.rows += 1;
                batch.lines.push(record.line);
                self.good_rows += 1;
                Ok(RowRead::Good)
            }
            Err(e) => {
                for column in &mut batch.columns {
                    column.truncate(batch.rows);
                }
                Ok(RowRead::Bad(e))
            }
        }
    }

    /// Lines of the input consumed so far (the header and the lines of an earlier reader that
    /// this one continues included).
    pub(crate) fn lines(&self) -> u64 {
        self.splitter.lines()
    }

    /// The input being read.
    pub(crate) fn get_ref(&self) -> &R {
        self.splitter.get_ref()
    }

    /// Bytes of the input consumed by the records read so far (the header included).
    pub(crate) fn offset(&self) -> u64 {
        self.splitter.offset()
    }
}

/// What [`TableReader::next_row`] found.
pub(crate) enum RowRead {
    /// No record now (the end of the input, or of what has arrived).
    End,
    /// A row appended to the batch.
    Good,
    /// A malformed row, left out of the batch.
    Bad(Error),
}

/// A batch of no rows with one empty column per schema column.
pub fn empty_batch(schema: &Schema) -> Batch {
    Batch {
        rows: 0,
        lines: Vec::new(),
        columns: schema
            .columns
            .iter()
            .map(|c| ColumnData::new(&c.kind))
            .collect(),
    }
}

impl<R: BufRead> Iterator for TableReader<R> {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().transpose()
    }
}

/// What is wrong with a record's syntax, and the field it is about (when that is a schema column).
fn syntax_problem(syntax: &Syntax, columns: usize) -> Option<(Option<usize>, String)> {
    match syntax {
        Syntax::Ok => None,
        Syntax::Unclosed { field } => Some((
            (*field < columns).then_some(*field),
            format!(
                "a quoted field is not closed before the end of the file or within {} lines ({} bytes); reading resumes at the next line",
                super::record::MAX_QUOTED_LINES,
                super::record::MAX_QUOTED_BYTES
            ),
        )),
        Syntax::AfterClosingQuote { field } => Some((
            None,
            format!(
                "field {}: a closing quote must be followed by the delimiter or the end of the line",
                field + 1
            ),
        )),
    }
}

impl<R: BufRead> TableReader<R> {
    /// Appends one record to `batch` (each column may hold a partial row on error: the caller
    /// truncates).
    fn parse_row(&self, line: u64, syntax: &Syntax, batch: &mut Batch) -> Result<()> {
        if let Some((column, message)) = syntax_problem(syntax, self.schema.columns.len()) {
            return Err(self.error(line, column, message));
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
