//! One input being read: a file, a folder's partition or stdin, behind its [`Gate`], and the
//! [`TableReader`] that parses it once its header line has arrived.
//!
//! A fresh input with a header waits until the header line is complete (a followed file may be
//! created empty and written later); an input continued from a position skips the header check
//! there (the header was checked when the file was opened, see [`open_file`]) and numbers its lines
//! on from the position's line.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::gate::{Gate, Inflow};
use crate::data::table::{ReadOptions, RowRead, TableReader};
use crate::data::{Batch, Schema};
use crate::error::{Error, Result};

/// What one step of reading found.
pub(crate) enum Row {
    /// A row appended to the batch.
    Good,
    /// A malformed row (not in the batch).
    Bad(Error),
    /// No complete row now; more may come.
    Wait,
    /// The input has ended and every row of it has been read.
    End,
}

/// The input being read.
pub(crate) struct Input {
    /// Names the input in errors: a path, or `<stdin>`.
    pub(crate) name: String,
    /// The file (for the check that a followed file has not shrunk); `None` for stdin.
    path: Option<PathBuf>,
    /// The byte offset the gate starts at in the file, and the lines before it.
    base: u64,
    base_lines: u64,
    /// Before the header line arrives: the gate alone. Then: the table reader over it.
    waiting: Option<Gate>,
    table: Option<TableReader<Gate>>,
    schema: Schema,
}

fn read_options() -> ReadOptions {
    // Batches are cut by the stream reader (`TableReader::next_row`); bad rows are counted there.
    ReadOptions::default()
}

impl Input {
    /// An input over `gate`, which starts `base` bytes and `lines` lines into the file.
    pub(crate) fn new(
        name: &str,
        path: Option<&Path>,
        (base, lines): (u64, u64),
        gate: Gate,
        schema: &Schema,
    ) -> Result<Self> {
        let mut input = Input {
            name: name.to_string(),
            path: path.map(Path::to_path_buf),
            base,
            base_lines: lines,
            waiting: None,
            table: None,
            schema: schema.clone(),
        };
        if schema.header && base == 0 {
            input.waiting = Some(gate);
        } else {
            input.table = Some(TableReader::continuing(
                gate,
                name,
                schema,
                read_options(),
                lines,
            )?);
        }
        Ok(input)
    }

    /// Reads the next row into `batch`.
    pub(crate) fn next_row(&mut self, batch: &mut Batch) -> Result<Row> {
        if let Some(mut gate) = self.waiting.take() {
            let ready = gate
                .has_line()
                .map_err(|e| Error::data(&self.name, format!("read failed: {e}")))?;
            if !ready && !gate.ended() {
                self.waiting = Some(gate);
                return Ok(Row::Wait);
            }
            // Checks the header (or reports the empty file), as for a training file.
            self.table = Some(TableReader::new(
                gate,
                &self.name,
                &self.schema,
                read_options(),
            )?);
        }
        let table = self.table.as_mut().expect("set above when not waiting");
        Ok(match table.next_row(batch)? {
            RowRead::Good => Row::Good,
            RowRead::Bad(e) => Row::Bad(e),
            RowRead::End if table.get_ref().ended() => Row::End,
            RowRead::End => Row::Wait,
        })
    }

    /// The byte offset and line count after the last row read.
    pub(crate) fn position(&self) -> (u64, u64) {
        match &self.table {
            Some(table) => (self.base + table.offset(), table.lines()),
            None => (self.base, self.base_lines),
        }
    }

    /// A followed file that is now shorter than what was read of it was truncated or replaced:
    /// reading on would skip or repeat rows, so it is an error.
    pub(crate) fn check_not_shrunk(&self) -> Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let gate = match (&self.waiting, &self.table) {
            (Some(gate), _) => gate,
            (None, Some(table)) => table.get_ref(),
            (None, None) => return Ok(()),
        };
        let read = self.base + gate.taken();
        let now = std::fs::metadata(path)
            .map_err(|e| Error::data(&self.name, format!("cannot read its size: {e}")))?
            .len();
        if now < read {
            return Err(shrunk(&self.name, read, now));
        }
        Ok(())
    }
}

fn shrunk(name: &str, read: u64, now: u64) -> Error {
    Error::data(
        name,
        format!(
            "the file shrank to {now} bytes, below the {read} bytes already read: it was truncated \
             or replaced (rotation is not followed); rows would be skipped or read twice"
        ),
    )
}

/// Opens `path` to be read from byte `offset`, the position after `lines` lines. A position
/// past the start re-checks the header first (the file may have been swapped for another) and
/// refuses a file shorter than the offset.
pub(crate) fn open_file(
    path: &Path,
    schema: &Schema,
    (offset, lines): (u64, u64),
    follow: bool,
) -> Result<Input> {
    let name = path.display().to_string();
    let mut file = File::open(path).map_err(|e| Error::data(&name, format!("cannot open: {e}")))?;
    if offset > 0 {
        let len = file
            .metadata()
            .map_err(|e| Error::data(&name, format!("cannot read its size: {e}")))?
            .len();
        if len < offset {
            return Err(shrunk(&name, offset, len));
        }
        if schema.header {
            TableReader::open(path, schema, read_options())?;
        }
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| Error::data(&name, format!("cannot seek to byte {offset}: {e}")))?;
    }
    let gate = Gate::new(Inflow::File { file, follow });
    Input::new(&name, Some(path), (offset, lines), gate, schema)
}
