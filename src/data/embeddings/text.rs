//! The text format: `id<TAB>v1 v2 …` per line (or `id v1 v2 …` on a line without a tab), the
//! components separated by spaces or by commas, `#` comments and blank lines skipped; see the
//! module docs. Reading is one pass over the lines, so a large file costs its size.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::check::{self, Source};
use super::EmbeddingTable;
use crate::checkpoint::write_atomically;
use crate::{Error, Result};

/// Rows read so far, with the line each came from and the width fixed by the first.
#[derive(Default)]
struct Rows {
    ids: Vec<String>,
    lines: Vec<u64>,
    vectors: Vec<f32>,
    /// `D` and the line of the row that fixed it.
    width: Option<(usize, u64)>,
}

/// Reads a text embedding file.
pub(super) fn read(path: &Path) -> Result<EmbeddingTable> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::data(&file, format!("cannot read: {e}")))?;
    let mut rows = Rows::default();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = i as u64 + 1;
        let text = std::str::from_utf8(raw)
            .map_err(|e| line_error(&file, line, None, format!("not valid UTF-8: {e}")))?;
        let text = text.strip_suffix('\r').unwrap_or(text);
        let content = text.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        rows.push(&file, line, text)?;
    }
    let dim = rows.width.map_or(0, |(dim, _)| dim);
    let source = Source::lines(file, rows.lines);
    check::table(&source, &source, rows.ids, dim, rows.vectors)
}

fn line_error(file: &str, line: u64, column: Option<usize>, message: impl ToString) -> Error {
    Error::Data {
        file: file.to_owned(),
        line: Some(line),
        column: column.map(|c| c.to_string()),
        message: message.to_string(),
    }
}

/// The id and the components' text: split at the first tab, or else at the first blank.
fn split_id(text: &str) -> (&str, &str) {
    if let Some(split) = text.split_once('\t') {
        return split;
    }
    let text = text.trim_start();
    match text.find(char::is_whitespace) {
        Some(at) => (&text[..at], &text[at..]),
        None => (text, ""),
    }
}

/// The components' text: separated by blanks, by commas, or by both (`1, 2`). With a comma on
/// the line, nothing between two commas (or before the first, or after the last) is an empty
/// component, yielded as `""` so the caller names it.
fn components(rest: &str) -> impl Iterator<Item = &str> {
    let commas = rest.contains(',');
    rest.split(',').flat_map(move |between| {
        let mut words = between.split_whitespace().peekable();
        let empty = commas && words.peek().is_none();
        std::iter::once("").filter(move |_| empty).chain(words)
    })
}

impl Rows {
    /// Parses one row (`text` is a non-blank, non-comment line) onto the table.
    fn push(&mut self, file: &str, line: u64, text: &str) -> Result<()> {
        let (id, rest) = split_id(text);
        let before = self.vectors.len();
        for (k, piece) in components(rest).enumerate() {
            let value = piece.parse::<f32>().map_err(|_| {
                let message = match piece {
                    "" => format!(
                        "component {} is empty (a comma with no number before or after it)",
                        k + 1
                    ),
                    _ => format!("component {} {piece:?} is not a number", k + 1),
                };
                line_error(file, line, Some(k + 1), message)
            })?;
            self.vectors.push(value);
        }
        self.check_width(file, line, self.vectors.len() - before)?;
        self.ids.push(id.to_owned());
        self.lines.push(line);
        Ok(())
    }

    /// The first row fixes `D` (which must be ≥ 1); every later row must have it.
    fn check_width(&mut self, file: &str, line: u64, count: usize) -> Result<()> {
        let Some((dim, first)) = self.width else {
            if count == 0 {
                let message = "the first row has no components (D = 0); write `id<TAB>v1 v2 …`";
                return Err(line_error(file, line, None, message));
            }
            self.width = Some((count, line));
            return Ok(());
        };
        if count == dim {
            return Ok(());
        }
        let message = format!(
            "{count} components where the first row (line {first}) has {dim}{}",
            if count > dim {
                "; this one is past the end"
            } else {
                "; this one is missing"
            }
        );
        Err(line_error(file, line, Some(count.min(dim) + 1), message))
    }
}

/// Why `id` cannot be a text file's id, if it cannot.
fn unwritable(id: &str) -> Option<&'static str> {
    if id.contains(['\t', '\n', '\r']) {
        Some("it holds a tab or a line break")
    } else if id.trim_start().starts_with('#') {
        Some("it starts with `#`, which would make the line a comment")
    } else {
        None
    }
}

/// Writes `table` as text, atomically.
pub(super) fn write(table: &EmbeddingTable, path: &Path) -> Result<()> {
    if let Some(ext @ ("safetensors" | "npy")) = path.extension().and_then(|e| e.to_str()) {
        let message = format!("reading would take a `.{ext}` path for that format; use `.tsv`");
        return Err(Error::output(path, message));
    }
    if let Some((row, id, why)) = (table.ids.iter().enumerate())
        .find_map(|(row, id)| unwritable(id).map(|why| (row, id, why)))
    {
        let message = format!("id {id:?} of row {row} cannot be written as text: {why}");
        return Err(Error::output(path, message));
    }
    write_atomically(path, |temporary| {
        let io = |e: std::io::Error| Error::output(path, format!("writing failed: {e}"));
        let mut out = BufWriter::new(File::create(temporary).map_err(io)?);
        for (row, id) in table.ids.iter().enumerate() {
            out.write_all(id.as_bytes()).map_err(io)?;
            let mut separator = '\t';
            for v in table.row(row) {
                // Debug is the shortest text that parses back to the same f32, with an exponent
                // for very large or small values where Display would spell out every digit.
                write!(out, "{separator}{v:?}").map_err(io)?;
                separator = ' ';
            }
            out.write_all(b"\n").map_err(io)?;
        }
        out.flush().map_err(io)
    })
}
