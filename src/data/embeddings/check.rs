//! The checks every table passes, whatever its format: shape, at least one row, `D ≥ 1`, finite
//! components, non-empty unique ids. The readers check only what needs the raw file (widths,
//! numbers, dtypes) and then build through [`table`], which names rows by their [`Source`].

use std::collections::HashMap;

use super::EmbeddingTable;
use crate::{Error, Result};

/// Where a table's rows came from, for error messages: the file and either each row's 1-based
/// line (text) or the tensor or array holding the rows (binary; rows are named 0-based).
pub(super) struct Source {
    file: String,
    part: Option<String>,
    lines: Option<Vec<u64>>,
}

impl Source {
    /// Rows of a binary file (or of memory): `part` is the tensor or array, if the file has several.
    pub(super) fn rows(file: impl Into<String>, part: Option<String>) -> Self {
        let file = file.into();
        Source {
            file,
            part,
            lines: None,
        }
    }

    /// Rows of a text file, row `i` being on line `lines[i]`.
    pub(super) fn lines(file: impl Into<String>, lines: Vec<u64>) -> Self {
        Source {
            file: file.into(),
            part: None,
            lines: Some(lines),
        }
    }

    /// How row `row` is named in a message that is not tied to one line.
    pub(super) fn name_row(&self, row: usize) -> String {
        match &self.lines {
            Some(lines) => format!("line {}", lines[row]),
            None => format!("row {row}"),
        }
    }

    /// An error about the whole file (or its tensor or array).
    pub(super) fn error(&self, message: impl std::fmt::Display) -> Error {
        match &self.part {
            Some(part) => Error::data(&self.file, format!("{part}: {message}")),
            None => Error::data(&self.file, message),
        }
    }

    /// An error about row `row` and, if given, its 1-based vector component `component`.
    pub(super) fn row_error(
        &self,
        row: usize,
        component: Option<usize>,
        message: impl std::fmt::Display,
    ) -> Error {
        if let Some(lines) = &self.lines {
            return Error::Data {
                file: self.file.clone(),
                line: Some(lines[row]),
                column: component.map(|c| c.to_string()),
                message: message.to_string(),
            };
        }
        let at = match component {
            Some(c) => format!("row {row} (0-based), component {c} (1-based)"),
            None => format!("row {row} (0-based)"),
        };
        self.error(format!("{at}: {message}"))
    }
}

/// Checks a table and builds it: `ids_from` names the rows in id errors, `vectors_from` in vector
/// errors (they differ when the ids have a file of their own).
pub(super) fn table(
    ids_from: &Source,
    vectors_from: &Source,
    ids: Vec<String>,
    dim: usize,
    vectors: Vec<f32>,
) -> Result<EmbeddingTable> {
    if ids.is_empty() {
        return Err(ids_from.error("no rows: an embedding table needs at least one id"));
    }
    if dim == 0 {
        return Err(vectors_from.error("the vectors have width D = 0"));
    }
    if u32::try_from(ids.len()).is_err() {
        let message = format!("{} rows; at most {} are supported", ids.len(), u32::MAX);
        return Err(ids_from.error(message));
    }
    if ids.len().checked_mul(dim) != Some(vectors.len()) {
        let message = format!(
            "{} values do not make {} rows of {dim} components",
            vectors.len(),
            ids.len()
        );
        return Err(vectors_from.error(message));
    }
    finite(vectors_from, dim, &vectors)?;
    unique_ids(ids_from, &ids)?;
    Ok(EmbeddingTable { ids, dim, vectors })
}

/// Every component finite; the first that is not is named by row and component.
fn finite(from: &Source, dim: usize, vectors: &[f32]) -> Result<()> {
    match vectors.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(at) => {
            let value = vectors[at];
            let message = format!(
                "{value} is not finite; every component must be (a value past f32's range reads \
                 as inf)"
            );
            Err(from.row_error(at / dim, Some(at % dim + 1), message))
        }
    }
}

/// Every id non-empty and seen once; a duplicate names both rows.
fn unique_ids(from: &Source, ids: &[String]) -> Result<()> {
    let mut first_row: HashMap<&str, usize> = HashMap::with_capacity(ids.len());
    for (row, id) in ids.iter().enumerate() {
        if id.is_empty() {
            return Err(from.row_error(row, None, "empty id"));
        }
        if let Some(&first) = first_row.get(id.as_str()) {
            let message = format!(
                "duplicate id {id:?}, first seen at {}",
                from.name_row(first)
            );
            return Err(from.row_error(row, None, message));
        }
        first_row.insert(id, row);
    }
    Ok(())
}
