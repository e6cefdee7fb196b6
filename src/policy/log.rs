//! The log's rows as field texts, in schema order, so that a substituted row goes through the
//! file reader's own parsing (`serve::request::append_rows`) and scores the same bits as the same
//! row written to a file.

use std::path::Path;

use crate::data::Schema;
use crate::error::{Error, Result};

/// The rows of a log file.
#[derive(Debug, Clone)]
pub struct LogText {
    /// The file's name, for errors.
    pub file: String,
    /// One field text per schema column, per row.
    pub rows: Vec<Vec<String>>,
    /// The 1-based line of each row.
    pub lines: Vec<u64>,
}

impl LogText {
    /// Reads `path` with `schema`'s delimiter and header. Empty lines are skipped (as the
    /// table reader does at the end of a file); quoted fields are refused — a row with the
    /// schema's quote byte is an error naming its line — as is a row with another number of
    /// fields than the schema has columns.
    pub fn read(path: &Path, schema: &Schema) -> Result<Self> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::data(&file, format!("cannot read: {e}")))?;
        let delimiter = char::from(schema.delimiter);
        let mut log = LogText {
            file,
            rows: Vec::new(),
            lines: Vec::new(),
        };
        let skip = usize::from(schema.header);
        for (i, line) in text.lines().enumerate().skip(skip) {
            let number = i as u64 + 1;
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            let fail = |message: String| Error::Data {
                file: log.file.clone(),
                line: Some(number),
                column: None,
                message,
            };
            if let Some(q) = schema.quote.filter(|q| line.as_bytes().contains(q)) {
                let q = char::from(q);
                return Err(fail(format!(
                    "a quoted field ({q}): wgrec policy reads unquoted rows only"
                )));
            }
            let fields: Vec<String> = line.split(delimiter).map(str::to_owned).collect();
            if fields.len() != schema.columns.len() {
                let n = schema.columns.len();
                return Err(fail(format!(
                    "{} fields, the schema has {n} columns",
                    fields.len()
                )));
            }
            log.rows.push(fields);
            log.lines.push(number);
        }
        if log.rows.is_empty() {
            return Err(Error::data(&log.file, "no rows"));
        }
        Ok(log)
    }
}
