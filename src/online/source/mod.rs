//! Stream sources for online training: rows in arrival order from a growing file (followed like
//! `tail -f`), a folder of time partitions, or stdin, cut into batches, each with the
//! [`StreamPosition`] after its last row, from which a restarted trainer continues with no row
//! read twice or skipped.
//!
//! Rows are parsed by the training files' [`TableReader`](crate::data::TableReader), so a bad row's
//! message is the same (`file:line: column 3 "I2": …`) and `Batch::lines` are real file lines, also
//! after a resume.
//!
//! - **File**: rows are handed out up to the last complete line; a line whose `\n` has not been
//!   written yet is never parsed (see `gate`). With `follow` the end of the file is polled for
//!   growth every `poll`. The position is the byte offset after the last row handed out, its line
//!   count and the row count; reopening seeks there. A file that shrinks below what was read is
//!   an error naming it (truncation or rotation; rotation is not followed).
//! - **Folder**: see `folder` for the producers' contract (partitions appear whole, under their
//!   final name, read in byte-wise name order; temporary names ignored; a late partition is an
//!   error). A batch never spans two files: a partition's last rows form a partial batch, so that
//!   the position stays one (file, offset) pair. The position names the partition; on resume the
//!   names before it are done.
//! - **Stdin**: the position is the row count. Reopening skips that many rows: the contract is that
//!   the producer replays the stream from its start after a crash (e.g. `cat` of the log again).
//!   Stdin is read on a thread so a stop is seen while the producer is silent; a stdin stream ends
//!   when it is closed, and also after `idle_exit` when that is set.
//!
//! Batches are cut at `batch_rows` rows, at the end of a partition, at the end of the stream, and,
//! while waiting for a followed source, when no row has come for `flush_after`. Without `follow`
//! the cuts depend on the data only; with it, a partial batch depends on when rows arrived, which
//! is in the nature of online training (the position makes a resume exact either way). A stop
//! (the flag) is looked at before reading and while waiting, never between rows that are there:
//! it drops the rows of the batch being built (they are read again after a resume) and ends the
//! stream for good. Limitation: a quoted field spanning lines must arrive whole before the reader
//! next reaches the end of what was written, or it is read as an unclosed quote.

mod folder;
mod gate;
mod input;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_follow;
mod types;

use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::data::table::empty_batch;
use crate::data::{BadRows, Batch, Schema};
use crate::error::{Error, Result};
use folder::Partitions;
use gate::{read_on_thread, Gate, Inflow};
use input::{open_file, Input, Row};
pub use types::{SourceSpec, StreamBatch, StreamOptions, StreamPosition};

/// How many bad rows' reasons are kept (as [`crate::data::ReadOptions`]' default).
const KEPT_REASONS: usize = 10;

/// The longest sleep between two looks at the stop flag while waiting.
const STOP_CHECK: Duration = Duration::from_millis(10);

/// What the source is, with its state.
enum Kind {
    File,
    Folder(Partitions),
    Stdin,
}

/// What one step of the batch loop found.
enum Step {
    /// A row went into the batch, or a bad row was counted.
    Row,
    /// A partition is read to its end (cut the batch; the next step opens the next one).
    PartitionEnd,
    /// Nothing now; more may come.
    Wait,
    /// The stream has ended.
    Finished,
}

/// Reads a [`SourceSpec`] in batches; see the module docs.
pub struct StreamReader {
    schema: Schema,
    options: StreamOptions,
    kind: Kind,
    /// The input being read, or read last; `None` before a folder's first partition.
    input: Option<Input>,
    /// The folder's current partition is read to its end.
    input_done: bool,
    /// Where the next folder partition starts when it is the one the stream resumes in.
    resume: Option<StreamPosition>,
    /// Rows consumed (bad ones included), the batch being built included.
    rows: u64,
    /// Stdin rows still to skip on resume.
    skip: u64,
    bad: BadRows,
    last_row: Instant,
    ended: bool,
}

impl StreamReader {
    /// Opens the source (checking headers against the schema) and, given a position, continues
    /// right after it.
    pub fn open(
        spec: &SourceSpec,
        schema: &Schema,
        options: StreamOptions,
        from: Option<&StreamPosition>,
    ) -> Result<Self> {
        let from_rows = from.map_or(0, StreamPosition::rows);
        let mut reader = Self::empty(spec, schema, options, from)?;
        match spec {
            SourceSpec::File(path) => {
                let at = from.map_or((0, 0), |p| (p.offset, p.line));
                reader.input = Some(open_file(path, schema, at, reader.options.follow)?);
            }
            SourceSpec::Folder(dir) => {
                let at = from.and_then(|p| p.partition.as_deref());
                let partitions = Partitions::open(dir, at)?;
                if !partitions.any() && !reader.options.follow {
                    let name = format!("folder {}", dir.display());
                    return Err(Error::data(name, "no data files (*.tsv, *.csv) in it"));
                }
                reader.kind = Kind::Folder(partitions);
            }
            SourceSpec::Stdin => {
                // Chunks of 64 KiB: with 8 KiB ones a replay through a pipe parsed ~2× slower.
                let stdin = std::io::BufReader::with_capacity(1 << 16, std::io::stdin());
                return Self::from_reader(stdin, schema, reader.options, from);
            }
        }
        reader.rows = from_rows;
        Ok(reader)
    }

    /// Reads stdin-like `input` (what [`SourceSpec::Stdin`] opens; tests hand in a `Cursor`). Given
    /// a position, its first `rows` rows are skipped: the input replays the stream from its start.
    pub fn from_reader<R: BufRead + Send + 'static>(
        input: R,
        schema: &Schema,
        options: StreamOptions,
        from: Option<&StreamPosition>,
    ) -> Result<Self> {
        let mut reader = Self::empty(&SourceSpec::Stdin, schema, options, from)?;
        let gate = Gate::new(Inflow::Chunks(read_on_thread(input)?));
        reader.input = Some(Input::new("<stdin>", None, (0, 0), gate, schema)?);
        reader.skip = from.map_or(0, StreamPosition::rows);
        reader.rows = reader.skip;
        Ok(reader)
    }

    fn empty(
        spec: &SourceSpec,
        schema: &Schema,
        options: StreamOptions,
        from: Option<&StreamPosition>,
    ) -> Result<Self> {
        if options.batch_rows == 0 {
            return Err(Error::data(
                spec.describe(),
                "batch_rows must be at least 1",
            ));
        }
        if let Some(position) = from {
            position.check_fits(spec)?;
        }
        Ok(StreamReader {
            schema: schema.clone(),
            options,
            kind: match spec {
                SourceSpec::Stdin => Kind::Stdin,
                _ => Kind::File,
            },
            input: None,
            input_done: false,
            resume: from.cloned(),
            rows: 0,
            skip: 0,
            bad: BadRows::default(),
            last_row: Instant::now(),
            ended: false,
        })
    }

    /// The rows skipped as bad so far (with `skip_bad_rows`).
    pub fn bad_rows(&self) -> &BadRows {
        &self.bad
    }

    /// The next batch of up to `batch_rows` rows in arrival order with the position after its last
    /// row; `None` at the end (stdin or a source read without `follow` exhausted, `idle_exit`
    /// elapsed, or `stop` set). Rows read but not yet handed out when `stop` is set are dropped
    /// (the position stays at the last batch handed out, so a resume reads them again); after a
    /// stop every call returns `None`. After an error the reader is spent: drop it (a restart
    /// resumes from the last batch's position).
    pub fn next_batch(&mut self, stop: &AtomicBool) -> Result<Option<StreamBatch>> {
        let mut batch = empty_batch(&self.schema);
        while !self.ended {
            if stop.load(Ordering::Relaxed) {
                self.ended = true;
                break;
            }
            match self.step(&mut batch)? {
                Step::Row if batch.rows < self.options.batch_rows => continue,
                Step::Row => return Ok(Some(self.hand_out(batch))),
                Step::PartitionEnd if batch.rows > 0 => return Ok(Some(self.hand_out(batch))),
                Step::PartitionEnd => continue,
                Step::Finished => {
                    self.ended = true;
                    return Ok((batch.rows > 0).then(|| self.hand_out(batch)));
                }
                Step::Wait => match self.after_wait(batch.rows > 0, stop) {
                    Some(_) if batch.rows > 0 => return Ok(Some(self.hand_out(batch))),
                    Some(end) => self.ended = end,
                    None => {
                        if let Some(input) = self.input.as_ref().filter(|_| self.is_file()) {
                            input.check_not_shrunk()?;
                        }
                    }
                },
            }
        }
        Ok(None)
    }

    fn is_file(&self) -> bool {
        matches!(self.kind, Kind::File)
    }

    /// While waiting: `Some(true)` when the stream should end (idle too long; a partial batch is
    /// handed out first), `Some(false)` when a partial batch should be handed out, `None` after
    /// having slept one poll.
    fn after_wait(&mut self, partial: bool, stop: &AtomicBool) -> Option<bool> {
        let idle = self.last_row.elapsed();
        let waits = self.options.follow || matches!(self.kind, Kind::Stdin);
        if !waits || self.options.idle_exit.is_some_and(|limit| idle >= limit) {
            return Some(true);
        }
        if partial && idle >= self.options.flush_after {
            return Some(false);
        }
        let until = Instant::now() + self.options.poll;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(STOP_CHECK.min(until.saturating_duration_since(Instant::now())));
        }
        None
    }

    /// One row (or the news that there is none now).
    fn step(&mut self, batch: &mut Batch) -> Result<Step> {
        if let Kind::Folder(_) = self.kind {
            if self.input.is_none() || self.input_done {
                if let Some(step) = self.open_partition()? {
                    return Ok(step);
                }
            }
        }
        let input = self
            .input
            .as_mut()
            .expect("opened with the reader or above");
        let row = input.next_row(batch)?;
        match row {
            Row::Good | Row::Bad(_) => self.last_row = Instant::now(),
            Row::Wait => return Ok(Step::Wait),
            Row::End if matches!(self.kind, Kind::Folder(_)) => {
                self.input_done = true;
                return Ok(Step::PartitionEnd);
            }
            Row::End => return Ok(Step::Finished),
        }
        if self.skip > 0 {
            self.skip -= 1;
            if let Row::Good = row {
                drop_last_row(batch);
            }
            return Ok(Step::Row);
        }
        self.rows += 1;
        if let Row::Bad(e) = row {
            if !self.options.skip_bad_rows {
                return Err(e);
            }
            self.bad.count += 1;
            self.bad.rows_read = self.rows;
            if self.bad.first.len() < KEPT_REASONS {
                self.bad.first.push(e);
            }
        }
        Ok(Step::Row)
    }

    /// Opens the folder's next partition; `Some(step)` when there is none to open now.
    fn open_partition(&mut self) -> Result<Option<Step>> {
        let Kind::Folder(partitions) = &mut self.kind else {
            return Ok(None);
        };
        let mut name = partitions.next();
        if name.is_none() && self.options.follow {
            partitions.refresh()?;
            name = partitions.next();
        }
        let Some(name) = name else {
            return Ok(Some(if self.options.follow {
                Step::Wait
            } else {
                Step::Finished
            }));
        };
        let at = match self.resume.take() {
            Some(p) if p.partition.as_deref() == Some(name.as_str()) => (p.offset, p.line),
            _ => (0, 0),
        };
        let path = partitions.dir().join(&name);
        self.input = Some(open_file(&path, &self.schema, at, false)?);
        self.input_done = false;
        Ok(None)
    }

    fn hand_out(&mut self, batch: Batch) -> StreamBatch {
        let input = self
            .input
            .as_ref()
            .expect("a batch with rows was read from an input");
        let (offset, line) = input.position();
        let partition = match &self.kind {
            Kind::Folder(p) => p.current.clone(),
            _ => None,
        };
        StreamBatch {
            batch,
            file: input.name.clone(),
            position: StreamPosition {
                partition,
                offset,
                line,
                rows: self.rows,
            },
        }
    }
}

/// Takes the last row (skipped on resume) out of `batch`.
fn drop_last_row(batch: &mut Batch) {
    batch.rows -= 1;
    batch.lines.pop();
    for column in &mut batch.columns {
        column.truncate(batch.rows);
    }
}
