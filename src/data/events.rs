//! Event logs to sample tables (DATA.md §2): one row per event (user, item, item attributes,
//! timestamp, label…) becomes one sample whose behaviour sequence is that user's events strictly
//! before it in (time, file order), most recent last, at most `max_len` — the construction the
//! ml-100k protocol uses (DATA.md §1).
//!
//! The output is a sample table with the event's own columns (skip columns dropped), then
//! `hist_<item>`, one `hist_<side>` per side column and `hist_time`, in (time, file order), with a
//! header; and its schema (`hist_time` linked to `hist_<item>`). Which events count as behaviours is
//! configurable: all, or those whose label is 1 (every event is still a sample).
//!
//! Memory: the whole log is held while it is sorted by time (a log already in time order still is);
//! the per-user histories are at most `max_len` each.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use super::batch::{Batch, ColumnData};
use super::schema::{ColumnKind, Schema};
use super::table::{BadRows, ReadOptions, TableReader};
use crate::checkpoint::write_atomically;
use crate::error::{Error, Result};
use output::{format_field, output_schema, quoted};

/// Which events become behaviours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviours {
    /// Every event.
    All,
    /// Events whose label column holds 1.
    Positive {
        /// The label column.
        label: String,
    },
}

/// What [`build_sequences`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceOptions {
    /// The user column (categorical).
    pub user: String,
    /// The item column (categorical).
    pub item: String,
    /// The event time column (timestamp).
    pub time: String,
    /// Item attribute columns carried into each behaviour (categorical, or multi_hot: its first
    /// id).
    pub side: Vec<String>,
    /// Which events are behaviours.
    pub behaviours: Behaviours,
    /// Longest history kept (the most recent).
    pub max_len: usize,
}

/// What [`build_sequences`] wrote.
#[derive(Debug)]
pub struct SequenceStats {
    /// Samples written.
    pub rows: u64,
    /// Distinct users.
    pub users: u64,
    /// Mean history length.
    pub mean_history: f64,
    /// Rows skipped under `skip_bad_rows`.
    pub bad_rows: BadRows,
}

fn config_error(file: &str, key: &str, message: impl Into<String>) -> Error {
    Error::Config {
        file: file.to_string(),
        key: key.to_string(),
        message: message.into(),
    }
}

/// The schema column `name` for option `key`, of one of the `kinds` (type names).
fn column(schema: &Schema, file: &str, key: &str, name: &str, kinds: &[&str]) -> Result<usize> {
    let c = schema
        .index(name)
        .ok_or_else(|| config_error(file, key, format!("no column {name:?} in the schema")))?;
    let kind = schema.columns[c].kind.name();
    if !kinds.contains(&kind) {
        return Err(config_error(
            file,
            key,
            format!("column {name:?} is {kind}, not {}", kinds.join(" or ")),
        ));
    }
    Ok(c)
}

/// One behaviour: its item, side ids and time.
#[derive(Debug, Clone)]
struct Behaviour {
    item: String,
    side: Vec<String>,
    time: i64,
}

/// The columns [`build_sequences`] reads and writes, resolved in the event log's schema.
struct EventColumns {
    user: usize,
    item: usize,
    time: usize,
    sides: Vec<usize>,
    /// The label column when only positive events are behaviours.
    label: Option<usize>,
    /// The event columns copied to the output (all but skip columns).
    kept: Vec<usize>,
    /// `hist_<item>`, one `hist_<side>` per side column, `hist_time`.
    new_names: Vec<String>,
}

impl EventColumns {
    /// Looks up the columns `options` name; errors are keyed by the command-line option.
    fn resolve(schema: &Schema, schema_file: &str, options: &SequenceOptions) -> Result<Self> {
        let find =
            |key: &str, name: &str, kinds: &[&str]| column(schema, schema_file, key, name, kinds);
        let user = find("--user", &options.user, &["categorical"])?;
        let item = find("--item", &options.item, &["categorical"])?;
        let time = find("--time", &options.time, &["timestamp"])?;
        let sides = (options.side.iter().enumerate())
            .map(|(j, s)| {
                find(
                    &format!("--side {}", j + 1),
                    s,
                    &["categorical", "multi_hot"],
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let label = match &options.behaviours {
            Behaviours::All => None,
            Behaviours::Positive { label } => Some(find("--label", label, &["label"])?),
        };
        if options.max_len == 0 {
            return Err(config_error(
                schema_file,
                "max_len",
                "0: must be at least 1",
            ));
        }
        let kept: Vec<usize> = (0..schema.columns.len())
            .filter(|&c| schema.columns[c].kind != ColumnKind::Skip)
            .collect();
        let new_names: Vec<String> = std::iter::once(&options.item)
            .chain(&options.side)
            .map(|n| format!("hist_{n}"))
            .chain(["hist_time".to_string()])
            .collect();
        for (k, name) in new_names.iter().enumerate() {
            if schema.index(name).is_some() || new_names[..k].contains(name) {
                return Err(config_error(
                    schema_file,
                    "column",
                    format!("the output column {name:?} is already a column"),
                ));
            }
        }
        Ok(EventColumns {
            user,
            item,
            time,
            sides,
            label,
            kept,
            new_names,
        })
    }
}

/// The whole event log: its batches, the rows the reader skipped, and every row as
/// `(time, batch, row)` in a stable order by time, then file order.
struct Events {
    batches: Vec<Batch>,
    bad_rows: BadRows,
    order: Vec<(i64, u32, u32)>,
}

impl Events {
    fn read(events: &Path, schema: &Schema, read: ReadOptions, time: usize) -> Result<Self> {
        let mut reader = TableReader::open(events, schema, read)?;
        let mut batches: Vec<Batch> = Vec::new();
        for batch in reader.by_ref() {
            batches.push(batch?);
        }
        let bad_rows = reader.into_bad_rows();
        let mut order: Vec<(i64, u32, u32)> = Vec::new();
        for (b, batch) in batches.iter().enumerate() {
            let ColumnData::Timestamp(t) = &batch.columns[time] else {
                unreachable!("time column resolved")
            };
            order.extend(t.iter().enumerate().map(|(r, &t)| (t, b as u32, r as u32)));
        }
        order.sort_unstable();
        Ok(Events {
            batches,
            bad_rows,
            order,
        })
    }
}

/// Writes the sample table: a header, then per event its kept fields and its user's history.
struct SampleWriter<'a> {
    schema: &'a Schema,
    /// The event log's name, for errors.
    file: String,
    columns: &'a EventColumns,
    max_len: usize,
    histories: HashMap<String, VecDeque<Behaviour>>,
    total_history: u64,
    /// The output file's bytes.
    body: Vec<u8>,
}

impl SampleWriter<'_> {
    fn delimiter(&self) -> char {
        char::from(self.schema.delimiter)
    }

    /// The header line: the kept columns' names, then the history columns'.
    fn header(&mut self) -> Result<()> {
        let (schema, d) = (self.schema, self.delimiter());
        let header: Vec<String> = (self.columns.kept.iter())
            .map(|&c| quoted(schema, &schema.columns[c].name, &self.file, None, c))
            .collect::<Result<_>>()?;
        let mut text = header.join(&d.to_string());
        for name in &self.columns.new_names {
            text.push(d);
            text.push_str(name);
        }
        text.push('\n');
        self.body.extend_from_slice(text.as_bytes());
        Ok(())
    }

    /// Writes row `r` of `batch` (at time `t`) with its user's history, then adds it to that
    /// history when it is a behaviour.
    fn event(&mut self, batch: &Batch, r: usize, t: i64) -> Result<()> {
        let (schema, d, line) = (self.schema, self.delimiter(), batch.lines[r]);
        let mut text = String::new();
        for (k, &c) in self.columns.kept.iter().enumerate() {
            if k > 0 {
                text.push(d);
            }
            let field = format_field(&batch.columns[c], r);
            text.push_str(&quoted(schema, &field, &self.file, Some(line), c)?);
        }
        let user_id = token(&batch.columns[self.columns.user], r);
        let history = self.histories.entry(user_id.to_string()).or_default();
        self.total_history += history.len() as u64;
        for c in &history_fields(history, self.columns.new_names.len()) {
            text.push(d);
            text.push_str(&quoted(
                schema,
                c,
                &self.file,
                Some(line),
                self.columns.item,
            )?);
        }
        text.push('\n');
        self.body.extend_from_slice(text.as_bytes());
        // This event joins the user's history for the events after it.
        let is_behaviour = match self.columns.label {
            None => true,
            Some(c) => matches!(&batch.columns[c], ColumnData::Label(y) if y[r] == 1.0),
        };
        if is_behaviour {
            let behaviour = self.behaviour(batch, r, t)?;
            let history = self.histories.get_mut(user_id).expect("inserted above");
            if history.len() == self.max_len {
                history.pop_front();
            }
            history.push_back(behaviour);
        }
        Ok(())
    }

    /// Row `r` of `batch` as a behaviour: its item and side ids (a bag's first), at time `t`.
    fn behaviour(&self, batch: &Batch, r: usize, t: i64) -> Result<Behaviour> {
        let at = |c: usize, message: String| Error::Data {
            file: self.file.clone(),
            line: Some(batch.lines[r]),
            column: Some(format!("{} {:?}", c + 1, self.schema.columns[c].name)),
            message,
        };
        let id = |c: usize| -> Result<String> {
            let id = match &batch.columns[c] {
                ColumnData::MultiHot(bags) => bags.row(r).next().unwrap_or("").to_string(),
                other => token(other, r).to_string(),
            };
            if id.is_empty() {
                return Err(at(c, "empty: a behaviour needs an id".into()));
            }
            if id.contains('|') {
                return Err(at(
                    c,
                    format!("id {id:?} holds \"|\", the separator of the history columns"),
                ));
            }
            Ok(id)
        };
        Ok(Behaviour {
            item: id(self.columns.item)?,
            side: self
                .columns
                .sides
                .iter()
                .map(|&c| id(c))
                .collect::<Result<_>>()?,
            time: t,
        })
    }
}

/// The history columns of one sample: item ids, each side's ids, times, joined by `|`.
fn history_fields(history: &VecDeque<Behaviour>, columns: usize) -> Vec<String> {
    let mut fields: Vec<String> = vec![String::new(); columns];
    for (k, behaviour) in history.iter().enumerate() {
        let sep = if k > 0 { "|" } else { "" };
        fields[0].push_str(sep);
        fields[0].push_str(&behaviour.item);
        for (j, s) in behaviour.side.iter().enumerate() {
            fields[1 + j].push_str(sep);
            fields[1 + j].push_str(s);
        }
        let last = fields.len() - 1;
        let _ = write!(fields[last], "{sep}{}", behaviour.time);
    }
    fields
}

/// Writes `bytes` to the output file `path` atomically; a failure is an [`Error::Output`] naming
/// the path as given.
fn write_output(path: &Path, bytes: &[u8]) -> Result<()> {
    let refuse = |what: &str, e: std::io::Error| Error::Output {
        file: path.to_path_buf(),
        message: format!("cannot {what}: {e}"),
    };
    write_atomically(path, |temporary| {
        let mut f = std::fs::File::create(temporary).map_err(|e| refuse("create", e))?;
        f.write_all(bytes).map_err(|e| refuse("write", e))
    })
}

/// Reads the event log `events` (typed by `schema`, named `schema_file` in errors) and writes the
/// sample table `out` and its schema `schema_out` (see the module docs), each atomically. Options
/// that name no fitting column are [`Error::Config`] keyed by the command-line option (`--user`,
/// `--side 2`, …).
pub fn build_sequences(
    events: &Path,
    schema: &Schema,
    schema_file: &str,
    options: &SequenceOptions,
    read: ReadOptions,
    out: &Path,
    schema_out: &Path,
) -> Result<SequenceStats> {
    let columns = EventColumns::resolve(schema, schema_file, options)?;
    let log = Events::read(events, schema, read, columns.time)?;
    let mut writer = SampleWriter {
        schema,
        file: events.display().to_string(),
        columns: &columns,
        max_len: options.max_len,
        histories: HashMap::new(),
        total_history: 0,
        body: Vec::new(),
    };
    writer.header()?;
    for &(t, b, r) in &log.order {
        writer.event(&log.batches[b as usize], r as usize, t)?;
    }
    write_output(out, &writer.body)?;
    let schema_text = output_schema(schema, &columns.kept, &columns.new_names);
    write_output(schema_out, schema_text.as_bytes())?;
    let rows = log.order.len() as u64;
    Ok(SequenceStats {
        rows,
        users: writer.histories.len() as u64,
        mean_history: writer.total_history as f64 / rows.max(1) as f64,
        bad_rows: log.bad_rows,
    })
}

fn token(column: &ColumnData, r: usize) -> &str {
    match column {
        ColumnData::Categorical(t) => t.get(r),
        other => unreachable!("a categorical column is {}", other.type_name()),
    }
}

#[path = "events_output.rs"]
mod output;

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
